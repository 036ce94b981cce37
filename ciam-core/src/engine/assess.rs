//! Adaptive risk at sign-in: gathering the [`RiskSignals`] for an attempt whose first factor
//! passed, asking the configured [`RiskPolicy`](crate::risk::RiskPolicy), recording the
//! answer with its explanation, and acting on it.
//!
//! Signals come from the account's own history (its recent successful sign-ins in the audit
//! log: their networks and the locations the application supplied), the browser's
//! trusted-device token, the throttling counters, the password policy (a password it would
//! refuse today is weak), the configured
//! [`BreachedPasswords`](crate::risk::BreachedPasswords) check and the application-supplied
//! bot score ([`RequestContext::with_bot_score`](crate::RequestContext)). An account with no
//! history yet has no baseline: "new device" and "new network" are then unknown rather than
//! true.
//!
//! The bot score is the higher of the application-supplied one and, when a
//! [`BotCheck`](crate::risk::BotCheck) is configured ([`CiamBuilder::bot_check`](crate::CiamBuilder)),
//! its verdict on the request's CAPTCHA token
//! ([`RequestContext::bot_token`](crate::RequestContext)). A bot check that fails is logged
//! and ignored (the velocity rules still apply), and recorded in the audit detail.
//!
//! The answer is acted on as follows: `Allow` goes on; `Deny` is
//! [`Error::RiskDenied`](crate::Error) with the policy's user-facing reason; `Challenge` asks
//! for one of the acceptable factors, even on a remembered device:
//!
//! 1. [`Factor::Captcha`] is dropped when the bot check says this request solved a CAPTCHA;
//!    a challenge that asked for nothing else is then satisfied.
//! 2. An enrolled TOTP or recovery code the policy accepts is offered.
//! 3. Otherwise, if the policy accepts an e-mail code: a sign-in whose first factor already
//!    proved the inbox (magic link, mailed code) satisfies it; any other sign-in is offered a
//!    code mailed to the verified address.
//! 4. Otherwise a challenge that asks only for a CAPTCHA is answered
//!    [`SignInOutcome::MfaRequired`](crate::SignInOutcome) with [`MfaFactor::Captcha`]: the
//!    client solves it and completes with [`MfaProof::Captcha`](crate::MfaProof), or repeats
//!    the sign-in with the solved token. A CAPTCHA proves a person, not an identity: it never
//!    counts as a second factor.
//! 5. Otherwise the attempt is denied.
//!
//! The audit entry (`risk_assessed`) holds the policy's explanation, the reason shown, and,
//! when the engine itself satisfied the challenge, `satisfied_by` (`captcha` or `email`).

use serde_json::json;

use super::context::RequestContext;
use super::outcome::MfaFactor;
use super::throttle::{Key, subnet_of};
use super::{Ciam, Decision};
use crate::audit::{AuditAction, AuditOutcome};
use crate::error::{Error, Result};
use crate::risk::{Factor, GeoPoint, RiskAssessment, RiskDecision, RiskSignals};
use crate::secret::SecretString;
use crate::user::User;

/// Successful sign-ins looked at for the account's history.
const HISTORY: u32 = 200;

/// What to do after the assessment.
pub(crate) enum RiskAction {
    /// Go on as if no policy were configured.
    Proceed,
    /// Ask for one of these factors (never empty), with the reason to show. A lone
    /// [`MfaFactor::Captcha`] asks for a CAPTCHA only.
    Challenge(Vec<MfaFactor>, String),
}

/// What the attempt's first factor proved, which decides what a challenge may still ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstFactor {
    /// A password.
    Password,
    /// The inbox of the account's address (magic link, mailed code).
    Email,
    /// The account's phone number (texted code).
    Phone,
    /// A user-verified passkey: possession and a local PIN or biometric, two factors in
    /// one. It meets any challenge but a CAPTCHA.
    Passkey,
    /// A passkey used without user verification: possession only, one factor, so a
    /// challenge asks for a second factor as after a password.
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    Possession,
}

/// What the bot check said about the request, for acting on the assessment.
#[derive(Debug, Default)]
struct BotOutcome {
    /// The request carried a CAPTCHA the check accepted.
    passed_challenge: bool,
    /// For the audit detail.
    detail: Option<serde_json::Value>,
}

fn is_sign_in(action: AuditAction) -> bool {
    matches!(
        action,
        AuditAction::SignInPassword
            | AuditAction::SignInMfa
            | AuditAction::SignInPasskey
            | AuditAction::SignInPasswordless
    )
}

