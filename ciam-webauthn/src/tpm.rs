//! TPM 2.0 structures used by the `tpm` attestation format (L3 §8.3):
//! `TPMT_PUBLIC` (pubArea) and `TPMS_ATTEST` (certInfo), big-endian.

/// Big-endian cursor over a TPM structure.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    /// A `TPM2B_*` buffer: 16-bit size, then that many bytes.
    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

pub(crate) const TPM_ALG_RSA: u16 = 0x0001;
pub(crate) const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_NULL: u16 = 0x0010;
pub(crate) const TPM_ALG_SHA1: u16 = 0x0004;
pub(crate) const TPM_ALG_SHA256: u16 = 0x000b;
pub(crate) const TPM_ALG_SHA384: u16 = 0x000c;
pub(crate) const TPM_ALG_SHA512: u16 = 0x000d;
pub(crate) const TPM_ECC_NIST_P256: u16 = 0x0003;
pub(crate) const TPM_ECC_NIST_P384: u16 = 0x0004;
const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;

/// The key in a `TPMT_PUBLIC`.
pub(crate) enum TpmKey<'a> {
    /// RSA: modulus and exponent (0 in the structure means 65537).
    Rsa { n: &'a [u8], exponent: u32 },
    /// ECC: curve id and affine coordinates.
    Ecc {
        curve: u16,
        x: &'a [u8],
        y: &'a [u8],
    },
}

/// A parsed `TPMT_PUBLIC`.
pub(crate) struct PubArea<'a> {
    pub(crate) name_alg: u16,
    pub(crate) key: TpmKey<'a>,
}

/// Parses a `TPMT_PUBLIC` (TPM 2.0 Part 2, §12.2.4), refusing trailing bytes.
pub(crate) fn pub_area(bytes: &[u8]) -> Option<PubArea<'_>> {
    let mut r = Reader(bytes);
    let kind = r.u16()?;
    let name_alg = r.u16()?;
    let _object_attributes = r.u32()?;
    let _auth_policy = r.sized()?;
    let key = match kind {
        TPM_ALG_RSA => {
            // TPMS_RSA_PARMS: symmetric (NULL for a signing key), scheme, keyBits, exponent.
            if r.u16()? != TPM_ALG_NULL {
                return None;
            }
            if r.u16()? != TPM_ALG_NULL {
                let _scheme_hash = r.u16()?;
            }
            let _key_bits = r.u16()?;
            let exponent = r.u32()?;
            let n = r.sized()?;
            TpmKey::Rsa { n, exponent }
        }
        TPM_ALG_ECC => {
            // TPMS_ECC_PARMS: symmetric, scheme, curveID, kdf.
            if r.u16()? != TPM_ALG_NULL {
                return None;
            }
            if r.u16()? != TPM_ALG_NULL {
                let _scheme_hash = r.u16()?;
            }
            let curve = r.u16()?;
            if r.u16()? != TPM_ALG_NULL {
                let _kdf_hash = r.u16()?;
            }
            let x = r.sized()?;
            let y = r.sized()?;
            TpmKey::Ecc { curve, x, y }
        }
        _ => return None,
    };
    r.0.is_empty().then_some(PubArea { name_alg, key })
}

/// The checked fields of a `TPMS_ATTEST` of type `TPM_ST_ATTEST_CERTIFY`.
pub(crate) struct CertInfo<'a> {
    pub(crate) magic_ok: bool,
    pub(crate) type_ok: bool,
    pub(crate) extra_data: &'a [u8],
    /// `attested.certify.name`.
    pub(crate) attested_name: &'a [u8],
}

/// Parses a `TPMS_ATTEST` (TPM 2.0 Part 2, §10.12.12) whose `attested` member
/// is a `TPMS_CERTIFY_INFO`, refusing trailing bytes.
pub(crate) fn cert_info(bytes: &[u8]) -> Option<CertInfo<'_>> {
    let mut r = Reader(bytes);
    let magic = r.u32()?;
    let kind = r.u16()?;
    let _qualified_signer = r.sized()?;
    let extra_data = r.sized()?;
    // TPMS_CLOCK_INFO (clock u64, resetCount u32, restartCount u32, safe u8)
    // and firmwareVersion u64: ignored, as L3 §8.3 says.
    let _clock_and_firmware = r.take(8 + 4 + 4 + 1 + 8)?;
    let attested_name = r.sized()?;
    let _qualified_name = r.sized()?;
    r.0.is_empty().then_some(CertInfo {
        magic_ok: magic == TPM_GENERATED_VALUE,
        type_ok: kind == TPM_ST_ATTEST_CERTIFY,
        extra_data,
        attested_name,
    })
}

/// The TPM Name of `pub_area` (TPM 2.0 Part 1, §16): `nameAlg || H_nameAlg(pubArea)`.
pub(crate) fn name(name_alg: u16, pub_area: &[u8]) -> Option<Vec<u8>> {
    use ring::digest;
    let alg = match name_alg {
        TPM_ALG_SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        TPM_ALG_SHA256 => &digest::SHA256,
        TPM_ALG_SHA384 => &digest::SHA384,
        TPM_ALG_SHA512 => &digest::SHA512,
        _ => return None,
    };
    let mut out = name_alg.to_be_bytes().to_vec();
    out.extend_from_slice(digest::digest(alg, pub_area).as_ref());
    Some(out)
}
