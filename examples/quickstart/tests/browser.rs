//! The quickstart's pages in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/e2e.mjs` (npm playwright-core, no browser download) with a CDP virtual
//! authenticator, against the quickstart binary at `http://localhost:<port>` (WebAuthn needs a
//! domain RP id; `localhost` is a secure context over plain HTTP). Mail goes to the SMTP sink
//! (`scripts/peers/smtp-start.sh`, started by `scripts/test.sh`); the driver reads the
//! confirmation links from its Maildir.
//!
//! Two scenarios, each with its own server and browser (they may run at once):
//!
//! - `e2e.mjs` (passkeys): signs up with a password and confirms the address, signs in, adds,
//!   renames and deletes a passkey on `/passkeys`, signs in with it from the e-mail field's
//!   autofill, with the typed address (allow-list) and without one (discoverable), revokes
//!   another device's session on `/account`, and signs up a second person with a passkey alone.
//! - `mfa.mjs` (second factors): enrols an authenticator app on `/security` (QR code, key, code
//!   computed per RFC 6238, recovery codes shown once), signs in with password and code
//!   remembering the browser, again without a code, from a fresh browser with a recovery code,
//!   with a magic link (GET shows a button, another browser cannot use it) and with a mailed
//!   code plus second factor, regenerates recovery codes and forgets devices, changes the
//!   e-mail address, signs in again for a step-up, turns the app off and deletes the account.
//!
//! - `federation.mjs` (social sign-in): the sign-in page's "Sign in with Test OP" button
//!   through the real OpenID Provider (`scripts/peers/oidc-start.sh`, started by
//!   `scripts/test.sh`) makes the account, `/account` lists the linked identity and refuses to
//!   unlink the only way in, and after signing out the button signs the same person into the
//!   same account.
//! - `privacy.mjs` (privacy centre): answers the account page's profile prompts, switches
//!   consents on `/privacy` on and off, downloads a signed receipt, and sees the Global
//!   Privacy Control signal withdraw the sale or share.
//!
//! Screenshots of each page go to `target/browser-screenshots/<scenario>/`.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`), Node.js and `tests/browser/node_modules`: run
//! `scripts/peers/browser-install.sh`. The test fails, never skips, when they are missing.

// A test harness: its helpers fail the test by panicking, like the tests themselves (clippy's
// in-test allowances cover only `#[test]` functions, not helpers of an integration-test crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

/// The whole driver run, browser start included (about 12 s for the passkeys, up to 60 s for
/// the second factors, which may wait for the next TOTP time step).
const DRIVER_LIMIT: Duration = Duration::from_secs(240);

const INSTALL_HINT: &str =
    "run scripts/peers/browser-install.sh (Debian chromium and npm playwright-core)";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `target/browser-screenshots` of the workspace (or of `CARGO_TARGET_DIR`).
fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        )
        .join("browser-screenshots")
}

/// The browser, Node.js and playwright-core, or a failure that says how to install them.
fn prerequisites() -> PathBuf {
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "{} is missing: {INSTALL_HINT}",
        chromium.display()
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node (Node.js >= 20) is not on PATH: {INSTALL_HINT}"
    );
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "{} is missing: {INSTALL_HINT}",
        playwright.display()
    );
    chromium
}

