//! The layer's client IP: resolved from the TCP peer or `X-Forwarded-For`, and every
//! misconfiguration refused with 500 `client_ip_unresolved` and an error log naming the
//! setting, never papered over with the proxy's address.

use std::fmt::{self, Write as _};
use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ConnectInfo;
use http::HeaderMap;

use super::*;
use crate::{ClientContext, TrustedProxies};

/// An app whose `/ip` answers the client IP the layer decided, counting the calls that got
/// through, beside the auth router.
fn ip_app(ciam: &Ciam, layer: CiamLayer, hits: &Arc<AtomicUsize>) -> Router {
    let hits = Arc::clone(hits);
    Router::new()
        .route(
            "/ip",
            get(move |ClientContext(ctx): ClientContext| {
                hits.fetch_add(1, Ordering::SeqCst);
                async move { format!("{:?}", ctx.ip) }
            }),
        )
        .nest("/auth", router(ciam.clone()))
        .layer(layer)
}

/// A request as a server with `into_make_service_with_connect_info` hands it on: with the
/// `ConnectInfo` of `peer`, if any.
fn request(
    method: &str,
    path: &str,
    peer: Option<&str>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::ORIGIN, HTTP_URL);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    if method == "POST" {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let body = if method == "POST" {
        Body::from(json!({"email": "ip@example.com", "password": PASSWORD}).to_string())
    } else {
        Body::empty()
    };
    let mut req = b.body(body).unwrap();
    if let Some(peer) = peer {
        let addr: IpAddr = peer.parse().unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(addr, 50_000)));
    }
    req
}

/// What the layer made of a request: the client IP the handler saw, or the refusal.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Ip(Option<IpAddr>),
    Refused,
}

