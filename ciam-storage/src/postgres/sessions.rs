//! Sessions.

use async_trait::async_trait;
use ciam_core::id::{SessionId, UserId};
use ciam_core::secret::TokenHash;
use ciam_core::session::{DeviceInfo, Session};
use ciam_core::store::{SessionStore, StoreResult};
use time::OffsetDateTime;

use super::PostgresBackend;
use super::codec::{self};
use super::error::{self, retry};
use crate::sql::rows::{decode_session, encode_amr};

const SESSION_COLUMNS: &str = "id, user_id, token_hash, created_at, last_seen_at, idle_expires_at, \
                               absolute_expires_at, auth_time, amr, aal, user_agent, ip";

#[async_trait]
impl SessionStore for PostgresBackend {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO {} (id, user_id, token_hash, created_at, last_seen_at, idle_expires_at,
                             absolute_expires_at, auth_time, amr, aal, user_agent, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            self.table("sessions")
        );
        let sql = sql.as_str();
        let times = [
            codec::time_to_db(s.created_at)?,
            codec::time_to_db(s.last_seen_at)?,
            codec::time_to_db(s.idle_expires_at)?,
            codec::time_to_db(s.absolute_expires_at)?,
            codec::time_to_db(s.auth_time)?,
        ];
        retry(move || async move {
            sqlx::query(sql)
                .bind(s.id.to_bytes().to_vec())
                .bind(s.user_id.to_bytes().to_vec())
                .bind(s.token_hash.as_bytes().to_vec())
                .bind(times[0])
                .bind(times[1])
                .bind(times[2])
                .bind(times[3])
                .bind(times[4])
                .bind(encode_amr(&s.amr))
                .bind(i16::from(s.aal.level()))
                .bind(s.device.user_agent.as_deref())
                .bind(s.device.ip.map(|ip| ip.to_string()))
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM {}
             WHERE token_hash = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2",
            self.table("sessions")
        );
        let sql = sql.as_str();
        let now = codec::time_to_db(now)?;
        retry(move || async move {
            let row = sqlx::query(sql)
                .bind(hash.as_bytes().to_vec())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
            row.as_ref().map(decode_session).transpose()
        })
        .await
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        // The user agent stays the one the session was created with; the IP follows the client.
        let sql = format!(
            "UPDATE {} SET last_seen_at = $1, idle_expires_at = $2, ip = COALESCE($3, ip) WHERE id = $4",
            self.table("sessions")
        );
        let sql = sql.as_str();
        let last_seen_at = codec::time_to_db(last_seen_at)?;
        let idle_expires_at = codec::time_to_db(idle_expires_at)?;
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(last_seen_at)
                .bind(idle_expires_at)
                .bind(device.ip.map(|ip| ip.to_string()))
                .bind(id.to_bytes().to_vec())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM {}
             WHERE user_id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2
             ORDER BY created_at DESC, id DESC",
            self.table("sessions")
        );
        let sql = sql.as_str();
        let now = codec::time_to_db(now)?;
        retry(move || async move {
            let rows = sqlx::query(sql)
                .bind(user.to_bytes().to_vec())
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(error::map)?;
            rows.iter().map(decode_session).collect()
        })
        .await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let sql = format!(
            "DELETE FROM {} WHERE id = $1 AND user_id = $2",
            self.table("sessions")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(id.to_bytes().to_vec())
                .bind(user.to_bytes().to_vec())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM {} WHERE user_id = $1 AND ($2::bytea IS NULL OR id <> $2)",
            self.table("sessions")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(user.to_bytes().to_vec())
                .bind(keep.map(|k| k.to_bytes().to_vec()))
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM {} WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1",
            self.table("sessions")
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
}
