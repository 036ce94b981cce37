//! Known-answer tests for the password hasher, read from the shared vector files.
//!
//! The files live in `../shared/vectors/passwords` beside the workspace (`CIAM_VECTORS_DIR`
//! overrides the `shared/vectors` root, as `scripts/test.sh` sets it); each
//! records its provenance (RFC 9106 §5, RFC 7914 §12, Openwall crypt_blowfish, firebase/scrypt)
//! in its `provenance` field. A missing file fails the test: it never silently skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ciam_core::password::{
    __kat_raw_argon2, Argon2Params, FirebaseScryptKey, PasswordConfig, PasswordError,
    PasswordHasher, PoolConfig,
};
use ciam_core::rng::SystemRandom;
use ciam_core::secret::SecretString;
use serde_json::Value;

fn load(name: &str) -> Value {
    // CIAM_VECTORS_DIR names the root of the shared vectors, as scripts/test.sh sets it.
    let root = std::env::var_os("CIAM_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    let path = root.join("passwords").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("vector file {} missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing in {v}"))
}

fn u32_of(v: &Value, key: &str) -> u32 {
    u32::try_from(v[key].as_u64().unwrap()).unwrap()
}

fn hasher(config: PasswordConfig) -> PasswordHasher {
    let config = config
        .argon2(Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .pool(PoolConfig {
            workers: 2,
            queue: 256,
        });
    PasswordHasher::new(config, Arc::new(SystemRandom::new())).unwrap()
}

/// The password of a vector as our API receives it, or `None` when it is not UTF-8 (our API
/// takes `&str`; those bytes are covered by the unit tests of the legacy module).
fn password(v: &Value) -> Option<SecretString> {
    match v.get("password_hex").and_then(Value::as_str) {
        Some(h) => String::from_utf8(hex(h)).ok().map(SecretString::new),
        None => Some(SecretString::new(str_of(v, "password_utf8"))),
    }
}

/// RFC 9106 §5.1–5.3 (argon2d/i/id v=0x13 with secret K and associated data X) and the
/// reference implementation's v=0x10 kats, via the raw tag function.
#[test]
fn argon2_rfc9106_tags() {
    let file = load("argon2-kat.json");
    let cases = file["rfc9106_and_reference_kats"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for c in cases {
        let tag = __kat_raw_argon2(
            str_of(c, "type"),
            u32_of(c, "version"),
            &hex(str_of(c, "password_hex")),
            &hex(str_of(c, "salt_hex")),
            &hex(str_of(c, "secret_hex")),
            &hex(str_of(c, "associated_data_hex")),
            u32_of(c, "m_cost_kib"),
            u32_of(c, "t_cost"),
            u32_of(c, "parallelism"),
            c["tag_length"].as_u64().unwrap() as usize,
        )
        .unwrap();
        assert_eq!(
            tag,
            hex(str_of(c, "expected_tag_hex")),
            "{}",
            str_of(c, "id")
        );
    }
}

/// argon2-cffi 25.1.0 raw tags and PHC strings (argon2id/i/d, fixed salts): the raw tag
/// matches, and the PHC string verifies through the hasher as an import that needs a rehash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argon2_phc_strings_verify() {
    let file = load("argon2-kat.json");
    let cases = file["deterministic_raw_and_phc"].as_array().unwrap();
    assert!(cases.len() >= 27);
    let h = hasher(PasswordConfig::default());
    for c in cases {
        let pw = str_of(c, "password_utf8");
        let tag = __kat_raw_argon2(
            str_of(c, "type"),
            19,
            pw.as_bytes(),
            str_of(c, "salt_utf8").as_bytes(),
            &[],
            &[],
            u32_of(c, "m_cost_kib"),
            u32_of(c, "t_cost"),
            u32_of(c, "parallelism"),
            c["tag_length"].as_u64().unwrap() as usize,
        )
        .unwrap();
        assert_eq!(tag, hex(str_of(c, "expected_tag_hex")));
        let phc = str_of(c, "expected_phc");
        let ok = h.verify(&SecretString::new(pw), phc).await.unwrap();
        assert!(ok.matched && ok.needs_rehash, "{phc}");
        let wrong = h
            .verify(&SecretString::new(format!("{pw}x")), phc)
            .await
            .unwrap();
        assert!(!wrong.matched, "{phc}");
    }
}

/// Openwall crypt_blowfish, jBCrypt and pyca/bcrypt vectors (see the file's provenance).
///
/// Deliberate deviations from the file's `expected` values, and why:
/// - `reject_or_legacy_2x`: refused with `UnsupportedFormat` ($2x$ is the buggy variant).
/// - `match_due_to_72_byte_truncation`, and bcrypt-004 (98 bytes, "match" for crypt_blowfish):
///   a password over 72 bytes never verifies, because bcrypt saw only its first 72 bytes and
///   accepting it would verify a truncated password (NIST 800-63B). The user resets instead.
/// - `match_only_with_crypt_blowfish_2a_countermeasure`: mismatch, like every non-crypt_blowfish
///   implementation (we compute the plain algorithm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcrypt_vectors() {
    let file = load("bcrypt.json");
    let h = hasher(PasswordConfig::default());
    let mut checked = 0;
    for group in ["published_vectors", "generated", "negative"] {
        for v in file[group].as_array().unwrap() {
            let Some(pw) = password(v) else { continue };
            let stored = str_of(v, "hash");
            let result = h.verify(&pw, stored).await;
            let over_72 = pw.expose().len() > 72;
            match str_of(v, "expected") {
                "match" if over_72 => {
                    assert!(!result.unwrap().matched, "{stored}");
                    // The refusal is deliberate: the 72 bytes bcrypt hashed do match.
                    let prefix = SecretString::new(&pw.expose()[..72]);
                    assert!(h.verify(&prefix, stored).await.unwrap().matched, "{stored}");
                }
                "match" => {
                    let r = result.unwrap();
                    assert!(r.matched && r.needs_rehash, "{stored}");
                }
                "reject_or_legacy_2x" => {
                    assert!(matches!(result, Err(PasswordError::UnsupportedFormat)))
                }
                "match_due_to_72_byte_truncation" => {
                    assert!(!result.unwrap().matched, "{stored}");
                    let prefix = SecretString::new(&pw.expose()[..72]);
                    assert!(h.verify(&prefix, stored).await.unwrap().matched, "{stored}");
                }
                "mismatch" | "match_only_with_crypt_blowfish_2a_countermeasure" => {
                    assert!(!result.unwrap().matched, "{stored}")
                }
                "mismatch_or_error" => match result {
                    Ok(r) => assert!(!r.matched, "{stored}"),
                    Err(PasswordError::UnsupportedFormat) => {}
                    Err(e) => panic!("{stored}: {e}"),
                },
                other => panic!("unknown expectation {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 110, "only {checked} vectors checked");
}

/// RFC 7914 §12 scrypt vectors, stored in passlib's `$scrypt$` form. The 1 GiB vector
/// (N=2^20, r=8) is above the 256 MiB bound and must be refused as `CostTooHigh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrypt_rfc7914_vectors() {
    let file = load("scrypt-rfc7914.json");
    let h = hasher(PasswordConfig::default());
    let mut too_high = 0;
    for c in file["cases"].as_array().unwrap() {
        let n = c["N"].as_u64().unwrap();
        let stored = format!(
            "$scrypt$ln={},r={},p={}${}${}",
            n.trailing_zeros(),
            c["r"],
            c["p"],
            STANDARD_NO_PAD.encode(str_of(c, "salt_utf8")),
            STANDARD_NO_PAD.encode(hex(str_of(c, "expected_dk_hex")))
        );
        let pw = SecretString::new(str_of(c, "password_utf8"));
        let result = h.verify(&pw, &stored).await;
        if c["memory_bytes"].as_u64().unwrap() > 256 * 1024 * 1024 {
            assert!(
                matches!(result, Err(PasswordError::CostTooHigh)),
                "{stored}"
            );
            too_high += 1;
            continue;
        }
        let expect = str_of(c, "expected") == "match";
        assert_eq!(result.unwrap().matched, expect, "{stored}");
    }
    assert_eq!(too_high, 1);
}

/// firebase/scrypt @36feb92b known answers; each project key gets its own hasher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firebase_scrypt_vectors() {
    let file = load("firebase-scrypt.json");
    let mut hashers: HashMap<String, PasswordHasher> = HashMap::new();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for c in cases {
        let key = format!(
            "{}|{}|{}|{}",
            str_of(c, "signer_key_b64"),
            str_of(c, "salt_separator_b64"),
            c["rounds"],
            c["mem_cost"]
        );
        let h = hashers.entry(key).or_insert_with(|| {
            hasher(PasswordConfig::default().firebase(FirebaseScryptKey {
                signer_key: STANDARD.decode(str_of(c, "signer_key_b64")).unwrap(),
                salt_separator: STANDARD.decode(str_of(c, "salt_separator_b64")).unwrap(),
                rounds: u32_of(c, "rounds"),
                mem_cost: u32_of(c, "mem_cost"),
            }))
        });
        let stored = format!(
            "$firebase-scrypt${}${}",
            str_of(c, "salt_b64"),
            str_of(c, "password_hash_b64")
        );
        let r = h
            .verify(&SecretString::new(str_of(c, "password_utf8")), &stored)
            .await
            .unwrap();
        assert_eq!(r.matched, str_of(c, "expected") == "match", "{stored}");
        assert!(r.needs_rehash);
    }
    // Without the project key the format cannot be verified.
    let plain = hasher(PasswordConfig::default());
    let c = &cases[0];
    let stored = format!(
        "$firebase-scrypt${}${}",
        str_of(c, "salt_b64"),
        str_of(c, "password_hash_b64")
    );
    let r = plain
        .verify(&SecretString::new(str_of(c, "password_utf8")), &stored)
        .await;
    assert!(matches!(r, Err(PasswordError::UnsupportedFormat)));
}
