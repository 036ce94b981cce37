//! The middleware, extractors and scope driven through actix-web's test server against a
//! real engine (the in-memory backend; consent: the in-memory and a SQLite ledger store).
//! Bodies are compared with what ciam-axum answers in the same case.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::test::{TestRequest, call_service, init_service, read_body, try_call_service};
use actix_web::{App, HttpResponse, web};
use axum::response::IntoResponse;
use ciam_core::{Ciam, Policy};
use ciam_storage::memory::MemoryBackend;
use serde_json::{Value, json};

use crate::{Authenticated, CiamMiddleware, ClientContext, MaybeAuthenticated, RequireAal};

pub(crate) const ORIGIN: &str = "http://localhost:3000";
const PASSWORD: &str = "correct horse battery staple 42";
const PEER: &str = "127.0.0.1:40000";

/// Runs `test` on actix's runtime (a current-thread tokio runtime).
pub(crate) fn run<F: Future<Output = ()>>(test: F) {
    actix_web::rt::System::new().block_on(test);
}

pub(crate) fn engine() -> Ciam {
    let mut policy = Policy::default();
    // Lets the tests sign in without following the mailed link.
    policy.allow_unverified_sign_in = true;
    let builder = Ciam::builder()
        .backend(Arc::new(MemoryBackend::new()))
        .public_url(ORIGIN)
        .policy(policy);
    #[cfg(feature = "tokens")]
    let builder = builder.tokens(
        ciam_core::TokenConfig::generated(ciam_core::tokens::TokenAlgorithm::EdDsa).unwrap(),
    );
    builder.build().unwrap()
}

async fn whoami(MaybeAuthenticated(auth): MaybeAuthenticated) -> String {
    auth.map_or_else(|| "anonymous".to_owned(), |a| a.user_id.to_string())
}

async fn private(Authenticated(auth): Authenticated) -> String {
    auth.user_id.to_string()
}

async fn aal2(RequireAal(auth): RequireAal<2>) -> String {
    auth.aal.level().to_string()
}

async fn aal1(RequireAal(auth): RequireAal<1>) -> String {
    auth.aal.level().to_string()
}

async fn client(ClientContext(ctx): ClientContext) -> String {
    format!("{:?}", ctx.ip)
}

async fn echo(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

/// Sets a cookie of its own: the middleware must not clear the session cookie on top of a
/// response that already does.
async fn sets_session_cookie() -> HttpResponse {
    HttpResponse::Ok()
        .append_header((header::SET_COOKIE, "ciam_session=; Path=/; Max-Age=0"))
        .finish()
}

/// The test application: a few routes, the auth scope at `prefix`, the middleware.
pub(crate) fn app(
    ciam: Ciam,
    prefix: &'static str,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let app = App::new()
        .route("/whoami", web::get().to(whoami))
        .route("/private", web::get().to(private))
        .route("/aal1", web::get().to(aal1))
        .route("/aal2", web::get().to(aal2))
        .route("/client", web::get().to(client))
        .route("/echo", web::post().to(echo))
        .route("/sets-cookie", web::get().to(sets_session_cookie));
    #[cfg(feature = "tokens")]
    let app = app
        .route("/api/me", web::get().to(bearer_me))
        .route("/api/ping", web::post().to(bearer_ping))
        .service(crate::jwks_service(ciam.clone()));
    app.service(crate::scope(prefix, ciam.clone()))
        .wrap(CiamMiddleware::new(ciam.clone()).cookieless_path(format!("{prefix}/token/refresh")))
}

#[cfg(feature = "tokens")]
async fn bearer_me(crate::BearerAuthenticated(token): crate::BearerAuthenticated) -> String {
    token.user_id.to_string()
}

#[cfg(feature = "tokens")]
async fn bearer_ping(
    crate::BearerAuthenticatedLive(token): crate::BearerAuthenticatedLive,
) -> String {
    token.user_id.to_string()
}

pub(crate) fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

pub(crate) fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(path).peer_addr(peer())
}

pub(crate) fn post_json(path: &str, origin: Option<&str>, body: &Value) -> TestRequest {
    let mut req = TestRequest::post()
        .uri(path)
        .peer_addr(peer())
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body.to_string());
    if let Some(origin) = origin {
        req = req.insert_header((header::ORIGIN, origin));
    }
    req
}

