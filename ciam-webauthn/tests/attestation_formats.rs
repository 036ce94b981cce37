#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Negative tests for the certificate attestation formats: `packed` with x5c
//! (L3 §8.2), `tpm` (L3 §8.3), `android-key` (L3 §8.4), `fido-u2f` (L3 §8.6)
//! and `apple` (L3 §8.8). Each takes a vector that verifies, changes one
//! checked value in its attestation statement, and asserts the specific
//! refusal.
//!
//! Certificates are changed with a small DER tree editor ([`der`]) that
//! recomputes the lengths. The edited certificate's own signature no longer
//! verifies, which does not matter here: under the default trust policy the
//! chain is not validated, and the statement signatures are made by the
//! leaf's key, which the edits leave alone. So each refusal below is the
//! check under test, not a side effect.
//!
//! Provenance: the W3C L3 "Test Vectors" (`w3c-l3-apple-es256`,
//! `w3c-l3-tpm-es256`, `w3c-l3-packed-es256`, `w3c-l3-fido-u2f-es256`; see
//! `tests/vectors.rs`) and py_webauthn's real-authenticator registrations
//! (Android hardware key, YubiKey packed, Surface Pro 4 TPM; see
//! `tests/real_authenticators.rs`).

mod common;

use ciam_webauthn::{
    AndroidKeyAuthorization, Challenge, Error, RegisteredCredential, RegistrationResponse,
    RegistrationState, RelyingParty,
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
    py_webauthn(
        "pywebauthn-registration_response_android_key-verify_attestation_android_key_hardware_authority",
    )
}

