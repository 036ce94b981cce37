//! The privacy engine against real databases: the audit chain catches every tampering of a
//! stored row (SQLite and PostgreSQL), erasure leaves no trace of the user in any table (the
//! engine's and the consent ledger's) while every chain still verifies, the export holds
//! every field stored about the user, and the retention job mails through a real SMTP sink.
//!
//! Needs `CIAM_TEST_POSTGRES_URL` and the SMTP sink (`CIAM_TEST_SMTP_PORT`,
//! `CIAM_TEST_SMTP_MAILDIR`), as `scripts/test.sh` sets them.
#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ciam_consent::privacy::LedgerPrivacy;
use ciam_consent::{
    Catalog, ConsentEvent, ConsentLedger, LegalBasis, PolicyDocument, Purpose, Source,
};
use ciam_core::clock::ManualClock;
use ciam_core::id::UserId;
use ciam_core::identifier::Phone;
use ciam_core::mail::SmtpMailer;
use ciam_core::password::{Argon2Params, PasswordConfig, PoolConfig};
use ciam_core::privacy::{
    ErasureHook, ErasureStatus, RetentionPolicy, StepOutcome, WITHHELD_CREDENTIAL_FIELDS,
    WITHHELD_SESSION_FIELDS,
};
use ciam_core::profile::{FieldKind, FieldSpec, ProfileSchema};
use ciam_core::shred::MasterKey;
use ciam_core::store::IdentityStore;
use ciam_core::{Ciam, Policy, Registration, RequestContext, SecretString, SignInOutcome};
use ciam_storage::compose::ComposedBackend;
use ciam_storage::postgres::{PostgresBackend, PostgresOptions};
use ciam_storage::sqlite::SqliteBackend;
use sqlx::{Column, Row};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const EMAIL: &str = "Dana.Scully@Example.org";
const NAME: &str = "Dana Katherine Scully";
const PHONE: &str = "+12025550147";
const AGENT: &str = "ScullyBrowser/7.3";
const IP: &str = "198.51.100.23";
const PASSWORD: &str = "the truth is out there 1013";

