//! Session validation (`Ciam::authenticate`) ns/op on the memory and SQLite backends: one
//! SHA-256 of the token and one store read (the touch write happens at most once a minute).
//!
//! Run: `cargo bench -p ciam-benches --bench sessions`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ciam_core::password::{Argon2Params, PasswordConfig};
use ciam_core::store::Backend;
use ciam_core::{Ciam, Policy, Registration, RequestContext, SecretString, SignInOutcome};
use ciam_storage::memory::MemoryBackend;
use ciam_storage::sqlite::SqliteBackend;
use criterion::{Criterion, criterion_group, criterion_main};

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
        ciam.register(
            Registration::new("bench@example.com", Some(pw.clone())),
            &ctx,
        )
        .await
        .unwrap();
        match ciam
            .sign_in_password("bench@example.com", &pw, &ctx)
            .await
            .unwrap()
        {
            SignInOutcome::SignedIn(s) => s.token,
            other => panic!("{other:?}"),
        }
    });
    (ciam, token)
}

fn validate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("session_validation");
    let (memory, memory_token) = signed_in(&rt, Arc::new(MemoryBackend::new()));
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let sqlite_backend = rt.block_on(SqliteBackend::connect(&url)).unwrap();
    let (sqlite, sqlite_token) = signed_in(&rt, Arc::new(sqlite_backend));
    let ctx = RequestContext::new(None, None);
    group.bench_function("memory", |b| {
        b.iter(|| {
            rt.block_on(memory.authenticate(&memory_token, &ctx))
                .unwrap()
        })
    });
    group.bench_function("sqlite_file", |b| {
        b.iter(|| {
            rt.block_on(sqlite.authenticate(&sqlite_token, &ctx))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
