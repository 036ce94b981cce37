#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Real-authenticator registrations in the `apple`, `android-key` and `tpm`
//! formats.
//!
//! Provenance: `shared/vectors/webauthn/py_webauthn-real-authenticators.json`,
//! extracted from the duo-labs/py_webauthn test suite at commit
//! b4bf63ffe3332b70414cb7bf4a892ee6877e9f7f and cross-checked with PyPI webauthn
//! 3.0.1 (see the file's provenance block). The vendor roots are not in the file,
//! so these run under the default trust policy (`AttestationTrust::Any`): the
//! statement is fully verified, the chain is not; the verification time
//! (`verify_at_time` in the file) is passed anyway.

mod common;

use ciam_webauthn::{
    AttestationType, Challenge, Error, RegistrationResponse, RegistrationState, RelyingParty,
    UnixTime,
};
use common::{b64, str_of};

fn load() -> serde_json::Value {
    let path = common::vectors_path().with_file_name("py_webauthn-real-authenticators.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vectors file {} is required: {e}", path.display()));
    serde_json::from_str(&text).expect("vectors file is JSON")
}

fn case(id: &str) -> serde_json::Value {
    load()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("case {id} missing"))
}

/// Parses an RFC 3339 `YYYY-MM-DDT00:00:00Z` date (all the file uses).
fn midnight(s: &str) -> UnixTime {
    let (y, m, d): (i64, i64, i64) = (
        s[0..4].parse().unwrap(),
        s[5..7].parse().unwrap(),
        s[8..10].parse().unwrap(),
    );
    assert_eq!(&s[10..], "T00:00:00Z");
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(days * 86_400).unwrap(),
    ))
}

fn rp_for(c: &serde_json::Value) -> RelyingParty {
    RelyingParty::builder(str_of(c, "rp_id"))
        .origin(str_of(c, "expected_origin"))
        .build()
        .unwrap()
}

fn register(c: &serde_json::Value) -> Result<ciam_webauthn::RegisteredCredential, Error> {
    // The Windows Hello TPM cases carry their attestationObject in the standard
    // base64 alphabet (py_webauthn accepts both); this crate takes base64url as
    // WebAuthn's JSON serialization says, so the test converts it.
    let mut credential = c["credential"].clone();
    let att = &mut credential["response"]["attestationObject"];
    *att = att
        .as_str()
        .unwrap()
        .replace('+', "-")
        .replace('/', "_")
        .into();
    let response = RegistrationResponse::from_json(&credential.to_string())
        .unwrap_or_else(|e| panic!("registration JSON: {e:?}"));
    let state = RegistrationState {
        challenge: Challenge::from_bytes(b64(str_of(c, "expected_challenge_b64url"))).unwrap(),
        user_handle: b"py-webauthn-user".to_vec(),
    };
    match c["verify_at_time"].as_str() {
        Some(t) => rp_for(c).verify_registration_at(&response, &state, midnight(t)),
        None => rp_for(c).verify_registration(&response, &state),
    }
}

/// The real-authenticator registrations in these formats, with their format.
const CASES: &[(&str, &str)] = &[
    (
        "pywebauthn-registration_response_android_key-verify_attestation_android_key_hardware_authority",
        "android-key",
    ),
    (
        "pywebauthn-registration_response_apple-verify_attestation_apple_passkey",
        "apple",
    ),
    (
        "pywebauthn-registration_response_tpm-verify_attestation_surface_pro_4",
        "tpm",
    ),
    (
        "pywebauthn-registration_response_tpm-verify_attestation_dell_xps_13",
        "tpm",
    ),
    (
        "pywebauthn-registration_response_tpm-verify_attestation_lenovo_carbon_x1",
        "tpm",
    ),
    (
        "pywebauthn-registration_response_tpm-verify_tpm_with_ecc_public_area_type",
        "tpm",
    ),
];

/// py_webauthn real authenticators: Android hardware-backed key (pinned time
/// 2025-01-08), Apple passkey (pinned time 2021-09-01), Windows Hello TPMs
/// (Surface Pro 4, Dell XPS 13, Lenovo Carbon X1; RSA keys, RS1 statement
/// signatures) and a TPM with an ECC pubArea: each registers with the expected
/// format, credential id, key and sign count.
#[test]
fn real_authenticator_registrations_verify() {
    let file = load();
    let in_scope: Vec<&str> = file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            ["apple", "android-key", "tpm"].contains(&c["expected_fmt"].as_str().unwrap_or(""))
        })
        .map(|c| str_of(c, "id"))
        .collect();
    assert_eq!(
        in_scope,
        CASES.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "every case in these formats is listed"
    );
    for (id, fmt) in CASES {
        let c = case(id);
        assert_eq!(str_of(&c, "expected"), "accept", "{id}");
        assert_eq!(str_of(&c, "expected_fmt"), *fmt, "{id}");
        let registered = register(&c).unwrap_or_else(|e| panic!("{id}: {e:?}"));
        let record = &registered.record;
        assert_eq!(record.attestation_format, *fmt, "{id}");
        assert_eq!(
            record.id,
            b64(str_of(&c, "expected_credential_id_b64url")),
            "{id}"
        );
        assert_eq!(
            record.public_key_cose,
            b64(str_of(&c, "expected_credential_public_key_cose_b64url")),
            "{id}"
        );
        assert_eq!(
            u64::from(record.sign_count),
            c["expected_sign_count"].as_u64().unwrap(),
            "{id}"
        );
        assert_eq!(
            registered.attestation_type,
            AttestationType::BasicUnverified,
            "{id}"
        );
        assert!(!registered.attestation_chain.is_empty(), "{id}");
    }
}
