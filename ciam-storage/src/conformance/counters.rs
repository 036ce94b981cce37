//! Checks for [`CounterStore`](ciam_core::store::CounterStore).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ciam_core::store::{Backend, CounterRead};

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

/// `counts` answers several reads at once as `count` answers each: in the order asked, 0 for
/// unknown keys and windows, a repeated read answered each time, another window length kept
/// apart, and an empty list with an empty answer; also for more keys than one statement
/// takes (520; the SQL backends read 500 keys per statement).
pub async fn counts_answer_like_count<B: Backend>(store: B) {
    const HOUR: Duration = Duration::from_secs(3600);
    assert!(store.counts(&[]).await.unwrap().is_empty(), "no reads");
    for (key, window, secs, hits) in [
        ("a", MINUTE, 600, 2),
        ("a", MINUTE, 660, 1),
        ("b", HOUR, 600, 3),
        ("a", HOUR, 600, 1),
    ] {
        for _ in 0..hits {
            store.hit(key, window, at(secs)).await.unwrap();
        }
    }
    let read = |key, window, secs| CounterRead {
        key,
        window,
        at: at(secs),
    };
    let reads = [
        read("a", MINUTE, 659),
        read("a", MINUTE, 660),
        read("b", HOUR, 0),
        read("missing", MINUTE, 600),
        read("a", HOUR, 600),
        read("a", MINUTE, 600),
        read("b", MINUTE, 600),
        read("a", MINUTE, 720),
    ];
    let counts = store.counts(&reads).await.unwrap();
    assert_eq!(counts, [2, 1, 3, 0, 1, 2, 0, 0]);
    for (r, c) in reads.iter().zip(&counts) {
        assert_eq!(
            store.count(r.key, r.window, r.at).await.unwrap(),
            *c,
            "{r:?}"
        );
    }

    let keys: Vec<String> = (0..520).map(|i| format!("many:{i}")).collect();
    for key in keys.iter().step_by(2) {
        store.hit(key, MINUTE, at(600)).await.unwrap();
    }
    let reads: Vec<_> = keys.iter().map(|k| read(k, MINUTE, 600)).collect();
    let counts = store.counts(&reads).await.unwrap();
    let expected: Vec<u64> = (0..520).map(|i| u64::from(i % 2 == 0)).collect();
    assert_eq!(counts, expected, "520 keys in one call");
}
