//! The tower layer that resolves the caller: client IP, User-Agent, session cookie and the
//! CSRF check.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::header::{SET_COOKIE, USER_AGENT};
use http::{Extensions, HeaderMap, HeaderValue, Method, Request};
use tower_layer::Layer;
use tower_service::Service;

use ciam_core::{AuthContext, Ciam, ErrorKind, RequestContext};

use crate::cookie::CookieConfig;
use crate::csrf;
use crate::rejection::{ApiError, CsrfRejection};

/// Decides the client IP of a request, for sessions, rate limits and the audit log.
///
/// Implemented by [`TrustedProxies`] and by any
/// `Fn(&HeaderMap, Option<IpAddr>) -> Option<IpAddr> + Send + Sync + 'static`, which receives
/// the request headers and the TCP peer address:
///
/// ```
/// use std::net::IpAddr;
///
/// use ciam_axum::CiamLayer;
/// use http::HeaderMap;
///
/// // Behind a CDN that puts the client address in its own header (and strips it from
/// // client requests).
/// fn cdn_ip(headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
///     headers.get("cdn-client-ip").and_then(|v| v.to_str().ok()?.parse().ok()).or(peer)
/// }
///
/// fn layer(ciam: ciam_core::Ciam) -> CiamLayer {
///     CiamLayer::new(ciam).client_ip(cdn_ip)
/// }
/// ```
pub trait ClientIp: Send + Sync + 'static {
    /// The client IP, given the request headers and the TCP peer (when the app is served with
    /// `ConnectInfo<SocketAddr>`).
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr>;
}

impl<F> ClientIp for F
where
    F: Fn(&HeaderMap, Option<IpAddr>) -> Option<IpAddr> + Send + Sync + 'static,
{
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        self(headers, peer)
    }
}

/// The client IP from `X-Forwarded-For` behind a known number of reverse proxies.
///
/// With `TrustedProxies(n)`, the `n`-th entry from the right is used: each proxy you run
/// appends the address it received the request from, and entries further left were written
/// by the client and are never trusted. `TrustedProxies(0)` (the default) uses the TCP peer.
/// When the header has fewer entries than expected, the TCP peer is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustedProxies(pub usize);

impl ClientIp for TrustedProxies {
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        forwarded_client_ip(headers, peer, self.0)
    }
}

/// Configuration shared by every clone of the layer and its services.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) ciam: Ciam,
    pub(crate) cookie: CookieConfig,
    origin: String,
    csrf: bool,
    /// Paths whose cookie-less requests skip the origin check (see
    /// [`CiamLayer::cookieless_path`]).
    cookieless: Vec<String>,
    client_ip: Arc<dyn ClientIp>,
    client_ip_name: &'static str,
}

/// Marks a request as having passed through [`CiamService`]; carries its configuration to
/// the handlers of [`router`](crate::router).
#[derive(Clone)]
pub(crate) struct Installed(pub(crate) Arc<Shared>);

/// A [`tower_layer::Layer`] that resolves the caller of every request.
///
/// For each request, [`CiamService`]:
///
/// 1. refuses a state-changing request that fails the CSRF origin check with 403
///    `{"error": "csrf"}` (see the [crate docs](crate#csrf); on by default);
/// 2. builds a [`RequestContext`] (client IP, User-Agent, presented session token) and
///    inserts it into the request extensions;
/// 3. if the session cookie is present, validates it with [`Ciam::authenticate`] and inserts
///    the [`AuthContext`](ciam_core::AuthContext) on success. An invalid, expired or revoked
///    cookie simply means no `AuthContext`, and the response then clears the cookie. A store
///    outage answers 503 rather than treating the caller as signed out.
///
/// # Client IP
///
/// By default the IP is the TCP peer from [`ConnectInfo<SocketAddr>`](ConnectInfo), so serve
/// the app with `into_make_service_with_connect_info::<SocketAddr>()`. Behind reverse proxies
/// the peer is the proxy: set [`CiamLayer::trusted_proxy_hops`] to the number of proxies you
/// run, and the IP is read from `X-Forwarded-For`, counting that many entries from the right
/// (entries further left are client-supplied and never trusted), or give your own rule with
/// [`CiamLayer::client_ip`].
///
/// Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct CiamLayer {
    shared: Arc<Shared>,
}

