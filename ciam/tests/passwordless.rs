//! Passwordless sign-in end to end, on the memory and SQLite backends: magic links and
//! mailed codes, bound to the browser that asked (binding tokens), single use, expiry,
//! attempt limits, throttling (codes per IP and per account, links per IP), answers that do
//! not reveal accounts, the hourly mail limit, e-mail verification on the way, and the second
//! factor after either, each with its audit entries.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::AuditAction as Action;
use ciam::identifier::Email;
use ciam::mail::OutgoingMail;
use ciam::otp::{OtpAuthUri, OtpSecret};
use ciam::session::Aal;
use ciam::store::Backend;
use ciam::{
    Error, MfaFactor, MfaProof, OpaqueToken, Policy, Registration, SIGN_IN_CODE_DIGITS,
    SecretString, SignInOutcome, SignedIn, ThrottlePolicy,
};
use support::{
    Harness, PW, amr_text, ctx, ctx_from, expect_signed_in, harness, mfa_harness, on_both_backends,
    pw, token_in,
};
use time::Duration;

on_both_backends!(
    magic_link_signs_in_the_browser_that_asked,
    magic_links_expire,
    sign_in_codes_sign_in_the_browser_that_asked,
    sign_in_codes_allow_limited_attempts_and_expire,
    unknown_addresses_get_the_same_answers,
    passwordless_mail_is_rate_limited,
    code_failures_are_throttled_per_ip,
    a_second_factor_is_still_needed,
    code_failures_are_throttled_per_account,
    magic_link_failures_are_throttled_per_ip,
);

const EMAIL: &str = "ada@example.com";

fn invalid_token<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::InvalidToken) => {}
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

fn wrong<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::InvalidCode) => {}
        other => panic!("expected InvalidCode, got {other:?}"),
    }
}

/// The code in a sign-in code mail.
fn code_in(mail: &OutgoingMail) -> String {
    let marker = "Your sign-in code is ";
    let start = mail
        .text
        .find(marker)
        .unwrap_or_else(|| panic!("no code in {:?}", mail.subject))
        + marker.len();
    let code: String = mail.text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), SIGN_IN_CODE_DIGITS);
    assert!(mail.subject.starts_with(&code));
    code
}

/// A code of the right shape that differs from `code`.
fn other_code(code: &str) -> String {
    code.chars()
        .map(|c| char::from(b'0' + (c.to_digit(10).unwrap() as u8 + 1) % 10))
        .collect()
}

impl<B: Backend> Harness<B> {
    /// Registers `email` without following the verification link (one mail sent).
    async fn register_unverified(&self, email: &str) -> ciam::id::UserId {
        self.ciam
            .register(Registration::new(email, Some(pw(PW))), &ctx())
            .await
            .unwrap();
        self.outbox.nth_to(email, 1).await;
        let user = self
            .store
            .user_by_email(&Email::parse(email).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!user.email_verified());
        user.id
    }

    /// Asks for a magic link for `email`, waits for the mail (the `n`th to it) and returns
    /// the binding and the link's token.
    async fn magic_link(&self, email: &str, n: usize) -> (OpaqueToken, String) {
        let binding = self.ciam.start_magic_link(email, &ctx()).await.unwrap();
        let mail = self.outbox.nth_to(email, n).await;
        assert!(mail.text.contains("https://acme.example/magic-link?token="));
        (binding, token_in(&mail))
    }

    /// Asks for a sign-in code for `email`, waits for the mail (the `n`th to it) and returns
    /// the binding and the code.
    async fn sign_in_code(&self, email: &str, n: usize) -> (OpaqueToken, String) {
        let binding = self.ciam.start_sign_in_code(email, &ctx()).await.unwrap();
        let mail = self.outbox.nth_to(email, n).await;
        (binding, code_in(&mail))
    }

    async fn confirm(
        &self,
        token: &str,
        binding: Option<&OpaqueToken>,
    ) -> Result<SignInOutcome, Error> {
        self.ciam.confirm_magic_link(token, binding, &ctx()).await
    }

