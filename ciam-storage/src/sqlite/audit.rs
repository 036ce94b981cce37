//! The audit log.

use async_trait::async_trait;
use ciam_core::audit::{AuditAction, AuditEntry, AuditOutcome};
use ciam_core::id::{AuditId, SessionId, UserId};
use ciam_core::store::{AuditStore, StoreResult};
use sqlx::sqlite::SqliteRow;

use super::SqliteBackend;
use super::codec::{self, corrupt};
use super::error;

const AUDIT_COLUMNS: &str =
    "id, at, action, outcome, reason, user_id, session_id, ip, user_agent, detail";

fn decode_entry(row: &SqliteRow) -> StoreResult<AuditEntry> {
    let ip: Option<String> = codec::get(row, "ip")?;
    Ok(AuditEntry {
        id: AuditId::from_bytes(codec::bytes(row, "id")?),
        at: codec::time(row, "at")?,
        action: codec::parsed(row, "action", AuditAction::parse)?,
        outcome: codec::parsed(row, "outcome", AuditOutcome::parse)?,
        reason: codec::get(row, "reason")?,
        user_id: codec::opt_bytes(row, "user_id")?.map(UserId::from_bytes),
        session_id: codec::opt_bytes(row, "session_id")?.map(SessionId::from_bytes),
        ip: ip
            .map(|ip| ip.parse().map_err(|e| corrupt("ip", e)))
            .transpose()?,
        user_agent: codec::get(row, "user_agent")?,
        detail: codec::json(row, "detail")?,
    })
}

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
