//! Ceremony inputs and stored records.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::Error;

/// base64url, no padding on output, padding tolerated on input.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The standard base64 alphabet (RFC 4648 §4), padding tolerated on input.
const B64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn b64_decode(s: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    B64URL.decode(s).map_err(|_| Error::Malformed(what))
}

/// Decodes a binary member of a response JSON: base64url (the L3 `toJSON()`
/// encoding), or, when the value holds a `+` or `/`, the standard base64
/// alphabet. Some RP front-ends serialize with `btoa()` rather than
/// `toJSON()` (the Windows Hello TPM payloads in py_webauthn's tests are
/// such). Only the decoded bytes are ever checked (signatures cover bytes, the
/// challenge is compared after decoding), so accepting the second alphabet
/// opens nothing; one value must use one alphabet (mixing `-`/`_` with
/// `+`/`/` is refused).
pub(crate) fn b64_decode_response(s: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    if s.contains(['+', '/']) {
        B64_STANDARD.decode(s).map_err(|_| Error::Malformed(what))
    } else {
        b64_decode(s, what)
    }
}

/// Encodes bytes as unpadded base64url (the WebAuthn JSON encoding).
pub fn base64url_encode(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

/// Length-revealing, content-constant-time comparison.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Minimum challenge length in bytes.
pub const MIN_CHALLENGE_LEN: usize = 16;

/// A ceremony challenge: at least 16 bytes, normally 32 random bytes.
///
/// The caller stores it server-side, bound to the session, single-use and with a
/// short TTL; this crate only compares it.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge(Vec<u8>);

impl core::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Challenge").field(&"..").finish()
    }
}

impl Challenge {
    /// Generates 32 random bytes with `ring::rand::SystemRandom`.
    ///
    /// # Errors
    /// [`Error::Rng`] if the system generator fails.
    pub fn generate() -> Result<Self, Error> {
        use ring::rand::SecureRandom as _;
        let mut bytes = vec![0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Rng)?;
        Ok(Self(bytes))
    }