pub(crate) async fn json_of<B: MessageBody>(res: ServiceResponse<B>) -> Value {
    let bytes = read_body(res).await;
    serde_json::from_slice(&bytes).unwrap()
}

pub(crate) async fn text_of<B: MessageBody>(res: ServiceResponse<B>) -> String {
    String::from_utf8(read_body(res).await.to_vec()).unwrap()
}

pub(crate) fn set_cookies<B>(res: &ServiceResponse<B>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// What ciam-axum answers with `refusal`, as JSON.
fn axum_body(refusal: impl IntoResponse) -> Value {
    let parts = crate::convert::Parts::read_now(refusal.into_response());
    serde_json::from_slice(&parts.body).unwrap()
}

/// Registers and signs in `email` through the scope at `prefix`; returns the `name=value`
/// session cookie and the login body.
pub(crate) async fn sign_in<S, B>(app: &S, prefix: &str, email: &str) -> (String, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let creds = json!({"email": email, "password": PASSWORD});
    let res = call_service(
        app,
        post_json(&format!("{prefix}/register"), Some(ORIGIN), &creds).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(json_of(res).await, json!({"status": "verification_sent"}));
    let res = call_service(
        app,
        post_json(&format!("{prefix}/login"), Some(ORIGIN), &creds).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    // The session and the trusted-device cookie: two Set-Cookie headers carried over.
    assert!(
        cookies.iter().any(|c| c.starts_with("ciam_device=")),
        "{cookies:?}"
    );
    let session = cookies
        .iter()
        .find(|c| c.starts_with("ciam_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax"))
    );
    (session, json_of(res).await)
}

#[test]
fn no_cookie_is_anonymous_and_refused_like_axum() {
    run(async {
        let app = init_service(app(engine(), "/auth")).await;
        let res = call_service(&app, get("/whoami").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookies(&res).is_empty());
        assert_eq!(text_of(res).await, "anonymous");

        for path in ["/private", "/aal1", "/auth/me"] {
            let res = call_service(&app, get(path).to_request()).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(
                json_of(res).await,
                axum_body(ciam_axum::AuthRejection::Unauthenticated),
                "{path}"
            );
        }
        let res = call_service(&app, get("/client").to_request()).await;
        assert_eq!(text_of(res).await, "Some(127.0.0.1)");
    });
}

#[test]
fn valid_cookie_authenticates_and_aal_is_enforced() {
    run(async {
        let app = init_service(app(engine(), "/auth")).await;
        let (cookie, login) = sign_in(&app, "/auth", "valid@example.com").await;
        let user = login["user"]["id"].as_str().unwrap().to_owned();

        let with_cookie = |path: &str| get(path).insert_header((header::COOKIE, cookie.clone()));
        let res = call_service(&app, with_cookie("/private").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(set_cookies(&res).is_empty());
        assert_eq!(text_of(res).await, user);

        let res = call_service(&app, with_cookie("/aal1").to_request()).await;
        assert_eq!(text_of(res).await, "1");

        // A password session is AAL1: the AAL2 route asks for a step-up, as ciam-axum does.
        let res = call_service(&app, with_cookie("/aal2").to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body = json_of(res).await;
        assert_eq!(body["error"], "step_up_required");
        assert_eq!(body["aal"], 2);
        assert_eq!(
            body,
            axum_body(ciam_axum::AuthRejection::AssuranceRequired { aal: 2 })
        );

        // The scope's endpoints see the caller the middleware resolved.
        let res = call_service(&app, with_cookie("/auth/me").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(json_of(res).await["user"]["id"], user.as_str());

        // Sign-out through the scope: 204, the cookie cleared, the session gone.
        let res = call_service(
            &app,
            post_json("/auth/logout", Some(ORIGIN), &json!({}))
                .insert_header((header::COOKIE, cookie.clone()))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(
            set_cookies(&res)
                .iter()
                .any(|c| c.starts_with("ciam_session=;") && c.contains("Max-Age=0"))
        );
        let res = call_service(&app, with_cookie("/private").to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    });
}

#[test]
fn invalid_cookie_is_cleared_once() {
    run(async {
        let app = init_service(app(engine(), "/auth")).await;
        let bogus = "ciam_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let res = call_service(
            &app,
            get("/whoami")
                .insert_header((header::COOKIE, bogus))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookies = set_cookies(&res);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].starts_with("ciam_session=;"));
        assert!(cookies[0].contains("Max-Age=0"));
        assert_eq!(text_of(res).await, "anonymous");

        // A refusal still clears it.
        let res = call_service(
            &app,
            get("/private")
                .insert_header((header::COOKIE, bogus))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            set_cookies(&res)
                .iter()
                .any(|c| c.starts_with("ciam_session=;"))
        );

        // An inner middleware's error stays an error, and the response actix renders from
        // it clears the invalid cookie; without an invalid cookie it is left as it was.
        let failing = init_service(
            App::new()
                .route("/whoami", web::get().to(whoami))
                .wrap_fn(|_, _| async {
                    Err::<ServiceResponse, _>(actix_web::error::ErrorServiceUnavailable("down"))
                })
                .wrap(CiamMiddleware::new(engine())),
        )
        .await;
        let rendered = |request: actix_web::test::TestRequest| {
            let failing = &failing;
            async move {
                let err = try_call_service(failing, request.to_request())
                    .await
                    .expect_err("the inner error");
                err.error_response()
            }
        };
        let res = rendered(get("/whoami").insert_header((header::COOKIE, bogus))).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let cookies: Vec<_> = res
            .headers()
            .get_all(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].starts_with("ciam_session=;"), "{cookies:?}");
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        assert_eq!(body, "down");
        let res = rendered(get("/whoami")).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().get(header::SET_COOKIE).is_none());

        // A response that sets the cookie itself gets no second Set-Cookie for it.
        let res = call_service(
            &app,
            get("/sets-cookie")
                .insert_header((header::COOKIE, bogus))
                .to_request(),
        )
        .await;
        assert_eq!(set_cookies(&res).len(), 1);
    });
}

#[test]
fn csrf_refusals_and_allowances() {
    run(async {
        let app = init_service(app(engine(), "/auth")).await;
        let csrf = axum_body(ciam_axum::CsrfRejection::default());
        let body = json!({"n": 1});

        // Refused: no Origin and no Sec-Fetch-Site, a foreign Origin, a cross-site fetch.
        let refused = [
            post_json("/echo", None, &body),
            post_json("/echo", Some("http://evil.example"), &body),
            post_json("/echo", None, &body).insert_header(("sec-fetch-site", "cross-site")),
            post_json("/auth/login", Some("http://localhost:3001"), &body),
        ];
        for req in refused {
            let res = call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert_eq!(json_of(res).await, csrf);
        }

        // Allowed: the public origin, a same-origin or user-initiated fetch, and safe methods.
        let allowed = [
            post_json("/echo", Some(ORIGIN), &body),
            post_json("/echo", Some("HTTP://LOCALHOST:3000"), &body),
            post_json("/echo", None, &body).insert_header(("sec-fetch-site", "same-origin")),
            post_json("/echo", None, &body).insert_header(("sec-fetch-site", "none")),
        ];
        for req in allowed {
            let res = call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(json_of(res).await, body);
        }

        // Bearer without any cookie is exempt; with a cookie it is checked again.
        let res = call_service(
            &app,
            post_json("/echo", None, &body)
                .insert_header((header::AUTHORIZATION, "Bearer abc"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = call_service(
            &app,
            post_json("/echo", None, &body)
                .insert_header((header::AUTHORIZATION, "Bearer abc"))
                .insert_header((header::COOKIE, "other=1"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    });
}

#[test]
fn scope_mounts_anywhere_and_limits_bodies() {
    run(async {
        let app = init_service(app(engine(), "/api/v1/auth")).await;
        let (cookie, login) = sign_in(&app, "/api/v1/auth", "nested@example.com").await;
        let res = call_service(
            &app,
            get("/api/v1/auth/sessions")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let sessions = json_of(res).await;
        assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(sessions["sessions"][0]["id"], login["session"]["id"]);

        // The router's OpenAPI document names its mount point, as under axum's `nest`.
        let res = call_service(&app, get("/api/v1/auth/openapi.json").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(json_of(res).await["servers"][0]["url"], "/api/v1/auth");

        // Unknown path below the scope: the router's 404.
        let res = call_service(&app, get("/api/v1/auth/nope").to_request()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        // Over the body limit: ciam-axum's 413 JSON, before the router runs.
        let big = "x".repeat(ciam_axum::BODY_LIMIT + 1);
        let res = call_service(
            &app,
            post_json("/api/v1/auth/login", Some(ORIGIN), &json!({ "email": big })).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json_of(res).await["error"], "payload_too_large");

        // A malformed body: the router's own JSON refusal.
        let res = call_service(
            &app,
            TestRequest::post()
                .uri("/api/v1/auth/login")
                .peer_addr(peer())
                .insert_header((header::ORIGIN, ORIGIN))
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("{")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json_of(res).await["error"], "invalid_json");
    });
}

#[test]
fn trusted_proxy_hops_pick_the_forwarded_address() {
    run(async {
        let ciam = engine();
        let app = init_service(
            App::new()
                .route("/client", web::get().to(client))
                .wrap(CiamMiddleware::new(ciam).trusted_proxy_hops(1)),
        )
        .await;
        let res = call_service(
            &app,
            get("/client")
                .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7"))
                .to_request(),
        )
        .await;
        assert_eq!(text_of(res).await, "Some(203.0.113.7)");
    });
}

#[test]
fn missing_middleware_is_a_server_error() {
    run(async {
        let app = init_service(
            App::new()
                .route("/private", web::get().to(private))
                .route("/client", web::get().to(client))
                .route("/whoami", web::get().to(whoami)),
        )
        .await;
        for path in ["/private", "/client"] {
            let res = call_service(&app, get(path).to_request()).await;
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert_eq!(json_of(res).await["error"], "internal");
        }
        let res = call_service(&app, get("/whoami").to_request()).await;
        assert_eq!(text_of(res).await, "anonymous");
    });
}

#[cfg(feature = "tokens")]
#[test]
fn bearer_tokens_refresh_and_jwks() {
    run(async {
        let app = init_service(app(engine(), "/auth")).await;
        let (cookie, login) = sign_in(&app, "/auth", "bearer@example.com").await;
        let user = login["user"]["id"].as_str().unwrap().to_owned();

        let res = call_service(
            &app,
            post_json("/auth/token", Some(ORIGIN), &json!({}))
                .insert_header((header::COOKIE, cookie.clone()))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        let pair = json_of(res).await;
        let access = pair["access_token"].as_str().unwrap().to_owned();

        let bearer = |req: TestRequest, token: &str| {
            req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        };
        let res = call_service(&app, bearer(get("/api/me"), &access).to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(text_of(res).await, user);

        // A bearer POST without Origin passes the CSRF check (no cookie).
        let res = call_service(
            &app,
            bearer(post_json("/api/ping", None, &json!({})), &access).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);

        // Missing and bad tokens: ciam-axum's 401s and WWW-Authenticate.
        let res = call_service(&app, get("/api/me").to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
        assert_eq!(
            json_of(res).await,
            axum_body(ciam_axum::BearerRejection::Missing)
        );
        let res = call_service(&app, bearer(get("/api/me"), "not.a.jwt").to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(
            json_of(res).await,
            axum_body(ciam_axum::BearerRejection::InvalidToken)
        );

        // The refresh is cookie-less and Origin-less (a non-browser client): exempt.
        let res = call_service(
            &app,
            post_json(
                "/auth/token/refresh",
                None,
                &json!({"refresh_token": pair["refresh_token"]}),
            )
            .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(json_of(res).await["access_token"].is_string());

        let res = call_service(&app, get("/.well-known/jwks.json").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            format!("public, max-age={}", ciam_axum::JWKS_MAX_AGE).as_str()
        );
        assert_eq!(json_of(res).await["keys"][0]["alg"], "EdDSA");

        // Live verification: refused once the session ends.
        let res = call_service(
            &app,
            post_json("/auth/logout", Some(ORIGIN), &json!({}))
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let res = call_service(
            &app,
            bearer(post_json("/api/ping", None, &json!({})), &access).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = call_service(&app, bearer(get("/api/me"), &access).to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "store-free verification");
    });
}
