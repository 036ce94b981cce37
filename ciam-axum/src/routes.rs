//! The JSON endpoints of [`router`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use http::StatusCode;
use http::header::SET_COOKIE;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use ciam_core::id::SessionId;
use ciam_core::secret::SecretString;
use ciam_core::user::{ProfileAttributes, User};
use ciam_core::{Ciam, Error, Registration, SignedIn, VerifyOutcome};

use crate::extract::{Authenticated, ClientContext, Json, Layer, json_response, to_json};
use crate::prefix::At;
use crate::rejection::ApiError;

/// Largest request body accepted by the endpoints, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Most audit entries returned by `GET /audit`.
const AUDIT_LIMIT: u32 = 50;

/// The profiling stage `GET /me` asks prompts for unless `?stage=` says otherwise.
const DEFAULT_STAGE: &str = "signup";

/// The JSON authentication API, to mount under any prefix (for example with
/// `Router::nest("/auth", ciam_axum::router(ciam))`). Needs [`CiamLayer`](crate::CiamLayer)
/// around it (or around the whole app). See the [crate docs](crate#endpoints) for the
/// endpoints.
///
/// The returned router fits into an application router of any state type `S`. To serve it
/// under a prefix, [`router_at`] costs less per request than `nest`.
pub fn router<S>(ciam: Ciam) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router_at("", ciam)
}

/// [`router`] with its routes registered at `prefix` + path, to [`merge`](Router::merge)
/// into the application: `Router::new().merge(router_at("/auth", ciam))` answers exactly as
/// `Router::new().nest("/auth", router(ciam))` does, without the URI rewrite and the
/// `NestedPath` extension `nest` adds to every request it routes (on `GET /me`, about 4,500
/// instructions and 10 allocations per request, measured in `benches/README.md`). `GET
/// {prefix}/openapi.json` names `prefix` as the server, as under `nest`.
///
/// `prefix` is empty (the root) or starts with `/`; a trailing `/` is ignored.
///
/// ```
/// # fn app(ciam: ciam_core::Ciam) -> axum::Router {
/// axum::Router::new()
///     .merge(ciam_axum::router_at("/auth", ciam.clone()))
///     .layer(ciam_axum::CiamLayer::new(ciam))
/// # }
/// ```
///
/// # Panics
///
/// When `prefix` is not empty and does not start with `/`, or holds a path parameter or a
/// wildcard (the endpoints' path extractors would see its captures; `nest` such a router
/// instead).
pub fn router_at<S>(prefix: &str, ciam: Ciam) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let routes = At::new(prefix)
        .route(crate::openapi::OPENAPI_PATH, get(crate::openapi::serve))
        .route("/register", post(register))
        .route("/verify-email", post(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/password/forgot", post(forgot_password))
        .route("/password/reset", post(reset_password))
        .route("/password/change", post(change_password))
        .route("/email/change", post(change_email))
        .route("/profile", patch(update_profile))
        .route("/audit", get(audit))
        .route("/account", delete(delete_account));
    let routes = crate::mfa::routes(routes);
    #[cfg(feature = "passkeys")]
    let routes = crate::passkeys::routes(routes);
    #[cfg(feature = "tokens")]
    let routes = crate::tokens::routes(routes);
    #[cfg(feature = "federation")]
    let routes = crate::federation::routes(routes);
    routes
        .into_router()
        .layer(crate::no_store::answers())
        .with_state(ciam)
}

/// The caller's view of an account. Serialized straight from borrowed fields (no JSON tree
/// is built): `GET /me` is the hottest authenticated endpoint.
#[derive(Serialize)]
struct UserView<'a> {
    id: ciam_core::id::UserId,
    email: Option<&'a str>,
    email_verified: bool,
    profile: &'a ProfileAttributes,
    /// Rendered once per schema (`Ciam::profile_prompts_json`): the same JSON as the
    /// `FieldSpec`s, without serializing them on every `GET /me`.
    prompts: Vec<&'a serde_json::value::RawValue>,
    #[serde(with = "ciam_core::rfc3339")]
    created_at: OffsetDateTime,
}

