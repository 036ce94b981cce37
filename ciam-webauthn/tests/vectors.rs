#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Known-answer tests against the W3C WebAuthn Level 3 test vectors.
//!
//! Provenance: `shared/vectors/webauthn/w3c-l3-test-vectors.json`, transcribed from
//! W3C Web Authentication Level 3 (Editor's Draft), section "Test Vectors"
//! (#sctn-test-vectors), github.com/w3c/webauthn index.bs at commit
//! 146d0db03cb88e69a8f6f0c3c168221abe73504b; cross-checked with py_webauthn 3.0.1
//! and python-fido2 2.2.1 (see the file's provenance block). The file is read by
//! path; a missing file fails the tests.

mod common;

use ciam_webauthn::{
    AndroidKeyAuthorization, AttestationTrust, AttestationType, AuthenticationResponse,
    AuthenticationState, Challenge, CoseAlgorithm, CredentialRecord, CrossOriginPolicy, Error,
    RegistrationResponse, RegistrationState, RelyingParty,
};
use common::{b64, hex, load_vectors, str_of};

const USER: &[u8] = b"w3c-vector-user";

/// Formats this crate verifies.
const SUPPORTED_FORMATS: &[&str] = &["none", "packed", "fido-u2f", "apple", "android-key", "tpm"];
/// Algorithms the default relying party accepts (ES384 and ES512 are supported
/// but opt-in: see `w3c_es384_vector_accepted_only_when_enabled` and
/// `w3c_es512_vector_verified_when_offered`).
const SUPPORTED_ALGS: &[i64] = &[-7, -8, -257];
/// ES512 (COSE -36): supported, opt-in; its vector has its own test
/// (`w3c_es512_vector_verified_when_offered`), which also checks that a relying
/// party not offering it refuses it with `Error::Algorithm(-36)`.
const ES512: i64 = -36;

fn rp_for(v: &serde_json::Value) -> RelyingParty {
    let mut builder = RelyingParty::builder(str_of(v, "rp_id")).origin(str_of(v, "origin"));
    if v["cross_origin"].as_bool() == Some(true) {
        let top = v["top_origin"].as_str();
        builder = builder.cross_origin(CrossOriginPolicy::Allow {
            top_origins: top.map(str::to_owned).into_iter().collect(),
            allow_missing_top_origin: top.is_none(),
        });
    }
    builder.build().expect("valid RP config")
}

fn registration_response(reg: &serde_json::Value) -> RegistrationResponse {
    let json = common::registration_json(
        &b64(str_of(reg, "credential_id_b64url")),
        &b64(str_of(reg, "clientDataJSON_b64url")),
        &b64(str_of(reg, "attestationObject_b64url")),
    );
    RegistrationResponse::from_json(&json).expect("registration JSON parses")
}

fn authentication_response(auth: &serde_json::Value) -> AuthenticationResponse {
    let json = common::authentication_json(
        &b64(str_of(auth, "credential_id_b64url")),
        &b64(str_of(auth, "clientDataJSON_b64url")),
        &b64(str_of(auth, "authenticatorData_b64url")),
        &b64(str_of(auth, "signature_b64url")),
        None,
    );
    AuthenticationResponse::from_json(&json).expect("authentication JSON parses")
}

fn auth_state(auth: &serde_json::Value) -> AuthenticationState {
    AuthenticationState {
        challenge: Challenge::from_bytes(hex(str_of(auth, "challenge_hex"))).unwrap(),
        allow_credentials: Some(vec![b64(str_of(auth, "credential_id_b64url"))]),
        user_handle: Some(USER.to_vec()),
    }
}

