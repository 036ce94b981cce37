//! The framework-neutral parts of the ciam quickstart, shared by the axum binary (`quickstart`)
//! and the actix one (`quickstart-actix`): the settings from the environment, the storage, the
//! engine, and the site's pages and API answers.
//!
//! The pages are an axum [`Router`] (actix serves them through `ciam_actix::TowerBridge`);
//! each binary adds only its own routing, middleware and server.

mod api;
mod config;
mod consent;
mod dev_keys;
mod federation;
mod pages;
mod passkeys;
mod privacy_pages;
mod profile;
mod security;
mod storage;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use ciam::Ciam;
use ciam::mail::{ConsoleMailer, Mailer, SmtpMailer};
use ciam::tokens::AccessToken;
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use config::Config;
use storage::Storage;

/// The application name used in mail (and refused inside passwords).
pub const APP_NAME: &str = "ciam quickstart";

/// Logs to stderr with the `RUST_LOG` filter (default `info`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
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

/// The running site: its settings, its storage and its engine.
pub struct Site {
    config: Config,
    storage: Storage,
    ciam: Ciam,
    consent: consent::Consent,
    maintenance: tokio::task::JoinHandle<()>,
}

/// How often the site deletes expired sessions and one-time challenges.
const MAINTENANCE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs [`Ciam::purge_expired`] now and then every [`MAINTENANCE_EVERY`], until aborted.
fn spawn_maintenance(ciam: Ciam) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(MAINTENANCE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match ciam.purge_expired().await {
                Ok(report) => tracing::debug!(?report, "purged expired records"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge expired records; retrying later")
                }
            }
        }
    })
}

impl Site {
    /// Reads the settings from the environment (see `README.md`), opens the storage and
    /// builds the engine. `Err` says, for the operator, what is wrong.
    pub async fn open() -> Result<Self, String> {
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

        let consent = consent::open(&config.database_url).await?;
        // The master key wrapping each user's audit data key: the audit log's IP, user agent
        // and detail are sealed under it, and erasure destroys the user's key.
        let audit_key = std::env::var("CIAM_AUDIT_KEY")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let audit_key = dev_keys::key("CIAM_AUDIT_KEY", audit_key.as_deref())?;

        let passkeys = passkeys::config(&config.public_url, config.passkey_key.as_deref())?;
        let builder = Ciam::builder()
            .backend(Arc::clone(&storage.backend))
            .passkeys(passkeys)
            .consent_gate(consent.gate())
            .export_contributor(consent.privacy_hooks())
            .erasure_hook(consent.privacy_hooks())
            .profile_schema(profile::schema()?)
            .audit_master_key(ciam::shred::MasterKey::from_bytes(&audit_key));
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
        let maintenance = spawn_maintenance(ciam.clone());
        Ok(Self {
            config,
            storage,
            ciam,
            consent,
            maintenance,
        })
    }

    /// The engine.
    pub fn ciam(&self) -> &Ciam {
        &self.ciam
    }

    /// `CIAM_BIND`: where to listen.
    pub fn bind(&self) -> SocketAddr {
        self.config.bind
    }

    /// `CIAM_PUBLIC_URL`: where users reach the site.
    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// `CIAM_TRUSTED_PROXY_HOPS`: how many reverse proxies append to `X-Forwarded-For`.
    pub fn trusted_proxy_hops(&self) -> usize {
        self.config.trusted_proxy_hops
    }

    /// The HTML pages and their script (`/`, `/login`, `/account`, ...; see `README.md`),
    /// relying on the ciam layer (or the actix middleware) around them.
    pub fn pages(&self) -> Router {
        pages::routes().with_state(self.ciam.clone())
    }

    /// `GET /api/me` and `POST /api/ping`, for the axum binary (see [`api_me`] and
    /// [`api_ping`]).
    pub fn api(&self) -> Router {
        api::routes().with_state(self.ciam.clone())
    }

    /// The privacy centre's API (`/consents`, receipts; see `ciam_axum::privacy`) with its
    /// routes at `prefix` (empty for a router to nest), beside the auth router at the same
    /// prefix.
    pub fn privacy_api(&self, prefix: &str) -> Router {
        ciam::axum::privacy_router_at(prefix, self.ciam.clone(), self.consent.privacy.clone())
    }

    /// The privacy endpoints' configuration (for `ciam::axum::HonourGpcLayer` around the site).
    pub fn privacy(&self) -> &ciam::axum::Privacy {
        &self.consent.privacy
    }

    /// Closes the storage cleanly.
    pub async fn close(self) {
        self.maintenance.abort();
        self.storage.close().await;
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The answer of `GET /api/me` for the caller of `token`.
pub fn api_me(token: &AccessToken) -> Value {
    json!({
        "user_id": token.user_id,
        "session_id": token.session_id,
        "aal": token.aal.level(),
    })
}

/// The answer of `POST /api/ping` for the caller of `token`.
pub fn api_ping(token: &AccessToken) -> Value {
    json!({ "pong": token.user_id })
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
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
