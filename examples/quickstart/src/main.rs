//! The ciam quickstart: a small site with sign-up, e-mail verification, sign-in, sessions and
//! password flows, on SQLite. See `README.md` for the settings and routes.

mod api;
mod config;
mod federation;
mod pages;
mod passkeys;
mod security;
mod storage;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use ciam::Ciam;
use ciam::axum::CiamLayer;
use ciam::mail::{ConsoleMailer, Mailer, SmtpMailer};
use tracing_subscriber::EnvFilter;

use config::Config;
use storage::Storage;

/// The application name used in mail (and refused inside passwords).
const APP_NAME: &str = "ciam quickstart";

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quickstart: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn run() -> Result<(), String> {
    let config = Config::from_env()?;

    let storage = Storage::open(&config.database_url, config.redis_url.as_deref()).await?;

    let mailer: Arc<dyn Mailer> = match &config.smtp_url {
        Some(url) => {
            let mailer = SmtpMailer::from_url(url, &config.mail_from).map_err(|e| {
                format!(
                    "CIAM_SMTP_URL / CIAM_MAIL_FROM cannot be used: {}",
                    chain(&e)
                )
            })?;
            tracing::info!("mail goes to the SMTP server in CIAM_SMTP_URL");
            Arc::new(mailer)
        }
        None => {
            tracing::warn!(
                "CIAM_SMTP_URL is not set: mail (with live links) is printed to the console"
            );
            Arc::new(ConsoleMailer)
        }
    };

    let passkeys = passkeys::config(&config.public_url, config.passkey_key.as_deref())?;
    let builder = Ciam::builder()
        .backend(Arc::clone(&storage.backend))
        .passkeys(passkeys);
    let builder = security::configure(
        builder,
        config.sealing_key.as_deref(),
        config.risk,
        config.breached_dir.as_deref(),
    )?;
    let builder = match federation::config(
        &config.public_url,
        config.oidc_issuer.as_deref(),
        config.oidc_client_id.as_deref(),
        config.oidc_client_secret.as_deref(),
        config.oidc_name.as_deref(),
    )
    .await?
    {
        Some(federation) => builder.federation(federation),
        None => builder,
    };
    let tokens = api::token_config(config.token_key.as_deref(), config.token_refresh_grace)?;
    let ciam = builder
        .tokens(tokens)
        .app_name(APP_NAME)
        .public_url(config.public_url.clone())
        .mailer(mailer)
        .build()
        .map_err(|e| format!("invalid configuration: {}", chain(&e)))?;

    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(pages::routes())
        .merge(api::routes())
        .with_state(ciam.clone())
        .nest("/auth", ciam::axum::router(ciam.clone()))
        .merge(ciam::axum::jwks_router(ciam.clone()))
        .layer(CiamLayer::new(ciam).trusted_proxy_hops(config.trusted_proxy_hops));

    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {} (CIAM_BIND): {e}", config.bind))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, public_url = %config.public_url, "quickstart listening");

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))?;
    storage.close().await;
    tracing::info!("quickstart stopped");
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
