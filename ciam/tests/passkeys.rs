//! The engine's passkey flows end to end, on the memory and SQLite backends, against a real
//! WebAuthn client and authenticator (1Password's `passkey-client` + `passkey-authenticator`,
//! software keys): sign-up with a passkey alone, discoverable and allow-list sign-in, adding,
//! listing, renaming and removing passkeys, step-up, the refusals (replay, expiry, foreign
//! ceremonies, wrong origin, counter regression) and backup-state drift, each with its audit
//! entries.
//!
//! The authenticator sets UP and UV, and BE and BS on every response (passkey-types'
//! `AuthenticatorData` starts from `Flags::BE | Flags::BS`): its passkeys count as synced, so
//! a verified sign-in is `hwk mfa` at AAL2 (the table in the engine's passkeys module).
//! Device-bound passkeys come from [`BoundKey`], a small authenticator written out here (ring
//! keys, hand-encoded CBOR), which clears BE and can attest with the W3C test attestation key:
//! AAL3 needs both, and the attestation verified to a configured anchor.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ciam::audit::{AuditAction as Action, AuditEntry, AuditOutcome};
use ciam::credential::{Credential, CredentialKind};
use ciam::id::UserId;
use ciam::identifier::Email;
use ciam::risk::DefaultRiskPolicy;
use ciam::session::{Aal, AuthMethod};
use ciam::store::Backend;
use ciam::webauthn::{
    AttestationConveyance, AttestationTrust, CounterPolicy, CreationOptionsJson, RelyingParty,
    RequestOptionsJson, UserVerificationPolicy,
};
use ciam::{
    AuthContext, Error, MfaFactor, PasskeyConfig, PasskeyInfo, Policy, RegisterOutcome,
    Registration, RequestContext, SignInOutcome, SignedIn,
};
use passkey_authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client, DefaultClientData, WebauthnError};
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::Passkey;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use public_suffix::PublicSuffixList;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use support::{Harness, PW, ctx, harness_with, on_both_backends};
use time::Duration;
use url::Url;

const RP_ID: &str = "acme.example";
const ORIGIN: &str = "https://acme.example";
/// A sibling origin the client accepts for the RP ID, but not configured at the RP.
const OTHER_ORIGIN: &str = "https://login.acme.example";
/// The engine's default ceremony lifetime.
const CEREMONY_TTL: Duration = Duration::minutes(5);

/// The user holding the authenticator: there, approving, and verified by biometrics every
/// time. A credential the RP excludes ends the registration, as platform UIs do.
struct Approver;

type Hint<'a> = UiHint<'a, Passkey>;
type Check = Result<UserCheck, Ctap2Error>;

#[async_trait::async_trait]
impl UserValidationMethod for Approver {
    type PasskeyItem = Passkey;

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    async fn check_user<'a>(&self, hint: Hint<'a>, presence: bool, verification: bool) -> Check {
        if let UiHint::InformExcludedCredentialFound(_) = hint {
            return Err(Ctap2Error::CredentialExcluded);
        }
        Ok(UserCheck {
            presence,
            verification,
        })
    }
}

/// One authenticator holding at most one discoverable passkey, in a browser at one origin.
struct Device {
    client: Client<Option<Passkey>, Approver, RustCryptoBackend, PublicSuffixList, ()>,
    origin: Url,
}

impl Device {
    /// A device at the RP's own origin; `counter`: whether its passkeys keep a signature
    /// counter.
    fn new(counter: bool) -> Self {
        Self::at(ORIGIN, counter)
    }

    fn at(origin: &str, counter: bool) -> Self {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            None::<Passkey>,
            Approver,
            RustCryptoBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(counter);
        Self {
            client: Client::new(authenticator),
            origin: Url::parse(origin).unwrap(),
        }
    }

    /// `navigator.credentials.create()` with the RP's options, answered in L3 JSON.
    async fn try_create(&mut self, options: &CreationOptionsJson) -> Result<String, WebauthnError> {
        let options = serde_json::to_value(options).unwrap();
        let request = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let created = self
            .client
            .register(&self.origin, request, DefaultClientData)
            .await?;
        Ok(serde_json::to_string(&created).unwrap())
    }

    async fn create(&mut self, options: &CreationOptionsJson) -> String {
        self.try_create(options).await.unwrap()
    }

    /// `navigator.credentials.get()` with the RP's options, answered in L3 JSON.
    async fn get(&mut self, options: &RequestOptionsJson) -> String {
        let options = serde_json::to_value(options).unwrap();
        let request = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let asserted = self
            .client
            .authenticate(&self.origin, request, DefaultClientData)
            .await
            .unwrap();
        serde_json::to_string(&asserted).unwrap()
    }

    /// The WebAuthn credential id of the passkey it holds.
    fn credential_id(&self) -> Vec<u8> {
        let held = self.client.authenticator().store().as_ref();
        held.expect("the device holds no passkey")
            .credential_id
            .to_vec()
    }
}

fn relying_party(counter: CounterPolicy, uv: UserVerificationPolicy) -> RelyingParty {
    RelyingParty::builder(RP_ID)
        .name("Acme")
        .origin(ORIGIN)
        .user_verification(uv)
        .counter_policy(counter)
        .build()
        .unwrap()
}

/// The harness with passkeys on, the RP requiring UV and refusing counter regressions.
fn passkey_harness<B: Backend>(store: Arc<B>) -> Harness<B> {
    let rp = relying_party(CounterPolicy::Refuse, UserVerificationPolicy::Required);
    passkey_harness_with(store, rp)
}

fn passkey_harness_with<B: Backend>(store: Arc<B>, rp: RelyingParty) -> Harness<B> {
    let config = PasskeyConfig::new(rp).unwrap();
    harness_with(store, Policy::default(), |b| b.passkeys(config))
}

fn rejected(result: Result<impl std::fmt::Debug, Error>, reason: &str) {
    match result {
        Err(Error::PasskeyRejected(r)) if r == reason => {}
        other => panic!("expected PasskeyRejected({reason}), got {other:?}"),
    }
}

/// The newest entry with `action`, `outcome` and `reason`; the test fails without one.
fn entry<'a>(
    log: &'a [AuditEntry],
    action: Action,
    outcome: AuditOutcome,
    reason: &str,
) -> &'a AuditEntry {
    log.iter()
        .find(|e| e.action == action && e.outcome == outcome && e.reason == reason)
        .unwrap_or_else(|| {
            let seen: Vec<_> = log
                .iter()
                .map(|e| format!("{}/{}/{}", e.action.as_str(), e.outcome.as_str(), e.reason))
                .collect();
            panic!(
                "no {}/{}/{reason} in {seen:#?}",
                action.as_str(),
                outcome.as_str()
            )
        })
}

impl<B: Backend> Harness<B> {
    async fn audit(&self, user: UserId) -> Vec<AuditEntry> {
        self.ciam.audit_log(user, 200).await.unwrap()
    }

    async fn registration_options(&self, auth: &AuthContext) -> CreationOptionsJson {
        let options = self.ciam.passkey_registration_options(auth, &ctx()).await;
        options.unwrap()
    }

    async fn finish_registration(
        &self,
        auth: &AuthContext,
        response: &str,
    ) -> Result<PasskeyInfo, Error> {
        let ctx = ctx();
        let finished = self
            .ciam
            .finish_passkey_registration(auth, response, None, &ctx);
        finished.await
    }

    async fn finish_sign_up(&self, response: &str) -> Result<RegisterOutcome, Error> {
        self.ciam
            .finish_passkey_sign_up(response, None, &ctx())
            .await
    }

    async fn finish_sign_in(&self, response: &str) -> Result<SignInOutcome, Error> {
        self.ciam.finish_passkey_sign_in(response, &ctx()).await
    }

    async fn finish_step_up(&self, auth: &AuthContext, response: &str) -> Result<SignedIn, Error> {
        self.ciam
            .finish_passkey_step_up(auth, response, &ctx())
            .await
    }

    /// The newest audit entry about `user` with `action`, `outcome` and `reason`.
    async fn logged(
        &self,
        user: UserId,
        action: Action,
        outcome: AuditOutcome,
        reason: &str,
    ) -> AuditEntry {
        let log = self.audit(user).await;
        entry(&log, action, outcome, reason).clone()
    }

