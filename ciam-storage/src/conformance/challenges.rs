//! Checks for [`ChallengeStore`](ciam_core::store::ChallengeStore).

use std::sync::Arc;

use ciam_core::challenge::ChallengePurpose;
use ciam_core::store::{Backend, StoreError};

use super::fixtures::{at, challenge, user};

/// A challenge is consumed once, only for its purpose, and read back exactly; a second
/// challenge with the same secret hash conflicts.
pub async fn consumed_once<B: Backend>(store: B) {
    let u = user("challenge@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let c = challenge(Some(u.id), ChallengePurpose::ResetPassword, 0, 600);
    store.insert_challenge(&c).await.expect("insert_challenge");
    let mut dup = challenge(Some(u.id), ChallengePurpose::VerifyEmail, 0, 600);
    dup.secret_hash = c.secret_hash;
    let r = store.insert_challenge(&dup).await;
    assert!(
        matches!(r, Err(StoreError::Conflict(_))),
        "a reused secret hash must conflict, got {r:?}"
    );

    let wrong = store
        .consume_challenge(ChallengePurpose::VerifyEmail, &c.secret_hash, at(1))
        .await
        .unwrap();
    assert!(wrong.is_none(), "a secret never satisfies another purpose");
    let got = store
        .consume_challenge(ChallengePurpose::ResetPassword, &c.secret_hash, at(1))
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(c.clone()),
        "consume returns the challenge as written (even after a wrong-purpose try)"
    );
    let again = store
        .consume_challenge(ChallengePurpose::ResetPassword, &c.secret_hash, at(1))
        .await
        .unwrap();
    assert!(again.is_none(), "a challenge is consumed only once");

    let anonymous = challenge(None, ChallengePurpose::VerifyEmail, 0, 600);
    store
        .insert_challenge(&anonymous)
        .await
        .expect("a challenge without a user");
    let got = store
        .consume_challenge(ChallengePurpose::VerifyEmail, &anonymous.secret_hash, at(2))
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(anonymous),
        "a challenge without a user round trips"
    );
}

