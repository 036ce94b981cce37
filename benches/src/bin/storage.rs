//! Storage load harness: per-backend operation costs, and lookup latency at 1M users.
//!
//! ```text
//! cargo run --release -p ciam-benches --bin storage -- ops [--iterations N]
//! cargo run --release -p ciam-benches --bin storage -- scale [--users 1000000] [--samples 5000]
//! ```
//!
//! `ops` measures, one client at a time, on memory, SQLite (file, WAL), PostgreSQL and Redis:
//! session validation uncached and through the `SessionCache`, session create and revoke, and
//! user lookup by e-mail; it prints ops/s and p50/p99 for each.
//!
//! `scale` loads users (with a password credential and a session each) into a fresh
//! PostgreSQL schema in set-based batches (`INSERT … SELECT … FROM generate_series`), printing
//! progress, and measures the sign-in lookup (user by e-mail, then their password credential)
//! and session validation p50/p99 at 10 000 users and again at the full count.
//!
//! PostgreSQL and Redis are taken from `CIAM_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `CIAM_BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`). Every run uses its own schema and key prefix and removes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ciam_core::credential::CredentialKind;
use ciam_core::id::{SessionId, UserId};
use ciam_core::identifier::Email;
use ciam_core::rng::{SecureRandom, SystemRandom};
use ciam_core::secret::{OpaqueToken, TokenHash};
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{Backend, IdentityStore, SessionStore};
use ciam_core::user::User;
use ciam_storage::cache::{CacheOptions, SessionCache};
use ciam_storage::compose::ComposedBackend;
use ciam_storage::memory::MemoryBackend;
use ciam_storage::postgres::{PostgresBackend, PostgresOptions};
use ciam_storage::redis::{RedisOptions, RedisStore};
use ciam_storage::sqlite::SqliteBackend;
use time::OffsetDateTime;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn arg(args: &[String], flag: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn suffix() -> String {
    let mut b = [0u8; 4];
    SystemRandom::new().fill(&mut b).unwrap();
    format!(
        "{}_{:02x}{:02x}{:02x}{:02x}",
        std::process::id(),
        b[0],
        b[1],
        b[2],
        b[3]
    )
}

/// Latency summary of one measured operation.
struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut v = self.samples.clone();
        v.sort();
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    }

    fn print(&self) {
        let total: Duration = self.samples.iter().sum();
        let ops = self.samples.len() as f64 / total.as_secs_f64();
        println!(
            "{:<44} {:>12.0} {:>12.2?} {:>12.2?}",
            self.name,
            ops,
            self.pct(0.5),
            self.pct(0.99)
        );
    }
}

async fn time_each<F, Fut>(name: String, n: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        samples.push(t.elapsed());
    }
    Stats { name, samples }
}

