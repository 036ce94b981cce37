#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Negative tests: one per RP check class (L3 §7.1 / §7.2, SECURITY-CHECKLIST §4).
//!
//! Cases are built by mutating a valid W3C L3 test vector (provenance: see
//! `tests/vectors.rs`) or, where a signature must still verify after the
//! mutation, from our own Ed25519 / P-256 keys generated with ring.

mod common;

use ciam_webauthn::{
    AuthenticationResponse, AuthenticationState, Challenge, CoseAlgorithm, CounterPolicy,
    CredentialRecord, CrossOriginPolicy, Error, RegistrationResponse, RegistrationState,
    RelyingParty, UserVerificationPolicy,
};
use ciborium::Value;
use common::{b64, hex, load_vectors, str_of};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _};

const RP_ID: &str = "example.org";
const ORIGIN: &str = "https://example.org";
const USER: &[u8] = b"user-1";

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;
const ED: u8 = 0x80;

fn rp() -> RelyingParty {
    RelyingParty::builder(RP_ID).origin(ORIGIN).build().unwrap()
}

fn challenge() -> Challenge {
    Challenge::from_bytes([7u8; 32].to_vec()).unwrap()
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn client_data(type_: &str, challenge: &Challenge, origin: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{type_}","challenge":"{}","origin":"{origin}","crossOrigin":false{extra}}}"#,
        challenge.to_base64url()
    )
    .into_bytes()
}

/// authData = rpIdHash || flags || counter || [attested credential data] || [extensions].
fn auth_data(
    rp_id: &str,
    flags: u8,
    count: u32,
    attested: Option<(&[u8], &[u8])>,
    ext: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = sha256(rp_id.as_bytes());
    out.push(flags);
    out.extend_from_slice(&count.to_be_bytes());
    if let Some((cred_id, cose)) = attested {
        out.extend_from_slice(&[0x11; 16]);
        out.extend_from_slice(&u16::try_from(cred_id.len()).unwrap().to_be_bytes());
        out.extend_from_slice(cred_id);
        out.extend_from_slice(cose);
    }
    if let Some(ext) = ext {
        out.extend_from_slice(ext);
    }
    out
}

fn attestation_object(fmt: &str, stmt: Vec<(Value, Value)>, auth_data: &[u8]) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text(fmt.into())),
        (Value::Text("attStmt".into()), Value::Map(stmt)),
        (
            Value::Text("authData".into()),
            Value::Bytes(auth_data.to_vec()),
        ),
    ]))
}

/// Our own Ed25519 credential.
struct Ed {
    key: signature::Ed25519KeyPair,
    id: Vec<u8>,
}

impl Ed {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        Self {
            key: signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
            id: vec![0xc0; 32],
        }
    }

    fn cose(&self) -> Vec<u8> {
        cbor(&Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(1.into())),
            (Value::Integer(3.into()), Value::Integer((-8).into())),
            (Value::Integer((-1).into()), Value::Integer(6.into())),
            (
                Value::Integer((-2).into()),
                Value::Bytes(self.key.public_key().as_ref().to_vec()),
            ),
        ]))
    }

    fn record(&self, flags: u8, sign_count: u32) -> CredentialRecord {
        CredentialRecord {
            id: self.id.clone(),
            user_handle: USER.to_vec(),
            public_key_cose: self.cose(),
            alg: -8,
            sign_count,
            transports: Vec::new(),
            backup_eligible: flags & BE != 0,
            backup_state: flags & BS != 0,
            uv_initialized: false,
            attestation_format: "none".into(),
            aaguid: [0x11; 16],
        }
    }

    /// A signed assertion over the given authenticator data and client data.
    fn assertion(&self, auth_data: &[u8], client_data: &[u8]) -> AuthenticationResponse {
        let mut msg = auth_data.to_vec();
        msg.extend_from_slice(&sha256(client_data));
        let sig = self.key.sign(&msg);
        AuthenticationResponse {
            raw_id: self.id.clone(),
            client_data_json: client_data.to_vec(),
            authenticator_data: auth_data.to_vec(),
            signature: sig.as_ref().to_vec(),
            user_handle: Some(USER.to_vec()),
        }
    }

    /// A `none` registration with the given flags.
    fn registration(&self, flags: u8, cd: &[u8]) -> RegistrationResponse {
        let ad = auth_data(RP_ID, flags | AT, 0, Some((&self.id, &self.cose())), None);
        RegistrationResponse {
            raw_id: self.id.clone(),
            client_data_json: cd.to_vec(),
            attestation_object: attestation_object("none", vec![], &ad),
            transports: vec![],
        }
    }
}

fn auth_state() -> AuthenticationState {
    AuthenticationState {
        challenge: challenge(),
        allow_credentials: None,
        user_handle: Some(USER.to_vec()),
    }
}

fn reg_state() -> RegistrationState {
    RegistrationState {
        challenge: challenge(),
        user_handle: USER.to_vec(),
    }
}

fn get_cd() -> Vec<u8> {
    client_data("webauthn.get", &challenge(), ORIGIN, "")
}

fn create_cd() -> Vec<u8> {
    client_data("webauthn.create", &challenge(), ORIGIN, "")
}

/// Authentication with our own key, arbitrary authData, against record flags.
fn own_assertion(flags: u8, count: u32, stored: u32, ext: Option<&[u8]>) -> Result<u32, Error> {
    own_assertion_with(&rp(), flags, count, stored, ext).map(|r| r.new_sign_count)
}

fn own_assertion_with(
    rp: &RelyingParty,
    flags: u8,
    count: u32,
    stored: u32,
    ext: Option<&[u8]>,
) -> Result<ciam_webauthn::AuthenticationResult, Error> {
    let ed = Ed::new();
    let ad = auth_data(RP_ID, flags, count, None, ext);
    rp.verify_authentication(
        &ed.assertion(&ad, &get_cd()),
        &auth_state(),
        &ed.record(flags, stored),
    )
}

// W3C vector helpers (provenance: W3C L3 "Test Vectors", vector w3c-l3-none-es256).

