//! Extractors: the signed-in caller and the request context, with ciam-axum's status codes
//! and JSON bodies.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use axum::response::IntoResponse;
use ciam_axum::{AuthRejection, Resolved};
use ciam_core::{AuthContext, RequestContext};

use crate::convert;

/// A refusal by one of this crate's extractors or by [`CiamMiddleware`](crate::CiamMiddleware):
/// the status, headers and JSON body ciam-axum answers in the same case (for example 401
/// `{"error": "unauthenticated", "message": "Please sign in."}`).
///
/// Implements [`ResponseError`], so a handler never sees it: actix answers with it.
#[derive(Clone)]
pub struct Rejection(convert::Parts);

impl Rejection {
    /// The refusal ciam-axum would answer with `refusal`.
    pub(crate) fn from_axum(refusal: impl IntoResponse) -> Self {
        Self(convert::Parts::read_now(refusal.into_response()))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The JSON body.
    pub fn body(&self) -> &[u8] {
        &self.0.body
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("status", &self.0.status)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request refused ({})", self.0.status)
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        self.0.response()
    }
}

/// What the middleware decided for `req`, or the 500 of a missing middleware.
pub(crate) fn resolved(req: &HttpRequest) -> Result<Resolved, Rejection> {
    req.extensions()
        .get::<Resolved>()
        .cloned()
        .ok_or_else(|| Rejection::from_axum(AuthRejection::LayerMissing))
}

/// `req` as ciam-axum's extractors see a request that passed its layer: the decision of the
/// middleware installed, and the headers named in `headers`. Lets this crate run ciam-axum's
/// extractors instead of restating them.
pub(crate) fn axum_parts(
    req: &HttpRequest,
    headers: &[http::HeaderName],
) -> Result<http::request::Parts, Rejection> {
    let resolved = resolved(req)?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = convert::method(req.method());
    for name in headers {
        parts
            .headers
            .extend(convert::header(req.headers(), name.clone()));
    }
    resolved.install(&mut parts.extensions);
    Ok(parts)
}

/// Runs ciam-axum's extractor `E` on `parts` (from [`axum_parts`]); its refusal becomes a
/// [`Rejection`] with the same status, headers and body.
pub(crate) async fn delegate<E>(
    parts: Result<http::request::Parts, Rejection>,
) -> Result<E, Rejection>
where
    E: axum::extract::FromRequestParts<()>,
    E::Rejection: IntoResponse,
{
    let mut parts = parts?;
    E::from_request_parts(&mut parts, &())
        .await
        .map_err(Rejection::from_axum)
}

/// The signed-in caller. Rejects with 401 `{"error": "unauthenticated"}` when the request
/// has no valid session (and with 500 when [`CiamMiddleware`](crate::CiamMiddleware) is
/// missing).
///
/// ```
/// use ciam_actix::Authenticated;
///
/// async fn hello(Authenticated(me): Authenticated) -> String {
///     format!("hello, {}", me.user_id)
/// }
/// let _route = actix_web::web::get().to(hello);
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated(pub AuthContext);

impl FromRequest for Authenticated {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(authenticated(req).map(Self))
    }
}

fn authenticated(req: &HttpRequest) -> Result<AuthContext, Rejection> {
    match req.extensions().get::<Resolved>() {
        Some(resolved) => resolved
            .auth()
            .cloned()
            .ok_or_else(|| Rejection::from_axum(AuthRejection::Unauthenticated)),
        None => Err(Rejection::from_axum(AuthRejection::LayerMissing)),
    }
}

/// The signed-in caller, whose session reached assurance level `N` (1, 2 or 3; NIST SP
/// 800-63B). Rejects like [`Authenticated`] without a session, and with 401
/// `{"error": "step_up_required", "aal": N}` when the session's level is lower.
///
/// ```
/// use ciam_actix::RequireAal;
///
/// async fn export_data(RequireAal(me): RequireAal<2>) -> String {
///     format!("{} at AAL{}", me.user_id, me.aal.level())
/// }
/// let _route = actix_web::web::get().to(export_data);
/// ```
#[derive(Debug, Clone)]
pub struct RequireAal<const N: u8>(pub AuthContext);

