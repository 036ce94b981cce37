//! The privacy centre's JSON endpoints (feature `consent`): the caller's consents, giving and
//! withdrawing them, signed receipts, and the Global Privacy Control signal.
//!
//! Mount [`privacy_router`] beside [`router`](crate::router) (under the same prefix), inside
//! [`CiamLayer`](crate::CiamLayer):
//!
//! ```no_run
//! use axum::Router;
//! use ciam_axum::{CiamLayer, Privacy};
//! use ciam_consent::{ConsentLedger, ReceiptConfig, SigningKey};
//! use ciam_core::Ciam;
//!
//! fn app(ciam: Ciam, ledger: ConsentLedger, key: SigningKey, receipts: ReceiptConfig) -> Router {
//!     let privacy = Privacy::new(ledger, key, receipts, "acme-web");
//!     Router::new()
//!         .nest(
//!             "/auth",
//!             ciam_axum::router(ciam.clone()).merge(ciam_axum::privacy_router(ciam.clone(), privacy)),
//!         )
//!         .layer(CiamLayer::new(ciam))
//! }
//! ```
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /consents` | — | `{policy, purposes: [{id, description, legal_basis, required, sale_or_share, data_categories, permitted, state, record_id, policy_version, at, expires_at}], pending: [...]}` |
//! | `PUT /consents/{purpose}` | `{granted, text_shown?}` | `{purpose: {...}, receipt_id}`; the record's source is the configured application, channel `privacy-centre` and the SHA-256 of the text shown (the purpose's description unless `text_shown` says otherwise) |
//! | `GET /consents/receipts/{id}` | — | the signed receipt (JWS compact, `application/jose`), the caller's records only (404 otherwise) |
//! | `GET /consents/receipts/key` | — | `{"keys": [JWK]}`: the key receipts verify with, offline |
//! | `GET /me/export` | — (recent sign-in) | the caller's archive ([`Ciam::export_user`]) as a JSON attachment; 401 `step_up_required` after the recent-sign-in window (`Policy::recent_auth_max_age`) |
//! | `DELETE /me` | `{current_password?}` (JSON, `{}` at least) (or a recent sign-in; AAL2 when a second factor is enrolled) | 200 `{status, steps}`, the erasure report ([`Ciam::erase_own_account`]), cookie cleared; 401 `step_up_required` |
//!
//! A request carrying `Sec-GPC: 1` from a signed-in user withdraws every sale-or-share purpose
//! first ([`ConsentLedger::apply_gpc`], idempotent); [`HonourGpcLayer`] (or the
//! [`honour_gpc`] middleware function) does the same for any other route of the application.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use ciam_consent::{
    ConsentLedger, ConsentRecord, EventKind, LegalBasis, Purpose, ReceiptConfig, RecordId,
    SigningKey, Source,
};
use ciam_core::clock::{Clock, SystemClock};
use ciam_core::id::UserId;
use ciam_core::{AuthContext, Ciam, Error};
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::extract::{Authenticated, ClientContext, Json, Layer};
use crate::prefix::At;
use crate::rejection::ApiError;

/// The channel recorded for changes made through these endpoints.
pub const PRIVACY_CHANNEL: &str = "privacy-centre";

/// The channel recorded for withdrawals made on a Global Privacy Control signal.
pub const GPC_CHANNEL: &str = "gpc-header";

/// Longest `text_shown` accepted, in bytes.
pub const MAX_TEXT_SHOWN: usize = 8 * 1024;

/// What the privacy endpoints need: the ledger, the receipt signing key and what receipts
/// say about the controller. Cheap to clone.
#[derive(Clone)]
pub struct Privacy(Arc<Inner>);

struct Inner {
    ledger: ConsentLedger,
    key: Arc<SigningKey>,
    receipts: ReceiptConfig,
    application: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Privacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Privacy")
            .field("application", &self.0.application)
            .finish_non_exhaustive()
    }
}

impl Privacy {
    /// The endpoints' configuration: `application` names the application in every record they
    /// write (the consent source).
    pub fn new(
        ledger: ConsentLedger,
        key: SigningKey,
        receipts: ReceiptConfig,
        application: &str,
    ) -> Self {
        Self(Arc::new(Inner {
            ledger,
            key: Arc::new(key),
            receipts,
            application: application.to_owned(),
            clock: Arc::new(SystemClock),
        }))
    }

    /// Sets the clock that decides which policy is in force (give the ledger's clock).
    #[must_use]
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        let inner = &self.0;
        Self(Arc::new(Inner {
            ledger: inner.ledger.clone(),
            key: Arc::clone(&inner.key),
            receipts: inner.receipts.clone(),
            application: inner.application.clone(),
            clock,
        }))
    }

    /// The ledger.
    pub fn ledger(&self) -> &ConsentLedger {
        &self.0.ledger
    }
}

#[derive(Clone)]
struct PrivacyState {
    ciam: Ciam,
    privacy: Privacy,
}

/// The privacy centre endpoints (see the [module docs](self)), to merge into
/// [`router`](crate::router) under the same prefix. Needs [`CiamLayer`](crate::CiamLayer)
/// around it.
pub fn privacy_router<S>(ciam: Ciam, privacy: Privacy) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    privacy_router_at("", ciam, privacy)
}

/// [`privacy_router`] with its routes registered at `prefix` + path, to merge beside
/// [`router_at`](crate::router_at) with the same prefix (no `nest`, see there).
///
/// # Panics
///
/// As [`router_at`](crate::router_at), on a `prefix` that is neither empty nor starts with
/// `/`, or that holds a path parameter or wildcard.
pub fn privacy_router_at<S>(prefix: &str, ciam: Ciam, privacy: Privacy) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    At::new(prefix)
        .route("/consents", get(list))
        .route("/consents/{purpose}", put(set))
        .route("/consents/receipts/key", get(receipt_key))
        .route("/consents/receipts/{id}", get(receipt))
        .route("/me/export", get(export))
        .route("/me", axum::routing::delete(erase))
        .into_router()
        .layer((
            crate::no_store::answers(),
            HonourGpcLayer::new(privacy.clone()),
        ))
        .with_state(PrivacyState { ciam, privacy })
}

/// Middleware applying the Global Privacy Control signal, as a function for
/// `axum::middleware::from_fn_with_state(privacy, ciam_axum::honour_gpc)`: a request with
/// `Sec-GPC: 1` from a signed-in user withdraws every sale-or-share purpose they still permit
/// before the handler runs ([`ConsentLedger::apply_gpc`]; a purpose already denied gets no
/// new record). Use it inside [`CiamLayer`](crate::CiamLayer).
///
/// [`HonourGpcLayer`] does the same and costs less on requests without the signal (no boxed
/// future, no clone of the inner service); prefer it around a whole site.
///
/// When the ledger cannot record the withdrawal the request is answered 503 `unavailable`:
/// the handler must not run as if the signal had been honoured.
pub async fn honour_gpc(State(privacy): State<Privacy>, request: Request, next: Next) -> Response {
    if let Some(user) = gpc_caller(&request)
        && let Err(refusal) = apply_gpc(&privacy, user).await
    {
        return refusal;
    }
    next.run(request).await
}

/// The signed-in user whose request carries the Global Privacy Control signal, if any.
fn gpc_caller<B>(request: &http::Request<B>) -> Option<UserId> {
    if !gpc_signal(request.headers()) {
        return None;
    }
    request.extensions().get::<AuthContext>().map(|a| a.user_id)
}

/// Records the signal for `user`; `Err` is the answer to send instead of running the handler.
async fn apply_gpc(privacy: &Privacy, user: UserId) -> Result<(), Response> {
    let source = Source::new(&privacy.0.application, GPC_CHANNEL);
    match privacy.0.ledger.apply_gpc(user, source).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "the Global Privacy Control signal could not be recorded");
            Err(ledger_error(e).into_response())
        }
    }
}

/// The Global Privacy Control signal as a tower layer: what [`honour_gpc`] does, for
/// `Router::layer` or beside [`CiamLayer`](crate::CiamLayer) in one layer tuple (one boxed
/// route instead of two):
///
/// ```no_run
/// # use axum::Router;
/// # use ciam_axum::{CiamLayer, HonourGpcLayer, Privacy};
/// # fn site(app: Router, ciam: ciam_core::Ciam, privacy: Privacy) -> Router {
/// // CiamLayer first (outermost): it resolves the caller the signal applies to.
/// app.layer((CiamLayer::new(ciam), HonourGpcLayer::new(privacy)))
/// # }
/// ```
///
/// A request without `Sec-GPC: 1`, or from a caller who is not signed in, goes straight to
/// the inner service: no boxed future, no clone of the service. With the signal from a
/// signed-in user, every sale-or-share purpose they still permit is withdrawn before the
/// inner service runs; when the ledger cannot record it the answer is 503 `unavailable` and
/// the inner service does not run.
#[derive(Clone)]
pub struct HonourGpcLayer {
    privacy: Privacy,
}

