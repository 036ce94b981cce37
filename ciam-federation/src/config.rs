//! Provider configuration and the presets (Google, Apple, Microsoft Entra, GitHub, any OIDC
//! issuer), and per-tenant enterprise connections chosen by e-mail domain.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::apple::AppleClientSecret;
use crate::error::{FederationError, Result};

/// How the relying party talks to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OpenID Connect: discovery, ID token, nonce.
    OpenIdConnect,
    /// GitHub: OAuth 2.0 only; the user and the primary verified e-mail come from its REST API.
    GitHub {
        /// The API base, `https://api.github.com` (GitHub Enterprise: `https://HOST/api/v3`).
        api_base: String,
    },
}

/// How the client authenticates at the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A client secret (`client_secret_basic` when the provider supports it, else `_post`).
    Secret(Zeroizing<String>),
    /// A client secret always sent in the request body (`client_secret_post`).
    SecretPost(Zeroizing<String>),
    /// Sign in with Apple: an ES256 JWT made fresh for each exchange from the team's key.
    Apple(AppleClientSecret),
    /// A public client: PKCE only.
    None,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret(***)"),
            Self::SecretPost(_) => f.write_str("SecretPost(***)"),
            Self::Apple(a) => f.debug_tuple("Apple").field(a).finish(),
            Self::None => f.write_str("None"),
        }
    }
}

/// Where the provider puts the authorization response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// In the query of a GET to the redirect URI (the default).
    Query,
    /// In a cross-site form POST to the redirect URI (Apple with the `name`/`email` scopes).
    FormPost,
}

/// Which tenants of a multi-tenant issuer (Microsoft Entra `common` / `organizations`) are
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantPolicy {
    /// Any tenant (the `{tenantid}` of the issuer template is replaced by the token's `tid`).
    Any,
    /// Only these tenant ids (lower-case GUIDs).
    Only(Vec<String>),
}

/// Multi-tenant issuer templating: the discovered issuer holds a placeholder that each
/// token's `tid` claim fills before the exact comparison with `iss`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiTenant {
    /// The placeholder in the issuer, `{tenantid}` for Entra.
    pub placeholder: String,
    /// Which tenants are accepted.
    pub tenants: TenantPolicy,
}

/// Which claims become which profile fields, and whether `email_verified` is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The claim holding the e-mail address (`email`).
    pub email: String,
    /// The claim asserting the address is verified (`email_verified`). `None`: the provider
    /// never asserts it (Entra), so e-mails from it are treated as unverified.
    pub email_verified: Option<String>,
    /// The display name claim (`name`).
    pub name: String,
    /// Extra claims copied into [`FederatedProfile::attributes`](crate::FederatedProfile),
    /// claim name to attribute name.
    pub attributes: BTreeMap<String, String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            email: "email".to_owned(),
            email_verified: Some("email_verified".to_owned()),
            name: "name".to_owned(),
            attributes: BTreeMap::new(),
        }
    }
}

/// One provider: Google, Apple, an enterprise IdP, … Build it with a preset, then adjust.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The name used in routes and stored links' labels (`google`, `acme`), `[a-z0-9_-]+`.
    pub name: String,
    /// The name shown on buttons ("Google").
    pub display_name: String,
    /// OIDC or GitHub.
    pub protocol: Protocol,
    /// The issuer, compared exactly with the discovery document and each ID token. For a
    /// multi-tenant issuer, the template (`https://login.microsoftonline.com/{tenantid}/v2.0`).
    pub issuer: String,
    /// Where the discovery document is; default `issuer + /.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// The client id registered with the provider.
    pub client_id: String,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// The exact redirect URI registered with the provider. The engine fills it from its
    /// public URL (`…/auth/oidc/{name}/callback`) when empty.
    pub redirect_uri: String,
    /// The scopes asked for (`openid email profile`).
    pub scopes: Vec<String>,
    /// Query or form_post.
    pub response_mode: ResponseMode,
    /// Multi-tenant issuer templating (Entra), if any.
    pub multi_tenant: Option<MultiTenant>,
    /// `max_age` to send; `auth_time` is then required and checked.
    pub max_age: Option<Duration>,
    /// Clock skew allowed on `exp`, `iat`, `nbf` and `auth_time` (capped at 5 minutes).
    pub leeway: Duration,
    /// An ID token whose `iat` is older than this is refused (default 10 minutes).
    pub max_token_age: Duration,
    /// The JWKS is fetched again on an unknown `kid` at most once per this interval.
    pub jwks_min_refresh: Duration,
    /// Claim mapping.
    pub claims: ClaimMapping,
    /// Keep the provider's access and refresh tokens (sealed at rest by the engine).
    pub keep_tokens: bool,
    /// Sign in with Apple: the name arrives once, in the `user` form field of the first
    /// authorization response, and is read from there.
    pub apple_user_field: bool,
}

