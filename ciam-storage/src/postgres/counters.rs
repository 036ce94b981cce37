//! Rate-limit counters: one row per key, window length and window, bumped by an upsert.

use std::time::Duration;

use async_trait::async_trait;
use ciam_core::store::{
    CounterRead, CounterStore, StoreResult, counts_from_rows, window_index, window_ms,
};
use time::OffsetDateTime;

use super::PostgresBackend;
use super::error::{self, retry};

#[async_trait]
impl CounterStore for PostgresBackend {
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let table = self.table("rate_counters");
        // The upsert is atomic: concurrent hits serialise on the row and each sees its count.
        let upsert = format!(
            "INSERT INTO {table} AS c (key, window_ms, window_index, count) VALUES ($1, $2, $3, 1)
             ON CONFLICT (key, window_ms, window_index) DO UPDATE SET count = c.count + 1
             RETURNING count"
        );
        let prune = format!(
            "DELETE FROM {table} WHERE key = $1 AND window_ms = $2 AND window_index < $3 - 1"
        );
        let (upsert, prune) = (upsert.as_str(), prune.as_str());
        let (ms, index) = (window_ms(window), window_index(window, now));
        let count: i64 = retry(move || async move {
            sqlx::query_scalar(upsert)
                .bind(key)
                .bind(ms)
                .bind(index)
                .fetch_one(&self.pool)
                .await
                .map_err(error::map)
        })
        .await?;
        if count == 1 {
            // First hit of a new window: forget windows before the previous one.
            sqlx::query(prune)
                .bind(key)
                .bind(ms)
                .bind(index)
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
        }
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn count(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let sql = format!(
            "SELECT count FROM {} WHERE key = $1 AND window_ms = $2 AND window_index = $3",
            self.table("rate_counters")
        );
        let count: Option<i64> = sqlx::query_scalar(&sql)
            .bind(key)
            .bind(window_ms(window))
            .bind(window_index(window, now))
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(count.and_then(|c| u64::try_from(c).ok()).unwrap_or(0))
    }

    /// One statement for all the keys: every row of those keys, matched with the windows
    /// asked in memory. A key has few rows (older windows are pruned).
    async fn counts(&self, reads: &[CounterRead<'_>]) -> StoreResult<Vec<u64>> {
        let mut keys: Vec<String> = reads.iter().map(|r| r.key.to_owned()).collect();
        keys.sort_unstable();
        keys.dedup();
        let sql = format!(
            "SELECT key, window_ms, window_index, count FROM {} WHERE key = ANY($1)",
            self.table("rate_counters")
        );
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&sql)
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(counts_from_rows(reads, &rows))
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        let sql = format!("DELETE FROM {} WHERE key = $1", self.table("rate_counters"));
        sqlx::query(&sql)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }
}