fn w3c_vector(id: &str) -> serde_json::Value {
    load_vectors()["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("vector {id} missing"))
}

fn w3c_registration(v: &serde_json::Value) -> (RegistrationResponse, RegistrationState) {
    let reg = &v["registration"];
    (
        RegistrationResponse {
            raw_id: b64(str_of(reg, "credential_id_b64url")),
            client_data_json: b64(str_of(reg, "clientDataJSON_b64url")),
            attestation_object: b64(str_of(reg, "attestationObject_b64url")),
            transports: vec![],
        },
        RegistrationState {
            challenge: Challenge::from_bytes(hex(str_of(reg, "challenge_hex"))).unwrap(),
            user_handle: USER.to_vec(),
        },
    )
}

fn w3c_assertion(v: &serde_json::Value) -> (AuthenticationResponse, AuthenticationState) {
    let auth = &v["authentication"];
    (
        AuthenticationResponse {
            raw_id: b64(str_of(auth, "credential_id_b64url")),
            client_data_json: b64(str_of(auth, "clientDataJSON_b64url")),
            authenticator_data: b64(str_of(auth, "authenticatorData_b64url")),
            signature: b64(str_of(auth, "signature_b64url")),
            user_handle: None,
        },
        AuthenticationState {
            challenge: Challenge::from_bytes(hex(str_of(auth, "challenge_hex"))).unwrap(),
            allow_credentials: None,
            user_handle: Some(USER.to_vec()),
        },
    )
}

fn w3c_record(v: &serde_json::Value) -> CredentialRecord {
    let (resp, state) = w3c_registration(v);
    rp().verify_registration(&resp, &state).unwrap().record
}

// ---------------------------------------------------------------- client data

#[test]
fn wrong_type_refused() {
    let ed = Ed::new();
    let reg = ed.registration(UP, &get_cd());
    assert_eq!(
        rp().verify_registration(&reg, &reg_state()).map(|_| ()),
        Err(Error::ClientDataType)
    );
    let ad = auth_data(RP_ID, UP, 0, None, None);
    let resp = ed.assertion(&ad, &create_cd());
    assert_eq!(
        rp().verify_authentication(&resp, &auth_state(), &ed.record(UP, 0)),
        Err(Error::ClientDataType)
    );
}

#[test]
fn wrong_challenge_refused() {
    // W3C vector with a different expected challenge.
    let v = w3c_vector("w3c-l3-none-es256");
    let (resp, mut state) = w3c_registration(&v);
    state.challenge = Challenge::from_bytes(vec![0u8; 32]).unwrap();
    assert_eq!(
        rp().verify_registration(&resp, &state).map(|_| ()),
        Err(Error::Challenge)
    );
    let record = w3c_record(&v);
    let (resp, mut state) = w3c_assertion(&v);
    state.challenge = Challenge::from_bytes(vec![0u8; 32]).unwrap();
    assert_eq!(
        rp().verify_authentication(&resp, &state, &record)
            .map(|_| ()),
        Err(Error::Challenge)
    );
}

/// Replay protection is the caller's job: the library is stateless, so the same
/// response verifies twice. The caller must delete the stored challenge before
/// verifying (single use, with a TTL), so a replay finds no challenge to pass.
#[test]
fn replayed_challenge_is_the_callers_job() {
    let v = w3c_vector("w3c-l3-none-es256");
    let record = w3c_record(&v);
    let (resp, state) = w3c_assertion(&v);
    assert!(rp().verify_authentication(&resp, &state, &record).is_ok());
    assert!(rp().verify_authentication(&resp, &state, &record).is_ok());
}

#[test]
fn short_challenge_refused() {
    assert_eq!(
        Challenge::from_bytes(vec![1u8; 15]),
        Err(Error::ChallengeTooShort)
    );
    let c = Challenge::generate().unwrap();
    assert_eq!(c.as_bytes().len(), 32);
    assert_ne!(c, Challenge::generate().unwrap());
}

#[test]
fn wrong_origin_refused() {
    let v = w3c_vector("w3c-l3-none-es256");
    let (resp, state) = w3c_registration(&v);
    // The W3C vector's origin (https://example.org) against RPs configured otherwise.
    for origin in [
        "https://example.com",
        "https://example.org:443",
        "http://example.org",
        "https://www.example.org",
    ] {
        let rp = RelyingParty::builder(RP_ID).origin(origin).build().unwrap();
        assert_eq!(
            rp.verify_registration(&resp, &state).map(|_| ()),
            Err(Error::Origin),
            "{origin}"
        );
    }
    // Client origins that differ only in form from the configured one.
    let ed = Ed::new();
    for origin in [
        "https://example.org/",
        "https://example.org:443",
        "HTTPS://EXAMPLE.ORG",
    ] {
        let cd = client_data("webauthn.create", &challenge(), origin, "");
        assert_eq!(
            rp().verify_registration(&ed.registration(UP, &cd), &reg_state())
                .map(|_| ()),
            Err(Error::Origin),
            "{origin}"
        );
    }
    assert!(
        RelyingParty::builder(RP_ID)
            .origin("https://example.org/")
            .build()
            .is_err()
    );
    // Several origins, including a native-app one, are accepted when configured.
    let android = "android:apk-key-hash:xT5ZucZJ9N7oq3j3awG8J-7Ssbd28sxhsMlBAMMsQjA";
    let rp = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .origin(android)
        .build()
        .unwrap();
    let cd = client_data("webauthn.create", &challenge(), android, "");
    assert!(
        rp.verify_registration(&ed.registration(UP, &cd), &reg_state())
            .is_ok()
    );
    let cd = client_data(
        "webauthn.create",
        &challenge(),
        "android:apk-key-hash:other",
        "",
    );
    assert_eq!(
        rp.verify_registration(&ed.registration(UP, &cd), &reg_state())
            .map(|_| ()),
        Err(Error::Origin)
    );
}

#[test]
fn cross_origin_refused_by_default_and_top_origin_checked() {
    // W3C vectors with crossOrigin:true (and topOrigin https://example.com).
    for id in [
        "w3c-l3-none-es256-crossOrigin",
        "w3c-l3-none-es256-topOrigin",
    ] {
        let v = w3c_vector(id);
        let (resp, state) = w3c_registration(&v);
        assert_eq!(
            rp().verify_registration(&resp, &state).map(|_| ()),
            Err(Error::CrossOrigin),
            "{id}"
        );
        // Allowed, but with a different top-origin list and no missing topOrigin.
        let strict = RelyingParty::builder(RP_ID)
            .origin(ORIGIN)
            .cross_origin(CrossOriginPolicy::Allow {
                top_origins: vec!["https://other.example".into()],
                allow_missing_top_origin: false,
            })
            .build()
            .unwrap();
        assert_eq!(
            strict.verify_registration(&resp, &state).map(|_| ()),
            Err(Error::CrossOrigin),
            "{id}"
        );
    }
}

#[test]
fn client_data_not_json_refused() {
    let ed = Ed::new();
    for cd in [
        &b"not json"[..],
        b"",
        b"{\"type\":\"webauthn.create\"",
        b"[1,2]",
        b"\xff\xfe",
    ] {
        let reg = ed.registration(UP, cd);
        assert!(
            matches!(
                rp().verify_registration(&reg, &reg_state()),
                Err(Error::Malformed(_))
            ),
            "{cd:?}"
        );
    }
}

#[test]
fn client_data_extra_member_accepted() {
    let ed = Ed::new();
    let cd = client_data(
        "webauthn.create",
        &challenge(),
        ORIGIN,
        r#","other_keys_can_be_added_here":"do not compare clientDataJSON against a template""#,
    );
    let reg = rp()
        .verify_registration(&ed.registration(UP, &cd), &reg_state())
        .unwrap();
    let cd = client_data(
        "webauthn.get",
        &challenge(),
        ORIGIN,
        r#","other_keys_can_be_added_here":1"#,
    );
    let ad = auth_data(RP_ID, UP, 0, None, None);
    assert!(
        rp().verify_authentication(&ed.assertion(&ad, &cd), &auth_state(), &reg.record)
            .is_ok()
    );
}

// ---------------------------------------------------------------- authenticator data

#[test]
fn rp_id_hash_mismatch_refused() {
    let ed = Ed::new();
    let ad = auth_data("evil.example", UP, 0, None, None);
    assert_eq!(
        rp().verify_authentication(
            &ed.assertion(&ad, &get_cd()),
            &auth_state(),
            &ed.record(UP, 0)
        ),
        Err(Error::RpIdHash)
    );
    let mut reg = ed.registration(UP, &create_cd());
    let ad = auth_data("evil.example", UP | AT, 0, Some((&ed.id, &ed.cose())), None);
    reg.attestation_object = attestation_object("none", vec![], &ad);
    assert_eq!(
        rp().verify_registration(&reg, &reg_state()).map(|_| ()),
        Err(Error::RpIdHash)
    );
}

#[test]
fn user_presence_clear_refused() {
    assert_eq!(own_assertion(UV, 0, 0, None), Err(Error::UserPresence));
    let ed = Ed::new();
    assert_eq!(
        rp().verify_registration(&ed.registration(0, &create_cd()), &reg_state())
            .map(|_| ()),
        Err(Error::UserPresence)
    );
}

#[test]
fn user_verification_clear_when_required_refused() {
    let strict = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .user_verification(UserVerificationPolicy::Required)
        .build()
        .unwrap();
    assert_eq!(
        own_assertion_with(&strict, UP, 0, 0, None).map(|_| ()),
        Err(Error::UserVerification)
    );
    assert!(own_assertion_with(&strict, UP | UV, 0, 0, None).is_ok());
    let ed = Ed::new();
    assert_eq!(
        strict
            .verify_registration(&ed.registration(UP, &create_cd()), &reg_state())
            .map(|_| ()),
        Err(Error::UserVerification)
    );
    // Preferred: not enforced.
    assert!(own_assertion(UP, 0, 0, None).is_ok());
}

#[test]
fn backup_state_without_eligibility_refused() {
    assert_eq!(own_assertion(UP | BS, 0, 0, None), Err(Error::BackupFlags));
    let ed = Ed::new();
    assert_eq!(
        rp().verify_registration(&ed.registration(UP | BS, &create_cd()), &reg_state())
            .map(|_| ()),
        Err(Error::BackupFlags)
    );
    // BE must equal the stored BE.
    let ad = auth_data(RP_ID, UP | BE, 0, None, None);
    assert_eq!(
        rp().verify_authentication(
            &ed.assertion(&ad, &get_cd()),
            &auth_state(),
            &ed.record(UP, 0)
        )
        .map(|_| ()),
        Err(Error::BackupFlags)
    );
    // BS drift is reported, not refused.
    let ad = auth_data(RP_ID, UP | BE | BS, 0, None, None);
    let r = rp()
        .verify_authentication(
            &ed.assertion(&ad, &get_cd()),
            &auth_state(),
            &ed.record(UP | BE, 0),
        )
        .unwrap();
    assert!(r.backup_state && r.backup_state_changed);
}

#[test]
fn truncated_auth_data_refused() {
    let ed = Ed::new();
    let full = auth_data(RP_ID, UP | AT, 0, Some((&ed.id, &ed.cose())), None);
    for len in 0..full.len() {
        let mut reg = ed.registration(UP, &create_cd());
        reg.attestation_object = attestation_object("none", vec![], &full[..len]);
        assert!(
            matches!(
                rp().verify_registration(&reg, &reg_state()),
                Err(Error::Malformed(_))
            ),
            "len {len}"
        );
    }
    let full = auth_data(RP_ID, UP, 0, None, None);
    for len in 0..full.len() {
        let resp = ed.assertion(&full[..len], &get_cd());
        assert!(matches!(
            rp().verify_authentication(&resp, &auth_state(), &ed.record(UP, 0)),
            Err(Error::Malformed(_))
        ));
    }
}

#[test]
fn trailing_bytes_refused() {
    assert!(matches!(
        own_assertion(UP, 0, 0, Some(&[0x00])),
        Err(Error::Malformed(_))
    ));
    let ed = Ed::new();
    let mut ad = auth_data(RP_ID, UP | AT, 0, Some((&ed.id, &ed.cose())), None);
    ad.push(0xa0);
    let mut reg = ed.registration(UP, &create_cd());
    reg.attestation_object = attestation_object("none", vec![], &ad);
    assert!(matches!(
        rp().verify_registration(&reg, &reg_state()),
        Err(Error::Malformed(_))
    ));
    // Trailing bytes after the attestation object itself.
    let mut reg = ed.registration(UP, &create_cd());
    reg.attestation_object.push(0x00);
    assert!(matches!(
        rp().verify_registration(&reg, &reg_state()),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn extension_flag_without_extensions_refused() {
    assert!(matches!(
        own_assertion(UP | ED, 0, 0, None),
        Err(Error::Malformed(_))
    ));
    // With a real extensions map it is accepted.
    let ext = cbor(&Value::Map(vec![(
        Value::Text("credProtect".into()),
        Value::Integer(1.into()),
    )]));
    assert!(own_assertion(UP | ED, 0, 0, Some(&ext)).is_ok());
}

// ---------------------------------------------------------------- keys and attestation

#[test]
fn algorithm_not_allowed_refused() {
    let ed = Ed::new();
    let es_only = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .algorithms([CoseAlgorithm::Es256])
        .build()
        .unwrap();
    assert_eq!(
        es_only
            .verify_registration(&ed.registration(UP, &create_cd()), &reg_state())
            .map(|_| ()),
        Err(Error::Algorithm(-8))
    );
    let ad = auth_data(RP_ID, UP, 0, None, None);
    assert_eq!(
        es_only
            .verify_authentication(
                &ed.assertion(&ad, &get_cd()),
                &auth_state(),
                &ed.record(UP, 0)
            )
            .map(|_| ()),
        Err(Error::Algorithm(-8))
    );
}

#[test]
fn credential_id_too_long_refused() {
    let mut ed = Ed::new();
    ed.id = vec![0x42; 1024];
    assert_eq!(
        rp().verify_registration(&ed.registration(UP, &create_cd()), &reg_state())
            .map(|_| ()),
        Err(Error::CredentialIdTooLong(1024))
    );
    ed.id = vec![0x42; 1023];
    assert!(
        rp().verify_registration(&ed.registration(UP, &create_cd()), &reg_state())
            .is_ok()
    );
}

#[test]
fn es256_point_not_on_curve_refused() {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let kp = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref().to_vec();
    let cose = |y_flip: u8| {
        let mut y = point[33..].to_vec();
        y[31] ^= y_flip;
        cbor(&Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())),
            (Value::Integer(3.into()), Value::Integer((-7).into())),
            (Value::Integer((-1).into()), Value::Integer(1.into())),
            (
                Value::Integer((-2).into()),
                Value::Bytes(point[1..33].to_vec()),
            ),
            (Value::Integer((-3).into()), Value::Bytes(y)),
        ]))
    };
    let id = vec![9u8; 16];
    let reg = |cose: Vec<u8>| RegistrationResponse {
        raw_id: id.clone(),
        client_data_json: create_cd(),
        attestation_object: attestation_object(
            "none",
            vec![],
            &auth_data(RP_ID, UP | AT, 0, Some((&id, &cose)), None),
        ),
        transports: vec![],
    };
    let ok = rp()
        .verify_registration(&reg(cose(0)), &reg_state())
        .unwrap();
    assert!(matches!(
        rp().verify_registration(&reg(cose(1)), &reg_state()),
        Err(Error::InvalidKey(_))
    ));
    // And that key verifies ES256 (DER) assertions; one flipped bit does not.
    let ad = auth_data(RP_ID, UP, 1, None, None);
    let mut msg = ad.clone();
    msg.extend_from_slice(&sha256(&get_cd()));
    let sig = kp.sign(&rng, &msg).unwrap().as_ref().to_vec();
    let resp = AuthenticationResponse {
        raw_id: id.clone(),
        client_data_json: get_cd(),
        authenticator_data: ad,
        signature: sig,
        user_handle: None,
    };
    assert_eq!(
        rp().verify_authentication(&resp, &auth_state(), &ok.record)
            .unwrap()
            .new_sign_count,
        1
    );
    // A stored key damaged after registration (point moved off the curve) is
    // not re-checked when read for an assertion, but ring refuses it before
    // verifying: the assertion fails, as a signature failure.
    let mut damaged = ok.record.clone();
    damaged.public_key_cose = cose(1);
    assert_eq!(
        rp().verify_authentication(&resp, &auth_state(), &damaged),
        Err(Error::Signature)
    );
}