fn new_session(user: UserId, now: OffsetDateTime) -> (OpaqueToken, Session) {
    let rng = SystemRandom::new();
    let token = OpaqueToken::generate(&rng).unwrap();
    let session = Session {
        id: SessionId::generate(&rng).unwrap(),
        user_id: user,
        token_hash: token.hash(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now + time::Duration::days(7),
        absolute_expires_at: now + time::Duration::days(30),
        auth_time: now,
        amr: vec![AuthMethod::Pwd],
        aal: Aal::Aal1,
        device: DeviceInfo {
            user_agent: Some("bench".into()),
            ip: None,
        },
    };
    (token, session)
}

/// Measures one backend's operations.
async fn ops_for<B: Backend>(label: &str, backend: Arc<B>, n: usize) {
    let now = OffsetDateTime::now_utc();
    let rng = SystemRandom::new();
    let mut users = Vec::new();
    for i in 0..100 {
        let mut u = User::new(UserId::generate(&rng).unwrap(), now);
        let slug: String = label.chars().filter(char::is_ascii_alphanumeric).collect();
        u.email = Some(Email::parse(&format!("ops{i}.{slug}@bench.example")).unwrap());
        backend.create_user(&u, &[]).await.unwrap();
        users.push(u);
    }
    let cache = SessionCache::new(
        backend.clone(),
        CacheOptions::new(100_000, Duration::from_secs(60), Duration::ZERO),
    );
    let mut sessions = Vec::new();
    let create = time_each(format!("{label}: session create"), n, |i| {
        let (_, s) = new_session(users[i % users.len()].id, now);
        sessions.push(s.clone());
        let b = backend.clone();
        async move { b.insert_session(&s).await.unwrap() }
    })
    .await;
    let uncached = time_each(format!("{label}: session validate, uncached"), n, |i| {
        let (b, h) = (backend.clone(), sessions[i].token_hash);
        async move { assert!(b.session_by_token(&h, now).await.unwrap().is_some()) }
    })
    .await;
    for s in &sessions {
        cache.session_by_token(&s.token_hash, now).await.unwrap();
    }
    let cached = time_each(format!("{label}: session validate, cached"), n, |i| {
        let (c, h) = (cache.clone(), sessions[i].token_hash);
        async move { assert!(c.session_by_token(&h, now).await.unwrap().is_some()) }
    })
    .await;
    let lookup = time_each(format!("{label}: user by e-mail"), n, |i| {
        let (b, e) = (
            backend.clone(),
            users[i % users.len()].email.clone().unwrap(),
        );
        async move { assert!(b.user_by_email(&e).await.unwrap().is_some()) }
    })
    .await;
    let revoke = time_each(format!("{label}: session revoke"), n, |i| {
        let (b, s) = (backend.clone(), sessions[i].clone());
        async move { assert!(b.delete_session(s.user_id, s.id).await.unwrap()) }
    })
    .await;
    for s in [create, uncached, cached, lookup, revoke] {
        s.print();
    }
}

async fn ops(args: &[String]) {
    let n = arg(args, "--iterations", 2000);
    let pg_url = env_or(
        "CIAM_BENCH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let redis_url = env_or("CIAM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/");
    println!("{n} sequential operations each, one client; ops/s = n / total time");
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "operation", "ops/s", "p50", "p99"
    );
    ops_for("memory", Arc::new(MemoryBackend::new()), n).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteBackend::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ops.db").display()
    ))
    .await
    .unwrap();
    ops_for("sqlite", Arc::new(sqlite.clone()), n).await;
    sqlite.close().await;
    let schema = format!("ciam_bench_{}", suffix());
    let pg = PostgresBackend::connect_with(PostgresOptions::new(&pg_url).schema(&schema))
        .await
        .unwrap();
    ops_for("postgres", Arc::new(pg.clone()), n).await;
    let mut redis_options = RedisOptions::new(&redis_url);
    redis_options.key_prefix = format!("ciam-bench:{}:", suffix());
    let redis = RedisStore::connect_with(redis_options).await.unwrap();
    let composed =
        ComposedBackend::from_backend(Arc::new(pg.clone())).with_sessions(Arc::new(redis.clone()));
    ops_for("postgres + redis sessions", Arc::new(composed), n).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(pg.pool())
        .await
        .unwrap();
    pg.close().await;
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", redis.key_prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

/// Loads users `from..to` (1-based) with a password credential and a session each; all
/// values are made by the server from the row number, in the backend's own encodings.
async fn load(pg: &PostgresBackend, from: u64, to: u64, now_ns: i64) {
    let s = pg.schema().replace('"', "\"\"");
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$8bQVmbQ0pEmZuwq9FoMgtHAFTR0WypGjEDMXE5XbkZs";
    let statements = [
        format!(
            "INSERT INTO \"{s}\".users (id, status, email, email_canonical, email_verified_at, profile, created_at, updated_at, version)
             SELECT decode(md5('u' || g), 'hex'), 'active', 'user' || g || '@load.example', 'user' || g || '@load.example',
                    $3, '{{}}', $3, $3, 1 FROM generate_series($1::bigint, $2::bigint) g"
        ),
        format!(
            "INSERT INTO \"{s}\".credentials (id, user_id, kind, secret, created_at, updated_at, version)
             SELECT decode(md5('c' || g), 'hex'), decode(md5('u' || g), 'hex'), 'password', '{phc}', $3, $3, 1
             FROM generate_series($1::bigint, $2::bigint) g"
        ),
        format!(
            "INSERT INTO \"{s}\".sessions (id, user_id, token_hash, created_at, last_seen_at, idle_expires_at,
                                            absolute_expires_at, auth_time, amr, aal)
             SELECT decode(md5('s' || g), 'hex'), decode(md5('u' || g), 'hex'), sha256(convert_to('t' || g, 'UTF8')),
                    $3, $3, $3 + 604800000000000, $3 + 2592000000000000, $3, 'pwd', 1
             FROM generate_series($1::bigint, $2::bigint) g"
        ),
    ];
    for sql in &statements {
        sqlx::query(sql)
            .bind(from as i64)
            .bind(to as i64)
            .bind(now_ns)
            .execute(pg.pool())
            .await
            .unwrap();
    }
}

