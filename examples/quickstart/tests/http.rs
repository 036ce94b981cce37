//! Drives the quickstart binary end to end over HTTP, with mail delivered to a real SMTP sink
//! (aiosmtpd writing a Maildir, started by `scripts/peers/smtp-start.sh`; `scripts/test.sh`
//! starts it and exports `CIAM_TEST_SMTP_PORT` and `CIAM_TEST_SMTP_MAILDIR`).
//!
//! Every test starts its own server on a free port with its own SQLite file, and uses its own
//! random addresses, so tests run in parallel against the one shared sink.

// A test harness: its helpers fail the test by panicking, like the tests themselves (clippy's
// in-test allowances cover only `#[test]` functions, not helpers of an integration-test crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::ORIGIN;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn health_and_pages() {
    let (s, _mail) = start().await;
    let c = browser(&s, "pages");
    let r = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok");

    for path in ["/", "/register", "/login", "/forgot-password"] {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        let html = r.text().await.unwrap();
        assert!(html.starts_with("<!doctype html>"), "{path}");
    }
    // User data is escaped.
    let (status, html) = page(
        &c,
        &s,
        "/reset-password?token=%3Cscript%3Ealert(1)%3C%2Fscript%3E%22",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"));
    let (status, _) = page(&c, &s, "/verify-email").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The account page sends anonymous visitors to sign in.
    let r = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = r.get(format!("{}/account", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let r = c
        .get(format!("{}/assets/app.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Behind one trusted proxy (`CIAM_TRUSTED_PROXY_HOPS=1`): a request that did not come
/// through it (no `X-Forwarded-For`) cannot name its client, so it is refused loudly (500
/// `client_ip_unresolved`) rather than counted under one shared address; one that did is
/// served; and `/healthz` answers either way, since probes reach the process directly.
#[tokio::test]
async fn behind_a_proxy_unforwarded_requests_are_refused_but_probes_pass() {
    let (s, _mail) = start_with_env(Instance::default(), &[("CIAM_TRUSTED_PROXY_HOPS", "1")]).await;
    let c = browser(&s, "proxied");
    let r = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in ["/auth/me", "/login"] {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "client_ip_unresolved", "{path}");
    }
    let forwarded = |path: &str| {
        c.get(format!("{}{path}", s.base))
            .header("X-Forwarded-For", "203.0.113.9")
            .send()
    };
    assert_eq!(forwarded("/login").await.unwrap().status(), StatusCode::OK);
    let r = forwarded("/auth/me").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn registration_verification_sessions_and_logout() {
    let (s, mut mail) = start().await;
    let a = browser(&s, "device-a");
    let email = address("alice");

    // Register, then try to sign in before verifying.
    let r = post(
        &a,
        &s,
        "/auth/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let registered = r.body.clone();
    assert_eq!(registered, json!({"status": "verification_sent"}));
    let first = mail.wait(&email, "Confirm your e-mail address").await;
    let r = post(
        &a,
        &s,
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "verification_required");
    assert!(r.set_cookies().is_empty());
    let _resent = mail.wait(&email, "Confirm your e-mail address").await;

    // The GET page does not consume the token; the POST does, once.
    let token = first.token();
    verify(&a, &s, &token, "email_verified").await;
    let r = post(&a, &s, "/auth/verify-email", json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");

    // Sign in: the cookie's attributes, and no token in the body.
    let r = login(&a, &s, &email, PASSWORD).await;
    let cookies = r.set_cookies();
    assert_eq!(
        cookies.len(),
        2,
        "the session and the trusted-device cookie: {cookies:?}"
    );
    let device = cookies
        .iter()
        .find(|c| c.starts_with("ciam_device="))
        .expect("a trusted-device cookie");
    assert!(
        device.contains("HttpOnly") && device.contains("Max-Age=2592000"),
        "{device}"
    );
    let c = cookies
        .iter()
        .find(|c| c.starts_with("ciam_session="))
        .expect("a session cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"),
        "{c}"
    );
    assert!(!c.contains("Secure") && !c.contains("Domain"), "{c}");
    let token_a = r.cookie_pair().split_once('=').unwrap().1.to_owned();
    assert!(!r.body.to_string().contains(&token_a));
    assert_eq!(r.body["user"]["email"], email);
    assert_eq!(r.body["user"]["email_verified"], true);

    let me = get(&a, &s, "/auth/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], email);
    let (_, home) = page(&a, &s, "/").await;
    assert!(home.contains(&email));

    // A second device: two sessions; revoke it from the first.
    let b = browser(&s, "device-b");
    let rb = login(&b, &s, &email, PASSWORD).await;
    let b_session = rb.body["session"]["id"].as_str().unwrap().to_owned();
    let list = get(&a, &s, "/auth/sessions").await;
    let sessions = list.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions.iter().filter(|x| x["current"] == true).count(), 1);
    let (_, account) = page(&a, &s, "/account").await;
    assert!(account.contains("device-b") && account.contains(&b_session));
    let r = answer(
        a.delete(format!("{}/auth/sessions/{b_session}", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = get(&b, &s, "/auth/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.set_cookies().iter().any(|c| c.contains("Max-Age=0")),
        "the dead cookie is cleared"
    );
    let r = answer(
        a.delete(format!("{}/auth/sessions/{b_session}", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Sign out everywhere else.
    let c3 = browser(&s, "device-c");
    login(&c3, &s, &email, PASSWORD).await;
    let r = post(&a, &s, "/auth/sessions/revoke-others", json!({})).await;
    assert_eq!(r.body, json!({"revoked": 1}));
    assert_eq!(
        get(&c3, &s, "/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );

    // Profile and audit.
    let r = answer(
        a.patch(format!("{}/auth/profile", s.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = answer(
        a.patch(format!("{}/auth/profile", s.base))
            .json(&json!({"shoe_size": 44}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_profile");
    let audit = get(&a, &s, "/auth/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.body["entries"].as_array().unwrap().len() >= 3);

    // Sign out.
    let r = post(&a, &s, "/auth/logout", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        r.set_cookies()[0].starts_with("ciam_session=;")
            && r.set_cookies()[0].contains("Max-Age=0")
    );
    assert_eq!(
        get(&a, &s, "/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_with_cookie(&s, &format!("ciam_session={token_a}"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // A wrong password and an unknown address look the same.
    let wrong = post(
        &a,
        &s,
        "/auth/login",
        json!({"email": email, "password": "not the password at all 123"}),
    )
    .await;
    let unknown = post(
        &a,
        &s,
        "/auth/login",
        json!({"email": address("nobody"), "password": PASSWORD}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body["error"], "invalid_credentials");

    // Registering a taken address answers the same and mails the owner instead.
    let r = post(
        &a,
        &s,
        "/auth/register",
        json!({"email": email, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body, registered);
    let notice = mail.wait(&email, "Sign-up attempt").await;
    assert!(notice.body.contains("already have"), "{notice:?}");
}

#[tokio::test]
async fn password_reset_and_change() {
    let (s, mut mail) = start().await;
    let a = browser(&s, "device-a");
    let email = address("bob");
    register_and_verify(&a, &s, &mut mail, &email, PASSWORD).await;
    let old = login(&a, &s, &email, PASSWORD).await.cookie_pair();

    // Forgot: the same answer for an unknown address, and no mail to it.
    let nobody = address("nobody");
    let unknown = post(&a, &s, "/auth/password/forgot", json!({"email": nobody})).await;
    let known = post(&a, &s, "/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.body, known.body);
    let token = mail.wait(&email, "Reset your").await.token();

    let (status, html) = page(&a, &s, &format!("/reset-password?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&token));

    // A refused password leaves the token usable.
    let r = post(
        &a,
        &s,
        "/auth/password/reset",
        json!({"token": token, "password": "too short"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "weak_password");
    let r = post(
        &a,
        &s,
        "/auth/password/reset",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    mail.wait(&email, "password was changed").await;

    // Every old session ended; the old password is dead, the new one works; no token reuse.
    assert_eq!(
        me_with_cookie(&s, &old).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&a, &s, "/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = post(
        &a,
        &s,
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let before_change = login(&a, &s, &email, NEW_PASSWORD).await.cookie_pair();
    let r = post(
        &a,
        &s,
        "/auth/password/reset",
        json!({"token": token, "password": NEWER_PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");

    // Change password: the current one is checked, the cookie rotates, other sessions end.
    let b = browser(&s, "device-b");
    login(&b, &s, &email, NEW_PASSWORD).await;
    let body =
        json!({"current_password": "definitely not my password", "new_password": NEWER_PASSWORD});
    let r = post(&a, &s, "/auth/password/change", body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_credentials");
    let body = json!({"current_password": NEW_PASSWORD, "new_password": NEWER_PASSWORD});
    let r = post(&a, &s, "/auth/password/change", body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let rotated = r.cookie_pair();
    assert_ne!(rotated, before_change);
    assert_eq!(get(&a, &s, "/auth/me").await.status, StatusCode::OK);
    assert_eq!(
        me_with_cookie(&s, &before_change).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&b, &s, "/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    mail.wait(&email, "password was changed").await;
    login(&b, &s, &email, NEWER_PASSWORD).await;

    mail.assert_none(&nobody, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn email_change() {
    let (s, mut mail) = start().await;
    let a = browser(&s, "device-a");
    let old = address("carol");
    let new = address("carol.new");
    register_and_verify(&a, &s, &mut mail, &old, PASSWORD).await;
    login(&a, &s, &old, PASSWORD).await;

    let r = post(
        &a,
        &s,
        "/auth/email/change",
        json!({"email": new, "current_password": "wrong password entirely!"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post(
        &a,
        &s,
        "/auth/email/change",
        json!({"email": new, "current_password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body, json!({"status": "confirmation_sent"}));
    let token = mail
        .wait(&new, "Confirm your new e-mail address")
        .await
        .token();
    mail.wait(&old, "E-mail change requested").await;
    // Nothing changed yet.
    assert_eq!(get(&a, &s, "/auth/me").await.body["user"]["email"], old);

    verify(&a, &s, &token, "email_changed").await;
    mail.wait(&old, "e-mail address was changed").await;
    assert_eq!(get(&a, &s, "/auth/me").await.body["user"]["email"], new);

    let b = browser(&s, "device-b");
    let r = login(&b, &s, &new, PASSWORD).await;
    assert_eq!(r.body["user"]["email"], new);
    let r = post(
        &b,
        &s,
        "/auth/login",
        json!({"email": old, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_csrf_and_tampered_cookies() {
    let (s, mut mail) = start().await;
    let a = browser(&s, "device-a");

    // Password policy, with a message the user can act on.
    let r = post(
        &a,
        &s,
        "/auth/register",
        json!({"email": address("dan"), "password": "short pass"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "weak_password");
    assert!(!r.body["message"].as_str().unwrap().is_empty());
    let r = post(
        &a,
        &s,
        "/auth/register",
        json!({"email": "dolphinkeeper@example.com", "password": "dolphinkeeper forever and ever"}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a password containing the address is refused"
    );
    assert_eq!(r.body["error"], "weak_password");

    // Malformed address and malformed JSON.
    let r = post(
        &a,
        &s,
        "/auth/register",
        json!({"email": "not an address", "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_identifier");
    let r = a
        .post(format!("{}/auth/login", s.base))
        .header("content-type", "application/json")
        .body("{\"email\": \"x@example.com\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json");

    // CSRF: no Origin (and no Sec-Fetch-Site), or a foreign Origin, is refused.
    let email = address("erin");
    register_and_verify(&a, &s, &mut mail, &email, PASSWORD).await;
    let plain = Client::new();
    let creds = json!({"email": email, "password": PASSWORD});
    let r = answer(
        plain
            .post(format!("{}/auth/login", s.base))
            .json(&creds)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "csrf");
    let r = plain
        .post(format!("{}/auth/login", s.base))
        .header(ORIGIN, "http://evil.example")
        .json(&creds)
        .send()
        .await;
    assert_eq!(r.unwrap().status(), StatusCode::FORBIDDEN);

    // A tampered cookie authenticates nobody and is cleared.
    let pair = login(&a, &s, &email, PASSWORD).await.cookie_pair();
    let (name, value) = pair.split_once('=').unwrap();
    let mut chars: Vec<char> = value.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{name}={}", chars.into_iter().collect::<String>());
    let r = me_with_cookie(&s, &tampered).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "unauthenticated");
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("ciam_session=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(me_with_cookie(&s, &pair).await.status, StatusCode::OK);
}

fn run_expecting_failure(database_url: &str, dir: &Path) -> String {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .env("CIAM_BIND", format!("127.0.0.1:{}", free_port()))
        .env("CIAM_DATABASE_URL", database_url)
        .env_remove("CIAM_SMTP_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("quickstart kept running with database {database_url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{database_url}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn unusable_database_exits_with_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("ciam.db");
    let stderr = run_expecting_failure(
        &format!("sqlite://{}?mode=rwc", missing.display()),
        dir.path(),
    );
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(stderr.contains("no-such-dir"), "{stderr}");

    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, vec![0x5a_u8; 8192]).unwrap();
    let stderr = run_expecting_failure(
        &format!("sqlite://{}?mode=rwc", corrupt.display()),
        dir.path(),
    );
    assert!(stderr.contains("cannot open the database"), "{stderr}");
}
