//! Checks for [`CredentialStore`](ciam_core::store::CredentialStore).

use ciam_core::credential::CredentialKind;
use ciam_core::store::{Backend, StoreError};

use super::fixtures::{self, at, passkey, password, user};

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

/// A credential's `lookup` key finds it without its owner, per kind; a second credential of
/// the same kind with the same key conflicts (also inside `create_user`), while another kind
/// may reuse it; `credential_by_id` reads it back; `update_credential` renames it but never
/// changes its lookup key; deleting it frees the key.
pub async fn lookup_keys<B: Backend>(store: B) {
    let u = user("lookup@example.com");
    let other = user("lookup-other@example.com");
    let key = [0xA5_u8; 32];
    let first = passkey(u.id, &key, at(0));
    store
        .create_user(&u, std::slice::from_ref(&first))
        .await
        .expect("create_user with a passkey");

    let found = store
        .credential_by_lookup(CredentialKind::Passkey, &key)
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&first), "found by lookup key");
    assert_eq!(
        store.credential_by_id(first.id).await.unwrap().as_ref(),
        Some(&first),
        "found by id"
    );
    assert_eq!(
        store
            .credential_by_id(fixtures::credential_id())
            .await
            .unwrap(),
        None,
        "an unknown id gives None"
    );
    assert_eq!(
        store
            .credential_by_lookup(CredentialKind::Password, &key)
            .await
            .unwrap(),
        None,
        "the key is scoped to its kind"
    );
    let mut shorter = key.to_vec();
    shorter.pop();
    assert_eq!(
        store
            .credential_by_lookup(CredentialKind::Passkey, &shorter)
            .await
            .unwrap(),
        None,
        "keys compare as whole byte strings"
    );

    let dup = passkey(other.id, &key, at(1));
    let r = store.create_user(&other, std::slice::from_ref(&dup)).await;
    assert!(
        matches!(r, Err(StoreError::Conflict(_))),
        "create_user with a taken lookup key conflicts, got {r:?}"
    );
    assert_eq!(
        store.user_by_id(other.id).await.unwrap(),
        None,
        "the refused create_user wrote nothing"
    );
    store.create_user(&other, &[]).await.expect("create_user");
    let r = store.insert_credential(&dup).await;
    assert!(
        matches!(r, Err(StoreError::Conflict(_))),
        "insert_credential with a taken lookup key conflicts, got {r:?}"
    );
    let mut same_key_other_kind = password(other.id, "$x", at(2));
    same_key_other_kind.lookup = Some(key.to_vec());
    store
        .insert_credential(&same_key_other_kind)
        .await
        .expect("another kind may use the same key");
    let unkeyed = [
        password(other.id, "$a", at(3)),
        password(other.id, "$b", at(4)),
    ];
    for c in &unkeyed {
        store
            .insert_credential(c)
            .await
            .expect("credentials without a lookup key never conflict on it");
    }

    let mut renamed = first.clone();
    renamed.name = Some("Phone".to_owned());
    renamed.secret = r#"{"record":"counter 2"}"#.to_owned();
    renamed.lookup = Some(vec![1, 2, 3]);
    renamed.updated_at = at(5);
    let stored = store.update_credential(&renamed).await.unwrap();
    assert_eq!(stored.name.as_deref(), Some("Phone"), "the name is updated");
    assert_eq!(stored.secret, renamed.secret, "the secret is updated");
    assert_eq!(
        stored.lookup.as_deref(),
        Some(&key[..]),
        "the lookup key never changes"
    );
    assert_eq!(
        store
            .credential_by_lookup(CredentialKind::Passkey, &key)
            .await
            .unwrap(),
        Some(stored.clone()),
        "the updated record is found by its key"
    );

    assert!(store.delete_credential(first.id).await.unwrap());
    assert_eq!(
        store
            .credential_by_lookup(CredentialKind::Passkey, &key)
            .await
            .unwrap(),
        None,
        "a deleted credential is not found"
    );
    store
        .insert_credential(&dup)
        .await
        .expect("a deleted credential's key can be registered again");
}

/// Of concurrent inserts of the same kind and lookup key, exactly one succeeds.
pub async fn lookup_key_races<B: Backend>(store: B) {
    let store = std::sync::Arc::new(store);
    let key = [0x5A_u8; 16];
    let mut users = Vec::new();
    for i in 0..8 {
        let u = user(&format!("race{i}@example.com"));
        store.create_user(&u, &[]).await.expect("create_user");
        users.push(u);
    }
    let mut tasks = Vec::new();
    for u in &users {
        let store = std::sync::Arc::clone(&store);
        let c = passkey(u.id, &key, at(0));
        tasks.push(tokio::spawn(
            async move { store.insert_credential(&c).await },
        ));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("a racing insert must succeed or conflict, got {e:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one racing insert wins the lookup key");
}
