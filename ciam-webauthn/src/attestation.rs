//! Attestation statement verification (L3 §8): `none`, `packed`, `fido-u2f`.

use ciborium::Value;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};

use crate::Error;
use crate::auth_data::{AttestedCredential, AuthData};
use crate::config::{CoseAlgorithm, TrustPolicy};
use crate::cose::PublicKey;
use crate::types::AttestationType;

/// Outcome of attestation verification.
pub(crate) struct Verified {
    pub(crate) kind: AttestationType,
    pub(crate) chain: Vec<Vec<u8>>,
    /// DER of the configured anchor the chain verified to (trusted attestation only).
    pub(crate) anchor: Option<Vec<u8>>,
}

/// Signature algorithms accepted on attestation certificate chains.
static CHAIN_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_3072_8192_SHA384,
];

/// Extended key usage policy for attestation chains: any EKU (or none) is
/// accepted, as long as the extension is well-formed. FIDO attestation
/// certificates usually carry no EKU, and when they do it is not a TLS purpose,
/// so `KeyUsage::server_auth()` / `client_auth()` would wrongly refuse them.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// Validates `chain` (leaf first, then intermediates) to one of the configured
/// anchors at `time` (WA-7.1), returning the anchor's DER.
fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &[(Vec<u8>, rustls_pki_types::TrustAnchor<'static>)],
    time: UnixTime,
) -> Result<Vec<u8>, Error> {
    let (leaf, rest) = chain
        .split_first()
        .ok_or(Error::AttestationStatement("empty x5c"))?;
    let leaf = CertificateDer::from(leaf.as_slice());
    let cert = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|_| Error::AttestationStatement("x5c leaf is not a valid certificate"))?;
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let trust_anchors: Vec<rustls_pki_types::TrustAnchor<'static>> =
        anchors.iter().map(|(_, a)| a.clone()).collect();
    let path = cert
        .verify_for_usage(
            CHAIN_ALGS,
            &trust_anchors,
            &intermediates,
            time,
            AnyEku,
            None,
            None,
        )
        .map_err(|e| {
            Error::UntrustedAttestation(match e {
                webpki::Error::CertExpired { .. } => "attestation certificate expired",
                webpki::Error::CertNotValidYet { .. } => "attestation certificate not yet valid",
                webpki::Error::UnknownIssuer => "x5c chain does not reach a configured anchor",
                _ => "x5c chain does not verify",
            })
        })?;
    let used = path.anchor();
    anchors
        .iter()
        .find(|(_, a)| a == used)
        .map(|(der, _)| der.clone())
        .ok_or(Error::UntrustedAttestation("anchor used is not configured"))
}

/// Classifies a verified certificate-based attestation under the trust policy.
fn certified(chain: Vec<Vec<u8>>, trust: &TrustPolicy, time: UnixTime) -> Result<Verified, Error> {
    match trust {
        TrustPolicy::Any => Ok(Verified {
            kind: AttestationType::BasicUnverified,
            chain,
            anchor: None,
        }),
        TrustPolicy::Required(anchors) => {
            let anchor = verify_chain(&chain, anchors, time)?;
            Ok(Verified {
                kind: AttestationType::Basic,
                chain,
                anchor: Some(anchor),
            })
        }
    }
}

/// Classifies a `none` or self attestation under the trust policy.
fn uncertified(kind: AttestationType, trust: &TrustPolicy) -> Result<Verified, Error> {
    match trust {
        TrustPolicy::Any => Ok(Verified {
            kind,
            chain: Vec::new(),
            anchor: None,
        }),
        TrustPolicy::Required(_) => Err(Error::UntrustedAttestation(
            "trusted attestation required, got none or self attestation",
        )),
    }
}

fn stmt_get<'a>(stmt: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    stmt.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn only_keys(stmt: &[(Value, Value)], allowed: &[&str]) -> Result<(), Error> {
    for (k, _) in stmt {
        match k.as_text() {
            Some(t) if allowed.contains(&t) => {}
            _ => return Err(Error::AttestationStatement("unexpected attStmt member")),
        }
    }
    Ok(())
}

fn x5c(stmt: &[(Value, Value)]) -> Result<Option<Vec<Vec<u8>>>, Error> {
    match stmt_get(stmt, "x5c") {
        None => Ok(None),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::Bytes(b) => Ok(b.clone()),
                _ => Err(Error::AttestationStatement("x5c entry is not bytes")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(Error::AttestationStatement("x5c is not a non-empty array")),
    }
}

fn sig(stmt: &[(Value, Value)]) -> Result<&[u8], Error> {
    match stmt_get(stmt, "sig") {
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(Error::AttestationStatement("missing sig")),
    }
}

fn webpki_alg(alg: i64) -> Result<&'static dyn SignatureVerificationAlgorithm, Error> {
    match alg {
        -7 => Ok(webpki::ring::ECDSA_P256_SHA256),
        -35 => Ok(webpki::ring::ECDSA_P384_SHA384),
        -8 => Ok(webpki::ring::ED25519),
        -257 => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA256),
        _ => Err(Error::AttestationStatement(
            "unsupported attestation signature algorithm",
        )),
    }
}