/// A py_webauthn real-authenticator registration, its relying party and state.
fn py_webauthn(id: &str) -> (RelyingParty, RegistrationResponse, RegistrationState) {
    let path = common::vectors_path().with_file_name("py_webauthn-real-authenticators.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("case {id} missing"));
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

/// A minimal DER tree editor for test certificates: parse, change, re-encode
/// with recomputed lengths. Test-only code: it panics on input it cannot read.
mod der {
    /// One DER element: its identifier octets and its contents.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Der {
        pub(crate) tag: Vec<u8>,
        pub(crate) body: Body,
    }

    /// Primitive contents, or the children of a constructed element.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Body {
        Prim(Vec<u8>),
        Cons(Vec<Der>),
    }

    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const BOOLEAN: u8 = 0x01;

    impl Der {
        pub(crate) fn prim(tag: u8, contents: &[u8]) -> Self {
            Self {
                tag: vec![tag],
                body: Body::Prim(contents.to_vec()),
            }
        }

        pub(crate) fn cons(tag: &[u8], children: Vec<Der>) -> Self {
            Self {
                tag: tag.to_vec(),
                body: Body::Cons(children),
            }
        }

        /// Parses exactly one element.
        pub(crate) fn parse(input: &[u8]) -> Self {
            let (element, rest) = Self::parse_one(input);
            assert!(rest.is_empty(), "trailing bytes after DER element");
            element
        }

        fn parse_one(input: &[u8]) -> (Self, &[u8]) {
            let mut tag_len = 1;
            if input[0] & 0x1f == 0x1f {
                while input[tag_len] & 0x80 != 0 {
                    tag_len += 1;
                }
                tag_len += 1;
            }
            let (tag, rest) = input.split_at(tag_len);
            let (len, rest) = if rest[0] < 0x80 {
                (usize::from(rest[0]), &rest[1..])
            } else {
                let n = usize::from(rest[0] & 0x7f);
                let len = rest[1..=n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, &rest[1 + n..])
            };
            let (contents, rest) = rest.split_at(len);
            let body = if tag[0] & 0x20 != 0 {
                let mut children = Vec::new();
                let mut input = contents;
                while !input.is_empty() {
                    let (child, after) = Self::parse_one(input);
                    children.push(child);
                    input = after;
                }
                Body::Cons(children)
            } else {
                Body::Prim(contents.to_vec())
            };
            (
                Self {
                    tag: tag.to_vec(),
                    body,
                },
                rest,
            )
        }

        pub(crate) fn encode(&self) -> Vec<u8> {
            let contents = match &self.body {
                Body::Prim(bytes) => bytes.clone(),
                Body::Cons(children) => children.iter().flat_map(Der::encode).collect(),
            };
            let mut out = self.tag.clone();
            let len = contents.len();
            if len < 0x80 {
                out.push(u8::try_from(len).unwrap());
            } else {
                let bytes = len.to_be_bytes();
                let skip = bytes.iter().take_while(|b| **b == 0).count();
                out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap());
                out.extend_from_slice(&bytes[skip..]);
            }
            out.extend_from_slice(&contents);
            out
        }

        pub(crate) fn children(&mut self) -> &mut Vec<Der> {
            match &mut self.body {
                Body::Cons(children) => children,
                Body::Prim(_) => panic!("primitive element has no children"),
            }
        }

        pub(crate) fn contents(&mut self) -> &mut Vec<u8> {
            match &mut self.body {
                Body::Prim(bytes) => bytes,
                Body::Cons(_) => panic!("constructed element has no primitive contents"),
            }
        }
    }

    /// A certificate's TBSCertificate fields.
    pub(crate) fn tbs(cert: &mut Der) -> &mut Vec<Der> {
        cert.children()[0].children()
    }

    /// Index of the subject Name among the TBSCertificate fields (v3 layout:
    /// version, serial, signature, issuer, validity, subject, ...).
    pub(crate) const SUBJECT: usize = 5;

    /// The Extension SEQUENCEs of a certificate.
    pub(crate) fn extensions(cert: &mut Der) -> &mut Vec<Der> {
        tbs(cert)
            .iter_mut()
            .find(|f| f.tag == [0xa3])
            .expect("certificate has extensions")
            .children()[0]
            .children()
    }

    fn oid_of(ext: &Der) -> &[u8] {
        match &ext.body {
            Body::Cons(fields) => match &fields[0].body {
                Body::Prim(oid) => oid,
                Body::Cons(_) => panic!("extension OID"),
            },
            Body::Prim(_) => panic!("extension"),
        }
    }

    /// The extnValue contents (the DER inside the OCTET STRING) of extension `oid`.
    pub(crate) fn extension_value<'a>(cert: &'a mut Der, oid: &[u8]) -> &'a mut Vec<u8> {
        extensions(cert)
            .iter_mut()
            .find(|e| oid_of(e) == oid)
            .unwrap_or_else(|| panic!("no extension {oid:02x?}"))
            .children()
            .last_mut()
            .unwrap()
            .contents()
    }

    /// Rewrites the DER inside extension `oid`'s extnValue.
    pub(crate) fn edit_extension(cert: &mut Der, oid: &[u8], f: impl FnOnce(&mut Der)) {
        let value = extension_value(cert, oid);
        let mut inner = Der::parse(value);
        f(&mut inner);
        *value = inner.encode();
    }

    pub(crate) fn remove_extension(cert: &mut Der, oid: &[u8]) {
        let list = extensions(cert);
        let before = list.len();
        list.retain(|e| oid_of(e) != oid);
        assert_eq!(list.len(), before - 1, "extension {oid:02x?} present once");
    }

    pub(crate) fn add_extension(cert: &mut Der, oid: &[u8], value: &Der) {
        extensions(cert).push(Der::cons(
            &[SEQUENCE],
            vec![
                Der::prim(OID, oid),
                Der::prim(OCTET_STRING, &value.encode()),
            ],
        ));
    }
}

use der::Der;