impl CiamLayer {
    /// A layer for `ciam`, with the cookie configuration derived from its public URL and the
    /// CSRF check on.
    pub fn new(ciam: Ciam) -> Self {
        let cookie = CookieConfig::for_public_url(ciam.public_url());
        let origin = csrf::origin_of(ciam.public_url());
        Self {
            shared: Arc::new(Shared {
                ciam,
                cookie,
                origin,
                csrf: true,
                cookieless: default_cookieless_paths(),
                client_ip: Arc::new(TrustedProxies(0)),
                client_ip_name: "peer",
            }),
        }
    }

    /// Turns the CSRF origin check on (the default) or off. Turn it off only when every
    /// state-changing route is protected another way, such as bearer tokens instead of
    /// cookies.
    pub fn csrf(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.shared).csrf = enabled;
        self
    }

    /// Exempts requests to `path` (the full path, prefix included) that carry no cookie at
    /// all from the CSRF origin check, for endpoints a non-browser client calls without
    /// cookies and whose body is the credential. With the `tokens` feature the default is
    /// `/auth/token/refresh` (the router mounted at `/auth`); mount it elsewhere and name its
    /// path here. Requests with any cookie are always checked. (Requests with
    /// `Authorization: Bearer` and no cookie are exempt on every path; see the
    /// [crate docs](crate#csrf).)
    pub fn cookieless_path(mut self, path: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.shared).cookieless.push(path.into());
        self
    }

    /// Reads the client IP from `X-Forwarded-For`, trusting the `hops` right-most entries
    /// (one per reverse proxy you operate). 0, the default, uses the TCP peer address.
    /// Shorthand for `client_ip(TrustedProxies(hops))`.
    pub fn trusted_proxy_hops(mut self, hops: usize) -> Self {
        let shared = Arc::make_mut(&mut self.shared);
        shared.client_ip = Arc::new(TrustedProxies(hops));
        shared.client_ip_name = if hops == 0 { "peer" } else { "x-forwarded-for" };
        self
    }

    /// Sets how the client IP is decided (see [`ClientIp`]).
    pub fn client_ip(mut self, rule: impl ClientIp) -> Self {
        let shared = Arc::make_mut(&mut self.shared);
        shared.client_ip = Arc::new(rule);
        shared.client_ip_name = "custom";
        self
    }

    /// Replaces the session cookie configuration.
    pub fn cookie_config(mut self, cookie: CookieConfig) -> Self {
        Arc::make_mut(&mut self.shared).cookie = cookie;
        self
    }

    /// The session cookie configuration in force.
    pub fn cookie(&self) -> &CookieConfig {
        &self.shared.cookie
    }

    /// The engine.
    pub fn ciam(&self) -> &Ciam {
        &self.shared.ciam
    }

    /// Decides a request's caller as [`CiamService`] does, without an inner service: the CSRF
    /// check, the client IP (from `headers` and the TCP `peer`), and the session cookie,
    /// validated with [`Ciam::authenticate`].
    ///
    /// `path` is the full request path (the one [`Self::cookieless_path`] names). `Err` is the
    /// refusal to send instead of running the application: 403 `{"error": "csrf"}`, or 503
    /// when the session store fails. For adapters to other web frameworks; see [`Resolved`].
    pub async fn resolve(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Resolved, Response> {
        resolve(Arc::clone(&self.shared), method, path, headers, peer).await
    }
}

impl fmt::Debug for CiamLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiamLayer")
            .field("cookie", &self.shared.cookie)
            .field("origin", &self.shared.origin)
            .field("csrf", &self.shared.csrf)
            .field("client_ip", &self.shared.client_ip_name)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CiamLayer {
    type Service = CiamService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CiamService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service made by [`CiamLayer`]; see there.
#[derive(Clone)]
pub struct CiamService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for CiamService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiamService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The response future of [`CiamService`].
pub struct ResponseFuture<E> {
    inner: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>,
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, B> Service<Request<B>> for CiamService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone is not ready; keep the ready one for this call (tower's usual dance).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        ResponseFuture {
            inner: Box::pin(handle(shared, inner, req)),
        }
    }
}

async fn handle<S, B>(
    shared: Arc<Shared>,
    mut inner: S,
    mut req: Request<B>,
) -> Result<Response, S::Error>
where
    S: Service<Request<B>, Response = Response>,
{
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let resolved = match resolve(shared, req.method(), req.uri().path(), req.headers(), peer).await
    {
        Ok(resolved) => resolved,
        Err(refusal) => return Ok(refusal),
    };
    let finish = resolved.install_owned(req.extensions_mut());
    let mut response = inner.call(req).await?;
    finish.finish(response.headers_mut());
    Ok(response)
}

