//! The read-through session cache: hits avoid the store, revocations through the cache are
//! immediate, revocations elsewhere arrive within the TTL (or at once through `evict`), expiry
//! is checked on every hit, a store outage is bridged for cached sessions within the grace
//! period only, and the size is bounded.
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ciam_core::id::{SessionId, UserId};
use ciam_core::rng::SystemRandom;
use ciam_core::secret::{OpaqueToken, TokenHash};
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{IdentityStore, SessionStore, StoreError, StoreResult};
use ciam_core::user::User;
use ciam_storage::cache::{CacheOptions, Revocation, SessionCache};
use ciam_storage::memory::MemoryBackend;
use time::OffsetDateTime;
use time::macros::datetime;

/// A session store that counts reads and can be switched off (answering `Unavailable`).
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryBackend,
    down: AtomicBool,
    reads: AtomicUsize,
}

impl Flaky {
    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        self.check()?;
        self.inner.insert_session(s).await
    }
    async fn session_by_token(
        &self,
        h: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.session_by_token(h, now).await
    }
    async fn touch_session(
        &self,
        id: SessionId,
        seen: OffsetDateTime,
        idle: OffsetDateTime,
        d: &DeviceInfo,
    ) -> StoreResult<bool> {
        self.check()?;
        self.inner.touch_session(id, seen, idle, d).await
    }
    async fn sessions_for_user(&self, u: UserId, now: OffsetDateTime) -> StoreResult<Vec<Session>> {
        self.check()?;
        self.inner.sessions_for_user(u, now).await
    }
    async fn delete_session(&self, u: UserId, id: SessionId) -> StoreResult<bool> {
        self.check()?;
        self.inner.delete_session(u, id).await
    }
    async fn delete_user_sessions(&self, u: UserId, keep: Option<SessionId>) -> StoreResult<u64> {
        self.check()?;
        self.inner.delete_user_sessions(u, keep).await
    }
    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.check()?;
        self.inner.purge_expired_sessions(now).await
    }
}

const T0: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

async fn user(store: &Flaky) -> UserId {
    let u = User::new(UserId::generate(&SystemRandom::new()).unwrap(), T0);
    store.inner.create_user(&u, &[]).await.unwrap();
    u.id
}

fn session(user: UserId) -> Session {
    let rng = SystemRandom::new();
    Session {
        id: SessionId::generate(&rng).unwrap(),
        user_id: user,
        token_hash: OpaqueToken::generate(&rng).unwrap().hash(),
        created_at: T0,
        last_seen_at: T0,
        idle_expires_at: T0 + time::Duration::hours(1),
        absolute_expires_at: T0 + time::Duration::hours(8),
        auth_time: T0,
        amr: vec![AuthMethod::Pwd],
        aal: Aal::Aal1,
        device: DeviceInfo::default(),
    }
}

fn cache(store: &Arc<Flaky>, ttl_ms: u64, grace_ms: u64) -> SessionCache {
    SessionCache::new(
        store.clone(),
        CacheOptions::new(
            1000,
            Duration::from_millis(ttl_ms),
            Duration::from_millis(grace_ms),
        ),
    )
}

