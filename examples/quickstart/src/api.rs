//! API tokens for the quickstart: the signing key and settings, and two small API routes that
//! take the caller from `Authorization: Bearer <access token>`.

use axum::Router;
use axum::routing::{get, post};
use ciam::axum::{BearerAuthenticated, BearerAuthenticatedLive};
use ciam::tokens::{SigningKey, TokenAlgorithm};
use ciam::{Ciam, TokenConfig};
use serde_json::Value;

/// The token settings: the key from `CIAM_TOKEN_KEY` (PKCS#8, PEM or base64 DER, Ed25519 or
/// P-256), or an Ed25519 key drawn now (with a warning), and the refresh grace window from
/// `CIAM_TOKEN_REFRESH_GRACE` (seconds).
pub(crate) fn token_config(
    key: Option<&str>,
    grace_secs: Option<i64>,
) -> Result<TokenConfig, String> {
    let key = match key {
        Some(text) => SigningKey::from_pkcs8_text(text)
            .map_err(|e| format!("CIAM_TOKEN_KEY cannot be used: {e}"))?,
        None => {
            tracing::warn!(
                "CIAM_TOKEN_KEY is not set: access tokens are signed with a key drawn now; they stop verifying after a restart and other instances refuse them"
            );
            SigningKey::generate(TokenAlgorithm::EdDsa)
                .map_err(|e| format!("cannot generate a token signing key: {e}"))?
        }
    };
    tracing::info!(
        kid = key.kid(),
        alg = key.algorithm().as_str(),
        "token signing key"
    );
    let mut config = TokenConfig::new(key);
    if let Some(secs) = grace_secs {
        config = config.refresh_grace(time::Duration::seconds(secs));
    }
    Ok(config)
}

/// `GET /api/me` (store-free verification) and `POST /api/ping` (live verification: refused
/// once the token's session has ended).
pub(crate) fn routes() -> Router<Ciam> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/ping", post(ping))
}

async fn me(BearerAuthenticated(token): BearerAuthenticated) -> axum::Json<Value> {
    axum::Json(crate::api_me(&token))
}

async fn ping(BearerAuthenticatedLive(token): BearerAuthenticatedLive) -> axum::Json<Value> {
    axum::Json(crate::api_ping(&token))
}
