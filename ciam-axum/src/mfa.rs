//! The second-factor and trusted-device endpoints of [`router`](crate::router).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use http::StatusCode;
use http::header::SET_COOKIE;
use serde::Deserialize;
use serde_json::json;

use ciam_core::secret::SecretString;
use ciam_core::{Ciam, MfaChallenge, MfaProof, SignInOutcome};

use crate::extract::{Authenticated, ClientContext, Json, Layer};
use crate::rejection::{ApiError, verification_required};
use crate::routes::signed_in;

/// The routes, relative to the router's prefix.
pub(crate) fn routes() -> Router<Ciam> {
    Router::new()
        .route("/mfa", get(status))
        .route("/mfa/challenge", post(challenge))
        .route("/mfa/totp/enroll", post(enroll))
        .route("/mfa/totp/confirm", post(confirm))
        .route("/mfa/totp", axum::routing::delete(disable))
        .route("/mfa/recovery-codes", post(regenerate))
        .route("/devices/forget", post(forget_devices))
        .route("/magic-link/start", post(magic_link_start))
        .route("/magic-link/confirm", post(magic_link_confirm))
        .route("/otp/start", post(code_start))
        .route("/otp/verify", post(code_verify))
        .route("/sms/start", post(sms_start))
}

/// The answer to a sign-in that needs its second factor: 200
/// `{"status": "mfa_required", "mfa_token", "factors"}`.
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

#[derive(Deserialize)]
struct ChallengeBody {
    mfa_token: String,
    #[serde(default)]
    code: Option<SecretString>,
    #[serde(default)]
    recovery_code: Option<SecretString>,
    #[serde(default)]
    email_code: Option<SecretString>,
    #[serde(default)]
    remember_device: bool,
}

async fn challenge(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<ChallengeBody>,
) -> Result<Response, ApiError> {
    let proof = match (body.code, body.recovery_code, body.email_code) {
        (Some(code), None, None) => MfaProof::Totp(code),
        (None, Some(code), None) => MfaProof::RecoveryCode(code),
        (None, None, Some(code)) => MfaProof::EmailCode(code),
        _ => {
            return Err(ciam_core::Error::InvalidInput(
                "exactly one of code, recovery_code and email_code",
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
}

async fn magic_link_confirm(
    State(ciam): State<Ciam>,
    layer: Layer,
    headers: HeaderMap,
    ClientContext(ctx): ClientContext,
    Json(body): Json<TokenBody>,
) -> Result<Response, ApiError> {
    let binding = layer.0.0.cookie.read_binding(&headers);
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
}

async fn code_verify(
    State(ciam): State<Ciam>,
    layer: Layer,
    headers: HeaderMap,
    ClientContext(ctx): ClientContext,
    Json(body): Json<CodeBody>,
) -> Result<Response, ApiError> {
    let binding = layer.0.0.cookie.read_binding(&headers);
    let outcome = ciam
        .verify_sign_in_code(binding.as_ref(), body.code.expose(), &ctx)
        .await?;
    sign_in_response(&ciam, &layer, outcome)
}
