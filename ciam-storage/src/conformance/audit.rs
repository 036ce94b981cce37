//! Checks for [`AuditStore`](ciam_core::store::AuditStore).

use ciam_core::store::Backend;

use super::fixtures::{audit_entry, user};

/// Entries read back exactly, newest first, per user and overall, at most `limit`.
pub async fn newest_first_with_limit<B: Backend>(store: B) {
    let a = user("audit-a@example.com").id;
    let b = user("audit-b@example.com").id;
    // Appended out of time order: the order of the results is by time, not by insertion.
    let entries = [
        audit_entry(Some(a), 10, "a10"),
        audit_entry(Some(b), 15, "b15"),
        audit_entry(Some(a), 30, "a30"),
        audit_entry(Some(a), 20, "a20"),
        audit_entry(None, 25, "anonymous25"),
        audit_entry(Some(b), 40, "b40"),
        audit_entry(Some(a), 50, "a50"),
    ];
    for e in &entries {
        store.append_audit(e).await.expect("append_audit");
    }
    let reasons = |list: &[ciam_core::audit::AuditEntry]| {
        list.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()
    };

    let for_a = store.audit_for_user(a, 3).await.expect("audit_for_user");
    assert_eq!(
        reasons(&for_a),
        ["a50", "a30", "a20"],
        "a user's entries, newest first, at most `limit`"
    );
    assert_eq!(for_a.first(), entries.get(6), "entries read back exactly");
    let all_a = store.audit_for_user(a, 100).await.unwrap();
    assert_eq!(
        reasons(&all_a),
        ["a50", "a30", "a20", "a10"],
        "a limit above the count returns all"
    );
    let for_b = store.audit_for_user(b, 10).await.unwrap();
    assert_eq!(reasons(&for_b), ["b40", "b15"], "only the user's entries");

    let recent = store.recent_audit(4).await.expect("recent_audit");
    assert_eq!(
        reasons(&recent),
        ["a50", "b40", "a30", "anonymous25"],
        "overall newest first, at most `limit`"
    );
    assert_eq!(
        recent.get(3),
        entries.get(4),
        "an entry without a user reads back exactly"
    );
    assert!(
        store.recent_audit(0).await.unwrap().is_empty(),
        "limit 0 returns nothing"
    );
}
