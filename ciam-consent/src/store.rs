//! The storage interface consent backends implement, and the outbox's records.

use std::fmt::Debug;

use async_trait::async_trait;
use ciam_core::id::UserId;
use ciam_core::store::StoreResult;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chain::{RecordBody, RecordId, StoredRecord};
use crate::model::{EventKind, LegalBasis, PurposeId};

/// The state of a subject's data key.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyState {
    /// No record was ever written for the subject.
    Absent,
    /// The data key, wrapped under the master key.
    Present(Vec<u8>),
    /// The key was destroyed (crypto-shredding) at this time.
    Erased(OffsetDateTime),
}

impl Debug for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Present(_) => f.write_str("Present(..)"),
            Self::Erased(at) => f.debug_tuple("Erased").field(at).finish(),
        }
    }
}

/// A consent change as delivered downstream. Holds no personal data: the subject is the
/// pseudonymous user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// The ledger record.
    pub record: RecordId,
    /// Its global position.
    pub seq: u64,
    /// The subject.
    pub user: UserId,
    /// The purpose.
    pub purpose: PurposeId,
    /// What happened.
    pub kind: EventKind,
    /// Under which basis.
    pub basis: LegalBasis,
    /// Under which policy version.
    pub policy_version: u32,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Until when a grant counts.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<&StoredRecord> for OutboxEvent {
    fn from(r: &StoredRecord) -> Self {
        Self {
            record: r.body.id,
            seq: r.seq,
            user: r.body.user,
            purpose: r.body.purpose.clone(),
            kind: r.body.kind,
            basis: r.body.basis,
            policy_version: r.body.policy_version,
            at: r.body.at,
            expires_at: r.body.expires_at,
        }
    }
}

/// An outbox event claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The outbox row's id (increasing in write order).
    pub id: u64,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// The event.
    pub event: OutboxEvent,
}

/// Where the ledger keeps its records, the subjects' data keys and the outbox.
///
/// Object-safe; the ledger holds an `Arc<dyn ConsentStore>`. Every method's rules are checked
/// by the conformance kit (feature `conformance`).
#[async_trait]
pub trait ConsentStore: Send + Sync + Debug + 'static {
    /// The subject's key state.
    async fn data_key(&self, user: UserId) -> StoreResult<KeyState>;

    /// Stores `wrapped` as the subject's data key unless a key or a tombstone exists already
    /// (concurrent callers: exactly one wins), and returns the state afterwards.
    async fn insert_data_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState>;

    /// Replaces the subject's data key with a tombstone dated `at` (also when there was no
    /// key). Idempotent: a second call keeps the first date.
    async fn erase_data_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()>;

    /// Appends a record. In one transaction, serialised against every other append: refuses
    /// with `Conflict("erased")` when the subject's key is a tombstone; reads the global head
    /// and the subject's head; links the body with [`StoredRecord::link`]; writes the record;
    /// and writes the outbox row for [`OutboxEvent::from`] the stored record, due at
    /// `body.at`. Either both rows are written or neither.
    async fn append(&self, body: RecordBody) -> StoreResult<StoredRecord>;

    /// The subject's records in `subject_seq` order.
    async fn subject_records(&self, user: UserId) -> StoreResult<Vec<StoredRecord>>;

    /// Up to `limit` records with `seq > after`, in `seq` order.
    async fn records_after(&self, after: u64, limit: usize) -> StoreResult<Vec<StoredRecord>>;

    /// One record by id.
    async fn record(&self, id: RecordId) -> StoreResult<Option<StoredRecord>>;

    /// Claims up to `limit` undelivered outbox rows due at `now` (oldest first), making them
    /// due again only at `lease_until`, so that concurrent relays do not take the same rows
    /// and a relay that dies mid-delivery leaves them to be retried.
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>>;

    /// Marks an outbox row delivered.
    async fn outbox_delivered(&self, id: u64, at: OffsetDateTime) -> StoreResult<()>;

    /// Records a failed delivery: `attempts` so far, due again at `retry_at`.
    async fn outbox_failed(
        &self,
        id: u64,
        attempts: u32,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()>;

    /// How many outbox rows are not delivered yet.
    async fn outbox_undelivered(&self) -> StoreResult<u64>;
}