impl HonourGpcLayer {
    /// The layer recording withdrawals in `privacy`'s ledger, with its application name as
    /// the records' source.
    pub fn new(privacy: Privacy) -> Self {
        Self { privacy }
    }
}

impl std::fmt::Debug for HonourGpcLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HonourGpcLayer").finish_non_exhaustive()
    }
}

impl<S> tower_layer::Layer<S> for HonourGpcLayer {
    type Service = HonourGpc<S>;

    fn layer(&self, inner: S) -> HonourGpc<S> {
        HonourGpc {
            inner,
            privacy: self.privacy.clone(),
        }
    }
}

/// The service made by [`HonourGpcLayer`].
#[derive(Clone)]
pub struct HonourGpc<S> {
    inner: S,
    privacy: Privacy,
}

impl<S> std::fmt::Debug for HonourGpc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HonourGpc").finish_non_exhaustive()
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for HonourGpc<S>
where
    S: tower_service::Service<http::Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = GpcFuture<S::Future, S::Error>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(user) = gpc_caller(&request) else {
            return GpcFuture {
                state: GpcState::Pass {
                    inner: self.inner.call(request),
                },
            };
        };
        // The clone is not ready; keep the ready one for this call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let privacy = self.privacy.clone();
        GpcFuture {
            state: GpcState::Signal {
                inner: Box::pin(async move {
                    if let Err(refusal) = apply_gpc(&privacy, user).await {
                        return Ok(refusal);
                    }
                    inner.call(request).await
                }),
            },
        }
    }
}

