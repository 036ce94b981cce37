//! The engine's federated flows end to end, on the memory and SQLite backends, against the
//! real OpenID Provider (npm oidc-provider on loopback, started by
//! scripts/peers/oidc-start.sh; scripts/test.sh exports `CIAM_TEST_OIDC_*`): sign-up, sign-in,
//! automatic and proven linking, the pre-hijacking defence, the refusals (replayed, wrong,
//! expired and foreign state, another browser, provider errors), the second-factor gate,
//! sealed provider tokens, and "the last way to sign in cannot be unlinked".
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::{AuditAction as Action, AuditOutcome};
use ciam::credential::CredentialKind;
use ciam::oidc::{ClientAuth, ProviderConfig, RelyingParty};
use ciam::otp::{OtpAuthUri, OtpSecret};
use ciam::store::Backend;
use ciam::user::UserStatus;
use ciam::{
    Error, FederatedAccount, FederationConfig, FederationOutcome, FederationStart, MfaProof,
    Policy, SecretString, SignInOutcome, SignedIn,
};
use support::*;
use time::Duration;

support::on_both_backends!(
    sign_up_then_sign_in_with_the_same_identity,
    refusals_leave_no_account_and_consume_the_state,
    verified_address_links_to_the_verified_account,
    pre_hijacking_unverified_account_is_superseded,
    unverified_provider_address_needs_the_account_proven,
    last_way_to_sign_in_cannot_be_unlinked,
    second_factor_gate_applies_to_federated_sign_in,
    provider_tokens_are_sealed_at_rest,
    a_closed_account_releases_its_identities,
);

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the OpenID Provider with scripts/peers/oidc-start.sh (scripts/test.sh does)")
    })
}

async fn provider(name: &str, keep_tokens: bool) -> RelyingParty {
    let mut c = ProviderConfig::oidc(
        name,
        &env("CIAM_TEST_OIDC_ISSUER"),
        &env("CIAM_TEST_OIDC_CLIENT_ID"),
        Some(&env("CIAM_TEST_OIDC_CLIENT_SECRET")),
    );
    if name != "op" {
        c.client_id = env("CIAM_TEST_OIDC_POST_CLIENT_ID");
        c.client_auth = ClientAuth::SecretPost(env("CIAM_TEST_OIDC_POST_CLIENT_SECRET").into());
    }
    c.redirect_uri = REDIRECT.to_owned();
    c.display_name = format!("Test OP ({name})");
    c.keep_tokens = keep_tokens;
    c.scopes.push("offline_access".into());
    RelyingParty::discover(c, ciam::oidc::default_http_client().unwrap())
        .await
        .unwrap()
}

/// Providers `op` and `op2` (another client of the same issuer), second factors, and the
/// clock at the real time (the provider's ID tokens carry it).
async fn fed_harness<B: Backend>(store: Arc<B>, policy: Policy, keep_tokens: bool) -> Harness<B> {
    let config = FederationConfig::new()
        .with_token_key("k1", &[9; 32])
        .unwrap()
        .with_provider(provider("op", keep_tokens).await)
        .unwrap()
        .with_provider(provider("op2", false).await)
        .unwrap();
    let h = harness_with(store, policy, |b| b.federation(config).mfa(mfa_config()));
    h.clock.set(time::OffsetDateTime::now_utc());
    h
}

/// A browser: follows the provider's redirects with a fresh cookie jar (the provider logs in
/// the login_hint headlessly) and returns the parameters it would bring to the callback.
async fn browse(start: &FederationStart) -> Vec<(String, String)> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut next = start.redirect_url.clone();
    for _ in 0..12 {
        if next.starts_with(REDIRECT) {
            let u = url::Url::parse(&next).unwrap();
            return u.query_pairs().into_owned().collect();
        }
        let resp = browser.get(&next).send().await.unwrap();
        let loc = resp
            .headers()
            .get("location")
            .expect("a redirect")
            .to_str()
            .unwrap();
        next = url::Url::parse(&next)
            .unwrap()
            .join(loc)
            .unwrap()
            .to_string();
    }
    panic!("too many redirects");
}

