//! Server-rendered HTML pages. Forms are sent as JSON to the `/auth` API by a small script
//! (`/assets/app.js`); no page changes state on GET, so a mail scanner that follows a link
//! cannot consume its token.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use ciam::Ciam;
use ciam::axum::MaybeAuthenticated;
use ciam::session::SessionInfo;
use serde::Deserialize;
use time::OffsetDateTime;

/// The page routes.
pub(crate) fn routes() -> Router<Ciam> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(register))
        .route("/login", get(login))
        .route("/magic-link", get(magic_link))
        .route("/verify-email", get(verify_email))
        .route("/forgot-password", get(forgot_password))
        .route("/reset-password", get(reset_password))
        .route("/account", get(account))
        .route("/passkeys", get(passkeys))
        .route("/security", get(security))
        .route("/privacy", get(crate::privacy_pages::privacy))
        .route("/privacy/export", get(crate::privacy_pages::export))
        .route(
            "/privacy/policy/{version}",
            get(crate::privacy_pages::policy),
        )
        .route("/assets/app.js", get(script))
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "\
*{box-sizing:border-box}[hidden]{display:none!important}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1d2330;background:#f5f6f8}\
header{background:#1d2330;padding:.7rem 1.5rem;display:flex;gap:1rem;align-items:center}\
header a{color:#fff;text-decoration:none}header .brand{font-weight:600;margin-right:auto}\
main{max-width:42rem;margin:2rem auto;padding:0 1rem}\
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:1rem 1.25rem;margin:0 0 1.25rem}\
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:0 0 .75rem}\
label{display:block;margin:.5rem 0 .2rem;font-weight:500}\
input{width:100%;padding:.5rem;border:1px solid #b8bfca;border-radius:6px;font:inherit}\
button{margin-top:.75rem;padding:.5rem 1rem;border:0;border-radius:6px;background:#2f5bd3;color:#fff;font:inherit;cursor:pointer}\
button.secondary{background:#6b7280}button.danger{background:#b42318}\
a.button{display:inline-block;margin-top:.75rem;padding:.5rem 1rem;border-radius:6px;background:#6b7280;color:#fff;text-decoration:none}\
form.inline{display:inline}form.inline button{margin:0;padding:.2rem .6rem;font-size:.85rem}\
table{width:100%;border-collapse:collapse;font-size:.9rem}td,th{text-align:left;padding:.35rem;border-bottom:1px solid #eceef2;vertical-align:top;overflow-wrap:anywhere}\
.muted{color:#6b7280;font-size:.9rem}.out{min-height:1.5em;margin:.5rem 0 0}.out.ok{color:#146c2e}.out.err{color:#b42318}\
.badge{background:#e0e7ff;border-radius:4px;padding:0 .35rem;font-size:.8rem}\
label.choice{display:flex;gap:.5rem;align-items:center;font-weight:400}\
input[type=checkbox],input[type=radio]{width:auto;margin:0}\
fieldset{border:0;padding:0;margin:.5rem 0}legend{font-weight:500}\
.notice{background:#fff7e0;border-color:#e8c872}.qr svg{width:200px;height:200px;display:block}\
code.secret{display:block;margin:.3rem 0;font-size:1.05rem;letter-spacing:.05em;word-break:break-all}\
ol.codes{white-space:nowrap;font-family:ui-monospace,monospace;font-size:1.05rem}";

/// The page script (`assets/app.js`): submits `form[data-api]` as JSON and shows the answer,
/// asks for the second factor when a sign-in needs it, sends the user to sign in again when
/// a change needs a recent sign-in (step-up), runs the `/security` page (authenticator app,
/// recovery codes, remembered devices) and the passkey ceremonies (sign-in with autofill,
/// sign-up, the `/passkeys` page).
const SCRIPT: &str = include_str!("../assets/app.js");

/// Headers every page carries: no caching of personal pages, no referrer (pages with a token
/// in the URL must not leak it), a strict content security policy.
fn secure_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
}

