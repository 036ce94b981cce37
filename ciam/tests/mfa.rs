//! Second factors end to end, on the memory and SQLite backends: TOTP enrolment (step-up,
//! otpauth URI, QR code, sealed storage), second-factor sign-in (replay, window edges, expiry,
//! attempts, throttling), recovery codes, password reset, trusted devices ("remember this
//! device"), disabling TOTP and the assurance checks, each with its audit entries.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::AuditAction as Action;
use ciam::credential::CredentialKind;
use ciam::id::UserId;
use ciam::otp::{OtpAlgorithm, OtpAuthUri, OtpSecret, TotpConfig};
use ciam::session::{Aal, AuthMethod};
use ciam::store::Backend;
use ciam::{
    AuthContext, Error, MfaFactor, MfaProof, OpaqueToken, Policy, SecretString, SignInOutcome,
    SignedIn,
};
use support::{
    Harness, PW, PW2, amr_text, ctx, expect_signed_in, harness_with, mfa_config, mfa_harness,
    on_both_backends, pw, token_in,
};
use time::Duration;

on_both_backends!(
    enrolment_needs_recent_auth_and_a_code_from_the_app,
    enrolment_allows_limited_wrong_codes,
    sign_in_asks_for_the_second_factor,
    totp_codes_work_once_within_one_step_of_skew,
    pending_sign_in_expires_and_runs_out_of_attempts,
    recovery_codes_work_once_and_can_be_replaced,
    password_reset_does_not_skip_the_second_factor,
    remembered_devices_skip_the_second_factor_until_revoked,
    disabling_totp_removes_it_and_the_codes,
    assurance_checks,
    second_factor_needs_mfa_configured_for_an_enrolled_account,
    a_pending_sign_in_ends_with_a_reset_or_a_lock,
    another_account_cannot_confirm_or_void_an_enrolment,
    the_same_code_passes_once_when_used_concurrently,
    a_device_token_of_another_account_skips_nothing,
    trusted_devices_are_listed_and_forgotten_one_by_one,
    trusted_devices_are_capped_and_the_oldest_revoked,
    sha512_eight_digit_totp_enrols_and_signs_in,
);

const EMAIL: &str = "ada@example.com";

/// An enrolled authenticator app, as the user's phone knows it.
struct App {
    user: UserId,
    secret: OtpSecret,
    config: TotpConfig,
    codes: Vec<SecretString>,
}

impl App {
    /// The app's code `steps` time steps from the engine's current time.
    fn code<B>(&self, h: &Harness<B>, steps: i64) -> String {
        let at = h.unix_now().checked_add_signed(steps * 30).unwrap();
        self.config.code_at(&self.secret, at)
    }

    fn totp<B>(&self, h: &Harness<B>, steps: i64) -> MfaProof {
        MfaProof::Totp(SecretString::new(self.code(h, steps)))
    }
}

fn mfa_token(outcome: SignInOutcome) -> String {
    match outcome {
        SignInOutcome::MfaRequired(c) => {
            assert_eq!(c.factors, vec![MfaFactor::Totp, MfaFactor::RecoveryCode]);
            c.token.expose().to_owned()
        }
        other => panic!("expected MfaRequired, got {other:?}"),
    }
}

impl<B: Backend> Harness<B> {
    /// Registers `email`, signs in and enrols an authenticator app; the clock then moves to
    /// the next time step so that the confirming code is not the current one.
    async fn enrolled(&self, email: &str) -> App {
        let s = self.register_verified(email).await;
        let auth = self.auth(&s).await.unwrap();
        let enrolment = self.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
        let uri = OtpAuthUri::parse(enrolment.otpauth_uri.expose()).unwrap();
        let app = App {
            user: s.user.id,
            secret: OtpSecret::from_bytes(uri.secret().expose()).unwrap(),
            config: *uri.config(),
            codes: Vec::new(),
        };
        let codes = self
            .ciam
            .confirm_totp(
                &auth,
                enrolment.enrolment.expose(),
                &app.code(self, 0),
                &ctx(),
            )
            .await
            .unwrap()
            .expect("first enrolment issues recovery codes");
        self.clock.advance(Duration::seconds(30));
        App { codes, ..app }
    }

    /// A password sign-in that must ask for the second factor; its pending token.
    async fn pending(&self, email: &str, password: &str) -> String {
        mfa_token(self.try_sign_in(email, password, &ctx()).await.unwrap())
    }

    async fn complete(
        &self,
        token: &str,
        proof: &MfaProof,
        remember: bool,
        ctx: &ciam::RequestContext,
    ) -> Result<SignInOutcome, Error> {
        self.ciam.complete_mfa(token, proof, remember, ctx).await
    }

    /// Completes `token` with `proof`, not remembering the device; it must sign in.
    async fn completes(&self, token: &str, proof: &MfaProof) -> SignedIn {
        expect_signed_in(self.complete(token, proof, false, &ctx()).await)
    }

    async fn mfa_sign_in(&self, app: &App, remember: bool) -> SignedIn {
        let token = self.pending(EMAIL, PW).await;
        let outcome = self
            .complete(&token, &app.totp(self, 0), remember, &ctx())
            .await;
        // The next sign-in needs the code of a later step.
        self.clock.advance(Duration::seconds(30));
        expect_signed_in(outcome)
    }

    async fn sessions(&self, user: UserId) -> usize {
        self.store
            .sessions_for_user(user, self.clock_now())
            .await
            .unwrap()
            .len()
    }

    async fn auth_of(&self, s: &SignedIn) -> AuthContext {
        self.auth(s).await.unwrap()
    }
}

