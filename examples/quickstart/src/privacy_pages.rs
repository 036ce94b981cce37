//! The privacy centre page (`/privacy`) and the policy documents (`/privacy/policy/{n}`).
//!
//! The page is filled by the script from `GET /auth/consents`: each purpose with its state and
//! a switch (`PUT /auth/consents/{purpose}`), the signed receipt of the latest answer
//! (`GET /auth/consents/receipts/{id}`), and the purposes to answer again after a material
//! policy change.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ciam::Ciam;
use ciam::axum::MaybeAuthenticated;

use crate::pages::{OUT, escape, page};

/// `/privacy`: the signed-in user's privacy centre.
pub(crate) async fn privacy(MaybeAuthenticated(auth): MaybeAuthenticated) -> Response {
    if auth.is_none() {
        return Redirect::to("/login?next=/privacy").into_response();
    }
    let body = format!(
        r#"<section class="notice" id="consent-pending" hidden><h2>Please review</h2>
<p>Our privacy policy changed (<a id="consent-policy-link" href="/privacy">read it</a>). Until you answer, we do not use your data for:</p>
<ul id="consent-pending-list"></ul></section>
<section><h2>Your choices</h2><p class="muted">Policy in force: <span id="policy-version">…</span>. Switch a purpose on or off at any time; each answer is recorded with a signed receipt you can download.</p>
<table><thead><tr><th>Purpose</th><th>Status</th><th>Allowed</th><th>Receipt</th></tr></thead>
<tbody id="consent-list"><tr><td class="muted">Loading…</td></tr></tbody></table>
<p class="out" id="consent-out" role="status"></p>
<p class="muted">Receipts are JSON Web Signatures; check them offline with <a href="/auth/consents/receipts/key">our public key</a>. A browser sending the Global Privacy Control signal (<code>Sec-GPC: 1</code>) turns off every sale or share of your data.</p></section>
{extra}
<p class="muted"><a href="/account">Back to your account</a></p>"#,
        extra = data_rights()
    );
    page("Privacy centre", true, &body)
}

/// The export and erasure sections (`GET /auth/me/export`, `DELETE /auth/me`).
fn data_rights() -> String {
    format!(
        r#"<section><h2>Your data</h2><p>Download everything we hold about you as one JSON file.</p>
<p><a class="button" id="export-link" href="/privacy/export" download>Download my data</a></p></section>
<section><h2>Erase my account</h2><form id="erase-form" data-api="/auth/me" data-method="DELETE" data-json data-step-up="/privacy" data-then="/?closed=1">
<p>Everything we hold about you is erased: your account, sign-in methods, sessions, and the personal part of your consent records (the records themselves stay, unreadable, so our ledger still proves what was agreed).</p>
<label for="erase-password">Current password (not needed within 10 minutes of signing in)</label><input id="erase-password" name="current_password" type="password" autocomplete="current-password">
<label class="choice"><input type="checkbox" id="erase-confirm" required data-local> I understand that this cannot be undone</label>
<button class="danger">Erase my account</button>{OUT}</form></section>"#
    )
}

/// `/privacy/export`: the download of `GET /auth/me/export` for a recent sign-in; otherwise
/// the sign-in page first (step-up), which comes back to the privacy centre.
pub(crate) async fn export(
    State(ciam): State<Ciam>,
    MaybeAuthenticated(auth): MaybeAuthenticated,
) -> Response {
    match auth {
        None => Redirect::to("/login?next=%2Fprivacy").into_response(),
        Some(auth) => {
            let max_age = ciam.policy().recent_auth_max_age;
            if ciam.require_recent_auth(&auth, max_age).is_ok() {
                Redirect::to("/auth/me/export").into_response()
            } else {
                Redirect::to("/login?next=%2Fprivacy&step_up=1").into_response()
            }
        }
    }
}

/// `/privacy/policy/{version}`: the text of a policy version.
pub(crate) async fn policy(
    MaybeAuthenticated(auth): MaybeAuthenticated,
    Path(version): Path<u32>,
) -> Response {
    let body = format!(
        r#"<section><p id="policy-text">{}</p></section><p class="muted"><a href="/privacy">Privacy centre</a></p>"#,
        escape(&crate::consent::policy_text(version))
    );
    page(
        &format!("Privacy policy, version {version}"),
        auth.is_some(),
        &body,
    )
}
