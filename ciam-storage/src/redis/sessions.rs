//! [`SessionStore`] on Redis.

use async_trait::async_trait;
use ciam_core::id::{SessionId, UserId};
use ciam_core::secret::TokenHash;
use ciam_core::session::{DeviceInfo, Session};
use ciam_core::store::{SessionStore, StoreError, StoreResult};
use redis::Value;
use time::OffsetDateTime;

use super::RedisStore;
use super::codec::{self, Fields, nanos};

/// How many expiry-index entries one purge script looks at.
const PURGE_BATCH: u64 = 1000;

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        let token = codec::hex(&session.token_hash);
        let id = session.id.to_string();
        let mut call = self.scripts().insert_session.prepare_invoke();
        call.key(self.key("s", &token))
            .key(self.key("sid", &id))
            .key(self.key("us", &session.user_id.to_string()))
            .key(self.expiry_index())
            .arg(&id)
            .arg(&token)
            .arg(nanos(session.created_at))
            .arg(nanos(session.expires_at()))
            .arg(self.inner.gc_grace_ms);
        for (name, value) in codec::session_fields(session) {
            call.arg(name).arg(value);
        }
        let mut conn = self.conn();
        let inserted: i64 = self.run(call.invoke_async(&mut conn)).await?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict("session"))
        }
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let mut conn = self.conn();
        let key = self.key("s", &codec::hex(hash));
        let value: Value = self
            .run(redis::cmd("HGETALL").arg(&key).query_async(&mut conn))
            .await?;
        let Some(fields) = Fields::from_value("session", value)? else {
            return Ok(None);
        };
        let session = codec::decode_session(&fields)?;
        if session.token_hash != *hash {
            return Err(codec::corrupt("session", "stored under another token hash"));
        }
        Ok(Some(session).filter(|s| !s.is_expired(now)))
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        let id = id.to_string();
        let ip = device.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let mut call = self.scripts().touch_session.prepare_invoke();
        call.key(self.key("sid", &id))
            .key(self.expiry_index())
            .arg(&self.inner.prefix)
            .arg(&id)
            .arg(nanos(last_seen_at))
            .arg(nanos(idle_expires_at))
            .arg(self.inner.gc_grace_ms)
            .arg(ip);
        let mut conn = self.conn();
        let touched: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(touched == 1)
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let mut call = self.scripts().sessions_for_user.prepare_invoke();
        call.key(self.key("us", &user.to_string()))
            .arg(&self.inner.prefix);
        let mut conn = self.conn();
        let value: Value = self.run(call.invoke_async(&mut conn)).await?;
        let Value::Array(items) = value else {
            return Err(codec::corrupt("session list", "not an array"));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(fields) = Fields::from_value("session", item)? {
                let s = codec::decode_session(&fields)?;
                if s.user_id == user && !s.is_expired(now) {
                    out.push(s);
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(out)
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let id = id.to_string();
        let user = user.to_string();
        let mut call = self.scripts().delete_session.prepare_invoke();
        call.key(self.key("sid", &id))
            .key(self.key("us", &user))
            .key(self.expiry_index())
            .arg(&self.inner.prefix)
            .arg(&id)
            .arg(&user);
        let mut conn = self.conn();
        let deleted: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(deleted == 1)
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        let mut call = self.scripts().delete_user_sessions.prepare_invoke();
        call.key(self.key("us", &user.to_string()))
            .key(self.expiry_index())
            .arg(&self.inner.prefix)
            .arg(keep.map(|k| k.to_string()).unwrap_or_default());
        let mut conn = self.conn();
        self.run(call.invoke_async(&mut conn)).await
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let now = nanos(now);
        let mut total = 0u64;
        loop {
            let mut call = self.scripts().purge_expired.prepare_invoke();
            call.key(self.expiry_index())
                .arg(&self.inner.prefix)
                .arg(&now)
                .arg(PURGE_BATCH);
            let mut conn = self.conn();
            let (deleted, seen, removed): (u64, u64, u64) =
                self.run(call.invoke_async(&mut conn)).await?;
            total = total.saturating_add(deleted);
            // Stop when the batch was the last one, or when it removed nothing (what is left
            // below `now` by score is live by the exact comparison).
            if seen < PURGE_BATCH || removed == 0 {
                return Ok(total);
            }
        }
    }
}