async fn enrolment_needs_recent_auth_and_a_code_from_the_app<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let s = h.register_verified(EMAIL).await;
    let user = s.user.id;
    let auth = h.auth_of(&s).await;

    // Too long after the sign-in: step up first.
    h.clock
        .advance(Policy::default().recent_auth_max_age + Duration::seconds(1));
    let stale = h.auth_of(&s).await;
    assert!(matches!(
        h.ciam.start_totp_enrolment(&stale, &ctx()).await,
        Err(Error::StepUpRequired)
    ));
    let e = h
        .failed_entry(Some(user), Action::MfaEnrolled, "step_up_required")
        .await;
    assert_eq!(e.session_id, Some(auth.session_id));

    let s = h.sign_in(EMAIL, PW).await;
    let auth = h.auth_of(&s).await;
    let enrolment = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    // Nothing is stored before the app answers.
    assert!(
        h.store
            .credentials_for_user(user, CredentialKind::Totp)
            .await
            .unwrap()
            .is_empty()
    );
    let status = h.ciam.mfa_status(&auth).await.unwrap();
    assert!(!status.totp);
    assert_eq!(status.recovery_codes_left, 0);
    // Secrets stay out of Debug.
    let debug = format!("{enrolment:?}");
    assert!(!debug.contains(enrolment.secret.expose()));

    let uri = OtpAuthUri::parse(enrolment.otpauth_uri.expose()).unwrap();
    assert_eq!(uri.issuer(), Some("Acme"));
    assert_eq!(uri.account(), EMAIL);
    assert_eq!(uri.secret().to_base32().expose(), enrolment.secret.expose());
    assert_eq!(uri.config().digits(), 6);
    assert_eq!(uri.config().period(), 30);
    assert!(enrolment.qr_svg.contains("<svg"));
    assert!(enrolment.qr_png.len() > 8);
    assert_eq!(&enrolment.qr_png[..8], b"\x89PNG\r\n\x1a\n");

    let secret = OtpSecret::from_base32(enrolment.secret.expose()).unwrap();
    let config = *uri.config();
    let now = h.unix_now();
    let right = config.code_at(&secret, now);
    let wrong = config.code_at(&secret, now + 300);
    assert_ne!(right, wrong);

    // A wrong code is refused and the enrolment stays open.
    assert!(matches!(
        h.ciam
            .confirm_totp(&auth, enrolment.enrolment.expose(), &wrong, &ctx())
            .await,
        Err(Error::InvalidCode)
    ));
    let e = h
        .failed_entry(Some(user), Action::MfaEnrolled, "wrong_code")
        .await;
    assert_eq!(e.detail["factor"], "totp");
    assert_eq!(e.detail["attempts"], 1);
    assert!(!h.ciam.mfa_status(&auth).await.unwrap().totp);

    // Another account cannot confirm this enrolment (see
    // another_account_cannot_confirm_or_void_an_enrolment for the full check).
    let other = h.register_verified("grace@example.com").await;
    let other_auth = h.auth_of(&other).await;
    assert!(matches!(
        h.ciam
            .confirm_totp(&other_auth, enrolment.enrolment.expose(), &right, &ctx())
            .await,
        Err(Error::InvalidToken)
    ));

    // The right code (spaces allowed) enrols and returns the recovery codes once.
    let spaced = format!("{} {}", &right[..3], &right[3..]);
    let codes = h
        .ciam
        .confirm_totp(&auth, enrolment.enrolment.expose(), &spaced, &ctx())
        .await
        .unwrap()
        .expect("recovery codes");
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().map(|c| c.expose()).collect();
    assert_eq!(distinct.len(), 10);
    // The enrolment was single-use.
    assert!(matches!(
        h.ciam
            .confirm_totp(&auth, enrolment.enrolment.expose(), &right, &ctx())
            .await,
        Err(Error::InvalidToken)
    ));
    let status = h.ciam.mfa_status(&auth).await.unwrap();
    assert!(status.totp);
    assert_eq!(status.recovery_codes_left, 10);
    let other_status = h.ciam.mfa_status(&other_auth).await.unwrap();
    assert!(!other_status.totp);
    let e = h.ok_entry(Some(user), Action::MfaEnrolled, "totp").await;
    assert_eq!(e.detail["recovery_codes_issued"], 10);
    assert_eq!(e.detail["algorithm"], "SHA1");
    assert_eq!(e.detail["digits"], 6);
    assert_eq!(e.session_id, Some(auth.session_id));

    // The secret is stored sealed: neither the base32 text nor the raw bytes appear.
    let stored = h
        .store
        .credentials_for_user(user, CredentialKind::Totp)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let json: serde_json::Value = serde_json::from_str(&stored[0].secret).unwrap();
    assert!(json["sealed"].is_string());
    let b32 = enrolment.secret.expose();
    assert!(!stored[0].secret.contains(b32));
    assert!(!stored[0].secret.contains(&b32.to_lowercase()));
    let raw_hex: String = secret.expose().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!stored[0].secret.contains(&raw_hex));
    // The recovery codes are stored as hashes only.
    let rc = h
        .store
        .credentials_for_user(user, CredentialKind::RecoveryCodes)
        .await
        .unwrap();
    assert_eq!(rc.len(), 1);
    for c in &codes {
        assert!(!rc[0].secret.contains(c.expose()));
    }

    // Replacing the app is removing it: the enrolling session did not use it (AAL1), so it
    // must step up first; so must taking it away or issuing new recovery codes.
    let r = h.ciam.start_totp_enrolment(&auth, &ctx()).await;
    assert!(
        matches!(r, Err(Error::AssuranceRequired { aal: Aal::Aal2, .. })),
        "{r:?}"
    );
    assert!(matches!(
        h.ciam.disable_totp(&auth, &ctx()).await,
        Err(Error::AssuranceRequired { aal: Aal::Aal2, .. })
    ));
    assert!(matches!(
        h.ciam.regenerate_recovery_codes(&auth, &ctx()).await,
        Err(Error::AssuranceRequired { aal: Aal::Aal2, .. })
    ));
    h.failed_entry(Some(user), Action::MfaDisabled, "second_factor_required")
        .await;
    assert!(h.ciam.mfa_status(&auth).await.unwrap().totp);
    h.clock.advance(Duration::seconds(30));
    let token = h.pending(EMAIL, PW).await;
    let code = MfaProof::Totp(SecretString::new(config.code_at(&secret, h.unix_now())));
    let stepped_up = h.completes(&token, &code).await;
    let auth = h.auth_of(&stepped_up).await;
    assert_eq!(auth.aal, Aal::Aal2);

    // Enrolling a new app replaces the old one and keeps the recovery codes.
    let again = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    let secret2 = OtpSecret::from_base32(again.secret.expose()).unwrap();
    let code2 = config.code_at(&secret2, h.unix_now());
    assert!(
        h.ciam
            .confirm_totp(&auth, again.enrolment.expose(), &code2, &ctx())
            .await
            .unwrap()
            .is_none()
    );
    let stored2 = h
        .store
        .credentials_for_user(user, CredentialKind::Totp)
        .await
        .unwrap();
    assert_eq!(stored2.len(), 1);
    assert_ne!(stored2[0].id, stored[0].id);
    assert_eq!(
        h.ciam.mfa_status(&auth).await.unwrap().recovery_codes_left,
        10
    );
    // The old app's codes no longer work.
    h.clock.advance(Duration::seconds(30));
    let token = h.pending(EMAIL, PW).await;
    let old_code = MfaProof::Totp(SecretString::new(config.code_at(&secret, h.unix_now())));
    assert!(matches!(
        h.complete(&token, &old_code, false, &ctx()).await,
        Err(Error::InvalidCode)
    ));
    let new_code = MfaProof::Totp(SecretString::new(config.code_at(&secret2, h.unix_now())));
    h.completes(&token, &new_code).await;
}

