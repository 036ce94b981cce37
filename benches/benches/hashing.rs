//! argon2id hashes per second at the default (OWASP) parameters, by thread count: through
//! ciam's hashing pool, and through the raw argon2 crate with reused memory blocks.
//!
//! Run: `cargo bench -p ciam-benches --bench hashing`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use ciam_core::password::{Argon2Params, PasswordConfig, PasswordHasher, PoolConfig};
use ciam_core::rng::SystemRandom;
use ciam_core::secret::SecretString;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn thread_counts() -> Vec<usize> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (1..=n).collect()
}

fn pool(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("argon2id_owasp/ciam_pool");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for threads in thread_counts() {
        let config = PasswordConfig::default()
            .argon2(Argon2Params::OWASP)
            .pool(PoolConfig {
                workers: threads,
                queue: threads * 8,
            });
        let hasher = PasswordHasher::new(config, Arc::new(SystemRandom::new())).unwrap();
        let password = SecretString::new("correct horse battery staple");
        // Each iteration hashes `threads` passwords concurrently.
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter(|| {
                    rt.block_on(async {
                        let jobs: Vec<_> = (0..threads)
                            .map(|_| {
                                let h = hasher.clone();
                                let p = password.clone();
                                tokio::spawn(async move { h.hash(&p).await.unwrap() })
                            })
                            .collect();
                        for j in jobs {
                            j.await.unwrap();
                        }
                    })
                });
            },
        );
    }
    group.finish();
}

fn raw(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id_owasp/raw_argon2_reused_memory");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let p = Argon2Params::OWASP;
    let params = Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).unwrap();
    for threads in thread_counts() {
        group.throughput(Throughput::Elements(threads as u64));
        let mut blocks: Vec<Vec<Block>> = (0..threads)
            .map(|_| vec![Block::default(); params.block_count()])
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, _| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for mem in blocks.iter_mut() {
                        let params = params.clone();
                        s.spawn(move || {
                            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                            let mut out = [0u8; 32];
                            argon
                                .hash_password_into_with_memory(
                                    b"correct horse battery staple",
                                    b"0123456789abcdef",
                                    &mut out,
                                    mem,
                                )
                                .unwrap();
                            out
                        });
                    }
                });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, pool, raw);
criterion_main!(benches);