impl<B: Backend> Harness<B> {
    async fn start(&self, provider: &str, user: &str) -> FederationStart {
        // The provider's ID tokens carry the real time: keep the engine's clock on it, so a
        // slow run cannot make a fresh token look issued in the future.
        self.clock.set(time::OffsetDateTime::now_utc());
        self.ciam
            .start_federated_sign_in(provider, Some(user), &ctx())
            .await
            .unwrap()
    }

    /// Starts, drives the provider as `user`, and finishes in the same browser.
    async fn federate(&self, user: &str) -> Result<FederationOutcome, Error> {
        let start = self.start("op", user).await;
        let params = browse(&start).await;
        self.ciam
            .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
            .await
    }

    async fn federated_in(&self, user: &str, expect: FederatedAccount) -> SignedIn {
        match self.federate(user).await.unwrap() {
            FederationOutcome::SignIn {
                outcome: SignInOutcome::SignedIn(s),
                account,
            } => {
                assert_eq!(account, expect, "{user}");
                *s
            }
            other => panic!("expected a sign-in, got {other:?}"),
        }
    }

    async fn fed_refused(&self, action: Action, reason: &str) {
        let log = self.whole_audit().await;
        assert!(
            log.iter().any(|e| e.action == action
                && e.outcome == AuditOutcome::Failure
                && e.reason == reason),
            "no {}/failure/{reason}",
            action.as_str()
        );
    }
}

fn rejected<T: std::fmt::Debug>(r: Result<T, Error>, reason: &str) {
    match r {
        Err(Error::FederationRejected(got)) if got == reason => {}
        other => panic!("expected FederationRejected({reason}), got {other:?}"),
    }
}

async fn sign_up_then_sign_in_with_the_same_identity<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    let first = h
        .federated_in("alice@example.test", FederatedAccount::Created)
        .await;
    let user = h.ciam.user(first.user.id).await.unwrap();
    assert_eq!(user.email.as_ref().unwrap().as_str(), "alice@example.test");
    assert!(user.email_verified(), "the provider verified the address");
    let auth = h.auth(&first).await.unwrap();
    assert_eq!(amr_text(&auth), vec!["fed"]);
    let ids = h.ciam.federated_identities(&auth).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider, "op");
    assert_eq!(ids[0].issuer, env("CIAM_TEST_OIDC_ISSUER"));
    assert_eq!(ids[0].subject, "alice@example.test");
    // No password was made: the identity is the only credential.
    let stored = h
        .store
        .credentials_for_user(user.id, CredentialKind::Password)
        .await
        .unwrap();
    assert!(stored.is_empty());
    let again = h
        .federated_in("alice@example.test", FederatedAccount::Existing)
        .await;
    assert_eq!(again.user.id, first.user.id);
    let log = h.ciam.audit_log(first.user.id, 200).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == Action::Register && e.reason == "federated")
    );
    assert!(
        log.iter()
            .any(|e| e.action == Action::SignInFederated && e.reason == "federated")
    );
}

