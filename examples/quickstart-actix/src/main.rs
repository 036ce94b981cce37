//! The ciam quickstart served by actix-web: the same site, routes and settings as the axum
//! `quickstart` (see its `README.md`), sharing its library for everything but the web
//! framework.
//!
//! - `/auth/...`: ciam-axum's JSON endpoints and the privacy centre's API, through
//!   `ciam_actix::TowerBridge` in an actix scope (what `ciam_actix::scope` does for the auth
//!   endpoints alone);
//! - `/api/me`, `/api/ping`, `/healthz`: native actix handlers with ciam-actix's bearer
//!   extractors;
//! - `/.well-known/jwks.json`: `ciam_actix::jwks_service`;
//! - the HTML pages: the quickstart's page router through `ciam_actix::TowerBridge`;
//! - around everything: `ciam_actix::CiamMiddleware` (session, CSRF, client IP); around the
//!   bridged pages and `/auth`, ciam-axum's `HonourGpcLayer` (`Sec-GPC: 1` withdraws every sale or
//!   share), which reads the caller the middleware resolved.

use std::process::ExitCode;

use actix_web::{App, HttpResponse, HttpServer, web};
use ciam::actix::{BearerAuthenticated, BearerAuthenticatedLive, CiamMiddleware, TowerBridge};
use quickstart::Site;

fn main() -> ExitCode {
    quickstart::init_tracing();
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quickstart-actix: error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn me(BearerAuthenticated(token): BearerAuthenticated) -> HttpResponse {
    HttpResponse::Ok().json(quickstart::api_me(&token))
}

async fn ping(BearerAuthenticatedLive(token): BearerAuthenticatedLive) -> HttpResponse {
    HttpResponse::Ok().json(quickstart::api_ping(&token))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn run() -> Result<(), String> {
    let site = Site::open().await?;
    let ciam = site.ciam().clone();
    // `Sec-GPC: 1` from a signed-in browser withdraws every sale or share.
    let gpc = ciam::axum::HonourGpcLayer::new(site.privacy().clone());
    let pages = TowerBridge::new(site.pages().layer(gpc.clone()));
    let auth = TowerBridge::new(
        ciam::axum::router(ciam.clone())
            .merge(site.privacy_api(""))
            .layer(gpc),
    );
    let hops = site.trusted_proxy_hops();

    let server = HttpServer::new(move || {
        App::new()
            // Outside the middleware: a load balancer's or orchestrator's probe reaches the
            // process directly, without the proxies' X-Forwarded-For, which it would refuse.
            .route("/healthz", web::get().to(healthz))
            .service(
                web::scope("")
                    .route("/api/me", web::get().to(me))
                    .route("/api/ping", web::post().to(ping))
                    .service(ciam::actix::jwks_service(ciam.clone()))
                    .service(web::scope("/auth").default_service(auth.clone().scoped_route()))
                    .default_service(pages.clone().route())
                    .wrap(CiamMiddleware::new(ciam.clone()).trusted_proxy_hops(hops)),
            )
    })
    .disable_signals()
    .shutdown_timeout(10)
    .bind(site.bind())
    .map_err(|e| format!("cannot listen on {} (CIAM_BIND): {e}", site.bind()))?;
    for address in server.addrs() {
        tracing::info!(%address, public_url = %site.public_url(), "quickstart-actix listening");
    }
    let server = server.run();
    let handle = server.handle();
    // Ctrl-C and SIGTERM as in the axum quickstart: requests in progress finish.
    actix_web::rt::spawn(async move {
        quickstart::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await.map_err(|e| format!("server error: {e}"))?;
    site.close().await;
    tracing::info!("quickstart-actix stopped");
    Ok(())
}