/// The issuer key used for GitHub identities (GitHub has no OIDC issuer for sign-in).
pub const GITHUB_ISSUER: &str = "https://github.com";

impl ProviderConfig {
    fn base(name: &str, display: &str, issuer: &str, client_id: &str, auth: ClientAuth) -> Self {
        Self {
            name: name.to_owned(),
            display_name: display.to_owned(),
            protocol: Protocol::OpenIdConnect,
            issuer: issuer.to_owned(),
            discovery_url: None,
            client_id: client_id.to_owned(),
            client_auth: auth,
            redirect_uri: String::new(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            response_mode: ResponseMode::Query,
            multi_tenant: None,
            max_age: None,
            leeway: Duration::from_secs(60),
            max_token_age: Duration::from_secs(600),
            jwks_min_refresh: Duration::from_secs(60),
            claims: ClaimMapping::default(),
            keep_tokens: false,
            apple_user_field: false,
        }
    }

    /// Any OpenID Connect issuer, found by discovery.
    pub fn oidc(name: &str, issuer: &str, client_id: &str, client_secret: Option<&str>) -> Self {
        let auth = match client_secret {
            Some(s) => ClientAuth::Secret(Zeroizing::new(s.to_owned())),
            None => ClientAuth::None,
        };
        Self::base(name, name, issuer, client_id, auth)
    }

    /// Google (`https://accounts.google.com`).
    pub fn google(client_id: &str, client_secret: &str) -> Self {
        Self::base(
            "google",
            "Google",
            "https://accounts.google.com",
            client_id,
            ClientAuth::Secret(Zeroizing::new(client_secret.to_owned())),
        )
    }

    /// Sign in with Apple: form_post response mode, an ES256 client-secret JWT, scopes
    /// `openid email name`; the name is read from the first response's `user` field.
    /// `client_id` is the Services ID.
    pub fn apple(client_id: &str, secret: AppleClientSecret) -> Self {
        let mut c = Self::base(
            "apple",
            "Apple",
            "https://appleid.apple.com",
            client_id,
            ClientAuth::Apple(secret),
        );
        c.scopes = vec!["openid".into(), "email".into(), "name".into()];
        c.response_mode = ResponseMode::FormPost;
        c.apple_user_field = true;
        c
    }

    /// Microsoft Entra ID. `tenant` is a tenant id or domain for a single-tenant app, or
    /// `common` / `organizations` for a multi-tenant one, whose issuer is the template
    /// `https://login.microsoftonline.com/{tenantid}/v2.0` (filled by each token's `tid`).
    /// Entra does not assert `email_verified`, so its e-mails count as unverified.
    pub fn microsoft_entra(
        tenant: &str,
        client_id: &str,
        client_secret: &str,
        tenants: TenantPolicy,
    ) -> Self {
        let multi = matches!(tenant, "common" | "organizations" | "consumers");
        let issuer = if multi {
            "https://login.microsoftonline.com/{tenantid}/v2.0".to_owned()
        } else {
            format!("https://login.microsoftonline.com/{tenant}/v2.0")
        };
        let mut c = Self::base(
            "microsoft",
            "Microsoft",
            &issuer,
            client_id,
            ClientAuth::Secret(Zeroizing::new(client_secret.to_owned())),
        );
        c.discovery_url = Some(format!(
            "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
        ));
        if multi {
            c.multi_tenant = Some(MultiTenant {
                placeholder: "{tenantid}".to_owned(),
                tenants,
            });
        }
        c.claims.email_verified = None;
        c
    }

    /// GitHub: OAuth 2.0 only; the identity is the numeric user id, and the e-mail is the
    /// primary verified address from `GET /user/emails`.
    pub fn github(client_id: &str, client_secret: &str) -> Self {
        let mut c = Self::base(
            "github",
            "GitHub",
            GITHUB_ISSUER,
            client_id,
            ClientAuth::Secret(Zeroizing::new(client_secret.to_owned())),
        );
        c.protocol = Protocol::GitHub {
            api_base: "https://api.github.com".to_owned(),
        };
        c.scopes = vec!["read:user".into(), "user:email".into()];
        c
    }

    /// Checks the configuration: a usable name, HTTPS URLs (plain HTTP only to loopback).
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(FederationError::Config(format!(
                "provider name {:?} must be [a-z0-9_-]{{1,64}}",
                self.name
            )));
        }
        if self.client_id.is_empty() {
            return Err(FederationError::Config("client_id is empty".to_owned()));
        }
        if let Protocol::GitHub { api_base } = &self.protocol {
            check_url(api_base)?;
        } else {
            check_url(&self.issuer.replace("{tenantid}", "tenant"))?;
        }
        if let Some(d) = &self.discovery_url {
            check_url(d)?;
        }
        if !self.redirect_uri.is_empty() {
            check_url(&self.redirect_uri)?;
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(FederationError::Config(
                "leeway is capped at 300 s".to_owned(),
            ));
        }
        Ok(())
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        self.discovery_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            )
        })
    }
}

