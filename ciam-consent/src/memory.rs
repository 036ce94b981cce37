//! The in-process reference store.
//!
//! [`MemoryConsentStore`] keeps everything behind one mutex; appends are serialised by it.
//! State is lost when the process exits. Clones share the state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use ciam_core::id::UserId;
use ciam_core::store::{StoreError, StoreResult};
use time::OffsetDateTime;

use crate::chain::{RecordBody, RecordId, StoredRecord};
use crate::store::{ConsentStore, KeyState, OutboxEvent, OutboxItem};

#[derive(Debug)]
struct OutboxRow {
    event: OutboxEvent,
    attempts: u32,
    due: OffsetDateTime,
    delivered: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<u64, StoredRecord>,
    by_user: HashMap<UserId, BTreeMap<u64, u64>>,
    keys: HashMap<UserId, KeyState>,
    outbox: BTreeMap<u64, OutboxRow>,
    next_outbox: u64,
}

impl State {
    fn reindex(&mut self) {
        self.by_user.clear();
        for r in self.records.values() {
            self.by_user
                .entry(r.body.user)
                .or_default()
                .insert(r.subject_seq, r.seq);
        }
    }
}

/// The reference consent store, in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryConsentStore {
    state: Arc<Mutex<State>>,
}

impl MemoryConsentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives `f` the stored records (by `seq`) to change behind the ledger's back, for
    /// tamper tests. Whatever `f` does is kept as is: nothing is re-hashed.
    #[doc(hidden)]
    pub fn tamper_records(&self, f: impl FnOnce(&mut BTreeMap<u64, StoredRecord>)) {
        let mut state = self.lock();
        f(&mut state.records);
        state.reindex();
    }
}

#[async_trait]
impl ConsentStore for MemoryConsentStore {
    async fn data_key(&self, user: UserId) -> StoreResult<KeyState> {
        Ok(self
            .lock()
            .keys
            .get(&user)
            .cloned()
            .unwrap_or(KeyState::Absent))
    }

    async fn insert_data_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        _at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        let mut state = self.lock();
        Ok(state
            .keys
            .entry(user)
            .or_insert_with(|| KeyState::Present(wrapped.to_vec()))
            .clone())
    }

    async fn erase_data_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        let mut state = self.lock();
        let entry = state.keys.entry(user).or_insert(KeyState::Absent);
        if !matches!(entry, KeyState::Erased(_)) {
            *entry = KeyState::Erased(at);
        }
        Ok(())
    }

    async fn append(&self, body: RecordBody) -> StoreResult<StoredRecord> {
        let mut state = self.lock();
        if matches!(state.keys.get(&body.user), Some(KeyState::Erased(_))) {
            return Err(StoreError::Conflict("erased"));
        }
        if state.records.values().any(|r| r.body.id == body.id) {
            return Err(StoreError::Conflict("record"));
        }
        let global = state
            .records
            .last_key_value()
            .map(|(seq, r)| (*seq, r.hash));
        let subject = state
            .by_user
            .get(&body.user)
            .and_then(|m| m.last_key_value())
            .and_then(|(sseq, seq)| state.records.get(seq).map(|r| (*sseq, r.hash)));
        let due = body.at;
        let user = body.user;
        let stored = StoredRecord::link(body, global, subject);
        state.records.insert(stored.seq, stored.clone());
        state
            .by_user
            .entry(user)
            .or_default()
            .insert(stored.subject_seq, stored.seq);
        state.next_outbox += 1;
        let id = state.next_outbox;
        state.outbox.insert(
            id,
            OutboxRow {
                event: OutboxEvent::from(&stored),
                attempts: 0,
                due,
                delivered: None,
            },
        );
        Ok(stored)
    }

    async fn subject_records(&self, user: UserId) -> StoreResult<Vec<StoredRecord>> {
        let state = self.lock();
        Ok(state
            .by_user
            .get(&user)
            .map(|m| {
                m.values()
                    .filter_map(|seq| state.records.get(seq).cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn records_after(&self, after: u64, limit: usize) -> StoreResult<Vec<StoredRecord>> {
        let state = self.lock();
        Ok(state
            .records
            .range(after.saturating_add(1)..)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn record(&self, id: RecordId) -> StoreResult<Option<StoredRecord>> {
        Ok(self
            .lock()
            .records
            .values()
            .find(|r| r.body.id == id)
            .cloned())
    }

    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>> {
        let mut state = self.lock();
        let mut out = Vec::new();
        for (id, row) in state.outbox.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if row.delivered.is_none() && row.due <= now {
                row.due = lease_until;
                out.push(OutboxItem {
                    id: *id,
                    attempts: row.attempts,
                    event: row.event.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn outbox_delivered(&self, id: u64, at: OffsetDateTime) -> StoreResult<()> {
        let mut state = self.lock();
        let row = state.outbox.get_mut(&id).ok_or(StoreError::NotFound)?;
        row.delivered.get_or_insert(at);
        Ok(())
    }

    async fn outbox_failed(
        &self,
        id: u64,
        attempts: u32,
        retry_at: OffsetDateTime,
        _error: &str,
    ) -> StoreResult<()> {
        let mut state = self.lock();
        let row = state.outbox.get_mut(&id).ok_or(StoreError::NotFound)?;
        if row.delivered.is_none() {
            row.attempts = attempts;
            row.due = retry_at;
        }
        Ok(())
    }

    async fn outbox_undelivered(&self) -> StoreResult<u64> {
        let state = self.lock();
        Ok(state
            .outbox
            .values()
            .filter(|r| r.delivered.is_none())
            .count() as u64)
    }
}
