//! Just enough DER to read what the attestation formats check in a certificate:
//! extensions (basic constraints, FIDO AAGUID, Apple nonce, Android key
//! description, subject alternative name, extended key usage), version, subject
//! and public key.

/// Splits one TLV off `input`: (tag, contents, rest). Single-byte tags,
/// definite lengths of up to 3 length bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The extensions of a certificate as (OID bytes, extnValue contents).
pub(crate) fn extensions(cert: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let (tag, cert_body, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert_body)?;
    if tag != 0x30 {
        return None;
    }
    let mut out = Vec::new();
    while !tbs.is_empty() {
        let (tag, contents, rest) = tlv(tbs)?;
        tbs = rest;
        if tag != 0xa3 {
            continue;
        }
        let (tag, mut list, _) = tlv(contents)?;
        if tag != 0x30 {
            return None;
        }
        while !list.is_empty() {
            let (tag, ext, rest) = tlv(list)?;
            list = rest;
            if tag != 0x30 {
                return None;
            }
            let (tag, oid, mut ext_rest) = tlv(ext)?;
            if tag != 0x06 {
                return None;
            }
            let (mut tag, mut value, after) = tlv(ext_rest)?;
            if tag == 0x01 {
                ext_rest = after;
                (tag, value, _) = tlv(ext_rest)?;
            }
            if tag != 0x04 {
                return None;
            }
            out.push((oid, value));
        }
    }
    Some(out)
}

const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_FIDO_AAGUID: &[u8] = &[
    0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xe5, 0x1c, 0x01, 0x01, 0x04,
];

/// Facts about an attestation leaf certificate.
pub(crate) struct LeafFacts {
    pub(crate) is_ca: bool,
    pub(crate) aaguid: Option<Vec<u8>>,
}

pub(crate) fn leaf_facts(cert: &[u8]) -> Option<LeafFacts> {
    let mut facts = LeafFacts {
        is_ca: false,
        aaguid: None,
    };
    for (oid, value) in extensions(cert)? {
        if oid == OID_BASIC_CONSTRAINTS {
            let (tag, seq, _) = tlv(value)?;
            if tag != 0x30 {
                return None;
            }
            if let Some((0x01, b, _)) = tlv(seq) {
                facts.is_ca = b.iter().any(|x| *x != 0);
            }
        } else if oid == OID_FIDO_AAGUID {
            let (tag, inner, rest) = tlv(value)?;
            if tag != 0x04 || !rest.is_empty() {
                return None;
            }
            facts.aaguid = Some(inner.to_vec());
        }
    }
    Some(facts)
}

/// One DER element with a possibly multi-byte tag: (class and constructed
/// bits of the first tag byte, tag number, contents, rest).
fn element(input: &[u8]) -> Option<(u8, u32, &[u8], &[u8])> {
    let (&first, mut rest) = input.split_first()?;
    let class = first & 0xe0;
    let mut number = u32::from(first & 0x1f);
    if number == 0x1f {
        number = 0;
        loop {
            let (&b, r) = rest.split_first()?;
            rest = r;
            if number > 0x00ff_ffff {
                return None;
            }
            number = (number << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    // Definite length, up to 3 length bytes (as in `tlv`).
    let (&len0, after) = rest.split_first()?;
    let (len, after) = if len0 < 0x80 {
        (usize::from(len0), after)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 3 || after.len() < n {
            return None;
        }
        let (len_bytes, after) = after.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, after)
    };
    if after.len() < len {
        return None;
    }
    let (contents, rest) = after.split_at(len);
    Some((class, number, contents, rest))
}

/// Contents of a universal element with the given single-byte tag, and the rest.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = tlv(input)?;
    (t == tag).then_some((contents, rest))
}

/// Contents of the extension `oid` of `cert` (its extnValue), if present.
pub(crate) fn extension<'a>(cert: &'a [u8], oid: &[u8]) -> Option<Option<&'a [u8]>> {
    Some(
        extensions(cert)?
            .into_iter()
            .find(|(o, _)| *o == oid)
            .map(|(_, v)| v),
    )
}