impl Ciam {
    /// Asks the configured bot check about the request's CAPTCHA token; `None` without one.
    /// A failed check is logged and gives no score.
    async fn bot_verdict(&self, ctx: &RequestContext) -> (Option<f32>, BotOutcome) {
        let Some(check) = &self.inner.bot_check else {
            return (None, BotOutcome::default());
        };
        let token = ctx.bot_token.as_ref().map(|t| t.expose());
        match check.check(token, ctx.ip).await {
            Ok(v) if (0.0..=1.0).contains(&v.score) => (
                Some(v.score),
                BotOutcome {
                    passed_challenge: v.passed_challenge,
                    detail: Some(json!({
                        "score": (f64::from(v.score) * 1000.0).round() / 1000.0,
                        "passed_challenge": v.passed_challenge,
                    })),
                },
            ),
            Ok(_) => {
                tracing::warn!("bot check answered a score out of range; ignored");
                (
                    None,
                    BotOutcome {
                        passed_challenge: false,
                        detail: Some(json!({"error": "invalid_score"})),
                    },
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "bot check failed; ignored");
                (
                    None,
                    BotOutcome {
                        passed_challenge: false,
                        detail: Some(json!({"error": "unavailable"})),
                    },
                )
            }
        }
    }

    /// Assesses a sign-in whose first factor passed. `None` when no risk policy is set.
    async fn assess_sign_in(
        &self,
        user: &User,
        password: Option<&SecretString>,
        trusted_device: bool,
        keys: &[Key],
        ctx: &RequestContext,
    ) -> Result<Option<(RiskAssessment, BotOutcome)>> {
        let Some(policy) = &self.inner.risk else {
            return Ok(None);
        };
        let now = self.now();
        // Only the successful sign-ins are opened (decrypted) of the newest HISTORY entries.
        let history = self
            .audit_log_where(user.id, HISTORY, |action, outcome| {
                outcome == AuditOutcome::Success && is_sign_in(action)
            })
            .await?;
        let mut signals = RiskSignals::new(now);
        if !history.is_empty() {
            signals = signals.with_new_device(!trusted_device);
            if let Some(ip) = ctx.ip {
                let net = subnet_of(ip);
                let seen = history
                    .iter()
                    .any(|e| e.ip.is_some_and(|old| subnet_of(old) == net));
                signals = signals.with_new_network(!seen);
            }
        }
        if let Some((lat, lon)) = ctx.location
            && let Ok(here) = GeoPoint::new(lat, lon)
        {
            signals = signals.with_location(here);
        }
        let last = history.iter().find_map(|e| {
            let loc = e.detail.get("location")?.as_array()?;
            let point = GeoPoint::new(loc.first()?.as_f64()?, loc.get(1)?.as_f64()?).ok()?;
            Some((point, e.at))
        });
        if let Some((point, at)) = last {
            signals = signals.with_last_location(point, at);
        }
        let enforced: Vec<&Key> = keys.iter().filter(|k| k.enforced).collect();
        let failures_of = self.sliding_failures_of(&enforced, now).await?;
        for (k, failures) in enforced.into_iter().zip(failures_of) {
            signals = match k.scope {
                "account" => signals.with_account_failures(failures),
                "ip" => signals.with_ip_failures(failures),
                "subnet" => signals.with_subnet_failures(failures),
                _ => signals,
            };
        }
        if let Some(pw) = password {
            // A password the current policy would refuse today (chosen under older rules, or
            // imported) is weak.
            let words = self.context_words(user.email.as_ref());
            let weak = self
                .inner
                .password_policy
                .check(pw, &words, self.inner.policy.password_is_single_factor)
                .is_err();
            signals = signals.with_password_weak(weak);
        }
        if let (Some(check), Some(pw)) = (&self.inner.breached, password) {
            match check.is_breached(pw).await {
                Ok(b) => signals = signals.with_password_breached(b),
                Err(e) => tracing::warn!(error = %e, "breached-password check failed; ignored"),
            }
        }
        let (checked, bot) = self.bot_verdict(ctx).await;
        // The higher of the application's score and the bot check's. An out-of-range score
        // set directly on the context is dropped, never the other signals with it.
        let score = [ctx.bot_score, checked]
            .into_iter()
            .flatten()
            .filter(|s| (0.0..=1.0).contains(s))
            .reduce(f32::max);
        if let Some(score) = score {
            match signals.clone().with_bot_score(score) {
                Ok(with) => signals = with,
                Err(e) => tracing::warn!(error = %e, "bot score ignored"),
            }
        }
        Ok(Some((policy.assess(&signals), bot)))
    }

