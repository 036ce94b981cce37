//! A backend assembled from parts.
//!
//! [`ComposedBackend`] holds one `Arc<dyn …>` per store trait and implements all six by
//! delegation, so it is a [`Backend`] that the rest of ciam (and the conformance kit) can use
//! like any other. Start from a complete backend and swap the parts that should live elsewhere,
//! for example sessions and one-time challenges in Redis while accounts, credentials and the
//! audit log stay in SQL:
//!
//! ```no_run
//! # #[cfg(all(feature = "sqlite", feature = "redis"))]
//! # async fn open() -> Result<(), ciam_core::store::StoreError> {
//! use std::sync::Arc;
//!
//! use ciam_storage::compose::ComposedBackend;
//! use ciam_storage::redis::RedisStore;
//! use ciam_storage::sqlite::SqliteBackend;
//!
//! let sql = Arc::new(SqliteBackend::connect("sqlite://ciam.db?mode=rwc").await?);
//! let redis = Arc::new(RedisStore::connect("redis://127.0.0.1:6379/").await?);
//! let backend = ComposedBackend::from_backend(sql)
//!     .with_sessions(redis.clone())
//!     .with_challenges(redis);
//! # let _ = backend;
//! # Ok(())
//! # }
//! ```
//!
//! The parts do not share transactions: each trait's rules hold within its own store, and no
//! rule of the store traits spans two of them. One consequence: a store that holds sessions
//! but not accounts (such as [`RedisStore`](crate::redis::RedisStore)) cannot check that a
//! session's user exists, so the composed backend accepts a session of an unknown user where
//! a single SQL backend would give [`StoreError::NotFound`](ciam_core::store::StoreError).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::audit::{AuditRecord, AuditRecordBody};
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{CredentialId, SessionId, UserId};
use ciam_core::identifier::{Email, Phone};
use ciam_core::secret::TokenHash;
use ciam_core::session::{DeviceInfo, Session};
use ciam_core::shred::KeyState;
use ciam_core::store::{
    AuditStore, Backend, ChallengeStore, CounterRead, CounterStore, CredentialStore, IdentityStore,
    SessionStore, StoreResult,
};
use ciam_core::user::User;
use time::OffsetDateTime;

/// A [`Backend`] whose six stores may each live in a different place. Cheap to clone (clones
/// share the parts).
#[derive(Clone, Debug)]
pub struct ComposedBackend {
    identities: Arc<dyn IdentityStore>,
    credentials: Arc<dyn CredentialStore>,
    sessions: Arc<dyn SessionStore>,
    challenges: Arc<dyn ChallengeStore>,
    audit: Arc<dyn AuditStore>,
    counters: Arc<dyn CounterStore>,
}

impl ComposedBackend {
    /// A backend made of the six given stores.
    pub fn new(
        identities: Arc<dyn IdentityStore>,
        credentials: Arc<dyn CredentialStore>,
        sessions: Arc<dyn SessionStore>,
        challenges: Arc<dyn ChallengeStore>,
        audit: Arc<dyn AuditStore>,
        counters: Arc<dyn CounterStore>,
    ) -> Self {
        Self {
            identities,
            credentials,
            sessions,
            challenges,
            audit,
            counters,
        }
    }

    /// A backend using `backend` for every store; replace parts with the `with_*` methods.
    pub fn from_backend<B: Backend>(backend: Arc<B>) -> Self {
        Self {
            identities: backend.clone(),
            credentials: backend.clone(),
            sessions: backend.clone(),
            challenges: backend.clone(),
            audit: backend.clone(),
            counters: backend,
        }
    }

    /// Uses `store` for rate-limit counters.
    #[must_use]
    pub fn with_counters(mut self, store: Arc<dyn CounterStore>) -> Self {
        self.counters = store;
        self
    }

    /// The rate-limit counter store.
    pub fn counters(&self) -> &Arc<dyn CounterStore> {
        &self.counters
    }

    /// Uses `store` for accounts.
    #[must_use]
    pub fn with_identities(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.identities = store;
        self
    }

    /// Uses `store` for credentials.
    #[must_use]
    pub fn with_credentials(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.credentials = store;
        self
    }

