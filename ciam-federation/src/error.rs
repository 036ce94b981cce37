//! Errors of the relying party. Every refusal is typed; none carries a secret.

use std::fmt;

/// Why an ID token was refused (OpenID Connect Core 1.0 §3.1.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a compact JWS with a JSON header and payload.
    Malformed,
    /// The header's `alg` is not in the allow-list (never `none`, never a MAC algorithm).
    AlgorithmNotAllowed(String),
    /// No key in the provider's JWKS has this `kid`, even after a refresh.
    UnknownKey,
    /// The key found cannot verify this algorithm.
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not the provider's issuer (exact comparison).
    WrongIssuer,
    /// `aud` does not contain the client id, or holds other audiences without a matching `azp`.
    WrongAudience,
    /// `azp` is present and is not the client id.
    WrongAuthorizedParty,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `iat` (or `nbf`) is in the future beyond the leeway, or `iat` is too old.
    NotYetValid,
    /// `nonce` is missing or differs from the one sent.
    NonceMismatch,
    /// `at_hash` does not match the access token.
    AccessTokenHashMismatch,
    /// `c_hash` does not match the code.
    CodeHashMismatch,
    /// `max_age` was requested and `auth_time` is missing or older than allowed.
    AuthTimeTooOld,
    /// A multi-tenant token's `tid` is missing, malformed or not an allowed tenant.
    TenantNotAllowed,
    /// A required claim (`sub`, `iat`, `exp`, …) is missing or has the wrong type.
    MissingClaim(&'static str),
}

impl fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed ID token"),
            Self::AlgorithmNotAllowed(a) => write!(f, "ID token algorithm {a:?} is not allowed"),
            Self::UnknownKey => f.write_str("ID token signed with an unknown key"),
            Self::KeyMismatch => f.write_str("ID token key does not fit its algorithm"),
            Self::BadSignature => f.write_str("ID token signature does not verify"),
            Self::WrongIssuer => f.write_str("ID token issuer is not the provider's"),
            Self::WrongAudience => f.write_str("ID token audience is not this client"),
            Self::WrongAuthorizedParty => f.write_str("ID token azp is not this client"),
            Self::Expired => f.write_str("ID token expired"),
            Self::NotYetValid => f.write_str("ID token issued in the future or too long ago"),
            Self::NonceMismatch => f.write_str("ID token nonce does not match"),
            Self::AccessTokenHashMismatch => f.write_str("ID token at_hash does not match"),
            Self::CodeHashMismatch => f.write_str("ID token c_hash does not match"),
            Self::AuthTimeTooOld => f.write_str("authentication older than max_age"),
            Self::TenantNotAllowed => f.write_str("tenant not allowed"),
            Self::MissingClaim(c) => write!(f, "ID token claim {c} missing or invalid"),
        }
    }
}

/// Errors of discovery, the authorization response, the code exchange and token validation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The provider configuration is unusable (bad URL, plain HTTP to a non-loopback host, …).
    #[error("federation configuration: {0}")]
    Config(String),
    /// The provider could not be reached or answered with something unusable.
    #[error("provider unreachable or unusable: {0}")]
    Http(String),
    /// The discovery document is malformed or misses a required field.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The discovery document's `issuer` is not exactly the configured issuer.
    #[error("discovered issuer {found:?} is not the configured {expected:?}")]
    DiscoveryIssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// A parameter of the authorization response is missing.
    #[error("authorization response: missing {0}")]
    MissingParameter(&'static str),
    /// A parameter of the authorization response appears more than once.
    #[error("authorization response: {0} repeated")]
    RepeatedParameter(String),
    /// `state` is unknown, used, expired, or belongs to another provider or browser.
    #[error("authorization response: state does not match")]
    StateMismatch,
    /// RFC 9207: the response's `iss` is missing (the provider promises it) or is another
    /// issuer's (mix-up).
    #[error("authorization response: issuer does not match (mix-up defence)")]
    ResponseIssuerMismatch,
    /// The provider answered the authorization request with an error (RFC 6749 §4.1.2.1).
    #[error("provider answered {error}")]
    Provider {
        /// The `error` code (for example `access_denied`).
        error: String,
        /// The provider's `error_description`, if any (not for display to users as is).
        description: Option<String>,
    },
    /// The token endpoint refused the code or answered badly.
    #[error("code exchange: {0}")]
    TokenExchange(String),
    /// The token response has no `id_token` although `openid` was asked for.
    #[error("token response has no id_token")]
    MissingIdToken,
    /// The ID token was refused.
    #[error("ID token refused: {0}")]
    IdToken(IdTokenError),
    /// The provider's user-info answer is unusable (GitHub API, …).
    #[error("user info: {0}")]
    UserInfo(String),
}

impl From<IdTokenError> for FederationError {
    fn from(e: IdTokenError) -> Self {
        Self::IdToken(e)
    }
}

impl FederationError {
    /// A short stable code for logs and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Http(_) => "http",
            Self::Discovery(_) => "discovery",
            Self::DiscoveryIssuerMismatch { .. } => "discovery_issuer_mismatch",
            Self::MissingParameter(_) => "missing_parameter",
            Self::RepeatedParameter(_) => "repeated_parameter",
            Self::StateMismatch => "state_mismatch",
            Self::ResponseIssuerMismatch => "response_issuer_mismatch",
            Self::Provider { .. } => "provider_error",
            Self::TokenExchange(_) => "token_exchange",
            Self::MissingIdToken => "missing_id_token",
            Self::IdToken(_) => "id_token",
            Self::UserInfo(_) => "user_info",
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = FederationError> = std::result::Result<T, E>;