/// A URL must be HTTPS, or HTTP to a loopback host (tests, local development).
pub(crate) fn check_url(raw: &str) -> Result<url::Url> {
    let u = url::Url::parse(raw).map_err(|e| FederationError::Config(format!("{raw:?}: {e}")))?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback(&u) => Ok(u),
        _ => Err(FederationError::Config(format!(
            "{raw:?} must be https (http only to loopback)"
        ))),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Per-tenant enterprise connections: a business customer's own IdP, chosen by the domain of
/// the e-mail address typed on the sign-in page. Domains match exactly (a subdomain is a
/// different domain), compared lower-case.
#[derive(Debug, Clone, Default)]
pub struct EnterpriseDirectory {
    by_domain: BTreeMap<String, String>,
}

impl EnterpriseDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `domain` to the provider named `provider`. A domain maps to one provider; a
    /// second claim of the same domain is refused.
    pub fn add(&mut self, domain: &str, provider: &str) -> Result<()> {
        let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.is_empty() || d.contains('@') || !d.contains('.') {
            return Err(FederationError::Config(format!(
                "{domain:?} is not a domain"
            )));
        }
        if self.by_domain.contains_key(&d) {
            return Err(FederationError::Config(format!(
                "{d} already has a connection"
            )));
        }
        self.by_domain.insert(d, provider.to_owned());
        Ok(())
    }

    /// The provider for this e-mail address, if its domain has a connection.
    pub fn provider_for_email(&self, email: &str) -> Option<&str> {
        let (_, domain) = email.trim().rsplit_once('@')?;
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.by_domain.get(&d).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_refuse_plain_http() {
        assert!(ProviderConfig::google("id", "s").validate().is_ok());
        assert!(ProviderConfig::github("id", "s").validate().is_ok());
        let e = ProviderConfig::microsoft_entra("common", "id", "s", TenantPolicy::Any);
        assert!(e.validate().is_ok());
        assert!(e.multi_tenant.is_some());
        assert_eq!(e.claims.email_verified, None);
        let single = ProviderConfig::microsoft_entra(
            "contoso.onmicrosoft.com",
            "id",
            "s",
            TenantPolicy::Any,
        );
        assert!(single.multi_tenant.is_none());
        assert!(
            ProviderConfig::oidc("x", "http://idp.example.com", "id", None)
                .validate()
                .is_err()
        );
        assert!(
            ProviderConfig::oidc("x", "http://127.0.0.1:9", "id", None)
                .validate()
                .is_ok()
        );
        assert!(
            ProviderConfig::oidc("Bad Name", "https://idp.example.com", "id", None)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn enterprise_directory_matches_domains_exactly() {
        let mut d = EnterpriseDirectory::new();
        d.add("Acme.example", "acme").unwrap();
        assert!(d.add("acme.example", "other").is_err());
        assert!(d.add("not-a-domain", "x").is_err());
        assert_eq!(d.provider_for_email("bob@ACME.example"), Some("acme"));
        assert_eq!(d.provider_for_email("bob@eu.acme.example"), None);
        assert_eq!(d.provider_for_email("bob@acme.example.evil"), None);
        assert_eq!(d.provider_for_email("no-at-sign"), None);
    }
}