/// ES384 (COSE -35) with our own P-384 key (ring): accepted only when the RP
/// lists ES384; off-curve points, the wrong curve and short coordinates refused.
#[test]
fn es384_key_checks_and_assertion() {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P384_SHA384_ASN1_SIGNING;
    let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let kp = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref().to_vec();
    assert_eq!(point.len(), 97);
    let cose = |crv: i64, x: Vec<u8>, y: Vec<u8>| {
        cbor(&Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())),
            (Value::Integer(3.into()), Value::Integer((-35).into())),
            (Value::Integer((-1).into()), Value::Integer(crv.into())),
            (Value::Integer((-2).into()), Value::Bytes(x)),
            (Value::Integer((-3).into()), Value::Bytes(y)),
        ]))
    };
    let x = point[1..49].to_vec();
    let y = point[49..].to_vec();
    let id = vec![7u8; 16];
    let reg = |cose: Vec<u8>| RegistrationResponse {
        raw_id: id.clone(),
        client_data_json: create_cd(),
        attestation_object: attestation_object(
            "none",
            vec![],
            &auth_data(RP_ID, UP | AT, 0, Some((&id, &cose)), None),
        ),
        transports: vec![],
    };
    let es384 = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .algorithms([CoseAlgorithm::Es256, CoseAlgorithm::Es384])
        .build()
        .unwrap();
    // Default algorithm list: refused.
    assert_eq!(
        rp().verify_registration(&reg(cose(2, x.clone(), y.clone())), &reg_state())
            .map(|_| ()),
        Err(Error::Algorithm(-35))
    );
    let ok = es384
        .verify_registration(&reg(cose(2, x.clone(), y.clone())), &reg_state())
        .unwrap();
    assert_eq!(ok.record.alg, -35);
    let mut off_curve = y.clone();
    off_curve[47] ^= 1;
    assert_eq!(
        es384
            .verify_registration(&reg(cose(2, x.clone(), off_curve)), &reg_state())
            .map(|_| ()),
        Err(Error::InvalidKey("point not on P-384"))
    );
    assert_eq!(
        es384
            .verify_registration(&reg(cose(1, x.clone(), y.clone())), &reg_state())
            .map(|_| ()),
        Err(Error::InvalidKey("ES384 needs curve P-384"))
    );
    assert_eq!(
        es384
            .verify_registration(
                &reg(cose(2, x[16..].to_vec(), y[16..].to_vec())),
                &reg_state()
            )
            .map(|_| ()),
        Err(Error::InvalidKey("x is not 48 bytes"))
    );
    // The key verifies ES384 (DER) assertions; one flipped bit does not; the
    // default RP refuses the stored ES384 record.
    let ad = auth_data(RP_ID, UP, 1, None, None);
    let mut msg = ad.clone();
    msg.extend_from_slice(&sha256(&get_cd()));
    let sig = kp.sign(&rng, &msg).unwrap().as_ref().to_vec();
    let mut resp = AuthenticationResponse {
        raw_id: id.clone(),
        client_data_json: get_cd(),
        authenticator_data: ad,
        signature: sig,
        user_handle: None,
    };
    assert_eq!(
        es384
            .verify_authentication(&resp, &auth_state(), &ok.record)
            .unwrap()
            .new_sign_count,
        1
    );
    assert_eq!(
        rp().verify_authentication(&resp, &auth_state(), &ok.record)
            .map(|_| ()),
        Err(Error::Algorithm(-35))
    );
    let last = resp.signature.len() - 1;
    resp.signature[last] ^= 1;
    assert_eq!(
        es384
            .verify_authentication(&resp, &auth_state(), &ok.record)
            .map(|_| ()),
        Err(Error::Signature)
    );
}