async fn enrolment_allows_limited_wrong_codes<B: Backend>(store: Arc<B>) {
    let policy = Policy::default();
    let attempts = policy.mfa_attempts;
    let h = mfa_harness(store, policy);
    let s = h.register_verified(EMAIL).await;
    let auth = h.auth_of(&s).await;
    let start = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    let secret = OtpSecret::from_base32(start.secret.expose()).unwrap();
    let config = TotpConfig::default();
    let wrong = config.code_at(&secret, h.unix_now() + 600);
    // mfa_attempts - 1 wrong codes leave the enrolment open...
    for _ in 1..attempts {
        assert!(matches!(
            h.ciam
                .confirm_totp(&auth, start.enrolment.expose(), &wrong, &ctx())
                .await,
            Err(Error::InvalidCode)
        ));
    }
    let right = config.code_at(&secret, h.unix_now());
    assert!(
        h.ciam
            .confirm_totp(&auth, start.enrolment.expose(), &right, &ctx())
            .await
            .unwrap()
            .is_some()
    );
    // Taking it away again needs a session that used it.
    h.clock.advance(Duration::seconds(30));
    let token = h.pending(EMAIL, PW).await;
    let code = MfaProof::Totp(SecretString::new(config.code_at(&secret, h.unix_now())));
    let auth = h.auth_of(&h.completes(&token, &code).await).await;
    h.ciam.disable_totp(&auth, &ctx()).await.unwrap();

    // ...the mfa_attempts-th closes it, and then even the right code is refused.
    let start = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    let secret = OtpSecret::from_base32(start.secret.expose()).unwrap();
    let wrong = config.code_at(&secret, h.unix_now() + 600);
    for _ in 0..attempts {
        assert!(matches!(
            h.ciam
                .confirm_totp(&auth, start.enrolment.expose(), &wrong, &ctx())
                .await,
            Err(Error::InvalidCode)
        ));
    }
    let e = h
        .failed_entry(Some(s.user.id), Action::MfaEnrolled, "wrong_code")
        .await;
    assert_eq!(e.detail["attempts"], attempts);
    let right = config.code_at(&secret, h.unix_now());
    assert!(matches!(
        h.ciam
            .confirm_totp(&auth, start.enrolment.expose(), &right, &ctx())
            .await,
        Err(Error::InvalidToken)
    ));
    assert!(!h.ciam.mfa_status(&auth).await.unwrap().totp);
}

async fn sign_in_asks_for_the_second_factor<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;
    let sessions_before = h.sessions(app.user).await;

    // The right password alone gives no session.
    let token = h.pending(EMAIL, PW).await;
    assert_eq!(h.sessions(app.user).await, sessions_before);
    let e = h
        .ok_entry(
            Some(app.user),
            Action::MfaChallenged,
            "second_factor_required",
        )
        .await;
    assert_eq!(e.detail["first_factor"], serde_json::json!(["pwd"]));
    assert_eq!(
        e.detail["factors"],
        serde_json::json!(["totp", "recovery_code"])
    );
    // A wrong password still gives nothing but InvalidCredentials.
    assert!(matches!(
        h.try_sign_in(EMAIL, PW2, &ctx()).await,
        Err(Error::InvalidCredentials)
    ));

    // The pending token is no session token.
    assert!(matches!(
        h.ciam
            .authenticate(&OpaqueToken::from_client(&token), &ctx())
            .await,
        Err(Error::Unauthenticated)
    ));
    let code = app.code(&h, 0);
    let s = h
        .completes(&token, &MfaProof::Totp(SecretString::new(code.clone())))
        .await;
    assert_eq!(s.user.id, app.user);
    assert_eq!(h.sessions(app.user).await, sessions_before + 1);
    let auth = h.auth_of(&s).await;
    assert_eq!(amr_text(&auth), ["pwd", "otp", "mfa"]);
    assert_eq!(auth.aal, Aal::Aal2);
    assert!(auth.amr.contains(&AuthMethod::Mfa));
    let e = h.ok_entry(Some(app.user), Action::SignInMfa, "totp").await;
    assert_eq!(e.session_id, Some(s.session.id));
    assert_eq!(e.detail["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(e.detail["aal"], 2);
    assert_eq!(e.detail["remember_device"], false);
    // The pending sign-in was single-use.
    assert!(matches!(
        h.complete(
            &token,
            &MfaProof::Totp(SecretString::new(code.clone())),
            false,
            &ctx()
        )
        .await,
        Err(Error::InvalidToken)
    ));
    h.failed_entry(None, Action::SignInMfa, "invalid_token")
        .await;

    // The same code in a new sign-in within the same step is a replay.
    let token = h.pending(EMAIL, PW).await;
    assert!(matches!(
        h.complete(
            &token,
            &MfaProof::Totp(SecretString::new(code)),
            false,
            &ctx()
        )
        .await,
        Err(Error::InvalidCode)
    ));
    let e = h
        .failed_entry(Some(app.user), Action::SignInMfa, "wrong_code")
        .await;
    assert_eq!(e.detail["factor"], "totp");
    assert_eq!(e.detail["attempts"], 1);
    assert_eq!(e.detail["attempts_left"], 4);
    // A malformed token is refused as a token.
    assert!(matches!(
        h.complete("not a token", &app.totp(&h, 0), false, &ctx())
            .await,
        Err(Error::InvalidToken)
    ));
    // The next step's code completes the same pending sign-in.
    h.clock.advance(Duration::seconds(30));
    h.completes(&token, &app.totp(&h, 0)).await;
}

async fn totp_codes_work_once_within_one_step_of_skew<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;
    // One more step, so that the step before the current one was not used to enrol.
    h.clock.advance(Duration::seconds(30));

    let token = h.pending(EMAIL, PW).await;
    // Two steps behind: refused.
    assert!(matches!(
        h.complete(&token, &app.totp(&h, -2), false, &ctx()).await,
        Err(Error::InvalidCode)
    ));
    // One step behind: accepted.
    let s = h.completes(&token, &app.totp(&h, -1)).await;
    assert_eq!(h.auth_of(&s).await.aal, Aal::Aal2);

    let token = h.pending(EMAIL, PW).await;
    // Two steps ahead: refused; one step ahead: accepted.
    assert!(matches!(
        h.complete(&token, &app.totp(&h, 2), false, &ctx()).await,
        Err(Error::InvalidCode)
    ));
    h.completes(&token, &app.totp(&h, 1)).await;
    // Having used the next step's code, the current one (an earlier step) is refused.
    let token = h.pending(EMAIL, PW).await;
    assert!(matches!(
        h.complete(&token, &app.totp(&h, 0), false, &ctx()).await,
        Err(Error::InvalidCode)
    ));
    // Two steps later, the code of that time works.
    h.clock.advance(Duration::seconds(60));
    h.completes(&token, &app.totp(&h, 0)).await;
}