/// W3C L3 §"Test Vectors": every registration in a supported format/algorithm is
/// accepted with the expected credential id, key, AAGUID, counter and flags; then
/// its assertion verifies with the registered key (stored count 0, new count 0).
#[test]
fn w3c_supported_vectors_register_and_authenticate() {
    let file = load_vectors();
    let vectors = file["vectors"].as_array().expect("vectors array");
    assert_eq!(vectors.len(), 15, "the W3C file has 15 vectors");
    let mut passed = Vec::new();
    for v in vectors {
        let id = str_of(v, "id");
        let fmt = str_of(v, "attestation_format");
        let alg = v["credential_alg"].as_i64().unwrap();
        if !SUPPORTED_FORMATS.contains(&fmt) || !SUPPORTED_ALGS.contains(&alg) {
            continue;
        }
        let rp = rp_for(v);
        let reg = &v["registration"];
        let expected = &reg["expected"];
        assert_eq!(str_of(expected, "outcome"), "accept");
        let state = RegistrationState {
            challenge: Challenge::from_bytes(hex(str_of(reg, "challenge_hex"))).unwrap(),
            user_handle: USER.to_vec(),
        };
        let registered = rp
            .verify_registration(&registration_response(reg), &state)
            .unwrap_or_else(|e| panic!("{id}: registration refused: {e:?}"));
        let record = &registered.record;
        assert_eq!(record.id, b64(str_of(reg, "credential_id_b64url")), "{id}");
        assert_eq!(
            record.public_key_cose,
            hex(str_of(expected, "credential_public_key_cose_hex")),
            "{id}"
        );
        assert_eq!(record.alg, alg, "{id}");
        assert_eq!(record.attestation_format, fmt, "{id}");
        assert_eq!(
            u64::from(record.sign_count),
            expected["sign_count"].as_u64().unwrap()
        );
        let flags = &expected["flags"];
        assert_eq!(
            record.backup_eligible,
            flags["BE"].as_bool().unwrap(),
            "{id}"
        );
        assert_eq!(record.backup_state, flags["BS"].as_bool().unwrap(), "{id}");
        assert_eq!(
            record.uv_initialized,
            flags["UV"].as_bool().unwrap(),
            "{id}"
        );
        assert_eq!(record.user_handle, USER);
        if fmt == "fido-u2f" {
            // The file's expected AAGUID is zero, but the authData carries
            // afb3c2ef-c054-df42-5013-d5c88e79c3c1 (see the vector's note); the L3
            // fido-u2f procedure ignores the AAGUID and so do we: we report what
            // the authenticator data says.
            assert_eq!(
                record.aaguid.to_vec(),
                hex("afb3c2efc054df425013d5c88e79c3c1")
            );
        } else {
            assert_eq!(
                record.aaguid.to_vec(),
                hex(str_of(expected, "aaguid_hex")),
                "{id}"
            );
        }
        let expected_type = match (fmt, reg["attestationObject_b64url"].as_str()) {
            ("none", _) => AttestationType::None,
            ("packed", _) if id.contains("self") => AttestationType::SelfAttestation,
            _ => AttestationType::BasicUnverified,
        };
        assert_eq!(registered.attestation_type, expected_type, "{id}");
        // Default trust policy (`AttestationTrust::Any`): no anchor is reported.
        assert_eq!(registered.attestation_anchor, None, "{id}");

        let auth = &v["authentication"];
        let result = rp
            .verify_authentication(&authentication_response(auth), &auth_state(auth), record)
            .unwrap_or_else(|e| panic!("{id}: authentication refused: {e:?}"));
        assert_eq!(
            u64::from(result.new_sign_count),
            auth["expected"]["new_sign_count"].as_u64().unwrap()
        );
        assert!(!result.counter_regression);
        assert_eq!(
            result.backup_state,
            auth["expected"]["flags"]["BS"].as_bool().unwrap(),
            "{id}"
        );
        passed.push(id.to_owned());
    }
    assert_eq!(
        passed,
        [
            "w3c-l3-none-es256",
            "w3c-l3-packed-self-es256",
            "w3c-l3-none-es256-crossOrigin",
            "w3c-l3-none-es256-topOrigin",
            "w3c-l3-none-es256-long-credential-id",
            "w3c-l3-packed-es256",
            "w3c-l3-packed-rs256",
            "w3c-l3-packed-eddsa",
            "w3c-l3-tpm-es256",
            "w3c-l3-android-key-es256",
            "w3c-l3-apple-es256",
            "w3c-l3-fido-u2f-es256",
        ]
    );
}

