//! The audit log: every authentication decision, with time, user, IP, user agent and reason.
//! Never a secret: tokens appear only as hashes, passwords never.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{AuditId, SessionId, UserId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// An account was registered.
    Register,
    /// A registration was attempted for an address that already has an account.
    RegisterExisting,
    /// A verification mail was sent.
    VerificationSent,
    /// An e-mail address was verified.
    EmailVerified,
    /// A password sign-in was attempted.
    SignInPassword,
    /// A stored hash was upgraded to the current parameters.
    PasswordRehashed,
    /// A session was ended by its owner signing out.
    SignOut,
    /// A session was revoked.
    SessionRevoked,
    /// A password reset was requested.
    PasswordResetRequested,
    /// A password was reset with a mailed token.
    PasswordReset,
    /// A password was changed by a signed-in user.
    PasswordChanged,
    /// An e-mail change was requested.
    EmailChangeRequested,
    /// An e-mail address was changed.
    EmailChanged,
    /// A session token was presented and refused.
    SessionRejected,
    /// A request was throttled.
    Throttled,
    /// A passkey was added to an account (or refused).
    PasskeyAdded,
    /// A passkey sign-in was attempted.
    SignInPasskey,
    /// A signed-in user re-authenticated with a passkey.
    StepUpPasskey,
    /// A passkey was renamed.
    PasskeyRenamed,
    /// A passkey was removed (or its removal refused).
    PasskeyRemoved,
    /// A synced passkey's backup state (BS flag) changed between uses; it stays valid.
    PasskeyBackupStateChanged,
    /// A passkey's signature counter did not increase (a possible clone), flagged by policy.
    PasskeyCounterRegression,
    /// A second factor was enrolled (or its confirmation failed).
    MfaEnrolled,
    /// Second factors were removed.
    MfaDisabled,
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesIssued,
    /// A sign-in passed its first factor and now needs a second.
    MfaChallenged,
    /// A second factor was answered (or refused).
    SignInMfa,
    /// The account's trusted-device tokens were revoked.
    DevicesForgotten,
    /// A sign-in link or code was requested.
    PasswordlessRequested,
    /// A sign-in link or code was used (or refused).
    SignInPasswordless,
    /// A sign-in was assessed for risk: the decision, the rules that fired and their inputs.
    RiskAssessed,
    /// An account was closed by its owner (or the request was refused).
    AccountDeleted,
    /// API tokens (an access token and a refresh token) were issued for a session.
    TokensIssued,
    /// A sign-in with an external identity provider (OpenID Connect, OAuth 2.0) was completed
    /// or refused.
    SignInFederated,
    /// An external identity was linked to an account (or the link was refused).
    FederatedLinked,
    /// An external identity was unlinked from an account (or the unlink was refused).
    FederatedUnlinked,
    /// An unverified account was superseded by a verified external identity holding the same
    /// address (pre-hijacking defence): its credentials and sessions were removed.
    AccountSuperseded,
}

impl AuditAction {
    /// The stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::RegisterExisting => "register_existing",
            Self::VerificationSent => "verification_sent",
            Self::EmailVerified => "email_verified",
            Self::SignInPassword => "sign_in_password",
            Self::PasswordRehashed => "password_rehashed",
            Self::SignOut => "sign_out",
            Self::SessionRevoked => "session_revoked",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::SessionRejected => "session_rejected",
            Self::Throttled => "throttled",
            Self::PasskeyAdded => "passkey_added",
            Self::SignInPasskey => "sign_in_passkey",
            Self::StepUpPasskey => "step_up_passkey",
            Self::PasskeyRenamed => "passkey_renamed",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyBackupStateChanged => "passkey_backup_state_changed",
            Self::PasskeyCounterRegression => "passkey_counter_regression",
            Self::MfaEnrolled => "mfa_enrolled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodesIssued => "recovery_codes_issued",
            Self::MfaChallenged => "mfa_challenged",
            Self::SignInMfa => "sign_in_mfa",
            Self::DevicesForgotten => "devices_forgotten",
            Self::PasswordlessRequested => "passwordless_requested",
            Self::SignInPasswordless => "sign_in_passwordless",
            Self::RiskAssessed => "risk_assessed",
            Self::AccountDeleted => "account_deleted",
            Self::TokensIssued => "tokens_issued",
            Self::SignInFederated => "sign_in_federated",
            Self::FederatedLinked => "federated_linked",
            Self::FederatedUnlinked => "federated_unlinked",
            Self::AccountSuperseded => "account_superseded",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Register,
            Self::RegisterExisting,
            Self::VerificationSent,
            Self::EmailVerified,
            Self::SignInPassword,
            Self::PasswordRehashed,
            Self::SignOut,
            Self::SessionRevoked,
            Self::PasswordResetRequested,
            Self::PasswordReset,
            Self::PasswordChanged,
            Self::EmailChangeRequested,
            Self::EmailChanged,
            Self::SessionRejected,
            Self::Throttled,
            Self::PasskeyAdded,
            Self::SignInPasskey,
            Self::StepUpPasskey,
            Self::PasskeyRenamed,
            Self::PasskeyRemoved,
            Self::PasskeyBackupStateChanged,
            Self::PasskeyCounterRegression,
            Self::MfaEnrolled,
            Self::MfaDisabled,
            Self::RecoveryCodesIssued,
            Self::MfaChallenged,
            Self::SignInMfa,
            Self::DevicesForgotten,
            Self::PasswordlessRequested,
            Self::SignInPasswordless,
            Self::RiskAssessed,
            Self::AccountDeleted,
            Self::TokensIssued,
            Self::SignInFederated,
            Self::FederatedLinked,
            Self::FederatedUnlinked,
            Self::AccountSuperseded,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Whether the decision allowed the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Allowed or done.
    Success,
    /// Refused.
    Failure,
}

impl AuditOutcome {
    /// The stable text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// One audit-log entry.
///
/// Not `#[non_exhaustive]`: storage backends build it from their rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Entry id.
    pub id: AuditId,
    /// When (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What.
    pub action: AuditAction,
    /// Allowed or refused.
    pub outcome: AuditOutcome,
    /// A short machine-readable reason (`wrong_password`, `unknown_user`, `expired`, ...).
    pub reason: String,
    /// The account, when known.
    pub user_id: Option<UserId>,
    /// The session concerned, when any.
    pub session_id: Option<SessionId>,
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// Client User-Agent.
    pub user_agent: Option<String>,
    /// Extra structured detail; never a secret.
    pub detail: serde_json::Value,
}