/// A full page. `title` and `body` must already be escaped HTML.
pub(crate) fn page(title: &str, signed_in: bool, body: &str) -> Response {
    let nav = if signed_in {
        r#"<a href="/account">Account</a>"#
    } else {
        r#"<a href="/login">Sign in</a><a href="/register">Create account</a>"#
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · ciam quickstart</title><style>{CSS}</style>\
         <script src=\"/assets/app.js\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/\">ciam quickstart</a>{nav}</header>\
         <main><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    secure_headers(&mut response);
    response
}

async fn script() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response();
    secure_headers(&mut response);
    response
}

pub(crate) const OUT: &str = r#"<p class="out" role="status"></p>"#;
/// Where the passkey buttons show their result.
const PASSKEY_OUT: &str = r#"<p class="out" id="passkey-out" role="status"></p>"#;

#[derive(Deserialize)]
struct HomeQuery {
    closed: Option<String>,
}

async fn home(
    State(ciam): State<Ciam>,
    MaybeAuthenticated(auth): MaybeAuthenticated,
    Query(q): Query<HomeQuery>,
) -> Response {
    let Some(auth) = auth else {
        // After "Delete account" (the page sends the browser here with `?closed=1`).
        let closed = if q.closed.is_some() {
            r#"<section class="notice" id="account-closed"><p>Your account is closed and you are signed out.</p></section>"#
        } else {
            ""
        };
        let body = format!(
            r#"{closed}<section><p>You are not signed in.</p>
<p><a href="/login">Sign in</a> or <a href="/register">create an account</a>.</p></section>"#
        );
        return page("Welcome", false, &body);
    };
    let email = match ciam.user(auth.user_id).await {
        Ok(user) => user
            .email
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
        Err(e) => return error_page(&e),
    };
    let body = format!(
        r#"<section><p>You are signed in as <strong>{}</strong>.</p><p><a href="/account">Manage your account</a></p>
<form data-api="/auth/logout" data-then="/"><button class="secondary">Sign out</button>{OUT}</form></section>"#,
        escape(&email)
    );
    page("Welcome", true, &body)
}

async fn register(MaybeAuthenticated(auth): MaybeAuthenticated) -> Response {
    let body = format!(
        r#"<section><form data-api="/auth/register" data-ok="Check your inbox: we sent you a link to confirm your address.">
<label for="email">E-mail address</label><input id="email" name="email" type="email" autocomplete="email" required>
<label for="password">Password (at least 15 characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="15" required>
<p class="muted">Use a long passphrase; no special characters are required.</p>
<button>Create account</button>{OUT}
<p class="muted">Or skip the password: your device keeps a passkey, unlocked with your fingerprint, face or screen lock.</p>
<button type="button" id="passkey-sign-up" class="secondary">Sign up with a passkey</button>{PASSKEY_OUT}</form></section>
<p class="muted">Already registered? <a href="/login">Sign in</a>.</p>"#
    );
    page("Create an account", auth.is_some(), &body)
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    step_up: Option<String>,
}

/// Where to go after signing in: a path on this site (`next`), else `/account`. Anything
/// that could leave the site (`//host`, a backslash, a scheme, control characters) is ignored.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n
        }
        _ => "/account",
    }
}

/// The second-factor step of a sign-in, shown by the script when the API answers
/// `mfa_required` (after the password, a magic link or a mailed code). The code field is
/// renamed `code`, `recovery_code` or `email_code` by the chosen kind; `then` is where a
/// completed sign-in goes.
fn mfa_section(then: &str) -> String {
    format!(
        r#"<section id="mfa" hidden><h2>Second step: confirm it is you</h2>
<p class="notice" id="mfa-reason" hidden></p>
<form id="mfa-form" data-api="/auth/mfa/challenge" data-then="{then}" data-invalid="That code is not right, or it was already used. Check it and try again.">
<input type="hidden" name="mfa_token" id="mfa-token">
<fieldset id="mfa-kinds"><legend>Confirm with</legend>
<label class="choice" data-factor="totp"><input type="radio" name="mfa-kind" value="code" data-local> a code from your authenticator app</label>
<label class="choice" data-factor="recovery_code"><input type="radio" name="mfa-kind" value="recovery_code" data-local> one of your recovery codes</label>
<label class="choice" data-factor="email_code"><input type="radio" name="mfa-kind" value="email_code" data-local> the code we just e-mailed you</label>
</fieldset>
<label for="mfa-code" id="mfa-code-label">Code</label>
<input id="mfa-code" name="code" autocomplete="one-time-code" autocapitalize="off" spellcheck="false" required>
<label class="choice"><input type="checkbox" id="remember-device" name="remember_device"> Remember this device for 30 days: no code here next time</label>
<button>Continue</button>{OUT}</form>
<p class="muted"><a href="/login">Start again</a></p></section>"#
    )
}

