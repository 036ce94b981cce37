//! `clientDataJSON` parsing and checks shared by both ceremonies.

use crate::Error;
use crate::config::{CrossOriginPolicy, RelyingParty};
use crate::types::{Challenge, b64_decode, ct_eq};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    type_: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: Option<bool>,
    #[serde(default)]
    top_origin: Option<String>,
}

/// Parses `clientDataJSON` as JSON (never compared as bytes) and checks type,
/// challenge, origin, crossOrigin and topOrigin. Returns SHA-256 of the bytes.
pub(crate) fn verify_client_data(
    rp: &RelyingParty,
    bytes: &[u8],
    expected_type: &str,
    challenge: &Challenge,
) -> Result<[u8; 32], Error> {
    let cd: ClientData =
        serde_json::from_slice(bytes).map_err(|_| Error::Malformed("clientDataJSON"))?;
    if cd.type_ != expected_type {
        return Err(Error::ClientDataType);
    }
    let received =
        b64_decode(&cd.challenge, "challenge is not base64url").map_err(|_| Error::Challenge)?;
    if !ct_eq(&received, challenge.as_bytes()) {
        return Err(Error::Challenge);
    }
    if !rp.origins.contains(&cd.origin) {
        return Err(Error::Origin);
    }
    let cross = cd.cross_origin.unwrap_or(false);
    match &rp.cross_origin {
        CrossOriginPolicy::Deny => {
            if cross || cd.top_origin.is_some() {
                return Err(Error::CrossOrigin);
            }
        }
        CrossOriginPolicy::Allow {
            top_origins,
            allow_missing_top_origin,
        } => match &cd.top_origin {
            Some(top) => {
                if !top_origins.iter().any(|o| o == top) {
                    return Err(Error::CrossOrigin);
                }
            }
            None => {
                if cross && !allow_missing_top_origin {
                    return Err(Error::CrossOrigin);
                }
            }
        },
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    Ok(hash)
}