/// OID 2.5.29.19 basicConstraints.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// OID 2.5.29.37 extKeyUsage.
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// OID 2.5.29.17 subjectAltName.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// OID 1.3.6.1.4.1.45724.1.1.4 id-fido-gen-ce-aaguid.
const OID_FIDO_AAGUID: &[u8] = &[
    0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xe5, 0x1c, 0x01, 0x01, 0x04,
];
/// OID 1.3.6.1.4.1.11129.2.1.17 Android key description.
const OID_ANDROID_KEY_DESCRIPTION: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x01, 0x11];
/// OID 2.23.133.2.2 tcg-at-tpmModel.
const OID_TCG_AT_TPM_MODEL: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x02];
/// OID 1.3.6.1.5.5.7.3.1 id-kp-serverAuth.
const OID_KP_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// OID 2.5.4.3 commonName.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// Rewrites the leaf certificate (x5c[0]) through the DER tree editor.
fn edit_leaf(resp: &mut RegistrationResponse, f: impl FnOnce(&mut Der)) {
    mutate_stmt(resp, |stmt| {
        let cert = leaf(stmt);
        let mut tree = Der::parse(cert);
        assert_eq!(
            tree.encode(),
            *cert,
            "the editor round-trips the certificate"
        );
        f(&mut tree);
        *cert = tree.encode();
    });
}

/// basicConstraints `cA TRUE` (no path length).
fn make_ca(cert: &mut Der) {
    der::edit_extension(cert, OID_BASIC_CONSTRAINTS, |bc| {
        *bc.children() = vec![Der::prim(der::BOOLEAN, &[0xff])];
    });
}

/// The registration's outcome, as a comparable value.
fn outcome(
    case: &(RelyingParty, RegistrationResponse, RegistrationState),
) -> Result<ciam_webauthn::AttestationType, Error> {
    register(case).map(|r| r.attestation_type)
}

// ---------------------------------------------------------------- fido-u2f

/// L3 §8.6 step 6: a fido-u2f signature that does not verify with the
/// certificate key is refused (W3C vector and real YubiKey, one bit flipped).
#[test]
fn fido_u2f_bad_signature_refused() {
    for mut case in [
        w3c("w3c-l3-fido-u2f-es256"),
        py_webauthn(
            "pywebauthn-registration_response_fido_u2f-verify_attestation_from_yubikey_firefox",
        ),
    ] {
        assert!(register(&case).is_ok());
        mutate_stmt(&mut case.1, |stmt| {
            let sig = stmt_bytes(stmt, "sig");
            let last = sig.len() - 1;
            sig[last] ^= 0x01;
        });
        assert_eq!(
            outcome(&case),
            Err(Error::AttestationStatement(
                "attestation signature does not verify"
            ))
        );
    }
}

/// L3 §8.6 step 2: x5c must hold exactly one certificate (here the leaf
/// followed by the W3C test root, a well-formed chain of two).
#[test]
fn fido_u2f_more_than_one_certificate_refused() {
    let mut case = w3c("w3c-l3-fido-u2f-es256");
    let root = hex(str_of(&load_vectors(), "root_der_hex"));
    mutate_stmt(&mut case.1, |stmt| {
        for (k, v) in stmt.iter_mut() {
            if k.as_text() == Some("x5c") {
                let Value::Array(certs) = v else {
                    panic!("x5c")
                };
                certs.push(Value::Bytes(root.clone()));
            }
        }
    });
    assert_eq!(
        outcome(&case),
        Err(Error::AttestationStatement(
            "fido-u2f needs exactly one certificate"
        ))
    );
}