/// Starts the quickstart on a free port with `CIAM_PUBLIC_URL=http://localhost:<port>`, the
/// origin the browser uses and the passkeys' RP id.
async fn start_on_localhost(env: &[(&str, String)]) -> Server {
    let (smtp_port, _) = smtp_env();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("server.log");
    let child = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("CIAM_BIND", format!("127.0.0.1:{port}"))
        .env("CIAM_PUBLIC_URL", format!("http://localhost:{port}"))
        .env(
            "CIAM_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("ciam.db").display()),
        )
        .env("CIAM_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("CIAM_MAIL_FROM", "quickstart test <noreply@localhost>")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        base: format!("http://localhost:{port}"),
        log,
        _dir: dir,
    };
    let health = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "quickstart exited early ({status}):\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        assert!(Instant::now() < deadline, "quickstart did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the driver `script` against a fresh quickstart, with its screenshots in
/// `target/browser-screenshots/<scenario>/`, and checks that it passed, that every page in
/// `pages` was photographed and that the server logged no error.
async fn run_driver(script: &str, scenario: &str, pages: &[&str]) {
    run_driver_with(script, scenario, pages, &[], &[]).await;
}

/// [`run_driver`] with `server_env` added to the quickstart's environment and `driver_env` to
/// the driver's.
async fn run_driver_with(
    script: &str,
    scenario: &str,
    pages: &[&str],
    server_env: &[(&str, String)],
    driver_env: &[(&str, String)],
) {
    let chromium = prerequisites();
    let (_, maildir) = smtp_env();
    let server = start_on_localhost(server_env).await;
    let shots = screenshot_dir().join(scenario);
    let _ = std::fs::remove_dir_all(&shots);

    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(browser_dir())
        .env("E2E_BASE_URL", &server.base)
        .env("E2E_MAILDIR", &maildir)
        .env("E2E_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .env(
            "E2E_TIMEOUT_MS",
            (DRIVER_LIMIT.as_millis() - 5_000).to_string(),
        )
        .envs(driver_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DRIVER_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {DRIVER_LIMIT:?}"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        out.status.success() && stdout.contains("E2E PASSED"),
        "{script} failed ({}; screenshots in {}):\n{stdout}\n{stderr}\nserver log:\n{log}",
        out.status,
        shots.display()
    );
    println!("{scenario} browser run: {:?}", started.elapsed());

    // Every page the driver went through was photographed.
    let mut names: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for page in pages {
        assert!(
            names.iter().any(|n| n.ends_with(&format!("-{page}.png"))),
            "no screenshot of {page}: {names:?}"
        );
    }
    // The server handled it all without an error of its own.
    assert!(!log.contains("ERROR"), "the server logged errors:\n{log}");
}

#[tokio::test]
async fn passkeys_and_sessions_in_chromium() {
    run_driver(
        "e2e.mjs",
        "passkeys",
        &[
            "register-password",
            "verify-email",
            "login",
            "account",
            "passkeys-added",
            "account-after-passkey-autofill",
            "account-after-passkey-allow-list",
            "account-after-passkey-discoverable",
            "account-two-devices",
            "register-passkey",
            "login-verification-required",
            "passkeys-last-method",
        ],
    )
    .await;
}

/// Second factors, passwordless sign-in and step-up; waits for one 30 s TOTP step at most.
#[tokio::test]
async fn second_factors_and_passwordless_in_chromium() {
    run_driver(
        "mfa.mjs",
        "mfa",
        &[
            "security-off",
            "security-enrol",
            "security-recovery-codes",
            "login-second-factor",
            "account-after-totp",
            "account-after-recovery-code",
            "login-magic-link-sent",
            "magic-link",
            "security-new-codes-devices-forgotten",
            "login-step-up",
            "security-turned-off",
            "account-closed",
        ],
    )
    .await;
}

/// Social sign-in from the sign-in page's button, through the real OpenID Provider.
#[tokio::test]
async fn social_sign_in_in_chromium() {
    let env = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: start the OpenID Provider with scripts/peers/oidc-start.sh (scripts/test.sh does)")
        })
    };
    run_driver_with(
        "federation.mjs",
        "federation",
        &[
            "login-providers",
            "home-federated",
            "account-linked",
            "account-last-method",
            "account-again",
        ],
        &[
            ("CIAM_OIDC_ISSUER", env("CIAM_TEST_OIDC_ISSUER")),
            ("CIAM_OIDC_CLIENT_ID", env("CIAM_TEST_OIDC_CLIENT_ID")),
            (
                "CIAM_OIDC_CLIENT_SECRET",
                env("CIAM_TEST_OIDC_CLIENT_SECRET"),
            ),
            ("CIAM_OIDC_NAME", "Test OP".to_owned()),
        ],
        // The provider's default account (no login hint from the button).
        &[("E2E_OIDC_USER", "alice@example.test".to_owned())],
    )
    .await;
}

/// The privacy centre and the account page's profile prompts: consents switched on and off,
/// a receipt downloaded, the Global Privacy Control signal.
#[tokio::test]
async fn privacy_centre_in_chromium() {
    run_driver(
        "privacy.mjs",
        "privacy",
        &[
            "account-prompts",
            "privacy",
            "privacy-granted",
            "privacy-withdrawn",
            "privacy-gpc",
        ],
    )
    .await;
}
