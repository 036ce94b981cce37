//! The ledger as ciam-core's [`ConsentGate`]: a material policy change makes the next sign-in
//! say "consent needed".
//!
//! Register it with [`CiamBuilder::consent_gate`](ciam_core::CiamBuilder::consent_gate):
//!
//! ```
//! # use std::sync::Arc;
//! # use ciam_consent::{ConsentLedger, LedgerGate, Source};
//! # fn demo(ledger: ConsentLedger, backend: Arc<impl ciam_core::store::Backend>) -> Result<(), ciam_core::BuildError> {
//! let gate = LedgerGate::new(ledger, Source::new("acme-web", "sign-in"));
//! let ciam = ciam_core::Ciam::builder().backend(backend).consent_gate(Arc::new(gate)).build()?;
//! # Ok(()) }
//! ```
//!
//! At each sign-in the gate records a "re-consent required" event for every purpose whose
//! grant predates the newest material policy in force ([`ConsentLedger::require_reconsent`]),
//! so [`ConsentLedger::check`] (and with it `RequireConsent` routes) denies the purpose from
//! then until the user grants it again, and it answers the purposes still waiting
//! ([`ConsentLedger::needs_reconsent`]) as [`PendingConsent`]s.

use ciam_core::id::UserId;
use ciam_core::user::User;
use ciam_core::{ConsentGate, PendingConsent};

use crate::{ConsentLedger, Error, EventKind, Source};

/// A [`ConsentLedger`] answering ciam-core's sign-in consent question.
#[derive(Debug, Clone)]
pub struct LedgerGate {
    ledger: ConsentLedger,
    source: Source,
}

impl LedgerGate {
    /// A gate over `ledger`; `source` is recorded on the re-consent requirements it writes
    /// (the application and channel that signed the user in).
    pub fn new(ledger: ConsentLedger, source: Source) -> Self {
        Self { ledger, source }
    }

    /// The ledger.
    pub fn ledger(&self) -> &ConsentLedger {
        &self.ledger
    }
}

#[async_trait::async_trait]
impl ConsentGate for LedgerGate {
    async fn pending(&self, user: &User) -> ciam_core::Result<Vec<PendingConsent>> {
        self.ledger
            .require_reconsent(user.id, self.source.clone())
            .await
            .map_err(core_error)?;
        pending_consents(&self.ledger, user.id)
            .await
            .map_err(core_error)
    }
}

/// The purposes `user` must be asked about again ([`ConsentLedger::needs_reconsent`]) as
/// ciam-core's [`PendingConsent`]s, with their descriptions and policy URLs. Reads only (the
/// privacy centre lists them); the sign-in gate also records the requirement.
///
/// # Errors
///
/// [`Error::Store`].
pub async fn pending_consents(
    ledger: &ConsentLedger,
    user: UserId,
) -> Result<Vec<PendingConsent>, Error> {
    let needed = ledger.needs_reconsent(user).await?;
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    // Once the requirement is recorded, the latest record is the requirement itself; the
    // version the user agreed under is that of their last grant before it.
    let records = ledger.store().subject_records(user).await?;
    let catalog = ledger.catalog();
    Ok(needed
        .into_iter()
        .map(|n| {
            let description = catalog
                .get(n.purpose.as_str())
                .map_or("", |p| p.description());
            let mut pending =
                PendingConsent::new(n.purpose.as_str(), description, n.material_version);
            let granted_under = records
                .iter()
                .rev()
                .filter(|r| r.subject_seq <= n.record.subject_seq)
                .find(|r| r.body.purpose == n.purpose && r.body.kind == EventKind::Granted)
                .map(|r| r.body.policy_version);
            if let Some(v) = granted_under {
                pending = pending.consented_under(v);
            }
            if let Some(policy) = catalog.policy_version(n.material_version) {
                pending = pending.policy_url(&policy.url);
            }
            pending
        })
        .collect())
}

fn core_error(e: Error) -> ciam_core::Error {
    match e {
        Error::Store(e) => e.into(),
        other => ciam_core::Error::Internal(Box::new(other)),
    }
}
