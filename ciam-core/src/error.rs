//! The engine's error type.
//!
//! Every variant has a [`Error::public_message`] that is safe to show to an end user: it never
//! says whether an account exists and never echoes input. The detail stays in the variant (and
//! goes to `tracing` and the audit log).

use std::time::Duration;

use crate::identifier::IdentifierError;
use crate::password::{PasswordError, PolicyViolation};
use crate::profile::ProfileError;
use crate::store::StoreError;

/// A coarse classification of [`Error`], for mapping to HTTP statuses and retry logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was malformed (400).
    InvalidInput,
    /// Credentials or a token were wrong, unknown or expired (401 / 400).
    Unauthorized,
    /// Signed in, but the action needs a fresh authentication (401 / 403).
    StepUpRequired,
    /// The account cannot be used (403).
    Forbidden,
    /// The request conflicts with current state (409).
    Conflict,
    /// The named record does not exist or is not the caller's (404).
    NotFound,
    /// Too many requests (429) with a retry hint.
    RateLimited,
    /// The service is at capacity or a dependency is down; retry (503).
    Unavailable,
    /// A bug or misconfiguration (500).
    Internal,
}

/// Errors returned by [`crate::Ciam`] flows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (e-mail, phone, username) was malformed.
    #[error(transparent)]
    InvalidIdentifier(#[from] IdentifierError),
    /// A profile attribute was refused.
    #[error(transparent)]
    InvalidProfile(#[from] ProfileError),
    /// A new password does not meet the password policy.
    #[error("password refused: {0}")]
    WeakPassword(#[from] PolicyViolation),
    /// Wrong e-mail or password; also for unknown accounts.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A one-time code (TOTP, recovery code, mailed or texted code) was wrong.
    #[error("wrong code")]
    InvalidCode,
    /// A one-time token (verification, reset) is unknown, expired or already used.
    #[error("invalid or expired token")]
    InvalidToken,
    /// No valid session.
    #[error("not signed in")]
    Unauthenticated,
    /// A refresh token (feature `tokens`) is unknown, expired, spent, or its session ended.
    /// The client signs in again.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The action needs the current password or a recent sign-in.
    #[error("recent authentication required")]
    StepUpRequired,
    /// The account is locked, disabled or being deleted. Only returned after the caller proved
    /// the password, so it reveals nothing to a stranger.
    #[error("account unavailable")]
    AccountUnavailable,
    /// The address is already used by another account. Only returned to a caller who proved
    /// control of that address (e-mail change confirmation).
    #[error("address already in use")]
    EmailTaken,
    /// The record changed concurrently; the caller may retry.
    #[error("concurrent modification")]
    Conflict,
    /// The password-hashing pool is full.
    #[error("overloaded; retry after {retry_after:?}")]
    Overloaded {
        /// When a retry is likely to be served.
        retry_after: Duration,
    },
    /// Too many attempts.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// When a retry may succeed.
        retry_after: Duration,
    },
    /// The store is unreachable or busy.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// The action needs a higher assurance level, or a fresher authentication, than the
    /// session has: step up (second factor or passkey) and retry.
    #[error("step-up required: AAL{} within {max_age:?}", aal.level())]
    AssuranceRequired {
        /// The level needed.
        aal: crate::session::Aal,
        /// How recent the authentication must be, when that is what is missing.
        max_age: Option<time::Duration>,
    },
    /// The risk policy refused the sign-in. `reason` is the policy's sentence for the user.
    #[error("sign-in refused by the risk policy")]
    RiskDenied {
        /// A sentence safe to show the user.
        reason: String,
    },
    /// A request value was refused (the text names which, for logs; it is not shown).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// A passkey registration or sign-in did not verify (wrong origin, replayed or expired
    /// challenge, bad signature, refused attestation, unknown credential...). The reason is
    /// for logs and the audit log; [`Error::public_message`] says nothing more specific.
    #[error("passkey rejected: {0}")]
    PasskeyRejected(&'static str),
    /// A sign-in or link through an external identity provider did not complete (unknown,
    /// replayed or expired state, another browser, the provider's error, an ID token that did
    /// not validate...). The reason is for logs and the audit log.
    #[error("federated sign-in rejected: {0}")]
    FederationRejected(&'static str),
    /// Removing this credential would leave the account without a way to sign in.
    #[error("the last way to sign in cannot be removed")]
    LastSignInMethod,
    /// The credential or record does not exist, or belongs to someone else.
    #[error("not found")]
    NotFound,
    /// Anything else: a store failure, a corrupt record, a failed random source.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidIdentifier(_) | Self::InvalidProfile(_) | Self::WeakPassword(_) => {
                ErrorKind::InvalidInput
            }
            Self::InvalidCredentials
            | Self::InvalidCode
            | Self::InvalidToken
            | Self::InvalidRefreshToken
            | Self::Unauthenticated => ErrorKind::Unauthorized,
            Self::StepUpRequired | Self::AssuranceRequired { .. } => ErrorKind::StepUpRequired,
            Self::PasskeyRejected(_) | Self::FederationRejected(_) => ErrorKind::Unauthorized,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::LastSignInMethod => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::AccountUnavailable | Self::RiskDenied { .. } => ErrorKind::Forbidden,
            Self::EmailTaken | Self::Conflict => ErrorKind::Conflict,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Overloaded { .. } | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// A stable machine-readable code (`invalid_credentials`, `weak_password`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidIdentifier(_) => "invalid_identifier",
            Self::InvalidProfile(_) => "invalid_profile",
            Self::WeakPassword(_) => "weak_password",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidCode => "invalid_code",
            Self::InvalidToken => "invalid_token",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidRefreshToken => "invalid_grant",
            Self::StepUpRequired | Self::AssuranceRequired { .. } => "step_up_required",
            Self::PasskeyRejected(_) => "passkey_rejected",
            Self::FederationRejected(_) => "federation_rejected",
            Self::InvalidInput(_) => "invalid_input",
            Self::LastSignInMethod => "last_sign_in_method",
            Self::NotFound => "not_found",
            Self::AccountUnavailable => "account_unavailable",
            Self::RiskDenied { .. } => "risk_denied",
            Self::EmailTaken => "email_taken",
            Self::Conflict => "conflict",
            Self::Overloaded { .. } => "overloaded",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// A message safe to show to the end user.
    pub fn public_message(&self) -> String {
        match self {
            Self::InvalidIdentifier(e) => e.to_string(),
            Self::InvalidProfile(_) => "A profile value is not valid.".to_owned(),
            Self::WeakPassword(v) => v.to_string(),
            Self::InvalidCredentials => "The e-mail address or password is incorrect.".to_owned(),
            Self::InvalidCode => "That code is not right. Check it and try again.".to_owned(),
            Self::InvalidToken => {
                "This link is invalid or has expired. Request a new one.".to_owned()
            }
            Self::Unauthenticated => "Please sign in.".to_owned(),
            Self::InvalidRefreshToken => "Your sign-in has ended. Please sign in again.".to_owned(),
            Self::StepUpRequired => "Please confirm your password to continue.".to_owned(),
            Self::AssuranceRequired { .. } => {
                "Please confirm it's you (second factor or passkey) to continue.".to_owned()
            }
            Self::PasskeyRejected(_) => {
                "The passkey could not be verified. Please try again or use another way to sign in."
                    .to_owned()
            }
            Self::FederationRejected(_) => {
                "Signing in with that provider did not complete. Please try again or use another way to sign in."
                    .to_owned()
            }
            Self::LastSignInMethod => {
                "This is your only way to sign in. Add another one before removing it.".to_owned()
            }
            Self::NotFound => "Not found.".to_owned(),
            Self::InvalidInput(_) => "The request is not valid.".to_owned(),
            Self::AccountUnavailable => "This account cannot sign in. Contact support.".to_owned(),
            Self::RiskDenied { reason } => reason.clone(),
            Self::EmailTaken => "That e-mail address is already in use.".to_owned(),
            Self::Conflict => "Something changed at the same time. Please try again.".to_owned(),
            Self::Overloaded { .. } | Self::Unavailable(_) => {
                "The service is busy. Please try again in a moment.".to_owned()
            }
            Self::RateLimited { .. } => "Too many attempts. Please wait and try again.".to_owned(),
            Self::Internal(_) => "Something went wrong.".to_owned(),
        }
    }

    /// How long to wait before retrying, for retryable errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded { retry_after } | Self::RateLimited { retry_after } => {
                Some(*retry_after)
            }
            Self::Unavailable(_) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(e),
            StoreError::VersionConflict => Self::Conflict,
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<crate::rng::RandomError> for Error {
    fn from(e: crate::rng::RandomError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<PasswordError> for Error {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Overloaded { retry_after } => Self::Overloaded { retry_after },
            PasswordError::TooLong => {
                Self::WeakPassword(PolicyViolation::TooLong { max_bytes: 1024 })
            }
            other => Self::Internal(Box::new(other)),
        }
    }
}

/// Result of an engine flow.
pub type Result<T, E = Error> = std::result::Result<T, E>;