fn user_view<'a>(ciam: &'a Ciam, user: &'a User, stage: &str) -> UserView<'a> {
    UserView {
        id: user.id,
        email: user.email.as_ref().map(|e| e.as_str()),
        email_verified: user.email_verified(),
        profile: &user.profile,
        prompts: ciam.profile_prompts_json(user, stage),
        created_at: user.created_at,
    }
}

/// The answer of `GET /me`.
#[derive(Serialize)]
struct MeView<'a> {
    user: UserView<'a>,
    session: &'a ciam_core::AuthContext,
}

/// A response carrying a fresh session cookie and the session description.
pub(crate) fn signed_in(ciam: &Ciam, layer: &Layer, s: &SignedIn) -> Result<Response, ApiError> {
    let policy = ciam.policy().session;
    // The browser keeps the cookie until the session's absolute end; the idle timeout is
    // enforced server-side on every request, so it need not be mirrored in the cookie.
    let max_age = s.session.created_at + policy.absolute_lifetime - OffsetDateTime::now_utc();
    let cookie = layer
        .0
        .0
        .cookie
        .session_cookie(&s.token, max_age)
        .ok_or_else(|| {
            ApiError::from(Error::Internal(
                "session token cannot be put in a cookie".into(),
            ))
        })?;
    // Consents to ask for (a material policy change, say): the session is valid, and the
    // purposes listed stay denied by the ledger until the user answers.
    let body = json!({
        "user": user_view(ciam, &s.user, DEFAULT_STAGE),
        "session": s.session,
        "consent_required": s.consent_required,
    });
    let mut response = ([(SET_COOKIE, cookie)], Json(body)).into_response();
    if let Some(device) = &s.device_token {
        let max_age = ciam.policy().trusted_device_ttl;
        if let Some(value) = layer.0.0.cookie.device_cookie(device, max_age) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    Ok(response)
}

pub(crate) fn status(code: StatusCode, status: &str) -> Response {
    (code, Json(json!({ "status": status }))).into_response()
}

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: SecretString,
    #[serde(default)]
    profile: ProfileAttributes,
}

