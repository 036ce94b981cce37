//! Data residency: every account pinned to a region, its data kept in that region's backend.
//!
//! [`RegionalBackend`] is a [`Backend`] over one backend per region. Each process serves one
//! region, its *home*. An account lives in the region named by [`User::region`] when it is
//! created (the home region when that is `None`), and every later call about it (its
//! credentials, sessions, challenges, audit records and data key) goes to that region's
//! backend. A call about an account of another region is refused with
//! [`CrossRegionRefused`] (inside [`StoreError::Other`]) unless cross-region access was
//! allowed with [`RegionalBackend::allow_cross_region`]: by default no personal data leaves
//! its region, not even for a read.
//!
//! Which region holds an account is kept in a [`RegionDirectory`], shared by the regions
//! (one small PostgreSQL table pair with `PostgresDirectory` (feature `postgres`), or [`MemoryDirectory`] in one
//! process). The directory holds no personal data in clear: an account's id, its region, and
//! for each identifier (e-mail, phone, username) an HMAC-SHA-256 under the application's
//! directory key ([`DirectoryHasher`]), which is what makes an address unique across all
//! regions and lets a sign-in by address find its region. Deleting an account
//! ([`IdentityStore::delete_user`]) frees its identifiers in the directory; its id and region
//! stay until [`RegionalBackend::forget_user`], so the rest of its erasure lands in its region.
//!
//! Calls that name no account (a session or challenge by its secret's hash, a credential by
//! id or lookup key) search the home backend, then, only when cross-region access is allowed,
//! the others. Rate-limit counters, the expired-session purge, the retention scan
//! ([`IdentityStore::dormant_users`]) and the audit chain's reads ([`AuditStore::audit_after`],
//! [`AuditStore::recent_audit`]) are the home region's: each region runs its own maintenance
//! and verifies its own chain.
//!
//! ```
//! # async fn demo() -> Result<(), ciam_core::store::StoreError> {
//! use std::sync::Arc;
//!
//! use ciam_core::user::Region;
//! use ciam_storage::memory::MemoryBackend;
//! use ciam_storage::regional::{DirectoryHasher, MemoryDirectory, RegionalBackend};
//!
//! let eu = Region::new("eu").unwrap();
//! let us = Region::new("us").unwrap();
//! let backend = RegionalBackend::new(
//!     eu.clone(),
//!     Arc::new(MemoryDirectory::new()),
//!     DirectoryHasher::new(b"a 32-byte secret from your vault!"),
//! )
//! .region(eu, Arc::new(MemoryBackend::new()))
//! .region(us, Arc::new(MemoryBackend::new()));
//! # let _ = backend;
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
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
    SessionStore, StoreError, StoreResult,
};
use ciam_core::user::{Region, User};
use ring::hmac;
use time::OffsetDateTime;

#[cfg(feature = "postgres")]
pub use crate::postgres::PostgresDirectory;

/// A call about an account of another region, refused because cross-region access is off.
/// Carried as [`StoreError::Other`]; find it with `downcast_ref` on the error's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the account lives in region {}, this process serves region {}",
    .region.as_str(),
    .home.as_str()
)]
pub struct CrossRegionRefused {
    /// The region this process serves.
    pub home: Region,
    /// The region the account lives in.
    pub region: Region,
}

/// An account names a region that has no backend here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no backend is configured for region {}", .0.as_str())]
pub struct UnknownRegion(pub Region);

/// The keyed hash of one identifier, as the directory stores it, with the identifier's kind
/// (`"email"`, `"phone"` or `"username"`, the label of the [`StoreError::Conflict`] it
/// causes when taken).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirectoryKey {
    kind: &'static str,
    hash: [u8; 32],
}