/// The parts of an X.509 certificate that attestation formats look at.
pub(crate) struct CertParts<'a> {
    /// `version` field value (0 for v1, 2 for v3).
    pub(crate) version: u8,
    /// Contents of the subject Name SEQUENCE (empty for an empty subject).
    pub(crate) subject: &'a [u8],
    /// The whole SubjectPublicKeyInfo element.
    pub(crate) spki: &'a [u8],
}

pub(crate) fn cert_parts(cert: &[u8]) -> Option<CertParts<'_>> {
    let (cert_body, _) = expect(cert, 0x30)?;
    let (mut tbs, _) = expect(cert_body, 0x30)?;
    let mut version = 0;
    if let Some((0xa0, v, rest)) = tlv(tbs) {
        let (v, _) = expect(v, 0x02)?;
        version = *v.first()?;
        tbs = rest;
    }
    let (_serial, tbs) = expect(tbs, 0x02)?;
    let (_sig_alg, tbs) = expect(tbs, 0x30)?;
    let (_issuer, tbs) = expect(tbs, 0x30)?;
    let (_validity, tbs) = expect(tbs, 0x30)?;
    let (subject, tbs) = expect(tbs, 0x30)?;
    let (_, after_spki) = expect(tbs, 0x30)?;
    let spki = tbs.get(..tbs.len() - after_spki.len())?;
    Some(CertParts {
        version,
        subject,
        spki,
    })
}

/// A public key read from a SubjectPublicKeyInfo.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SpkiKey<'a> {
    /// EC key: (named curve OID, uncompressed or compressed point).
    Ec(&'a [u8], &'a [u8]),
    /// Ed25519 key.
    Ed25519(&'a [u8]),
    /// RSA key: (modulus, exponent), leading zeros stripped.
    Rsa(&'a [u8], &'a [u8]),
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// Named curve OID of P-256.
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// Named curve OID of P-384.
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

pub(crate) fn spki_key(spki: &[u8]) -> Option<SpkiKey<'_>> {
    let (body, _) = expect(spki, 0x30)?;
    let (alg, rest) = expect(body, 0x30)?;
    let (bits, _) = expect(rest, 0x03)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    let (oid, params) = expect(alg, 0x06)?;
    if oid == OID_EC_PUBLIC_KEY {
        let (curve, _) = expect(params, 0x06)?;
        Some(SpkiKey::Ec(curve, key))
    } else if oid == OID_ED25519 {
        Some(SpkiKey::Ed25519(key))
    } else if oid == OID_RSA_ENCRYPTION {
        let (rsa, _) = expect(key, 0x30)?;
        let (n, rest) = expect(rsa, 0x02)?;
        let (e, _) = expect(rest, 0x02)?;
        Some(SpkiKey::Rsa(strip_zeros(n), strip_zeros(e)))
    } else {
        None
    }
}

/// OID 1.2.840.113635.100.8.2 (Apple anonymous attestation nonce).
pub(crate) const OID_APPLE_NONCE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x08, 0x02];

/// The nonce in an Apple extension value: `SEQUENCE { [1] EXPLICIT OCTET STRING }`.
pub(crate) fn apple_nonce(value: &[u8]) -> Option<&[u8]> {
    let (seq, rest) = expect(value, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (tagged, rest) = expect(seq, 0xa1)?;
    if !rest.is_empty() {
        return None;
    }
    let (nonce, rest) = expect(tagged, 0x04)?;
    rest.is_empty().then_some(nonce)
}

/// OID 1.3.6.1.4.1.11129.2.1.17 (Android key attestation KeyDescription).
pub(crate) const OID_ANDROID_KEY_DESCRIPTION: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x01, 0x11];

/// The parts of an Android AuthorizationList that WebAuthn checks.
#[derive(Default)]
pub(crate) struct AuthorizationList {
    /// `None` when the list does not state the field.
    pub(crate) purpose: Option<Vec<u64>>,
    pub(crate) origin: Option<u64>,
    pub(crate) all_applications: bool,
}

