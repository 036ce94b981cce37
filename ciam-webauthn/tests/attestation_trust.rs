#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Attestation trust policy (SECURITY-CHECKLIST WA-7.1 trust, ASVS 6.7.1).
//!
//! Provenance: `shared/vectors/webauthn/w3c-l3-test-vectors.json` (see
//! `tests/vectors.rs`): its `root_der_hex` is the W3C L3 "Test Vectors" test
//! attestation root CA ("WebAuthn test vectors / W3C / Authenticator Attestation
//! CA"), and the file's usage note says to configure it as the only trust anchor.
//! Root and leaf certificates are valid from 2024-01-01T00:00:00Z to
//! 3024-01-01T00:00:00Z (read with `openssl x509 -noout -dates`). The "wrong
//! anchor" is a real certificate from the same file: the x5c leaf of the
//! `w3c-l3-packed-es256` vector (its subject is not the issuer of any leaf).

mod common;

use std::time::Duration;

use ciam_webauthn::{
    AttestationTrust, AttestationType, Challenge, CoseAlgorithm, Error, RegisteredCredential,
    RegistrationResponse, RegistrationState, RelyingParty, UnixTime,
};
use common::{b64, hex, load_vectors, str_of};

/// 2025-06-01T00:00:00Z, inside every certificate's validity period.
const IN_VALIDITY: u64 = 1_748_736_000;
/// 3024-01-02T00:00:00Z, one day after every certificate's notAfter.
const AFTER_EXPIRY: u64 = 33_261_062_400;
/// 2023-12-31T00:00:00Z, one day before every certificate's notBefore.
const BEFORE_VALIDITY: u64 = 1_703_980_800;

/// The x5c vectors this crate verifies with the default algorithm list.
const X5C_VECTORS: &[&str] = &[
    "w3c-l3-packed-es256",
    "w3c-l3-packed-rs256",
    "w3c-l3-packed-eddsa",
    "w3c-l3-fido-u2f-es256",
    "w3c-l3-apple-es256",
    "w3c-l3-tpm-es256",
    "w3c-l3-android-key-es256",
];

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

fn root() -> Vec<u8> {
    hex(str_of(&load_vectors(), "root_der_hex"))
}

fn vector(id: &str) -> serde_json::Value {
    load_vectors()["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("vector {id} missing"))
}

fn registration(v: &serde_json::Value) -> (RegistrationResponse, RegistrationState) {
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
            user_handle: b"user-1".to_vec(),
        },
    )
}

fn rp(trust: AttestationTrust, algorithms: &[CoseAlgorithm]) -> RelyingParty {
    RelyingParty::builder("example.org")
        .origin("https://example.org")
        .algorithms(algorithms.iter().copied())
        .attestation_trust(trust)
        .build()
        .unwrap()
}

fn required(anchors: Vec<Vec<u8>>) -> RelyingParty {
    rp(
        AttestationTrust::Required { anchors },
        &[
            CoseAlgorithm::Es256,
            CoseAlgorithm::EdDsa,
            CoseAlgorithm::Rs256,
        ],
    )
}

fn register(
    rp: &RelyingParty,
    id: &str,
    time: u64,
) -> Result<RegisteredCredential, ciam_webauthn::Error> {
    let (resp, state) = registration(&vector(id));
    rp.verify_registration_at(&resp, &state, at(time))
}

/// A real certificate from the vectors file that is not the test root.
fn wrong_anchor() -> Vec<u8> {
    let default_rp = RelyingParty::builder("example.org")
        .origin("https://example.org")
        .build()
        .unwrap();
    let reg = register(&default_rp, "w3c-l3-packed-es256", IN_VALIDITY).unwrap();
    assert_eq!(reg.attestation_type, AttestationType::BasicUnverified);
    assert_eq!(reg.attestation_anchor, None);
    reg.attestation_chain[0].clone()
}

/// W3C L3 test vectors: packed x5c (ES256, RS256, EdDSA) and fido-u2f verify as
/// Basic under `Required` with the spec's test root, which is reported as the anchor.
#[test]
fn x5c_vectors_verify_to_the_w3c_root() {
    let root = root();
    let rp = required(vec![wrong_anchor(), root.clone()]);
    for id in X5C_VECTORS {
        let reg = register(&rp, id, IN_VALIDITY).unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(reg.attestation_type, AttestationType::Basic, "{id}");
        assert_eq!(
            reg.attestation_anchor.as_deref(),
            Some(root.as_slice()),
            "{id}"
        );
        assert_eq!(reg.attestation_chain.len(), 1, "{id}");
    }
    // The system-clock entry point (the certificates are valid until 3024).
    let (resp, state) = registration(&vector("w3c-l3-packed-es256"));
    let reg = rp.verify_registration(&resp, &state).unwrap();
    assert_eq!(reg.attestation_type, AttestationType::Basic);
}

