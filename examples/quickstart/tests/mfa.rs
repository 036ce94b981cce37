//! The quickstart's second factors, passwordless sign-in and throttling over HTTP, with mail
//! read from the real SMTP sink (see `tests/http.rs` for the set-up).

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ciam::otp::OtpAuthUri;
use reqwest::StatusCode;
use serde_json::json;
use support::*;

const PASSWORD: &str = "correct horse battery staple";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
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
