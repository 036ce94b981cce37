//! The PostgreSQL backend.
//!
//! [`PostgresBackend`] stores identities, credentials, sessions, one-time challenges, the
//! audit log and rate-limit counters in one PostgreSQL schema through an `sqlx` connection
//! pool. It implements all six storage traits, so it is a [`Backend`](ciam_core::store::Backend), and passes the
//! conformance kit.
//!
//! ```no_run
//! # async fn open() -> Result<(), ciam_core::store::StoreError> {
//! use std::time::Duration;
//! use ciam_storage::postgres::{PostgresBackend, PostgresOptions};
//!
//! // Tables in the connection's current schema (normally `public`), default settings:
//! let backend = PostgresBackend::connect("postgres://ciam@db.internal/app").await?;
//!
//! // Or in a schema of its own, created if missing, with tuned limits:
//! let backend = PostgresBackend::connect_with(
//!     PostgresOptions::new("postgres://ciam@db.internal/app")
//!         .schema("ciam")
//!         .max_connections(20)
//!         .acquire_timeout(Duration::from_secs(2))
//!         .statement_timeout(Duration::from_secs(3)),
//! )
//! .await?;
//! # backend.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What is stored where
//!
//! Every table lives in the backend's schema ([`PostgresOptions::schema`], or the connection's
//! current schema when none is given) and every statement names it explicitly
//! (`"schema".users`), so the backend does not depend on the session's `search_path` and works
//! behind poolers that do not keep session state.
//!
//! - `users`: one row per account, with the display and canonical forms of the e-mail and
//!   username (partial unique indexes on the canonical forms and on the phone number), status,
//!   verification times, profile attributes as JSON text, region, tenant and version;
//! - `credentials`: password hashes (PHC strings) with their own version, indexed by
//!   `(user_id, kind, created_at)`;
//! - `sessions`: session records, unique on the SHA-256 of the token, indexed by
//!   `(user_id, created_at)` and by each expiry time (for purging);
//! - `challenges`: one-time challenges keyed by the hash of their secret, indexed by
//!   `(user_id, purpose, created_at)`;
//! - `audit`: the append-only audit log with an identity `seq` that orders entries written at
//!   the same instant, indexed by `(user_id, at DESC, seq DESC)` and `(at DESC, seq DESC)`;
//! - `ciam_schema_version`: one row per applied migration.
//!
//! Ids are `BYTEA` of 16 bytes and hashes `BYTEA` of 32; times are `BIGINT` Unix nanoseconds
//! (a `TIMESTAMPTZ` keeps only microseconds, and every record must read back equal to what was
//! written); enums are their stable text forms; JSON values (profile, payloads, audit detail)
//! are `TEXT` holding exactly the serialised JSON (`JSONB` would rewrite some numbers, for
//! example the float `1e15` into the integer `1000000000000000`, and refuses `\u0000`).
//!
//! # Options
//!
//! | [`PostgresOptions`] method | Default | Meaning |
//! |---|---|---|
//! | [`new(url)`](PostgresOptions::new) | (required) | `postgres://user:password@host:port/database?sslmode=…` |
//! | [`schema`](PostgresOptions::schema) | the connection's current schema | schema holding every table, created if missing |
//! | [`max_connections`](PostgresOptions::max_connections) | 10 | pool size |
//! | [`acquire_timeout`](PostgresOptions::acquire_timeout) | 5 s | how long a call (or `connect`) waits for a connection before [`StoreError::Unavailable`] |
//! | [`statement_timeout`](PostgresOptions::statement_timeout) | 5 s | `statement_timeout` set on every new connection; a longer statement is cancelled and gives [`StoreError::Unavailable`] |
//!
//! # Migrations and locking
//!
//! Migrations are SQL files (`migrations/postgres/0001_initial.sql`, …) compiled into the
//! binary, forward-only, applied on connect in one transaction:
//!
//! 1. `pg_advisory_xact_lock` on a key derived from the schema name, so two application
//!    instances starting at once against the same schema take turns (the second one then
//!    finds nothing to do); the lock is released when the transaction ends, even if the
//!    process dies;
//! 2. the schema is created if it does not exist;
//! 3. `ciam_schema_version` is created if missing and read; a database whose version is newer
//!    than [`SCHEMA_VERSION`] is refused with [`StoreError::Corrupt`] (an older library must
//!    not write a newer schema);
//! 4. each missing migration runs (with `SET LOCAL search_path` to the schema) and records
//!    its version; then the transaction commits. A failing migration leaves the database as
//!    it was (PostgreSQL DDL is transactional).
//!
//! # Concurrency
//!
//! Every rule that must hold under concurrency is left to the database: uniqueness by unique
//! indexes, atomic account creation by one transaction, optimistic concurrency by
//! `UPDATE … WHERE id = $1 AND version = $2` (a miss is then told apart as
//! [`StoreError::NotFound`] or [`StoreError::VersionConflict`]), and one-time challenge
//! consumption by a single `DELETE … RETURNING`. Statements run at `READ COMMITTED`. An
//! operation that PostgreSQL aborts with a serialization failure (`40001`) or a deadlock
//! (`40P01`) was rolled back entirely, so it is retried (three attempts in all) before the
//! error is returned.
//!
//! # Errors
//!
//! | PostgreSQL / `sqlx` condition | [`StoreError`] |
//! |---|---|
//! | `23505` unique violation | `Conflict("email" / "username" / "phone" / "user" / "credential" / "session" / "challenge" / "audit")`, by constraint name |
//! | `23503` foreign-key violation (the owning account does not exist) | `NotFound` |
//! | `40001` serialization failure, `40P01` deadlock (after the retries) | `Unavailable` |
//! | `57014` statement timeout / cancel, `57P01`–`57P05` shutdown, `55P03` lock not available, `25006` read-only (standby), class `08` connection exceptions, class `53` insufficient resources | `Unavailable` |
//! | I/O, TLS and protocol errors, pool timeout, closed pool | `Unavailable` |
//! | a value that does not decode (wrong type, wrong length, unknown enum text, malformed JSON, e-mail, region…), `XX001`/`XX002` | `Corrupt` |
//! | a schema version newer than this library | `Corrupt` |
//! | anything else (bad URL, permissions, invalid text…) | `Other` |
//!
//! No call panics on bad data.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ciam_core::store::StoreError;
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