impl DirectoryKey {
    /// The 32 bytes of the keyed hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The identifier's kind: `"email"`, `"phone"` or `"username"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

impl fmt::Debug for DirectoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirectoryKey({}:", self.kind)?;
        for b in &self.hash[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Turns identifiers into [`DirectoryKey`]s: HMAC-SHA-256 under the application's directory
/// key, over the identifier's kind and canonical form. Every region must use the same key.
#[derive(Clone)]
pub struct DirectoryHasher(hmac::Key);

impl fmt::Debug for DirectoryHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirectoryHasher([redacted])")
    }
}

impl DirectoryHasher {
    /// A hasher keyed with `secret` (at least 32 random bytes, kept like any other secret).
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    fn key(&self, kind: &'static str, canonical: &str) -> DirectoryKey {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(canonical.as_bytes());
        let tag = ctx.sign();
        let mut hash = [0u8; 32];
        hash.copy_from_slice(tag.as_ref());
        DirectoryKey { kind, hash }
    }

    /// The key of an e-mail address (its canonical form).
    pub fn email(&self, email: &Email) -> DirectoryKey {
        self.key("email", email.canonical())
    }

    /// The key of a phone number.
    pub fn phone(&self, phone: &Phone) -> DirectoryKey {
        self.key("phone", phone.as_str())
    }

    /// The keys of every identifier `user` holds.
    pub fn keys_of(&self, user: &User) -> Vec<DirectoryKey> {
        let mut keys = Vec::with_capacity(3);
        if let Some(e) = &user.email {
            keys.push(self.email(e));
        }
        if let Some(p) = &user.phone {
            keys.push(self.phone(p));
        }
        if let Some(u) = &user.username {
            keys.push(self.key("username", u.canonical()));
        }
        keys
    }
}

/// Where each account lives, shared by every region. Holds account ids, regions and
/// [`DirectoryKey`]s, never an identifier in clear.
#[async_trait]
pub trait RegionDirectory: Send + Sync + fmt::Debug + 'static {
    /// Records that `user` lives in `region` and holds `keys`, atomically. Fails with
    /// [`StoreError::Conflict`] (and records nothing) when the account is already recorded
    /// (`"user"`) or another account holds one of the keys (labelled with the key's
    /// [kind](DirectoryKey::kind)), even when two claims race.
    async fn claim(&self, user: UserId, region: &Region, keys: &[DirectoryKey]) -> StoreResult<()>;

    /// Replaces the keys `user` holds, atomically. [`StoreError::Conflict`] (labelled with the
    /// key's kind) when another account holds one of them; [`StoreError::NotFound`] for an
    /// unrecorded account.
    async fn set_keys(&self, user: UserId, keys: &[DirectoryKey]) -> StoreResult<()>;

    /// The region of `user`, if recorded.
    async fn region_of(&self, user: UserId) -> StoreResult<Option<Region>>;

    /// The account holding `key`, and its region.
    async fn lookup(&self, key: &DirectoryKey) -> StoreResult<Option<(UserId, Region)>>;

    /// Removes `user` and its keys; true when it was recorded.
    async fn forget(&self, user: UserId) -> StoreResult<bool>;
}

#[derive(Debug, Default)]
struct DirectoryState {
    regions: HashMap<UserId, Region>,
    keys: HashMap<DirectoryKey, UserId>,
    held: HashMap<UserId, HashSet<DirectoryKey>>,
}

/// A [`RegionDirectory`] in this process's memory: for tests, and for one process serving
/// several regions.
#[derive(Debug, Default)]
pub struct MemoryDirectory(Mutex<DirectoryState>);

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RegionDirectory for MemoryDirectory {
    async fn claim(&self, user: UserId, region: &Region, keys: &[DirectoryKey]) -> StoreResult<()> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if s.regions.contains_key(&user) {
            return Err(StoreError::Conflict("user"));
        }
        if let Some(taken) = keys.iter().find(|k| s.keys.contains_key(*k)) {
            return Err(StoreError::Conflict(taken.kind));
        }
        s.regions.insert(user, region.clone());
        for k in keys {
            s.keys.insert(k.clone(), user);
        }
        s.held.insert(user, keys.iter().cloned().collect());
        Ok(())
    }

    async fn set_keys(&self, user: UserId, keys: &[DirectoryKey]) -> StoreResult<()> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.regions.contains_key(&user) {
            return Err(StoreError::NotFound);
        }
        if let Some(taken) = keys
            .iter()
            .find(|k| s.keys.get(*k).is_some_and(|holder| *holder != user))
        {
            return Err(StoreError::Conflict(taken.kind));
        }
        for old in s.held.remove(&user).unwrap_or_default() {
            s.keys.remove(&old);
        }
        for k in keys {
            s.keys.insert(k.clone(), user);
        }
        s.held.insert(user, keys.iter().cloned().collect());
        Ok(())
    }

    async fn region_of(&self, user: UserId) -> StoreResult<Option<Region>> {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(s.regions.get(&user).cloned())
    }

    async fn lookup(&self, key: &DirectoryKey) -> StoreResult<Option<(UserId, Region)>> {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(s.keys
            .get(key)
            .and_then(|u| s.regions.get(u).map(|r| (*u, r.clone()))))
    }

    async fn forget(&self, user: UserId) -> StoreResult<bool> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for old in s.held.remove(&user).unwrap_or_default() {
            s.keys.remove(&old);
        }
        Ok(s.regions.remove(&user).is_some())
    }
}

