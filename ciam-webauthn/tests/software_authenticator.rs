//! Full ceremonies against a real WebAuthn client and authenticator: 1Password's
//! `passkey-client` + `passkey-authenticator` 0.6 (software, with real P-256 and
//! Ed25519 keys from `passkey-crypto`'s RustCrypto backend).
//!
//! Each ceremony goes the way it does in production: the RP's options are
//! serialized to L3 JSON and parsed by the client into its own request types;
//! the client builds `clientDataJSON` for its origin, checks the RP ID against
//! it, drives the authenticator over CTAP2, and its response is serialized to
//! the L3 JSON form (`PublicKeyCredential.toJSON()`), which the RP parses with
//! `RegistrationResponse::from_json` / `AuthenticationResponse::from_json` and
//! verifies. The only stand-in is the human: a user who approves every prompt
//! and passes user verification.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciam_webauthn::{
    AuthenticationResponse, AuthenticationResult, AuthenticationState, Challenge, CoseAlgorithm,
    CreationOptionsJson, CredentialDescriptor, CredentialRecord, Error, RegisteredCredential,
    RegistrationResponse, RegistrationState, RelyingParty, RequestOptionsJson, ResidentKey,
    UserEntity, UserVerificationPolicy,
};
use passkey_authenticator::{
    Authenticator, CredentialStore, MemoryStore, UiHint, UserCheck, UserValidationMethod,
};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::{Passkey, ctap2::Aaguid, ctap2::Ctap2Error, webauthn};
use serde_json::Value;
use url::Url;

const RP_ID: &str = "example.test";
const ORIGIN: &str = "https://example.test";
const TIMEOUT_MS: u32 = 60_000;

/// The person at the keyboard: present, consenting, and verified (biometric or
/// PIN) whenever the authenticator asks. passkey-authenticator leaves the end of
/// an excluded registration to its UI (it shows
/// `InformExcludedCredentialFound` when a listed credential is found, CTAP2 §6.1
/// step 1); the UI then ends the operation, as a platform does, with
/// `CTAP2_ERR_CREDENTIAL_EXCLUDED`.
struct ConsentingUser;