    /// Uses `store` for sessions.
    #[must_use]
    pub fn with_sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = store;
        self
    }

    /// Uses `store` for one-time challenges.
    #[must_use]
    pub fn with_challenges(mut self, store: Arc<dyn ChallengeStore>) -> Self {
        self.challenges = store;
        self
    }

    /// Uses `store` for the audit log.
    #[must_use]
    pub fn with_audit(mut self, store: Arc<dyn AuditStore>) -> Self {
        self.audit = store;
        self
    }

    /// The account store.
    pub fn identities(&self) -> &Arc<dyn IdentityStore> {
        &self.identities
    }

    /// The credential store.
    pub fn credentials(&self) -> &Arc<dyn CredentialStore> {
        &self.credentials
    }

    /// The session store.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// The challenge store.
    pub fn challenges(&self) -> &Arc<dyn ChallengeStore> {
        &self.challenges
    }

    /// The audit store.
    pub fn audit(&self) -> &Arc<dyn AuditStore> {
        &self.audit
    }
}

#[async_trait]
impl IdentityStore for ComposedBackend {
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        self.identities.create_user(user, credentials).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.identities.user_by_id(id).await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        self.identities.user_by_email(email).await
    }

    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>> {
        self.identities.user_by_phone(phone).await
    }

    async fn update_user(&self, user: &User) -> StoreResult<User> {
        self.identities.update_user(user).await
    }

    async fn touch_user_activity(&self, id: UserId, at: OffsetDateTime) -> StoreResult<bool> {
        self.identities.touch_user_activity(id, at).await
    }

    async fn dormant_users(
        &self,
        inactive_since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        self.identities.dormant_users(inactive_since, limit).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        self.identities.delete_user(id).await
    }
}

#[async_trait]
impl CredentialStore for ComposedBackend {
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        self.credentials.insert_credential(credential).await
    }

    async fn credential_by_id(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        self.credentials.credential_by_id(id).await
    }

    async fn credential_by_lookup(
        &self,
        kind: CredentialKind,
        lookup: &[u8],
    ) -> StoreResult<Option<Credential>> {
        self.credentials.credential_by_lookup(kind, lookup).await
    }

    async fn credentials_for_user(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> StoreResult<Vec<Credential>> {
        self.credentials.credentials_for_user(user, kind).await
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<Credential> {
        self.credentials.update_credential(credential).await
    }

    async fn touch_credential(&self, id: CredentialId, at: OffsetDateTime) -> StoreResult<()> {
        self.credentials.touch_credential(id, at).await
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        self.credentials.delete_credential(id).await
    }
}

#[async_trait]
impl SessionStore for ComposedBackend {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.sessions.insert_session(session).await
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        self.sessions.session_by_token(hash, now).await
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        self.sessions
            .touch_session(id, last_seen_at, idle_expires_at, device)
            .await
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        self.sessions.sessions_for_user(user, now).await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        self.sessions.delete_session(user, id).await
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        self.sessions.delete_user_sessions(user, keep).await
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.sessions.purge_expired_sessions(now).await
    }
}

#[async_trait]
impl ChallengeStore for ComposedBackend {
    async fn insert_challenge(&self, challenge: &Challenge) -> StoreResult<()> {
        self.challenges.insert_challenge(challenge).await
    }

    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        self.challenges.challenge_by_hash(purpose, hash, now).await
    }

    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        self.challenges.consume_challenge(purpose, hash, now).await
    }

    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.challenges
            .count_challenges(user, purpose, since, now)
            .await
    }

    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64> {
        self.challenges.delete_challenges(user, purpose).await
    }

    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.challenges.purge_expired_challenges(now).await
    }
}

#[async_trait]
impl AuditStore for ComposedBackend {
    async fn append_audit(&self, body: AuditRecordBody) -> StoreResult<AuditRecord> {
        self.audit.append_audit(body).await
    }

    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.audit.audit_for_user(user, limit).await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.audit.recent_audit(limit).await
    }

    async fn audit_after(&self, after: u64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.audit.audit_after(after, limit).await
    }

    async fn audit_key(&self, user: UserId) -> StoreResult<KeyState> {
        self.audit.audit_key(user).await
    }

    async fn insert_audit_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        self.audit.insert_audit_key(user, wrapped, at).await
    }

    async fn erase_audit_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        self.audit.erase_audit_key(user, at).await
    }
}

#[async_trait]
impl CounterStore for ComposedBackend {
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        self.counters.hit(key, window, now).await
    }

    async fn count(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        self.counters.count(key, window, now).await
    }

    async fn counts(&self, reads: &[CounterRead<'_>]) -> StoreResult<Vec<u64>> {
        self.counters.counts(reads).await
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        self.counters.reset(key).await
    }
}
