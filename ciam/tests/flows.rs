//! Engine flows end to end, on the memory and SQLite backends: every flow's success and
//! failure paths, with a controlled clock and a mail outbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::{AuditAction, AuditOutcome};
use ciam::credential::CredentialKind;
use ciam::event::Event;
use ciam::identifier::Email;
use ciam::store::Backend;
use ciam::user::UserStatus;
use ciam::{Error, OpaqueToken, Policy, Registration, SignInOutcome, VerifyOutcome};
use support::{PW, PW2, ctx, harness, on_both_backends, pw, token_in};
use time::Duration;

on_both_backends!(
    register_verify_sign_in_sign_out,
    registering_an_existing_address_reveals_nothing,
    concurrent_registrations_make_one_account,
    sign_in_failures_are_indistinguishable_and_audited,
    unverified_accounts_must_verify_first,
    verification_tokens_are_single_use_and_expire,
    weak_passwords_are_refused,
    sessions_expire_idle_and_absolute,
    sign_in_replaces_a_presented_session,
    devices_can_be_listed_and_revoked,
    forgot_and_reset_password,
    change_password_needs_proof_and_rotates,
    change_email_confirms_the_new_address,
    legacy_and_outdated_hashes_are_upgraded,
    locked_accounts_cannot_sign_in,
    mail_is_rate_limited,
);

async fn register_verify_sign_in_sign_out<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let email = "Ada@Example.COM";
    h.ciam
        .register(Registration::new(email, Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let mail = h.outbox.nth_to("Ada@example.com", 1).await;
    assert!(
        mail.text
            .contains("https://acme.example/verify-email?token=")
    );
    let verified = h.ciam.verify_email(&token_in(&mail), &ctx()).await.unwrap();
    let VerifyOutcome::EmailVerified(user) = verified else {
        panic!("{verified:?}")
    };
    assert!(user.email_verified());
    // The address is matched case-insensitively.
    let s = h.sign_in("ada@example.com", PW).await;
    assert_eq!(s.user.id, user.id);
    let auth = h.auth(&s).await.unwrap();
    assert_eq!(auth.user_id, user.id);
    assert_eq!(auth.amr, vec![ciam::session::AuthMethod::Pwd]);
    assert_eq!(auth.aal, ciam::session::Aal::Aal1);
    h.ciam.sign_out(&s.token, &ctx()).await.unwrap();
    assert!(matches!(h.auth(&s).await, Err(Error::Unauthenticated)));
    // Signing out twice is harmless.
    h.ciam.sign_out(&s.token, &ctx()).await.unwrap();

    let events = h.events.0.lock().unwrap().clone();
    assert!(matches!(events[0], Event::Registered { .. }));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::EmailVerified { .. }))
    );
    assert!(events.iter().any(|e| matches!(e, Event::SignedIn { .. })));
    assert!(events.iter().any(|e| matches!(e, Event::SignedOut { .. })));
    let log = h.ciam.audit_log(user.id, 50).await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action).collect();
    for a in [
        AuditAction::Register,
        AuditAction::VerificationSent,
        AuditAction::EmailVerified,
        AuditAction::SignInPassword,
        AuditAction::SignOut,
    ] {
        assert!(actions.contains(&a), "{a:?} missing from {actions:?}");
    }
    let sign_in = log
        .iter()
        .find(|e| e.action == AuditAction::SignInPassword)
        .unwrap();
    assert_eq!(sign_in.ip, Some("203.0.113.7".parse().unwrap()));
    assert_eq!(sign_in.user_agent.as_deref(), Some("flows-test/1.0"));
    // No secret reaches the audit log.
    let dump = serde_json::to_string(&log).unwrap();
    assert!(!dump.contains(PW) && !dump.contains(s.token.expose()));
}