/// W3C L3 §"Test Vectors": formats and algorithms the default relying party does
/// not accept must be refused with `UnsupportedFormat` / `Algorithm`, never
/// accepted (ES384 is refused here because it is not in the default list; Ed448,
/// optional per the file, is not implemented and is refused cleanly). ES512 is
/// left to `w3c_es512_vector_verified_when_offered`.
#[test]
fn w3c_unsupported_vectors_are_refused_not_accepted() {
    let file = load_vectors();
    let mut refused = Vec::new();
    for v in file["vectors"].as_array().unwrap() {
        let id = str_of(v, "id");
        let fmt = str_of(v, "attestation_format");
        let alg = v["credential_alg"].as_i64().unwrap();
        if (SUPPORTED_FORMATS.contains(&fmt) && SUPPORTED_ALGS.contains(&alg)) || alg == ES512 {
            continue;
        }
        let rp = rp_for(v);
        let reg = &v["registration"];
        let state = RegistrationState {
            challenge: Challenge::from_bytes(hex(str_of(reg, "challenge_hex"))).unwrap(),
            user_handle: USER.to_vec(),
        };
        let err = rp
            .verify_registration(&registration_response(reg), &state)
            .expect_err(id);
        if SUPPORTED_ALGS.contains(&alg) {
            assert_eq!(err, Error::UnsupportedFormat(fmt.to_owned()), "{id}");
        } else {
            assert_eq!(err, Error::Algorithm(alg), "{id}");
        }
        refused.push(id.to_owned());
    }
    assert_eq!(refused, ["w3c-l3-packed-es384", "w3c-l3-packed-ed448"]);
}

/// W3C L3 §"Test Vectors", assertions of the vectors the default relying
/// party does not register: assertions with algorithms outside the default list (ES384 and ES512, opt-in;
/// Ed448, unsupported) are refused by the default relying party with
/// `Error::Algorithm`.
#[test]
fn w3c_assertions_with_expected_keys() {
    let file = load_vectors();
    for v in file["vectors"].as_array().unwrap() {
        let id = str_of(v, "id");
        let fmt = str_of(v, "attestation_format");
        let alg = v["credential_alg"].as_i64().unwrap();
        if SUPPORTED_FORMATS.contains(&fmt) && SUPPORTED_ALGS.contains(&alg) {
            continue;
        }
        let reg = &v["registration"];
        let flags = &reg["expected"]["flags"];
        let record = CredentialRecord {
            id: b64(str_of(reg, "credential_id_b64url")),
            user_handle: USER.to_vec(),
            public_key_cose: hex(str_of(&reg["expected"], "credential_public_key_cose_hex")),
            alg,
            sign_count: 0,
            transports: Vec::new(),
            backup_eligible: flags["BE"].as_bool().unwrap(),
            backup_state: flags["BS"].as_bool().unwrap(),
            uv_initialized: flags["UV"].as_bool().unwrap(),
            attestation_format: fmt.to_owned(),
            aaguid: [0; 16],
        };
        let auth = &v["authentication"];
        let res = rp_for(v).verify_authentication(
            &authentication_response(auth),
            &auth_state(auth),
            &record,
        );
        if SUPPORTED_ALGS.contains(&alg) {
            let ok = res.unwrap_or_else(|e| panic!("{id}: {e:?}"));
            assert_eq!(ok.new_sign_count, 0);
        } else {
            assert_eq!(res, Err(Error::Algorithm(alg)), "{id}");
        }
    }
}

/// W3C L3 §"Test Vectors", `w3c-l3-packed-es384` (packed x5c attestation, ES384
/// credential): refused by the default relying party (ES384 is not in the default
/// algorithm list), accepted for registration and authentication when ES384 is
/// configured.
#[test]
fn w3c_es384_vector_accepted_only_when_enabled() {
    let file = load_vectors();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "w3c-l3-packed-es384")
        .expect("packed-es384 vector");
    assert_eq!(v["credential_alg"].as_i64(), Some(-35));
    let reg = &v["registration"];
    let expected = &reg["expected"];
    let state = RegistrationState {
        challenge: Challenge::from_bytes(hex(str_of(reg, "challenge_hex"))).unwrap(),
        user_handle: USER.to_vec(),
    };
    let auth = &v["authentication"];

    let default_rp = rp_for(v);
    assert_eq!(
        default_rp
            .verify_registration(&registration_response(reg), &state)
            .map(|r| r.attestation_type),
        Err(Error::Algorithm(-35))
    );

    let rp = RelyingParty::builder(str_of(v, "rp_id"))
        .origin(str_of(v, "origin"))
        .algorithms([
            CoseAlgorithm::Es256,
            CoseAlgorithm::EdDsa,
            CoseAlgorithm::Rs256,
            CoseAlgorithm::Es384,
        ])
        .build()
        .unwrap();
    let registered = rp
        .verify_registration(&registration_response(reg), &state)
        .unwrap();
    let record = &registered.record;
    assert_eq!(record.alg, -35);
    assert_eq!(record.attestation_format, "packed");
    assert_eq!(
        record.public_key_cose,
        hex(str_of(expected, "credential_public_key_cose_hex"))
    );
    assert_eq!(record.aaguid.to_vec(), hex(str_of(expected, "aaguid_hex")));
    let flags = &expected["flags"];
    assert_eq!(record.backup_eligible, flags["BE"].as_bool().unwrap());
    assert_eq!(record.backup_state, flags["BS"].as_bool().unwrap());
    assert_eq!(record.uv_initialized, flags["UV"].as_bool().unwrap());
    assert_eq!(
        registered.attestation_type,
        AttestationType::BasicUnverified
    );

    let result = rp
        .verify_authentication(&authentication_response(auth), &auth_state(auth), record)
        .unwrap();
    assert_eq!(
        u64::from(result.new_sign_count),
        auth["expected"]["new_sign_count"].as_u64().unwrap()
    );
    assert_eq!(
        default_rp
            .verify_authentication(&authentication_response(auth), &auth_state(auth), record)
            .map(|_| ()),
        Err(Error::Algorithm(-35))
    );
}

