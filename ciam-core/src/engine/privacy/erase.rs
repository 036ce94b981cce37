//! Erasure: every store, then every registered hook, with a report; resumable.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::json;

use super::export::ALL_CREDENTIAL_KINDS;
use crate::audit::AuditAction;
use crate::challenge::ChallengePurpose;
use crate::engine::context::{AuthContext, RequestContext};
use crate::engine::{Ciam, Decision, throttle};
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::secret::SecretString;
use crate::shred::KeyState;
use crate::user::{ProfileAttributes, UserStatus};

/// Every challenge purpose, so that an erasure cannot miss one.
const ALL_PURPOSES: [ChallengePurpose; 14] = [
    ChallengePurpose::VerifyEmail,
    ChallengePurpose::ResetPassword,
    ChallengePurpose::ChangeEmail,
    ChallengePurpose::PasskeyRegistration,
    ChallengePurpose::PasskeyAuthentication,
    ChallengePurpose::MfaPending,
    ChallengePurpose::TotpEnrolment,
    ChallengePurpose::TrustedDevice,
    ChallengePurpose::MagicLink,
    ChallengePurpose::SignInCode,
    ChallengePurpose::RefreshToken,
    ChallengePurpose::RefreshTokenSpent,
    ChallengePurpose::FederationState,
    ChallengePurpose::FederationLink,
];

/// The profile key that marks an account whose erasure has begun but not finished.
pub(crate) const PENDING_MARKER: &str = "ciam_erasure_pending_since";

/// Erases what your application (or another ciam crate, such as the consent ledger) holds
/// about a user. Run by every [`Ciam::erase_user`] after the engine's own stores; retried with
/// backoff ([`CiamBuilder::erasure_retry`](crate::CiamBuilder::erasure_retry)). Must be
/// idempotent: a resumed erasure runs it again.
///
/// ```
/// use async_trait::async_trait;
/// use ciam_core::id::UserId;
/// use ciam_core::privacy::ErasureHook;
///
/// #[derive(Debug)]
/// struct Orders;
///
/// #[async_trait]
/// impl ErasureHook for Orders {
///     fn name(&self) -> &str {
///         "orders"
///     }
///     async fn erase(&self, user: UserId) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
///         // DELETE FROM orders WHERE user_id = $1
///         let _ = user;
///         Ok(0)
///     }
/// }
/// ```
#[async_trait]
pub trait ErasureHook: Send + Sync + Debug + 'static {
    /// The hook's name in [`ErasureReport::steps`].
    fn name(&self) -> &str;

    /// Erases `user`'s data; returns how many records went (for the report).
    async fn erase(
        &self,
        user: UserId,
    ) -> std::result::Result<u64, Box<dyn std::error::Error + Send + Sync>>;
}

/// How a failing hook is retried within one erasure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    pub(crate) attempts: u32,
    pub(crate) first_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// Whether an erasure finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErasureStatus {
    /// Every store and every hook is done; the account record is gone.
    Complete,
    /// A hook failed every attempt. Everything else is erased and the account record is a
    /// tombstone without personal data (it cannot sign in); call [`Ciam::erase_user`] again
    /// to resume.
    Pending,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
#[non_exhaustive]
pub enum StepOutcome {
    /// Done; `removed` records went.
    Done {
        /// How many records were removed (for key destruction: 1 when a key existed).
        removed: u64,
    },
    /// Failed every attempt.
    Failed {
        /// The last error, for the operator.
        error: String,
    },
}

/// One store or hook in an [`ErasureReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErasureStep {
    /// `account`, `credentials`, `sessions`, `challenges`, `counters`, `audit_key`, or a
    /// hook's [`ErasureHook::name`].
    pub name: String,
    /// How many attempts it took (hooks; 1 for stores).
    pub attempts: u32,
    /// What happened.
    pub outcome: StepOutcome,
}

/// The completion report of an erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ErasureReport {
    /// The erased user (a pseudonymous id that stays in the audit chain).
    pub user: UserId,
    /// Whether it finished.
    pub status: ErasureStatus,
    /// Each store and hook, in the order they ran.
    pub steps: Vec<ErasureStep>,
}

fn done(name: &str, removed: u64) -> ErasureStep {
    ErasureStep {
        name: name.to_owned(),
        attempts: 1,
        outcome: StepOutcome::Done { removed },
    }
}

