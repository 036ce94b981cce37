#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Negative tests for the `apple` (L3 §8.8), `android-key` (L3 §8.4) and `tpm`
//! (L3 §8.3) attestation formats: each takes a vector that verifies, changes
//! one checked value in its attestation statement, and asserts the specific
//! refusal.
//!
//! Provenance: the W3C L3 "Test Vectors" (`w3c-l3-apple-es256`,
//! `w3c-l3-tpm-es256`; see `tests/vectors.rs`) and the py_webauthn real Android
//! hardware-key registration (see `tests/real_authenticators.rs`).

mod common;

use ciam_webauthn::{
    Challenge, Error, RegisteredCredential, RegistrationResponse, RegistrationState, RelyingParty,
};
use ciborium::Value;
use common::{b64, hex, load_vectors, str_of};

/// A W3C vector's registration, its relying party and state.
fn w3c(id: &str) -> (RelyingParty, RegistrationResponse, RegistrationState) {
    let v = load_vectors()["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("vector {id} missing"));
    let reg = &v["registration"];
    (
        RelyingParty::builder("example.org")
            .origin("https://example.org")
            .build()
            .unwrap(),
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

/// The py_webauthn real Android hardware-key registration.
fn android_real() -> (RelyingParty, RegistrationResponse, RegistrationState) {
    let path = common::vectors_path().with_file_name("py_webauthn-real-authenticators.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["id"]
                == "pywebauthn-registration_response_android_key-verify_attestation_android_key_hardware_authority"
        })
        .cloned()
        .unwrap();
    (
        RelyingParty::builder(str_of(&c, "rp_id"))
            .origin(str_of(&c, "expected_origin"))
            .build()
            .unwrap(),
        RegistrationResponse::from_json(&c["credential"].to_string()).unwrap(),
        RegistrationState {
            challenge: Challenge::from_bytes(b64(str_of(&c, "expected_challenge_b64url"))).unwrap(),
            user_handle: b"user-1".to_vec(),
        },
    )
}

fn register(
    (rp, resp, state): &(RelyingParty, RegistrationResponse, RegistrationState),
) -> Result<RegisteredCredential, Error> {
    rp.verify_registration(resp, state)
}

/// Rewrites the attestation object's `attStmt` with `f`.
fn mutate_stmt(resp: &mut RegistrationResponse, f: impl FnOnce(&mut Vec<(Value, Value)>)) {
    let mut obj: Value = ciborium::from_reader(resp.attestation_object.as_slice()).unwrap();
    let Value::Map(entries) = &mut obj else {
        panic!("attestation object is not a map")
    };
    let (_, Value::Map(stmt)) = entries
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("attStmt"))
        .unwrap()
    else {
        panic!("attStmt is not a map")
    };
    f(stmt);
    let mut out = Vec::new();
    ciborium::into_writer(&obj, &mut out).unwrap();
    resp.attestation_object = out;
}

fn stmt_bytes<'a>(stmt: &'a mut [(Value, Value)], key: &str) -> &'a mut Vec<u8> {
    match stmt.iter_mut().find(|(k, _)| k.as_text() == Some(key)) {
        Some((_, Value::Bytes(b))) => b,
        _ => panic!("no {key} bytes"),
    }
}

