//! The audit log: every authentication decision, with time, user, IP, user agent and reason.
//! Never a secret: tokens appear only as hashes, passwords never.
//!
//! Each entry says which decision point decided ([`AuditEntry::action`]), which rule decided
//! ([`AuditEntry::reason`], a stable code), on which inputs ([`AuditEntry::detail`], for
//! example the risk rules that fired and their signals) and with what outcome
//! ([`AuditEntry::outcome`]).
//!
//! Stored, the log is a hash chain ([`AuditRecord`], see [`chain`]) whose personal part
//! (IP, user agent, detail) is sealed with the user's data key ([`crate::shred`]); erasing a
//! user destroys the key and leaves every record, and so the chain, in place.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{AuditId, SessionId, UserId};
use crate::rng::SecureRandom;
use crate::shred::{DataKey, ShredError};

pub mod chain;

pub use chain::{
    AuditBreakage, AuditChainBroken, AuditHash, AuditHead, AuditRecord, AuditRecordBody,
    AuditVerifier, StoredPersonal,
};

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
    /// Everything held about a user was exported.
    DataExported,
    /// A user's data was erased (or an erasure is pending on a failed hook).
    AccountErased,
    /// A dormant account's owner was told it will be erased.
    DormancyNotified,
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
            Self::DataExported => "data_exported",
            Self::AccountErased => "account_erased",
            Self::DormancyNotified => "dormancy_notified",
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
            Self::DataExported,
            Self::AccountErased,
            Self::DormancyNotified,
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

/// One audit-log entry, as the engine writes it and reads it back (opened).
///
/// Not `#[non_exhaustive]`: applications and tests build it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain (0 before the entry is stored).
    #[serde(default)]
    pub seq: u64,
    /// Entry id.
    pub id: AuditId,
    /// When (UTC).
    #[serde(with = "crate::rfc3339")]
    pub at: OffsetDateTime,
    /// The decision point: which flow decided.
    pub action: AuditAction,
    /// The outcome: allowed or refused.
    pub outcome: AuditOutcome,
    /// The rule that decided, a stable machine-readable code (`wrong_password`,
    /// `unknown_user`, `expired`, `second_factor_required`, ...).
    pub reason: String,
    /// The account, when known.
    pub user_id: Option<UserId>,
    /// The session concerned, when any.
    pub session_id: Option<SessionId>,
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// Client User-Agent.
    pub user_agent: Option<String>,
    /// The inputs the rule decided on (structured); never a secret.
    pub detail: serde_json::Value,
    /// True when the user's data was erased: the personal part (IP, user agent, detail) can
    /// no longer be opened and reads as empty.
    #[serde(default)]
    pub erased: bool,
}

/// The personal part of an entry, serialised and sealed as one value.
#[derive(Serialize, Deserialize)]
struct PersonalPart {
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    detail: serde_json::Value,
}

/// What the user's data key is bound to when it is wrapped.
pub fn key_context(user: UserId) -> Vec<u8> {
    let mut c = b"ciam-core/audit-key/v1".to_vec();
    c.extend_from_slice(&user.to_bytes());
    c
}

fn record_aad(user: UserId, id: AuditId) -> Vec<u8> {
    let mut c = b"ciam-core/audit-personal/v1".to_vec();
    c.extend_from_slice(&user.to_bytes());
    c.extend_from_slice(&id.to_bytes());
    c
}

impl AuditEntry {
    /// The body to store: the personal part sealed with `key` (the user's data key) when the
    /// entry names a user. An entry naming a user whose key is gone (`key` is `None`) keeps
    /// no personal data at all.
    ///
    /// # Errors
    ///
    /// [`ShredError`] when sealing fails.
    pub fn seal(
        &self,
        key: Option<&DataKey>,
        rng: &dyn SecureRandom,
    ) -> Result<AuditRecordBody, ShredError> {
        let part = PersonalPart {
            ip: self.ip,
            user_agent: self.user_agent.clone(),
            detail: self.detail.clone(),
        };
        // Serialising plain data (an IP, a string, a JSON value) cannot fail.
        let json = serde_json::to_vec(&part).unwrap_or_default();
        let personal = match (self.user_id, key) {
            (None, _) => StoredPersonal::Clear(json),
            (Some(user), Some(key)) => {
                StoredPersonal::Sealed(key.seal(&record_aad(user, self.id), &json, rng)?)
            }
            (Some(_), None) => StoredPersonal::Clear(b"{}".to_vec()),
        };
        Ok(AuditRecordBody {
            id: self.id,
            at: self.at,
            action: self.action,
            outcome: self.outcome,
            reason: self.reason.clone(),
            user_id: self.user_id,
            session_id: self.session_id,
            personal,
        })
    }

    /// Reads a stored record back, opening its personal part with `key` (the user's data
    /// key). A sealed part that does not open (no key: erased) reads as empty with
    /// [`AuditEntry::erased`] set.
    pub fn open(record: &AuditRecord, key: Option<&DataKey>) -> Self {
        let b = &record.body;
        let part: Option<PersonalPart> = match (&b.personal, b.user_id, key) {
            (StoredPersonal::Clear(json), _, _) => serde_json::from_slice(json).ok(),
            (StoredPersonal::Sealed(sealed), Some(user), Some(key)) => key
                .open(&record_aad(user, b.id), sealed)
                .and_then(|plain| serde_json::from_slice(&plain).ok()),
            (StoredPersonal::Sealed(_), _, _) => None,
        };
        let erased = matches!(b.personal, StoredPersonal::Sealed(_)) && part.is_none();
        let (ip, user_agent, detail) = match part {
            Some(p) => (p.ip, p.user_agent, p.detail),
            None => (None, None, serde_json::Value::Object(Default::default())),
        };
        Self {
            seq: record.seq,
            id: b.id,
            at: b.at,
            action: b.action,
            outcome: b.outcome,
            reason: b.reason.clone(),
            user_id: b.user_id,
            session_id: b.session_id,
            ip,
            user_agent,
            detail,
            erased,
        }
    }
}