    /// The newest audit entry about `user` refusing `action` for `reason`.
    async fn refused(&self, user: UserId, action: Action, reason: &str) -> AuditEntry {
        self.logged(user, action, AuditOutcome::Failure, reason)
            .await
    }

    /// The newest audit entry about `user` allowing `action` for `reason`.
    async fn allowed(&self, user: UserId, action: Action, reason: &str) -> AuditEntry {
        self.logged(user, action, AuditOutcome::Success, reason)
            .await
    }

    /// Entries without a user (refusals before anyone is known).
    async fn anonymous_audit(&self) -> Vec<AuditEntry> {
        let all = self.ciam.recent_audit(200).await.unwrap();
        all.into_iter().filter(|e| e.user_id.is_none()).collect()
    }

    async fn user_id(&self, email: &str) -> Option<UserId> {
        let email = Email::parse(email).unwrap();
        let user = self.store.user_by_email(&email).await.unwrap();
        user.map(|u| u.id)
    }

    async fn stored_passkeys(&self, user: UserId) -> Vec<Credential> {
        self.store
            .credentials_for_user(user, CredentialKind::Passkey)
            .await
            .unwrap()
    }

    /// The stored passkey with WebAuthn credential id `id`.
    async fn stored_passkey(&self, id: &[u8]) -> Credential {
        self.store
            .credential_by_lookup(CredentialKind::Passkey, id)
            .await
            .unwrap()
            .expect("no stored passkey with this credential id")
    }

    /// Rewrites one field of the stored passkey's WebAuthn record.
    async fn edit_record(&self, id: &[u8], field: &str, value: Value) {
        let mut credential = self.stored_passkey(id).await;
        let mut secret: Value = serde_json::from_str(&credential.secret).unwrap();
        assert!(secret["record"][field] != Value::Null, "no record.{field}");
        secret["record"][field] = value;
        credential.secret = secret.to_string();
        self.store.update_credential(&credential).await.unwrap();
    }

    async fn record_field(&self, id: &[u8], field: &str) -> Value {
        let secret: Value = serde_json::from_str(&self.stored_passkey(id).await.secret).unwrap();
        secret["record"][field].clone()
    }

    /// Signs up `email` with `device`'s new passkey alone; the account is unverified.
    async fn passkey_sign_up(&self, device: &mut Device, email: &str) -> UserId {
        let options = self
            .ciam
            .passkey_sign_up_options(Registration::new(email, None), &ctx())
            .await
            .unwrap();
        let response = device.create(&options).await;
        let outcome = self
            .ciam
            .finish_passkey_sign_up(&response, None, &ctx())
            .await
            .unwrap();
        assert_eq!(outcome, RegisterOutcome::VerificationSent);
        self.user_id(email).await.expect("the account was created")
    }

    /// A verified account whose only credential is `device`'s passkey, signed in with it.
    async fn passkey_account(&self, device: &mut Device, email: &str) -> SignedIn {
        self.passkey_sign_up(device, email).await;
        self.verify_latest(email).await;
        self.passkey_sign_in(device, None).await
    }

    async fn try_passkey_sign_in(
        &self,
        device: &mut Device,
        email: Option<&str>,
    ) -> Result<SignInOutcome, Error> {
        let options = self
            .ciam
            .passkey_sign_in_options(email, &ctx())
            .await
            .unwrap();
        let response = device.get(&options).await;
        self.ciam.finish_passkey_sign_in(&response, &ctx()).await
    }

    async fn passkey_sign_in(&self, device: &mut Device, email: Option<&str>) -> SignedIn {
        match self.try_passkey_sign_in(device, email).await.unwrap() {
            SignInOutcome::SignedIn(s) => *s,
            other => panic!("expected signed in, got {other:?}"),
        }
    }

    /// Adds `device`'s new passkey to the signed-in account.
    async fn add_passkey(
        &self,
        s: &SignedIn,
        device: &mut Device,
        name: Option<&str>,
    ) -> PasskeyInfo {
        let auth = self.auth(s).await.unwrap();
        let options = self
            .ciam
            .passkey_registration_options(&auth, &ctx())
            .await
            .unwrap();
        let response = device.create(&options).await;
        self.ciam
            .finish_passkey_registration(&auth, &response, name, &ctx())
            .await
            .unwrap()
    }

    /// The signed-in account's passkey ids as the engine lists them in allow-lists.
    async fn allow_list(&self, email: Option<&str>) -> Vec<Vec<u8>> {
        let options = self
            .ciam
            .passkey_sign_in_options(email, &ctx())
            .await
            .unwrap();
        options
            .allow_credentials
            .into_iter()
            .map(|d| d.id)
            .collect()
    }
}

on_both_backends!(
    a_registered_credential_id_is_refused,
    sign_up_with_a_passkey_alone,
    allow_list_sign_in_lists_the_accounts_passkeys,
    sign_in_options_do_not_reveal_accounts,
    ceremonies_are_single_use_and_expire,
    password_account_manages_its_passkeys,
    registration_ceremony_is_bound_to_its_user,
    step_up_with_a_passkey,
    counter_regression_is_refused_or_flagged,
    backup_state_drift_is_recorded,
    sign_in_without_user_verification_is_single_factor,
    wrong_origin_is_refused_and_stores_nothing,
    user_handles_are_random_per_user,
    passkey_sign_ins_are_risk_assessed,
    device_bound_passkey_without_trusted_attestation_is_aal2,
    device_bound_passkey_with_trusted_attestation_is_aal3,
);

async fn sign_up_with_a_passkey_alone<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let mut phone = Device::new(false);
    let options = h
        .ciam
        .passkey_sign_up_options(Registration::new("Ada@Example.COM", None), &ctx())
        .await
        .unwrap();
    assert_eq!(options.user.name, "Ada@example.com");
    assert!(options.exclude_credentials.is_empty());
    // A password is refused: this is a passkey-only sign-up.
    assert!(matches!(
        h.ciam
            .passkey_sign_up_options(
                Registration::new("ada@example.com", Some(support::pw(PW))),
                &ctx()
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
    let response = phone.create(&options).await;
    assert_eq!(
        h.ciam
            .finish_passkey_sign_up(&response, Some("Phone"), &ctx())
            .await
            .unwrap(),
        RegisterOutcome::VerificationSent
    );
    let user = h.user_id("ada@example.com").await.unwrap();
    let stored = h.store.user_by_id(user).await.unwrap().unwrap();
    assert!(!stored.email_verified());
    let passkeys = h.stored_passkeys(user).await;
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].name.as_deref(), Some("Phone"));
    assert_eq!(
        passkeys[0].lookup.as_deref(),
        Some(&phone.credential_id()[..])
    );
    let passwords = h
        .store
        .credentials_for_user(user, CredentialKind::Password)
        .await
        .unwrap();
    assert!(passwords.is_empty());
    let mail = h.outbox.nth_to("Ada@example.com", 1).await;
    assert!(mail.text.contains("/verify-email?token="), "{}", mail.text);

    // Before the address is verified, the passkey proves who it is but gives no session, and
    // a fresh link is mailed.
    let before = h.try_passkey_sign_in(&mut phone, None).await.unwrap();
    assert!(
        matches!(before, SignInOutcome::VerificationRequired),
        "{before:?}"
    );
    h.outbox.nth_to("Ada@example.com", 2).await;
    h.verify_latest("Ada@example.com").await;

    // Discoverable sign-in: no allow-list, the authenticator picks its resident passkey and
    // names the account by its user handle.
    let options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    assert!(options.allow_credentials.is_empty());
    let response = phone.get(&options).await;
    let sent: Value = serde_json::from_str(&response).unwrap();
    assert!(
        sent["response"]["userHandle"].is_string(),
        "no userHandle in {response}"
    );
    let outcome = h.finish_sign_in(&response).await;
    let Ok(SignInOutcome::SignedIn(s)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(s.user.id, user);
    let auth = h.auth(&s).await.unwrap();
    assert_eq!(auth.user_id, user);
    assert_eq!(auth.amr, vec![AuthMethod::Hwk, AuthMethod::Mfa]);
    // UV, backup eligible (synced): AAL2.
    assert_eq!(auth.aal, Aal::Aal2);
    assert_eq!(auth.auth_time, h.clock_now());
    let listed = h.ciam.passkeys(&auth).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].synced && listed[0].backed_up);
    assert_eq!(listed[0].last_used_at, Some(h.clock_now()));

    let created = h.allowed(user, Action::Register, "created").await;
    assert_eq!(created.detail["password"], json!(false));
    assert_eq!(created.detail["passkey"]["synced"], json!(true));
    assert_eq!(created.detail["passkey"]["user_verified"], json!(true));
    h.refused(user, Action::SignInPasskey, "email_unverified")
        .await;
    let signed_in = h.allowed(user, Action::SignInPasskey, "passkey").await;
    assert_eq!(signed_in.session_id, Some(auth.session_id));
    assert_eq!(signed_in.detail["amr"], json!(["hwk", "mfa"]));
    assert_eq!(signed_in.detail["aal"], json!(2));
    assert_eq!(signed_in.ip, Some("203.0.113.7".parse().unwrap()));
}

