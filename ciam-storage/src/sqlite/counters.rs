//! Rate-limit counters: one row per key, window length and window, bumped by an upsert.

use std::time::Duration;

use async_trait::async_trait;
use ciam_core::store::{
    CounterRead, CounterStore, StoreResult, counts_from_rows, window_index, window_ms,
};
use time::OffsetDateTime;

use super::SqliteBackend;
use super::error;

/// Keys per statement of [`CounterStore::counts`], well under SQLite's bound on parameters.
const KEYS_PER_READ: usize = 500;

#[async_trait]
impl CounterStore for SqliteBackend {
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let (ms, index) = (window_ms(window), window_index(window, now));
        // One statement: SQLite serialises writers, so each hit sees its own count.
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO rate_counters (key, window_ms, window_index, count) VALUES (?, ?, ?, 1)
             ON CONFLICT (key, window_ms, window_index) DO UPDATE SET count = count + 1
             RETURNING count",
        )
        .bind(key)
        .bind(ms)
        .bind(index)
        .fetch_one(&self.pool)
        .await
        .map_err(error::map)?;
        if count == 1 {
            // First hit of a new window: forget windows before the previous one.
            sqlx::query("DELETE FROM rate_counters WHERE key = ? AND window_ms = ? AND window_index < ? - 1")
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
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT count FROM rate_counters WHERE key = ? AND window_ms = ? AND window_index = ?",
        )
        .bind(key)
        .bind(window_ms(window))
        .bind(window_index(window, now))
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(count.and_then(|c| u64::try_from(c).ok()).unwrap_or(0))
    }

    /// One statement for all the keys (in chunks of 500): every row of those keys, matched
    /// with the windows asked in memory. A key has few rows (older windows are pruned).
    async fn counts(&self, reads: &[CounterRead<'_>]) -> StoreResult<Vec<u64>> {
        let mut keys: Vec<&str> = reads.iter().map(|r| r.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut rows = Vec::new();
        for chunk in keys.chunks(KEYS_PER_READ) {
            let sql = format!(
                "SELECT key, window_ms, window_index, count FROM rate_counters WHERE key IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query_as::<_, (String, i64, i64, i64)>(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            rows.extend(query.fetch_all(&self.pool).await.map_err(error::map)?);
        }
        Ok(counts_from_rows(reads, &rows))
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM rate_counters WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }
}
