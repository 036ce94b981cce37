//! Runs the conformance kit against every backend of this crate, plus SQLite-specific tests.

// Test helpers outside `#[test]` functions stop the test on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ciam_core::id::UserId;
use ciam_core::identifier::Email;
use ciam_core::store::{IdentityStore, StoreError};
use ciam_core::user::User;
use ciam_storage::conformance;
use ciam_storage::memory::MemoryBackend;
use ciam_storage::sqlite::{SCHEMA_VERSION, SqliteBackend};
use time::macros::datetime;

async fn memory() -> MemoryBackend {
    MemoryBackend::new()
}

async fn sqlite_in_memory() -> SqliteBackend {
    SqliteBackend::connect("sqlite::memory:")
        .await
        .expect("connect to sqlite::memory:")
}

/// Makes a fresh database file per check inside `dir`, alternating URL and plain-path forms.
struct Files {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            next: AtomicUsize::new(0),
        }
    }

    fn make(&self) -> impl Future<Output = SqliteBackend> + use<> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("ciam-{n}.db"));
        let url = if n.is_multiple_of(2) {
            format!("sqlite://{}?mode=rwc", path.display())
        } else {
            path.display().to_string()
        };
        async move {
            SqliteBackend::connect(&url)
                .await
                .expect("connect to a new database file")
        }
    }
}

macro_rules! conformance_suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn identity() {
                let make = $make;
                conformance::run_identity(|| make()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn credentials() {
                let make = $make;
                conformance::run_credentials(|| make()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sessions() {
                let make = $make;
                conformance::run_sessions(|| make()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn challenges() {
                let make = $make;
                conformance::run_challenges(|| make()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn audit() {
                let make = $make;
                conformance::run_audit(|| make()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all() {
                let make = $make;
                conformance::run_all(|| make()).await;
            }
        }
    };
}

conformance_suite!(memory_backend, || memory());
conformance_suite!(sqlite_memory, || sqlite_in_memory());
conformance_suite!(sqlite_file, {
    let files = std::sync::Arc::new(Files::new());
    move || files.make()
});

fn account(address: &str) -> User {
    let mut u = User::new(
        UserId::from_bytes([42; 16]),
        datetime!(2026-01-02 03:04:05.678_901_234 UTC),
    );
    u.email = Some(Email::parse(address).unwrap());
    u
}

fn url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_schema_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reopen.db");
    let u = account("reopen@example.com");
    {
        let backend = SqliteBackend::connect(&url(&path)).await.unwrap();
        backend.create_user(&u, &[]).await.unwrap();
        backend.close().await;
    }
    for _ in 0..2 {
        let backend = SqliteBackend::connect(path.to_str().unwrap())
            .await
            .expect("reopening migrates nothing");
        assert_eq!(
            backend.user_by_id(u.id).await.unwrap(),
            Some(u.clone()),
            "data survives reopening"
        );
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM ciam_schema_version ORDER BY version")
                .fetch_all(backend.pool())
                .await
                .unwrap();
        assert_eq!(
            versions,
            (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
            "each migration is applied once"
        );
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(backend.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
        backend.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let backend = SqliteBackend::connect(&url(&path)).await.unwrap();
    sqlx::query("INSERT INTO ciam_schema_version (version, applied_at) VALUES (?, 0)")
        .bind(SCHEMA_VERSION + 1)
        .execute(backend.pool())
        .await
        .unwrap();
    backend.close().await;
    let r = SqliteBackend::connect(&url(&path)).await;
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "a newer schema must be refused, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/ciam.db");
    let r = SqliteBackend::connect(&url(&path)).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
    let r = SqliteBackend::connect(path.to_str().unwrap()).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "got {r:?}");
    assert!(
        SqliteBackend::connect("").await.is_err(),
        "an empty path is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_sqlite_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, garbage).unwrap();
    let r = SqliteBackend::connect(&url(&path)).await;
    assert!(
        r.is_err(),
        "connecting to a non-SQLite file must fail, got {r:?}"
    );
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "as Corrupt, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_give_corrupt_errors() {
    let backend = SqliteBackend::connect("sqlite::memory:").await.unwrap();
    let u = account("corrupt@example.com");
    backend.create_user(&u, &[]).await.unwrap();
    let email = Email::parse("corrupt@example.com").unwrap();
    for (sql, what) in [
        ("UPDATE users SET status = 'zombie'", "unknown status"),
        (
            "UPDATE users SET profile = 'not json'",
            "malformed profile JSON",
        ),
        (
            "UPDATE users SET profile = '[1, 2]'",
            "profile that is not an object",
        ),
        ("UPDATE users SET email = 'no-at-sign'", "malformed e-mail"),
        ("UPDATE users SET version = -1", "negative version"),
        ("UPDATE users SET region = '!!'", "malformed region"),
        ("UPDATE users SET tenant_id = x'0102'", "short tenant id"),
    ] {
        let mut tx = backend.pool().begin().await.unwrap();
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let r = backend.user_by_email(&email).await;
        assert!(
            matches!(r, Err(StoreError::Corrupt(_))),
            "{what} must give Corrupt, got {r:?}"
        );
        // Restore the row for the next case.
        sqlx::query("DELETE FROM users")
            .execute(backend.pool())
            .await
            .unwrap();
        backend.create_user(&u, &[]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let backend = SqliteBackend::connect(&url(&path)).await.unwrap();
    let other = SqliteBackend::connect(&url(&path)).await.unwrap();
    let mut conn = other.pool().acquire().await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log")
        .execute(&mut *conn)
        .await
        .unwrap();
    let r = backend
        .create_user(&account("locked@example.com"), &[])
        .await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "a write blocked past the busy timeout, got {r:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    drop(conn);
    backend
        .create_user(&account("locked@example.com"), &[])
        .await
        .expect("works once the lock is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_databases_are_private() {
    let a = SqliteBackend::connect("sqlite::memory:").await.unwrap();
    let b = SqliteBackend::connect("sqlite::memory:").await.unwrap();
    let u = account("private@example.com");
    a.create_user(&u, &[]).await.unwrap();
    assert!(
        b.user_by_id(u.id).await.unwrap().is_none(),
        "each sqlite::memory: backend has its own database"
    );
    assert!(
        a.clone().user_by_id(u.id).await.unwrap().is_some(),
        "clones share it"
    );
}