async fn allow_list_sign_in_lists_the_accounts_passkeys<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let s = h.register_verified("bo@example.com").await;
    let (mut laptop, mut phone) = (Device::new(false), Device::new(false));
    h.add_passkey(&s, &mut laptop, Some("Laptop")).await;
    let on_phone = h.add_passkey(&s, &mut phone, Some("Phone")).await;
    // Another account's passkey is never listed.
    h.passkey_account(&mut Device::new(false), "cy@example.com")
        .await;

    let mut listed = h.allow_list(Some("BO@example.com")).await;
    listed.sort();
    let mut own = vec![laptop.credential_id(), phone.credential_id()];
    own.sort();
    assert_eq!(listed, own);

    let signed_in = h.passkey_sign_in(&mut phone, Some("bo@example.com")).await;
    assert_eq!(signed_in.user.id, s.user.id);
    let e = h.allowed(s.user.id, Action::SignInPasskey, "passkey").await;
    assert_eq!(e.detail["credential"], json!(on_phone.id));
    assert_eq!(e.session_id, Some(signed_in.session.id));
}

async fn sign_in_options_do_not_reveal_accounts<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store.clone());
    h.register_verified("pw-only@example.com").await;
    let mut phone = Device::new(false);
    h.passkey_account(&mut phone, "real@example.com").await;

    for email in ["nobody@example.com", "pw-only@example.com"] {
        let fakes = h.allow_list(Some(email)).await;
        assert!((1..=2).contains(&fakes.len()), "{email}: {fakes:?}");
        for id in &fakes {
            assert!([16, 20, 32, 64].contains(&id.len()), "{email}: {id:?}");
        }
        // The same answer every time, whatever the case of the address.
        assert_eq!(h.allow_list(Some(email)).await, fakes);
        assert_eq!(h.allow_list(Some(&email.to_uppercase())).await, fakes);
    }
    assert_ne!(
        h.allow_list(Some("nobody@example.com")).await,
        h.allow_list(Some("somebody-else@example.com")).await
    );
    assert_ne!(
        h.allow_list(Some("nobody@example.com")).await,
        h.allow_list(Some("pw-only@example.com")).await
    );
    assert_eq!(
        h.allow_list(Some("real@example.com")).await,
        vec![phone.credential_id()]
    );
    // The fakes carry the transports a platform passkey reports, like the real one here.
    let transports = |email: &'static str| {
        let ciam = h.ciam.clone();
        async move {
            let options = ciam.passkey_sign_in_options(Some(email), &ctx()).await;
            let listed = options.unwrap().allow_credentials;
            listed.into_iter().map(|d| d.transports).collect::<Vec<_>>()
        }
    };
    let real = transports("real@example.com").await;
    assert_eq!(real, vec![vec!["internal".to_owned(), "hybrid".to_owned()]]);
    for fake in transports("nobody@example.com").await {
        assert_eq!(fake, real[0]);
    }

    // Instances sharing an enumeration key answer alike; others differ.
    let shared = |store: Arc<B>| {
        let rp = relying_party(CounterPolicy::Refuse, UserVerificationPolicy::Required);
        let config = PasskeyConfig::new(rp)
            .unwrap()
            .with_enumeration_key(&[7; 32])
            .unwrap();
        harness_with(store, Policy::default(), |b| b.passkeys(config))
    };
    let (a, b) = (shared(store.clone()), shared(store));
    let fakes = a.allow_list(Some("nobody@example.com")).await;
    assert_eq!(b.allow_list(Some("nobody@example.com")).await, fakes);
    assert_ne!(h.allow_list(Some("nobody@example.com")).await, fakes);
    let rp = relying_party(CounterPolicy::Refuse, UserVerificationPolicy::Required);
    assert!(
        PasskeyConfig::new(rp)
            .unwrap()
            .with_enumeration_key(&[7; 31])
            .is_err()
    );
}

async fn ceremonies_are_single_use_and_expire<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let mut phone = Device::new(false);
    let s = h.passkey_account(&mut phone, "di@example.com").await;
    let user = s.user.id;
    let auth = h.auth(&s).await.unwrap();

    // Replay: the same response twice.
    let options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    let response = phone.get(&options).await;
    let first = h.finish_sign_in(&response).await;
    assert!(matches!(first, Ok(SignInOutcome::SignedIn(_))), "{first:?}");
    rejected(
        h.finish_sign_in(&response).await,
        "unknown_or_expired_challenge",
    );

    // A sign-in response is not a registration, and a registration response not a sign-in;
    // neither burns the ceremony it belongs to.
    let options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    let sign_in = phone.get(&options).await;
    rejected(
        h.finish_registration(&auth, &sign_in).await,
        "malformed_response",
    );
    rejected(h.finish_sign_up(&sign_in).await, "malformed_response");
    let outcome = h.finish_sign_in(&sign_in).await;
    assert!(
        matches!(outcome, Ok(SignInOutcome::SignedIn(_))),
        "{outcome:?}"
    );
    let auth = h.auth(&s).await.unwrap();
    let registration_options = h.registration_options(&auth).await;
    let mut laptop = Device::new(false);
    let registration = laptop.create(&registration_options).await;
    rejected(h.finish_sign_in(&registration).await, "malformed_response");
    rejected(
        h.finish_step_up(&auth, &registration).await,
        "malformed_response",
    );
    assert_eq!(h.stored_passkeys(user).await.len(), 1);

    // Well-formed, signed responses over the other kind's challenge: the stored ceremonies
    // are kept by purpose, so neither is found.
    let mut assertion_options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    let sign_in_challenge = assertion_options.challenge.clone();
    assertion_options
        .challenge
        .clone_from(&registration_options.challenge);
    let signed_over_registration = phone.get(&assertion_options).await;
    rejected(
        h.finish_sign_in(&signed_over_registration).await,
        "unknown_or_expired_challenge",
    );
    let mut creation_options = registration_options.clone();
    creation_options.challenge = sign_in_challenge;
    let created_over_sign_in = Device::new(false).create(&creation_options).await;
    rejected(
        h.finish_registration(&auth, &created_over_sign_in).await,
        "unknown_or_expired_challenge",
    );
    assert_eq!(h.stored_passkeys(user).await.len(), 1);
    // A step-up ceremony is not a sign-in (same purpose, another kind), and is used up.
    let step_up = h.ciam.passkey_step_up_options(&auth, &ctx()).await.unwrap();
    let step_up_response = phone.get(&step_up).await;
    rejected(
        h.finish_sign_in(&step_up_response).await,
        "ceremony_of_another_kind",
    );
    rejected(
        h.finish_step_up(&auth, &step_up_response).await,
        "unknown_or_expired_challenge",
    );
    // The registration ceremony survived the refusals above.
    h.finish_registration(&auth, &registration).await.unwrap();
    assert_eq!(h.stored_passkeys(user).await.len(), 2);
    // An add-passkey ceremony is not a sign-up.
    let options = h.registration_options(&auth).await;
    let response = Device::new(false).create(&options).await;
    rejected(h.finish_sign_up(&response).await, "not_a_sign_up_ceremony");
    assert_eq!(h.stored_passkeys(user).await.len(), 2);

    // Expiry: a response finished after the ceremony's lifetime.
    let options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    let late = phone.get(&options).await;
    h.clock.advance(CEREMONY_TTL + Duration::seconds(1));
    rejected(
        h.finish_sign_in(&late).await,
        "unknown_or_expired_challenge",
    );
    let refusals: Vec<_> = h
        .anonymous_audit()
        .await
        .into_iter()
        .filter(|e| {
            e.action == Action::SignInPasskey
                && e.outcome == AuditOutcome::Failure
                && e.reason == "unknown_or_expired_challenge"
        })
        .collect();
    // The replay, the assertion over a registration challenge, and the late one.
    assert_eq!(refusals.len(), 3, "{refusals:#?}");
}

