//! The in-process reference backend.
//!
//! [`MemoryBackend`] keeps everything in maps behind one mutex. It is the executable
//! definition of the storage semantics: every rule the conformance kit checks is implemented
//! here in the most direct way. State is lost when the last clone is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::audit::{AuditRecord, AuditRecordBody};
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{AuditId, CredentialId, SessionId, UserId};
use ciam_core::identifier::{Email, Phone};
use ciam_core::secret::TokenHash;
use ciam_core::session::{DeviceInfo, Session};
use ciam_core::shred::KeyState;
use ciam_core::store::{
    AuditStore, ChallengeStore, CounterStore, CredentialStore, IdentityStore, SessionStore,
    StoreError, StoreResult, window_index,
};
use ciam_core::user::User;
use time::OffsetDateTime;

/// An in-memory backend implementing every store trait. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    // Secondary indexes keep uniqueness checks and lookups O(1) as the store grows.
    by_email: HashMap<String, UserId>,
    by_username: HashMap<String, UserId>,
    by_phone: HashMap<String, UserId>,
    credentials: HashMap<CredentialId, Credential>,
    /// (kind, lookup) -> credential, for credentials that have a lookup key.
    credential_lookup: HashMap<(CredentialKind, Vec<u8>), CredentialId>,
    sessions: HashMap<SessionId, Session>,
    by_token: HashMap<[u8; 32], SessionId>,
    challenges: HashMap<[u8; 32], Challenge>,
    /// The audit chain in `seq` order.
    audit: Vec<AuditRecord>,
    audit_ids: HashSet<AuditId>,
    audit_keys: HashMap<UserId, KeyState>,
    /// Rate-limit counters: key -> (window index -> count); windows before the previous one
    /// are dropped on every hit.
    counters: HashMap<String, HashMap<i64, u64>>,
}

