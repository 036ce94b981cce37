//! The OpenAPI document is kept true: an independent validator accepts it, it and the router
//! name the same routes, and real answers validate against the schemas it declares.
//!
//! The validator is PyPI `openapi-spec-validator` / `openapi-schema-validator` in a venv
//! (`scripts/peers/openapi-install.sh`; `scripts/test.sh` exports its python as
//! `CIAM_TEST_OPENAPI_PYTHON`).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use ciam_core::{Ciam, Policy};
use ciam_storage::memory::MemoryBackend;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::openapi::documented;
use crate::tests::HTTP_URL;
use crate::{CiamLayer, openapi, router};

const PASSWORD: &str = "correct horse battery staple 42";

fn python() -> String {
    std::env::var("CIAM_TEST_OPENAPI_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CIAM_TEST_OPENAPI_PYTHON is not set: run scripts/test.sh, or \
             scripts/peers/openapi-install.sh and export the line it prints"
        )
    })
}

/// Runs `script` with the validator's python, `input` as its first argument (a file).
fn run_python(script: &str, input: &Value) -> (bool, String) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(input.to_string().as_bytes()).unwrap();
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(file.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const VALIDATE_SPEC: &str = r#"
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
doc = json.load(open(sys.argv[1]))
try:
    validate(doc)
except OpenAPIValidationError as e:
    print("invalid:", e)
    sys.exit(1)
print("valid")
"#;

#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = openapi("/auth");
    let (ok, out) = run_python(VALIDATE_SPEC, &doc);
    assert!(ok, "openapi-spec-validator refused the document: {out}");
    assert!(out.contains("valid"), "{out}");

    // The validator is not a rubber stamp: a response without a description is refused.
    let mut broken = doc.clone();
    broken["paths"]["/login"]["post"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let (ok, out) = run_python(VALIDATE_SPEC, &broken);
    assert!(!ok, "a broken document passed: {out}");

    // Operation ids are unique (tools generate function names from them).
    let mut ids = BTreeSet::new();
    for methods in doc["paths"].as_object().unwrap().values() {
        for op in methods.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
        }
    }
}

/// The `(method, path)` routes the router's source files declare: the `.route("<path>",
/// get(..).post(..))` calls outside test modules.
fn routed() -> BTreeSet<(String, String)> {
    let mut sources = vec![include_str!("routes.rs"), include_str!("mfa.rs")];
    #[cfg(feature = "passkeys")]
    sources.push(include_str!("passkeys.rs"));
    #[cfg(feature = "tokens")]
    sources.push(include_str!("tokens.rs"));
    #[cfg(feature = "federation")]
    sources.push(include_str!("federation.rs"));
    #[cfg(feature = "consent")]
    sources.push(include_str!("privacy.rs"));
    let mut out = BTreeSet::new();
    for source in sources {
        let code: String = source
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        // One `.route(` call per chunk, up to the next one.
        for chunk in code.split(".route(").skip(1) {
            let chunk = chunk.trim_start();
            let path = if let Some(rest) = chunk.strip_prefix('"') {
                rest.split('"').next().unwrap().to_owned()
            } else if chunk.starts_with("crate::openapi::OPENAPI_PATH") {
                crate::OPENAPI_PATH.to_owned()
            } else {
                panic!("a route whose path is not a literal: {}", &chunk[..40]);
            };
            // The methods: `get(`, `post(`, ... up to the call's end (the next `)\n`).
            let call = chunk.split(")\n").next().unwrap();
            for method in ["get", "post", "put", "patch", "delete"] {
                let found = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && call.as_bytes()[i - 1] != b'_'
                });
                if found {
                    out.insert((method.to_owned(), path.clone()));
                }
            }
        }
    }
    // The JWKS is served by `jwks_router` at the site root, not by `router`.
    out.retain(|(_, p)| p != "/.well-known/jwks.json");
    out
}