async fn password_account_manages_its_passkeys<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let stale = h.register_verified("el@example.com").await;
    let user = stale.user.id;

    // Adding a way to sign in needs a recent sign-in.
    h.clock
        .advance(Policy::default().recent_auth_max_age + Duration::seconds(1));
    let auth = h.auth(&stale).await.unwrap();
    assert!(matches!(
        h.ciam.passkey_registration_options(&auth, &ctx()).await,
        Err(Error::StepUpRequired)
    ));
    h.refused(user, Action::PasskeyAdded, "step_up_required")
        .await;

    let s = h.sign_in("el@example.com", PW).await;
    let auth = h.auth(&s).await.unwrap();
    let mut laptop = Device::new(false);
    let first = h.add_passkey(&s, &mut laptop, Some("Laptop")).await;
    assert_eq!(first.name, "Laptop");
    assert_eq!(first.created_at, h.clock_now());
    assert_eq!(first.last_used_at, None);
    assert!(first.synced);
    assert_eq!(first.attestation, "none");
    let e = h.allowed(user, Action::PasskeyAdded, "registered").await;
    assert_eq!(e.detail["credential"], json!(first.id));
    assert_eq!(e.session_id, Some(auth.session_id));

    // The second registration excludes the first passkey: the same authenticator refuses.
    h.clock.advance(Duration::seconds(30));
    let options = h.registration_options(&auth).await;
    let excluded: Vec<_> = options
        .exclude_credentials
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(excluded, vec![laptop.credential_id()]);
    // CTAP2_ERR_CREDENTIAL_EXCLUDED.
    let refused = laptop.try_create(&options).await;
    assert!(
        matches!(refused, Err(WebauthnError::AuthenticatorError(0x19))),
        "{refused:?}"
    );
    let mut phone = Device::new(false);
    let response = phone.create(&options).await;
    let second = h.finish_registration(&auth, &response).await.unwrap();
    assert_eq!(second.name, "Passkey");

    // Listing: oldest first, with names, dates and the synced flag.
    h.clock.advance(Duration::minutes(1));
    h.passkey_sign_in(&mut laptop, None).await;
    let listed = h.ciam.passkeys(&auth).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|p| (p.id, p.name.as_str(), p.last_used_at, p.synced))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first.id, "Laptop", Some(h.clock_now()), true),
            (second.id, "Passkey", None, true),
        ]
    );
    assert!(listed[0].created_at < listed[1].created_at);

    // Renaming, with the name checked.
    let renamed = h
        .ciam
        .rename_passkey(&auth, second.id, "  Work phone ", &ctx())
        .await
        .unwrap();
    assert_eq!(renamed.name, "Work phone");
    h.allowed(user, Action::PasskeyRenamed, "renamed").await;
    let longest = "é".repeat(64);
    let renamed = h
        .ciam
        .rename_passkey(&auth, second.id, &longest, &ctx())
        .await
        .unwrap();
    assert_eq!(renamed.name, longest);
    for bad in ["", "   ", &"x".repeat(65), "bell\u{7}", "two\nlines"] {
        assert!(
            matches!(
                h.ciam.rename_passkey(&auth, second.id, bad, &ctx()).await,
                Err(Error::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(h.ciam.passkeys(&auth).await.unwrap()[1].name, longest);

    // Another user can neither rename nor remove it.
    let other = h.register_verified("fa@example.com").await;
    let other_auth = h.auth(&other).await.unwrap();
    assert!(matches!(
        h.ciam
            .rename_passkey(&other_auth, second.id, "Mine", &ctx())
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        h.ciam.delete_passkey(&other_auth, second.id, &ctx()).await,
        Err(Error::NotFound)
    ));
    assert_eq!(h.ciam.passkeys(&auth).await.unwrap().len(), 2);
    assert!(h.ciam.passkeys(&other_auth).await.unwrap().is_empty());

    // Removal needs a recent sign-in too.
    h.clock
        .advance(Policy::default().recent_auth_max_age + Duration::seconds(1));
    assert!(matches!(
        h.ciam.delete_passkey(&auth, second.id, &ctx()).await,
        Err(Error::StepUpRequired)
    ));
    let s = h.sign_in("el@example.com", PW).await;
    let auth = h.auth(&s).await.unwrap();
    // With a password on the account, every passkey may go; a removed one no longer signs in.
    h.ciam
        .delete_passkey(&auth, second.id, &ctx())
        .await
        .unwrap();
    h.allowed(user, Action::PasskeyRemoved, "removed").await;
    rejected(
        h.try_passkey_sign_in(&mut phone, None).await,
        "unknown_credential",
    );
    h.ciam
        .delete_passkey(&auth, first.id, &ctx())
        .await
        .unwrap();
    assert!(h.ciam.passkeys(&auth).await.unwrap().is_empty());
    assert!(matches!(
        h.ciam.delete_passkey(&auth, first.id, &ctx()).await,
        Err(Error::NotFound)
    ));

    // On a passkey-only account the only passkey stays, and still signs in.
    let mut key = Device::new(false);
    let only = h.passkey_account(&mut key, "gi@example.com").await;
    let only_auth = h.auth(&only).await.unwrap();
    let id = h.ciam.passkeys(&only_auth).await.unwrap()[0].id;
    assert!(matches!(
        h.ciam.delete_passkey(&only_auth, id, &ctx()).await,
        Err(Error::LastSignInMethod)
    ));
    let e = h
        .refused(only.user.id, Action::PasskeyRemoved, "last_sign_in_method")
        .await;
    assert_eq!(e.detail["credential"], json!(id));
    assert_eq!(h.stored_passkeys(only.user.id).await.len(), 1);
    let again = h.passkey_sign_in(&mut key, Some("gi@example.com")).await;
    assert_eq!(again.user.id, only.user.id);
}

async fn registration_ceremony_is_bound_to_its_user<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let a = h.register_verified("ha@example.com").await;
    let b = h.register_verified("hb@example.com").await;
    let (auth_a, auth_b) = (h.auth(&a).await.unwrap(), h.auth(&b).await.unwrap());
    let options = h.registration_options(&auth_a).await;
    let mut device = Device::new(false);
    let response = device.create(&options).await;
    rejected(
        h.finish_registration(&auth_b, &response).await,
        "ceremony_of_another_user",
    );
    h.refused(b.user.id, Action::PasskeyAdded, "ceremony_of_another_user")
        .await;
    assert!(h.stored_passkeys(a.user.id).await.is_empty());
    assert!(h.stored_passkeys(b.user.id).await.is_empty());
    // The ceremony is used up: A cannot finish it afterwards either.
    rejected(
        h.finish_registration(&auth_a, &response).await,
        "unknown_or_expired_challenge",
    );
    assert!(h.stored_passkeys(a.user.id).await.is_empty());
}

/// A credential id already registered (here: to another account, as a cloned or replayed
/// authenticator would present it) is refused at finish, and nothing is stored.
async fn a_registered_credential_id_is_refused<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let a = h.register_verified("ia@example.com").await;
    let b = h.register_verified("ib@example.com").await;
    let auth_a = h.auth(&a).await.unwrap();
    let options = h.registration_options(&auth_a).await;
    let mut device = Device::new(false);
    let response = device.create(&options).await;
    let raw_id = device.credential_id();
    // B already holds a credential under that id.
    let taken = Credential::new(
        ciam::id::CredentialId::generate(&ciam::rng::SystemRandom::new()).unwrap(),
        b.user.id,
        CredentialKind::Passkey,
        "{}".to_owned(),
        h.clock_now(),
    )
    .with_lookup(raw_id);
    h.store.insert_credential(&taken).await.unwrap();
    rejected(
        h.finish_registration(&auth_a, &response).await,
        "credential_already_registered",
    );
    h.refused(
        a.user.id,
        Action::PasskeyAdded,
        "credential_already_registered",
    )
    .await;
    assert!(h.stored_passkeys(a.user.id).await.is_empty());
}

async fn step_up_with_a_passkey<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let setup = h.register_verified("ja@example.com").await;
    let mut key = Device::new(false);
    h.add_passkey(&setup, &mut key, None).await;

    // A password session, old enough that sensitive actions need a step-up.
    let s = h.sign_in("ja@example.com", PW).await;
    h.clock.advance(Duration::minutes(20));
    let auth = h.auth(&s).await.unwrap();
    assert_eq!(auth.aal, Aal::Aal1);
    assert!(matches!(
        h.ciam.passkey_registration_options(&auth, &ctx()).await,
        Err(Error::StepUpRequired)
    ));

    let options = h.ciam.passkey_step_up_options(&auth, &ctx()).await.unwrap();
    let allowed: Vec<_> = options.allow_credentials.iter().map(|d| &d.id).collect();
    assert_eq!(allowed, vec![&key.credential_id()]);
    let response = key.get(&options).await;
    let stepped = h.finish_step_up(&auth, &response).await.unwrap();
    assert_ne!(stepped.token.expose(), s.token.expose());
    assert!(matches!(h.auth(&s).await, Err(Error::Unauthenticated)));
    let new_auth = h.auth(&stepped).await.unwrap();
    assert_eq!(new_auth.user_id, s.user.id);
    assert_ne!(new_auth.session_id, auth.session_id);
    assert_eq!(new_auth.aal, Aal::Aal2);
    assert_eq!(
        new_auth.amr,
        vec![AuthMethod::Pwd, AuthMethod::Hwk, AuthMethod::Mfa]
    );
    assert_eq!(new_auth.auth_time, h.clock_now());
    // The step-up counts as a recent sign-in.
    h.registration_options(&new_auth).await;
    let e = h.allowed(s.user.id, Action::StepUpPasskey, "passkey").await;
    assert_eq!(e.session_id, Some(new_auth.session_id));
    assert_eq!(e.detail["replaced_session"], json!(auth.session_id));
    assert_eq!(e.detail["aal"], json!(2));

    // A sign-in ceremony's response does not step a session up.
    let options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    let response = key.get(&options).await;
    rejected(
        h.finish_step_up(&new_auth, &response).await,
        "ceremony_of_another_kind",
    );
    assert!(h.auth(&stepped).await.is_ok());

    // An account without passkeys cannot step up with one.
    let plain = h.register_verified("ka@example.com").await;
    let plain_auth = h.auth(&plain).await.unwrap();
    rejected(
        h.ciam.passkey_step_up_options(&plain_auth, &ctx()).await,
        "no_passkey",
    );
    h.refused(plain.user.id, Action::StepUpPasskey, "no_passkey")
        .await;
}