    async fn verify_code(
        &self,
        binding: Option<&OpaqueToken>,
        code: &str,
    ) -> Result<SignInOutcome, Error> {
        self.ciam.verify_sign_in_code(binding, code, &ctx()).await
    }

    async fn verified(&self, user: ciam::id::UserId) -> bool {
        self.ciam.user(user).await.unwrap().email_verified()
    }
}

async fn magic_link_signs_in_the_browser_that_asked<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let user = h.register_unverified(EMAIL).await;
    let (binding, token) = h.magic_link(EMAIL, 2).await;
    let e = h
        .ok_entry(Some(user), Action::PasswordlessRequested, "magic_link_sent")
        .await;
    assert_eq!(e.user_id, Some(user));

    // Another browser (another binding, or none) signs no one in ...
    let elsewhere = h
        .ciam
        .start_magic_link("grace@example.com", &ctx())
        .await
        .unwrap();
    invalid_token(h.confirm(&token, Some(&elsewhere)).await);
    invalid_token(h.confirm(&token, None).await);
    let e = h
        .failed_entry(Some(user), Action::SignInPasswordless, "other_browser")
        .await;
    assert_eq!(e.detail["kind"], "magic_link");
    assert!(!h.verified(user).await);

    // ... and the link still works for the browser that asked.
    let s = expect_signed_in(h.confirm(&token, Some(&binding)).await);
    assert_eq!(s.user.id, user);
    assert!(s.device_token.is_some());
    let auth = h.auth(&s).await.unwrap();
    assert_eq!(amr_text(&auth), ["email"]);
    assert_eq!(auth.aal, Aal::Aal1);
    // Following the link proved the inbox.
    assert!(h.verified(user).await);
    let e = h
        .ok_entry(Some(user), Action::SignInPasswordless, "magic_link")
        .await;
    assert_eq!(e.session_id, Some(s.session.id));
    assert_eq!(e.detail["amr"], serde_json::json!(["email"]));
    assert_eq!(e.detail["aal"], 1);

    // The link is single-use.
    invalid_token(h.confirm(&token, Some(&binding)).await);
    h.failed_entry(None, Action::SignInPasswordless, "invalid_token")
        .await;
    // Garbage is refused the same way.
    invalid_token(h.confirm("not a token", Some(&binding)).await);
}

async fn magic_links_expire<B: Backend>(store: Arc<B>) {
    let policy = Policy::default();
    let ttl = policy.passwordless_ttl;
    let h = harness(store, policy);
    h.register_verified(EMAIL).await;
    let (binding, token) = h.magic_link(EMAIL, 2).await;
    h.clock.advance(ttl + Duration::seconds(1));
    invalid_token(h.confirm(&token, Some(&binding)).await);

    let (binding, token) = h.magic_link(EMAIL, 3).await;
    h.clock.advance(ttl - Duration::seconds(1));
    expect_signed_in(h.confirm(&token, Some(&binding)).await);
}

async fn sign_in_codes_sign_in_the_browser_that_asked<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let user = h.register_unverified(EMAIL).await;
    let (binding, code) = h.sign_in_code(EMAIL, 2).await;
    h.ok_entry(Some(user), Action::PasswordlessRequested, "code_sent")
        .await;

    // Without the binding, or with another browser's, there is no code request to answer.
    invalid_token(h.verify_code(None, &code).await);
    let elsewhere = h
        .ciam
        .start_magic_link("grace@example.com", &ctx())
        .await
        .unwrap();
    invalid_token(h.verify_code(Some(&elsewhere), &code).await);

    // A wrong code is refused, and the right one then works (spaces allowed).
    wrong(h.verify_code(Some(&binding), &other_code(&code)).await);
    let e = h
        .failed_entry(Some(user), Action::SignInPasswordless, "wrong_code")
        .await;
    assert_eq!(e.detail["kind"], "code");
    assert_eq!(e.detail["attempts"], 1);
    assert!(!h.verified(user).await);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let s = expect_signed_in(h.verify_code(Some(&binding), &spaced).await);
    assert_eq!(s.user.id, user);
    let auth = h.auth(&s).await.unwrap();
    assert_eq!(amr_text(&auth), ["email"]);
    assert_eq!(auth.aal, Aal::Aal1);
    assert!(h.verified(user).await);
    let e = h
        .ok_entry(Some(user), Action::SignInPasswordless, "code")
        .await;
    assert_eq!(e.detail["aal"], 1);
    // Single-use.
    invalid_token(h.verify_code(Some(&binding), &code).await);
}