async fn pending_sign_in_expires_and_runs_out_of_attempts<B: Backend>(store: Arc<B>) {
    let policy = Policy::default();
    let ttl = policy.mfa_pending_ttl;
    let attempts = policy.mfa_attempts;
    let h = mfa_harness(store, policy);
    let app = h.enrolled(EMAIL).await;
    let wrong = MfaProof::Totp(SecretString::new(app.code(&h, 20)));

    // Expiry: the right code after the pending TTL is refused.
    let token = h.pending(EMAIL, PW).await;
    h.clock.advance(ttl + Duration::seconds(1));
    assert!(matches!(
        h.complete(&token, &app.totp(&h, 0), false, &ctx()).await,
        Err(Error::InvalidToken)
    ));
    // Just inside the TTL it works.
    let token = h.pending(EMAIL, PW).await;
    h.clock.advance(ttl - Duration::seconds(1));
    h.completes(&token, &app.totp(&h, 0)).await;
    h.clock.advance(Duration::seconds(30));

    // mfa_attempts - 1 wrong answers leave the pending sign-in open.
    let token = h.pending(EMAIL, PW).await;
    for _ in 1..attempts {
        assert!(matches!(
            h.complete(&token, &wrong, false, &ctx()).await,
            Err(Error::InvalidCode)
        ));
    }
    h.completes(&token, &app.totp(&h, 0)).await;
    h.clock.advance(Duration::seconds(30));

    // The mfa_attempts-th wrong answer ends it: then even the right code is InvalidToken.
    let token = h.pending(EMAIL, PW).await;
    for _ in 0..attempts {
        assert!(matches!(
            h.complete(&token, &wrong, false, &ctx()).await,
            Err(Error::InvalidCode)
        ));
    }
    let e = h
        .failed_entry(Some(app.user), Action::SignInMfa, "wrong_code")
        .await;
    assert_eq!(e.detail["attempts"], attempts);
    assert_eq!(e.detail["attempts_left"], 0);
    assert!(matches!(
        h.complete(&token, &app.totp(&h, 0), false, &ctx()).await,
        Err(Error::InvalidToken)
    ));

    // Those failures count against the account like passwords: a new pending sign-in is
    // delayed (the pending sign-in survives the wait), then goes through.
    let token = h.pending(EMAIL, PW).await;
    let retry_after = match h.complete(&token, &app.totp(&h, 0), false, &ctx()).await {
        Err(Error::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    };
    assert!(retry_after > std::time::Duration::ZERO);
    assert!(retry_after <= std::time::Duration::from_secs(1));
    let e = h.last_delay().await;
    assert_eq!(e.detail["flow"], "sign_in_mfa");
    assert_eq!(e.detail["scope"], "account");
    assert_eq!(e.detail["failures"], attempts);
    assert_eq!(e.detail["delay_ms"], 1000);
    h.clock.advance(Duration::try_from(retry_after).unwrap());
    h.completes(&token, &app.totp(&h, 0)).await;
}

async fn recovery_codes_work_once_and_can_be_replaced<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;
    let code = app.codes[3].clone();

    let token = h.pending(EMAIL, PW).await;
    let s = h
        .completes(&token, &MfaProof::RecoveryCode(code.clone()))
        .await;
    let auth = h.auth_of(&s).await;
    assert_eq!(auth.aal, Aal::Aal2);
    assert!(auth.amr.contains(&AuthMethod::Pwd));
    assert!(auth.amr.contains(&AuthMethod::Mfa));
    let e = h
        .ok_entry(Some(app.user), Action::SignInMfa, "recovery_code")
        .await;
    assert_eq!(e.detail["aal"], 2);
    assert_eq!(
        h.ciam.mfa_status(&auth).await.unwrap().recovery_codes_left,
        9
    );

    // The same code again: refused.
    let token = h.pending(EMAIL, PW).await;
    assert!(matches!(
        h.complete(&token, &MfaProof::RecoveryCode(code), false, &ctx())
            .await,
        Err(Error::InvalidCode)
    ));
    let e = h
        .failed_entry(Some(app.user), Action::SignInMfa, "wrong_code")
        .await;
    assert_eq!(e.detail["factor"], "recovery_code");
    // Another one, typed in lower case, works.
    let typed = SecretString::new(app.codes[4].expose().to_lowercase());
    h.completes(&token, &MfaProof::RecoveryCode(typed)).await;
    assert_eq!(
        h.ciam.mfa_status(&auth).await.unwrap().recovery_codes_left,
        8
    );

    // Regenerating needs a recent sign-in...
    h.clock
        .advance(Policy::default().recent_auth_max_age + Duration::seconds(1));
    assert!(matches!(
        h.ciam.regenerate_recovery_codes(&auth, &ctx()).await,
        Err(Error::StepUpRequired)
    ));
    h.failed_entry(
        Some(app.user),
        Action::RecoveryCodesIssued,
        "step_up_required",
    )
    .await;
    let s = h.mfa_sign_in(&app, false).await;
    let auth = h.auth_of(&s).await;
    let fresh = h
        .ciam
        .regenerate_recovery_codes(&auth, &ctx())
        .await
        .unwrap();
    assert_eq!(fresh.len(), 10);
    assert!(
        fresh
            .iter()
            .all(|c| app.codes.iter().all(|o| o.expose() != c.expose()))
    );
    assert_eq!(
        h.ciam.mfa_status(&auth).await.unwrap().recovery_codes_left,
        10
    );
    let e = h
        .ok_entry(Some(app.user), Action::RecoveryCodesIssued, "regenerated")
        .await;
    assert_eq!(e.detail["count"], 10);

    // ...and voids the old set.
    let token = h.pending(EMAIL, PW).await;
    assert!(matches!(
        h.complete(
            &token,
            &MfaProof::RecoveryCode(app.codes[5].clone()),
            false,
            &ctx()
        )
        .await,
        Err(Error::InvalidCode)
    ));
    h.completes(&token, &MfaProof::RecoveryCode(fresh[0].clone()))
        .await;

    // Without an authenticator there is nothing to regenerate.
    let other = h.register_verified("grace@example.com").await;
    let other_auth = h.auth_of(&other).await;
    assert!(matches!(
        h.ciam.regenerate_recovery_codes(&other_auth, &ctx()).await,
        Err(Error::InvalidInput(_))
    ));
}

