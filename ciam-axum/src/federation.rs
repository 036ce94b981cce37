//! The federated sign-in endpoints of [`router`](crate::router) (feature `federation`).
//!
//! The start and callback endpoints are browser navigations, so they answer with redirects:
//!
//! | result of the callback | redirect to |
//! |---|---|
//! | signed in | `/` (session cookie set) |
//! | second factor needed | `/login#mfa_token=…&factors=…` (finish with `POST /mfa/challenge`) |
//! | link required | `/login#link=<provider name>`, the pending link kept in an `HttpOnly` cookie; after signing in, `POST /identities/link` |
//! | linked (started from the account) | `/account#linked=<provider>` |
//! | refused | `/login#error=<code>` |
//!
//! A link started (`start?link=1`) without a session, or with one too old for linking, is
//! redirected to `/login?next=%2Faccount&step_up=1` (sign in again, then back to the account
//! page) instead of answering a JSON error to a browser navigation.
//!
//! Fragments never reach a server or a `Referer`; the callback answers with
//! `Referrer-Policy: no-referrer` as well, since its URL holds the code.
//!
//! # Browser binding and `form_post`
//!
//! `start` sets a binding cookie (`__Host-ciam_oidc` over HTTPS, `ciam_oidc` otherwise;
//! `HttpOnly`, `SameSite=Lax`, ten minutes) whose hash the engine keeps with the `state`, and
//! the callback must present it. A provider using `response_mode=form_post` (Apple) sends the
//! response as a *cross-site POST*, on which browsers do not send `SameSite=Lax` cookies. So
//! `POST /oidc/{provider}/callback` does nothing but answer `303 See Other` to the `GET`
//! callback with the same parameters in the query: that top-level GET navigation carries the
//! Lax cookies, and all checks happen there. Because the POST changes no state and reads no
//! cookie, the layer's CSRF origin check lets it through (the `state` and the binding are the
//! defence), and only for paths of the form `…/oidc/{provider}/callback`.

use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::header::{COOKIE, LOCATION, REFERRER_POLICY, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use ciam_core::id::CredentialId;
use ciam_core::{Ciam, FederationOutcome, OpaqueToken, SignInOutcome};

use crate::extract::{Authenticated, ClientContext, Json, Layer, MaybeAuthenticated};
use crate::prefix::At;
use crate::rejection::ApiError;

/// Binding cookie name with `https://` public URLs.
const SECURE_STATE_COOKIE: &str = "__Host-ciam_oidc";
/// Binding cookie name with plain `http://` public URLs.
const PLAIN_STATE_COOKIE: &str = "ciam_oidc";
/// Pending-link cookie name with `https://` public URLs.
const SECURE_LINK_COOKIE: &str = "__Host-ciam_oidc_link";
/// Pending-link cookie name with plain `http://` public URLs.
const PLAIN_LINK_COOKIE: &str = "ciam_oidc_link";

/// Where the callback sends the browser.
const AFTER_SIGN_IN: &str = "/";
const SIGN_IN_PAGE: &str = "/login";
/// Where a link started without a recent sign-in goes: sign in again, then back to the
/// account page.
const STEP_UP_PAGE: &str = "/login?next=%2Faccount&step_up=1";
const ACCOUNT_PAGE: &str = "/account";

/// The federation routes, relative to the router's prefix.
pub(crate) fn routes(at: At<Ciam>) -> At<Ciam> {
    at.route("/oidc/providers", get(providers))
        .route("/oidc/{provider}/start", get(start))
        .route("/oidc/{provider}/callback", get(callback).post(form_post))
        .route("/identities", get(identities))
        .route("/identities/link", post(complete_link))
        .route("/identities/{id}", delete(unlink))
}

/// Whether the CSRF origin check should let this request through: a `POST` to a
/// `…/oidc/{provider}/callback` path, whose handler only turns the provider's form_post
/// into a same-site GET (see the module documentation).
pub(crate) fn is_form_post_callback(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let mut segments = path.rsplit('/');
    matches!(
        (segments.next(), segments.next(), segments.next()),
        (Some("callback"), Some(name), Some("oidc")) if !name.is_empty()
    )
}

fn names(layer: &Layer) -> (&'static str, &'static str, &'static str) {
    if layer.0.0.cookie.is_secure() {
        (SECURE_STATE_COOKIE, SECURE_LINK_COOKIE, "; Secure")
    } else {
        (PLAIN_STATE_COOKIE, PLAIN_LINK_COOKIE, "")
    }
}

fn cookie(name: &str, value: &str, secure: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age={max_age}"
    ))
    .ok()
}

fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() <= 128)
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r.headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

fn fragment_value(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn providers(State(ciam): State<Ciam>) -> Response {
    let list: Vec<_> = ciam
        .federation_providers()
        .into_iter()
        .map(|(name, display)| json!({"name": name, "display_name": display}))
        .collect();
    Json(json!({ "providers": list })).into_response()
}

#[derive(Deserialize)]
struct StartQuery {
    #[serde(default)]
    login_hint: Option<String>,
    /// `1`: link to the signed-in account instead of signing in.
    #[serde(default)]
    link: Option<String>,
}

async fn start(
    State(ciam): State<Ciam>,
    layer: Layer,
    MaybeAuthenticated(auth): MaybeAuthenticated,
    ClientContext(ctx): ClientContext,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let hint = q.login_hint.as_deref();
    let started = match (q.link.as_deref() == Some("1"), &auth) {
        (true, Some(auth)) => match ciam.start_federated_link(auth, &provider, hint, &ctx).await {
            Ok(started) => started,
            // A browser navigation (the account page's "Link" button): a session too old to
            // link is sent to sign in again and comes back to the account page, instead of
            // being shown a JSON error.
            Err(e) if e.kind() == ciam_core::ErrorKind::StepUpRequired => {
                return Ok(redirect(STEP_UP_PAGE));
            }
            Err(e) => return Err(e.into()),
        },
        (true, None) => return Ok(redirect(STEP_UP_PAGE)),
        (false, _) => ciam.start_federated_sign_in(&provider, hint, &ctx).await?,
    };
    let (state_cookie, _, secure) = names(&layer);
    let mut r = redirect(&started.redirect_url);
    if let Some(c) = cookie(state_cookie, started.binding.expose(), secure, 600) {
        r.headers_mut().append(SET_COOKIE, c);
    }
    Ok(r)
}

/// The provider's form_post, re-issued as a same-site GET of the same callback with the
/// response parameters in the query (see the module documentation).
async fn form_post(Form(params): Form<Vec<(String, String)>>) -> Response {
    // Only the parameters of an authorization response travel on.
    let query: Vec<String> = params
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "code" | "state" | "iss" | "error" | "error_description" | "user"
            )
        })
        .map(|(k, v)| format!("{k}={}", url_escape(v)))
        .collect();
    // Relative to `…/oidc/{provider}/callback`: the same path.
    redirect(&format!("callback?{}", query.join("&")))
}

async fn callback(
    State(ciam): State<Ciam>,
    layer: Layer,
    ClientContext(ctx): ClientContext,
    Path(provider): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let (state_cookie, link_cookie, secure) = names(&layer);
    let binding = read_cookie(&headers, state_cookie);
    let result = ciam
        .finish_federation(&provider, &params, binding.as_deref(), &ctx)
        .await;
    let mut r = match result {
        Ok(FederationOutcome::SignIn {
            outcome: SignInOutcome::SignedIn(s),
            ..
        }) => signed_in_redirect(&ciam, &layer, &s),
        Ok(FederationOutcome::SignIn {
            outcome: SignInOutcome::MfaRequired(c),
            ..
        }) => {
            let factors: Vec<String> = c
                .factors
                .iter()
                .filter_map(|f| serde_json::to_value(f).ok())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            redirect(&format!(
                "{SIGN_IN_PAGE}#mfa_token={}&factors={}",
                fragment_value(c.token.expose()),
                fragment_value(&factors.join(","))
            ))
        }
        Ok(FederationOutcome::SignIn { .. }) => {
            redirect(&format!("{SIGN_IN_PAGE}#error=unverified"))
        }
        Ok(FederationOutcome::LinkRequired(p)) => {
            let mut r = redirect(&format!(
                "{SIGN_IN_PAGE}#link={}",
                fragment_value(&p.provider_name)
            ));
            if let Some(c) = cookie(link_cookie, p.token.expose(), secure, 900) {
                r.headers_mut().append(SET_COOKIE, c);
            }
            r
        }
        Ok(FederationOutcome::Linked(i)) => redirect(&format!(
            "{ACCOUNT_PAGE}#linked={}",
            fragment_value(&i.provider)
        )),
        Ok(_) => redirect(&format!("{SIGN_IN_PAGE}#error=federation")),
        Err(e) => redirect(&format!("{SIGN_IN_PAGE}#error={}", e.code())),
    };
    // The binding is single-use, like the state it guards.
    if let Some(c) = cookie(state_cookie, "", secure, 0) {
        r.headers_mut().append(SET_COOKIE, c);
    }
    r
}