async fn sign_in_codes_allow_limited_attempts_and_expire<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    // This test asks for more codes than the default hourly mail limit allows, and makes
    // more wrong guesses on one address than the account's free failures (the delay is
    // code_failures_are_throttled_per_account's subject).
    policy.mails_per_hour = 10;
    policy.throttle.account_free = 20;
    let attempts = policy.code_attempts;
    let ttl = policy.passwordless_ttl;
    let h = harness(store, policy);
    let user = h.register_verified(EMAIL).await.user.id;

    // code_attempts - 1 wrong codes leave the request open.
    let (binding, code) = h.sign_in_code(EMAIL, 2).await;
    for _ in 1..attempts {
        wrong(h.verify_code(Some(&binding), &other_code(&code)).await);
    }
    // Malformed input is a wrong code too.
    let (binding2, code2) = h.sign_in_code(EMAIL, 3).await;
    wrong(h.verify_code(Some(&binding2), "12345").await);
    wrong(h.verify_code(Some(&binding2), "abcdef").await);
    expect_signed_in(h.verify_code(Some(&binding), &code).await);

    // The code_attempts-th ends it: then even the right code is InvalidToken.
    for _ in 2..attempts - 1 {
        wrong(h.verify_code(Some(&binding2), &other_code(&code2)).await);
    }
    wrong(h.verify_code(Some(&binding2), &other_code(&code2)).await);
    let e = h
        .failed_entry(Some(user), Action::SignInPasswordless, "wrong_code")
        .await;
    assert_eq!(e.detail["attempts"], attempts);
    invalid_token(h.verify_code(Some(&binding2), &code2).await);

    // Expiry.
    let (binding, code) = h.sign_in_code(EMAIL, 4).await;
    h.clock.advance(ttl + Duration::seconds(1));
    invalid_token(h.verify_code(Some(&binding), &code).await);
    let (binding, code) = h.sign_in_code(EMAIL, 5).await;
    h.clock.advance(ttl - Duration::seconds(1));
    expect_signed_in(h.verify_code(Some(&binding), &code).await);
}

async fn unknown_addresses_get_the_same_answers<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_verified(EMAIL).await;
    let nobody = "nobody@example.com";

    // Links: a binding comes back, no mail goes out.
    let binding = h.ciam.start_magic_link(nobody, &ctx()).await.unwrap();
    assert!(binding.is_well_formed());
    assert_eq!(h.outbox.count_to(nobody).await, 0);
    let e = h
        .failed_entry(None, Action::PasswordlessRequested, "unknown_address")
        .await;
    assert_eq!(e.detail["kind"], "magic_link");
    assert_eq!(e.user_id, None);

    // Codes: a binding comes back, no mail goes out, and any code is refused exactly like a
    // wrong code for a known address.
    let binding = h.ciam.start_sign_in_code(nobody, &ctx()).await.unwrap();
    assert!(binding.is_well_formed());
    assert_eq!(h.outbox.count_to(nobody).await, 0);
    let e = h
        .failed_entry(None, Action::PasswordlessRequested, "unknown_address")
        .await;
    assert_eq!(e.detail["kind"], "sign_in_code");
    for guess in ["000000", "123456", "999999"] {
        wrong(h.verify_code(Some(&binding), guess).await);
    }
    let e = h
        .failed_entry(None, Action::SignInPasswordless, "wrong_code")
        .await;
    assert_eq!(e.user_id, None);
    assert_eq!(e.detail["attempts"], 3);
    let (known, code) = h.sign_in_code(EMAIL, 2).await;
    wrong(h.verify_code(Some(&known), &other_code(&code)).await);
    // A malformed address is refused as input, known or not.
    assert!(matches!(
        h.ciam.start_magic_link("not an address", &ctx()).await,
        Err(Error::InvalidIdentifier(_))
    ));
}

