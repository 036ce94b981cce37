//! The tower layer that resolves the caller: client IP, User-Agent, session cookie and the
//! CSRF check.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::response::{IntoResponse, Response};
use http::header::{SET_COOKIE, USER_AGENT};
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Request};
use tower_layer::Layer;
use tower_service::Service;

use ciam_core::{AuthContext, Ciam, ErrorKind, RequestContext};

use crate::cookie::CookieConfig;
use crate::csrf;
use crate::rejection::{ApiError, CsrfRejection, client_ip_unresolved};

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
///
/// A rule that answers `None` makes [`CiamService`] refuse the request with 500
/// `{"error": "client_ip_unresolved"}` (see [`CiamLayer`'s client IP section](CiamLayer#client-ip)),
/// unless the layer was built with [`CiamLayer::danger_allow_unknown_client_ip`].
pub trait ClientIp: Send + Sync + 'static {
    /// The client IP, given the request headers and the TCP peer (when the app is served with
    /// `ConnectInfo<SocketAddr>`), or `None` when it cannot be decided.
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
///
/// It answers `None`, and [`CiamLayer`] refuses the request, when the configuration cannot be
/// right (see [`CiamLayer`'s client IP section](CiamLayer#client-ip)): with `n = 0`, no TCP
/// peer, or a peer that looks like a proxy (loopback, private, link-local or shared address
/// space) sending a forwarding header; with `n > 0`, fewer than `n` entries, or an `n`-th
/// entry that is not an address. It never falls back to the TCP peer behind proxies: that
/// address is the proxy's, the same for every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustedProxies(pub usize);

impl ClientIp for TrustedProxies {
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        self.decide(headers, peer).ok()
    }
}

/// `X-Forwarded-For`, as a parsed name: looking a header up by `&str` parses the name on
/// every request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The headers a reverse proxy adds to name the client. Their presence on a request from a
/// proxy-like address while no proxy is trusted means the setting is wrong.
const FORWARDING_HEADERS: [HeaderName; 3] = [
    X_FORWARDED_FOR,
    http::header::FORWARDED,
    HeaderName::from_static("x-real-ip"),
];

impl TrustedProxies {
    /// The client IP, or why the configuration cannot be right for this request.
    fn decide(self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<IpAddr, Unresolved> {
        let hops = self.0;
        if hops == 0 {
            let peer = peer.map(|p| p.to_canonical()).ok_or(Unresolved::NoPeer)?;
            if looks_like_proxy(peer) && FORWARDING_HEADERS.iter().any(|h| headers.contains_key(h))
            {
                return Err(Unresolved::ForwardedWithoutTrustedProxy);
            }
            return Ok(peer);
        }
        // Byte-wise, so that junk a client put into its own (left-hand) entries cannot hide
        // the entries the proxies appended.
        let entries = || {
            headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .rev()
                .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','))
                .map(<[u8]>::trim_ascii)
                .filter(|e| !e.is_empty())
        };
        match entries().nth(hops - 1) {
            Some(entry) => parse_forwarded_entry(entry)
                .map(|ip| ip.to_canonical())
                .ok_or(Unresolved::MalformedForwardedEntry),
            None => Err(Unresolved::TooFewForwardedEntries {
                expected: hops,
                found: entries().count(),
            }),
        }
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`[v6]:port` too).
fn parse_forwarded_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Loopback, RFC 1918 / RFC 4193 private, link-local, and RFC 6598 shared (100.64.0.0/10)
/// addresses: where reverse proxies and load balancers live.
fn looks_like_proxy(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Why the client IP of a request could not be decided: a misconfiguration the layer refuses
/// to paper over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unresolved {
    /// No proxy is trusted, but a proxy-like peer sent a forwarding header.
    ForwardedWithoutTrustedProxy,
    /// Fewer `X-Forwarded-For` entries than trusted proxies.
    TooFewForwardedEntries { expected: usize, found: usize },
    /// The entry the outermost trusted proxy wrote is not an address.
    MalformedForwardedEntry,
    /// No TCP peer address (no `ConnectInfo<SocketAddr>`), and none is trusted instead.
    NoPeer,
    /// The application's [`ClientIp`] rule answered `None`.
    RuleGaveNone,
}

