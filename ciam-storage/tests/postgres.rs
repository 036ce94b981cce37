//! Runs the conformance kit against PostgreSQL, plus PostgreSQL-specific tests.
//!
//! Needs a server: set `CIAM_TEST_POSTGRES_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`), or run `scripts/test.sh`, which starts one and
//! sets it. Without it these tests fail rather than skip. Every backend gets a fresh schema
//! with a unique name, so test processes running in parallel do not see each other's data;
//! the schemas are dropped at the end of each test (a schema left behind by a failed test is
//! harmless).
#![cfg(feature = "postgres")]
// Test helpers outside `#[test]` functions stop the test on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ciam_core::id::UserId;
use ciam_core::identifier::Email;
use ciam_core::store::{IdentityStore, StoreError};
use ciam_core::user::User;
use ciam_storage::conformance;
use ciam_storage::postgres::{PostgresBackend, PostgresOptions, SCHEMA_VERSION};
use sqlx::postgres::PgPool;
use time::macros::datetime;

const URL_VAR: &str = "CIAM_TEST_POSTGRES_URL";

/// The server under test; fails the test when it is not configured.
fn url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set: the PostgreSQL tests need a server. Run scripts/test.sh \
             (it starts PostgreSQL and sets the variable), or set {URL_VAR}=postgres://user@host:port/database"
        ),
    }
}

/// A schema name no other test or process uses.
fn unique_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(n);
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "ciam_test_{}_{n}_{:08x}",
        std::process::id(),
        hasher.finish() as u32
    )
}

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::new(url())
        .schema(schema)
        .max_connections(5)
}

/// An administrative pool outside any backend, for setup and clean-up.
async fn admin() -> PgPool {
    let url = url();
    PgPool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {URL_VAR}: {e}"))
}

async fn drop_schemas(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let Ok(pool) = PgPool::connect(&url()).await else {
        return;
    };
    for name in names {
        // Best effort: a leftover schema is harmless.
        let quoted = name.replace('"', "\"\"");
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{quoted}\" CASCADE"))
            .execute(&pool)
            .await;
    }
    pool.close().await;
}

/// Makes backends on fresh schemas and drops those schemas at the end.
struct Schemas {
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new() -> Self {
        Self {
            names: Mutex::new(Vec::new()),
        }
    }

    fn name(&self) -> String {
        let name = unique_schema();
        self.names.lock().unwrap().push(name.clone());
        name
    }

    fn make(&self) -> impl Future<Output = PostgresBackend> + use<> {
        let options = options(&self.name());
        async move {
            PostgresBackend::connect_with(options)
                .await
                .unwrap_or_else(|e| panic!("connect to PostgreSQL at {URL_VAR}: {e:?}"))
        }
    }

    async fn drop_all(self) {
        let names = self.names.into_inner().unwrap_or_default();
        drop_schemas(&names).await;
    }
}

macro_rules! conformance_tests {
    ($($name:ident => $runner:path),* $(,)?) => {
        mod conformance_kit {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let schemas = Schemas::new();
                    $runner(|| schemas.make()).await;
                    schemas.drop_all().await;
                }
            )*
        }
    };
}

conformance_tests! {
    identity => conformance::run_identity,
    credentials => conformance::run_credentials,
    sessions => conformance::run_sessions,
    challenges => conformance::run_challenges,
    audit => conformance::run_audit,
    counters => conformance::run_counters,
    all => conformance::run_all,
}

fn account(address: &str) -> User {
    let mut u = User::new(
        UserId::from_bytes([42; 16]),
        datetime!(2026-01-02 03:04:05.678_901_234 UTC),
    );
    u.email = Some(Email::parse(address).unwrap());
    u
}

