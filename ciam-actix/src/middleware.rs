//! The middleware that resolves the caller: client IP, User-Agent, session cookie and the
//! CSRF check, decided by ciam-axum's [`CiamLayer::resolve`].

use std::fmt;
use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::SET_COOKIE;
use ciam_axum::{CiamLayer, ClientIp, CookieConfig, Resolved};
use ciam_core::Ciam;

use crate::convert;

/// An actix-web middleware that resolves the caller of every request, as ciam-axum's
/// [`CiamLayer`] does for axum (the decision is the same code).
///
/// For each request it:
///
/// 1. refuses a state-changing request that fails the CSRF origin check with 403
///    `{"error": "csrf"}` (see the [crate docs](crate#csrf); on by default);
/// 2. builds a [`RequestContext`](ciam_core::RequestContext) (client IP, User-Agent, presented
///    session and device tokens);
/// 3. validates the session cookie, if any, with [`Ciam::authenticate`]; an invalid, expired
///    or revoked cookie means no caller, and the response then clears the cookie (an error
///    from an inner service stays an error whose response carries the clearing
///    `Set-Cookie`). A store outage answers 503 rather than treating the caller as signed
///    out.
///
/// The outcome is kept with the request for the [extractors](crate#what-is-in-the-box) and
/// for [`scope`](crate::scope), which then does not validate the session again.
///
/// The client IP is the TCP peer unless [`Self::trusted_proxy_hops`] or [`Self::client_ip`]
/// says otherwise (see ciam-axum's [`ClientIp`]). Cloning is cheap.
#[derive(Clone)]
pub struct CiamMiddleware {
    layer: CiamLayer,
}

impl CiamMiddleware {
    /// A middleware for `ciam`, with the cookie configuration derived from its public URL and
    /// the CSRF check on.
    pub fn new(ciam: Ciam) -> Self {
        Self {
            layer: CiamLayer::new(ciam),
        }
    }

    /// Turns the CSRF origin check on (the default) or off; see
    /// [`CiamLayer::csrf`].
    pub fn csrf(self, enabled: bool) -> Self {
        self.map(|l| l.csrf(enabled))
    }

    /// Exempts cookie-less requests to `path` (the full path) from the origin check; see
    /// [`CiamLayer::cookieless_path`]. With the `tokens` feature, `/auth/token/refresh` (the
    /// [`scope`](crate::scope) mounted at `/auth`) is exempt by default.
    pub fn cookieless_path(self, path: impl Into<String>) -> Self {
        self.map(|l| l.cookieless_path(path))
    }

    /// Reads the client IP from `X-Forwarded-For` behind `hops` reverse proxies; see
    /// [`CiamLayer::trusted_proxy_hops`].
    pub fn trusted_proxy_hops(self, hops: usize) -> Self {
        self.map(|l| l.trusted_proxy_hops(hops))
    }

    /// Sets how the client IP is decided (see [`ClientIp`]).
    pub fn client_ip(self, rule: impl ClientIp) -> Self {
        self.map(|l| l.client_ip(rule))
    }

    /// Replaces the session cookie configuration.
    pub fn cookie_config(self, cookie: CookieConfig) -> Self {
        self.map(|l| l.cookie_config(cookie))
    }

    /// The session cookie configuration in force.
    pub fn cookie(&self) -> &CookieConfig {
        self.layer.cookie()
    }

    /// The engine.
    pub fn ciam(&self) -> &Ciam {
        self.layer.ciam()
    }

    fn map(self, f: impl FnOnce(CiamLayer) -> CiamLayer) -> Self {
        Self {
            layer: f(self.layer),
        }
    }
}

impl From<CiamLayer> for CiamMiddleware {
    /// The middleware deciding exactly as `layer` does (one configuration for an application
    /// that serves both axum and actix routes).
    fn from(layer: CiamLayer) -> Self {
        Self { layer }
    }
}

impl fmt::Debug for CiamMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CiamMiddleware").field(&self.layer).finish()
    }
}

impl<S, B> Transform<S, ServiceRequest> for CiamMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CiamMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CiamMiddlewareService {
            service: Rc::new(service),
            layer: self.layer.clone(),
        }))
    }
}

/// The service made by [`CiamMiddleware`]; see there.
pub struct CiamMiddlewareService<S> {
    service: Rc<S>,
    layer: CiamLayer,
}

impl<S> fmt::Debug for CiamMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiamMiddlewareService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// The response future of [`CiamMiddlewareService`].
pub type MiddlewareFuture<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for CiamMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = MiddlewareFuture<B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let layer = self.layer.clone();
        Box::pin(async move {
            let headers = convert::headers(req.headers());
            let method = convert::method(req.method());
            let peer: Option<IpAddr> = req.peer_addr().map(|a| a.ip());
            let resolved = match layer.resolve(&method, req.path(), &headers, peer).await {
                Ok(resolved) => resolved,
                Err(refusal) => {
                    let refusal = convert::Parts::read_now(refusal).response();
                    return Ok(req.into_response(refusal).map_into_right_body());
                }
            };
            req.extensions_mut().insert(resolved.clone());
            let mut response = match service.call(req).await {
                Ok(response) => response,
                // An inner service's error (another middleware's `Err`; handlers' errors are
                // responses by now) stays an error, but one whose response clears an invalid
                // cookie: otherwise the browser would keep sending the dead cookie.
                Err(e) => return Err(with_cleared_cookie(&resolved, e)),
            };
            clear_invalid_cookie(&resolved, &mut response);
            Ok(response.map_into_left_body())
        })
    }
}

/// `error`, rendered with the `Set-Cookie` that clears an invalid session cookie when the
/// request presented one; otherwise `error` unchanged.
fn with_cleared_cookie(resolved: &Resolved, error: actix_web::Error) -> actix_web::Error {
    let Some(value) = resolved
        .clear_cookie_value(std::iter::empty())
        .as_ref()
        .and_then(convert::value)
    else {
        return error;
    };
    let mut response = error.error_response();
    response.headers_mut().append(SET_COOKIE, value);
    actix_web::error::InternalError::from_response(error, response).into()
}

/// Appends the `Set-Cookie` that clears an invalid session cookie, unless the response
/// already sets or clears it.
fn clear_invalid_cookie<B>(resolved: &Resolved, response: &mut ServiceResponse<B>) {
    let clear = resolved.clear_cookie_value(
        response
            .headers()
            .get_all(SET_COOKIE)
            .map(actix_web::http::header::HeaderValue::as_bytes),
    );
    if let Some(value) = clear.as_ref().and_then(convert::value) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}