    /// Wraps stored challenge bytes.
    ///
    /// # Errors
    /// [`Error::ChallengeTooShort`] below 16 bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let bytes = bytes.into();
        if bytes.len() < MIN_CHALLENGE_LEN {
            return Err(Error::ChallengeTooShort);
        }
        Ok(Self(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The base64url form, as sent to the browser in the options.
    pub fn to_base64url(&self) -> String {
        base64url_encode(&self.0)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCredential<R> {
    id: String,
    raw_id: String,
    #[serde(rename = "type")]
    type_: String,
    response: R,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAttestationResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    attestation_object: String,
    #[serde(default)]
    transports: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAssertionResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    authenticator_data: String,
    signature: String,
    #[serde(default)]
    user_handle: Option<String>,
}

fn check_credential_envelope(id: &str, raw_id: &[u8], type_: &str) -> Result<(), Error> {
    if type_ != "public-key" {
        return Err(Error::CredentialType);
    }
    let id_bytes = b64_decode_response(id, "credential id is not base64url")?;
    if id_bytes != raw_id {
        return Err(Error::CredentialType);
    }
    Ok(())
}

/// A registration response (`PublicKeyCredential.toJSON()` of `navigator.credentials.create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationResponse {
    /// Credential ID (`rawId`).
    pub raw_id: Vec<u8>,
    /// Exact `clientDataJSON` bytes.
    pub client_data_json: Vec<u8>,
    /// CBOR attestation object.
    pub attestation_object: Vec<u8>,
    /// Transports reported by the client (informative, unverified).
    pub transports: Vec<String>,
}

impl RegistrationResponse {
    /// Parses the L3 JSON shape (`id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.attestationObject`, optional `response.transports`; other members ignored).
    /// Binary members are base64url, padded or not; a member holding `+` or `/`
    /// is read in the standard base64 alphabet instead (see the crate docs,
    /// "Input encoding").
    ///
    /// # Errors
    /// [`Error::Malformed`] on bad JSON or base64, [`Error::CredentialType`] if
    /// `type` is not `public-key` or `id` differs from `rawId`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let raw: RawCredential<RawAttestationResponse> =
            serde_json::from_str(json).map_err(|_| Error::Malformed("registration JSON"))?;
        let raw_id = b64_decode_response(&raw.raw_id, "rawId is not base64url")?;
        check_credential_envelope(&raw.id, &raw_id, &raw.type_)?;
        Ok(Self {
            raw_id,
            client_data_json: b64_decode_response(
                &raw.response.client_data_json,
                "clientDataJSON is not base64url",
            )?,
            attestation_object: b64_decode_response(
                &raw.response.attestation_object,
                "attestationObject is not base64url",
            )?,
            transports: raw.response.transports,
        })
    }
}

/// An authentication response (`PublicKeyCredential.toJSON()` of `navigator.credentials.get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationResponse {
    /// Credential ID (`rawId`).
    pub raw_id: Vec<u8>,
    /// Exact `clientDataJSON` bytes.
    pub client_data_json: Vec<u8>,
    /// Authenticator data bytes.
    pub authenticator_data: Vec<u8>,
    /// Signature bytes (DER for ES256 / ES384 / ES512).
    pub signature: Vec<u8>,
    /// `userHandle`, when the authenticator returned one.
    pub user_handle: Option<Vec<u8>>,
}

impl AuthenticationResponse {
    /// Parses the L3 JSON shape (`id`, `rawId`, `type`, `response.clientDataJSON`,
    /// `response.authenticatorData`, `response.signature`, optional/nullable
    /// `response.userHandle`; other members ignored). An empty `userHandle` is treated as absent.
    /// Binary members are decoded as in [`RegistrationResponse::from_json`].
    ///
    /// # Errors
    /// [`Error::Malformed`] on bad JSON or base64, [`Error::CredentialType`] if
    /// `type` is not `public-key` or `id` differs from `rawId`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let raw: RawCredential<RawAssertionResponse> =
            serde_json::from_str(json).map_err(|_| Error::Malformed("authentication JSON"))?;
        let raw_id = b64_decode_response(&raw.raw_id, "rawId is not base64url")?;
        check_credential_envelope(&raw.id, &raw_id, &raw.type_)?;
        let user_handle = match raw.response.user_handle {
            Some(h) if !h.is_empty() => {
                Some(b64_decode_response(&h, "userHandle is not base64url")?)
            }
            _ => None,
        };
        Ok(Self {
            raw_id,
            client_data_json: b64_decode_response(
                &raw.response.client_data_json,
                "clientDataJSON is not base64url",
            )?,
            authenticator_data: b64_decode_response(
                &raw.response.authenticator_data,
                "authenticatorData is not base64url",
            )?,
            signature: b64_decode_response(&raw.response.signature, "signature is not base64url")?,
            user_handle,
        })
    }
}

/// How the attestation was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum AttestationType {
    /// `none`: no attestation.
    None,
    /// `packed` without `x5c`: signed by the credential key itself.
    SelfAttestation,
    /// `packed` with `x5c`, `fido-u2f`, `android-key`, `tpm` or `apple` (an
    /// anonymization CA, recorded here too): certified by an attestation
    /// certificate, under [`crate::AttestationTrust::Any`]. The chain was **not** validated
    /// against trust anchors, so this is "Basic or AttCA, uncertain": treat the
    /// AAGUID as a claim only.
    BasicUnverified,
    /// A certificate format (as for `BasicUnverified`), under [`crate::AttestationTrust::Required`]:
    /// the chain verified to a configured anchor (reported in
    /// [`crate::RegisteredCredential::attestation_anchor`]) at the verification time.
    Basic,
}

/// What the RP stores for a credential after registration (L3 §7.1 step "create credential record").
///
/// Fields are public so the caller can persist and reload them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CredentialRecord {
    /// Credential ID (unique across all users: the caller must check).
    pub id: Vec<u8>,
    /// User handle (`user.id`) of the owner.
    pub user_handle: Vec<u8>,
    /// Credential public key, COSE_Key CBOR bytes as sent by the authenticator.
    pub public_key_cose: Vec<u8>,
    /// COSE algorithm of the key.
    pub alg: i64,
    /// Last signature counter.
    pub sign_count: u32,
    /// Transports reported at registration.
    pub transports: Vec<String>,
    /// BE flag at registration (cannot change later).
    pub backup_eligible: bool,
    /// Latest BS flag.
    pub backup_state: bool,
    /// Whether UV has ever been observed for this credential.
    pub uv_initialized: bool,
    /// Attestation statement format at registration.
    pub attestation_format: String,
    /// AAGUID from the attested credential data.
    pub aaguid: [u8; 16],
}