/// L3 §8.6 step 2 and 4: the credential key must be an EC2 P-256 key (the
/// U2F public key format has no room for another). The W3C fido-u2f vector's
/// credential key is replaced, inside its authenticator data, by an Ed25519
/// key and by a P-384 key (allowed by the RP, so the key itself is accepted
/// and the format check is what refuses it).
#[test]
fn fido_u2f_non_p256_credential_key_refused() {
    use ring::signature::KeyPair as _;
    let rng = ring::rand::SystemRandom::new();
    let ed = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = ring::signature::Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap();
    let p384 = &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING;
    let ec = ring::signature::EcdsaKeyPair::generate_pkcs8(p384, &rng).unwrap();
    let ec = ring::signature::EcdsaKeyPair::from_pkcs8(p384, ec.as_ref(), &rng).unwrap();
    let int = |i: i64| Value::Integer(i.into());
    let ed_cose = Value::Map(vec![
        (int(1), int(1)),
        (int(3), int(-8)),
        (int(-1), int(6)),
        (int(-2), Value::Bytes(ed.public_key().as_ref().to_vec())),
    ]);
    let point = ec.public_key().as_ref();
    let p384_cose = Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(-35)),
        (int(-1), int(2)),
        (int(-2), Value::Bytes(point[1..49].to_vec())),
        (int(-3), Value::Bytes(point[49..].to_vec())),
    ]);
    for cose in [ed_cose, p384_cose] {
        let mut case = w3c("w3c-l3-fido-u2f-es256");
        case.0 = RelyingParty::builder("example.org")
            .origin("https://example.org")
            .algorithms([
                ciam_webauthn::CoseAlgorithm::Es256,
                ciam_webauthn::CoseAlgorithm::Es384,
                ciam_webauthn::CoseAlgorithm::EdDsa,
            ])
            .build()
            .unwrap();
        let mut obj: Value = ciborium::from_reader(case.1.attestation_object.as_slice()).unwrap();
        let Value::Map(entries) = &mut obj else {
            panic!("map")
        };
        for (k, v) in entries.iter_mut() {
            if k.as_text() == Some("authData") {
                let Value::Bytes(ad) = v else {
                    panic!("authData")
                };
                assert_eq!(ad[32] & 0x80, 0, "no extensions after the key");
                let id_len = usize::from(u16::from_be_bytes([ad[53], ad[54]]));
                ad.truncate(55 + id_len);
                ciborium::into_writer(&cose, &mut *ad).unwrap();
            }
        }
        case.1.attestation_object.clear();
        ciborium::into_writer(&obj, &mut case.1.attestation_object).unwrap();
        assert_eq!(
            outcome(&case),
            Err(Error::AttestationStatement(
                "fido-u2f needs a P-256 credential key"
            ))
        );
    }
}

// ---------------------------------------------------------------- packed

/// L3 §8.2.1: the attestation certificate's basic constraints must have CA
/// set to false (W3C packed vector and real YubiKey, leaf made a CA).
#[test]
fn packed_x5c_ca_leaf_refused() {
    for mut case in [
        w3c("w3c-l3-packed-es256"),
        py_webauthn(
            "pywebauthn-registration_response_packed-verify_attestation_from_yubikey_firefox",
        ),
    ] {
        assert!(register(&case).is_ok());
        edit_leaf(&mut case.1, make_ca);
        assert_eq!(
            outcome(&case),
            Err(Error::AttestationStatement(
                "attestation certificate is a CA"
            ))
        );
    }
}

/// L3 §8.2 step 2: when the certificate has the id-fido-gen-ce-aaguid
/// extension, its value must equal the AAGUID in authenticator data. The real
/// YubiKey certificate carries it: one byte changed is refused. The W3C leaf
/// has none: adding one with the wrong AAGUID is refused too, with the right
/// one accepted.
#[test]
fn packed_x5c_aaguid_extension_mismatch_refused() {
    let mut yubikey = py_webauthn(
        "pywebauthn-registration_response_packed-verify_attestation_from_yubikey_firefox",
    );
    edit_leaf(&mut yubikey.1, |cert| {
        der::edit_extension(cert, OID_FIDO_AAGUID, |aaguid| {
            let bytes = aaguid.contents();
            assert_eq!(bytes.len(), 16);
            bytes[15] ^= 0x01;
        });
    });
    assert_eq!(
        outcome(&yubikey),
        Err(Error::AttestationStatement(
            "certificate AAGUID differs from authenticator data"
        ))
    );

    let ok = w3c("w3c-l3-packed-es256");
    let aaguid = register(&ok).unwrap().record.aaguid;
    for (value, expected) in [
        (aaguid, Ok(ciam_webauthn::AttestationType::BasicUnverified)),
        (
            [0xee; 16],
            Err(Error::AttestationStatement(
                "certificate AAGUID differs from authenticator data",
            )),
        ),
    ] {
        let mut case = w3c("w3c-l3-packed-es256");
        edit_leaf(&mut case.1, |cert| {
            der::add_extension(cert, OID_FIDO_AAGUID, &Der::prim(der::OCTET_STRING, &value));
        });
        assert_eq!(outcome(&case), expected);
    }
}

