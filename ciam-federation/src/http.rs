//! The few HTTP calls the relying party makes (discovery, JWKS, GitHub's API), through one
//! `reqwest::Client` that never follows redirects.

use std::time::Duration;

use crate::error::{FederationError, Result};

/// Largest provider document read (discovery, JWKS, user info).
const MAX_BODY: usize = 512 * 1024;

/// A client fit for talking to providers: no redirects (a token endpoint that redirects is a
/// misconfiguration or an attack), 10 s timeouts.
pub fn default_http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("ciam-federation/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FederationError::Http(e.to_string()))
}

/// GETs JSON, with an optional bearer token; refuses non-2xx answers and bodies over 512 KiB.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<serde_json::Value> {
    let mut req = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| FederationError::Http(e.without_url().to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FederationError::Http(format!("{url} answered {status}")));
    }
    if resp.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(FederationError::Http(format!("{url}: body too large")));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| FederationError::Http(e.without_url().to_string()))?;
    if body.len() > MAX_BODY {
        return Err(FederationError::Http(format!("{url}: body too large")));
    }
    serde_json::from_slice(&body)
        .map_err(|e| FederationError::Http(format!("{url}: not JSON: {e}")))
}
