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
//! The answer is acted on as follows: `Allow` goes on; `Deny` is
//! [`Error::RiskDenied`](crate::Error) with the policy's user-facing reason; `Challenge` asks
//! for a second factor even on a remembered device: an enrolled TOTP or recovery code when the
//! policy accepts one, else (when the policy accepts it and the address is verified) a code
//! mailed to the account's address, else the attempt is denied.

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
    /// Ask for one of these second factors (never empty), with the reason to show.
    Challenge(Vec<MfaFactor>, String),
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
    /// Assesses a sign-in whose first factor passed. `None` when no risk policy is set.
    async fn assess_sign_in(
        &self,
        user: &User,
        password: Option<&SecretString>,
        trusted_device: bool,
        keys: &[Key],
        ctx: &RequestContext,
    ) -> Result<Option<RiskAssessment>> {
        let Some(policy) = &self.inner.risk else {
            return Ok(None);
        };
        let now = self.now();
        let history: Vec<_> = self
            .audit_log(user.id, HISTORY)
            .await?
            .into_iter()
            .filter(|e| e.outcome == AuditOutcome::Success && is_sign_in(e.action))
            .collect();
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
        for k in keys {
            let failures = self.sliding_failures(&k.key, now).await?;
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
        if let Some(score) = ctx.bot_score {
            signals = signals
                .with_bot_score(score)
                .unwrap_or_else(|_| RiskSignals::new(now));
        }
        Ok(Some(policy.assess(&signals)))
    }

    /// Assesses and records the attempt and says what to do next.
    pub(crate) async fn risk_gate(
        &self,
        user: &User,
        password: Option<&SecretString>,
        trusted_device: bool,
        keys: &[Key],
        ctx: &RequestContext,
    ) -> Result<RiskAction> {
        let Some(assessment) = self
            .assess_sign_in(user, password, trusted_device, keys, ctx)
            .await?
        else {
            return Ok(RiskAction::Proceed);
        };
        let mut detail = assessment.audit_detail();
        detail["reason_shown"] = json!(assessment.reason);
        let (outcome_ok, rule) = match &assessment.decision {
            RiskDecision::Allow => (true, "allow"),
            RiskDecision::Challenge { .. } => (true, "challenge"),
            _ => (false, "deny"),
        };
        let decision = if outcome_ok {
            Decision::success(AuditAction::RiskAssessed, rule)
        } else {
            Decision::failure(AuditAction::RiskAssessed, rule)
        };
        self.record(decision.user(user.id).detail(detail), ctx)
            .await;
        match assessment.decision {
            RiskDecision::Allow => Ok(RiskAction::Proceed),
            RiskDecision::Challenge { factors } => {
                let enrolled = self.second_factors(user.id).await?;
                let mut offer: Vec<MfaFactor> = enrolled
                    .into_iter()
                    .filter(|f| match f {
                        MfaFactor::Totp => factors.contains(&Factor::Totp),
                        MfaFactor::RecoveryCode => factors.contains(&Factor::RecoveryCode),
                        _ => false,
                    })
                    .collect();
                if offer.is_empty() && factors.contains(&Factor::EmailCode) && user.email_verified()
                {
                    offer.push(MfaFactor::EmailCode);
                }
                if offer.is_empty() {
                    return Err(Error::RiskDenied {
                        reason: assessment.reason,
                    });
                }
                Ok(RiskAction::Challenge(offer, assessment.reason))
            }
            _ => Err(Error::RiskDenied {
                reason: assessment.reason,
            }),
        }
    }
}