impl Ciam {
    /// Erases everything held about `user`: the account's personal data at once (the record
    /// becomes a tombstone that cannot sign in), then credentials, sessions, pending
    /// challenges, rate-limit counters keyed by the user, the user's audit data key (the
    /// audit entries stay, sealed, so the chain still verifies; their personal part can never
    /// be opened again), then every [`ErasureHook`] with retries, and finally the account
    /// record itself. Returns the report; when a hook failed every attempt the erasure is
    /// [`ErasureStatus::Pending`] and calling this again resumes it. Calling it for an erased
    /// user answers a complete, empty report; for an unknown one [`Error::NotFound`].
    ///
    /// Administrative: no authentication here. A signed-in user erasing their own account
    /// goes through [`Self::erase_own_account`].
    pub async fn erase_user(&self, user: UserId, ctx: &RequestContext) -> Result<ErasureReport> {
        crate::engine::observe::flow("erase_user", async move {
            let Some(account) = self.inner.identities.user_by_id(user).await? else {
                return match self.inner.audit.audit_key(user).await? {
                    KeyState::Erased(_) => Ok(ErasureReport {
                        user,
                        status: ErasureStatus::Complete,
                        steps: Vec::new(),
                    }),
                    _ => Err(Error::NotFound),
                };
            };
            let mut steps = Vec::new();
            let now = self.now();
            let email = account.email.clone();
            if !account.profile.contains_key(PENDING_MARKER) {
                self.modify_user(user, |u| {
                    u.status = UserStatus::PendingDeletion;
                    u.email = None;
                    u.email_verified_at = None;
                    u.phone = None;
                    u.phone_verified_at = None;
                    u.username = None;
                    u.profile = ProfileAttributes::new();
                    u.profile
                        .insert(PENDING_MARKER.into(), json!(now.unix_timestamp()));
                    Ok(())
                })
                .await?;
            }
            steps.push(done("account", 1));

            let mut removed = 0;
            for kind in ALL_CREDENTIAL_KINDS {
                for c in self
                    .inner
                    .credentials
                    .credentials_for_user(user, kind)
                    .await?
                {
                    if self.inner.credentials.delete_credential(c.id).await? {
                        removed += 1;
                    }
                }
            }
            steps.push(done("credentials", removed));
            let sessions = self.inner.sessions.delete_user_sessions(user, None).await?;
            steps.push(done("sessions", sessions));
            let mut challenges = 0;
            for purpose in ALL_PURPOSES {
                challenges += self
                    .inner
                    .challenges
                    .delete_challenges(user, purpose)
                    .await?;
            }
            steps.push(done("challenges", challenges));
            let mut counters = 0;
            for purpose in ALL_PURPOSES.iter().map(|p| p.as_str()).chain(["sms_code"]) {
                self.inner
                    .counters
                    .reset(&format!("mail:{purpose}:{user}"))
                    .await?;
                counters += 1;
            }
            if let Some(email) = &email {
                let quiet = RequestContext::new(None, None);
                for flow in ["signin", "mfa"] {
                    let keys = throttle::keys(
                        &self.inner.policy.throttle,
                        flow,
                        Some(email),
                        &quiet,
                        false,
                    );
                    self.clear_account_failures(&keys).await?;
                    counters += 1;
                }
            }
            steps.push(done("counters", counters));
            let had_key = matches!(
                self.inner.audit.audit_key(user).await?,
                KeyState::Present(_)
            );
            self.inner.audit.erase_audit_key(user, now).await?;
            steps.push(done("audit_key", u64::from(had_key)));

            let mut complete = true;
            for hook in &self.inner.privacy.hooks {
                let step = self.run_hook(hook.as_ref(), user).await;
                complete &= matches!(step.outcome, StepOutcome::Done { .. });
                steps.push(step);
            }
            let status = if complete {
                let gone = self.inner.identities.delete_user(user).await?;
                steps.push(done("account_record", u64::from(gone)));
                ErasureStatus::Complete
            } else {
                ErasureStatus::Pending
            };
            let reason = match status {
                ErasureStatus::Complete => "erased",
                ErasureStatus::Pending => "erasure_pending",
            };
            let decision = if complete {
                Decision::success(AuditAction::AccountErased, reason)
            } else {
                Decision::failure(AuditAction::AccountErased, reason)
            };
            // The user's key is gone, so this entry keeps no personal data; the steps are not
            // personal, but they are in the report the caller gets.
            self.record(decision.user(user), ctx).await;
            Ok(ErasureReport {
                user,
                status,
                steps,
            })
        })
        .await
    }

    /// Erases the signed-in user's own account (see [`Self::erase_user`]): needs a sign-in
    /// within [`Policy::recent_auth_max_age`](crate::Policy) or the current password, and for
    /// an account with a second factor a session that used it (AAL2), like
    /// [`Self::delete_account`].
    pub async fn erase_own_account(
        &self,
        auth: &AuthContext,
        current_password: Option<&SecretString>,
        ctx: &RequestContext,
    ) -> Result<ErasureReport> {
        let user = self.user(auth.user_id).await?;
        self.step_up(
            &user,
            auth,
            current_password,
            AuditAction::AccountErased,
            ctx,
        )
        .await?;
        self.second_factor_gate(&user, auth, AuditAction::AccountErased, ctx)
            .await?;
        self.erase_user(user.id, ctx).await
    }

    /// Whether `user`'s erasure began and is not finished (a hook failed): call
    /// [`Self::erase_user`] again to resume.
    pub async fn erasure_pending(&self, user: UserId) -> Result<bool> {
        Ok(self
            .inner
            .identities
            .user_by_id(user)
            .await?
            .is_some_and(|u| u.profile.contains_key(PENDING_MARKER)))
    }

    async fn run_hook(&self, hook: &dyn ErasureHook, user: UserId) -> ErasureStep {
        let retry = self.inner.privacy.retry;
        let mut backoff = retry.first_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match hook.erase(user).await {
                Ok(removed) => {
                    return ErasureStep {
                        name: hook.name().to_owned(),
                        attempts,
                        outcome: StepOutcome::Done { removed },
                    };
                }
                Err(e) if attempts >= retry.attempts => {
                    tracing::error!(hook = hook.name(), error = %e, "erasure hook failed");
                    return ErasureStep {
                        name: hook.name().to_owned(),
                        attempts,
                        outcome: StepOutcome::Failed {
                            error: e.to_string(),
                        },
                    };
                }
                Err(e) => {
                    tracing::warn!(hook = hook.name(), error = %e, attempts, "erasure hook failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }
}
