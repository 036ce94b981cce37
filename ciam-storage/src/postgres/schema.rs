//! Embedded, forward-only schema migrations, applied under an advisory lock.

use ciam_core::store::StoreError;
use sqlx::postgres::PgPool;
use sqlx::{Executor, PgConnection, Postgres, Transaction};

use super::{codec, error, quote_identifier};

/// The migrations, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_rate_counters.sql"),
    include_str!("../../migrations/postgres/0003_credential_lookup.sql"),
    include_str!("../../migrations/postgres/0004_privacy.sql"),
];

/// The schema version this library writes (the number of embedded migrations). A database
/// recording a higher version is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// First key of the two-key advisory lock ("ciam" in ASCII); the second is a hash of the
/// schema name, so backends on different schemas do not wait for each other.
const LOCK_CLASS: i32 = 0x6369_616d;

/// Creates `schema` if missing and brings it up to [`SCHEMA_VERSION`], all in one transaction
/// holding a transaction-scoped advisory lock for the schema.
/// It stops at version `target` (at most [`SCHEMA_VERSION`]); older targets are for tests
/// that play an older library.
pub(super) async fn migrate_to(pool: &PgPool, schema: &str, target: i64) -> Result<(), StoreError> {
    // A transaction dropped on an early return is rolled back, releasing the lock.
    let mut tx: Transaction<'_, Postgres> = pool.begin().await.map_err(error::map)?;
    apply(&mut tx, schema, target).await?;
    tx.commit().await.map_err(error::map)
}

async fn apply(conn: &mut PgConnection, schema: &str, target: i64) -> Result<(), StoreError> {
    // Taken before anything else: even `CREATE SCHEMA IF NOT EXISTS` races with itself.
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_CLASS)
        .bind(schema)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    let quoted = quote_identifier(schema);
    // Checked first so that an existing schema needs no CREATE privilege on the database.
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(error::map)?;
    if !exists {
        tracing::info!(schema, "creating ciam schema");
        conn.execute(format!("CREATE SCHEMA {quoted}").as_str())
            .await
            .map_err(error::map)?;
    }
    conn.execute(
        format!(
            "CREATE TABLE IF NOT EXISTS {quoted}.ciam_schema_version (
                 version    BIGINT NOT NULL PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )"
        )
        .as_str(),
    )
    .await
    .map_err(error::map)?;
    let current: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(version), 0)::bigint FROM {quoted}.ciam_schema_version"
    ))
    .fetch_one(&mut *conn)
    .await
    .map_err(error::map)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this library's ({SCHEMA_VERSION})"
        )));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    // Migration files use unqualified names; this transaction resolves them in the schema.
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(&quoted)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    let now = codec::time_to_db(time::OffsetDateTime::now_utc())?;
    for (version, sql) in (1_i64..).zip(MIGRATIONS) {
        if version <= current {
            continue;
        }
        if version > target {
            break;
        }
        tracing::info!(version, schema, "applying ciam schema migration");
        conn.execute(*sql).await.map_err(error::map)?;
        sqlx::query(&format!(
            "INSERT INTO {quoted}.ciam_schema_version (version, applied_at) VALUES ($1, $2)"
        ))
        .bind(version)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    }
    Ok(())
}
