//! Checks for [`IdentityStore`](ciam_core::store::IdentityStore).

use std::sync::Arc;

use ciam_core::credential::CredentialKind;
use ciam_core::id::TenantId;
use ciam_core::identifier::{Phone, Username};
use ciam_core::store::{Backend, StoreError};
use ciam_core::user::{Region, UserStatus};

use super::fixtures::{self, at, email, password, user};

/// Every field of a user is read back exactly as written, by id and by e-mail; an unknown id
/// gives `None`.
pub async fn user_round_trip<B: Backend>(store: B) {
    let mut u = user("Ada.Lovelace@Example.com");
    u.tenant = Some(TenantId::from_bytes([7; 16]));
    u.status = UserStatus::Locked;
    u.email_verified_at = Some(at(60));
    u.phone = Some(Phone::parse("+44 20 7946 0958").unwrap());
    u.phone_verified_at = Some(at(61));
    u.username = Some(Username::parse("Ada_L").unwrap());
    u.profile
        .insert("given_name".into(), serde_json::json!("Ada"));
    u.profile
        .insert("newsletter".into(), serde_json::json!(true));
    u.profile.insert("orders".into(), serde_json::json!(12));
    u.profile.insert(
        "prefs".into(),
        serde_json::json!({ "sizes": ["s", "m"], "note": null }),
    );
    u.region = Some(Region::new("eu-west").unwrap());
    u.updated_at = at(62);
    u.last_active_at = Some(at(63));
    u.dormancy_notice_at = Some(at(64));
    u.version = 3;
    store.create_user(&u, &[]).await.expect("create_user");

    let by_id = store.user_by_id(u.id).await.expect("user_by_id");
    assert_eq!(
        by_id.as_ref(),
        Some(&u),
        "user_by_id must return every field as written"
    );
    let stored = by_id.unwrap();
    assert_eq!(
        stored.email.as_ref().map(|e| e.as_str()),
        Some("Ada.Lovelace@example.com"),
        "display e-mail kept"
    );
    assert_eq!(
        stored.username.as_ref().map(|n| n.as_str()),
        Some("Ada_L"),
        "display username kept"
    );
    let by_email = store
        .user_by_email(&email("ada.lovelace@example.com"))
        .await
        .expect("user_by_email");
    assert_eq!(
        by_email.as_ref(),
        Some(&u),
        "user_by_email must return every field as written"
    );
    assert_eq!(
        store
            .user_by_id(fixtures::user_id())
            .await
            .expect("user_by_id"),
        None,
        "unknown id gives None"
    );
    let by_phone = store
        .user_by_phone(&Phone::parse("+44 (20) 7946-0958").unwrap())
        .await
        .expect("user_by_phone");
    assert_eq!(
        by_phone.as_ref(),
        Some(&u),
        "user_by_phone finds the account by its E.164 number, however it was typed"
    );
    assert_eq!(
        store
            .user_by_phone(&Phone::parse("+44 20 7946 0959").unwrap())
            .await
            .expect("user_by_phone"),
        None,
        "an unknown number gives None"
    );

    let bare = fixtures::user("bare@example.com");
    store
        .create_user(&bare, &[])
        .await
        .expect("create_user (minimal)");
    assert_eq!(
        store.user_by_id(bare.id).await.unwrap(),
        Some(bare),
        "a minimal user round trips"
    );
}

/// E-mail lookup compares canonical forms: any case variant finds the account, a different
/// address does not.
pub async fn email_lookup_is_canonical<B: Backend>(store: B) {
    let u = user("Mixed.Case@Example.COM");
    store.create_user(&u, &[]).await.expect("create_user");
    for variant in [
        "mixed.case@example.com",
        "MIXED.CASE@EXAMPLE.COM",
        "Mixed.Case@example.com",
    ] {
        let found = store
            .user_by_email(&email(variant))
            .await
            .expect("user_by_email");
        assert_eq!(
            found.map(|f| f.id),
            Some(u.id),
            "lookup by {variant:?} must find the account"
        );
    }
    let other = store
        .user_by_email(&email("mixed.case2@example.com"))
        .await
        .expect("user_by_email");
    assert!(other.is_none(), "a different address must not match");
}

