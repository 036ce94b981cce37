//! # ciam-core: the model, storage traits and engine of ciam
//!
//! This crate holds everything of ciam that depends on neither a web framework nor a
//! database: the account model, the storage traits backends implement, password hashing,
//! mail, events, and the [`Ciam`] engine that runs every flow. Applications usually depend on
//! the `ciam` facade instead, which re-exports this crate at its root.
//!
//! ## Getting started
//!
//! Build one [`Ciam`] at start-up and share it (it is one `Arc`):
//!
//! ```no_run
//! # async fn demo(backend: std::sync::Arc<impl ciam_core::store::Backend>) -> Result<(), Box<dyn std::error::Error>> {
//! use ciam_core::{Ciam, Registration, RequestContext, SecretString, VerifyOutcome};
//!
//! let ciam = Ciam::builder().backend(backend).app_name("Acme").public_url("https://acme.example").build()?;
//! let ctx = RequestContext::new(None, None);
//! ciam.register(Registration::new("ada@example.com", Some(SecretString::new("correct horse battery staple"))), &ctx).await?;
//! // The mailed link carries ?token=...; following it:
//! # let token = "";
//! if let VerifyOutcome::EmailVerified(user) = ciam.verify_email(token, &ctx).await? {
//!     println!("{} verified", user.id);
//! }
//! # Ok(()) }
//! ```
//!
//! ## Flows
//!
//! | method on [`Ciam`] | what it does |
//! |---|---|
//! | `register`, `resend_verification`, `verify_email` | sign-up with a mailed, single-use, expiring link |
//! | `sign_in_password`, `authenticate`, `sign_out` | password sign-in to an opaque session token; validation with sliding expiry |
//! | `list_sessions`, `revoke_session`, `revoke_other_sessions`, `revoke_all_sessions` | the device list |
//! | `forgot_password`, `reset_password`, `change_password` | password recovery and change (ending other sessions) |
//! | `request_email_change` (then `verify_email`) | e-mail change, confirmed at the new address, the old one told |
//! | `update_profile`, `profile_prompts`, `profile_prompts_json` | profile attributes and progressive profiling (the prompts also as JSON rendered once, for answers written on every request) |
//! | `audit_log`, `recent_audit`, `verify_audit` | the audit entries about a user (opened); the tamper-evident chain checked end to end (see [`audit::chain`]) |
//! | `export_user`, `erase_user`, `erase_own_account`, `erasure_pending`, `run_retention` | privacy requests: a versioned JSON export of everything held about a user, erasure through every store and registered hook (crypto-shredding the audit log), dormant-account retention; see [`privacy`] |
//! | `purge_expired` | maintenance: deletes expired sessions and one-time challenges (unused links, abandoned sign-ins, spent refresh-token records), returning a [`PurgeReport`]; run it from a periodic job |
//! | `start_totp_enrolment`, `confirm_totp`, `disable_totp`, `regenerate_recovery_codes`, `mfa_status` | TOTP second factor (sealed secret, QR code) and recovery codes ([`CiamBuilder::mfa`]) |
//! | `complete_mfa` | the second step of a sign-in that answered [`SignInOutcome::MfaRequired`]; "remember this device" |
//! | `trusted_devices`, `forget_device`, `forget_devices`, `require_aal`, `require_recent_auth` | remembered browsers (listed, revoked one by one or all; at most [`MAX_TRUSTED_DEVICES`] per account); assurance checks for sensitive actions ([`Error::AssuranceRequired`]) |
//! | `start_magic_link`, `confirm_magic_link`, `start_sign_in_code`, `verify_sign_in_code` | passwordless sign-in by e-mail, bound to the requesting browser |
//! | `issue_tokens`, `refresh_tokens`, `verify_access_token`, `verify_access_token_live`, `jwks`, `rotate_signing_key`, `retire_signing_key` | API tokens (feature `tokens`, `CiamBuilder::tokens`); see the `tokens` module |
//! | `start_federated_sign_in`, `finish_federation`, `start_federated_link`, `complete_federated_link`, `federated_identities`, `unlink_federated_identity`, `federated_tokens` | sign-in with external identity providers and account linking (feature `federation`, `CiamBuilder::federation`); see the `federation` module |
//! | `passkey_registration_options` / `finish_passkey_registration`, `passkey_sign_up_options` / `finish_passkey_sign_up`, `passkey_sign_in_options` / `finish_passkey_sign_in`, `passkey_step_up_options` / `finish_passkey_step_up`, `passkeys`, `rename_passkey`, `delete_passkey` | passkeys (feature `passkeys`, [`CiamBuilder::passkeys`]) |
//!
//! Sign-ins are throttled without victim lockout ([`ThrottlePolicy`]; at most 100
//! consecutive password failures per account, after which only an untrusted browser's
//! password sign-in waits) and, with [`CiamBuilder::risk_policy`], every way in (password,
//! passkey, magic link, codes) is assessed for risk with an explanation in the audit log
//! ([`risk`]); [`CiamBuilder::bot_check`] feeds a CAPTCHA or bot-management service into it.
//!
//! ## Observability
//!
//! Every flow above runs in a `tracing` span named `ciam.flow` (fields `flow`, the method's
//! name, and `outcome`, `ok` or the error's [`Error::code`]; INFO level, DEBUG for
//! `authenticate`), and records `ciam_flow_total{flow, outcome}` and
//! `ciam_flow_duration_seconds{flow}` through the [`metrics`](https://docs.rs/metrics) facade:
//! install any recorder (a Prometheus exporter, say) and they appear. Span fields are static
//! names only; no address, password, token or key is ever recorded.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `smtp` | no | `mail::SmtpMailer`: SMTP delivery through lettre (STARTTLS, AUTH) |
//! | `passkeys` | no | the passkey flows, verified by `ciam-webauthn` (re-exported as `webauthn`) |
//! | `federation` | no | `federation`: OpenID Connect / OAuth 2.0 sign-in (Google, Apple, Microsoft Entra, GitHub, any issuer, enterprise connections) verified by `ciam-federation` (re-exported as `oidc`), identities keyed by (issuer, subject), linking safe against pre-hijacking |
//! | `tokens` | no | `tokens`: JWT access tokens (EdDSA or ES256) minted from a session, the rotating key set and its JWKS, rotating refresh tokens with reuse detection |
//!
//! ## Building blocks
//!
//! [`shred`] holds the crypto-shredding primitives (per-user data keys wrapped under a master
//! key) the audit log and the consent ledger seal personal data with. [`otp`] holds the
//! one-time-password primitives (TOTP/HOTP, otpauth URIs, sealed secrets,
//! recovery codes, enrolment QR codes) the MFA flows use; [`risk`] the risk policy, the
//! breached-password check, and the SMS and bot-check hooks. [`rfc3339`] writes timestamps
//! for serde as `time::serde::rfc3339` does, without allocating (the answers of every request
//! carry them).
//!
//! ## Extension points
//!
//! Each is an object-safe trait with a doctest implementation on its page:
//! the stores in [`store`], [`clock::Clock`], [`rng::SecureRandom`], [`mail::Mailer`],
//! [`mail::MailTemplates`], [`event::EventSink`], [`risk::RiskPolicy`],
//! [`risk::BreachedPasswords`], [`risk::SmsSender`], [`risk::BotCheck`],
//! [`privacy::ExportContributor`] and [`privacy::ErasureHook`].
//!
//! ## Security considerations
//!
//! - Answers never reveal whether an account exists: see [`Error::public_message`], and the
//!   docs of [`Ciam::register`], [`Ciam::sign_in_password`] and [`Ciam::forgot_password`].
//! - Secrets ([`SecretString`], [`OpaqueToken`]) are zeroized on drop and redacted in `Debug`;
//!   stores keep only [`secret::TokenHash`]es of bearer tokens.
//! - Password hashing runs on a bounded pool; see [`password`].
//! - [`clock::ManualClock`] is for tests. A deterministic [`rng::SecureRandom`] must never be
//!   used in production.