#[test]
fn the_router_and_the_document_name_the_same_routes() {
    let documented: BTreeSet<(String, String)> = documented()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    let routed = routed();
    assert!(
        routed.len() > 25,
        "the source scan found too few routes: {routed:?}"
    );
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

fn engine() -> Ciam {
    let mut policy = Policy::default();
    policy.allow_unverified_sign_in = true;
    let builder = Ciam::builder()
        .backend(Arc::new(MemoryBackend::new()))
        .public_url(HTTP_URL)
        .policy(policy);
    #[cfg(feature = "tokens")]
    let builder = builder.tokens(
        ciam_core::TokenConfig::generated(ciam_core::tokens::TokenAlgorithm::EdDsa).unwrap(),
    );
    builder.build().unwrap()
}

/// The router (and with the `consent` feature the privacy centre beside it) under `/auth`.
async fn app(ciam: &Ciam) -> Router {
    mounted(ciam, false).await
}

/// [`app`], nested, or with `at` registered at `/auth` (`router_at`).
async fn mounted(ciam: &Ciam, at: bool) -> Router {
    #[cfg(feature = "consent")]
    {
        let clock = ciam_core::clock::ManualClock::new(time::OffsetDateTime::now_utc());
        let ledger = crate::privacy::tests::ledger(&clock).await;
        crate::privacy::tests::mounted(ciam, &ledger, &clock, at)
    }
    #[cfg(not(feature = "consent"))]
    {
        let auth = if at {
            Router::new().merge(crate::router_at("/auth", ciam.clone()))
        } else {
            Router::new().nest("/auth", router(ciam.clone()))
        };
        auth.layer(CiamLayer::new(ciam.clone()))
            .layer(crate::tests::peer())
    }
}

async fn answer(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap();
    (parts.status, parts.headers, bytes.to_vec())
}

/// `router_at("/auth")` answers every documented operation exactly as `nest("/auth",
/// router)` does: status, `Cache-Control`, `Retry-After` and body, for a caller without a
/// session (each app on its own engine, so one's throttle counts do not reach the other).
/// And a path beside the prefix is not routed by either.
#[tokio::test]
async fn router_at_answers_as_nest_does() {
    let (nested, at) = (app(&engine()).await, mounted(&engine(), true).await);
    let mut compared = 0;
    for (method, path) in documented() {
        let uri = format!("/auth{}", path.replace('{', "x").replace('}', ""));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let a = answer(&nested, request(&method, &uri, None, body.as_ref())).await;
        let b = answer(&at, request(&method, &uri, None, body.as_ref())).await;
        assert_eq!(a.0, b.0, "{method} {uri}: status");
        for name in [
            header::CACHE_CONTROL,
            header::RETRY_AFTER,
            header::CONTENT_TYPE,
        ] {
            assert_eq!(a.1.get(&name), b.1.get(&name), "{method} {uri}: {name}");
        }
        assert_eq!(a.2, b.2, "{method} {uri}: body");
        compared += 1;
    }
    assert!(compared > 25, "only {compared} operations compared");
    for stray in ["/me", "/authme", "/auth", "/auth/nope"] {
        let a = answer(&nested, request(&Method::GET, stray, None, None)).await;
        let b = answer(&at, request(&Method::GET, stray, None, None)).await;
        assert_eq!(a.0, StatusCode::NOT_FOUND, "{stray}");
        assert_eq!((a.0, a.2), (b.0, b.2), "{stray}");
    }
}

/// Signed in through `router_at`, the session works on its routes: `GET /auth/me` names the
/// caller, and the document names `/auth` as its server.
#[tokio::test]
async fn router_at_signs_in_and_serves_me_and_the_document() {
    let ciam = engine();
    let app = mounted(&ciam, true).await;
    let login = crate::tests::sign_in(&app, HTTP_URL, "at@example.com").await;
    let cookie = crate::tests::session_cookie(&login);
    let (status, headers, body) =
        answer(&app, request(&Method::GET, "/auth/me", Some(&cookie), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let me: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(me["user"]["email"], "at@example.com");
    assert_eq!(me["session"]["user_id"], me["user"]["id"]);
    let (status, _, body) = answer(
        &app,
        request(&Method::GET, "/auth/openapi.json", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc, openapi("/auth"));
}

fn request(
    method: &Method,
    uri: &str,
    cookie: Option<&str>,
    body: Option<&Value>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::ORIGIN, HTTP_URL);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// Every documented path is routed: a request to it (with placeholder parameters) is not
/// answered by axum's own 404 (empty body) or 405.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let ciam = engine();
    let app = app(&ciam).await;
    for (method, path) in documented() {
        let uri = format!("/auth{}", path.replace('{', "x").replace('}', ""));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let res = app
            .clone()
            .oneshot(request(&method, &uri, None, body.as_ref()))
            .await
            .unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert!(
            !(status == StatusCode::NOT_FOUND && bytes.is_empty()),
            "{method} {uri} is not routed"
        );
    }
}

/// Inlines every `$ref` to `#/components/schemas/<name>` (the schemas have no cycles).
fn resolve(schema: &Value, doc: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let name = r.strip_prefix("#/components/schemas/").unwrap();
                return resolve(&doc["components"]["schemas"][name], doc);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(v, doc)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, doc)).collect()),
        other => other.clone(),
    }
}