async fn passwordless_mail_is_rate_limited<B: Backend>(store: Arc<B>) {
    let policy = Policy::default();
    let limit = policy.mails_per_hour;
    let h = harness(store, policy);
    let user = h.register_verified(EMAIL).await.user.id;
    let before = h.outbox.count_to(EMAIL).await;
    let mut links = Vec::new();
    let first = h.clock_now();
    for i in 0..limit {
        links.push(h.magic_link(EMAIL, before + 1 + i as usize).await);
        h.clock.advance(Duration::minutes(1));
    }
    // One more within the hour: the same answer, no mail.
    let extra = h.ciam.start_magic_link(EMAIL, &ctx()).await.unwrap();
    assert!(extra.is_well_formed());
    assert_eq!(h.outbox.count_to(EMAIL).await, before + limit as usize);
    let e = h
        .failed_entry(Some(user), Action::Throttled, "passwordless_mail_limit")
        .await;
    assert_eq!(e.detail["kind"], "magic_link");
    // The extra binding signs in with none of the mailed links; each link still works for
    // its own browser.
    for (binding, token) in &links {
        invalid_token(h.confirm(token, Some(&extra)).await);
        expect_signed_in(h.confirm(token, Some(binding)).await);
    }
    // Used links were still mails: no more within the hour, also once the links have expired.
    h.ciam.start_magic_link(EMAIL, &ctx()).await.unwrap();
    h.clock
        .advance(Policy::default().passwordless_ttl + Duration::minutes(5));
    h.ciam.start_magic_link(EMAIL, &ctx()).await.unwrap();
    assert_eq!(h.outbox.count_to(EMAIL).await, before + limit as usize);
    // Codes have their own count.
    h.sign_in_code(EMAIL, before + limit as usize + 1).await;
    // The count slides over the last hour: just before an hour after the first mail it still
    // holds; just after, the first mail has left the hour and one more goes out.
    h.clock
        .set(first + Duration::hours(1) - Duration::seconds(30));
    h.ciam.start_magic_link(EMAIL, &ctx()).await.unwrap();
    assert_eq!(h.outbox.count_to(EMAIL).await, before + limit as usize + 1);
    h.clock
        .set(first + Duration::hours(1) + Duration::seconds(1));
    h.magic_link(EMAIL, before + limit as usize + 2).await;
}

