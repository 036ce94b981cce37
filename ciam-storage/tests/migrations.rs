//! Upgrading a database made by the oldest schema (version 1, before rate-limit counters and
//! credential lookup keys), holding data, to the newest: the data survives and the new tables
//! and columns work. The credential row is written with version 1's column list, as the
//! library of that time wrote it, and so are the user row and the audit entry (version 4
//! added user activity columns and replaced the audit log by a hash chain, keeping the old
//! entries as `audit_legacy`). SQLite, and
//! PostgreSQL at `CIAM_TEST_POSTGRES_URL`.
#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ciam_core::audit::{AuditAction, AuditOutcome};
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{AuditId, CredentialId, SessionId, UserId};
use ciam_core::identifier::Email;
use ciam_core::rng::{SecureRandom, SystemRandom};
use ciam_core::secret::OpaqueToken;
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{AuditStore, Backend};
use ciam_core::user::User;
use ciam_storage::postgres::{PostgresBackend, PostgresOptions, SCHEMA_VERSION as PG_VERSION};
use ciam_storage::sqlite::{SCHEMA_VERSION as SQLITE_VERSION, SqliteBackend};
use time::macros::datetime;

const OLDEST: i64 = 1;
const MINUTE: Duration = Duration::from_secs(60);

struct Data {
    user: User,
    credential: Credential,
    session: Session,
    challenge_secret: OpaqueToken,
    audit: LegacyAudit,
}

/// An audit entry as versions 1 to 3 stored it.
struct LegacyAudit {
    id: AuditId,
    at: time::OffsetDateTime,
    action: AuditAction,
    outcome: AuditOutcome,
    reason: String,
    user_id: UserId,
    ip: String,
    user_agent: String,
}