/// W3C `w3c-l3-packed-es384` (ES384 credential, opt-in algorithm) verifies as
/// Basic under `Required` with the test root when ES384 is allowed.
#[test]
fn es384_vector_verifies_to_the_w3c_root() {
    let root = root();
    let trusted = rp(
        AttestationTrust::Required {
            anchors: vec![root.clone()],
        },
        &[CoseAlgorithm::Es256, CoseAlgorithm::Es384],
    );
    let reg = register(&trusted, "w3c-l3-packed-es384", IN_VALIDITY).unwrap();
    assert_eq!(reg.attestation_type, AttestationType::Basic);
    assert_eq!(reg.attestation_anchor.as_deref(), Some(root.as_slice()));
    let wrong = rp(
        AttestationTrust::Required {
            anchors: vec![wrong_anchor()],
        },
        &[CoseAlgorithm::Es384],
    );
    assert!(matches!(
        register(&wrong, "w3c-l3-packed-es384", IN_VALIDITY),
        Err(Error::UntrustedAttestation(_))
    ));
}

/// The same vectors are refused when the only anchor is another certificate.
#[test]
fn x5c_vectors_refused_with_another_anchor() {
    let rp = required(vec![wrong_anchor()]);
    for id in X5C_VECTORS {
        assert_eq!(
            register(&rp, id, IN_VALIDITY).map(|r| r.attestation_type),
            Err(Error::UntrustedAttestation(
                "x5c chain does not reach a configured anchor"
            )),
            "{id}"
        );
    }
}

/// The same vectors are refused outside the certificates' validity period.
#[test]
fn x5c_vectors_refused_outside_validity() {
    let rp = required(vec![root()]);
    for id in X5C_VECTORS {
        assert_eq!(
            register(&rp, id, AFTER_EXPIRY).map(|r| r.attestation_type),
            Err(Error::UntrustedAttestation(
                "attestation certificate expired"
            )),
            "{id}"
        );
        assert_eq!(
            register(&rp, id, BEFORE_VALIDITY).map(|r| r.attestation_type),
            Err(Error::UntrustedAttestation(
                "attestation certificate not yet valid"
            )),
            "{id}"
        );
    }
}

/// `none` and self attestation are refused under `Required`, accepted under `Any`.
#[test]
fn none_and_self_refused_when_trust_required() {
    let rp = required(vec![root()]);
    let default_rp = RelyingParty::builder("example.org")
        .origin("https://example.org")
        .build()
        .unwrap();
    for (id, kind) in [
        ("w3c-l3-none-es256", AttestationType::None),
        ("w3c-l3-packed-self-es256", AttestationType::SelfAttestation),
    ] {
        assert_eq!(
            register(&rp, id, IN_VALIDITY).map(|r| r.attestation_type),
            Err(Error::UntrustedAttestation(
                "trusted attestation required, got none or self attestation"
            )),
            "{id}"
        );
        let reg = register(&default_rp, id, IN_VALIDITY).unwrap();
        assert_eq!(reg.attestation_type, kind, "{id}");
        assert_eq!(reg.attestation_anchor, None, "{id}");
    }
}

/// Anchors come from configuration and are validated when the RP is built.
#[test]
fn trust_anchor_configuration_validated() {
    let build = |anchors: Vec<Vec<u8>>| {
        RelyingParty::builder("example.org")
            .origin("https://example.org")
            .attestation_trust(AttestationTrust::Required { anchors })
            .build()
            .map(|_| ())
    };
    assert!(matches!(build(vec![]), Err(Error::InvalidConfig(_))));
    assert!(matches!(
        build(vec![b"not a certificate".to_vec()]),
        Err(Error::InvalidConfig(_))
    ));
    let mut truncated = root();
    truncated.pop();
    assert!(matches!(
        build(vec![truncated]),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(build(vec![root()]), Ok(()));
    assert_eq!(AttestationTrust::default(), AttestationTrust::Any);
}