/// The CSRF check, the client IP and the session: everything [`CiamService`] decides before
/// the inner service runs.
async fn resolve(
    shared: Arc<Shared>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<Resolved, Response> {
    if shared.csrf
        && !csrf::is_cookieless_api_call(headers, path, &shared.cookieless)
        && !is_form_post_callback(method, path)
        && let Err(reason) = csrf::check(method, headers, &shared.origin)
    {
        tracing::warn!(reason, %method, path, "cross-site request refused");
        return Err(CsrfRejection.into_response());
    }
    let ip = shared.client_ip.client_ip(headers, peer);
    let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    let token = shared.cookie.read(headers);
    let ctx = RequestContext::new(ip, user_agent)
        .with_session_token(token.clone())
        .with_device_token(shared.cookie.read_device(headers));
    let mut auth = None;
    let mut clear_cookie = false;
    if let Some(token) = &token {
        match shared.ciam.authenticate(token, &ctx).await {
            Ok(a) => auth = Some(a),
            Err(e) if e.kind() == ErrorKind::Unauthorized => clear_cookie = true,
            Err(e) => return Err(ApiError::from(e).into_response()),
        }
    }
    Ok(Resolved {
        shared,
        auth,
        ctx,
        clear_cookie,
    })
}

/// The caller of one request, as [`CiamLayer::resolve`] decided it: the signed-in
/// [`AuthContext`] if any, the [`RequestContext`], and whether the presented session cookie
/// must be cleared.
///
/// This is the hook for adapters to other web frameworks (ciam-actix): they resolve the
/// caller natively with [`CiamLayer::resolve`], keep the `Resolved` with the request, and,
/// when they hand the request to a tower service built by this crate (such as
/// [`router`](crate::router)), put it into the `http` request's extensions with
/// [`Resolved::install`]. The extractors and handlers of this crate then see the request as
/// if [`CiamService`] had passed it, and the session is not validated a second time. Finally
/// [`Resolved::clear_cookie_value`] says whether the response must clear the cookie.
///
/// Cloning copies the `AuthContext` and the `RequestContext` (no I/O).
#[derive(Clone)]
pub struct Resolved {
    shared: Arc<Shared>,
    auth: Option<AuthContext>,
    ctx: RequestContext,
    clear_cookie: bool,
}

impl Resolved {
    /// The signed-in caller, when the request carried a valid session cookie.
    pub fn auth(&self) -> Option<&AuthContext> {
        self.auth.as_ref()
    }

    /// The request context (client IP, User-Agent, presented tokens) for engine calls.
    pub fn context(&self) -> &RequestContext {
        &self.ctx
    }

    /// The engine.
    pub fn ciam(&self) -> &Ciam {
        &self.shared.ciam
    }

    /// The session cookie configuration in force.
    pub fn cookie(&self) -> &CookieConfig {
        &self.shared.cookie
    }

    /// Inserts what [`CiamService`] inserts into a request's extensions: the
    /// [`AuthContext`] (when signed in), the [`RequestContext`] and the layer's configuration,
    /// so that this crate's extractors and [`router`](crate::router) accept the request.
    pub fn install(&self, extensions: &mut Extensions) {
        self.clone().install_owned(extensions);
    }

    /// [`Self::install`] without the copies; returns what the response needs.
    fn install_owned(self, extensions: &mut Extensions) -> Finish {
        if let Some(auth) = self.auth {
            extensions.insert(auth);
        }
        extensions.insert(self.ctx);
        extensions.insert(Installed(Arc::clone(&self.shared)));
        Finish {
            shared: self.shared,
            clear_cookie: self.clear_cookie,
        }
    }

    /// The `Set-Cookie` value that clears the session cookie, when the request presented an
    /// invalid, expired or revoked one and the response (whose `Set-Cookie` values are
    /// `set_cookies`) does not already set or clear it; else `None`.
    pub fn clear_cookie_value<'a>(
        &self,
        set_cookies: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<HeaderValue> {
        clear_cookie_value(
            &self.shared.cookie,
            self.clear_cookie,
            set_cookies.into_iter(),
        )
    }
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("auth", &self.auth)
            .field("ctx", &self.ctx)
            .field("clear_cookie", &self.clear_cookie)
            .finish_non_exhaustive()
    }
}