// ---------------------------------------------------------------- android-key

/// L3 §8.4 step 4: `allApplications` ([600] NULL) must be absent from both
/// authorization lists (real Android hardware key, the field added to
/// softwareEnforced, then to teeEnforced).
#[test]
fn android_key_all_applications_refused() {
    // KeyDescription: version, securityLevel, keymasterVersion,
    // keymasterSecurityLevel, challenge, uniqueId, softwareEnforced, teeEnforced.
    for list in [6, 7] {
        let mut case = android_real();
        edit_leaf(&mut case.1, |cert| {
            der::edit_extension(cert, OID_ANDROID_KEY_DESCRIPTION, |desc| {
                desc.children()[list]
                    .children()
                    .push(Der::cons(&[0xbf, 0x84, 0x58], vec![Der::prim(0x05, &[])]));
            });
        });
        assert_eq!(
            outcome(&case),
            Err(Error::AttestationStatement(
                "android-key: allApplications is present"
            )),
            "list {list}"
        );
    }
}

/// KeyDescription positions of the two authorization lists.
const SOFTWARE_ENFORCED: usize = 6;
const TEE_ENFORCED: usize = 7;
/// AuthorizationList tags: `origin` [702] and `purpose` [1], both EXPLICIT.
const TAG_ORIGIN: &[u8] = &[0xbf, 0x85, 0x3e];
const TAG_PURPOSE: &[u8] = &[0xa1];
/// Keymaster values (L3 §8.4; Android `keymaster_defs.h`).
const KM_ORIGIN_IMPORTED: u8 = 2;
const KM_PURPOSE_ENCRYPT: u8 = 0;
const KM_PURPOSE_VERIFY: u8 = 3;

fn origin(value: u8) -> Der {
    Der::cons(TAG_ORIGIN, vec![Der::prim(0x02, &[value])])
}

fn purposes(values: &[u8]) -> Der {
    let set = values.iter().map(|v| Der::prim(0x02, &[*v])).collect();
    Der::cons(TAG_PURPOSE, vec![Der::cons(&[der::SET], set)])
}

/// Edits the real Android hardware key's description: `f` gets the
/// softwareEnforced and teeEnforced lists' entries.
fn edit_android_lists(
    case: &mut (RelyingParty, RegistrationResponse, RegistrationState),
    f: impl FnOnce(&mut Vec<Der>, &mut Vec<Der>),
) {
    edit_leaf(&mut case.1, |cert| {
        der::edit_extension(cert, OID_ANDROID_KEY_DESCRIPTION, |desc| {
            let lists = desc.children();
            let mut sw = std::mem::take(lists[SOFTWARE_ENFORCED].children());
            let mut tee = std::mem::take(lists[TEE_ENFORCED].children());
            f(&mut sw, &mut tee);
            *lists[SOFTWARE_ENFORCED].children() = sw;
            *lists[TEE_ENFORCED].children() = tee;
        });
    });
}

/// Removes the entries tagged `tag` from `list` and returns them.
fn take_tagged(list: &mut Vec<Der>, tag: &[u8]) -> Vec<Der> {
    let (taken, kept) = std::mem::take(list).into_iter().partition(|d| d.tag == tag);
    *list = kept;
    taken
}