/// Fields of an Android KeyDescription that WebAuthn checks.
pub(crate) struct KeyDescription<'a> {
    pub(crate) attestation_challenge: &'a [u8],
    pub(crate) software_enforced: AuthorizationList,
    pub(crate) tee_enforced: AuthorizationList,
}

fn small_uint(contents: &[u8]) -> Option<u64> {
    if contents.is_empty() || contents.len() > 9 || contents.first()? & 0x80 != 0 {
        return None;
    }
    let value = strip_zeros(contents);
    if value.len() > 8 {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn authorization_list(contents: &[u8]) -> Option<AuthorizationList> {
    let mut list = AuthorizationList::default();
    let mut input = contents;
    while !input.is_empty() {
        let (class, number, inner, rest) = element(input)?;
        input = rest;
        if class != 0xa0 {
            return None;
        }
        match number {
            // purpose [1] EXPLICIT SET OF INTEGER
            1 => {
                let (mut set, _) = expect(inner, 0x31)?;
                let mut purposes = Vec::new();
                while !set.is_empty() {
                    let (v, rest) = expect(set, 0x02)?;
                    purposes.push(small_uint(v)?);
                    set = rest;
                }
                list.purpose = Some(purposes);
            }
            // allApplications [600] EXPLICIT NULL
            600 => list.all_applications = true,
            // origin [702] EXPLICIT INTEGER
            702 => {
                let (v, _) = expect(inner, 0x02)?;
                list.origin = Some(small_uint(v)?);
            }
            _ => {}
        }
    }
    Some(list)
}

pub(crate) fn key_description(value: &[u8]) -> Option<KeyDescription<'_>> {
    let (seq, _) = expect(value, 0x30)?;
    let (_attestation_version, rest) = expect(seq, 0x02)?;
    let (_attestation_security_level, rest) = expect(rest, 0x0a)?;
    let (_keymaster_version, rest) = expect(rest, 0x02)?;
    let (_keymaster_security_level, rest) = expect(rest, 0x0a)?;
    let (attestation_challenge, rest) = expect(rest, 0x04)?;
    let (_unique_id, rest) = expect(rest, 0x04)?;
    let (software, rest) = expect(rest, 0x30)?;
    let (tee, _) = expect(rest, 0x30)?;
    Some(KeyDescription {
        attestation_challenge,
        software_enforced: authorization_list(software)?,
        tee_enforced: authorization_list(tee)?,
    })
}

/// OID 2.5.29.17 (subjectAltName).
pub(crate) const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// OID 2.5.29.37 (extKeyUsage).
pub(crate) const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

/// The attribute types (OIDs) of the directoryName entries of a
/// subjectAltName extension value.
pub(crate) fn san_directory_attributes(value: &[u8]) -> Option<Vec<&[u8]>> {
    let (mut names, _) = expect(value, 0x30)?;
    let mut out = Vec::new();
    while !names.is_empty() {
        let (tag, name, rest) = tlv(names)?;
        names = rest;
        if tag != 0xa4 {
            continue;
        }
        let (mut rdns, _) = expect(name, 0x30)?;
        while !rdns.is_empty() {
            let (mut set, rest) = expect(rdns, 0x31)?;
            rdns = rest;
            while !set.is_empty() {
                let (atv, rest) = expect(set, 0x30)?;
                set = rest;
                let (oid, _) = expect(atv, 0x06)?;
                out.push(oid);
            }
        }
    }
    Some(out)
}

/// The key purpose OIDs of an extKeyUsage extension value.
pub(crate) fn eku_purposes(value: &[u8]) -> Option<Vec<&[u8]>> {
    let (mut seq, _) = expect(value, 0x30)?;
    let mut out = Vec::new();
    while !seq.is_empty() {
        let (oid, rest) = expect(seq, 0x06)?;
        out.push(oid);
        seq = rest;
    }
    Some(out)
}