type BoxedAnswer<E> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`HonourGpc`].
    pub struct GpcFuture<F, E> {
        #[pin]
        state: GpcState<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = GpcProjection]
    enum GpcState<F, E> {
        // No signal to record: the inner service's own future.
        Pass { #[pin] inner: F },
        // The signal is recorded first.
        Signal { inner: BoxedAnswer<E> },
    }
}

impl<F, E> std::fmt::Debug for GpcFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GpcFuture")
    }
}

impl<F, E> std::future::Future for GpcFuture<F, E>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project().state.project() {
            GpcProjection::Pass { inner } => inner.poll(cx),
            GpcProjection::Signal { inner } => inner.as_mut().poll(cx),
        }
    }
}

/// Whether the request carries the Global Privacy Control signal (`Sec-GPC: 1`).
fn gpc_signal(headers: &HeaderMap) -> bool {
    headers
        .get(const { HeaderName::from_static("sec-gpc") })
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1")
}

fn ledger_error(e: ciam_consent::Error) -> ApiError {
    match e {
        ciam_consent::Error::Store(e) => Error::Unavailable(e).into(),
        ciam_consent::Error::UnknownPurpose
        | ciam_consent::Error::NotFound
        | ciam_consent::Error::Erased => ApiError::not_found(),
        ciam_consent::Error::InvalidInput(what) => Error::InvalidInput(what).into(),
        other => {
            tracing::error!(error = %other, "consent ledger call failed");
            Error::Internal(Box::new(other)).into()
        }
    }
}

/// One purpose as the caller sees it.
#[derive(Serialize)]
struct PurposeView<'a> {
    id: &'a str,
    description: &'a str,
    legal_basis: &'static str,
    required: bool,
    sale_or_share: bool,
    data_categories: &'a [String],
    /// Whether the ledger permits the purpose now.
    permitted: bool,
    /// `granted`, `withdrawn`, `expired`, `reconsent_required`, `not_asked` (consent never
    /// given or refused) or `not_needed` (a basis other than consent and no objection).
    state: &'static str,
    record_id: Option<RecordId>,
    policy_version: Option<u32>,
    #[serde(with = "time::serde::rfc3339::option")]
    at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

fn purpose_view<'a>(
    purpose: &'a Purpose,
    latest: Option<&ConsentRecord>,
    permitted: bool,
) -> PurposeView<'a> {
    let body = latest.map(|r| &r.record.body);
    let state = match body.map(|b| b.kind) {
        Some(EventKind::Granted) if permitted => "granted",
        Some(EventKind::Granted | EventKind::Expired) => "expired",
        Some(EventKind::Withdrawn) => "withdrawn",
        Some(EventKind::ReconsentRequired) => "reconsent_required",
        _ if purpose.basis() != LegalBasis::Consent && permitted => "not_needed",
        _ => "not_asked",
    };
    PurposeView {
        id: purpose.id().as_str(),
        description: purpose.description(),
        legal_basis: purpose.basis().as_str(),
        required: purpose.is_required(),
        sale_or_share: purpose.is_sale_or_share(),
        data_categories: purpose.data_category_list(),
        permitted,
        state,
        record_id: body.map(|b| b.id),
        policy_version: body.map(|b| b.policy_version),
        at: body.map(|b| b.at),
        expires_at: body.and_then(|b| b.expires_at),
    }
}

/// Every purpose of the catalog for `user`, with the ledger's answer and latest record.
async fn purposes_of(privacy: &Privacy, auth: &AuthContext) -> Result<serde_json::Value, ApiError> {
    let ledger = &privacy.0.ledger;
    let history = ledger.history(auth.user_id).await.map_err(ledger_error)?;
    let mut views = Vec::new();
    for purpose in ledger.catalog().purposes() {
        let permitted = ledger
            .check(auth.user_id, purpose.id().as_str())
            .await
            .map_err(ledger_error)?
            .is_allowed();
        let latest = history
            .iter()
            .rev()
            .find(|r| &r.record.body.purpose == purpose.id());
        views.push(purpose_view(purpose, latest, permitted));
    }
    serde_json::to_value(views).map_err(|e| Error::Internal(Box::new(e)).into())
}

