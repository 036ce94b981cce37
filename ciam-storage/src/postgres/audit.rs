//! The audit log: a hash chain appended under a transaction-scoped advisory lock, and the
//! users' data keys.

use async_trait::async_trait;
use ciam_core::audit::{AuditRecord, AuditRecordBody};
use ciam_core::id::UserId;
use ciam_core::shred::KeyState;
use ciam_core::store::{AuditStore, StoreResult};
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::PostgresBackend;
use super::codec;
use super::error::{self, retry};
use crate::sql::rows::{AUDIT_COLUMNS, AuditRow, decode_audit, decode_head, key_state};

/// First key of the append lock ("ciaa" in ASCII); the second is a hash of the schema name,
/// so backends on different schemas do not wait for each other.
const APPEND_LOCK_CLASS: i32 = 0x6369_6161;

impl PostgresBackend {
    async fn append_in(
        &self,
        conn: &mut PgConnection,
        body: AuditRecordBody,
    ) -> StoreResult<AuditRecord> {
        // Every append of this schema, from any process, takes turns here until its
        // transaction ends; a process that dies mid-append releases the lock with its
        // connection and leaves nothing of its record behind.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(APPEND_LOCK_CLASS)
            .bind(self.schema())
            .execute(&mut *conn)
            .await
            .map_err(error::map)?;
        let log = self.table("audit_log");
        let head = decode_head(
            sqlx::query_as(&format!(
                "SELECT seq, hash FROM {log} ORDER BY seq DESC LIMIT 1"
            ))
            .fetch_optional(&mut *conn)
            .await
            .map_err(error::map)?,
        )?;
        let record = AuditRecord::link(body, head);
        let r = AuditRow::encode(&record)?;
        sqlx::query(&format!(
            "INSERT INTO {log} ({AUDIT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
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

    async fn append_once(&self, body: &AuditRecordBody) -> StoreResult<AuditRecord> {
        // Dropping `tx` on an early return rolls back (and releases the lock).
        let mut tx = self.pool.begin().await.map_err(error::map)?;
        let record = self.append_in(&mut tx, body.clone()).await?;
        tx.commit().await.map_err(error::map)?;
        Ok(record)
    }

    async fn audit_rows(
        &self,
        sql: &str,
        user: Option<UserId>,
        binds: &[i64],
    ) -> StoreResult<Vec<AuditRecord>> {
        retry(move || async move {
            let mut q = sqlx::query(sql);
            if let Some(u) = user {
                q = q.bind(u.to_bytes().to_vec());
            }
            for b in binds {
                q = q.bind(*b);
            }
            let rows = q.fetch_all(&self.pool).await.map_err(error::map)?;
            rows.iter().map(decode_audit).collect()
        })
        .await
    }
}

#[async_trait]
impl AuditStore for PostgresBackend {
    async fn append_audit(&self, body: AuditRecordBody) -> StoreResult<AuditRecord> {
        let body = &body;
        retry(move || self.append_once(body)).await
    }

    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM {} WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
            self.table("audit_log")
        );
        self.audit_rows(&sql, Some(user), &[i64::from(limit)]).await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM {} ORDER BY seq DESC LIMIT $1",
            self.table("audit_log")
        );
        self.audit_rows(&sql, None, &[i64::from(limit)]).await
    }

    async fn audit_after(&self, after: u64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM {} WHERE seq > $1 ORDER BY seq LIMIT $2",
            self.table("audit_log")
        );
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.audit_rows(&sql, None, &[after, i64::from(limit)])
            .await
    }

    async fn audit_key(&self, user: UserId) -> StoreResult<KeyState> {
        let sql = format!(
            "SELECT wrapped, erased_at FROM {} WHERE user_id = $1",
            self.table("audit_keys")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let row: Option<(Option<Vec<u8>>, Option<i64>)> = sqlx::query_as(sql)
                .bind(user.to_bytes().to_vec())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
            key_state(row)
        })
        .await
    }

    async fn insert_audit_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        let sql = format!(
            "INSERT INTO {} (user_id, wrapped, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
            self.table("audit_keys")
        );
        let sql = sql.as_str();
        let at = codec::time_to_db(at)?;
        retry(move || async move {
            sqlx::query(sql)
                .bind(user.to_bytes().to_vec())
                .bind(wrapped)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await?;
        self.audit_key(user).await
    }

    async fn erase_audit_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        let keys = self.table("audit_keys");
        let tombstone = format!(
            "INSERT INTO {keys} (user_id, wrapped, created_at, erased_at) VALUES ($1, NULL, $2, $2) \
             ON CONFLICT (user_id) DO UPDATE SET wrapped = NULL, \
             erased_at = COALESCE({keys}.erased_at, excluded.erased_at)"
        );
        // Entries written before the chain existed hold their personal data in clear.
        let legacy = format!(
            "UPDATE {} SET ip = NULL, user_agent = NULL, detail = '{{}}' WHERE user_id = $1",
            self.table("audit_legacy")
        );
        let (tombstone, legacy) = (tombstone.as_str(), legacy.as_str());
        let at = codec::time_to_db(at)?;
        let id = user.to_bytes().to_vec();
        let id = &id;
        retry(move || async move {
            let mut tx = self.pool.begin().await.map_err(error::map)?;
            sqlx::query(tombstone)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
            sqlx::query(legacy)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
            tx.commit().await.map_err(error::map)
        })
        .await
    }
}
