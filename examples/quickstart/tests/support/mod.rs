//! The harness shared by the quickstart's end-to-end tests: starting the binary, a
//! browser-like HTTP client, and reading mail from the SMTP sink's Maildir.
//!
//! The same suite files (`http.rs`, `tokens.rs`, `mfa.rs`, `federation.rs`, `privacy.rs`) are test targets
//! of both `quickstart` (axum) and `quickstart-actix`; [`BIN`] is the binary of the package
//! being tested, so each package drives its own server with the same tests.

// Each test crate uses part of the harness.
#![allow(dead_code)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, HeaderMap, HeaderValue, ORIGIN, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "quiet river lantern 2048 zebra";
pub(crate) const NEW_PASSWORD: &str = "amber orchard telescope 7391 fog";
pub(crate) const NEWER_PASSWORD: &str = "violet canyon metronome 5520 mist";
pub(crate) const MAIL_WAIT: Duration = Duration::from_secs(10);

/// The server binary under test: `quickstart-actix` when the suite is built as a test of that
/// package, else `quickstart` (Cargo names only the binaries of the package under test).
pub(crate) const BIN: &str = match (
    option_env!("CARGO_BIN_EXE_quickstart-actix"),
    option_env!("CARGO_BIN_EXE_quickstart"),
) {
    (Some(actix), _) => actix,
    (None, Some(axum)) => axum,
    (None, None) => panic!("the quickstart suite runs as a test of quickstart or quickstart-actix"),
};

// ---------------------------------------------------------------------------------------------
// The server under test.

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) log: PathBuf,
    pub(crate) _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn smtp_env() -> (u16, PathBuf) {
    let hint = "the quickstart tests need a real SMTP sink: run scripts/test.sh, or start one with \
                scripts/peers/smtp-start.sh and export the CIAM_TEST_SMTP_PORT and CIAM_TEST_SMTP_MAILDIR it prints";
    let port = std::env::var("CIAM_TEST_SMTP_PORT")
        .unwrap_or_else(|_| panic!("CIAM_TEST_SMTP_PORT is not set: {hint}"));
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("CIAM_TEST_SMTP_PORT is not a port: {port:?}"));
    let dir = std::env::var_os("CIAM_TEST_SMTP_MAILDIR")
        .unwrap_or_else(|| panic!("CIAM_TEST_SMTP_MAILDIR is not set: {hint}"));
    (port, PathBuf::from(dir))
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts the quickstart with a fresh database, mail going to the SMTP sink (given as a plain
/// `smtp://127.0.0.1:PORT`, so the loopback `tls=none` default is exercised too).
pub(crate) async fn start() -> (Server, Mailbox) {
    start_with(Instance::default()).await
}

/// How to start one quickstart process.
#[derive(Debug, Default, Clone)]
pub(crate) struct Instance {
    /// `CIAM_DATABASE_URL`; default a fresh SQLite file.
    pub(crate) database_url: Option<String>,
    /// `CIAM_REDIS_URL`.
    pub(crate) redis_url: Option<String>,
    /// `CIAM_PUBLIC_URL`; default the instance's own address.
    pub(crate) public_url: Option<String>,
}

/// Starts the quickstart as `instance` says.
pub(crate) async fn start_with(instance: Instance) -> (Server, Mailbox) {
    start_with_env(instance, &[]).await
}

/// A browser-like client: keeps cookies and sends `Origin` like a browser's `fetch` POST.
pub(crate) fn browser(server: &Server, agent: &str) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_str(&server.base).unwrap());
    Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .user_agent(agent)
        .build()
        .unwrap()
}

/// A fresh random address.
pub(crate) fn address(tag: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{tag}.{:016x}@example.com", h.finish())
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) headers: HeaderMap,
}

impl Answer {
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `name=value` pair of the (single) session cookie set; other cookies set with it
    /// (the trusted-device cookie) are ignored.
    pub(crate) fn cookie_pair(&self) -> String {
        let cookies: Vec<String> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.starts_with("ciam_session=") || c.starts_with("__Host-ciam_session="))
            .collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        cookies[0].split(';').next().unwrap().to_owned()
    }
}