#[tokio::test]
async fn hits_are_served_from_memory_until_the_ttl() {
    let store = Arc::new(Flaky::default());
    let c = cache(&store, 300, 0);
    let s = session(user(&store).await);
    c.insert_session(&s).await.unwrap();
    for _ in 0..10 {
        assert_eq!(
            c.session_by_token(&s.token_hash, T0).await.unwrap(),
            Some(s.clone())
        );
    }
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        0,
        "fresh entries never reach the store"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    c.session_by_token(&s.token_hash, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        1,
        "a stale entry is confirmed with the store"
    );
    // A miss goes to the store and caches the answer.
    let other = Arc::new(Flaky::default());
    other
        .inner
        .create_user(&User::new(s.user_id, T0), &[])
        .await
        .unwrap();
    other.inner.insert_session(&s).await.unwrap();
    let c2 = cache(&other, 10_000, 0);
    c2.session_by_token(&s.token_hash, T0)
        .await
        .unwrap()
        .unwrap();
    c2.session_by_token(&s.token_hash, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn expiry_is_checked_on_every_hit() {
    let store = Arc::new(Flaky::default());
    let c = cache(&store, 60_000, 0);
    let s = session(user(&store).await);
    c.insert_session(&s).await.unwrap();
    assert!(
        c.session_by_token(
            &s.token_hash,
            s.idle_expires_at - time::Duration::nanoseconds(1)
        )
        .await
        .unwrap()
        .is_some()
    );
    assert!(
        c.session_by_token(&s.token_hash, s.idle_expires_at)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn revocations_through_the_cache_are_immediate() {
    let store = Arc::new(Flaky::default());
    let c = cache(&store, 60_000, 0);
    let u = user(&store).await;
    let (a, b, keep) = (session(u), session(u), session(u));
    for s in [&a, &b, &keep] {
        c.insert_session(s).await.unwrap();
    }
    // Another user's session id is not revoked by this user.
    let stranger = user(&store).await;
    assert!(!c.delete_session(stranger, a.id).await.unwrap());
    assert!(
        c.session_by_token(&a.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
    assert!(c.delete_session(u, a.id).await.unwrap());
    assert!(
        c.session_by_token(&a.token_hash, T0)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(c.delete_user_sessions(u, Some(keep.id)).await.unwrap(), 1);
    assert!(
        c.session_by_token(&b.token_hash, T0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        c.session_by_token(&keep.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn revocations_elsewhere_arrive_within_the_ttl_or_at_once_by_evict() {
    let store = Arc::new(Flaky::default());
    let (here, there) = (cache(&store, 200, 0), cache(&store, 200, 0));
    let u = user(&store).await;
    let (a, b) = (session(u), session(u));
    here.insert_session(&a).await.unwrap();
    here.insert_session(&b).await.unwrap();
    there
        .session_by_token(&a.token_hash, T0)
        .await
        .unwrap()
        .unwrap();
    there
        .session_by_token(&b.token_hash, T0)
        .await
        .unwrap()
        .unwrap();

    here.delete_session(u, a.id).await.unwrap();
    // Forwarded over a revocation channel: gone at once.
    there.evict(Revocation::Session(a.id));
    assert!(
        there
            .session_by_token(&a.token_hash, T0)
            .await
            .unwrap()
            .is_none()
    );

    here.delete_user_sessions(u, None).await.unwrap();
    // Not forwarded: still served until the TTL passes, never after.
    assert!(
        there
            .session_by_token(&b.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        there
            .session_by_token(&b.token_hash, T0)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_outage_is_bridged_for_cached_sessions_within_the_grace_period() {
    let store = Arc::new(Flaky::default());
    let options = CacheOptions::new(1000, Duration::ZERO, Duration::from_millis(400))
        .with_outage_backoff(Duration::ZERO);
    let c = SessionCache::new(store.clone(), options);
    let u = user(&store).await;
    let (cached, uncached) = (session(u), session(u));
    c.insert_session(&cached).await.unwrap();
    store.inner.insert_session(&uncached).await.unwrap();
    store.down.store(true, Ordering::SeqCst);
    assert_eq!(
        c.session_by_token(&cached.token_hash, T0).await.unwrap(),
        Some(cached.clone())
    );
    assert!(matches!(
        c.session_by_token(&uncached.token_hash, T0).await,
        Err(StoreError::Unavailable(_))
    ));
    // Writes fail fast with a typed, retryable error.
    assert!(matches!(
        c.insert_session(&session(u)).await,
        Err(StoreError::Unavailable(_))
    ));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(matches!(
        c.session_by_token(&cached.token_hash, T0).await,
        Err(StoreError::Unavailable(_))
    ));
    // Back up: served again, confirmed by the store.
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        c.session_by_token(&cached.token_hash, T0).await.unwrap(),
        Some(cached)
    );
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let store = Arc::new(Flaky::default());
    let c = SessionCache::new(
        store.clone(),
        CacheOptions::new(3, Duration::from_secs(60), Duration::ZERO),
    );
    let u = user(&store).await;
    let sessions: Vec<_> = (0..5).map(|_| session(u)).collect();
    for s in &sessions {
        c.insert_session(s).await.unwrap();
    }
    assert_eq!(c.len(), 3);
    // The oldest were evicted from memory but are still valid in the store.
    assert!(
        c.session_by_token(&sessions[0].token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(c.len(), 3);
}

#[tokio::test]
async fn touch_updates_the_cached_copy_and_a_vanished_session_is_dropped() {
    let store = Arc::new(Flaky::default());
    let c = cache(&store, 60_000, 0);
    let s = session(user(&store).await);
    c.insert_session(&s).await.unwrap();
    let later = T0 + time::Duration::minutes(30);
    let device = DeviceInfo {
        user_agent: None,
        ip: Some("198.51.100.4".parse().unwrap()),
    };
    assert!(
        c.touch_session(s.id, later, later + time::Duration::hours(1), &device)
            .await
            .unwrap()
    );
    let hit = c
        .session_by_token(&s.token_hash, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hit.last_seen_at, later);
    assert_eq!(hit.device.ip, device.ip);
    assert_eq!(store.reads.load(Ordering::SeqCst), 0);
    // Deleted behind the cache's back: the touch reports it and the entry goes.
    store.inner.delete_session(s.user_id, s.id).await.unwrap();
    assert!(!c.touch_session(s.id, later, later, &device).await.unwrap());
    assert!(c.is_empty());
}

#[tokio::test]
async fn during_an_outage_validations_back_off_instead_of_waiting_on_the_store() {
    let store = Arc::new(Flaky::default());
    let options = CacheOptions::new(1000, Duration::ZERO, Duration::from_secs(60))
        .with_outage_backoff(Duration::from_millis(300));
    let c = SessionCache::new(store.clone(), options);
    let u = user(&store).await;
    let (cached, uncached) = (session(u), session(u));
    c.insert_session(&cached).await.unwrap();
    store.inner.insert_session(&uncached).await.unwrap();
    store.down.store(true, Ordering::SeqCst);
    // The first failure is seen by asking the store...
    assert!(
        c.session_by_token(&cached.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
    let asked = store.reads.load(Ordering::SeqCst);
    // ...then, within the back-off, the store is not asked at all.
    for _ in 0..5 {
        assert!(
            c.session_by_token(&cached.token_hash, T0)
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            c.session_by_token(&uncached.token_hash, T0).await,
            Err(StoreError::Unavailable(_))
        ));
    }
    assert_eq!(store.reads.load(Ordering::SeqCst), asked);
    // After it, the store is asked again and, being back, answers.
    store.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        c.session_by_token(&uncached.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), asked + 1);
}
