//! The decision cache: bounded, evicted by local changes, and stale for at most its TTL for
//! changes made by another process (another ledger on the same store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ciam_consent::conformance::{START, catalog, user};
use ciam_consent::memory::MemoryConsentStore;
use ciam_consent::{ConsentLedger, MasterKey, Source};
use ciam_core::clock::ManualClock;
use time::Duration;

fn ledger(store: &MemoryConsentStore, clock: &ManualClock, capacity: usize) -> ConsentLedger {
    ConsentLedger::builder(
        Arc::new(store.clone()),
        catalog(),
        MasterKey::from_bytes(&[0x42; 32]),
    )
    .clock(Arc::new(clock.clone()))
    .cache_capacity(capacity)
    .cache_ttl(Duration::seconds(1))
    .build()
    .unwrap()
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let store = MemoryConsentStore::new();
    let clock = ManualClock::new(START);
    let ledger = ledger(&store, &clock, 2);
    for n in 0..10 {
        ledger.check(user(n), "newsletter").await.unwrap();
        assert!(ledger.cached_subjects() <= 2, "at most two subjects cached");
    }
    assert_eq!(ledger.cached_subjects(), 2);
    assert!(ledger.check_cached(user(9), "newsletter").is_some());
}

#[tokio::test]
async fn other_processes_changes_show_within_the_ttl_or_on_invalidate() {
    let store = MemoryConsentStore::new();
    let clock = ManualClock::new(START);
    let here = ledger(&store, &clock, 100);
    let elsewhere = ledger(&store, &clock, 100);
    let u = user(1);
    assert!(!here.check(u, "newsletter").await.unwrap().is_allowed());
    elsewhere
        .grant(u, "newsletter", Source::new("other", "process"))
        .await
        .unwrap();
    assert!(
        !here.check(u, "newsletter").await.unwrap().is_allowed(),
        "served from this process's cache until the TTL"
    );
    here.invalidate(u);
    assert!(here.check(u, "newsletter").await.unwrap().is_allowed());
    elsewhere
        .withdraw(u, "newsletter", Source::new("other", "process"))
        .await
        .unwrap();
    assert!(here.check(u, "newsletter").await.unwrap().is_allowed());
    clock.advance(Duration::seconds(1));
    assert!(
        !here.check(u, "newsletter").await.unwrap().is_allowed(),
        "stale for at most the TTL"
    );
    // A change made through this process is seen at once.
    here.grant(u, "newsletter", Source::new("here", "now"))
        .await
        .unwrap();
    assert!(
        here.check_cached(u, "newsletter").is_none(),
        "evicted by the write"
    );
    assert!(here.check(u, "newsletter").await.unwrap().is_allowed());
}
