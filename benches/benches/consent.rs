//! Consent enforcement (`ConsentLedger::check`) ns/op: cached (the in-process decision cache,
//! synchronously through `check_cached` and through the async `check` polled on a
//! current-thread runtime) and uncached (cache off: one read of the user's records from the
//! store and a decision for every purpose), on the memory and SQLite stores. Each user has a
//! grant, a withdrawal and a re-grant among 1,000 users' records.
//!
//! Also the ledger's write and audit paths: one append (`grant`: the user's data key, the
//! sealed record, both chain links, in one store transaction with its outbox event) and one
//! full `verify` of the 3,000-record ledger (every record's hash, the global chain and each
//! subject's chain), whose time divided into 3,000 is the verify throughput.
//!
//! After the timings, heap allocations per check (counted by the instrumented allocator over
//! 1,000 calls; the async forms with `block_on`'s own subtracted) for each store.
//!
//! Run: `cargo bench -p ciam-benches --bench consent`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::sync::Arc;

use ciam_benches::allocations_per_op;
use stats_alloc::StatsAlloc;

use ciam_consent::memory::MemoryConsentStore;
use ciam_consent::sqlite::SqliteConsentStore;
use ciam_consent::{
    Catalog, ConsentLedger, ConsentStore, LegalBasis, MasterKey, PolicyDocument, Purpose, Source,
};
use ciam_core::id::UserId;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use time::macros::datetime;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &stats_alloc::INSTRUMENTED_SYSTEM;

const USERS: u32 = 1_000;

fn catalog() -> Catalog {
    Catalog::new()
        .purpose(Purpose::new("newsletter", "Newsletter", LegalBasis::Consent).unwrap())
        .purpose(
            Purpose::new("ads", "Advertising", LegalBasis::Consent)
                .unwrap()
                .sale_or_share(true),
        )
        .purpose(Purpose::new("billing", "Billing", LegalBasis::Contract).unwrap())
        .policy(PolicyDocument::new(
            1,
            b"policy",
            datetime!(2025-01-01 00:00 UTC),
            "https://example.com/privacy",
        ))
        .unwrap()
}

fn user(n: u32) -> UserId {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&n.to_be_bytes());
    UserId::from_bytes(b)
}

fn ledger(store: Arc<dyn ConsentStore>, cache: usize) -> ConsentLedger {
    ConsentLedger::builder(store, catalog(), MasterKey::from_bytes(&[1; 32]))
        .cache_capacity(cache)
        .build()
        .unwrap()
}

fn fill(rt: &tokio::runtime::Runtime, ledger: &ConsentLedger) {
    rt.block_on(async {
        let src = Source::new("bench", "setup");
        for n in 0..USERS {
            ledger
                .grant(user(n), "newsletter", src.clone())
                .await
                .unwrap();
            ledger
                .withdraw(user(n), "newsletter", src.clone())
                .await
                .unwrap();
            ledger
                .grant(user(n), "newsletter", src.clone())
                .await
                .unwrap();
        }
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn ConsentStore> = Arc::new(
        rt.block_on(SqliteConsentStore::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("consent.db").display()
        )))
        .unwrap(),
    );
    let memory: Arc<dyn ConsentStore> = Arc::new(MemoryConsentStore::new());
    let block_on = allocations_per_op(GLOBAL, 1_000, || rt.block_on(async {}));
    let mut allocations = Vec::new();
    for (name, store) in [("memory", memory), ("sqlite", sqlite)] {
        let cached = ledger(store.clone(), 100_000);
        fill(&rt, &cached);
        let uncached = ledger(store, 0);
        let u = user(USERS / 2);
        assert!(
            rt.block_on(cached.check(u, "newsletter"))
                .unwrap()
                .is_allowed()
        );
        c.bench_function(&format!("consent check cached sync ({name})"), |b| {
            b.iter(|| cached.check_cached(black_box(u), "newsletter"))
        });
        c.bench_function(&format!("consent check cached async ({name})"), |b| {
            b.iter(|| rt.block_on(cached.check(black_box(u), "newsletter")))
        });
        c.bench_function(&format!("consent check uncached ({name})"), |b| {
            b.iter(|| rt.block_on(uncached.check(black_box(u), "newsletter")))
        });
        allocations.push((
            name,
            allocations_per_op(GLOBAL, 1_000, || {
                black_box(cached.check_cached(u, "newsletter"));
            }),
            allocations_per_op(GLOBAL, 1_000, || {
                black_box(rt.block_on(cached.check(u, "newsletter")).unwrap());
            }) - block_on,
            allocations_per_op(GLOBAL, 1_000, || {
                black_box(rt.block_on(uncached.check(u, "newsletter")).unwrap());
            }) - block_on,
        ));
        let head = rt.block_on(cached.verify()).unwrap();
        c.bench_function(&format!("consent verify 3000 records ({name})"), |b| {
            b.iter(|| {
                let h = rt.block_on(cached.verify()).unwrap();
                assert_eq!(h, head);
            })
        });
        // Appends last: they grow the ledger the benchmarks above read.
        let src = Source::new("bench", "append");
        let mut n = USERS;
        c.bench_function(&format!("consent append ({name})"), |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(cached.grant(user(n), "ads", src.clone()))
                    .unwrap()
            })
        });
    }
    println!(
        "allocations per check (block_on's own {block_on:.1} subtracted from the async forms):"
    );
    for (name, sync, cached, uncached) in allocations {
        println!(
            "  consent check ({name}): cached sync {sync:.1}/op, cached async {cached:.1}/op, uncached {uncached:.1}/op"
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