/// Whether a process may touch accounts of other regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrossRegion {
    /// Refused with [`CrossRegionRefused`]; lookups by secret search the home region only.
    #[default]
    Refuse,
    /// Allowed: calls go to the account's region wherever it is.
    Allow,
}

/// A [`Backend`] that keeps each account's data in its region's backend. See the
/// [module documentation](self).
#[derive(Clone)]
pub struct RegionalBackend {
    home: Region,
    regions: HashMap<Region, Arc<dyn Backend>>,
    directory: Arc<dyn RegionDirectory>,
    hasher: DirectoryHasher,
    cross_region: CrossRegion,
}

impl fmt::Debug for RegionalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegionalBackend")
            .field("home", &self.home)
            .field("regions", &self.regions.keys().collect::<Vec<_>>())
            .field("directory", &self.directory)
            .field("cross_region", &self.cross_region)
            .finish_non_exhaustive()
    }
}

impl RegionalBackend {
    /// A backend serving region `home`, with no region backends yet (add them with
    /// [`Self::region`], the home region's included).
    pub fn new(home: Region, directory: Arc<dyn RegionDirectory>, hasher: DirectoryHasher) -> Self {
        Self {
            home,
            regions: HashMap::new(),
            directory,
            hasher,
            cross_region: CrossRegion::Refuse,
        }
    }

    /// Adds (or replaces) the backend of `region`.
    #[must_use]
    pub fn region<B: Backend>(mut self, region: Region, backend: Arc<B>) -> Self {
        self.regions.insert(region, backend);
        self
    }

    /// Sets whether accounts of other regions may be read and written from here (refused by
    /// default).
    #[must_use]
    pub fn allow_cross_region(mut self, policy: CrossRegion) -> Self {
        self.cross_region = policy;
        self
    }

    /// The region this process serves.
    pub fn home(&self) -> &Region {
        &self.home
    }

    /// Removes a deleted account's last directory entry (its id and region), after its
    /// erasure has finished. True when there was one.
    pub async fn forget_user(&self, user: UserId) -> StoreResult<bool> {
        self.directory.forget(user).await
    }

    /// The region of the account holding `email`, if any: for routing a sign-in to the
    /// process of the account's region before it reaches the engine (which reports a refused
    /// cross-region call as a storage error).
    pub async fn region_for_email(&self, email: &Email) -> StoreResult<Option<Region>> {
        Ok(self
            .directory
            .lookup(&self.hasher.email(email))
            .await?
            .map(|(_, region)| region))
    }

    /// The region `user` lives in, if the directory knows the account.
    pub async fn region_of(&self, user: UserId) -> StoreResult<Option<Region>> {
        self.directory.region_of(user).await
    }

    /// The backend of `region`, if access to it is allowed from here.
    fn permitted(&self, region: &Region) -> StoreResult<&Arc<dyn Backend>> {
        if *region != self.home && self.cross_region == CrossRegion::Refuse {
            return Err(StoreError::Other(Box::new(CrossRegionRefused {
                home: self.home.clone(),
                region: region.clone(),
            })));
        }
        self.regions
            .get(region)
            .ok_or_else(|| StoreError::Other(Box::new(UnknownRegion(region.clone()))))
    }

    fn home_backend(&self) -> StoreResult<&Arc<dyn Backend>> {
        self.permitted(&self.home)
    }