impl MemoryBackend {
    /// Creates an empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied write: every method checks
        // all its rules before mutating anything.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The identifier keys of a user that must be unique across accounts.
struct Keys {
    email: Option<String>,
    username: Option<String>,
    phone: Option<String>,
}

impl Keys {
    fn of(user: &User) -> Self {
        Self {
            email: user.email.as_ref().map(|e| e.canonical().to_owned()),
            username: user.username.as_ref().map(|u| u.canonical().to_owned()),
            phone: user.phone.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

impl State {
    /// Whether another credential of the same kind holds `c`'s lookup key.
    fn lookup_taken(&self, c: &Credential) -> bool {
        c.lookup
            .as_ref()
            .is_some_and(|l| self.credential_lookup.contains_key(&(c.kind, l.clone())))
    }

    /// Stores a credential and indexes its lookup key (callers checked for conflicts).
    fn add_credential(&mut self, c: &Credential) {
        if let Some(l) = &c.lookup {
            self.credential_lookup.insert((c.kind, l.clone()), c.id);
        }
        self.credentials.insert(c.id, c.clone());
    }

    /// Fails with `Conflict` when another account than `owner` holds one of `keys`.
    fn check_keys(&self, keys: &Keys, owner: UserId) -> StoreResult<()> {
        let taken = |index: &HashMap<String, UserId>, key: &Option<String>| {
            key.as_ref()
                .and_then(|k| index.get(k))
                .is_some_and(|id| *id != owner)
        };
        if taken(&self.by_email, &keys.email) {
            return Err(StoreError::Conflict("email"));
        }
        if taken(&self.by_username, &keys.username) {
            return Err(StoreError::Conflict("username"));
        }
        if taken(&self.by_phone, &keys.phone) {
            return Err(StoreError::Conflict("phone"));
        }
        Ok(())
    }

    fn index_keys(&mut self, keys: Keys, owner: UserId) {
        if let Some(k) = keys.email {
            self.by_email.insert(k, owner);
        }
        if let Some(k) = keys.username {
            self.by_username.insert(k, owner);
        }
        if let Some(k) = keys.phone {
            self.by_phone.insert(k, owner);
        }
    }

    fn unindex_keys(&mut self, keys: Keys) {
        if let Some(k) = keys.email {
            self.by_email.remove(&k);
        }
        if let Some(k) = keys.username {
            self.by_username.remove(&k);
        }
        if let Some(k) = keys.phone {
            self.by_phone.remove(&k);
        }
    }

    fn remove_session(&mut self, id: SessionId) -> bool {
        match self.sessions.remove(&id) {
            Some(s) => {
                self.by_token.remove(s.token_hash.as_bytes());
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl IdentityStore for MemoryBackend {
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        let mut st = self.lock();
        if st.users.contains_key(&user.id) {
            return Err(StoreError::Conflict("user"));
        }
        let keys = Keys::of(user);
        st.check_keys(&keys, user.id)?;
        for (i, c) in credentials.iter().enumerate() {
            let earlier = &credentials[..i];
            if st.credentials.contains_key(&c.id)
                || earlier.iter().any(|d| d.id == c.id)
                || st.lookup_taken(c)
                || earlier
                    .iter()
                    .any(|d| d.kind == c.kind && d.lookup.is_some() && d.lookup == c.lookup)
            {
                return Err(StoreError::Conflict("credential"));
            }
            if c.user_id != user.id {
                // The SQLite backend's foreign key refuses this too.
                return Err(StoreError::NotFound);
            }
        }
        st.index_keys(keys, user.id);
        st.users.insert(user.id, user.clone());
        for c in credentials {
            st.add_credential(c);
        }
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let st = self.lock();
        Ok(st
            .by_email
            .get(email.canonical())
            .and_then(|id| st.users.get(id))
            .cloned())
    }

    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>> {
        let st = self.lock();
        Ok(st
            .by_phone
            .get(phone.as_str())
            .and_then(|id| st.users.get(id))
            .cloned())
    }

    async fn update_user(&self, user: &User) -> StoreResult<User> {
        let mut st = self.lock();
        let stored = st.users.get(&user.id).ok_or(StoreError::NotFound)?;
        if stored.version != user.version {
            return Err(StoreError::VersionConflict);
        }
        let old_keys = Keys::of(stored);
        let stored_activity = stored.last_active_at;
        let new_keys = Keys::of(user);
        st.check_keys(&new_keys, user.id)?;
        st.unindex_keys(old_keys);
        st.index_keys(new_keys, user.id);
        let mut next = user.clone();
        next.version = user.version.saturating_add(1);
        // Only `touch_user_activity` moves the activity time.
        let mut kept = next.clone();
        kept.last_active_at = stored_activity;
        st.users.insert(user.id, kept);
        Ok(next)
    }

    async fn touch_user_activity(&self, id: UserId, at: OffsetDateTime) -> StoreResult<bool> {
        let mut st = self.lock();
        let Some(u) = st.users.get_mut(&id) else {
            return Ok(false);
        };
        u.last_active_at = Some(u.last_active_at.map_or(at, |t| t.max(at)));
        Ok(true)
    }

    async fn dormant_users(
        &self,
        inactive_since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        let st = self.lock();
        let active = |u: &User| u.last_active_at.unwrap_or(u.created_at);
        let mut out: Vec<User> = st
            .users
            .values()
            .filter(|u| active(u) < inactive_since)
            .cloned()
            .collect();
        out.sort_by_key(|u| (active(u), u.id));
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let mut st = self.lock();
        let Some(user) = st.users.remove(&id) else {
            return Ok(false);
        };
        st.unindex_keys(Keys::of(&user));
        // What the SQL backends' ON DELETE CASCADE removes with the account.
        let credentials: Vec<Credential> = st
            .credentials
            .values()
            .filter(|c| c.user_id == id)
            .cloned()
            .collect();
        for c in credentials {
            st.credentials.remove(&c.id);
            if let Some(l) = c.lookup {
                st.credential_lookup.remove(&(c.kind, l));
            }
        }
        let sessions: Vec<SessionId> = st
            .sessions
            .values()
            .filter(|s| s.user_id == id)
            .map(|s| s.id)
            .collect();
        for s in sessions {
            st.remove_session(s);
        }
        st.challenges.retain(|_, c| c.user_id != Some(id));
        Ok(true)
    }
}

#[async_trait]
impl CredentialStore for MemoryBackend {
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        let mut st = self.lock();
        if st.credentials.contains_key(&credential.id) || st.lookup_taken(credential) {
            return Err(StoreError::Conflict("credential"));
        }
        if !st.users.contains_key(&credential.user_id) {
            return Err(StoreError::NotFound);
        }
        st.add_credential(credential);
        Ok(())
    }

    async fn credential_by_id(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        Ok(self.lock().credentials.get(&id).cloned())
    }

    async fn credential_by_lookup(
        &self,
        kind: CredentialKind,
        lookup: &[u8],
    ) -> StoreResult<Option<Credential>> {
        let st = self.lock();
        Ok(st
            .credential_lookup
            .get(&(kind, lookup.to_vec()))
            .and_then(|id| st.credentials.get(id))
            .cloned())
    }

    async fn credentials_for_user(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> StoreResult<Vec<Credential>> {
        let st = self.lock();
        let mut out: Vec<Credential> = st
            .credentials
            .values()
            .filter(|c| c.user_id == user && c.kind == kind)
            .cloned()
            .collect();
        out.sort_by_key(|c| (c.created_at, c.id));
        Ok(out)
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<Credential> {
        let mut st = self.lock();
        let stored = st
            .credentials
            .get_mut(&credential.id)
            .ok_or(StoreError::NotFound)?;
        if stored.version != credential.version {
            return Err(StoreError::VersionConflict);
        }
        stored.secret.clone_from(&credential.secret);
        stored.name.clone_from(&credential.name);
        stored.updated_at = credential.updated_at;
        stored.version = stored.version.saturating_add(1);
        Ok(stored.clone())
    }

    async fn touch_credential(&self, id: CredentialId, at: OffsetDateTime) -> StoreResult<()> {
        if let Some(c) = self.lock().credentials.get_mut(&id) {
            c.last_used_at = Some(at);
        }
        Ok(())
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        let mut st = self.lock();
        match st.credentials.remove(&id) {
            Some(c) => {
                if let Some(lookup) = c.lookup {
                    st.credential_lookup.remove(&(c.kind, lookup));
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[async_trait]
impl SessionStore for MemoryBackend {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        let mut st = self.lock();
        if st.sessions.contains_key(&session.id)
            || st.by_token.contains_key(session.token_hash.as_bytes())
        {
            return Err(StoreError::Conflict("session"));
        }
        if !st.users.contains_key(&session.user_id) {
            return Err(StoreError::NotFound);
        }
        st.by_token
            .insert(*session.token_hash.as_bytes(), session.id);
        st.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        let st = self.lock();
        Ok(st
            .by_token
            .get(hash.as_bytes())
            .and_then(|id| st.sessions.get(id))
            .filter(|s| !s.is_expired(now))
            .cloned())
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        let mut st = self.lock();
        let Some(s) = st.sessions.get_mut(&id) else {
            return Ok(false);
        };
        s.last_seen_at = last_seen_at;
        s.idle_expires_at = idle_expires_at;
        // The user agent stays the one the session was created with; the IP follows the client.
        if device.ip.is_some() {
            s.device.ip = device.ip;
        }
        Ok(true)
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        let st = self.lock();
        let mut out: Vec<Session> = st
            .sessions
            .values()
            .filter(|s| s.user_id == user && !s.is_expired(now))
            .cloned()
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(out)
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        let mut st = self.lock();
        if st.sessions.get(&id).is_some_and(|s| s.user_id == user) {
            return Ok(st.remove_session(id));
        }
        Ok(false)
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        let mut st = self.lock();
        let doomed: Vec<SessionId> = st
            .sessions
            .values()
            .filter(|s| s.user_id == user && Some(s.id) != keep)
            .map(|s| s.id)
            .collect();
        Ok(doomed
            .into_iter()
            .filter(|id| st.remove_session(*id))
            .count() as u64)
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let mut st = self.lock();
        let doomed: Vec<SessionId> = st
            .sessions
            .values()
            .filter(|s| s.is_expired(now))
            .map(|s| s.id)
            .collect();
        Ok(doomed
            .into_iter()
            .filter(|id| st.remove_session(*id))
            .count() as u64)
    }
}

#[async_trait]
impl ChallengeStore for MemoryBackend {
    async fn insert_challenge(&self, challenge: &Challenge) -> StoreResult<()> {
        let mut st = self.lock();
        if st.challenges.contains_key(challenge.secret_hash.as_bytes()) {
            return Err(StoreError::Conflict("challenge"));
        }
        if challenge
            .user_id
            .is_some_and(|u| !st.users.contains_key(&u))
        {
            return Err(StoreError::NotFound);
        }
        st.challenges
            .insert(*challenge.secret_hash.as_bytes(), challenge.clone());
        Ok(())
    }

    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        Ok(self
            .lock()
            .challenges
            .get(hash.as_bytes())
            .filter(|c| c.purpose == purpose && now < c.expires_at)
            .cloned())
    }

    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let mut st = self.lock();
        if st
            .challenges
            .get(hash.as_bytes())
            .is_none_or(|c| c.purpose != purpose)
        {
            return Ok(None);
        }
        Ok(st
            .challenges
            .remove(hash.as_bytes())
            .filter(|c| now < c.expires_at))
    }

    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let st = self.lock();
        let n = st
            .challenges
            .values()
            .filter(|c| {
                c.user_id == Some(user)
                    && c.purpose == purpose
                    && c.created_at >= since
                    && now < c.expires_at
            })
            .count();
        Ok(n as u64)
    }

    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let mut st = self.lock();
        let before = st.challenges.len();
        st.challenges.retain(|_, c| now < c.expires_at);
        Ok((before - st.challenges.len()) as u64)
    }

    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64> {
        let mut st = self.lock();
        let before = st.challenges.len();
        st.challenges
            .retain(|_, c| !(c.user_id == Some(user) && c.purpose == purpose));
        Ok((before - st.challenges.len()) as u64)
    }
}

#[async_trait]
impl AuditStore for MemoryBackend {
    async fn append_audit(&self, body: AuditRecordBody) -> StoreResult<AuditRecord> {
        let mut st = self.lock();
        if !st.audit_ids.insert(body.id) {
            return Err(StoreError::Conflict("audit"));
        }
        let head = st.audit.last().map(|r| (r.seq, r.hash));
        let record = AuditRecord::link(body, head);
        st.audit.push(record.clone());
        Ok(record)
    }

    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        Ok(newest_first(&self.lock().audit, Some(user), limit))
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        Ok(newest_first(&self.lock().audit, None, limit))
    }

    async fn audit_after(&self, after: u64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let st = self.lock();
        let mut out: Vec<AuditRecord> =
            st.audit.iter().filter(|r| r.seq > after).cloned().collect();
        out.sort_by_key(|r| r.seq);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn audit_key(&self, user: UserId) -> StoreResult<KeyState> {
        Ok(self
            .lock()
            .audit_keys
            .get(&user)
            .cloned()
            .unwrap_or(KeyState::Absent))
    }

    async fn insert_audit_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        _at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        let mut st = self.lock();
        Ok(st
            .audit_keys
            .entry(user)
            .or_insert_with(|| KeyState::Present(wrapped.to_vec()))
            .clone())
    }

    async fn erase_audit_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        let mut st = self.lock();
        let state = st.audit_keys.entry(user).or_insert(KeyState::Absent);
        if !matches!(state, KeyState::Erased(_)) {
            *state = KeyState::Erased(at);
        }
        Ok(())
    }
}

/// Records (of `user`, if given) newest first.
fn newest_first(log: &[AuditRecord], user: Option<UserId>, limit: u32) -> Vec<AuditRecord> {
    log.iter()
        .rev()
        .filter(|r| user.is_none() || r.body.user_id == user)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

#[async_trait]
impl CounterStore for MemoryBackend {
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let index = window_index(window, now);
        let mut st = self.lock();
        let windows = st.counters.entry(key.to_owned()).or_default();
        windows.retain(|w, _| *w >= index - 1);
        let count = windows.entry(index).or_insert(0);
        *count += 1;
        Ok(*count)
    }

    async fn count(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        let index = window_index(window, now);
        Ok(self
            .lock()
            .counters
            .get(key)
            .and_then(|w| w.get(&index))
            .copied()
            .unwrap_or(0))
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        self.lock().counters.remove(key);
        Ok(())
    }
}