async fn register(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<RegisterBody>,
) -> Result<Response, ApiError> {
    let registration =
        Registration::new(body.email, Some(body.password)).with_profile(body.profile);
    ciam.register(registration, &ctx).await?;
    Ok(status(StatusCode::ACCEPTED, "verification_sent"))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn verify_email(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<TokenBody>,
) -> Result<Response, ApiError> {
    let done = match ciam.verify_email(&body.token, &ctx).await? {
        VerifyOutcome::EmailVerified(_) => "email_verified",
        VerifyOutcome::EmailChanged(_) => "email_changed",
        _ => "done",
    };
    Ok(status(StatusCode::OK, done))
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

async fn resend_verification(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<EmailBody>,
) -> Result<Response, ApiError> {
    ciam.resend_verification(&body.email, &ctx).await?;
    Ok(status(StatusCode::ACCEPTED, "verification_sent"))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: SecretString,
    /// What the application's CAPTCHA widget produced, for the configured bot check.
    #[serde(default)]
    captcha_token: Option<SecretString>,
}

async fn login(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    let ctx = crate::mfa::with_captcha(ctx, body.captcha_token);
    let outcome = ciam
        .sign_in_password(&body.email, &body.password, &ctx)
        .await?;
    crate::mfa::sign_in_response(&ciam, &layer, outcome)
}

async fn logout(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    if let Some(token) = &ctx.session_token {
        ciam.sign_out(token, &ctx).await?;
    }
    Ok((
        [(SET_COOKIE, layer.0.0.cookie.clear_cookie())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

#[derive(Deserialize)]
struct StageQuery {
    stage: Option<String>,
}

async fn me(
    State(ciam): State<Ciam>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    Query(q): Query<StageQuery>,
) -> Result<Response, ApiError> {
    // Read-only: the in-process copy (at most the user-cache TTL old) saves a store read on
    // the hottest authenticated endpoint.
    let user = ciam.user_for_display(auth.user_id).await?;
    let stage = q.stage.as_deref().unwrap_or(DEFAULT_STAGE);
    // The answer rendered from this very copy, stage and session, when there is one.
    let answers = &layer.0.0.me_answers;
    if let Some(body) = answers.get(&user, stage, &auth) {
        return Ok(json_response(body));
    }
    let view = MeView {
        user: user_view(&ciam, &user, stage),
        session: &auth,
    };
    let body = Bytes::from(to_json(&view)?);
    answers.put(&user, stage, &auth, body.clone());
    Ok(json_response(body))
}

async fn sessions(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
) -> Result<Response, ApiError> {
    let sessions = ciam.list_sessions(&auth).await?;
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

async fn revoke_session(
    State(ciam): State<Ciam>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Ok(id) = id.parse::<SessionId>() else {
        return Err(ApiError::not_found());
    };
    if !ciam.revoke_session(&auth, id, &ctx).await? {
        return Err(ApiError::not_found());
    }
    if id == auth.session_id {
        return Ok((
            [(SET_COOKIE, layer.0.0.cookie.clear_cookie())],
            StatusCode::NO_CONTENT,
        )
            .into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_others(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let revoked = ciam.revoke_other_sessions(&auth, &ctx).await?;
    Ok(Json(json!({ "revoked": revoked })).into_response())
}

async fn forgot_password(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<EmailBody>,
) -> Result<Response, ApiError> {
    ciam.forgot_password(&body.email, &ctx).await?;
    Ok(status(StatusCode::ACCEPTED, "reset_sent_if_account_exists"))
}

#[derive(Deserialize)]
struct ResetBody {
    token: String,
    password: SecretString,
}

async fn reset_password(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<ResetBody>,
) -> Result<Response, ApiError> {
    ciam.reset_password(&body.token, &body.password, &ctx)
        .await?;
    // Every session of the account has ended; if this browser held one, forget it.
    let mut response = status(StatusCode::OK, "password_reset");
    if ctx.session_token.is_some() {
        response
            .headers_mut()
            .append(SET_COOKIE, layer.0.0.cookie.clear_cookie());
    }
    Ok(response)
}

#[derive(Deserialize)]
struct ChangePasswordBody {
    current_password: Option<SecretString>,
    new_password: SecretString,
}

async fn change_password(
    State(ciam): State<Ciam>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<ChangePasswordBody>,
) -> Result<Response, ApiError> {
    let s = ciam
        .change_password(
            &auth,
            body.current_password.as_ref(),
            &body.new_password,
            &ctx,
        )
        .await?;
    signed_in(&ciam, &layer, &s)
}

#[derive(Deserialize)]
struct ChangeEmailBody {
    email: String,
    current_password: Option<SecretString>,
}

async fn change_email(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<ChangeEmailBody>,
) -> Result<Response, ApiError> {
    ciam.request_email_change(&auth, &body.email, body.current_password.as_ref(), &ctx)
        .await?;
    Ok(status(StatusCode::ACCEPTED, "confirmation_sent"))
}

#[derive(Deserialize)]
struct DeleteAccountBody {
    #[serde(default)]
    current_password: Option<SecretString>,
}

async fn delete_account(
    State(ciam): State<Ciam>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<DeleteAccountBody>,
) -> Result<Response, ApiError> {
    ciam.delete_account(&auth, body.current_password.as_ref(), &ctx)
        .await?;
    Ok((
        [(SET_COOKIE, layer.0.0.cookie.clear_cookie())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

async fn update_profile(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    Json(changes): Json<ProfileAttributes>,
) -> Result<Response, ApiError> {
    let user = ciam.update_profile(&auth, changes).await?;
    Ok(Json(json!({ "user": user_view(&ciam, &user, DEFAULT_STAGE) })).into_response())
}

async fn audit(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
) -> Result<Response, ApiError> {
    let entries = ciam.audit_log(auth.user_id, AUDIT_LIMIT).await?;
    Ok(Json(json!({ "entries": entries })).into_response())
}