/// L3 §8.4 step 5 under each [`AndroidKeyAuthorization`]: the real Android
/// hardware key's `origin` and `purpose` entries are changed, moved between
/// the lists or removed, and each policy's outcome is asserted. The real key
/// states both values in teeEnforced, so all three policies accept it as is.
#[test]
fn android_key_authorization_policies() {
    use AndroidKeyAuthorization::{TeeEnforced, Union, UnionIfStated};
    let tee_origin = Err(Error::AttestationStatement(
        "android-key: teeEnforced origin is not KM_ORIGIN_GENERATED",
    ));
    let tee_purpose = Err(Error::AttestationStatement(
        "android-key: teeEnforced purpose lacks KM_PURPOSE_SIGN",
    ));
    let bad_origin = Err(Error::AttestationStatement(
        "android-key: origin is not KM_ORIGIN_GENERATED",
    ));
    let bad_purpose = Err(Error::AttestationStatement(
        "android-key: purpose lacks KM_PURPOSE_SIGN",
    ));
    let no_origin = Err(Error::AttestationStatement(
        "android-key: neither authorization list states origin",
    ));
    let no_purpose = Err(Error::AttestationStatement(
        "android-key: neither authorization list states purpose",
    ));
    let ok = Ok(ciam_webauthn::AttestationType::BasicUnverified);
    type Edit = fn(&mut Vec<Der>, &mut Vec<Der>);
    let cases: [(&str, Edit, [&Result<_, Error>; 3]); 7] = [
        ("unchanged", |_, _| {}, [&ok, &ok, &ok]),
        (
            "teeEnforced origin IMPORTED",
            |_, tee| {
                take_tagged(tee, TAG_ORIGIN);
                tee.push(origin(KM_ORIGIN_IMPORTED));
            },
            [&tee_origin, &bad_origin, &bad_origin],
        ),
        (
            "softwareEnforced contradicts with origin IMPORTED",
            |sw, _| {
                take_tagged(sw, TAG_ORIGIN);
                sw.push(origin(KM_ORIGIN_IMPORTED));
            },
            [&ok, &bad_origin, &bad_origin],
        ),
        (
            "origin and purpose only software-enforced",
            |sw, tee| {
                take_tagged(sw, TAG_ORIGIN);
                take_tagged(sw, TAG_PURPOSE);
                sw.extend(take_tagged(tee, TAG_ORIGIN));
                sw.extend(take_tagged(tee, TAG_PURPOSE));
            },
            [&tee_origin, &ok, &ok],
        ),
        (
            "purpose without SIGN",
            |sw, tee| {
                take_tagged(sw, TAG_PURPOSE);
                take_tagged(tee, TAG_PURPOSE);
                tee.push(purposes(&[KM_PURPOSE_ENCRYPT, KM_PURPOSE_VERIFY]));
            },
            [&tee_purpose, &bad_purpose, &bad_purpose],
        ),
        (
            "purpose stated nowhere",
            |sw, tee| {
                take_tagged(sw, TAG_PURPOSE);
                take_tagged(tee, TAG_PURPOSE);
            },
            [&tee_purpose, &no_purpose, &ok],
        ),
        (
            "origin and purpose stated nowhere",
            |sw, tee| {
                for list in [sw, tee] {
                    take_tagged(list, TAG_ORIGIN);
                    take_tagged(list, TAG_PURPOSE);
                }
            },
            [&tee_origin, &no_origin, &ok],
        ),
    ];
    for (name, edit, expected) in cases {
        for (policy, expected) in [TeeEnforced, Union, UnionIfStated]
            .into_iter()
            .zip(expected)
        {
            let mut case = android_real();
            case.0 = RelyingParty::builder(case.0.rp_id())
                .origin(case.0.origins()[0].clone())
                .android_key_authorization(policy)
                .build()
                .unwrap();
            assert_eq!(case.0.android_key_authorization(), policy);
            edit_android_lists(&mut case, edit);
            assert_eq!(&outcome(&case), expected, "{name} under {policy:?}");
        }
    }
}

