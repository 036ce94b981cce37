//! [`CounterStore`] on Redis: one hash per key, `P rl:<key>`, with a field
//! `<window ms>:<window index>` per window.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::store::{CounterRead, CounterStore, StoreResult, window_index, window_ms};
use redis::Script;
use time::OffsetDateTime;

use super::RedisStore;

/// Bumps the window's field, forgets older windows of the same length when a new window
/// starts, and keeps the key alive for at least two windows (plus the GC grace).
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if c == 1 then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    local ms, idx = string.match(f, '^(%d+):(%-?%d+)$')
    if ms == ARGV[2] and tonumber(idx) < tonumber(ARGV[3]) - 1 then
      redis.call('HDEL', KEYS[1], f)
    end
  end
end
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return c
",
    )
});

impl RedisStore {
    /// `P rl:<key>`.
    fn counter_key(&self, key: &str) -> String {
        self.key("rl", key)
    }
}

#[async_trait]
impl CounterStore for RedisStore {
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let (ms, index) = (window_ms(window), window_index(window, now));
        let ttl = ms
            .saturating_mul(2)
            .saturating_add(i64::try_from(self.inner.gc_grace_ms).unwrap_or(i64::MAX));
        let mut call = HIT.prepare_invoke();
        call.key(self.counter_key(key))
            .arg(format!("{ms}:{index}"))
            .arg(ms)
            .arg(index)
            .arg(ttl);
        let mut conn = self.conn();
        let count: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn count(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let field = format!("{}:{}", window_ms(window), window_index(window, now));
        let mut conn = self.conn();
        let count: Option<i64> = self
            .run(
                redis::cmd("HGET")
                    .arg(self.counter_key(key))
                    .arg(field)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(count.and_then(|c| u64::try_from(c).ok()).unwrap_or(0))
    }

    /// One pipeline of `HGET`s: a single round trip.
    async fn counts(&self, reads: &[CounterRead<'_>]) -> StoreResult<Vec<u64>> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for r in reads {
            pipe.cmd("HGET").arg(self.counter_key(r.key)).arg(format!(
                "{}:{}",
                window_ms(r.window),
                window_index(r.window, r.at)
            ));
        }
        let mut conn = self.conn();
        let counts: Vec<Option<i64>> = self.run(pipe.query_async(&mut conn)).await?;
        Ok(counts
            .into_iter()
            .map(|c| c.and_then(|c| u64::try_from(c).ok()).unwrap_or(0))
            .collect())
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        self.run(
            redis::cmd("DEL")
                .arg(self.counter_key(key))
                .query_async::<()>(&mut conn),
        )
        .await
    }
}