pub(crate) async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer {
        status,
        body,
        headers,
    }
}

pub(crate) async fn post(c: &Client, s: &Server, path: &str, body: Value) -> Answer {
    answer(
        c.post(format!("{}{path}", s.base))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub(crate) async fn get(c: &Client, s: &Server, path: &str) -> Answer {
    answer(c.get(format!("{}{path}", s.base)).send().await.unwrap()).await
}

pub(crate) async fn page(c: &Client, s: &Server, path: &str) -> (StatusCode, String) {
    let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

// ---------------------------------------------------------------------------------------------
// The mail sink.

pub(crate) struct Mailbox {
    pub(crate) dir: PathBuf,
    pub(crate) seen: HashSet<OsString>,
}

#[derive(Debug)]
pub(crate) struct Mail {
    pub(crate) subject: String,
    /// The whole message after the headers, quoted-printable decoded.
    pub(crate) body: String,
}

impl Mail {
    /// The `token=` value of the first link in the mail.
    pub(crate) fn token(&self) -> String {
        let start = self
            .body
            .find("token=")
            .unwrap_or_else(|| panic!("no link in {self:?}"))
            + "token=".len();
        self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

pub(crate) fn decode_quoted_printable(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a Maildir file: (recipients, subject, decoded body).
pub(crate) fn parse_mail(path: &Path) -> Option<(Vec<String>, Mail)> {
    let raw = std::fs::read_to_string(path).ok()?;
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n")?;
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let rcpt = header("X-RcptTo")?
        .split(',')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    Some((
        rcpt,
        Mail {
            subject: header("Subject").unwrap_or_default(),
            body: decode_quoted_printable(body),
        },
    ))
}

impl Mailbox {
    pub(crate) fn find(&mut self, to: &str, subject: &str) -> Option<Mail> {
        let mut entries: Vec<_> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if self.seen.contains(&e.file_name()) {
                continue;
            }
            let Some((rcpt, mail)) = parse_mail(&e.path()) else {
                continue;
            };
            if rcpt.iter().any(|r| r == &to.to_ascii_lowercase()) && mail.subject.contains(subject)
            {
                self.seen.insert(e.file_name());
                return Some(mail);
            }
        }
        None
    }

    /// Waits (bounded) for an unread mail to `to` whose subject contains `subject`.
    pub(crate) async fn wait(&mut self, to: &str, subject: &str) -> Mail {
        let deadline = Instant::now() + MAIL_WAIT;
        loop {
            if let Some(m) = self.find(to, subject) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail {subject:?} to {to} within {MAIL_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts that no mail at all reaches `to` within `wait`.
    pub(crate) async fn assert_none(&mut self, to: &str, wait: Duration) {
        tokio::time::sleep(wait).await;
        assert!(self.find(to, "").is_none(), "unexpected mail to {to}");
    }
}

// ---------------------------------------------------------------------------------------------
// Flow helpers.

/// Registers `email`, follows the mailed link (GET page, then POST) and checks the result.
pub(crate) async fn register_and_verify(
    c: &Client,
    s: &Server,
    mail: &mut Mailbox,
    email: &str,
    password: &str,
) {
    let r = post(
        c,
        s,
        "/auth/register",
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body, json!({"status": "verification_sent"}));
    let token = mail
        .wait(email, "Confirm your e-mail address")
        .await
        .token();
    verify(c, s, &token, "email_verified").await;
}

/// Opens the mailed link (which must not consume the token), then confirms.
pub(crate) async fn verify(c: &Client, s: &Server, token: &str, expected: &str) {
    let (status, html) = page(c, s, &format!("/verify-email?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("data-api=\"/auth/verify-email\"") && html.contains(token),
        "{html}"
    );
    let r = post(c, s, "/auth/verify-email", json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!({"status": expected}));
}

pub(crate) async fn login(c: &Client, s: &Server, email: &str, password: &str) -> Answer {
    let r = post(
        c,
        s,
        "/auth/login",
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "login of {email}: {:?}", r.body);
    r
}

/// A client with no cookie jar, presenting `cookie`.
pub(crate) async fn me_with_cookie(s: &Server, cookie: &str) -> Answer {
    let r = Client::new()
        .get(format!("{}/auth/me", s.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    answer(r).await
}

// ---------------------------------------------------------------------------------------------
// Tests.

// ---------------------------------------------------------------------------------------------
// Starting with extra settings.

/// The keys of instances that share a database (64 hex characters each).
const SHARED_KEYS: [(&str, &str); 4] = [
    (
        "CIAM_SEALING_KEY",
        "5ea1000000000000000000000000000000000000000000000000000000000001",
    ),
    (
        "CIAM_CONSENT_KEY",
        "c0de000000000000000000000000000000000000000000000000000000000002",
    ),
    (
        "CIAM_RECEIPT_KEY",
        "feed000000000000000000000000000000000000000000000000000000000003",
    ),
    (
        "CIAM_AUDIT_KEY",
        "a0d1000000000000000000000000000000000000000000000000000000000004",
    ),
];

/// Starts the quickstart as `instance` says, with the extra environment variables `env`
/// (for example `CIAM_TRUSTED_PROXY_HOPS`), and waits until it answers `/healthz`.
pub(crate) async fn start_with_env(instance: Instance, env: &[(&str, &str)]) -> (Server, Mailbox) {
    let (smtp_port, maildir) = smtp_env();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("server.log");
    let database_url = instance
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("ciam.db").display()));
    let mut command = Command::new(BIN);
    command
        .current_dir(dir.path())
        .env("CIAM_BIND", format!("127.0.0.1:{port}"))
        .env(
            "CIAM_PUBLIC_URL",
            instance.public_url.as_deref().unwrap_or(&base),
        )
        .env("CIAM_DATABASE_URL", database_url)
        .env("CIAM_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("CIAM_MAIL_FROM", "quickstart test <noreply@localhost>")
        .env("RUST_LOG", "warn");
    if let Some(url) = &instance.redis_url {
        command.env("CIAM_REDIS_URL", url);
    }
    if instance.database_url.is_some() {
        // Instances sharing a database share its keys, as a deployment's would (each alone
        // would keep its own development key file in its working directory).
        for (name, key) in SHARED_KEYS {
            command.env(name, key);
        }
    }
    command.envs(env.iter().copied());
    let child = command
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
    (
        server,
        Mailbox {
            dir: maildir.join("new"),
            seen: HashSet::new(),
        },
    )
}

/// Waits (bounded) until `server` answers `/healthz`; fails with its log if it exits first.
pub(crate) async fn wait_until_healthy(server: &mut Server, limit: Duration) {
    let client = Client::new();
    let deadline = Instant::now() + limit;
    while !client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "quickstart exited early ({status}):\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "quickstart did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seconds since the Unix epoch, for TOTP codes.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The codes of a recovery-code answer.
pub(crate) fn codes_of(body: &Value) -> Vec<String> {
    body["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no recovery codes in {body}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// Enrols an authenticator app with the signed-in browser `c`: the otpauth URI and the
/// recovery codes shown once.
pub(crate) async fn enrol_totp(c: &Client, s: &Server) -> (ciam::otp::OtpAuthUri, Vec<String>) {
    let e = post(c, s, "/auth/mfa/totp/enroll", json!({})).await;
    assert_eq!(e.status, StatusCode::OK, "{:?}", e.body);
    let uri = ciam::otp::OtpAuthUri::parse(e.body["otpauth_uri"].as_str().unwrap()).unwrap();
    let code = uri.config().code_at(uri.secret(), unix_now());
    let confirmed = post(
        c,
        s,
        "/auth/mfa/totp/confirm",
        json!({"enrolment": e.body["enrolment"], "code": code}),
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    (uri, codes_of(&confirmed.body))
}
