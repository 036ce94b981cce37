//! `Ciam::purge_expired` deletes expired sessions and one-time challenges, and nothing live.
//! On memory and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::challenge::ChallengePurpose;
use ciam::identifier::Email;
use ciam::store::Backend;
use ciam::{Policy, PurgeReport, Registration};
use support::{PW, ctx, harness, on_both_backends, pw};
use time::Duration;

async fn expired_records_are_purged<B: Backend>(store: Arc<B>) {
    let h = harness(Arc::clone(&store), Policy::default());
    let start = h.clock_now();
    let long_ago = start - Duration::days(1);
    // An account whose confirmation link is never used, and a signed-in one.
    h.ciam
        .register(Registration::new("pia@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let pia = store
        .user_by_email(&Email::parse("pia@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let ray = h.register_verified("ray@example.com").await;
    let links = |now| {
        let store = Arc::clone(&store);
        async move {
            store
                .count_challenges(pia.id, ChallengePurpose::VerifyEmail, long_ago, now)
                .await
                .unwrap()
        }
    };
    assert_eq!(links(start).await, 1, "the unused link is stored");
    assert_eq!(
        h.ciam.purge_expired().await.unwrap(),
        PurgeReport::default(),
        "nothing has expired yet"
    );
    assert_eq!(links(start).await, 1, "a live link survives a purge");

    // A month later, past the link's lifetime and the session's absolute lifetime; a new
    // account's link is live.
    h.clock.advance(Duration::days(31));
    h.ciam
        .register(Registration::new("quinn@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let report = h.ciam.purge_expired().await.unwrap();
    assert!(report.sessions >= 1, "{report:?}");
    assert!(report.challenges >= 1, "{report:?}");
    // Gone, even for a reader asking as of before they expired.
    assert_eq!(links(start).await, 0, "the expired link is deleted");
    let sessions = store.sessions_for_user(ray.user.id, start).await.unwrap();
    assert!(sessions.is_empty(), "the expired session is deleted");
    let quinn = store
        .user_by_email(&Email::parse("quinn@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let live = store
        .count_challenges(
            quinn.id,
            ChallengePurpose::VerifyEmail,
            long_ago,
            h.clock_now(),
        )
        .await
        .unwrap();
    assert_eq!(live, 1, "the new account's link survives");
    assert_eq!(
        h.ciam.purge_expired().await.unwrap(),
        PurgeReport::default(),
        "a second purge finds nothing"
    );
}

on_both_backends!(expired_records_are_purged);
