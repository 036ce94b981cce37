//! The single error type of this crate.

/// Why a ceremony (or a configuration) was refused.
///
/// Each variant names the relying-party step that failed, so callers can log
/// precisely and map to a generic "passkey not accepted" answer for the user.
/// Never show the detail to the end user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relying-party configuration is invalid (builder validation).
    #[error("invalid relying-party configuration: {0}")]
    InvalidConfig(&'static str),
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// A challenge shorter than 16 bytes was supplied.
    #[error("challenge must be at least 16 bytes")]
    ChallengeTooShort,
    /// Input could not be decoded (base64url, JSON, CBOR, authenticator data, DER...).
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// `type` of the credential is not `public-key`, or `id` does not match `rawId`.
    #[error("credential type or id is invalid")]
    CredentialType,
    /// `clientDataJSON.type` is not the one required by the ceremony.
    #[error("clientDataJSON type mismatch")]
    ClientDataType,
    /// `clientDataJSON.challenge` does not equal the challenge issued for the ceremony.
    #[error("challenge mismatch")]
    Challenge,
    /// `clientDataJSON.origin` is not one of the configured origins.
    #[error("origin not allowed")]
    Origin,
    /// `crossOrigin` / `topOrigin` refused by the cross-origin policy.
    #[error("cross-origin use refused")]
    CrossOrigin,
    /// `authData.rpIdHash` is not SHA-256 of the configured RP ID.
    #[error("rpIdHash mismatch")]
    RpIdHash,
    /// The user-present (UP) flag is clear.
    #[error("user presence flag not set")]
    UserPresence,
    /// The user-verified (UV) flag is clear while user verification is required.
    #[error("user verification required but not performed")]
    UserVerification,
    /// Inconsistent backup flags (BS without BE, or BE differs from the stored value).
    #[error("invalid backup eligibility / backup state flags")]
    BackupFlags,
    /// The credential algorithm is not supported or not allowed by the configuration.
    #[error("algorithm {0} not supported or not allowed")]
    Algorithm(i64),
    /// The credential public key is invalid (not on the curve, RSA too small, wrong shape...).
    #[error("invalid credential public key: {0}")]
    InvalidKey(&'static str),
    /// The credential ID is longer than 1023 bytes.
    #[error("credential id too long ({0} bytes)")]
    CredentialIdTooLong(usize),
    /// The attestation statement format is unknown or not supported.
    #[error("unsupported attestation format {0:?}")]
    UnsupportedFormat(String),
    /// The attestation statement does not verify or is malformed for its format.
    #[error("invalid attestation statement: {0}")]
    AttestationStatement(&'static str),
    /// The attestation policy requires a trusted attestation and this one is not:
    /// `none` or self attestation, or an `x5c` chain that does not verify to a
    /// configured anchor at the verification time.
    #[error("attestation not trusted: {0}")]
    UntrustedAttestation(&'static str),
    /// The assertion signature does not verify with the stored credential key.
    #[error("signature verification failed")]
    Signature,
    /// The signature counter did not increase: possible cloned authenticator.
    #[error("signature counter regression (stored {stored}, received {received})")]
    CounterRegression {
        /// Counter stored with the credential.
        stored: u32,
        /// Counter reported by the authenticator.
        received: u32,
    },
    /// The credential is not the expected one or not in `allowCredentials`.
    #[error("credential not allowed for this ceremony")]
    NotAllowed,
    /// `userHandle` is missing when required, or does not match the credential owner.
    #[error("user handle mismatch")]
    UserHandle,
}
