//! A short-lived in-process copy of recently read users, for read-only display.
//!
//! `GET /me`-style endpoints read the signed-in user on every page load; with sessions already
//! validated from the session cache, that read is the whole cost of the request. The engine
//! wraps its identity store in [`CachingIdentities`]: every user read through it refreshes
//! the copy, every write through it replaces the copy, and [`Ciam::user_for_display`]
//! answers from a copy younger than the TTL (default 1 s, the same bound as the session
//! cache's). Flows that read a user in order to change it keep reading the store
//! ([`Ciam::user`]), so optimistic concurrency never sees a stale version.
//!
//! [`Ciam::user_for_display`]: super::Ciam::user_for_display
//! [`Ciam::user`]: super::Ciam::user

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::credential::Credential;
use crate::id::UserId;
use crate::identifier::{Email, Phone};
use crate::store::{IdentityStore, StoreResult};
use crate::user::User;

/// Copies of users, each with the instant it was read or written.
pub(crate) struct UserCache {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<UserId, (Arc<User>, Instant)>>,
}

impl UserCache {
    /// A cache keeping at most `capacity` users for `ttl` (a zero TTL disables it).
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The copy of `id` if it is younger than the TTL.
    pub(crate) fn get(&self, id: UserId) -> Option<Arc<User>> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().ok()?;
        let (user, at) = map.get(&id)?;
        (at.elapsed() < self.ttl).then(|| Arc::clone(user))
    }

    fn put(&self, user: &User) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= self.capacity && !map.contains_key(&user.id) {
            // Expired copies go first; if none has, the cache starts over (cheap, and only
            // under more distinct users per TTL than the capacity).
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(user.id, (Arc::new(user.clone()), Instant::now()));
    }

    fn evict(&self, id: UserId) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&id);
        }
    }
}

impl fmt::Debug for UserCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The engine's identity store: the application's, with every read and write keeping the
/// [`UserCache`] current.
#[derive(Debug)]
pub(crate) struct CachingIdentities {
    pub(crate) inner: Arc<dyn IdentityStore>,
    pub(crate) cache: Arc<UserCache>,
}

impl CachingIdentities {
    fn seen(&self, user: StoreResult<Option<User>>) -> StoreResult<Option<User>> {
        if let Ok(Some(u)) = &user {
            self.cache.put(u);
        }
        user
    }
}

#[async_trait]
impl IdentityStore for CachingIdentities {
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        self.inner.create_user(user, credentials).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let user = self.inner.user_by_id(id).await;
        if matches!(user, Ok(None)) {
            self.cache.evict(id);
        }
        self.seen(user)
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let user = self.inner.user_by_email(email).await;
        self.seen(user)
    }

    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>> {
        let user = self.inner.user_by_phone(phone).await;
        self.seen(user)
    }

    async fn update_user(&self, user: &User) -> StoreResult<User> {
        // Evicted first: if the write fails half-way (a timeout), no copy claims either state.
        self.cache.evict(user.id);
        let stored = self.inner.update_user(user).await?;
        self.cache.put(&stored);
        Ok(stored)
    }

    async fn touch_user_activity(&self, id: UserId, at: time::OffsetDateTime) -> StoreResult<bool> {
        self.cache.evict(id);
        self.inner.touch_user_activity(id, at).await
    }

    async fn dormant_users(
        &self,
        inactive_since: time::OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        self.inner.dormant_users(inactive_since, limit).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        self.cache.evict(id);
        let gone = self.inner.delete_user(id).await;
        self.cache.evict(id);
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        let rng = crate::rng::SystemRandom::new();
        User::new(
            UserId::generate(&rng).unwrap(),
            time::OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn copies_expire_after_the_ttl_and_a_zero_ttl_keeps_nothing() {
        let cache = UserCache::new(Duration::from_millis(50), 10);
        let u = user();
        cache.put(&u);
        assert_eq!(cache.get(u.id).unwrap().id, u.id);
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(u.id).is_none());

        let off = UserCache::new(Duration::ZERO, 10);
        off.put(&u);
        assert!(off.get(u.id).is_none());
    }

    #[test]
    fn the_capacity_is_a_bound() {
        let cache = UserCache::new(Duration::from_secs(60), 3);
        let users: Vec<User> = (0..10).map(|_| user()).collect();
        for u in &users {
            cache.put(u);
        }
        assert!(cache.map.lock().unwrap().len() <= 3);
        assert!(cache.get(users[9].id).is_some(), "the newest copy is kept");
    }
}
