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
use time::format_description::well_known::Rfc3339;

/// The page routes.
pub(crate) fn routes() -> Router<Ciam> {
    Router::new()
        .route("/", get(home))
        .route("/register", get(register))
        .route("/login", get(login))
        .route("/verify-email", get(verify_email))
        .route("/forgot-password", get(forgot_password))
        .route("/reset-password", get(reset_password))
        .route("/account", get(account))
        .route("/passkeys", get(passkeys))
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
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1d2330;background:#f5f6f8}\
header{background:#1d2330;padding:.7rem 1.5rem;display:flex;gap:1rem;align-items:center}\
header a{color:#fff;text-decoration:none}header .brand{font-weight:600;margin-right:auto}\
main{max-width:42rem;margin:2rem auto;padding:0 1rem}\
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:1rem 1.25rem;margin:0 0 1.25rem}\
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:0 0 .75rem}\
label{display:block;margin:.5rem 0 .2rem;font-weight:500}\
input{width:100%;padding:.5rem;border:1px solid #b8bfca;border-radius:6px;font:inherit}\
button{margin-top:.75rem;padding:.5rem 1rem;border:0;border-radius:6px;background:#2f5bd3;color:#fff;font:inherit;cursor:pointer}\
button.secondary{background:#6b7280}button.danger{background:#b42318}\
form.inline{display:inline}form.inline button{margin:0;padding:.2rem .6rem;font-size:.85rem}\
table{width:100%;border-collapse:collapse;font-size:.9rem}td,th{text-align:left;padding:.35rem;border-bottom:1px solid #eceef2;vertical-align:top}\
.muted{color:#6b7280;font-size:.9rem}.out{min-height:1.5em;margin:.5rem 0 0}.out.ok{color:#146c2e}.out.err{color:#b42318}\
.badge{background:#e0e7ff;border-radius:4px;padding:0 .35rem;font-size:.8rem}";

/// The page script (`assets/app.js`): submits `form[data-api]` as JSON and shows the answer,
/// and runs the passkey ceremonies (sign-in with autofill, sign-up, the `/passkeys` page).
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
fn page(title: &str, signed_in: bool, body: &str) -> Response {
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

const OUT: &str = r#"<p class="out" role="status"></p>"#;
/// Where the passkey buttons show their result.
const PASSKEY_OUT: &str = r#"<p class="out" id="passkey-out" role="status"></p>"#;

async fn home(State(ciam): State<Ciam>, MaybeAuthenticated(auth): MaybeAuthenticated) -> Response {
    let Some(auth) = auth else {
        let body = r#"<section><p>You are not signed in.</p>
<p><a href="/login">Sign in</a> or <a href="/register">create an account</a>.</p></section>"#;
        return page("Welcome", false, body);
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

async fn login(MaybeAuthenticated(auth): MaybeAuthenticated) -> Response {
    let body = format!(
        r#"<section><form data-api="/auth/login" data-then="/account">
<label for="email">E-mail address</label><input id="email" name="email" type="email" autocomplete="username webauthn" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button>Sign in</button>{OUT}
<p class="muted">Have a passkey? Pick it from the e-mail field's suggestions, or use the button (with or without your address).</p>
<button type="button" id="passkey-sign-in" class="secondary">Sign in with a passkey</button>{PASSKEY_OUT}</form></section>
<p class="muted"><a href="/forgot-password">Forgot your password?</a> · <a href="/register">Create an account</a></p>
<section><h2>Did not get the confirmation mail?</h2>
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

fn when(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
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

async fn account(
    State(ciam): State<Ciam>,
    MaybeAuthenticated(auth): MaybeAuthenticated,
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
    let body = format!(
        r#"<section><h2>Profile</h2><table><tr><th>E-mail</th><td>{email} <span class="badge">{verified}</span></td></tr>
<tr><th>Member since</th><td>{since}</td></tr></table><table>{profile}</table></section>
<section><h2>Signed-in devices</h2><table><tr><th>Device</th><th>Signed in</th><th>Last seen</th><th></th></tr>{rows}</table>
<form data-api="/auth/sessions/revoke-others" data-then="/account"><button class="secondary">Sign out all other devices</button>{OUT}</form></section>
<section><h2>Passkeys</h2><p>Sign in with your fingerprint, face or screen lock instead of a password.</p>
<p><a id="passkeys-link" href="/passkeys">Manage your passkeys</a></p></section>
<section><h2>Change password</h2><form data-api="/auth/password/change" data-ok="Password changed. Your other devices were signed out.">
<label for="current_password">Current password</label><input id="current_password" name="current_password" type="password" autocomplete="current-password" required>
<label for="new_password">New password (at least 15 characters)</label><input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="15" required>
<button>Change password</button>{OUT}</form></section>
<section><h2>Change e-mail address</h2><form data-api="/auth/email/change" data-ok="Check the new inbox for a confirmation link. Nothing changes until you follow it.">
<label for="new_email">New e-mail address</label><input id="new_email" name="email" type="email" autocomplete="email" required>
<label for="email_password">Current password</label><input id="email_password" name="current_password" type="password" autocomplete="current-password" required>
<button>Send confirmation link</button>{OUT}</form></section>
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
    fn escape_covers_html_metacharacters() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"
        );
    }
}
