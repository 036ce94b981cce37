//! [`ChallengeStore`] on Redis.

use async_trait::async_trait;
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::id::UserId;
use ciam_core::secret::TokenHash;
use ciam_core::store::{ChallengeStore, StoreError, StoreResult};
use redis::Value;
use time::OffsetDateTime;

use super::RedisStore;
use super::codec::{self, Fields, nanos};

impl RedisStore {
    /// `P cu:<user>:<purpose>`.
    fn user_challenges(&self, user: UserId, purpose: ChallengePurpose) -> String {
        self.key("cu", &format!("{user}:{}", purpose.as_str()))
    }
}

#[async_trait]
impl ChallengeStore for RedisStore {
    async fn insert_challenge(&self, challenge: &Challenge) -> StoreResult<()> {
        let secret = codec::hex(&challenge.secret_hash);
        let mut call = self.scripts().insert_challenge.prepare_invoke();
        call.key(self.key("c", &secret));
        if let Some(user) = challenge.user_id {
            call.key(self.user_challenges(user, challenge.purpose));
        }
        call.arg(&secret)
            .arg(nanos(challenge.created_at))
            .arg(nanos(challenge.expires_at))
            .arg(self.inner.gc_grace_ms);
        for (name, value) in codec::challenge_fields(challenge) {
            call.arg(name).arg(value);
        }
        let mut conn = self.conn();
        let inserted: i64 = self.run(call.invoke_async(&mut conn)).await?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict("challenge"))
        }
    }

    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let mut conn = self.conn();
        let key = self.key("c", &codec::hex(hash));
        let value: Value = self
            .run(redis::cmd("HGETALL").arg(&key).query_async(&mut conn))
            .await?;
        let Some(fields) = Fields::from_value("challenge", value)? else {
            return Ok(None);
        };
        let challenge = codec::decode_challenge(&fields, *hash)?;
        Ok(Some(challenge).filter(|c| c.purpose == purpose && now < c.expires_at))
    }

    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let secret = codec::hex(hash);
        let mut call = self.scripts().consume_challenge.prepare_invoke();
        call.key(self.key("c", &secret))
            .arg(&self.inner.prefix)
            .arg(&secret)
            .arg(purpose.as_str())
            .arg(nanos(now));
        let mut conn = self.conn();
        let value: Value = self.run(call.invoke_async(&mut conn)).await?;
        let Some(fields) = Fields::from_value("challenge", value)? else {
            return Ok(None);
        };
        let challenge = codec::decode_challenge(&fields, *hash)?;
        // The script compared the exact times already; this only guards against a record
        // that lost its `expires` field (which then fails to decode above).
        Ok(Some(challenge).filter(|c| c.purpose == purpose && now < c.expires_at))
    }

    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut call = self.scripts().count_challenges.prepare_invoke();
        call.key(self.user_challenges(user, purpose))
            .arg(&self.inner.prefix)
            .arg(nanos(since))
            .arg(nanos(now));
        let mut conn = self.conn();
        self.run(call.invoke_async(&mut conn)).await
    }

    /// Redis deletes each challenge by itself: its key's TTL, set at insert, runs out at its
    /// expiry plus the garbage-collection grace. Nothing is left to purge; returns 0.
    async fn purge_expired_challenges(&self, _now: OffsetDateTime) -> StoreResult<u64> {
        Ok(0)
    }

    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64> {
        let mut call = self.scripts().delete_challenges.prepare_invoke();
        call.key(self.user_challenges(user, purpose))
            .arg(&self.inner.prefix)
            .arg(user.to_string())
            .arg(purpose.as_str());
        let mut conn = self.conn();
        self.run(call.invoke_async(&mut conn)).await
    }
}
