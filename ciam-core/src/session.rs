//! Sessions: the server-side record behind an opaque session token.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{SessionId, UserId};
use crate::secret::TokenHash;

/// How the user proved who they are, as in the `amr` claim (RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A password (`pwd`).
    Pwd,
    /// Proof of possession of an e-mail inbox, such as a verification or reset link (`email`
    /// is not registered in RFC 8176; ciam uses it for link-based proofs).
    Email,
    /// A one-time password (`otp`): a TOTP code, or one of the account's recovery codes
    /// (RFC 8176 registers no value for look-up secrets, which are one-time passwords).
    Otp,
    /// Confirmation by a code texted to a phone number (`sms`, RFC 8176).
    Sms,
    /// A hardware- or platform-bound key, such as a passkey (`hwk`).
    Hwk,
    /// Multiple factors were used (`mfa`).
    Mfa,
    /// A federated identity provider vouched for the user (`fed`, ciam's own value).
    Fed,
}

impl AuthMethod {
    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Email => "email",
            Self::Otp => "otp",
            Self::Sms => "sms",
            Self::Hwk => "hwk",
            Self::Mfa => "mfa",
            Self::Fed => "fed",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pwd" => Self::Pwd,
            "email" => Self::Email,
            "otp" => Self::Otp,
            "sms" => Self::Sms,
            "hwk" => Self::Hwk,
            "mfa" => Self::Mfa,
            "fed" => Self::Fed,
            _ => return None,
        })
    }
}

/// Authenticator assurance level (NIST SP 800-63B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Aal {
    /// Single factor.
    Aal1 = 1,
    /// Two factors, or a multi-factor authenticator.
    Aal2 = 2,
    /// Two factors, one hardware-bound and verifier-impersonation resistant.
    Aal3 = 3,
}

impl Aal {
    /// The level as a number.
    pub fn level(self) -> u8 {
        self as u8
    }

    /// The `acr` value for this level: the NIST SP 800-63 URIs registered for OpenID Connect
    /// (`http://idmanagement.gov/ns/assurance/aal/1`, `/2`, `/3`).
    pub fn acr(self) -> &'static str {
        match self {
            Self::Aal1 => "http://idmanagement.gov/ns/assurance/aal/1",
            Self::Aal2 => "http://idmanagement.gov/ns/assurance/aal/2",
            Self::Aal3 => "http://idmanagement.gov/ns/assurance/aal/3",
        }
    }

    /// Parses a level number.
    pub fn from_level(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Aal1,
            2 => Self::Aal2,
            3 => Self::Aal3,
            _ => return None,
        })
    }
}

/// What is known of the device a session was made on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The User-Agent header, truncated to 512 bytes.
    pub user_agent: Option<String>,
    /// The client IP address.
    pub ip: Option<IpAddr>,
}

/// The server-side session record. The token itself is never stored; only its hash.
///
/// Not `#[non_exhaustive]`: storage backends build it from their rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Public id (safe to show and to pass to "revoke").
    pub id: SessionId,
    /// The signed-in user.
    pub user_id: UserId,
    /// SHA-256 of the session token.
    pub token_hash: TokenHash,
    /// When the session was created.
    pub created_at: OffsetDateTime,
    /// When the session was last seen (updated at most once per touch interval).
    pub last_seen_at: OffsetDateTime,
    /// The session ends if unused until this time (sliding).
    pub idle_expires_at: OffsetDateTime,
    /// The session ends at this time whatever happens.
    pub absolute_expires_at: OffsetDateTime,
    /// When the user last actively authenticated in this session.
    pub auth_time: OffsetDateTime,
    /// Methods used to authenticate.
    pub amr: Vec<AuthMethod>,
    /// Assurance level reached.
    pub aal: Aal,
    /// Device the session was created on; the IP is refreshed on touch.
    pub device: DeviceInfo,
}

impl Session {
    /// Whether the session is past either expiry at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.idle_expires_at || now >= self.absolute_expires_at
    }

    /// When the session ends if nothing else happens.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
}

/// The caller's view of a session: no token hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Session id.
    pub id: SessionId,
    /// When it was created.
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used.
    #[serde(with = "crate::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// When it ends if unused.
    #[serde(with = "crate::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Methods used.
    pub amr: Vec<AuthMethod>,
    /// Assurance level.
    pub aal: u8,
    /// The same level as an OpenID Connect `acr` value ([`Aal::acr`]).
    pub acr: &'static str,
    /// When the user last authenticated actively (the `auth_time` a step-up renews).
    #[serde(with = "crate::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// Device.
    pub device: DeviceInfo,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionInfo {
    /// Describes `s`, marking it current when its id is `current`.
    pub fn from_session(s: &Session, current: Option<SessionId>) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at(),
            amr: s.amr.clone(),
            aal: s.aal.level(),
            acr: s.aal.acr(),
            auth_time: s.auth_time,
            device: s.device.clone(),
            current: current == Some(s.id),
        }
    }
}
