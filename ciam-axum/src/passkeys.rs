//! The passkey endpoints of [`router`](crate::router) (feature `passkeys`).
//!
//! Options are answered as WebAuthn L3 JSON (`PublicKeyCredentialCreationOptionsJSON` /
//! `PublicKeyCredentialRequestOptionsJSON`, the `publicKey` member itself), ready for
//! `PublicKeyCredential.parseCreationOptionsFromJSON()`; responses are taken as
//! `PublicKeyCredential.toJSON()` in a `credential` member.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use ciam_core::id::CredentialId;
use ciam_core::secret::SecretString;
use ciam_core::user::ProfileAttributes;
use ciam_core::{Ciam, Registration};

use crate::extract::{Authenticated, ClientContext, Json, Layer};
use crate::prefix::At;
use crate::rejection::ApiError;
use crate::routes::{signed_in, status};

/// The passkey routes, relative to the router's prefix.
pub(crate) fn routes(at: At<Ciam>) -> At<Ciam> {
    at.route("/passkeys", axum::routing::get(list))
        .route("/passkeys/{id}", patch(rename).delete(remove))
        .route("/passkeys/register/start", post(register_start))
        .route("/passkeys/register/finish", post(register_finish))
        .route("/passkeys/signup/start", post(signup_start))
        .route("/passkeys/signup/finish", post(signup_finish))
        .route("/passkeys/login/start", post(login_start))
        .route("/passkeys/login/finish", post(login_finish))
        .route("/passkeys/step-up/start", post(step_up_start))
        .route("/passkeys/step-up/finish", post(step_up_finish))
}

/// `{"credential": <PublicKeyCredential.toJSON()>, "name"?: "...", "captcha_token"?: "..."}`.
#[derive(Deserialize)]
struct FinishBody {
    credential: Value,
    #[serde(default)]
    name: Option<String>,
    /// What the application's CAPTCHA widget produced, for the configured bot check; read
    /// by `POST /passkeys/login/finish` (a sign-in is risk-assessed like a password's).
    #[serde(default)]
    captcha_token: Option<SecretString>,
}

impl FinishBody {
    fn credential_json(&self) -> String {
        self.credential.to_string()
    }
}

#[derive(Deserialize)]
struct SignUpBody {
    email: String,
    #[serde(default)]
    profile: ProfileAttributes,
}

#[derive(Deserialize)]
struct LoginStartBody {
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct RenameBody {
    name: String,
}

fn parse_id(id: &str) -> Result<CredentialId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

async fn list(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
) -> Result<Response, ApiError> {
    let passkeys = ciam.passkeys(&auth).await?;
    Ok(Json(json!({ "passkeys": passkeys })).into_response())
}

async fn rename(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
    Json(body): Json<RenameBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let passkey = ciam.rename_passkey(&auth, id, &body.name, &ctx).await?;
    Ok(Json(json!({ "passkey": passkey })).into_response())
}

async fn remove(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    ciam.delete_passkey(&auth, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn register_start(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let options = ciam.passkey_registration_options(&auth, &ctx).await?;
    Ok(Json(options).into_response())
}

async fn register_finish(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<FinishBody>,
) -> Result<Response, ApiError> {
    let passkey = ciam
        .finish_passkey_registration(&auth, &body.credential_json(), body.name.as_deref(), &ctx)
        .await?;
    Ok(Json(json!({ "passkey": passkey })).into_response())
}

async fn signup_start(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<SignUpBody>,
) -> Result<Response, ApiError> {
    let registration = Registration::new(body.email, None).with_profile(body.profile);
    let options = ciam.passkey_sign_up_options(registration, &ctx).await?;
    Ok(Json(options).into_response())
}

async fn signup_finish(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<FinishBody>,
) -> Result<Response, ApiError> {
    ciam.finish_passkey_sign_up(&body.credential_json(), body.name.as_deref(), &ctx)
        .await?;
    Ok(status(StatusCode::ACCEPTED, "verification_sent"))
}

async fn login_start(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<LoginStartBody>,
) -> Result<Response, ApiError> {
    let options = ciam
        .passkey_sign_in_options(body.email.as_deref(), &ctx)
        .await?;
    Ok(Json(options).into_response())
}

async fn login_finish(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Json(body): Json<FinishBody>,
) -> Result<Response, ApiError> {
    let credential = body.credential_json();
    let ctx = crate::mfa::with_captcha(ctx, body.captcha_token);
    let outcome = ciam.finish_passkey_sign_in(&credential, &ctx).await?;
    crate::mfa::sign_in_response(&ciam, &layer, outcome)
}

async fn step_up_start(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let options = ciam.passkey_step_up_options(&auth, &ctx).await?;
    Ok(Json(options).into_response())
}

async fn step_up_finish(
    State(ciam): State<Ciam>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<FinishBody>,
) -> Result<Response, ApiError> {
    let s = ciam
        .finish_passkey_step_up(&auth, &body.credential_json(), &ctx)
        .await?;
    signed_in(&ciam, &layer, &s)
}
