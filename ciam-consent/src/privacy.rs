//! The consent ledger in ciam-core's privacy requests: its section of a user's export and its
//! part of an erasure.
//!
//! Register one [`LedgerPrivacy`] as both an export contributor and an erasure hook:
//!
//! ```
//! # fn demo(ledger: ciam_consent::ConsentLedger, builder: ciam_core::CiamBuilder) -> ciam_core::CiamBuilder {
//! use std::sync::Arc;
//! use ciam_consent::privacy::LedgerPrivacy;
//!
//! let privacy = Arc::new(LedgerPrivacy::new(ledger));
//! builder.export_contributor(privacy.clone()).erasure_hook(privacy)
//! # }
//! ```

use async_trait::async_trait;
use ciam_core::id::UserId;
use ciam_core::privacy::{ErasureHook, ExportContributor};
use serde_json::{Value, json};

use crate::chain::hex;
use crate::ledger::{ConsentLedger, ConsentRecord, Personal};

/// The ledger as an [`ExportContributor`] (section `consent`: every record of the user with
/// its personal part opened) and an [`ErasureHook`] (named `consent`: destroys the user's
/// data key, [`ConsentLedger::erase_subject`]; the records and every chain stay verifiable).
#[derive(Debug, Clone)]
pub struct LedgerPrivacy {
    ledger: ConsentLedger,
}

impl LedgerPrivacy {
    /// Wraps `ledger`.
    pub fn new(ledger: ConsentLedger) -> Self {
        Self { ledger }
    }
}

fn exported(r: &ConsentRecord) -> Value {
    let b = &r.record.body;
    let personal = match &r.personal {
        Personal::Open(p) => json!(p),
        Personal::Erased => json!("erased"),
    };
    json!({
        "record": b.id,
        "seq": r.record.seq,
        "kind": b.kind,
        "purpose": b.purpose,
        "policy_version": b.policy_version,
        "basis": b.basis,
        "application": b.application,
        "channel": b.channel,
        "text_hash": b.text_hash.map(|h| hex(&h)),
        "at": b.at.unix_timestamp(),
        "expires_at": b.expires_at.map(|t| t.unix_timestamp()),
        "hash": r.record.hash,
        "personal": personal,
    })
}

#[async_trait]
impl ExportContributor for LedgerPrivacy {
    fn section(&self) -> &str {
        "consent"
    }

    async fn export(
        &self,
        user: UserId,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let history = self.ledger.history(user).await?;
        Ok(Value::Array(history.iter().map(exported).collect()))
    }
}

#[async_trait]
impl ErasureHook for LedgerPrivacy {
    fn name(&self) -> &str {
        "consent"
    }

    async fn erase(&self, user: UserId) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        self.ledger.erase_subject(user).await?;
        Ok(1)
    }
}
