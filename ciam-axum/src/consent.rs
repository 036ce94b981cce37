//! Consent enforcement: the [`RequireConsent`] extractor over a ciam-consent
//! [`ConsentLedger`].

use std::fmt;
use std::marker::PhantomData;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use ciam_consent::{Allowed, ConsentLedger, Decision, Denied};
use ciam_core::AuthContext;
use http::StatusCode;
use http::request::Parts;
use serde_json::json;

use crate::extract::Authenticated;
use crate::rejection::{ApiError, AuthRejection, error_body};

/// A processing purpose of the ledger's catalog, named by a marker type, for
/// [`RequireConsent`].
///
/// ```
/// use ciam_axum::ConsentPurpose;
///
/// /// Sending the weekly newsletter.
/// struct Newsletter;
///
/// impl ConsentPurpose for Newsletter {
///     const ID: &'static str = "newsletter";
/// }
/// ```
pub trait ConsentPurpose {
    /// The purpose id, as in the ledger's [`Catalog`](ciam_consent::Catalog).
    const ID: &'static str;
}

/// The signed-in caller, for whom purpose `P` is permitted now
/// ([`ConsentLedger::check`]), with the answer that permits it.
///
/// Install the application's ledger once, as a request extension
/// (`.layer(axum::Extension(ledger))`, where `ledger` is a [`ConsentLedger`], cheap to clone),
/// inside [`CiamLayer`](crate::CiamLayer). The extractor rejects:
///
/// - like [`Authenticated`] without a session (401 `{"error": "unauthenticated"}`);
/// - with 403 `{"error": "consent_required", "purpose": "<id>", "message": "..."}` when the
///   ledger denies the purpose (never granted, withdrawn, expired, re-consent required after
///   a material policy change, erased);
/// - with 503 `{"error": "unavailable"}` and `Retry-After` when the consent store fails:
///   a failure is never an allow;
/// - with 500 when the ledger is not installed or `P::ID` is not in its catalog
///   (configuration bugs, logged as errors).
///
/// Purposes with a basis other than consent (contract, legal obligation, ...) are allowed
/// without a record, as the ledger decides.
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use ciam_axum::{CiamLayer, ConsentPurpose, RequireConsent};
/// use ciam_consent::ConsentLedger;
/// use ciam_core::Ciam;
///
/// struct Newsletter;
///
/// impl ConsentPurpose for Newsletter {
///     const ID: &'static str = "newsletter";
/// }
///
/// async fn subscribe(consent: RequireConsent<Newsletter>) -> String {
///     let record = consent.allowed().record.map(|r| r.seq);
///     format!("{} may get the newsletter (grant {record:?})", consent.auth().user_id)
/// }
///
/// fn app(ciam: Ciam, ledger: ConsentLedger) -> Router {
///     Router::new()
///         .route("/newsletter", get(subscribe))
///         .layer(Extension(ledger))
///         .layer(CiamLayer::new(ciam))
/// }
/// ```
pub struct RequireConsent<P: ConsentPurpose> {
    auth: AuthContext,
    allowed: Allowed,
    purpose: PhantomData<fn() -> P>,
}

impl<P: ConsentPurpose> RequireConsent<P> {
    /// The signed-in caller.
    pub fn auth(&self) -> &AuthContext {
        &self.auth
    }

    /// Why the purpose is permitted: the legal basis and, for consent, the grant that
    /// justifies it.
    pub fn allowed(&self) -> &Allowed {
        &self.allowed
    }

    /// The signed-in caller, by value.
    pub fn into_auth(self) -> AuthContext {
        self.auth
    }
}

impl<P: ConsentPurpose> Clone for RequireConsent<P> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            allowed: self.allowed,
            purpose: PhantomData,
        }
    }
}

impl<P: ConsentPurpose> fmt::Debug for RequireConsent<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireConsent")
            .field("purpose", &P::ID)
            .field("auth", &self.auth)
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl<S: Send + Sync, P: ConsentPurpose> FromRequestParts<S> for RequireConsent<P> {
    type Rejection = ConsentRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(auth) = Authenticated::from_request_parts(parts, state)
            .await
            .map_err(ConsentRejection::Auth)?;
        let Some(ledger) = parts.extensions.get::<ConsentLedger>().cloned() else {
            return Err(ConsentRejection::LedgerMissing);
        };
        match ledger.check(auth.user_id, P::ID).await {
            Ok(Decision::Allow(allowed)) => Ok(Self {
                auth,
                allowed,
                purpose: PhantomData,
            }),
            Ok(Decision::Deny(denied)) => Err(ConsentRejection::Required {
                purpose: P::ID,
                denied,
            }),
            Err(ciam_consent::Error::Store(e)) => Err(ConsentRejection::Unavailable(
                ApiError::from(ciam_core::Error::Unavailable(e)),
            )),
            Err(ciam_consent::Error::UnknownPurpose) => {
                Err(ConsentRejection::UnknownPurpose { purpose: P::ID })
            }
            Err(e) => {
                tracing::error!(purpose = P::ID, error = %e, "consent check failed");
                Err(ConsentRejection::Failed)
            }
        }
    }
}