/// What the response of a resolved request needs: the cookie to clear, if any.
struct Finish {
    shared: Arc<Shared>,
    clear_cookie: bool,
}

impl Finish {
    fn finish(self, headers: &mut HeaderMap) {
        let value = clear_cookie_value(
            &self.shared.cookie,
            self.clear_cookie,
            headers
                .get_all(SET_COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        if let Some(value) = value {
            headers.append(SET_COOKIE, value);
        }
    }
}

fn clear_cookie_value<'a>(
    cookie: &CookieConfig,
    clear: bool,
    mut set_cookies: impl Iterator<Item = &'a [u8]>,
) -> Option<HeaderValue> {
    (clear && !set_cookies.any(|v| cookie.is_this_cookie(v))).then(|| cookie.clear_cookie())
}

/// A provider's `form_post` to a federated callback (feature `federation`): its handler only
/// re-issues it as a same-site GET, so it needs no origin check.
fn is_form_post_callback(method: &http::Method, path: &str) -> bool {
    #[cfg(feature = "federation")]
    {
        crate::federation::is_form_post_callback(method, path)
    }
    #[cfg(not(feature = "federation"))]
    {
        let _ = (method, path);
        false
    }
}

/// The cookie-less paths exempt from the origin check by default: the token refresh of the
/// router mounted at `/auth` when the `tokens` feature is on.
fn default_cookieless_paths() -> Vec<String> {
    if cfg!(feature = "tokens") {
        vec!["/auth/token/refresh".to_owned()]
    } else {
        Vec::new()
    }
}

/// The client IP: the TCP peer, or with `hops` trusted proxies the `hops`-th
/// `X-Forwarded-For` entry from the right.
/// Unix second of the last misconfiguration warning (at most one a minute).
static LAST_PROXY_WARNING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Logs a trusted-proxy misconfiguration loudly (error level), at most once a minute.
fn warn_proxy_misconfigured(message: &'static str, hops: usize, peer: Option<IpAddr>) {
    use std::sync::atomic::Ordering;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_PROXY_WARNING.load(Ordering::Relaxed);
    if now >= last.saturating_add(60)
        && LAST_PROXY_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(
            hops,
            peer = ?peer,
            "client IP misconfiguration: {message}; throttling and audit would see the proxy's address for every client"
        );
    }
}

fn forwarded_client_ip(headers: &HeaderMap, peer: Option<IpAddr>, hops: usize) -> Option<IpAddr> {
    if hops == 0 {
        if peer.is_some_and(|p| p.is_loopback() || is_private(p))
            && headers.contains_key("x-forwarded-for")
        {
            warn_proxy_misconfigured(
                "a request from a private address carries X-Forwarded-For but no proxy is trusted (set trusted_proxy_hops)",
                hops,
                peer,
            );
        }
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(hops)
        .and_then(|i| entries.get(i))
        .and_then(|e| {
            e.parse::<IpAddr>()
                .ok()
                .or_else(|| e.parse::<SocketAddr>().ok().map(|s| s.ip()))
        })
        .or_else(|| {
            if peer.is_some_and(|p| p.is_loopback() || is_private(p)) {
                warn_proxy_misconfigured(
                    "a request from a private address came without the X-Forwarded-For entries the trusted proxies add",
                    hops,
                    peer,
                );
            }
            peer
        })
}

/// RFC 1918 / RFC 4193 private and link-local addresses: where proxies usually live.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_from_the_right() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            http::HeaderValue::from_static("6.6.6.6, 1.2.3.4, 10.0.0.1"),
        );
        let peer = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(TrustedProxies(0).client_ip(&h, peer), peer);
        assert_eq!(
            TrustedProxies(1).client_ip(&h, peer),
            Some(IpAddr::from([10, 0, 0, 1]))
        );
        assert_eq!(
            TrustedProxies(2).client_ip(&h, peer),
            Some(IpAddr::from([1, 2, 3, 4]))
        );
        assert_eq!(TrustedProxies(9).client_ip(&h, peer), peer);
        let fixed = |_: &HeaderMap, _: Option<IpAddr>| Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(
            fixed.client_ip(&h, peer),
            Some(IpAddr::from([192, 0, 2, 1]))
        );
    }
}
