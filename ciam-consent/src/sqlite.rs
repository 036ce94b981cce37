//! The SQLite consent store.
//!
//! [`SqliteConsentStore`] keeps the ledger, the data keys and the outbox in one SQLite
//! database (WAL, foreign keys, 5 s busy timeout, `secure_delete` so an erased key's bytes
//! are overwritten on disk rather than left in free pages). Migrations
//! (`migrations/sqlite/*.sql`) are embedded and applied on connect inside `BEGIN IMMEDIATE`;
//! the applied version is kept in `consent_schema_version`. Every append is one
//! `BEGIN IMMEDIATE` transaction (SQLite's single writer serialises them): tombstone check,
//! both heads, the record and its outbox row.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::id::UserId;
use ciam_core::store::{StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

use crate::chain::{RecordBody, RecordId, StoredRecord};
use crate::sql::{
    RECORD_COLUMNS, bind_record, decode_outbox, decode_record, head, insert_record_sql, key_state,
    map, outbox_payload, time_to_db, u64_to_db,
};
use crate::store::{ConsentStore, KeyState, OutboxItem};

/// The migrations, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_ledger.sql")];

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A consent store on an SQLite database. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct SqliteConsentStore {
    pool: SqlitePool,
}

impl fmt::Debug for SqliteConsentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConsentStore")
            .field("connections", &self.pool.size())
            .finish()
    }
}

