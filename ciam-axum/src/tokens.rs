//! API tokens over HTTP (feature `tokens`): the token endpoints of [`router`](crate::router),
//! the JWKS route ([`jwks_router`]) and the bearer extractors.
//!
//! - `POST /token` (session cookie, CSRF-checked like every cookie request) answers
//!   `{access_token, token_type: "Bearer", refresh_token, expires_in}` for the caller's
//!   session.
//! - `POST /token/refresh` with `{refresh_token}` needs no cookie and answers the same shape
//!   with a new pair; a refused refresh token is 400 `{"error": "invalid_grant"}` (RFC 6749
//!   §5.2), whatever the reason (unknown, spent, reused, session ended).
//! - `GET /.well-known/jwks.json` publishes the keys, cacheable for 5 minutes.
//!
//! Token answers carry `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;

use ciam_core::secret::SecretString;
use ciam_core::tokens::AccessToken;
use ciam_core::{Ciam, Error, TokenError, TokenPair};

use crate::extract::{Authenticated, ClientContext, Json};
use crate::layer::Installed;
use crate::prefix::At;
use crate::rejection::ApiError;

/// How long verifiers may cache the JWKS document, in seconds. A verifier meeting an unknown
/// `kid` should fetch it again; to avoid even that, publish the next key ahead of using it
/// (`TokenConfig::previous_key`) before making it the signing key.
pub const JWKS_MAX_AGE: u32 = 300;

/// The token routes, relative to the router's prefix.
pub(crate) fn routes(at: At<Ciam>) -> At<Ciam> {
    at.route("/token", post(issue))
        .route("/token/refresh", post(refresh))
}

/// `GET /.well-known/jwks.json`: the JWKS document (RFC 7517 §5) of the keys access tokens
/// are verified with, at the root of the site (mount it without a prefix). 404 when tokens are
/// not configured.
///
/// ```
/// # fn app(ciam: ciam_core::Ciam) -> axum::Router {
/// axum::Router::new()
///     .nest("/auth", ciam_axum::router(ciam.clone()))
///     .merge(ciam_axum::jwks_router(ciam.clone()))
///     .layer(ciam_axum::CiamLayer::new(ciam))
/// # }
/// ```
pub fn jwks_router<S>(ciam: Ciam) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(ciam)
}

async fn jwks(State(ciam): State<Ciam>) -> Response {
    match ciam.jwks() {
        Some(jwks) => {
            let cache = format!("public, max-age={JWKS_MAX_AGE}");
            let mut response = axum::Json(jwks).into_response();
            if let Ok(value) = HeaderValue::from_str(&cache) {
                response.headers_mut().insert(CACHE_CONTROL, value);
            }
            response
        }
        None => ApiError::not_found().into_response(),
    }
}

