//! axum integration for ciam: a tower layer that resolves the signed-in caller from a session
//! cookie, extractors, CSRF defence, and a router of JSON authentication endpoints.
//!
//! # Getting started
//!
//! Build a [`Ciam`](ciam_core::Ciam) engine, mount [`router`] where you want the API, and wrap
//! the whole application in [`CiamLayer`]. Serve it with connection info so the layer knows
//! the client IP:
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::get};
//! use ciam_axum::{Authenticated, CiamLayer};
//! use ciam_core::Ciam;
//!
//! async fn run(ciam: Ciam) -> std::io::Result<()> {
//!     let app = Router::new()
//!         .route("/hello", get(|Authenticated(auth): Authenticated| async move {
//!             format!("hello, {}", auth.user_id)
//!         }))
//!         .nest("/auth", ciam_axum::router(ciam.clone()))
//!         .layer(CiamLayer::new(ciam));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! }
//! ```
//!
//! `.merge(ciam_axum::router_at("/auth", ciam.clone()))` serves the same endpoints as the
//! `nest` above and costs less per request: `nest` rebuilds the URI of every request it
//! routes.
//!
//! # What is in the box
//!
//! | Item | What it does |
//! |---|---|
//! | [`CiamLayer`] / [`CiamService`] | Reads the session cookie, validates it, inserts [`AuthContext`](ciam_core::AuthContext) and [`RequestContext`](ciam_core::RequestContext) into the request extensions; clears an invalid cookie; CSRF check |
//! | [`Authenticated`] | Extractor: the signed-in caller, or 401 `{"error": "unauthenticated"}` |
//! | [`MaybeAuthenticated`] | Extractor: `Option<AuthContext>`, never rejects |
//! | [`RequireAal`] | Extractor: the signed-in caller at assurance level `N` or above, else 401 `{"error": "step_up_required", "aal": N}` |
//! | [`ClientContext`] | Extractor: the [`RequestContext`](ciam_core::RequestContext) to pass to engine calls |
//! | [`Json`] | JSON body extractor whose rejections are JSON (400 / 413 / 415) |
//! | [`ApiError`] | Engine errors as HTTP responses (status by [`ErrorKind`](ciam_core::ErrorKind), `Retry-After`) |
//! | [`CookieConfig`] | Session cookie name and attributes; builds `Set-Cookie` values |
//! | [`ClientIp`] / [`TrustedProxies`] | How the client IP is decided (TCP peer by default) |
//! | [`CiamLayer::resolve`] / [`Resolved`] | The layer's decision without an inner service, for adapters to other frameworks (ciam-actix resolves natively, then serves [`router`] through it without validating the session twice) |
//! | [`router`] / [`router_at`] | The JSON endpoints below, to `nest` under a prefix / registered at a prefix, to `merge` (the same answers, without `nest`'s per-request URI rewrite) |
//! | [`openapi`] | The OpenAPI 3.1 document of [`router`] (also served by it at `GET /openapi.json`) |
//! | `BearerAuthenticated` / `BearerAuthenticatedLive` (feature `tokens`) | Extractors: the caller of an API route from `Authorization: Bearer <access token>`, verified without a store read / also against the session store; 401 with `WWW-Authenticate: Bearer error="invalid_token"` |
//! | `jwks_router` (feature `tokens`) | `GET /.well-known/jwks.json`, the token keys |
//! | `privacy_router` / `privacy_router_at` / `Privacy` / `HonourGpcLayer` / `honour_gpc` (feature `consent`) | The privacy centre's endpoints (`GET /consents`, `PUT /consents/{purpose}`, `GET /consents/receipts/{id}`, the receipt key, `GET /me/export`, `DELETE /me` erasure with step-up) and the `Sec-GPC: 1` signal; see [`privacy`] |
//! | `RequireConsent<P>` / `ConsentPurpose` (feature `consent`) | Extractor: the signed-in caller for whom purpose `P::ID` is permitted by the ciam-consent ledger (installed with `axum::Extension(ledger)`), with the justifying grant; else 403 `{"error": "consent_required", "purpose": "<id>"}`, 503 when the consent store fails |
//!
//! # Endpoints
//!
//! All bodies are JSON; errors are `{"error": "<code>", "message": "<safe text>"}`.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /openapi.json` | — | The OpenAPI 3.1 document of these endpoints, its server URL the router's mount point |
//! | `POST /register` | `{email, password, profile?}` | 202 `{"status": "verification_sent"}` (also for a taken address) |
//! | `POST /verify-email` | `{token}` | 200 `{"status": "email_verified" \| "email_changed"}` |
//! | `POST /verify-email/resend` | `{email}` | 202 always |
//! | `POST /login` | `{email, password, captcha_token?}` (`captcha_token`: the CAPTCHA widget's answer, for the configured `BotCheck`) | 200 `{user, session, consent_required}` + `Set-Cookie` (`consent_required`: the purposes to ask for again, `[{purpose, description, policy_version, consented_under, policy_url}]`, usually empty; see `ConsentGate`); 200 `{"status": "mfa_required", mfa_token, factors, reason}`; 403 `verification_required` or `risk_denied`; 401 `invalid_credentials`; 429 `rate_limited` + `Retry-After` |
//! | `POST /logout` | — | 204, cookie cleared |
//! | `GET /me` | `?stage=` | `{user, session}` (rendered once per user copy, stage and session; see below) |
//! | `GET /sessions` | — | `{sessions: [...]}`, the current one marked |
//! | `DELETE /sessions/{id}` | — | 204; 404 if not one of the caller's |
//! | `POST /sessions/revoke-others` | — | `{revoked: n}` |
//! | `POST /password/forgot` | `{email}` | 202 always |
//! | `POST /password/reset` | `{token, password}` | 200; every session ends |
//! | `POST /password/change` | `{current_password?, new_password}` | 200 `{user, session}` + new `Set-Cookie`; other sessions end |
//! | `POST /email/change` | `{email, current_password?}` | 202; confirmation link to the new address; 401 `step_up_required` without a recent sign-in (or AAL2 when a second factor is enrolled) |
//! | `PATCH /profile` | `{name: value \| null, ...}` | `{user}` |
//! | `GET /audit` | — | `{entries: [...]}`, the caller's recent audit log |
//! | `DELETE /account` | `{current_password?}` (or a recent sign-in; AAL2 when a second factor is enrolled) | 204, cookie cleared; 401 `step_up_required` |
//! | `POST /mfa/challenge` | `{mfa_token, code \| recovery_code \| email_code \| captcha_token, remember_device?}` | as `POST /login`; 401 `invalid_code` (wrong code), `invalid_token` (expired or used up) |
//! | `GET /mfa` | — | `{totp, recovery_codes_left}` |
//! | `POST /mfa/totp/enroll` | — (recent sign-in) | `{enrolment, otpauth_uri, secret, qr_svg, qr_png}` (PNG base64) |
//! | `POST /mfa/totp/confirm` | `{enrolment, code}` | `{recovery_codes: [...] \| null}` (shown once) |
//! | `DELETE /mfa/totp` | — (recent sign-in, AAL2) | 204; TOTP and recovery codes removed |
//! | `POST /mfa/recovery-codes` | — (recent sign-in, AAL2) | `{recovery_codes}`; the old set stops working |
//! | `POST /devices/forget` | — | `{forgotten: n}`; every trusted-device cookie of the account is revoked |
//! | `GET /mfa/devices` | — | `{devices: [{id, created_at, expires_at, remember_until, user_agent, ip, current}]}`, the remembered browsers (no token) |
//! | `DELETE /mfa/devices/{id}` | — | 204; that browser asks for the second factor again; 404 for an unknown or another account's id |
//! | `POST /magic-link/start` | `{email}` | 202 `{"status": "link_sent"}` + binding cookie (also for an unknown address) |
//! | `POST /magic-link/confirm` | `{token}` (binding cookie) | as `POST /login`; 401 `invalid_token` (also from another browser) |
//! | `POST /otp/start` | `{email}` | 202 `{"status": "code_sent"}` + binding cookie (also for an unknown address) |
//! | `POST /otp/verify` | `{code}` (binding cookie) | as `POST /login`; 401 `invalid_code` / `invalid_token` |
//! | `POST /sms/start` | `{phone}` | 202 `{"status": "code_sent"}` + binding cookie (also for an unknown number); finish with `POST /otp/verify` |
//!
//! Sign-ins set a second, long-lived cookie, the trusted-device token (`ciam_device`): it
//! exempts the browser from the account's sign-in throttling and, after "remember this
//! device", from the second factor.
//!
//! With the `passkeys` feature (options are WebAuthn L3 JSON, the `publicKey` dictionary
//! itself; `credential` is `PublicKeyCredential.toJSON()`):
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `POST /passkeys/register/start` | `{}` (signed in, recent sign-in) | `PublicKeyCredentialCreationOptionsJSON`; 401 `step_up_required` |
//! | `POST /passkeys/register/finish` | `{credential, name?}` | `{passkey}`; 401 `passkey_rejected` |
//! | `POST /passkeys/signup/start` | `{email, profile?}` | `PublicKeyCredentialCreationOptionsJSON` (also for a taken address) |
//! | `POST /passkeys/signup/finish` | `{credential, name?}` | 202 `{"status": "verification_sent"}` (also for a taken address) |
//! | `POST /passkeys/login/start` | `{email?}` | `PublicKeyCredentialRequestOptionsJSON` (no `allowCredentials` without an address; a stable fake list for an unknown one) |
//! | `POST /passkeys/login/finish` | `{credential, captcha_token?}` (`captcha_token` as at `POST /login`) | as `POST /login`; 401 `passkey_rejected` |
//! | `POST /passkeys/step-up/start` | `{}` (signed in) | `PublicKeyCredentialRequestOptionsJSON` of the caller's passkeys |
//! | `POST /passkeys/step-up/finish` | `{credential}` | 200 `{user, session}` + new `Set-Cookie` (the old session ends) |
//! | `GET /passkeys` | — | `{passkeys: [{id, name, created_at, last_used_at, synced, backed_up, aaguid, attestation, transports}]}` |
//! | `PATCH /passkeys/{id}` | `{name}` | `{passkey}`; 404 if not the caller's |
//! | `DELETE /passkeys/{id}` | — (recent sign-in) | 204; 409 `last_sign_in_method`; 401 `step_up_required` |
//!
//! With the `tokens` feature (engine configured with `CiamBuilder::tokens`; answers carry
//! `Cache-Control: no-store`):
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `POST /token` | — (signed in) | `{access_token, token_type: "Bearer", refresh_token, expires_in}` for the current session |
//! | `POST /token/refresh` | `{refresh_token}` (no cookie needed) | the same, a new pair; 400 `invalid_grant` for an unknown, spent, reused or ended refresh token (a spent one presented after the grace window revokes the session) |
//! | `GET /.well-known/jwks.json` | — (mounted by `jwks_router` at the site root) | `{"keys": [...]}`, `Cache-Control: public, max-age=300` |
//!
//! With the `federation` feature (engine configured with `CiamBuilder::federation`); `start`
//! and `callback` are browser navigations answered with `303` redirects:
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /oidc/providers` | — | `{providers: [{name, display_name}]}` |
//! | `GET /oidc/{provider}/start` | `?login_hint=&link=1` (`link=1`: signed in, recent sign-in) | 303 to the provider + binding cookie `ciam_oidc` (`__Host-` over HTTPS) |
//! | `GET /oidc/{provider}/callback` | the provider's response (binding cookie) | 303 to `/` + `Set-Cookie` when signed in; `/login#mfa_token=…&factors=…`; `/login#link=…` + pending-link cookie; `/account#linked=…`; `/login#error=<code>` |
//! | `POST /oidc/{provider}/callback` | the provider's `form_post` | 303 to the `GET` callback with the same parameters (exempt from the origin check: it changes nothing) |
//! | `GET /identities` | — | `{identities: [{id, provider, provider_name, issuer, subject, email, created_at, last_used_at}], providers}` |
//! | `POST /identities/link` | — (signed in, recent sign-in, pending-link cookie) | `{identity}`; 401 `federation_rejected` |
//! | `DELETE /identities/{id}` | — (recent sign-in) | 204; 409 `last_sign_in_method`; 401 `step_up_required`; 404 if not the caller's |
//!
//! API routes take the caller from `Authorization: Bearer <access token>` with
//! `BearerAuthenticated` (no store read) or `BearerAuthenticatedLive` (also checks that the
//! session still exists); refusals are 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"` (RFC 6750 §3).
//!
//! # Features
//!
//! | Feature | Default | Adds |
//! |---|---|---|
//! | `passkeys` | no | The `/passkeys/...` endpoints (ciam-core's passkey flows) |
//! | `federation` | no | Sign-in with external identity providers: `GET /oidc/providers`, `GET /oidc/{provider}/start`, `GET` and `POST` (form_post) `/oidc/{provider}/callback`, `GET /identities`, `POST /identities/link`, `DELETE /identities/{id}` (ciam-core's `federation` feature; see below) |
//! | `consent` | no | The `RequireConsent<P>` extractor and the `ConsentPurpose` trait, enforcing a ciam-consent `ConsentLedger` |
//! | `tokens` | no | API tokens: `POST /token`, `POST /token/refresh`, `jwks_router` (`GET /.well-known/jwks.json`), the `BearerAuthenticated` and `BearerAuthenticatedLive` extractors (ciam-core's `tokens` feature) |
//!
//! Request bodies are limited to [`BODY_LIMIT`] bytes.
//!
//! `GET /me`, called on every page load by most front ends, reads the user from the engine's
//! short-lived in-process copy ([`Ciam::user_for_display`](ciam_core::Ciam::user_for_display))
//! and keeps its rendered answer per session, in [`CiamLayer`]'s shared state (at most 4,096
//! answers of about 1 KiB). The answer is reused only for the same user copy (the engine makes
//! a new one on every re-read or write), the same `?stage=` and an equal session
//! ([`AuthContext`](ciam_core::AuthContext)): a profile change, a step-up or a slid expiry
//! renders it again, so a reused answer is byte for byte what a fresh rendering would write.
//! Answers that can no longer be served (their user copy replaced, as after an erasure, or
//! their session expired) are dropped every 256 renderings and whenever the 4,096 are reached.
//!
//! # Security notes
//!
//! ## Cookie
//!
//! The session token is a 256-bit random value; only its hash is stored. It travels only in
//! `Set-Cookie`/`Cookie`, never in a body or URL. The cookie is `HttpOnly`, `SameSite=Lax`,
//! `Path=/`, has no `Domain`, and when the public URL is HTTPS it is `Secure` and named
//! `__Host-ciam_session` (so subdomains cannot plant it). Its `Max-Age` is the session's
//! absolute lifetime; the idle timeout is enforced server-side. Signing in always issues a
//! new token and ends any session the browser presented (no fixation), and a password change
//! rotates the cookie and ends the other sessions.
//!
//! ## CSRF
//!
//! `SameSite=Lax` already keeps the cookie off cross-site `POST`s in current browsers; the
//! layer adds an origin check for every state-changing method (anything but GET, HEAD,
//! OPTIONS, TRACE). The request passes when `Origin` equals the public URL's origin exactly,
//! or, without `Origin`, when `Sec-Fetch-Site` is `same-origin` or `none`. Everything else,
//! including a request with neither header, gets 403 `{"error": "csrf"}`. Non-browser clients
//! must therefore send `Origin: <public url origin>`. Keep GET handlers free of side effects:
//! that is why e-mail links open a page whose button POSTs the token.
//!
//! Two kinds of request carry no ambient credential and skip the check, and only when they
//! carry no `Cookie` header at all: those authenticated by `Authorization: Bearer` (browsers
//! never attach it on their own, and a cross-site page cannot set it without a CORS
//! preflight), and those to a path named with [`CiamLayer::cookieless_path`] (with the
//! `tokens` feature, `/auth/token/refresh` by default: its body is the credential and its
//! answer sets no cookie). A request with any cookie, that is every cookie-authenticated
//! request, is checked as before.
//!
//! ## No account enumeration
//!
//! Registration, "forgot password" and "resend verification" answer the same whether or not
//! the address has an account; the mail differs, the response does not. A wrong password and
//! an unknown address give identical 401 bodies after the same hashing work. Only a caller
//! who proved the password learns that an address is unverified or an account locked. Error
//! detail goes to `tracing` (debug for refusals, error for server faults), never to the
//! client.
//!
//! ## Client IP
//!
//! The IP recorded in sessions and the audit log is the TCP peer unless
//! [`CiamLayer::trusted_proxy_hops`] (or a custom [`ClientIp`] rule) is set; behind a reverse
//! proxy, set it, or every client appears as the proxy. Never trust `X-Forwarded-For` without
//! a proxy that overwrites or appends to it: clients can send any value.
//!
//! A misconfiguration fails loudly instead of putting every client in one throttling bucket:
//! when the client IP cannot be decided, the request is answered 500
//! `{"error": "client_ip_unresolved"}` before the session is read or the application runs,
//! and an error log (at most once a minute per kind) names the setting to fix. That happens
//! when there is no peer address (serve with `into_make_service_with_connect_info`), when
//! no proxy is trusted but a loopback, private or link-local peer sends `X-Forwarded-For`,
//! `Forwarded` or `X-Real-IP` (set [`CiamLayer::trusted_proxy_hops`]), and when fewer
//! entries arrive than proxies are trusted (the request bypassed a proxy, or the count is
//! wrong). Keep health-check routes outside the layer: probes reach the process directly.
//! See [`CiamLayer`] for the full table and the opt-out for apps without peer addresses.