async fn registering_an_existing_address_reveals_nothing<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let first = h
        .ciam
        .register(Registration::new("bo@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let second = h
        .ciam
        .register(Registration::new("BO@example.com", Some(pw(PW2))), &ctx())
        .await
        .unwrap();
    assert_eq!(first, second);
    let notice = h.outbox.nth_to("bo@example.com", 2).await;
    assert!(notice.text.contains("already have one"), "{}", notice.text);
    assert!(!notice.text.contains("token="));
    // The first password still works; the second registration changed nothing.
    let user = h
        .store
        .user_by_email(&Email::parse("bo@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let creds = h
        .store
        .credentials_for_user(user.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(creds.len(), 1);
}

async fn concurrent_registrations_make_one_account<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let ciam = h.ciam.clone();
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        tasks.push(tokio::spawn(async move {
            ciam.register(Registration::new(email, Some(pw(PW))), &ctx())
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let users = h.ciam.recent_audit(100).await.unwrap();
    let created = users
        .iter()
        .filter(|e| e.action == AuditAction::Register)
        .count();
    assert_eq!(created, 1);
    assert_eq!(
        users
            .iter()
            .filter(|e| e.action == AuditAction::RegisterExisting)
            .count(),
        7
    );
}

async fn sign_in_failures_are_indistinguishable_and_audited<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let s = h.register_verified("cy@example.com").await;
    let wrong = h
        .ciam
        .sign_in_password("cy@example.com", &pw("not the password at all"), &ctx())
        .await
        .unwrap_err();
    let unknown = h
        .ciam
        .sign_in_password("nobody@example.com", &pw(PW), &ctx())
        .await
        .unwrap_err();
    let malformed = h
        .ciam
        .sign_in_password("not-an-email", &pw(PW), &ctx())
        .await
        .unwrap_err();
    let huge = h
        .ciam
        .sign_in_password("cy@example.com", &pw(&"x".repeat(5000)), &ctx())
        .await
        .unwrap_err();
    for e in [&wrong, &unknown, &malformed, &huge] {
        assert!(matches!(e, Error::InvalidCredentials), "{e:?}");
        assert_eq!(e.public_message(), wrong.public_message());
        assert_eq!(e.code(), "invalid_credentials");
    }
    // Equal work, shown without timing: each failure above but the oversized one ran exactly
    // one hashing job, whether or not the account exists; oversized input ran none.
    let hasher = h.ciam.password_hasher();
    for (email, password, jobs) in [
        ("cy@example.com", "not the password at all", 1),
        ("nobody@example.com", PW, 1),
        ("not-an-email", PW, 1),
        ("cy@example.com", &*"x".repeat(5000), 0),
        ("nobody@example.com", &*"x".repeat(5000), 0),
    ] {
        let before = hasher.jobs_completed();
        assert!(
            h.ciam
                .sign_in_password(email, &pw(password), &ctx())
                .await
                .is_err()
        );
        assert_eq!(hasher.jobs_completed() - before, jobs, "{email}");
    }
    let log = h.ciam.recent_audit(50).await.unwrap();
    let reasons: Vec<_> = log
        .iter()
        .filter(|e| e.action == AuditAction::SignInPassword && e.outcome == AuditOutcome::Failure)
        .map(|e| (e.reason.clone(), e.user_id))
        .collect();
    assert!(reasons.contains(&("wrong_password".into(), Some(s.user.id))));
    assert!(reasons.contains(&("unknown_user_or_no_password".into(), None)));
    assert!(reasons.contains(&("malformed_email".into(), None)));
    assert!(reasons.contains(&("password_too_long".into(), Some(s.user.id))));
    assert!(
        h.events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::SignInFailed { user_id: None, .. }))
    );
}

async fn unverified_accounts_must_verify_first<B: Backend>(store: Arc<B>) {
    let h = harness(store.clone(), Policy::default());
    h.ciam
        .register(Registration::new("di@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let outcome = h
        .ciam
        .sign_in_password("di@example.com", &pw(PW), &ctx())
        .await
        .unwrap();
    assert!(matches!(outcome, SignInOutcome::VerificationRequired));
    // A wrong password still says only "invalid credentials".
    let e = h
        .ciam
        .sign_in_password("di@example.com", &pw("wrong wrong wrong wrong"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials));
    // A fresh verification mail went out with the refusal.
    h.outbox.nth_to("di@example.com", 2).await;

    let mut lax = Policy::default();
    lax.allow_unverified_sign_in = true;
    let h2 = harness(store, lax);
    let s = h2.sign_in("di@example.com", PW).await;
    assert!(!s.user.email_verified());
}

async fn verification_tokens_are_single_use_and_expire<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.ciam
        .register(Registration::new("ed@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let token = token_in(&h.outbox.nth_to("ed@example.com", 1).await);
    h.ciam.verify_email(&token, &ctx()).await.unwrap();
    assert!(matches!(
        h.ciam.verify_email(&token, &ctx()).await,
        Err(Error::InvalidToken)
    ));
    for bad in [
        "",
        "short",
        &"A".repeat(43),
        &"%".repeat(43),
        &"x".repeat(10_000),
    ] {
        assert!(
            matches!(
                h.ciam.verify_email(bad, &ctx()).await,
                Err(Error::InvalidToken)
            ),
            "{bad:?}"
        );
    }
    h.ciam
        .register(Registration::new("fi@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    let token = token_in(&h.outbox.nth_to("fi@example.com", 1).await);
    h.clock.advance(Duration::hours(24) + Duration::seconds(1));
    assert!(matches!(
        h.ciam.verify_email(&token, &ctx()).await,
        Err(Error::InvalidToken)
    ));
    let user = h
        .store
        .user_by_email(&Email::parse("fi@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!user.email_verified());
}

async fn weak_passwords_are_refused<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let cases = [
        ("short but ok", "too short for a single factor"),
        ("1qaz2wsx3edc4rfv", "common"),
        ("grace-hopper-2026-rocks", "contains the local part"),
        ("acme acme acme acme acme", "contains the app name"),
    ];
    for (password, why) in cases {
        let e = h
            .ciam
            .register(
                Registration::new("grace-hopper@example.com", Some(pw(password))),
                &ctx(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WeakPassword(_)), "{why}: {e:?}");
        assert_eq!(e.kind(), ciam::ErrorKind::InvalidInput);
    }
    let e = h
        .ciam
        .register(
            Registration::new("grace@example.com", Some(pw(&"é".repeat(600)))),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WeakPassword(_)), "{e:?}");
    // Nothing was written by any refused registration.
    assert!(
        h.store
            .user_by_email(&Email::parse("grace-hopper@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(h.outbox.count_to("grace-hopper@example.com").await == 0);
    // 64 characters and any Unicode are fine.
    let long = "ü".repeat(64);
    h.ciam
        .register(
            Registration::new("grace@example.com", Some(pw(&long))),
            &ctx(),
        )
        .await
        .unwrap();
    let e = h
        .ciam
        .register(Registration::new("not an email", Some(pw(PW))), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidIdentifier(_)));
}

async fn sessions_expire_idle_and_absolute<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.session = ciam::SessionPolicy::new(Duration::hours(1), Duration::hours(3))
        .with_touch_interval(Duration::minutes(5));
    let h = harness(store, policy);
    let s = h.register_verified("gu@example.com").await;
    // Within the touch interval nothing is written.
    h.clock.advance(Duration::minutes(2));
    h.auth(&s).await.unwrap();
    let stored = h
        .store
        .session_by_token(&s.token.hash(), h.clock_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_seen_at, stored.created_at);
    // Activity slides the idle expiry (each step is within the 1 h idle timeout)...
    for _ in 0..3 {
        h.clock.advance(Duration::minutes(50));
        h.auth(&s).await.unwrap();
    }
    // ...but never past the absolute lifetime (3 h after sign-in; 3 h 2 min have passed).
    h.clock.advance(Duration::minutes(30));
    assert!(matches!(h.auth(&s).await, Err(Error::Unauthenticated)));
    let s2 = h.sign_in("gu@example.com", PW).await;
    h.clock.advance(Duration::minutes(61));
    assert!(matches!(h.auth(&s2).await, Err(Error::Unauthenticated)));
    // A tampered token is simply not a session.
    let mut t = s2.token.expose().to_owned();
    t.replace_range(0..1, if t.starts_with('A') { "B" } else { "A" });
    assert!(matches!(
        h.ciam
            .authenticate(&OpaqueToken::from_client(&t), &ctx())
            .await,
        Err(Error::Unauthenticated)
    ));
}

async fn sign_in_replaces_a_presented_session<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let first = h.register_verified("ha@example.com").await;
    let ctx2 = ctx().with_session_token(Some(first.token.clone()));
    let SignInOutcome::SignedIn(second) = h
        .ciam
        .sign_in_password("ha@example.com", &pw(PW), &ctx2)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_ne!(first.token.expose(), second.token.expose());
    assert!(matches!(h.auth(&first).await, Err(Error::Unauthenticated)));
    h.auth(&second).await.unwrap();
}

async fn devices_can_be_listed_and_revoked<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let a = h.register_verified("io@example.com").await;
    h.clock.advance(Duration::seconds(1));
    let b = h.sign_in("io@example.com", PW).await;
    h.clock.advance(Duration::seconds(1));
    let c = h.sign_in("io@example.com", PW).await;
    let other = h.register_verified("jo@example.com").await;
    let auth_c = h.auth(&c).await.unwrap();
    let list = h.ciam.list_sessions(&auth_c).await.unwrap();
    assert_eq!(
        list.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![c.session.id, b.session.id, a.session.id]
    );
    assert!(list[0].current && !list[1].current);
    assert_eq!(list[0].device.user_agent.as_deref(), Some("flows-test/1.0"));
    // Another user's session id cannot be revoked.
    assert!(
        !h.ciam
            .revoke_session(&auth_c, other.session.id, &ctx())
            .await
            .unwrap()
    );
    h.auth(&other).await.unwrap();
    assert!(
        h.ciam
            .revoke_session(&auth_c, a.session.id, &ctx())
            .await
            .unwrap()
    );
    assert!(h.auth(&a).await.is_err());
    assert_eq!(
        h.ciam.revoke_other_sessions(&auth_c, &ctx()).await.unwrap(),
        1
    );
    assert!(h.auth(&b).await.is_err());
    h.auth(&c).await.unwrap();
    assert_eq!(
        h.ciam.revoke_all_sessions(&auth_c, &ctx()).await.unwrap(),
        1
    );
    assert!(h.auth(&c).await.is_err());
    assert!(
        h.events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::SessionRevoked { .. }))
    );
}

async fn forgot_and_reset_password<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let s = h.register_verified("ka@example.com").await;
    h.ciam
        .forgot_password("nobody@example.com", &ctx())
        .await
        .unwrap();
    assert_eq!(h.outbox.count_to("nobody@example.com").await, 0);
    h.ciam
        .forgot_password("KA@example.com", &ctx())
        .await
        .unwrap();
    let mail = h.outbox.nth_to("ka@example.com", 2).await;
    assert!(
        mail.text
            .contains("https://acme.example/reset-password?token=")
    );
    let token = token_in(&mail);
    // A refused password leaves the token usable.
    let e = h
        .ciam
        .reset_password(&token, &pw("short"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WeakPassword(_)));
    h.ciam
        .reset_password(&token, &pw(PW2), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        h.ciam.reset_password(&token, &pw(PW2), &ctx()).await,
        Err(Error::InvalidToken)
    ));
    // Every session ended; the old password is dead, the new one works; the owner is told.
    assert!(h.auth(&s).await.is_err());
    assert!(
        h.ciam
            .sign_in_password("ka@example.com", &pw(PW), &ctx())
            .await
            .is_err()
    );
    h.sign_in("ka@example.com", PW2).await;
    let notice = h.outbox.nth_to("ka@example.com", 3).await;
    assert!(notice.subject.contains("password was changed"));
    // An expired reset link does not work.
    h.ciam
        .forgot_password("ka@example.com", &ctx())
        .await
        .unwrap();
    let token = token_in(&h.outbox.nth_to("ka@example.com", 4).await);
    h.clock.advance(Duration::minutes(31));
    assert!(matches!(
        h.ciam.reset_password(&token, &pw(PW), &ctx()).await,
        Err(Error::InvalidToken)
    ));
}

async fn change_password_needs_proof_and_rotates<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let s = h.register_verified("li@example.com").await;
    let other = h.sign_in("li@example.com", PW).await;
    let auth = h.auth(&s).await.unwrap();
    let e = h
        .ciam
        .change_password(
            &auth,
            Some(&pw("wrong wrong wrong wrong")),
            &pw(PW2),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials));
    let e = h
        .ciam
        .change_password(&auth, Some(&pw(PW)), &pw("tiny"), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WeakPassword(_)));
    // Without the current password, only a recent sign-in will do.
    h.clock.advance(Duration::minutes(11));
    let auth = h.auth(&s).await.unwrap();
    assert!(matches!(
        h.ciam.change_password(&auth, None, &pw(PW2), &ctx()).await,
        Err(Error::StepUpRequired)
    ));
    let rotated = h
        .ciam
        .change_password(&auth, Some(&pw(PW)), &pw(PW2), &ctx())
        .await
        .unwrap();
    assert_ne!(rotated.token.expose(), s.token.expose());
    assert!(h.auth(&s).await.is_err());
    assert!(h.auth(&other).await.is_err());
    h.auth(&rotated).await.unwrap();
    h.sign_in("li@example.com", PW2).await;
    let notice = h.outbox.nth_to("li@example.com", 2).await;
    assert!(notice.subject.contains("password was changed"));
    // Fresh sign-in: no current password needed within the window.
    let fresh = h.sign_in("li@example.com", PW2).await;
    let auth = h.auth(&fresh).await.unwrap();
    h.ciam
        .change_password(&auth, None, &pw(PW), &ctx())
        .await
        .unwrap();
}

