//! Checks for [`SessionStore`](ciam_core::store::SessionStore).

use ciam_core::session::DeviceInfo;
use ciam_core::store::{Backend, StoreError};

use super::fixtures::{self, at, session, user};

/// A session reads back exactly by its token hash until either expiry; at or after the idle
/// or the absolute expiry it is not returned. An unknown hash gives `None`.
pub async fn session_round_trip_and_expiry<B: Backend>(store: B) {
    let u = user("session@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let idle_first = session(u.id, 0, 100, 200);
    let absolute_first = session(u.id, 0, 300, 150);
    for s in [&idle_first, &absolute_first] {
        store.insert_session(s).await.expect("insert_session");
    }
    let dup = store.insert_session(&idle_first).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "a duplicate session must conflict, got {dup:?}"
    );

    let found = store
        .session_by_token(&idle_first.token_hash, at(99))
        .await
        .expect("session_by_token");
    assert_eq!(
        found.as_ref(),
        Some(&idle_first),
        "session_by_token returns every field as written"
    );
    let gone = store
        .session_by_token(&idle_first.token_hash, at(100))
        .await
        .unwrap();
    assert!(
        gone.is_none(),
        "a session is not returned at its idle expiry"
    );
    let found = store
        .session_by_token(&absolute_first.token_hash, at(149))
        .await
        .unwrap();
    assert_eq!(
        found.as_ref(),
        Some(&absolute_first),
        "a live session is returned"
    );
    let gone = store
        .session_by_token(&absolute_first.token_hash, at(150))
        .await
        .unwrap();
    assert!(
        gone.is_none(),
        "a session is not returned at its absolute expiry"
    );
    let unknown = store
        .session_by_token(&fixtures::token_hash(), at(0))
        .await
        .unwrap();
    assert!(unknown.is_none(), "an unknown token hash gives None");
}

/// `touch_session` slides the idle expiry, records activity and the client IP (keeping the
/// user agent), and returns true; once the session is deleted it returns false.
pub async fn touch_slides_expiry<B: Backend>(store: B) {
    let u = user("touch@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let s = session(u.id, 0, 100, 1000);
    store.insert_session(&s).await.expect("insert_session");

    let device = DeviceInfo {
        user_agent: Some("other agent".to_owned()),
        ip: Some("198.51.100.4".parse().unwrap()),
    };
    assert!(
        store
            .touch_session(s.id, at(90), at(190), &device)
            .await
            .unwrap(),
        "touching a live session gives true"
    );
    let found = store
        .session_by_token(&s.token_hash, at(150))
        .await
        .unwrap();
    let mut expected = s.clone();
    expected.last_seen_at = at(90);
    expected.idle_expires_at = at(190);
    expected.device.ip = device.ip;
    assert_eq!(
        found,
        Some(expected),
        "touch slides the idle expiry, records last_seen_at and the IP only"
    );

    assert!(
        store.delete_session(u.id, s.id).await.unwrap(),
        "delete_session"
    );
    let touched = store
        .touch_session(s.id, at(91), at(191), &device)
        .await
        .unwrap();
    assert!(!touched, "touching a deleted session gives false");
}

/// `sessions_for_user` lists the user's unexpired sessions, newest first, and no one else's.
pub async fn list_newest_first<B: Backend>(store: B) {
    let u = user("list@example.com");
    let other = user("other@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    store.create_user(&other, &[]).await.expect("create_user");
    let s1 = session(u.id, 0, 500, 1000);
    let s3 = session(u.id, 20, 500, 1000);
    let s2 = session(u.id, 10, 500, 1000);
    let expired = session(u.id, 30, 40, 1000);
    let theirs = session(other.id, 15, 500, 1000);
    for s in [&s1, &s3, &s2, &expired, &theirs] {
        store.insert_session(s).await.expect("insert_session");
    }
    let listed = store
        .sessions_for_user(u.id, at(100))
        .await
        .expect("sessions_for_user");
    assert_eq!(
        listed,
        vec![s3, s2, s1],
        "sessions are listed newest first, without expired or others'"
    );
}

/// `delete_session` deletes only the user's own session; `delete_user_sessions` deletes all
/// of a user's sessions but `keep` and counts them.
pub async fn delete_sessions<B: Backend>(store: B) {
    let u = user("delete@example.com");
    let other = user("other@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    store.create_user(&other, &[]).await.expect("create_user");
    let s1 = session(u.id, 0, 500, 1000);
    let s2 = session(u.id, 1, 500, 1000);
    let s3 = session(u.id, 2, 500, 1000);
    let s4 = session(u.id, 3, 500, 1000);
    let theirs = session(other.id, 0, 500, 1000);
    for s in [&s1, &s2, &s3, &s4, &theirs] {
        store.insert_session(s).await.expect("insert_session");
    }

    assert!(
        !store.delete_session(other.id, s1.id).await.unwrap(),
        "another user cannot delete the session"
    );
    assert!(
        store
            .session_by_token(&s1.token_hash, at(10))
            .await
            .unwrap()
            .is_some(),
        "so it still exists"
    );
    assert!(
        store.delete_session(u.id, s1.id).await.unwrap(),
        "the owner deletes it"
    );
    assert!(
        !store.delete_session(u.id, s1.id).await.unwrap(),
        "a second delete gives false"
    );
    assert!(
        store
            .session_by_token(&s1.token_hash, at(10))
            .await
            .unwrap()
            .is_none(),
        "a deleted session is gone"
    );

    let n = store.delete_user_sessions(u.id, Some(s3.id)).await.unwrap();
    assert_eq!(n, 2, "delete_user_sessions counts what it deleted");
    assert_eq!(
        store.sessions_for_user(u.id, at(10)).await.unwrap(),
        vec![s3],
        "only `keep` remains"
    );
    assert_eq!(
        store.delete_user_sessions(u.id, None).await.unwrap(),
        1,
        "without keep, all are deleted"
    );
    assert!(
        store
            .sessions_for_user(u.id, at(10))
            .await
            .unwrap()
            .is_empty(),
        "none remain"
    );
    assert_eq!(
        store.sessions_for_user(other.id, at(10)).await.unwrap(),
        vec![theirs],
        "others' are untouched"
    );
}

/// `purge_expired_sessions` deletes the sessions past either expiry and counts them.
pub async fn purge_expired<B: Backend>(store: B) {
    let u = user("purge@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let idle_gone = session(u.id, 0, 50, 1000);
    let absolute_gone = session(u.id, 0, 500, 100);
    let live = session(u.id, 0, 500, 1000);
    for s in [&idle_gone, &absolute_gone, &live] {
        store.insert_session(s).await.expect("insert_session");
    }
    assert_eq!(
        store.purge_expired_sessions(at(100)).await.unwrap(),
        2,
        "both expired sessions are purged"
    );
    assert_eq!(
        store.sessions_for_user(u.id, at(0)).await.unwrap(),
        vec![live],
        "the live session remains"
    );
    assert_eq!(
        store.purge_expired_sessions(at(100)).await.unwrap(),
        0,
        "nothing left to purge"
    );
}