async fn seen(app: &Router, hits: &AtomicUsize, req: Request<Body>) -> Seen {
    let before = hits.load(Ordering::SeqCst);
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        assert!(res.headers().get(header::SET_COOKIE).is_none());
        let body = body_json(res).await;
        assert_eq!(body["error"], "client_ip_unresolved", "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
        assert_eq!(hits.load(Ordering::SeqCst), before, "the app ran");
        return Seen::Refused;
    }
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(to_bytes(res.into_body(), 1024).await.unwrap().to_vec()).unwrap();
    Seen::Ip(match text.as_str() {
        "None" => None,
        some => Some(
            some.strip_prefix("Some(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap()
                .parse()
                .unwrap(),
        ),
    })
}

fn ip(text: &str) -> Seen {
    Seen::Ip(Some(text.parse().unwrap()))
}

const XFF: &str = "x-forwarded-for";

#[tokio::test]
async fn the_client_ip_is_resolved_or_the_request_refused() {
    let ciam = engine(HTTP_URL);
    let header_rule = |h: &HeaderMap, _: Option<IpAddr>| {
        h.get("cdn-client-ip")
            .and_then(|v| v.to_str().ok()?.parse().ok())
    };
    let layers: Vec<(&str, CiamLayer)> = vec![
        ("default", CiamLayer::new(ciam.clone())),
        ("hops 1", CiamLayer::new(ciam.clone()).trusted_proxy_hops(1)),
        (
            "TrustedProxies(1)",
            CiamLayer::new(ciam.clone()).client_ip(TrustedProxies(1)),
        ),
        ("hops 2", CiamLayer::new(ciam.clone()).trusted_proxy_hops(2)),
        ("rule", CiamLayer::new(ciam.clone()).client_ip(header_rule)),
        (
            "default, danger",
            CiamLayer::new(ciam.clone()).danger_allow_unknown_client_ip(),
        ),
        (
            "hops 2, danger",
            CiamLayer::new(ciam.clone())
                .trusted_proxy_hops(2)
                .danger_allow_unknown_client_ip(),
        ),
        (
            "rule, danger",
            CiamLayer::new(ciam.clone())
                .client_ip(header_rule)
                .danger_allow_unknown_client_ip(),
        ),
    ];
    type Case<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)], Seen);
    let cases: &[Case<'_>] = &[
        // No proxy: the TCP peer.
        ("default", Some("203.0.113.10"), &[], ip("203.0.113.10")),
        ("default", Some("127.0.0.1"), &[], ip("127.0.0.1")),
        (
            "default",
            Some("::ffff:198.51.100.3"),
            &[],
            ip("198.51.100.3"),
        ),
        // A public client writing X-Forwarded-For itself is ignored.
        (
            "default",
            Some("203.0.113.10"),
            &[(XFF, "6.6.6.6")],
            ip("203.0.113.10"),
        ),
        // (a) A proxy-like peer forwarding while no proxy is trusted.
        (
            "default",
            Some("127.0.0.1"),
            &[(XFF, "6.6.6.6")],
            Seen::Refused,
        ),
        (
            "default",
            Some("10.0.0.5"),
            &[("forwarded", "for=6.6.6.6")],
            Seen::Refused,
        ),
        (
            "default",
            Some("192.168.1.2"),
            &[("x-real-ip", "6.6.6.6")],
            Seen::Refused,
        ),
        // (c) No TCP peer.
        ("default", None, &[], Seen::Refused),
        // Behind proxies: counted from the right; the peer is not needed.
        (
            "hops 1",
            Some("10.0.0.5"),
            &[(XFF, "6.6.6.6, 198.51.100.7")],
            ip("198.51.100.7"),
        ),
        ("hops 1", None, &[(XFF, "198.51.100.7")], ip("198.51.100.7")),
        (
            "TrustedProxies(1)",
            Some("10.0.0.5"),
            &[(XFF, "198.51.100.7")],
            ip("198.51.100.7"),
        ),
        (
            "hops 2",
            Some("10.0.0.5"),
            &[(XFF, "6.6.6.6, 198.51.100.7, 10.0.0.9")],
            ip("198.51.100.7"),
        ),
        // (b) Fewer entries than trusted proxies, or none: never the proxy's address.
        ("hops 1", Some("10.0.0.5"), &[], Seen::Refused),
        ("TrustedProxies(1)", Some("10.0.0.5"), &[], Seen::Refused),
        (
            "hops 2",
            Some("10.0.0.5"),
            &[(XFF, "198.51.100.7")],
            Seen::Refused,
        ),
        // A malformed entry where the outermost proxy's should be.
        (
            "hops 1",
            Some("10.0.0.5"),
            &[(XFF, "unknown")],
            Seen::Refused,
        ),
        // A custom rule.
        (
            "rule",
            None,
            &[("cdn-client-ip", "198.51.100.8")],
            ip("198.51.100.8"),
        ),
        ("rule", Some("203.0.113.10"), &[], Seen::Refused),
        // The opt-out lets requests without an address through, without an IP...
        ("default, danger", None, &[], Seen::Ip(None)),
        ("rule, danger", Some("203.0.113.10"), &[], Seen::Ip(None)),
        (
            "default, danger",
            Some("203.0.113.10"),
            &[],
            ip("203.0.113.10"),
        ),
        // ...but never a proxy misconfiguration.
        (
            "default, danger",
            Some("127.0.0.1"),
            &[(XFF, "6.6.6.6")],
            Seen::Refused,
        ),
        (
            "hops 2, danger",
            Some("10.0.0.5"),
            &[(XFF, "198.51.100.7")],
            Seen::Refused,
        ),
    ];
    let hits = Arc::new(AtomicUsize::new(0));
    for (name, peer, headers, expected) in cases {
        let layer = layers.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let app = ip_app(&ciam, layer, &hits);
        let got = seen(&app, &hits, request("GET", "/ip", *peer, headers)).await;
        assert_eq!(&got, expected, "{name}, peer {peer:?}, {headers:?}");
    }
}