mod audit;
mod challenges;
mod codec;
mod counters;
mod directory;
mod error;
mod identity;
mod schema;
mod sessions;

pub use directory::PostgresDirectory;
pub use schema::SCHEMA_VERSION;

/// Default pool size.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// Default wait for a pooled connection.
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `statement_timeout`.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL truncates longer identifiers (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// How to reach and lay out the PostgreSQL database of a [`PostgresBackend`].
///
/// Built with [`PostgresOptions::new`] and the setter methods; see the
/// [module documentation](self#options) for the defaults. Its `Debug` output hides the
/// password.
#[derive(Clone)]
pub struct PostgresOptions {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    migrate_to: i64,
}

impl PostgresOptions {
    /// Options for the database at `url` (`postgres://user:password@host:port/database`, with
    /// any query parameters `sqlx` accepts, such as `sslmode`), with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            migrate_to: SCHEMA_VERSION,
        }
    }

    /// Migrates only up to schema `version`, as an older release of this library would. For
    /// migration tests; applications leave it at the current version.
    #[doc(hidden)]
    pub fn migrate_to_version(mut self, version: i64) -> Self {
        self.migrate_to = version;
        self
    }

    /// Keeps every table in schema `name` (created on connect if missing) instead of the
    /// connection's current schema. Any name PostgreSQL accepts as a quoted identifier works
    /// (at most 63 bytes, no NUL); it is used verbatim, so it is case-sensitive.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// The most connections the pool opens (default 10; at least 1).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a call waits for a free connection, and `connect` for the server, before
    /// failing with [`StoreError::Unavailable`] (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The `statement_timeout` of every connection (default 5 s): a statement running longer
    /// is cancelled by the server and gives [`StoreError::Unavailable`]. Zero disables it.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// A storage backend on a PostgreSQL database. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    /// The schema name, unquoted.
    schema: Arc<str>,
    /// The schema as a quoted identifier, prefixed to every table name.
    quoted: Arc<str>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("schema", &self.schema)
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish()
    }
}