async fn password_reset_does_not_skip_the_second_factor<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;
    let before = h.sessions(app.user).await;
    h.ciam.forgot_password(EMAIL, &ctx()).await.unwrap();
    let mail = h.outbox.nth_to(EMAIL, 2).await;
    assert!(mail.text.contains("/reset-password?token="));
    h.ciam
        .reset_password(&token_in(&mail), &pw(PW2), &ctx())
        .await
        .unwrap();
    // The reset signed no one in (and ended the sessions there were).
    assert!(before > 0);
    assert_eq!(h.sessions(app.user).await, 0);
    // The new password still needs the second factor.
    let token = h.pending(EMAIL, PW2).await;
    let s = h.completes(&token, &app.totp(&h, 0)).await;
    assert_eq!(amr_text(&h.auth_of(&s).await), ["pwd", "otp", "mfa"]);
}

async fn remembered_devices_skip_the_second_factor_until_revoked<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.remember_device_for = Duration::days(1);
    let h = mfa_harness(store, policy);
    let app = h.enrolled(EMAIL).await;

    // A second factor without "remember" gives a trusted device that still needs it.
    let s = h.mfa_sign_in(&app, false).await;
    let plain = s.device_token.clone().expect("a trusted-device token");
    let with_plain = ctx().with_device_token(Some(plain.clone()));
    mfa_token(h.try_sign_in(EMAIL, PW, &with_plain).await.unwrap());

    // With "remember this device".
    let token = h.pending(EMAIL, PW).await;
    let s = expect_signed_in(h.complete(&token, &app.totp(&h, 0), true, &ctx()).await);
    h.clock.advance(Duration::seconds(30));
    let e = h.ok_entry(Some(app.user), Action::SignInMfa, "totp").await;
    assert_eq!(e.detail["remember_device"], true);
    let device = s.device_token.clone().expect("a trusted-device token");
    let remembered = || ctx().with_device_token(Some(device.clone()));
    let s = expect_signed_in(h.try_sign_in(EMAIL, PW, &remembered()).await);
    // The browser keeps its token; no new one is issued.
    assert!(s.device_token.is_none());
    let auth = h.auth_of(&s).await;
    assert_eq!(auth.aal, Aal::Aal2);
    assert_eq!(amr_text(&auth), ["pwd", "mfa"]);
    let e = h
        .ok_entry(Some(app.user), Action::SignInPassword, "password")
        .await;
    assert_eq!(e.detail["remembered_device"], true);
    assert_eq!(e.detail["amr"], serde_json::json!(["pwd", "mfa"]));
    // The token is no use for another account or without the right password.
    assert!(matches!(
        h.try_sign_in(EMAIL, PW2, &remembered()).await,
        Err(Error::InvalidCredentials)
    ));
    // Without the token the second factor is needed.
    mfa_token(h.try_sign_in(EMAIL, PW, &ctx()).await.unwrap());
    // A made-up token is no token.
    let made_up = ctx().with_device_token(Some(OpaqueToken::from_client(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )));
    mfa_token(h.try_sign_in(EMAIL, PW, &made_up).await.unwrap());

    // Until remember_device_for has passed.
    h.clock.advance(Duration::days(1) - Duration::seconds(60));
    expect_signed_in(h.try_sign_in(EMAIL, PW, &remembered()).await);
    h.clock.advance(Duration::seconds(61));
    let token = mfa_token(h.try_sign_in(EMAIL, PW, &remembered()).await.unwrap());
    // Remembering again replaces the token.
    let s = expect_signed_in(
        h.complete(&token, &app.totp(&h, 0), true, &remembered())
            .await,
    );
    h.clock.advance(Duration::seconds(30));
    let renewed = s.device_token.clone().expect("a new token");
    assert_ne!(renewed.expose(), device.expose());
    mfa_token(h.try_sign_in(EMAIL, PW, &remembered()).await.unwrap());
    let renewed_ctx = || ctx().with_device_token(Some(renewed.clone()));
    let s = expect_signed_in(h.try_sign_in(EMAIL, PW, &renewed_ctx()).await);

    // forget_devices revokes every token of the account.
    let auth = h.auth_of(&s).await;
    let n = h.ciam.forget_devices(&auth, &ctx()).await.unwrap();
    assert!(n >= 2, "forgot {n} devices");
    let e = h
        .ok_entry(Some(app.user), Action::DevicesForgotten, "forgotten")
        .await;
    assert_eq!(e.detail["devices"], n);
    mfa_token(h.try_sign_in(EMAIL, PW, &renewed_ctx()).await.unwrap());

    // A password reset does too.
    let token = h.pending(EMAIL, PW).await;
    let s = expect_signed_in(h.complete(&token, &app.totp(&h, 0), true, &ctx()).await);
    h.clock.advance(Duration::seconds(30));
    let device = s.device_token.clone().unwrap();
    let remembered = || ctx().with_device_token(Some(device.clone()));
    expect_signed_in(h.try_sign_in(EMAIL, PW, &remembered()).await);
    h.ciam.forgot_password(EMAIL, &ctx()).await.unwrap();
    let n = h.outbox.count_to(EMAIL).await;
    let mail = h.outbox.nth_to(EMAIL, n).await;
    h.ciam
        .reset_password(&token_in(&mail), &pw(PW2), &ctx())
        .await
        .unwrap();
    mfa_token(h.try_sign_in(EMAIL, PW2, &remembered()).await.unwrap());
}