/// Consuming an expired challenge gives `None` and removes it.
pub async fn expired_is_removed<B: Backend>(store: B) {
    let u = user("expired@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let c = challenge(Some(u.id), ChallengePurpose::VerifyEmail, 0, 600);
    store.insert_challenge(&c).await.expect("insert_challenge");
    let got = store
        .consume_challenge(ChallengePurpose::VerifyEmail, &c.secret_hash, at(600))
        .await
        .unwrap();
    assert!(got.is_none(), "a challenge is refused at its expiry");
    let n = store
        .count_challenges(u.id, ChallengePurpose::VerifyEmail, at(-60), at(0))
        .await
        .unwrap();
    assert_eq!(
        n, 0,
        "the expired challenge was removed by the consume attempt"
    );
    let got = store
        .consume_challenge(ChallengePurpose::VerifyEmail, &c.secret_hash, at(0))
        .await
        .unwrap();
    assert!(
        got.is_none(),
        "a removed challenge cannot be consumed even at an earlier time"
    );
}

/// Of 16 concurrent consumers of one secret, exactly one gets the challenge.
pub async fn consumed_once_under_concurrency<B: Backend>(store: B) {
    let u = user("race@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let c = challenge(Some(u.id), ChallengePurpose::ResetPassword, 0, 600);
    store.insert_challenge(&c).await.expect("insert_challenge");
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let hash = c.secret_hash;
            tokio::spawn(async move {
                store
                    .consume_challenge(ChallengePurpose::ResetPassword, &hash, at(1))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.expect("consume task panicked") {
            Ok(Some(got)) => {
                assert_eq!(got, c, "the winner gets the challenge as written");
                winners += 1;
            }
            Ok(None) => {}
            Err(e) => panic!("a losing consume must give Ok(None), got {e:?}"),
        }
    }
    assert_eq!(
        winners, 1,
        "exactly one of 16 concurrent consumers may get the challenge"
    );
}

/// `count_challenges` counts the user's live challenges of a purpose issued since a time;
/// `delete_challenges` removes all of the user's challenges of a purpose and counts them.
pub async fn count_and_delete<B: Backend>(store: B) {
    let u = user("count@example.com");
    let other = user("other@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    store.create_user(&other, &[]).await.expect("create_user");
    let verify = ChallengePurpose::VerifyEmail;
    let early = challenge(Some(u.id), verify, 0, 3600);
    let mid = challenge(Some(u.id), verify, 60, 3600);
    let late = challenge(Some(u.id), verify, 120, 3600);
    let short = challenge(Some(u.id), verify, 90, 100);
    let reset = challenge(Some(u.id), ChallengePurpose::ResetPassword, 60, 3600);
    let theirs = challenge(Some(other.id), verify, 60, 3600);
    for c in [&early, &mid, &late, &short, &reset, &theirs] {
        store.insert_challenge(c).await.expect("insert_challenge");
    }
    let n = store
        .count_challenges(u.id, verify, at(60), at(95))
        .await
        .unwrap();
    assert_eq!(
        n, 3,
        "issued at or after `since`, live at `now`, of the purpose, of the user"
    );
    let n = store
        .count_challenges(u.id, verify, at(60), at(100))
        .await
        .unwrap();
    assert_eq!(n, 2, "a challenge expired at `now` is not counted");
    let n = store
        .count_challenges(u.id, verify, at(0), at(100))
        .await
        .unwrap();
    assert_eq!(n, 3, "`since` is inclusive");

    let n = store.delete_challenges(u.id, verify).await.unwrap();
    assert_eq!(
        n, 4,
        "delete_challenges removes every challenge of the purpose for the user"
    );
    let got = store
        .consume_challenge(verify, &mid.secret_hash, at(1))
        .await
        .unwrap();
    assert!(got.is_none(), "a deleted challenge cannot be consumed");
    let got = store
        .consume_challenge(ChallengePurpose::ResetPassword, &reset.secret_hash, at(61))
        .await
        .unwrap();
    assert_eq!(got, Some(reset), "other purposes are untouched");
    let got = store
        .consume_challenge(verify, &theirs.secret_hash, at(61))
        .await
        .unwrap();
    assert_eq!(got, Some(theirs), "other users' challenges are untouched");
}

/// `challenge_by_hash` reads a live challenge of its purpose without consuming it, and gives
/// nothing for another purpose, an unknown hash or once it has expired.
pub async fn read_without_consuming<B: Backend>(store: B) {
    let u = user("device@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let c = challenge(Some(u.id), ChallengePurpose::TrustedDevice, 0, 600);
    store.insert_challenge(&c).await.expect("insert_challenge");
    for _ in 0..2 {
        let read = store
            .challenge_by_hash(ChallengePurpose::TrustedDevice, &c.secret_hash, at(10))
            .await
            .unwrap();
        assert_eq!(read, Some(c.clone()), "read back as written, and again");
    }
    assert_eq!(
        store
            .challenge_by_hash(ChallengePurpose::MagicLink, &c.secret_hash, at(10))
            .await
            .unwrap(),
        None,
        "not for another purpose"
    );
    let other = challenge(Some(u.id), ChallengePurpose::TrustedDevice, 0, 600);
    assert_eq!(
        store
            .challenge_by_hash(ChallengePurpose::TrustedDevice, &other.secret_hash, at(10))
            .await
            .unwrap(),
        None,
        "an unknown hash gives None"
    );
    assert_eq!(
        store
            .challenge_by_hash(ChallengePurpose::TrustedDevice, &c.secret_hash, at(600))
            .await
            .unwrap(),
        None,
        "an expired challenge is not read"
    );
    let consumed = store
        .consume_challenge(ChallengePurpose::TrustedDevice, &c.secret_hash, at(20))
        .await
        .unwrap();
    assert_eq!(consumed, Some(c), "reading left it in place");
}

/// Purging deletes the challenges expired at `now` (with or without a user) and nothing else;
/// a second purge finds nothing. A store that expires records by itself (Redis) may report 0
/// and keep them until their TTL; then nothing may have gone.
pub async fn expired_are_purged<B: Backend>(store: B) {
    let u = user("purge@example.com");
    store.create_user(&u, &[]).await.expect("create_user");
    let early = challenge(Some(u.id), ChallengePurpose::VerifyEmail, 0, 300);
    let anonymous = challenge(None, ChallengePurpose::FederationState, 0, 600);
    let live = challenge(Some(u.id), ChallengePurpose::VerifyEmail, 0, 1200);
    for c in [&early, &anonymous, &live] {
        store.insert_challenge(c).await.expect("insert_challenge");
    }
    let purged = store
        .purge_expired_challenges(at(600))
        .await
        .expect("purge_expired_challenges");
    assert!(
        purged == 2 || purged == 0,
        "two challenges were expired at the purge (one at its exact expiry), {purged} purged"
    );
    // Deleted rows are gone even for a reader at an earlier time, when they were still valid.
    let early_seen = store
        .challenge_by_hash(ChallengePurpose::VerifyEmail, &early.secret_hash, at(0))
        .await
        .unwrap();
    let anonymous_seen = store
        .challenge_by_hash(
            ChallengePurpose::FederationState,
            &anonymous.secret_hash,
            at(0),
        )
        .await
        .unwrap();
    if purged == 2 {
        assert!(
            early_seen.is_none() && anonymous_seen.is_none(),
            "purged challenges are deleted"
        );
    } else {
        assert!(
            early_seen.is_some() && anonymous_seen.is_some(),
            "a purge that reports 0 deleted nothing"
        );
    }
    assert_eq!(
        store.purge_expired_challenges(at(600)).await.unwrap(),
        0,
        "a second purge at the same time finds nothing"
    );
    let kept = store
        .challenge_by_hash(ChallengePurpose::VerifyEmail, &live.secret_hash, at(600))
        .await
        .unwrap();
    assert_eq!(kept, Some(live), "a live challenge survives the purge");
}
