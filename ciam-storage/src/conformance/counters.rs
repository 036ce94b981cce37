//! Checks for [`CounterStore`](ciam_core::store::CounterStore).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ciam_core::store::Backend;

/// A time `secs` seconds after a minute (and hour) boundary, so window edges are known.
fn at(secs: i64) -> time::OffsetDateTime {
    time::macros::datetime!(2026-03-04 05:00:00 UTC) + time::Duration::seconds(secs)
}

const MINUTE: Duration = Duration::from_secs(60);

/// Hits count up within a window, a new window starts at zero, windows are aligned to the
/// epoch, `count` does not add, keys are independent, and `reset` forgets a key.
pub async fn windows_counts_and_reset<B: Backend>(store: B) {
    for expected in 1..=3 {
        assert_eq!(
            store.hit("k", MINUTE, at(600)).await.unwrap(),
            expected,
            "hits count up"
        );
    }
    assert_eq!(
        store.count("k", MINUTE, at(659)).await.unwrap(),
        3,
        "same window until its end"
    );
    assert_eq!(
        store.count("k", MINUTE, at(600)).await.unwrap(),
        3,
        "count does not add"
    );
    assert_eq!(
        store.count("k", MINUTE, at(660)).await.unwrap(),
        0,
        "the next window starts empty"
    );
    assert_eq!(
        store.hit("k", MINUTE, at(660)).await.unwrap(),
        1,
        "a hit in the next window"
    );
    assert_eq!(
        store.count("k", MINUTE, at(600)).await.unwrap(),
        3,
        "the previous window is kept"
    );
    assert_eq!(
        store.count("other", MINUTE, at(600)).await.unwrap(),
        0,
        "keys are independent"
    );
    assert_eq!(store.hit("other", MINUTE, at(600)).await.unwrap(), 1);
    // Another window length is another counter.
    assert_eq!(
        store
            .hit("k", Duration::from_secs(3600), at(600))
            .await
            .unwrap(),
        1
    );
    store.reset("k").await.unwrap();
    assert_eq!(
        store.count("k", MINUTE, at(660)).await.unwrap(),
        0,
        "reset forgets the key"
    );
    assert_eq!(
        store.count("k", MINUTE, at(600)).await.unwrap(),
        0,
        "reset forgets every window"
    );
    assert_eq!(
        store.count("other", MINUTE, at(600)).await.unwrap(),
        1,
        "reset leaves other keys"
    );
    store.reset("never-used").await.unwrap();
    // Keys are opaque text: separators and non-ASCII are fine.
    let odd = "signin:ip:2001:db8::/64:é";
    assert_eq!(store.hit(odd, MINUTE, at(600)).await.unwrap(), 1);
    assert_eq!(store.count(odd, MINUTE, at(600)).await.unwrap(), 1);
}

/// Concurrent hits on one key each get a distinct count: none is lost.
pub async fn hits_are_atomic_under_concurrency<B: Backend>(store: B) {
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { s.hit("race", MINUTE, at(600)).await.unwrap() })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(
        seen,
        (1..=16).collect::<BTreeSet<u64>>(),
        "each concurrent hit gets its own count"
    );
    assert_eq!(store.count("race", MINUTE, at(600)).await.unwrap(), 16);
}
