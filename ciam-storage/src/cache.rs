//! A bounded, read-through session cache in front of any [`SessionStore`].
//!
//! Validating a session is the hottest path of an application: every request does it. The
//! cache answers repeated validations of the same token from memory for up to
//! [`CacheOptions::ttl`] and goes to the store only on a miss or once the entry is older than
//! that. It implements [`SessionStore`] itself (a decorator), so the engine does not know it
//! is there.
//!
//! ## Consistency
//!
//! - Revocations made **through this cache** (sign-out, revoke one, revoke all) evict the
//!   entries first and then write to the store, so this process never serves a revoked
//!   session.
//! - Revocations made by **other processes** reach this cache within `ttl` at the latest (the
//!   default is 1 s), or at once when a [`RevocationChannel`] carries them between processes
//!   (see [`crate::revocation`]: Redis pub/sub, PostgreSQL `LISTEN/NOTIFY`).
//! - Expiry is checked against the caller's `now` on every hit, so a cached session never
//!   outlives its idle or absolute expiry.
//!
//! ## Graceful degradation
//!
//! When the store answers [`StoreError::Unavailable`], a session that was validated within
//! [`CacheOptions::grace`] keeps validating from the cache (and the event is logged), so a
//! database blip does not sign everybody out. Everything that needs the store still fails
//! fast with `Unavailable`. A grace of zero turns this off. After the store answers
//! `Unavailable`, validations skip it for [`CacheOptions::outage_backoff`] (1 s), so requests
//! do not each wait out the store's timeout during an outage.
//!
//! ## Memory
//!
//! At most [`CacheOptions::capacity`] sessions are held; the oldest entry is evicted first.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ciam_core::id::{SessionId, UserId};
use ciam_core::secret::TokenHash;
use ciam_core::session::{DeviceInfo, Session};
use ciam_core::store::{SessionStore, StoreError, StoreResult};
use time::OffsetDateTime;

use crate::revocation::RevocationChannel;

/// Sizing and timing of a [`SessionCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Most sessions held. Default 100 000 (about 50 MB at typical session sizes).
    pub capacity: usize,
    /// How long an entry is served without asking the store: the bound on how stale a
    /// revocation made by another process can be. Default 1 s.
    pub ttl: Duration,
    /// How long after its last successful read from the store an entry may still be served
    /// while the store is unavailable. Default 5 minutes; zero disables it.
    pub grace: Duration,
    /// After the store answered `Unavailable`, how long validations skip it: cached sessions
    /// are served (within the grace period) and misses fail at once, instead of every request
    /// waiting out the store's timeout. Default 1 s; zero disables it.
    pub outage_backoff: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(1),
            grace: Duration::from_secs(300),
            outage_backoff: Duration::from_secs(1),
        }
    }
}

impl CacheOptions {
    /// Options with the given capacity, TTL and grace period.
    pub fn new(capacity: usize, ttl: Duration, grace: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl,
            grace,
            outage_backoff: Duration::from_secs(1),
        }
    }

    /// Sets how long validations skip a store that just answered `Unavailable`.
    pub fn with_outage_backoff(mut self, backoff: Duration) -> Self {
        self.outage_backoff = backoff;
        self
    }
}

/// The store answered `Unavailable` moments ago; it is not asked again until the back-off
/// passes.
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable moments ago; backing off")]
pub struct BackingOff;

/// Which cached sessions to drop, as carried by a revocation channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// One session.
    Session(SessionId),
    /// Every session of a user, except `keep`.
    User {
        /// The user.
        user: UserId,
        /// A session to keep (the one that asked to "sign out everywhere else").
        keep: Option<SessionId>,
    },
}

#[derive(Debug)]
struct Entry {
    session: Session,
    /// When the store last confirmed this session.
    confirmed: Instant,
}

#[derive(Debug, Default)]
struct State {
    by_hash: HashMap<TokenHash, Entry>,
    by_id: HashMap<SessionId, TokenHash>,
    by_user: HashMap<UserId, HashSet<SessionId>>,
    /// Insertion order for eviction; may hold hashes already removed (skipped lazily).
    order: VecDeque<TokenHash>,
    /// Set when the store answered `Unavailable`: validations skip it until then.
    store_down_until: Option<Instant>,
}

impl State {
    fn remove_hash(&mut self, hash: &TokenHash) {
        if let Some(e) = self.by_hash.remove(hash) {
            self.by_id.remove(&e.session.id);
            if let Some(set) = self.by_user.get_mut(&e.session.user_id) {
                set.remove(&e.session.id);
                if set.is_empty() {
                    self.by_user.remove(&e.session.user_id);
                }
            }
        }
    }

    fn remove_id(&mut self, id: SessionId) {
        if let Some(hash) = self.by_id.get(&id).copied() {
            self.remove_hash(&hash);
        }
    }

    fn insert(&mut self, session: Session, capacity: usize) {
        let hash = session.token_hash;
        self.remove_hash(&hash);
        while self.by_hash.len() >= capacity {
            match self.order.pop_front() {
                Some(old) => self.remove_hash(&old),
                None => break,
            }
        }
        self.by_id.insert(session.id, hash);
        self.by_user
            .entry(session.user_id)
            .or_default()
            .insert(session.id);
        self.by_hash.insert(
            hash,
            Entry {
                session,
                confirmed: Instant::now(),
            },
        );
        self.order.push_back(hash);
        // Keep the order queue from growing without bound through re-insertions.
        if self.order.len() > capacity.saturating_mul(2) {
            let live = &self.by_hash;
            self.order.retain(|h| live.contains_key(h));
        }
    }

