//! One-time challenges.

use async_trait::async_trait;
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::id::UserId;
use ciam_core::secret::TokenHash;
use ciam_core::store::{ChallengeStore, StoreResult};
use time::OffsetDateTime;

use super::SqliteBackend;
use super::codec;
use super::error;
use crate::sql::rows::decode_challenge;

#[async_trait]
impl ChallengeStore for SqliteBackend {
    async fn insert_challenge(&self, c: &Challenge) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO challenges (secret_hash, purpose, user_id, payload, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(c.secret_hash.as_bytes().to_vec())
        .bind(c.purpose.as_str())
        .bind(c.user_id.map(|u| u.to_bytes().to_vec()))
        .bind(codec::json_to_db(&c.payload))
        .bind(codec::time_to_db(c.created_at)?)
        .bind(codec::time_to_db(c.expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(())
    }

    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let row = sqlx::query(
            "SELECT secret_hash, purpose, user_id, payload, created_at, expires_at
             FROM challenges WHERE secret_hash = ? AND purpose = ?",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        let Some(row) = row else { return Ok(None) };
        let challenge = decode_challenge(&row)?;
        Ok((now < challenge.expires_at).then_some(challenge))
    }

    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        // One statement deletes and returns the row, so of concurrent callers exactly one sees
        // it. An expired row is deleted too, and then refused below.
        let row = sqlx::query(
            "DELETE FROM challenges WHERE secret_hash = ? AND purpose = ?
             RETURNING secret_hash, purpose, user_id, payload, created_at, expires_at",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        let Some(row) = row else { return Ok(None) };
        let challenge = decode_challenge(&row)?;
        Ok((now < challenge.expires_at).then_some(challenge))
    }

    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM challenges
             WHERE user_id = ? AND purpose = ? AND created_at >= ? AND expires_at > ?",
        )
        .bind(user.to_bytes().to_vec())
        .bind(purpose.as_str())
        .bind(codec::time_to_db(since)?)
        .bind(codec::time_to_db(now)?)
        .fetch_one(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM challenges WHERE expires_at <= ?")
            .bind(codec::time_to_db(now)?)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected())
    }

    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM challenges WHERE user_id = ? AND purpose = ?")
            .bind(user.to_bytes().to_vec())
            .bind(purpose.as_str())
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected())
    }
}
