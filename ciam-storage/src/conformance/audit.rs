//! Checks for [`AuditStore`](ciam_core::store::AuditStore): the hash chain and the data keys.

use std::sync::Arc;

use ciam_core::audit::{AuditHash, AuditRecord, AuditVerifier};
use ciam_core::shred::KeyState;
use ciam_core::store::{Backend, StoreError};

use super::fixtures::{at, audit_entry, user};

fn verify(records: &[AuditRecord]) -> u64 {
    let mut v = AuditVerifier::new();
    for r in records {
        v.push(r)
            .unwrap_or_else(|e| panic!("the stored chain must verify: {e}"));
    }
    v.head().seq
}

/// Entries read back exactly as appended, newest (highest `seq`) first, per user and
/// overall, at most `limit`.
pub async fn newest_first_with_limit<B: Backend>(store: B) {
    let a = user("audit-a@example.com").id;
    let b = user("audit-b@example.com").id;
    let bodies = [
        audit_entry(Some(a), 10, "a10"),
        audit_entry(Some(b), 15, "b15"),
        audit_entry(Some(a), 30, "a30"),
        audit_entry(Some(a), 20, "a20"),
        audit_entry(None, 25, "anonymous25"),
        audit_entry(Some(b), 40, "b40"),
        audit_entry(Some(a), 50, "a50"),
    ];
    let mut stored = Vec::new();
    for body in &bodies {
        let r = store
            .append_audit(body.clone())
            .await
            .expect("append_audit");
        assert_eq!(&r.body, body, "append returns the body it was given");
        stored.push(r);
    }
    let reasons = |list: &[AuditRecord]| {
        list.iter()
            .map(|e| e.body.reason.clone())
            .collect::<Vec<_>>()
    };

    let for_a = store.audit_for_user(a, 3).await.expect("audit_for_user");
    assert_eq!(
        reasons(&for_a),
        ["a50", "a20", "a30"],
        "a user's records, last appended first, at most `limit`"
    );
    assert_eq!(for_a.first(), stored.get(6), "records read back exactly");
    let all_a = store.audit_for_user(a, 100).await.unwrap();
    assert_eq!(
        reasons(&all_a),
        ["a50", "a20", "a30", "a10"],
        "a limit above the count returns all"
    );
    let for_b = store.audit_for_user(b, 10).await.unwrap();
    assert_eq!(reasons(&for_b), ["b40", "b15"], "only the user's records");

    let recent = store.recent_audit(4).await.expect("recent_audit");
    assert_eq!(
        reasons(&recent),
        ["a50", "b40", "anonymous25", "a20"],
        "overall last appended first, at most `limit`"
    );
    assert_eq!(
        recent.get(2),
        stored.get(4),
        "a record without a user reads back exactly"
    );
    assert!(
        store.recent_audit(0).await.unwrap().is_empty(),
        "limit 0 returns nothing"
    );
}

/// Each append is linked after the previous one: positions 1, 2, 3…, each record's
/// `prev_hash` the hash of the one before, every hash right; `audit_after` pages in `seq`
/// order; a second record with the same id is a conflict and changes nothing.
pub async fn appends_form_a_chain<B: Backend>(store: B) {
    let a = user("chain-a@example.com").id;
    let mut stored = Vec::new();
    for i in 0..7 {
        let owner = if i % 3 == 0 { None } else { Some(a) };
        stored.push(
            store
                .append_audit(audit_entry(owner, i, &format!("r{i}")))
                .await
                .expect("append_audit"),
        );
    }
    assert_eq!(
        stored[0].prev_hash,
        AuditHash::GENESIS,
        "the first links to genesis"
    );
    for (i, r) in stored.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "positions count from 1 without gaps");
    }
    assert_eq!(verify(&stored), 7, "the returned records verify");
    let mut paged = store.audit_after(0, 3).await.expect("audit_after");
    assert_eq!(paged.len(), 3, "at most `limit`");
    paged.extend(store.audit_after(3, 100).await.unwrap());
    assert_eq!(
        paged, stored,
        "audit_after reads the chain back exactly, in order"
    );
    assert!(store.audit_after(7, 10).await.unwrap().is_empty());

    let again = stored[2].body.clone();
    assert!(
        matches!(
            store.append_audit(again).await,
            Err(StoreError::Conflict(_))
        ),
        "a record id that exists is a conflict"
    );
    let after = store.audit_after(0, 100).await.unwrap();
    assert_eq!(after.len(), 7, "a refused append writes nothing");
    assert_eq!(verify(&after), 7);
}

/// Appends racing from many tasks give one valid chain holding every record once.
pub async fn concurrent_appends_form_one_chain<B: Backend>(store: B) {
    let store = Arc::new(store);
    let a = user("race-a@example.com").id;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let owner = if i % 2 == 0 { Some(a) } else { None };
                store
                    .append_audit(audit_entry(owner, i, &format!("t{t}-{i}")))
                    .await
                    .expect("a racing append succeeds");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let all = store.audit_after(0, 1000).await.unwrap();
    assert_eq!(verify(&all), 40, "one chain of every record");
}

/// Data keys: absent, then the first insert wins (also under a race), a tombstone replaces
/// the key, keeps its first date, and no key is made after it.
pub async fn data_keys_and_tombstones<B: Backend>(store: B) {
    let a = user("keys-a@example.com").id;
    let b = user("keys-b@example.com").id;
    assert_eq!(store.audit_key(a).await.unwrap(), KeyState::Absent);
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..6u8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.insert_audit_key(a, &[i; 40], at(1)).await.unwrap()
        }));
    }
    let mut states = Vec::new();
    for t in tasks {
        states.push(t.await.unwrap());
    }
    let winner = store.audit_key(a).await.unwrap();
    assert!(matches!(winner, KeyState::Present(_)), "a key is stored");
    assert!(
        states.iter().all(|s| *s == winner),
        "every racing insert answers the one stored key"
    );
    store.erase_audit_key(a, at(5)).await.unwrap();
    assert_eq!(store.audit_key(a).await.unwrap(), KeyState::Erased(at(5)));
    store.erase_audit_key(a, at(9)).await.unwrap();
    assert_eq!(
        store.audit_key(a).await.unwrap(),
        KeyState::Erased(at(5)),
        "a second erasure keeps the first date"
    );
    assert_eq!(
        store.insert_audit_key(a, &[7; 40], at(10)).await.unwrap(),
        KeyState::Erased(at(5)),
        "no key is made after a tombstone"
    );
    store.erase_audit_key(b, at(3)).await.unwrap();
    assert_eq!(
        store.audit_key(b).await.unwrap(),
        KeyState::Erased(at(3)),
        "erasing a user without a key leaves a tombstone"
    );
}