#[cfg(feature = "consent")]
mod consent;
mod cookie;
mod csrf;
mod extract;
#[cfg(feature = "federation")]
mod federation;
mod layer;
mod me_answers;
mod mfa;
mod no_store;
mod openapi;
#[cfg(feature = "passkeys")]
mod passkeys;
mod prefix;
#[cfg(feature = "consent")]
pub mod privacy;
mod rejection;
mod routes;
#[cfg(feature = "tokens")]
mod tokens;

#[cfg(test)]
mod openapi_tests;
#[cfg(test)]
mod tests;

#[cfg(feature = "consent")]
pub use consent::{ConsentPurpose, ConsentRejection, RequireConsent};
pub use cookie::{
    CookieConfig, PLAIN_BINDING_COOKIE_NAME, PLAIN_COOKIE_NAME, PLAIN_DEVICE_COOKIE_NAME,
    SECURE_BINDING_COOKIE_NAME, SECURE_COOKIE_NAME, SECURE_DEVICE_COOKIE_NAME,
};
pub use extract::{Authenticated, ClientContext, Json, MaybeAuthenticated, RequireAal};
pub use layer::{CiamLayer, CiamService, ClientIp, Resolved, ResponseFuture, TrustedProxies};
pub use openapi::{OPENAPI_PATH, openapi};
#[cfg(feature = "consent")]
pub use privacy::{
    GpcFuture, HonourGpc, HonourGpcLayer, Privacy, honour_gpc, privacy_router, privacy_router_at,
};
pub use rejection::{ApiError, AuthRejection, CsrfRejection, JsonRejection, status_for};
pub use routes::{BODY_LIMIT, router, router_at};
#[cfg(feature = "tokens")]
pub use tokens::{
    BearerAuthenticated, BearerAuthenticatedLive, BearerRejection, JWKS_MAX_AGE, jwks_router,
};