async fn refusals_leave_no_account_and_consume_the_state<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    // Replayed state: the first use consumes it.
    let start = h.start("op", "bob@example.test").await;
    let params = browse(&start).await;
    let binding = Some(start.binding.expose());
    assert!(
        h.ciam
            .finish_federation("op", &params, binding, &ctx())
            .await
            .is_ok()
    );
    rejected(
        h.ciam
            .finish_federation("op", &params, binding, &ctx())
            .await,
        "unknown_or_expired_state",
    );
    // A state this server never issued.
    let start = h.start("op", "carl@example.test").await;
    let mut params = browse(&start).await;
    for (k, v) in &mut params {
        if k == "state" {
            v.push('x');
        }
    }
    rejected(
        h.ciam
            .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
            .await,
        "unknown_or_expired_state",
    );
    // Another browser (no binding, then someone else's): refused, and the state is spent.
    let start = h.start("op", "carl@example.test").await;
    let other = h.start("op", "carl@example.test").await;
    let params = browse(&start).await;
    rejected(
        h.ciam.finish_federation("op", &params, None, &ctx()).await,
        "browser_mismatch",
    );
    rejected(
        h.ciam
            .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
            .await,
        "unknown_or_expired_state",
    );
    let params = browse(&start).await;
    let _ = params;
    let params = browse(&other).await;
    rejected(
        h.ciam
            .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
            .await,
        "browser_mismatch",
    );
    // A response for provider op brought to op2's callback (mix-up through the callback).
    let start = h.start("op", "carl@example.test").await;
    let params = browse(&start).await;
    rejected(
        h.ciam
            .finish_federation("op2", &params, Some(start.binding.expose()), &ctx())
            .await,
        "state_of_another_provider",
    );
    // The provider's own error.
    let denied = h.federate("__deny__").await;
    rejected(denied, "provider_error");
    h.fed_refused(Action::SignInFederated, "provider_error")
        .await;
    // An expired state (the authorization took longer than 10 minutes).
    let start = h.start("op", "carl@example.test").await;
    let params = browse(&start).await;
    h.clock.advance(Duration::minutes(11));
    rejected(
        h.ciam
            .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
            .await,
        "unknown_or_expired_state",
    );
    h.fed_refused(Action::SignInFederated, "browser_mismatch")
        .await;
    // None of it made an account for carl.
    let carl = ciam::identifier::Email::parse("carl@example.test").unwrap();
    assert!(h.store.user_by_email(&carl).await.unwrap().is_none());
}

async fn verified_address_links_to_the_verified_account<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    let local = h.register_verified("dora@example.test").await;
    let fed = h
        .federated_in("dora@example.test", FederatedAccount::LinkedAutomatically)
        .await;
    assert_eq!(fed.user.id, local.user.id);
    // The password still works; both are ways in now.
    h.sign_in("dora@example.test", PW).await;
    let log = h.ciam.audit_log(local.user.id, 200).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == Action::FederatedLinked && e.reason == "linked_automatically")
    );
}