    /// Assesses and records a password sign-in and says what to do next.
    pub(crate) async fn risk_gate(
        &self,
        user: &User,
        password: Option<&SecretString>,
        trusted_device: bool,
        keys: &[Key],
        ctx: &RequestContext,
    ) -> Result<RiskAction> {
        self.risk_gate_for(
            user,
            password,
            FirstFactor::Password,
            trusted_device,
            keys,
            ctx,
        )
        .await
    }

    /// Assesses and records a sign-in whose `first` factor passed and says what to do next.
    pub(crate) async fn risk_gate_for(
        &self,
        user: &User,
        password: Option<&SecretString>,
        first: FirstFactor,
        trusted_device: bool,
        keys: &[Key],
        ctx: &RequestContext,
    ) -> Result<RiskAction> {
        let Some((assessment, bot)) = self
            .assess_sign_in(user, password, trusted_device, keys, ctx)
            .await?
        else {
            return Ok(RiskAction::Proceed);
        };
        let mut detail = assessment.audit_detail();
        detail["reason_shown"] = json!(assessment.reason);
        if let Some(b) = bot.detail {
            detail["bot_check"] = b;
        }
        let answer = match &assessment.decision {
            RiskDecision::Allow => Answer::Proceed,
            RiskDecision::Challenge { factors } => {
                self.answer_challenge(user, factors, first, bot.passed_challenge)
                    .await?
            }
            _ => Answer::Deny,
        };
        let (outcome_ok, rule) = match (&assessment.decision, &answer) {
            (RiskDecision::Allow, _) => (true, "allow"),
            // A challenge nothing the user has can answer ends as a denial.
            (RiskDecision::Challenge { .. }, Answer::Deny) => (false, "challenge"),
            (RiskDecision::Challenge { .. }, _) => (true, "challenge"),
            _ => (false, "deny"),
        };
        match &answer {
            Answer::Satisfied(by) => detail["satisfied_by"] = json!(by),
            Answer::Deny if matches!(assessment.decision, RiskDecision::Challenge { .. }) => {
                detail["no_factor_available"] = json!(true);
            }
            _ => {}
        }
        let decision = if outcome_ok {
            Decision::success(AuditAction::RiskAssessed, rule)
        } else {
            Decision::failure(AuditAction::RiskAssessed, rule)
        };
        self.record(decision.user(user.id).detail(detail), ctx)
            .await;
        match answer {
            Answer::Proceed | Answer::Satisfied(_) => Ok(RiskAction::Proceed),
            Answer::Offer(offer) => Ok(RiskAction::Challenge(offer, assessment.reason)),
            Answer::Deny => Err(Error::RiskDenied {
                reason: assessment.reason,
            }),
        }
    }

    /// What a `Challenge` for `factors` comes to for this user and request (see the module
    /// documentation).
    async fn answer_challenge(
        &self,
        user: &User,
        factors: &[Factor],
        first: FirstFactor,
        passed_captcha: bool,
    ) -> Result<Answer> {
        let wanted: Vec<Factor> = factors
            .iter()
            .copied()
            .filter(|f| !(passed_captcha && *f == Factor::Captcha))
            .collect();
        if factors.is_empty() {
            // A policy that asks for nothing acceptable: nothing can satisfy it.
            return Ok(Answer::Deny);
        }
        if wanted.is_empty() {
            // It asked only for a CAPTCHA, and this request solved one.
            return Ok(Answer::Satisfied("captcha"));
        }
        if first == FirstFactor::Passkey && wanted.iter().any(|f| *f != Factor::Captcha) {
            return Ok(Answer::Satisfied("passkey"));
        }
        let enrolled = self.second_factors(user.id).await?;
        let offer: Vec<MfaFactor> = enrolled
            .into_iter()
            .filter(|f| match f {
                MfaFactor::Totp => wanted.contains(&Factor::Totp),
                MfaFactor::RecoveryCode => wanted.contains(&Factor::RecoveryCode),
                _ => false,
            })
            .collect();
        if !offer.is_empty() {
            return Ok(Answer::Offer(offer));
        }
        if wanted.contains(&Factor::EmailCode) {
            if first == FirstFactor::Email {
                // The first factor was the very inbox a code would go to.
                return Ok(Answer::Satisfied("email"));
            }
            if user.email_verified() {
                return Ok(Answer::Offer(vec![MfaFactor::EmailCode]));
            }
        }
        if wanted == [Factor::Captcha] {
            return Ok(Answer::Offer(vec![MfaFactor::Captcha]));
        }
        Ok(Answer::Deny)
    }
}

/// How a challenge is answered.
enum Answer {
    /// No challenge was due.
    Proceed,
    /// The challenge is already met, by what is named.
    Satisfied(&'static str),
    /// Ask for one of these.
    Offer(Vec<MfaFactor>),
    /// Nothing the user can give satisfies it.
    Deny,
}
