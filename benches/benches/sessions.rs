//! Session validation (`Ciam::authenticate`) ns/op and allocations/op on every backend, with
//! and without the in-process `SessionCache` (1 s TTL): one SHA-256 of the token and one store
//! read, or a cache hit (the touch write happens at most once a minute, so it is not here).
//!
//! Run: `cargo bench -p ciam-benches --bench sessions`. PostgreSQL and Redis are taken from
//! `CIAM_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `CIAM_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379/`); set `CIAM_BENCH_SKIP_SERVERS=1`
//! to measure only memory and SQLite.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::sync::Arc;

use ciam_benches::allocations_per_op;
use ciam_core::password::{Argon2Params, PasswordConfig};
use ciam_core::store::{Backend, SessionStore};
use ciam_core::{Ciam, Policy, Registration, RequestContext, SecretString, SignInOutcome};
use ciam_storage::cache::{CacheOptions, SessionCache};
use ciam_storage::compose::ComposedBackend;
use ciam_storage::memory::MemoryBackend;
use ciam_storage::postgres::{PostgresBackend, PostgresOptions};
use ciam_storage::redis::{RedisOptions, RedisStore};
use ciam_storage::sqlite::SqliteBackend;
use criterion::{Criterion, criterion_group, criterion_main};
use stats_alloc::StatsAlloc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn signed_in<B: Backend>(
    rt: &tokio::runtime::Runtime,
    backend: Arc<B>,
) -> (Ciam, ciam_core::secret::OpaqueToken) {
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
        .build()
        .unwrap();
    let token = rt.block_on(async {
        let ctx = RequestContext::new(None, None);
        let pw = SecretString::new("correct horse battery staple");
        let email = format!("bench.{}@example.com", std::process::id());
        ciam.register(Registration::new(&email, Some(pw.clone())), &ctx)
            .await
            .unwrap();
        match ciam.sign_in_password(&email, &pw, &ctx).await.unwrap() {
            SignInOutcome::SignedIn(s) => s.token,
            other => panic!("{other:?}"),
        }
    });
    (ciam, token)
}

/// The backend as given, and the same with its session store behind a `SessionCache`.
fn with_and_without_cache(backend: ComposedBackend) -> [(&'static str, ComposedBackend); 2] {
    let inner: Arc<dyn SessionStore> = Arc::clone(backend.sessions());
    let cached = backend
        .clone()
        .with_sessions(Arc::new(SessionCache::new(inner, CacheOptions::default())));
    [("uncached", backend), ("cached", cached)]
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn validate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let sqlite = rt.block_on(SqliteBackend::connect(&url)).unwrap();
    let mut backends = vec![
        (
            "memory",
            ComposedBackend::from_backend(Arc::new(MemoryBackend::new())),
        ),
        (
            "sqlite_file",
            ComposedBackend::from_backend(Arc::new(sqlite)),
        ),
    ];
    let servers = std::env::var_os("CIAM_BENCH_SKIP_SERVERS").is_none();
    let schema = format!("ciam_bench_sessions_{}", std::process::id());
    let mut pg = None;
    if servers {
        let pg_url = env_or(
            "CIAM_BENCH_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        );
        let backend = rt
            .block_on(PostgresBackend::connect_with(
                PostgresOptions::new(&pg_url).schema(&schema),
            ))
            .unwrap();
        backends.push((
            "postgres",
            ComposedBackend::from_backend(Arc::new(backend.clone())),
        ));
        let mut options =
            RedisOptions::new(env_or("CIAM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/"));
        options.key_prefix = format!("ciam-bench-sessions:{}:", std::process::id());
        let redis = rt.block_on(RedisStore::connect_with(options)).unwrap();
        backends.push((
            "redis",
            ComposedBackend::from_backend(Arc::new(MemoryBackend::new()))
                .with_sessions(Arc::new(redis)),
        ));
        pg = Some(backend);
    }

    let ctx = RequestContext::new(None, None);
    let mut allocations = Vec::new();
    let mut group = c.benchmark_group("session_validation");
    for (name, backend) in backends {
        for (mode, backend) in with_and_without_cache(backend) {
            let (ciam, token) = signed_in(&rt, Arc::new(backend));
            let id = format!("{name}/{mode}");
            group.bench_function(&id, |b| {
                b.iter(|| rt.block_on(ciam.authenticate(&token, &ctx)).unwrap())
            });
            let per_op = allocations_per_op(GLOBAL, 1_000, || {
                rt.block_on(ciam.authenticate(&token, &ctx)).unwrap();
            });
            allocations.push((id, per_op));
        }
    }
    group.finish();
    // What driving a future through `block_on` costs by itself, subtracted below.
    let baseline = allocations_per_op(GLOBAL, 1_000, || rt.block_on(async {}));
    println!("allocations per validation (block_on's own {baseline:.1} subtracted):");
    for (id, n) in allocations {
        println!("  session_validation/{id}: {:.1} allocs/op", n - baseline);
    }
    if let Some(pg) = pg {
        rt.block_on(async {
            sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(pg.pool())
                .await
                .unwrap();
            pg.close().await;
        });
    }
}

criterion_group!(benches, validate);
criterion_main!(benches);
