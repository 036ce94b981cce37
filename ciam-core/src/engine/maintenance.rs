//! Maintenance: deleting what has expired.

use serde::Serialize;

use crate::engine::Ciam;
use crate::error::Result;

/// What [`Ciam::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Sessions past their idle or absolute expiry.
    pub sessions: u64,
    /// One-time challenges past their expiry: unused links and codes, abandoned sign-ins,
    /// spent refresh-token records, trusted-device tokens.
    pub challenges: u64,
}

impl Ciam {
    /// Deletes the sessions and one-time challenges that have expired (by the engine's
    /// clock). Nothing expired is ever accepted, so this changes no answer; it keeps the stores
    /// from growing without bound and removes the user ids and payloads those records hold.
    /// Run it from a periodic job (every few minutes to every hour), on one node or on all:
    /// concurrent purges are harmless.
    pub async fn purge_expired(&self) -> Result<PurgeReport> {
        crate::engine::observe::flow("purge_expired", async move {
            let now = self.now();
            let sessions = self.inner.sessions.purge_expired_sessions(now).await?;
            let challenges = self.inner.challenges.purge_expired_challenges(now).await?;
            if sessions > 0 || challenges > 0 {
                tracing::debug!(sessions, challenges, "purged expired records");
            }
            Ok(PurgeReport {
                sessions,
                challenges,
            })
        })
        .await
    }
}
