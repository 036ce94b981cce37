//! Sessions.

use async_trait::async_trait;
use ciam_core::id::{SessionId, UserId};
use ciam_core::secret::TokenHash;
use ciam_core::session::{DeviceInfo, Session};
use ciam_core::store::{SessionStore, StoreResult};
use time::OffsetDateTime;

use super::SqliteBackend;
use super::codec::{self};
use super::error;
use crate::sql::rows::{decode_session, encode_amr};

const SESSION_COLUMNS: &str = "id, user_id, token_hash, created_at, last_seen_at, idle_expires_at, \
                               absolute_expires_at, auth_time, amr, aal, user_agent, ip";

#[async_trait]
impl SessionStore for SqliteBackend {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, idle_expires_at,
                                   absolute_expires_at, auth_time, amr, aal, user_agent, ip)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.to_bytes().to_vec())
        .bind(s.user_id.to_bytes().to_vec())
        .bind(s.token_hash.as_bytes().to_vec())
        .bind(codec::time_to_db(s.created_at)?)
        .bind(codec::time_to_db(s.last_seen_at)?)
        .bind(codec::time_to_db(s.idle_expires_at)?)
        .bind(codec::time_to_db(s.absolute_expires_at)?)
        .bind(codec::time_to_db(s.auth_time)?)
        .bind(encode_amr(&s.amr))
        .bind(i64::from(s.aal.level()))
        .bind(s.device.user_agent.as_deref())
        .bind(s.device.ip.map(|ip| ip.to_string()))
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(())
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
             WHERE token_hash = ? AND idle_expires_at > ?2 AND absolute_expires_at > ?2"
        );
        let row = sqlx::query(&sql)
            .bind(hash.as_bytes().to_vec())
            .bind(codec::time_to_db(now)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_session).transpose()
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        // The user agent stays the one the session was created with; the IP follows the client.
        let done = sqlx::query(
            "UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?, ip = COALESCE(?, ip) WHERE id = ?",
        )
        .bind(codec::time_to_db(last_seen_at)?)
        .bind(codec::time_to_db(idle_expires_at)?)
        .bind(device.ip.map(|ip| ip.to_string()))
        .bind(id.to_bytes().to_vec())
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
             WHERE user_id = ? AND idle_expires_at > ?2 AND absolute_expires_at > ?2
             ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(user.to_bytes().to_vec())
            .bind(codec::time_to_db(now)?)
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        rows.iter().map(decode_session).collect()
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
            .bind(id.to_bytes().to_vec())
            .bind(user.to_bytes().to_vec())
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE user_id = ? AND (?2 IS NULL OR id <> ?2)")
                .bind(user.to_bytes().to_vec())
                .bind(keep.map(|k| k.to_bytes().to_vec()))
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
        Ok(done.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
        )
        .bind(codec::time_to_db(now)?)
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(done.rows_affected())
    }
}
