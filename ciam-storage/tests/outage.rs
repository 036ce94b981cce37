//! Store outages: every test starts its own throwaway PostgreSQL or Redis server, stops it
//! mid-run and starts it again, and shows that
//!
//! - sessions already in the [`SessionCache`] keep validating within the grace period;
//! - everything else fails fast with the retryable [`StoreError::Unavailable`]: no hang, no
//!   panic (each call is bounded by [`FAIL_FAST`]);
//! - once the server is back, the same backend (not reconnected or rebuilt) works again
//!   within [`RECOVER_WITHIN`], with the data written before the outage (PostgreSQL) or
//!   with new data only (Redis runs without persistence here).
//!
//! Needs the PostgreSQL server binaries and `redis-server` installed (see `throwaway`); it
//! does not use `CIAM_TEST_POSTGRES_URL` or `CIAM_TEST_REDIS_URL`.
#![cfg(all(feature = "postgres", feature = "redis", feature = "memory"))]
// Test helpers outside `#[test]` functions stop the test on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod throwaway;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciam_core::id::{SessionId, UserId};
use ciam_core::identifier::Email;
use ciam_core::mail::{MailError, Mailer, OutgoingMail};
use ciam_core::password::{Argon2Params, PasswordConfig};
use ciam_core::rng::SystemRandom;
use ciam_core::secret::{OpaqueToken, TokenHash};
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{IdentityStore, SessionStore, StoreError, StoreResult};
use ciam_core::user::User;
use ciam_core::{
    Ciam, ErrorKind, Policy, Registration, RequestContext, SecretString, SignInOutcome,
};
use ciam_storage::cache::{CacheOptions, SessionCache};
use ciam_storage::compose::ComposedBackend;
use ciam_storage::postgres::{PostgresBackend, PostgresOptions};
use ciam_storage::redis::{RedisOptions, RedisStore};
use throwaway::{ThrowawayPostgres, ThrowawayRedis};
use time::OffsetDateTime;

/// The most a call may take while the store is down (the timeouts configured below are 0.5 to
/// 2 s; this is a functional bound, not a benchmark).
const FAIL_FAST: Duration = Duration::from_secs(5);
/// The most the library may take to work again once the server is back.
const RECOVER_WITHIN: Duration = Duration::from_secs(15);
/// Grace period of the caches under test: far longer than any test.
const GRACE: Duration = Duration::from_secs(60);

/// Drops mail (the default console mailer would print verification links).
#[derive(Debug)]
struct NoMail;

#[async_trait::async_trait]
impl Mailer for NoMail {
    async fn send(&self, _mail: &OutgoingMail) -> Result<(), MailError> {
        Ok(())
    }
}