fn verify_with_leaf(
    leaf: &[u8],
    alg: &'static dyn SignatureVerificationAlgorithm,
    msg: &[u8],
    signature: &[u8],
    aaguid: Option<&[u8; 16]>,
) -> Result<(), Error> {
    let der = CertificateDer::from(leaf);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|_| Error::AttestationStatement("x5c leaf is not a valid certificate"))?;
    let facts = crate::der::leaf_facts(leaf).ok_or(Error::AttestationStatement(
        "x5c leaf extensions unreadable",
    ))?;
    if facts.is_ca {
        return Err(Error::AttestationStatement(
            "attestation certificate is a CA",
        ));
    }
    if let (Some(expected), Some(found)) = (aaguid, facts.aaguid.as_deref())
        && found != expected.as_slice()
    {
        return Err(Error::AttestationStatement(
            "certificate AAGUID differs from authenticator data",
        ));
    }
    cert.verify_signature(alg, msg, signature)
        .map_err(|_| Error::AttestationStatement("attestation signature does not verify"))
}

/// Everything an attestation statement is checked against.
pub(crate) struct Input<'a> {
    pub(crate) auth_data_bytes: &'a [u8],
    pub(crate) auth_data: &'a AuthData<'a>,
    pub(crate) cred: &'a AttestedCredential<'a>,
    pub(crate) key: &'a PublicKey,
    pub(crate) cred_alg: CoseAlgorithm,
    pub(crate) client_data_hash: &'a [u8; 32],
    pub(crate) trust: &'a TrustPolicy,
    pub(crate) time: UnixTime,
}

pub(crate) fn verify(
    fmt: &str,
    stmt: &[(Value, Value)],
    input: &Input<'_>,
) -> Result<Verified, Error> {
    let Input {
        auth_data_bytes,
        auth_data,
        cred,
        key,
        cred_alg,
        client_data_hash,
        trust,
        time,
    } = *input;
    match fmt {
        "none" => {
            if !stmt.is_empty() {
                return Err(Error::AttestationStatement(
                    "none requires an empty attStmt",
                ));
            }
            uncertified(AttestationType::None, trust)
        }
        "packed" => {
            if stmt_get(stmt, "ecdaaKeyId").is_some() {
                return Err(Error::UnsupportedFormat("packed/ecdaa".into()));
            }
            only_keys(stmt, &["alg", "sig", "x5c"])?;
            let alg = match stmt_get(stmt, "alg") {
                Some(Value::Integer(i)) => i64::try_from(*i)
                    .map_err(|_| Error::AttestationStatement("alg out of range"))?,
                _ => return Err(Error::AttestationStatement("missing alg")),
            };
            let signature = sig(stmt)?;
            let mut msg = Vec::with_capacity(auth_data_bytes.len() + 32);
            msg.extend_from_slice(auth_data_bytes);
            msg.extend_from_slice(client_data_hash);
            match x5c(stmt)? {
                None => {
                    if alg != cred_alg.cose_id() {
                        return Err(Error::AttestationStatement(
                            "self attestation alg differs from credential alg",
                        ));
                    }
                    key.verify(&msg, signature).map_err(|_| {
                        Error::AttestationStatement("self attestation signature does not verify")
                    })?;
                    uncertified(AttestationType::SelfAttestation, trust)
                }
                Some(chain) => {
                    let leaf = chain
                        .first()
                        .ok_or(Error::AttestationStatement("empty x5c"))?;
                    verify_with_leaf(leaf, webpki_alg(alg)?, &msg, signature, Some(&cred.aaguid))?;
                    certified(chain, trust, time)
                }
            }
        }
        "fido-u2f" => {
            only_keys(stmt, &["sig", "x5c"])?;
            let signature = sig(stmt)?;
            let chain = x5c(stmt)?.ok_or(Error::AttestationStatement("missing x5c"))?;
            let [leaf] = chain.as_slice() else {
                return Err(Error::AttestationStatement(
                    "fido-u2f needs exactly one certificate",
                ));
            };
            let point = key.sec1_uncompressed().ok_or(Error::AttestationStatement(
                "fido-u2f needs a P-256 credential key",
            ))?;
            let mut msg = Vec::with_capacity(1 + 32 + 32 + cred.credential_id.len() + 65);
            msg.push(0x00);
            msg.extend_from_slice(auth_data.rp_id_hash);
            msg.extend_from_slice(client_data_hash);
            msg.extend_from_slice(cred.credential_id);
            msg.extend_from_slice(&point);
            // The L3 procedure does not check the AAGUID (U2F devices send zeros,
            // some send a real one), so neither do we.
            verify_with_leaf(leaf, webpki::ring::ECDSA_P256_SHA256, &msg, signature, None)?;
            certified(chain, trust, time)
        }
        other => Err(Error::UnsupportedFormat(other.to_owned())),
    }
}
