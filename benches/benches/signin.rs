//! Sign-in failure timing at the default (OWASP) argon2id parameters, on SQLite: an unknown
//! account against a known account with a wrong password. They must cost the same, so that
//! response times do not reveal which addresses have accounts (OWASP ASVS 6.3.8).
//!
//! The two cases are interleaved (A, B, A, B, ...) so that drift in the machine's speed over
//! the run, which on a shared 2-core VM is larger than the effect being measured, hits both
//! alike. Prints median, p90 and p99 of each and their ratio.
//!
//! Run: `cargo bench -p ciam-benches --bench signin` (`SIGNIN_PAIRS=N` to change the 300 pairs)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ciam_core::password::{PasswordConfig, PoolConfig};
use ciam_core::{Ciam, Policy, Registration, RequestContext, SecretString};
use ciam_storage::sqlite::SqliteBackend;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    // `cargo bench` passes libtest-style flags; this harness has none of its own.
    let pairs: usize = std::env::var("SIGNIN_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
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
    let backend = Arc::new(rt.block_on(SqliteBackend::connect(&url)).unwrap());
    let ciam = Ciam::builder()
        .backend(backend)
        .password_config(PasswordConfig::default().pool(PoolConfig {
            workers: 1,
            queue: 8,
        }))
        .policy(Policy::default())
        .build()
        .unwrap();
    let ctx = RequestContext::new(None, None);
    let password = SecretString::new("correct horse battery staple");
    rt.block_on(ciam.register(Registration::new("known@example.com", Some(password)), &ctx))
        .unwrap();
    let wrong = SecretString::new("not the right password at all");

    let mut known = Vec::with_capacity(pairs);
    let mut unknown = Vec::with_capacity(pairs);
    // Warm up both paths.
    for email in ["known@example.com", "unknown@example.com"] {
        for _ in 0..5 {
            rt.block_on(ciam.sign_in_password(email, &wrong, &ctx))
                .unwrap_err();
        }
    }
    for i in 0..pairs * 2 {
        let (email, out) = if i % 2 == 0 {
            ("known@example.com", &mut known)
        } else {
            ("unknown@example.com", &mut unknown)
        };
        let t = Instant::now();
        rt.block_on(ciam.sign_in_password(email, &wrong, &ctx))
            .unwrap_err();
        out.push(t.elapsed());
    }
    known.sort();
    unknown.sort();
    println!(
        "sign-in failure at OWASP argon2id (m=19456 KiB, t=2, p=1), SQLite, {pairs} interleaved pairs"
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "case", "median", "p90", "p99"
    );
    for (name, v) in [("wrong password", &known), ("unknown account", &unknown)] {
        println!(
            "{name:<24} {:>10.2?} {:>10.2?} {:>10.2?}",
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99)
        );
    }
    let ratio = percentile(&unknown, 0.5).as_secs_f64() / percentile(&known, 0.5).as_secs_f64();
    println!("median ratio unknown / wrong password: {ratio:.3}");
}