async fn change_email_confirms_the_new_address<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let s = h.register_verified("mo@example.com").await;
    h.register_verified("taken@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    h.ciam
        .request_email_change(&auth, "taken@example.com", None, &ctx())
        .await
        .unwrap();
    let notice = h.outbox.nth_to("taken@example.com", 2).await;
    assert!(!notice.text.contains("token="));
    h.ciam
        .request_email_change(&auth, "New.Mo@Example.com", None, &ctx())
        .await
        .unwrap();
    let confirm = h.outbox.nth_to("New.Mo@example.com", 1).await;
    let told = h.outbox.nth_to("mo@example.com", 2).await;
    assert!(told.subject.contains("change requested"));
    // Nothing changed yet.
    h.sign_in("mo@example.com", PW).await;
    let outcome = h
        .ciam
        .verify_email(&token_in(&confirm), &ctx())
        .await
        .unwrap();
    let VerifyOutcome::EmailChanged(user) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        user.email.as_ref().map(|e| e.as_str()),
        Some("New.Mo@example.com")
    );
    assert!(user.email_verified());
    h.sign_in("new.mo@example.com", PW).await;
    assert!(
        h.ciam
            .sign_in_password("mo@example.com", &pw(PW), &ctx())
            .await
            .is_err()
    );
    let changed = h.outbox.nth_to("mo@example.com", 3).await;
    assert!(changed.subject.contains("address was changed"));
    // A stale session must step up.
    h.clock.advance(Duration::minutes(20));
    let auth = h.auth(&s).await.unwrap();
    assert!(matches!(
        h.ciam
            .request_email_change(&auth, "x@example.com", None, &ctx())
            .await,
        Err(Error::StepUpRequired)
    ));
    assert!(matches!(
        h.ciam
            .request_email_change(
                &auth,
                "x@example.com",
                Some(&pw("wrong wrong wrong")),
                &ctx()
            )
            .await,
        Err(Error::InvalidCredentials)
    ));
    h.ciam
        .request_email_change(&auth, "x@example.com", Some(&pw(PW)), &ctx())
        .await
        .unwrap();
    assert!(matches!(
        h.ciam
            .request_email_change(&auth, "bad address", Some(&pw(PW)), &ctx())
            .await,
        Err(Error::InvalidIdentifier(_))
    ));
}