impl SqliteConsentStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path?mode=rwc`, a plain
    /// path, or `sqlite::memory:` for a private in-memory database) and migrates it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the file cannot be opened or is locked;
    /// [`StoreError::Corrupt`] when its consent schema is newer than this library;
    /// [`StoreError::Other`] for a malformed URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let (options, in_memory) = if url.starts_with("sqlite:") {
            let options =
                SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Other(Box::new(e)))?;
            (
                options,
                url.contains(":memory:") || url.contains("mode=memory"),
            )
        } else if url.is_empty() {
            return Err(StoreError::Other("empty SQLite database path".into()));
        } else {
            (SqliteConnectOptions::new().filename(url), false)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .synchronous(SqliteSynchronous::Normal)
            .pragma("secure_delete", "ON");
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(map)?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (for example one shared with `ciam-storage`) and migrates the
    /// consent tables.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn from_pool(pool: SqlitePool) -> StoreResult<Self> {
        let store = Self { pool };
        let mut conn = store.begin_immediate().await?;
        let result = migrate(&mut conn).await;
        finish(conn, result).await?;
        Ok(store)
    }

    /// The pool, for tests and diagnostics; writing through it bypasses the ledger's rules.
    #[doc(hidden)]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A pooled connection inside `BEGIN IMMEDIATE` (SQLite's one writer at a time).
    async fn begin_immediate(&self) -> StoreResult<PoolConnection<Sqlite>> {
        let mut conn = self.pool.acquire().await.map_err(map)?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(map)?;
        Ok(conn)
    }
}

/// Commits when `result` is `Ok`; otherwise (or when the commit fails) rolls back and
/// discards the connection, so no half-open transaction returns to the pool.
async fn finish<T>(mut conn: PoolConnection<Sqlite>, result: StoreResult<T>) -> StoreResult<T> {
    let result = match result {
        Ok(v) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => return Ok(v),
            Err(e) => Err(map(e)),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::warn!(error = %e, "consent store rollback failed");
    }
    conn.close_on_drop();
    result
}

async fn migrate(conn: &mut SqliteConnection) -> StoreResult<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS consent_schema_version (
             version    INTEGER NOT NULL PRIMARY KEY,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM consent_schema_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(map)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "consent schema version {current} is newer than this library's ({SCHEMA_VERSION})"
        )));
    }
    let now = time_to_db(OffsetDateTime::now_utc());
    for version in (current + 1)..=SCHEMA_VERSION {
        let index = usize::try_from(version - 1).unwrap_or(usize::MAX);
        let Some(&sql) = MIGRATIONS.get(index) else {
            break;
        };
        sqlx::Executor::execute(&mut *conn, sql)
            .await
            .map_err(map)?;
        sqlx::query("INSERT INTO consent_schema_version (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(map)?;
    }
    Ok(())
}

async fn append_in(conn: &mut SqliteConnection, body: RecordBody) -> StoreResult<StoredRecord> {
    let user = body.user.to_bytes().to_vec();
    let erased: Option<Option<i64>> =
        sqlx::query_scalar("SELECT erased_at FROM consent_keys WHERE user_id = ?")
            .bind(&user)
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?;
    if matches!(erased, Some(Some(_))) {
        return Err(StoreError::Conflict("erased"));
    }
    let global = head(
        sqlx::query_as("SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(map)?,
    )?;
    let subject = head(
        sqlx::query_as(
            "SELECT subject_seq, hash FROM consent_ledger WHERE user_id = ? \
             ORDER BY subject_seq DESC LIMIT 1",
        )
        .bind(&user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?,
    )?;
    let stored = StoredRecord::link(body, global, subject);
    let sql = insert_record_sql("consent_ledger", |_| "?".to_owned());
    bind_record(sqlx::query(&sql), &stored)?
        .execute(&mut *conn)
        .await
        .map_err(map)?;
    sqlx::query(
        "INSERT INTO consent_outbox (record_seq, payload, created_at, next_attempt_at) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(u64_to_db(stored.seq)?)
    .bind(outbox_payload(&stored)?)
    .bind(time_to_db(stored.body.at))
    .bind(time_to_db(stored.body.at))
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    Ok(stored)
}

#[async_trait]
impl ConsentStore for SqliteConsentStore {
    async fn data_key(&self, user: UserId) -> StoreResult<KeyState> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> =
            sqlx::query_as("SELECT wrapped, erased_at FROM consent_keys WHERE user_id = ?")
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
        sqlx::query(
            "INSERT INTO consent_keys (user_id, wrapped, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user.to_bytes().to_vec())
        .bind(wrapped)
        .bind(time_to_db(at))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        self.data_key(user).await
    }

    async fn erase_data_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consent_keys (user_id, wrapped, created_at, erased_at) \
             VALUES (?1, NULL, ?2, ?2) \
             ON CONFLICT (user_id) DO UPDATE SET wrapped = NULL, \
             erased_at = COALESCE(consent_keys.erased_at, excluded.erased_at)",
        )
        .bind(user.to_bytes().to_vec())
        .bind(time_to_db(at))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn append(&self, body: RecordBody) -> StoreResult<StoredRecord> {
        let mut conn = self.begin_immediate().await?;
        let result = append_in(&mut conn, body).await;
        finish(conn, result).await
    }

    async fn subject_records(&self, user: UserId) -> StoreResult<Vec<StoredRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM consent_ledger WHERE user_id = ? ORDER BY subject_seq"
        ))
        .bind(user.to_bytes().to_vec())
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter().map(decode_record).collect()
    }

    async fn records_after(&self, after: u64, limit: usize) -> StoreResult<Vec<StoredRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM consent_ledger WHERE seq > ? ORDER BY seq LIMIT ?"
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
            "SELECT {RECORD_COLUMNS} FROM consent_ledger WHERE id = ?"
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
        let rows = sqlx::query(
            "UPDATE consent_outbox SET next_attempt_at = ? WHERE id IN ( \
                 SELECT id FROM consent_outbox \
                 WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?) \
             RETURNING id, attempts, payload",
        )
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
        let done = sqlx::query(
            "UPDATE consent_outbox SET delivered_at = COALESCE(delivered_at, ?) WHERE id = ?",
        )
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
        sqlx::query(
            "UPDATE consent_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? \
             WHERE id = ? AND delivered_at IS NULL",
        )
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
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM consent_outbox WHERE delivered_at IS NULL")
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
    is_send(&SqliteConsentStore::connect(""));
}
