//! One-time challenges.

use async_trait::async_trait;
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::id::UserId;
use ciam_core::secret::TokenHash;
use ciam_core::store::{ChallengeStore, StoreResult};
use time::OffsetDateTime;

use super::PostgresBackend;
use super::codec;
use super::error::{self, retry};
use crate::sql::rows::decode_challenge;

impl PostgresBackend {
    /// Runs `sql` (one row by `secret_hash = $1 AND purpose = $2`, read or deleted and
    /// returned) and answers the challenge unless it has expired.
    async fn one_challenge(
        &self,
        sql: &str,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let row = retry(move || async move {
            sqlx::query(sql)
                .bind(hash.as_bytes().to_vec())
                .bind(purpose.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)
        })
        .await?;
        let Some(row) = row else { return Ok(None) };
        let challenge = decode_challenge(&row)?;
        Ok((now < challenge.expires_at).then_some(challenge))
    }
}

#[async_trait]
impl ChallengeStore for PostgresBackend {
    async fn insert_challenge(&self, c: &Challenge) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO {} (secret_hash, purpose, user_id, payload, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            self.table("challenges")
        );
        let sql = sql.as_str();
        let created_at = codec::time_to_db(c.created_at)?;
        let expires_at = codec::time_to_db(c.expires_at)?;
        retry(move || async move {
            sqlx::query(sql)
                .bind(c.secret_hash.as_bytes().to_vec())
                .bind(c.purpose.as_str())
                .bind(c.user_id.map(|u| u.to_bytes().to_vec()))
                .bind(codec::json_to_db(&c.payload))
                .bind(created_at)
                .bind(expires_at)
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }

    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let sql = format!(
            "SELECT secret_hash, purpose, user_id, payload, created_at, expires_at
             FROM {} WHERE secret_hash = $1 AND purpose = $2",
            self.table("challenges")
        );
        self.one_challenge(&sql, purpose, hash, now).await
    }

    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        // One statement deletes and returns the row; a concurrent caller blocks on the row
        // lock, then finds it gone, so exactly one sees it. An expired row is deleted too, and
        // then refused below.
        let sql = format!(
            "DELETE FROM {} WHERE secret_hash = $1 AND purpose = $2
             RETURNING secret_hash, purpose, user_id, payload, created_at, expires_at",
            self.table("challenges")
        );
        self.one_challenge(&sql, purpose, hash, now).await
    }

    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM {}
             WHERE user_id = $1 AND purpose = $2 AND created_at >= $3 AND expires_at > $4",
            self.table("challenges")
        );
        let sql = sql.as_str();
        let since = codec::time_to_db(since)?;
        let now = codec::time_to_db(now)?;
        let n: i64 = retry(move || async move {
            sqlx::query_scalar(sql)
                .bind(user.to_bytes().to_vec())
                .bind(purpose.as_str())
                .bind(since)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(error::map)
        })
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM {} WHERE expires_at <= $1",
            self.table("challenges")
        );
        let sql = sql.as_str();
        let now = codec::time_to_db(now)?;
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM {} WHERE user_id = $1 AND purpose = $2",
            self.table("challenges")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(user.to_bytes().to_vec())
                .bind(purpose.as_str())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected())
        })
        .await
    }
}
