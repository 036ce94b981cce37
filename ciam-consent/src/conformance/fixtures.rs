//! Shared fixtures of the kit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ciam_core::clock::ManualClock;
use ciam_core::id::UserId;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::model::{Catalog, LegalBasis, PolicyDocument, Purpose};
use crate::outbox::ConsentSink;
use crate::seal::MasterKey;
use crate::store::{ConsentStore, OutboxEvent};
use crate::{ConsentLedger, Error};

/// Where every check's clock starts.
pub const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// The kit's catalog:
///
/// - `newsletter`: consent, optional;
/// - `ads`: consent, sale-or-share, disclosed to a third party;
/// - `analytics`: legitimate interest, sale-or-share;
/// - `billing`: contract, required;
/// - `fraud`: legal obligation;
///
/// and policy versions 1 (from 2025-01-01) and 2 (from 2026-06-01, material).
pub fn catalog() -> Catalog {
    let purposes = [
        Purpose::new("newsletter", "The weekly newsletter", LegalBasis::Consent)
            .unwrap()
            .data_categories(["2 - Contact"])
            .category("6 - Marketing"),
        Purpose::new("ads", "Personalised advertising", LegalBasis::Consent)
            .unwrap()
            .sale_or_share(true)
            .third_party("Example Ads Ltd")
            .data_categories(["5 - Online activity"])
            .sensitive_category("none-really")
            .termination("two years after the last visit"),
        Purpose::new(
            "analytics",
            "Product analytics",
            LegalBasis::LegitimateInterest,
        )
        .unwrap()
        .sale_or_share(true),
        Purpose::new("billing", "Billing", LegalBasis::Contract)
            .unwrap()
            .required(true),
        Purpose::new("fraud", "Fraud prevention", LegalBasis::LegalObligation).unwrap(),
    ];
    let mut c = Catalog::new();
    for p in purposes {
        c = c.purpose(p);
    }
    c.policy(PolicyDocument::new(
        1,
        b"policy one",
        datetime!(2025-01-01 00:00 UTC),
        "https://example.com/privacy/1",
    ))
    .unwrap()
    .policy(
        PolicyDocument::new(
            2,
            b"policy two",
            datetime!(2026-06-01 00:00 UTC),
            "https://example.com/privacy/2",
        )
        .material(true),
    )
    .unwrap()
}

/// A ledger over `store` with the kit's catalog, a fixed master key and `clock`, caching.
pub fn ledger<S: ConsentStore + Clone>(store: &S, clock: &ManualClock) -> ConsentLedger {
    ConsentLedger::builder(
        Arc::new(store.clone()),
        catalog(),
        MasterKey::from_bytes(&[0x42; 32]),
    )
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap()
}

/// The user numbered `n`.
pub fn user(n: u8) -> UserId {
    UserId::from_bytes([n; 16])
}

/// A sink that fails its first `failures` deliveries, then records what it gets.
#[derive(Debug, Default)]
pub struct FlakySink {
    failures: AtomicUsize,
    /// Every event delivered, in order.
    pub delivered: Mutex<Vec<OutboxEvent>>,
}

impl FlakySink {
    /// Fails the first `failures` calls.
    pub fn failing(failures: usize) -> Self {
        Self {
            failures: AtomicUsize::new(failures),
            delivered: Mutex::new(Vec::new()),
        }
    }

    /// What was delivered so far.
    pub fn events(&self) -> Vec<OutboxEvent> {
        self.delivered.lock().unwrap().clone()
    }
}

#[async_trait]
impl ConsentSink for FlakySink {
    async fn deliver(
        &self,
        event: &OutboxEvent,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let failing = self
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(Box::new(Error::InvalidInput("sink is down")));
        }
        self.delivered.lock().unwrap().push(event.clone());
        Ok(())
    }
}
