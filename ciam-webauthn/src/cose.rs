//! COSE credential public keys: parsing, validation and signature verification.

use coset::iana;
use coset::{AsCborValue as _, KeyType, Label};

use crate::Error;
use crate::config::CoseAlgorithm;

/// Whether [`PublicKey::from_cose_checked`] checks that EC points are on their curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PointCheck {
    /// Check (keys arriving in a registration).
    OnCurve,
    /// Do not: ring (ES256, ES384) and `p521` (ES512) check the point before
    /// each verification (stored keys).
    LeftToRing,
}

/// A validated credential public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Es256 { x: [u8; 32], y: [u8; 32] },
    Es384 { x: [u8; 48], y: [u8; 48] },
    Es512 { x: [u8; 66], y: [u8; 66] },
    Ed25519([u8; 32]),
    Rs256 { n: Vec<u8>, e: Vec<u8> },
}

fn param(key: &coset::CoseKey, label: i64) -> Option<&ciborium::Value> {
    key.params
        .iter()
        .find(|(l, _)| *l == Label::Int(label))
        .map(|(_, v)| v)
}

fn bytes_param(key: &coset::CoseKey, label: i64) -> Result<&[u8], Error> {
    match param(key, label) {
        Some(ciborium::Value::Bytes(b)) => Ok(b),
        _ => Err(Error::InvalidKey("missing or non-bytes key parameter")),
    }
}

fn int_param(key: &coset::CoseKey, label: i64) -> Result<i128, Error> {
    match param(key, label) {
        Some(ciborium::Value::Integer(i)) => Ok(i128::from(*i)),
        _ => Err(Error::InvalidKey("missing or non-integer key parameter")),
    }
}

fn to32(b: &[u8], what: &'static str) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(b).map_err(|_| Error::InvalidKey(what))
}

fn to48(b: &[u8], what: &'static str) -> Result<[u8; 48], Error> {
    <[u8; 48]>::try_from(b).map_err(|_| Error::InvalidKey(what))
}

fn to66(b: &[u8], what: &'static str) -> Result<[u8; 66], Error> {
    <[u8; 66]>::try_from(b).map_err(|_| Error::InvalidKey(what))
}

/// The P-521 verifying key for affine (x, y), or `None` when the point is not
/// on the curve or a coordinate is not below the field prime (`p521` checks
/// both when decoding the SEC1 point).
fn p521_key(x: &[u8; 66], y: &[u8; 66]) -> Option<p521::ecdsa::VerifyingKey> {
    let mut point = [0u8; 133];
    point[0] = 0x04;
    point[1..67].copy_from_slice(x);
    point[67..].copy_from_slice(y);
    p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok()
}

