//! The audit log.

use async_trait::async_trait;
use ciam_core::audit::AuditEntry;
use ciam_core::id::UserId;
use ciam_core::store::{AuditStore, StoreResult};

use super::SqliteBackend;
use super::codec::{self};
use super::error;
use crate::sql::rows::decode_entry;

const AUDIT_COLUMNS: &str =
    "id, at, action, outcome, reason, user_id, session_id, ip, user_agent, detail";

#[async_trait]
impl AuditStore for SqliteBackend {
    async fn append_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit (id, at, action, outcome, reason, user_id, session_id, ip, user_agent, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.id.to_bytes().to_vec())
        .bind(codec::time_to_db(e.at)?)
        .bind(e.action.as_str())
        .bind(e.outcome.as_str())
        .bind(e.reason.as_str())
        .bind(e.user_id.map(|u| u.to_bytes().to_vec()))
        .bind(e.session_id.map(|s| s.to_bytes().to_vec()))
        .bind(e.ip.map(|ip| ip.to_string()))
        .bind(e.user_agent.as_deref())
        .bind(codec::json_to_db(&e.detail))
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(())
    }

    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE user_id = ? ORDER BY at DESC, seq DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(user.to_bytes().to_vec())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        rows.iter().map(decode_entry).collect()
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY at DESC, seq DESC LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        rows.iter().map(decode_entry).collect()
    }
}
