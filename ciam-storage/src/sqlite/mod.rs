//! The SQLite backend.
//!
//! [`SqliteBackend`] stores everything in one SQLite database through an `sqlx` connection
//! pool. The database runs in WAL mode (readers do not block the writer) with foreign keys on,
//! `synchronous = NORMAL` (durable across application crashes; the last transactions may be
//! lost on power failure, the usual WAL trade-off) and a 5 second busy timeout. The schema is
//! migrated forward on connect.
//!
//! Every rule that must hold under concurrency is left to the database: uniqueness by unique
//! indexes, optimistic concurrency by `UPDATE … WHERE version = ?`, and one-time challenge
//! consumption by a single `DELETE … RETURNING`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ciam_core::store::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod audit;
mod challenges;
mod codec;
mod counters;
mod error;
mod identity;
mod schema;
mod sessions;

pub use schema::SCHEMA_VERSION;

/// How long a statement waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pool size for file databases. SQLite has one writer at a time; more connections only help
/// concurrent readers, which WAL lets proceed alongside the writer.
const MAX_CONNECTIONS: u32 = 8;

/// A storage backend on an SQLite database. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (creating if missing) the database at `url` and migrates it to the current schema.
    ///
    /// `url` is `sqlite://path/to/file.db` (query parameters such as `?mode=rwc` are honoured),
    /// a plain file path, or `sqlite::memory:` for a private in-memory database that lives as
    /// long as the backend (it uses a single connection so every call sees the same data).
    ///
    /// Fails with [`StoreError::Unavailable`] when the file cannot be opened or is locked,
    /// [`StoreError::Corrupt`] when it is not an SQLite database or its schema is newer than
    /// this library, and [`StoreError::Other`] for a malformed URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_at_version(url, SCHEMA_VERSION).await
    }

    /// Opens the database migrating it only up to schema `version`, as an older release of
    /// this library would. For migration tests; applications use [`SqliteBackend::connect`].
    #[doc(hidden)]
    pub async fn connect_at_version(url: &str, version: i64) -> Result<Self, StoreError> {
        let (options, in_memory) = parse_url(url)?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        let pool_options = if in_memory {
            // An in-memory database disappears with its last connection, and separate
            // connections would each see their own; one connection kept forever avoids both.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(error::map)?;
        schema::migrate_to(&pool, version).await?;
        tracing::debug!(url = %redact(url), "sqlite backend ready");
        Ok(Self { pool })
    }

    /// The connection pool, for benchmarks and diagnostics. Writing through it bypasses the
    /// rules this backend enforces.
    #[doc(hidden)]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every pooled connection, waiting for calls in progress to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Splits `url` into connect options and whether the database is in memory.
fn parse_url(url: &str) -> Result<(SqliteConnectOptions, bool), StoreError> {
    if url.starts_with("sqlite:") {
        let options =
            SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Other(Box::new(e)))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Ok((options, in_memory))
    } else if url.is_empty() {
        Err(StoreError::Other("empty SQLite database path".into()))
    } else {
        Ok((SqliteConnectOptions::new().filename(url), false))
    }
}

/// The URL without its query string, which could carry credentials for other VFSes.
fn redact(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}
