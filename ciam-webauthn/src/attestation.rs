//! Attestation statement verification (L3 §8): `none`, `packed`, `fido-u2f`.

use ciborium::Value;
use rustls_pki_types::CertificateDer;

use crate::Error;
use crate::auth_data::{AttestedCredential, AuthData};
use crate::config::CoseAlgorithm;
use crate::cose::PublicKey;
use crate::types::AttestationType;

/// Outcome of attestation verification.
pub(crate) struct Verified {
    pub(crate) kind: AttestationType,
    pub(crate) chain: Vec<Vec<u8>>,
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

fn webpki_alg(
    alg: i64,
) -> Result<&'static dyn rustls_pki_types::SignatureVerificationAlgorithm, Error> {
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
    alg: &'static dyn rustls_pki_types::SignatureVerificationAlgorithm,
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
    } = *input;
    match fmt {
        "none" => {
            if !stmt.is_empty() {
                return Err(Error::AttestationStatement(
                    "none requires an empty attStmt",
                ));
            }
            Ok(Verified {
                kind: AttestationType::None,
                chain: Vec::new(),
            })
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
                    Ok(Verified {
                        kind: AttestationType::SelfAttestation,
                        chain: Vec::new(),
                    })
                }
                Some(chain) => {
                    let leaf = chain
                        .first()
                        .ok_or(Error::AttestationStatement("empty x5c"))?;
                    verify_with_leaf(leaf, webpki_alg(alg)?, &msg, signature, Some(&cred.aaguid))?;
                    Ok(Verified {
                        kind: AttestationType::BasicUnverified,
                        chain,
                    })
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
            Ok(Verified {
                kind: AttestationType::BasicUnverified,
                chain,
            })
        }
        other => Err(Error::UnsupportedFormat(other.to_owned())),
    }
}