impl PostgresBackend {
    /// Connects to the database at `url` with default [`PostgresOptions`] (tables in the
    /// connection's current schema) and migrates it to the current schema version.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached within the acquire
    /// timeout; [`StoreError::Corrupt`] when the database's schema is newer than this
    /// library; [`StoreError::Other`] for a malformed URL, refused credentials or missing
    /// privileges.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects with `options`, creates the schema if missing and migrates it to the current
    /// version (see the [module documentation](self#migrations-and-locking)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); also [`StoreError::Other`] for an invalid schema name.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let connect_options =
            PgConnectOptions::from_str(&options.url).map_err(|e| StoreError::Other(Box::new(e)))?;
        let connect_options = if connect_options.get_application_name().is_none() {
            connect_options.application_name("ciam")
        } else {
            connect_options
        };
        if let Some(name) = &options.schema {
            validate_schema_name(name)?;
        }
        // PostgreSQL's limit for the setting is `INT_MAX` milliseconds.
        let timeout_ms = options.statement_timeout.as_millis().min(i32::MAX as u128);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(format!("SET statement_timeout = {timeout_ms}").as_str())
                        .await?;
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(error::map)?;
        let schema = match options.schema {
            Some(name) => name,
            None => match current_schema(&pool).await {
                Ok(name) => name,
                Err(e) => {
                    pool.close().await;
                    return Err(e);
                }
            },
        };
        if let Err(e) = schema::migrate_to(&pool, &schema, options.migrate_to).await {
            pool.close().await;
            return Err(e);
        }
        tracing::debug!(url = %redact(&options.url), schema, "postgres backend ready");
        Ok(Self {
            pool,
            quoted: quote_identifier(&schema).into(),
            schema: schema.into(),
        })
    }

    /// The schema holding this backend's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool, for tests, benchmarks and diagnostics. Writing through it bypasses
    /// the rules this backend enforces. Its connections do not have `search_path` set to
    /// [`schema`](Self::schema).
    #[doc(hidden)]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every pooled connection, waiting for calls in progress to finish. Later calls
    /// fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `table` qualified with this backend's schema, for building SQL.
    fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.quoted)
    }
}

/// The connection's current schema (the first existing schema on its `search_path`).
async fn current_schema(pool: &PgPool) -> Result<String, StoreError> {
    let name: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(pool)
        .await
        .map_err(error::map)?;
    name.ok_or_else(|| {
        StoreError::Other(
            "the connection has no current schema (search_path names no existing schema); \
             set PostgresOptions::schema"
                .into(),
        )
    })
}

fn validate_schema_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_IDENTIFIER_BYTES || name.contains('\0') {
        return Err(StoreError::Other(
            format!(
                "invalid PostgreSQL schema name {name:?}: it must be 1 to {MAX_IDENTIFIER_BYTES} bytes without NUL"
            )
            .into(),
        ));
    }
    Ok(())
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The URL with any password replaced, for logs and `Debug`.
fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..])
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

/// Compile-time check: `connect_with` can be spawned onto a multi-threaded runtime (a query
/// helper taking `&mut PgConnection` can silently make the future `!Send`).
#[allow(dead_code)]
fn connect_is_send() {
    fn is_send<T: Send>(_: &T) {}
    is_send(&PostgresBackend::connect_with(PostgresOptions::new("")));
}

#[cfg(test)]
mod tests {
    use super::{PostgresOptions, quote_identifier, redact};

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=require&password=x"),
            "postgres://u:***@h:5432/db?sslmode=require&password=***"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        let shown = format!("{:?}", PostgresOptions::new("postgres://u:hunter2@h/db"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("ciam"), "\"ciam\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
