//! Embedded, forward-only schema migrations.
//!
//! Each migration is an SQL file compiled into the binary. On connect, the ones newer than the
//! version recorded in `ciam_schema_version` run in order inside one `BEGIN IMMEDIATE`
//! transaction, so two processes opening the same file at once cannot both apply them, and a
//! failed migration leaves the database as it was.

use ciam_core::store::StoreError;
use sqlx::SqlitePool;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::Sqlite;

use super::codec;
use super::error;

/// The migrations, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_rate_counters.sql"),
    include_str!("../../migrations/0003_credential_lookup.sql"),
    include_str!("../../migrations/0004_privacy.sql"),
];

/// The schema version this library writes (the number of embedded migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database at `pool` up to [`SCHEMA_VERSION`].
/// It stops at version `target` (at most [`SCHEMA_VERSION`]); older targets are for tests
/// that play an older library.
pub(super) async fn migrate_to(pool: &SqlitePool, target: i64) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(error::map)?;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    match apply(&mut conn, target).await {
        Ok(()) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => Err(abandon(conn, error::map(e)).await),
        },
        Err(e) => Err(abandon(conn, e).await),
    }
}

/// Rolls back and discards the connection, so no half-open transaction returns to the pool.
async fn abandon(mut conn: PoolConnection<Sqlite>, err: StoreError) -> StoreError {
    if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        tracing::warn!(error = %rollback, "rollback of a failed migration failed");
    }
    conn.close_on_drop();
    err
}

async fn apply(conn: &mut PoolConnection<Sqlite>, target: i64) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ciam_schema_version (
             version    INTEGER NOT NULL PRIMARY KEY,
             applied_at INTEGER NOT NULL
         ) STRICT",
    )
    .execute(&mut **conn)
    .await
    .map_err(error::map)?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM ciam_schema_version")
            .fetch_one(&mut **conn)
            .await
            .map_err(error::map)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this library's ({SCHEMA_VERSION})"
        )));
    }
    let now = codec::time_to_db(time::OffsetDateTime::now_utc())?;
    for (version, sql) in (1_i64..).zip(MIGRATIONS) {
        if version <= current {
            continue;
        }
        if version > target {
            break;
        }
        tracing::info!(version, "applying ciam schema migration");
        sqlx::raw_sql(sql)
            .execute(&mut **conn)
            .await
            .map_err(error::map)?;
        sqlx::query("INSERT INTO ciam_schema_version (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(now)
            .execute(&mut **conn)
            .await
            .map_err(error::map)?;
    }
    Ok(())
}
