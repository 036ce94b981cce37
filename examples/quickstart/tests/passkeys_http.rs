//! The quickstart's passkey routes over HTTP, against the real binary (see `tests/http.rs` for
//! the set-up): `POST /auth/passkeys/register/start` and `/finish`, `POST
//! /auth/passkeys/login/start` and `/finish`, `GET /auth/passkeys`, `PATCH` and `DELETE
//! /auth/passkeys/{id}`. The refusals (no session, unknown or foreign ids, cross-site
//! requests, malformed bodies), the shape of the WebAuthn L3 options JSON, and whole
//! ceremonies with 1Password's `passkey-client` and `passkey-authenticator` as the browser and
//! a software authenticator.
//!
//! The ceremonies run against a server whose `CIAM_PUBLIC_URL` is `http://localhost:PORT`:
//! WebAuthn clients refuse an IP address as RP id and accept plain HTTP only on `localhost`.

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use passkey_authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client as WebauthnClient, DefaultClientData};
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::Passkey;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use public_suffix::PublicSuffixList;
use reqwest::header::{COOKIE, ORIGIN};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use url::Url;

/// A well-formed credential id that no passkey has.
const UNKNOWN_ID: &str = "crd_00000000000000000000000000000000";

// ---------------------------------------------------------------------------------------------
// The browser and authenticator.

/// The user at the authenticator: present, approving, and verified every time.
struct Approver;

#[async_trait::async_trait]
impl UserValidationMethod for Approver {
    type PasskeyItem = Passkey;

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    async fn check_user<'a>(
        &self,
        hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        if let UiHint::InformExcludedCredentialFound(_) = hint {
            return Err(Ctap2Error::CredentialExcluded);
        }
        Ok(UserCheck {
            presence,
            verification,
        })
    }
}

/// A browser holding one software authenticator (at most one passkey).
struct Device {
    client: WebauthnClient<Option<Passkey>, Approver, RustCryptoBackend, PublicSuffixList, ()>,
    origin: Url,
}

impl Device {
    fn new(server: &Server) -> Self {
        let authenticator = Authenticator::new(
            Aaguid::new_empty(),
            None::<Passkey>,
            Approver,
            RustCryptoBackend,
        );
        Self {
            client: WebauthnClient::new(authenticator).allows_insecure_localhost(true),
            origin: Url::parse(&server.base).unwrap(),
        }
    }

    /// `navigator.credentials.create({publicKey: options})`, answered as
    /// `PublicKeyCredential.toJSON()`.
    async fn create(&mut self, options: &Value) -> Value {
        let request = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let created = self
            .client
            .register(&self.origin, request, DefaultClientData)
            .await
            .unwrap();
        serde_json::to_value(&created).unwrap()
    }

