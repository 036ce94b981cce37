//! Attestation statement verification (L3 §8): `none`, `packed`, `fido-u2f`,
//! `apple`, `android-key`, `tpm`.

use ciborium::Value;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};

use crate::Error;
use crate::auth_data::{AttestedCredential, AuthData};
use crate::config::{AndroidKeyAuthorization, CoseAlgorithm, TrustPolicy};
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

/// The leaf's public key must be the credential public key.
fn leaf_key_matches(leaf: &[u8], key: &PublicKey, what: &'static str) -> Result<(), Error> {
    let parts = crate::der::cert_parts(leaf).ok_or(Error::AttestationStatement(
        "x5c leaf is not a valid certificate",
    ))?;
    let spki = crate::der::spki_key(parts.spki).ok_or(Error::AttestationStatement(
        "x5c leaf public key unreadable",
    ))?;
    if key.matches_spki(&spki) {
        Ok(())
    } else {
        Err(Error::AttestationStatement(what))
    }
}

fn stmt_alg(stmt: &[(Value, Value)]) -> Result<i64, Error> {
    match stmt_get(stmt, "alg") {
        Some(Value::Integer(i)) => {
            i64::try_from(*i).map_err(|_| Error::AttestationStatement("alg out of range"))
        }
        _ => Err(Error::AttestationStatement("missing alg")),
    }
}

fn stmt_bytes<'a>(
    stmt: &'a [(Value, Value)],
    key: &str,
    missing: &'static str,
) -> Result<&'a [u8], Error> {
    match stmt_get(stmt, key) {
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(Error::AttestationStatement(missing)),
    }
}

/// L3 §8.8 `apple`, verification procedure steps 2 to 5.
fn verify_apple(chain: &[Vec<u8>], msg: &[u8], key: &PublicKey) -> Result<(), Error> {
    let leaf = chain
        .first()
        .ok_or(Error::AttestationStatement("empty x5c"))?;
    let nonce = ring::digest::digest(&ring::digest::SHA256, msg);
    let ext = crate::der::extension(leaf, crate::der::OID_APPLE_NONCE)
        .ok_or(Error::AttestationStatement(
            "x5c leaf extensions unreadable",
        ))?
        .ok_or(Error::AttestationStatement(
            "apple: credCert has no nonce extension",
        ))?;
    let found = crate::der::apple_nonce(ext).ok_or(Error::AttestationStatement(
        "apple: malformed nonce extension",
    ))?;
    if found != nonce.as_ref() {
        return Err(Error::AttestationStatement(
            "apple: nonce does not match authData and clientDataHash",
        ));
    }
    leaf_key_matches(
        leaf,
        key,
        "apple: credCert public key differs from credential public key",
    )
}

/// Android keymaster constants (L3 §8.4).
const KM_ORIGIN_GENERATED: u64 = 0;
const KM_PURPOSE_SIGN: u64 = 2;

/// L3 §8.4 `android-key`, verification procedure steps 2 to 5; `policy`
/// chooses the authorization lists read for `origin` and `purpose`.
fn verify_android_key(
    chain: &[Vec<u8>],
    alg: i64,
    msg: &[u8],
    signature: &[u8],
    key: &PublicKey,
    client_data_hash: &[u8; 32],
    policy: AndroidKeyAuthorization,
) -> Result<(), Error> {
    let leaf = chain
        .first()
        .ok_or(Error::AttestationStatement("empty x5c"))?;
    verify_with_leaf(leaf, webpki_alg(alg)?, msg, signature, None)?;
    leaf_key_matches(
        leaf,
        key,
        "android-key: certificate public key differs from credential public key",
    )?;
    let ext = crate::der::extension(leaf, crate::der::OID_ANDROID_KEY_DESCRIPTION)
        .ok_or(Error::AttestationStatement(
            "x5c leaf extensions unreadable",
        ))?
        .ok_or(Error::AttestationStatement(
            "android-key: no key description extension",
        ))?;
    let desc = crate::der::key_description(ext).ok_or(Error::AttestationStatement(
        "android-key: malformed key description",
    ))?;
    if desc.attestation_challenge != client_data_hash.as_slice() {
        return Err(Error::AttestationStatement(
            "android-key: attestationChallenge differs from clientDataHash",
        ));
    }
    if desc.software_enforced.all_applications || desc.tee_enforced.all_applications {
        return Err(Error::AttestationStatement(
            "android-key: allApplications is present",
        ));
    }
    android_key_authorized(&desc, policy)
}