async fn disabling_totp_removes_it_and_the_codes<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;
    let s = h.mfa_sign_in(&app, true).await;
    let device = s.device_token.clone().unwrap();
    let auth = h.auth_of(&s).await;

    h.clock
        .advance(Policy::default().recent_auth_max_age + Duration::seconds(1));
    assert!(matches!(
        h.ciam.disable_totp(&auth, &ctx()).await,
        Err(Error::StepUpRequired)
    ));
    h.failed_entry(Some(app.user), Action::MfaDisabled, "step_up_required")
        .await;
    assert!(h.ciam.mfa_status(&auth).await.unwrap().totp);

    let s = h.mfa_sign_in(&app, false).await;
    let auth = h.auth_of(&s).await;
    h.ciam.disable_totp(&auth, &ctx()).await.unwrap();
    let e = h
        .ok_entry(Some(app.user), Action::MfaDisabled, "totp")
        .await;
    assert_eq!(e.detail["credentials_removed"], 2);
    let status = h.ciam.mfa_status(&auth).await.unwrap();
    assert!(!status.totp);
    assert_eq!(status.recovery_codes_left, 0);
    for kind in [CredentialKind::Totp, CredentialKind::RecoveryCodes] {
        assert!(
            h.store
                .credentials_for_user(app.user, kind)
                .await
                .unwrap()
                .is_empty()
        );
    }
    // The password alone signs in again, at AAL1, with or without the old device token.
    let s = h.sign_in(EMAIL, PW).await;
    let auth = h.auth_of(&s).await;
    assert_eq!(amr_text(&auth), ["pwd"]);
    assert_eq!(auth.aal, Aal::Aal1);
    let with_device = ctx().with_device_token(Some(device));
    let s = expect_signed_in(h.try_sign_in(EMAIL, PW, &with_device).await);
    assert_eq!(h.auth_of(&s).await.aal, Aal::Aal1);
    // The device token was revoked with the factor: a new one is issued.
    assert!(s.device_token.is_some());
}

async fn assurance_checks<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;
    let single = h.register_verified("grace@example.com").await;
    let single = h.auth_of(&single).await;
    assert!(h.ciam.require_aal(&single, Aal::Aal1).is_ok());
    match h.ciam.require_aal(&single, Aal::Aal2) {
        Err(Error::AssuranceRequired { aal, max_age }) => {
            assert_eq!(aal, Aal::Aal2);
            assert_eq!(max_age, None);
        }
        other => panic!("expected AssuranceRequired, got {other:?}"),
    }

    let s = h.mfa_sign_in(&app, false).await;
    let strong = h.auth_of(&s).await;
    assert!(h.ciam.require_aal(&strong, Aal::Aal2).is_ok());
    assert!(matches!(
        h.ciam.require_aal(&strong, Aal::Aal3),
        Err(Error::AssuranceRequired { aal: Aal::Aal3, .. })
    ));

    // mfa_sign_in moved the clock 30 s past the sign-in.
    assert!(
        h.ciam
            .require_recent_auth(&strong, Duration::minutes(5))
            .is_ok()
    );
    assert!(
        h.ciam
            .require_recent_auth(&strong, Duration::seconds(30))
            .is_ok()
    );
    match h.ciam.require_recent_auth(&strong, Duration::seconds(29)) {
        Err(Error::AssuranceRequired { aal, max_age }) => {
            assert_eq!(aal, Aal::Aal2);
            assert_eq!(max_age, Some(Duration::seconds(29)));
        }
        other => panic!("expected AssuranceRequired, got {other:?}"),
    }
    h.clock.advance(Duration::minutes(5));
    match h.ciam.require_recent_auth(&single, Duration::minutes(5)) {
        Err(Error::AssuranceRequired { aal, max_age }) => {
            assert_eq!(aal, Aal::Aal1);
            assert_eq!(max_age, Some(Duration::minutes(5)));
        }
        other => panic!("expected AssuranceRequired, got {other:?}"),
    }
}

async fn second_factor_needs_mfa_configured_for_an_enrolled_account<B: Backend>(store: Arc<B>) {
    // Without CiamBuilder::mfa the MFA calls are refused as misconfiguration.
    let h = support::harness(store, Policy::default());
    let s = h.register_verified(EMAIL).await;
    let auth = h.auth_of(&s).await;
    assert!(matches!(
        h.ciam.start_totp_enrolment(&auth, &ctx()).await,
        Err(Error::Internal(_))
    ));
    let status = h.ciam.mfa_status(&auth).await.unwrap();
    assert!(!status.totp);
}

async fn a_pending_sign_in_ends_with_a_reset_or_a_lock<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;

    // Someone with the old password waits at the second factor while the owner resets it:
    // the old password's sign-in cannot be finished.
    let token = h.pending(EMAIL, PW).await;
    h.clock.advance(Duration::seconds(1));
    h.ciam.forgot_password(EMAIL, &ctx()).await.unwrap();
    let mail = h.outbox.nth_to(EMAIL, 2).await;
    h.ciam
        .reset_password(&token_in(&mail), &pw(PW2), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        h.complete(&token, &app.totp(&h, 0), false, &ctx()).await,
        Err(Error::InvalidToken)
    ));
    let e = h
        .failed_entry(Some(app.user), Action::SignInMfa, "password_changed")
        .await;
    assert_eq!(e.user_id, Some(app.user));
    assert_eq!(h.sessions(app.user).await, 0);
    // A sign-in with the new password goes through.
    let token = h.pending(EMAIL, PW2).await;
    h.completes(&token, &app.totp(&h, 0)).await;
    h.clock.advance(Duration::seconds(30));

    // An account locked while its sign-in waits gets no session.
    let token = h.pending(EMAIL, PW2).await;
    let mut user = h.store.user_by_id(app.user).await.unwrap().unwrap();
    user.status = ciam::user::UserStatus::Locked;
    h.store.update_user(&user).await.unwrap();
    let sessions = h.sessions(app.user).await;
    assert!(matches!(
        h.complete(&token, &app.totp(&h, 0), false, &ctx()).await,
        Err(Error::AccountUnavailable)
    ));
    assert_eq!(h.sessions(app.user).await, sessions);
    h.failed_entry(Some(app.user), Action::SignInMfa, "locked")
        .await;
}

