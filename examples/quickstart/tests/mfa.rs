//! The quickstart's second factors, passwordless sign-in and throttling over HTTP, with mail
//! read from the real SMTP sink (see `tests/http.rs` for the set-up).

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use ciam::otp::OtpAuthUri;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::*;

const PASSWORD: &str = "correct horse battery staple";

/// The quickstart's recent-authentication window (the engine's default), in seconds.
const RECENT_AUTH_SECONDS: u64 = 600;

async fn delete(c: &Client, s: &Server, path: &str, body: Value) -> Answer {
    answer(
        c.delete(format!("{}{path}", s.base))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Asserts a 401 step-up answer asking for assurance level `aal` within `max_age` seconds
/// (`None`: no age named).
fn assert_step_up(r: &Answer, aal: u8, max_age: Option<u64>) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert_eq!(r.body["error"], "step_up_required", "{:?}", r.body);
    assert_eq!(r.body["aal"], aal, "{:?}", r.body);
    assert_eq!(r.body["max_age"], json!(max_age), "{:?}", r.body);
}

/// Signs in, waiting out the delays (429 with `Retry-After`) that throttling imposes, at
/// most `limit` in all; returns the first answer that is not a delay.
async fn login_waiting(
    c: &Client,
    s: &Server,
    email: &str,
    password: &str,
    limit: Duration,
) -> Answer {
    let started = std::time::Instant::now();
    loop {
        let r = post(
            c,
            s,
            "/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
        if r.status != StatusCode::TOO_MANY_REQUESTS {
            return r;
        }
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(
            started.elapsed() + Duration::from_secs(wait) <= limit,
            "still delayed after {:?} (Retry-After {wait})",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// The digits after "code is " in a mail.
fn code_in(mail: &Mail) -> String {
    let start = mail.body.find("code is ").expect("a code in the mail") + "code is ".len();
    mail.body[start..].chars().take(6).collect()
}

/// TOTP enrolment with the QR code and otpauth URI, recovery codes shown once, sign-in that
/// asks for the second factor (no session before it), a wrong code refused, a recovery code
/// that works once, a TOTP code in the next time step, and "remember this device".
#[tokio::test]
async fn totp_enrolment_and_second_factor_sign_in() {
    let (s, mut mail) = start().await;
    let email = address("totp");
    let a = browser(&s, "device-a");
    register_and_verify(&a, &s, &mut mail, &email, PASSWORD).await;
    login(&a, &s, &email, PASSWORD).await;

    let e = post(&a, &s, "/auth/mfa/totp/enroll", json!({})).await;
    assert_eq!(e.status, StatusCode::OK, "{:?}", e.body);
    assert!(e.body["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert!(!e.body["qr_png"].as_str().unwrap().is_empty());
    let uri = OtpAuthUri::parse(e.body["otpauth_uri"].as_str().unwrap()).unwrap();
    assert_eq!(uri.account(), email);
    assert_eq!(uri.issuer(), Some("ciam quickstart"));
    let enrolment = e.body["enrolment"].as_str().unwrap().to_owned();
    let wrong = post(
        &a,
        &s,
        "/auth/mfa/totp/confirm",
        json!({"enrolment": enrolment, "code": "000000"}),
    )
    .await;
    let code = uri.config().code_at(uri.secret(), unix_now());
    if code != "000000" {
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{:?}", wrong.body);
    }
    let confirmed = post(
        &a,
        &s,
        "/auth/mfa/totp/confirm",
        json!({"enrolment": enrolment, "code": code}),
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    let codes: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let status = get(&a, &s, "/auth/mfa").await;
    assert_eq!(
        status.body,
        json!({"totp": true, "recovery_codes_left": 10})
    );

    // A new browser: the password alone gives no session.
    let b = browser(&s, "device-b");
    let r = login(&b, &s, &email, PASSWORD).await;
    assert_eq!(r.body["status"], "mfa_required", "{:?}", r.body);
    assert_eq!(r.body["factors"], json!(["totp", "recovery_code"]));
    // The account's own factor, not the risk policy, asks: nothing to explain.
    assert_eq!(r.body["reason"], Value::Null, "{:?}", r.body);
    assert!(
        r.set_cookies().is_empty(),
        "no cookie before the second factor"
    );
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let bad = post(
        &b,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": token, "code": "12345"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.body["error"], "invalid_code");
    let ok = post(
        &b,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": token, "recovery_code": codes[3].to_uppercase()}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["session"]["aal"], 2);
    assert_eq!(
        ok.body["session"]["acr"],
        "http://idmanagement.gov/ns/assurance/aal/2"
    );
    assert_eq!(ok.body["session"]["amr"], json!(["pwd", "otp", "mfa"]));
    let me = get(&b, &s, "/auth/me").await;
    assert_eq!(me.status, StatusCode::OK);

    // The same recovery code never works twice.
    let c = browser(&s, "device-c");
    let r = login(&c, &s, &email, PASSWORD).await;
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let again = post(
        &c,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": token, "recovery_code": codes[3]}),
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

    // A TOTP code of the next time step (the enrolment used this one), remembering the device.
    let next_step = (unix_now() / 30 + 1) * 30;
    tokio::time::sleep(Duration::from_secs(
        next_step.saturating_sub(unix_now()) + 1,
    ))
    .await;
    let code = uri.config().code_at(uri.secret(), unix_now());
    let ok = post(
        &c,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": token, "code": code, "remember_device": true}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert!(
        ok.set_cookies()
            .iter()
            .any(|c| c.starts_with("ciam_device=")),
        "remembering the device sets its cookie"
    );
    post(&c, &s, "/auth/logout", json!({})).await;
    let r = login(&c, &s, &email, PASSWORD).await;
    assert!(
        r.body["session"].is_object(),
        "a remembered device skips the code: {:?}",
        r.body
    );
    assert_eq!(r.body["session"]["aal"], 2);

    // Forgetting devices brings the second factor back.
    let forgot = post(&c, &s, "/auth/devices/forget", json!({})).await;
    assert_eq!(forgot.status, StatusCode::OK);
    post(&c, &s, "/auth/logout", json!({})).await;
    let r = login(&c, &s, &email, PASSWORD).await;
    assert_eq!(r.body["status"], "mfa_required");
}

/// A magic link signs in only the browser that asked; a sign-in code likewise; unknown
/// addresses get the same answer and no mail.
#[tokio::test]
async fn magic_links_and_codes() {
    let (s, mut mail) = start().await;
    let email = address("magic");
    let a = browser(&s, "asker");
    register_and_verify(&a, &s, &mut mail, &email, PASSWORD).await;

    let r = post(&a, &s, "/auth/magic-link/start", json!({"email": email})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body, json!({"status": "link_sent"}));
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("ciam_binding="))
    );
    let link = mail.wait(&email, "sign-in link").await;
    assert!(link.body.contains("/magic-link?token="), "{}", link.body);
    let token = link.token();

    // A mail scanner (no cookies) and then the asker's own browser open the link with GET:
    // a page with a confirm button that POSTs the token; neither uses the link up.
    let scanner = Client::new();
    for opener in [&scanner, &a] {
        let (status, html) = page(opener, &s, &format!("/magic-link?token={token}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("data-api=\"/auth/magic-link/confirm\"") && html.contains(&token),
            "{html}"
        );
    }

    // Another browser (a forwarded mail) cannot use it, and does not burn it.
    let other = browser(&s, "forwarded");
    let r = post(
        &other,
        &s,
        "/auth/magic-link/confirm",
        json!({"token": token}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");
    let r = post(&a, &s, "/auth/magic-link/confirm", json!({"token": token})).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "after the GETs, the POST signs in: {:?}",
        r.body
    );
    assert_eq!(r.body["session"]["amr"], json!(["email"]));
    let r = post(&a, &s, "/auth/magic-link/confirm", json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "single use");

    // A mailed code.
    let b = browser(&s, "coder");
    let r = post(&b, &s, "/auth/otp/start", json!({"email": email})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let code = code_in(&mail.wait(&email, "sign-in code").await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = post(&b, &s, "/auth/otp/verify", json!({"code": wrong})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_code");
    let r = post(&b, &s, "/auth/otp/verify", json!({"code": code})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // An unknown address: the same answers, no mail.
    let stranger = address("nobody");
    let c = browser(&s, "prober");
    let r = post(&c, &s, "/auth/magic-link/start", json!({"email": stranger})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body, json!({"status": "link_sent"}));
    let r = post(&c, &s, "/auth/otp/start", json!({"email": stranger})).await;
    assert_eq!(r.body, json!({"status": "code_sent"}));
    let r = post(&c, &s, "/auth/otp/verify", json!({"code": "123456"})).await;
    assert_eq!(r.body["error"], "invalid_code");
    mail.assert_none(&stranger, Duration::from_millis(300))
        .await;
}

/// Failed sign-ins meet a delay (429 with Retry-After) before any password is checked; the
/// owner's browser, which signed in before, is not delayed.
#[tokio::test]
async fn failed_sign_ins_are_delayed_without_locking_out_the_owner() {
    let (s, mut mail) = start().await;
    let email = address("throttle");
    let owner = browser(&s, "owner");
    register_and_verify(&owner, &s, &mut mail, &email, PASSWORD).await;
    login(&owner, &s, &email, PASSWORD).await;
    post(&owner, &s, "/auth/logout", json!({})).await;

    let attacker = browser(&s, "attacker");
    let mut limited = None;
    for i in 0..8 {
        let r = post(
            &attacker,
            &s,
            "/auth/login",
            json!({"email": email, "password": format!("wrong guess number {i}")}),
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    let (after, r) = limited.expect("the attempts are delayed");
    assert!(
        after >= 5,
        "five free failures first, delayed after {after}"
    );
    assert_eq!(r.body["error"], "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Even the right password waits.
    let r = post(
        &attacker,
        &s,
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The owner's browser holds the trusted-device cookie and gets in.
    let r = login(&owner, &s, &email, PASSWORD).await;
    assert!(r.body["session"].is_object(), "{:?}", r.body);
}

/// An account with a second factor: a session that did not use it (the password sign-in
/// that enrolled it, AAL1) is asked to step up (401 `step_up_required`, `aal` 2 within the
/// recent-auth window) before changing the e-mail address or deleting the account, even with
/// the current password; after signing in again with the second factor it may. Regenerating
/// the recovery codes voids the old set.
#[tokio::test]
async fn step_up_before_changing_the_email_or_deleting_the_account() {
    let (s, mut mail) = start().await;
    let email = address("stepup");
    let a = browser(&s, "device-a");
    register_and_verify(&a, &s, &mut mail, &email, PASSWORD).await;
    let r = login(&a, &s, &email, PASSWORD).await;
    assert_eq!(r.body["session"]["aal"], 1);
    let (_uri, old_codes) = enrol_totp(&a, &s).await;
    assert_eq!(old_codes.len(), 10);

    let new_email = address("stepup.new");
    let change = json!({"email": new_email});
    let r = post(&a, &s, "/auth/email/change", change.clone()).await;
    assert_step_up(&r, 2, Some(RECENT_AUTH_SECONDS));
    let r = delete(&a, &s, "/auth/account", json!({})).await;
    assert_step_up(&r, 2, Some(RECENT_AUTH_SECONDS));
    // The password proves the first factor again, not the second.
    let r = post(
        &a,
        &s,
        "/auth/email/change",
        json!({"email": new_email, "current_password": PASSWORD}),
    )
    .await;
    assert_step_up(&r, 2, Some(RECENT_AUTH_SECONDS));
    let r = delete(
        &a,
        &s,
        "/auth/account",
        json!({"current_password": PASSWORD}),
    )
    .await;
    assert_step_up(&r, 2, Some(RECENT_AUTH_SECONDS));
    assert_eq!(
        get(&a, &s, "/auth/me").await.status,
        StatusCode::OK,
        "still signed in"
    );
    mail.assert_none(&new_email, Duration::from_millis(300))
        .await;

    // Step up: sign in again in the same browser, with a recovery code.
    let r = login(&a, &s, &email, PASSWORD).await;
    assert_eq!(r.body["status"], "mfa_required", "{:?}", r.body);
    let r = post(
        &a,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": r.body["mfa_token"], "recovery_code": old_codes[0]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["session"]["aal"], 2);

    // New recovery codes: shown once, and the old set stops working.
    let r = post(&a, &s, "/auth/mfa/recovery-codes", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let new_codes = codes_of(&r.body);
    assert_eq!(new_codes.len(), 10);
    assert!(
        new_codes.iter().all(|c| !old_codes.contains(c)),
        "{new_codes:?} {old_codes:?}"
    );
    let status = get(&a, &s, "/auth/mfa").await;
    assert_eq!(
        status.body,
        json!({"totp": true, "recovery_codes_left": 10})
    );
    let b = browser(&s, "device-b");
    let r = login(&b, &s, &email, PASSWORD).await;
    assert_eq!(r.body["status"], "mfa_required", "{:?}", r.body);
    let token = r.body["mfa_token"].clone();
    let old = post(
        &b,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": token, "recovery_code": old_codes[1]}),
    )
    .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{:?}", old.body);
    assert_eq!(old.body["error"], "invalid_code");
    let new = post(
        &b,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": token, "recovery_code": new_codes[1]}),
    )
    .await;
    assert_eq!(new.status, StatusCode::OK, "{:?}", new.body);
    let status = get(&b, &s, "/auth/mfa").await;
    assert_eq!(status.body["recovery_codes_left"], 9);

    // Stepped up: the change and the deletion go through.
    let r = post(&a, &s, "/auth/email/change", change).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    mail.wait(&new_email, "Confirm your new e-mail address")
        .await;
    let r = delete(&a, &s, "/auth/account", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = post(
        &a,
        &s,
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}

/// Failed attempts on an account make the risk policy ask a new browser for a second factor,
/// and the answer says why in words the user can read; a code mailed to the owner answers it.
#[tokio::test]
async fn a_risk_challenge_is_explained_and_answered_with_a_mailed_code() {
    let (s, mut mail) = start().await;
    let email = address("risky");
    let owner = browser(&s, "owner");
    register_and_verify(&owner, &s, &mut mail, &email, PASSWORD).await;
    login(&owner, &s, &email, PASSWORD).await;

    let b = browser(&s, "new-browser");
    for i in 0..5 {
        let r = post(
            &b,
            &s,
            "/auth/login",
            json!({"email": email, "password": format!("not the password {i}")}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    let r = login_waiting(&b, &s, &email, PASSWORD, Duration::from_secs(30)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "mfa_required", "{:?}", r.body);
    assert_eq!(
        r.body["reason"],
        "There have been several unsuccessful attempts to sign in to this account, so we need to confirm it's you.",
        "{:?}",
        r.body
    );
    let factors = r.body["factors"].as_array().unwrap();
    assert!(factors.contains(&json!("email_code")), "{factors:?}");
    assert!(
        r.set_cookies()
            .iter()
            .all(|c| !c.starts_with("ciam_session="))
    );
    let code = code_in(&mail.wait(&email, "sign-in code").await);
    let ok = post(
        &b,
        &s,
        "/auth/mfa/challenge",
        json!({"mfa_token": r.body["mfa_token"], "email_code": code}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert!(ok.body["session"].is_object(), "{:?}", ok.body);
}