fn leaf(stmt: &mut [(Value, Value)]) -> &mut Vec<u8> {
    match stmt.iter_mut().find(|(k, _)| k.as_text() == Some("x5c")) {
        Some((_, Value::Array(certs))) => match certs.first_mut() {
            Some(Value::Bytes(b)) => b,
            _ => panic!("x5c[0] is not bytes"),
        },
        _ => panic!("no x5c"),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern present")
}

/// L3 §8.8 step 4: a credCert nonce extension that does not hold
/// SHA-256(authData || clientDataHash) is refused (the W3C apple vector with one
/// nonce byte flipped inside its certificate).
#[test]
fn apple_nonce_mismatch_refused() {
    let mut ok = w3c("w3c-l3-apple-es256");
    assert!(register(&ok).is_ok());
    mutate_stmt(&mut ok.1, |stmt| {
        let cert = leaf(stmt);
        // OID 1.2.840.113635.100.8.2, OCTET STRING, SEQUENCE, [1], OCTET STRING (32).
        let at = find(cert, &hex("06092a864886f763640802")) + 11;
        assert_eq!(cert[at..at + 8], hex("04263024a1220420"));
        cert[at + 8] ^= 0x01;
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement(
            "apple: nonce does not match authData and clientDataHash"
        ))
    );
}

/// L3 §8.8: an `apple` statement without x5c, or with other members, is refused.
#[test]
fn apple_statement_shape_refused() {
    let mut no_x5c = w3c("w3c-l3-apple-es256");
    mutate_stmt(&mut no_x5c.1, Vec::clear);
    assert_eq!(
        register(&no_x5c).map(|r| r.attestation_type),
        Err(Error::AttestationStatement("missing x5c"))
    );
    let mut extra = w3c("w3c-l3-apple-es256");
    mutate_stmt(&mut extra.1, |stmt| {
        stmt.push((Value::Text("sig".into()), Value::Bytes(vec![0])));
    });
    assert_eq!(
        register(&extra).map(|r| r.attestation_type),
        Err(Error::AttestationStatement("unexpected attStmt member"))
    );
}

/// L3 §8.4 step 3: a key description whose attestationChallenge is not the
/// clientDataHash is refused (real Android hardware key, one challenge byte
/// flipped inside its certificate; the statement signature still verifies).
#[test]
fn android_key_challenge_mismatch_refused() {
    let mut ok = android_real();
    assert!(register(&ok).is_ok());
    let client_data_hash = ring::digest::digest(&ring::digest::SHA256, &ok.1.client_data_json);
    mutate_stmt(&mut ok.1, |stmt| {
        let cert = leaf(stmt);
        let at = find(cert, client_data_hash.as_ref());
        cert[at] ^= 0x01;
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement(
            "android-key: attestationChallenge differs from clientDataHash"
        ))
    );
}

/// L3 §8.4 step 1: a signature that does not verify with the leaf key is refused.
#[test]
fn android_key_bad_signature_refused() {
    let mut ok = android_real();
    mutate_stmt(&mut ok.1, |stmt| {
        let sig = stmt_bytes(stmt, "sig");
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement(
            "attestation signature does not verify"
        ))
    );
}

/// L3 §8.3 step 4: certInfo.extraData must be the hash of attToBeSigned (the W3C
/// tpm vector with one extraData byte flipped; checked before the signature).
#[test]
fn tpm_extra_data_mismatch_refused() {
    let mut ok = w3c("w3c-l3-tpm-es256");
    assert!(register(&ok).is_ok());
    mutate_stmt(&mut ok.1, |stmt| {
        let info = stmt_bytes(stmt, "certInfo");
        // magic (4), type (2), qualifiedSigner (2 + n), extraData (2 + 32).
        let signer_len = usize::from(u16::from_be_bytes([info[6], info[7]]));
        let at = 8 + signer_len;
        assert_eq!(info[at..at + 2], [0x00, 0x20]);
        info[at + 2] ^= 0x01;
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement(
            "tpm: certInfo extraData differs from the hash of attToBeSigned"
        ))
    );
}

/// L3 §8.3 step 2: `ver` must be "2.0".
#[test]
fn tpm_wrong_version_refused() {
    let mut ok = w3c("w3c-l3-tpm-es256");
    mutate_stmt(&mut ok.1, |stmt| {
        for (k, v) in stmt.iter_mut() {
            if k.as_text() == Some("ver") {
                *v = Value::Text("1.2".into());
            }
        }
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement("tpm: ver is not \"2.0\""))
    );
}

/// L3 §8.3 step 3: the pubArea key must be the credential public key.
#[test]
fn tpm_pub_area_key_mismatch_refused() {
    let mut ok = w3c("w3c-l3-tpm-es256");
    mutate_stmt(&mut ok.1, |stmt| {
        let area = stmt_bytes(stmt, "pubArea");
        let last = area.len() - 1;
        area[last] ^= 0x01;
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement(
            "tpm: pubArea key differs from credential public key"
        ))
    );
}

/// L3 §8.3 step 4: the attested name must be the name of pubArea.
#[test]
fn tpm_attested_name_mismatch_refused() {
    let mut ok = w3c("w3c-l3-tpm-es256");
    mutate_stmt(&mut ok.1, |stmt| {
        let info = stmt_bytes(stmt, "certInfo");
        let signer_len = usize::from(u16::from_be_bytes([info[6], info[7]]));
        // extraData (2 + 32), clockInfo (17), firmwareVersion (8), name (2 + 2 + 32).
        let name_hash = 8 + signer_len + 34 + 25 + 4;
        info[name_hash] ^= 0x01;
    });
    assert_eq!(
        register(&ok).map(|r| r.attestation_type),
        Err(Error::AttestationStatement(
            "tpm: certInfo attested name is not the name of pubArea"
        ))
    );
}