fn pg_url() -> String {
    std::env::var("CIAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| panic!("CIAM_TEST_POSTGRES_URL is not set: run scripts/test.sh"))
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000;
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn start() -> OffsetDateTime {
    datetime!(2026-03-01 12:00 UTC)
}

fn ctx() -> RequestContext {
    RequestContext::new(Some(IP.parse().unwrap()), Some(AGENT))
}

/// A database under test, with raw SQL access for tampering and dumping.
enum Db {
    Sqlite(SqliteBackend),
    Postgres(PostgresBackend),
}

impl Db {
    async fn sqlite(dir: &tempfile::TempDir) -> (Self, String) {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("ciam.db").display());
        (
            Self::Sqlite(SqliteBackend::connect(&url).await.unwrap()),
            url,
        )
    }

    async fn postgres() -> (Self, String) {
        let schema = unique("ciam_privacy");
        let b = PostgresBackend::connect_with(
            PostgresOptions::new(pg_url())
                .schema(&schema)
                .max_connections(5),
        )
        .await
        .unwrap();
        (Self::Postgres(b), schema)
    }

    fn backend(&self) -> Arc<ComposedBackend> {
        Arc::new(match self {
            Self::Sqlite(b) => ComposedBackend::from_backend(Arc::new(b.clone())),
            Self::Postgres(b) => ComposedBackend::from_backend(Arc::new(b.clone())),
        })
    }

    fn table(&self, t: &str) -> String {
        match self {
            Self::Sqlite(_) => t.to_owned(),
            Self::Postgres(b) => format!("\"{}\".{t}", b.schema()),
        }
    }

    /// The `n`-th placeholder.
    fn ph(&self, n: usize) -> String {
        match self {
            Self::Sqlite(_) => "?".to_owned(),
            Self::Postgres(_) => format!("${n}"),
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Self::Sqlite(b) => {
                sqlx::raw_sql(sql).execute(b.pool()).await.unwrap();
            }
            Self::Postgres(b) => {
                sqlx::raw_sql(sql).execute(b.pool()).await.unwrap();
            }
        }
    }

    async fn blob(&self, column: &str, seq: i64) -> Option<Vec<u8>> {
        let sql = format!(
            "SELECT {column} FROM {} WHERE seq = {}",
            self.table("audit_log"),
            self.ph(1)
        );
        match self {
            Self::Sqlite(b) => sqlx::query_scalar(&sql)
                .bind(seq)
                .fetch_one(b.pool())
                .await
                .unwrap(),
            Self::Postgres(b) => sqlx::query_scalar(&sql)
                .bind(seq)
                .fetch_one(b.pool())
                .await
                .unwrap(),
        }
    }

    async fn set_blob(&self, column: &str, seq: i64, value: Vec<u8>) {
        let sql = format!(
            "UPDATE {} SET {column} = {} WHERE seq = {}",
            self.table("audit_log"),
            self.ph(1),
            self.ph(2)
        );
        match self {
            Self::Sqlite(b) => {
                sqlx::query(&sql)
                    .bind(value)
                    .bind(seq)
                    .execute(b.pool())
                    .await
                    .unwrap();
            }
            Self::Postgres(b) => {
                sqlx::query(&sql)
                    .bind(value)
                    .bind(seq)
                    .execute(b.pool())
                    .await
                    .unwrap();
            }
        }
    }

    async fn text(&self, column: &str, seq: i64) -> String {
        let sql = format!(
            "SELECT {column} FROM {} WHERE seq = {}",
            self.table("audit_log"),
            self.ph(1)
        );
        match self {
            Self::Sqlite(b) => sqlx::query_scalar(&sql)
                .bind(seq)
                .fetch_one(b.pool())
                .await
                .unwrap(),
            Self::Postgres(b) => sqlx::query_scalar(&sql)
                .bind(seq)
                .fetch_one(b.pool())
                .await
                .unwrap(),
        }
    }

    async fn set_text(&self, column: &str, seq: i64, value: String) {
        let sql = format!(
            "UPDATE {} SET {column} = {} WHERE seq = {}",
            self.table("audit_log"),
            self.ph(1),
            self.ph(2)
        );
        match self {
            Self::Sqlite(b) => {
                sqlx::query(&sql)
                    .bind(value)
                    .bind(seq)
                    .execute(b.pool())
                    .await
                    .unwrap();
            }
            Self::Postgres(b) => {
                sqlx::query(&sql)
                    .bind(value)
                    .bind(seq)
                    .execute(b.pool())
                    .await
                    .unwrap();
            }
        }
    }

    /// Every text and byte-string value of every table in the database (and, for
    /// PostgreSQL, in the schemas named), as lower-case bytes, each tagged with where it is.
    async fn dump(&self, schemas: &[&str]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        match self {
            Self::Sqlite(b) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(b.pool())
                .await
                .unwrap();
                assert!(tables.len() >= 8, "the dump sees every table: {tables:?}");
                for t in tables {
                    let rows = sqlx::query(&format!("SELECT * FROM \"{t}\""))
                        .fetch_all(b.pool())
                        .await
                        .unwrap();
                    for row in rows {
                        for c in row.columns() {
                            let i = c.ordinal();
                            let v = row
                                .try_get::<Option<String>, _>(i)
                                .ok()
                                .flatten()
                                .map(String::into_bytes)
                                .or_else(|| row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten());
                            if let Some(v) = v {
                                out.push((format!("{t}.{}", c.name()), v.to_ascii_lowercase()));
                            }
                        }
                    }
                }
            }
            Self::Postgres(b) => {
                let cols: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT table_schema::text, table_name::text, column_name::text, data_type::text \
                     FROM information_schema.columns WHERE table_schema = ANY($1)",
                )
                .bind(schemas.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .fetch_all(b.pool())
                .await
                .unwrap();
                assert!(
                    cols.len() >= 40,
                    "the dump sees every column: {}",
                    cols.len()
                );
                for (schema, table, column, ty) in cols {
                    let sql = format!("SELECT \"{column}\" FROM \"{schema}\".\"{table}\"");
                    let values: Vec<Vec<u8>> = match ty.as_str() {
                        "bytea" => sqlx::query_scalar::<_, Option<Vec<u8>>>(&sql)
                            .fetch_all(b.pool())
                            .await
                            .unwrap()
                            .into_iter()
                            .flatten()
                            .collect(),
                        "bigint" | "integer" | "smallint" | "boolean" => continue,
                        _ => sqlx::query_scalar::<_, Option<String>>(&format!(
                            "SELECT \"{column}\"::text FROM \"{schema}\".\"{table}\""
                        ))
                        .fetch_all(b.pool())
                        .await
                        .unwrap()
                        .into_iter()
                        .flatten()
                        .map(String::into_bytes)
                        .collect(),
                    };
                    for v in values {
                        out.push((format!("{table}.{column}"), v.to_ascii_lowercase()));
                    }
                }
            }
        }
        out
    }
}

fn small_params() -> PasswordConfig {
    PasswordConfig::default()
        .argon2(Argon2Params {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        })
        .pool(PoolConfig {
            workers: 2,
            queue: 64,
        })
}

