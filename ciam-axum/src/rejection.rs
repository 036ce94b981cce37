//! Error responses: the mapping of engine errors to HTTP, and the rejections of this crate's
//! extractors and layer.
//!
//! Every error body is JSON of the form `{"error": "<code>", "message": "<text>"}`. The code
//! is stable and machine-readable; the message is safe to show to an end user. Neither says
//! whether an account exists, and neither echoes input. The detail goes to `tracing`.

use std::fmt;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header::RETRY_AFTER};
use serde_json::json;

use ciam_core::{Error, ErrorKind};

/// Builds a JSON error response.
pub(crate) fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// An engine error turned into an HTTP response.
///
/// | [`ErrorKind`] | status |
/// |---|---|
/// | `InvalidInput` | 400 |
/// | `Unauthorized` | 401 |
/// | `StepUpRequired` | 401, code `step_up_required`, with `aal` and `max_age` (see below) |
/// | `Forbidden` | 403 |
/// | `Conflict` | 409 |
/// | `RateLimited` | 429 with `Retry-After` |
/// | `Unavailable` | 503 with `Retry-After` |
/// | `Internal` (and anything newer) | 500 |
///
/// Handlers can return `Result<T, ApiError>` and use `?` on engine calls.
///
/// # Step-up answers
///
/// Every `step_up_required` body, from the engine or from [`RequireAal`](crate::RequireAal),
/// has the same shape, so a client can tell what to do:
///
/// ```json
/// {"error": "step_up_required", "message": "...", "aal": 2, "max_age": 300}
/// ```
///
/// `aal` is the assurance level (NIST SP 800-63B) the session must reach: 2 or 3 asks for a
/// second factor or a passkey. `max_age` is how recent, in seconds, the authentication must
/// be; `null` when no age is named. [`Error::AssuranceRequired`] carries both;
/// [`Error::StepUpRequired`] (the current password or a recent sign-in) gives `aal` 1 and
/// `max_age` `null`: a fresh sign-in of any kind, or the current password in the body, will do.
pub struct ApiError(Repr);

enum Repr {
    Engine(Error),
    NotFound,
}

impl ApiError {
    /// A 404 `{"error": "not_found"}`, for a resource that does not exist or is not the
    /// caller's (the two are not told apart).
    pub fn not_found() -> Self {
        Self(Repr::NotFound)
    }

    /// The engine error, when this wraps one.
    pub fn engine_error(&self) -> Option<&Error> {
        match &self.0 {
            Repr::Engine(e) => Some(e),
            Repr::NotFound => None,
        }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Repr::Engine(e) => status_for(e.kind()),
            Repr::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The machine-readable code in the body.
    pub fn code(&self) -> &'static str {
        match &self.0 {
            Repr::Engine(e) => e.code(),
            Repr::NotFound => "not_found",
        }
    }
}

/// The HTTP status for an engine error kind.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized | ErrorKind::StepUpRequired => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(Repr::Engine(e))
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Engine(e) => f.debug_tuple("ApiError").field(e).finish(),
            Repr::NotFound => f.write_str("ApiError(NotFound)"),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Engine(e) => fmt::Display::fmt(e, f),
            Repr::NotFound => f.write_str("not found"),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Repr::Engine(e) => Some(e),
            Repr::NotFound => None,
        }
    }
}

