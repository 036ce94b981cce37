//! Tests of the layer, extractors and router through `tower::ServiceExt::oneshot`.

mod client_ip;
mod step_up;
mod stuffing_replay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::connect_info::MockConnectInfo;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ciam_core::{Ciam, Error, ErrorKind, Policy};
use ciam_storage::memory::MemoryBackend;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    ApiError, Authenticated, CiamLayer, Json, MaybeAuthenticated, RequireAal, router, status_for,
};

const PASSWORD: &str = "correct horse battery staple 42";
pub(crate) const HTTP_URL: &str = "http://localhost:3000";
const HTTPS_URL: &str = "https://id.example";

/// The TCP peer of the test requests (TEST-NET-3, RFC 5737): a public client address.
pub(crate) const PEER: &str = "203.0.113.10:40000";

/// The layer to install outside [`CiamLayer`] so that `oneshot` requests have the TCP peer
/// a server started with `into_make_service_with_connect_info` would give them.
pub(crate) fn peer() -> MockConnectInfo<SocketAddr> {
    MockConnectInfo(PEER.parse().unwrap())
}

pub(crate) fn engine(public_url: &str) -> Ciam {
    builder(public_url).build().unwrap()
}

/// The engine of the tests before it is built: an in-memory store, and sign-in allowed
/// without following the mailed link.
fn builder(public_url: &str) -> ciam_core::CiamBuilder {
    let mut policy = Policy::default();
    policy.allow_unverified_sign_in = true;
    Ciam::builder()
        .backend(Arc::new(MemoryBackend::new()))
        .public_url(public_url)
        .policy(policy)
}

async fn whoami(MaybeAuthenticated(auth): MaybeAuthenticated) -> String {
    auth.map_or_else(|| "anonymous".to_owned(), |a| a.user_id.to_string())
}

async fn echo(Json(v): Json<Value>) -> Json<Value> {
    Json(v)
}

fn app(ciam: &Ciam) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route(
            "/private",
            get(|Authenticated(a): Authenticated| async move { a.user_id.to_string() }),
        )
        .route("/echo", post(echo))
        .route(
            "/aal1",
            get(|RequireAal(a): RequireAal<1>| async move { a.aal.level().to_string() }),
        )
        .route(
            "/aal2",
            get(|RequireAal(a): RequireAal<2>| async move { a.aal.level().to_string() }),
        )
        .nest("/auth", router(ciam.clone()))
        .layer(CiamLayer::new(ciam.clone()))
        .layer(peer())
}

