//! Serving ciam-axum's endpoints from actix: the request goes to the axum router as a tower
//! service, with the caller the middleware already resolved.
//!
//! The endpoints are written once, as a tower service (ciam-axum's [`router`]); a copy
//! for actix would be two thousand lines that drift apart. The per-request hot path (the
//! middleware and the extractors) is native actix; only calls to the auth endpoints make the
//! conversion to `http` 1 and back.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, Route, Scope, web};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri};
use axum::response::IntoResponse;
use ciam_axum::{BODY_LIMIT, JsonRejection, Resolved};
use ciam_core::Ciam;
use tower_service::Service;

use crate::convert;

/// Serves an axum [`Router`] (any tower service of axum's shape) from actix-web.
///
/// Each request is converted to an `http` 1 request (method, path and query, headers, the
/// body up to a limit, the TCP peer as [`ConnectInfo`]), with what
/// [`CiamMiddleware`](crate::CiamMiddleware) decided installed into its extensions
/// ([`Resolved::install`]), so the router's ciam-axum extractors accept it without a
/// [`CiamLayer`](ciam_axum::CiamLayer) and without validating the session again. The answer
/// comes back with its status, every header (each `Set-Cookie`) and its body.
///
/// [`scope`] and [`jwks_service`](crate::jwks_service) are built on it; use it directly to
/// serve axum routes of your own next to actix ones:
///
/// ```
/// use actix_web::App;
/// use ciam_actix::TowerBridge;
///
/// let pages = axum::Router::new().route("/legacy", axum::routing::get(|| async { "hi" }));
/// let _app = App::new().default_service(TowerBridge::new(pages).route());
/// ```
#[derive(Clone)]
pub struct TowerBridge {
    router: Router,
    limit: usize,
    scoped: bool,
}

impl TowerBridge {
    /// A bridge to `router`, reading request bodies up to ciam-axum's [`BODY_LIMIT`].
    pub fn new(router: Router) -> Self {
        Self {
            router,
            limit: BODY_LIMIT,
            scoped: false,
        }
    }

    /// Sets the request body limit; a longer body is refused with 413
    /// `{"error": "payload_too_large"}` before the router runs.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// An actix route answering every request with the router, which sees the full request
    /// path (as for [`App::default_service`](actix_web::App::default_service) or a resource).
    pub fn route(self) -> Route {
        web::to(move |req: HttpRequest, payload: web::Payload| {
            let bridge = self.clone();
            async move { bridge.serve(req, payload).await }
        })
    }

    /// Like [`Self::route`], for the default service of an actix [`Scope`]: the router sees
    /// the path below the scope's prefix, as axum's `Router::nest` would show it.
    pub fn scoped_route(mut self) -> Route {
        self.scoped = true;
        self.route()
    }

    /// Answers `req` with the router.
    pub async fn serve(&self, req: HttpRequest, payload: web::Payload) -> HttpResponse {
        let body = match payload.to_bytes_limited(self.limit).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "request body could not be read");
                return convert::Parts::read_now(JsonRejection::Invalid.into_response()).response();
            }
            Err(_) => {
                return convert::Parts::read_now(JsonRejection::TooLarge.into_response())
                    .response();
            }
        };
        let path = if self.scoped {
            match req.match_info().unprocessed() {
                "" => "/",
                rest => rest,
            }
        } else {
            req.path()
        };
        let uri = match req.query_string() {
            "" => path.to_owned(),
            query => format!("{path}?{query}"),
        };
        let mut request = http::Request::new(Body::from(body));
        *request.method_mut() = convert::method(req.method());
        *request.headers_mut() = convert::headers(req.headers());
        match uri.parse::<http::Uri>() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return HttpResponse::BadRequest().finish(),
        }
        // What axum's `Router::nest` would keep: the path as the client sent it (ciam-axum's
        // OpenAPI document derives its server URL, the mount point, from it).
        if let Ok(original) = req.uri().to_string().parse::<http::Uri>() {
            request.extensions_mut().insert(OriginalUri(original));
        }
        if let Some(peer) = req.peer_addr() {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
        }
        if let Some(resolved) = req.extensions().get::<Resolved>() {
            resolved.install(request.extensions_mut());
        }
        let mut router = self.router.clone();
        // axum's router is always ready and never fails (`Error = Infallible`).
        let response: Result<_, Infallible> =
            Service::<http::Request<Body>>::call(&mut router, request).await;
        let response = match response {
            Ok(response) => response,
            Err(never) => match never {},
        };
        convert::Parts::read(response).await.response()
    }
}

impl fmt::Debug for TowerBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerBridge")
            .field("limit", &self.limit)
            .field("scoped", &self.scoped)
            .finish_non_exhaustive()
    }
}

/// Every auth endpoint of ciam-axum's [`router`](ciam_axum::router) (JSON; see its table), as
/// an actix [`Scope`] at `path`. Wrap the application in
/// [`CiamMiddleware`](crate::CiamMiddleware).
///
/// ```no_run
/// use actix_web::{App, HttpServer};
/// use ciam_actix::CiamMiddleware;
/// use ciam_core::Ciam;
///
/// async fn run(ciam: Ciam) -> std::io::Result<()> {
///     HttpServer::new(move || {
///         App::new()
///             .service(ciam_actix::scope("/auth", ciam.clone()))
///             .wrap(CiamMiddleware::new(ciam.clone()))
///     })
///     .bind("127.0.0.1:3000")?
///     .run()
///     .await
/// }
/// ```
pub fn scope(path: &str, ciam: Ciam) -> Scope {
    web::scope(path).default_service(TowerBridge::new(ciam_axum::router(ciam)).scoped_route())
}

/// `GET /.well-known/jwks.json`, the keys access tokens are verified with (ciam-axum's
/// [`jwks_router`](ciam_axum::jwks_router)), as an actix resource at the site root.
#[cfg(feature = "tokens")]
pub fn jwks_service(ciam: Ciam) -> actix_web::Resource {
    web::resource("/.well-known/jwks.json")
        .route(TowerBridge::new(ciam_axum::jwks_router(ciam)).route())
}