/// One answer seen on the walk.
struct Seen {
    method: Method,
    path: &'static str,
    status: StatusCode,
    /// The media type, when there is a body.
    media: Option<String>,
    body: Option<Value>,
}

struct Walk {
    app: Router,
    cookie: Option<String>,
    seen: Vec<Seen>,
}

impl Walk {
    /// Calls `uri` (the documented `path` with its parameters filled in) and records the answer.
    async fn call(
        &mut self,
        method: Method,
        path: &'static str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Option<Value>, Vec<String>) {
        let res = self
            .app
            .clone()
            .oneshot(request(
                &method,
                &format!("/auth{uri}"),
                self.cookie.as_deref(),
                body.as_ref(),
            ))
            .await
            .unwrap();
        let status = res.status();
        let cookies: Vec<String> = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let media = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let media = media.filter(|_| !bytes.is_empty());
        let body: Option<Value> = match &media {
            Some(m) if m.starts_with("application/json") => {
                Some(serde_json::from_slice(&bytes).unwrap())
            }
            Some(_) => Some(Value::String(String::from_utf8(bytes.to_vec()).unwrap())),
            None => None,
        };
        self.seen.push(Seen {
            method,
            path,
            status,
            media,
            body: body.clone(),
        });
        (status, body, cookies)
    }
}