fn data() -> Data {
    let rng = SystemRandom::new();
    let now = datetime!(2026-04-01 08:00 UTC);
    let mut user = User::new(UserId::generate(&rng).unwrap(), now);
    user.email = Some(Email::parse("old.timer@example.com").unwrap());
    user.email_verified_at = Some(now);
    let credential = Credential::new(
        CredentialId::generate(&rng).unwrap(),
        user.id,
        CredentialKind::Password,
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$8bQVmbQ0pEmZuwq9FoMgtHAFTR0WypGjEDMXE5XbkZs".into(),
        now,
    );
    let token = OpaqueToken::generate(&rng).unwrap();
    let session = Session {
        id: SessionId::generate(&rng).unwrap(),
        user_id: user.id,
        token_hash: token.hash(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now + time::Duration::days(7),
        absolute_expires_at: now + time::Duration::days(30),
        auth_time: now,
        amr: vec![AuthMethod::Pwd],
        aal: Aal::Aal1,
        device: DeviceInfo {
            user_agent: Some("old browser".into()),
            ip: Some("192.0.2.1".parse().unwrap()),
        },
    };
    let audit = LegacyAudit {
        id: AuditId::generate(&rng).unwrap(),
        at: now,
        action: AuditAction::SignInPassword,
        outcome: AuditOutcome::Success,
        reason: "password".into(),
        user_id: user.id,
        ip: "192.0.2.77".into(),
        user_agent: "old browser".into(),
    };
    Data {
        user,
        credential,
        session,
        challenge_secret: OpaqueToken::generate(&rng).unwrap(),
        audit,
    }
}

/// The user row as schema versions 1 to 3 stored it (no activity columns).
const V1_USER: &str = "INSERT INTO {table} (id, status, email, email_canonical, email_verified_at, profile, created_at, updated_at, version) VALUES ";
/// The audit row as schema versions 1 to 3 stored it.
const V1_AUDIT: &str = "INSERT INTO {table} (id, at, action, outcome, reason, user_id, ip, user_agent, detail) VALUES ";

/// Writes what has no old-column form; the caller wrote the user row first.
async fn write(store: &impl Backend, d: &Data) {
    store.insert_session(&d.session).await.unwrap();
    let now = d.session.created_at;
    let challenge = Challenge::new(
        d.challenge_secret.hash(),
        ChallengePurpose::ResetPassword,
        Some(d.user.id),
        serde_json::json!({"email": "old.timer@example.com"}),
        now,
        now + time::Duration::hours(1),
    );
    store.insert_challenge(&challenge).await.unwrap();
    // The oldest schema has no counters: a typed error, not a panic.
    assert!(store.hit("k", MINUTE, now).await.is_err());
}

async fn check(store: &impl Backend, d: &Data) {
    let now = d.session.created_at;
    assert_eq!(
        store
            .user_by_email(d.user.email.as_ref().unwrap())
            .await
            .unwrap(),
        Some(d.user.clone())
    );
    assert_eq!(
        store
            .credentials_for_user(d.user.id, CredentialKind::Password)
            .await
            .unwrap(),
        vec![d.credential.clone()]
    );
    assert_eq!(
        store
            .session_by_token(&d.session.token_hash, now)
            .await
            .unwrap(),
        Some(d.session.clone())
    );
    assert!(
        store
            .audit_for_user(d.user.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "the old entries are not part of the new chain"
    );
    // The chain starts afresh and works; the activity columns work.
    assert!(store.touch_user_activity(d.user.id, now).await.unwrap());
    assert_eq!(
        store
            .user_by_id(d.user.id)
            .await
            .unwrap()
            .unwrap()
            .last_active_at,
        Some(now)
    );
    let consumed = store
        .consume_challenge(
            ChallengePurpose::ResetPassword,
            &d.challenge_secret.hash(),
            now,
        )
        .await
        .unwrap();
    assert_eq!(consumed.and_then(|c| c.user_id), Some(d.user.id));
    // The new table works.
    assert_eq!(store.hit("signin:acct", MINUTE, now).await.unwrap(), 1);
    assert_eq!(store.hit("signin:acct", MINUTE, now).await.unwrap(), 2);
    // The new credential columns work: the old row has no name or lookup key, a new passkey
    // is found by its key.
    assert_eq!(d.credential.name, None);
    let passkey = Credential::new(
        CredentialId::generate(&SystemRandom::new()).unwrap(),
        d.user.id,
        CredentialKind::Passkey,
        "{}".into(),
        now,
    )
    .with_lookup(vec![7; 20])
    .with_name("Phone");
    store.insert_credential(&passkey).await.unwrap();
    assert_eq!(
        store
            .credential_by_lookup(CredentialKind::Passkey, &[7; 20])
            .await
            .unwrap(),
        Some(passkey)
    );
}

/// The credential row as schema version 1 stored it (no `name`, no `lookup`).
const V1_CREDENTIAL: &str = "INSERT INTO {table} (id, user_id, kind, secret, created_at, updated_at, last_used_at, version) VALUES ";

fn v1_credential_sql(table: &str, placeholders: &str) -> String {
    format!(
        "{}({placeholders})",
        V1_CREDENTIAL.replace("{table}", table)
    )
}

fn nanos(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_oldest_schema_with_data_upgrades_to_newest() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let d = data();
    let old = SqliteBackend::connect_at_version(&url, OLDEST)
        .await
        .unwrap();
    let u = &d.user;
    sqlx::query(&format!(
        "{}(?, ?, ?, ?, ?, '{{}}', ?, ?, ?)",
        V1_USER.replace("{table}", "users")
    ))
    .bind(u.id.to_bytes().to_vec())
    .bind(u.status.as_str())
    .bind(u.email.as_ref().unwrap().as_str())
    .bind(u.email.as_ref().unwrap().canonical())
    .bind(nanos(u.email_verified_at.unwrap()))
    .bind(nanos(u.created_at))
    .bind(nanos(u.updated_at))
    .bind(1_i64)
    .execute(old.pool())
    .await
    .unwrap();
    let a = &d.audit;
    sqlx::query(&format!(
        "{}(?, ?, ?, ?, ?, ?, ?, ?, '{{\"amr\":[\"pwd\"]}}')",
        V1_AUDIT.replace("{table}", "audit")
    ))
    .bind(a.id.to_bytes().to_vec())
    .bind(nanos(a.at))
    .bind(a.action.as_str())
    .bind(a.outcome.as_str())
    .bind(a.reason.as_str())
    .bind(a.user_id.to_bytes().to_vec())
    .bind(a.ip.as_str())
    .bind(a.user_agent.as_str())
    .execute(old.pool())
    .await
    .unwrap();
    write(&old, &d).await;
    let c = &d.credential;
    sqlx::query(&v1_credential_sql(
        "credentials",
        "?, ?, ?, ?, ?, ?, NULL, 1",
    ))
    .bind(c.id.to_bytes().to_vec())
    .bind(c.user_id.to_bytes().to_vec())
    .bind("password")
    .bind(c.secret.as_str())
    .bind(nanos(c.created_at))
    .bind(nanos(c.updated_at))
    .execute(old.pool())
    .await
    .unwrap();
    old.close().await;
    let new = SqliteBackend::connect(&url).await.unwrap();
    check(&new, &d).await;
    let legacy: (String, String) =
        sqlx::query_as("SELECT ip, user_agent FROM audit_legacy WHERE reason = 'password'")
            .fetch_one(new.pool())
            .await
            .unwrap();
    assert_eq!(
        legacy,
        (d.audit.ip.clone(), d.audit.user_agent.clone()),
        "old entries are kept"
    );
    new.erase_audit_key(d.user.id, d.audit.at).await.unwrap();
    let scrubbed: (Option<String>, Option<String>, String) =
        sqlx::query_as("SELECT ip, user_agent, detail FROM audit_legacy")
            .fetch_one(new.pool())
            .await
            .unwrap();
    assert_eq!(
        scrubbed,
        (None, None, "{}".into()),
        "erasure blanks old entries too"
    );
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM ciam_schema_version")
        .fetch_one(new.pool())
        .await
        .unwrap();
    assert_eq!(version, SQLITE_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_oldest_schema_with_data_upgrades_to_newest() {
    let url = std::env::var("CIAM_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("CIAM_TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh")
    });
    let mut b = [0u8; 6];
    SystemRandom::new().fill(&mut b).unwrap();
    let schema = format!(
        "ciam_migrate_{}_{}",
        std::process::id(),
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let d = data();
    let old = PostgresBackend::connect_with(
        PostgresOptions::new(&url)
            .schema(&schema)
            .migrate_to_version(OLDEST),
    )
    .await
    .unwrap();
    let u = &d.user;
    sqlx::query(&format!(
        "{}($1, $2, $3, $4, $5, '{{}}', $6, $7, $8)",
        V1_USER.replace("{table}", &format!("\"{schema}\".users"))
    ))
    .bind(u.id.to_bytes().to_vec())
    .bind(u.status.as_str())
    .bind(u.email.as_ref().unwrap().as_str())
    .bind(u.email.as_ref().unwrap().canonical())
    .bind(nanos(u.email_verified_at.unwrap()))
    .bind(nanos(u.created_at))
    .bind(nanos(u.updated_at))
    .bind(1_i64)
    .execute(old.pool())
    .await
    .unwrap();
    let a = &d.audit;
    sqlx::query(&format!(
        "{}($1, $2, $3, $4, $5, $6, $7, $8, '{{\"amr\":[\"pwd\"]}}')",
        V1_AUDIT.replace("{table}", &format!("\"{schema}\".audit"))
    ))
    .bind(a.id.to_bytes().to_vec())
    .bind(nanos(a.at))
    .bind(a.action.as_str())
    .bind(a.outcome.as_str())
    .bind(a.reason.as_str())
    .bind(a.user_id.to_bytes().to_vec())
    .bind(a.ip.as_str())
    .bind(a.user_agent.as_str())
    .execute(old.pool())
    .await
    .unwrap();
    write(&old, &d).await;
    let c = &d.credential;
    sqlx::query(&v1_credential_sql(
        &format!("\"{schema}\".credentials"),
        "$1, $2, $3, $4, $5, $6, NULL, 1",
    ))
    .bind(c.id.to_bytes().to_vec())
    .bind(c.user_id.to_bytes().to_vec())
    .bind("password")
    .bind(c.secret.as_str())
    .bind(nanos(c.created_at))
    .bind(nanos(c.updated_at))
    .execute(old.pool())
    .await
    .unwrap();
    old.close().await;
    let new = PostgresBackend::connect_with(PostgresOptions::new(&url).schema(&schema))
        .await
        .unwrap();
    check(&new, &d).await;
    new.erase_audit_key(d.user.id, d.audit.at).await.unwrap();
    let scrubbed: (Option<String>, Option<String>, String) = sqlx::query_as(&format!(
        "SELECT ip, user_agent, detail FROM \"{schema}\".audit_legacy"
    ))
    .fetch_one(new.pool())
    .await
    .unwrap();
    assert_eq!(
        scrubbed,
        (None, None, "{}".into()),
        "erasure blanks old entries too"
    );
    let version: i64 = sqlx::query_scalar(&format!(
        "SELECT MAX(version) FROM \"{schema}\".ciam_schema_version"
    ))
    .fetch_one(new.pool())
    .await
    .unwrap();
    assert_eq!(version, PG_VERSION);
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(new.pool())
        .await
        .unwrap();
    new.close().await;
}
