//! The conformance kit against SQLite (a new temporary file per check), plus a crash test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ciam_consent::conformance;
use ciam_consent::sqlite::SqliteConsentStore;

/// Fresh database files inside one temporary directory.
struct Files {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Files {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            dir: tempfile::tempdir().unwrap(),
            next: AtomicUsize::new(0),
        })
    }

    fn url(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!(
            "sqlite://{}?mode=rwc",
            self.dir.path().join(format!("consent-{n}.db")).display()
        )
    }

    fn make(
        self: &Arc<Self>,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = SqliteConsentStore>>> {
        let files = self.clone();
        move || {
            let url = files.url();
            Box::pin(async move { SqliteConsentStore::connect(&url).await.unwrap() })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger() {
    let files = Files::new();
    conformance::run_ledger(files.make()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper() {
    let files = Files::new();
    conformance::run_tamper(files.make()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement() {
    let files = Files::new();
    conformance::run_enforcement(files.make()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy() {
    let files = Files::new();
    conformance::run_privacy(files.make()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox() {
    let files = Files::new();
    conformance::run_outbox(files.make()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_restart() {
    let files = Files::new();
    let url = files.url();
    let store = SqliteConsentStore::connect(&url).await.unwrap();
    conformance::outbox_survives_restart(store, |s| async move {
        s.close().await;
        SqliteConsentStore::connect(&url).await.unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_the_schema() {
    let files = Files::new();
    let url = files.url();
    let store = SqliteConsentStore::connect(&url).await.unwrap();
    store.close().await;
    let store = SqliteConsentStore::connect(&url).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM consent_schema_version")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(version, ciam_consent::sqlite::SCHEMA_VERSION);
}