/// The `name=value` of the session cookie among `Set-Cookie` values.
fn session_pair(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .find(|c| c.starts_with("ciam_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

const VALIDATE_ANSWERS: &str = r#"
import json, sys
from openapi_schema_validator import validate
cases = json.load(open(sys.argv[1]))
bad = 0
for case in cases:
    try:
        validate(case["instance"], case["schema"])
        ok = True
        why = ""
    except Exception as e:
        ok = False
        why = str(e).splitlines()[0]
    if ok != case["expect_valid"]:
        bad += 1
        print("MISMATCH", case["label"], "valid" if ok else "invalid:", why)
print("checked", len(cases))
sys.exit(1 if bad else 0)
"#;

#[tokio::test]
async fn answers_match_the_documented_schemas() {
    let ciam = engine();
    let mut walk = Walk {
        app: app(&ciam).await,
        cookie: None,
        seen: Vec::new(),
    };
    let creds = json!({"email": "walker@example.com", "password": PASSWORD});
    let (s, ..) = walk
        .call(Method::POST, "/register", "/register", Some(creds.clone()))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // Errors before signing in: bad JSON shape, wrong password, no session.
    walk.call(Method::POST, "/login", "/login", Some(json!({"email": 1})))
        .await;
    let wrong = json!({"email": "walker@example.com", "password": "not the password at all"});
    let (s, ..) = walk
        .call(Method::POST, "/login", "/login", Some(wrong))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, ..) = walk.call(Method::GET, "/me", "/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    walk.call(
        Method::POST,
        "/verify-email",
        "/verify-email",
        Some(json!({"token": "nope"})),
    )
    .await;
    walk.call(
        Method::POST,
        "/verify-email/resend",
        "/verify-email/resend",
        Some(json!({"email": "walker@example.com"})),
    )
    .await;
    walk.call(
        Method::POST,
        "/password/forgot",
        "/password/forgot",
        Some(json!({"email": "nobody@example.com"})),
    )
    .await;
    walk.call(
        Method::POST,
        "/password/reset",
        "/password/reset",
        Some(json!({"token": "nope", "password": "a brand new long passphrase"})),
    )
    .await;
    walk.call(
        Method::POST,
        "/magic-link/start",
        "/magic-link/start",
        Some(json!({"email": "walker@example.com"})),
    )
    .await;
    walk.call(
        Method::POST,
        "/otp/start",
        "/otp/start",
        Some(json!({"email": "walker@example.com"})),
    )
    .await;
    walk.call(
        Method::POST,
        "/mfa/challenge",
        "/mfa/challenge",
        Some(json!({"mfa_token": "nope", "code": "123456"})),
    )
    .await;

    // Signed in.
    let (s, _, cookies) = walk
        .call(Method::POST, "/login", "/login", Some(creds))
        .await;
    assert_eq!(s, StatusCode::OK);
    walk.cookie = Some(session_pair(&cookies));
    let (s, ..) = walk.call(Method::GET, "/me", "/me", None).await;
    assert_eq!(s, StatusCode::OK);
    walk.call(Method::GET, "/me", "/me?stage=checkout", None)
        .await;
    let (_, sessions, _) = walk.call(Method::GET, "/sessions", "/sessions", None).await;
    assert!(
        sessions.unwrap()["sessions"][0]["current"]
            .as_bool()
            .unwrap()
    );
    walk.call(
        Method::DELETE,
        "/sessions/{id}",
        "/sessions/not-a-session",
        None,
    )
    .await;
    walk.call(
        Method::POST,
        "/sessions/revoke-others",
        "/sessions/revoke-others",
        None,
    )
    .await;
    walk.call(Method::GET, "/audit", "/audit", None).await;
    walk.call(Method::PATCH, "/profile", "/profile", Some(json!({})))
        .await;
    walk.call(
        Method::PATCH,
        "/profile",
        "/profile",
        Some(json!({"no_such_field": 1})),
    )
    .await;
    walk.call(Method::GET, "/mfa", "/mfa", None).await;
    walk.call(Method::POST, "/mfa/totp/enroll", "/mfa/totp/enroll", None)
        .await;
    walk.call(
        Method::POST,
        "/mfa/totp/confirm",
        "/mfa/totp/confirm",
        Some(json!({"enrolment": "nope", "code": "000000"})),
    )
    .await;
    walk.call(Method::GET, "/mfa/devices", "/mfa/devices", None)
        .await;
    walk.call(
        Method::DELETE,
        "/mfa/devices/{id}",
        "/mfa/devices/dev_00000000000000000000000000000000",
        None,
    )
    .await;
    walk.call(Method::POST, "/devices/forget", "/devices/forget", None)
        .await;
    walk.call(
        Method::POST,
        "/email/change",
        "/email/change",
        Some(json!({"email": "walker2@example.com"})),
    )
    .await;
    #[cfg(feature = "tokens")]
    {
        let (s, pair, _) = walk.call(Method::POST, "/token", "/token", None).await;
        assert_eq!(s, StatusCode::OK);
        let refresh = pair.unwrap()["refresh_token"].clone();
        walk.call(
            Method::POST,
            "/token/refresh",
            "/token/refresh",
            Some(json!({"refresh_token": refresh})),
        )
        .await;
        walk.call(
            Method::POST,
            "/token/refresh",
            "/token/refresh",
            Some(json!({"refresh_token": "nope"})),
        )
        .await;
    }
    #[cfg(feature = "passkeys")]
    walk.call(Method::GET, "/passkeys", "/passkeys", None).await;
    #[cfg(feature = "consent")]
    {
        let (s, ..) = walk.call(Method::GET, "/consents", "/consents", None).await;
        assert_eq!(s, StatusCode::OK);
        let (s, granted, _) = walk
            .call(
                Method::PUT,
                "/consents/{purpose}",
                "/consents/newsletter",
                Some(json!({"granted": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let receipt = granted.unwrap()["receipt_id"].as_str().unwrap().to_owned();
        let (s, ..) = walk
            .call(
                Method::GET,
                "/consents/receipts/{id}",
                &format!("/consents/receipts/{receipt}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        walk.call(
            Method::PUT,
            "/consents/{purpose}",
            "/consents/no_such_purpose",
            Some(json!({"granted": true})),
        )
        .await;
        walk.call(
            Method::GET,
            "/consents/receipts/key",
            "/consents/receipts/key",
            None,
        )
        .await;
        let (s, ..) = walk
            .call(Method::GET, "/me/export", "/me/export", None)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    walk.call(
        Method::POST,
        "/password/change",
        "/password/change",
        Some(json!({"new_password": "another long and quiet passphrase 77"})),
    )
    .await;
    let (s, ..) = walk.call(Method::POST, "/logout", "/logout", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    #[cfg(feature = "consent")]
    {
        // A second account, signed in, erased.
        walk.cookie = None;
        let other = json!({"email": "eraser@example.com", "password": PASSWORD});
        walk.call(Method::POST, "/register", "/register", Some(other.clone()))
            .await;
        let (_, _, cookies) = walk
            .call(Method::POST, "/login", "/login", Some(other))
            .await;
        walk.cookie = Some(session_pair(&cookies));
        let (s, ..) = walk
            .call(Method::DELETE, "/me", "/me", Some(json!({})))
            .await;
        assert_eq!(s, StatusCode::OK);
    }

    // Each JSON answer against the schema the document declares for its status.
    let doc = openapi("/auth");
    let mut cases = Vec::new();
    let mut statuses = BTreeSet::new();
    for seen in &walk.seen {
        let method = seen.method.as_str().to_lowercase();
        let op = &doc["paths"][seen.path][&method];
        assert!(op.is_object(), "{method} {} is not documented", seen.path);
        let answer = &op["responses"][seen.status.as_str()];
        assert!(
            answer.is_object(),
            "{method} {} answered {} which the document does not list",
            seen.path,
            seen.status
        );
        let media = seen
            .media
            .as_deref()
            .map(|m| m.split(';').next().unwrap().trim())
            .unwrap_or("application/json");
        let schema = &answer["content"][media]["schema"];
        match &seen.body {
            Some(body) => {
                assert!(
                    schema.is_object(),
                    "{method} {} {} has a body the document does not describe",
                    seen.path,
                    seen.status
                );
                statuses.insert(seen.status.as_u16());
                cases.push(json!({
                    "label": format!("{method} {} {}", seen.path, seen.status),
                    "schema": resolve(schema, &doc),
                    "instance": body,
                    "expect_valid": true,
                }));
            }
            None => assert!(
                schema.is_null(),
                "{method} {} {} documents a body but sent none",
                seen.path,
                seen.status
            ),
        }
    }
    assert!(
        cases.len() >= 25,
        "too few answers checked: {}",
        cases.len()
    );
    for status in [200, 202, 400, 401, 404] {
        assert!(statuses.contains(&status), "no {status} answer was checked");
    }
    // Negative controls: answers of the wrong shape are refused by the same schemas.
    let user =
        &doc["paths"]["/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    cases.push(json!({
        "label": "GET /me with a string email_verified",
        "schema": resolve(user, &doc),
        "instance": {"user": {"id": "u", "email": null, "email_verified": "yes", "profile": {}, "prompts": [], "created_at": "2026-01-01T00:00:00Z"}, "session": {}},
        "expect_valid": false,
    }));
    let error = &doc["components"]["schemas"]["Error"];
    cases.push(json!({
        "label": "an error without its code",
        "schema": resolve(error, &doc),
        "instance": {"message": "x"},
        "expect_valid": false,
    }));
    let (ok, out) = run_python(VALIDATE_ANSWERS, &Value::Array(cases));
    assert!(ok, "answers do not match the document:\n{out}");
}

#[tokio::test]
async fn the_router_serves_the_document_with_its_mount_point() {
    let ciam = engine();
    let app = Router::new()
        .nest("/api/v1/auth", router(ciam.clone()))
        .layer(CiamLayer::new(ciam))
        .layer(crate::tests::peer());
    let res = app
        .oneshot(
            Request::get("/api/v1/auth/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=300");
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["servers"][0]["url"], "/api/v1/auth");
    assert_eq!(doc, openapi("/api/v1/auth"));

    // At the root, the document's server is the site itself.
    let ciam = engine();
    let app = Router::new()
        .merge(router(ciam.clone()))
        .layer(CiamLayer::new(ciam))
        .layer(crate::tests::peer());
    let (status, _, body) = answer(&app, request(&Method::GET, "/openapi.json", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc, openapi(""));
}