/// Another signed-in account presenting someone's enrolment token (with the right code) is
/// refused, and the refusal leaves the owner's enrolment open: the owner still confirms it.
async fn another_account_cannot_confirm_or_void_an_enrolment<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let owner = h.register_verified(EMAIL).await;
    let owner_auth = h.auth_of(&owner).await;
    let enrolment = h
        .ciam
        .start_totp_enrolment(&owner_auth, &ctx())
        .await
        .unwrap();
    let secret = OtpSecret::from_base32(enrolment.secret.expose()).unwrap();
    let right = TotpConfig::default().code_at(&secret, h.unix_now());

    let mallory = h.register_verified("mallory@example.com").await;
    let mallory_auth = h.auth_of(&mallory).await;
    for _ in 0..Policy::default().mfa_attempts + 1 {
        assert!(matches!(
            h.ciam
                .confirm_totp(&mallory_auth, enrolment.enrolment.expose(), &right, &ctx())
                .await,
            Err(Error::InvalidToken)
        ));
    }
    let e = h
        .failed_entry(Some(mallory.user.id), Action::MfaEnrolled, "other_account")
        .await;
    assert_eq!(e.session_id, Some(mallory_auth.session_id));
    // Nothing was enrolled for either account ...
    assert!(!h.ciam.mfa_status(&mallory_auth).await.unwrap().totp);
    assert!(!h.ciam.mfa_status(&owner_auth).await.unwrap().totp);
    // ... and the owner's enrolment was neither consumed nor charged attempts.
    let codes = h
        .ciam
        .confirm_totp(&owner_auth, enrolment.enrolment.expose(), &right, &ctx())
        .await
        .unwrap();
    assert_eq!(codes.map(|c| c.len()), Some(10));
    assert!(h.ciam.mfa_status(&owner_auth).await.unwrap().totp);
}

/// The same TOTP code, and the same recovery code, sent to several pending sign-ins at once:
/// exactly one completes (the credential update is versioned; the losers re-read and see the
/// used step or the removed code).
async fn the_same_code_passes_once_when_used_concurrently<B: Backend>(store: Arc<B>) {
    const RACERS: usize = 4;
    let h = mfa_harness(store, Policy::default());
    let app = h.enrolled(EMAIL).await;

    async fn race<B: Backend>(h: &Harness<B>, proof: MfaProof) -> (usize, usize) {
        let mut tokens = Vec::new();
        for _ in 0..RACERS {
            tokens.push(h.pending(EMAIL, PW).await);
        }
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let (ciam, proof, start) = (h.ciam.clone(), proof.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    ciam.complete_mfa(&token, &proof, false, &ctx()).await
                })
            })
            .collect();
        let (mut won, mut lost) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(SignInOutcome::SignedIn(_)) => won += 1,
                Err(Error::InvalidCode) => lost += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        (won, lost)
    }

    assert_eq!(race(&h, app.totp(&h, 0)).await, (1, RACERS - 1));
    h.clock.advance(Duration::seconds(30));
    let before = h
        .ciam
        .mfa_status(&h.auth_of(&h.mfa_sign_in(&app, false).await).await)
        .await
        .unwrap()
        .recovery_codes_left;
    assert_eq!(
        race(&h, MfaProof::RecoveryCode(app.codes[0].clone())).await,
        (1, RACERS - 1)
    );
    let s = h.mfa_sign_in(&app, false).await;
    let left = h
        .ciam
        .mfa_status(&h.auth_of(&s).await)
        .await
        .unwrap()
        .recovery_codes_left;
    assert_eq!(left, before - 1);
}

/// A remembered device of one account skips nothing for another: the token is bound to the
/// account it was issued for, even with the right password of the other account.
async fn a_device_token_of_another_account_skips_nothing<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let ada = h.enrolled(EMAIL).await;
    let grace = h.enrolled("grace@example.com").await;
    let token = mfa_token(
        h.try_sign_in("grace@example.com", PW, &ctx())
            .await
            .unwrap(),
    );
    let s = expect_signed_in(h.complete(&token, &grace.totp(&h, 0), true, &ctx()).await);
    h.clock.advance(Duration::seconds(30));
    let graces_device = s.device_token.clone().expect("a remembered device");
    let with_graces = ctx().with_device_token(Some(graces_device));
    // The token works for its own account ...
    let own = expect_signed_in(h.try_sign_in("grace@example.com", PW, &with_graces).await);
    assert_eq!(amr_text(&h.auth_of(&own).await), ["pwd", "mfa"]);
    // ... but Ada, with her right password, still needs her second factor, and Grace's
    // device is not listed as Ada's.
    let pending = mfa_token(h.try_sign_in(EMAIL, PW, &with_graces).await.unwrap());
    let s = h.completes(&pending, &ada.totp(&h, 0)).await;
    assert_eq!(amr_text(&h.auth_of(&s).await), ["pwd", "otp", "mfa"]);
    let adas = h
        .ciam
        .trusted_devices(&h.auth_of(&s).await, &with_graces)
        .await
        .unwrap();
    assert!(adas.iter().all(|d| !d.current));
    // Nor can Ada forget Grace's device by its id.
    let graces_auth = h.auth_of(&own).await;
    let graces = h
        .ciam
        .trusted_devices(&graces_auth, &with_graces)
        .await
        .unwrap();
    let current = graces
        .iter()
        .find(|d| d.current)
        .expect("listed as current");
    assert!(
        !h.ciam
            .forget_device(&h.auth_of(&s).await, current.id, &ctx())
            .await
            .unwrap()
    );
    expect_signed_in(h.try_sign_in("grace@example.com", PW, &with_graces).await);
}

/// The account's trusted devices are listed (newest first, the requesting one marked, the
/// remembered ones with their limit, where they were trusted from) and can be forgotten one
/// at a time: the forgotten browser needs the second factor again, the others do not.
/// A client that signs in without keeping its cookie gets a new trusted-device token each
/// time; the account keeps at most `MAX_TRUSTED_DEVICES`, and the oldest beyond that stops
/// being trusted (its token is revoked, not only unlisted).
async fn trusted_devices_are_capped_and_the_oldest_revoked<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    let first = h.register_verified(EMAIL).await;
    let oldest = first.device_token.clone().expect("a trusted-device token");
    let mut last = None;
    for _ in 0..ciam::MAX_TRUSTED_DEVICES {
        h.clock.advance(Duration::seconds(1));
        let s = expect_signed_in(h.try_sign_in(EMAIL, PW, &ctx()).await);
        assert!(
            s.device_token.is_some(),
            "a cookie-less sign-in is a new browser"
        );
        last = Some(s);
    }
    let last = last.unwrap();
    let current = ctx().with_device_token(last.device_token.clone());
    let auth = h.auth_of(&last).await;
    let devices = h.ciam.trusted_devices(&auth, &current).await.unwrap();
    assert_eq!(devices.len(), ciam::MAX_TRUSTED_DEVICES);
    assert!(devices[0].current);
    // The newest browser is still trusted: signing in from it issues no new token...
    let again = expect_signed_in(h.try_sign_in(EMAIL, PW, &current).await);
    assert!(again.device_token.is_none());
    // ...the oldest is not: it is treated as a new browser.
    let evicted = ctx().with_device_token(Some(oldest));
    let fresh = expect_signed_in(h.try_sign_in(EMAIL, PW, &evicted).await);
    assert!(
        fresh.device_token.is_some(),
        "the evicted token was revoked"
    );
    let devices = h.ciam.trusted_devices(&auth, &current).await.unwrap();
    assert_eq!(devices.len(), ciam::MAX_TRUSTED_DEVICES);
}