async fn code_failures_are_throttled_per_ip<B: Backend>(store: Arc<B>) {
    let policy = Policy::default();
    let attempts = policy.code_attempts;
    let h = harness(store, policy);
    h.register_verified(EMAIL).await;
    let ip_free = ThrottlePolicy::default().ip_free;
    let attacker = ctx_from(Some("192.0.2.99"));
    // Guesses at codes for made-up addresses, each request within its attempt limit.
    let mut failures = 0;
    let mut i = 0;
    while failures < ip_free {
        let binding = h
            .ciam
            .start_sign_in_code(&format!("user{i}@example.com"), &attacker)
            .await
            .unwrap();
        i += 1;
        for _ in 0..attempts.min(ip_free - failures) {
            wrong(
                h.ciam
                    .verify_sign_in_code(Some(&binding), "000000", &attacker)
                    .await,
            );
            failures += 1;
        }
    }
    let binding = h
        .ciam
        .start_sign_in_code("another@example.com", &attacker)
        .await
        .unwrap();
    match h
        .ciam
        .verify_sign_in_code(Some(&binding), "000000", &attacker)
        .await
    {
        Err(Error::RateLimited { retry_after }) => {
            assert!(retry_after <= std::time::Duration::from_secs(1));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    let e = h.last_delay().await;
    assert_eq!(e.detail["flow"], "sign_in_passwordless");
    assert_eq!(e.detail["scope"], "ip");
    assert_eq!(e.detail["failures"], ip_free);
    // Another client is not affected.
    let (binding, code) = h.sign_in_code(EMAIL, 2).await;
    expect_signed_in(h.verify_code(Some(&binding), &code).await);
}

async fn a_second_factor_is_still_needed<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let s = h.register_verified(EMAIL).await;
    let auth = h.auth(&s).await.unwrap();
    let enrolment = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    let uri = OtpAuthUri::parse(enrolment.otpauth_uri.expose()).unwrap();
    let secret = OtpSecret::from_bytes(uri.secret().expose()).unwrap();
    let config = *uri.config();
    let code_now = |h: &Harness<B>| config.code_at(&secret, h.unix_now());
    h.ciam
        .confirm_totp(&auth, enrolment.enrolment.expose(), &code_now(&h), &ctx())
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(30));

    async fn second_factor<B: Backend>(
        h: &Harness<B>,
        pending: &OpaqueToken,
        code: &str,
    ) -> SignedIn {
        let proof = MfaProof::Totp(SecretString::new(code));
        expect_signed_in(
            h.ciam
                .complete_mfa(pending.expose(), &proof, false, &ctx())
                .await,
        )
    }
    let expect_mfa = |r: Result<SignInOutcome, Error>| match r {
        Ok(SignInOutcome::MfaRequired(c)) => {
            assert_eq!(c.factors, vec![MfaFactor::Totp, MfaFactor::RecoveryCode]);
            c.token
        }
        other => panic!("expected MfaRequired, got {other:?}"),
    };

    // After a magic link.
    let (binding, token) = h.magic_link(EMAIL, 2).await;
    let pending = expect_mfa(h.confirm(&token, Some(&binding)).await);
    let e = h
        .ok_entry(
            Some(s.user.id),
            Action::MfaChallenged,
            "second_factor_required",
        )
        .await;
    assert_eq!(e.detail["first_factor"], serde_json::json!(["email"]));
    let done = second_factor(&h, &pending, &code_now(&h)).await;
    let auth = h.auth(&done).await.unwrap();
    assert_eq!(amr_text(&auth), ["email", "otp", "mfa"]);
    assert_eq!(auth.aal, Aal::Aal2);
    h.clock.advance(Duration::seconds(30));

    // After a code.
    let (binding, code) = h.sign_in_code(EMAIL, 3).await;
    let pending = expect_mfa(h.verify_code(Some(&binding), &code).await);
    let done = second_factor(&h, &pending, &code_now(&h)).await;
    assert_eq!(h.auth(&done).await.unwrap().aal, Aal::Aal2);
}

/// Asks for a sign-in code for `email` from `from`; the binding and the code of the `n`th mail.
async fn code_from<B: Backend>(
    h: &Harness<B>,
    email: &str,
    from: &ciam::RequestContext,
    n: usize,
) -> (OpaqueToken, String) {
    let binding = h.ciam.start_sign_in_code(email, from).await.unwrap();
    (binding, code_in(&h.outbox.nth_to(email, n).await))
}