/// The "Sign in with …" buttons of the configured identity providers (none when off).
fn federated_buttons(ciam: &Ciam) -> String {
    let buttons: String = ciam
        .federation_providers()
        .iter()
        .map(|(name, display)| {
            format!(
                r#"<p><a class="button" id="federated-{n}" href="/auth/oidc/{n}/start">Sign in with {d}</a></p>"#,
                n = escape(name),
                d = escape(display)
            )
        })
        .collect();
    if buttons.is_empty() {
        return String::new();
    }
    format!(
        r#"<section data-sign-in-step id="federated"><h2>Or use another account</h2>{buttons}</section>"#
    )
}

async fn login(
    State(ciam): State<Ciam>,
    MaybeAuthenticated(auth): MaybeAuthenticated,
    Query(q): Query<LoginQuery>,
) -> Response {
    let then = escape(local_path(q.next.as_deref()));
    // Sent here by a change that needs a recent sign-in (see `app.js`, `stepUp`).
    let step_up = if q.step_up.is_some() {
        r#"<section class="notice" id="step-up-note"><p>For your security, this change needs a recent sign-in. Please sign in again (with your second factor if you set one up); you will be taken back to finish it.</p></section>"#
    } else {
        ""
    };
    let mfa = mfa_section(&then);
    let federated = federated_buttons(&ciam);
    let body = format!(
        r#"{step_up}<p class="notice" id="federation-note" role="status" hidden></p>
<section data-sign-in-step><form data-api="/auth/login" data-then="{then}">
<label for="email">E-mail address</label><input id="email" name="email" type="email" autocomplete="username webauthn" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button>Sign in</button>{OUT}
<p class="muted">Have a passkey? Pick it from the e-mail field's suggestions, or use the button (with or without your address).</p>
<button type="button" id="passkey-sign-in" class="secondary">Sign in with a passkey</button>{PASSKEY_OUT}</form></section>
{federated}
{mfa}
<section data-sign-in-step id="passwordless"><h2>Sign in without a password</h2>
<form id="passwordless-form" data-api="/auth/magic-link/start">
<label for="passwordless-email">E-mail address</label><input id="passwordless-email" name="email" type="email" autocomplete="email" required>
<button id="magic-link-start" data-api="/auth/magic-link/start" data-ok="Check your inbox: open the link in this browser to sign in.">E-mail me a sign-in link</button>
<button id="otp-start" class="secondary" data-api="/auth/otp/start" data-ok="Check your inbox for a code, and enter it below." data-reveal="otp-section">E-mail me a code</button>{OUT}
<p class="muted">The link or code works only in this browser, for a few minutes.</p></form></section>
<section data-sign-in-step id="otp-section" hidden><h2>Enter the code from the e-mail</h2>
<form id="otp-form" data-api="/auth/otp/verify" data-then="{then}" data-invalid="That code is not right. Check the e-mail and try again.">
<label for="otp-code">Code</label><input id="otp-code" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button>Sign in</button>{OUT}</form></section>
<p class="muted" data-sign-in-step><a href="/forgot-password">Forgot your password?</a> · <a href="/register">Create an account</a></p>
<section data-sign-in-step><h2>Did not get the confirmation mail?</h2>
<form data-api="/auth/verify-email/resend" data-ok="If that address has an unconfirmed account, a new link is on its way.">
<label for="resend">E-mail address</label><input id="resend" name="email" type="email" required>
<button class="secondary">Send a new link</button>{OUT}</form></section>"#
    );
    page("Sign in", auth.is_some(), &body)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn missing_token(title: &str, signed_in: bool) -> Response {
    let mut response = page(
        title,
        signed_in,
        r#"<section><p>This link is incomplete. Open the link from the mail again, or request a new one.</p></section>"#,
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

async fn verify_email(
    MaybeAuthenticated(auth): MaybeAuthenticated,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return missing_token("Confirm your e-mail address", auth.is_some());
    };
    // GET only shows the button: the POST consumes the token.
    let body = format!(
        r#"<section><p>Confirm that this e-mail address is yours.</p>
<form data-api="/auth/verify-email" data-ok="Thank you, your e-mail address is confirmed. You can now sign in.">
<input type="hidden" name="token" value="{}"><button>Confirm my e-mail address</button>{OUT}</form></section>
<p class="muted"><a href="/login">Sign in</a></p>"#,
        escape(&token)
    );
    page("Confirm your e-mail address", auth.is_some(), &body)
}

/// The link in a passwordless sign-in mail. Like `/verify-email`, GET only shows a button:
/// a mail scanner that follows the link neither signs in nor uses it up.
async fn magic_link(
    MaybeAuthenticated(auth): MaybeAuthenticated,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return missing_token("Sign in with your link", auth.is_some());
    };
    let mfa = mfa_section("/account");
    let body = format!(
        r#"<section data-sign-in-step><p>Sign in with the link we e-mailed you.</p>
<form id="magic-link-form" data-api="/auth/magic-link/confirm" data-then="/account">
<input type="hidden" name="token" value="{}"><button>Sign in</button>{OUT}</form>
<p class="muted">The link works once, for a few minutes, and only in the browser that asked for it.</p></section>
{mfa}<p class="muted"><a href="/login">Other ways to sign in</a></p>"#,
        escape(&token)
    );
    page("Sign in with your link", auth.is_some(), &body)
}

async fn forgot_password(MaybeAuthenticated(auth): MaybeAuthenticated) -> Response {
    let body = format!(
        r#"<section><form data-api="/auth/password/forgot" data-ok="If an account uses that address, we sent it a link to choose a new password.">
<label for="email">E-mail address</label><input id="email" name="email" type="email" autocomplete="email" required>
<button>Send reset link</button>{OUT}</form></section>"#
    );
    page("Forgot your password?", auth.is_some(), &body)
}

async fn reset_password(
    MaybeAuthenticated(auth): MaybeAuthenticated,
    Query(q): Query<TokenQuery>,
) -> Response {
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return missing_token("Choose a new password", auth.is_some());
    };
    let body = format!(
        r#"<section><form data-api="/auth/password/reset" data-ok="Your password is changed and every session was signed out. You can now sign in.">
<input type="hidden" name="token" value="{}">
<label for="password">New password (at least 15 characters)</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="15" required>
<button>Set new password</button>{OUT}</form></section>
<p class="muted"><a href="/login">Sign in</a></p>"#,
        escape(&token)
    );
    page("Choose a new password", auth.is_some(), &body)
}

