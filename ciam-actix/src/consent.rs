//! Consent enforcement: the [`RequireConsent`] extractor over a ciam-consent
//! [`ConsentLedger`], answering as ciam-axum's (which it runs).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use ciam_axum::ConsentPurpose;
use ciam_consent::{Allowed, ConsentLedger};
use ciam_core::AuthContext;

use crate::extract::{Rejection, axum_parts, delegate};

/// The signed-in caller, for whom purpose `P` is permitted now
/// ([`ConsentLedger::check`]), with the answer that permits it.
///
/// Give the application's ledger to actix once, as app data (`App::app_data(ledger)` or
/// `App::app_data(web::Data::new(ledger))`). The refusals are ciam-axum's
/// [`RequireConsent`](ciam_axum::RequireConsent)'s: 401 `{"error": "unauthenticated"}`
/// without a session; 403 `{"error": "consent_required", "purpose": "<id>"}` when the ledger
/// denies the purpose; 503 `{"error": "unavailable"}` with `Retry-After` when the consent
/// store fails (a failure is never an allow); 500 when the ledger is missing or `P::ID` is
/// not in its catalog.
///
/// ```no_run
/// use actix_web::{App, web};
/// use ciam_actix::{CiamMiddleware, ConsentPurpose, RequireConsent};
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
///     format!("{} may get the newsletter", consent.auth().user_id)
/// }
///
/// fn app(ciam: Ciam, ledger: ConsentLedger) {
///     let _app = App::new()
///         .app_data(ledger)
///         .route("/newsletter", web::get().to(subscribe))
///         .wrap(CiamMiddleware::new(ciam));
/// }
/// ```
pub struct RequireConsent<P: ConsentPurpose>(ciam_axum::RequireConsent<P>);

impl<P: ConsentPurpose> RequireConsent<P> {
    /// The signed-in caller.
    pub fn auth(&self) -> &AuthContext {
        self.0.auth()
    }

    /// Why the purpose is permitted: the legal basis and, for consent, the grant that
    /// justifies it.
    pub fn allowed(&self) -> &Allowed {
        self.0.allowed()
    }

    /// The signed-in caller, by value.
    pub fn into_auth(self) -> AuthContext {
        self.0.into_auth()
    }
}

impl<P: ConsentPurpose> Clone for RequireConsent<P> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<P: ConsentPurpose> fmt::Debug for RequireConsent<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The future of [`RequireConsent`].
type ConsentFuture<T> = Pin<Box<dyn Future<Output = Result<T, Rejection>>>>;

impl<P: ConsentPurpose + 'static> FromRequest for RequireConsent<P> {
    type Error = Rejection;
    type Future = ConsentFuture<Self>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let parts = axum_parts(req, &[]).map(|mut parts| {
            let ledger = req.app_data::<ConsentLedger>().cloned().or_else(|| {
                req.app_data::<web::Data<ConsentLedger>>()
                    .map(|d| d.get_ref().clone())
            });
            if let Some(ledger) = ledger {
                parts.extensions.insert(ledger);
            }
            parts
        });
        Box::pin(async move { delegate(parts).await.map(Self) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::http::{StatusCode, header};
    use actix_web::test::{call_service, init_service};
    use actix_web::{App, web};
    use ciam_consent::memory::MemoryConsentStore;
    use ciam_consent::sqlite::SqliteConsentStore;
    use ciam_consent::{
        Catalog, ConsentLedger, ConsentStore, LegalBasis, MasterKey, PolicyDocument, Purpose,
        Source,
    };
    use ciam_core::id::UserId;
    use time::OffsetDateTime;

    use super::RequireConsent;
    use crate::CiamMiddleware;
    use crate::tests::{engine, get, json_of, run, sign_in, text_of};
    use ciam_axum::ConsentPurpose;

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

    fn ledger(store: Arc<dyn ConsentStore>) -> ConsentLedger {
        ConsentLedger::builder(store, catalog(), MasterKey::from_bytes(&[7; 32]))
            .build()
            .unwrap()
    }

    async fn newsletter(c: RequireConsent<Newsletter>) -> String {
        let seq = c.allowed().record.map(|r| r.seq);
        format!("{} {seq:?}", c.auth().user_id)
    }

    async fn billing(c: RequireConsent<Billing>) -> String {
        format!("{} {:?}", c.auth().user_id, c.allowed().record)
    }

    macro_rules! app {
        ($ciam:expr, $ledger:expr) => {{
            let app = App::new()
                .route("/newsletter", web::get().to(newsletter))
                .route("/billing", web::get().to(billing))
                .service(crate::scope("/auth", $ciam.clone()))
                .wrap(CiamMiddleware::new($ciam.clone()));
            match $ledger {
                Some(ledger) => init_service(app.app_data(web::Data::new(ledger))).await,
                None => init_service(app.app_data(())).await,
            }
        }};
    }

    fn web_source() -> Source {
        Source::new("web", "privacy-centre")
    }

    #[test]
    fn no_session_granted_withdrawn_and_contract() {
        run(async {
            let ciam = engine();
            let ledger = ledger(Arc::new(MemoryConsentStore::new()));
            let app = app!(ciam, Some(ledger.clone()));

            let res = call_service(&app, get("/newsletter").to_request()).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(json_of(res).await["error"], "unauthenticated");

            let (cookie, login) = sign_in(&app, "/auth", "consent@example.com").await;
            let user: UserId = login["user"]["id"].as_str().unwrap().parse().unwrap();
            let with_cookie =
                |path: &str| get(path).insert_header((header::COOKIE, cookie.clone()));

            // Never granted: 403 naming the purpose.
            let res = call_service(&app, with_cookie("/newsletter").to_request()).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            let body = json_of(res).await;
            assert_eq!(body["error"], "consent_required");
            assert_eq!(body["purpose"], "newsletter");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

            // Granted: the handler sees the user and the grant.
            let grant = ledger
                .grant(user, "newsletter", web_source())
                .await
                .unwrap();
            let res = call_service(&app, with_cookie("/newsletter").to_request()).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                text_of(res).await,
                format!("{user} Some({})", grant.record.position().seq)
            );

            // Withdrawn: 403 again.
            ledger
                .withdraw(user, "newsletter", web_source())
                .await
                .unwrap();
            let res = call_service(&app, with_cookie("/newsletter").to_request()).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN);

            // A contract basis needs no record.
            let res = call_service(&app, with_cookie("/billing").to_request()).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(text_of(res).await, format!("{user} None"));
        });
    }

    #[test]
    fn store_failure_is_unavailable_and_missing_ledger_internal() {
        run(async {
            let ciam = engine();
            // A real SQLite consent store whose pool is closed: every read fails.
            let store = Arc::new(
                SqliteConsentStore::connect("sqlite::memory:")
                    .await
                    .unwrap(),
            );
            let app = app!(ciam, Some(ledger(store.clone())));
            let (cookie, _) = sign_in(&app, "/auth", "storefail@example.com").await;
            store.close().await;
            for path in ["/newsletter", "/billing"] {
                let res = call_service(
                    &app,
                    get(path)
                        .insert_header((header::COOKIE, cookie.clone()))
                        .to_request(),
                )
                .await;
                assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
                assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
                assert_eq!(json_of(res).await["error"], "unavailable");
            }

            let app = app!(ciam, None::<ConsentLedger>);
            let (cookie, _) = sign_in(&app, "/auth", "noledger@example.com").await;
            let res = call_service(
                &app,
                get("/newsletter")
                    .insert_header((header::COOKIE, cookie))
                    .to_request(),
            )
            .await;
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(json_of(res).await["error"], "internal");
        });
    }
}