// ---------------------------------------------------------------- tpm AIK certificate

/// The W3C tpm vector (ES256 AIK, verified through webpki) and the real
/// Surface Pro 4 (RSA AIK, RS1 statement signature, verified with ring
/// directly): the two paths to the AIK certificate checks.
fn tpm_cases() -> [(RelyingParty, RegistrationResponse, RegistrationState); 2] {
    [
        w3c("w3c-l3-tpm-es256"),
        py_webauthn("pywebauthn-registration_response_tpm-verify_attestation_surface_pro_4"),
    ]
}

/// Applies `edit` to each TPM case's AIK certificate and asserts `expected`.
fn tpm_aik_refused(edit: impl Fn(&mut Der), expected: &'static str) {
    for mut case in tpm_cases() {
        assert!(register(&case).is_ok());
        edit_leaf(&mut case.1, &edit);
        assert_eq!(outcome(&case), Err(Error::AttestationStatement(expected)));
    }
}

/// L3 §8.3.1: the AIK certificate's extended key usage must contain
/// tcg-kp-AIKCertificate (2.23.133.8.3): replaced by serverAuth, or removed.
#[test]
fn tpm_aik_eku_refused() {
    tpm_aik_refused(
        |cert| {
            der::edit_extension(cert, OID_EXT_KEY_USAGE, |eku| {
                *eku.children() = vec![Der::prim(der::OID, OID_KP_SERVER_AUTH)];
            });
        },
        "tpm: aikCert extended key usage lacks tcg-kp-AIKCertificate",
    );
    tpm_aik_refused(
        |cert| der::remove_extension(cert, OID_EXT_KEY_USAGE),
        "tpm: aikCert has no extended key usage",
    );
}

/// L3 §8.3.1: the AIK certificate's subject must be empty.
#[test]
fn tpm_aik_non_empty_subject_refused() {
    tpm_aik_refused(
        |cert| {
            let subject = &mut der::tbs(cert)[der::SUBJECT];
            assert_eq!(*subject, Der::cons(&[der::SEQUENCE], vec![]));
            subject.children().push(Der::cons(
                &[der::SET],
                vec![Der::cons(
                    &[der::SEQUENCE],
                    vec![
                        Der::prim(der::OID, OID_COMMON_NAME),
                        Der::prim(0x0c, b"TPM AIK"),
                    ],
                )],
            ));
        },
        "tpm: aikCert subject is not empty",
    );
}

/// L3 §8.3.1: the subject alternative name must be present and name the TPM
/// manufacturer, model and version: removed, or with the model dropped.
#[test]
fn tpm_aik_subject_alternative_name_refused() {
    tpm_aik_refused(
        |cert| der::remove_extension(cert, OID_SUBJECT_ALT_NAME),
        "tpm: aikCert has no subject alternative name",
    );
    tpm_aik_refused(
        |cert| {
            der::edit_extension(cert, OID_SUBJECT_ALT_NAME, |san| {
                // GeneralNames { [4] directoryName { RDNSequence } }: drop the
                // AttributeTypeAndValue whose type is tcg-at-tpmModel, wherever
                // it sits (one RDN with three values, or three RDNs).
                let rdns = san.children()[0].children()[0].children();
                for rdn in rdns.iter_mut() {
                    rdn.children().retain(|atv| {
                        atv.clone().children()[0] != Der::prim(der::OID, OID_TCG_AT_TPM_MODEL)
                    });
                }
                rdns.retain(|rdn| !rdn.clone().children().is_empty());
            });
        },
        "tpm: aikCert subject alternative name lacks TPM manufacturer, model or version",
    );
}

/// L3 §8.3.1: the AIK certificate's basic constraints must have CA false.
#[test]
fn tpm_aik_ca_refused() {
    tpm_aik_refused(make_ca, "attestation certificate is a CA");
}
