//! Adaptive risk at sign-in, through the engine, on memory and SQLite: what each decision
//! was, which rules fired with which inputs (from the audit log), the reason shown, and what
//! the user then had to do.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::{AuditAction, AuditEntry, AuditOutcome};
use ciam::risk::{
    BreachCheckError, BreachedPasswords, DefaultRiskPolicy, REASON_DENY, SmsError, SmsSender,
};
use ciam::store::Backend;
use ciam::{Error, MfaFactor, MfaProof, Policy, RequestContext, SecretString, SignInOutcome};
use support::{Captchas, Harness, PW, harness_with, on_both_backends, pw};

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
    assert_eq!(reason, REASON_DENY);
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

/// An application-supplied bot score above the deny threshold is refused, whatever else,
/// with the deliberately vague reason; the audit entry records the denial and its rule.
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
    let Err(Error::RiskDenied { reason }) = r else {
        panic!("expected a denial, got {r:?}");
    };
    assert_eq!(reason, REASON_DENY);
    let check = last_assessment(&h, first.user.id).await;
    assert_eq!(check.outcome, AuditOutcome::Failure);
    assert_eq!(check.reason, "deny");
    assert_eq!(check.detail["decision"], "deny");
    assert_eq!(check.detail["reason_shown"], REASON_DENY);
    assert_eq!(rules(&check), vec!["bot_score"]);
    let score = check.detail["rules"][0]["inputs"]["score"]
        .as_f64()
        .unwrap();
    assert!((score - 0.97).abs() < 1e-6, "{score}");
    assert_eq!(check.detail["rules"][0]["inputs"]["deny_above"], 0.9);
    // No bot check is configured here: the application's score alone decided.
    assert!(check.detail.get("bot_check").is_none());
}

fn with_captchas<B: Backend>(store: Arc<B>) -> Harness<B> {
    let mut policy = Policy::default();
    // These tests ask for more sign-in codes than the default hourly mail limit allows.
    policy.mails_per_hour = 10;
    harness_with(store, policy, |b| {
        b.risk_policy(Arc::new(DefaultRiskPolicy::default()))
            .bot_check(Arc::new(Captchas))
    })
}

fn bot_token(token: &str) -> Option<SecretString> {
    Some(SecretString::new(token))
}