    fn revoke(&mut self, r: Revocation) {
        match r {
            Revocation::Session(id) => self.remove_id(id),
            Revocation::User { user, keep } => {
                let ids: Vec<SessionId> = self
                    .by_user
                    .get(&user)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                for id in ids.into_iter().filter(|id| Some(*id) != keep) {
                    self.remove_id(id);
                }
            }
        }
    }
}

/// A read-through session cache; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct SessionCache {
    inner: Arc<dyn SessionStore>,
    state: Arc<Mutex<State>>,
    options: CacheOptions,
    channel: Option<Arc<dyn RevocationChannel>>,
}

impl SessionCache {
    /// Puts a cache in front of `inner`.
    pub fn new(inner: Arc<dyn SessionStore>, options: CacheOptions) -> Self {
        Self {
            inner,
            state: Arc::default(),
            options,
            channel: None,
        }
    }

    /// Announces every revocation made through this cache on `channel`, so that the caches
    /// of other processes listening on it evict at once instead of within the TTL.
    pub fn with_channel(mut self, channel: Arc<dyn RevocationChannel>) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Drops every cached session (after a revocation channel lost messages).
    pub fn clear(&self) {
        *self.state() = State::default();
    }

    async fn announce(&self, revocation: Revocation) {
        if let Some(channel) = &self.channel
            && let Err(e) = channel.publish(revocation).await
        {
            // Other processes still drop it within the TTL.
            tracing::warn!(error = %e, "revocation not announced");
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a cache: after a panic elsewhere it is still safe to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops cached sessions named by a revocation from another process.
    pub fn evict(&self, revocation: Revocation) {
        self.state().revoke(revocation);
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.state().by_hash.len()
    }

    /// Whether the cache holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SessionStore for SessionCache {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.inner.insert_session(session).await?;
        self.state().insert(session.clone(), self.options.capacity);
        Ok(())
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        {
            let mut state = self.state();
            if let Some(e) = state.by_hash.get(hash) {
                if e.session.is_expired(now) {
                    state.remove_hash(hash);
                    return Ok(None);
                }
                if e.confirmed.elapsed() < self.options.ttl {
                    return Ok(Some(e.session.clone()));
                }
            }
        }
        {
            let mut state = self.state();
            if let Some(until) = state.store_down_until {
                if Instant::now() < until {
                    return match state.by_hash.get(hash) {
                        Some(e) if e.confirmed.elapsed() < self.options.grace => {
                            Ok(Some(e.session.clone()))
                        }
                        _ => Err(StoreError::Unavailable(Box::new(BackingOff))),
                    };
                }
                state.store_down_until = None;
            }
        }
        match self.inner.session_by_token(hash, now).await {
            Ok(Some(session)) => {
                self.state().insert(session.clone(), self.options.capacity);
                Ok(Some(session))
            }
            Ok(None) => {
                self.state().remove_hash(hash);
                Ok(None)
            }
            Err(StoreError::Unavailable(source)) => {
                let mut state = self.state();
                if !self.options.outage_backoff.is_zero() {
                    state.store_down_until = Some(Instant::now() + self.options.outage_backoff);
                }
                match state.by_hash.get(hash) {
                    Some(e) if e.confirmed.elapsed() < self.options.grace => {
                        tracing::warn!(error = %source, "session store unavailable; serving a cached session within the grace period");
                        Ok(Some(e.session.clone()))
                    }
                    _ => Err(StoreError::Unavailable(source)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        let touched = self
            .inner
            .touch_session(id, last_seen_at, idle_expires_at, device)
            .await?;
        let mut state = self.state();
        if touched {
            if let Some(hash) = state.by_id.get(&id).copied()
                && let Some(e) = state.by_hash.get_mut(&hash)
            {
                e.session.last_seen_at = last_seen_at;
                e.session.idle_expires_at = idle_expires_at;
                if device.ip.is_some() {
                    e.session.device.ip = device.ip;
                }
            }
        } else {
            state.remove_id(id);
        }
        Ok(touched)
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        self.inner.sessions_for_user(user, now).await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        // Evict first: even if the store write fails, this process stops serving it.
        {
            let mut state = self.state();
            let owned = state
                .by_id
                .get(&id)
                .and_then(|h| state.by_hash.get(h))
                .is_some_and(|e| e.session.user_id == user);
            if owned {
                state.remove_id(id);
            }
        }
        let deleted = self.inner.delete_session(user, id).await?;
        if deleted {
            self.announce(Revocation::Session(id)).await;
        }
        Ok(deleted)
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        let revocation = Revocation::User { user, keep };
        self.state().revoke(revocation);
        let deleted = self.inner.delete_user_sessions(user, keep).await?;
        self.announce(revocation).await;
        Ok(deleted)
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        {
            let mut state = self.state();
            let expired: Vec<TokenHash> = state
                .by_hash
                .iter()
                .filter(|(_, e)| e.session.is_expired(now))
                .map(|(h, _)| *h)
                .collect();
            for h in expired {
                state.remove_hash(&h);
            }
        }
        self.inner.purge_expired_sessions(now).await
    }
}