fn schema() -> ProfileSchema {
    let name = FieldSpec {
        name: "name".into(),
        label: "Name".into(),
        kind: FieldKind::Text { max_chars: 100 },
        stage: "signup".into(),
    };
    ProfileSchema::new(vec!["signup".into()], vec![name], 2).unwrap()
}

fn policy() -> Policy {
    let mut p = Policy::default();
    p.allow_unverified_sign_in = true;
    p
}

fn engine(
    backend: Arc<ComposedBackend>,
    clock: &ManualClock,
    configure: impl FnOnce(ciam_core::CiamBuilder) -> ciam_core::CiamBuilder,
) -> Ciam {
    let builder = Ciam::builder()
        .backend(backend)
        .clock(Arc::new(clock.clone()))
        .password_config(small_params())
        .profile_schema(schema())
        .policy(policy())
        .audit_master_key(MasterKey::from_bytes(&[42; 32]))
        .app_name("Acme")
        .public_url("https://acme.example");
    configure(builder).build().unwrap()
}

/// Registers the user, gives them a phone number, signs in twice and fails once: audit
/// entries with IP, user agent and detail, a session, a credential.
async fn populate(ciam: &Ciam, store: &Arc<ComposedBackend>) -> UserId {
    let mut profile = ciam_core::user::ProfileAttributes::new();
    profile.insert("name".into(), serde_json::json!(NAME));
    ciam.register(
        Registration::new(EMAIL, Some(SecretString::new(PASSWORD))).with_profile(profile),
        &ctx(),
    )
    .await
    .unwrap();
    let user = store
        .user_by_email(&ciam_core::identifier::Email::parse(EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut with_phone = user.clone();
    with_phone.phone = Some(Phone::parse(PHONE).unwrap());
    store.update_user(&with_phone).await.unwrap();
    for _ in 0..2 {
        let out = ciam
            .sign_in_password(EMAIL, &SecretString::new(PASSWORD), &ctx())
            .await
            .unwrap();
        assert!(matches!(out, SignInOutcome::SignedIn(_)));
    }
    assert!(
        ciam.sign_in_password(EMAIL, &SecretString::new("wrong password, Mulder"), &ctx())
            .await
            .is_err()
    );
    user.id
}

// ---------------------------------------------------------------------------------------
// Tampering

async fn assert_broken_at(ciam: &Ciam, position: u64, what: &str) {
    match ciam.verify_audit().await {
        Ok(Err(broken)) => assert_eq!(
            broken.position, position,
            "{what}: verification names position {position}, got {broken}"
        ),
        Ok(Ok(head)) => panic!("{what}: the chain still verifies (head {head:?})"),
        Err(e) => {
            // A value that no longer decodes (an action text with a flipped byte) is refused
            // with an error naming the record's position.
            let text = format!("{e:?}");
            assert!(
                text.contains(&format!("audit record {position}:")),
                "{what}: the decoding error names record {position}: {text}"
            );
        }
    }
}

async fn tampering_is_caught(db: Db) {
    let clock = ManualClock::new(start());
    let store = db.backend();
    let ciam = engine(store.clone(), &clock, |b| b);
    populate(&ciam, &store).await;
    let head = ciam
        .verify_audit()
        .await
        .unwrap()
        .expect("an untouched chain verifies");
    let n = i64::try_from(head.seq).unwrap();
    assert!(n >= 5, "enough entries to tamper with: {n}");

    let blobs = [
        "id",
        "user_id",
        "session_id",
        "personal",
        "prev_hash",
        "hash",
    ];
    let texts = ["action", "outcome", "reason"];
    let ints = ["seq", "at", "personal_kind"];
    for seq in 1..=n {
        let position = u64::try_from(seq).unwrap();
        for column in blobs {
            let Some(original) = db.blob(column, seq).await else {
                continue;
            };
            for byte in [0, original.len() / 2, original.len() - 1] {
                let mut flipped = original.clone();
                flipped[byte] ^= 0x01;
                db.set_blob(column, seq, flipped).await;
                assert_broken_at(&ciam, position, &format!("{column}[{byte}] of {seq}")).await;
                db.set_blob(column, seq, original.clone()).await;
            }
        }
        for column in texts {
            let original = db.text(column, seq).await;
            let mut bytes = original.clone().into_bytes();
            bytes[0] ^= 0x01;
            db.set_text(column, seq, String::from_utf8(bytes).unwrap())
                .await;
            assert_broken_at(&ciam, position, &format!("{column} of {seq}")).await;
            db.set_text(column, seq, original).await;
        }
        for column in ints {
            let t = db.table("audit_log");
            let other = match column {
                "seq" => "seq + 1000",
                "personal_kind" => "1 - personal_kind",
                _ => "at + 1",
            };
            db.exec(&format!(
                "UPDATE {t} SET {column} = {other} WHERE seq = {seq}"
            ))
            .await;
            assert_broken_at(&ciam, position, &format!("{column} of {seq}")).await;
            let back = match column {
                "seq" => format!("UPDATE {t} SET seq = seq - 1000 WHERE seq = {}", seq + 1000),
                "personal_kind" => {
                    format!("UPDATE {t} SET personal_kind = 1 - personal_kind WHERE seq = {seq}")
                }
                _ => format!("UPDATE {t} SET at = at - 1 WHERE seq = {seq}"),
            };
            db.exec(&back).await;
        }
        assert!(
            ciam.verify_audit().await.unwrap().is_ok(),
            "every byte restored, the chain verifies again"
        );
    }

    let t = db.table("audit_log");
    // Reordering two: entries 2 and 3 swap places.
    db.exec(&format!("UPDATE {t} SET seq = -2 WHERE seq = 2"))
        .await;
    db.exec(&format!("UPDATE {t} SET seq = 2 WHERE seq = 3"))
        .await;
    db.exec(&format!("UPDATE {t} SET seq = 3 WHERE seq = -2"))
        .await;
    assert_broken_at(&ciam, 2, "entries 2 and 3 swapped").await;
    db.exec(&format!("UPDATE {t} SET seq = -2 WHERE seq = 2"))
        .await;
    db.exec(&format!("UPDATE {t} SET seq = 2 WHERE seq = 3"))
        .await;
    db.exec(&format!("UPDATE {t} SET seq = 3 WHERE seq = -2"))
        .await;
    assert!(ciam.verify_audit().await.unwrap().is_ok());

    // Inserting one: everything from 4 on moves up, a forged copy of 4 takes its place.
    db.exec(&format!("UPDATE {t} SET seq = -seq WHERE seq >= 4"))
        .await;
    db.exec(&format!("UPDATE {t} SET seq = 1 - seq WHERE seq <= -4"))
        .await;
    db.exec(&format!(
        "INSERT INTO {t} (seq, id, at, action, outcome, reason, user_id, session_id, personal_kind, personal, prev_hash, hash) \
         SELECT 4, substr(hash, 1, 16), at, action, outcome, reason, user_id, session_id, personal_kind, personal, prev_hash, hash FROM {t} WHERE seq = 5"
    ))
    .await;
    assert_broken_at(&ciam, 4, "an entry inserted at 4").await;
    db.exec(&format!("DELETE FROM {t} WHERE seq = 4")).await;
    db.exec(&format!("UPDATE {t} SET seq = -seq WHERE seq >= 5"))
        .await;
    db.exec(&format!("UPDATE {t} SET seq = -seq - 1 WHERE seq <= -5"))
        .await;
    assert!(ciam.verify_audit().await.unwrap().is_ok());

    // Deleting one: entry 3 goes; verification stops at the entry after the gap.
    db.exec(&format!("DELETE FROM {t} WHERE seq = 3")).await;
    assert_broken_at(&ciam, 3, "entry 3 deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_chain_catches_every_tampering() {
    let dir = tempfile::tempdir().unwrap();
    tampering_is_caught(Db::sqlite(&dir).await.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audit_chain_catches_every_tampering() {
    let (db, schema) = Db::postgres().await;
    tampering_is_caught(db).await;
    drop_schemas(&[&schema]).await;
}

async fn drop_schemas(names: &[&str]) {
    let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
    for n in names {
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{n}\" CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
    }
}

/// Two engines (two pools, as two processes would have) appending at once give one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_processes_append_one_chain() {
    let (db, schema) = Db::postgres().await;
    let other = PostgresBackend::connect_with(
        PostgresOptions::new(pg_url())
            .schema(&schema)
            .max_connections(5),
    )
    .await
    .unwrap();
    let clock = ManualClock::new(start());
    let a = engine(db.backend(), &clock, |b| b);
    let b = engine(
        Arc::new(ComposedBackend::from_backend(Arc::new(other))),
        &clock,
        |b| b,
    );
    let mut tasks = Vec::new();
    for (i, ciam) in [a.clone(), b].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for j in 0..15 {
                let _ = ciam
                    .sign_in_password(
                        &format!("nobody-{i}-{j}@example.org"),
                        &SecretString::new("not a password at all"),
                        &RequestContext::new(None, None),
                    )
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = a.verify_audit().await.unwrap().expect("one valid chain");
    assert!(head.seq >= 30, "every append is in the chain: {}", head.seq);
    drop_schemas(&[&schema]).await;
}

// ---------------------------------------------------------------------------------------
// Erasure

/// An application hook that fails its first `fail` calls.
#[derive(Debug)]
struct Flaky {
    fail: u32,
    calls: AtomicU32,
}

#[async_trait]
impl ErasureHook for Flaky {
    fn name(&self) -> &str {
        "crm"
    }

    async fn erase(&self, _user: UserId) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail {
            Err(format!("crm unreachable (call {n})").into())
        } else {
            Ok(3)
        }
    }
}

fn catalog() -> Catalog {
    Catalog::new()
        .purpose(Purpose::new("newsletter", "The weekly newsletter", LegalBasis::Consent).unwrap())
        .policy(PolicyDocument::new(
            1,
            b"Privacy policy, version 1",
            datetime!(2025-01-01 00:00 UTC),
            "https://example.com/privacy/v1",
        ))
        .unwrap()
}

fn needles() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("email", EMAIL.to_ascii_lowercase().into_bytes()),
        ("email local part", b"dana.scully".to_vec()),
        ("name", NAME.to_ascii_lowercase().into_bytes()),
        ("surname", b"scully".to_vec()),
        ("phone", PHONE.as_bytes().to_vec()),
        ("phone digits", b"2025550147".to_vec()),
        ("user agent", AGENT.to_ascii_lowercase().into_bytes()),
        ("ip", IP.as_bytes().to_vec()),
    ]
}

fn traces(dump: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (what, needle) in needles() {
        for (place, value) in dump {
            // Throttling counts failures per client IP (`signin:ip:<ip>`), for every account
            // that IP tries; those windows are not the user's data and expire with the window
            // (ThrottlePolicy::window). Every other place must hold no trace of the IP either.
            if what == "ip" && place == "rate_counters.key" {
                continue;
            }
            if value.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push(format!("{what} in {place}"));
            }
        }
    }
    found
}

async fn erasure_leaves_no_trace(db: Db, ledger: ConsentLedger, schemas: &[&str]) {
    let clock = ManualClock::new(start());
    let store = db.backend();
    let consent = Arc::new(LedgerPrivacy::new(ledger.clone()));
    let crm = Arc::new(Flaky {
        fail: 3,
        calls: AtomicU32::new(0),
    });
    let ciam = engine(store.clone(), &clock, |b| {
        b.export_contributor(consent.clone())
            .erasure_hook(consent.clone())
            .erasure_hook(crm.clone())
            .erasure_retry(2, StdDuration::from_millis(5))
    });
    let user = populate(&ciam, &store).await;
    ledger
        .record(
            user,
            ConsentEvent::grant("newsletter")
                .unwrap()
                .source(Source::new("web", "signup"))
                .jurisdiction("US-DC")
                .attribute("ip", IP)
                .attribute("user_agent", AGENT),
        )
        .await
        .unwrap();

    let before = traces(&db.dump(schemas).await);
    for what in ["email in", "name in", "phone in", "user agent in"] {
        assert!(
            before.iter().any(|t| t.starts_with(what)),
            "the dump finds the {what} before erasure (so it would find it after): {before:?}"
        );
    }
    let export = serde_json::to_string(&ciam.export_user(user, &ctx()).await.unwrap()).unwrap();
    let stored_email = EMAIL.replace("Example.org", "example.org");
    for needle in [stored_email.as_str(), NAME, PHONE, AGENT, IP] {
        assert!(export.contains(needle), "the export holds {needle}");
    }
    assert!(
        export.contains("\"consent\""),
        "the consent section is exported"
    );

    // The CRM hook fails both attempts: the erasure is pending, everything else is gone.
    let first = ciam.erase_user(user, &ctx()).await.unwrap();
    assert_eq!(first.status, ErasureStatus::Pending);
    let crm_step = first.steps.iter().find(|s| s.name == "crm").unwrap();
    assert_eq!(crm_step.attempts, 2, "retried");
    assert!(matches!(crm_step.outcome, StepOutcome::Failed { .. }));
    assert!(ciam.erasure_pending(user).await.unwrap());
    let names: Vec<&str> = first.steps.iter().map(|s| s.name.as_str()).collect();
    for step in [
        "account",
        "credentials",
        "sessions",
        "challenges",
        "counters",
        "audit_key",
        "consent",
        "crm",
    ] {
        assert!(names.contains(&step), "the report lists {step}: {names:?}");
    }
    assert!(
        traces(&db.dump(schemas).await).is_empty(),
        "a pending erasure has already removed every trace: {:?}",
        traces(&db.dump(schemas).await)
    );
    // Resumed: the hook succeeds on its next try, the account record goes.
    let second = ciam.erase_user(user, &ctx()).await.unwrap();
    assert_eq!(second.status, ErasureStatus::Complete, "{second:?}");
    assert!(!ciam.erasure_pending(user).await.unwrap());
    assert!(store.user_by_id(user).await.unwrap().is_none());
    let again = ciam.erase_user(user, &ctx()).await.unwrap();
    assert_eq!(
        again.status,
        ErasureStatus::Complete,
        "erasing again is harmless"
    );

    let after = traces(&db.dump(schemas).await);
    assert!(
        after.is_empty(),
        "no trace of the user after erasure: {after:?}"
    );
    ciam.verify_audit()
        .await
        .unwrap()
        .expect("the audit chain still verifies");
    ledger
        .verify()
        .await
        .expect("the consent chains still verify");
    let log = ciam.audit_log(user, 100).await.unwrap();
    assert!(log.len() >= 5, "the entries stay");
    assert!(
        log.iter().all(|e| e.ip.is_none() && e.user_agent.is_none()),
        "but their personal part no longer opens"
    );
    assert!(log.iter().any(|e| e.erased));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_erasure_leaves_no_trace_and_chains_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (db, url) = Db::sqlite(&dir).await;
    let consent = ciam_consent::sqlite::SqliteConsentStore::connect(&url)
        .await
        .unwrap();
    let ledger = ConsentLedger::builder(
        Arc::new(consent),
        catalog(),
        ciam_consent::MasterKey::from_bytes(&[5; 32]),
    )
    .build()
    .unwrap();
    erasure_leaves_no_trace(db, ledger, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_erasure_leaves_no_trace_and_chains_verify() {
    let (db, schema) = Db::postgres().await;
    let consent_schema = unique("consent_privacy");
    let consent =
        ciam_consent::postgres::PostgresConsentStore::connect(&pg_url(), &consent_schema, 4)
            .await
            .unwrap();
    let ledger = ConsentLedger::builder(
        Arc::new(consent),
        catalog(),
        ciam_consent::MasterKey::from_bytes(&[5; 32]),
    )
    .build()
    .unwrap();
    erasure_leaves_no_trace(db, ledger, &[&schema, &consent_schema]).await;
    drop_schemas(&[&schema, &consent_schema]).await;
}

// ---------------------------------------------------------------------------------------
// Export

/// Every field of every stored record about the user is in the export, or named as withheld
/// with a reason: a field added to the model (or a column added to a table) without either
/// fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_every_field_stored_about_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::sqlite(&dir).await;
    let Db::Sqlite(sqlite) = &db else {
        unreachable!()
    };
    let clock = ManualClock::new(start());
    let store = db.backend();
    let ciam = engine(store.clone(), &clock, |b| b);
    let user = populate(&ciam, &store).await;
    let stored_entries: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE user_id = ?")
            .bind(user.to_bytes().to_vec())
            .fetch_one(sqlite.pool())
            .await
            .unwrap();
    let export = serde_json::to_value(ciam.export_user(user, &ctx()).await.unwrap()).unwrap();
    assert_eq!(export["format"], "ciam.user-export");
    assert_eq!(export["version"], 1);

    // The account: every column of its `users` row.
    let account = export["account"].as_object().unwrap();
    let derived = [
        ("email_canonical", "email"),
        ("username_canonical", "username"),
        ("tenant_id", "tenant"),
    ];
    let row = sqlx::query("SELECT * FROM users WHERE id = ?")
        .bind(user.to_bytes().to_vec())
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    for c in row.columns() {
        let name = derived
            .iter()
            .find(|(col, _)| *col == c.name())
            .map_or(c.name(), |(_, f)| *f);
        assert!(
            account.contains_key(name),
            "users.{} is exported (as {name})",
            c.name()
        );
    }
    // ... with the stored values.
    let stored = store.user_by_id(user).await.unwrap().unwrap();
    assert_eq!(
        account["email"],
        EMAIL.replace("Example.org", "example.org")
    );
    assert_eq!(account["phone"], PHONE);
    assert_eq!(account["profile"]["name"], NAME);
    assert_eq!(account["version"], stored.version);
    assert_eq!(
        account["last_active_at"],
        stored
            .last_active_at
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    // Every field of the model, too (serde names of `User`).
    let model = serde_json::to_value(&stored).unwrap();
    for key in model.as_object().unwrap().keys() {
        assert!(account.contains_key(key), "User::{key} is exported");
    }

    // Credentials: every column, exported or withheld for a stated reason.
    let credentials = export["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "the password");
    let exported = credentials[0].as_object().unwrap();
    let row = sqlx::query("SELECT * FROM credentials WHERE user_id = ?")
        .bind(user.to_bytes().to_vec())
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    let secret: String = row.get("secret");
    for c in row.columns() {
        assert!(
            exported.contains_key(c.name())
                || WITHHELD_CREDENTIAL_FIELDS
                    .iter()
                    .any(|(f, _)| *f == c.name()),
            "credentials.{} is exported or withheld with a reason",
            c.name()
        );
    }
    assert!(
        !export.to_string().contains(&secret),
        "the password hash is never exported"
    );
    assert!(!export.to_string().contains("$argon2"), "no hash at all");

    // Sessions: every column, exported or withheld.
    let sessions = export["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "both sign-ins");
    let row = sqlx::query("SELECT * FROM sessions WHERE user_id = ? LIMIT 1")
        .bind(user.to_bytes().to_vec())
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    let session = sessions[0].as_object().unwrap();
    let device = session["device"].as_object().unwrap();
    for c in row.columns() {
        let name = c.name();
        let mapped = session.contains_key(name)
            || WITHHELD_SESSION_FIELDS.iter().any(|(f, _)| *f == name)
            || name
                .strip_prefix("device_")
                .is_some_and(|f| device.contains_key(f))
            || device.contains_key(name);
        assert!(
            mapped,
            "sessions.{name} is exported or withheld with a reason"
        );
    }
    assert_eq!(device["user_agent"], AGENT);

    // Audit: every entry naming the user, opened.
    let audit = export["audit"].as_array().unwrap();
    assert_eq!(
        audit.len() as i64,
        stored_entries,
        "every audit entry about the user (stored before the export recorded itself)"
    );
    assert!(
        audit
            .iter()
            .all(|e| e["ip"] == IP && e["user_agent"] == AGENT),
        "opened"
    );
}

// ---------------------------------------------------------------------------------------
// Retention

async fn delivered(to: &str) -> Option<String> {
    let maildir = std::env::var("CIAM_TEST_SMTP_MAILDIR")
        .unwrap_or_else(|_| panic!("CIAM_TEST_SMTP_MAILDIR is not set: run scripts/test.sh"));
    let dir = PathBuf::from(maildir).join("new");
    for _ in 0..50 {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if text.contains(&format!("X-RcptTo: {to}")) && text.contains("will be deleted") {
                    return Some(text);
                }
            }
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_tells_then_erases_dormant_accounts() {
    let port = std::env::var("CIAM_TEST_SMTP_PORT")
        .unwrap_or_else(|_| panic!("CIAM_TEST_SMTP_PORT is not set: run scripts/test.sh"));
    let mailer = SmtpMailer::from_url(
        &format!("smtp://127.0.0.1:{port}?tls=none"),
        "Acme <noreply@acme.example>",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let store = db.backend();
    let ciam = engine(store.clone(), &clock, |b| {
        b.mailer(Arc::new(mailer)).retention(RetentionPolicy::new(
            Duration::days(365),
            Duration::days(30),
        ))
    });
    let tag = unique("dormant");
    let sleeper = format!("{tag}-sleeper@example.org");
    let returner = format!("{tag}-returner@example.org");
    for address in [&sleeper, &returner] {
        ciam.register(
            Registration::new(address.as_str(), Some(SecretString::new(PASSWORD))),
            &ctx(),
        )
        .await
        .unwrap();
        ciam.sign_in_password(address, &SecretString::new(PASSWORD), &ctx())
            .await
            .unwrap();
    }
    let id = |a: &str| {
        let store = store.clone();
        let a = a.to_owned();
        async move {
            store
                .user_by_email(&ciam_core::identifier::Email::parse(&a).unwrap())
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let (s, r) = (id(&sleeper).await, id(&returner).await);

    clock.advance(Duration::days(200));
    let report = ciam.run_retention(clock.now_utc()).await.unwrap();
    assert!(
        report.notified.is_empty() && report.erased.is_empty(),
        "not dormant yet"
    );

    clock.advance(Duration::days(170));
    let now = clock.now_utc();
    let report = ciam.run_retention(now).await.unwrap();
    assert_eq!(report.notified.len(), 2, "{report:?}");
    let mail = delivered(&sleeper)
        .await
        .expect("the notice reached the SMTP sink");
    assert!(
        mail.contains("https://acme.example/"),
        "with a sign-in link"
    );
    assert!(delivered(&returner).await.is_some());
    let again = ciam.run_retention(now).await.unwrap();
    assert!(
        again.notified.is_empty(),
        "idempotent: nobody is told twice"
    );
    assert_eq!(again.waiting.len(), 2);

    // The returner signs in within the grace period; the sleeper does not.
    clock.advance(Duration::days(10));
    ciam.sign_in_password(&returner, &SecretString::new(PASSWORD), &ctx())
        .await
        .unwrap();
    clock.advance(Duration::days(25));
    let now = clock.now_utc();
    let report = ciam.run_retention(now).await.unwrap();
    assert_eq!(
        report.erased,
        vec![s],
        "the sleeper is erased after the grace period"
    );
    assert!(store.user_by_id(s).await.unwrap().is_none());
    assert!(
        store.user_by_id(r).await.unwrap().is_some(),
        "the returner stays"
    );
    let again = ciam.run_retention(now).await.unwrap();
    assert!(
        again.erased.is_empty() && again.notified.is_empty(),
        "idempotent"
    );
    ciam.verify_audit()
        .await
        .unwrap()
        .expect("the chain verifies");
}

trait NowUtc {
    fn now_utc(&self) -> OffsetDateTime;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> OffsetDateTime {
        ciam_core::clock::Clock::now(self)
    }
}

/// A process that dies in the middle of an append (holding the append lock, its row written
/// but not committed) leaves a valid chain, and the next append goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_append_killed_midway_leaves_a_valid_chain() {
    let (db, schema) = Db::postgres().await;
    let Db::Postgres(pg) = &db else {
        unreachable!()
    };
    let clock = ManualClock::new(start());
    let ciam = engine(db.backend(), &clock, |b| b);
    populate(&ciam, &db.backend()).await;
    let before = ciam.verify_audit().await.unwrap().expect("verifies");

    // The dying process: same lock, its record half-appended, then its connection is killed.
    let mut victim = pg.pool().acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *victim)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut *victim).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(0x6369_6161_i32)
        .bind(&schema)
        .execute(&mut *victim)
        .await
        .unwrap();
    let t = db.table("audit_log");
    sqlx::raw_sql(&format!(
        "INSERT INTO {t} (seq, id, at, action, outcome, reason, user_id, session_id, personal_kind, personal, prev_hash, hash) \
         SELECT seq + 1, substr(hash, 1, 16), at, action, outcome, reason, user_id, session_id, personal_kind, personal, hash, hash \
         FROM {t} ORDER BY seq DESC LIMIT 1"
    ))
    .execute(&mut *victim)
    .await
    .unwrap();
    // Meanwhile another append waits for the lock.
    let waiting = {
        let ciam = ciam.clone();
        tokio::spawn(async move {
            ciam.sign_in_password(
                "nobody@example.org",
                &SecretString::new("no such account"),
                &RequestContext::new(None, None),
            )
            .await
        })
    };
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "the other append waits for the lock"
    );
    let admin = sqlx::PgPool::connect(&pg_url()).await.unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(killed);
    drop(victim);
    let _ = tokio::time::timeout(StdDuration::from_secs(10), waiting)
        .await
        .expect("the waiting append proceeds once the dead one's lock is gone");
    let after = ciam
        .verify_audit()
        .await
        .unwrap()
        .expect("the chain is valid");
    assert!(after.seq > before.seq, "the waiting append is in the chain");
    drop_schemas(&[&schema]).await;
}

/// A signed-in user erases their own account: refused without a recent sign-in or the
/// password (nothing erased), done with the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_own_account_needs_recent_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = Db::sqlite(&dir).await;
    let clock = ManualClock::new(start());
    let store = db.backend();
    let ciam = engine(store.clone(), &clock, |b| b);
    let user = populate(&ciam, &store).await;
    let SignInOutcome::SignedIn(signed) = ciam
        .sign_in_password(EMAIL, &SecretString::new(PASSWORD), &ctx())
        .await
        .unwrap()
    else {
        panic!("signed in");
    };
    clock.advance(Duration::hours(2));
    let auth = ciam.authenticate(&signed.token, &ctx()).await.unwrap();
    assert!(
        ciam.erase_own_account(&auth, None, &ctx()).await.is_err(),
        "an old sign-in alone is refused"
    );
    assert!(
        store.user_by_id(user).await.unwrap().is_some(),
        "nothing erased"
    );
    let report = ciam
        .erase_own_account(&auth, Some(&SecretString::new(PASSWORD)), &ctx())
        .await
        .unwrap();
    assert_eq!(report.status, ErasureStatus::Complete);
    assert!(store.user_by_id(user).await.unwrap().is_none());
    assert!(
        ciam.authenticate(&signed.token, &ctx()).await.is_err(),
        "the session is gone"
    );
}
