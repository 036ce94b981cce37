//! Checks for [`CredentialStore`](ciam_core::store::CredentialStore).

use ciam_core::credential::CredentialKind;
use ciam_core::store::{Backend, StoreError};

use super::fixtures::{self, at, password, user};

/// `update_credential` replaces the secret only over the version it read and returns the
/// stored record with `version + 1`; a stale version gives `VersionConflict` and changes
/// nothing; an unknown id gives `NotFound`. `touch_credential` records the use without
/// changing the version.
pub async fn update_credential_checks_version<B: Backend>(store: B) {
    let u = user("cred@example.com");
    let c = password(u.id, "$argon2id$v=19$old", at(0));
    store
        .create_user(&u, std::slice::from_ref(&c))
        .await
        .expect("create_user");

    store
        .touch_credential(c.id, at(30))
        .await
        .expect("touch_credential");
    let listed = store
        .credentials_for_user(u.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(
        listed.first().and_then(|c| c.last_used_at),
        Some(at(30)),
        "touch_credential records the use"
    );
    assert_eq!(
        listed.first().map(|c| c.version),
        Some(c.version),
        "touch_credential keeps the version"
    );

    let mut rehash = c.clone();
    rehash.secret = "$argon2id$v=19$new".to_owned();
    rehash.updated_at = at(31);
    let stored = store
        .update_credential(&rehash)
        .await
        .expect("update_credential with the current version");
    let mut expected = rehash.clone();
    expected.version = c.version + 1;
    expected.last_used_at = Some(at(30));
    assert_eq!(
        stored, expected,
        "update_credential returns the stored record (with version + 1)"
    );

    let mut stale = c.clone();
    stale.secret = "$argon2id$v=19$lost".to_owned();
    let r = store.update_credential(&stale).await;
    assert!(
        matches!(r, Err(StoreError::VersionConflict)),
        "a stale version must give VersionConflict, got {r:?}"
    );
    let listed = store
        .credentials_for_user(u.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(listed, vec![expected], "a refused update changes nothing");

    let unknown = password(u.id, "x", at(0));
    let r = store.update_credential(&unknown).await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "an unknown credential must give NotFound, got {r:?}"
    );
}

/// A user's credentials of a kind are listed oldest first and only theirs; deleting one
/// reports whether it existed.
pub async fn list_by_kind_and_delete<B: Backend>(store: B) {
    let u = user("list@example.com");
    let other = user("other@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    store.create_user(&other, &[]).await.expect("create_user");
    let newer = password(u.id, "$newer", at(20));
    let older = password(u.id, "$older", at(10));
    let theirs = password(other.id, "$theirs", at(5));
    for c in [&newer, &older, &theirs] {
        store.insert_credential(c).await.expect("insert_credential");
    }
    let dup = store.insert_credential(&older).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "a duplicate credential id must conflict, got {dup:?}"
    );

    let listed = store
        .credentials_for_user(u.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(
        listed,
        vec![older.clone(), newer.clone()],
        "credentials are listed oldest first, only the user's"
    );
    let none = store
        .credentials_for_user(fixtures::user_id(), CredentialKind::Password)
        .await
        .unwrap();
    assert!(none.is_empty(), "an unknown user has no credentials");

    assert!(
        store.delete_credential(older.id).await.unwrap(),
        "deleting an existing credential gives true"
    );
    assert!(
        !store.delete_credential(older.id).await.unwrap(),
        "deleting it again gives false"
    );
    let listed = store
        .credentials_for_user(u.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(listed, vec![newer], "the deleted credential is gone");
    let listed = store
        .credentials_for_user(other.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(
        listed,
        vec![theirs],
        "other users' credentials are untouched"
    );
}
