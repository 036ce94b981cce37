//! Typed outcomes of the flows.

use super::consent_gate::PendingConsent;
use crate::profile::FieldSpec;
use crate::secret::OpaqueToken;
use crate::session::SessionInfo;
use crate::user::User;

/// A new session was created.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignedIn {
    /// The session token to hand to the client (cookie value). Secret: never log it.
    pub token: OpaqueToken,
    /// The session.
    pub session: SessionInfo,
    /// The account.
    pub user: User,
    /// Profile fields worth asking for now (progressive profiling); may be empty.
    pub profile_prompts: Vec<FieldSpec>,
    /// A new trusted-device token for this browser, when one was issued (keep it in a
    /// long-lived cookie and pass it back in
    /// [`RequestContext::device_token`](crate::RequestContext)). Secret: never log it.
    pub device_token: Option<OpaqueToken>,
    /// Consents the user must give (again) before the purposes they cover may be used, as the
    /// registered [`ConsentGate`](crate::ConsentGate) answered (a material policy change, for
    /// instance); empty when none is pending or no gate is registered. The session is valid
    /// either way; show the user a consent prompt when this is not empty.
    pub consent_required: Vec<PendingConsent>,
}

/// What a sign-in attempt produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SignInOutcome {
    /// The user is signed in.
    SignedIn(Box<SignedIn>),
    /// The password was right but the e-mail address must be verified first; a new
    /// verification mail was sent (subject to the resend limit).
    VerificationRequired,
    /// The first factor was right; the account has a second factor, or the risk policy asks
    /// for one (or only for a CAPTCHA, [`MfaFactor::Captcha`]), which must now be given with
    /// [`Ciam::complete_mfa`](crate::Ciam::complete_mfa).
    MfaRequired(MfaChallenge),
}

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MfaChallenge {
    /// The single-use token naming this pending sign-in (short-lived, attempt-limited).
    /// Secret: never log it.
    pub token: OpaqueToken,
    /// The second factors the account can answer with.
    pub factors: Vec<MfaFactor>,
    /// Why a second factor (or a CAPTCHA) is asked for when the risk policy asked (safe to
    /// show).
    pub reason: Option<String>,
}

/// A second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MfaFactor {
    /// A code from an authenticator app (RFC 6238).
    Totp,
    /// One of the account's recovery codes.
    RecoveryCode,
    /// A code just mailed to the account's verified address (offered when the risk policy
    /// asks for a second factor and none is enrolled).
    EmailCode,
    /// A CAPTCHA, offered alone when the risk policy suspects automation and nothing else:
    /// show the widget, then complete with [`MfaProof::Captcha`](crate::MfaProof) (checked by
    /// the configured [`BotCheck`](crate::risk::BotCheck)), or repeat the sign-in carrying the
    /// solved token in [`RequestContext::bot_token`](crate::RequestContext). It proves a
    /// person, not an identity: it is never a second factor, and the account's own second
    /// factor is still asked for afterwards.
    Captcha,
}

/// What a registration produced. Deliberately the same whether or not the address already
/// had an account, so that registration cannot be used to discover accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterOutcome {
    /// A mail was sent to the address: a verification link for a new account, or a notice for
    /// an existing one.
    VerificationSent,
}

/// What following a mailed link proved.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VerifyOutcome {
    /// The account's e-mail address is now verified.
    EmailVerified(Box<User>),
    /// The account's e-mail address was changed to the confirmed one.
    EmailChanged(Box<User>),
}
