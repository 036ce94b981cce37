//! Just enough DER to read two X.509 extensions of an attestation certificate.

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