fn pair_response(pair: &TokenPair) -> Response {
    let body = json!({
        "access_token": pair.access_token.expose(),
        "token_type": "Bearer",
        "refresh_token": pair.refresh_token.expose(),
        "expires_in": pair.expires_in,
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn issue(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    let pair = ciam.issue_tokens(&auth, &ctx).await?;
    Ok(pair_response(&pair))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: SecretString,
}

async fn refresh(
    State(ciam): State<Ciam>,
    ClientContext(ctx): ClientContext,
    Json(body): Json<RefreshBody>,
) -> Response {
    match ciam.refresh_tokens(body.refresh_token.expose(), &ctx).await {
        Ok(pair) => pair_response(&pair),
        Err(e @ Error::InvalidRefreshToken) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": e.code(), "message": e.public_message() })),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The caller of an API route, from `Authorization: Bearer <access token>`, verified without
/// a store round trip ([`Ciam::verify_access_token`]): signature, algorithm, `typ`, issuer,
/// audience, expiry. A token stays accepted until it expires even if its session ended; use
/// [`BearerAuthenticatedLive`] where that matters.
///
/// Rejects with 401 and `WWW-Authenticate: Bearer` without a token, `WWW-Authenticate:
/// Bearer error="invalid_token"` with a bad one (RFC 6750 §3), and a JSON body
/// `{"error": "unauthenticated" | "invalid_token"}`. Needs [`CiamLayer`](crate::CiamLayer).
///
/// ```
/// use ciam_axum::BearerAuthenticated;
///
/// async fn orders(BearerAuthenticated(token): BearerAuthenticated) -> String {
///     format!("orders of {}", token.user_id)
/// }
/// let _app: axum::Router = axum::Router::new().route("/api/orders", axum::routing::get(orders));
/// ```
#[derive(Debug, Clone)]
pub struct BearerAuthenticated(pub AccessToken);

/// Like [`BearerAuthenticated`], and the token's session must still exist
/// ([`Ciam::verify_access_token_live`], one store read): sign-out and revocation take effect
/// at once. A store outage answers 503.
#[derive(Debug, Clone)]
pub struct BearerAuthenticatedLive(pub AccessToken);

/// The bearer token of a request, and the engine, or the rejection.
fn bearer(parts: &Parts) -> Result<(&str, Ciam), BearerRejection> {
    let ciam = parts
        .extensions
        .get::<Installed>()
        .map(|i| i.0.ciam.clone())
        .ok_or(BearerRejection::LayerMissing)?;
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(BearerRejection::Missing)?;
    let text = value.to_str().map_err(|_| BearerRejection::InvalidToken)?;
    let (scheme, token) = text.split_once(' ').ok_or(BearerRejection::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerRejection::Missing);
    }
    Ok((token.trim(), ciam))
}

impl<S: Send + Sync> FromRequestParts<S> for BearerAuthenticated {
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (token, ciam) = bearer(parts)?;
        ciam.verify_access_token(token)
            .map(Self)
            .map_err(BearerRejection::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerAuthenticatedLive {
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (token, ciam) = bearer(parts)?;
        ciam.verify_access_token_live(token)
            .await
            .map(Self)
            .map_err(BearerRejection::from)
    }
}

/// Why a bearer extractor refused a request. The token itself is never logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerRejection {
    /// No `Authorization: Bearer` header: 401, `WWW-Authenticate: Bearer`.
    Missing,
    /// The token is malformed, forged, expired, for another audience, or (live) its session
    /// ended: 401, `WWW-Authenticate: Bearer error="invalid_token"`.
    InvalidToken,
    /// The session store could not be read (live verification): 503.
    Unavailable,
    /// [`CiamLayer`](crate::CiamLayer) is missing or tokens are not configured: 500.
    LayerMissing,
}

impl From<TokenError> for BearerRejection {
    fn from(e: TokenError) -> Self {
        tracing::debug!(reason = %e, "bearer token refused");
        match e {
            TokenError::Store(_) => Self::Unavailable,
            TokenError::NotConfigured => Self::LayerMissing,
            _ => Self::InvalidToken,
        }
    }
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let (status, challenge, code, message) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                Some("Bearer"),
                "unauthenticated",
                "An access token is required.",
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                Some(r#"Bearer error="invalid_token""#),
                "invalid_token",
                "The access token is invalid or has expired.",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "unavailable",
                "The service is busy. Please try again in a moment.",
            ),
            Self::LayerMissing => {
                tracing::error!(
                    "bearer extractor without CiamLayer, or tokens not configured (CiamBuilder::tokens)"
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "internal",
                    "Something went wrong.",
                )
            }
        };
        let mut response =
            (status, Json(json!({ "error": code, "message": message }))).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::{Body, to_bytes};
    use axum::routing::post;
    use ciam_core::tokens::TokenAlgorithm;
    use ciam_core::{Ciam, TokenConfig};
    use ciam_storage::memory::MemoryBackend;
    use http::{Request, StatusCode, header};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::CiamLayer;

    fn app() -> Router {
        let ciam = Ciam::builder()
            .backend(Arc::new(MemoryBackend::new()))
            .tokens(TokenConfig::generated(TokenAlgorithm::EdDsa).unwrap())
            .build()
            .unwrap();
        Router::new()
            .route(
                "/api/ping",
                post(|BearerAuthenticated(t): BearerAuthenticated| async move {
                    t.user_id.to_string()
                }),
            )
            .nest("/auth", crate::router(ciam.clone()))
            .merge(jwks_router(ciam.clone()))
            .layer(CiamLayer::new(ciam))
            .layer(crate::tests::peer())
    }

    async fn call(req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
        let res = app().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn post_to(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut b = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(r#"{"refresh_token":"x"}"#)).unwrap()
    }

    #[tokio::test]
    async fn csrf_exemptions_need_a_cookieless_request() {
        // The refresh path without any cookie or Origin reaches the handler (400 invalid_grant);
        // with a cookie it is checked like every cookie request.
        let (status, _, body) = call(post_to("/auth/token/refresh", &[])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (status, _, body) =
            call(post_to("/auth/token/refresh", &[("cookie", "other=1")])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf"))
        );
        // Other paths without cookie or Origin stay refused.
        let (status, _, _) = call(post_to("/auth/login", &[])).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // A Bearer request without cookies skips the check (and is then refused as a bad
        // token, RFC 6750 §3); Basic credentials, which browsers attach on their own, do not.
        let (status, headers, body) = call(post_to(
            "/api/ping",
            &[("authorization", "Bearer abc.def.ghi")],
        ))
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(body["error"], "invalid_token");
        let (status, _, body) =
            call(post_to("/api/ping", &[("authorization", "Basic dTpw")])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf"))
        );
        let (status, _, body) = call(post_to(
            "/api/ping",
            &[("authorization", "Bearer abc.def.ghi"), ("cookie", "a=b")],
        ))
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf"))
        );
    }

    #[tokio::test]
    async fn jwks_route_is_public_and_cacheable() {
        let req = Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = call(req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(body["keys"][0]["alg"], "EdDSA");
        // Without a token, the challenge names the scheme and no error (RFC 6750 §3.1).
        let req = Request::post("/api/ping").header("origin", "http://localhost:3000");
        let (status, headers, _) = call(req.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    }
}
