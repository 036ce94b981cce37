//! Step-up answers: one body shape (`aal` and `max_age`) whether the extractor or the
//! engine asks, and the engine's second-factor gate on e-mail change and account deletion
//! over HTTP.

use ciam_core::MfaConfig;
use ciam_core::clock::{Clock as _, ManualClock};
use ciam_core::otp::{OtpAuthUri, SealingKey, SecretBox};
use ciam_core::session::Aal;
use http::Method;

use super::*;

/// An engine with second factors, on `clock`.
fn mfa_engine(clock: &ManualClock) -> Ciam {
    let mut policy = Policy::default();
    policy.allow_unverified_sign_in = true;
    let sealing = SealingKey::new("k1", [7; 32]).unwrap();
    Ciam::builder()
        .backend(Arc::new(MemoryBackend::new()))
        .public_url(HTTP_URL)
        .policy(policy)
        .clock(Arc::new(clock.clone()))
        .mfa(MfaConfig::new(SecretBox::new(sealing).unwrap()))
        .build()
        .unwrap()
}

async fn call(app: &Router, method: Method, path: &str, cookie: &str, body: Value) -> Response {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::ORIGIN, HTTP_URL)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    app.clone().oneshot(req).await.unwrap()
}

/// Asserts a 401 step-up answer asking for `aal` within `max_age` seconds.
async fn assert_step_up(res: Response, aal: u8, max_age: Value) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = body_json(res).await;
    // Sorted: serde_json keeps insertion order when another crate of the build turns on its
    // `preserve_order` feature (a workspace build does), and sorts keys otherwise.
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["aal", "error", "max_age", "message"], "{body}");
    assert_eq!(body["error"], "step_up_required");
    assert_eq!(body["aal"], aal, "{body}");
    assert_eq!(body["max_age"], max_age, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn every_step_up_answer_has_the_same_shape() {
    let res = ApiError::from(Error::AssuranceRequired {
        aal: Aal::Aal2,
        max_age: Some(time::Duration::minutes(10)),
    })
    .into_response();
    assert_step_up(res, 2, json!(600)).await;
    let res = ApiError::from(Error::AssuranceRequired {
        aal: Aal::Aal3,
        max_age: None,
    })
    .into_response();
    assert_step_up(res, 3, Value::Null).await;
    // Part of a second still has to be waited for: rounded up.
    let res = ApiError::from(Error::AssuranceRequired {
        aal: Aal::Aal1,
        max_age: Some(time::Duration::milliseconds(1500)),
    })
    .into_response();
    assert_step_up(res, 1, json!(2)).await;
    // The current password or any fresh sign-in.
    let res = ApiError::from(Error::StepUpRequired).into_response();
    assert_step_up(res, 1, Value::Null).await;
    // The extractor.
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let session = session_cookie(&sign_in(&app, HTTP_URL, "shape@example.com").await);
    let res = call(&app, Method::GET, "/aal2", &session, Value::Null).await;
    assert_step_up(res, 2, Value::Null).await;
}

/// An account with a second factor: a session that did not use it (signed in with the
/// password before enrolling) is asked for AAL2 within the recent-auth window on e-mail
/// change and account deletion, and passes once it stepped up. A session older than the
/// window is asked for a fresh sign-in.
#[tokio::test]
async fn sensitive_changes_ask_for_the_second_factor_over_http() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let ciam = mfa_engine(&clock);
    let app = app(&ciam);
    let email = "stepup@example.com";
    let aal1 = session_cookie(&sign_in(&app, HTTP_URL, email).await);

    let res = call(
        &app,
        Method::POST,
        "/auth/mfa/totp/enroll",
        &aal1,
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let enrolment = body_json(res).await;
    let uri = OtpAuthUri::parse(enrolment["otpauth_uri"].as_str().unwrap()).unwrap();
    let now = u64::try_from(clock.now().unix_timestamp()).unwrap();
    let code = uri.config().code_at(uri.secret(), now);
    let res = call(
        &app,
        Method::POST,
        "/auth/mfa/totp/confirm",
        &aal1,
        json!({"enrolment": enrolment["enrolment"], "code": code}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let recovery = body_json(res).await["recovery_codes"][0].clone();

    // The enrolling session is recent but AAL1.
    let max_age = json!(ciam.policy().recent_auth_max_age.whole_seconds());
    let change = json!({"email": "new.stepup@example.com"});
    let res = call(
        &app,
        Method::POST,
        "/auth/email/change",
        &aal1,
        change.clone(),
    )
    .await;
    assert_step_up(res, 2, max_age.clone()).await;
    let res = call(&app, Method::DELETE, "/auth/account", &aal1, json!({})).await;
    assert_step_up(res, 2, max_age.clone()).await;

    // Step up: sign in again with the second factor.
    let res = app
        .clone()
        .oneshot(post_json(
            "/auth/login",
            Some(HTTP_URL),
            json!({"email": email, "password": PASSWORD}),
        ))
        .await
        .unwrap();
    let pending = body_json(res).await;
    assert_eq!(pending["status"], "mfa_required", "{pending}");
    let res = app
        .clone()
        .oneshot(post_json(
            "/auth/mfa/challenge",
            Some(HTTP_URL),
            json!({"mfa_token": pending["mfa_token"], "recovery_code": recovery}),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let aal2 = session_cookie(&res);
    assert_eq!(body_json(res).await["session"]["aal"], 2);
    let res = call(&app, Method::GET, "/auth/me", &aal2, json!({})).await;
    assert_eq!(body_json(res).await["session"]["aal"], 2);
    let res = call(&app, Method::POST, "/auth/email/change", &aal2, change).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    // Past the recent-auth window even AAL2 needs a fresh sign-in (or the password).
    clock.advance(ciam.policy().recent_auth_max_age + time::Duration::seconds(1));
    let res = call(&app, Method::DELETE, "/auth/account", &aal2, json!({})).await;
    assert_step_up(res, 1, Value::Null).await;
    let res = call(
        &app,
        Method::DELETE,
        "/auth/account",
        &aal2,
        json!({"current_password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}