    /// `navigator.credentials.get({publicKey: options})`, answered as
    /// `PublicKeyCredential.toJSON()`.
    async fn get(&mut self, options: &Value) -> Value {
        let request = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let asserted = self
            .client
            .authenticate(&self.origin, request, DefaultClientData)
            .await
            .unwrap();
        serde_json::to_value(&asserted).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Starts the quickstart at `http://localhost:PORT` (bound to 127.0.0.1), with a fresh
/// database and mail to the SMTP sink, as `support::start` does for `127.0.0.1`.
async fn start_on_localhost() -> (Server, Mailbox) {
    let (smtp_port, maildir) = smtp_env();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://localhost:{port}");
    let log = dir.path().join("server.log");
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("ciam.db").display());
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .env("CIAM_BIND", format!("127.0.0.1:{port}"))
        .env("CIAM_PUBLIC_URL", &base)
        .env("CIAM_DATABASE_URL", database)
        .env("CIAM_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("CIAM_MAIL_FROM", "quickstart test <noreply@localhost>")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        base,
        log,
        _dir: dir,
    };
    wait_until_healthy(&mut server, Duration::from_secs(30)).await;
    let mailbox = Mailbox {
        dir: maildir.join("new"),
        seen: HashSet::new(),
    };
    (server, mailbox)
}

/// A verified account with a password, signed in on a new browser: the browser, the
/// address and the session cookie (`name=value`).
async fn signed_in(s: &Server, mail: &mut Mailbox, tag: &str) -> (Client, String, String) {
    let c = browser(s, tag);
    let email = address(tag);
    register_and_verify(&c, s, mail, &email, PASSWORD).await;
    let cookie = login(&c, s, &email, PASSWORD).await.cookie_pair();
    (c, email, cookie)
}

/// Any request with a JSON body (or none), through `c`.
async fn send(c: &Client, s: &Server, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = c.request(method, format!("{}{path}", s.base));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

/// A POST whose body is `raw`, sent as `content_type`.
async fn post_raw(c: &Client, s: &Server, path: &str, content_type: &str, raw: &str) -> Answer {
    let r = c
        .post(format!("{}{path}", s.base))
        .header("content-type", content_type)
        .body(raw.to_owned())
        .send()
        .await
        .unwrap();
    answer(r).await
}

fn refused(r: &Answer, status: StatusCode, error: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"], error, "{:?}", r.body);
}

fn b64(value: &Value) -> Vec<u8> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(
        !text.contains(['=', '+', '/']),
        "not unpadded base64url: {text}"
    );
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn keys(value: &Value) -> HashSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// `PublicKeyCredentialDescriptorJSON` (L3 §5.10.3): `{type, id, transports?}`.
fn assert_descriptor(d: &Value) {
    assert!(
        keys(d).is_subset(&HashSet::from(["type", "id", "transports"])),
        "{d}"
    );
    assert_eq!(d["type"], "public-key");
    assert!(!b64(&d["id"]).is_empty());
    if let Some(transports) = d.get("transports") {
        assert!(transports.as_array().unwrap().iter().all(Value::is_string));
    }
}

/// `PublicKeyCredentialCreationOptionsJSON` (WebAuthn L3 §5.4): only its members, with the
/// required ones present, binary members as unpadded base64url.
fn assert_creation_options(o: &Value, rp_id: &str, email: &str) {
    let members = HashSet::from([
        "rp",
        "user",
        "challenge",
        "pubKeyCredParams",
        "timeout",
        "excludeCredentials",
        "authenticatorSelection",
        "hints",
        "attestation",
        "attestationFormats",
        "extensions",
    ]);
    assert!(keys(o).is_subset(&members), "{o}");
    assert_eq!(o["rp"]["id"], rp_id);
    assert!(o["rp"]["name"].is_string());
    assert_eq!(
        keys(&o["user"]),
        HashSet::from(["id", "name", "displayName"])
    );
    assert_eq!(b64(&o["user"]["id"]).len(), 32, "a random user handle");
    assert_eq!(o["user"]["name"], email);
    assert!(o["user"]["displayName"].is_string());
    assert!(b64(&o["challenge"]).len() >= 16);
    let params = o["pubKeyCredParams"].as_array().unwrap();
    let algs: Vec<i64> = params
        .iter()
        .map(|p| {
            assert_eq!(p["type"], "public-key");
            p["alg"].as_i64().unwrap()
        })
        .collect();
    for alg in [-7, -8, -257] {
        assert!(algs.contains(&alg), "{algs:?}");
    }
    assert!(o["timeout"].as_u64().unwrap() > 0);
    o["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(assert_descriptor);
    let selection = &o["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert!(
        ["required", "preferred", "discouraged"]
            .contains(&selection["userVerification"].as_str().unwrap())
    );
    assert_eq!(o["attestation"], "none");
    assert_eq!(o["extensions"]["credProps"], true);
}

/// `PublicKeyCredentialRequestOptionsJSON` (WebAuthn L3 §5.5), as for the creation options.
fn assert_request_options(o: &Value, rp_id: &str) {
    let members = HashSet::from([
        "challenge",
        "timeout",
        "rpId",
        "allowCredentials",
        "userVerification",
        "hints",
        "extensions",
    ]);
    assert!(keys(o).is_subset(&members), "{o}");
    assert!(b64(&o["challenge"]).len() >= 16);
    assert!(o["timeout"].as_u64().unwrap() > 0);
    assert_eq!(o["rpId"], rp_id);
    assert!(
        ["required", "preferred", "discouraged"].contains(&o["userVerification"].as_str().unwrap())
    );
    if let Some(allowed) = o.get("allowCredentials") {
        allowed
            .as_array()
            .unwrap()
            .iter()
            .for_each(assert_descriptor);
    }
}

/// The `allowCredentials` ids of request options (none without the member).
fn allowed_ids(o: &Value) -> Vec<Vec<u8>> {
    o.get("allowCredentials")
        .map(|a| {
            a.as_array()
                .unwrap()
                .iter()
                .map(|d| b64(&d["id"]))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Without a session every route but the sign-in ones is 401; a state-changing request from
/// another site (or with neither `Origin` nor `Sec-Fetch-Site`) is 403 before anything else;
/// ids that are not the caller's are 404; bodies that are not JSON of the right shape are
/// 400 (415 when not sent as JSON), and a well-formed body carrying a broken credential is the
/// engine's single refusal, 401 `passkey_rejected`.
#[tokio::test]
async fn passkey_routes_refuse_strangers_cross_site_requests_and_bad_bodies() {
    let (s, mut mail) = start().await;

    // No session (a same-origin browser without a cookie).
    let anon = browser(&s, "anonymous");
    refused(
        &get(&anon, &s, "/auth/passkeys").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let unknown = format!("/auth/passkeys/{UNKNOWN_ID}");
    let no_session = [
        (
            Method::POST,
            "/auth/passkeys/register/start",
            Some(json!({})),
        ),
        (Method::POST, "/auth/passkeys/register/start", None),
        (
            Method::POST,
            "/auth/passkeys/register/finish",
            Some(json!({"credential": {}})),
        ),
        (
            Method::PATCH,
            unknown.as_str(),
            Some(json!({"name": "Mine"})),
        ),
        (Method::DELETE, unknown.as_str(), None),
    ];
    for (method, path, body) in no_session {
        let r = send(&anon, &s, method.clone(), path, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {:?}",
            r.body
        );
        assert_eq!(r.body["error"], "unauthenticated", "{method} {path}");
    }

    let (a, _, pair) = signed_in(&s, &mut mail, "pk-a").await;

    // Unknown ids, malformed or well-formed, are 404 for PATCH and DELETE.
    for id in [
        UNKNOWN_ID,
        "nonsense",
        "crd_zz",
        "usr_00000000000000000000000000000000",
    ] {
        let path = format!("/auth/passkeys/{id}");
        let r = send(&a, &s, Method::PATCH, &path, Some(json!({"name": "Mine"}))).await;
        refused(&r, StatusCode::NOT_FOUND, "not_found");
        let r = send(&a, &s, Method::DELETE, &path, None).await;
        refused(&r, StatusCode::NOT_FOUND, "not_found");
    }

    // Cross-site: the session cookie with a foreign Origin, a cross-site Sec-Fetch-Site, or
    // neither header (not a browser), on every state-changing passkey route.
    let plain = Client::new();
    let state_changing = [
        (Method::POST, "/auth/passkeys/register/start".to_owned()),
        (Method::POST, "/auth/passkeys/register/finish".to_owned()),
        (Method::POST, "/auth/passkeys/login/start".to_owned()),
        (Method::POST, "/auth/passkeys/login/finish".to_owned()),
        (Method::PATCH, format!("/auth/passkeys/{UNKNOWN_ID}")),
        (Method::DELETE, format!("/auth/passkeys/{UNKNOWN_ID}")),
    ];
    for (method, path) in &state_changing {
        let requests = [
            plain
                .request(method.clone(), format!("{}{path}", s.base))
                .header(COOKIE, &pair)
                .header(ORIGIN, "http://evil.example"),
            plain
                .request(method.clone(), format!("{}{path}", s.base))
                .header(COOKIE, &pair)
                .header("sec-fetch-site", "cross-site"),
            plain
                .request(method.clone(), format!("{}{path}", s.base))
                .header(COOKIE, &pair),
            plain
                .request(method.clone(), format!("{}{path}", s.base))
                .header(ORIGIN, "http://evil.example"),
        ];
        for request in requests {
            let r = answer(request.json(&json!({})).send().await.unwrap()).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {:?}",
                r.body
            );
            assert_eq!(r.body["error"], "csrf", "{method} {path}");
        }
    }
    // Reading changes nothing, so the list needs no Origin: a GET with the cookie alone.
    let r = answer(
        plain
            .get(format!("{}/auth/passkeys", s.base))
            .header(COOKIE, &pair)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!({"passkeys": []}));

    // Malformed bodies.
    for path in [
        "/auth/passkeys/register/finish",
        "/auth/passkeys/login/start",
        "/auth/passkeys/login/finish",
    ] {
        let r = post_raw(&a, &s, path, "application/json", "{\"credential\": ").await;
        refused(&r, StatusCode::BAD_REQUEST, "invalid_json");
        let r = post_raw(&a, &s, path, "text/plain", "{}").await;
        refused(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    for body in [json!({}), json!({"credential": {}, "name": 5}), json!([])] {
        let r = post(&a, &s, "/auth/passkeys/register/finish", body.clone()).await;
        refused(&r, StatusCode::BAD_REQUEST, "invalid_json");
        let r = post(&a, &s, "/auth/passkeys/login/finish", body).await;
        refused(&r, StatusCode::BAD_REQUEST, "invalid_json");
    }
    let r = post(&a, &s, "/auth/passkeys/login/start", json!({"email": 42})).await;
    refused(&r, StatusCode::BAD_REQUEST, "invalid_json");
    let r = post(
        &a,
        &s,
        "/auth/passkeys/login/start",
        json!({"email": "not an address"}),
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST, "invalid_identifier");
    for body in [json!({}), json!({"name": 5})] {
        let r = send(&a, &s, Method::PATCH, &unknown, Some(body)).await;
        refused(&r, StatusCode::BAD_REQUEST, "invalid_json");
    }
    // Well-formed JSON around a credential that is not one: refused by the engine, with no
    // detail.
    for credential in [
        json!("garbage"),
        json!({}),
        json!({"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}),
    ] {
        let body = json!({ "credential": credential });
        let r = post(&a, &s, "/auth/passkeys/register/finish", body.clone()).await;
        refused(&r, StatusCode::UNAUTHORIZED, "passkey_rejected");
        let r = post(&anon, &s, "/auth/passkeys/login/finish", body).await;
        refused(&r, StatusCode::UNAUTHORIZED, "passkey_rejected");
        assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    }
}

/// A whole life over HTTP: add a passkey to a password account, list and rename it, sign in
/// with it discoverably and with an allow-list on another browser, refuse a replay, keep it
/// out of another user's reach, and remove it.
#[tokio::test]
async fn passkey_ceremonies_and_management_over_http() {
    let (s, mut mail) = start_on_localhost().await;
    let (a, email, _) = signed_in(&s, &mut mail, "pk-owner").await;
    let mut laptop = Device::new(&s);

    let r = get(&a, &s, "/auth/passkeys").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"passkeys": []}));

    // Registration.
    let r = post(&a, &s, "/auth/passkeys/register/start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let options = r.body;
    assert_creation_options(&options, "localhost", &email);
    assert_eq!(options["excludeCredentials"], json!([]));
    let handle = b64(&options["user"]["id"]);
    let created = laptop.create(&options).await;
    let credential_id = b64(&created["rawId"]);
    let r = post(
        &a,
        &s,
        "/auth/passkeys/register/finish",
        json!({"credential": created, "name": "Laptop"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let passkey = &r.body["passkey"];
    assert_eq!(passkey["name"], "Laptop");
    assert_eq!(passkey["synced"], true);
    assert_eq!(passkey["attestation"], "none");
    assert_eq!(passkey["last_used_at"], Value::Null);
    let id = passkey["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("crd_"), "{id}");
    // The same response again: the ceremony is used up.
    let r = post(
        &a,
        &s,
        "/auth/passkeys/register/finish",
        json!({"credential": created}),
    )
    .await;
    refused(&r, StatusCode::UNAUTHORIZED, "passkey_rejected");

    // The next registration excludes it, under the same user handle.
    let r = post(&a, &s, "/auth/passkeys/register/start", json!({})).await;
    assert_creation_options(&r.body, "localhost", &email);
    assert_eq!(b64(&r.body["user"]["id"]), handle);
    let excluded: Vec<_> = r.body["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| b64(&d["id"]))
        .collect();
    assert_eq!(excluded, vec![credential_id.clone()]);

    // Listing and renaming.
    let r = get(&a, &s, "/auth/passkeys").await;
    let listed = r.body["passkeys"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["name"], "Laptop");
    let path = format!("/auth/passkeys/{id}");
    let r = send(
        &a,
        &s,
        Method::PATCH,
        &path,
        Some(json!({"name": "  Work laptop "})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["passkey"]["name"], "Work laptop");
    let long = "x".repeat(65);
    for bad in ["", "   ", long.as_str(), "two\nlines"] {
        let r = send(&a, &s, Method::PATCH, &path, Some(json!({ "name": bad }))).await;
        refused(&r, StatusCode::BAD_REQUEST, "invalid_input");
    }
    let r = send(&a, &s, Method::PATCH, &path, Some(json!({}))).await;
    refused(&r, StatusCode::BAD_REQUEST, "invalid_json");

    // Discoverable sign-in on another browser: no allow-list.
    let b = browser(&s, "pk-other-browser");
    let r = post(&b, &s, "/auth/passkeys/login/start", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_request_options(&r.body, "localhost");
    assert!(allowed_ids(&r.body).is_empty(), "{:?}", r.body);
    let asserted = laptop.get(&r.body).await;
    assert_eq!(b64(&asserted["response"]["userHandle"]), handle);
    let r = post(
        &b,
        &s,
        "/auth/passkeys/login/finish",
        json!({ "credential": asserted }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], email.as_str());
    assert_eq!(r.body["session"]["amr"], json!(["hwk", "mfa"]));
    // UV, synced: AAL2.
    assert_eq!(r.body["session"]["aal"], 2);
    let cookie = r.cookie_pair();
    let me = me_with_cookie(&s, &cookie).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], email.as_str());
    // A replay of the assertion gives nothing.
    let r = post(
        &browser(&s, "pk-replayer"),
        &s,
        "/auth/passkeys/login/finish",
        json!({ "credential": asserted }),
    )
    .await;
    refused(&r, StatusCode::UNAUTHORIZED, "passkey_rejected");
    assert!(r.set_cookies().is_empty());

    // Allow-list sign-in: the address's passkey is listed.
    let c = browser(&s, "pk-third-browser");
    let r = post(
        &c,
        &s,
        "/auth/passkeys/login/start",
        json!({ "email": email }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_request_options(&r.body, "localhost");
    assert_eq!(allowed_ids(&r.body), vec![credential_id.clone()]);
    let asserted = laptop.get(&r.body).await;
    let r = post(
        &c,
        &s,
        "/auth/passkeys/login/finish",
        json!({ "credential": asserted }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = get(&c, &s, "/auth/passkeys").await;
    assert!(
        r.body["passkeys"][0]["last_used_at"].is_string(),
        "{:?}",
        r.body
    );

    // An unknown address gets a plausible, stable list too.
    let nobody = address("pk-nobody");
    let first = post(
        &c,
        &s,
        "/auth/passkeys/login/start",
        json!({ "email": nobody }),
    )
    .await;
    assert_request_options(&first.body, "localhost");
    let fakes = allowed_ids(&first.body);
    assert!((1..=2).contains(&fakes.len()), "{:?}", first.body);
    let again = post(
        &c,
        &s,
        "/auth/passkeys/login/start",
        json!({ "email": nobody }),
    )
    .await;
    assert_eq!(allowed_ids(&again.body), fakes);
    assert_ne!(first.body["challenge"], again.body["challenge"]);

    // Another user can neither rename nor remove it, nor see it.
    let (other, _, _) = signed_in(&s, &mut mail, "pk-stranger").await;
    let r = send(
        &other,
        &s,
        Method::PATCH,
        &path,
        Some(json!({"name": "Mine"})),
    )
    .await;
    refused(&r, StatusCode::NOT_FOUND, "not_found");
    let r = send(&other, &s, Method::DELETE, &path, None).await;
    refused(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        get(&other, &s, "/auth/passkeys").await.body,
        json!({"passkeys": []})
    );
    // Nor can another site, with the owner's cookie.
    let r = answer(
        Client::new()
            .delete(format!("{}{path}", s.base))
            .header(COOKIE, &cookie)
            .header(ORIGIN, "http://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    refused(&r, StatusCode::FORBIDDEN, "csrf");
    let r = get(&a, &s, "/auth/passkeys").await;
    let listed = r.body["passkeys"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Work laptop");

    // Removal (the account still has its password), after which the passkey signs in no more.
    let r = send(&a, &s, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        get(&a, &s, "/auth/passkeys").await.body,
        json!({"passkeys": []})
    );
    let r = send(&a, &s, Method::DELETE, &path, None).await;
    refused(&r, StatusCode::NOT_FOUND, "not_found");
    let r = post(&c, &s, "/auth/passkeys/login/start", json!({})).await;
    let asserted = laptop.get(&r.body).await;
    let r = post(
        &c,
        &s,
        "/auth/passkeys/login/finish",
        json!({ "credential": asserted }),
    )
    .await;
    refused(&r, StatusCode::UNAUTHORIZED, "passkey_rejected");
}
