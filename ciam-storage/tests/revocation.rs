//! Revocations reach another process's session cache at once (well within 1 s) over Redis
//! pub/sub and PostgreSQL LISTEN/NOTIFY, against the real servers. Each side has its own
//! cache with a 60 s TTL, so only the channel can make the other side forget a session.
#![cfg(all(feature = "memory", any(feature = "redis", feature = "postgres")))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ciam_core::id::{SessionId, UserId};
use ciam_core::rng::{SecureRandom, SystemRandom};
use ciam_core::secret::OpaqueToken;
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{IdentityStore, SessionStore};
use ciam_core::user::User;
use ciam_storage::cache::{CacheOptions, SessionCache};
use ciam_storage::memory::MemoryBackend;
use ciam_storage::revocation::RevocationChannel;
use time::OffsetDateTime;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test.sh"))
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    SystemRandom::new().fill(&mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}_{}_{hex}", std::process::id())
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

/// Two "processes" over one shared store: A announces on `publish`, B's cache listens.
async fn scenario(
    publish: Arc<dyn RevocationChannel>,
    b: SessionCache,
    a: SessionCache,
    store: &MemoryBackend,
) {
    let user = User::new(UserId::generate(&SystemRandom::new()).unwrap(), T0);
    store.create_user(&user, &[]).await.unwrap();
    let a = a.with_channel(publish);
    let (one, two, keep) = (session(user.id), session(user.id), session(user.id));
    for s in [&one, &two, &keep] {
        a.insert_session(s).await.unwrap();
        assert!(
            b.session_by_token(&s.token_hash, T0)
                .await
                .unwrap()
                .is_some()
        );
    }
    a.delete_session(user.id, one.id).await.unwrap();
    wait_gone(&b, &one).await;
    assert!(
        b.session_by_token(&two.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
    a.delete_user_sessions(user.id, Some(keep.id))
        .await
        .unwrap();
    wait_gone(&b, &two).await;
    assert!(
        b.session_by_token(&keep.token_hash, T0)
            .await
            .unwrap()
            .is_some()
    );
}

async fn wait_gone(cache: &SessionCache, s: &Session) {
    let start = Instant::now();
    while cache
        .session_by_token(&s.token_hash, T0)
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "revocation did not arrive within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn caches(store: &Arc<MemoryBackend>) -> (SessionCache, SessionCache) {
    let long = CacheOptions::new(1000, Duration::from_secs(60), Duration::ZERO);
    (
        SessionCache::new(store.clone(), long),
        SessionCache::new(store.clone(), long),
    )
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pubsub_carries_revocations() {
    use ciam_storage::revocation::redis::RedisRevocations;
    let url = env("CIAM_TEST_REDIS_URL");
    let channel = unique("ciam-test-revocations");
    let store = Arc::new(MemoryBackend::new());
    let (a, b) = caches(&store);
    let listener = RedisRevocations::connect(&url, &channel).await.unwrap();
    let task = listener.listen(b.clone()).await.unwrap();
    let publisher = RedisRevocations::connect(&url, &channel).await.unwrap();
    scenario(Arc::new(publisher), b, a, &store).await;
    task.abort();
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn an_unreachable_redis_is_a_typed_error_quickly() {
    use ciam_storage::revocation::redis::RedisRevocations;
    let start = Instant::now();
    let r = RedisRevocations::connect("redis://127.0.0.1:1/", "x").await;
    assert!(
        matches!(r, Err(ciam_core::store::StoreError::Unavailable(_))),
        "{r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_carries_revocations() {
    use ciam_storage::revocation::postgres::PostgresRevocations;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&env("CIAM_TEST_POSTGRES_URL"))
        .await
        .unwrap();
    let channel = unique("ciam_test_revocations");
    let store = Arc::new(MemoryBackend::new());
    let (a, b) = caches(&store);
    let listener = PostgresRevocations::new(pool.clone(), &channel).unwrap();
    let task = listener.listen(b.clone()).await.unwrap();
    let publisher = PostgresRevocations::new(pool, &channel).unwrap();
    scenario(Arc::new(publisher), b, a, &store).await;
    task.abort();
    assert!(
        PostgresRevocations::new(
            sqlx::PgPool::connect_lazy("postgres://x@127.0.0.1:1/x").unwrap(),
            "bad; name"
        )
        .is_err()
    );
}
