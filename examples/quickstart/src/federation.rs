//! Sign-in with an OpenID Provider: one generic provider named `oidc`, configured by
//! `CIAM_OIDC_ISSUER`, `CIAM_OIDC_CLIENT_ID` and `CIAM_OIDC_CLIENT_SECRET` (and
//! `CIAM_OIDC_NAME` for the button). Its redirect URI is
//! `{CIAM_PUBLIC_URL}/auth/oidc/oidc/callback`; register exactly that at the provider.

use ciam::FederationConfig;
use ciam::oidc::{ProviderConfig, RelyingParty};

/// The provider's name in routes.
pub(crate) const PROVIDER: &str = "oidc";

/// The federation settings, or `None` when `CIAM_OIDC_ISSUER` is not set. Discovers the
/// provider now, so a wrong issuer stops the start with a clear message.
pub(crate) async fn config(
    public_url: &str,
    issuer: Option<&str>,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    display_name: Option<&str>,
) -> Result<Option<FederationConfig>, String> {
    let Some(issuer) = issuer else {
        return Ok(None);
    };
    let client_id = client_id.ok_or("CIAM_OIDC_ISSUER is set but CIAM_OIDC_CLIENT_ID is not")?;
    let mut provider = ProviderConfig::oidc(PROVIDER, issuer, client_id, client_secret);
    provider.redirect_uri = FederationConfig::redirect_uri(public_url, PROVIDER);
    provider.display_name = display_name.unwrap_or("OpenID Connect").to_owned();
    let http = ciam::oidc::default_http_client().map_err(|e| e.to_string())?;
    let rp = RelyingParty::discover(provider, http)
        .await
        .map_err(|e| format!("CIAM_OIDC_ISSUER {issuer}: {e}"))?;
    tracing::info!(issuer, redirect_uri = %rp.config().redirect_uri, "sign-in with OpenID Connect is on");
    FederationConfig::new()
        .with_provider(rp)
        .map(Some)
        .map_err(|e| e.to_string())
}