    /// The backend holding `user`'s data: its region's, or the home region's for an account
    /// the directory does not know (whose calls then find nothing, as on any backend).
    async fn of_user(&self, user: UserId) -> StoreResult<&Arc<dyn Backend>> {
        match self.directory.region_of(user).await? {
            Some(region) => self.permitted(&region),
            None => self.home_backend(),
        }
    }

    /// The backends a lookup by secret searches, home first.
    fn search(&self) -> StoreResult<Vec<&Arc<dyn Backend>>> {
        let mut out = vec![self.home_backend()?];
        if self.cross_region == CrossRegion::Allow {
            out.extend(
                self.regions
                    .iter()
                    .filter(|(r, _)| **r != self.home)
                    .map(|(_, b)| b),
            );
        }
        Ok(out)
    }

    /// The first answer of the backends a lookup by secret searches ([`Self::search`]).
    async fn first<'a, T, F, Fut>(&'a self, mut ask: F) -> StoreResult<Option<T>>
    where
        F: FnMut(&'a Arc<dyn Backend>) -> Fut,
        Fut: std::future::Future<Output = StoreResult<Option<T>>>,
    {
        for b in self.search()? {
            if let Some(found) = ask(b).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The backend of the account holding `key`, if any.
    async fn of_key(&self, key: &DirectoryKey) -> StoreResult<Option<&Arc<dyn Backend>>> {
        match self.directory.lookup(key).await? {
            Some((_, region)) => self.permitted(&region).map(Some),
            None => Ok(None),
        }
    }

    /// The backend holding credential `id`, searched as a lookup by secret.
    async fn of_credential(&self, id: CredentialId) -> StoreResult<&Arc<dyn Backend>> {
        let search = self.search()?;
        for b in &search {
            if b.credential_by_id(id).await?.is_some() {
                return Ok(b);
            }
        }
        self.home_backend()
    }
}

#[async_trait]
impl IdentityStore for RegionalBackend {
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        let region = user.region.clone().unwrap_or_else(|| self.home.clone());
        let backend = self.permitted(&region)?;
        self.directory
            .claim(user.id, &region, &self.hasher.keys_of(user))
            .await?;
        match backend.create_user(user, credentials).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Undo the claim: the account does not exist anywhere.
                if let Err(undo) = self.directory.forget(user.id).await {
                    tracing::error!(error = %undo, user = %user.id, "cannot undo a directory claim");
                }
                Err(e)
            }
        }
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.of_user(id).await?.user_by_id(id).await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        match self.of_key(&self.hasher.email(email)).await? {
            Some(b) => b.user_by_email(email).await,
            None => Ok(None),
        }
    }

    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>> {
        match self.of_key(&self.hasher.phone(phone)).await? {
            Some(b) => b.user_by_phone(phone).await,
            None => Ok(None),
        }
    }

    async fn update_user(&self, user: &User) -> StoreResult<User> {
        let Some(region) = self.directory.region_of(user.id).await? else {
            return self.home_backend()?.update_user(user).await;
        };
        let backend = self.permitted(&region)?;
        let Some(before) = backend.user_by_id(user.id).await? else {
            return Err(StoreError::NotFound);
        };
        let (old, new) = (self.hasher.keys_of(&before), self.hasher.keys_of(user));
        if old == new {
            return backend.update_user(user).await;
        }
        // Reserve the new identifiers first (unique across regions), then write; put the old
        // ones back if the write fails.
        self.directory.set_keys(user.id, &new).await?;
        match backend.update_user(user).await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                if let Err(undo) = self.directory.set_keys(user.id, &old).await {
                    tracing::error!(error = %undo, user = %user.id, "cannot restore directory keys");
                }
                Err(e)
            }
        }
    }

    async fn touch_user_activity(&self, id: UserId, at: OffsetDateTime) -> StoreResult<bool> {
        self.of_user(id).await?.touch_user_activity(id, at).await
    }

    async fn dormant_users(
        &self,
        inactive_since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        self.home_backend()?
            .dormant_users(inactive_since, limit)
            .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let existed = self.of_user(id).await?.delete_user(id).await?;
        // The identifiers become free in every region. The account id and its region stay
        // (neither is an identifier in clear), so what erasure still writes about the account
        // (its audit key's tombstone, the erasure's own audit record) lands in its region;
        // `forget_user` removes them once that is done.
        match self.directory.set_keys(id, &[]).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(existed),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl CredentialStore for RegionalBackend {
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        self.of_user(credential.user_id)
            .await?
            .insert_credential(credential)
            .await
    }

    async fn credential_by_id(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        self.first(|b| b.credential_by_id(id)).await
    }

    async fn credential_by_lookup(
        &self,
        kind: CredentialKind,
        lookup: &[u8],
    ) -> StoreResult<Option<Credential>> {
        self.first(|b| b.credential_by_lookup(kind, lookup)).await
    }

    async fn credentials_for_user(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> StoreResult<Vec<Credential>> {
        self.of_user(user)
            .await?
            .credentials_for_user(user, kind)
            .await
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<Credential> {
        self.of_user(credential.user_id)
            .await?
            .update_credential(credential)
            .await
    }

    async fn touch_credential(&self, id: CredentialId, at: OffsetDateTime) -> StoreResult<()> {
        self.of_credential(id).await?.touch_credential(id, at).await
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        self.of_credential(id).await?.delete_credential(id).await
    }
}

#[async_trait]
impl SessionStore for RegionalBackend {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.of_user(session.user_id)
            .await?
            .insert_session(session)
            .await
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        self.first(|b| b.session_by_token(hash, now)).await
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool> {
        for b in self.search()? {
            if b.touch_session(id, last_seen_at, idle_expires_at, device)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        self.of_user(user).await?.sessions_for_user(user, now).await
    }

    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool> {
        self.of_user(user).await?.delete_session(user, id).await
    }

    async fn delete_user_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> StoreResult<u64> {
        self.of_user(user)
            .await?
            .delete_user_sessions(user, keep)
            .await
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.home_backend()?.purge_expired_sessions(now).await
    }
}

#[async_trait]
impl ChallengeStore for RegionalBackend {
    async fn insert_challenge(&self, challenge: &Challenge) -> StoreResult<()> {
        match challenge.user_id {
            Some(user) => self.of_user(user).await?.insert_challenge(challenge).await,
            None => self.home_backend()?.insert_challenge(challenge).await,
        }
    }

    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        self.first(|b| b.challenge_by_hash(purpose, hash, now))
            .await
    }

    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        self.first(|b| b.consume_challenge(purpose, hash, now))
            .await
    }

    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.of_user(user)
            .await?
            .count_challenges(user, purpose, since, now)
            .await
    }

    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.home_backend()?.purge_expired_challenges(now).await
    }

    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64> {
        self.of_user(user)
            .await?
            .delete_challenges(user, purpose)
            .await
    }
}