/// W3C L3 §"Test Vectors", `w3c-l3-packed-es512` (ES512 credential, P-521 with
/// SHA-512; packed x5c attestation whose statement is signed ES256 by a leaf
/// issued by the file's test root). With ES512 offered, the registration
/// verifies as Basic to `root_der_hex` (and as BasicUnverified under the default
/// trust policy) with the expected key, AAGUID and flags, and the assertion
/// verifies with the registered key. A relying party that does not offer ES512
/// (the default list, or one with ES384 only) refuses both ceremonies with
/// `Error::Algorithm(-36)`.
#[test]
fn w3c_es512_vector_verified_when_offered() {
    let file = load_vectors();
    let root = hex(str_of(&file, "root_der_hex"));
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "w3c-l3-packed-es512")
        .expect("packed-es512 vector");
    assert_eq!(v["credential_alg"].as_i64(), Some(ES512));
    assert_eq!(
        CoseAlgorithm::from_cose_id(ES512),
        Some(CoseAlgorithm::Es512)
    );
    assert_eq!(CoseAlgorithm::Es512.cose_id(), ES512);
    let reg = &v["registration"];
    let expected = &reg["expected"];
    assert_eq!(str_of(expected, "outcome"), "accept");
    let state = RegistrationState {
        challenge: Challenge::from_bytes(hex(str_of(reg, "challenge_hex"))).unwrap(),
        user_handle: USER.to_vec(),
    };
    let auth = &v["authentication"];
    assert_eq!(str_of(&auth["expected"], "outcome"), "accept");
    let with_algs = |algs: &[CoseAlgorithm], trust: AttestationTrust| {
        RelyingParty::builder(str_of(v, "rp_id"))
            .origin(str_of(v, "origin"))
            .algorithms(algs.iter().copied())
            .attestation_trust(trust)
            .build()
            .unwrap()
    };
    let es512_algs = [
        CoseAlgorithm::Es256,
        CoseAlgorithm::EdDsa,
        CoseAlgorithm::Rs256,
        CoseAlgorithm::Es512,
    ];

    // Offered, trusted attestation required: the x5c chain reaches the W3C root.
    let rp = with_algs(
        &es512_algs,
        AttestationTrust::Required {
            anchors: vec![root.clone()],
        },
    );
    assert!(rp.algorithms().contains(&CoseAlgorithm::Es512));
    let registered = rp
        .verify_registration(&registration_response(reg), &state)
        .unwrap_or_else(|e| panic!("ES512 registration refused: {e:?}"));
    assert_eq!(registered.attestation_type, AttestationType::Basic);
    assert_eq!(
        registered.attestation_anchor.as_deref(),
        Some(root.as_slice())
    );
    assert_eq!(registered.attestation_chain.len(), 1);
    let record = &registered.record;
    assert_eq!(record.alg, ES512);
    assert_eq!(record.attestation_format, "packed");
    assert_eq!(record.id, b64(str_of(reg, "credential_id_b64url")));
    assert_eq!(
        record.public_key_cose,
        hex(str_of(expected, "credential_public_key_cose_hex"))
    );
    assert_eq!(record.aaguid.to_vec(), hex(str_of(expected, "aaguid_hex")));
    assert_eq!(
        u64::from(record.sign_count),
        expected["sign_count"].as_u64().unwrap()
    );
    let flags = &expected["flags"];
    assert_eq!(record.backup_eligible, flags["BE"].as_bool().unwrap());
    assert_eq!(record.backup_state, flags["BS"].as_bool().unwrap());
    assert_eq!(record.uv_initialized, flags["UV"].as_bool().unwrap());
    assert_eq!(record.user_handle, USER);

    let result = rp
        .verify_authentication(&authentication_response(auth), &auth_state(auth), record)
        .unwrap_or_else(|e| panic!("ES512 authentication refused: {e:?}"));
    assert_eq!(
        u64::from(result.new_sign_count),
        auth["expected"]["new_sign_count"].as_u64().unwrap()
    );
    assert!(!result.counter_regression);
    assert_eq!(
        result.backup_state,
        auth["expected"]["flags"]["BS"].as_bool().unwrap()
    );

    // Offered, default trust policy: the same key, chain not validated.
    let any = with_algs(&es512_algs, AttestationTrust::Any);
    let unverified = any
        .verify_registration(&registration_response(reg), &state)
        .unwrap();
    assert_eq!(
        unverified.attestation_type,
        AttestationType::BasicUnverified
    );
    assert_eq!(unverified.attestation_anchor, None);
    assert_eq!(unverified.record.public_key_cose, record.public_key_cose);
    assert!(
        any.verify_authentication(&authentication_response(auth), &auth_state(auth), record)
            .is_ok()
    );

    // Not offered: the default list (which leaves ES512 out) and an opt-in list
    // with ES384 only refuse registration and the stored record alike.
    let default_rp = rp_for(v);
    assert!(!default_rp.algorithms().contains(&CoseAlgorithm::Es512));
    let es384_only = with_algs(
        &[CoseAlgorithm::Es256, CoseAlgorithm::Es384],
        AttestationTrust::Required {
            anchors: vec![root],
        },
    );
    for not_offered in [&default_rp, &es384_only] {
        assert_eq!(
            not_offered
                .verify_registration(&registration_response(reg), &state)
                .map(|r| r.attestation_type),
            Err(Error::Algorithm(ES512))
        );
        assert_eq!(
            not_offered
                .verify_authentication(&authentication_response(auth), &auth_state(auth), record)
                .map(|_| ()),
            Err(Error::Algorithm(ES512))
        );
    }
}

