//! Closing an account and changing its address are sensitive: a recent sign-in, and for an
//! account with a second factor a session that used it (AAL2). On memory and SQLite.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::{AuditAction, AuditOutcome};
use ciam::otp::{OtpAuthUri, SealingKey, SecretBox};
use ciam::session::Aal;
use ciam::store::Backend;
use ciam::user::UserStatus;
use ciam::{Error, MfaConfig, MfaProof, Policy, SignInOutcome};
use support::{Harness, PW, ctx, harness_with, on_both_backends, pw};

fn with_mfa<B: Backend>(store: Arc<B>) -> Harness<B> {
    harness_with(store, Policy::default(), |b| {
        let sealing = SealingKey::new("k1", [9; 32]).unwrap();
        b.mfa(MfaConfig::new(SecretBox::new(sealing).unwrap()))
    })
}

/// A password-only account closes with a recent sign-in: it can no longer sign in, its
/// sessions end, and the audit log says so; an old sign-in is asked to step up first.
async fn close_needs_a_recent_sign_in<B: Backend>(store: Arc<B>) {
    let h = with_mfa(store);
    let s = h.register_verified("gil@example.com").await;
    h.clock.advance(time::Duration::minutes(11));
    let auth = h.auth(&s).await.unwrap();
    let r = h.ciam.delete_account(&auth, None, &ctx()).await;
    assert!(matches!(r, Err(Error::StepUpRequired)), "{r:?}");
    h.ciam
        .delete_account(&auth, Some(&pw(PW)), &ctx())
        .await
        .unwrap();
    assert!(matches!(h.auth(&s).await, Err(Error::Unauthenticated)));
    let r = h
        .ciam
        .sign_in_password("gil@example.com", &pw(PW), &ctx())
        .await;
    assert!(matches!(r, Err(Error::InvalidCredentials)), "{r:?}");
    let user = h.store.user_by_id(s.user.id).await.unwrap().unwrap();
    assert_eq!(user.status, UserStatus::PendingDeletion);
    let log = h.ciam.audit_log(s.user.id, 20).await.unwrap();
    let closed = log
        .iter()
        .find(|e| e.action == AuditAction::AccountDeleted && e.outcome == AuditOutcome::Success)
        .expect("an account_deleted entry");
    assert_eq!(closed.detail["credentials_removed"], 1);
    assert!(
        log.iter()
            .any(|e| e.action == AuditAction::AccountDeleted && e.reason == "step_up_required"),
        "the refused attempt is recorded"
    );
}

/// With TOTP enrolled, an AAL1 session (a remembered first factor is not enough) gets
/// `AssuranceRequired{Aal2}` for an address change and for closing; after the second factor
/// both go through.
async fn second_factor_accounts_need_aal2<B: Backend>(store: Arc<B>) {
    let h = with_mfa(store);
    let s = h.register_verified("hal@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    let enrolment = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    let uri = OtpAuthUri::parse(enrolment.otpauth_uri.expose()).unwrap();
    let now = u64::try_from(h.clock_now().unix_timestamp()).unwrap();
    let code = uri.config().code_at(uri.secret(), now);
    h.ciam
        .confirm_totp(&auth, enrolment.enrolment.expose(), &code, &ctx())
        .await
        .unwrap();
    // The pre-enrolment session is AAL1.
    assert_eq!(auth.aal, Aal::Aal1);
    let r = h
        .ciam
        .request_email_change(&auth, "hal.new@example.com", None, &ctx())
        .await;
    assert!(
        matches!(r, Err(Error::AssuranceRequired { aal: Aal::Aal2, .. })),
        "{r:?}"
    );
    let r = h.ciam.delete_account(&auth, None, &ctx()).await;
    assert!(
        matches!(r, Err(Error::AssuranceRequired { aal: Aal::Aal2, .. })),
        "{r:?}"
    );

    // Sign in again with the second factor (next time step, so the code is fresh).
    h.clock.advance(time::Duration::seconds(30));
    let SignInOutcome::MfaRequired(c) = h
        .ciam
        .sign_in_password("hal@example.com", &pw(PW), &ctx())
        .await
        .unwrap()
    else {
        panic!("expected the second factor");
    };
    let now = u64::try_from(h.clock_now().unix_timestamp()).unwrap();
    let code = uri.config().code_at(uri.secret(), now);
    let SignInOutcome::SignedIn(strong) = h
        .ciam
        .complete_mfa(c.token.expose(), &MfaProof::Totp(pw(&code)), false, &ctx())
        .await
        .unwrap()
    else {
        panic!("expected signed in");
    };
    let strong_auth = h.auth(&strong).await.unwrap();
    assert_eq!(strong_auth.aal, Aal::Aal2);
    h.ciam
        .request_email_change(&strong_auth, "hal.new@example.com", None, &ctx())
        .await
        .unwrap();
    h.ciam
        .delete_account(&strong_auth, None, &ctx())
        .await
        .unwrap();
    let log = h.ciam.audit_log(s.user.id, 50).await.unwrap();
    assert!(log.iter().any(|e| e.action == AuditAction::AccountDeleted
        && e.reason == "second_factor_required"
        && e.detail["required"] == 2));
}

on_both_backends!(
    close_needs_a_recent_sign_in,
    second_factor_accounts_need_aal2
);