/// L3 §8.4 step 5: `origin` is `KM_ORIGIN_GENERATED` and `purpose` includes
/// `KM_PURPOSE_SIGN`, read from the lists `policy` names.
fn android_key_authorized(
    desc: &crate::der::KeyDescription<'_>,
    policy: AndroidKeyAuthorization,
) -> Result<(), Error> {
    let tee = &desc.tee_enforced;
    let sw = &desc.software_enforced;
    if policy == AndroidKeyAuthorization::TeeEnforced {
        if tee.origin != Some(KM_ORIGIN_GENERATED) {
            return Err(Error::AttestationStatement(
                "android-key: teeEnforced origin is not KM_ORIGIN_GENERATED",
            ));
        }
        if !tee
            .purpose
            .as_ref()
            .is_some_and(|p| p.contains(&KM_PURPOSE_SIGN))
        {
            return Err(Error::AttestationStatement(
                "android-key: teeEnforced purpose lacks KM_PURPOSE_SIGN",
            ));
        }
        return Ok(());
    }
    let unstated_ok = policy == AndroidKeyAuthorization::UnionIfStated;
    let origins = [tee.origin, sw.origin];
    if origins.iter().flatten().any(|&o| o != KM_ORIGIN_GENERATED) {
        return Err(Error::AttestationStatement(
            "android-key: origin is not KM_ORIGIN_GENERATED",
        ));
    }
    if origins.iter().all(Option::is_none) && !unstated_ok {
        return Err(Error::AttestationStatement(
            "android-key: neither authorization list states origin",
        ));
    }
    match (&tee.purpose, &sw.purpose) {
        (None, None) if unstated_ok => Ok(()),
        (None, None) => Err(Error::AttestationStatement(
            "android-key: neither authorization list states purpose",
        )),
        (a, b)
            if [a, b]
                .into_iter()
                .flatten()
                .any(|p| p.contains(&KM_PURPOSE_SIGN)) =>
        {
            Ok(())
        }
        _ => Err(Error::AttestationStatement(
            "android-key: purpose lacks KM_PURPOSE_SIGN",
        )),
    }
}

/// TCG OIDs for the AIK certificate checks of L3 §8.3.1.
const OID_TCG_KP_AIK_CERTIFICATE: &[u8] = &[0x67, 0x81, 0x05, 0x08, 0x03];
const OID_TCG_AT_TPM_MANUFACTURER: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x01];
const OID_TCG_AT_TPM_MODEL: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x02];
const OID_TCG_AT_TPM_VERSION: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x03];

/// The hash of `alg` (used for `certInfo.extraData`).
fn tpm_hash(alg: i64) -> Result<&'static ring::digest::Algorithm, Error> {
    use ring::digest;
    match alg {
        -7 | -257 | -37 => Ok(&digest::SHA256),
        -35 | -258 | -38 => Ok(&digest::SHA384),
        -259 | -39 => Ok(&digest::SHA512),
        -65535 => Ok(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        _ => Err(Error::AttestationStatement(
            "unsupported attestation signature algorithm",
        )),
    }
}

/// The pubArea key must be the credential public key.
fn tpm_key_matches(area: &crate::tpm::PubArea<'_>, key: &PublicKey) -> bool {
    use crate::tpm::{TPM_ECC_NIST_P256, TPM_ECC_NIST_P384, TpmKey};
    match (&area.key, key) {
        (TpmKey::Rsa { n, exponent }, PublicKey::Rs256 { n: kn, e: ke }) => {
            let exponent = if *exponent == 0 { 65537 } else { *exponent };
            let e = exponent.to_be_bytes();
            let e = e.get(e.iter().position(|b| *b != 0).unwrap_or(4)..);
            let n = n.get(n.iter().position(|b| *b != 0).unwrap_or(n.len())..);
            n == Some(kn.as_slice()) && e == Some(ke.as_slice())
        }
        (TpmKey::Ecc { curve, x, y }, PublicKey::Es256 { x: kx, y: ky }) => {
            *curve == TPM_ECC_NIST_P256 && *x == kx.as_slice() && *y == ky.as_slice()
        }
        (TpmKey::Ecc { curve, x, y }, PublicKey::Es384 { x: kx, y: ky }) => {
            *curve == TPM_ECC_NIST_P384 && *x == kx.as_slice() && *y == ky.as_slice()
        }
        _ => false,
    }
}