async fn trusted_devices_are_listed_and_forgotten_one_by_one<B: Backend>(store: Arc<B>) {
    let h = mfa_harness(store, Policy::default());
    // The sign-in of the registration trusted a first browser (not remembered).
    let app = h.enrolled(EMAIL).await;
    let phone = ciam::RequestContext::new(Some("198.51.100.7".parse().unwrap()), Some("phone/1"));
    let laptop = ciam::RequestContext::new(Some("192.0.2.44".parse().unwrap()), Some("laptop/2"));
    let remember = async |from: &ciam::RequestContext| {
        let token = mfa_token(h.try_sign_in(EMAIL, PW, from).await.unwrap());
        let s = expect_signed_in(h.complete(&token, &app.totp(&h, 0), true, from).await);
        h.clock.advance(Duration::seconds(30));
        s
    };
    let on_phone = remember(&phone).await;
    let on_laptop = remember(&laptop).await;
    let phone = phone.with_device_token(on_phone.device_token.clone());
    let laptop = laptop.with_device_token(on_laptop.device_token.clone());
    let auth = h.auth_of(&on_laptop).await;

    let devices = h.ciam.trusted_devices(&auth, &laptop).await.unwrap();
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert_eq!(devices[0].user_agent.as_deref(), Some("laptop/2"));
    assert!(devices[0].current);
    assert_eq!(devices[0].ip, Some("192.0.2.44".parse().unwrap()));
    assert_eq!(devices[1].user_agent.as_deref(), Some("phone/1"));
    assert!(!devices[1].current);
    assert!(devices[0].remember_until.is_some() && devices[1].remember_until.is_some());
    assert_eq!(
        devices[2].remember_until, None,
        "the registration's browser"
    );
    assert_eq!(
        devices[0].expires_at - devices[0].created_at,
        Policy::default().trusted_device_ttl
    );
    assert!(devices[0].created_at > devices[1].created_at);
    // Listing reveals no token.
    let json = serde_json::to_string(&devices).unwrap();
    let laptop_token = laptop.device_token.as_ref().unwrap().expose().to_owned();
    assert!(!json.contains(&laptop_token));

    // Forget the phone.
    let phone_id = devices[1].id;
    assert!(
        h.ciam
            .forget_device(&auth, phone_id, &laptop)
            .await
            .unwrap()
    );
    let e = h
        .ok_entry(Some(app.user), Action::DevicesForgotten, "one")
        .await;
    assert_eq!(e.detail["device"], serde_json::json!(phone_id));
    assert_eq!(e.session_id, Some(auth.session_id));
    let devices = h.ciam.trusted_devices(&auth, &laptop).await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(devices.iter().all(|d| d.id != phone_id));
    // The phone needs the second factor again; the laptop still skips it.
    mfa_token(h.try_sign_in(EMAIL, PW, &phone).await.unwrap());
    let s = expect_signed_in(h.try_sign_in(EMAIL, PW, &laptop).await);
    assert_eq!(amr_text(&h.auth_of(&s).await), ["pwd", "mfa"]);
    // Forgetting it again, or an unknown id, changes nothing.
    assert!(
        !h.ciam
            .forget_device(&auth, phone_id, &laptop)
            .await
            .unwrap()
    );
    let unknown = ciam::id::CredentialId::generate(&ciam::rng::SystemRandom::new()).unwrap();
    assert!(!h.ciam.forget_device(&auth, unknown, &laptop).await.unwrap());

    // forget_devices counts devices, not the index behind the list.
    let n = h.ciam.forget_devices(&auth, &ctx()).await.unwrap();
    assert_eq!(n, 2);
    assert!(
        h.ciam
            .trusted_devices(&auth, &laptop)
            .await
            .unwrap()
            .is_empty()
    );
    mfa_token(h.try_sign_in(EMAIL, PW, &laptop).await.unwrap());
}

/// TOTP with SHA-512 and 8 digits (MfaConfig::with_totp), end to end: the enrolment URI, the
/// stored parameters and secret length, and a sign-in that takes the 8-digit code and refuses
/// a 6-digit one.
async fn sha512_eight_digit_totp_enrols_and_signs_in<B: Backend>(store: Arc<B>) {
    let totp = TotpConfig::new(OtpAlgorithm::Sha512, 8, 30, 1).unwrap();
    let h = harness_with(store, Policy::default(), |b| {
        b.mfa(mfa_config().with_totp(totp))
    });
    let app = h.enrolled(EMAIL).await;
    assert_eq!(app.config.algorithm(), OtpAlgorithm::Sha512);
    assert_eq!(app.config.digits(), 8);
    // A secret as long as the SHA-512 output (512 bits).
    assert_eq!(app.secret.expose().len(), 64);
    let e = h
        .ok_entry(Some(app.user), Action::MfaEnrolled, "totp")
        .await;
    assert_eq!(e.detail["algorithm"], "SHA512");
    assert_eq!(e.detail["digits"], 8);

    let code = app.code(&h, 0);
    assert_eq!(code.len(), 8);
    let token = h.pending(EMAIL, PW).await;
    // The last six digits are not the code.
    assert!(matches!(
        h.complete(
            &token,
            &MfaProof::Totp(SecretString::new(&code[2..])),
            false,
            &ctx()
        )
        .await,
        Err(Error::InvalidCode)
    ));
    let s = h
        .completes(&token, &MfaProof::Totp(SecretString::new(code)))
        .await;
    let auth = h.auth_of(&s).await;
    assert_eq!(amr_text(&auth), ["pwd", "otp", "mfa"]);
    assert_eq!(auth.aal, Aal::Aal2);
    // The stored credential keeps the parameters (sealed secret, no plain text).
    let stored = h
        .store
        .credentials_for_user(app.user, CredentialKind::Totp)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&stored[0].secret).unwrap();
    assert_eq!(json["algorithm"], "SHA512");
    assert_eq!(json["digits"], 8);
}
