//! The quickstart's remembered devices over HTTP: `GET /auth/mfa/devices` lists the browsers
//! an account trusts (never a token) and `DELETE /auth/mfa/devices/{id}` forgets one, so that
//! browser is asked for the second factor again; refused without a session, for another
//! account's device and from another site. Mail is read from the real SMTP sink (see
//! `tests/http.rs` for the set-up).

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::header::ORIGIN;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::*;

async fn delete(c: &Client, s: &Server, path: &str) -> Answer {
    answer(c.delete(format!("{}{path}", s.base)).send().await.unwrap()).await
}

async fn devices(c: &Client, s: &Server) -> Vec<Value> {
    let r = get(c, s, "/auth/mfa/devices").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["devices"].as_array().unwrap().clone()
}

/// The value of the cookie `name` among the answer's `Set-Cookie` headers.
fn cookie_value(r: &Answer, name: &str) -> String {
    r.set_cookies()
        .iter()
        .find_map(|c| c.split(';').next()?.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.set_cookies()))
        .to_owned()
}

/// An account with an authenticator app signs in with "remember this device": the browser is
/// listed once (current, remembered, its User-Agent, no token anywhere in the answer) and
/// skips the code. Refusals: 401 without a session, 404 for another account's device (which
/// stays), 403 for a cross-site DELETE (the device stays). Forgetting it by id answers 204,
/// empties the list (a second DELETE is 404), and the next sign-in from that browser asks for
/// the second factor again. The `/security` page carries the device table its script fills.
#[tokio::test]
async fn remembered_devices_are_listed_and_forgotten_one_by_one() {
    let (s, mut mail) = start().await;
    let email = address("devices");
    let a = browser(&s, "device-a");
    register_and_verify(&a, &s, &mut mail, &email, PASSWORD).await;
    login(&a, &s, &email, PASSWORD).await;
    let (_, codes) = enrol_totp(&a, &s).await;
    post(&a, &s, "/auth/logout", json!({})).await;

    // The second factor, remembering this browser.
    let r = login(&a, &s, &email, PASSWORD).await;
    assert_eq!(r.body["status"], "mfa_required", "{:?}", r.body);
    let ok = post(
        &a,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": r.body["mfa_token"], "recovery_code": codes[0], "remember_device": true}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let device_token = cookie_value(&ok, "ciam_device");
    let session_token = cookie_value(&ok, "ciam_session");

    let r = get(&a, &s, "/auth/mfa/devices").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let text = r.body.to_string();
    assert!(
        !text.contains(&device_token) && !text.contains(&session_token),
        "no token in {text}"
    );
    let listed = r.body["devices"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let device = &listed[0];
    assert_eq!(device["current"], true, "{device}");
    assert_eq!(device["user_agent"], "device-a", "{device}");
    assert!(device["remember_until"].is_string(), "{device}");
    let mut fields: Vec<&str> = device
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "current",
            "expires_at",
            "id",
            "ip",
            "remember_until",
            "user_agent"
        ]
    );
    let id = device["id"].as_str().unwrap().to_owned();

    // Remembered: the next sign-in skips the code.
    post(&a, &s, "/auth/logout", json!({})).await;
    let r = login(&a, &s, &email, PASSWORD).await;
    assert!(r.body["session"].is_object(), "{:?}", r.body);
    assert_eq!(r.body["session"]["aal"], 2);

    // No session: 401, for the list and for the DELETE (sent with the site's Origin).
    let stranger = Client::new();
    let r = answer(
        stranger
            .get(format!("{}/auth/mfa/devices", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert_eq!(r.body["error"], "unauthenticated");
    let r = answer(
        stranger
            .delete(format!("{}/auth/mfa/devices/{id}", s.base))
            .header(ORIGIN, &s.base)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);

    // Another account's device: 404, and it stays.
    let other_email = address("devices.other");
    let b = browser(&s, "device-b");
    register_and_verify(&b, &s, &mut mail, &other_email, PASSWORD).await;
    login(&b, &s, &other_email, PASSWORD).await;
    let theirs = devices(&b, &s).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let their_id = theirs[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(their_id, id);
    let r = delete(&a, &s, &format!("/auth/mfa/devices/{their_id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.body["error"], "not_found");
    let r = delete(&a, &s, "/auth/mfa/devices/not-a-device-id").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(devices(&b, &s).await, theirs);

    // A cross-site DELETE carrying the owner's cookies: 403, and the device stays.
    let r = answer(
        a.delete(format!("{}/auth/mfa/devices/{id}", s.base))
            .header(ORIGIN, "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"], "csrf");
    assert_eq!(devices(&a, &s).await.len(), 1);

    // The /security page holds the table its script fills from the API.
    let (status, html) = page(&a, &s, "/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"id="device-list""#) && html.contains(r#"id="devices-forget-form""#),
        "{html}"
    );
    let (_, script) = page(&a, &s, "/assets/app.js").await;
    assert!(
        script.contains("\"/auth/mfa/devices/\""),
        "the script forgets by id"
    );

    // Forgetting it: 204, gone from the list, and a second time 404.
    let r = delete(&a, &s, &format!("/auth/mfa/devices/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(r.body, Value::Null);
    assert_eq!(devices(&a, &s).await, Vec::<Value>::new());
    let r = delete(&a, &s, &format!("/auth/mfa/devices/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    // The session that forgot it goes on; the other account's device is untouched.
    assert_eq!(get(&a, &s, "/auth/me").await.status, StatusCode::OK);
    assert_eq!(devices(&b, &s).await, theirs);

    // The browser still presents its (revoked) device cookie: the code is asked for again.
    post(&a, &s, "/auth/logout", json!({})).await;
    let r = login(&a, &s, &email, PASSWORD).await;
    assert_eq!(r.body["status"], "mfa_required", "{:?}", r.body);
    assert!(
        r.set_cookies()
            .iter()
            .all(|c| !c.starts_with("ciam_session=")),
        "no session before the second factor"
    );
}