async fn measure(pg: &PostgresBackend, users: u64, samples: usize) -> (Stats, Stats) {
    let now = OffsetDateTime::now_utc();
    let mut pick = [0u8; 8];
    let rng = SystemRandom::new();
    let mut ids = Vec::with_capacity(samples);
    for _ in 0..samples {
        rng.fill(&mut pick).unwrap();
        ids.push(u64::from_le_bytes(pick) % users + 1);
    }
    let sign_in = time_each(format!("sign-in lookup at {users} users"), samples, |i| {
        let email = Email::parse(&format!("user{}@load.example", ids[i])).unwrap();
        async move {
            let user = pg.user_by_email(&email).await.unwrap().unwrap();
            let creds = ciam_core::store::CredentialStore::credentials_for_user(
                pg,
                user.id,
                CredentialKind::Password,
            )
            .await
            .unwrap();
            assert_eq!(creds.len(), 1);
        }
    })
    .await;
    let validate = time_each(
        format!("session validation at {users} users"),
        samples,
        |i| {
            let hash = TokenHash::of(&format!("t{}", ids[i]));
            async move { assert!(pg.session_by_token(&hash, now).await.unwrap().is_some()) }
        },
    )
    .await;
    (sign_in, validate)
}

async fn scale(args: &[String]) {
    let users = arg(args, "--users", 1_000_000) as u64;
    let samples = arg(args, "--samples", 5000);
    let small = 10_000u64.min(users);
    let pg_url = env_or(
        "CIAM_BENCH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let schema = format!("ciam_scale_{}", suffix());
    let pg = PostgresBackend::connect_with(
        PostgresOptions::new(&pg_url)
            .schema(&schema)
            .statement_timeout(Duration::ZERO),
    )
    .await
    .unwrap();
    let now_ns = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap();
    let started = Instant::now();
    load(&pg, 1, small, now_ns).await;
    sqlx::query(&format!(
        "ANALYZE \"{}\".users, \"{0}\".credentials, \"{0}\".sessions",
        schema.replace('"', "\"\"")
    ))
    .execute(pg.pool())
    .await
    .unwrap();
    // One untimed pass warms the caches; the second is measured.
    measure(&pg, small, samples).await;
    let (s1, v1) = measure(&pg, small, samples).await;
    let batch = 100_000u64;
    let mut done = small;
    while done < users {
        let to = (done + batch).min(users);
        load(&pg, done + 1, to, now_ns).await;
        done = to;
        eprintln!("loaded {done:>9}/{users} users ({:.1?})", started.elapsed());
    }
    sqlx::query(&format!(
        "ANALYZE \"{}\".users, \"{0}\".credentials, \"{0}\".sessions",
        schema.replace('"', "\"\"")
    ))
    .execute(pg.pool())
    .await
    .unwrap();
    measure(&pg, users, samples).await;
    let (s2, v2) = measure(&pg, users, samples).await;
    println!("{samples} random lookups each, one client, PostgreSQL schema {schema}");
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "measurement", "ops/s", "p50", "p99"
    );
    for s in [&s1, &v1, &s2, &v2] {
        s.print();
    }
    for (name, a, b) in [
        ("sign-in lookup", &s1, &s2),
        ("session validation", &v1, &v2),
    ] {
        println!(
            "{name}: p50 {:.2}x, p99 {:.2}x ({users} vs {small} users)",
            b.pct(0.5).as_secs_f64() / a.pct(0.5).as_secs_f64(),
            b.pct(0.99).as_secs_f64() / a.pct(0.99).as_secs_f64()
        );
    }
    sqlx::query(&format!(
        "DROP SCHEMA \"{}\" CASCADE",
        schema.replace('"', "\"\"")
    ))
    .execute(pg.pool())
    .await
    .unwrap();
    pg.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match args.get(1).map(String::as_str) {
        Some("ops") => rt.block_on(ops(&args)),
        Some("scale") => rt.block_on(scale(&args)),
        _ => {
            eprintln!(
                "usage: storage ops [--iterations N] | storage scale [--users N] [--samples N]"
            );
            std::process::exit(2);
        }
    }
}