#[async_trait::async_trait]
impl UserValidationMethod for ConsentingUser {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        hint: UiHint<'a, Passkey>,
        _presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        if matches!(hint, UiHint::InformExcludedCredentialFound(_)) {
            return Err(Ctap2Error::CredentialExcluded);
        }
        Ok(UserCheck {
            presence: true,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

fn authenticator<S: CredentialStore<PasskeyItem = Passkey>>(
    store: S,
    counter: bool,
) -> Authenticator<S, ConsentingUser, RustCryptoBackend> {
    let mut authenticator = Authenticator::new(
        Aaguid::new_empty(),
        store,
        ConsentingUser,
        RustCryptoBackend,
    );
    authenticator.set_make_credentials_with_signature_counter(counter);
    authenticator
}

fn rp_with(algorithms: &[CoseAlgorithm]) -> RelyingParty {
    RelyingParty::builder(RP_ID)
        .name("Example Test")
        .origin(ORIGIN)
        .algorithms(algorithms.iter().copied())
        .user_verification(UserVerificationPolicy::Required)
        .build()
        .unwrap()
}

fn user(id: &[u8]) -> UserEntity {
    UserEntity {
        id: id.to_vec(),
        name: "alice@example.test".to_owned(),
        display_name: "Alice".to_owned(),
    }
}

fn url(origin: &str) -> Url {
    Url::parse(origin).unwrap()
}

/// RP options, serialized to L3 JSON, parsed by the client (`{"publicKey": ...}`).
fn creation_request(options: &CreationOptionsJson) -> webauthn::CredentialCreationOptions {
    let json = serde_json::to_string(options).unwrap();
    serde_json::from_str(&format!(r#"{{"publicKey":{json}}}"#)).unwrap()
}

fn request_request(options: &RequestOptionsJson) -> webauthn::CredentialRequestOptions {
    let json = serde_json::to_string(options).unwrap();
    serde_json::from_str(&format!(r#"{{"publicKey":{json}}}"#)).unwrap()
}

/// The client's response in the L3 JSON form (binary members base64url).
fn to_json<T: serde::Serialize>(credential: &T) -> String {
    serde_json::to_string(credential).unwrap()
}

/// A registration ceremony run by `$client` at `$origin` with fresh options from
/// `$rp`: the response in L3 JSON, and the state the RP kept.
macro_rules! register {
    ($client:expr, $rp:expr, $origin:expr, $user:expr, $exclude:expr, $rk:expr) => {{
        let challenge = Challenge::generate().unwrap();
        let options = $rp.creation_options(&challenge, $user, $exclude, $rk, TIMEOUT_MS);
        let created = $client
            .register(&url($origin), creation_request(&options), DefaultClientData)
            .await
            .unwrap();
        let state = RegistrationState {
            challenge,
            user_handle: $user.id.clone(),
        };
        (to_json(&created), state)
    }};
}

/// An authentication ceremony run by `$client` at `$origin` with fresh options
/// from `$rp` (allow list `$allow`, user identified beforehand `$user_handle`):
/// the response in L3 JSON, and the state the RP kept.
macro_rules! sign_in {
    ($client:expr, $rp:expr, $origin:expr, $allow:expr, $user_handle:expr) => {{
        let challenge = Challenge::generate().unwrap();
        let options = $rp.request_options(&challenge, $allow, TIMEOUT_MS);
        let asserted = $client
            .authenticate(&url($origin), request_request(&options), DefaultClientData)
            .await
            .unwrap();
        let state = AuthenticationState {
            challenge,
            allow_credentials: options.allow_credential_ids(),
            user_handle: $user_handle,
        };
        (to_json(&asserted), state)
    }};
}

fn verify_registration(
    rp: &RelyingParty,
    json: &str,
    state: &RegistrationState,
) -> Result<RegisteredCredential, Error> {
    rp.verify_registration(&RegistrationResponse::from_json(json)?, state)
}

fn verify_sign_in(
    rp: &RelyingParty,
    json: &str,
    state: &AuthenticationState,
    record: &CredentialRecord,
) -> Result<AuthenticationResult, Error> {
    rp.verify_authentication(&AuthenticationResponse::from_json(json)?, state, record)
}

/// The options JSON is accepted by the client, and reaches it with the intended meaning.
#[test]
fn client_parses_the_options_json() {
    let rp = rp_with(&[CoseAlgorithm::Es256, CoseAlgorithm::EdDsa]);
    let challenge = Challenge::generate().unwrap();
    let exclude = [CredentialDescriptor {
        id: vec![0xfb, 0xff, 0x01, 0x02],
        transports: vec!["internal".to_owned()],
    }];
    let creation = creation_request(&rp.creation_options(
        &challenge,
        &user(b"user-1"),
        &exclude,
        ResidentKey::Required,
        TIMEOUT_MS,
    ))
    .public_key;
    assert_eq!(creation.rp.id.as_deref(), Some(RP_ID));
    assert_eq!(creation.rp.name, "Example Test");
    assert_eq!(&*creation.user.id, b"user-1");
    assert_eq!(creation.user.name, "alice@example.test");
    assert_eq!(creation.user.display_name, "Alice");
    assert_eq!(&*creation.challenge, challenge.as_bytes());
    let algs: Vec<_> = creation.pub_key_cred_params.iter().map(|p| p.alg).collect();
    assert_eq!(
        algs,
        [
            passkey_crypto::iana::Algorithm::ES256,
            passkey_crypto::iana::Algorithm::EdDSA
        ]
    );
    assert_eq!(creation.timeout, Some(TIMEOUT_MS));
    let excluded = creation.exclude_credentials.unwrap();
    assert_eq!(excluded.len(), 1);
    assert_eq!(&*excluded[0].id, &[0xfb, 0xff, 0x01, 0x02]);
    let selection = creation.authenticator_selection.unwrap();
    assert_eq!(
        selection.resident_key,
        Some(webauthn::ResidentKeyRequirement::Required)
    );
    assert!(selection.require_resident_key);
    assert_eq!(
        selection.user_verification,
        webauthn::UserVerificationRequirement::Required
    );
    assert_eq!(
        creation.attestation,
        webauthn::AttestationConveyancePreference::None
    );
    assert_eq!(creation.extensions.and_then(|e| e.cred_props), Some(true));

    let request = request_request(&rp.request_options(&challenge, &exclude, TIMEOUT_MS)).public_key;
    assert_eq!(&*request.challenge, challenge.as_bytes());
    assert_eq!(request.rp_id.as_deref(), Some(RP_ID));
    assert_eq!(request.timeout, Some(TIMEOUT_MS));
    assert_eq!(
        request.user_verification,
        webauthn::UserVerificationRequirement::Required
    );
    assert_eq!(
        &*request.allow_credentials.unwrap()[0].id,
        &[0xfb, 0xff, 0x01, 0x02]
    );
    let discoverable = request_request(&rp.request_options(&challenge, &[], TIMEOUT_MS)).public_key;
    assert!(
        discoverable
            .allow_credentials
            .unwrap_or_default()
            .is_empty()
    );
}

/// ES256 passkey: discoverable registration (credProps reports rk), then a
/// username-less sign-in (no allow list) identified by the returned userHandle.
#[tokio::test]
async fn es256_discoverable_registration_and_sign_in() {
    let rp = rp_with(&[
        CoseAlgorithm::Es256,
        CoseAlgorithm::EdDsa,
        CoseAlgorithm::Rs256,
    ]);
    let mut client = Client::new(authenticator(None::<Passkey>, false));
    let alice = user(b"user-42");

    let (json, state) = register!(client, rp, ORIGIN, &alice, &[], ResidentKey::Required);
    let sent: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        sent["clientExtensionResults"]["credProps"]["rk"],
        Value::Bool(true),
        "{json}"
    );
    let registered = verify_registration(&rp, &json, &state).unwrap();
    let mut record = registered.record;
    assert_eq!(record.alg, -7);
    assert_eq!(record.attestation_format, "none");
    assert_eq!(record.user_handle, b"user-42");
    assert!(registered.user_verified);
    assert_eq!(record.sign_count, 0);

    let (json, state) = sign_in!(client, rp, ORIGIN, &[], None);
    assert_eq!(state.allow_credentials, None);
    let response = AuthenticationResponse::from_json(&json).unwrap();
    assert_eq!(response.user_handle.as_deref(), Some(&b"user-42"[..]));
    assert_eq!(response.raw_id, record.id);
    let result = rp
        .verify_authentication(&response, &state, &record)
        .unwrap();
    assert!(result.user_verified);
    assert_eq!(result.credential_id, record.id);
    // This authenticator keeps no counter unless asked: zero stays zero (allowed).
    assert_eq!(result.new_sign_count, 0);
    assert!(!result.counter_regression);
    result.apply_to(&mut record);
    assert!(record.uv_initialized);
}

/// EdDSA chosen because the RP lists it first; sign-ins with an allow list; the
/// counter grows with each assertion and an old assertion is refused.
#[tokio::test]
async fn eddsa_allow_list_sign_in_and_counter_progression() {
    let rp = rp_with(&[CoseAlgorithm::EdDsa, CoseAlgorithm::Es256]);
    let mut client = Client::new(authenticator(MemoryStore::new(), true));
    let bob = user(b"user-bob");

    let (json, state) = register!(client, rp, ORIGIN, &bob, &[], ResidentKey::Discouraged);
    let mut record = verify_registration(&rp, &json, &state).unwrap().record;
    assert_eq!(record.alg, -8, "the client honours pubKeyCredParams order");

    let allow = [CredentialDescriptor::from(&record)];
    let mut previous = record.sign_count;
    let mut first = None;
    for _ in 0..3 {
        let (json, state) = sign_in!(client, rp, ORIGIN, &allow, Some(bob.id.clone()));
        let result = verify_sign_in(&rp, &json, &state, &record).unwrap();
        assert!(
            result.new_sign_count > previous,
            "{} after {previous}",
            result.new_sign_count
        );
        assert!(!result.counter_regression);
        previous = result.new_sign_count;
        result.apply_to(&mut record);
        assert_eq!(record.sign_count, previous);
        first.get_or_insert((json, state));
    }

    // The first assertion, presented again with its own (captured) challenge:
    // refused on the counter, which has moved on.
    let (json, state) = first.unwrap();
    let received = AuthenticationResponse::from_json(&json).unwrap();
    assert_eq!(
        verify_sign_in(&rp, &json, &state, &record),
        Err(Error::CounterRegression {
            stored: previous,
            received: u32::from_be_bytes(received.authenticator_data[33..37].try_into().unwrap()),
        })
    );
}

/// excludeCredentials reaches the authenticator: the same authenticator cannot
/// register a second credential for the account.
#[tokio::test]
async fn excluded_credential_is_not_registered_again() {
    let rp = rp_with(&[CoseAlgorithm::Es256]);
    let mut client = Client::new(authenticator(None::<Passkey>, false));
    let alice = user(b"user-42");
    let (json, state) = register!(client, rp, ORIGIN, &alice, &[], ResidentKey::Required);
    let record = verify_registration(&rp, &json, &state).unwrap().record;

    let challenge = Challenge::generate().unwrap();
    let options = rp.creation_options(
        &challenge,
        &alice,
        &[CredentialDescriptor::from(&record)],
        ResidentKey::Required,
        TIMEOUT_MS,
    );
    let refused = client
        .register(&url(ORIGIN), creation_request(&options), DefaultClientData)
        .await;
    assert!(
        matches!(
            refused,
            Err(passkey_client::WebauthnError::AuthenticatorError(0x19))
        ),
        "{refused:?}"
    );
    // Excluding another id does not stop it.
    let other = [CredentialDescriptor {
        id: vec![1; 16],
        transports: vec![],
    }];
    let (json, state) = register!(client, rp, ORIGIN, &alice, &other, ResidentKey::Required);
    let second = verify_registration(&rp, &json, &state).unwrap();
    assert_ne!(second.record.id, record.id);
}

/// Wrong origin, other challenge, wrong RP ID and a credential outside the
/// allow list, each refused with the variant naming the step.
#[tokio::test]
async fn refusals_name_the_failed_step() {
    let rp = rp_with(&[CoseAlgorithm::Es256]);
    let mut client = Client::new(authenticator(MemoryStore::new(), true));
    let alice = user(b"user-42");
    let alice_id = || Some(alice.id.clone());

    // Two credentials for the same account on this authenticator.
    let mut records = Vec::new();
    for _ in 0..2 {
        let (json, state) = register!(client, rp, ORIGIN, &alice, &[], ResidentKey::Discouraged);
        // A different (e.g. replayed or another session's) challenge.
        let other = RegistrationState {
            challenge: Challenge::generate().unwrap(),
            ..state.clone()
        };
        assert_eq!(
            verify_registration(&rp, &json, &other).unwrap_err(),
            Error::Challenge
        );
        records.push(verify_registration(&rp, &json, &state).unwrap().record);
    }
    let (a, b) = (&records[0], &records[1]);
    assert_ne!(a.id, b.id);
    let only_a = [CredentialDescriptor::from(a)];

    // A sign-in with credential B only.
    let (json, good_state) = sign_in!(
        client,
        rp,
        ORIGIN,
        &[CredentialDescriptor::from(b)],
        alice_id()
    );
    // Credential B is not in the allow list the RP kept (only A).
    let only_a_state = AuthenticationState {
        allow_credentials: Some(vec![a.id.clone()]),
        ..good_state.clone()
    };
    assert_eq!(
        verify_sign_in(&rp, &json, &only_a_state, b),
        Err(Error::NotAllowed)
    );
    // Looked up against A's record (raw id mismatch).
    assert_eq!(
        verify_sign_in(&rp, &json, &good_state, a),
        Err(Error::NotAllowed)
    );
    // Another challenge than the one this assertion signed.
    let other_challenge = AuthenticationState {
        challenge: Challenge::generate().unwrap(),
        ..good_state.clone()
    };
    assert_eq!(
        verify_sign_in(&rp, &json, &other_challenge, b),
        Err(Error::Challenge)
    );
    // The right state works, once; the same assertion replayed afterwards fails
    // on the counter even if the challenge were still accepted.
    let mut b_record = b.clone();
    verify_sign_in(&rp, &json, &good_state, &b_record)
        .unwrap()
        .apply_to(&mut b_record);
    assert!(matches!(
        verify_sign_in(&rp, &json, &good_state, &b_record),
        Err(Error::CounterRegression { .. })
    ));

    // Wrong origin: the client runs at a sibling origin (for which `example.test`
    // is a valid RP ID, so the client goes ahead), not configured at the RP.
    let sibling = "https://login.example.test";
    let (json, state) = register!(client, rp, sibling, &alice, &[], ResidentKey::Discouraged);
    assert_eq!(
        verify_registration(&rp, &json, &state).unwrap_err(),
        Error::Origin
    );
    let (json, state) = sign_in!(client, rp, sibling, &only_a, alice_id());
    assert_eq!(verify_sign_in(&rp, &json, &state, a), Err(Error::Origin));

    // Wrong RP ID: a relying party for `login.example.test` (serving that origin)
    // receives ceremonies scoped to `example.test`.
    let login_rp = RelyingParty::builder("login.example.test")
        .origin(sibling)
        .user_verification(UserVerificationPolicy::Required)
        .build()
        .unwrap();
    let (json, state) = register!(client, rp, sibling, &alice, &[], ResidentKey::Discouraged);
    assert_eq!(
        verify_registration(&login_rp, &json, &state).unwrap_err(),
        Error::RpIdHash
    );
    let (json, state) = sign_in!(client, rp, sibling, &only_a, alice_id());
    assert_eq!(
        verify_sign_in(&login_rp, &json, &state, a),
        Err(Error::RpIdHash)
    );
}