/// Order n of the P-521 group (SEC 2 / FIPS 186-4 D.1.2.5), big-endian, 66 bytes.
const P521_N: &str = "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";
/// The P-521 field prime p = 2^521 - 1, big-endian, 66 bytes.
const P521_P: &str = "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// ES512 (COSE -36, P-521 with SHA-512) with our own P-521 key (RustCrypto
/// `p521`, deterministic RFC 6979 signatures): offered and accepted only when the
/// RP lists ES512; keys off the curve, with a coordinate not below p, on the
/// wrong curve or key type, or with coordinates that are not 66 bytes refused
/// with `InvalidKey`; bad signatures, non-DER signatures and `r` or `s` equal to
/// 0 or >= n (including `r + n`, `s + n`, same residue mod n) refused with
/// `Error::Signature`; packed self attestation verified with the key.
#[test]
fn es512_key_checks_and_assertion() {
    use p521::ecdsa::signature::Signer as _;
    let mut secret = [0x5au8; 66];
    secret[0] = 0x00;
    let sk = p521::ecdsa::SigningKey::from_slice(&secret).unwrap();
    let sign = |msg: &[u8]| -> p521::ecdsa::Signature { sk.sign(msg) };
    let point = sk.verifying_key().to_sec1_point(false);
    let point = point.as_bytes().to_vec();
    assert_eq!(point.len(), 133);
    let x = point[1..67].to_vec();
    let y = point[67..].to_vec();
    let cose_with = |kty: i64, crv: i64, x: Vec<u8>, y: Option<Value>| {
        let mut map = vec![
            (Value::Integer(1.into()), Value::Integer(kty.into())),
            (Value::Integer(3.into()), Value::Integer((-36).into())),
            (Value::Integer((-1).into()), Value::Integer(crv.into())),
            (Value::Integer((-2).into()), Value::Bytes(x)),
        ];
        if let Some(y) = y {
            map.push((Value::Integer((-3).into()), y));
        }
        cbor(&Value::Map(map))
    };
    let cose = |x: Vec<u8>, y: Vec<u8>| cose_with(2, 3, x, Some(Value::Bytes(y)));
    let id = vec![9u8; 16];
    let reg_with = |fmt: &str, stmt: Vec<(Value, Value)>, cose: &[u8]| RegistrationResponse {
        raw_id: id.clone(),
        client_data_json: create_cd(),
        attestation_object: attestation_object(
            fmt,
            stmt,
            &auth_data(RP_ID, UP | AT, 0, Some((&id, cose)), None),
        ),
        transports: vec![],
    };
    let reg = |cose: Vec<u8>| reg_with("none", vec![], &cose);
    let es512 = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .algorithms([CoseAlgorithm::Es256, CoseAlgorithm::Es512])
        .build()
        .unwrap();
    let es384 = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .algorithms([CoseAlgorithm::Es256, CoseAlgorithm::Es384])
        .build()
        .unwrap();

    // Not offered (default list, or ES384 only): refused with the COSE id.
    for not_offered in [&rp(), &es384] {
        assert_eq!(
            not_offered
                .verify_registration(&reg(cose(x.clone(), y.clone())), &reg_state())
                .map(|_| ()),
            Err(Error::Algorithm(-36))
        );
    }
    let ok = es512
        .verify_registration(&reg(cose(x.clone(), y.clone())), &reg_state())
        .unwrap();
    assert_eq!(ok.record.alg, -36);

    // Key checks at registration.
    let key_err = |cose: Vec<u8>| {
        es512
            .verify_registration(&reg(cose), &reg_state())
            .map(|_| ())
    };
    let mut off_curve = y.clone();
    off_curve[65] ^= 1;
    assert_eq!(
        key_err(cose(x.clone(), off_curve)),
        Err(Error::InvalidKey("point not on P-521"))
    );
    // x + p has the same residue mod p (so it satisfies the curve equation mod
    // p) but is not a canonical coordinate.
    let x_plus_p = add_be(&x, &hex(P521_P));
    assert_eq!(x_plus_p[0], 0);
    let x_plus_p = x_plus_p[1..].to_vec();
    assert_eq!(
        key_err(cose(x_plus_p, y.clone())),
        Err(Error::InvalidKey("point not on P-521"))
    );
    assert_eq!(
        key_err(cose(vec![0xff; 66], y.clone())),
        Err(Error::InvalidKey("point not on P-521"))
    );
    assert_eq!(
        key_err(cose(vec![0; 66], vec![0; 66])),
        Err(Error::InvalidKey("point not on P-521"))
    );
    assert_eq!(
        key_err(cose_with(2, 2, x.clone(), Some(Value::Bytes(y.clone())))),
        Err(Error::InvalidKey("ES512 needs curve P-521"))
    );
    assert_eq!(
        key_err(cose_with(1, 3, x.clone(), Some(Value::Bytes(y.clone())))),
        Err(Error::InvalidKey("ES512 needs an EC2 key"))
    );
    assert_eq!(
        key_err(cose(x[1..].to_vec(), y.clone())),
        Err(Error::InvalidKey("x is not 66 bytes"))
    );
    assert_eq!(
        key_err(cose(x.clone(), y[1..].to_vec())),
        Err(Error::InvalidKey("y is not 66 bytes"))
    );
    let mut y_long = vec![0u8];
    y_long.extend_from_slice(&y);
    assert_eq!(
        key_err(cose(x.clone(), y_long)),
        Err(Error::InvalidKey("y is not 66 bytes"))
    );
    assert_eq!(
        key_err(cose_with(2, 3, x.clone(), Some(Value::Bool(true)))),
        Err(Error::InvalidKey("compressed or missing y"))
    );
    assert_eq!(
        key_err(cose_with(2, 3, x.clone(), None)),
        Err(Error::InvalidKey("compressed or missing y"))
    );

    // Packed self attestation: the statement is signed with the credential key.
    let good_cose = cose(x.clone(), y.clone());
    let ad = auth_data(RP_ID, UP | AT, 0, Some((&id, &good_cose)), None);
    let mut att_msg = ad.clone();
    att_msg.extend_from_slice(&sha256(&create_cd()));
    let att_sig = sign(&att_msg).to_der().as_bytes().to_vec();
    let self_stmt = |sig: Vec<u8>| {
        vec![
            (Value::Text("alg".into()), Value::Integer((-36).into())),
            (Value::Text("sig".into()), Value::Bytes(sig)),
        ]
    };
    let registered = es512
        .verify_registration(
            &reg_with("packed", self_stmt(att_sig.clone()), &good_cose),
            &reg_state(),
        )
        .unwrap();
    assert_eq!(
        registered.attestation_type,
        ciam_webauthn::AttestationType::SelfAttestation
    );
    let mut bad_att_sig = att_sig;
    let last = bad_att_sig.len() - 1;
    bad_att_sig[last] ^= 1;
    assert_eq!(
        es512
            .verify_registration(
                &reg_with("packed", self_stmt(bad_att_sig), &good_cose),
                &reg_state()
            )
            .map(|_| ()),
        Err(Error::AttestationStatement(
            "self attestation signature does not verify"
        ))
    );

    // Assertions: DER signatures verify; our DER encoder matches p521's.
    let ad = auth_data(RP_ID, UP, 1, None, None);
    let mut msg = ad.clone();
    msg.extend_from_slice(&sha256(&get_cd()));
    let signature = sign(&msg);
    let (r, s) = signature.split_bytes();
    let (r, s) = (r.to_vec(), s.to_vec());
    assert_eq!(signature.to_der().as_bytes(), ecdsa_der(&r, &s).as_slice());
    let assertion = |sig: Vec<u8>| AuthenticationResponse {
        raw_id: id.clone(),
        client_data_json: get_cd(),
        authenticator_data: ad.clone(),
        signature: sig,
        user_handle: None,
    };
    let verify = |rp: &RelyingParty, sig: Vec<u8>, record: &CredentialRecord| {
        rp.verify_authentication(&assertion(sig), &auth_state(), record)
            .map(|r| r.new_sign_count)
    };
    assert_eq!(verify(&es512, ecdsa_der(&r, &s), &ok.record), Ok(1));
    for not_offered in [&rp(), &es384] {
        assert_eq!(
            verify(not_offered, ecdsa_der(&r, &s), &ok.record),
            Err(Error::Algorithm(-36))
        );
    }

    // Bad signatures.
    let mut flipped = ecdsa_der(&r, &s);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(verify(&es512, flipped, &ok.record), Err(Error::Signature));
    let other = sign(b"another message").to_der().as_bytes().to_vec();
    assert_eq!(verify(&es512, other, &ok.record), Err(Error::Signature));
    // Fixed-size r || s (not DER, as WebAuthn requires for EC2 keys).
    assert_eq!(
        verify(&es512, signature.to_bytes().to_vec(), &ok.record),
        Err(Error::Signature)
    );
    assert_eq!(
        verify(&es512, Vec::new(), &ok.record),
        Err(Error::Signature)
    );
    let mut trailing = ecdsa_der(&r, &s);
    trailing.push(0);
    assert_eq!(verify(&es512, trailing, &ok.record), Err(Error::Signature));

    // r or s out of [1, n).
    let n = hex(P521_N);
    let zero = vec![0u8; 66];
    let r_plus_n = add_be(&r, &n);
    let s_plus_n = add_be(&s, &n);
    for (what, bad) in [
        ("r = 0", ecdsa_der(&zero, &s)),
        ("s = 0", ecdsa_der(&r, &zero)),
        ("r = s = 0", ecdsa_der(&zero, &zero)),
        ("r = n", ecdsa_der(&n, &s)),
        ("s = n", ecdsa_der(&r, &n)),
        ("r + n", ecdsa_der(&r_plus_n, &s)),
        ("s + n", ecdsa_der(&r, &s_plus_n)),
        ("r = 2^528 - 1", ecdsa_der(&[0xff; 66], &s)),
    ] {
        assert_eq!(
            verify(&es512, bad, &ok.record),
            Err(Error::Signature),
            "{what}"
        );
    }

    // A stored key damaged after registration is not re-checked when read, but
    // p521 refuses the off-curve point before verifying.
    let mut damaged = ok.record.clone();
    let mut y_bad = y.clone();
    y_bad[65] ^= 1;
    damaged.public_key_cose = cose(x.clone(), y_bad);
    assert_eq!(
        verify(&es512, ecdsa_der(&r, &s), &damaged),
        Err(Error::Signature)
    );
    // A stored key with a short coordinate is unreadable.
    let mut short = ok.record.clone();
    short.public_key_cose = cose(x[1..].to_vec(), y.clone());
    assert_eq!(
        verify(&es512, ecdsa_der(&r, &s), &short),
        Err(Error::InvalidKey("stored public key unreadable"))
    );
}