/// A time as people read it, in UTC to the second (the same form as the pages' script).
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn session_row(s: &SessionInfo) -> String {
    let device = s.device.user_agent.as_deref().unwrap_or("unknown device");
    let ip = s.device.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let current = if s.current {
        r#" <span class="badge">this device</span>"#
    } else {
        ""
    };
    let then = if s.current { "/" } else { "/account" };
    format!(
        r#"<tr><td>{}{current}<br><span class="muted">{}</span></td><td>{}</td><td>{}</td>
<td><form class="inline" data-api="/auth/sessions/{}" data-method="DELETE" data-then="{then}"><button class="danger">Revoke</button>{OUT}</form></td></tr>"#,
        escape(device),
        escape(&ip),
        escape(&when(s.created_at)),
        escape(&when(s.last_seen_at)),
        escape(&s.id.to_string()),
    )
}

/// The linked-accounts section of `/account` (empty when no provider is configured): each
/// identity with an Unlink button, a Link button per provider, and, when this browser holds a
/// pending link (after "sign in to your account first"), the button that makes it.
async fn linked_accounts(
    ciam: &Ciam,
    auth: &ciam::AuthContext,
    headers: &axum::http::HeaderMap,
) -> Result<String, ciam::Error> {
    let providers = ciam.federation_providers();
    if providers.is_empty() {
        return Ok(String::new());
    }
    let rows: String = ciam
        .federated_identities(auth)
        .await?
        .iter()
        .map(|i| {
            format!(
                r#"<tr><td>{p}</td><td>{who}</td><td>{when}</td>
<td><form class="inline" data-api="/auth/identities/{id}" data-method="DELETE" data-step-up="/account" data-then="/account"><button class="danger">Unlink</button>{OUT}</form></td></tr>"#,
                p = escape(&i.provider_name),
                who = escape(i.email.as_deref().unwrap_or(&i.subject)),
                when = escape(&when(i.created_at)),
                id = i.id,
            )
        })
        .collect();
    let links: String = providers
        .iter()
        .map(|(name, display)| {
            format!(
                r#"<a class="button" href="/auth/oidc/{n}/start?link=1">Link {d}</a> "#,
                n = escape(name),
                d = escape(display)
            )
        })
        .collect();
    let pending = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("ciam_oidc_link="));
    let pending = if pending {
        format!(
            r#"<form id="complete-link" data-api="/auth/identities/link" data-then="/account"><p>You came back from a provider whose account is not linked yet.</p><button>Link it to this account</button>{OUT}</form>"#
        )
    } else {
        String::new()
    };
    Ok(format!(
        r#"<section id="linked-accounts"><h2>Linked accounts</h2><p>Sign in with another account you hold. Your last way to sign in cannot be removed.</p>
<table><tr><th>Provider</th><th>Account</th><th>Linked</th><th></th></tr>{rows}</table>{pending}<p>{links}</p></section>"#
    ))
}

