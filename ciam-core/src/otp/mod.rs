//! One-time passwords: TOTP and HOTP, enrolment URIs and QR codes, encryption of secrets at
//! rest, and recovery codes.
//!
//! These are the primitives; the engine flows that store credentials and rate-limit attempts
//! are built on them.
//!
//! # The parts
//!
//! | item | what it does |
//! |---|---|
//! | [`OtpSecret`] | the shared HMAC key: at least 160 bits (also when imported), 160 or more drawn from the injected [`SecureRandom`](crate::rng::SecureRandom); wiped on drop, redacted in `Debug` |
//! | [`TotpConfig`] | RFC 6238 parameters (SHA1/SHA256/SHA512, 6 or 8 digits, 30 s, ±1 step), [`TotpConfig::generate`] and [`TotpConfig::verify_totp`] |
//! | [`HotpConfig`] | RFC 4226 counters with a bounded look-ahead, [`HotpConfig::verify_hotp`] |
//! | [`base32`] | RFC 4648 base32, for secrets shown to users and in URIs |
//! | [`OtpAuthUri`] | builds and parses `otpauth://totp/Issuer:account?secret=...` |
//! | [`EnrolmentQr`] | the URI as a QR code, rendered as SVG or PNG |
//! | [`SecretBox`] | AES-256-GCM sealing of secrets under integrator keys, bound to the user id, with key rotation |
//! | [`RecoveryCodes`], [`verify_recovery_code`] | single-use 120-bit recovery codes stored as SHA-256 |
//!
//! # How the engine uses them
//!
//! Enrolment: draw an [`OtpSecret`], show the [`OtpAuthUri`] as an [`EnrolmentQr`] (and the
//! base32 secret for manual entry), and ask for a first code before activating the credential.
//! Store the secret only as [`SecretBox::seal`] output, with the user id as associated data;
//! the sealing key lives outside the database.
//!
//! Sign-in: [`SecretBox::open`] the stored secret, call [`TotpConfig::verify_totp`] with the
//! **server's** current time (never a time sent by the client) and the stored last used step,
//! and on success store the returned step: a code for the same or an earlier step is then
//! refused as [`OtpError::Replayed`], so every code works once. For HOTP, store the counter
//! [`HotpConfig::verify_hotp`] returns; it only ever moves forward.
//!
//! Rate limiting: a 6-digit code has about 20 bits, so attempts (codes and recovery codes)
//! must be throttled per account like passwords. That is the engine's job, not this module's.
//!
//! Recovery: show [`RecoveryCodes::codes`] once, store the hashes, and delete the hash whose
//! index [`verify_recovery_code`] returns.
//!
//! # Security notes
//!
//! - Submitted codes are compared as fixed-width digit strings in constant time with every
//!   code of the window; leading zeros are significant; anything but exactly 6 (or 8) ASCII
//!   digits is [`OtpError::MalformedCode`].
//! - The skew is at most one step either side, and the period 15 to 120 seconds.
//! - Recovery codes carry 120 bits ([`RECOVERY_CODE_BITS`]), over the 112 bits below which
//!   ASVS 6.5.2 asks for the password KDF, so SHA-256 is enough to store them.

pub mod base32;
mod hotp;
mod qr;
mod recovery;
mod secret_box;
mod uri;

pub use hotp::{HotpConfig, OtpAlgorithm, OtpSecret, TotpConfig};
pub use qr::EnrolmentQr;
pub use recovery::{
    DEFAULT_RECOVERY_CODES, MAX_RECOVERY_CODES, RECOVERY_CODE_BITS, RecoveryCodeHash,
    RecoveryCodes, verify_recovery_code,
};
pub use secret_box::{SealingKey, SecretBox};
pub use uri::{OtpAuthUri, UriError};

use crate::rng::RandomError;

/// Why an OTP operation failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    /// A configuration value is out of range (digits, period, skew, key id, counts).
    #[error("invalid OTP configuration: {0}")]
    InvalidConfig(String),
    /// The secret has fewer than 160 bits.
    #[error("the OTP secret is shorter than 160 bits")]
    SecretTooShort,
    /// The secret is longer than [`OtpSecret::MAX_BYTES`].
    #[error("the OTP secret is too long")]
    SecretTooLong,
    /// The text is not valid base32.
    #[error("invalid base32")]
    InvalidBase32,
    /// The submitted code is not exactly the configured number of ASCII digits.
    #[error("the code does not have the expected number of digits")]
    MalformedCode,
    /// The submitted code matches no step (or counter) in the window.
    #[error("the code is incorrect")]
    InvalidCode,
    /// The submitted code matches only a step that was already used.
    #[error("the code was already used")]
    Replayed,
    /// The otpauth:// URI was refused.
    #[error("invalid otpauth URI: {0}")]
    InvalidUri(#[from] UriError),
    /// The sealed secret names a key id that is not configured.
    #[error("the sealed secret uses a key that is not configured")]
    UnknownKey,
    /// The sealed secret is malformed, was tampered with, or belongs to another user.
    #[error("the sealed secret could not be opened")]
    SealedInvalid,
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The data does not fit in a QR code.
    #[error("QR code: {0}")]
    Qr(String),
}
