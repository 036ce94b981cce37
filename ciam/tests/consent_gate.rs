//! A material policy change makes the next sign-in answer "consent needed": the engine (on
//! memory and SQLite) with ciam-consent's ledger, on a real SQLite consent store, as its
//! consent gate.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::clock::ManualClock;
use ciam::consent::sqlite::SqliteConsentStore;
use ciam::consent::{
    Catalog, ConsentLedger, Decision, Denied, LedgerGate, LegalBasis, MasterKey, PolicyDocument,
    Purpose, Source,
};
use ciam::store::Backend;
use ciam::{Error, Policy};
use support::{PW, harness_with, on_both_backends};
use time::macros::datetime;

/// Policy 1 in force from 2025; policy 2, a material change, from 1 April 2026 (the harness
/// clock starts on 1 March 2026).
fn catalog() -> Catalog {
    Catalog::new()
        .purpose(Purpose::new("newsletter", "The weekly newsletter", LegalBasis::Consent).unwrap())
        .purpose(Purpose::new("analytics", "Product analytics", LegalBasis::Consent).unwrap())
        .purpose(Purpose::new("terms", "The terms of service", LegalBasis::Contract).unwrap())
        .policy(PolicyDocument::new(
            1,
            b"Privacy policy 1",
            datetime!(2025-01-01 00:00 UTC),
            "https://acme.example/privacy/1",
        ))
        .unwrap()
        .policy(
            PolicyDocument::new(
                2,
                b"Privacy policy 2: we now share with partners",
                datetime!(2026-04-01 00:00 UTC),
                "https://acme.example/privacy/2",
            )
            .material(true),
        )
        .unwrap()
}

fn web() -> Source {
    Source::new("acme", "privacy-centre").text_shown(b"Send me the newsletter")
}

async fn material_policy_change_makes_the_next_sign_in_ask_for_consent<B: Backend>(
    backend: Arc<B>,
) {
    let store = SqliteConsentStore::connect("sqlite::memory:")
        .await
        .unwrap();
    let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
    let ledger =
        ConsentLedger::builder(Arc::new(store), catalog(), MasterKey::from_bytes(&[3; 32]))
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
    let gate = LedgerGate::new(ledger.clone(), Source::new("acme", "sign-in"));
    let engine_clock = clock.clone();
    let h = harness_with(backend, Policy::default(), move |b| {
        b.clock(Arc::new(engine_clock)).consent_gate(Arc::new(gate))
    });

    // Before any consent, and with consent under the policy in force, nothing is pending.
    let first = h.register_verified("ada@example.com").await;
    assert!(first.consent_required.is_empty());
    let user = first.user.id;
    ledger.grant(user, "newsletter", web()).await.unwrap();
    assert!(ledger.check(user, "newsletter").await.unwrap().is_allowed());
    let again = h.sign_in("ada@example.com", PW).await;
    assert!(
        again.consent_required.is_empty(),
        "{:?}",
        again.consent_required
    );

    // Policy 2 comes into force: the next sign-in still signs in, and says what to ask.
    clock.advance(time::Duration::days(31));
    let after = h.sign_in("ada@example.com", PW).await;
    assert!(h.auth(&after).await.is_ok(), "the session is issued");
    assert_eq!(
        after.consent_required.len(),
        1,
        "{:?}",
        after.consent_required
    );
    let pending = &after.consent_required[0];
    assert_eq!(pending.purpose, "newsletter");
    assert_eq!(pending.description, "The weekly newsletter");
    assert_eq!(pending.policy_version, 2);
    assert_eq!(pending.consented_under, Some(1));
    assert_eq!(
        pending.policy_url.as_deref(),
        Some("https://acme.example/privacy/2")
    );
    // ... and the ledger now denies the purpose until the user answers.
    assert!(matches!(
        ledger.check(user, "newsletter").await.unwrap(),
        Decision::Deny(Denied::ReconsentRequired(_))
    ));
    // A purpose never consented to, and a contract purpose, are not asked again.
    assert!(!ledger.check(user, "analytics").await.unwrap().is_allowed());
    assert!(ledger.check(user, "terms").await.unwrap().is_allowed());

    // Signing in again before answering asks again, without writing a second requirement.
    let records = ledger.history(user).await.unwrap().len();
    let still = h.sign_in("ada@example.com", PW).await;
    assert_eq!(still.consent_required.len(), 1);
    assert_eq!(still.consent_required[0].policy_version, 2);
    assert_eq!(ledger.history(user).await.unwrap().len(), records);

    // Every sign-in path asks (they all make their session in one place): a magic link too.
    let n = h.outbox.count_to("ada@example.com").await;
    let binding = h
        .ciam
        .start_magic_link("ada@example.com", &support::ctx())
        .await
        .unwrap();
    let mail = h.outbox.nth_to("ada@example.com", n + 1).await;
    let via_link = support::expect_signed_in(
        h.ciam
            .confirm_magic_link(&support::token_in(&mail), Some(&binding), &support::ctx())
            .await,
    );
    assert_eq!(via_link.consent_required, still.consent_required);

    // Granting under policy 2 settles it.
    let granted = ledger.grant(user, "newsletter", web()).await.unwrap();
    assert_eq!(granted.record.body.policy_version, 2);
    assert!(ledger.check(user, "newsletter").await.unwrap().is_allowed());
    let settled = h.sign_in("ada@example.com", PW).await;
    assert!(
        settled.consent_required.is_empty(),
        "{:?}",
        settled.consent_required
    );
    ledger.verify().await.unwrap();
}

/// A gate that cannot answer fails the sign-in (no session) instead of hiding a pending
/// policy change; the failure is the engine's `Unavailable`.
async fn a_failing_gate_fails_the_sign_in<B: Backend>(backend: Arc<B>) {
    let store = SqliteConsentStore::connect("sqlite::memory:")
        .await
        .unwrap();
    let pool = store.pool().clone();
    let ledger =
        ConsentLedger::builder(Arc::new(store), catalog(), MasterKey::from_bytes(&[3; 32]))
            .build()
            .unwrap();
    let gate = LedgerGate::new(ledger, Source::new("acme", "sign-in"));
    let h = harness_with(backend, Policy::default(), move |b| {
        b.consent_gate(Arc::new(gate))
    });
    let s = h.register_verified("bo@example.com").await;
    assert!(s.consent_required.is_empty());
    // The consent database goes away.
    pool.close().await;
    let r = h.try_sign_in("bo@example.com", PW, &support::ctx()).await;
    assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
    let sessions = h
        .ciam
        .list_sessions(&h.auth(&s).await.unwrap())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "no new session was made");
}

on_both_backends!(
    material_policy_change_makes_the_next_sign_in_ask_for_consent,
    a_failing_gate_fails_the_sign_in,
);
