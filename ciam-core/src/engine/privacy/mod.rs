//! The privacy engine: the tamper-evident, crypto-shredded audit log, export of everything
//! held about a user, erasure cascading through every store and registered hook, and the
//! retention of dormant accounts.
//!
//! | method on [`Ciam`] | what it does |
//! |---|---|
//! | [`Ciam::verify_audit`] | walks the audit chain and names the first edited, missing, inserted or moved entry |
//! | [`Ciam::export_user`] | a versioned JSON archive of everything held about a user ([`UserExport`]) |
//! | [`Ciam::erase_user`], [`Ciam::erase_own_account`] | erasure through every store and every [`ErasureHook`], with a report ([`ErasureReport`]); resumable |
//! | [`Ciam::run_retention`] | the dormant-account batch job ([`RetentionPolicy`], [`RetentionReport`]) |

mod audit_log;
mod erase;
mod export;
mod retention;

use std::sync::Arc;

pub use erase::{ErasureHook, ErasureReport, ErasureStatus, ErasureStep, StepOutcome};
pub use export::{
    AccountExport, CredentialExport, EXPORT_FORMAT, EXPORT_VERSION, ExportContributor,
    SessionExport, UserExport, WITHHELD_CREDENTIAL_FIELDS, WITHHELD_SESSION_FIELDS,
};
pub use retention::{RetentionPolicy, RetentionReport};

#[allow(unused_imports)] // for the module doc's links
use super::Ciam;
use super::CiamBuilder;
use crate::shred::MasterKey;

/// The privacy settings an engine runs with ([`CiamBuilder::audit_master_key`],
/// [`CiamBuilder::export_contributor`], [`CiamBuilder::erasure_hook`],
/// [`CiamBuilder::erasure_retry`], [`CiamBuilder::retention`]).
#[derive(Debug, Default)]
pub(crate) struct PrivacyConfig {
    master: Option<MasterKey>,
    contributors: Vec<Arc<dyn ExportContributor>>,
    hooks: Vec<Arc<dyn ErasureHook>>,
    retry: erase::Retry,
    retention: Option<RetentionPolicy>,
}

/// The key that wraps audit data keys when the application gives none: public, so a dump of
/// the database then opens the audit log's personal data (erasure still destroys it).
const UNPROTECTED_MASTER: [u8; 32] = [0; 32];

impl PrivacyConfig {
    fn master(&self) -> MasterKeyRef<'_> {
        match &self.master {
            Some(k) => MasterKeyRef::Given(k),
            None => MasterKeyRef::Builtin(MasterKey::from_bytes(&UNPROTECTED_MASTER)),
        }
    }
}

enum MasterKeyRef<'a> {
    Given(&'a MasterKey),
    Builtin(MasterKey),
}

impl std::ops::Deref for MasterKeyRef<'_> {
    type Target = MasterKey;
    fn deref(&self) -> &MasterKey {
        match self {
            Self::Given(k) => k,
            Self::Builtin(k) => k,
        }
    }
}

impl CiamBuilder {
    /// Sets the master key that wraps every user's audit data key (32 bytes from your
    /// secret store; it never reaches the database). Without one, data keys are wrapped under
    /// a built-in public key: erasure still destroys them, but a dump of the database opens
    /// the audit log's personal data (IP, user agent, detail).
    pub fn audit_master_key(mut self, key: MasterKey) -> Self {
        self.privacy.master = Some(key);
        self
    }

    /// Adds a section to every [`Ciam::export_user`] archive (the consent ledger, your own
    /// tables).
    pub fn export_contributor(mut self, contributor: Arc<dyn ExportContributor>) -> Self {
        self.privacy.contributors.push(contributor);
        self
    }

    /// Adds a hook every [`Ciam::erase_user`] runs (erasing your own copies of the user's
    /// data), retried per [`Self::erasure_retry`].
    pub fn erasure_hook(mut self, hook: Arc<dyn ErasureHook>) -> Self {
        self.privacy.hooks.push(hook);
        self
    }

    /// How often a failing erasure hook is tried within one erasure (default 3, at least 1)
    /// and the pause before the second try, doubling after each (default 200 ms).
    pub fn erasure_retry(mut self, attempts: u32, first_backoff: std::time::Duration) -> Self {
        self.privacy.retry = erase::Retry {
            attempts: attempts.max(1),
            first_backoff,
        };
        self
    }

    /// Turns on the retention of dormant accounts run by [`Ciam::run_retention`].
    pub fn retention(mut self, policy: RetentionPolicy) -> Self {
        self.privacy.retention = Some(policy);
        self
    }
}
