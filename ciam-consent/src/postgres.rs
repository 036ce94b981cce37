//! The PostgreSQL consent store.
//!
//! [`PostgresConsentStore`] keeps the ledger, the data keys and the outbox in one schema
//! (created if missing). Like `ciam-storage`'s backend, every statement names its tables
//! with the schema (no reliance on `search_path`, so it works behind transaction poolers),
//! and migrations (`migrations/postgres/*.sql`, recorded in `consent_schema_version`) run in
//! one transaction under a transaction-scoped advisory lock.
//!
//! Appends are serialised by another transaction-scoped advisory lock per schema: the
//! global chain has one head, so two appends must not read it at once. Inside the lock one
//! transaction checks the tombstone, reads both heads, writes the record and its outbox row.
//! Erasure takes the same lock, so no append slips in between a tombstone check and its
//! commit. Appends therefore run one at a time per schema; the lock is released at commit or
//! rollback, also when the client dies.
//!
//! Erasure sets the wrapped key to `NULL`; the old row version stays on disk until `VACUUM`
//! reclaims it, but it is wrapped under the master key, which the database never holds.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::id::UserId;
use ciam_core::store::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, PgConnection};
use time::OffsetDateTime;

use crate::chain::{RecordBody, RecordId, StoredRecord};
use crate::sql::{
    RECORD_COLUMNS, bind_record, decode_outbox, decode_record, head, insert_record_sql, key_state,
    map, outbox_payload, time_to_db, u64_to_db,
};
use crate::store::{ConsentStore, KeyState, OutboxItem};

/// The migrations, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/postgres/0001_ledger.sql")];

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory lock class for migrations ("cnsm").
const MIGRATE_LOCK: i32 = 0x636e_736d;
/// Advisory lock class for appends ("cnsa").
const APPEND_LOCK: i32 = 0x636e_7361;

/// A consent store on a PostgreSQL schema. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PostgresConsentStore {
    pool: PgPool,
    schema: Arc<str>,
    quoted: Arc<str>,
}