async fn counter_regression_is_refused_or_flagged<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store.clone());
    let mut key = Device::new(true);
    let s = h.passkey_account(&mut key, "lu@example.com").await;
    let id = key.credential_id();
    let count = h.record_field(&id, "sign_count").await.as_u64().unwrap();
    assert!(count > 0, "this authenticator keeps a counter");
    h.passkey_sign_in(&mut key, None).await;
    let next = h.record_field(&id, "sign_count").await.as_u64().unwrap();
    assert!(next > count, "{next} after {count}");

    // As if a clone had signed in far ahead: the authenticator's counter is now behind.
    h.edit_record(&id, "sign_count", json!(1000)).await;
    rejected(
        h.try_passkey_sign_in(&mut key, None).await,
        "counter_regression",
    );
    h.refused(s.user.id, Action::SignInPasskey, "counter_regression")
        .await;

    // With CounterPolicy::Flag the sign-in goes through and the regression is recorded.
    let rp = relying_party(CounterPolicy::Flag, UserVerificationPolicy::Required);
    let flagging = passkey_harness_with(store, rp);
    let signed_in = flagging.passkey_sign_in(&mut key, None).await;
    assert_eq!(signed_in.user.id, s.user.id);
    let e = flagging
        .refused(
            s.user.id,
            Action::PasskeyCounterRegression,
            "counter_not_increasing",
        )
        .await;
    assert_eq!(e.detail["stored"], json!(1000));
    assert_eq!(h.record_field(&id, "sign_count").await, json!(1000));
}

async fn backup_state_drift_is_recorded<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let mut key = Device::new(false);
    let s = h.passkey_account(&mut key, "mi@example.com").await;
    let id = key.credential_id();
    // As if the passkey had not been backed up when it was last used.
    assert_eq!(h.record_field(&id, "backup_state").await, json!(true));
    h.edit_record(&id, "backup_state", json!(false)).await;

    let signed_in = h.passkey_sign_in(&mut key, None).await;
    assert_eq!(signed_in.user.id, s.user.id);
    // The new state is kept: the next sign-in records no change.
    assert_eq!(h.record_field(&id, "backup_state").await, json!(true));
    h.passkey_sign_in(&mut key, None).await;
    let log = h.audit(s.user.id).await;
    let changes: Vec<_> = log
        .iter()
        .filter(|e| e.action == Action::PasskeyBackupStateChanged)
        .map(|e| {
            (
                e.outcome,
                e.reason.as_str(),
                &e.detail["from"],
                &e.detail["to"],
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![(
            AuditOutcome::Success,
            "backup_state_changed",
            &json!(false),
            &json!(true)
        )]
    );
}

async fn wrong_origin_is_refused_and_stores_nothing<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);

    // Sign-up: no account is made.
    let mut elsewhere = Device::at(OTHER_ORIGIN, false);
    let options = h
        .ciam
        .passkey_sign_up_options(Registration::new("na@example.com", None), &ctx())
        .await
        .unwrap();
    let response = elsewhere.create(&options).await;
    rejected(h.finish_sign_up(&response).await, "origin");
    assert_eq!(h.user_id("na@example.com").await, None);
    let anonymous = h.anonymous_audit().await;
    entry(
        &anonymous,
        Action::Register,
        AuditOutcome::Failure,
        "origin",
    );
    assert_eq!(h.outbox.count_to("na@example.com").await, 0);

    // Adding a passkey: nothing stored.
    let s = h.register_verified("ob@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    let options = h.registration_options(&auth).await;
    let mut elsewhere = Device::at(OTHER_ORIGIN, false);
    let response = elsewhere.create(&options).await;
    rejected(h.finish_registration(&auth, &response).await, "origin");
    assert!(h.stored_passkeys(s.user.id).await.is_empty());
    h.refused(s.user.id, Action::PasskeyAdded, "origin").await;

    // Sign-in with a good passkey from the wrong origin: no session, the record unchanged.
    let mut key = Device::new(true);
    let owner = h.passkey_account(&mut key, "pa@example.com").await;
    let before = h.stored_passkey(&key.credential_id()).await;
    key.origin = Url::parse(OTHER_ORIGIN).unwrap();
    rejected(h.try_passkey_sign_in(&mut key, None).await, "origin");
    h.refused(owner.user.id, Action::SignInPasskey, "origin")
        .await;
    let after = h.stored_passkey(&key.credential_id()).await;
    assert_eq!(after.secret, before.secret);
    assert_eq!(after.last_used_at, before.last_used_at);
    let sessions = h
        .store
        .sessions_for_user(owner.user.id, h.clock_now())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "only the session made at sign-up");
}

