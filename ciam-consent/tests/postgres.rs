//! The conformance kit against PostgreSQL.
//!
//! Needs a server: `CIAM_TEST_POSTGRES_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`; `scripts/test.sh` sets it). When it is not set
//! the tests fail under CI (`CI` set) and are skipped with a message elsewhere. Every store
//! gets a fresh schema with a unique name, dropped at the end of the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ciam_consent::conformance;
use ciam_consent::postgres::PostgresConsentStore;
use sqlx::postgres::PgPool;

const URL_VAR: &str = "CIAM_TEST_POSTGRES_URL";

/// The server under test, or `None` (skip) outside CI.
fn url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{URL_VAR} is not set and CI is: the PostgreSQL tests need a server \
             (scripts/test.sh starts one and sets the variable)"
        ),
        _ => {
            eprintln!("{URL_VAR} is not set: skipping the PostgreSQL consent tests");
            None
        }
    }
}

fn unique_schema() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_usize(n);
    format!(
        "consent_test_{}_{n}_{:08x}",
        std::process::id(),
        h.finish() as u32
    )
}

/// Makes stores on fresh schemas and drops the schemas at the end.
struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: String) -> Arc<Self> {
        Arc::new(Self {
            url,
            names: Mutex::new(Vec::new()),
        })
    }

    fn name(&self) -> String {
        let name = unique_schema();
        self.names.lock().unwrap().push(name.clone());
        name
    }

    fn make(
        self: &Arc<Self>,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = PostgresConsentStore> + Send>> {
        let schemas = self.clone();
        move || {
            let url = schemas.url.clone();
            let name = schemas.name();
            Box::pin(async move {
                PostgresConsentStore::connect(&url, &name, 8)
                    .await
                    .unwrap_or_else(|e| panic!("connect to PostgreSQL at {URL_VAR}: {e:?}"))
            })
        }
    }

    async fn drop_all(&self) {
        let names = self.names.lock().unwrap().clone();
        let Ok(pool) = PgPool::connect(&self.url).await else {
            return;
        };
        for name in names {
            let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .execute(&pool)
                .await;
        }
        pool.close().await;
    }
}

macro_rules! kit {
    ($($name:ident => $runner:path),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(url) = url() else { return };
                let schemas = Schemas::new(url);
                $runner(schemas.make()).await;
                schemas.drop_all().await;
            }
        )*
    };
}

kit! {
    ledger => conformance::run_ledger,
    tamper => conformance::run_tamper,
    enforcement => conformance::run_enforcement,
    privacy => conformance::run_privacy,
    outbox => conformance::run_outbox,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_restart() {
    let Some(url) = url() else { return };
    let schemas = Schemas::new(url.clone());
    let name = schemas.name();
    let store = PostgresConsentStore::connect(&url, &name, 4).await.unwrap();
    conformance::outbox_survives_restart(store, |s| async move {
        s.close().await;
        PostgresConsentStore::connect(&url, &name, 4).await.unwrap()
    })
    .await;
    schemas.drop_all().await;
}

/// Appends from two separate pools (as two processes would) interleave into one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_append_to_one_chain() {
    let Some(url) = url() else { return };
    let schemas = Schemas::new(url.clone());
    let name = schemas.name();
    let a = PostgresConsentStore::connect(&url, &name, 4).await.unwrap();
    let b = PostgresConsentStore::connect(&url, &name, 4).await.unwrap();
    let clock = ciam_core::clock::ManualClock::new(conformance::START);
    let la = conformance::ledger(&a, &clock);
    let lb = conformance::ledger(&b, &clock);
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let l = if i % 2 == 0 { la.clone() } else { lb.clone() };
        tasks.push(tokio::spawn(async move {
            l.grant(
                conformance::user(1 + i % 2),
                "newsletter",
                ciam_consent::Source::new("test", "race"),
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(la.verify().await.unwrap().seq, 20);
    assert_eq!(lb.verify().await.unwrap().seq, 20);
    a.close().await;
    b.close().await;
    schemas.drop_all().await;
}