/// The error and its source chain on one line, for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = match self.0 {
            Repr::Engine(e) => e,
            Repr::NotFound => return error_body(StatusCode::NOT_FOUND, "not_found", "Not found."),
        };
        let status = status_for(e.kind());
        if matches!(e, Error::Overloaded { .. }) {
            // Load shedding is the designed answer past hashing capacity, not a fault: at
            // error level a sign-in storm would write one line per refused request, and the
            // logging would cost more than the refusal.
            tracing::debug!(code = e.code(), error = %chain(&e), "request shed (at capacity)");
        } else if status.is_server_error() {
            tracing::error!(code = e.code(), error = %chain(&e), "request failed");
        } else {
            tracing::debug!(code = e.code(), error = %chain(&e), "request refused");
        }
        let mut response = match &e {
            Error::AssuranceRequired { aal, max_age } => {
                step_up_body(&e.public_message(), aal.level(), *max_age)
            }
            Error::StepUpRequired => step_up_body(&e.public_message(), 1, None),
            _ => error_body(status, e.code(), &e.public_message()),
        };
        if let Some(after) = e.retry_after() {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// The 401 `step_up_required` body (see [`ApiError`]): the level to reach and, when named, how
/// recent the authentication must be, in whole seconds (rounded up).
fn step_up_body(message: &str, aal: u8, max_age: Option<time::Duration>) -> Response {
    let max_age = max_age.map(|d| {
        let whole = d.whole_seconds();
        (whole + i64::from(d.subsec_nanoseconds() > 0)).max(0)
    });
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "error": "step_up_required",
            "message": message,
            "aal": aal,
            "max_age": max_age,
        })),
    )
        .into_response()
}

/// Why [`Authenticated`](crate::Authenticated) (or another extractor needing the layer)
/// refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No valid session: 401 `{"error": "unauthenticated"}`.
    Unauthenticated,
    /// [`CiamLayer`](crate::CiamLayer) is not installed around the route: 500. A
    /// configuration bug, logged as an error.
    LayerMissing,
    /// Signed in, but the session's assurance level is below what the route needs
    /// ([`RequireAal`](crate::RequireAal)): 401
    /// `{"error": "step_up_required", "aal": n, "max_age": null}`, the shape of every step-up
    /// answer (see [`ApiError`]).
    AssuranceRequired {
        /// The level the route needs.
        aal: u8,
    },
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated => error_body(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Please sign in.",
            ),
            Self::AssuranceRequired { aal } => step_up_body(
                "Please confirm it's you (second factor or passkey) to continue.",
                aal,
                None,
            ),
            Self::LayerMissing => {
                tracing::error!("CiamLayer is not installed around a route that needs it");
                error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong.",
                )
            }
        }
    }
}

/// Why [`Json`](crate::Json) refused a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonRejection {
    /// The body is not JSON, or not of the expected shape: 400 `{"error": "invalid_json"}`.
    Invalid,
    /// The `Content-Type` is not `application/json`: 415 `{"error": "unsupported_media_type"}`.
    NotJson,
    /// The body is over the size limit: 413 `{"error": "payload_too_large"}`.
    TooLarge,
}

impl From<axum::extract::rejection::JsonRejection> for JsonRejection {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as R;
        tracing::debug!(detail = %r.body_text(), "JSON body refused");
        match r {
            R::MissingJsonContentType(_) => Self::NotJson,
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            _ => Self::Invalid,
        }
    }
}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid => error_body(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "The request body is not valid JSON of the expected shape.",
            ),
            Self::NotJson => error_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the request body as application/json.",
            ),
            Self::TooLarge => error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
        }
    }
}

/// A state-changing request that failed the origin check: 403 `{"error": "csrf"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CsrfRejection;

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> Response {
        error_body(StatusCode::FORBIDDEN, "csrf", "Cross-site request refused.")
    }
}

/// The 500 `{"error": "client_ip_unresolved"}` answer of [`CiamLayer`](crate::CiamLayer) to a
/// request whose client IP cannot be decided: a server misconfiguration, explained in the log.
pub(crate) fn client_ip_unresolved() -> Response {
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "client_ip_unresolved",
        "The server cannot tell where this request comes from. This is a problem on our side.",
    )
}

/// A 403 `{"error": "verification_required"}` answer to a sign-in whose password was right
/// but whose e-mail address is not verified yet.
pub(crate) fn verification_required() -> Response {
    error_body(
        StatusCode::FORBIDDEN,
        "verification_required",
        "Please verify your e-mail address first. We have sent you a new link.",
    )
}
