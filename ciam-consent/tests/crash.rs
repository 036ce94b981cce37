//! A process killed while appending leaves a valid chain, and every record it committed has
//! its outbox event, which a relay started afterwards delivers (SQLite file).
//!
//! The test runs itself as a child process (the same test binary, this test only, with
//! `CONSENT_CRASH_DB` set). The child appends from many tasks at once and aborts the process
//! (no destructors, no clean shutdown) while appends are still in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ciam_consent::conformance::{self, FlakySink};
use ciam_consent::sqlite::SqliteConsentStore;
use ciam_consent::{ConsentStore, OutboxRelay, Source};
use ciam_core::clock::ManualClock;

const DB_VAR: &str = "CONSENT_CRASH_DB";

async fn child(url: &str) -> ! {
    let store = SqliteConsentStore::connect(url).await.unwrap();
    let clock = ManualClock::new(conformance::START);
    let ledger = conformance::ledger(&store, &clock);
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..64u8 {
        let ledger = ledger.clone();
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                ledger
                    .grant(
                        conformance::user(i % 8),
                        "newsletter",
                        Source::new("crash", "test"),
                    )
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while done.load(Ordering::Relaxed) < 40 {
        tokio::task::yield_now().await;
    }
    // Appends are in flight on other tasks: die without any clean-up.
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_appending_loses_nothing() {
    if let Ok(url) = std::env::var(DB_VAR) {
        child(&url).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("crash.db").display()
    );
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_while_appending_loses_nothing",
            "--nocapture",
        ])
        .env(DB_VAR, &url)
        .status()
        .unwrap();
    assert!(!status.success(), "the child was killed, not finished");

    let store = SqliteConsentStore::connect(&url).await.unwrap();
    let clock = ManualClock::new(conformance::START);
    let ledger = conformance::ledger(&store, &clock);
    let head = ledger
        .verify()
        .await
        .expect("the chain verifies after the crash");
    assert!(
        head.seq >= 40,
        "the child committed its appends ({})",
        head.seq
    );
    assert_eq!(
        store.outbox_undelivered().await.unwrap(),
        head.seq,
        "every committed record has its outbox event"
    );
    let sink = Arc::new(FlakySink::failing(0));
    let relay = OutboxRelay::new(Arc::new(store.clone()), sink.clone())
        .clock(Arc::new(clock.clone()))
        .batch(1_000);
    assert_eq!(relay.run_once().await.unwrap().delivered as u64, head.seq);
    let seqs: Vec<u64> = sink.events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=head.seq).collect::<Vec<_>>(), "all, in order");
}