async fn legacy_and_outdated_hashes_are_upgraded<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let s = h.register_verified("no@example.com").await;
    let user_id = s.user.id;
    let mut cred = h
        .store
        .credentials_for_user(user_id, CredentialKind::Password)
        .await
        .unwrap()
        .remove(0);
    // An imported bcrypt hash of PW (cost 4, made with pyca/bcrypt).
    let bcrypt = bcrypt_of(PW);
    cred.secret = bcrypt.clone();
    let cred = h.store.update_credential(&cred).await.unwrap();
    h.sign_in("no@example.com", PW).await;
    let upgraded = h
        .store
        .credentials_for_user(user_id, CredentialKind::Password)
        .await
        .unwrap()
        .remove(0);
    assert!(
        upgraded.secret.starts_with("$argon2id$"),
        "{}",
        upgraded.secret
    );
    assert!(upgraded.version > cred.version);
    assert!(!h.ciam.password_hasher().needs_rehash(&upgraded.secret));
    let log = h.ciam.audit_log(user_id, 20).await.unwrap();
    assert!(
        log.iter().any(
            |e| e.action == AuditAction::PasswordRehashed && e.outcome == AuditOutcome::Success
        )
    );
}

fn bcrypt_of(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

async fn locked_accounts_cannot_sign_in<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    let s = h.register_verified("pa@example.com").await;
    let mut user = h.store.user_by_id(s.user.id).await.unwrap().unwrap();
    user.status = UserStatus::Locked;
    h.store.update_user(&user).await.unwrap();
    assert!(matches!(
        h.ciam
            .sign_in_password("pa@example.com", &pw("nope nope nope nope"), &ctx())
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        h.ciam
            .sign_in_password("pa@example.com", &pw(PW), &ctx())
            .await,
        Err(Error::AccountUnavailable)
    ));
    // A reset unlocks.
    h.ciam
        .forgot_password("pa@example.com", &ctx())
        .await
        .unwrap();
    let token = token_in(&h.outbox.nth_to("pa@example.com", 2).await);
    h.ciam
        .reset_password(&token, &pw(PW2), &ctx())
        .await
        .unwrap();
    h.sign_in("pa@example.com", PW2).await;
}

async fn mail_is_rate_limited<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.ciam
        .register(Registration::new("qu@example.com", Some(pw(PW))), &ctx())
        .await
        .unwrap();
    for _ in 0..5 {
        h.ciam
            .resend_verification("qu@example.com", &ctx())
            .await
            .unwrap();
    }
    assert_eq!(h.outbox.count_to("qu@example.com").await, 3);
    let log = h.ciam.recent_audit(50).await.unwrap();
    assert!(log.iter().any(|e| e.action == AuditAction::Throttled));
    h.clock.advance(Duration::minutes(61));
    h.ciam
        .resend_verification("qu@example.com", &ctx())
        .await
        .unwrap();
    assert_eq!(h.outbox.count_to("qu@example.com").await, 4);
    // Unknown addresses answer the same and get nothing.
    h.ciam
        .resend_verification("zz@example.com", &ctx())
        .await
        .unwrap();
    assert_eq!(h.outbox.count_to("zz@example.com").await, 0);
}