impl Unresolved {
    /// The number of kinds, for the log limiter.
    const KINDS: usize = 5;

    fn index(self) -> usize {
        match self {
            Self::ForwardedWithoutTrustedProxy => 0,
            Self::TooFewForwardedEntries { .. } => 1,
            Self::MalformedForwardedEntry => 2,
            Self::NoPeer => 3,
            Self::RuleGaveNone => 4,
        }
    }

    /// The setting to fix, as the log names it.
    fn setting(self) -> &'static str {
        match self {
            Self::ForwardedWithoutTrustedProxy
            | Self::TooFewForwardedEntries { .. }
            | Self::MalformedForwardedEntry => "trusted_proxy_hops",
            Self::NoPeer => "into_make_service_with_connect_info",
            Self::RuleGaveNone => "client_ip",
        }
    }

    /// What is wrong and how to fix it, for the operator.
    fn explain(self) -> String {
        match self {
            Self::ForwardedWithoutTrustedProxy => "the TCP peer is a loopback, private or \
                link-local address, so probably a reverse proxy, and the request carries \
                X-Forwarded-For, Forwarded or X-Real-IP, but trusted_proxy_hops is 0: set \
                CiamLayer::trusted_proxy_hops to the number of proxies in front of the app \
                (CIAM_TRUSTED_PROXY_HOPS in the quickstart), or every client would share the \
                proxy's address"
                .to_owned(),
            Self::TooFewForwardedEntries { expected, found } => format!(
                "trusted_proxy_hops is {expected} but X-Forwarded-For has {found} entries: make \
                every proxy append to X-Forwarded-For, lower trusted_proxy_hops to the number \
                of proxies that do, and keep direct callers (health checks) off the routes \
                behind CiamLayer; the peer's address would be the proxy's, the same for every \
                client"
            ),
            Self::MalformedForwardedEntry => "the X-Forwarded-For entry written by the \
                outermost trusted proxy is not an IP address: check trusted_proxy_hops and \
                what the proxy writes"
                .to_owned(),
            Self::NoPeer => "the request has no TCP peer address: serve the app with \
                into_make_service_with_connect_info::<SocketAddr>(), set trusted_proxy_hops \
                behind reverse proxies, or give a client_ip rule; \
                danger_allow_unknown_client_ip accepts such requests without an IP"
                .to_owned(),
            Self::RuleGaveNone => "the application's client_ip rule answered no address; \
                danger_allow_unknown_client_ip accepts such requests without an IP"
                .to_owned(),
        }
    }

    /// Whether [`CiamLayer::danger_allow_unknown_client_ip`] lets the request through.
    fn may_be_allowed(self) -> bool {
        matches!(self, Self::NoPeer | Self::RuleGaveNone)
    }
}

/// How [`CiamService`] decides the client IP.
#[derive(Clone)]
enum IpRule {
    /// [`TrustedProxies`], with its refusals explained.
    Proxies(TrustedProxies),
    /// An application's rule.
    Custom(Arc<dyn ClientIp>),
}

impl IpRule {
    fn decide(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<IpAddr, Unresolved> {
        match self {
            Self::Proxies(p) => p.decide(headers, peer),
            Self::Custom(rule) => rule
                .client_ip(headers, peer)
                .map(|ip| ip.to_canonical())
                .ok_or(Unresolved::RuleGaveNone),
        }
    }
}

impl fmt::Debug for IpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proxies(TrustedProxies(0)) => f.write_str("peer"),
            Self::Proxies(TrustedProxies(n)) => write!(f, "x-forwarded-for ({n} trusted proxies)"),
            Self::Custom(_) => f.write_str("custom"),
        }
    }
}

/// Logs each kind of client-IP misconfiguration at error level at most once a minute per
/// layer: loud, without a line per refused request.
#[derive(Debug, Default)]
struct MisconfigLog {
    /// Unix second of the last error line, per [`Unresolved`] kind.
    last: [AtomicU64; Unresolved::KINDS],
}