async fn versions(pool: &PgPool, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "SELECT version FROM \"{schema}\".ciam_schema_version ORDER BY version"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_data_survives() {
    let schemas = Schemas::new();
    let schema = schemas.name();
    let u = account("reopen@example.com");
    {
        let backend = PostgresBackend::connect_with(options(&schema))
            .await
            .unwrap();
        assert_eq!(backend.schema(), schema);
        backend.create_user(&u, &[]).await.unwrap();
        backend.close().await;
    }
    for _ in 0..2 {
        let backend = PostgresBackend::connect_with(options(&schema))
            .await
            .expect("reconnecting migrates nothing");
        assert_eq!(
            backend.user_by_id(u.id).await.unwrap(),
            Some(u.clone()),
            "data survives reconnecting"
        );
        assert_eq!(
            versions(backend.pool(), &schema).await,
            (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
            "each migration is applied once"
        );
        let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(
            timeout, "5s",
            "the default statement timeout is set on connect"
        );
        backend.close().await;
    }
    let r = backend_after_close(&schema).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
    schemas.drop_all().await;
}

/// A call on a closed backend.
async fn backend_after_close(schema: &str) -> Result<Option<User>, StoreError> {
    let backend = PostgresBackend::connect_with(options(schema))
        .await
        .unwrap();
    backend.close().await;
    backend.user_by_id(UserId::from_bytes([1; 16])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_of_a_new_schema_both_succeed() {
    let schemas = Schemas::new();
    for _ in 0..3 {
        let schema = schemas.name();
        let tasks: Vec<_> = (0..4)
            .map(|_| tokio::spawn(PostgresBackend::connect_with(options(&schema))))
            .collect();
        let mut backends = Vec::new();
        for task in tasks {
            backends.push(
                task.await
                    .unwrap()
                    .expect("every instance starting at once connects"),
            );
        }
        assert_eq!(
            versions(backends[0].pool(), &schema).await,
            (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
            "the migrations ran once"
        );
        backends[0]
            .create_user(&account("race@example.com"), &[])
            .await
            .unwrap();
        assert!(
            backends[3]
                .user_by_id(UserId::from_bytes([42; 16]))
                .await
                .unwrap()
                .is_some()
        );
        for b in backends {
            b.close().await;
        }
    }
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused() {
    let schemas = Schemas::new();
    let schema = schemas.name();
    let backend = PostgresBackend::connect_with(options(&schema))
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".ciam_schema_version (version, applied_at) VALUES ($1, 0)"
    ))
    .bind(SCHEMA_VERSION + 1)
    .execute(backend.pool())
    .await
    .unwrap();
    backend.close().await;
    let r = PostgresBackend::connect_with(options(&schema)).await;
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "a newer schema must be refused, got {r:?}"
    );
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_unavailable_quickly() {
    // Like every test here, refuse to pass when the suite is not configured.
    let _ = url();
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        PostgresBackend::connect_with(
            PostgresOptions::new("postgres://postgres@127.0.0.1:1/test")
                .acquire_timeout(Duration::from_secs(1)),
        ),
    )
    .await
    .expect("connecting to a closed port must not hang");
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "an unreachable server must give Unavailable, got {r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by the acquire timeout, took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_is_unavailable() {
    let schemas = Schemas::new();
    let schema = schemas.name();
    let backend = PostgresBackend::connect_with(
        options(&schema).statement_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let u = account("slow@example.com");
    backend.create_user(&u, &[]).await.unwrap();
    let admin = admin().await;
    let mut tx = admin.begin().await.unwrap();
    sqlx::raw_sql(&format!(
        "LOCK TABLE \"{schema}\".users IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *tx)
    .await
    .unwrap();
    let started = Instant::now();
    let r = backend.user_by_id(u.id).await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "a statement cancelled by statement_timeout must give Unavailable, got {r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        backend.user_by_id(u.id).await.unwrap(),
        Some(u),
        "works once the lock is released"
    );
    backend.close().await;
    admin.close().await;
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_give_corrupt_errors() {
    let schemas = Schemas::new();
    let schema = schemas.name();
    let backend = PostgresBackend::connect_with(options(&schema))
        .await
        .unwrap();
    let u = account("corrupt@example.com");
    backend.create_user(&u, &[]).await.unwrap();
    let email = Email::parse("corrupt@example.com").unwrap();
    for (set, what) in [
        ("status = 'zombie'", "unknown status"),
        ("profile = 'not json'", "malformed profile JSON"),
        ("profile = '[1, 2]'", "profile that is not an object"),
        ("email = 'no-at-sign'", "malformed e-mail"),
        ("version = -1", "negative version"),
        ("region = '!!'", "malformed region"),
        ("tenant_id = '\\x0102'::bytea", "short tenant id"),
        ("phone = 'not a phone'", "malformed phone"),
    ] {
        sqlx::raw_sql(&format!("UPDATE \"{schema}\".users SET {set}"))
            .execute(backend.pool())
            .await
            .unwrap();
        let r = backend.user_by_email(&email).await;
        assert!(
            matches!(r, Err(StoreError::Corrupt(_))),
            "{what} must give Corrupt, got {r:?}"
        );
        let r = backend.user_by_id(u.id).await;
        assert!(
            matches!(r, Err(StoreError::Corrupt(_))),
            "{what} must give Corrupt by id too, got {r:?}"
        );
        // Restore the row for the next case.
        sqlx::raw_sql(&format!("DELETE FROM \"{schema}\".users"))
            .execute(backend.pool())
            .await
            .unwrap();
        backend.create_user(&u, &[]).await.unwrap();
    }
    backend.close().await;
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_schema_is_the_connections_current_schema() {
    let schemas = Schemas::new();
    let schema = schemas.name();
    let admin = admin().await;
    sqlx::raw_sql(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await
        .unwrap();
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let backend =
        PostgresBackend::connect(&format!("{base}{sep}options=-c%20search_path%3D{schema}"))
            .await
            .unwrap();
    assert_eq!(backend.schema(), schema);
    assert_eq!(
        versions(&admin, &schema).await,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    backend.close().await;
    admin.close().await;
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_schema_names_are_quoted_and_bad_ones_refused() {
    let schemas = Schemas::new();
    let odd = format!("{} \"Odd\"; --", schemas.name());
    schemas.names.lock().unwrap().push(odd.clone());
    let backend = PostgresBackend::connect_with(options(&odd)).await.unwrap();
    let u = account("odd@example.com");
    backend.create_user(&u, &[]).await.unwrap();
    assert_eq!(backend.user_by_id(u.id).await.unwrap(), Some(u));
    backend.close().await;
    for bad in ["", &"x".repeat(64), "nul\0name"] {
        let r = PostgresBackend::connect_with(options(bad)).await;
        assert!(matches!(r, Err(StoreError::Other(_))), "{bad:?}: got {r:?}");
    }
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_hides_the_password() {
    let options = PostgresOptions::new("postgres://ciam:hunter2@db.invalid/app");
    let shown = format!("{options:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let schemas = Schemas::new();
    let backend = schemas.make().await;
    let shown = format!("{backend:?}");
    assert!(shown.contains("PostgresBackend"), "{shown}");
    backend.close().await;
    schemas.drop_all().await;
}
