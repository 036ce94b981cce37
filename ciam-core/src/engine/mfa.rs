//! Second factors (TOTP and recovery codes), the pending second-factor sign-in, trusted devices
//! ("remember this device") and assurance checks for sensitive actions.
//!
//! # Sign-in with a second factor
//!
//! When an account has a TOTP authenticator, a correct password gives
//! [`SignInOutcome::MfaRequired`] with a short-lived, single-use token instead of a session.
//! [`Ciam::complete_mfa`] takes that token and a TOTP code or a recovery code and creates the
//! session (`amr` `pwd otp mfa`, AAL2). Wrong answers are counted per pending
//! sign-in ([`Policy::mfa_attempts`](crate::Policy)) and throttled per account and IP like
//! passwords; a TOTP code is accepted once (the last used time step is stored), so a code seen
//! over a shoulder cannot be replayed. A password reset never signs in, so it never skips the
//! second factor.
//!
//! A recovery code reports `amr` `otp`, like a TOTP code. RFC 8176 registers no value for
//! look-up secrets; they are one-time passwords in its sense ("otp": a one-time password),
//! and NIST SP 800-63B counts them as "something you have", like an OTP device. `kba` would
//! be wrong (they are not knowledge questions) and an unregistered value would surprise
//! relying parties. The audit entry of the sign-in names the factor (`recovery_code`), so
//! the two stay distinguishable where it matters. A texted code reports `sms` (RFC 8176).
//!
//! # Trusted devices
//!
//! Every successful sign-in hands the browser a *trusted-device token* (if it has no valid one
//! for the account): a random token whose hash is stored with the account and an expiry
//! ([`Policy::trusted_device_ttl`](crate::Policy)). It exempts the browser from the account's
//! sign-in throttling (so an attacker cannot lock its owner out), and when the user ticked
//! "remember this device" at the second factor, it skips the second factor until
//! [`Policy::remember_device_for`](crate::Policy) has passed. [`Ciam::trusted_devices`] lists
//! an account's devices (when, from which browser and address, whether remembered, which is
//! the current one) and [`Ciam::forget_device`] revokes one; [`Ciam::forget_devices`] revokes
//! every token of an account; a password reset does too.
//!
//! The issue asks for a *signed, revocable* device token. This token is a 256-bit random value
//! whose SHA-256 is stored server-side with the account, its expiry and its "remember" time,
//! rather than a self-contained signed token; it meets each property the signature would give,
//! and revocation better:
//!
//! - **Unforgeable**: a token is valid only if its hash is in the store, and guessing one of
//!   2^256 values is harder than forging a MAC; the store holds only hashes, so a leaked
//!   database yields no usable token.
//! - **Bound to its account**: the record names the user; another account's token is ignored.
//! - **Time-limited**: the record expires ([`Policy::trusted_device_ttl`](crate::Policy)), and
//!   "remember" has its own, shorter or equal, limit, both checked against the server clock.
//! - **Revocable**: deleting the record ends the token at once, one device or all of them,
//!   with no deny-list and no key rotation; a signed token would need both.
//! - **Opaque**: it carries nothing readable on the client.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::context::{AuthContext, RequestContext};
use super::outcome::{MfaChallenge, MfaFactor, SignInOutcome};
use super::throttle;
use super::{Ciam, Decision};
use crate::audit::AuditAction;
use crate::challenge::{Challenge, ChallengePurpose};
use crate::credential::{Credential, CredentialKind};
use crate::error::{Error, Result};
use crate::id::{CredentialId, UserId};
use crate::otp::{
    EnrolmentQr, OtpAuthUri, OtpError, OtpSecret, RecoveryCodeHash, RecoveryCodes, SecretBox,
    TotpConfig, verify_recovery_code,
};
use crate::secret::{OpaqueToken, SecretString, TokenHash};
use crate::session::{Aal, AuthMethod};
use crate::store::StoreError;
use crate::user::User;

/// Second-factor settings.
#[derive(Debug)]
pub struct MfaConfig {
    secret_box: SecretBox,
    totp: TotpConfig,
    recovery_codes: usize,
}

impl MfaConfig {
    /// TOTP with the RFC 6238 defaults (SHA-1, 6 digits, 30 s, one step of skew) and ten
    /// recovery codes; TOTP secrets are sealed with `secret_box` (AES-256-GCM, bound to the
    /// user id).
    pub fn new(secret_box: SecretBox) -> Self {
        Self {
            secret_box,
            totp: TotpConfig::default(),
            recovery_codes: crate::otp::DEFAULT_RECOVERY_CODES,
        }
    }

    /// The TOTP parameters for new enrolments (SHA-1/256/512, 6 or 8 digits).
    pub fn with_totp(mut self, totp: TotpConfig) -> Self {
        self.totp = totp;
        self
    }

    /// How many recovery codes a set holds (1 to 50; clamped).
    pub fn with_recovery_codes(mut self, n: usize) -> Self {
        self.recovery_codes = n.clamp(1, crate::otp::MAX_RECOVERY_CODES);
        self
    }
}

/// A TOTP secret being enrolled: show the QR code (or the secret for manual entry), then
/// confirm with a first code. Secret fields are redacted in `Debug`.
#[non_exhaustive]
pub struct TotpEnrolment {
    /// Names this enrolment in [`Ciam::confirm_totp`]. Single-use, expires with the pending TTL.
    pub enrolment: OpaqueToken,
    /// The `otpauth://totp/...` URI the QR code encodes.
    pub otpauth_uri: SecretString,
    /// The secret in base32, for typing into an app by hand.
    pub secret: SecretString,
    /// The QR code as an SVG document.
    pub qr_svg: String,
    /// The QR code as a PNG image.
    pub qr_png: Vec<u8>,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("enrolment", &self.enrolment)
            .field("otpauth_uri", &"***")
            .field("secret", &"***")
            .finish_non_exhaustive()
    }
}

