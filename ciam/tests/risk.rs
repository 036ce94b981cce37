//! Adaptive risk at sign-in, through the engine, on memory and SQLite: what each decision
//! was, which rules fired with which inputs (from the audit log), the reason shown, and what
//! the user then had to do.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::{AuditAction, AuditEntry, AuditOutcome};
use ciam::risk::{BreachCheckError, BreachedPasswords, DefaultRiskPolicy};
use ciam::store::Backend;
use ciam::{Error, MfaFactor, MfaProof, Policy, RequestContext, SecretString, SignInOutcome};
use support::{Harness, PW, harness_with, on_both_backends, pw};

/// The leaked password of these tests.
const LEAKED: &str = "hunter2 hunter2 hunter2";

/// A breach corpus holding exactly one password from the moment it is `listed` (a corpus
/// updated after an account chose that password); the trait's contract without files, the
/// range-file reader has its own tests in ciam-core.
#[derive(Debug)]
struct Corpus(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl BreachedPasswords for Corpus {
    async fn is_breached(&self, password: &SecretString) -> Result<bool, BreachCheckError> {
        Ok(self.0.load(std::sync::atomic::Ordering::SeqCst) && password.expose() == LEAKED)
    }
}

fn risky_with<B: Backend>(store: Arc<B>, corpus: Arc<Corpus>) -> Harness<B> {
    harness_with(store, Policy::default(), |b| {
        b.risk_policy(Arc::new(DefaultRiskPolicy::default()))
            .breached_passwords(corpus)
    })
}

fn risky<B: Backend>(store: Arc<B>) -> Harness<B> {
    risky_with(store, Arc::new(Corpus(true.into())))
}

/// London (51.5074 N, 0.1278 W) and Sydney (33.8688 S, 151.2093 E).
const LONDON: (f64, f64) = (51.5074, -0.1278);
const SYDNEY: (f64, f64) = (-33.8688, 151.2093);

fn from(ip: &str, device: Option<&ciam::OpaqueToken>, at: (f64, f64)) -> RequestContext {
    RequestContext::new(Some(ip.parse().unwrap()), Some("risk-test/1.0"))
        .with_device_token(device.cloned())
        .with_location(at.0, at.1)
}

async fn last_assessment<B: Backend>(h: &Harness<B>, user: ciam::id::UserId) -> AuditEntry {
    h.ciam
        .audit_log(user, 50)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::RiskAssessed)
        .expect("a risk_assessed entry")
}