/// Why [`RequireConsent`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsentRejection {
    /// No session (or no [`CiamLayer`](crate::CiamLayer)): as [`Authenticated`].
    Auth(AuthRejection),
    /// The ledger denies the purpose: 403 `{"error": "consent_required", "purpose": ...}`.
    Required {
        /// The purpose id.
        purpose: &'static str,
        /// Why it is denied (not sent to the client).
        denied: Denied,
    },
    /// The consent store failed: 503 `{"error": "unavailable"}` with `Retry-After`.
    Unavailable(ApiError),
    /// No [`ConsentLedger`] among the request extensions: 500, a configuration bug.
    LedgerMissing,
    /// The purpose is not in the ledger's catalog: 500, a configuration bug.
    UnknownPurpose {
        /// The purpose id.
        purpose: &'static str,
    },
    /// The check failed otherwise (logged): 500.
    Failed,
}

impl ConsentRejection {
    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(AuthRejection::LayerMissing) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::Required { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable(e) => e.status(),
            Self::LedgerMissing | Self::UnknownPurpose { .. } | Self::Failed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

fn internal() -> Response {
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong.",
    )
}

impl IntoResponse for ConsentRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Auth(r) => r.into_response(),
            Self::Required { purpose, denied } => {
                tracing::debug!(purpose, ?denied, "consent required");
                (
                    StatusCode::FORBIDDEN,
                    Json(json!({
                        "error": "consent_required",
                        "message": "This needs your consent. You can give it in your privacy settings.",
                        "purpose": purpose,
                    })),
                )
                    .into_response()
            }
            Self::Unavailable(e) => e.into_response(),
            Self::LedgerMissing => {
                tracing::error!(
                    "no ConsentLedger among the request extensions of a route that needs one"
                );
                internal()
            }
            Self::UnknownPurpose { purpose } => {
                tracing::error!(purpose, "RequireConsent names a purpose not in the catalog");
                internal()
            }
            Self::Failed => internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::{Extension, Router, routing::get};
    use ciam_consent::memory::MemoryConsentStore;
    use ciam_consent::sqlite::SqliteConsentStore;
    use ciam_consent::{
        Catalog, ConsentLedger, LegalBasis, MasterKey, PolicyDocument, Purpose, Source,
    };
    use ciam_core::Ciam;
    use ciam_core::id::UserId;
    use http::{Request, StatusCode, header};
    use time::OffsetDateTime;
    use tower::ServiceExt;

    use super::{ConsentPurpose, RequireConsent};
    use crate::CiamLayer;
    use crate::tests::{HTTP_URL, body_json, engine, session_cookie, sign_in};

    struct Newsletter;
    impl ConsentPurpose for Newsletter {
        const ID: &'static str = "newsletter";
    }

    struct Billing;
    impl ConsentPurpose for Billing {
        const ID: &'static str = "billing";
    }

    fn catalog() -> Catalog {
        Catalog::new()
            .purpose(
                Purpose::new("newsletter", "The weekly newsletter", LegalBasis::Consent).unwrap(),
            )
            .purpose(Purpose::new("billing", "Billing the customer", LegalBasis::Contract).unwrap())
            .policy(PolicyDocument::new(
                1,
                b"Privacy policy, version 1",
                OffsetDateTime::UNIX_EPOCH,
                "https://example.com/privacy/v1",
            ))
            .unwrap()
    }

    fn ledger() -> ConsentLedger {
        ConsentLedger::builder(
            Arc::new(MemoryConsentStore::new()),
            catalog(),
            MasterKey::from_bytes(&[7; 32]),
        )
        .build()
        .unwrap()
    }

