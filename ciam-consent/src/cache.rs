//! The in-process decision cache behind [`ConsentLedger::check`](crate::ConsentLedger::check).
//!
//! One entry per subject holds the decision for every purpose, computed from one read of the
//! subject's records. An entry lives at most the cache TTL (the bound on how stale a change
//! made by *another* process can be), and a decision based on a grant with an expiry stops
//! being served at that expiry. Every change made through this process evicts the subject's
//! entry before returning. A generation counter, bumped by every eviction, keeps a load that
//! raced with a change from caching what it read before the change. The cache holds at most
//! `capacity` subjects; inserting past that evicts an arbitrary entry.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ciam_core::id::UserId;
use time::OffsetDateTime;

use crate::decision::Decision;

#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub(crate) decision: Decision,
    /// Served while `now < until`.
    pub(crate) until: OffsetDateTime,
}

#[derive(Debug)]
struct Entry {
    until: OffsetDateTime,
    decisions: HashMap<String, Cached>,
}

#[derive(Debug)]
pub(crate) struct DecisionCache {
    capacity: usize,
    map: RwLock<HashMap<UserId, Entry>>,
    generation: AtomicU64,
}

impl DecisionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The cached decision, if fresh at `now`.
    pub(crate) fn get(&self, user: UserId, purpose: &str, now: OffsetDateTime) -> Option<Decision> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(&user)?;
        if now >= entry.until {
            return None;
        }
        let cached = entry.decisions.get(purpose)?;
        (now < cached.until).then_some(cached.decision)
    }

    /// The generation to pass to [`insert`](Self::insert) for a load starting now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a subject's decisions unless something was evicted since `generation`.
    pub(crate) fn insert(
        &self,
        user: UserId,
        until: OffsetDateTime,
        decisions: HashMap<String, Cached>,
        generation: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the write lock: an eviction bumps the generation under it too.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= self.capacity && !map.contains_key(&user) {
            let victim = map.keys().next().copied();
            if let Some(victim) = victim {
                map.remove(&victim);
            }
        }
        map.insert(user, Entry { until, decisions });
    }

    /// Evicts a subject (after a change made through this process).
    pub(crate) fn invalidate(&self, user: UserId) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(&user);
    }

    /// Evicts everything.
    pub(crate) fn clear(&self) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    /// How many subjects are cached.
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}