/// L3 §8.3.1 TPM attestation (AIK) certificate requirements.
fn verify_aik_cert(aik: &[u8], aaguid: &[u8; 16]) -> Result<(), Error> {
    let parts = crate::der::cert_parts(aik).ok_or(Error::AttestationStatement(
        "x5c leaf is not a valid certificate",
    ))?;
    if parts.version != 2 {
        return Err(Error::AttestationStatement("tpm: aikCert is not version 3"));
    }
    if !parts.subject.is_empty() {
        return Err(Error::AttestationStatement(
            "tpm: aikCert subject is not empty",
        ));
    }
    let unreadable = Error::AttestationStatement("x5c leaf extensions unreadable");
    let san = crate::der::extension(aik, crate::der::OID_SUBJECT_ALT_NAME)
        .ok_or(unreadable.clone())?
        .ok_or(Error::AttestationStatement(
            "tpm: aikCert has no subject alternative name",
        ))?;
    let attrs = crate::der::san_directory_attributes(san).ok_or(unreadable.clone())?;
    for oid in [
        OID_TCG_AT_TPM_MANUFACTURER,
        OID_TCG_AT_TPM_MODEL,
        OID_TCG_AT_TPM_VERSION,
    ] {
        if !attrs.contains(&oid) {
            return Err(Error::AttestationStatement(
                "tpm: aikCert subject alternative name lacks TPM manufacturer, model or version",
            ));
        }
    }
    let eku = crate::der::extension(aik, crate::der::OID_EXT_KEY_USAGE)
        .ok_or(unreadable.clone())?
        .ok_or(Error::AttestationStatement(
            "tpm: aikCert has no extended key usage",
        ))?;
    if !crate::der::eku_purposes(eku)
        .ok_or(unreadable)?
        .contains(&OID_TCG_KP_AIK_CERTIFICATE)
    {
        return Err(Error::AttestationStatement(
            "tpm: aikCert extended key usage lacks tcg-kp-AIKCertificate",
        ));
    }
    // Basic constraints CA false and the FIDO AAGUID extension (if present)
    // are checked by `verify_with_leaf` / here for the legacy RS1 path.
    let facts = crate::der::leaf_facts(aik).ok_or(Error::AttestationStatement(
        "x5c leaf extensions unreadable",
    ))?;
    if facts.is_ca {
        return Err(Error::AttestationStatement(
            "attestation certificate is a CA",
        ));
    }
    if let Some(found) = facts.aaguid.as_deref()
        && found != aaguid.as_slice()
    {
        return Err(Error::AttestationStatement(
            "certificate AAGUID differs from authenticator data",
        ));
    }
    Ok(())
}