#[test]
fn rsa_key_below_2048_bits_refused() {
    let v = w3c_vector("w3c-l3-packed-rs256");
    let cose = hex(str_of(
        &v["registration"]["expected"],
        "credential_public_key_cose_hex",
    ));
    let Value::Map(mut entries) = ciborium::de::from_reader::<Value, _>(&cose[..]).unwrap() else {
        panic!("map")
    };
    for (k, val) in &mut entries {
        if *k == Value::Integer((-1).into()) {
            let Value::Bytes(n) = val else { panic!("n") };
            n.truncate(128); // 1024-bit modulus
            *n.last_mut().unwrap() |= 1;
        }
    }
    let small = cbor(&Value::Map(entries));
    let ed = Ed::new();
    let resp = RegistrationResponse {
        raw_id: ed.id.clone(),
        client_data_json: create_cd(),
        attestation_object: attestation_object(
            "none",
            vec![],
            &auth_data(RP_ID, UP | AT, 0, Some((&ed.id, &small)), None),
        ),
        transports: vec![],
    };
    assert!(matches!(
        rp().verify_registration(&resp, &reg_state()),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn attestation_statement_checks() {
    let ed = Ed::new();
    let ad = auth_data(RP_ID, UP | AT, 0, Some((&ed.id, &ed.cose())), None);
    let mut msg = ad.clone();
    msg.extend_from_slice(&sha256(&create_cd()));
    let sig = ed.key.sign(&msg).as_ref().to_vec();
    let reg = |fmt: &str, stmt: Vec<(Value, Value)>| RegistrationResponse {
        raw_id: ed.id.clone(),
        client_data_json: create_cd(),
        attestation_object: attestation_object(fmt, stmt, &ad),
        transports: vec![],
    };
    let packed = |alg: i64, sig: Vec<u8>| {
        vec![
            (Value::Text("alg".into()), Value::Integer(alg.into())),
            (Value::Text("sig".into()), Value::Bytes(sig)),
        ]
    };
    // packed self attestation with our Ed25519 key: accepted.
    let ok = rp()
        .verify_registration(&reg("packed", packed(-8, sig.clone())), &reg_state())
        .unwrap();
    assert_eq!(
        ok.attestation_type,
        ciam_webauthn::AttestationType::SelfAttestation
    );
    // alg differs from the credential alg.
    assert!(matches!(
        rp().verify_registration(&reg("packed", packed(-7, sig.clone())), &reg_state()),
        Err(Error::AttestationStatement(_))
    ));
    // One flipped bit in the self-attestation signature.
    let mut bad = sig.clone();
    bad[10] ^= 0x01;
    assert!(matches!(
        rp().verify_registration(&reg("packed", packed(-8, bad)), &reg_state()),
        Err(Error::AttestationStatement(_))
    ));
    // none with a non-empty attStmt.
    assert!(matches!(
        rp().verify_registration(&reg("none", packed(-8, sig.clone())), &reg_state()),
        Err(Error::AttestationStatement(_))
    ));
    // Unknown and case-mismatched formats.
    for fmt in ["Packed", "NONE", "made-up", "TPM", "android-safetynet"] {
        assert_eq!(
            rp().verify_registration(&reg(fmt, vec![]), &reg_state())
                .map(|_| ()),
            Err(Error::UnsupportedFormat(fmt.into()))
        );
    }
    // Supported certificate formats with an empty attStmt.
    for (fmt, err) in [
        ("tpm", "tpm: ver is not \"2.0\""),
        ("android-key", "missing alg"),
        ("apple", "missing x5c"),
    ] {
        assert_eq!(
            rp().verify_registration(&reg(fmt, vec![]), &reg_state())
                .map(|_| ()),
            Err(Error::AttestationStatement(err)),
            "{fmt}"
        );
    }
}

#[test]
fn packed_x5c_bad_signature_refused() {
    // W3C packed ES256 (x5c) registration with one bit of attStmt.sig flipped.
    let v = w3c_vector("w3c-l3-packed-es256");
    let (mut resp, state) = w3c_registration(&v);
    let Value::Map(mut entries) =
        ciborium::de::from_reader::<Value, _>(&resp.attestation_object[..]).unwrap()
    else {
        panic!("map")
    };
    for (k, val) in &mut entries {
        if k.as_text() == Some("attStmt") {
            let Value::Map(stmt) = val else {
                panic!("stmt")
            };
            for (sk, sv) in stmt {
                if sk.as_text() == Some("sig") {
                    let Value::Bytes(s) = sv else { panic!("sig") };
                    let last = s.len() - 1;
                    s[last] ^= 0x01;
                }
            }
        }
    }
    resp.attestation_object = cbor(&Value::Map(entries));
    assert!(matches!(
        rp().verify_registration(&resp, &state),
        Err(Error::AttestationStatement(_))
    ));
}

// ---------------------------------------------------------------- assertion

#[test]
fn bad_signature_refused() {
    // W3C vector assertion with one flipped bit in the signature, for each supported alg.
    for id in [
        "w3c-l3-none-es256",
        "w3c-l3-packed-rs256",
        "w3c-l3-packed-eddsa",
    ] {
        let v = w3c_vector(id);
        let record = w3c_record(&v);
        let (resp, state) = w3c_assertion(&v);
        for bit in [0usize, 9, 100, resp.signature.len() * 8 - 1] {
            let mut r = resp.clone();
            r.signature[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                rp().verify_authentication(&r, &state, &record).map(|_| ()),
                Err(Error::Signature),
                "{id} bit {bit}"
            );
        }
        // Flipped bit in the signed data too.
        let mut r = resp.clone();
        r.authenticator_data[36] ^= 0x01;
        assert!(
            rp().verify_authentication(&r, &state, &record).is_err(),
            "{id}"
        );
    }
}

#[test]
fn counter_regression_refused_or_flagged() {
    assert_eq!(own_assertion(UP, 5, 4, None), Ok(5));
    assert_eq!(own_assertion(UP, 0, 0, None), Ok(0));
    assert_eq!(
        own_assertion(UP, 5, 5, None),
        Err(Error::CounterRegression {
            stored: 5,
            received: 5
        })
    );
    assert_eq!(
        own_assertion(UP, 3, 5, None),
        Err(Error::CounterRegression {
            stored: 5,
            received: 3
        })
    );
    assert_eq!(
        own_assertion(UP, 0, 5, None),
        Err(Error::CounterRegression {
            stored: 5,
            received: 0
        })
    );
    let flag = RelyingParty::builder(RP_ID)
        .origin(ORIGIN)
        .counter_policy(CounterPolicy::Flag)
        .build()
        .unwrap();
    let r = own_assertion_with(&flag, UP, 3, 5, None).unwrap();
    assert!(r.counter_regression);
    assert_eq!(r.new_sign_count, 5);
}

#[test]
fn allow_credentials_mismatch_refused() {
    let v = w3c_vector("w3c-l3-none-es256");
    let record = w3c_record(&v);
    let (resp, mut state) = w3c_assertion(&v);
    state.allow_credentials = Some(vec![vec![1, 2, 3]]);
    assert_eq!(
        rp().verify_authentication(&resp, &state, &record)
            .map(|_| ()),
        Err(Error::NotAllowed)
    );
    state.allow_credentials = Some(vec![vec![1, 2, 3], record.id.clone()]);
    assert!(rp().verify_authentication(&resp, &state, &record).is_ok());
    // Record of another credential, or owned by another user.
    let mut other = record.clone();
    other.id = vec![5; 16];
    assert_eq!(
        rp().verify_authentication(&resp, &state, &other)
            .map(|_| ()),
        Err(Error::NotAllowed)
    );
    state.user_handle = Some(b"someone-else".to_vec());
    assert_eq!(
        rp().verify_authentication(&resp, &state, &record)
            .map(|_| ()),
        Err(Error::NotAllowed)
    );
}

#[test]
fn user_handle_mismatch_refused() {
    let v = w3c_vector("w3c-l3-none-es256");
    let record = w3c_record(&v);
    let (mut resp, mut state) = w3c_assertion(&v);
    resp.user_handle = Some(b"someone-else".to_vec());
    assert_eq!(
        rp().verify_authentication(&resp, &state, &record)
            .map(|_| ()),
        Err(Error::UserHandle)
    );
    // Discoverable flow (no identified user): userHandle is required.
    state.user_handle = None;
    resp.user_handle = None;
    assert_eq!(
        rp().verify_authentication(&resp, &state, &record)
            .map(|_| ()),
        Err(Error::UserHandle)
    );
    resp.user_handle = Some(USER.to_vec());
    assert!(rp().verify_authentication(&resp, &state, &record).is_ok());
}

// ---------------------------------------------------------------- parsing and config

#[test]
fn json_envelope_checks() {
    let v = w3c_vector("w3c-l3-none-es256");
    let reg = &v["registration"];
    let id = b64(str_of(reg, "credential_id_b64url"));
    let good = common::registration_json(
        &id,
        &b64(str_of(reg, "clientDataJSON_b64url")),
        &b64(str_of(reg, "attestationObject_b64url")),
    );
    assert!(RegistrationResponse::from_json(&good).is_ok());
    let wrong_type = good.replace("\"public-key\"", "\"private-key\"");
    assert_eq!(
        RegistrationResponse::from_json(&wrong_type),
        Err(Error::CredentialType)
    );
    assert!(matches!(
        RegistrationResponse::from_json("{"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        AuthenticationResponse::from_json(
            r#"{"id":"AA","rawId":"AA","type":"public-key","response":{}}"#
        ),
        Err(Error::Malformed(_))
    ));
    // Binary members in the standard base64 alphabet (padded or not) decode to
    // the same bytes; one value mixing the two alphabets is refused.
    let parsed = RegistrationResponse::from_json(&good).unwrap();
    let url = str_of(reg, "attestationObject_b64url");
    assert!(url.contains('-') && url.contains('_'));
    let standard = url.replace('-', "+").replace('_', "/");
    let padded = format!("{standard}{}", "=".repeat((4 - standard.len() % 4) % 4));
    for encoded in [standard.as_str(), padded.as_str()] {
        assert_eq!(
            RegistrationResponse::from_json(&good.replace(url, encoded)),
            Ok(parsed.clone())
        );
    }
    let mixed = url.replacen('-', "+", 1);
    assert!(matches!(
        RegistrationResponse::from_json(&good.replace(url, &mixed)),
        Err(Error::Malformed("attestationObject is not base64url"))
    ));
    // rawId that is not the registered credential id in authData.
    let mut resp = RegistrationResponse::from_json(&good).unwrap();
    resp.raw_id[0] ^= 1;
    let (_, state) = w3c_registration(&v);
    assert_eq!(
        rp().verify_registration(&resp, &state).map(|_| ()),
        Err(Error::CredentialType)
    );
}

#[test]
fn builder_validation() {
    assert!(RelyingParty::builder("").origin(ORIGIN).build().is_err());
    assert!(
        RelyingParty::builder("Example.org")
            .origin(ORIGIN)
            .build()
            .is_err()
    );
    assert!(RelyingParty::builder(RP_ID).build().is_err());
    assert!(
        RelyingParty::builder(RP_ID)
            .origin(ORIGIN)
            .algorithms([])
            .build()
            .is_err()
    );
    let rp = rp();
    assert_eq!(rp.rp_id(), RP_ID);
    assert_eq!(
        rp.algorithms(),
        [
            CoseAlgorithm::Es256,
            CoseAlgorithm::EdDsa,
            CoseAlgorithm::Rs256
        ]
    );
}

/// Whether `e` names a step a corrupted attestation object can reach (client
/// data untouched, trust policy `Any`): never an assertion-only error.
fn registration_step_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Malformed(_)
            | Error::CredentialType
            | Error::RpIdHash
            | Error::UserPresence
            | Error::BackupFlags
            | Error::Algorithm(_)
            | Error::InvalidKey(_)
            | Error::CredentialIdTooLong(_)
            | Error::UnsupportedFormat(_)
            | Error::AttestationStatement(_)
    )
}

/// Whether `e` names a step a corrupted assertion can reach.
fn assertion_step_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Malformed(_)
            | Error::ClientDataType
            | Error::Challenge
            | Error::Origin
            | Error::CrossOrigin
            | Error::RpIdHash
            | Error::UserPresence
            | Error::BackupFlags
            | Error::Signature
    )
}

