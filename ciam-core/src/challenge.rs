//! One-time challenges: e-mail verification and password-reset tokens today; WebAuthn
//! challenges, OAuth state and OTP codes in later crates.
//!
//! A challenge is stored under the hash of its secret, expires, and is consumed atomically:
//! of two concurrent attempts with the same secret, exactly one gets it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::UserId;
use crate::secret::TokenHash;

/// What a challenge is for. A secret issued for one purpose never satisfies another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChallengePurpose {
    /// Prove the account's e-mail address.
    VerifyEmail,
    /// Reset a forgotten password.
    ResetPassword,
    /// Prove a new e-mail address before it replaces the old one.
    ChangeEmail,
    /// A WebAuthn registration ceremony in progress (the challenge sent to the browser).
    PasskeyRegistration,
    /// A WebAuthn authentication ceremony in progress.
    PasskeyAuthentication,
    /// A sign-in whose first factor passed, waiting for the second.
    MfaPending,
    /// A TOTP secret shown to the user, waiting for its first code.
    TotpEnrolment,
    /// A browser trusted by an account (device cookie; "remember this device").
    TrustedDevice,
    /// A mailed one-time sign-in link.
    MagicLink,
    /// A mailed (or texted) one-time sign-in code, stored under the requesting browser's
    /// binding token.
    SignInCode,
    /// A live refresh token (feature `tokens`), bound to a session.
    RefreshToken,
    /// A refresh token already exchanged, kept for reuse detection and its grace window
    /// (feature `tokens`); stored under a key derived from the token's hash.
    RefreshTokenSpent,
    /// An authorization request to an external identity provider in progress, stored under
    /// the hash of its `state` (feature `federation`).
    FederationState,
    /// An external identity waiting for its user to sign in to the existing account it will
    /// be linked to (feature `federation`).
    FederationLink,
}

impl ChallengePurpose {
    /// The stable text form used by storage backends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
            Self::PasskeyRegistration => "passkey_registration",
            Self::PasskeyAuthentication => "passkey_authentication",
            Self::MfaPending => "mfa_pending",
            Self::TotpEnrolment => "totp_enrolment",
            Self::TrustedDevice => "trusted_device",
            Self::MagicLink => "magic_link",
            Self::SignInCode => "sign_in_code",
            Self::RefreshToken => "refresh_token",
            Self::RefreshTokenSpent => "refresh_token_spent",
            Self::FederationState => "federation_state",
            Self::FederationLink => "federation_link",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "verify_email" => Self::VerifyEmail,
            "reset_password" => Self::ResetPassword,
            "change_email" => Self::ChangeEmail,
            "passkey_registration" => Self::PasskeyRegistration,
            "passkey_authentication" => Self::PasskeyAuthentication,
            "mfa_pending" => Self::MfaPending,
            "totp_enrolment" => Self::TotpEnrolment,
            "trusted_device" => Self::TrustedDevice,
            "magic_link" => Self::MagicLink,
            "sign_in_code" => Self::SignInCode,
            "refresh_token" => Self::RefreshToken,
            "refresh_token_spent" => Self::RefreshTokenSpent,
            "federation_state" => Self::FederationState,
            "federation_link" => Self::FederationLink,
            _ => return None,
        })
    }
}

/// A stored one-time challenge.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Challenge {
    /// Hash of the secret handed out.
    pub secret_hash: TokenHash,
    /// What it proves.
    pub purpose: ChallengePurpose,
    /// The account it belongs to.
    pub user_id: Option<UserId>,
    /// Purpose-specific data (for example the new address of an e-mail change).
    pub payload: serde_json::Value,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl Challenge {
    /// Creates a challenge record.
    pub fn new(
        secret_hash: TokenHash,
        purpose: ChallengePurpose,
        user_id: Option<UserId>,
        payload: serde_json::Value,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            secret_hash,
            purpose,
            user_id,
            payload,
            created_at,
            expires_at,
        }
    }
}
