//! The ciam quickstart: a small site with sign-up, e-mail verification, sign-in, sessions and
//! password flows, on SQLite, served by axum. See `README.md` for the settings and routes.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;
use ciam::axum::{CiamLayer, HonourGpcLayer};
use quickstart::Site;

#[tokio::main]
async fn main() -> ExitCode {
    quickstart::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quickstart: error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let site = Site::open().await?;
    let ciam = site.ciam().clone();

    let app = Router::new()
        .merge(site.pages())
        .merge(site.api())
        // The auth and privacy endpoints registered at /auth (no `nest`: it would rewrite
        // the URI of every request it routes).
        .merge(ciam::axum::router_at("/auth", ciam.clone()))
        .merge(site.privacy_api("/auth"))
        .merge(ciam::axum::jwks_router(ciam.clone()))
        // One layer tuple, one boxed route per endpoint: CiamLayer (outermost) resolves the
        // caller, then `Sec-GPC: 1` from a signed-in browser withdraws every sale or share,
        // on any page.
        .layer((
            CiamLayer::new(ciam).trusted_proxy_hops(site.trusted_proxy_hops()),
            HonourGpcLayer::new(site.privacy().clone()),
        ))
        // Outside the layer: a load balancer's or orchestrator's probe reaches the process
        // directly, without the proxies' X-Forwarded-For, which the layer would refuse.
        .route("/healthz", get(|| async { "ok" }));

    let listener = tokio::net::TcpListener::bind(site.bind())
        .await
        .map_err(|e| format!("cannot listen on {} (CIAM_BIND): {e}", site.bind()))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, public_url = %site.public_url(), "quickstart listening");

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(quickstart::shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))?;
    site.close().await;
    tracing::info!("quickstart stopped");
    Ok(())
}