fn position(haystack: &[u8], needle: &[u8]) -> usize {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("present");
    assert!(
        haystack[at + 1..]
            .windows(needle.len())
            .all(|w| w != needle),
        "present once"
    );
    at
}

/// `attStmt.sig` and `authData` of an attestation object.
fn sig_and_auth_data(attestation_object: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let Value::Map(entries) = ciborium::de::from_reader(attestation_object).unwrap() else {
        panic!("map")
    };
    let (mut sig, mut ad) = (None, None);
    for (k, v) in entries {
        match (k.as_text(), v) {
            (Some("authData"), Value::Bytes(b)) => ad = Some(b),
            (Some("attStmt"), Value::Map(stmt)) => {
                for (sk, sv) in stmt {
                    if let (Some("sig"), Value::Bytes(b)) = (sk.as_text(), sv) {
                        sig = Some(b);
                    }
                }
            }
            _ => {}
        }
    }
    (sig.unwrap(), ad.unwrap())
}

/// Every single-byte corruption (XOR 0x5a) and every truncation of W3C
/// registrations and assertions gives a value or a typed error naming a step
/// that the corrupted part reaches, never a panic; and every corruption of a
/// byte covered by a signature is refused.
///
/// Signed regions: for `packed`, all of authData and clientDataJSON (the
/// statement signs `authData || clientDataHash`); for `fido-u2f`, clientDataJSON
/// and the rpIdHash, credential id and key of authData (the U2F message; the
/// flags, counter and AAGUID are not in it, but a flip of the flags byte is
/// refused by the flag checks). `attStmt.sig` itself, every byte of an
/// assertion's authenticatorData, clientDataJSON and signature. Corruptions
/// elsewhere (CBOR framing, certificate fields other than the key, the U2F
/// counter and AAGUID) may be accepted: then the credential id and key are the
/// original ones, and an unsigned U2F counter or AAGUID is reported as received.
#[test]
fn byte_flips_never_panic() {
    for (id, fmt) in [
        ("w3c-l3-packed-es256", "packed"),
        ("w3c-l3-packed-rs256", "packed"),
        ("w3c-l3-fido-u2f-es256", "fido-u2f"),
    ] {
        let v = w3c_vector(id);
        let record = w3c_record(&v);
        let (resp, state) = w3c_registration(&v);
        let (sig, ad) = sig_and_auth_data(&resp.attestation_object);
        let sig_at = position(&resp.attestation_object, &sig);
        let ad_at = position(&resp.attestation_object, &ad);
        assert_eq!(ad[32] & 0x80, 0, "{id}: authData ends with the key");
        let (mut accepted, mut refused) = (0, 0);
        for i in 0..resp.attestation_object.len() {
            let mut r = resp.clone();
            r.attestation_object[i] ^= 0x5a;
            let result = rp().verify_registration(&r, &state);
            let in_sig = (sig_at..sig_at + sig.len()).contains(&i);
            let in_ad = (ad_at..ad_at + ad.len()).contains(&i);
            let unsigned_u2f = fmt == "fido-u2f" && in_ad && (33..53).contains(&(i - ad_at));
            match result {
                Err(e) => {
                    assert!(registration_step_error(&e), "{id} byte {i}: {e:?}");
                    if in_sig {
                        assert!(matches!(e, Error::AttestationStatement(_)), "{id} byte {i}");
                    }
                    refused += 1;
                }
                Ok(reg) => {
                    assert!(
                        !in_sig && (!in_ad || unsigned_u2f),
                        "{id}: flip of signed byte {i} accepted"
                    );
                    assert_eq!(reg.record.id, record.id, "{id} byte {i}");
                    assert_eq!(reg.record.public_key_cose, record.public_key_cose);
                    if unsigned_u2f {
                        assert!(
                            reg.record.sign_count != record.sign_count
                                || reg.record.aaguid != record.aaguid,
                            "{id} byte {i}: the received value is reported"
                        );
                    }
                    accepted += 1;
                }
            }
            r.attestation_object.truncate(i);
            assert!(
                matches!(
                    rp().verify_registration(&r, &state),
                    Err(Error::Malformed(_))
                ),
                "{id}: truncated at {i}"
            );
        }
        assert!(refused > 0 && accepted > 0, "{id}: {refused} / {accepted}");
        // Registration clientDataJSON: hashed into every statement signature.
        for i in 0..resp.client_data_json.len() {
            let mut r = resp.clone();
            r.client_data_json[i] ^= 0x5a;
            let e = rp().verify_registration(&r, &state).unwrap_err();
            assert!(
                !matches!(e, Error::Signature | Error::NotAllowed | Error::UserHandle),
                "{id} clientDataJSON byte {i}: {e:?}"
            );
        }
        let (aresp, astate) = w3c_assertion(&v);
        for i in 0..aresp.authenticator_data.len() {
            let mut r = aresp.clone();
            r.authenticator_data[i] ^= 0x5a;
            let e = rp()
                .verify_authentication(&r, &astate, &record)
                .unwrap_err();
            assert!(assertion_step_error(&e), "{id} authData byte {i}: {e:?}");
            r.authenticator_data.truncate(i);
            assert!(matches!(
                rp().verify_authentication(&r, &astate, &record),
                Err(Error::Malformed(_))
            ));
        }
        for i in 0..aresp.client_data_json.len() {
            let mut r = aresp.clone();
            r.client_data_json[i] ^= 0x5a;
            let e = rp()
                .verify_authentication(&r, &astate, &record)
                .unwrap_err();
            assert!(
                assertion_step_error(&e),
                "{id} clientDataJSON byte {i}: {e:?}"
            );
        }
        for i in 0..aresp.signature.len() {
            let mut r = aresp.clone();
            r.signature[i] ^= 0x5a;
            assert_eq!(
                rp().verify_authentication(&r, &astate, &record),
                Err(Error::Signature),
                "{id} signature byte {i}"
            );
        }
    }
}

