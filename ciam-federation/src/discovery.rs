//! OpenID Connect Discovery 1.0: the provider metadata, with the issuer compared exactly.

use serde::Deserialize;

use crate::config::{ProviderConfig, check_url};
use crate::error::{FederationError, Result};
use crate::http::get_json;

/// The parts of the provider metadata the relying party uses (Discovery 1.0 §3, RFC 8414,
/// RFC 9207 §3).
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier; equals the configured issuer exactly.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The JWKS URL (absent for OAuth-2-only providers).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The user-info endpoint.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The ID token signing algorithms the provider may use (default `RS256`).
    #[serde(default = "default_algs")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the token endpoint (default `client_secret_basic`).
    #[serde(default = "default_auth_methods")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Response modes the provider supports.
    #[serde(default)]
    pub response_modes_supported: Vec<String>,
    /// PKCE methods the provider supports.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the provider puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

fn default_algs() -> Vec<String> {
    vec!["RS256".to_owned()]
}

fn default_auth_methods() -> Vec<String> {
    vec!["client_secret_basic".to_owned()]
}

impl ProviderMetadata {
    /// Fetches the discovery document of `config` and checks it: the `issuer` in it must be
    /// exactly the configured one (Discovery 1.0 §4.3), endpoints HTTPS (HTTP to loopback only),
    /// and `jwks_uri` present.
    pub async fn discover(http: &reqwest::Client, config: &ProviderConfig) -> Result<Self> {
        let url = check_url(&config.discovery_url())?;
        let doc: Self = get_json(http, url.as_str(), None).await.and_then(|v| {
            serde_json::from_value(v).map_err(|e| FederationError::Discovery(e.to_string()))
        })?;
        if doc.issuer != config.issuer {
            return Err(FederationError::DiscoveryIssuerMismatch {
                expected: config.issuer.clone(),
                found: doc.issuer,
            });
        }
        check_url(&doc.authorization_endpoint)?;
        check_url(&doc.token_endpoint)?;
        match &doc.jwks_uri {
            Some(j) => {
                check_url(j)?;
            }
            None => return Err(FederationError::Discovery("jwks_uri missing".to_owned())),
        }
        if !doc.code_challenge_methods_supported.is_empty()
            && !doc
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        {
            return Err(FederationError::Discovery(
                "the provider does not support PKCE S256".to_owned(),
            ));
        }
        Ok(doc)
    }

    /// GitHub's fixed endpoints (it publishes no discovery document for OAuth apps).
    pub fn github() -> Self {
        Self {
            issuer: crate::config::GITHUB_ISSUER.to_owned(),
            authorization_endpoint: "https://github.com/login/oauth/authorize".to_owned(),
            token_endpoint: "https://github.com/login/oauth/access_token".to_owned(),
            jwks_uri: None,
            userinfo_endpoint: None,
            id_token_signing_alg_values_supported: Vec::new(),
            token_endpoint_auth_methods_supported: vec!["client_secret_post".to_owned()],
            response_modes_supported: vec!["query".to_owned()],
            code_challenge_methods_supported: vec!["S256".to_owned()],
            authorization_response_iss_parameter_supported: false,
        }
    }
}
