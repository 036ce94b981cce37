//! The conformance kit: the rules every consent store must follow, as runnable checks.
//!
//! Each check is an `async fn` taking a fresh, empty store and panicking with a message
//! naming the broken rule. The tamper checks need rule-breaking access to the rows, which a
//! store under test provides by implementing [`Tamper`] (this crate implements it for its
//! memory, SQLite and PostgreSQL stores with direct edits and SQL). [`run_all`] runs every
//! check, each on a store from your constructor. Checks that race writers use
//! `tokio::spawn`; run them on a multi-threaded runtime so the races are real.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_store_conforms() {
//!     ciam_consent::conformance::run_all(|| async { MyStore::connect_fresh().await }).await;
//! }
//! ```

// Test support: a failed check must stop the test with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use async_trait::async_trait;

use crate::chain::StoredRecord;
use crate::store::ConsentStore;

mod checks;
mod fixtures;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_tamper;

pub use checks::*;
pub use fixtures::{FlakySink, START, catalog, ledger, user};

/// A field a tamper check edits in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The event kind (`granted` becomes `withdrawn` and anything else `granted`).
    Kind,
    /// The last byte of the sealed personal data (flipped).
    Sealed,
    /// The time (one nanosecond later).
    At,
}

/// Rule-breaking access to a store's stored records, for tamper tests. Nothing here
/// re-hashes anything.
#[async_trait]
pub trait Tamper: ConsentStore + Clone {
    /// Changes `field` of record `seq` in place.
    async fn edit(&self, seq: u64, field: Field);
    /// Deletes record `seq`.
    async fn delete(&self, seq: u64);
    /// Moves every record with `seq >= from` up by one, leaving a hole at `from`.
    async fn shift_up(&self, from: u64);
    /// Writes `record` as given (its `seq` must be free).
    async fn insert(&self, record: &StoredRecord);
    /// Swaps the positions of records `a` and `b`.
    async fn swap(&self, a: u64, b: u64);
    /// Every stored byte of the consent tables (ledger, keys, outbox), concatenated: what a
    /// dump of the database would show.
    async fn dump(&self) -> Vec<u8>;
}

#[async_trait]
impl Tamper for crate::memory::MemoryConsentStore {
    async fn edit(&self, seq: u64, field: Field) {
        self.tamper_records(|records| {
            let r = records.get_mut(&seq).expect("record to edit");
            match field {
                Field::Kind => {
                    r.body.kind = if r.body.kind == crate::EventKind::Granted {
                        crate::EventKind::Withdrawn
                    } else {
                        crate::EventKind::Granted
                    }
                }
                Field::Sealed => {
                    let last = r.body.sealed.last_mut().expect("sealed bytes");
                    *last ^= 1;
                }
                Field::At => r.body.at += time::Duration::nanoseconds(1),
            }
        });
    }

    async fn delete(&self, seq: u64) {
        self.tamper_records(|records| {
            records.remove(&seq).expect("record to delete");
        });
    }

    async fn shift_up(&self, from: u64) {
        self.tamper_records(|records| {
            let moved: Vec<u64> = records.range(from..).map(|(k, _)| *k).collect();
            for k in moved.into_iter().rev() {
                let mut r = records.remove(&k).expect("record");
                r.seq += 1;
                records.insert(r.seq, r);
            }
        });
    }

    async fn insert(&self, record: &StoredRecord) {
        self.tamper_records(|records| {
            assert!(
                records.insert(record.seq, record.clone()).is_none(),
                "seq is free"
            );
        });
    }

    async fn swap(&self, a: u64, b: u64) {
        self.tamper_records(|records| {
            let mut ra = records.remove(&a).expect("record a");
            let mut rb = records.remove(&b).expect("record b");
            ra.seq = b;
            rb.seq = a;
            records.insert(a, rb);
            records.insert(b, ra);
        });
    }

    async fn dump(&self) -> Vec<u8> {
        format!("{self:?}").into_bytes()
    }
}

/// Runs every check, each against a new store made by `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Tamper,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    run_ledger(&make).await;
    run_tamper(&make).await;
    run_enforcement(&make).await;
    run_privacy(&make).await;
    run_outbox(&make).await;
}

/// Appends, reads, verification and concurrent appends.
pub async fn run_ledger<S, F, Fut>(make: F)
where
    S: Tamper,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    append_and_read(make().await).await;
    concurrent_appends_keep_one_chain(make().await).await;
    data_keys_race_to_one(make().await).await;
}

/// Every tamper class is detected, naming the first bad record; anchors catch rewrites.
pub async fn run_tamper<S, F, Fut>(make: F)
where
    S: Tamper,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    for field in [Field::Kind, Field::Sealed, Field::At] {
        edit_is_detected(make().await, field).await;
    }
    deletion_is_detected(make().await).await;
    insertion_is_detected(make().await).await;
    reordering_is_detected(make().await).await;
    anchors_detect_rewrites(make().await).await;
}

/// `check`, expiry, withdrawal, historical queries, re-consent and GPC.
pub async fn run_enforcement<S, F, Fut>(make: F)
where
    S: Tamper,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    check_grant_expiry_withdrawal(make().await).await;
    other_legal_bases(make().await).await;
    historical_queries(make().await).await;
    material_change_needs_reconsent(make().await).await;
    gpc_withdraws_sale_or_share(make().await).await;
}

/// Crypto-shredding and receipts.
pub async fn run_privacy<S, F, Fut>(make: F)
where
    S: Tamper,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    erasure_shreds_and_chains_verify(make().await).await;
    receipts_verify_and_tampering_fails(make().await).await;
}

/// The outbox: at-least-once delivery with backoff, leases.
pub async fn run_outbox<S, F, Fut>(make: F)
where
    S: Tamper,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    outbox_retries_with_backoff(make().await).await;
    outbox_lease_expires(make().await).await;
}