impl<const N: u8> FromRequest for RequireAal<N> {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(authenticated(req).and_then(|auth| {
            if auth.aal.level() >= N {
                Ok(Self(auth))
            } else {
                Err(Rejection::from_axum(AuthRejection::AssuranceRequired {
                    aal: N,
                }))
            }
        }))
    }
}

/// The signed-in caller, if any. Never rejects (without the middleware: `None`).
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated(pub Option<AuthContext>);

impl FromRequest for MaybeAuthenticated {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let auth = req
            .extensions()
            .get::<Resolved>()
            .and_then(|r| r.auth().cloned());
        ready(Ok(Self(auth)))
    }
}

/// The [`RequestContext`] built by [`CiamMiddleware`](crate::CiamMiddleware) (client IP,
/// User-Agent, presented session token), to pass to engine calls. Rejects with 500 when the
/// middleware is missing.
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl FromRequest for ClientContext {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let context = req
            .extensions()
            .get::<Resolved>()
            .map(|r| Self(r.context().clone()))
            .ok_or_else(|| Rejection::from_axum(AuthRejection::LayerMissing));
        ready(context)
    }
}

#[cfg(feature = "tokens")]
mod bearer {
    use std::future::Future;
    use std::pin::Pin;

    use actix_web::dev::Payload;
    use actix_web::{FromRequest, HttpRequest};
    use ciam_core::tokens::AccessToken;
    use http::header::AUTHORIZATION;

    use super::{Rejection, axum_parts, delegate};

    /// The caller of an API route, from `Authorization: Bearer <access token>`, verified
    /// without a store round trip, exactly as ciam-axum's
    /// [`BearerAuthenticated`](ciam_axum::BearerAuthenticated) (which it runs): 401 with
    /// `WWW-Authenticate: Bearer` without a token, `WWW-Authenticate: Bearer
    /// error="invalid_token"` with a bad one. Needs [`CiamMiddleware`](crate::CiamMiddleware).
    ///
    /// ```
    /// use ciam_actix::BearerAuthenticated;
    ///
    /// async fn orders(BearerAuthenticated(token): BearerAuthenticated) -> String {
    ///     format!("orders of {}", token.user_id)
    /// }
    /// let _route = actix_web::web::get().to(orders);
    /// ```
    #[derive(Debug, Clone)]
    pub struct BearerAuthenticated(pub AccessToken);

    /// Like [`BearerAuthenticated`], and the token's session must still exist (one store
    /// read): sign-out and revocation take effect at once. A store outage answers 503.
    #[derive(Debug, Clone)]
    pub struct BearerAuthenticatedLive(pub AccessToken);

    /// The future of the bearer extractors.
    type BearerFuture<T> = Pin<Box<dyn Future<Output = Result<T, Rejection>>>>;

    impl FromRequest for BearerAuthenticated {
        type Error = Rejection;
        type Future = BearerFuture<Self>;

        fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
            let parts = axum_parts(req, &[AUTHORIZATION]);
            Box::pin(async move {
                let ciam_axum::BearerAuthenticated(token) = delegate(parts).await?;
                Ok(Self(token))
            })
        }
    }

    impl FromRequest for BearerAuthenticatedLive {
        type Error = Rejection;
        type Future = BearerFuture<Self>;

        fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
            let parts = axum_parts(req, &[AUTHORIZATION]);
            Box::pin(async move {
                let ciam_axum::BearerAuthenticatedLive(token) = delegate(parts).await?;
                Ok(Self(token))
            })
        }
    }
}

#[cfg(feature = "tokens")]
pub use bearer::{BearerAuthenticated, BearerAuthenticatedLive};