/// P-256 group order n (SEC 2 §2.4.2).
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Big-endian unsigned addition.
fn add_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let len = a.len().max(b.len()) + 1;
    let digit = |x: &[u8], i: usize| x.len().checked_sub(i + 1).map_or(0u16, |j| u16::from(x[j]));
    let mut out = vec![0u8; len];
    let mut carry = 0u16;
    for i in 0..len {
        let sum = digit(a, i) + digit(b, i) + carry;
        out[len - 1 - i] = sum.to_be_bytes()[1];
        carry = sum >> 8;
    }
    out
}

/// DER INTEGER of an unsigned big-endian value (minimal, sign byte added).
fn der_uint(v: &[u8]) -> Vec<u8> {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    let mut body = v[start..].to_vec();
    if body.first().is_none_or(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    let mut out = vec![0x02, u8::try_from(body.len()).unwrap()];
    out.extend_from_slice(&body);
    out
}

/// DER SEQUENCE of already encoded elements (long-form length from 128 bytes,
/// as a P-521 signature needs).
fn der_seq(elements: &[Vec<u8>]) -> Vec<u8> {
    let body = elements.concat();
    let len = u8::try_from(body.len()).unwrap();
    let mut out = if len < 0x80 {
        vec![0x30, len]
    } else {
        vec![0x30, 0x81, len]
    };
    out.extend_from_slice(&body);
    out
}

/// ASN.1 DER `Ecdsa-Sig-Value` with unsigned big-endian r and s.
fn ecdsa_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    der_seq(&[der_uint(r), der_uint(s)])
}