impl MisconfigLog {
    fn report(&self, why: Unresolved, rule: &IpRule, peer: Option<IpAddr>, path: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let slot = &self.last[why.index()];
        let last = slot.load(Ordering::Relaxed);
        let due = last == 0 || now >= last.saturating_add(60);
        if due
            && slot
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                setting = why.setting(),
                rule = ?rule,
                peer = ?peer,
                path,
                "client IP unresolved, request refused with 500 client_ip_unresolved \
                 (logged at most once a minute): {}",
                why.explain()
            );
        } else {
            tracing::debug!(setting = why.setting(), peer = ?peer, path, "client IP unresolved");
        }
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
    client_ip: IpRule,
    /// [`CiamLayer::danger_allow_unknown_client_ip`].
    allow_unknown_ip: bool,
    misconfig_log: Arc<MisconfigLog>,
    /// `GET /me`'s rendered answers (shared by every clone of the layer).
    pub(crate) me_answers: Arc<crate::me_answers::MeAnswers>,
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
/// 2. decides the client IP, and refuses the request with 500
///    `{"error": "client_ip_unresolved"}` when the configuration cannot be right (see
///    [Client IP](#client-ip) below);
/// 3. builds a [`RequestContext`] (client IP, User-Agent, presented session token) and
///    inserts it into the request extensions;
/// 4. if the session cookie is present, validates it with [`Ciam::authenticate`] and inserts
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
/// The IP keys sign-in throttling and the risk policy's network signals, so a wrong setting
/// is never papered over by falling back to the proxy's address (one bucket for every
/// client). Requests that show the setting to be wrong are refused with 500
/// `{"error": "client_ip_unresolved"}`, and an error naming the setting to fix is logged (each
/// kind at most once a minute per layer; the rest at debug):
///
/// | trusted proxies | request | setting named in the log |
/// |---|---|---|
/// | 0 (default) | no TCP peer address (no `ConnectInfo<SocketAddr>`) | `into_make_service_with_connect_info` |
/// | 0 | `X-Forwarded-For`, `Forwarded` or `X-Real-IP` from a loopback, private (RFC 1918, RFC 4193), link-local or shared (100.64.0.0/10) peer: a proxy nobody told the layer about | `trusted_proxy_hops` |
/// | n > 0 | fewer than n `X-Forwarded-For` entries (a proxy that does not append, n too high, or a caller that bypassed the proxies) | `trusted_proxy_hops` |
/// | n > 0 | the n-th entry from the right is not an IP address | `trusted_proxy_hops` |
/// | custom rule | the rule answers `None` | `client_ip` |
///
/// With n > 0 the peer address is not needed (a proxy may reach the app over a Unix socket).
/// A public peer sending `X-Forwarded-For` with no proxy trusted is a client writing the header
/// itself: the peer is used and the header ignored.
///
/// Routes that direct callers reach without passing the proxies, such as a load balancer's
/// health check, belong outside the layer (add them to the router after `.layer(...)`).
/// An application that deliberately runs without a peer address can let such requests through
/// without an IP with [`CiamLayer::danger_allow_unknown_client_ip`]; tests of a router
/// called with `tower::ServiceExt::oneshot` should rather install axum's
/// [`MockConnectInfo`] layer outside this one.
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
                client_ip: IpRule::Proxies(TrustedProxies(0)),
                allow_unknown_ip: false,
                misconfig_log: Arc::default(),
                me_answers: Arc::default(),
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
    /// Shorthand for `client_ip(TrustedProxies(hops))`. A request that shows the number to be
    /// wrong is refused (see [Client IP](Self#client-ip)).
    pub fn trusted_proxy_hops(mut self, hops: usize) -> Self {
        Arc::make_mut(&mut self.shared).client_ip = IpRule::Proxies(TrustedProxies(hops));
        self
    }

    /// Sets how the client IP is decided (see [`ClientIp`]). A rule answering `None` gets
    /// the request refused (see [Client IP](Self#client-ip)); [`TrustedProxies`] is the same
    /// as [`Self::trusted_proxy_hops`].
    pub fn client_ip(mut self, rule: impl ClientIp) -> Self {
        let any: &dyn std::any::Any = &rule;
        let rule = match any.downcast_ref::<TrustedProxies>() {
            Some(proxies) => IpRule::Proxies(*proxies),
            None => IpRule::Custom(Arc::new(rule)),
        };
        Arc::make_mut(&mut self.shared).client_ip = rule;
        self
    }

    /// Lets requests whose client IP cannot be decided because there is none to be had (no
    /// TCP peer address, or a [`ClientIp`] rule answering `None`) through without an IP,
    /// instead of refusing them with 500 `{"error": "client_ip_unresolved"}`.
    ///
    /// For applications that deliberately run without a peer address (a transport without
    /// one, an in-process harness). **What it opens:** such requests have no per-IP and
    /// per-subnet sign-in throttling and no network signal for the risk policy (a password
    /// guesser is slowed only per account and globally), and their sessions and audit entries
    /// carry no address. A proxy misconfiguration ([`Self::trusted_proxy_hops`] not matching
    /// the `X-Forwarded-For` header) is still refused.
    pub fn danger_allow_unknown_client_ip(mut self) -> Self {
        Arc::make_mut(&mut self.shared).allow_unknown_ip = true;
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
    /// refusal to send instead of running the application: 403 `{"error": "csrf"}`, 500
    /// `{"error": "client_ip_unresolved"}` when the client IP cannot be decided (see
    /// [Client IP](Self#client-ip); pass the TCP peer as `peer`), or 503 when the session store
    /// fails. For adapters to other web frameworks; see [`Resolved`].
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
            .field("client_ip", &self.shared.client_ip)
            .field("allow_unknown_ip", &self.shared.allow_unknown_ip)
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
    let peer = peer_of(req.extensions());
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

/// The TCP peer, from `ConnectInfo<SocketAddr>` or, as axum's own `ConnectInfo` extractor
/// does, from the `MockConnectInfo` a test harness installs.
fn peer_of(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
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
    let ip = match shared.client_ip.decide(headers, peer) {
        Ok(ip) => Some(ip),
        Err(why) if shared.allow_unknown_ip && why.may_be_allowed() => {
            tracing::debug!(setting = why.setting(), path, "no client IP (allowed)");
            None
        }
        Err(why) => {
            shared
                .misconfig_log
                .report(why, &shared.client_ip, peer, path);
            return Err(client_ip_unresolved());
        }
    };
    let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    let (token, device) = shared.cookie.read_both(headers);
    let ctx = RequestContext::new(ip, user_agent)
        .with_session_token(token)
        .with_device_token(device);
    let mut auth = None;
    let mut clear_cookie = false;
    // The context holds the presented token; no second copy of it is made.
    if let Some(token) = &ctx.session_token {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_from_the_right() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.1")]);
        let peer = Some(ip("127.0.0.1"));
        assert_eq!(TrustedProxies(1).decide(&h, peer), Ok(ip("10.0.0.1")));
        assert_eq!(TrustedProxies(2).decide(&h, peer), Ok(ip("1.2.3.4")));
        assert_eq!(TrustedProxies(3).decide(&h, peer), Ok(ip("6.6.6.6")));
        // Behind proxies the peer is not needed (a proxy on a Unix socket has none).
        assert_eq!(TrustedProxies(2).decide(&h, None), Ok(ip("1.2.3.4")));
        // Several header lines read as one list, in order; ports and brackets are accepted.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "[2001:db8::7]:443 , 192.0.2.9:8080"),
        ]);
        assert_eq!(TrustedProxies(1).decide(&h, None), Ok(ip("192.0.2.9")));
        assert_eq!(TrustedProxies(2).decide(&h, None), Ok(ip("2001:db8::7")));
        assert_eq!(TrustedProxies(3).decide(&h, None), Ok(ip("6.6.6.6")));
        // Junk a client wrote into its own entries does not hide the proxies' entries.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe, , 203.0.113.5").unwrap(),
        );
        assert_eq!(TrustedProxies(1).decide(&h, None), Ok(ip("203.0.113.5")));
        // IPv4-mapped addresses are the IPv4 address (one key per client, whatever the socket).
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.4")]);
        assert_eq!(TrustedProxies(1).decide(&h, None), Ok(ip("198.51.100.4")));
        assert_eq!(
            TrustedProxies(0).decide(&HeaderMap::new(), Some(ip("::ffff:198.51.100.4"))),
            Ok(ip("198.51.100.4"))
        );
        // A closure rule.
        let fixed = |_: &HeaderMap, _: Option<IpAddr>| Some(ip("192.0.2.1"));
        assert_eq!(fixed.client_ip(&h, None), Some(ip("192.0.2.1")));
    }

    #[test]
    fn too_few_or_malformed_entries_are_refused_not_replaced_by_the_peer() {
        let proxy = Some(ip("10.0.0.2"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 10.0.0.1")]);
        assert_eq!(
            TrustedProxies(3).decide(&h, proxy),
            Err(Unresolved::TooFewForwardedEntries {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(TrustedProxies(3).client_ip(&h, proxy), None);
        assert_eq!(
            TrustedProxies(1).decide(&HeaderMap::new(), proxy),
            Err(Unresolved::TooFewForwardedEntries {
                expected: 1,
                found: 0
            })
        );
        // A proxy that writes only `Forwarded` is not what `trusted_proxy_hops` reads.
        let h = headers(&[("forwarded", "for=1.2.3.4")]);
        assert_eq!(
            TrustedProxies(1).decide(&h, proxy),
            Err(Unresolved::TooFewForwardedEntries {
                expected: 1,
                found: 0
            })
        );
        let h = headers(&[("x-forwarded-for", "1.2.3.4, unknown")]);
        assert_eq!(
            TrustedProxies(1).decide(&h, proxy),
            Err(Unresolved::MalformedForwardedEntry)
        );
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_used_unless_it_looks_like_an_unconfigured_proxy() {
        // A public peer writing X-Forwarded-For is a client: the header is ignored.
        let h = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(
            TrustedProxies(0).decide(&h, Some(ip("203.0.113.9"))),
            Ok(ip("203.0.113.9"))
        );
        // A proxy-like peer with no forwarding header is a direct client.
        for peer in ["127.0.0.1", "10.1.2.3", "::1"] {
            assert_eq!(
                TrustedProxies(0).decide(&HeaderMap::new(), Some(ip(peer))),
                Ok(ip(peer))
            );
        }
        // A proxy-like peer with any forwarding header: the proxy nobody configured.
        for peer in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            for header in FORWARDING_HEADERS {
                let mut h = HeaderMap::new();
                h.insert(header.clone(), HeaderValue::from_static("for=1.2.3.4"));
                assert_eq!(
                    TrustedProxies(0).decide(&h, Some(ip(peer))),
                    Err(Unresolved::ForwardedWithoutTrustedProxy),
                    "{peer} {header}"
                );
            }
        }
        for public in ["100.128.0.1", "172.32.0.1", "2001:db8::1", "8.8.8.8"] {
            assert!(!looks_like_proxy(ip(public)), "{public}");
        }
        // No peer at all.
        assert_eq!(
            TrustedProxies(0).decide(&HeaderMap::new(), None),
            Err(Unresolved::NoPeer)
        );
    }

    #[test]
    fn each_refusal_names_the_setting_to_fix() {
        let cases = [
            (
                Unresolved::ForwardedWithoutTrustedProxy,
                "trusted_proxy_hops",
            ),
            (
                Unresolved::TooFewForwardedEntries {
                    expected: 2,
                    found: 1,
                },
                "trusted_proxy_hops",
            ),
            (Unresolved::MalformedForwardedEntry, "trusted_proxy_hops"),
            (Unresolved::NoPeer, "into_make_service_with_connect_info"),
            (Unresolved::RuleGaveNone, "client_ip"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (why, setting) in cases {
            assert_eq!(why.setting(), setting);
            assert!(why.explain().contains(setting), "{why:?}");
            assert!(seen.insert(why.index()), "{why:?}");
            assert!(why.index() < Unresolved::KINDS);
        }
        assert!(
            Unresolved::NoPeer
                .explain()
                .contains("danger_allow_unknown_client_ip")
        );
    }
}
