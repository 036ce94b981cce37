//! Known-answer tests for the signing keys, from published vectors read by path
//! (`CIAM_VECTORS_DIR`, default `../shared/vectors` beside the workspace).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciam_consent::SigningKey;

fn vectors() -> serde_json::Value {
    let dir = std::env::var_os("CIAM_VECTORS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
        PathBuf::from,
    );
    let path = dir.join("jwt/rfc-jws-examples.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// RFC 8037 appendix A.1 (the Ed25519 key), A.3 (its RFC 7638 thumbprint) and A.4 (the JWS of
/// "Example of Ed25519 signing"): Ed25519 is deterministic, so signing the same input must
/// give the RFC's exact signature.
#[test]
fn rfc8037_ed25519_jws() {
    let v = vectors();
    let example = v["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "rfc-8037-a4")
        .expect("the RFC 8037 A.4 example");
    let d: [u8; 32] = URL_SAFE_NO_PAD
        .decode(example["private_jwk"]["d"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = SigningKey::from_seed(&d).unwrap();
    assert_eq!(
        key.public_jwk().x,
        example["verification_key_jwk"]["x"].as_str().unwrap(),
        "RFC 8037 A.1: public key from the private seed"
    );
    // RFC 8037 A.3.
    assert_eq!(
        key.public_jwk().kid,
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let compact = example["compact"].as_str().unwrap();
    let (input, signature) = compact.rsplit_once('.').unwrap();
    assert_eq!(
        key.sign_raw(input.as_bytes()).unwrap(),
        signature,
        "RFC 8037 A.4: the signature"
    );
}