async fn pre_hijacking_unverified_account_is_superseded<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.allow_unverified_sign_in = true;
    let h = fed_harness(store, policy, false).await;
    // The attacker registers the victim's address with their own password, never verifies it,
    // and (this policy allows it) holds a session.
    h.ciam
        .register(
            ciam::Registration::new("erin@example.test", Some(pw(PW))),
            &ctx(),
        )
        .await
        .unwrap();
    let attacker = h.sign_in("erin@example.test", PW).await;
    let attacker_id = attacker.user.id;
    assert!(h.auth(&attacker).await.is_ok());
    // The victim signs in with the provider, which verified the address.
    let victim = h
        .federated_in("erin@example.test", FederatedAccount::SupersededUnverified)
        .await;
    assert_ne!(
        victim.user.id, attacker_id,
        "a new account, not the attacker's"
    );
    // The attacker's password opens nothing, their session is over, the old account is
    // disabled and no longer holds the address.
    assert!(matches!(
        h.ciam
            .sign_in_password("erin@example.test", &pw(PW), &ctx())
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(h.auth(&attacker).await.is_err());
    let old = h.ciam.user(attacker_id).await.unwrap();
    assert_eq!(old.status, UserStatus::Disabled);
    assert!(old.email.is_none());
    for kind in [CredentialKind::Password, CredentialKind::Federated] {
        assert!(
            h.store
                .credentials_for_user(attacker_id, kind)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let log = h.ciam.audit_log(attacker_id, 200).await.unwrap();
    let entry = log
        .iter()
        .find(|e| e.action == Action::AccountSuperseded)
        .expect("superseding is audited");
    assert_eq!(entry.detail["by_issuer"], env("CIAM_TEST_OIDC_ISSUER"));
    // The victim's own account is the address's account from now on.
    let again = h
        .federated_in("erin@example.test", FederatedAccount::Existing)
        .await;
    assert_eq!(again.user.id, victim.user.id);
}

async fn unverified_provider_address_needs_the_account_proven<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    let local = h.register_verified("unverified-fay@example.test").await;
    // The provider does not vouch for the address: no automatic link, whether or not an
    // account holds the address (the answers are alike).
    let link = match h.federate("unverified-fay@example.test").await.unwrap() {
        FederationOutcome::LinkRequired(p) => p,
        other => panic!("expected LinkRequired, got {other:?}"),
    };
    assert!(matches!(
        h.federate("unverified-nobody@example.test").await.unwrap(),
        FederationOutcome::LinkRequired(_)
    ));
    let auth = h.auth(&local).await.unwrap();
    assert!(h.ciam.federated_identities(&auth).await.unwrap().is_empty());
    // The user proves the account by signing in to it, then the link is made.
    let fresh = h.sign_in("unverified-fay@example.test", PW).await;
    let auth = h.auth(&fresh).await.unwrap();
    let linked = h
        .ciam
        .complete_federated_link(&auth, link.token.expose(), &ctx())
        .await
        .unwrap();
    assert_eq!(linked.subject, "unverified-fay@example.test");
    rejected(
        h.ciam
            .complete_federated_link(&auth, link.token.expose(), &ctx())
            .await,
        "unknown_or_expired_link",
    );
    let back = h
        .federated_in("unverified-fay@example.test", FederatedAccount::Existing)
        .await;
    assert_eq!(back.user.id, local.user.id);
    // A stale session cannot complete a link.
    let other = match h.federate("unverified-gus@example.test").await.unwrap() {
        FederationOutcome::LinkRequired(p) => p,
        other => panic!("expected LinkRequired, got {other:?}"),
    };
    h.clock.advance(Duration::hours(2));
    let stale = h.auth(&fresh).await.unwrap();
    assert!(matches!(
        h.ciam
            .complete_federated_link(&stale, other.token.expose(), &ctx())
            .await,
        Err(Error::StepUpRequired)
    ));
}

async fn last_way_to_sign_in_cannot_be_unlinked<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    let s = h
        .federated_in("hal@example.test", FederatedAccount::Created)
        .await;
    let auth = h.auth(&s).await.unwrap();
    let first = h.ciam.federated_identities(&auth).await.unwrap().remove(0);
    assert!(matches!(
        h.ciam
            .unlink_federated_identity(&auth, first.id, &ctx())
            .await,
        Err(Error::LastSignInMethod)
    ));
    h.fed_refused(Action::FederatedUnlinked, "last_sign_in_method")
        .await;
    // Link a second identity (another account at the provider) from account settings.
    let start = h
        .ciam
        .start_federated_link(&auth, "op", Some("hal-work@example.test"), &ctx())
        .await
        .unwrap();
    let params = browse(&start).await;
    let linked = match h
        .ciam
        .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
        .await
        .unwrap()
    {
        FederationOutcome::Linked(i) => i,
        other => panic!("expected Linked, got {other:?}"),
    };
    assert_eq!(linked.subject, "hal-work@example.test");
    assert_eq!(h.ciam.federated_identities(&auth).await.unwrap().len(), 2);
    // An identity already linked to this account cannot be linked to another one.
    let other = h
        .federated_in("ivan@example.test", FederatedAccount::Created)
        .await;
    let other_auth = h.auth(&other).await.unwrap();
    let start = h
        .ciam
        .start_federated_link(&other_auth, "op", Some("hal-work@example.test"), &ctx())
        .await
        .unwrap();
    let params = browse(&start).await;
    rejected(
        h.ciam
            .finish_federation("op", &params, Some(start.binding.expose()), &ctx())
            .await,
        "identity_linked_to_another_account",
    );
    // Someone else's identity id is not found.
    assert!(matches!(
        h.ciam
            .unlink_federated_identity(&other_auth, first.id, &ctx())
            .await,
        Err(Error::NotFound)
    ));
    // With two, one goes; the other is then the last.
    h.ciam
        .unlink_federated_identity(&auth, first.id, &ctx())
        .await
        .unwrap();
    assert!(matches!(
        h.ciam
            .unlink_federated_identity(&auth, linked.id, &ctx())
            .await,
        Err(Error::LastSignInMethod)
    ));
    // Unlinking needs a recent sign-in.
    h.clock.advance(Duration::hours(2));
    let stale = h.auth(&s).await.unwrap();
    assert!(matches!(
        h.ciam
            .unlink_federated_identity(&stale, linked.id, &ctx())
            .await,
        Err(Error::StepUpRequired)
    ));
}

async fn second_factor_gate_applies_to_federated_sign_in<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    let s = h
        .federated_in("jill@example.test", FederatedAccount::Created)
        .await;
    let auth = h.auth(&s).await.unwrap();
    let enrolment = h.ciam.start_totp_enrolment(&auth, &ctx()).await.unwrap();
    let uri = OtpAuthUri::parse(enrolment.otpauth_uri.expose()).unwrap();
    let secret = OtpSecret::from_bytes(uri.secret().expose()).unwrap();
    let code = |offset: i64| {
        uri.config()
            .code_at(&secret, (h.unix_now() as i64 + offset) as u64)
    };
    h.ciam
        .confirm_totp(&auth, enrolment.enrolment.expose(), &code(0), &ctx())
        .await
        .unwrap();
    // The next federated sign-in stops at the second factor, like a password sign-in.
    let token = match h.federate("jill@example.test").await.unwrap() {
        FederationOutcome::SignIn {
            outcome: SignInOutcome::MfaRequired(c),
            account: FederatedAccount::Existing,
        } => c.token,
        other => panic!("expected MfaRequired, got {other:?}"),
    };
    let done = h
        .ciam
        .complete_mfa(
            token.expose(),
            &MfaProof::Totp(SecretString::new(code(30))),
            false,
            &ctx(),
        )
        .await
        .unwrap();
    let signed = expect_signed_in(Ok(done));
    let auth = h.auth(&signed).await.unwrap();
    assert!(amr_text(&auth).contains(&"fed"), "{:?}", amr_text(&auth));
    assert!(amr_text(&auth).contains(&"mfa"));
}

