//! The Redis store: the conformance kit against memory (accounts, credentials, audit) composed
//! with Redis (sessions, challenges), plus Redis-specific behaviour.
//!
//! Needs a Redis server: `CIAM_TEST_REDIS_URL` (scripts/test.sh starts one and sets it). Each
//! store gets its own key prefix, so parallel test processes never see each other's keys, and
//! every prefix's keys are deleted when the test ends, passed or failed.
#![cfg(feature = "redis")]
// Test helpers outside `#[test]` functions stop the test on failure too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::id::{SessionId, UserId};
use ciam_core::rng::{SecureRandom, SystemRandom};
use ciam_core::secret::TokenHash;
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{ChallengeStore, SessionStore, StoreError};
use ciam_storage::compose::ComposedBackend;
use ciam_storage::conformance;
use ciam_storage::memory::MemoryBackend;
use ciam_storage::redis::{RedisOptions, RedisStore};
use time::OffsetDateTime;
use time::macros::datetime;

fn redis_url() -> String {
    match std::env::var("CIAM_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "CIAM_TEST_REDIS_URL is not set: run the suite with scripts/test.sh, which starts \
             Redis and sets it, or set it to a reachable redis:// URL"
        ),
    }
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex(hash: &TokenHash) -> String {
    hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Hands out stores with unique key prefixes and deletes their keys on drop.
struct Harness {
    url: String,
    next: AtomicUsize,
    prefixes: Mutex<Vec<String>>,
}

impl Harness {
    fn new() -> Self {
        Self {
            url: redis_url(),
            next: AtomicUsize::new(0),
            prefixes: Mutex::new(Vec::new()),
        }
    }

    fn options(&self) -> RedisOptions {
        let prefix = format!(
            "ciam-test:{}:{}:{}:",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed),
            random_hex(6)
        );
        self.prefixes.lock().unwrap().push(prefix.clone());
        let mut options = RedisOptions::new(self.url.clone());
        options.key_prefix = prefix;
        options
    }

    async fn store(&self) -> RedisStore {
        RedisStore::connect_with(self.options())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to CIAM_TEST_REDIS_URL: {e:?}"))
    }

    /// Memory for accounts, credentials and audit; Redis for sessions, challenges and
    /// rate-limit counters.
    async fn backend(&self) -> ComposedBackend {
        let redis = Arc::new(self.store().await);
        ComposedBackend::from_backend(Arc::new(MemoryBackend::new()))
            .with_sessions(redis.clone())
            .with_challenges(redis.clone())
            .with_counters(redis)
    }

    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let prefixes =
            std::mem::take(&mut *self.prefixes.lock().unwrap_or_else(|p| p.into_inner()));
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        for prefix in prefixes {
            let mut cursor: u64 = 0;
            loop {
                let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{prefix}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)
                else {
                    break;
                };
                if !keys.is_empty() {
                    let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_conform() {
    let h = Harness::new();
    conformance::run_sessions(|| h.backend()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_conform() {
    let h = Harness::new();
    conformance::run_challenges(|| h.backend()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_backend_conforms() {
    let h = Harness::new();
    conformance::run_all(|| h.backend()).await;
}

fn t0() -> OffsetDateTime {
    datetime!(2026-03-04 05:06:07.123_456_789 UTC)
}

fn session_at(user: UserId, created: OffsetDateTime, ends: OffsetDateTime) -> Session {
    let mut token = [0u8; 32];
    SystemRandom::new().fill(&mut token).unwrap();
    Session {
        id: SessionId::generate(&SystemRandom::new()).unwrap(),
        user_id: user,
        token_hash: TokenHash::from_bytes(token),
        created_at: created,
        last_seen_at: created,
        idle_expires_at: ends,
        absolute_expires_at: ends,
        auth_time: created,
        amr: vec![AuthMethod::Pwd],
        aal: Aal::Aal1,
        device: DeviceInfo {
            user_agent: None,
            ip: Some("192.0.2.1".parse().unwrap()),
        },
    }
}

fn user_id() -> UserId {
    UserId::generate(&SystemRandom::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_unavailable_quickly() {
    let mut options = RedisOptions::new("redis://127.0.0.1:1/");
    options.connect_timeout = Duration::from_millis(500);
    options.command_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let r = RedisStore::connect_with(options).await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "a refused connection gives Unavailable, got {r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "and within the timeout, took {:?}",
        started.elapsed()
    );

    // A server that accepts connections but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut options = RedisOptions::new(format!("redis://{addr}/"));
    options.connect_timeout = Duration::from_millis(500);
    options.command_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let r = RedisStore::connect_with(options).await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "a server that never answers gives Unavailable, got {r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "and within the timeout, took {:?}",
        started.elapsed()
    );
    silent.abort();

    let r = RedisStore::connect("not a url").await;
    assert!(r.is_err(), "a malformed URL is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_are_corrupt() {
    let h = Harness::new();
    let store = h.store().await;
    let p = store.key_prefix().to_owned();
    let mut raw = h.raw().await;
    let u = user_id();

    let s = session_at(u, t0(), t0() + Duration::from_secs(600));
    store.insert_session(&s).await.unwrap();
    let key = format!("{p}s:{}", hex(&s.token_hash));
    for (field, garbage) in [
        ("created", "yesterday"),
        ("amr", "pwd,telepathy"),
        ("aal", "9"),
        ("ip", "not-an-ip"),
        ("token", "zz"),
        ("user", "usr_nope"),
    ] {
        let original: String = redis::cmd("HGET")
            .arg(&key)
            .arg(field)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: i64 = redis::cmd("HSET")
            .arg(&key)
            .arg(field)
            .arg(garbage)
            .query_async(&mut raw)
            .await
            .unwrap();
        let r = store.session_by_token(&s.token_hash, t0()).await;
        assert!(
            matches!(r, Err(StoreError::Corrupt(_))),
            "a malformed `{field}` gives Corrupt, got {r:?}"
        );
        let r = store.sessions_for_user(u, t0()).await;
        assert!(
            matches!(r, Err(StoreError::Corrupt(_))),
            "listing with a malformed `{field}` gives Corrupt, got {r:?}"
        );
        let _: i64 = redis::cmd("HSET")
            .arg(&key)
            .arg(field)
            .arg(original)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    assert_eq!(
        store.session_by_token(&s.token_hash, t0()).await.unwrap(),
        Some(s.clone()),
        "restored"
    );

    // A key of the wrong Redis type.
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    let r = store.session_by_token(&s.token_hash, t0()).await;
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "a string where a hash belongs gives Corrupt, got {r:?}"
    );
    let r = store.sessions_for_user(u, t0()).await;
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "listing it gives Corrupt, got {r:?}"
    );

    // A challenge whose payload is not JSON, and one with an unknown user id.
    let mut secret = [0u8; 32];
    SystemRandom::new().fill(&mut secret).unwrap();
    let c = Challenge::new(
        TokenHash::from_bytes(secret),
        ChallengePurpose::VerifyEmail,
        Some(u),
        serde_json::json!({"a": 1}),
        t0(),
        t0() + Duration::from_secs(600),
    );
    store.insert_challenge(&c).await.unwrap();
    let ckey = format!("{p}c:{}", hex(&c.secret_hash));
    let _: i64 = redis::cmd("HSET")
        .arg(&ckey)
        .arg("payload")
        .arg("{not json")
        .query_async(&mut raw)
        .await
        .unwrap();
    let r = store
        .consume_challenge(ChallengePurpose::VerifyEmail, &c.secret_hash, t0())
        .await;
    assert!(
        matches!(r, Err(StoreError::Corrupt(_))),
        "a payload that is not JSON gives Corrupt, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_thousand_sessions_is_one_script() {
    let h = Harness::new();
    let store = h.store().await;
    let p = store.key_prefix().to_owned();
    let u = user_id();
    let other = user_id();
    let ends = t0() + Duration::from_secs(3600);
    let sessions: Vec<Session> = (0..1000)
        .map(|i| session_at(u, t0() + Duration::from_millis(i), ends))
        .collect();
    for s in &sessions {
        store.insert_session(s).await.unwrap();
    }
    let theirs = session_at(other, t0(), ends);
    store.insert_session(&theirs).await.unwrap();
    let keep = sessions[500].clone();

    // One EVALSHA: the script walks the user's set server-side (no SCAN, no per-session call).
    let n = store
        .delete_user_sessions(u, Some(keep.id))
        .await
        .expect("delete_user_sessions");
    assert_eq!(n, 999, "every session but `keep` is deleted and counted");
    assert_eq!(
        store.sessions_for_user(u, t0()).await.unwrap(),
        vec![keep.clone()],
        "only `keep` remains"
    );
    let mut raw = h.raw().await;
    let mut gone = 0;
    for s in sessions.iter().filter(|s| s.id != keep.id) {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("{p}s:{}", hex(&s.token_hash)))
            .arg(format!("{p}sid:{}", s.id))
            .query_async(&mut raw)
            .await
            .unwrap();
        if exists == 0 {
            gone += 1;
        }
    }
    assert_eq!(gone, 999, "their keys are all deleted");
    let indexed: i64 = redis::cmd("ZCARD")
        .arg(format!("{p}us:{u}"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(indexed, 1, "the user's set holds only `keep`");
    let by_expiry: i64 = redis::cmd("ZCARD")
        .arg(format!("{p}exp"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        by_expiry, 2,
        "the expiry index holds `keep` and the other user's"
    );
    assert_eq!(
        store.sessions_for_user(other, t0()).await.unwrap(),
        vec![theirs],
        "other users' sessions are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_only_as_a_backstop() {
    let h = Harness::new();
    let store = h.store().await;
    let p = store.key_prefix().to_owned();
    let mut raw = h.raw().await;
    let u = user_id();
    let now = OffsetDateTime::now_utc();

    // Live by the real clock: reclaimed an hour (the default grace) after it ends.
    let live = session_at(u, now, now + Duration::from_secs(600));
    store.insert_session(&live).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}s:{}", hex(&live.token_hash)))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        (3_900_000..=4_300_000).contains(&ttl),
        "a live session is kept until its end plus the grace, PTTL {ttl}"
    );

    // Long expired by the real clock (the kit's times): still kept for the grace, so callers
    // with their own idea of `now` see exact semantics.
    let old = session_at(u, t0(), t0() + Duration::from_secs(600));
    store.insert_session(&old).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}s:{}", hex(&old.token_hash)))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        (3_000_000..=3_700_000).contains(&ttl),
        "a session ended by the real clock is kept for the grace, PTTL {ttl}"
    );
    assert_eq!(
        store.session_by_token(&old.token_hash, t0()).await.unwrap(),
        Some(old.clone()),
        "and is live at a `now` before its end"
    );
    let text = format!("{store:?}");
    assert!(text.contains("RedisStore"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_hides_credentials() {
    let options = RedisOptions::new("redis://user:hunter2@db.example:6379/0?password=hunter2");
    let text = format!("{options:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("db.example:6379"), "{text}");
}