async fn sign_in_without_user_verification_is_single_factor<B: Backend>(store: Arc<B>) {
    // The RP does not ask for UV, so the authenticator only tests presence.
    let rp = relying_party(CounterPolicy::Refuse, UserVerificationPolicy::Discouraged);
    let h = passkey_harness_with(store, rp);
    let mut key = Device::new(false);
    let s = h.passkey_account(&mut key, "qu@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    assert_eq!(auth.amr, vec![AuthMethod::Hwk]);
    assert_eq!(auth.aal, Aal::Aal1);
    let e = h.allowed(s.user.id, Action::SignInPasskey, "passkey").await;
    assert_eq!(e.detail["user_verified"], json!(false));
    assert_eq!(e.detail["amr"], json!(["hwk"]));
    assert_eq!(e.detail["aal"], json!(1));
}

/// A passkey sign-in goes through the risk policy like every other way in: from a new device
/// on a new network the user-verified passkey itself meets the challenge (it is two factors),
/// a bot is denied with the reason shown and no session, and a passkey without user
/// verification is one factor, so the same challenge asks for a mailed code.
async fn passkey_sign_ins_are_risk_assessed<B: Backend>(store: Arc<B>) {
    let risky = |store: Arc<B>, uv| {
        let rp = relying_party(CounterPolicy::Refuse, uv);
        let config = PasskeyConfig::new(rp).unwrap();
        harness_with(store, Policy::default(), |b| {
            b.passkeys(config)
                .risk_policy(Arc::new(DefaultRiskPolicy::default()))
        })
    };
    let elsewhere = || RequestContext::new(Some("198.51.100.20".parse().unwrap()), Some("x/2"));
    let assessed = |log: Vec<AuditEntry>| {
        log.into_iter()
            .find(|e| e.action == Action::RiskAssessed)
            .expect("a risk_assessed entry")
    };
    async fn sign_in<B: Backend>(
        h: &Harness<B>,
        device: &mut Device,
        c: &RequestContext,
    ) -> Result<SignInOutcome, Error> {
        let options = h.ciam.passkey_sign_in_options(None, c).await.unwrap();
        let response = device.get(&options).await;
        h.ciam.finish_passkey_sign_in(&response, c).await
    }

    let h = risky(Arc::clone(&store), UserVerificationPolicy::Required);
    let mut phone = Device::new(false);
    let first = h.passkey_account(&mut phone, "ri@example.com").await;
    let user = first.user.id;
    assert_eq!(assessed(h.audit(user).await).reason, "allow");

    let outcome = sign_in(&h, &mut phone, &elsewhere()).await.unwrap();
    let SignInOutcome::SignedIn(s) = outcome else {
        panic!("a user-verified passkey meets the challenge, got {outcome:?}");
    };
    assert_eq!(s.session.aal, 2);
    let check = assessed(h.audit(user).await);
    assert_eq!(check.detail["decision"], "challenge");
    assert_eq!(check.detail["satisfied_by"], "passkey");
    let fired: Vec<&str> = check.detail["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(fired, ["new_device", "new_network"]);

    let sessions_before = h
        .ciam
        .list_sessions(&h.auth(&s).await.unwrap())
        .await
        .unwrap();
    let bot = ctx().with_bot_score(0.97);
    let denied = sign_in(&h, &mut phone, &bot).await;
    let Err(Error::RiskDenied { reason }) = denied else {
        panic!("a bot is denied, got {denied:?}");
    };
    assert_eq!(reason, ciam::risk::REASON_DENY);
    let check = assessed(h.audit(user).await);
    assert_eq!(check.outcome, AuditOutcome::Failure);
    assert_eq!(check.detail["decision"], "deny");
    assert_eq!(check.detail["reason_shown"], ciam::risk::REASON_DENY);
    let sessions_after = h
        .ciam
        .list_sessions(&h.auth(&s).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        sessions_after.len(),
        sessions_before.len(),
        "no session for a bot"
    );

    // Presence only: one factor. The new-device challenge asks for a mailed code.
    let h = risky(store, UserVerificationPolicy::Discouraged);
    let mut key = Device::new(false);
    let first = h.passkey_account(&mut key, "rk@example.com").await;
    assert_eq!(first.session.aal, 1);
    let outcome = sign_in(&h, &mut key, &elsewhere()).await.unwrap();
    let SignInOutcome::MfaRequired(challenge) = outcome else {
        panic!("a presence-only passkey is challenged, got {outcome:?}");
    };
    assert_eq!(challenge.factors, vec![MfaFactor::EmailCode]);
    let check = assessed(h.audit(first.user.id).await);
    assert_eq!(check.detail["decision"], "challenge");
    assert!(
        check.detail.get("satisfied_by").is_none(),
        "{:?}",
        check.detail
    );
}

/// Over HTTP (ciam-axum's router on a real listener), `POST /passkeys/login/finish` takes
/// `captcha_token` as `POST /login` does, and the bot check sees it: a suspicious token gets
/// a CAPTCHA challenge (a user-verified passkey meets every factor but that one), a solved
/// one signs in, a bot is refused, and no token is a human-looking request.
#[cfg(feature = "axum")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_login_finish_takes_a_captcha_token() {
    use ciam::axum::CiamLayer;
    use support::Captchas;

    let rp = relying_party(CounterPolicy::Refuse, UserVerificationPolicy::Required);
    let config = PasskeyConfig::new(rp).unwrap();
    let h = harness_with(support::memory().await, Policy::default(), |b| {
        b.passkeys(config)
            .risk_policy(Arc::new(DefaultRiskPolicy::default()))
            .bot_check(Arc::new(Captchas))
    });
    let mut phone = Device::new(false);
    h.passkey_account(&mut phone, "cap@example.com").await;

    let app = axum::Router::new()
        .nest("/auth", ciam::axum::router(h.ciam.clone()))
        .layer(CiamLayer::new(h.ciam.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}/auth{path}"))
            .header("Origin", ORIGIN)
            .json(&body)
            .send()
    };
    let mut sign_in = async |captcha: Option<&str>| {
        let options: Value = post("/passkeys/login/start", json!({}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let options: RequestOptionsJson = serde_json::from_value(options).unwrap();
        let credential: Value = serde_json::from_str(&phone.get(&options).await).unwrap();
        let mut body = json!({ "credential": credential });
        if let Some(token) = captcha {
            body["captcha_token"] = json!(token);
        }
        let r = post("/passkeys/login/finish", body).await.unwrap();
        let status = r.status();
        let session_cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-ciam_session="));
        (status, session_cookie, r.json::<Value>().await.unwrap())
    };

    // No token: a human-looking request. The first sign-in from this network is new, and
    // the user-verified passkey meets that challenge; later ones come from a known network.
    let (status, cookie, body) = sign_in(None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session"].is_object(), "{body}");
    assert!(cookie);

    let (status, cookie, body) = sign_in(Some("mid")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "mfa_required", "{body}");
    assert_eq!(body["factors"], json!(["captcha"]), "{body}");
    assert!(!cookie, "no session before the CAPTCHA");

    let (status, cookie, body) = sign_in(Some("solved")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["session"].is_object(), "{body}");
    assert!(cookie, "{body}");

    let (status, cookie, body) = sign_in(Some("bot")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "risk_denied", "{body}");
    assert!(!cookie);
}

/// User handles (`user.id` of the creation options): 32 random bytes per account (the
/// engine's `USER_HANDLE_LEN`), never the user id or the address, the same for all of one
/// account's passkeys, and different between accounts.
async fn user_handles_are_random_per_user<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let a = h.register_verified("ua@example.com").await;
    let auth_a = h.auth(&a).await.unwrap();
    let options = h.registration_options(&auth_a).await;
    let handle = options.user.id.clone();
    assert_handle_reveals_nothing(&handle, a.user.id, "ua@example.com");

    // The first passkey keeps the handle; a discoverable sign-in names the account by it.
    let mut laptop = Device::new(false);
    let response = laptop.create(&options).await;
    h.finish_registration(&auth_a, &response).await.unwrap();
    assert_eq!(
        h.record_field(&laptop.credential_id(), "user_handle").await,
        json!(handle)
    );
    assert_eq!(discoverable_user_handle(&h, &mut laptop).await, handle);

    // Every later passkey of the account gets the same handle.
    let again = h.registration_options(&auth_a).await;
    assert_eq!(again.user.id, handle);
    let mut phone = Device::new(false);
    let response = phone.create(&again).await;
    h.finish_registration(&auth_a, &response).await.unwrap();
    assert_eq!(discoverable_user_handle(&h, &mut phone).await, handle);
    assert_eq!(
        h.record_field(&phone.credential_id(), "user_handle").await,
        json!(handle)
    );

    // Another account has its own.
    let b = h.register_verified("ub@example.com").await;
    let auth_b = h.auth(&b).await.unwrap();
    let other = h.registration_options(&auth_b).await.user.id;
    assert_handle_reveals_nothing(&other, b.user.id, "ub@example.com");
    assert_ne!(other, handle);

    // A passkey-only sign-up draws one too, and the account keeps it for its next passkey.
    let options = h
        .ciam
        .passkey_sign_up_options(Registration::new("uc@example.com", None), &ctx())
        .await
        .unwrap();
    let sign_up_handle = options.user.id.clone();
    assert_ne!(sign_up_handle, handle);
    assert_ne!(sign_up_handle, other);
    let mut key = Device::new(false);
    let response = key.create(&options).await;
    h.finish_sign_up(&response).await.unwrap();
    let c = h.user_id("uc@example.com").await.unwrap();
    assert_handle_reveals_nothing(&sign_up_handle, c, "uc@example.com");
    h.verify_latest("uc@example.com").await;
    let s = h.passkey_sign_in(&mut key, None).await;
    let auth_c = h.auth(&s).await.unwrap();
    assert_eq!(
        h.registration_options(&auth_c).await.user.id,
        sign_up_handle
    );
}

/// The handle is 32 bytes that look random and contain neither the user id (raw or as text)
/// nor the address.
fn assert_handle_reveals_nothing(handle: &[u8], user: UserId, email: &str) {
    assert_eq!(handle.len(), 32, "{handle:?}");
    let id = user.to_bytes();
    assert!(!handle.windows(id.len()).any(|w| w == id), "{handle:?}");
    let id_text = user.to_string();
    let id_hex = id_text.split_once('_').unwrap().1;
    assert_ne!(handle, id_hex.as_bytes());
    let lower = email.to_ascii_lowercase();
    for text in [email, lower.as_str(), id_text.as_str()] {
        let text = text.as_bytes();
        assert!(
            handle.len() < text.len() || !handle.windows(text.len()).any(|w| w == text),
            "{handle:?} holds {text:?}"
        );
    }
    let mut distinct = handle.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    // 32 random bytes have about 30 distinct values; fewer than 16 would be a pattern.
    assert!(distinct.len() >= 16, "{handle:?}");
}

/// The `userHandle` a discoverable sign-in with `device` returns.
async fn discoverable_user_handle<B: Backend>(h: &Harness<B>, device: &mut Device) -> Vec<u8> {
    let options = h.ciam.passkey_sign_in_options(None, &ctx()).await.unwrap();
    let response = device.get(&options).await;
    let sent: Value = serde_json::from_str(&response).unwrap();
    let handle = b64d(sent["response"]["userHandle"].as_str().unwrap());
    let outcome = h.finish_sign_in(&response).await;
    assert!(
        matches!(outcome, Ok(SignInOutcome::SignedIn(_))),
        "{outcome:?}"
    );
    handle
}

/// A device-bound passkey (BE clear) whose attestation the relying party did not verify to a
/// trust anchor stays at AAL2: BE is only the authenticator's word, and any software
/// authenticator (like [`BoundKey`]) can clear it.
async fn device_bound_passkey_without_trusted_attestation_is_aal2<B: Backend>(store: Arc<B>) {
    let h = passkey_harness(store);
    let s = h.register_verified("va@example.com").await;
    // `none`, and a packed attestation with a real certificate that no anchor was asked about.
    let keys = [
        (BoundKey::new(false, None), "none"),
        (
            BoundKey::new(false, Some(w3c_attestation())),
            "basic_unverified",
        ),
    ];
    for (mut key, attestation) in keys {
        let info = h.add_bound_key(&s, &mut key).await;
        assert!(!info.synced && !info.backed_up, "{info:?}");
        assert_eq!(info.attestation, attestation);

        let signed_in = h.bound_sign_in(&key).await;
        let auth = h.auth(&signed_in).await.unwrap();
        assert_eq!(auth.amr, vec![AuthMethod::Hwk, AuthMethod::Mfa]);
        assert_eq!(auth.aal, Aal::Aal2, "{attestation}");
        let e = h.allowed(s.user.id, Action::SignInPasskey, "passkey").await;
        assert_eq!(e.session_id, Some(auth.session_id));
        assert_eq!(e.detail["aal"], json!(2));
        assert_eq!(e.detail["synced"], json!(false));
        assert_eq!(e.detail["attestation"], json!(attestation));
    }
}

/// AAL3 needs a device-bound passkey whose attestation chain verified to a configured anchor
/// (here the W3C test root, the only anchor). Under that policy a `none` attestation cannot
/// register at all, and a synced passkey with the same trusted attestation stays at AAL2.
async fn device_bound_passkey_with_trusted_attestation_is_aal3<B: Backend>(store: Arc<B>) {
    let attestation = w3c_attestation();
    let rp = RelyingParty::builder(RP_ID)
        .name("Acme")
        .origin(ORIGIN)
        .user_verification(UserVerificationPolicy::Required)
        .attestation_trust(AttestationTrust::Required {
            anchors: vec![attestation.root.clone()],
        })
        .build()
        .unwrap();
    let h = passkey_harness_with(store, rp);
    let s = h.register_verified("wa@example.com").await;
    let auth = h.auth(&s).await.unwrap();

    let options = h.registration_options(&auth).await;
    assert_eq!(options.attestation, AttestationConveyance::Direct);
    let mut unattested = BoundKey::new(false, None);
    let response = unattested.create(&options);
    rejected(
        h.finish_registration(&auth, &response).await,
        "untrusted_attestation",
    );
    assert!(h.stored_passkeys(s.user.id).await.is_empty());

    let aaguid = attestation.aaguid;
    let mut key = BoundKey::new(false, Some(attestation));
    let info = h.add_bound_key(&s, &mut key).await;
    assert_eq!(info.attestation, "basic");
    assert!(!info.synced);
    assert_eq!(info.aaguid.replace('-', ""), hex_text(&aaguid));

    let signed_in = h.bound_sign_in(&key).await;
    let passkey_auth = h.auth(&signed_in).await.unwrap();
    assert_eq!(passkey_auth.amr, vec![AuthMethod::Hwk, AuthMethod::Mfa]);
    assert_eq!(passkey_auth.aal, Aal::Aal3);
    let e = h.allowed(s.user.id, Action::SignInPasskey, "passkey").await;
    assert_eq!(e.detail["aal"], json!(3));
    assert_eq!(e.detail["attestation"], json!("basic"));
    h.ciam.require_aal(&passkey_auth, Aal::Aal3).unwrap();

    // A password session stepped up with it reaches AAL3 too.
    let password = h.sign_in("wa@example.com", PW).await;
    let password_auth = h.auth(&password).await.unwrap();
    assert_eq!(password_auth.aal, Aal::Aal1);
    let options = h
        .ciam
        .passkey_step_up_options(&password_auth, &ctx())
        .await
        .unwrap();
    let stepped = h
        .finish_step_up(&password_auth, &key.get(&options))
        .await
        .unwrap();
    assert_eq!(h.auth(&stepped).await.unwrap().aal, Aal::Aal3);

    // Synced (BE set), with the same trusted attestation: AAL2.
    let mut synced = BoundKey::new(true, Some(w3c_attestation()));
    let info = h.add_bound_key(&s, &mut synced).await;
    assert_eq!(info.attestation, "basic");
    assert!(info.synced);
    let signed_in = h.bound_sign_in(&synced).await;
    assert_eq!(h.auth(&signed_in).await.unwrap().aal, Aal::Aal2);
}

impl<B: Backend> Harness<B> {
    /// Adds `key`'s new passkey to the signed-in account.
    async fn add_bound_key(&self, s: &SignedIn, key: &mut BoundKey) -> PasskeyInfo {
        let auth = self.auth(s).await.unwrap();
        let options = self.registration_options(&auth).await;
        let response = key.create(&options);
        self.finish_registration(&auth, &response).await.unwrap()
    }

    /// A discoverable sign-in with `key`.
    async fn bound_sign_in(&self, key: &BoundKey) -> SignedIn {
        let options = self.ciam.passkey_sign_in_options(None, &ctx()).await;
        let response = key.get(&options.unwrap());
        match self.finish_sign_in(&response).await.unwrap() {
            SignInOutcome::SignedIn(s) => *s,
            other => panic!("expected signed in, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A device-bound authenticator.

/// Authenticator data flags (WebAuthn L3 §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// The W3C vector whose attestation certificate, and the attestation key the spec publishes
/// for it, [`BoundKey`] attests with: "Packed Attestation with ES256 Credential" (W3C Web
/// Authentication Level 3, §"Test Vectors", `#sctn-test-vectors-packed-es256`), in
/// `$CIAM_VECTORS_DIR/webauthn/w3c-l3-test-vectors.json`. Its certificates are valid from
/// 2024-01-01 to 3024-01-01 (the harness clock reads 2026-03-01).
const ATTESTATION_VECTOR: &str = "w3c-l3-packed-es256";

/// An attestation certificate, its key, the AAGUID it certifies and the root it chains to.
struct Attestation {
    cert: Vec<u8>,
    key: EcdsaKeyPair,
    aaguid: [u8; 16],
    root: Vec<u8>,
}

/// The W3C test attestation (see [`ATTESTATION_VECTOR`]). `CIAM_VECTORS_DIR` names the root
/// of the shared vectors, as scripts/test.sh sets it (default `../shared/vectors` beside the
/// workspace).
fn w3c_attestation() -> Attestation {
    let root = std::env::var_os("CIAM_VECTORS_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        std::path::PathBuf::from,
    );
    let path = root.join("webauthn/w3c-l3-test-vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the W3C vectors ({}) are required: {e}", path.display()));
    let file: Value = serde_json::from_str(&text).unwrap();
    let vector = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == ATTESTATION_VECTOR)
        .unwrap_or_else(|| panic!("no vector {ATTESTATION_VECTOR}"));
    let registration = &vector["registration"];
    let object = b64d(registration["attestationObject_b64url"].as_str().unwrap());
    let cert = x5c_leaf(&object);
    let private = hex_bytes(
        registration["private_inputs_for_resigning"]["attestation_private_key"]
            .as_str()
            .unwrap(),
    );
    let key = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &private,
        &p256_public_key(&cert),
        &SystemRandom::new(),
    )
    .expect("the published attestation key matches the certificate");
    let aaguid = hex_bytes(registration["expected"]["aaguid_hex"].as_str().unwrap());
    Attestation {
        cert,
        key,
        aaguid: aaguid.try_into().unwrap(),
        root: hex_bytes(file["root_der_hex"].as_str().unwrap()),
    }
}

/// The single `x5c` certificate of an attestation object: the text key `x5c` followed by an
/// array of one byte string with a two-byte length (how the vector encodes it).
fn x5c_leaf(object: &[u8]) -> Vec<u8> {
    let at = object.windows(4).position(|w| w == b"cx5c").unwrap() + 4;
    assert_eq!(object[at..at + 2], [0x81, 0x59], "one certificate");
    let len = usize::from(u16::from_be_bytes([object[at + 2], object[at + 3]]));
    object[at + 4..at + 4 + len].to_vec()
}

/// The uncompressed P-256 point of a certificate's subject public key: what follows the
/// DER prefix of an id-ecPublicKey / prime256v1 SubjectPublicKeyInfo (RFC 5480 §2).
fn p256_public_key(cert: &[u8]) -> Vec<u8> {
    const SPKI: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let at = cert.windows(SPKI.len()).position(|w| w == SPKI).unwrap() + SPKI.len();
    cert[at..at + 65].to_vec()
}

/// One device-bound (or, with `backup_eligible`, synced) ES256 passkey, answered by hand:
/// UP and UV on every response, BE and BS both clear or both set, signature counter 0
/// (unsupported), and a `none` or a `packed` attestation signed with the W3C test
/// attestation key. It plays the browser too: `clientDataJSON` from the RP's own origin.
struct BoundKey {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    backup_eligible: bool,
    attestation: Option<Attestation>,
    user_handle: Vec<u8>,
}

impl BoundKey {
    fn new(backup_eligible: bool, attestation: Option<Attestation>) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut id = vec![0; 16];
        ring::rand::SecureRandom::fill(&rng, &mut id).unwrap();
        Self {
            key,
            id,
            backup_eligible,
            attestation,
            user_handle: Vec::new(),
        }
    }

    /// rpIdHash, flags and a zero counter (L3 §6.1).
    fn auth_data(&self, rp_id: &str, attested: bool) -> Vec<u8> {
        let mut out = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        let mut flags = UP | UV;
        if self.backup_eligible {
            flags |= BE | BS;
        }
        if attested {
            flags |= AT;
        }
        out.push(flags);
        out.extend_from_slice(&0_u32.to_be_bytes());
        out
    }

    /// The credential public key as a COSE_Key (RFC 9053 §7.1.1: kty EC2, alg ES256, crv
    /// P-256, x, y).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut out, &point[1..33]);
        out.push(0x22);
        cbor_bytes(&mut out, &point[33..65]);
        out
    }

    fn sign(key: &EcdsaKeyPair, auth_data: &[u8], client_data: &[u8]) -> Vec<u8> {
        let message = [auth_data, digest(&SHA256, client_data).as_ref()].concat();
        let signature = key.sign(&SystemRandom::new(), &message).unwrap();
        signature.as_ref().to_vec()
    }

    /// `navigator.credentials.create()`: the response as `PublicKeyCredential.toJSON()`.
    fn create(&mut self, options: &CreationOptionsJson) -> String {
        self.user_handle.clone_from(&options.user.id);
        let client_data = client_data("webauthn.create", &options.challenge);
        let aaguid = self.attestation.as_ref().map_or([0; 16], |a| a.aaguid);
        let mut auth_data = self.auth_data(&options.rp.id, true);
        auth_data.extend_from_slice(&aaguid);
        auth_data.extend_from_slice(&u16::try_from(self.id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&self.id);
        auth_data.extend_from_slice(&self.cose_key());

        let mut object = vec![0xa3];
        cbor_text(&mut object, "fmt");
        match &self.attestation {
            None => {
                cbor_text(&mut object, "none");
                cbor_text(&mut object, "attStmt");
                object.push(0xa0);
            }
            Some(a) => {
                cbor_text(&mut object, "packed");
                cbor_text(&mut object, "attStmt");
                object.push(0xa3);
                cbor_text(&mut object, "alg");
                object.push(0x26);
                cbor_text(&mut object, "sig");
                cbor_bytes(&mut object, &Self::sign(&a.key, &auth_data, &client_data));
                cbor_text(&mut object, "x5c");
                object.push(0x81);
                cbor_bytes(&mut object, &a.cert);
            }
        }
        cbor_text(&mut object, "authData");
        cbor_bytes(&mut object, &auth_data);
        json!({
            "id": b64e(&self.id),
            "rawId": b64e(&self.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64e(&client_data),
                "attestationObject": b64e(&object),
                "transports": ["usb"],
            },
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
        })
        .to_string()
    }

    /// `navigator.credentials.get()`: the response as `PublicKeyCredential.toJSON()`.
    fn get(&self, options: &RequestOptionsJson) -> String {
        assert!(
            options.allow_credentials.is_empty()
                || options.allow_credentials.iter().any(|d| d.id == self.id),
            "the RP does not allow this passkey"
        );
        let client_data = client_data("webauthn.get", &options.challenge);
        let auth_data = self.auth_data(options.rp_id.as_deref().unwrap_or(RP_ID), false);
        let signature = Self::sign(&self.key, &auth_data, &client_data);
        json!({
            "id": b64e(&self.id),
            "rawId": b64e(&self.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64e(&client_data),
                "authenticatorData": b64e(&auth_data),
                "signature": b64e(&signature),
                "userHandle": b64e(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
        .to_string()
    }
}

/// `clientDataJSON` as a browser at [`ORIGIN`] writes it.
fn client_data(kind: &str, challenge: &[u8]) -> Vec<u8> {
    json!({
        "type": kind,
        "challenge": b64e(challenge),
        "origin": ORIGIN,
        "crossOrigin": false,
    })
    .to_string()
    .into_bytes()
}

/// A CBOR head (RFC 8949 §3): major type and length (up to 65535).
fn cbor_head(out: &mut Vec<u8>, major: u8, len: usize) {
    let major = major << 5;
    match u8::try_from(len) {
        Ok(small) if small < 24 => out.push(major | small),
        Ok(byte) => out.extend_from_slice(&[major | 24, byte]),
        Err(_) => {
            out.push(major | 25);
            out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
    }
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 2, bytes.len());
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len());
    out.extend_from_slice(text.as_bytes());
}

fn b64e(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64d(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