/// Of 16 concurrent registrations of case variants of one address, exactly one succeeds and
/// the others fail with `Conflict("email")`.
pub async fn email_unique_under_concurrency<B: Backend>(store: B) {
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let store = Arc::clone(&store);
        // Each task upper-cases a different subset of the letters of "race".
        let local: String = "race"
            .chars()
            .enumerate()
            .map(|(bit, c)| {
                if i & (1 << bit) != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let domain = if i % 2 == 0 {
            "Example.com"
        } else {
            "example.COM"
        };
        let u = user(&format!("{local}@{domain}"));
        tasks.push(tokio::spawn(async move {
            (u.id, store.create_user(&u, &[]).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("registration task panicked") {
            (id, Ok(())) => winners.push(id),
            (_, Err(StoreError::Conflict("email"))) => {}
            (_, Err(other)) => {
                panic!("a losing registration must fail with Conflict(\"email\"), got {other:?}")
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 16 concurrent registrations of one address may succeed"
    );
    let found = store
        .user_by_email(&email("RACE@example.com"))
        .await
        .expect("user_by_email");
    assert_eq!(
        found.map(|u| u.id),
        winners.first().copied(),
        "the winner is the stored account"
    );
}

/// A username (compared case-insensitively) or phone number used by one account cannot be
/// used by another, on creation or update; the refused update leaves the record unchanged.
pub async fn username_and_phone_unique<B: Backend>(store: B) {
    let mut a = user("a@example.com");
    a.username = Some(Username::parse("Ada_L").unwrap());
    a.phone = Some(Phone::parse("+14155552671").unwrap());
    store.create_user(&a, &[]).await.expect("create_user");

    let mut b = user("b@example.com");
    b.username = Some(Username::parse("ada_l").unwrap());
    let r = store.create_user(&b, &[]).await;
    assert!(
        matches!(r, Err(StoreError::Conflict("username"))),
        "taken username must give Conflict(\"username\"), got {r:?}"
    );

    let mut c = user("c@example.com");
    c.phone = Some(Phone::parse("+1 (415) 555-2671").unwrap());
    let r = store.create_user(&c, &[]).await;
    assert!(
        matches!(r, Err(StoreError::Conflict("phone"))),
        "taken phone must give Conflict(\"phone\"), got {r:?}"
    );

    let d = user("d@example.com");
    store
        .create_user(&d, &[])
        .await
        .expect("an account without username or phone");
    let e = user("e@example.com");
    store
        .create_user(&e, &[])
        .await
        .expect("several accounts may lack a username and phone");

    let mut d2 = d.clone();
    d2.username = Some(Username::parse("ADA_L").unwrap());
    let r = store.update_user(&d2).await;
    assert!(
        matches!(r, Err(StoreError::Conflict("username"))),
        "update to a taken username must conflict, got {r:?}"
    );
    let mut d3 = d.clone();
    d3.email = Some(email("A@Example.com"));
    let r = store.update_user(&d3).await;
    assert!(
        matches!(r, Err(StoreError::Conflict("email"))),
        "update to a taken e-mail must conflict, got {r:?}"
    );
    assert_eq!(
        store.user_by_id(d.id).await.unwrap(),
        Some(d),
        "a refused update changes nothing"
    );
}

/// `create_user` is all or nothing: when one credential cannot be written (its id is taken)
/// the account is not created either, and its e-mail stays free.
pub async fn create_user_is_atomic<B: Backend>(store: B) {
    let a = user("first@example.com");
    let taken = password(a.id, "$argon2id$first", at(0));
    store
        .create_user(&a, std::slice::from_ref(&taken))
        .await
        .expect("create_user with a credential");

    let b = user("second@example.com");
    let fresh = password(b.id, "$argon2id$fresh", at(0));
    let mut clash = password(b.id, "$argon2id$clash", at(1));
    clash.id = taken.id;
    let r = store.create_user(&b, &[fresh.clone(), clash]).await;
    assert!(
        matches!(r, Err(StoreError::Conflict(_))),
        "a credential id collision must fail the creation, got {r:?}"
    );
    assert_eq!(
        store.user_by_id(b.id).await.unwrap(),
        None,
        "a failed create_user must leave no account"
    );
    assert_eq!(
        store
            .user_by_email(&email("second@example.com"))
            .await
            .unwrap(),
        None,
        "nor its e-mail"
    );
    let creds = store
        .credentials_for_user(b.id, CredentialKind::Password)
        .await
        .unwrap();
    assert!(
        creds.is_empty(),
        "nor any of its credentials, found {creds:?}"
    );
    let kept = store
        .credentials_for_user(a.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(
        kept,
        vec![taken],
        "the other account's credential is untouched"
    );

    store
        .create_user(&b, std::slice::from_ref(&fresh))
        .await
        .expect("retrying without the clash succeeds");
    let creds = store
        .credentials_for_user(b.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(
        creds,
        vec![fresh],
        "the retried creation stored its credential"
    );
}

/// `update_user` writes only over the version it read: it returns the record with
/// `version + 1`; a stale version gives `VersionConflict` and changes nothing; an unknown
/// account gives `NotFound`.
pub async fn update_user_checks_version<B: Backend>(store: B) {
    let u = user("versions@example.com");
    store.create_user(&u, &[]).await.expect("create_user");

    let mut change = u.clone();
    change.status = UserStatus::Disabled;
    change
        .profile
        .insert("given_name".into(), serde_json::json!("Grace"));
    change.email_verified_at = Some(at(5));
    change.updated_at = at(6);
    let stored = store
        .update_user(&change)
        .await
        .expect("update_user with the current version");
    assert_eq!(
        stored.version,
        u.version + 1,
        "update_user stores version + 1"
    );
    let mut expected = change.clone();
    expected.version = u.version + 1;
    assert_eq!(stored, expected, "update_user returns the stored record");
    assert_eq!(
        store.user_by_id(u.id).await.unwrap(),
        Some(expected.clone()),
        "the update is stored"
    );

    let mut stale = u.clone();
    stale.status = UserStatus::Erased;
    let r = store.update_user(&stale).await;
    assert!(
        matches!(r, Err(StoreError::VersionConflict)),
        "a stale version must give VersionConflict, got {r:?}"
    );
    assert_eq!(
        store.user_by_id(u.id).await.unwrap(),
        Some(expected),
        "a refused update changes nothing"
    );

    let missing = user("missing@example.com");
    let r = store.update_user(&missing).await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "updating an unknown account must give NotFound, got {r:?}"
    );
}

/// Changing an account's e-mail, username and phone frees the old values for others.
pub async fn update_user_moves_identifiers<B: Backend>(store: B) {
    let mut u = user("old@example.com");
    u.username = Some(Username::parse("old_name").unwrap());
    u.phone = Some(Phone::parse("+33612345678").unwrap());
    store.create_user(&u, &[]).await.expect("create_user");

    let mut moved = u.clone();
    moved.email = Some(email("New@Example.com"));
    moved.username = Some(Username::parse("new_name").unwrap());
    moved.phone = None;
    let stored = store.update_user(&moved).await.expect("update_user");
    assert_eq!(
        store
            .user_by_email(&email("old@example.com"))
            .await
            .unwrap(),
        None,
        "the old e-mail no longer matches"
    );
    assert_eq!(
        store
            .user_by_email(&email("new@example.com"))
            .await
            .unwrap(),
        Some(stored),
        "the new e-mail matches"
    );

    let mut other = user("OLD@example.com");
    other.username = Some(Username::parse("Old_Name").unwrap());
    other.phone = Some(Phone::parse("+33612345678").unwrap());
    store
        .create_user(&other, &[])
        .await
        .expect("the freed e-mail, username and phone can be reused");
}

/// Activity: `touch_user_activity` only moves `last_active_at` forward and leaves the version;
/// `update_user` does not write it but writes `dormancy_notice_at`; `dormant_users` lists
/// accounts last active (or, never active, created) before the cut-off, least recently
/// active first, at most `limit`.
pub async fn activity_and_dormancy<B: Backend>(store: B) {
    let mut old = user("dormant-old@example.com");
    old.created_at = at(10);
    let mut never = user("dormant-never@example.com");
    never.created_at = at(20);
    let mut recent = user("dormant-recent@example.com");
    recent.created_at = at(5);
    for u in [&old, &never, &recent] {
        store.create_user(u, &[]).await.expect("create_user");
    }
    assert!(store.touch_user_activity(old.id, at(30)).await.unwrap());
    assert!(store.touch_user_activity(old.id, at(25)).await.unwrap());
    assert!(store.touch_user_activity(recent.id, at(100)).await.unwrap());
    let unknown = fixtures::user_id();
    assert!(
        !store.touch_user_activity(unknown, at(1)).await.unwrap(),
        "an unknown account gives false"
    );
    let stored = store.user_by_id(old.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_active_at,
        Some(at(30)),
        "activity only moves forward"
    );
    assert_eq!(stored.version, old.version, "activity leaves the version");

    let mut changed = stored.clone();
    changed.last_active_at = Some(at(1));
    changed.dormancy_notice_at = Some(at(40));
    store.update_user(&changed).await.expect("update_user");
    let stored = store.user_by_id(old.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_active_at,
        Some(at(30)),
        "update_user does not write the activity time"
    );
    assert_eq!(
        stored.dormancy_notice_at,
        Some(at(40)),
        "the notice time is written"
    );

    let ids = |list: Vec<ciam_core::user::User>| list.iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.dormant_users(at(50), 10).await.unwrap()),
        [never.id, old.id],
        "dormant before the cut-off, least recently active first"
    );
    assert_eq!(
        ids(store.dormant_users(at(50), 1).await.unwrap()),
        [never.id],
        "at most `limit`"
    );
    assert_eq!(
        ids(store.dormant_users(at(25), 10).await.unwrap()),
        [never.id],
        "the cut-off is exclusive of later activity"
    );
    assert_eq!(
        ids(store.dormant_users(at(101), 10).await.unwrap()),
        [never.id, old.id, recent.id]
    );
}

/// `delete_user` removes the account and its credentials, frees its identifiers, and answers
/// false the second time.
pub async fn delete_user_frees_everything<B: Backend>(store: B) {
    let mut u = user("erase-me@example.com");
    u.phone = Some(Phone::parse("+44 20 7946 0001").unwrap());
    u.username = Some(Username::parse("erase_me").unwrap());
    let c = password(u.id, "$argon2id$erase", at(1));
    store
        .create_user(&u, std::slice::from_ref(&c))
        .await
        .expect("create_user");
    let other = user("keep-me@example.com");
    let oc = password(other.id, "$argon2id$keep", at(1));
    store
        .create_user(&other, std::slice::from_ref(&oc))
        .await
        .unwrap();

    assert!(store.delete_user(u.id).await.expect("delete_user"));
    assert_eq!(
        store.user_by_id(u.id).await.unwrap(),
        None,
        "the account is gone"
    );
    assert_eq!(
        store.credential_by_id(c.id).await.unwrap(),
        None,
        "its credentials are gone"
    );
    assert!(
        store
            .credentials_for_user(u.id, CredentialKind::Password)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store.delete_user(u.id).await.unwrap(),
        "a second delete gives false"
    );
    let mut again = user("erase-me@example.com");
    again.phone = u.phone.clone();
    again.username = u.username.clone();
    store
        .create_user(&again, &[])
        .await
        .expect("the e-mail, phone and username are free again");
    assert_eq!(
        store.credential_by_id(oc.id).await.unwrap(),
        Some(oc),
        "other accounts keep their credentials"
    );
    assert!(store.user_by_id(other.id).await.unwrap().is_some());
}
