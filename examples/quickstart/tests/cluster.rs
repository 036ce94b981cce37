//! Two quickstart processes sharing one PostgreSQL database (and, in the second setup, one
//! Redis for sessions and challenges), as behind a load balancer: a session made on A works
//! on B, a sign-out on A is refused on B within 1 s, one address registered on A and B at the
//! same moment makes exactly one account, and a password rehash racing on both instances
//! loses nothing.
//!
//! Needs `CIAM_TEST_POSTGRES_URL` and `CIAM_TEST_REDIS_URL` (set by scripts/test.sh) and
//! `psql`; each test creates its own database and drops it afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::json;
use support::*;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test.sh"))
}

/// A database of its own on the test server, dropped when this value is.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Database {
    fn create(tag: &str) -> Self {
        let admin_url = env("CIAM_TEST_POSTGRES_URL");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "ciam_cluster_{tag}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000
        );
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin_url,
                "-tAc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Starts A and B on one database (and Redis when asked); both answer for A's public URL.
async fn cluster(db: &Database, redis: bool) -> (Server, Server, Mailbox) {
    let a_instance = Instance {
        database_url: Some(db.url.clone()),
        redis_url: redis.then(|| env("CIAM_TEST_REDIS_URL")),
        public_url: None,
    };
    let (a, mail) = start_with(a_instance.clone()).await;
    let b_instance = Instance {
        public_url: Some(a.base.clone()),
        ..a_instance
    };
    let (b, _) = start_with(b_instance).await;
    (a, b, mail)
}

/// A cookie-less request to `/auth/me` on `server` with `cookie`.
async fn me_status(server: &Server, cookie: &str) -> StatusCode {
    me_with_cookie(server, cookie).await.status
}

fn session_cookie(r: &Answer) -> String {
    let set = r
        .headers
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn sessions_are_shared_and_revocations_reach_the_other_instance(redis: bool) {
    let db = Database::create(if redis { "redis" } else { "pg" });
    let (a, b, mut mail) = cluster(&db, redis).await;
    let c = browser(&a, "cluster-test");
    let email = address("cluster");
    // Registered on A, verified through B: the one-time token is shared.
    let r = post(
        &c,
        &a,
        "/auth/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let token = mail
        .wait(&email, "Confirm your e-mail address")
        .await
        .token();
    verify(&c, &b, &token, "email_verified").await;

    // A session made on A works on B.
    let signed_in = login(&c, &a, &email, PASSWORD).await;
    let cookie = session_cookie(&signed_in);
    assert_eq!(me_status(&a, &cookie).await, StatusCode::OK);
    assert_eq!(me_status(&b, &cookie).await, StatusCode::OK);

    // Signed out on A: refused on B within 1 s, although B had the session in its cache.
    let out = post(&c, &a, "/auth/logout", json!({})).await;
    assert!(out.status.is_success(), "{:?}", out.body);
    let start = Instant::now();
    while me_status(&b, &cookie).await != StatusCode::UNAUTHORIZED {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B still accepts a session signed out on A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // "Sign out everywhere else" on B ends A's session for A too.
    let on_a = login(&c, &a, &email, PASSWORD).await;
    let cookie_a = session_cookie(&on_a);
    let c2 = browser(&a, "cluster-test-2");
    let on_b = login(&c2, &b, &email, PASSWORD).await;
    assert_eq!(me_status(&a, &cookie_a).await, StatusCode::OK);
    let r = post(&c2, &b, "/auth/sessions/revoke-others", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let start = Instant::now();
    while me_status(&a, &cookie_a).await != StatusCode::UNAUTHORIZED {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "A still accepts a session revoked on B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(me_status(&b, &session_cookie(&on_b)).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cluster_shares_sessions_and_revocations() {
    sessions_are_shared_and_revocations_reach_the_other_instance(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_redis_cluster_shares_sessions_and_revocations() {
    sessions_are_shared_and_revocations_reach_the_other_instance(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_registered_on_both_at_once_makes_one_account() {
    let db = Database::create("race");
    let (a, b, mut mail) = cluster(&db, false).await;
    for round in 0..5 {
        let email = address(&format!("race{round}"));
        let (ca, cb) = (browser(&a, "race-a"), browser(&a, "race-b"));
        let body = json!({"email": email, "password": PASSWORD});
        let (ra, rb) = tokio::join!(
            post(&ca, &a, "/auth/register", body.clone()),
            post(&cb, &b, "/auth/register", body)
        );
        // The same answer on both, whatever happened underneath.
        assert_eq!(
            (ra.status, rb.status),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
        );
        assert_eq!(ra.body, rb.body);
        // Exactly one account: one verification link and one "you already have an account".
        mail.wait(&email, "Confirm your e-mail address").await;
        mail.wait(&email, "Sign-up attempt").await;
        let count = psql(
            &db.url,
            &format!(
                "SELECT count(*) FROM users WHERE email_canonical = '{}'",
                email.to_lowercase()
            ),
        );
        assert_eq!(count, "1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehash_racing_on_both_instances_loses_nothing() {
    let db = Database::create("rehash");
    let (a, b, mut mail) = cluster(&db, false).await;
    let c = browser(&a, "rehash");
    let email = address("rehash");
    register_and_verify(&c, &a, &mut mail, &email, PASSWORD).await;
    for round in 0..3 {
        // An imported Django PBKDF2 hash of the password (as after a migration): both
        // instances will want to upgrade it to argon2id on the next sign-in.
        let hash = django_pbkdf2(PASSWORD, &format!("salt{round}"));
        let updated = psql(
            &db.url,
            &format!(
                "UPDATE credentials SET secret = '{hash}', version = version + 1 \
                 WHERE user_id = (SELECT id FROM users WHERE email_canonical = '{}') RETURNING version",
                email.to_lowercase()
            ),
        );
        assert!(!updated.is_empty());
        let (ca, cb) = (browser(&a, "rehash-a"), browser(&a, "rehash-b"));
        let (ra, rb) = tokio::join!(
            post(
                &ca,
                &a,
                "/auth/login",
                json!({"email": email, "password": PASSWORD})
            ),
            post(
                &cb,
                &b,
                "/auth/login",
                json!({"email": email, "password": PASSWORD})
            ),
        );
        assert_eq!(
            (ra.status, rb.status),
            (StatusCode::OK, StatusCode::OK),
            "{:?} {:?}",
            ra.body,
            rb.body
        );
        let secret = psql(
            &db.url,
            &format!(
                "SELECT secret FROM credentials WHERE user_id = (SELECT id FROM users WHERE email_canonical = '{}')",
                email.to_lowercase()
            ),
        );
        assert!(secret.starts_with("$argon2id$"), "not upgraded: {secret}");
        // The stored hash still verifies the password on both instances.
        login(&c, &a, &email, PASSWORD).await;
        login(&c, &b, &email, PASSWORD).await;
    }
}

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`, as Django stores it, computed by
/// Python's hashlib (an independent implementation).
fn django_pbkdf2(password: &str, salt: &str) -> String {
    let script = "import hashlib,base64,sys; pw,salt=sys.argv[1],sys.argv[2]; \
                  d=hashlib.pbkdf2_hmac('sha256', pw.encode(), salt.encode(), 1000); \
                  print('pbkdf2_sha256$1000$'+salt+'$'+base64.b64encode(d).decode())";
    let out = Command::new("python3")
        .args(["-c", script, password, salt])
        .output()
        .expect("python3 runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