/// W3C L3 §"Test Vectors", `w3c-l3-android-key-es256` under each
/// [`AndroidKeyAuthorization`]. The signature, the certificate key and the
/// attestationChallenge check out; the key description's `softwareEnforced`
/// and `teeEnforced` lists are both empty, so it states neither `origin` nor
/// `purpose`. The file (and the specification that publishes it) says accept,
/// which the default policy does (`UnionIfStated`: an unstated value is not
/// held against the key). The strict readings of L3 §8.4 step 5 refuse it:
/// `TeeEnforced` because teeEnforced states no origin, `Union` because
/// neither list does.
#[test]
fn w3c_android_key_vector_under_each_authorization_policy() {
    let file = load_vectors();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "w3c-l3-android-key-es256")
        .expect("android-key vector");
    let reg = &v["registration"];
    assert_eq!(str_of(&reg["expected"], "outcome"), "accept");
    let state = RegistrationState {
        challenge: Challenge::from_bytes(hex(str_of(reg, "challenge_hex"))).unwrap(),
        user_handle: USER.to_vec(),
    };
    assert_eq!(
        rp_for(v).android_key_authorization(),
        AndroidKeyAuthorization::UnionIfStated,
        "the default policy"
    );
    for (policy, expected) in [
        (
            AndroidKeyAuthorization::UnionIfStated,
            Ok(AttestationType::BasicUnverified),
        ),
        (
            AndroidKeyAuthorization::Union,
            Err(Error::AttestationStatement(
                "android-key: neither authorization list states origin",
            )),
        ),
        (
            AndroidKeyAuthorization::TeeEnforced,
            Err(Error::AttestationStatement(
                "android-key: teeEnforced origin is not KM_ORIGIN_GENERATED",
            )),
        ),
    ] {
        let rp = RelyingParty::builder(str_of(v, "rp_id"))
            .origin(str_of(v, "origin"))
            .android_key_authorization(policy)
            .build()
            .unwrap();
        assert_eq!(
            rp.verify_registration(&registration_response(reg), &state)
                .map(|r| r.attestation_type),
            expected,
            "{policy:?}"
        );
    }
}