pub mod audit;
pub mod challenge;
pub mod clock;
pub mod credential;
pub mod error;
pub mod event;
pub mod id;
pub mod identifier;
pub mod mail;
pub mod otp;
pub mod password;
pub mod profile;
pub mod rfc3339;
/// Adaptive risk: signals, the explained risk policy, breached-password, bot and SMS hooks.
pub mod risk;
pub mod rng;
pub mod secret;
pub mod session;
pub mod shred;
pub mod store;
pub mod user;

mod engine;

/// The OpenID Connect / OAuth 2.0 relying party behind the federated flows (feature
/// `federation`).
#[cfg(feature = "federation")]
pub use ciam_federation as oidc;
/// The WebAuthn relying party behind the passkey flows (feature `passkeys`).
#[cfg(feature = "passkeys")]
pub use ciam_webauthn as webauthn;
pub use engine::account::Registration;
pub use engine::config::{LinkPaths, Policy, SessionPolicy};
pub use engine::consent_gate;
pub use engine::consent_gate::{ConsentGate, PendingConsent};
pub use engine::context::{AuthContext, RequestContext};
#[cfg(feature = "federation")]
pub use engine::federation;
#[cfg(feature = "federation")]
pub use engine::federation::{
    FederatedAccount, FederatedIdentity, FederationConfig, FederationOutcome, FederationStart,
    PendingLink,
};
pub use engine::maintenance::PurgeReport;
pub use engine::mfa::{
    MAX_TRUSTED_DEVICES, MfaConfig, MfaProof, MfaStatus, TotpEnrolment, TrustedDevice,
};
pub use engine::outcome::{
    MfaChallenge, MfaFactor, RegisterOutcome, SignInOutcome, SignedIn, VerifyOutcome,
};
#[cfg(feature = "passkeys")]
pub use engine::passkeys::{MAX_PASSKEY_NAME, PasskeyConfig, PasskeyInfo};
pub use engine::passwordless::SIGN_IN_CODE_DIGITS;
pub use engine::privacy;
pub use engine::throttle::ThrottlePolicy;
#[cfg(feature = "tokens")]
pub use engine::tokens;
#[cfg(feature = "tokens")]
pub use engine::tokens::{AccessToken, TokenConfig, TokenError, TokenPair};
pub use engine::{BuildError, Ciam, CiamBuilder};
pub use error::{Error, ErrorKind, Result};
pub use secret::{OpaqueToken, SecretString};