#[tokio::test]
async fn a_refused_sign_in_never_reaches_the_engine() {
    let ciam = engine(HTTP_URL);
    let hits = Arc::new(AtomicUsize::new(0));
    let app = ip_app(&ciam, CiamLayer::new(ciam.clone()), &hits);
    // Without a peer, a sign-in is refused before the engine runs: 500, not 401.
    let res = app
        .clone()
        .oneshot(request("POST", "/auth/login", None, &[]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body_json(res).await["error"], "client_ip_unresolved");
    // The same sign-in with a peer reaches it (and fails on the unknown address).
    let res = app
        .clone()
        .oneshot(request("POST", "/auth/login", Some("203.0.113.10"), &[]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(res).await["error"], "invalid_credentials");
    // The CSRF check still comes first.
    let mut req = request("POST", "/auth/login", None, &[]);
    req.headers_mut().remove(header::ORIGIN);
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn mock_connect_info_is_the_peer_like_for_axums_extractor() {
    let ciam = engine(HTTP_URL);
    let hits = Arc::new(AtomicUsize::new(0));
    let app = ip_app(&ciam, CiamLayer::new(ciam.clone()), &hits).layer(peer());
    assert_eq!(
        seen(&app, &hits, request("GET", "/ip", None, &[])).await,
        ip("203.0.113.10")
    );
    // A real ConnectInfo wins over the mock.
    assert_eq!(
        seen(
            &app,
            &hits,
            request("GET", "/ip", Some("198.51.100.1"), &[])
        )
        .await,
        ip("198.51.100.1")
    );
}

/// The events of the current thread's tracing dispatcher, as `(level, fields)`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Captured {
    fn take(&self) -> Vec<(tracing::Level, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Each kind of misconfiguration logs one error naming the setting to fix, then stays quiet
/// (debug) for a minute instead of writing a line per refused request.
#[tokio::test]
async fn misconfiguration_is_logged_loudly_once_a_minute_naming_the_setting() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    let ciam = engine(HTTP_URL);
    let hits = Arc::new(AtomicUsize::new(0));
    let errors = |events: Vec<(tracing::Level, String)>| -> Vec<String> {
        events
            .into_iter()
            .filter(|(level, _)| *level == tracing::Level::ERROR)
            .map(|(_, text)| text)
            .collect()
    };

    let app = ip_app(&ciam, CiamLayer::new(ciam.clone()), &hits);
    for _ in 0..3 {
        let got = seen(&app, &hits, request("GET", "/ip", None, &[])).await;
        assert_eq!(got, Seen::Refused);
    }
    let logged = errors(captured.take());
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("setting=\"into_make_service_with_connect_info\"")
            && logged[0].contains("client_ip_unresolved"),
        "{logged:?}"
    );
    // Another kind on the same layer has its own minute.
    let got = seen(
        &app,
        &hits,
        request("GET", "/ip", Some("127.0.0.1"), &[(XFF, "6.6.6.6")]),
    )
    .await;
    assert_eq!(got, Seen::Refused);
    let logged = errors(captured.take());
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("setting=\"trusted_proxy_hops\"") && logged[0].contains("is 0"),
        "{logged:?}"
    );

    let app = ip_app(
        &ciam,
        CiamLayer::new(ciam.clone()).trusted_proxy_hops(2),
        &hits,
    );
    for _ in 0..2 {
        let got = seen(
            &app,
            &hits,
            request("GET", "/ip", Some("10.0.0.5"), &[(XFF, "198.51.100.7")]),
        )
        .await;
        assert_eq!(got, Seen::Refused);
    }
    let logged = errors(captured.take());
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("setting=\"trusted_proxy_hops\"")
            && logged[0].contains("trusted_proxy_hops is 2 but X-Forwarded-For has 1 entries"),
        "{logged:?}"
    );
}

/// Sends `GET path` over TCP to `addr` and returns the status and body.
async fn raw_get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    })
    .await
    .unwrap()
}

/// Over a real socket: served with connection info, the peer is the client IP; served
/// without, every request is refused instead of running without an address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_the_peer_comes_from_connect_info() {
    let ciam = engine(HTTP_URL);
    let hits = Arc::new(AtomicUsize::new(0));
    let app = ip_app(&ciam, CiamLayer::new(ciam.clone()), &hits);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let with_info = listener.local_addr().unwrap();
    let service = app
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let without_info = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    assert_eq!(
        raw_get(with_info, "/ip", "").await,
        (200, "Some(127.0.0.1)".to_owned())
    );
    // A loopback peer forwarding with no proxy trusted: the unconfigured proxy.
    let (status, body) = raw_get(with_info, "/ip", "X-Forwarded-For: 6.6.6.6\r\n").await;
    assert_eq!(status, 500);
    assert!(body.contains("client_ip_unresolved"), "{body}");
    let (status, body) = raw_get(without_info, "/ip", "").await;
    assert_eq!(status, 500);
    assert!(body.contains("client_ip_unresolved"), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