async fn account(
    State(ciam): State<Ciam>,
    MaybeAuthenticated(auth): MaybeAuthenticated,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(auth) = auth else {
        return Redirect::to("/login").into_response();
    };
    let user = match ciam.user(auth.user_id).await {
        Ok(u) => u,
        Err(e) => return error_page(&e),
    };
    let sessions = match ciam.list_sessions(&auth).await {
        Ok(s) => s,
        Err(e) => return error_page(&e),
    };
    let email = user
        .email
        .as_ref()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    let verified = if user.email_verified() {
        "confirmed"
    } else {
        "not confirmed"
    };
    let mut profile = String::new();
    for (name, value) in &user.profile {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let _ = write!(
            profile,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    if profile.is_empty() {
        profile.push_str(r#"<tr><td class="muted">No profile details yet.</td></tr>"#);
    }
    let rows: String = sessions.iter().map(session_row).collect();
    let totp = match ciam.mfa_status(&auth).await {
        Ok(status) if status.totp => "on",
        Ok(_) => "off",
        Err(e) => return error_page(&e),
    };
    let linked = match linked_accounts(&ciam, &auth, &headers).await {
        Ok(html) => html,
        Err(e) => return error_page(&e),
    };
    let body = format!(
        r#"<section><h2>Profile</h2><table><tr><th>E-mail</th><td>{email} <span class="badge">{verified}</span></td></tr>
<tr><th>Member since</th><td>{since}</td></tr></table><table>{profile}</table></section>
<section><h2>Signed-in devices</h2><table><tr><th>Device</th><th>Signed in</th><th>Last seen</th><th></th></tr>{rows}</table>
<form data-api="/auth/sessions/revoke-others" data-then="/account"><button class="secondary">Sign out all other devices</button>{OUT}</form></section>
<section class="notice" id="consent-notice" hidden><p>Our privacy policy changed. Please review your choices in the <a href="/privacy#consent_required">privacy centre</a>.</p></section>
<section id="profile-prompts" hidden><h2>A few more details</h2><p class="muted">Optional: tell us a little more, when you like.</p>
<form id="profile-prompts-form" data-api="/auth/profile" data-method="PATCH" data-handler="profileSaved"><div id="profile-prompt-fields"></div>
<button>Save</button>{OUT}</form></section>
<section><h2>Privacy</h2><p>Your consents, signed receipts, a copy of your data, and erasure.</p>
<p><a id="privacy-link" href="/privacy">Open the privacy centre</a></p></section>
<section><h2>Passkeys</h2><p>Sign in with your fingerprint, face or screen lock instead of a password.</p>
<p><a id="passkeys-link" href="/passkeys">Manage your passkeys</a></p></section>
{linked}
<section><h2>Two-step sign-in</h2><p>Authenticator app: <strong id="account-totp">{totp}</strong>. After your password, ask for a code from an app on your phone.</p>
<p><a id="security-link" href="/security">Manage two-step sign-in and remembered devices</a></p></section>
<section><h2>Change password</h2><form data-api="/auth/password/change" data-ok="Password changed. Your other devices were signed out.">
<label for="current_password">Current password</label><input id="current_password" name="current_password" type="password" autocomplete="current-password" required>
<label for="new_password">New password (at least 15 characters)</label><input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="15" required>
<button>Change password</button>{OUT}</form></section>
<section><h2>Change e-mail address</h2><form id="email-change-form" data-api="/auth/email/change" data-step-up="/account" data-ok="Check the new inbox for a confirmation link. Nothing changes until you follow it.">
<label for="new_email">New e-mail address</label><input id="new_email" name="email" type="email" autocomplete="email" required>
<label for="email_password">Current password (not needed within 10 minutes of signing in)</label><input id="email_password" name="current_password" type="password" autocomplete="current-password">
<button>Send confirmation link</button>{OUT}</form></section>
<section><h2>Delete account</h2><form id="delete-account-form" data-api="/auth/account" data-method="DELETE" data-json data-step-up="/account" data-then="/?closed=1">
<p>Your account is closed at once: every session ends and your password, passkeys and second factors are removed.</p>
<label class="choice"><input type="checkbox" id="delete-confirm" required> I understand that this cannot be undone</label>
<button class="danger">Delete my account</button>{OUT}</form></section>
<form data-api="/auth/logout" data-then="/"><button class="secondary">Sign out</button>{OUT}</form>"#,
        email = escape(&email),
        since = escape(&when(user.created_at)),
    );
    page("Your account", true, &body)
}

/// The signed-in user's passkeys. The table is filled by the script from `GET /auth/passkeys`,
/// which is also where rename (`PATCH`) and delete (`DELETE`) go.
async fn passkeys(MaybeAuthenticated(auth): MaybeAuthenticated) -> Response {
    if auth.is_none() {
        return Redirect::to("/login").into_response();
    }
    let body = r#"<section><h2>Your passkeys</h2>
<table><thead><tr><th>Name</th><th>Created</th><th>Last used</th><th></th></tr></thead>
<tbody id="passkey-list"><tr><td class="muted">Loading…</td></tr></tbody></table>
<p class="out" id="passkeys-out" role="status"></p></section>
<section><h2>Add a passkey</h2><p class="muted">Your device creates a key that only this site can use; the key never leaves it (or your password manager, for a synced passkey).</p>
<label for="passkey-name">Name (optional)</label><input id="passkey-name" maxlength="64" placeholder="e.g. Work laptop">
<button type="button" id="add-passkey">Add a passkey</button></section>
<p class="muted"><a href="/account">Back to your account</a></p>"#;
    page("Passkeys", true, body)
}

/// Second factors: the authenticator app (status, enrolment with its QR code, turning it
/// off), recovery codes (shown once, regenerated) and remembered devices. The status comes
/// from the engine; the buttons are forms the script sends to `/auth/mfa/...`. The device
/// table is filled by the script from `GET /auth/mfa/devices`, whose rows' "Forget" buttons
/// send `DELETE /auth/mfa/devices/{id}`.
async fn security(
    State(ciam): State<Ciam>,
    MaybeAuthenticated(auth): MaybeAuthenticated,
) -> Response {
    let Some(auth) = auth else {
        return Redirect::to("/login?next=/security").into_response();
    };
    let status = match ciam.mfa_status(&auth).await {
        Ok(s) => s,
        Err(e) => return error_page(&e),
    };
    let (on, hidden_if_on, hidden_if_off) = if status.totp {
        ("On", " hidden", "")
    } else {
        ("Off", "", " hidden")
    };
    let body = format!(
        r##"<section><h2>Authenticator app</h2>
<p>Status: <strong id="totp-status" data-on="{totp}">{on}</strong> · Recovery codes left: <strong id="recovery-left">{left}</strong></p>
<p class="out" id="security-out" role="status"></p>
<div id="totp-off"{hidden_if_on}><p>After your password, sign-in will ask for a six-digit code from an app on your phone (any TOTP app: Google Authenticator, Authy, 1Password, Aegis…).</p>
<form id="totp-enrol-form" data-api="/auth/mfa/totp/enroll" data-step-up="/security" data-handler="enrolment"><button>Set up an authenticator app</button>{OUT}</form></div>
<div id="totp-enrolment" hidden><p>1. Scan this QR code with your authenticator app.</p>
<div class="qr" id="totp-qr" role="img" aria-label="QR code for your authenticator app"></div>
<p class="muted">Cannot scan it? Enter this key by hand (time-based, 6 digits, every 30 seconds): <code class="secret" id="totp-secret"></code>
· <a id="totp-uri" href="#">open in an app on this device</a></p>
<form id="totp-confirm-form" data-api="/auth/mfa/totp/confirm" data-handler="totpConfirmed" data-invalid="That code is not right. Check it and try again (an app's code changes every 30 seconds).">
<input type="hidden" name="enrolment" id="totp-enrolment-token">
<label for="totp-code">2. Enter the code the app shows</label>
<input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required>
<button>Turn on</button>{OUT}</form></div>
<div id="totp-on"{hidden_if_off}>
<form id="recovery-form" data-api="/auth/mfa/recovery-codes" data-step-up="/security" data-handler="recoveryCodes"><p>Lost your phone? Each recovery code signs you in once. New codes replace the old ones.</p>
<button class="secondary">Get new recovery codes</button>{OUT}</form>
<form id="totp-disable-form" data-api="/auth/mfa/totp" data-method="DELETE" data-step-up="/security" data-handler="mfaChanged" data-ok="The authenticator app and recovery codes are removed.">
<button class="danger">Turn off</button>{OUT}</form></div></section>
<section id="recovery-section" hidden><h2>Your recovery codes</h2>
<p><strong>Shown only this once.</strong> Keep them somewhere safe (printed, or in a password manager): each one signs you in once if you lose your phone.</p>
<ol class="codes" id="recovery-codes"></ol></section>
<section id="devices-section"><h2>Remembered devices</h2>
<p>The browsers you signed in with. Those where you ticked "Remember this device" skip the code for 30 days. Lost a device, or signed in on a shared computer? Forget it: that browser asks for the second factor at its next sign-in.</p>
<table><thead><tr><th>Browser</th><th>Trusted since</th><th>Skips the code until</th><th></th></tr></thead>
<tbody id="device-list"><tr><td class="muted">Loading…</td></tr></tbody></table>
<p class="out" id="devices-out" role="status"></p>
<form id="devices-forget-form" data-api="/auth/devices/forget" data-handler="forgotten"><p class="muted">Or forget them all: every browser, this one included, asks for the second factor at its next sign-in.</p><button class="secondary">Forget remembered devices</button>{OUT}</form></section>
<p class="muted"><a href="/account">Back to your account</a></p>"##,
        totp = status.totp,
        left = status.recovery_codes_left,
    );
    page("Two-step sign-in", true, &body)
}

fn error_page(e: &ciam::Error) -> Response {
    let status = ciam::axum::status_for(e.kind());
    if status.is_server_error() {
        tracing::error!(error = %e, "page failed");
    }
    let mut response = page(
        "Something went wrong",
        false,
        &format!("<section><p>{}</p></section>", escape(&e.public_message())),
    );
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn sign_ins_return_only_to_paths_on_this_site() {
        use super::local_path;
        assert_eq!(local_path(Some("/account")), "/account");
        assert_eq!(local_path(Some("/security?x=1")), "/security?x=1");
        for away in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "/\\/evil.example",
            "javascript:alert(1)",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_path(Some(away)), "/account", "{away:?}");
        }
        assert_eq!(local_path(None), "/account");
    }

    #[test]
    fn escape_covers_html_metacharacters() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
    }
}