    fn app(ciam: &Ciam, ledger: &ConsentLedger) -> Router {
        Router::new()
            .route(
                "/newsletter",
                get(|c: RequireConsent<Newsletter>| async move {
                    let seq = c.allowed().record.map(|r| r.seq);
                    format!("{} {seq:?}", c.auth().user_id)
                }),
            )
            .route(
                "/billing",
                get(|c: RequireConsent<Billing>| async move {
                    format!("{} {:?}", c.auth().user_id, c.allowed().record)
                }),
            )
            .layer(Extension(ledger.clone()))
            .nest("/auth", crate::router(ciam.clone()))
            .layer(CiamLayer::new(ciam.clone()))
            .layer(crate::tests::peer())
    }

    async fn get_with(app: &Router, path: &str, cookie: Option<&str>) -> http::Response<Body> {
        let mut req = Request::get(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        app.clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(res: http::Response<Body>) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Signs in `email`; returns the session cookie and the user id.
    async fn signed_in(app: &Router, email: &str) -> (String, UserId) {
        let res = sign_in(app, HTTP_URL, email).await;
        let cookie = session_cookie(&res);
        let body = body_json(res).await;
        let id: UserId = body["user"]["id"].as_str().unwrap().parse().unwrap();
        (cookie, id)
    }

    /// An engine, a ledger, the app over both, and a signed-in user of it.
    async fn set_up(email: &str) -> (ConsentLedger, Router, String, UserId) {
        let ciam = engine(HTTP_URL);
        let ledger = ledger();
        let app = app(&ciam, &ledger);
        let (cookie, user) = signed_in(&app, email).await;
        (ledger, app, cookie, user)
    }

    async fn assert_consent_required(res: http::Response<Body>) {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let body = body_json(res).await;
        assert_eq!(body["error"], "consent_required");
        assert_eq!(body["purpose"], "newsletter");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    fn web() -> Source {
        Source::new("web", "privacy-centre")
    }

    #[tokio::test]
    async fn no_session_is_unauthenticated() {
        let ciam = engine(HTTP_URL);
        let app = app(&ciam, &ledger());
        let res = get_with(&app, "/newsletter", None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(res).await["error"], "unauthenticated");
    }

    #[tokio::test]
    async fn granted_then_withdrawn() {
        let (ledger, app, cookie, user) = set_up("consent@example.com").await;

        // Never granted: 403 naming the purpose.
        assert_consent_required(get_with(&app, "/newsletter", Some(&cookie)).await).await;

        // Granted: the handler sees the user and the grant.
        let grant = ledger.grant(user, "newsletter", web()).await.unwrap();
        let res = get_with(&app, "/newsletter", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            text(res).await,
            format!("{user} Some({})", grant.record.position().seq)
        );

        // Withdrawn after the grant: 403 again.
        ledger.withdraw(user, "newsletter", web()).await.unwrap();
        assert_consent_required(get_with(&app, "/newsletter", Some(&cookie)).await).await;
    }

    #[tokio::test]
    async fn contract_basis_is_allowed_without_a_record() {
        let (ledger, app, cookie, user) = set_up("contract@example.com").await;
        let res = get_with(&app, "/billing", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(text(res).await, format!("{user} None"));
        assert!(ledger.history(user).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn missing_ledger_is_a_server_error() {
        let ciam = engine(HTTP_URL);
        let app = Router::new()
            .route(
                "/newsletter",
                get(|c: RequireConsent<Newsletter>| async move { c.auth().user_id.to_string() }),
            )
            .nest("/auth", crate::router(ciam.clone()))
            .layer(CiamLayer::new(ciam.clone()))
            .layer(crate::tests::peer());
        let (cookie, _) = signed_in(&app, "noledger@example.com").await;
        let res = get_with(&app, "/newsletter", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(res).await["error"], "internal");
    }

    #[tokio::test]
    async fn store_failure_is_unavailable_never_allowed() {
        let ciam = engine(HTTP_URL);
        // A real SQLite consent store whose pool is closed: every read fails.
        let store = Arc::new(
            SqliteConsentStore::connect("sqlite::memory:")
                .await
                .unwrap(),
        );
        let ledger =
            ConsentLedger::builder(store.clone(), catalog(), MasterKey::from_bytes(&[7; 32]))
                .build()
                .unwrap();
        let app = app(&ciam, &ledger);
        let (cookie, _) = signed_in(&app, "storefail@example.com").await;
        store.close().await;
        for path in ["/newsletter", "/billing"] {
            let res = get_with(&app, path, Some(&cookie)).await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(res.headers()[header::RETRY_AFTER], "1");
            assert_eq!(body_json(res).await["error"], "unavailable");
        }
    }
}