/// The code in the newest sign-in code mail to `email`, the `n`th mail to it.
async fn mailed_code<B: Backend>(h: &Harness<B>, email: &str, n: usize) -> String {
    let mail = h.outbox.nth_to(email, n).await;
    mail.text
        .split("code is ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect()
}

/// A middling score from the bot check asks for a CAPTCHA only: a typed `MfaRequired` with
/// `MfaFactor::Captcha` and the reason, not a denial. A solved CAPTCHA completes it (a person,
/// not a second factor: `amr` stays `pwd`, AAL1); an unsolved one does not; a CAPTCHA does not
/// answer a challenge that asked for an identity factor. The bot check needs a risk policy.
async fn a_mid_bot_score_asks_for_a_captcha<B: Backend>(store: Arc<B>) {
    let h = with_captchas(store);
    let first = h.register_verified("ed@example.com").await;
    let user = first.user.id;
    let home = support::ctx().with_device_token(first.device_token.clone());

    let outcome = h
        .ciam
        .sign_in_password(
            "ed@example.com",
            &pw(PW),
            &home.clone().with_bot_token(bot_token("mid")),
        )
        .await
        .unwrap();
    let SignInOutcome::MfaRequired(challenge) = outcome else {
        panic!("expected a CAPTCHA challenge, got {outcome:?}");
    };
    assert_eq!(challenge.factors, vec![MfaFactor::Captcha]);
    let reason = "We need to check that you're a person and not an automated program.";
    assert_eq!(challenge.reason.as_deref(), Some(reason));
    let check = last_assessment(&h, user).await;
    assert_eq!(check.outcome, AuditOutcome::Success);
    assert_eq!(check.reason, "challenge");
    assert_eq!(check.detail["decision"], "challenge");
    assert_eq!(check.detail["factors"], serde_json::json!(["captcha"]));
    assert_eq!(rules(&check), vec!["bot_score"]);
    assert_eq!(check.detail["score"], 30);
    assert_eq!(check.detail["reason_shown"], reason);
    assert_eq!(check.detail["bot_check"]["score"], 0.7);
    assert_eq!(check.detail["bot_check"]["passed_challenge"], false);
    let e = h
        .ciam
        .audit_log(user, 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::MfaChallenged)
        .unwrap();
    assert_eq!(e.detail["factors"], serde_json::json!(["captcha"]));

    // An unsolved CAPTCHA is a wrong answer; the pending sign-in stays open.
    let r = h
        .ciam
        .complete_mfa(
            challenge.token.expose(),
            &MfaProof::Captcha(SecretString::new("mid")),
            false,
            &home,
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    // A solved one signs in, with no second factor claimed.
    let done = h
        .ciam
        .complete_mfa(
            challenge.token.expose(),
            &MfaProof::Captcha(SecretString::new("solved")),
            false,
            &home,
        )
        .await
        .unwrap();
    let SignInOutcome::SignedIn(s) = done else {
        panic!("expected signed in, got {done:?}");
    };
    let amr: Vec<&str> = s.session.amr.iter().map(|m| m.as_str()).collect();
    assert_eq!(amr, ["pwd"]);
    assert_eq!(s.session.aal, 1);
    let ok = h
        .ciam
        .audit_log(user, 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::SignInPassword && e.outcome == AuditOutcome::Success)
        .unwrap();
    assert_eq!(ok.reason, "captcha");
    assert_eq!(ok.detail["amr"], serde_json::json!(["pwd"]));
    assert_eq!(ok.detail["aal"], 1);

    // A challenge for an identity factor (new device on a new network) takes no CAPTCHA.
    let elsewhere = RequestContext::new(Some("198.51.100.20".parse().unwrap()), Some("x/1"));
    let outcome = h
        .ciam
        .sign_in_password("ed@example.com", &pw(PW), &elsewhere)
        .await
        .unwrap();
    let SignInOutcome::MfaRequired(challenge) = outcome else {
        panic!("expected a challenge, got {outcome:?}");
    };
    assert_eq!(challenge.factors, vec![MfaFactor::EmailCode]);
    let r = h
        .ciam
        .complete_mfa(
            challenge.token.expose(),
            &MfaProof::Captcha(SecretString::new("solved")),
            false,
            &elsewhere,
        )
        .await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");

    // A bot check with no risk policy to act on its score is a configuration error.
    let built = ciam::Ciam::builder()
        .backend(h.store.clone())
        .bot_check(Arc::new(Captchas))
        .build();
    assert!(
        matches!(built, Err(ciam::BuildError::InvalidPolicy(_))),
        "{built:?}"
    );
}

/// A request that carries a solved CAPTCHA is not asked for one again: the challenge the
/// score would have caused is met, and the audit entry says by what. A bot check that fails
/// is ignored (and recorded).
async fn a_passed_captcha_lets_the_sign_in_through<B: Backend>(store: Arc<B>) {
    let h = with_captchas(store);
    let first = h.register_verified("flo@example.com").await;
    let user = first.user.id;
    let home = support::ctx().with_device_token(first.device_token.clone());

    let outcome = h
        .ciam
        .sign_in_password(
            "flo@example.com",
            &pw(PW),
            &home.clone().with_bot_token(bot_token("solved")),
        )
        .await
        .unwrap();
    let SignInOutcome::SignedIn(s) = outcome else {
        panic!("expected signed in, got {outcome:?}");
    };
    let amr: Vec<&str> = s.session.amr.iter().map(|m| m.as_str()).collect();
    assert_eq!(amr, ["pwd"]);
    let check = last_assessment(&h, user).await;
    assert_eq!(check.outcome, AuditOutcome::Success);
    assert_eq!(check.detail["decision"], "challenge");
    assert_eq!(rules(&check), vec!["bot_score"]);
    assert_eq!(check.detail["satisfied_by"], "captcha");
    assert_eq!(check.detail["bot_check"]["passed_challenge"], true);

    let outcome = h
        .ciam
        .sign_in_password(
            "flo@example.com",
            &pw(PW),
            &home.clone().with_bot_token(bot_token("down")),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, SignInOutcome::SignedIn(_)), "{outcome:?}");
    let check = last_assessment(&h, user).await;
    assert_eq!(check.detail["decision"], "allow");
    assert_eq!(check.detail["bot_check"]["error"], "unavailable");
}

/// A high score from the bot check denies: the vague reason, and the audit entry with the
/// decision, the rule and its inputs, and what the bot check said.
async fn a_high_bot_score_from_the_bot_check_is_denied<B: Backend>(store: Arc<B>) {
    let h = with_captchas(store);
    let first = h.register_verified("gil@example.com").await;
    let user = first.user.id;
    let home = support::ctx().with_device_token(first.device_token.clone());
    let r = h
        .ciam
        .sign_in_password(
            "gil@example.com",
            &pw(PW),
            &home.with_bot_token(bot_token("bot")),
        )
        .await;
    let Err(Error::RiskDenied { reason }) = r else {
        panic!("expected a denial, got {r:?}");
    };
    assert_eq!(reason, REASON_DENY);
    let check = last_assessment(&h, user).await;
    assert_eq!(check.outcome, AuditOutcome::Failure);
    assert_eq!(check.reason, "deny");
    assert_eq!(check.detail["decision"], "deny");
    assert_eq!(check.detail["reason_shown"], REASON_DENY);
    assert_eq!(rules(&check), vec!["bot_score"]);
    assert_eq!(check.detail["rules"][0]["inputs"]["score"], 0.97);
    assert_eq!(check.detail["bot_check"]["score"], 0.97);
    assert!(check.detail.get("factors").is_none());
}

/// Failures from one IP on other accounts make the right password from that IP a challenge
/// (`ip_velocity`, with its count and limit), even on a known device and network.
async fn ip_velocity_is_a_signal<B: Backend>(store: Arc<B>) {
    let mut policy = DefaultRiskPolicy::default();
    policy.ip_failure_limit = 3;
    let h = harness_with(store, Policy::default(), |b| {
        b.risk_policy(Arc::new(policy))
    });
    let first = h.register_verified("hal@example.com").await;
    let home = support::ctx().with_device_token(first.device_token.clone());
    for i in 0..3 {
        let r = h
            .ciam
            .sign_in_password(&format!("user{i}@example.com"), &pw(PW), &support::ctx())
            .await;
        assert!(matches!(r, Err(Error::InvalidCredentials)), "{r:?}");
    }
    let outcome = h
        .ciam
        .sign_in_password("hal@example.com", &pw(PW), &home)
        .await
        .unwrap();
    let SignInOutcome::MfaRequired(challenge) = outcome else {
        panic!("expected a challenge, got {outcome:?}");
    };
    assert_eq!(challenge.factors, vec![MfaFactor::EmailCode]);
    let reason = "We've seen many unsuccessful sign-in attempts from your network, so we need to confirm it's you.";
    assert_eq!(challenge.reason.as_deref(), Some(reason));
    let check = last_assessment(&h, first.user.id).await;
    assert_eq!(check.detail["decision"], "challenge");
    assert_eq!(rules(&check), vec!["ip_velocity"]);
    assert_eq!(
        check.detail["rules"][0]["inputs"],
        serde_json::json!({"failures": 3, "limit": 3})
    );
    assert_eq!(check.detail["rules"][0]["points"], 30);
    assert_eq!(check.detail["reason_shown"], reason);
}

/// Failures spread over a subnet (no IP near its own limit) fire `subnet_velocity` for a
/// neighbour; on its own (20 points) it is recorded but allowed.
async fn subnet_velocity_is_a_signal<B: Backend>(store: Arc<B>) {
    let mut policy = DefaultRiskPolicy::default();
    policy.subnet_failure_limit = 6;
    let h = harness_with(store, Policy::default(), |b| {
        b.risk_policy(Arc::new(policy))
    });
    let first = h.register_verified("ivy@example.com").await;
    let home = support::ctx().with_device_token(first.device_token.clone());
    for i in 0..6 {
        let from = RequestContext::new(
            Some(format!("203.0.113.{}", 50 + i % 3).parse().unwrap()),
            Some("x/1"),
        );
        let r = h
            .ciam
            .sign_in_password(&format!("user{i}@example.com"), &pw(PW), &from)
            .await;
        assert!(matches!(r, Err(Error::InvalidCredentials)), "{r:?}");
    }
    // The owner's own address (203.0.113.7) never failed; its /24 did.
    let outcome = h
        .ciam
        .sign_in_password("ivy@example.com", &pw(PW), &home)
        .await
        .unwrap();
    assert!(matches!(outcome, SignInOutcome::SignedIn(_)), "{outcome:?}");
    let check = last_assessment(&h, first.user.id).await;
    assert_eq!(check.detail["decision"], "allow");
    assert_eq!(rules(&check), vec!["subnet_velocity"]);
    assert_eq!(
        check.detail["rules"][0]["inputs"],
        serde_json::json!({"failures": 6, "limit": 6})
    );
    assert_eq!(check.detail["score"], 20);
    assert_eq!(check.reason, "allow");
}

/// Keeps texted codes (the application's side of `SmsSender`).
#[derive(Debug, Default)]
struct Texts(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl SmsSender for Texts {
    async fn send(&self, _to: &ciam::identifier::Phone, text: &str) -> Result<(), SmsError> {
        self.0.lock().unwrap().push(text.to_owned());
        Ok(())
    }
}

/// Magic-link and code sign-ins are assessed like passwords: a new browser on a new network
/// is challenged, and for a link the e-mail code the policy would take is the inbox just
/// proven (met, recorded as `satisfied_by: email`); a bot is denied a mailed code; a texted
/// code from a new browser is challenged with a code to the verified address, giving
/// `amr` `sms email mfa`.
async fn passwordless_sign_ins_are_assessed<B: Backend>(store: Arc<B>) {
    let texts = Arc::new(Texts::default());
    let sender = texts.clone();
    let mut policy = Policy::default();
    policy.mails_per_hour = 10;
    let h = harness_with(store, policy, move |b| {
        b.risk_policy(Arc::new(DefaultRiskPolicy::default()))
            .bot_check(Arc::new(Captchas))
            .sms(sender)
    });
    let email = "jo@example.com";
    let first = h.register_verified(email).await;
    let user = first.user.id;

    // A magic link opened in a new browser on a new network.
    let elsewhere = RequestContext::new(Some("198.51.100.20".parse().unwrap()), Some("x/1"));
    let binding = h.ciam.start_magic_link(email, &elsewhere).await.unwrap();
    let token = support::token_in(&h.outbox.nth_to(email, 2).await);
    let s = h
        .ciam
        .confirm_magic_link(&token, Some(&binding), &elsewhere)
        .await
        .unwrap();
    let SignInOutcome::SignedIn(s) = s else {
        panic!("expected signed in, got {s:?}");
    };
    let amr: Vec<&str> = s.session.amr.iter().map(|m| m.as_str()).collect();
    assert_eq!(amr, ["email"]);
    let check = last_assessment(&h, user).await;
    assert_eq!(check.detail["decision"], "challenge");
    assert_eq!(rules(&check), vec!["new_device", "new_network"]);
    assert_eq!(check.detail["satisfied_by"], "email");
    assert_eq!(check.outcome, AuditOutcome::Success);

    // A mailed code typed by a bot.
    let bot = support::ctx()
        .with_device_token(first.device_token.clone())
        .with_bot_token(bot_token("bot"));
    let binding = h.ciam.start_sign_in_code(email, &bot).await.unwrap();
    let code = mailed_code(&h, email, 3).await;
    let r = h
        .ciam
        .verify_sign_in_code(Some(&binding), &code, &bot)
        .await;
    let Err(Error::RiskDenied { reason }) = r else {
        panic!("expected a denial, got {r:?}");
    };
    assert_eq!(reason, REASON_DENY);
    let check = last_assessment(&h, user).await;
    assert_eq!(check.outcome, AuditOutcome::Failure);
    assert_eq!(check.detail["decision"], "deny");
    assert_eq!(rules(&check), vec!["bot_score"]);

    // A texted code from yet another browser and network.
    let mut stored = h.store.user_by_id(user).await.unwrap().unwrap();
    stored.phone = Some(ciam::identifier::Phone::parse("+44 7700 900123").unwrap());
    h.store.update_user(&stored).await.unwrap();
    let far = RequestContext::new(Some("192.0.2.99".parse().unwrap()), Some("y/1"));
    let binding = h.ciam.start_sms_code("+447700900123", &far).await.unwrap();
    let mut texted = None;
    for _ in 0..100 {
        if let Some(t) = texts.0.lock().unwrap().last() {
            texted = Some(t.chars().take(6).collect::<String>());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let texted = texted.expect("a text");
    let outcome = h
        .ciam
        .verify_sign_in_code(Some(&binding), &texted, &far)
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
    assert!(check.detail.get("satisfied_by").is_none());
    let code = mailed_code(&h, email, 4).await;
    let done = h
        .ciam
        .complete_mfa(
            challenge.token.expose(),
            &MfaProof::EmailCode(pw(&code)),
            false,
            &far,
        )
        .await
        .unwrap();
    let SignInOutcome::SignedIn(s) = done else {
        panic!("expected signed in, got {done:?}");
    };
    let amr: Vec<&str> = s.session.amr.iter().map(|m| m.as_str()).collect();
    assert_eq!(amr, ["sms", "email", "mfa"]);
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
    a_mid_bot_score_asks_for_a_captcha,
    a_passed_captcha_lets_the_sign_in_through,
    a_high_bot_score_from_the_bot_check_is_denied,
    ip_velocity_is_a_signal,
    subnet_velocity_is_a_signal,
    passwordless_sign_ins_are_assessed,
);