fn limited<T: std::fmt::Debug>(r: Result<T, Error>) -> std::time::Duration {
    match r {
        Err(Error::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

/// Wrong codes count against the address the code went to, whichever network they come
/// from: past the free count the next attempt waits, even with the right code, and the
/// request survives the wait. An unknown address is delayed the same way; the owner's trusted
/// browser is exempt.
async fn code_failures_are_throttled_per_account<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.mails_per_hour = 10;
    let h = harness(store, policy);
    let owner = h.register_verified(EMAIL).await;
    let free = ThrottlePolicy::default().account_free;
    assert_eq!(free, 5);
    let (a, b, c) = (
        ctx_from(Some("192.0.2.10")),
        ctx_from(Some("198.51.100.10")),
        ctx_from(Some("203.0.113.200")),
    );

    // Three wrong codes from one network, two from another: no IP near its limit.
    let (b1, c1) = code_from(&h, EMAIL, &a, 2).await;
    for _ in 0..3 {
        wrong(
            h.ciam
                .verify_sign_in_code(Some(&b1), &other_code(&c1), &a)
                .await,
        );
    }
    let (b2, c2) = code_from(&h, EMAIL, &b, 3).await;
    for _ in 0..2 {
        wrong(
            h.ciam
                .verify_sign_in_code(Some(&b2), &other_code(&c2), &b)
                .await,
        );
    }
    // A third network, a fresh request and the right code: it waits.
    let (b3, c3) = code_from(&h, EMAIL, &c, 4).await;
    let wait = limited(h.ciam.verify_sign_in_code(Some(&b3), &c3, &c).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["flow"], "sign_in_passwordless");
    assert_eq!(e.detail["scope"], "account");
    assert_eq!(e.detail["failures"], free);
    assert_eq!(e.detail["delay_ms"], 1000);
    assert!(wait <= std::time::Duration::from_secs(1));
    // The request survived the wait.
    h.clock.advance(Duration::try_from(wait).unwrap());
    let s = expect_signed_in(h.ciam.verify_sign_in_code(Some(&b3), &c3, &c).await);
    assert_eq!(s.user.id, owner.user.id);

    // An unknown address: the same delay after the same failures.
    let nobody = "nobody@example.com";
    let binding = h.ciam.start_sign_in_code(nobody, &a).await.unwrap();
    for _ in 0..free {
        wrong(
            h.ciam
                .verify_sign_in_code(Some(&binding), "000000", &a)
                .await,
        );
    }
    let binding = h.ciam.start_sign_in_code(nobody, &c).await.unwrap();
    limited(
        h.ciam
            .verify_sign_in_code(Some(&binding), "000000", &c)
            .await,
    );
    assert_eq!(h.last_delay().await.detail["scope"], "account");

    // The owner's trusted browser is not held up by someone guessing at the address.
    let (b4, c4) = code_from(&h, EMAIL, &a, 5).await;
    for _ in 0..free {
        wrong(
            h.ciam
                .verify_sign_in_code(Some(&b4), &other_code(&c4), &a)
                .await,
        );
    }
    let trusted = ctx().with_device_token(owner.device_token.clone());
    let (b5, c5) = code_from(&h, EMAIL, &trusted, 6).await;
    expect_signed_in(h.ciam.verify_sign_in_code(Some(&b5), &c5, &trusted).await);
    // A browser without the token still waits.
    let (b6, c6) = code_from(&h, EMAIL, &c, 7).await;
    limited(h.ciam.verify_sign_in_code(Some(&b6), &c6, &c).await);
}

/// Made-up, malformed and other-browser links count per IP: past the free count a genuine
/// link from that IP waits, without being consumed, and still works from another network.
async fn magic_link_failures_are_throttled_per_ip<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_verified(EMAIL).await;
    let ip_free = ThrottlePolicy::default().ip_free;
    let attacker = ctx_from(Some("192.0.2.66"));
    // One real link presented without its browser's binding ...
    let (_, real) = h.magic_link(EMAIL, 2).await;
    invalid_token(h.ciam.confirm_magic_link(&real, None, &attacker).await);
    // ... one malformed token, and made-up ones.
    invalid_token(
        h.ciam
            .confirm_magic_link("not a token", None, &attacker)
            .await,
    );
    for i in 2..ip_free {
        let made_up = format!("{i:0>43}");
        invalid_token(h.ciam.confirm_magic_link(&made_up, None, &attacker).await);
    }
    // A genuine link from that IP now waits, before it is consumed ...
    let binding = h.ciam.start_magic_link(EMAIL, &attacker).await.unwrap();
    let token = token_in(&h.outbox.nth_to(EMAIL, 3).await);
    limited(
        h.ciam
            .confirm_magic_link(&token, Some(&binding), &attacker)
            .await,
    );
    let e = h.last_delay().await;
    assert_eq!(e.detail["flow"], "sign_in_passwordless");
    assert_eq!(e.detail["scope"], "ip");
    assert_eq!(e.detail["failures"], ip_free);
    // ... and works from another network.
    let other = ctx_from(Some("198.51.100.5"));
    expect_signed_in(
        h.ciam
            .confirm_magic_link(&token, Some(&binding), &other)
            .await,
    );
}
