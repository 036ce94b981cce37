//! Extractors: the signed-in caller, the request context, and a JSON body with JSON errors.

use std::convert::Infallible;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;

use ciam_core::{AuthContext, RequestContext};

use crate::layer::Installed;
use crate::rejection::{AuthRejection, JsonRejection};

/// The signed-in caller. Rejects with 401 `{"error": "unauthenticated"}` when the request
/// has no valid session (and with 500 when [`CiamLayer`](crate::CiamLayer) is missing).
#[derive(Debug, Clone)]
pub struct Authenticated(pub AuthContext);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.extensions.get::<AuthContext>() {
            return Ok(Self(auth.clone()));
        }
        if parts.extensions.get::<Installed>().is_none() {
            return Err(AuthRejection::LayerMissing);
        }
        Err(AuthRejection::Unauthenticated)
    }
}

/// The signed-in caller, whose session reached assurance level `N` (1, 2 or 3; NIST SP
/// 800-63B). Rejects like [`Authenticated`] without a session, and with 401
/// `{"error": "step_up_required", "aal": N}` when the session's level is lower, so the client
/// steps up (a second factor or a passkey) and retries.
///
/// ```
/// use ciam_axum::RequireAal;
///
/// async fn export_data(RequireAal(me): RequireAal<2>) -> String {
///     format!("{} at AAL{}", me.user_id, me.aal.level())
/// }
/// let _app: axum::Router = axum::Router::new().route("/export", axum::routing::get(export_data));
/// ```
#[derive(Debug, Clone)]
pub struct RequireAal<const N: u8>(pub AuthContext);

impl<S: Send + Sync, const N: u8> FromRequestParts<S> for RequireAal<N> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(auth) = Authenticated::from_request_parts(parts, state).await?;
        if auth.aal.level() >= N {
            Ok(Self(auth))
        } else {
            Err(AuthRejection::AssuranceRequired { aal: N })
        }
    }
}

/// The signed-in caller, if any. Never rejects.
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<AuthContext>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthenticated {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<AuthContext>().cloned()))
    }
}

/// The [`RequestContext`] built by [`CiamLayer`](crate::CiamLayer) (client IP, User-Agent,
/// presented session token), to pass to engine calls. Rejects with 500 when the layer is
/// missing.
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for ClientContext {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Self)
            .ok_or(AuthRejection::LayerMissing)
    }
}

/// The layer's configuration, for this crate's handlers.
pub(crate) struct Layer(pub(crate) Installed);

impl<S: Send + Sync> FromRequestParts<S> for Layer {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Installed>()
            .cloned()
            .map(Self)
            .ok_or(AuthRejection::LayerMissing)
    }
}

/// A JSON request or response body.
///
/// Like [`axum::Json`], but a body that is malformed, of the wrong shape, too large or not
/// `application/json` is refused with a JSON error ([`JsonRejection`]) instead of plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// The first buffer a JSON answer is written into: most answers of this crate (`GET /me`,
/// sign-in) fit, so they are written without regrowing it (axum's `Json` starts at 128 bytes
/// and doubles).
const ANSWER_CAPACITY: usize = 1024;

impl<T: Serialize> IntoResponse for Json<T> {
    /// `application/json`; a value that cannot be serialized (a map with non-string keys) is
    /// a 500 `internal`, as an engine fault is.
    fn into_response(self) -> Response {
        match to_json(&self.0) {
            Ok(body) => json_response(body),
            Err(e) => crate::rejection::ApiError::from(e).into_response(),
        }
    }
}

/// `value` as JSON, in a buffer of [`ANSWER_CAPACITY`].
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ciam_core::Error> {
    let mut body = Vec::with_capacity(ANSWER_CAPACITY);
    serde_json::to_writer(&mut body, value).map_err(|e| ciam_core::Error::Internal(Box::new(e)))?;
    Ok(body)
}

/// A 200 answer of `application/json` `body`.
pub(crate) fn json_response(body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
