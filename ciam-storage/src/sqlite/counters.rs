//! Rate-limit counters: one row per key, window length and window, bumped by an upsert.

use std::time::Duration;

use async_trait::async_trait;
use ciam_core::store::{CounterStore, StoreResult, window_index};
use time::OffsetDateTime;

use super::SqliteBackend;
use super::error;

fn window_ms(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1)
}

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

    async fn reset(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM rate_counters WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }
}