fn post_json(uri: &str, origin: Option<&str>, body: Value) -> Request<Body> {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

pub(crate) async fn body_json(res: Response) -> Value {
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Registers and signs in `email`; returns the login response.
pub(crate) async fn sign_in(app: &Router, origin: &str, email: &str) -> Response {
    let creds = json!({"email": email, "password": PASSWORD});
    let res = app
        .clone()
        .oneshot(post_json("/auth/register", Some(origin), creds.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(body_json(res).await, json!({"status": "verification_sent"}));
    let res = app
        .clone()
        .oneshot(post_json("/auth/login", Some(origin), creds))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The `name=value` pair of the session cookie a sign-in set.
pub(crate) fn session_cookie(res: &Response) -> String {
    set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with("ciam_session="))
        .map(|c| cookie_pair(&c))
        .unwrap()
}

#[tokio::test]
async fn csrf_accepts_same_origin_and_refuses_the_rest() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let logout = |headers: &[(&str, &str)]| {
        let mut b = Request::post("/auth/logout");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    };
    let cases: &[(&[(&str, &str)], StatusCode)] = &[
        (&[("origin", HTTP_URL)], StatusCode::NO_CONTENT),
        (
            &[("origin", "HTTP://LOCALHOST:3000")],
            StatusCode::NO_CONTENT,
        ),
        (&[("sec-fetch-site", "same-origin")], StatusCode::NO_CONTENT),
        (&[("sec-fetch-site", "none")], StatusCode::NO_CONTENT),
        (&[("origin", "http://evil.example")], StatusCode::FORBIDDEN),
        (
            &[("origin", "http://localhost:3001")],
            StatusCode::FORBIDDEN,
        ),
        (&[("origin", "null")], StatusCode::FORBIDDEN),
        (
            &[
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (&[("sec-fetch-site", "cross-site")], StatusCode::FORBIDDEN),
        (&[("sec-fetch-site", "same-site")], StatusCode::FORBIDDEN),
        (&[], StatusCode::FORBIDDEN),
    ];
    for (headers, expected) in cases {
        let res = app.clone().oneshot(logout(headers)).await.unwrap();
        assert_eq!(res.status(), *expected, "{headers:?}");
        if *expected == StatusCode::FORBIDDEN {
            assert_eq!(body_json(res).await["error"], "csrf");
        }
    }
    for method in ["PUT", "PATCH", "DELETE"] {
        let req = Request::builder()
            .method(method)
            .uri("/auth/profile")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app.clone().oneshot(req).await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{method}"
        );
    }
    // Safe methods need no origin.
    let res = app
        .clone()
        .oneshot(Request::get("/whoami").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The check can be turned off.
    let open = Router::new()
        .route("/x", post(|| async { "ok" }))
        .layer(CiamLayer::new(ciam).csrf(false))
        .layer(peer());
    let res = open
        .oneshot(Request::post("/x").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn cookie_attributes_over_http() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let res = sign_in(&app, HTTP_URL, "alice@example.com").await;
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let cookies = set_cookies(&res);
    assert_eq!(
        cookies.len(),
        2,
        "the session and the trusted-device cookie"
    );
    let device = cookies
        .iter()
        .find(|c| c.starts_with("ciam_device="))
        .expect("a trusted-device cookie on the first sign-in");
    for attribute in [
        "; HttpOnly",
        "; SameSite=Lax",
        "; Path=/",
        "; Max-Age=2592000",
    ] {
        assert!(device.contains(attribute), "{device}");
    }
    let c = cookies
        .iter()
        .find(|c| c.starts_with("ciam_session="))
        .expect("a session cookie");
    assert!(c.starts_with("ciam_session="), "{c}");
    assert!(c.contains("; HttpOnly"), "{c}");
    assert!(c.contains("; SameSite=Lax"), "{c}");
    assert!(c.contains("; Path=/"), "{c}");
    assert!(!c.contains("Secure"), "{c}");
    assert!(!c.contains("Domain"), "{c}");
    let max_age: i64 = c
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 29 * 86_400 && max_age <= 30 * 86_400, "{max_age}");
    // The token is only in the cookie, never in the body.
    let token = cookie_pair(c).split_once('=').unwrap().1.to_owned();
    let body = body_json(res).await;
    assert!(!body.to_string().contains(&token));
    assert_eq!(body["user"]["email"], "alice@example.com");

    // The cookie authenticates.
    let req = Request::get("/auth/me")
        .header(header::COOKIE, cookie_pair(c))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookies(&res).is_empty());
    let me = body_json(res).await;
    assert_eq!(me["user"]["email"], "alice@example.com");
    assert_eq!(me["user"]["email_verified"], false);
    // The session as the sign-in described it: the level is a number here too.
    assert_eq!(me["session"]["aal"], 1);
    assert_eq!(me["session"]["aal"], body["session"]["aal"]);
    assert_eq!(me["session"]["amr"], json!(["pwd"]));
    assert_eq!(me["session"]["session_id"], body["session"]["id"]);
    assert_eq!(me["session"]["user_id"], me["user"]["id"]);
}

#[tokio::test]
async fn cookie_attributes_over_https() {
    let ciam = engine(HTTPS_URL);
    let app = app(&ciam);
    let res = sign_in(&app, HTTPS_URL, "bob@example.com").await;
    let cookies = set_cookies(&res);
    let c = &cookies[0];
    assert!(c.starts_with("__Host-ciam_session="), "{c}");
    assert!(c.contains("; Secure"), "{c}");
    assert!(
        c.contains("; HttpOnly") && c.contains("; SameSite=Lax") && c.contains("; Path=/"),
        "{c}"
    );
    assert!(!c.contains("Domain"), "{c}");
    // Logout clears it with the same attributes.
    let req = Request::post("/auth/logout")
        .header(header::ORIGIN, HTTPS_URL)
        .header(header::COOKIE, cookie_pair(c))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(&res);
    assert!(
        cleared[0].starts_with("__Host-ciam_session=;") && cleared[0].contains("Max-Age=0"),
        "{cleared:?}"
    );
    // And the old cookie is dead.
    let req = Request::get("/auth/me")
        .header(header::COOKIE, cookie_pair(c))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tampered_cookie_is_ignored_and_cleared() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let res = sign_in(&app, HTTP_URL, "carol@example.com").await;
    let pair = cookie_pair(&set_cookies(&res)[0]);
    let mut tampered = pair.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for cookie in [
        tampered.as_str(),
        "ciam_session=garbage",
        "other=1; ciam_session=x",
    ] {
        let req = Request::get("/whoami")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cleared = set_cookies(&res);
        assert_eq!(cleared.len(), 1, "{cookie}");
        assert!(cleared[0].starts_with("ciam_session=;") && cleared[0].contains("Max-Age=0"));
        assert_eq!(to_bytes(res.into_body(), 1024).await.unwrap(), "anonymous");
        let req = Request::get("/private")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // No cookie: no Set-Cookie either.
    let res = app
        .clone()
        .oneshot(Request::get("/whoami").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(set_cookies(&res).is_empty());
    // The genuine cookie still works.
    let req = Request::get("/whoami")
        .header(header::COOKIE, &pair)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_ne!(to_bytes(res.into_body(), 1024).await.unwrap(), "anonymous");
}

#[tokio::test]
async fn extractor_rejections_are_json() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let res = app
        .clone()
        .oneshot(Request::get("/private").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(res).await["error"], "unauthenticated");

    let res = app
        .clone()
        .oneshot(Request::get("/auth/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let malformed = Request::post("/echo")
        .header(header::ORIGIN, HTTP_URL)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"email\": "))
        .unwrap();
    let res = app.clone().oneshot(malformed).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(body_json(res).await["error"], "invalid_json");

    let wrong_shape = post_json("/auth/login", Some(HTTP_URL), json!({"email": 1}));
    let res = app.clone().oneshot(wrong_shape).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(res).await["error"], "invalid_json");

    let not_json = Request::post("/echo")
        .header(header::ORIGIN, HTTP_URL)
        .body(Body::from("a=b"))
        .unwrap();
    let res = app.clone().oneshot(not_json).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body_json(res).await["error"], "unsupported_media_type");

    let huge = json!({"email": "a".repeat(20_000), "password": "x"});
    let res = app
        .clone()
        .oneshot(post_json("/auth/login", Some(HTTP_URL), huge))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body_json(res).await["error"], "payload_too_large");

    // Without the layer, the extractor reports a server misconfiguration, not "signed out".
    let bare = Router::new().route(
        "/private",
        get(|Authenticated(a): Authenticated| async move { a.user_id.to_string() }),
    );
    let res = bare
        .oneshot(Request::get("/private").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn engine_errors_map_to_statuses_without_enumeration() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let _ = sign_in(&app, HTTP_URL, "dave@example.com").await;
    let wrong = json!({"email": "dave@example.com", "password": "wrong password, long enough"});
    let unknown = json!({"email": "nobody@example.com", "password": PASSWORD});
    let a = app
        .clone()
        .oneshot(post_json("/auth/login", Some(HTTP_URL), wrong))
        .await
        .unwrap();
    let b = app
        .clone()
        .oneshot(post_json("/auth/login", Some(HTTP_URL), unknown))
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
    let (a, b) = (body_json(a).await, body_json(b).await);
    assert_eq!(a, b);
    assert_eq!(a["error"], "invalid_credentials");

    let weak = json!({"email": "erin@example.com", "password": "short"});
    let res = app
        .clone()
        .oneshot(post_json("/auth/register", Some(HTTP_URL), weak))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = body_json(res).await;
    assert_eq!(body["error"], "weak_password");
    assert!(!body["message"].as_str().unwrap().is_empty());

    let bad_email = json!({"email": "not-an-address", "password": PASSWORD});
    let res = app
        .clone()
        .oneshot(post_json("/auth/register", Some(HTTP_URL), bad_email))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(res).await["error"], "invalid_identifier");

    for email in ["dave@example.com", "nobody@example.com"] {
        let res = app
            .clone()
            .oneshot(post_json(
                "/auth/password/forgot",
                Some(HTTP_URL),
                json!({"email": email}),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let res = app
        .clone()
        .oneshot(post_json(
            "/auth/password/reset",
            Some(HTTP_URL),
            json!({"token": "nope", "password": PASSWORD}),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(res).await["error"], "invalid_token");
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_by_their_owner_only() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let alice = cookie_pair(&set_cookies(&sign_in(&app, HTTP_URL, "frank@example.com").await)[0]);
    let req = Request::get("/auth/sessions")
        .header(header::COOKIE, &alice)
        .body(Body::empty())
        .unwrap();
    let sessions = body_json(app.clone().oneshot(req).await.unwrap()).await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(sessions["sessions"][0]["current"], true);
    for id in ["ses_00000000000000000000000000000000", "not-an-id"] {
        let req = Request::delete(format!("/auth/sessions/{id}"))
            .header(header::ORIGIN, HTTP_URL)
            .header(header::COOKIE, &alice)
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(body_json(res).await["error"], "not_found");
    }
    let req = Request::get("/auth/audit")
        .header(header::COOKIE, &alice)
        .body(Body::empty())
        .unwrap();
    let audit = body_json(app.clone().oneshot(req).await.unwrap()).await;
    assert!(!audit["entries"].as_array().unwrap().is_empty());
}

#[test]
fn error_kinds_map_to_statuses() {
    assert_eq!(status_for(ErrorKind::InvalidInput), StatusCode::BAD_REQUEST);
    assert_eq!(
        status_for(ErrorKind::Unauthorized),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_for(ErrorKind::StepUpRequired),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_for(ErrorKind::Forbidden), StatusCode::FORBIDDEN);
    assert_eq!(status_for(ErrorKind::Conflict), StatusCode::CONFLICT);
    assert_eq!(
        status_for(ErrorKind::RateLimited),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status_for(ErrorKind::Unavailable),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status_for(ErrorKind::Internal),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn error_responses_carry_code_message_and_retry_after() {
    let res = ApiError::from(Error::RateLimited {
        retry_after: Duration::from_millis(1500),
    })
    .into_response();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[header::RETRY_AFTER], "2");
    assert_eq!(body_json(res).await["error"], "rate_limited");

    let res = ApiError::from(Error::Overloaded {
        retry_after: Duration::from_secs(3),
    })
    .into_response();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "3");

    let res = ApiError::from(Error::StepUpRequired).into_response();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(res).await["error"], "step_up_required");

    let res = ApiError::from(Error::AccountUnavailable).into_response();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = ApiError::from(Error::EmailTaken).into_response();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let res = ApiError::from(Error::Internal("secret detail: db at /var/x".into())).into_response();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = body_json(res).await;
    assert_eq!(
        body,
        json!({"error": "internal", "message": "Something went wrong."})
    );
}

#[tokio::test]
async fn require_aal_asks_weaker_sessions_to_step_up() {
    let ciam = engine(HTTP_URL);
    let app = app(&ciam);
    let res = app
        .clone()
        .oneshot(Request::get("/aal2").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(res).await["error"], "unauthenticated");

    let signed = sign_in(&app, HTTP_URL, "aal@example.com").await;
    let session = session_cookie(&signed);
    let get_with = |path: &str| {
        Request::get(path)
            .header(header::COOKIE, session.clone())
            .body(Body::empty())
            .unwrap()
    };
    let res = app.clone().oneshot(get_with("/aal1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.clone().oneshot(get_with("/aal2")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = body_json(res).await;
    assert_eq!(body["error"], "step_up_required");
    assert_eq!(body["aal"], 2);
}

/// `GET /me` renders its answer once per user copy, stage and session (`me_answers`); every
/// change to any of them shows at once, and an unchanged answer is the same bytes.
#[tokio::test]
async fn me_answers_follow_the_profile_the_stage_and_the_session() {
    use ciam_core::profile::{FieldKind, FieldSpec, ProfileSchema};
    let field = |name: &str, stage: &str| FieldSpec {
        name: name.to_owned(),
        label: name.to_owned(),
        kind: FieldKind::Text { max_chars: 64 },
        stage: stage.to_owned(),
    };
    let schema = ProfileSchema::new(
        vec!["signup".to_owned(), "engaged".to_owned()],
        vec![field("nickname", "signup"), field("city", "engaged")],
        ProfileSchema::DEFAULT_MAX_PROMPTS,
    )
    .unwrap();
    let ciam = builder(HTTP_URL).profile_schema(schema).build().unwrap();
    let app = app(&ciam);
    let cookie = session_cookie(&sign_in(&app, HTTP_URL, "dora@example.com").await);
    let me = |uri: &'static str| {
        let app = app.clone();
        let cookie = cookie.clone();
        async move {
            let req = Request::get(uri)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
            to_bytes(res.into_body(), 1 << 20).await.unwrap()
        }
    };
    let prompts = |body: &[u8]| -> Vec<String> {
        let v: Value = serde_json::from_slice(body).unwrap();
        v["user"]["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let first = me("/auth/me").await;
    assert_eq!(me("/auth/me").await, first, "an unchanged answer");
    assert_eq!(prompts(&first), ["nickname"]);
    let engaged = me("/auth/me?stage=engaged").await;
    assert_eq!(prompts(&engaged), ["nickname", "city"]);
    assert_eq!(prompts(&me("/auth/me").await), ["nickname"]);

    // A profile change shows on the next request, in the profile and the prompts.
    let req = Request::patch("/auth/profile")
        .header(header::ORIGIN, HTTP_URL)
        .header(header::COOKIE, cookie.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"nickname": "Dee"}).to_string()))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    let after = me("/auth/me").await;
    let v: Value = serde_json::from_slice(&after).unwrap();
    assert_eq!(v["user"]["profile"], json!({"nickname": "Dee"}));
    assert_eq!(prompts(&after), Vec::<String>::new());
    assert_eq!(prompts(&me("/auth/me?stage=engaged").await), ["city"]);

    // A second session of the same user gets its own answer: the same user, its own session.
    // (Registering again is answered as the first time, so `sign_in` signs in again.)
    let second = session_cookie(&sign_in(&app, HTTP_URL, "dora@example.com").await);
    let req = Request::get("/auth/me")
        .header(header::COOKIE, second)
        .body(Body::empty())
        .unwrap();
    let other: Value = body_json(app.clone().oneshot(req).await.unwrap()).await;
    let mine: Value = serde_json::from_slice(&me("/auth/me").await).unwrap();
    assert_ne!(
        other["session"]["session_id"],
        mine["session"]["session_id"]
    );
    assert_eq!(other["user"], mine["user"]);
}