/// (r, s) of a DER ECDSA signature, leading zeros stripped.
fn ecdsa_parts(sig: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(sig[0], 0x30);
    let r_len = usize::from(sig[3]);
    let r = &sig[4..4 + r_len];
    let s = &sig[4 + r_len + 2..];
    assert_eq!(usize::from(sig[4 + r_len + 1]), s.len());
    let strip = |v: &[u8]| v[v.iter().position(|b| *b != 0).unwrap_or(v.len())..].to_vec();
    (strip(r), strip(s))
}

/// ES256 signatures must have 1 <= r, s < n (FIPS 186-5 §6.4.2 step 1): r or
/// s equal to 0, to n, to n + 1, to 2^256 - 1, or congruent to the valid
/// value but not reduced (r + n, s + n, which a verifier that only reduces
/// mod n would accept) are all refused; the valid (r, s) re-encoded is
/// accepted. Negative integers (no leading zero before a high bit) too.
#[test]
fn es256_signature_scalars_out_of_range_refused() {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let kp = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = kp.public_key().as_ref();
    let cose = cbor(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer(2.into())),
        (Value::Integer(3.into()), Value::Integer((-7).into())),
        (Value::Integer((-1).into()), Value::Integer(1.into())),
        (
            Value::Integer((-2).into()),
            Value::Bytes(point[1..33].to_vec()),
        ),
        (
            Value::Integer((-3).into()),
            Value::Bytes(point[33..].to_vec()),
        ),
    ]));
    let mut record = Ed::new().record(UP, 0);
    record.public_key_cose = cose;
    record.alg = -7;
    let ad = auth_data(RP_ID, UP, 1, None, None);
    let mut msg = ad.clone();
    msg.extend_from_slice(&sha256(&get_cd()));
    let sig = kp.sign(&rng, &msg).unwrap().as_ref().to_vec();
    let (r, s) = ecdsa_parts(&sig);
    let resp = |signature: Vec<u8>| AuthenticationResponse {
        raw_id: record.id.clone(),
        client_data_json: get_cd(),
        authenticator_data: ad.clone(),
        signature,
        user_handle: None,
    };
    let verify = |signature: Vec<u8>| {
        rp().verify_authentication(&resp(signature), &auth_state(), &record)
            .map(|r| r.new_sign_count)
    };
    assert_eq!(verify(ecdsa_der(&r, &s)), Ok(1));
    let n = P256_N.to_vec();
    let n_plus_1 = add_be(&n, &[1]);
    let max = vec![0xff; 32];
    for (what, bad) in [
        ("r = 0", ecdsa_der(&[0], &s)),
        ("s = 0", ecdsa_der(&r, &[0])),
        ("r = n", ecdsa_der(&n, &s)),
        ("s = n", ecdsa_der(&r, &n)),
        ("r = n + 1", ecdsa_der(&n_plus_1, &s)),
        ("s = n + 1", ecdsa_der(&r, &n_plus_1)),
        ("r = 2^256 - 1", ecdsa_der(&max, &s)),
        ("s = 2^256 - 1", ecdsa_der(&r, &max)),
        ("r + n", ecdsa_der(&add_be(&r, &n), &s)),
        ("s + n", ecdsa_der(&r, &add_be(&s, &n))),
        ("r, s = 0", ecdsa_der(&[0], &[0])),
    ] {
        assert_eq!(verify(bad), Err(Error::Signature), "{what}");
    }
    // Negative r and s: 32 bytes of 0xff without the DER sign byte is -1.
    let mut minus_one = vec![0x02, 0x20];
    minus_one.extend_from_slice(&max);
    assert_eq!(
        verify(der_seq(&[minus_one.clone(), der_uint(&s)])),
        Err(Error::Signature),
        "r = -1"
    );
    assert_eq!(
        verify(der_seq(&[der_uint(&r), minus_one])),
        Err(Error::Signature),
        "s = -1"
    );
}

/// Ed25519 signatures must have S < L (RFC 8032 §5.1.7 step 1): S + L, which
/// is congruent to the valid S, is refused (no signature malleability).
#[test]
fn ed25519_signature_scalar_not_reduced_refused() {
    // L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1), big-endian.
    const L: [u8; 32] = [
        0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x14, 0xde, 0xf9, 0xde, 0xa2, 0xf7, 0x9c, 0xd6, 0x58, 0x12, 0x63, 0x1a, 0x5c, 0xf5,
        0xd3, 0xed,
    ];
    let ed = Ed::new();
    let ad = auth_data(RP_ID, UP, 1, None, None);
    let ok = ed.assertion(&ad, &get_cd());
    assert!(
        rp().verify_authentication(&ok, &auth_state(), &ed.record(UP, 0))
            .is_ok()
    );
    // S is the little-endian second half of the signature.
    let s_be: Vec<u8> = ok.signature[32..].iter().rev().copied().collect();
    let sum = add_be(&s_be, &L);
    assert_eq!(sum[0], 0, "S + L < 2^256");
    let mut bad = ok.clone();
    bad.signature[32..].copy_from_slice(&sum[1..].iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(
        rp().verify_authentication(&bad, &auth_state(), &ed.record(UP, 0)),
        Err(Error::Signature)
    );
}
