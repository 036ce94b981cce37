//! actix-web 4 integration for ciam: a middleware that resolves the signed-in caller from a
//! session cookie, extractors, CSRF defence, and a scope of JSON authentication endpoints:
//! the same behaviour, status codes and JSON bodies as [ciam-axum](ciam_axum).
//!
//! # Getting started
//!
//! Build a [`Ciam`](ciam_core::Ciam) engine, mount [`scope`] where you want the API, and wrap
//! the whole application in [`CiamMiddleware`]:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use ciam_actix::{Authenticated, CiamMiddleware};
//! use ciam_core::Ciam;
//!
//! async fn hello(Authenticated(me): Authenticated) -> String {
//!     format!("hello, {}", me.user_id)
//! }
//!
//! async fn run(ciam: Ciam) -> std::io::Result<()> {
//!     HttpServer::new(move || {
//!         App::new()
//!             .route("/hello", web::get().to(hello))
//!             .service(ciam_actix::scope("/auth", ciam.clone()))
//!             .wrap(CiamMiddleware::new(ciam.clone()))
//!     })
//!     .bind("127.0.0.1:3000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! # What is in the box
//!
//! | Item | What it does |
//! |---|---|
//! | [`CiamMiddleware`] | Reads the session cookie, validates it, keeps the caller and the [`RequestContext`](ciam_core::RequestContext) with the request; clears an invalid cookie; CSRF check; client IP (TCP peer, or [`trusted_proxy_hops`](CiamMiddleware::trusted_proxy_hops)) |
//! | [`Authenticated`] | Extractor: the signed-in caller, or 401 `{"error": "unauthenticated"}` |
//! | [`MaybeAuthenticated`] | Extractor: `Option<AuthContext>`, never rejects |
//! | [`RequireAal`] | Extractor: the signed-in caller at assurance level `N` or above, else 401 `{"error": "step_up_required", "aal": N}` |
//! | [`ClientContext`] | Extractor: the [`RequestContext`](ciam_core::RequestContext) to pass to engine calls |
//! | [`Rejection`] | What the extractors and the middleware refuse with: ciam-axum's status, headers and JSON body |
//! | [`scope`] | Every endpoint of ciam-axum's [`router`](ciam_axum::router) (see its [endpoint tables](ciam_axum#endpoints)) as an actix `Scope`, mountable under any prefix |
//! | [`TowerBridge`] | Serves any axum `Router` from actix with the caller already resolved (what [`scope`] is built on) |
//! | `BearerAuthenticated` / `BearerAuthenticatedLive` (feature `tokens`) | Extractors: the caller of an API route from `Authorization: Bearer <access token>`, without a store read / also against the session store; 401 with `WWW-Authenticate: Bearer error="invalid_token"` |
//! | `jwks_service` (feature `tokens`) | `GET /.well-known/jwks.json`, the token keys |
//! | `RequireConsent<P>` / `ConsentPurpose` (feature `consent`) | Extractor: the signed-in caller for whom purpose `P::ID` is permitted by the ciam-consent ledger (given as app data), with the justifying grant; else 403 `{"error": "consent_required", "purpose": "<id>"}`, 503 when the consent store fails |
//!
//! # Features
//!
//! | Feature | Default | Adds |
//! |---|---|---|
//! | `passkeys` | no | The `/passkeys/...` endpoints of [`scope`] (ciam-axum's `passkeys`) |
//! | `federation` | no | Sign-in with external identity providers in [`scope`] (ciam-axum's `federation`); the provider's `form_post` to the callback is exempt from the origin check, as with axum |
//! | `tokens` | no | API tokens: `POST /token`, `POST /token/refresh` in [`scope`], `jwks_service`, the `BearerAuthenticated` and `BearerAuthenticatedLive` extractors (ciam-axum's `tokens`) |
//! | `consent` | no | The `RequireConsent<P>` extractor; `ConsentPurpose` is ciam-axum's, re-exported |
//!
//! Request bodies of [`scope`] are limited to ciam-axum's [`BODY_LIMIT`](ciam_axum::BODY_LIMIT).
//!
//! # How it is built
//!
//! The decisions are made once, in ciam-axum, and this crate calls them:
//! [`CiamMiddleware`] asks [`CiamLayer::resolve`](ciam_axum::CiamLayer::resolve) (the CSRF
//! rules, the client-IP rule, session validation, the cookie to clear), and the extractors
//! answer with ciam-axum's rejections (the bearer and consent extractors run ciam-axum's
//! extractors themselves). The endpoints behind [`scope`] are ciam-axum's router, served as
//! a tower service through [`TowerBridge`] with the caller the middleware resolved, so the
//! session is validated once per request. The per-request hot path, the middleware and the
//! extractors, is native actix: only calls to the auth endpoints are converted to `http` 1
//! and back (actix-web 4 uses `http` 0.2).
//!
//! # Security notes
//!
//! Everything in ciam-axum's [security notes](ciam_axum#security-notes) holds, because it is
//! the same code: the cookie (`HttpOnly`, `SameSite=Lax`, `__Host-` and `Secure` over HTTPS),
//! no account enumeration, and the client IP (set
//! [`trusted_proxy_hops`](CiamMiddleware::trusted_proxy_hops) behind a reverse proxy, never
//! trust `X-Forwarded-For` otherwise).
//!
//! ## CSRF
//!
//! Every state-changing request (anything but GET, HEAD, OPTIONS, TRACE) must carry an
//! `Origin` equal to the public URL's origin, or, without `Origin`, `Sec-Fetch-Site:
//! same-origin` or `none`; anything else gets 403 `{"error": "csrf"}`. Requests with no
//! `Cookie` header that authenticate with `Authorization: Bearer`, or go to a path named with
//! [`CiamMiddleware::cookieless_path`] (with `tokens`, `/auth/token/refresh` by default), are
//! exempt; a request with any cookie is always checked.

mod bridge;
#[cfg(feature = "consent")]
mod consent;
mod convert;
mod extract;
mod middleware;

#[cfg(test)]
mod tests;

#[cfg(feature = "tokens")]
pub use bridge::jwks_service;
pub use bridge::{TowerBridge, scope};
#[cfg(feature = "consent")]
pub use ciam_axum::ConsentPurpose;
#[cfg(feature = "consent")]
pub use consent::RequireConsent;
pub use extract::{Authenticated, ClientContext, MaybeAuthenticated, Rejection, RequireAal};
#[cfg(feature = "tokens")]
pub use extract::{BearerAuthenticated, BearerAuthenticatedLive};
pub use middleware::{CiamMiddleware, CiamMiddlewareService, MiddlewareFuture};
