//! The audit log: a hash chain appended under `BEGIN IMMEDIATE`, and the users' data keys.

use async_trait::async_trait;
use ciam_core::audit::{AuditRecord, AuditRecordBody};
use ciam_core::id::UserId;
use ciam_core::shred::KeyState;
use ciam_core::store::{AuditStore, StoreResult};
use sqlx::SqliteConnection;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::Sqlite;
use time::OffsetDateTime;

use super::SqliteBackend;
use super::codec;
use super::error;
use crate::sql::rows::{AUDIT_COLUMNS, AuditRow, decode_audit, decode_head, key_state};

/// Reads the head and writes the linked record; the caller holds the write lock.
async fn append_in(conn: &mut SqliteConnection, body: AuditRecordBody) -> StoreResult<AuditRecord> {
    let head = decode_head(
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(error::map)?,
    )?;
    let record = AuditRecord::link(body, head);
    let r = AuditRow::encode(&record)?;
    sqlx::query(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(r.seq)
    .bind(r.id)
    .bind(r.at)
    .bind(r.action)
    .bind(r.outcome)
    .bind(r.reason)
    .bind(r.user_id)
    .bind(r.session_id)
    .bind(r.personal_kind)
    .bind(r.personal)
    .bind(r.prev_hash)
    .bind(r.hash)
    .execute(&mut *conn)
    .await
    .map_err(error::map)?;
    Ok(record)
}

/// Commits when `result` is `Ok`; otherwise (or when the commit fails) rolls back. A
/// connection whose rollback fails is discarded, so no half-open transaction returns to the
/// pool (a clean one is kept: an in-memory database lives only as long as its connection).
async fn finish<T>(mut conn: PoolConnection<Sqlite>, result: StoreResult<T>) -> StoreResult<T> {
    let result = match result {
        Ok(v) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => return Ok(v),
            Err(e) => Err(error::map(e)),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::warn!(error = %e, "audit append rollback failed");
        conn.close_on_drop();
    }
    result
}

impl SqliteBackend {
    async fn audit_query(
        &self,
        sql: &str,
        bind: &[i64],
        user: Option<UserId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut q = sqlx::query(sql);
        if let Some(u) = user {
            q = q.bind(u.to_bytes().to_vec());
        }
        for b in bind {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(error::map)?;
        rows.iter().map(decode_audit).collect()
    }
}

#[async_trait]
impl AuditStore for SqliteBackend {
    async fn append_audit(&self, body: AuditRecordBody) -> StoreResult<AuditRecord> {
        // IMMEDIATE takes the write lock before the head is read, so two appends (from any
        // process on this file) cannot link to the same head.
        let mut conn = self.pool.acquire().await.map_err(error::map)?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(error::map)?;
        let result = append_in(&mut conn, body).await;
        finish(conn, result).await
    }

    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE user_id = ? ORDER BY seq DESC LIMIT ?"
        );
        self.audit_query(&sql, &[i64::from(limit)], Some(user))
            .await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT ?");
        self.audit_query(&sql, &[i64::from(limit)], None).await
    }

    async fn audit_after(&self, after: u64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?");
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.audit_query(&sql, &[after, i64::from(limit)], None)
            .await
    }

    async fn audit_key(&self, user: UserId) -> StoreResult<KeyState> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> =
            sqlx::query_as("SELECT wrapped, erased_at FROM audit_keys WHERE user_id = ?")
                .bind(user.to_bytes().to_vec())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
        key_state(row)
    }

    async fn insert_audit_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        sqlx::query(
            "INSERT INTO audit_keys (user_id, wrapped, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user.to_bytes().to_vec())
        .bind(wrapped)
        .bind(codec::time_to_db(at)?)
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        self.audit_key(user).await
    }

    async fn erase_audit_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        let id = user.to_bytes().to_vec();
        let at = codec::time_to_db(at)?;
        let mut tx = self.pool.begin().await.map_err(error::map)?;
        sqlx::query(
            "INSERT INTO audit_keys (user_id, wrapped, created_at, erased_at) VALUES (?, NULL, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET wrapped = NULL, \
             erased_at = COALESCE(audit_keys.erased_at, excluded.erased_at)",
        )
        .bind(&id)
        .bind(at)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(error::map)?;
        // Entries written before the chain existed hold their personal data in clear.
        sqlx::query(
            "UPDATE audit_legacy SET ip = NULL, user_agent = NULL, detail = '{}' WHERE user_id = ?",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(error::map)?;
        tx.commit().await.map_err(error::map)
    }
}