#[async_trait]
impl AuditStore for RegionalBackend {
    async fn append_audit(&self, body: AuditRecordBody) -> StoreResult<AuditRecord> {
        match body.user_id {
            Some(user) => self.of_user(user).await?.append_audit(body).await,
            None => self.home_backend()?.append_audit(body).await,
        }
    }

    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.of_user(user).await?.audit_for_user(user, limit).await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.home_backend()?.recent_audit(limit).await
    }

    async fn audit_after(&self, after: u64, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.home_backend()?.audit_after(after, limit).await
    }

    async fn audit_key(&self, user: UserId) -> StoreResult<KeyState> {
        self.of_user(user).await?.audit_key(user).await
    }

    async fn insert_audit_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState> {
        self.of_user(user)
            .await?
            .insert_audit_key(user, wrapped, at)
            .await
    }

    async fn erase_audit_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
        self.of_user(user).await?.erase_audit_key(user, at).await
    }
}

#[async_trait]
impl CounterStore for RegionalBackend {
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        self.home_backend()?.hit(key, window, now).await
    }

    async fn count(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64> {
        self.home_backend()?.count(key, window, now).await
    }

    async fn counts(&self, reads: &[CounterRead<'_>]) -> StoreResult<Vec<u64>> {
        self.home_backend()?.counts(reads).await
    }

    async fn reset(&self, key: &str) -> StoreResult<()> {
        self.home_backend()?.reset(key).await
    }
}