/// A cache that asks the store on every read (TTL zero), so that reads during the outage
/// reach the store and are answered from the grace period.
fn cache(inner: Arc<dyn SessionStore>) -> Arc<SessionCache> {
    Arc::new(SessionCache::new(
        inner,
        CacheOptions::new(1000, Duration::ZERO, GRACE),
    ))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn new_user(email: &str) -> User {
    let mut u = User::new(UserId::generate(&SystemRandom::new()).unwrap(), now());
    u.email = Some(Email::parse(email).unwrap());
    u
}

fn new_session(user: UserId) -> Session {
    let rng = SystemRandom::new();
    let t = now();
    Session {
        id: SessionId::generate(&rng).unwrap(),
        user_id: user,
        token_hash: OpaqueToken::generate(&rng).unwrap().hash(),
        created_at: t,
        last_seen_at: t,
        idle_expires_at: t + time::Duration::hours(1),
        absolute_expires_at: t + time::Duration::hours(8),
        auth_time: t,
        amr: vec![AuthMethod::Pwd],
        aal: Aal::Aal1,
        device: DeviceInfo::default(),
    }
}

/// Awaits `fut`, failing the test if it takes longer than [`FAIL_FAST`] (the wait itself is
/// cut off at twice that, so a hang cannot stall the suite). Returns the result and the time
/// it took.
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(FAIL_FAST * 2, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {:?}", FAIL_FAST * 2));
    let took = started.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(
        took < FAIL_FAST,
        "{what} took {took:?} (limit {FAIL_FAST:?})"
    );
    out
}

/// Asserts that `fut` fails fast with [`StoreError::Unavailable`].
async fn unavailable<T: Debug>(what: &str, fut: impl Future<Output = StoreResult<T>>) {
    match bounded(what, fut).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

/// Retries `attempt` until it succeeds, for at most [`RECOVER_WITHIN`]; every attempt is
/// bounded too. Returns the value and how long recovery took.
async fn recovers<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let last = match tokio::time::timeout(FAIL_FAST, attempt()).await {
            Ok(Ok(value)) => {
                eprintln!(
                    "{what}: recovered after {:?} ({tries} attempts)",
                    started.elapsed()
                );
                return value;
            }
            Ok(Err(e)) => format!("{e:?}"),
            Err(_) => format!("attempt hung for {FAIL_FAST:?}"),
        };
        assert!(
            started.elapsed() < RECOVER_WITHIN,
            "{what} did not recover within {RECOVER_WITHIN:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn read(store: &SessionCache, hash: &TokenHash) -> StoreResult<Option<Session>> {
    store.session_by_token(hash, now()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_bridged_and_recovered_without_reconnecting() {
    let mut server = ThrowawayPostgres::start();
    let backend = Arc::new(
        PostgresBackend::connect_with(
            PostgresOptions::new(server.url())
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(1))
                .statement_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap(),
    );
    let sessions = cache(backend.clone());

    let alice = new_user("alice@example.com");
    backend.create_user(&alice, &[]).await.unwrap();
    let cached = new_session(alice.id);
    sessions.insert_session(&cached).await.unwrap();
    // Written before the outage but never read through this cache.
    let uncached = new_session(alice.id);
    backend.insert_session(&uncached).await.unwrap();
    assert_eq!(
        read(&sessions, &cached.token_hash).await.unwrap(),
        Some(cached.clone())
    );

    server.stop();

    // The cached session keeps validating, and keeps doing so.
    for i in 0..3 {
        let got = bounded(&format!("pg down: cached session #{i}"), async {
            read(&sessions, &cached.token_hash).await
        })
        .await;
        assert_eq!(got.unwrap(), Some(cached.clone()));
    }
    // Everything else fails fast and retryably.
    unavailable(
        "pg down: uncached session",
        read(&sessions, &uncached.token_hash),
    )
    .await;
    let email = Email::parse("alice@example.com").unwrap();
    unavailable("pg down: user_by_email", backend.user_by_email(&email)).await;
    let bob = new_user("bob@example.com");
    unavailable("pg down: create_user", backend.create_user(&bob, &[])).await;
    let during = new_session(alice.id);
    unavailable("pg down: insert_session", sessions.insert_session(&during)).await;
    unavailable(
        "pg down: sessions_for_user",
        sessions.sessions_for_user(alice.id, now()),
    )
    .await;
    // The failed write did not reach the cache.
    assert_eq!(sessions.len(), 1, "only the cached session is held");

    server.start_again();

    // Same backend, same pool: it reconnects by itself.
    let found = recovers("pg up: user_by_email", || backend.user_by_email(&email)).await;
    assert_eq!(found.map(|u| u.id), Some(alice.id));
    // The data written before the outage is still there.
    assert_eq!(
        read(&sessions, &uncached.token_hash).await.unwrap(),
        Some(uncached.clone())
    );
    assert_eq!(
        read(&sessions, &cached.token_hash).await.unwrap(),
        Some(cached.clone())
    );
    // The write refused during the outage did not half-happen.
    assert_eq!(read(&sessions, &during.token_hash).await.unwrap(), None);
    // New writes work.
    backend.create_user(&bob, &[]).await.unwrap();
    let bobs = new_session(bob.id);
    sessions.insert_session(&bobs).await.unwrap();
    assert_eq!(
        read(&sessions, &bobs.token_hash).await.unwrap(),
        Some(bobs.clone())
    );
    assert_eq!(
        backend
            .user_by_email(&Email::parse("bob@example.com").unwrap())
            .await
            .unwrap()
            .map(|u| u.id),
        Some(bob.id)
    );

    backend.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_bridged_and_recovered_without_reconnecting() {
    let mut server = ThrowawayRedis::start();
    let mut options = RedisOptions::new(server.url());
    options.command_timeout = Duration::from_millis(500);
    options.connect_timeout = Duration::from_secs(1);
    let store = Arc::new(RedisStore::connect_with(options).await.unwrap());
    let sessions = cache(store.clone());

    let user = UserId::generate(&SystemRandom::new()).unwrap();
    let cached = new_session(user);
    sessions.insert_session(&cached).await.unwrap();
    let uncached = new_session(user);
    store.insert_session(&uncached).await.unwrap();
    assert_eq!(
        read(&sessions, &cached.token_hash).await.unwrap(),
        Some(cached.clone())
    );

    server.stop();

    for i in 0..3 {
        let got = bounded(&format!("redis down: cached session #{i}"), async {
            read(&sessions, &cached.token_hash).await
        })
        .await;
        assert_eq!(got.unwrap(), Some(cached.clone()));
    }
    unavailable(
        "redis down: uncached session",
        read(&sessions, &uncached.token_hash),
    )
    .await;
    let during = new_session(user);
    unavailable(
        "redis down: insert_session",
        sessions.insert_session(&during),
    )
    .await;
    unavailable(
        "redis down: sessions_for_user",
        sessions.sessions_for_user(user, now()),
    )
    .await;
    unavailable(
        "redis down: touch_session",
        sessions.touch_session(
            cached.id,
            now(),
            now() + time::Duration::hours(1),
            &DeviceInfo::default(),
        ),
    )
    .await;

    server.start_again();

    // Same store, same connection manager: it reconnects by itself (and reloads its scripts).
    let fresh = new_session(user);
    recovers("redis up: insert_session", || {
        sessions.insert_session(&fresh)
    })
    .await;
    assert_eq!(
        read(&sessions, &fresh.token_hash).await.unwrap(),
        Some(fresh.clone())
    );
    assert_eq!(
        store
            .session_by_token(&fresh.token_hash, now())
            .await
            .unwrap(),
        Some(fresh.clone())
    );
    // Nothing was persisted: an old session not in the cache is simply unknown now.
    assert_eq!(read(&sessions, &uncached.token_hash).await.unwrap(), None);
    // And the store's answer wins over the cache once the store is back.
    assert_eq!(read(&sessions, &cached.token_hash).await.unwrap(), None);
    assert_eq!(
        sessions.sessions_for_user(user, now()).await.unwrap(),
        vec![fresh.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_rides_out_a_postgres_outage() {
    let mut server = ThrowawayPostgres::start();
    let pg = Arc::new(
        PostgresBackend::connect_with(
            PostgresOptions::new(server.url())
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(1))
                .statement_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap(),
    );
    let backend =
        Arc::new(ComposedBackend::from_backend(pg.clone()).with_sessions(cache(pg.clone())));
    let mut policy = Policy::default();
    policy.allow_unverified_sign_in = true;
    let ciam = Ciam::builder()
        .backend(backend)
        .password_config(PasswordConfig::default().argon2(Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }))
        .policy(policy)
        .mailer(Arc::new(NoMail))
        .build()
        .unwrap();
    let ctx = RequestContext::new(Some("203.0.113.7".parse().unwrap()), Some("outage-test"));
    const EMAIL: &str = "carol@example.com";
    let password = || SecretString::new("correct horse battery staple");

    ciam.register(Registration::new(EMAIL, Some(password())), &ctx)
        .await
        .unwrap();
    let signed_in = match ciam
        .sign_in_password(EMAIL, &password(), &ctx)
        .await
        .unwrap()
    {
        SignInOutcome::SignedIn(s) => s,
        other => panic!("expected signed in, got {other:?}"),
    };
    let user = ciam.authenticate(&signed_in.token, &ctx).await.unwrap();

    server.stop();

    let during = bounded("engine, pg down: authenticate", async {
        ciam.authenticate(&signed_in.token, &ctx).await
    })
    .await
    .expect("a cached session validates within the grace period");
    assert_eq!(during.user_id, user.user_id);
    let err = bounded("engine, pg down: sign_in_password", async {
        ciam.sign_in_password(EMAIL, &password(), &ctx).await
    })
    .await
    .expect_err("signing in needs the store");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let err = bounded("engine, pg down: register", async {
        ciam.register(
            Registration::new("dave@example.com", Some(password())),
            &ctx,
        )
        .await
    })
    .await
    .expect_err("registering needs the store");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");

    server.start_again();

    let started = Instant::now();
    let again = loop {
        match ciam.sign_in_password(EMAIL, &password(), &ctx).await {
            Ok(SignInOutcome::SignedIn(s)) => break s,
            Ok(other) => panic!("expected signed in, got {other:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
                assert!(
                    started.elapsed() < RECOVER_WITHIN,
                    "sign-in did not recover within {RECOVER_WITHIN:?}: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    eprintln!(
        "engine, pg up: sign_in_password recovered after {:?}",
        started.elapsed()
    );
    assert_eq!(
        ciam.authenticate(&again.token, &ctx).await.unwrap().user_id,
        user.user_id
    );
    // The session from before the outage is still valid, now confirmed by the store.
    assert_eq!(
        ciam.authenticate(&signed_in.token, &ctx)
            .await
            .unwrap()
            .user_id,
        user.user_id
    );
    pg.close().await;
}