impl fmt::Debug for PostgresConsentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConsentStore")
            .field("schema", &self.schema)
            .field("connections", &self.pool.size())
            .finish()
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresConsentStore {
    /// Connects to `url` (a pool of up to `max_connections`, 5 s acquire timeout and
    /// `statement_timeout`) and migrates the consent tables in `schema`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached; [`StoreError::Corrupt`]
    /// when the consent schema is newer than this library; [`StoreError::Other`] for a bad
    /// URL or schema name, refused credentials or missing privileges.
    pub async fn connect(url: &str, schema: &str, max_connections: u32) -> StoreResult<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Other(Box::new(e)))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET statement_timeout = 5000").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(map)?;
        match Self::from_pool(pool.clone(), schema).await {
            Ok(store) => Ok(store),
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    /// Uses an existing pool (for example `ciam-storage`'s) and migrates the consent tables
    /// in `schema` (1 to 63 bytes, no NUL; used verbatim as a quoted identifier).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn from_pool(pool: PgPool, schema: &str) -> StoreResult<Self> {
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(StoreError::Other("invalid PostgreSQL schema name".into()));
        }
        let store = Self {
            pool,
            quoted: quote(schema).into(),
            schema: schema.into(),
        };
        let mut tx = store.pool.begin().await.map_err(map)?;
        store.migrate(&mut tx).await?;
        tx.commit().await.map_err(map)?;
        Ok(store)
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The pool, for tests and diagnostics; writing through it bypasses the ledger's rules.
    #[doc(hidden)]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `table` qualified with the schema.
    #[doc(hidden)]
    pub fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.quoted)
    }

    async fn migrate(&self, conn: &mut PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(MIGRATE_LOCK)
            .bind(&*self.schema)
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        let q = &self.quoted;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
        )
        .bind(&*self.schema)
        .fetch_one(&mut *conn)
        .await
        .map_err(map)?;
        if !exists {
            conn.execute(format!("CREATE SCHEMA {q}").as_str())
                .await
                .map_err(map)?;
        }
        conn.execute(
            format!(
                "CREATE TABLE IF NOT EXISTS {q}.consent_schema_version (
                     version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
            .as_str(),
        )
        .await
        .map_err(map)?;
        let current: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM {q}.consent_schema_version"
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(map)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "consent schema version {current} is newer than this library's ({SCHEMA_VERSION})"
            )));
        }
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(q.to_string())
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        let now = time_to_db(OffsetDateTime::now_utc());
        for (version, sql) in (1_i64..).zip(MIGRATIONS) {
            if version <= current {
                continue;
            }
            conn.execute(*sql).await.map_err(map)?;
            sqlx::query(&format!(
                "INSERT INTO {q}.consent_schema_version (version, applied_at) VALUES ($1, $2)"
            ))
            .bind(version)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        }
        Ok(())
    }

    async fn lock_appends(&self, conn: &mut PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(APPEND_LOCK)
            .bind(&*self.schema)
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn append_in(
        &self,
        conn: &mut PgConnection,
        body: RecordBody,
    ) -> StoreResult<StoredRecord> {
        self.lock_appends(conn).await?;
        let user = body.user.to_bytes().to_vec();
        let erased: Option<Option<i64>> = sqlx::query_scalar(&format!(
            "SELECT erased_at FROM {} WHERE user_id = $1",
            self.table("consent_keys")
        ))
        .bind(&user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
        if matches!(erased, Some(Some(_))) {
            return Err(StoreError::Conflict("erased"));
        }
        let ledger = self.table("consent_ledger");
        let global = head(
            sqlx::query_as(&format!(
                "SELECT seq, hash FROM {ledger} ORDER BY seq DESC LIMIT 1"
            ))
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?,
        )?;
        let subject = head(
            sqlx::query_as(&format!(
                "SELECT subject_seq, hash FROM {ledger} WHERE user_id = $1 \
                 ORDER BY subject_seq DESC LIMIT 1"
            ))
            .bind(&user)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?,
        )?;
        let stored = StoredRecord::link(body, global, subject);
        let sql = insert_record_sql(&ledger, |i| format!("${i}"));
        bind_record(sqlx::query(&sql), &stored)?
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        sqlx::query(&format!(
            "INSERT INTO {} (record_seq, payload, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4)",
            self.table("consent_outbox")
        ))
        .bind(u64_to_db(stored.seq)?)
        .bind(outbox_payload(&stored)?)
        .bind(time_to_db(stored.body.at))
        .bind(time_to_db(stored.body.at))
        .execute(&mut *conn)
        .await
        .map_err(map)?;
        Ok(stored)
    }
}

#[async_trait]
impl ConsentStore for PostgresConsentStore {
    async fn data_key(&self, user: UserId) -> StoreResult<KeyState> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> = sqlx::query_as(&format!(
            "SELECT wrapped, erased_at FROM {} WHERE user_id = $1",
            self.table("consent_keys")
        ))
        .bind(user.to_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        key_state(row)
    }

    async fn insert_data_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        sqlx::query(&format!(
            "INSERT INTO {} (user_id, wrapped, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
            self.table("consent_keys")
        ))
        .bind(user.to_bytes().to_vec())
        .bind(wrapped)
        .bind(time_to_db(at))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        self.data_key(user).await
    }

    async fn erase_data_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        self.lock_appends(&mut tx).await?;
        let keys = self.table("consent_keys");
        sqlx::query(&format!(
            "INSERT INTO {keys} AS k (user_id, wrapped, created_at, erased_at) \
             VALUES ($1, NULL, $2, $2) \
             ON CONFLICT (user_id) DO UPDATE SET wrapped = NULL, \
             erased_at = COALESCE(k.erased_at, excluded.erased_at)"
        ))
        .bind(user.to_bytes().to_vec())
        .bind(time_to_db(at))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)
    }

    async fn append(&self, body: RecordBody) -> StoreResult<StoredRecord> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let stored = self.append_in(&mut tx, body).await?;
        tx.commit().await.map_err(map)?;
        Ok(stored)
    }

    async fn subject_records(&self, user: UserId) -> StoreResult<Vec<StoredRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM {} WHERE user_id = $1 ORDER BY subject_seq",
            self.table("consent_ledger")
        ))
        .bind(user.to_bytes().to_vec())
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter().map(decode_record).collect()
    }

    async fn records_after(&self, after: u64, limit: usize) -> StoreResult<Vec<StoredRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM {} WHERE seq > $1 ORDER BY seq LIMIT $2",
            self.table("consent_ledger")
        ))
        .bind(u64_to_db(after)?)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter().map(decode_record).collect()
    }

    async fn record(&self, id: RecordId) -> StoreResult<Option<StoredRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM {} WHERE id = $1",
            self.table("consent_ledger")
        ))
        .bind(id.to_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(decode_record).transpose()
    }

    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>> {
        let outbox = self.table("consent_outbox");
        let rows = sqlx::query(&format!(
            "UPDATE {outbox} SET next_attempt_at = $1 WHERE id IN ( \
                 SELECT id FROM {outbox} \
                 WHERE delivered_at IS NULL AND next_attempt_at <= $2 \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, attempts, payload"
        ))
        .bind(time_to_db(lease_until))
        .bind(time_to_db(now))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        let mut items = rows
            .iter()
            .map(decode_outbox)
            .collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn outbox_delivered(&self, id: u64, at: OffsetDateTime) -> StoreResult<()> {
        let done = sqlx::query(&format!(
            "UPDATE {} SET delivered_at = COALESCE(delivered_at, $1) WHERE id = $2",
            self.table("consent_outbox")
        ))
        .bind(time_to_db(at))
        .bind(u64_to_db(id)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn outbox_failed(
        &self,
        id: u64,
        attempts: u32,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "UPDATE {} SET attempts = $1, next_attempt_at = $2, last_error = $3 \
             WHERE id = $4 AND delivered_at IS NULL",
            self.table("consent_outbox")
        ))
        .bind(i64::from(attempts))
        .bind(time_to_db(retry_at))
        .bind(error.chars().take(1000).collect::<String>())
        .bind(u64_to_db(id)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn outbox_undelivered(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {} WHERE delivered_at IS NULL",
            self.table("consent_outbox")
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Compile-time check: `connect` can be spawned onto a multi-threaded runtime.
#[allow(dead_code)]
fn connect_is_send() {
    fn is_send<T: Send>(_: &T) {}
    is_send(&PostgresConsentStore::connect("", "s", 1));
}
