//! The conformance kit against the in-memory reference store.

use ciam_consent::conformance;
use ciam_consent::memory::MemoryConsentStore;

async fn fresh() -> MemoryConsentStore {
    MemoryConsentStore::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger() {
    conformance::run_ledger(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper() {
    conformance::run_tamper(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement() {
    conformance::run_enforcement(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy() {
    conformance::run_privacy(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox() {
    conformance::run_outbox(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_restart() {
    // A memory store cannot outlive its process; "reopening" shares the same state, which
    // still checks that nothing is lost between the write and the relay.
    conformance::outbox_survives_restart(MemoryConsentStore::new(), |s| async move { s }).await;
}