fn rules(e: &AuditEntry) -> Vec<String> {
    e.detail["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// The first sign-in has no baseline; the next from the same device and network is allowed
/// with no rule fired; a new device on a new network is challenged, and with no enrolled
/// factor the challenge is a code mailed to the verified address.
async fn new_device_and_network_are_challenged<B: Backend>(store: Arc<B>) {
    let h = risky(store);
    let first = h.register_verified("ada@example.com").await;
    let user = first.user.id;
    let device = first.device_token.clone().expect("a trusted-device token");
    let first_check = last_assessment(&h, user).await;
    assert_eq!(first_check.reason, "allow");
    assert!(
        rules(&first_check).is_empty(),
        "no history, no baseline: {:?}",
        first_check.detail
    );

    let home = from("203.0.113.7", Some(&device), LONDON);
    let again = h
        .ciam
        .sign_in_password("ada@example.com", &pw(PW), &home)
        .await
        .unwrap();
    assert!(matches!(again, SignInOutcome::SignedIn(_)));
    let check = last_assessment(&h, user).await;
    assert_eq!(check.outcome, AuditOutcome::Success);
    assert_eq!(check.detail["decision"], "allow");
    assert!(rules(&check).is_empty(), "{:?}", check.detail);

    let elsewhere = from("198.51.100.20", None, LONDON);
    let outcome = h
        .ciam
        .sign_in_password("ada@example.com", &pw(PW), &elsewhere)
        .await
        .unwrap();
    let SignInOutcome::MfaRequired(challenge) = outcome else {
        panic!("expected a challenge, got {outcome:?}");
    };
    assert_eq!(challenge.factors, vec![MfaFactor::EmailCode]);
    assert_eq!(
        challenge.reason.as_deref(),
        Some("We don't recognise this device, so we need to confirm it's you.")
    );
    let check = last_assessment(&h, user).await;
    assert_eq!(check.detail["decision"], "challenge");
    assert_eq!(rules(&check), vec!["new_device", "new_network"]);
    assert_eq!(check.detail["score"], 35);
    assert_eq!(
        check.detail["reason_shown"],
        challenge.reason.clone().unwrap()
    );

    // The mailed code completes the sign-in; a wrong one does not.
    let wrong = h
        .ciam
        .complete_mfa(
            challenge.token.expose(),
            &MfaProof::EmailCode(pw("000000")),
            false,
            &elsewhere,
        )
        .await;
    let mail = h.outbox.nth_to("ada@example.com", 2).await;
    let code: String = mail
        .text
        .split("code is ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    if code != "000000" {
        assert!(matches!(wrong, Err(Error::InvalidCode)), "{wrong:?}");
    }
    let done = h
        .ciam
        .complete_mfa(
            challenge.token.expose(),
            &MfaProof::EmailCode(pw(&code)),
            false,
            &elsewhere,
        )
        .await
        .unwrap();
    let SignInOutcome::SignedIn(s) = done else {
        panic!("expected signed in");
    };
    let amr: Vec<&str> = s.session.amr.iter().map(|m| m.as_str()).collect();
    assert_eq!(amr, ["pwd", "email", "mfa"]);
}

/// London then Sydney two hours later from the same device: impossible travel, with the
/// computed distance and speed in the audit detail.
async fn impossible_travel_is_explained<B: Backend>(store: Arc<B>) {
    let h = risky(store);
    let first = h.register_verified("bo@example.com").await;
    let device = first.device_token.clone().unwrap();
    let user = first.user.id;
    let home = from("203.0.113.7", Some(&device), LONDON);
    h.ciam
        .sign_in_password("bo@example.com", &pw(PW), &home)
        .await
        .unwrap();
    h.clock.advance(time::Duration::hours(2));
    let far = from("203.0.113.7", Some(&device), SYDNEY);
    let outcome = h
        .ciam
        .sign_in_password("bo@example.com", &pw(PW), &far)
        .await
        .unwrap();
    let SignInOutcome::MfaRequired(challenge) = outcome else {
        panic!("expected a challenge, got {outcome:?}");
    };
    assert_eq!(
        challenge.reason.as_deref(),
        Some(
            "This sign-in comes from far away from your last one, so we need to confirm it's you."
        )
    );
    let check = last_assessment(&h, user).await;
    assert_eq!(rules(&check), vec!["impossible_travel"]);
    let inputs = &check.detail["rules"][0]["inputs"];
    let km = inputs["distance_km"].as_f64().unwrap();
    let speed = inputs["speed_kmh"].as_f64().unwrap();
    assert!((16_900.0..17_100.0).contains(&km), "{km}");
    assert!((8_000.0..9_000.0).contains(&speed), "{speed}");
    assert_eq!(inputs["max_speed_kmh"], 1000.0);
}

/// A breached password with recent failures on the account is denied outright, with the
/// vague reason, and the rules behind it recorded.
async fn breached_password_with_velocity_is_denied<B: Backend>(store: Arc<B>) {
    let corpus = Arc::new(Corpus(false.into()));
    let h = risky_with(store, corpus.clone());
    let email = "cy@example.com";
    h.ciam
        .register(
            ciam::Registration::new(email, Some(pw(LEAKED))),
            &support::ctx(),
        )
        .await
        .unwrap();
    h.verify_latest(email).await;
    // The password leaks elsewhere after the account chose it.
    corpus.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let attacker = from("192.0.2.50", None, LONDON);
    for _ in 0..5 {
        let r = h
            .ciam
            .sign_in_password(email, &pw("wrong guess number one"), &attacker)
            .await;
        assert!(
            matches!(
                r,
                Err(Error::InvalidCredentials | Error::RateLimited { .. })
            ),
            "{r:?}"
        );
    }
    // Past the throttle's delay, the right (breached) password from the attacker's IP.
    h.clock.advance(time::Duration::minutes(1));
    let r = h.ciam.sign_in_password(email, &pw(LEAKED), &attacker).await;
    let Err(Error::RiskDenied { reason }) = r else {
        panic!("expected a denial, got {r:?}");
    };
    assert_eq!(reason, ciam::risk::REASON_DENY);
    let user = h
        .store
        .user_by_email(&ciam::identifier::Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let check = last_assessment(&h, user).await;
    assert_eq!(check.outcome, AuditOutcome::Failure);
    assert_eq!(check.detail["decision"], "deny");
    let fired = rules(&check);
    assert!(fired.contains(&"breached_password".to_owned()), "{fired:?}");
    assert!(fired.contains(&"account_velocity".to_owned()), "{fired:?}");
    let velocity = check.detail["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "account_velocity")
        .unwrap();
    assert!(velocity["inputs"]["failures"].as_u64().unwrap() >= 5);
}

/// An application-supplied bot score above the deny threshold is refused, whatever else.
async fn bot_score_denies<B: Backend>(store: Arc<B>) {
    let h = risky(store);
    let first = h.register_verified("di@example.com").await;
    let bot = support::ctx()
        .with_device_token(first.device_token.clone())
        .with_bot_score(0.97);
    let r = h
        .ciam
        .sign_in_password("di@example.com", &pw(PW), &bot)
        .await;
    assert!(matches!(r, Err(Error::RiskDenied { .. })), "{r:?}");
    let check = last_assessment(&h, first.user.id).await;
    assert_eq!(rules(&check), vec!["bot_score"]);
    let score = check.detail["rules"][0]["inputs"]["score"]
        .as_f64()
        .unwrap();
    assert!((score - 0.97).abs() < 1e-6, "{score}");
}

/// A breached password is refused when it is chosen: at sign-up, reset and change.
async fn breached_passwords_cannot_be_chosen<B: Backend>(store: Arc<B>) {
    let h = risky(store);
    let r = h
        .ciam
        .register(
            ciam::Registration::new("fay@example.com", Some(pw(LEAKED))),
            &support::ctx(),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(Error::WeakPassword(
                ciam::password::PolicyViolation::Breached
            ))
        ),
        "{r:?}"
    );
    let s = h.register_verified("fay@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    let r = h
        .ciam
        .change_password(&auth, Some(&pw(PW)), &pw(LEAKED), &support::ctx())
        .await;
    assert!(
        matches!(
            r,
            Err(Error::WeakPassword(
                ciam::password::PolicyViolation::Breached
            ))
        ),
        "{r:?}"
    );
    assert_eq!(
        r.unwrap_err().public_message(),
        "This password has appeared in a data breach. Choose a different one."
    );
}

/// A password the policy would refuse today (here: imported, shorter than the 15 characters
/// a single-factor password needs) signs in, with the weak-password rule recorded.
async fn weak_password_is_a_signal<B: Backend>(store: Arc<B>) {
    let h = risky(store);
    let now = h.clock_now();
    let mut user = ciam::user::User::new(
        ciam::id::UserId::generate(&ciam::rng::SystemRandom::new()).unwrap(),
        now,
    );
    user.email = Some(ciam::identifier::Email::parse("gus@example.com").unwrap());
    user.email_verified_at = Some(now);
    let phc = h
        .ciam
        .password_hasher()
        .hash(&pw("tr0ub4dor&3"))
        .await
        .unwrap();
    let credential = ciam::credential::Credential::new(
        ciam::id::CredentialId::generate(&ciam::rng::SystemRandom::new()).unwrap(),
        user.id,
        ciam::credential::CredentialKind::Password,
        phc,
        now,
    );
    h.store
        .create_user(&user, std::slice::from_ref(&credential))
        .await
        .unwrap();
    let outcome = h
        .ciam
        .sign_in_password("gus@example.com", &pw("tr0ub4dor&3"), &support::ctx())
        .await
        .unwrap();
    assert!(matches!(outcome, SignInOutcome::SignedIn(_)), "{outcome:?}");
    let check = last_assessment(&h, user.id).await;
    assert_eq!(check.detail["decision"], "allow");
    assert_eq!(rules(&check), vec!["weak_password"]);
    assert_eq!(check.detail["rules"][0]["points"], 10);
}

on_both_backends!(
    weak_password_is_a_signal,
    breached_passwords_cannot_be_chosen,
    new_device_and_network_are_challenged,
    impossible_travel_is_explained,
    breached_password_with_velocity_is_denied,
    bot_score_denies,
);
