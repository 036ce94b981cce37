//! The second-factor and trusted-device endpoints of [`router`](crate::router).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use http::StatusCode;
use http::header::SET_COOKIE;
use serde::Deserialize;
use serde_json::json;

use ciam_core::id::CredentialId;
use ciam_core::secret::SecretString;
use ciam_core::{Ciam, MfaChallenge, MfaProof, RequestContext, SignInOutcome};

use crate::extract::{Authenticated, ClientContext, Json, Layer};
use crate::prefix::At;
use crate::rejection::{ApiError, verification_required};
use crate::routes::signed_in;

/// The routes, relative to the router's prefix.
pub(crate) fn routes(at: At<Ciam>) -> At<Ciam> {
    at.route("/mfa", get(status))
        .route("/mfa/challenge", post(challenge))
        .route("/mfa/totp/enroll", post(enroll))
        .route("/mfa/totp/confirm", post(confirm))
        .route("/mfa/totp", delete(disable))
        .route("/mfa/recovery-codes", post(regenerate))
        .route("/mfa/devices", get(list_devices))
        .route("/mfa/devices/{id}", delete(forget_device))
        .route("/devices/forget", post(forget_devices))
        .route("/magic-link/start", post(magic_link_start))
        .route("/magic-link/confirm", post(magic_link_confirm))
        .route("/otp/start", post(code_start))
        .route("/otp/verify", post(code_verify))
        .route("/sms/start", post(sms_start))
}

/// The answer to a sign-in that needs its second factor (or, when the risk policy suspects
/// automation, a CAPTCHA: `factors` is then `["captcha"]`): 200
/// `{"status": "mfa_required", "mfa_token", "factors", "reason"}`.
pub(crate) fn mfa_required(c: &MfaChallenge) -> Response {
    Json(json!({
        "status": "mfa_required",
        "mfa_token": c.token.expose(),
        "factors": c.factors,
        "reason": c.reason,
    }))
    .into_response()
}

/// Maps any sign-in outcome to its response.
pub(crate) fn sign_in_response(
    ciam: &Ciam,
    layer: &Layer,
    outcome: SignInOutcome,
) -> Result<Response, ApiError> {
    match outcome {
        SignInOutcome::SignedIn(s) => signed_in(ciam, layer, &s),
        SignInOutcome::VerificationRequired => Ok(verification_required()),
        SignInOutcome::MfaRequired(c) => Ok(mfa_required(&c)),
        _ => Err(ciam_core::Error::Internal("unexpected sign-in outcome".into()).into()),
    }
}

/// Puts the CAPTCHA token a sign-in body carried (`captcha_token`) into the request context,
/// for the configured bot check. An empty string is no token.
pub(crate) fn with_captcha(ctx: RequestContext, token: Option<SecretString>) -> RequestContext {
    ctx.with_bot_token(token.filter(|t| !t.expose().is_empty()))
}

#[derive(Deserialize)]
struct ChallengeBody {
    mfa_token: String,
    #[serde(default)]
    code: Option<SecretString>,
    #[serde(default)]
    recovery_code: Option<SecretString>,
    #[serde(default)]
    email_code: Option<SecretString>,
    /// The solved CAPTCHA of a sign-in that asked for one (`factors` `["captcha"]`).
    #[serde(default)]
    captcha_token: Option<SecretString>,
    #[serde(default)]
    remember_device: bool,
}

async fn challenge(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<ChallengeBody>,
) -> Result<Response, ApiError> {
    let proof = match (
        body.code,
        body.recovery_code,
        body.email_code,
        body.captcha_token,
    ) {
        (Some(code), None, None, None) => MfaProof::Totp(code),
        (None, Some(code), None, None) => MfaProof::RecoveryCode(code),
        (None, None, Some(code), None) => MfaProof::EmailCode(code),
        (None, None, None, Some(token)) => MfaProof::Captcha(token),
        _ => {
            return Err(ciam_core::Error::InvalidInput(
                "exactly one of code, recovery_code, email_code and captcha_token",
            )
            .into());
        }
    };
    let outcome = ciam
        .complete_mfa(&body.mfa_token, &proof, body.remember_device, &ctx)
        .await?;
    sign_in_response(&ciam, &layer, outcome)
}

async fn status(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
) -> Result<Response, ApiError> {
    Ok(Json(ciam.mfa_status(&auth).await?).into_response())
}