fn signed_in_redirect(ciam: &Ciam, layer: &Layer, s: &ciam_core::SignedIn) -> Response {
    // The page signed in to asks for pending consents when the fragment says so.
    let mut r = if s.consent_required.is_empty() {
        redirect(AFTER_SIGN_IN)
    } else {
        redirect(&format!("{AFTER_SIGN_IN}#consent_required"))
    };
    let policy = ciam.policy().session;
    let max_age = s.session.created_at + policy.absolute_lifetime - time::OffsetDateTime::now_utc();
    if let Some(c) = layer.0.0.cookie.session_cookie(&s.token, max_age) {
        r.headers_mut().append(SET_COOKIE, c);
    }
    if let Some(device) = &s.device_token
        && let Some(c) = layer
            .0
            .0
            .cookie
            .device_cookie(device, ciam.policy().trusted_device_ttl)
    {
        r.headers_mut().append(SET_COOKIE, c);
    }
    r
}

async fn identities(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
) -> Result<Response, ApiError> {
    let identities = ciam.federated_identities(&auth).await?;
    let providers: Vec<_> = ciam
        .federation_providers()
        .into_iter()
        .map(|(name, display)| json!({"name": name, "display_name": display}))
        .collect();
    Ok(Json(json!({ "identities": identities, "providers": providers })).into_response())
}

async fn complete_link(
    State(ciam): State<Ciam>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, link_cookie, secure) = names(&layer);
    let token = read_cookie(&headers, link_cookie)
        .map(|t| OpaqueToken::from_client(&t))
        .filter(OpaqueToken::is_well_formed)
        .ok_or(ciam_core::Error::FederationRejected(
            "unknown_or_expired_link",
        ))?;
    let identity = ciam
        .complete_federated_link(&auth, token.expose(), &ctx)
        .await?;
    let mut r = Json(json!({ "identity": identity })).into_response();
    if let Some(c) = cookie(link_cookie, "", secure, 0) {
        r.headers_mut().append(SET_COOKIE, c);
    }
    Ok(r)
}

async fn unlink(
    State(ciam): State<Ciam>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: CredentialId = id.parse().map_err(|_| ApiError::not_found())?;
    ciam.unlink_federated_identity(&auth, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_post_to_an_oidc_callback_skips_the_origin_check() {
        assert!(is_form_post_callback(
            &Method::POST,
            "/auth/oidc/apple/callback"
        ));
        assert!(is_form_post_callback(&Method::POST, "/oidc/x/callback"));
        assert!(!is_form_post_callback(
            &Method::GET,
            "/auth/oidc/apple/callback"
        ));
        assert!(!is_form_post_callback(
            &Method::POST,
            "/auth/oidc//callback"
        ));
        assert!(!is_form_post_callback(
            &Method::POST,
            "/auth/identities/link"
        ));
        assert!(!is_form_post_callback(
            &Method::POST,
            "/auth/oidc/apple/start"
        ));
        assert!(!is_form_post_callback(
            &Method::POST,
            "/auth/x/apple/callback"
        ));
    }
}