async fn list(
    State(state): State<PrivacyState>,
    Authenticated(auth): Authenticated,
) -> Result<Response, ApiError> {
    let privacy = &state.privacy;
    let ledger = &privacy.0.ledger;
    let purposes = purposes_of(privacy, &auth).await?;
    let pending = ciam_consent::gate::pending_consents(ledger, auth.user_id)
        .await
        .map_err(ledger_error)?;
    let policy = ledger.catalog().policy_at(privacy.0.clock.now()).map(|p| {
        json!({
            "version": p.version,
            "url": p.url,
            "material": p.material,
            "effective_from": p.effective_from.unix_timestamp(),
        })
    });
    Ok(Json(json!({
        "policy": policy,
        "purposes": purposes,
        "pending": pending,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct SetBody {
    granted: bool,
    #[serde(default)]
    text_shown: Option<String>,
}

async fn set(
    State(state): State<PrivacyState>,
    Authenticated(auth): Authenticated,
    Path(purpose): Path<String>,
    Json(body): Json<SetBody>,
) -> Result<Response, ApiError> {
    let privacy = &state.privacy;
    let ledger = &privacy.0.ledger;
    let Some(p) = ledger.catalog().get(&purpose) else {
        return Err(ApiError::not_found());
    };
    // Contract, legal obligation, vital interest and public task need no consent, and an
    // answer would change nothing; legitimate interest takes an objection (a withdrawal).
    match p.basis() {
        LegalBasis::Consent | LegalBasis::LegitimateInterest => {}
        _ => {
            return Err(Error::InvalidInput("a purpose that does not rest on consent").into());
        }
    }
    let text = match &body.text_shown {
        Some(t) if t.len() > MAX_TEXT_SHOWN => return Err(Error::InvalidInput("text_shown").into()),
        Some(t) => t.as_bytes(),
        None => p.description().as_bytes(),
    };
    let source = Source::new(&privacy.0.application, PRIVACY_CHANNEL).text_shown(text);
    let record = if body.granted {
        ledger.grant(auth.user_id, &purpose, source).await
    } else {
        ledger.withdraw(auth.user_id, &purpose, source).await
    }
    .map_err(ledger_error)?;
    let permitted = ledger
        .check(auth.user_id, &purpose)
        .await
        .map_err(ledger_error)?
        .is_allowed();
    Ok(Json(json!({
        "purpose": purpose_view(p, Some(&record), permitted),
        "receipt_id": record.record.body.id,
    }))
    .into_response())
}

async fn receipt(
    State(state): State<PrivacyState>,
    Authenticated(auth): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Ok(id) = id.parse::<RecordId>() else {
        return Err(ApiError::not_found());
    };
    let inner = &state.privacy.0;
    let jws = inner
        .ledger
        .receipt(auth.user_id, id, &inner.receipts, &inner.key)
        .await
        .map_err(ledger_error)?;
    let disposition = format!("attachment; filename=\"consent-receipt-{id}.jws\"");
    let mut response = (StatusCode::OK, jws).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/jose"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn export(
    State(state): State<PrivacyState>,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
) -> Result<Response, ApiError> {
    // Everything held about the user in one download: a session taken over must not be
    // enough, so the user must have signed in recently, as for erasure.
    state
        .ciam
        .require_recent_auth(&auth, state.ciam.policy().recent_auth_max_age)?;
    let archive = state.ciam.export_user(auth.user_id, &ctx).await?;
    let disposition = format!("attachment; filename=\"{}-export.json\"", auth.user_id);
    let mut response = Json(archive).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct EraseBody {
    #[serde(default)]
    current_password: Option<ciam_core::SecretString>,
}

async fn erase(
    State(state): State<PrivacyState>,
    layer: Layer,
    Authenticated(auth): Authenticated,
    ClientContext(ctx): ClientContext,
    Json(body): Json<EraseBody>,
) -> Result<Response, ApiError> {
    let report = state
        .ciam
        .erase_own_account(&auth, body.current_password.as_ref(), &ctx)
        .await?;
    let mut response = Json(&report).into_response();
    response
        .headers_mut()
        .insert(http::header::SET_COOKIE, layer.0.0.cookie.clear_cookie());
    Ok(response)
}

async fn receipt_key(State(state): State<PrivacyState>) -> Response {
    Json(json!({ "keys": [state.privacy.0.key.public_jwk()] })).into_response()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use ciam_consent::sqlite::SqliteConsentStore;
    use ciam_consent::{
        Catalog, ConsentLedger, LedgerGate, LegalBasis, MasterKey, PolicyDocument, PublicJwk,
        Purpose, ReceiptConfig, SigningKey, Source, verify_receipt,
    };
    use ciam_core::clock::ManualClock;
    use ciam_core::id::UserId;
    use ciam_core::{Ciam, Policy};
    use ciam_storage::memory::MemoryBackend;
    use http::{Request, StatusCode, header};
    use serde_json::{Value, json};
    use time::macros::datetime;
    use tower::ServiceExt;

    use super::{HonourGpcLayer, Privacy, honour_gpc, privacy_router};
    use crate::CiamLayer;
    use crate::tests::{HTTP_URL, body_json, engine, session_cookie, sign_in};

    const NEWSLETTER: &str = "The weekly newsletter";

    /// Policy 1 from 2025; policy 2, material, from 1 April 2026.
    pub(crate) fn catalog() -> Catalog {
        Catalog::new()
            .purpose(Purpose::new("newsletter", NEWSLETTER, LegalBasis::Consent).unwrap())
            .purpose(
                Purpose::new(
                    "sale_of_data",
                    "Selling data to partners",
                    LegalBasis::Consent,
                )
                .unwrap()
                .sale_or_share(true),
            )
            .purpose(Purpose::new("terms", "The terms of service", LegalBasis::Contract).unwrap())
            .policy(PolicyDocument::new(
                1,
                b"Privacy policy 1",
                datetime!(2025-01-01 00:00 UTC),
                "https://acme.example/privacy/1",
            ))
            .unwrap()
            .policy(
                PolicyDocument::new(
                    2,
                    b"Privacy policy 2",
                    datetime!(2026-04-01 00:00 UTC),
                    "https://acme.example/privacy/2",
                )
                .material(true),
            )
            .unwrap()
    }

    pub(crate) fn receipts() -> ReceiptConfig {
        ReceiptConfig {
            controllers: Vec::new(),
            service: "Acme".to_owned(),
            jurisdiction: "DE".to_owned(),
            language: "en".to_owned(),
        }
    }

    /// A ledger on a real (in-memory) SQLite consent store, on `clock`.
    pub(crate) async fn ledger(clock: &ManualClock) -> ConsentLedger {
        let store = SqliteConsentStore::connect("sqlite::memory:")
            .await
            .unwrap();
        ConsentLedger::builder(Arc::new(store), catalog(), MasterKey::from_bytes(&[5; 32]))
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap()
    }

    /// The privacy configuration of the tests: `ledger`, a fixed receipt key, on `clock`.
    fn privacy(ledger: &ConsentLedger, clock: &ManualClock) -> Privacy {
        Privacy::new(
            ledger.clone(),
            SigningKey::from_seed(&[8; 32]).unwrap(),
            receipts(),
            "acme-web",
        )
        .clock(Arc::new(clock.clone()))
    }

    pub(crate) fn app(ciam: &Ciam, ledger: &ConsentLedger, clock: &ManualClock) -> Router {
        mounted(ciam, ledger, clock, false)
    }

    /// The auth router and the privacy centre under `/auth`: nested, or with `at` registered
    /// at the prefix (`router_at`, `privacy_router_at`).
    pub(crate) fn mounted(
        ciam: &Ciam,
        ledger: &ConsentLedger,
        clock: &ManualClock,
        at: bool,
    ) -> Router {
        let privacy = privacy(ledger, clock);
        let auth = if at {
            Router::new()
                .merge(crate::router_at("/auth", ciam.clone()))
                .merge(super::privacy_router_at("/auth/", ciam.clone(), privacy))
        } else {
            Router::new().nest(
                "/auth",
                crate::router(ciam.clone()).merge(privacy_router(ciam.clone(), privacy)),
            )
        };
        auth.layer(CiamLayer::new(ciam.clone()))
            .layer(crate::tests::peer())
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> http::Response<Body> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ORIGIN, HTTP_URL);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        app.clone().oneshot(req.unwrap()).await.unwrap()
    }

    /// `PUT` of `body` to `path` as the holder of `cookie`.
    async fn put(
        app: &Router,
        path: &str,
        cookie: Option<&str>,
        body: Value,
    ) -> http::Response<Body> {
        call(app, "PUT", path, cookie, &[], Some(body)).await
    }

    async fn text(res: http::Response<Body>) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    async fn signed_in(app: &Router, email: &str) -> (String, UserId) {
        let res = sign_in(app, HTTP_URL, email).await;
        let cookie = session_cookie(&res);
        let body = body_json(res).await;
        assert_eq!(body["consent_required"], json!([]), "{body}");
        (
            cookie,
            body["user"]["id"].as_str().unwrap().parse().unwrap(),
        )
    }

    fn purpose<'a>(list: &'a Value, id: &str) -> &'a Value {
        list["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {list}"))
    }

    #[tokio::test]
    async fn consents_are_listed_given_withdrawn_and_receipted() {
        let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let ledger = ledger(&clock).await;
        let ciam = engine(HTTP_URL);
        let app = app(&ciam, &ledger, &clock);
        let (cookie, user) = signed_in(&app, "pat@example.com").await;
        let me = Some(cookie.as_str());

        // Without a session: 401.
        let res = call(&app, "GET", "/auth/consents", None, &[], None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        let res = call(&app, "GET", "/auth/consents", me, &[], None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        let list = body_json(res).await;
        assert_eq!(list["policy"]["version"], 1);
        assert_eq!(list["pending"], json!([]));
        let n = purpose(&list, "newsletter");
        assert_eq!(n["state"], "not_asked");
        assert_eq!(n["permitted"], false);
        assert_eq!(n["description"], NEWSLETTER);
        assert_eq!(purpose(&list, "terms")["state"], "not_needed");
        assert_eq!(purpose(&list, "sale_of_data")["sale_or_share"], true);

        // Grant: recorded with the configured application, the privacy-centre channel and
        // the hash of the text shown (the description by default).
        let res = put(
            &app,
            "/auth/consents/newsletter",
            me,
            json!({"granted": true}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let granted = body_json(res).await;
        assert_eq!(granted["purpose"]["state"], "granted");
        assert_eq!(granted["purpose"]["permitted"], true);
        assert_eq!(granted["purpose"]["policy_version"], 1);
        assert!(ledger.check(user, "newsletter").await.unwrap().is_allowed());
        let history = ledger.history(user).await.unwrap();
        let body = &history.last().unwrap().record.body;
        assert_eq!(body.application, "acme-web");
        assert_eq!(body.channel, "privacy-centre");
        assert_eq!(
            body.text_hash,
            Source::default()
                .text_shown(NEWSLETTER.as_bytes())
                .text_hash
        );
        let receipt_id = granted["receipt_id"].as_str().unwrap().to_owned();
        assert_eq!(receipt_id, body.id.to_string());

        // The receipt: a JWS that verifies offline with the published key.
        let res = call(&app, "GET", "/auth/consents/receipts/key", None, &[], None).await;
        let jwk: PublicJwk =
            serde_json::from_value(body_json(res).await["keys"][0].clone()).unwrap();
        let path = format!("/auth/consents/receipts/{receipt_id}");
        let res = call(&app, "GET", &path, me, &[], None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/jose");
        assert!(
            res.headers()[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let receipt = verify_receipt(&text(res).await, &jwk).unwrap();
        assert_eq!(receipt.consent_receipt_id, receipt_id);
        assert_eq!(receipt.pii_principal_id, user.to_string());
        assert_eq!(receipt.ciam.event, "granted");

        // Another user cannot read it; a malformed id is not found either.
        let (other, _) = signed_in(&app, "quinn@example.com").await;
        let res = call(&app, "GET", &path, Some(&other), &[], None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = call(&app, "GET", "/auth/consents/receipts/nope", me, &[], None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);

        // A custom text shown is hashed instead.
        let res = put(
            &app,
            "/auth/consents/newsletter",
            me,
            json!({"granted": false, "text_shown": "Stop the newsletter"}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body_json(res).await["purpose"]["state"], "withdrawn");
        assert!(!ledger.check(user, "newsletter").await.unwrap().is_allowed());
        let history = ledger.history(user).await.unwrap();
        assert_eq!(
            history.last().unwrap().record.body.text_hash,
            Source::default()
                .text_shown(b"Stop the newsletter")
                .text_hash
        );

        // Refusals change nothing: unknown purpose, a contract purpose, a bad body.
        let records = ledger.history(user).await.unwrap().len();
        for (path, body, status) in [
            (
                "/auth/consents/nope",
                json!({"granted": true}),
                StatusCode::NOT_FOUND,
            ),
            (
                "/auth/consents/terms",
                json!({"granted": false}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "/auth/consents/newsletter",
                json!({"granted": "yes"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "/auth/consents/newsletter",
                json!({"granted": true, "text_shown": "x".repeat(super::MAX_TEXT_SHOWN + 1)}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let res = put(&app, path, me, body).await;
            assert_eq!(res.status(), status, "{path}");
        }
        assert_eq!(ledger.history(user).await.unwrap().len(), records);
        ledger.verify().await.unwrap();
    }

    #[tokio::test]
    async fn gpc_signal_withdraws_sale_or_share_once() {
        let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let ledger = ledger(&clock).await;
        let ciam = engine(HTTP_URL);
        let app = app(&ciam, &ledger, &clock);
        let (cookie, user) = signed_in(&app, "gpc@example.com").await;
        let me = Some(cookie.as_str());
        for p in ["newsletter", "sale_of_data"] {
            let res = put(
                &app,
                &format!("/auth/consents/{p}"),
                me,
                json!({"granted": true}),
            )
            .await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        let gpc = [("sec-gpc", "1")];
        let res = call(&app, "GET", "/auth/consents", me, &gpc, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let list = body_json(res).await;
        assert_eq!(purpose(&list, "sale_of_data")["state"], "withdrawn");
        assert_eq!(purpose(&list, "newsletter")["state"], "granted");
        let history = ledger.history(user).await.unwrap();
        let last = &history.last().unwrap().record.body;
        assert_eq!(last.channel, "gpc-header");
        assert_eq!(last.purpose.as_str(), "sale_of_data");
        // Idempotent: the signal on every request writes once.
        let n = history.len();
        let res = call(&app, "GET", "/auth/consents", me, &gpc, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(ledger.history(user).await.unwrap().len(), n);
        // Without a session the signal has no one to apply to, and changes nothing.
        let res = call(&app, "GET", "/auth/consents", None, &gpc, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // `Sec-GPC: 0` is no signal.
        let res = call(
            &app,
            "PUT",
            "/auth/consents/sale_of_data",
            me,
            &[("sec-gpc", "0")],
            Some(json!({"granted": true})),
        )
        .await;
        assert_eq!(body_json(res).await["purpose"]["state"], "granted");
    }

    /// `HonourGpcLayer` (in a tuple with `CiamLayer`, as the quickstart uses it) and the
    /// `honour_gpc` function, each around a site route outside the privacy router: the signal
    /// withdraws, no signal changes nothing, and a ledger that cannot record the signal gets
    /// 503 without running the route.
    #[tokio::test]
    async fn gpc_layer_and_function_apply_on_site_routes_and_refuse_when_unrecorded() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        for form in ["layer", "function"] {
            let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
            let store = Arc::new(
                SqliteConsentStore::connect("sqlite::memory:")
                    .await
                    .unwrap(),
            );
            let ledger =
                ConsentLedger::builder(store.clone(), catalog(), MasterKey::from_bytes(&[5; 32]))
                    .clock(Arc::new(clock.clone()))
                    .build()
                    .unwrap();
            let privacy = privacy(&ledger, &clock);
            let ciam = engine(HTTP_URL);
            let hits = Arc::new(AtomicUsize::new(0));
            let counter = hits.clone();
            let page = Router::new().route(
                "/page",
                axum::routing::get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { "page" }
                }),
            );
            let auth = Router::new().nest(
                "/auth",
                crate::router(ciam.clone()).merge(privacy_router(ciam.clone(), privacy.clone())),
            );
            let app = match form {
                "layer" => auth.merge(page).layer((
                    CiamLayer::new(ciam.clone()),
                    HonourGpcLayer::new(privacy.clone()),
                )),
                _ => auth
                    .merge(page.layer(axum::middleware::from_fn_with_state(
                        privacy.clone(),
                        honour_gpc,
                    )))
                    .layer(CiamLayer::new(ciam.clone())),
            }
            .layer(crate::tests::peer());
            let (cookie, user) = signed_in(&app, "gpc-site@example.com").await;
            let me = Some(cookie.as_str());
            for p in ["newsletter", "sale_of_data"] {
                let path = format!("/auth/consents/{p}");
                let res = put(&app, &path, me, json!({"granted": true})).await;
                assert_eq!(res.status(), StatusCode::OK, "{form}");
            }
            let records = ledger.history(user).await.unwrap().len();
            let gpc = [("sec-gpc", "1")];

            // No signal: the page runs, nothing is recorded.
            let res = call(&app, "GET", "/page", me, &[], None).await;
            assert_eq!(res.status(), StatusCode::OK, "{form}");
            assert_eq!(hits.load(Ordering::SeqCst), 1, "{form}");
            assert_eq!(ledger.history(user).await.unwrap().len(), records, "{form}");

            // The signal from a signed-in caller: sale_of_data withdrawn first, then the page.
            let res = call(&app, "GET", "/page", me, &gpc, None).await;
            assert_eq!(res.status(), StatusCode::OK, "{form}");
            assert_eq!(text(res).await, "page", "{form}");
            assert_eq!(hits.load(Ordering::SeqCst), 2, "{form}");
            let history = ledger.history(user).await.unwrap();
            assert_eq!(history.len(), records + 1, "{form}");
            let last = &history.last().unwrap().record.body;
            assert_eq!(last.channel, "gpc-header", "{form}");
            assert_eq!(last.purpose.as_str(), "sale_of_data", "{form}");
            let list = body_json(call(&app, "GET", "/auth/consents", me, &[], None).await).await;
            assert_eq!(
                purpose(&list, "sale_of_data")["state"],
                "withdrawn",
                "{form}"
            );
            assert_eq!(purpose(&list, "newsletter")["state"], "granted", "{form}");

            // The signal without a session has no one to apply to: the page runs.
            let res = call(&app, "GET", "/page", None, &gpc, None).await;
            assert_eq!(res.status(), StatusCode::OK, "{form}");
            assert_eq!(hits.load(Ordering::SeqCst), 3, "{form}");

            // Granted again, then the ledger cannot record the withdrawal: 503 `unavailable`,
            // and the page does not run.
            let res = put(
                &app,
                "/auth/consents/sale_of_data",
                me,
                json!({"granted": true}),
            );
            assert_eq!(res.await.status(), StatusCode::OK, "{form}");
            store.close().await;
            let res = call(&app, "GET", "/page", me, &gpc, None).await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{form}");
            assert_eq!(body_json(res).await["error"], "unavailable", "{form}");
            assert_eq!(hits.load(Ordering::SeqCst), 3, "{form}");
            // Without the signal there is nothing to record: the page still runs.
            let res = call(&app, "GET", "/page", me, &[], None).await;
            assert_eq!(res.status(), StatusCode::OK, "{form}");
            assert_eq!(hits.load(Ordering::SeqCst), 4, "{form}");
        }
    }

    #[tokio::test]
    async fn a_material_change_is_answered_at_login_and_listed_until_granted() {
        let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let ledger = ledger(&clock).await;
        let mut policy = Policy::default();
        policy.allow_unverified_sign_in = true;
        let ciam = Ciam::builder()
            .backend(Arc::new(MemoryBackend::new()))
            .public_url(HTTP_URL)
            .policy(policy)
            .clock(Arc::new(clock.clone()))
            .consent_gate(Arc::new(LedgerGate::new(
                ledger.clone(),
                Source::new("acme-web", "sign-in"),
            )))
            .build()
            .unwrap();
        let app = app(&ciam, &ledger, &clock);
        let (cookie, _) = signed_in(&app, "mat@example.com").await;
        let res = put(
            &app,
            "/auth/consents/newsletter",
            Some(&cookie),
            json!({"granted": true}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);

        clock.advance(time::Duration::days(31));
        let creds =
            json!({"email": "mat@example.com", "password": "correct horse battery staple 42"});
        let res = call(&app, "POST", "/auth/login", None, &[], Some(creds.clone())).await;
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = session_cookie(&res);
        let body = body_json(res).await;
        assert_eq!(
            body["consent_required"],
            json!([{
                "purpose": "newsletter",
                "description": NEWSLETTER,
                "policy_version": 2,
                "consented_under": 1,
                "policy_url": "https://acme.example/privacy/2",
            }])
        );
        let me = Some(cookie.as_str());
        let list = body_json(call(&app, "GET", "/auth/consents", me, &[], None).await).await;
        assert_eq!(list["policy"]["version"], 2);
        assert_eq!(list["pending"][0]["purpose"], "newsletter");
        assert_eq!(purpose(&list, "newsletter")["state"], "reconsent_required");
        assert_eq!(purpose(&list, "newsletter")["permitted"], false);

        let res = put(
            &app,
            "/auth/consents/newsletter",
            me,
            json!({"granted": true}),
        )
        .await;
        assert_eq!(body_json(res).await["purpose"]["policy_version"], 2);
        let list = body_json(call(&app, "GET", "/auth/consents", me, &[], None).await).await;
        assert_eq!(list["pending"], json!([]));
        let res = call(&app, "POST", "/auth/login", None, &[], Some(creds)).await;
        assert_eq!(body_json(res).await["consent_required"], json!([]));
    }

    #[tokio::test]
    async fn export_holds_the_consents_and_erasure_shreds_them() {
        let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let ledger = ledger(&clock).await;
        let hooks = Arc::new(ciam_consent::privacy::LedgerPrivacy::new(ledger.clone()));
        let mut policy = Policy::default();
        policy.allow_unverified_sign_in = true;
        let ciam = Ciam::builder()
            .backend(Arc::new(MemoryBackend::new()))
            .public_url(HTTP_URL)
            .policy(policy)
            .clock(Arc::new(clock.clone()))
            .export_contributor(hooks.clone())
            .erasure_hook(hooks)
            .build()
            .unwrap();
        let app = app(&ciam, &ledger, &clock);
        let (cookie, user) = signed_in(&app, "eve@example.com").await;
        let me = Some(cookie.as_str());
        let res = put(
            &app,
            "/auth/consents/newsletter",
            me,
            json!({"granted": true}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);

        let res = call(&app, "GET", "/auth/me/export", me, &[], None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let archive = body_json(res).await;
        assert_eq!(archive["account"]["email"], "eve@example.com");
        let consents = archive["sections"]["consent"].as_array().unwrap();
        assert_eq!(consents.len(), 1);
        assert_eq!(consents[0]["purpose"], "newsletter");
        assert_eq!(consents[0]["kind"], "granted");
        assert_eq!(consents[0]["channel"], "privacy-centre");
        let res = call(&app, "GET", "/auth/me/export", None, &[], None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        // Export and erasure need a recent sign-in (erasure: or the password), like closing
        // the account.
        clock.advance(time::Duration::minutes(11));
        let res = call(&app, "GET", "/auth/me/export", me, &[], None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(res).await["error"], "step_up_required");
        let res = call(&app, "DELETE", "/auth/me", me, &[], Some(json!({}))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(res).await["error"], "step_up_required");
        assert!(ledger.check(user, "newsletter").await.unwrap().is_allowed());
        let res = call(
            &app,
            "DELETE",
            "/auth/me",
            me,
            &[],
            Some(json!({"current_password": "correct horse battery staple 42"})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let cleared = res.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let report = body_json(res).await;
        assert_eq!(report["status"], "complete", "{report}");
        assert!(
            report["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "consent"),
            "{report}"
        );
        // The ledger shreds the user: checks deny as erased, the chain still verifies.
        assert!(matches!(
            ledger.check(user, "newsletter").await.unwrap(),
            ciam_consent::Decision::Deny(ciam_consent::Denied::Erased)
        ));
        ledger.verify().await.unwrap();
        // The session is gone.
        let res = call(&app, "GET", "/auth/consents", me, &[], None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
}