/// Verifies an ES512 signature: ASN.1 DER `ECDSA-Sig-Value` (WebAuthn §6.5.5
/// for EC2 keys), SHA-512 over `msg`, P-521. `r` and `s` must be in `[1, n)`
/// (`Signature::from_der` refuses 0 and values >= n, and non-minimal DER); the
/// point is checked on the curve again here, as ring does for ES256 / ES384.
fn verify_es512(x: &[u8; 66], y: &[u8; 66], msg: &[u8], sig: &[u8]) -> Result<(), Error> {
    use p521::ecdsa::signature::Verifier as _;
    let key = p521_key(x, y).ok_or(Error::Signature)?;
    let sig = p521::ecdsa::Signature::from_der(sig).map_err(|_| Error::Signature)?;
    key.verify(msg, &sig).map_err(|_| Error::Signature)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

impl PublicKey {
    /// Parses a COSE_Key CBOR value, returning the key and its COSE `alg`.
    /// Unsupported algorithms give [`Error::Algorithm`]; an algorithm outside
    /// `allowed` also gives [`Error::Algorithm`].
    pub(crate) fn from_cose(
        value: ciborium::Value,
        allowed: &[CoseAlgorithm],
    ) -> Result<(Self, CoseAlgorithm), Error> {
        Self::from_cose_checked(value, allowed, PointCheck::OnCurve)
    }

    fn from_cose_checked(
        value: ciborium::Value,
        allowed: &[CoseAlgorithm],
        point_check: PointCheck,
    ) -> Result<(Self, CoseAlgorithm), Error> {
        // Read `alg` (label 3) before handing the map to coset, so that an
        // unregistered algorithm is reported as such rather than as a bad key.
        let alg_id = match &value {
            ciborium::Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_integer() == Some(3.into()))
                .and_then(|(_, v)| v.as_integer())
                .and_then(|i| i64::try_from(i).ok())
                .ok_or(Error::InvalidKey("COSE_Key without integer alg"))?,
            _ => return Err(Error::InvalidKey("COSE_Key is not a map")),
        };
        let alg = CoseAlgorithm::from_cose_id(alg_id).ok_or(Error::Algorithm(alg_id))?;
        if !allowed.contains(&alg) {
            return Err(Error::Algorithm(alg_id));
        }
        let key = coset::CoseKey::from_cbor_value(value)
            .map_err(|_| Error::InvalidKey("not a COSE_Key"))?;
        let kty = match &key.kty {
            KeyType::Assigned(k) => *k,
            KeyType::Text(_) => return Err(Error::InvalidKey("unknown key type")),
        };
        let pk = match alg {
            CoseAlgorithm::Es256 => {
                if kty != iana::KeyType::EC2 {
                    return Err(Error::InvalidKey("ES256 needs an EC2 key"));
                }
                if int_param(&key, iana::Ec2KeyParameter::Crv as i64)?
                    != iana::EllipticCurve::P_256 as i128
                {
                    return Err(Error::InvalidKey("ES256 needs curve P-256"));
                }
                let x = to32(
                    bytes_param(&key, iana::Ec2KeyParameter::X as i64)?,
                    "x is not 32 bytes",
                )?;
                let y = match param(&key, iana::Ec2KeyParameter::Y as i64) {
                    Some(ciborium::Value::Bytes(y)) => to32(y, "y is not 32 bytes")?,
                    _ => return Err(Error::InvalidKey("compressed or missing y")),
                };
                if point_check == PointCheck::OnCurve && !crate::weierstrass::is_on_p256(&x, &y) {
                    return Err(Error::InvalidKey("point not on P-256"));
                }
                Self::Es256 { x, y }
            }
            CoseAlgorithm::Es384 => {
                if kty != iana::KeyType::EC2 {
                    return Err(Error::InvalidKey("ES384 needs an EC2 key"));
                }
                if int_param(&key, iana::Ec2KeyParameter::Crv as i64)?
                    != iana::EllipticCurve::P_384 as i128
                {
                    return Err(Error::InvalidKey("ES384 needs curve P-384"));
                }
                let x = to48(
                    bytes_param(&key, iana::Ec2KeyParameter::X as i64)?,
                    "x is not 48 bytes",
                )?;
                let y = match param(&key, iana::Ec2KeyParameter::Y as i64) {
                    Some(ciborium::Value::Bytes(y)) => to48(y, "y is not 48 bytes")?,
                    _ => return Err(Error::InvalidKey("compressed or missing y")),
                };
                if point_check == PointCheck::OnCurve && !crate::weierstrass::is_on_p384(&x, &y) {
                    return Err(Error::InvalidKey("point not on P-384"));
                }
                Self::Es384 { x, y }
            }
            CoseAlgorithm::Es512 => {
                if kty != iana::KeyType::EC2 {
                    return Err(Error::InvalidKey("ES512 needs an EC2 key"));
                }
                if int_param(&key, iana::Ec2KeyParameter::Crv as i64)?
                    != iana::EllipticCurve::P_521 as i128
                {
                    return Err(Error::InvalidKey("ES512 needs curve P-521"));
                }
                // RFC 9053 §7.1.1: leading zero octets of x and y are kept, so
                // both are exactly 66 bytes.
                let x = to66(
                    bytes_param(&key, iana::Ec2KeyParameter::X as i64)?,
                    "x is not 66 bytes",
                )?;
                let y = match param(&key, iana::Ec2KeyParameter::Y as i64) {
                    Some(ciborium::Value::Bytes(y)) => to66(y, "y is not 66 bytes")?,
                    _ => return Err(Error::InvalidKey("compressed or missing y")),
                };
                if point_check == PointCheck::OnCurve && p521_key(&x, &y).is_none() {
                    return Err(Error::InvalidKey("point not on P-521"));
                }
                Self::Es512 { x, y }
            }
            CoseAlgorithm::EdDsa => {
                if kty != iana::KeyType::OKP {
                    return Err(Error::InvalidKey("EdDSA needs an OKP key"));
                }
                let crv = int_param(&key, iana::OkpKeyParameter::Crv as i64)?;
                if crv != iana::EllipticCurve::Ed25519 as i128 {
                    // Ed448 and others: unsupported algorithm.
                    return Err(Error::Algorithm(alg_id));
                }
                Self::Ed25519(to32(
                    bytes_param(&key, iana::OkpKeyParameter::X as i64)?,
                    "Ed25519 key is not 32 bytes",
                )?)
            }
            CoseAlgorithm::Rs256 => {
                if kty != iana::KeyType::RSA {
                    return Err(Error::InvalidKey("RS256 needs an RSA key"));
                }
                let n = strip_zeros(bytes_param(&key, iana::RsaKeyParameter::N as i64)?);
                let e = strip_zeros(bytes_param(&key, iana::RsaKeyParameter::E as i64)?);
                let n_bits = match n.first() {
                    Some(first) => n.len() * 8 - first.leading_zeros() as usize,
                    None => return Err(Error::InvalidKey("empty RSA modulus")),
                };
                if n_bits < 2048 {
                    return Err(Error::InvalidKey("RSA modulus below 2048 bits"));
                }
                if n_bits > 8192 {
                    return Err(Error::InvalidKey("RSA modulus above 8192 bits"));
                }
                if n.last().is_none_or(|b| b & 1 == 0) {
                    return Err(Error::InvalidKey("RSA modulus is even"));
                }
                if e.is_empty() || e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) {
                    return Err(Error::InvalidKey("bad RSA exponent"));
                }
                let mut e_val = 0u64;
                for b in e {
                    e_val = (e_val << 8) | u64::from(*b);
                }
                if e_val < 3 {
                    return Err(Error::InvalidKey("bad RSA exponent"));
                }
                Self::Rs256 {
                    n: n.to_vec(),
                    e: e.to_vec(),
                }
            }
        };
        Ok((pk, alg))
    }

    /// Parses a stored credential key (exactly one CBOR item), as written at
    /// registration after [`PublicKey::from_cose`] validated it.
    ///
    /// The on-curve check of EC points is skipped here: it is the costliest part
    /// of reading the key (a double-and-add big-number check, about 4% of an
    /// ES256 assertion verification, see benches/README.md), and ring (ES256,
    /// ES384) or `p521` (ES512) checks the point again before every ECDSA
    /// verification, so a damaged stored point still fails (as
    /// [`Error::Signature`]). Everything else is checked as at registration.
    pub(crate) fn from_stored_cose(
        bytes: &[u8],
        allowed: &[CoseAlgorithm],
    ) -> Result<(Self, CoseAlgorithm), Error> {
        let (value, used) = crate::auth_data::read_cbor_item(bytes)?;
        if used != bytes.len() {
            return Err(Error::InvalidKey("trailing bytes after COSE_Key"));
        }
        Self::from_cose_checked(value, allowed, PointCheck::LeftToRing)
    }

    /// Verifies `sig` over `msg` (ES256 / ES384 / ES512 signatures are ASN.1 DER).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        use ring::signature;
        let res = match self {
            Self::Es256 { x, y } => {
                let mut point = [0u8; 65];
                point[0] = 0x04;
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                    .verify(msg, sig)
            }
            Self::Es384 { x, y } => {
                let mut point = [0u8; 97];
                point[0] = 0x04;
                point[1..49].copy_from_slice(x);
                point[49..].copy_from_slice(y);
                signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, point)
                    .verify(msg, sig)
            }
            Self::Es512 { x, y } => return verify_es512(x, y, msg, sig),
            Self::Ed25519(k) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, k).verify(msg, sig)
            }
            Self::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                msg,
                sig,
            ),
        };
        res.map_err(|_| Error::Signature)
    }

    /// Uncompressed SEC1 point for an ES256 key.
    pub(crate) fn sec1_uncompressed(&self) -> Option<[u8; 65]> {
        match self {
            Self::Es256 { x, y } => {
                let mut point = [0u8; 65];
                point[0] = 0x04;
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                Some(point)
            }
            _ => None,
        }
    }

    /// Whether `key` (read from a certificate's SubjectPublicKeyInfo) is this key.
    pub(crate) fn matches_spki(&self, key: &crate::der::SpkiKey<'_>) -> bool {
        use crate::der::{OID_P256, OID_P384, SpkiKey};
        match (self, key) {
            (Self::Es256 { x, y }, SpkiKey::Ec(curve, point)) => {
                *curve == OID_P256
                    && point.len() == 65
                    && point.first() == Some(&0x04)
                    && point.get(1..33) == Some(x.as_slice())
                    && point.get(33..) == Some(y.as_slice())
            }
            (Self::Es384 { x, y }, SpkiKey::Ec(curve, point)) => {
                *curve == OID_P384
                    && point.len() == 97
                    && point.first() == Some(&0x04)
                    && point.get(1..49) == Some(x.as_slice())
                    && point.get(49..) == Some(y.as_slice())
            }
            (Self::Ed25519(k), SpkiKey::Ed25519(other)) => k.as_slice() == *other,
            (Self::Rs256 { n, e }, SpkiKey::Rsa(other_n, other_e)) => {
                n.as_slice() == *other_n && e.as_slice() == *other_e
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    fn hex66(s: &str) -> [u8; 66] {
        let mut out = [0u8; 66];
        for (i, o) in out.iter_mut().enumerate() {
            *o = s
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .unwrap_or(0);
        }
        out
    }

    /// P-521 base point (SEC 2 / FIPS 186-4 D.1.2.5): on the curve; a flipped
    /// bit, and `x + p` (same residue, not canonical) are refused.
    #[test]
    fn p521_generator_is_on_curve_and_perturbed_or_non_canonical_is_not() {
        let gx = hex66(
            "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
        );
        let gy = hex66(
            "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
        );
        assert!(super::p521_key(&gx, &gy).is_some());
        let mut bad = gy;
        bad[65] ^= 1;
        assert!(super::p521_key(&gx, &bad).is_none());
        let gx_plus_p = hex66(
            "02c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd65",
        );
        assert!(super::p521_key(&gx_plus_p, &gy).is_none());
        assert!(super::p521_key(&[0xff; 66], &gy).is_none());
        assert!(super::p521_key(&[0; 66], &[0; 66]).is_none());
    }
}