/// L3 §8.3 `tpm`, verification procedure steps 2 to 5 (after the CBOR decode).
fn verify_tpm(
    stmt: &[(Value, Value)],
    att_to_be_signed: &[u8],
    key: &PublicKey,
    aaguid: &[u8; 16],
) -> Result<Vec<Vec<u8>>, Error> {
    only_keys(stmt, &["ver", "alg", "x5c", "sig", "certInfo", "pubArea"])?;
    if stmt_get(stmt, "ver").and_then(Value::as_text) != Some("2.0") {
        return Err(Error::AttestationStatement("tpm: ver is not \"2.0\""));
    }
    let alg = stmt_alg(stmt)?;
    let signature = sig(stmt)?;
    let pub_area_bytes = stmt_bytes(stmt, "pubArea", "tpm: missing pubArea")?;
    let cert_info_bytes = stmt_bytes(stmt, "certInfo", "tpm: missing certInfo")?;
    let area = crate::tpm::pub_area(pub_area_bytes)
        .ok_or(Error::AttestationStatement("tpm: malformed pubArea"))?;
    if !tpm_key_matches(&area, key) {
        return Err(Error::AttestationStatement(
            "tpm: pubArea key differs from credential public key",
        ));
    }
    let info = crate::tpm::cert_info(cert_info_bytes)
        .ok_or(Error::AttestationStatement("tpm: malformed certInfo"))?;
    if !info.magic_ok {
        return Err(Error::AttestationStatement(
            "tpm: certInfo magic is not TPM_GENERATED_VALUE",
        ));
    }
    if !info.type_ok {
        return Err(Error::AttestationStatement(
            "tpm: certInfo type is not TPM_ST_ATTEST_CERTIFY",
        ));
    }
    let expected = ring::digest::digest(tpm_hash(alg)?, att_to_be_signed);
    if info.extra_data != expected.as_ref() {
        return Err(Error::AttestationStatement(
            "tpm: certInfo extraData differs from the hash of attToBeSigned",
        ));
    }
    let name = crate::tpm::name(area.name_alg, pub_area_bytes).ok_or(
        Error::AttestationStatement("tpm: unsupported pubArea nameAlg"),
    )?;
    if info.attested_name != name.as_slice() {
        return Err(Error::AttestationStatement(
            "tpm: certInfo attested name is not the name of pubArea",
        ));
    }
    let chain = x5c(stmt)?.ok_or(Error::AttestationStatement("missing x5c"))?;
    let aik = chain
        .first()
        .ok_or(Error::AttestationStatement("empty x5c"))?;
    if alg == -65535 {
        // RS1 (RSASSA-PKCS1-v1_5 with SHA-1), still used by Windows Hello TPMs;
        // not a certificate algorithm in webpki, so verified with ring directly.
        let parts = crate::der::cert_parts(aik).ok_or(Error::AttestationStatement(
            "x5c leaf is not a valid certificate",
        ))?;
        let Some(crate::der::SpkiKey::Rsa(n, e)) = crate::der::spki_key(parts.spki) else {
            return Err(Error::AttestationStatement("tpm: RS1 needs an RSA aikCert"));
        };
        ring::signature::RsaPublicKeyComponents { n, e }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                cert_info_bytes,
                signature,
            )
            .map_err(|_| Error::AttestationStatement("attestation signature does not verify"))?;
    } else {
        verify_with_leaf(
            aik,
            webpki_alg(alg)?,
            cert_info_bytes,
            signature,
            Some(aaguid),
        )?;
    }
    verify_aik_cert(aik, aaguid)?;
    Ok(chain)
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
    pub(crate) android_key: AndroidKeyAuthorization,
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
        android_key,
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
        "apple" => {
            only_keys(stmt, &["x5c"])?;
            let chain = x5c(stmt)?.ok_or(Error::AttestationStatement("missing x5c"))?;
            let mut msg = Vec::with_capacity(auth_data_bytes.len() + 32);
            msg.extend_from_slice(auth_data_bytes);
            msg.extend_from_slice(client_data_hash);
            verify_apple(&chain, &msg, key)?;
            certified(chain, trust, time)
        }
        "android-key" => {
            only_keys(stmt, &["alg", "sig", "x5c"])?;
            let alg = stmt_alg(stmt)?;
            let signature = sig(stmt)?;
            let chain = x5c(stmt)?.ok_or(Error::AttestationStatement("missing x5c"))?;
            let mut msg = Vec::with_capacity(auth_data_bytes.len() + 32);
            msg.extend_from_slice(auth_data_bytes);
            msg.extend_from_slice(client_data_hash);
            verify_android_key(
                &chain,
                alg,
                &msg,
                signature,
                key,
                client_data_hash,
                android_key,
            )?;
            certified(chain, trust, time)
        }
        "tpm" => {
            let mut msg = Vec::with_capacity(auth_data_bytes.len() + 32);
            msg.extend_from_slice(auth_data_bytes);
            msg.extend_from_slice(client_data_hash);
            let chain = verify_tpm(stmt, &msg, key, &cred.aaguid)?;
            certified(chain, trust, time)
        }
        other => Err(Error::UnsupportedFormat(other.to_owned())),
    }
}
