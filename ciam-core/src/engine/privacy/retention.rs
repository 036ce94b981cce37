//! Retention: dormant accounts are told, then erased.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::erase::{ErasureStatus, PENDING_MARKER};
use crate::audit::AuditAction;
use crate::engine::context::RequestContext;
use crate::engine::{Ciam, Decision};
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::mail::MailKind;
use crate::user::User;

/// When dormant accounts are told and erased ([`CiamBuilder::retention`](crate::CiamBuilder::retention)).
///
/// An account is dormant when its last sign-in ([`User::last_active_at`], or its creation
/// when it never signed in) is older than `notify_after`. Its owner is then mailed
/// ([`MailKind::DormantAccount`]); if they do not sign in within `erase_after_notice` of that
/// mail, the account is erased ([`Ciam::erase_user`]). An account without an e-mail address
/// cannot be told and is erased `erase_after_notice` after it was found dormant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Inactivity after which the owner is told. At least one day.
    pub notify_after: Duration,
    /// Time after the notice after which the account is erased. At least one day.
    pub erase_after_notice: Duration,
    /// The most accounts one [`Ciam::run_retention`] run looks at (default 500).
    pub batch: u32,
}

impl RetentionPolicy {
    /// The shortest period accepted for either setting.
    pub const MIN_PERIOD: Duration = Duration::days(1);

    /// Tell after `notify_after` of inactivity, erase `erase_after_notice` later (each at
    /// least [`Self::MIN_PERIOD`]; shorter values are raised to it).
    pub fn new(notify_after: Duration, erase_after_notice: Duration) -> Self {
        Self {
            notify_after: notify_after.max(Self::MIN_PERIOD),
            erase_after_notice: erase_after_notice.max(Self::MIN_PERIOD),
            batch: 500,
        }
    }

    /// Sets how many accounts one run looks at (at least 1).
    pub fn batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Accounts whose owner was told in this run.
    pub notified: Vec<UserId>,
    /// Accounts erased in this run (complete).
    pub erased: Vec<UserId>,
    /// Accounts whose erasure began but is pending on a hook.
    pub pending: Vec<UserId>,
    /// Dormant accounts already told and still within their grace period.
    pub waiting: Vec<UserId>,
}

impl Ciam {
    /// The retention batch job: looks at up to [`RetentionPolicy::batch`] dormant accounts
    /// at `now`, mails the owners not yet told, and erases those told at least
    /// [`RetentionPolicy::erase_after_notice`] ago who have not signed in since. Idempotent:
    /// a second run at the same `now` tells nobody twice and erases nothing more. Run it
    /// from a scheduler (daily, say). Without [`CiamBuilder::retention`](crate::CiamBuilder::retention)
    /// it does nothing.
    pub async fn run_retention(&self, now: OffsetDateTime) -> Result<RetentionReport> {
        crate::engine::observe::flow("run_retention", async move {
            let mut report = RetentionReport::default();
            let Some(policy) = self.inner.privacy.retention else {
                return Ok(report);
            };
            let dormant = self
                .inner
                .identities
                .dormant_users(now - policy.notify_after, policy.batch)
                .await?;
            let ctx = RequestContext::new(None, None);
            for user in dormant {
                let active = user.last_active_at.unwrap_or(user.created_at);
                let told = user.dormancy_notice_at.filter(|t| *t >= active);
                let resume = user.profile.contains_key(PENDING_MARKER);
                match told {
                    _ if resume => self.retention_erase(&user, &ctx, &mut report).await?,
                    Some(t) if now >= t + policy.erase_after_notice => {
                        self.retention_erase(&user, &ctx, &mut report).await?;
                    }
                    Some(_) => report.waiting.push(user.id),
                    None => {
                        self.notify_dormant(&user, now, policy, &ctx).await?;
                        report.notified.push(user.id);
                    }
                }
            }
            Ok(report)
        })
        .await
    }

    async fn notify_dormant(
        &self,
        user: &User,
        now: OffsetDateTime,
        policy: RetentionPolicy,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.modify_user(user.id, |u| {
            u.dormancy_notice_at = Some(now);
            Ok(())
        })
        .await?;
        if let Some(email) = &user.email {
            let day = (now + policy.erase_after_notice).date();
            let kind = MailKind::DormantAccount {
                erase_on: day.to_string(),
                sign_in_link: self.page(&self.inner.paths.sign_in),
            };
            self.send_mail(email, kind);
        }
        self.record(
            Decision::success(AuditAction::DormancyNotified, "dormant")
                .user(user.id)
                .detail(serde_json::json!({
                    "last_active_at": user.last_active_at.unwrap_or(user.created_at).unix_timestamp(),
                    "mailed": user.email.is_some(),
                })),
            ctx,
        )
        .await;
        Ok(())
    }

    async fn retention_erase(
        &self,
        user: &User,
        ctx: &RequestContext,
        report: &mut RetentionReport,
    ) -> Result<()> {
        match self.erase_user(user.id, ctx).await {
            Ok(r) if r.status == ErasureStatus::Complete => report.erased.push(user.id),
            Ok(_) => report.pending.push(user.id),
            // Erased concurrently by another run.
            Err(Error::NotFound) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}