async fn enroll(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let e = ciam.start_totp_enrolment(&auth, &ctx).await?;
    Ok(Json(json!({
        "enrolment": e.enrolment.expose(),
        "otpauth_uri": e.otpauth_uri.expose(),
        "secret": e.secret.expose(),
        "qr_svg": e.qr_svg,
        "qr_png": base64::engine::general_purpose::STANDARD.encode(&e.qr_png),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct ConfirmBody {
    enrolment: String,
    code: SecretString,
}

fn codes_body(codes: Option<Vec<SecretString>>) -> Response {
    let codes = codes.map(|c| c.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>());
    Json(json!({ "recovery_codes": codes })).into_response()
}

async fn confirm(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<ConfirmBody>,
) -> Result<Response, ApiError> {
    let codes = ciam
        .confirm_totp(&auth, &body.enrolment, body.code.expose(), &ctx)
        .await?;
    Ok(codes_body(codes))
}

async fn disable(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    ciam.disable_totp(&auth, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn regenerate(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let codes = ciam.regenerate_recovery_codes(&auth, &ctx).await?;
    Ok(codes_body(Some(codes)))
}

async fn forget_devices(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let n = ciam.forget_devices(&auth, &ctx).await?;
    Ok(Json(json!({ "forgotten": n })).into_response())
}

/// The browsers the account trusts, newest first: when and from where each was trusted,
/// until when it skips the second factor, and which one is asking. Never a token: a device
/// id only names the device for `DELETE /mfa/devices/{id}`.
async fn list_devices(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let devices = ciam.trusted_devices(&auth, &ctx).await?;
    Ok(Json(json!({ "devices": devices })).into_response())
}

/// Forgets one trusted browser: 204, or 404 for an id that is not one of the caller's
/// devices (malformed, unknown, already forgotten or another account's: the same answer).
async fn forget_device(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Ok(id) = id.parse::<CredentialId>() else {
        return Err(ApiError::not_found());
    };
    if !ciam.forget_device(&auth, id, &ctx).await? {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

/// 202 `{"status": status}` with the binding cookie for `binding`.
fn bound(ciam: &Ciam, layer: &Layer, binding: &ciam_core::OpaqueToken, status: &str) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(json!({ "status": status }))).into_response();
    let ttl = ciam.policy().passwordless_ttl;
    if let Some(cookie) = layer.0.0.cookie.binding_cookie(binding, ttl) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

async fn magic_link_start(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<EmailBody>,
) -> Result<Response, ApiError> {
    let binding = ciam.start_magic_link(&body.email, &ctx).await?;
    Ok(bound(&ciam, &layer, &binding, "link_sent"))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
    #[serde(default)]
    captcha_token: Option<SecretString>,
}

async fn magic_link_confirm(
    State(ciam): State<Ciam>,
    layer: Layer,
    headers: HeaderMap,
    ClientContext(ctx): ClientContext,
    Json(body): Json<TokenBody>,
) -> Result<Response, ApiError> {
    let binding = layer.0.0.cookie.read_binding(&headers);
    let ctx = with_captcha(ctx, body.captcha_token);
    let outcome = ciam
        .confirm_magic_link(&body.token, binding.as_ref(), &ctx)
        .await?;
    sign_in_response(&ciam, &layer, outcome)
}

async fn code_start(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<EmailBody>,
) -> Result<Response, ApiError> {
    let binding = ciam.start_sign_in_code(&body.email, &ctx).await?;
    Ok(bound(&ciam, &layer, &binding, "code_sent"))
}

#[derive(Deserialize)]
struct PhoneBody {
    phone: String,
}

async fn sms_start(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<PhoneBody>,
) -> Result<Response, ApiError> {
    let binding = ciam.start_sms_code(&body.phone, &ctx).await?;
    Ok(bound(&ciam, &layer, &binding, "code_sent"))
}

#[derive(Deserialize)]
struct CodeBody {
    code: SecretString,
    #[serde(default)]
    captcha_token: Option<SecretString>,
}

async fn code_verify(
    State(ciam): State<Ciam>,
    layer: Layer,
    headers: HeaderMap,
    ClientContext(ctx): ClientContext,
    Json(body): Json<CodeBody>,
) -> Result<Response, ApiError> {
    let binding = layer.0.0.cookie.read_binding(&headers);
    let ctx = with_captcha(ctx, body.captcha_token);
    let outcome = ciam
        .verify_sign_in_code(binding.as_ref(), body.code.expose(), &ctx)
        .await?;
    sign_in_response(&ciam, &layer, outcome)
}

/// The CAPTCHA plumbing over HTTP (`captcha_token` in the sign-in and challenge bodies) and
/// the device routes' refusals, against an engine with a scripted bot check.
#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::net::{IpAddr, SocketAddr};
    use std::pin::Pin;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::extract::connect_info::MockConnectInfo;
    use ciam_core::risk::{BotCheck, BotCheckError, BotVerdict, DefaultRiskPolicy};
    use ciam_core::{Ciam, Policy};
    use ciam_storage::memory::MemoryBackend;
    use http::{Method, Request, StatusCode, header};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use crate::CiamLayer;

    const URL: &str = "http://app.example";
    const PASSWORD: &str = "correct horse battery staple 42";

    /// A CAPTCHA service whose token says what it concludes: none is a human-looking
    /// request, `solved` a suspicious one that solved the CAPTCHA, anything else a
    /// suspicious one (the score that makes the default risk policy ask for a CAPTCHA).
    #[derive(Debug)]
    struct Captchas;

    type Verdict<'a> = Pin<Box<dyn Future<Output = Result<BotVerdict, BotCheckError>> + Send + 'a>>;

    // Written out rather than with `#[async_trait]`, which this crate does not depend on.
    impl BotCheck for Captchas {
        fn check<'s, 't, 'a>(&'s self, token: Option<&'t str>, _ip: Option<IpAddr>) -> Verdict<'a>
        where
            's: 'a,
            't: 'a,
            Self: 'a,
        {
            let verdict = match token {
                None => BotVerdict::new(0.1, false),
                Some("solved") => BotVerdict::new(0.7, true),
                Some(_) => BotVerdict::new(0.7, false),
            };
            Box::pin(async move { verdict })
        }
    }

    fn app() -> Router {
        let mut policy = Policy::default();
        policy.allow_unverified_sign_in = true;
        let ciam = Ciam::builder()
            .backend(Arc::new(MemoryBackend::new()))
            .public_url(URL)
            .policy(policy)
            .risk_policy(Arc::new(DefaultRiskPolicy::default()))
            .bot_check(Arc::new(Captchas))
            .build()
            .unwrap();
        let peer: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        Router::new()
            .nest("/auth", crate::router(ciam.clone()))
            .layer(CiamLayer::new(ciam))
            .layer(MockConnectInfo(peer))
    }

    async fn call(
        app: &Router,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        origin: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Vec<String>) {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ORIGIN, origin);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        let request = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .unwrap();
        let res = app.clone().oneshot(request).await.unwrap();
        let status = res.status();
        let cookies = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body, cookies)
    }

    async fn post(app: &Router, uri: &str, body: Value) -> (StatusCode, Value, Vec<String>) {
        call(app, Method::POST, uri, None, URL, Some(body)).await
    }

    async fn register(app: &Router, email: &str) {
        let r = post(
            app,
            "/auth/register",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
        assert_eq!(r.0, StatusCode::ACCEPTED, "{:?}", r.1);
    }

    /// The `name=value` of the session cookie.
    fn session(cookies: &[String]) -> String {
        cookies
            .iter()
            .find(|c| c.starts_with("ciam_session="))
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"))
            .to_owned()
    }

    /// A suspicious `captcha_token` at `POST /login` is answered `mfa_required` with
    /// `factors` `["captcha"]` and a reason; the challenge takes `captcha_token`: an
    /// unsolved one is `invalid_code` and leaves the sign-in open, a solved one signs in
    /// (with the password's `amr` only: a CAPTCHA is no second factor). A solved token
    /// sent with the sign-in itself goes straight through; a challenge body naming two
    /// answers is refused.
    #[tokio::test]
    async fn captcha_tokens_reach_the_bot_check() {
        let app = app();
        register(&app, "ed@example.com").await;
        let login = |token: &str| json!({"email": "ed@example.com", "password": PASSWORD, "captcha_token": token});

        let (status, body, cookies) = post(&app, "/auth/login", login("mid")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "mfa_required", "{body}");
        assert_eq!(body["factors"], json!(["captcha"]));
        assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(cookies.iter().all(|c| !c.starts_with("ciam_session=")));
        let token = body["mfa_token"].clone();

        let both = json!({"mfa_token": token, "code": "123456", "captcha_token": "solved"});
        let (status, body, _) = post(&app, "/auth/mfa/challenge", both).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let unsolved = json!({"mfa_token": token, "captcha_token": "mid"});
        let (status, body, _) = post(&app, "/auth/mfa/challenge", unsolved).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_code");
        let solved = json!({"mfa_token": token, "captcha_token": "solved"});
        let (status, body, cookies) = post(&app, "/auth/mfa/challenge", solved).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["session"]["amr"], json!(["pwd"]));
        assert_eq!(body["session"]["aal"], 1);
        session(&cookies);

        // No token: a human-looking request, no challenge. A solved one: none either.
        let plain = json!({"email": "ed@example.com", "password": PASSWORD});
        let (status, body, _) = post(&app, "/auth/login", plain).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["session"].is_object(), "{body}");
        let (status, body, _) = post(&app, "/auth/login", login("solved")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["session"].is_object(), "{body}");
    }

    /// `GET /mfa/devices` lists the account's trusted browsers without their tokens;
    /// `DELETE /mfa/devices/{id}` refuses without a session (401), for an unknown, malformed
    /// or another account's id (404) and from another site (403), and forgets the caller's
    /// own device (204, then gone from the list).
    #[tokio::test]
    async fn device_routes() {
        let app = app();
        register(&app, "ann@example.com").await;
        register(&app, "bob@example.com").await;
        let sign_in = |email: &str| json!({"email": email, "password": PASSWORD});
        let (_, _, ann) = post(&app, "/auth/login", sign_in("ann@example.com")).await;
        let device_cookie = ann
            .iter()
            .find(|c| c.starts_with("ciam_device="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let ann = format!("{}; {device_cookie}", session(&ann));
        let (_, _, bob) = post(&app, "/auth/login", sign_in("bob@example.com")).await;
        let bob = session(&bob);

        let list = |cookie: Option<String>| {
            let app = app.clone();
            async move {
                call(
                    &app,
                    Method::GET,
                    "/auth/mfa/devices",
                    cookie.as_deref(),
                    URL,
                    None,
                )
                .await
            }
        };
        let (status, _, _) = list(None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body, _) = list(Some(ann.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let devices = body["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 1, "{body}");
        assert_eq!(devices[0]["current"], true);
        assert_eq!(devices[0]["remember_until"], Value::Null);
        let token = device_cookie.split_once('=').unwrap().1;
        assert!(!body.to_string().contains(token), "{body}");
        // The fields are the documented ones (`TrustedDevice` in the OpenAPI document).
        let doc = crate::openapi("/auth");
        let schema = &doc["components"]["schemas"]["TrustedDevice"];
        // Sorted: key order depends on serde_json's `preserve_order` feature in the build.
        let mut documented: Vec<&String> =
            schema["properties"].as_object().unwrap().keys().collect();
        documented.sort();
        let mut answered: Vec<&String> = devices[0].as_object().unwrap().keys().collect();
        answered.sort();
        assert_eq!(answered, documented);
        let ann_device = devices[0]["id"].as_str().unwrap().to_owned();
        let (_, body, _) = list(Some(bob.clone())).await;
        let bob_device = body["devices"][0]["id"].as_str().unwrap().to_owned();

        let forget = |cookie: Option<&str>, id: &str, origin: &str| {
            let app = app.clone();
            let cookie = cookie.map(str::to_owned);
            let uri = format!("/auth/mfa/devices/{id}");
            let origin = origin.to_owned();
            async move {
                call(&app, Method::DELETE, &uri, cookie.as_deref(), &origin, None)
                    .await
                    .0
            }
        };
        assert_eq!(
            forget(None, &ann_device, URL).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            forget(Some(&ann), &bob_device, URL).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            forget(Some(&ann), "not-a-device", URL).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            forget(Some(&ann), &ann_device, "https://evil.example").await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            forget(Some(&ann), &ann_device, URL).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            forget(Some(&ann), &ann_device, URL).await,
            StatusCode::NOT_FOUND,
            "already forgotten"
        );
        let (_, body, _) = list(Some(ann)).await;
        assert_eq!(body["devices"], json!([]));
        let (_, body, _) = list(Some(bob)).await;
        assert_eq!(body["devices"][0]["id"], bob_device.as_str(), "untouched");
    }
}