/// A second-factor answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MfaProof {
    /// A TOTP code (digits; spaces are ignored).
    Totp(SecretString),
    /// A recovery code (case, spaces and dashes ignored).
    RecoveryCode(SecretString),
    /// The code mailed for this sign-in ([`MfaFactor::EmailCode`]).
    EmailCode(SecretString),
    /// The token of a solved CAPTCHA, for a sign-in that asked only for one
    /// ([`MfaFactor::Captcha`]); checked by the configured
    /// [`BotCheck`](crate::risk::BotCheck). Not a second factor: the account's own second
    /// factor is asked for next, if it has one.
    Captcha(SecretString),
}

/// A browser trusted by the account (it holds a trusted-device token), as listed by
/// [`Ciam::trusted_devices`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrustedDevice {
    /// Names the device in [`Ciam::forget_device`]. Not the token: knowing it grants nothing.
    pub id: CredentialId,
    /// When the token was issued (the sign-in that trusted the browser).
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the token stops working.
    #[serde(with = "crate::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Until when it skips the second factor ("remember this device"), if it does.
    #[serde(with = "time::serde::rfc3339::option")]
    pub remember_until: Option<OffsetDateTime>,
    /// The browser's User-Agent when it was trusted.
    pub user_agent: Option<String>,
    /// The client IP when it was trusted.
    pub ip: Option<IpAddr>,
    /// Whether this is the browser making the request.
    pub current: bool,
}

/// Most browsers one account trusts at once; issuing one more revokes the oldest.
pub const MAX_TRUSTED_DEVICES: usize = 32;

/// One device in an account's device index (see [`Ciam::trusted_devices`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceEntry {
    id: CredentialId,
    /// The token's hash, hex: the key of its trusted-device record.
    hash: String,
    created_at: i64,
    expires_at: i64,
    remember_until: Option<i64>,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
}

/// The key of the record listing `user`'s trusted devices. It has the shape of no token
/// (tokens are 43 base64url characters), so no browser can present it.
fn device_index_hash(user: UserId) -> TokenHash {
    TokenHash::of(&format!("trusted-device-index:{user}"))
}

fn from_unix(t: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).ok()
}

/// An account's second factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MfaStatus {
    /// An authenticator app is enrolled.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: usize,
}

/// What a TOTP credential stores.
#[derive(Debug, Serialize, Deserialize)]
struct StoredTotp {
    sealed: String,
    algorithm: String,
    digits: u32,
    period: u64,
    last_used_step: Option<u64>,
}

/// What a recovery-code credential stores: the hashes of the unused codes, hex.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRecoveryCodes {
    hashes: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0_u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string().into())
}

impl StoredTotp {
    fn config(&self) -> Result<TotpConfig> {
        let algorithm = crate::otp::OtpAlgorithm::from_name(&self.algorithm)
            .ok_or_else(|| internal("stored TOTP algorithm"))?;
        TotpConfig::new(algorithm, self.digits, self.period, TotpConfig::MAX_SKEW).map_err(internal)
    }
}

