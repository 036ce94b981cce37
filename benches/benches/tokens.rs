//! API access-token verification ns/op and allocations/op: the store-free check
//! (`Ciam::verify_access_token`: signature, alg pinned to the key, exp/nbf, iss, aud, typ) for
//! EdDSA and ES256, and the live check (`verify_access_token_live`: the same plus the session
//! read from the memory store).
//!
//! Run: `cargo bench -p ciam-benches --bench tokens`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::sync::Arc;

use ciam_benches::allocations_per_op;
use ciam_core::password::{Argon2Params, PasswordConfig};
use ciam_core::tokens::{TokenAlgorithm, TokenConfig};
use ciam_core::{Ciam, Policy, Registration, RequestContext, SecretString, SignInOutcome};
use ciam_storage::memory::MemoryBackend;
use criterion::{Criterion, criterion_group, criterion_main};
use stats_alloc::StatsAlloc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// An engine with `alg` tokens and one signed-in user's access token.
fn with_token(rt: &tokio::runtime::Runtime, alg: TokenAlgorithm) -> (Ciam, String) {
    let mut policy = Policy::default();
    policy.allow_unverified_sign_in = true;
    let ciam = Ciam::builder()
        .backend(Arc::new(MemoryBackend::new()))
        .password_config(PasswordConfig::default().argon2(Argon2Params {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }))
        .policy(policy)
        .tokens(TokenConfig::generated(alg).unwrap())
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
        let signed_in = match ciam
            .sign_in_password("bench@example.com", &pw, &ctx)
            .await
            .unwrap()
        {
            SignInOutcome::SignedIn(s) => s,
            other => panic!("{other:?}"),
        };
        let auth = ciam.authenticate(&signed_in.token, &ctx).await.unwrap();
        let pair = ciam.issue_tokens(&auth, &ctx).await.unwrap();
        pair.access_token.expose().to_owned()
    });
    (ciam, token)
}

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut allocations = Vec::new();
    let mut group = c.benchmark_group("access_token");
    for (name, alg) in [
        ("eddsa", TokenAlgorithm::EdDsa),
        ("es256", TokenAlgorithm::Es256),
    ] {
        let (ciam, token) = with_token(&rt, alg);
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| ciam.verify_access_token(&token).unwrap())
        });
        allocations.push((
            format!("verify/{name}"),
            allocations_per_op(GLOBAL, 1_000, || {
                ciam.verify_access_token(&token).unwrap();
            }),
        ));
        group.bench_function(format!("verify_live_memory/{name}"), |b| {
            b.iter(|| rt.block_on(ciam.verify_access_token_live(&token)).unwrap())
        });
    }
    group.finish();
    println!("allocations per verification:");
    for (id, n) in allocations {
        println!("  access_token/{id}: {n:.1} allocs/op");
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
