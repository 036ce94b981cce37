//! Entry points for the fuzz targets in the repository's `fuzz/` directory.
//!
//! Not part of the supported API (hidden from the documentation): they expose
//! private parsers so that cargo-fuzz can drive them directly. Each returns a
//! value or a typed [`Error`]; a panic on any input is a bug.

use crate::Error;
use crate::config::CoseAlgorithm;
use crate::cose::PublicKey;

/// Every algorithm this crate can verify (the fuzz targets accept them all).
pub const ALL_ALGORITHMS: [CoseAlgorithm; 5] = [
    CoseAlgorithm::Es256,
    CoseAlgorithm::Es384,
    CoseAlgorithm::Es512,
    CoseAlgorithm::EdDsa,
    CoseAlgorithm::Rs256,
];

/// Parses authenticator data (L3 §6.1) as both ceremonies do; when attested
/// credential data is present, also parses and validates its COSE public key
/// (any supported algorithm).
///
/// # Errors
/// What the ceremonies would report: [`Error::Malformed`],
/// [`Error::CredentialIdTooLong`], [`Error::Algorithm`], [`Error::InvalidKey`].
pub fn parse_authenticator_data(bytes: &[u8]) -> Result<(), Error> {
    let data = crate::auth_data::parse(bytes)?;
    if let Some(cred) = data.attested {
        PublicKey::from_cose(cred.public_key, &ALL_ALGORITHMS)?;
    }
    Ok(())
}

/// The credential id inside an attestation object's authenticator data, when
/// the object parses that far (lets a fuzz target set a matching `rawId` so
/// verification reaches the attestation statement).
pub fn attested_credential_id(attestation_object: &[u8]) -> Option<Vec<u8>> {
    let (value, _) = crate::auth_data::read_cbor_item(attestation_object).ok()?;
    let ciborium::Value::Map(entries) = value else {
        return None;
    };
    let auth = entries.into_iter().find_map(|(k, v)| match (k, v) {
        (ciborium::Value::Text(k), ciborium::Value::Bytes(b)) if k == "authData" => Some(b),
        _ => None,
    })?;
    let len = usize::from(u16::from_be_bytes([*auth.get(53)?, *auth.get(54)?]));
    auth.get(55..55usize.checked_add(len)?).map(<[u8]>::to_vec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_on_short_and_trailing_input() {
        assert_eq!(
            parse_authenticator_data(&[0; 36]),
            Err(Error::Malformed("authenticator data truncated"))
        );
        assert_eq!(parse_authenticator_data(&[0; 37]), Ok(()));
        assert_eq!(
            parse_authenticator_data(&[0; 38]),
            Err(Error::Malformed("trailing bytes after authenticator data"))
        );
        assert_eq!(attested_credential_id(b"not cbor"), None);
    }
}
