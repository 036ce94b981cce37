//! Shared helpers for the integration tests: locating and decoding the W3C vectors.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use std::path::PathBuf;

/// Path to `w3c-l3-test-vectors.json`: `$CIAM_VECTORS_DIR/webauthn/...`, or
/// `CARGO_MANIFEST_DIR/../../shared/vectors/webauthn/...`. Missing file: panic (test fails).
pub fn vectors_path() -> PathBuf {
    let base = match std::env::var_os("CIAM_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    base.join("webauthn/w3c-l3-test-vectors.json")
}

/// Loads the vectors file; fails the test when it is missing or unreadable.
pub fn load_vectors() -> serde_json::Value {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("W3C vectors file {} is required: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).expect("vectors file is JSON");
    assert!(
        value["provenance"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("Web Authentication Level 3")),
        "unexpected provenance block"
    );
    value
}

pub fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

pub fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key}"))
}

/// Registration JSON in the `PublicKeyCredential.toJSON()` shape.
pub fn registration_json(raw_id: &[u8], client_data: &[u8], attestation_object: &[u8]) -> String {
    serde_json::json!({
        "id": b64e(raw_id),
        "rawId": b64e(raw_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64e(client_data),
            "attestationObject": b64e(attestation_object),
            "transports": ["internal"],
        },
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
    })
    .to_string()
}

/// Authentication JSON in the `PublicKeyCredential.toJSON()` shape.
pub fn authentication_json(
    raw_id: &[u8],
    client_data: &[u8],
    auth_data: &[u8],
    signature: &[u8],
    user_handle: Option<&[u8]>,
) -> String {
    serde_json::json!({
        "id": b64e(raw_id),
        "rawId": b64e(raw_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64e(client_data),
            "authenticatorData": b64e(auth_data),
            "signature": b64e(signature),
            "userHandle": user_handle.map(b64e),
        },
        "clientExtensionResults": {},
    })
    .to_string()
}