async fn provider_tokens_are_sealed_at_rest<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), true).await;
    let s = h
        .federated_in("kim@example.test", FederatedAccount::Created)
        .await;
    let auth = h.auth(&s).await.unwrap();
    let id = h
        .ciam
        .federated_identities(&auth)
        .await
        .unwrap()
        .remove(0)
        .id;
    let tokens = h
        .ciam
        .federated_tokens(&auth, id)
        .await
        .unwrap()
        .expect("kept");
    assert!(tokens.access_token.len() > 20);
    let stored = h
        .store
        .credentials_for_user(s.user.id, CredentialKind::Federated)
        .await
        .unwrap()
        .remove(0);
    assert!(
        !stored.secret.contains(tokens.access_token.as_str()),
        "sealed, not plain"
    );
    let record: serde_json::Value = serde_json::from_str(&stored.secret).unwrap();
    assert!(record["tokens"].as_str().unwrap().starts_with("k1."));
    // The sealed blob is bound to its user: copied onto another account's identity, it does
    // not open.
    let other = h
        .federated_in("lou@example.test", FederatedAccount::Created)
        .await;
    let other_auth = h.auth(&other).await.unwrap();
    let mut theirs = h
        .store
        .credentials_for_user(other.user.id, CredentialKind::Federated)
        .await
        .unwrap()
        .remove(0);
    let mut their_record: serde_json::Value = serde_json::from_str(&theirs.secret).unwrap();
    their_record["tokens"] = record["tokens"].clone();
    theirs.secret = their_record.to_string();
    h.store.update_credential(&theirs).await.unwrap();
    assert!(
        h.ciam
            .federated_tokens(&other_auth, theirs.id)
            .await
            .is_err()
    );
}

async fn a_closed_account_releases_its_identities<B: Backend>(store: Arc<B>) {
    let h = fed_harness(store, Policy::default(), false).await;
    let s = h
        .federated_in("max@example.test", FederatedAccount::Created)
        .await;
    let auth = h.auth(&s).await.unwrap();
    h.ciam.delete_account(&auth, None, &ctx()).await.unwrap();
    assert!(
        h.store
            .credentials_for_user(s.user.id, CredentialKind::Federated)
            .await
            .unwrap()
            .is_empty()
    );
    // The closed account still holds the address, verified: the identity is not linked to it
    // again, and the closed account may not sign in.
    assert!(matches!(
        h.federate("max@example.test").await,
        Err(Error::AccountUnavailable)
    ));
    assert!(
        h.store
            .credentials_for_user(s.user.id, CredentialKind::Federated)
            .await
            .unwrap()
            .is_empty()
    );
}