fn unix_secs(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

/// What a second-factor answer proved.
enum Proven {
    /// A second factor, reported in `amr` as this method.
    Factor(AuthMethod),
    /// A solved CAPTCHA: a person, not an identity.
    Captcha,
}

impl Ciam {
    fn mfa_config(&self) -> Result<&MfaConfig> {
        self.inner.mfa.as_ref().ok_or_else(|| {
            Error::Internal("second factors are not configured (CiamBuilder::mfa)".into())
        })
    }

    async fn credential_of(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> Result<Option<Credential>> {
        Ok(self
            .inner
            .credentials
            .credentials_for_user(user, kind)
            .await?
            .into_iter()
            .next())
    }

    /// The second factors `user` can answer with (empty when none is enrolled).
    pub(super) async fn second_factors(&self, user: UserId) -> Result<Vec<MfaFactor>> {
        if self.inner.mfa.is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if self
            .credential_of(user, CredentialKind::Totp)
            .await?
            .is_some()
        {
            out.push(MfaFactor::Totp);
            let codes = self.recovery_hashes(user).await?;
            if !codes.1.is_empty() {
                out.push(MfaFactor::RecoveryCode);
            }
        }
        Ok(out)
    }

    /// The account's second factors.
    pub async fn mfa_status(&self, auth: &AuthContext) -> Result<MfaStatus> {
        crate::engine::observe::flow("mfa_status", async move {
            Ok(MfaStatus {
                totp: self
                    .credential_of(auth.user_id, CredentialKind::Totp)
                    .await?
                    .is_some(),
                recovery_codes_left: self.recovery_hashes(auth.user_id).await?.1.len(),
            })
        })
        .await
    }

    /// Starts enrolling an authenticator app. Needs a recent sign-in
    /// ([`Error::StepUpRequired`]); replacing an enrolled app also needs a session that used
    /// the second factor (AAL2, [`Error::AssuranceRequired`]). Nothing changes until
    /// [`Ciam::confirm_totp`] gets a code from the app.
    pub async fn start_totp_enrolment(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<TotpEnrolment> {
        crate::engine::observe::flow("start_totp_enrolment", async move {
            let config = self.mfa_config()?;
            let user = self.user(auth.user_id).await?;
            self.step_up(&user, auth, None, AuditAction::MfaEnrolled, ctx)
                .await?;
            // Replacing an enrolled app is removing it: a session that did not use the
            // second factor (AAL1) must step up first.
            self.second_factor_gate(&user, auth, AuditAction::MfaEnrolled, ctx)
                .await?;
            let secret = OtpSecret::generate_for(config.totp.algorithm(), self.inner.rng.as_ref())
                .map_err(internal)?;
            let account = user
                .email
                .as_ref()
                .map(|e| e.as_str().to_owned())
                .unwrap_or_else(|| user.id.to_string());
            let uri = OtpAuthUri::new(
                Some(&self.inner.app_name.replace(':', " ")),
                &account,
                secret.clone(),
                config.totp,
            )
            .map_err(internal)?;
            let uri_text = uri.to_uri();
            let qr = EnrolmentQr::new(uri_text.expose()).map_err(internal)?;
            let sealed = config
                .secret_box
                .seal(&secret, &user.id.to_bytes(), self.inner.rng.as_ref())
                .map_err(internal)?;
            let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
            let now = self.now();
            let stored = StoredTotp {
                sealed,
                algorithm: config.totp.algorithm().name().to_owned(),
                digits: config.totp.digits(),
                period: config.totp.period(),
                last_used_step: None,
            };
            let challenge = Challenge::new(
                token.hash(),
                ChallengePurpose::TotpEnrolment,
                Some(user.id),
                json!({"totp": stored, "attempts": 0}),
                now,
                now + self
                    .inner
                    .policy
                    .mfa_pending_ttl
                    .max(time::Duration::minutes(10)),
            );
            self.inner.challenges.insert_challenge(&challenge).await?;
            Ok(TotpEnrolment {
                enrolment: token,
                otpauth_uri: uri_text,
                secret: secret.to_base32(),
                qr_svg: qr.to_svg(),
                qr_png: qr.to_png(4).map_err(internal)?,
            })
        })
        .await
    }

    /// Confirms an enrolment with a code from the app; the authenticator then replaces any
    /// earlier one. Returns the recovery codes, to show once, when the account had none.
    ///
    /// A wrong code leaves the enrolment open (up to [`Policy::mfa_attempts`](crate::Policy)
    /// tries) and is [`Error::InvalidCode`]; an unknown or expired enrolment is
    /// [`Error::InvalidToken`].
    pub async fn confirm_totp(
        &self,
        auth: &AuthContext,
        enrolment: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<SecretString>>> {
        crate::engine::observe::flow("confirm_totp", async move {
            let config = self.mfa_config()?;
            let token = OpaqueToken::from_client(enrolment);
            if !token.is_well_formed() {
                return Err(Error::InvalidToken);
            }
            let now = self.now();
            let Some(mut challenge) = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::TotpEnrolment, &token.hash(), now)
                .await?
            else {
                return Err(Error::InvalidToken);
            };
            if challenge.user_id != Some(auth.user_id) {
                // Another account's enrolment: put it back untouched, so that presenting it
                // cannot void the owner's enrolment.
                self.inner.challenges.insert_challenge(&challenge).await?;
                self.record(
                    Decision::failure(AuditAction::MfaEnrolled, "other_account")
                        .user(auth.user_id)
                        .session(auth.session_id),
                    ctx,
                )
                .await;
                return Err(Error::InvalidToken);
            }
            let mut stored: StoredTotp =
                serde_json::from_value(challenge.payload["totp"].clone()).map_err(internal)?;
            let secret = config
                .secret_box
                .open(&stored.sealed, &auth.user_id.to_bytes())
                .map_err(internal)?;
            let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            match stored
                .config()?
                .verify_totp(&secret, &code, unix_secs(now), None)
            {
                Ok(step) => stored.last_used_step = Some(step),
                Err(_) => {
                    let attempts = challenge.payload["attempts"].as_u64().unwrap_or(0) + 1;
                    if attempts < u64::from(self.inner.policy.mfa_attempts) {
                        challenge.payload["attempts"] = json!(attempts);
                        self.inner.challenges.insert_challenge(&challenge).await?;
                    }
                    self.record(
                        Decision::failure(AuditAction::MfaEnrolled, "wrong_code")
                            .user(auth.user_id)
                            .session(auth.session_id)
                            .detail(json!({"factor": "totp", "attempts": attempts})),
                        ctx,
                    )
                    .await;
                    return Err(Error::InvalidCode);
                }
            }
            let previous = self
                .inner
                .credentials
                .credentials_for_user(auth.user_id, CredentialKind::Totp)
                .await?;
            let credential = Credential::new(
                CredentialId::generate(self.inner.rng.as_ref())?,
                auth.user_id,
                CredentialKind::Totp,
                serde_json::to_string(&stored).map_err(internal)?,
                now,
            )
            .with_name("Authenticator app");
            self.inner
                .credentials
                .insert_credential(&credential)
                .await?;
            for old in previous {
                self.inner.credentials.delete_credential(old.id).await?;
            }
            let codes = if self.recovery_hashes(auth.user_id).await?.1.is_empty() {
                Some(self.store_recovery_codes(auth.user_id).await?)
            } else {
                None
            };
            self.record(
                Decision::success(AuditAction::MfaEnrolled, "totp")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(json!({
                        "factor": "totp",
                        "algorithm": stored.algorithm,
                        "digits": stored.digits,
                        "recovery_codes_issued": codes.as_ref().map_or(0, Vec::len),
                    })),
                ctx,
            )
            .await;
            Ok(codes)
        })
        .await
    }

    /// Removes the authenticator app and the recovery codes. Needs a recent sign-in, and a
    /// session that used the second factor (AAL2; [`Error::AssuranceRequired`] otherwise), so
    /// a session from before the enrolment cannot take the factor away.
    pub async fn disable_totp(&self, auth: &AuthContext, ctx: &RequestContext) -> Result<()> {
        crate::engine::observe::flow("disable_totp", async move {
            let user = self.user(auth.user_id).await?;
            self.step_up(&user, auth, None, AuditAction::MfaDisabled, ctx)
                .await?;
            self.second_factor_gate(&user, auth, AuditAction::MfaDisabled, ctx)
                .await?;
            let mut removed = 0;
            for kind in [CredentialKind::Totp, CredentialKind::RecoveryCodes] {
                for c in self
                    .inner
                    .credentials
                    .credentials_for_user(user.id, kind)
                    .await?
                {
                    if self.inner.credentials.delete_credential(c.id).await? {
                        removed += 1;
                    }
                }
            }
            self.inner
                .challenges
                .delete_challenges(user.id, ChallengePurpose::TrustedDevice)
                .await?;
            self.record(
                Decision::success(AuditAction::MfaDisabled, "totp")
                    .user(user.id)
                    .session(auth.session_id)
                    .detail(json!({"credentials_removed": removed})),
                ctx,
            )
            .await;
            Ok(())
        })
        .await
    }

    /// Replaces the recovery codes with a new set (the old ones stop working) and returns the
    /// codes, to show once. Needs a recent sign-in, an enrolled authenticator and a session
    /// that used it (AAL2; [`Error::AssuranceRequired`] otherwise).
    pub async fn regenerate_recovery_codes(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<Vec<SecretString>> {
        crate::engine::observe::flow("regenerate_recovery_codes", async move {
            self.mfa_config()?;
            let user = self.user(auth.user_id).await?;
            self.step_up(&user, auth, None, AuditAction::RecoveryCodesIssued, ctx)
                .await?;
            self.second_factor_gate(&user, auth, AuditAction::RecoveryCodesIssued, ctx)
                .await?;
            if self
                .credential_of(user.id, CredentialKind::Totp)
                .await?
                .is_none()
            {
                return Err(Error::InvalidInput("no second factor enrolled"));
            }
            let codes = self.store_recovery_codes(user.id).await?;
            self.record(
                Decision::success(AuditAction::RecoveryCodesIssued, "regenerated")
                    .user(user.id)
                    .session(auth.session_id)
                    .detail(json!({"count": codes.len()})),
                ctx,
            )
            .await;
            Ok(codes)
        })
        .await
    }

    /// The recovery-code credential and its unused hashes.
    async fn recovery_hashes(
        &self,
        user: UserId,
    ) -> Result<(Option<Credential>, Vec<RecoveryCodeHash>)> {
        let Some(c) = self
            .credential_of(user, CredentialKind::RecoveryCodes)
            .await?
        else {
            return Ok((None, Vec::new()));
        };
        let stored: StoredRecoveryCodes = serde_json::from_str(&c.secret).map_err(internal)?;
        let hashes = stored
            .hashes
            .iter()
            .map(|h| unhex32(h).map(RecoveryCodeHash::from_bytes))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| internal("stored recovery code hash"))?;
        Ok((Some(c), hashes))
    }

    /// Stores a fresh set of recovery codes in place of the old one and returns the codes.
    async fn store_recovery_codes(&self, user: UserId) -> Result<Vec<SecretString>> {
        let config = self.mfa_config()?;
        let set = RecoveryCodes::generate(config.recovery_codes, self.inner.rng.as_ref())
            .map_err(internal)?;
        let (codes, hashes) = set.into_parts();
        let stored = StoredRecoveryCodes {
            hashes: hashes.iter().map(|h| hex(h.as_bytes())).collect(),
        };
        let old = self
            .inner
            .credentials
            .credentials_for_user(user, CredentialKind::RecoveryCodes)
            .await?;
        let credential = Credential::new(
            CredentialId::generate(self.inner.rng.as_ref())?,
            user,
            CredentialKind::RecoveryCodes,
            serde_json::to_string(&stored).map_err(internal)?,
            self.now(),
        )
        .with_name("Recovery codes");
        self.inner
            .credentials
            .insert_credential(&credential)
            .await?;
        for c in old {
            self.inner.credentials.delete_credential(c.id).await?;
        }
        Ok(codes)
    }

    /// Parks a sign-in whose first factor passed until the second arrives.
    pub(super) async fn mfa_required(
        &self,
        user: &User,
        amr: &[AuthMethod],
        factors: Vec<MfaFactor>,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let now = self.now();
        let amr: Vec<&str> = amr.iter().map(|m| m.as_str()).collect();
        let mut payload = json!({"amr": amr, "attempts": 0, "factors": factors});
        let mailed = match (&user.email, factors.contains(&MfaFactor::EmailCode)) {
            (Some(email), true) => {
                let code = self.random_code()?;
                payload["email_code"] = json!(super::passwordless::code_hash(&code));
                Some((email.clone(), code))
            }
            _ => None,
        };
        let challenge = Challenge::new(
            token.hash(),
            ChallengePurpose::MfaPending,
            Some(user.id),
            payload,
            now,
            now + self.inner.policy.mfa_pending_ttl,
        );
        self.inner.challenges.insert_challenge(&challenge).await?;
        if let Some((email, code)) = mailed {
            self.send_mail(&email, crate::mail::MailKind::SignInCode { code });
        }
        self.record(
            Decision::success(AuditAction::MfaChallenged, "second_factor_required")
                .user(user.id)
                .detail(json!({"first_factor": amr, "factors": factors})),
            ctx,
        )
        .await;
        Ok(SignInOutcome::MfaRequired(MfaChallenge {
            token,
            factors,
            reason,
        }))
    }

    /// Completes a sign-in that answered [`SignInOutcome::MfaRequired`].
    ///
    /// With `remember_device`, the browser's trusted-device token skips the second factor
    /// for [`Policy::remember_device_for`](crate::Policy).
    ///
    /// A sign-in that asked only for a CAPTCHA ([`MfaFactor::Captcha`]) takes
    /// [`MfaProof::Captcha`]: once the bot check accepts it, the sign-in goes on as if the
    /// risk policy had allowed it, to the account's own second factor (a new
    /// [`SignInOutcome::MfaRequired`]) or to a session with the first factor's `amr` only.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an unknown, expired or used-up pending sign-in, and for one
    /// started before the password was changed or reset; [`Error::AccountUnavailable`] when
    /// the account was locked or disabled meanwhile;
    /// [`Error::InvalidCode`] for a wrong code (the pending sign-in stays open until
    /// its attempts run out); [`Error::RateLimited`] when the account or IP is throttled.
    pub async fn complete_mfa(
        &self,
        token: &str,
        proof: &MfaProof,
        remember_device: bool,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        crate::engine::observe::flow("complete_mfa", async move {
            let token = OpaqueToken::from_client(token);
            if !token.is_well_formed() {
                return Err(Error::InvalidToken);
            }
            let now = self.now();
            let Some(mut pending) = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::MfaPending, &token.hash(), now)
                .await?
            else {
                return self.invalid_token(AuditAction::SignInMfa, ctx).await;
            };
            let user_id = pending.user_id.ok_or(Error::InvalidToken)?;
            let user = self.user(user_id).await.map_err(|_| Error::InvalidToken)?;
            // A password change or reset after the first factor ends the pending sign-in: whoever
            // knew the old password does not finish with it.
            if let Some(password) = self
                .credential_of(user_id, CredentialKind::Password)
                .await?
                && password.updated_at > pending.created_at
            {
                self.record(
                    Decision::failure(AuditAction::SignInMfa, "password_changed").user(user_id),
                    ctx,
                )
                .await;
                return Err(Error::InvalidToken);
            }
            // So does the account becoming unavailable while it waits.
            if !user.status.may_sign_in() {
                self.record(
                    Decision::failure(AuditAction::SignInMfa, user.status.as_str()).user(user_id),
                    ctx,
                )
                .await;
                return Err(Error::AccountUnavailable);
            }
            let keys = throttle::keys(
                &self.inner.policy.throttle,
                "mfa",
                user.email.as_ref(),
                ctx,
                false,
            );
            if let Err(e) = self
                .check_throttle(&keys, AuditAction::SignInMfa, ctx)
                .await
            {
                // The pending sign-in survives the wait.
                self.inner.challenges.insert_challenge(&pending).await?;
                return Err(e);
            }
            let offered: Vec<MfaFactor> =
                serde_json::from_value(pending.payload["factors"].clone()).unwrap_or_default();
            let verified = match proof {
                MfaProof::Totp(code) => self
                    .check_totp(self.mfa_config()?, user_id, code)
                    .await?
                    .map(Proven::Factor),
                MfaProof::RecoveryCode(code) => self
                    .use_recovery_code(user_id, code)
                    .await?
                    .map(Proven::Factor),
                MfaProof::EmailCode(code) => {
                    let expected = pending.payload["email_code"].as_str().unwrap_or_default();
                    let typed: String = code
                        .expose()
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect();
                    (!expected.is_empty()
                        && crate::secret::constant_time_eq(
                            super::passwordless::code_hash(&typed).as_bytes(),
                            expected.as_bytes(),
                        ))
                    .then_some(Proven::Factor(AuthMethod::Email))
                }
                // Only a sign-in that asked for a CAPTCHA takes one.
                MfaProof::Captcha(token) if offered.contains(&MfaFactor::Captcha) => {
                    match self.captcha_passed(token, ctx).await {
                        Ok(passed) => passed.then_some(Proven::Captcha),
                        Err(e) => {
                            // Not the user's fault: the pending sign-in survives.
                            self.inner.challenges.insert_challenge(&pending).await?;
                            return Err(e);
                        }
                    }
                }
                MfaProof::Captcha(_) => None,
            };
            let factor = match proof {
                MfaProof::Totp(_) => "totp",
                MfaProof::RecoveryCode(_) => "recovery_code",
                MfaProof::EmailCode(_) => "email_code",
                MfaProof::Captcha(_) => "captcha",
            };
            let Some(proven) = verified else {
                // A failed CAPTCHA is no guess at the account's secrets.
                if !matches!(proof, MfaProof::Captcha(_)) {
                    self.count_failure(&keys).await?;
                }
                let attempts = pending.payload["attempts"].as_u64().unwrap_or(0) + 1;
                let left = u64::from(self.inner.policy.mfa_attempts).saturating_sub(attempts);
                if left > 0 {
                    pending.payload["attempts"] = json!(attempts);
                    self.inner.challenges.insert_challenge(&pending).await?;
                }
                self.record(
                    Decision::failure(AuditAction::SignInMfa, "wrong_code")
                        .user(user_id)
                        .detail(
                            json!({"factor": factor, "attempts": attempts, "attempts_left": left}),
                        ),
                    ctx,
                )
                .await;
                return Err(Error::InvalidCode);
            };
            let mut amr: Vec<AuthMethod> = pending.payload["amr"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.as_str().and_then(AuthMethod::parse))
                        .collect()
                })
                .unwrap_or_default();
            let method = match proven {
                Proven::Factor(method) => method,
                Proven::Captcha => {
                    // The risk check is met; the sign-in goes on as its first factor would
                    // have: to the account's own second factor, or to a session.
                    let action = if amr.contains(&AuthMethod::Pwd) {
                        AuditAction::SignInPassword
                    } else {
                        AuditAction::SignInPasswordless
                    };
                    let trusted = self.trusted_device(user_id, ctx).await?;
                    return self
                        .finish_first_factor(user, &amr, trusted, action, "captcha", ctx)
                        .await;
                }
            };
            self.clear_account_failures(&keys).await?;
            amr.push(method);
            amr.push(AuthMethod::Mfa);
            let remember_until =
                remember_device.then(|| now + self.inner.policy.remember_device_for);
            let mut signed_in = self
                .start_session(user, amr.clone(), Aal::Aal2, now, ctx)
                .await?;
            signed_in.device_token = self
                .issue_device_token(user_id, remember_until, ctx)
                .await?;
            self.record(
                Decision::success(AuditAction::SignInMfa, factor)
                    .user(user_id)
                    .session(signed_in.session.id)
                    .detail(json!({
                        "amr": amr.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                        "aal": 2,
                        "remember_device": remember_device,
                        "location": ctx.location.map(|(lat, lon)| [lat, lon]),
                    })),
                ctx,
            )
            .await;
            Ok(SignInOutcome::SignedIn(Box::new(signed_in)))
        })
        .await
    }

    /// Checks a TOTP code and stores its time step (each code works once). `Some(Otp)` when
    /// it matched.
    async fn check_totp(
        &self,
        config: &MfaConfig,
        user: UserId,
        code: &SecretString,
    ) -> Result<Option<AuthMethod>> {
        let code: String = code
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for _ in 0..3 {
            let Some(mut credential) = self.credential_of(user, CredentialKind::Totp).await? else {
                return Ok(None);
            };
            let mut stored: StoredTotp =
                serde_json::from_str(&credential.secret).map_err(internal)?;
            let secret = config
                .secret_box
                .open(&stored.sealed, &user.to_bytes())
                .map_err(internal)?;
            let step = match stored.config()?.verify_totp(
                &secret,
                &code,
                unix_secs(self.now()),
                stored.last_used_step,
            ) {
                Ok(step) => step,
                Err(OtpError::Replayed | OtpError::InvalidCode | OtpError::MalformedCode) => {
                    return Ok(None);
                }
                Err(e) => return Err(internal(e)),
            };
            stored.last_used_step = Some(step);
            if config.secret_box.needs_reseal(&stored.sealed) {
                stored.sealed = config
                    .secret_box
                    .seal(&secret, &user.to_bytes(), self.inner.rng.as_ref())
                    .map_err(internal)?;
            }
            credential.secret = serde_json::to_string(&stored).map_err(internal)?;
            credential.updated_at = self.now();
            match self.inner.credentials.update_credential(&credential).await {
                Ok(_) => {
                    self.inner
                        .credentials
                        .touch_credential(credential.id, self.now())
                        .await?;
                    return Ok(Some(AuthMethod::Otp));
                }
                // Another sign-in used a code at the same moment: read again, so the same
                // code cannot pass twice.
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Uses up a recovery code. `Some(..)` when it matched.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &SecretString,
    ) -> Result<Option<AuthMethod>> {
        for _ in 0..3 {
            let (Some(mut credential), mut hashes) = self.recovery_hashes(user).await? else {
                return Ok(None);
            };
            let Some(i) = verify_recovery_code(code.expose(), &hashes) else {
                return Ok(None);
            };
            hashes.remove(i);
            let stored = StoredRecoveryCodes {
                hashes: hashes.iter().map(|h| hex(h.as_bytes())).collect(),
            };
            credential.secret = serde_json::to_string(&stored).map_err(internal)?;
            credential.updated_at = self.now();
            match self.inner.credentials.update_credential(&credential).await {
                Ok(_) => return Ok(Some(AuthMethod::Otp)),
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// The trusted-device state of the browser for `user`: `None` when it presented no valid
    /// token for this account, else whether "remember this device" still skips the second
    /// factor.
    pub(super) async fn trusted_device(
        &self,
        user: UserId,
        ctx: &RequestContext,
    ) -> Result<Option<bool>> {
        let Some(token) = ctx.device_token.as_ref().filter(|t| t.is_well_formed()) else {
            return Ok(None);
        };
        let now = self.now();
        let Some(record) = self
            .inner
            .challenges
            .challenge_by_hash(ChallengePurpose::TrustedDevice, &token.hash(), now)
            .await?
        else {
            return Ok(None);
        };
        if record.user_id != Some(user) || record.payload.get("devices").is_some() {
            return Ok(None);
        }
        let skip_mfa = record.payload["remember_until"]
            .as_i64()
            .is_some_and(|until| now.unix_timestamp() < until);
        Ok(Some(skip_mfa))
    }

    /// Issues a trusted-device token for `user` unless the browser already holds a valid one
    /// that says as much; returns the new token to set. The device joins the account's
    /// device index ([`Ciam::trusted_devices`]).
    pub(super) async fn issue_device_token(
        &self,
        user: UserId,
        remember_until: Option<OffsetDateTime>,
        ctx: &RequestContext,
    ) -> Result<Option<OpaqueToken>> {
        let current = self.trusted_device(user, ctx).await?;
        if current.is_some() && (remember_until.is_none() || current == Some(true)) {
            return Ok(None);
        }
        let mut replaced = None;
        if let (Some(_), Some(old)) = (current, &ctx.device_token) {
            // Upgrading to "remember": replace the old token.
            replaced = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::TrustedDevice, &old.hash(), self.now())
                .await?
                .and_then(|r| serde_json::from_value::<CredentialId>(r.payload["id"].clone()).ok());
        }
        let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let id = CredentialId::generate(self.inner.rng.as_ref())?;
        let now = self.now();
        let ttl = self.inner.policy.trusted_device_ttl;
        let remember_until = remember_until.map(|t| t.min(now + ttl).unix_timestamp());
        let record = Challenge::new(
            token.hash(),
            ChallengePurpose::TrustedDevice,
            Some(user),
            json!({"remember_until": remember_until, "id": id}),
            now,
            now + ttl,
        );
        self.inner.challenges.insert_challenge(&record).await?;
        let entry = DeviceEntry {
            id,
            hash: hex(token.hash().as_bytes()),
            created_at: now.unix_timestamp(),
            expires_at: (now + ttl).unix_timestamp(),
            remember_until,
            user_agent: ctx.user_agent.clone(),
            ip: ctx.ip,
        };
        let mut evicted: Vec<DeviceEntry> = Vec::new();
        self.update_device_index(user, |entries| {
            entries.retain(|e| Some(e.id) != replaced);
            entries.push(entry.clone());
            // A bounded list: a client that signs in without keeping its cookie (a script,
            // a private window) must not grow the record rewritten on every sign-in. The
            // oldest browsers beyond the cap stop being trusted.
            evicted.clear();
            if entries.len() > MAX_TRUSTED_DEVICES {
                entries.sort_by_key(|e| e.created_at);
                let excess = entries.len() - MAX_TRUSTED_DEVICES;
                evicted.extend(entries.drain(..excess));
            }
        })
        .await?;
        let now = self.now();
        for e in &evicted {
            if let Some(hash) = unhex32(&e.hash).map(TokenHash::from_bytes) {
                self.inner
                    .challenges
                    .consume_challenge(ChallengePurpose::TrustedDevice, &hash, now)
                    .await?;
            }
        }
        Ok(Some(token))
    }

    /// Applies `change` to `user`'s device index. The index is a challenge record rewritten
    /// by taking it (atomically) and putting back the new version; when two writers race, the
    /// loser finds the winner's record in place, merges what it took and tries again, so no
    /// entry is lost. Expired entries are dropped on the way. The index only names devices:
    /// each token's own record decides whether it is valid, and listing checks it.
    async fn update_device_index(
        &self,
        user: UserId,
        mut change: impl FnMut(&mut Vec<DeviceEntry>),
    ) -> Result<()> {
        let key = device_index_hash(user);
        let mut taken: Vec<DeviceEntry> = Vec::new();
        for _ in 0..5 {
            let now = self.now();
            if let Some(record) = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::TrustedDevice, &key, now)
                .await?
            {
                let found: Vec<DeviceEntry> =
                    serde_json::from_value(record.payload["devices"].clone()).unwrap_or_default();
                for e in found {
                    if taken.iter().all(|t| t.id != e.id) {
                        taken.push(e);
                    }
                }
            }
            let mut entries = taken.clone();
            change(&mut entries);
            entries.retain(|e| e.expires_at > now.unix_timestamp());
            let Some(last) = entries.iter().filter_map(|e| from_unix(e.expires_at)).max() else {
                return Ok(());
            };
            let record = Challenge::new(
                key,
                ChallengePurpose::TrustedDevice,
                Some(user),
                json!({"devices": entries}),
                now,
                last,
            );
            match self.inner.challenges.insert_challenge(&record).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    /// The browsers the signed-in account trusts (each holds a live trusted-device token),
    /// newest first; the one making the request is marked `current`. Tokens issued before
    /// the device index existed are not listed (they still expire, and
    /// [`Ciam::forget_devices`] still revokes them).
    pub async fn trusted_devices(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<Vec<TrustedDevice>> {
        crate::engine::observe::flow("trusted_devices", async move {
            let now = self.now();
            let challenges = &self.inner.challenges;
            let Some(index) = challenges
                .challenge_by_hash(
                    ChallengePurpose::TrustedDevice,
                    &device_index_hash(auth.user_id),
                    now,
                )
                .await?
                .filter(|r| r.user_id == Some(auth.user_id))
            else {
                return Ok(Vec::new());
            };
            let entries: Vec<DeviceEntry> =
                serde_json::from_value(index.payload["devices"].clone()).unwrap_or_default();
            let presented = ctx.device_token.as_ref().map(|t| hex(t.hash().as_bytes()));
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                let Some(hash) = unhex32(&e.hash).map(TokenHash::from_bytes) else {
                    continue;
                };
                // The token's own record is the truth: gone (forgotten, replaced, expired)
                // means not listed.
                let Some(live) = challenges
                    .challenge_by_hash(ChallengePurpose::TrustedDevice, &hash, now)
                    .await?
                    .filter(|r| r.user_id == Some(auth.user_id))
                else {
                    continue;
                };
                let (Some(created_at), Some(expires_at)) =
                    (from_unix(e.created_at), from_unix(e.expires_at))
                else {
                    continue;
                };
                out.push(TrustedDevice {
                    id: e.id,
                    created_at,
                    expires_at: expires_at.min(live.expires_at),
                    remember_until: e
                        .remember_until
                        .and_then(from_unix)
                        .filter(|until| *until > now),
                    user_agent: e.user_agent,
                    ip: e.ip,
                    current: presented.as_deref() == Some(e.hash.as_str()),
                });
            }
            out.sort_by_key(|d| std::cmp::Reverse(d.created_at));
            Ok(out)
        })
        .await
    }

    /// Revokes one of the signed-in account's trusted devices: that browser loses its
    /// throttling exemption and, if remembered, needs the second factor again. Returns false
    /// when the account has no such device (another account's id is never touched).
    pub async fn forget_device(
        &self,
        auth: &AuthContext,
        id: CredentialId,
        ctx: &RequestContext,
    ) -> Result<bool> {
        crate::engine::observe::flow("forget_device", async move {
            let now = self.now();
            let Some(index) = self
                .inner
                .challenges
                .challenge_by_hash(
                    ChallengePurpose::TrustedDevice,
                    &device_index_hash(auth.user_id),
                    now,
                )
                .await?
                .filter(|r| r.user_id == Some(auth.user_id))
            else {
                return Ok(false);
            };
            let entries: Vec<DeviceEntry> =
                serde_json::from_value(index.payload["devices"].clone()).unwrap_or_default();
            let Some(hash) = entries
                .iter()
                .find(|e| e.id == id)
                .and_then(|e| unhex32(&e.hash))
                .map(TokenHash::from_bytes)
            else {
                return Ok(false);
            };
            let revoked = match self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::TrustedDevice, &hash, now)
                .await?
            {
                Some(record) if record.user_id == Some(auth.user_id) => true,
                // Not this account's record (cannot happen short of a hash collision): put
                // it back.
                Some(record) => {
                    self.inner.challenges.insert_challenge(&record).await?;
                    false
                }
                None => false,
            };
            self.update_device_index(auth.user_id, |entries| entries.retain(|e| e.id != id))
                .await?;
            if revoked {
                self.record(
                    Decision::success(AuditAction::DevicesForgotten, "one")
                        .user(auth.user_id)
                        .session(auth.session_id)
                        .detail(json!({"device": id, "devices": 1})),
                    ctx,
                )
                .await;
            }
            Ok(revoked)
        })
        .await
    }

    /// Revokes every trusted-device token of the signed-in account (every browser will need
    /// the second factor again, and loses its throttling exemption).
    pub async fn forget_devices(&self, auth: &AuthContext, ctx: &RequestContext) -> Result<u64> {
        crate::engine::observe::flow("forget_devices", async move {
            let had_index = self
                .inner
                .challenges
                .challenge_by_hash(
                    ChallengePurpose::TrustedDevice,
                    &device_index_hash(auth.user_id),
                    self.now(),
                )
                .await?
                .is_some();
            let n = self
                .inner
                .challenges
                .delete_challenges(auth.user_id, ChallengePurpose::TrustedDevice)
                .await?
                // The index record went too; it is no device.
                .saturating_sub(u64::from(had_index));
            self.record(
                Decision::success(AuditAction::DevicesForgotten, "forgotten")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(json!({"devices": n})),
                ctx,
            )
            .await;
            Ok(n)
        })
        .await
    }

    /// Whether `token` is a CAPTCHA the configured bot check accepts as solved.
    async fn captcha_passed(&self, token: &SecretString, ctx: &RequestContext) -> Result<bool> {
        let check = self.inner.bot_check.as_ref().ok_or_else(|| {
            Error::Internal("no bot check configured (CiamBuilder::bot_check)".into())
        })?;
        let verdict = check
            .check(Some(token.expose()), ctx.ip)
            .await
            .map_err(|e| Error::Internal(Box::new(e)))?;
        Ok(verdict.passed_challenge)
    }

    /// Finishes a sign-in whose first factor (`first`, as `amr`) passed and whose risk check
    /// is met: asks for the account's second factor unless a remembered device (`trusted`,
    /// from [`Self::trusted_device`]) skips it; otherwise starts the session, hands the
    /// browser a trusted-device token and records `action` / `reason`.
    pub(super) async fn finish_first_factor(
        &self,
        user: User,
        first: &[AuthMethod],
        trusted: Option<bool>,
        action: AuditAction,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        let factors = self.second_factors(user.id).await?;
        if !factors.is_empty() && trusted != Some(true) {
            return self.mfa_required(&user, first, factors, None, ctx).await;
        }
        let remembered = !factors.is_empty();
        let mut amr = first.to_vec();
        let aal = if remembered {
            // A remembered device stands in for the second factor (something you have).
            amr.push(AuthMethod::Mfa);
            Aal::Aal2
        } else {
            Aal::Aal1
        };
        let amr_text: Vec<&str> = amr.iter().map(|m| m.as_str()).collect();
        let mut signed_in = self.start_session(user, amr, aal, self.now(), ctx).await?;
        signed_in.device_token = self
            .issue_device_token(signed_in.user.id, None, ctx)
            .await?;
        self.record(
            Decision::success(action, reason)
                .user(signed_in.user.id)
                .session(signed_in.session.id)
                .detail(json!({
                    "amr": amr_text,
                    "aal": aal.level(),
                    "remembered_device": remembered,
                    "location": ctx.location.map(|(lat, lon)| [lat, lon]),
                })),
            ctx,
        )
        .await;
        Ok(SignInOutcome::SignedIn(Box::new(signed_in)))
    }

    /// Checks that the session reached assurance level `aal` (NIST SP 800-63B); otherwise
    /// [`Error::AssuranceRequired`] names the level, for a "step up" answer.
    pub fn require_aal(&self, auth: &AuthContext, aal: Aal) -> Result<()> {
        if auth.aal >= aal {
            Ok(())
        } else {
            Err(Error::AssuranceRequired { aal, max_age: None })
        }
    }

    /// Checks that the user authenticated actively within `max_age`; otherwise
    /// [`Error::AssuranceRequired`] asks for a fresh authentication at the session's level.
    pub fn require_recent_auth(&self, auth: &AuthContext, max_age: time::Duration) -> Result<()> {
        if self.now() - auth.auth_time <= max_age {
            Ok(())
        } else {
            Err(Error::AssuranceRequired {
                aal: auth.aal,
                max_age: Some(max_age),
            })
        }
    }
}
