//! The relying party for one provider: the authorization request, the response, the code
//! exchange and the ID token.

use std::fmt;

use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::apple::parse_user_field;
use crate::config::{ClientAuth, Protocol, ProviderConfig, ResponseMode, check_url};
use crate::discovery::ProviderMetadata;
use crate::error::{FederationError, IdTokenError, Result};
use crate::http::get_json;
use crate::id_token::{self, Expectations, IdTokenClaims};
use crate::jwks::JwksCache;
use crate::profile::{FederatedProfile, ProviderTokens};

/// What must be remembered server-side between the redirect to the provider and the callback:
/// the state, the nonce and the PKCE verifier. Store it under a hash of `state`, single-use.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PendingAuthorization {
    /// The provider's name.
    pub provider: String,
    /// `state` sent (256 random bits, base64url).
    pub state: String,
    /// `nonce` sent (256 random bits, base64url; unused for GitHub).
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// The redirect URI sent (the code exchange repeats it exactly).
    pub redirect_uri: String,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The parameters of the authorization response (query or form_post), each at most once.
#[derive(Clone, Default)]
pub struct AuthorizationResponse {
    /// `code`.
    pub code: Option<Zeroizing<String>>,
    /// `state`.
    pub state: Option<String>,
    /// RFC 9207 `iss`.
    pub iss: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// Apple's `user` field (first sign-in only; unsigned).
    pub user: Option<String>,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("code", &self.code.as_ref().map(|_| "***"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl AuthorizationResponse {
    /// Reads the response parameters; a repeated parameter is refused (RFC 6749 §3.1).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut r = Self::default();
        for (k, v) in pairs {
            let k = k.as_ref();
            let v: String = v.into();
            if v.len() > 8192 {
                return Err(FederationError::RepeatedParameter(format!(
                    "{k} (too long)"
                )));
            }
            let slot = match k {
                "code" => {
                    if r.code.is_some() {
                        return Err(FederationError::RepeatedParameter(k.to_owned()));
                    }
                    r.code = Some(Zeroizing::new(v));
                    continue;
                }
                "state" => &mut r.state,
                "iss" => &mut r.iss,
                "error" => &mut r.error,
                "error_description" => &mut r.error_description,
                "user" => &mut r.user,
                _ => continue,
            };
            if slot.is_some() {
                return Err(FederationError::RepeatedParameter(k.to_owned()));
            }
            *slot = Some(v);
        }
        Ok(r)
    }
}

/// The `id_token` field of the token response.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    /// The ID token, compact JWS.
    #[serde(default)]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// The outcome of a completed authorization: who signed in, and the tokens if kept.
#[derive(Debug, Clone)]
pub struct FederatedLogin {
    /// The provider's name.
    pub provider: String,
    /// The mapped profile.
    pub profile: FederatedProfile,
    /// The provider's tokens, only when the provider is configured with `keep_tokens`.
    pub tokens: Option<ProviderTokens>,
}

/// An authorization request ready to send the browser to.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// The URL to redirect the browser to.
    pub url: url::Url,
    /// What to keep server-side until the callback.
    pub pending: PendingAuthorization,
}

/// The relying party for one provider, after discovery.
#[derive(Debug)]
pub struct RelyingParty {
    config: ProviderConfig,
    metadata: ProviderMetadata,
    algorithms: Vec<String>,
    jwks: Option<JwksCache>,
    http: reqwest::Client,
}

fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| FederationError::Config("no randomness".to_owned()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl RelyingParty {
    /// Discovers the provider (OIDC) or takes GitHub's fixed endpoints, and checks the
    /// configuration. `http` should not follow redirects ([`crate::default_http_client`]).
    pub async fn discover(config: ProviderConfig, http: reqwest::Client) -> Result<Self> {
        config.validate()?;
        let metadata = match &config.protocol {
            Protocol::OpenIdConnect => ProviderMetadata::discover(&http, &config).await?,
            Protocol::GitHub { .. } => ProviderMetadata::github(),
        };
        Self::from_metadata(config, metadata, http)
    }

    /// A relying party from metadata already at hand (checked like discovered metadata, so a
    /// cached document stays bound to the configured issuer).
    pub fn from_metadata(
        config: ProviderConfig,
        metadata: ProviderMetadata,
        http: reqwest::Client,
    ) -> Result<Self> {
        config.validate()?;
        if metadata.issuer != config.issuer {
            return Err(FederationError::DiscoveryIssuerMismatch {
                expected: config.issuer.clone(),
                found: metadata.issuer,
            });
        }
        let algorithms =
            id_token::allowed_algorithms(&metadata.id_token_signing_alg_values_supported);
        let jwks = match (&config.protocol, &metadata.jwks_uri) {
            (Protocol::OpenIdConnect, Some(uri)) => {
                check_url(uri)?;
                Some(JwksCache::new(uri.clone(), config.jwks_min_refresh))
            }
            (Protocol::OpenIdConnect, None) => {
                return Err(FederationError::Discovery("jwks_uri missing".to_owned()));
            }
            _ => None,
        };
        if matches!(config.protocol, Protocol::OpenIdConnect) && algorithms.is_empty() {
            return Err(FederationError::Discovery(
                "the provider signs ID tokens with no algorithm we accept".to_owned(),
            ));
        }
        Ok(Self {
            config,
            metadata,
            algorithms,
            jwks,
            http,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The provider's metadata.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// The ID token algorithms accepted from this provider.
    pub fn algorithms(&self) -> &[String] {
        &self.algorithms
    }

    /// The JWKS cache (OIDC providers).
    pub fn jwks(&self) -> Option<&JwksCache> {
        self.jwks.as_ref()
    }

    fn redirect_uri(&self) -> Result<&str> {
        if self.config.redirect_uri.is_empty() {
            return Err(FederationError::Config(format!(
                "provider {} has no redirect_uri",
                self.config.name
            )));
        }
        Ok(&self.config.redirect_uri)
    }

    /// Builds the authorization request: `response_type=code`, PKCE S256, fresh `state` and
    /// `nonce`, the exact redirect URI, `response_mode=form_post` where configured, `max_age`,
    /// and an optional `login_hint` / `prompt`.
    pub fn authorization_request(
        &self,
        login_hint: Option<&str>,
        prompt: Option<&str>,
    ) -> Result<AuthorizationRequest> {
        let redirect_uri = self.redirect_uri()?.to_owned();
        let state = random_token()?;
        let nonce = random_token()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut url = check_url(&self.metadata.authorization_endpoint)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &self.config.client_id);
            q.append_pair("redirect_uri", &redirect_uri);
            q.append_pair("scope", &self.config.scopes.join(" "));
            q.append_pair("state", &state);
            if matches!(self.config.protocol, Protocol::OpenIdConnect) {
                q.append_pair("nonce", &nonce);
            }
            q.append_pair("code_challenge", challenge.as_str());
            q.append_pair("code_challenge_method", "S256");
            if self.config.response_mode == ResponseMode::FormPost {
                q.append_pair("response_mode", "form_post");
            }
            if let Some(max_age) = self.config.max_age {
                q.append_pair("max_age", &max_age.as_secs().to_string());
            }
            if let Some(h) = login_hint {
                q.append_pair("login_hint", h);
            }
            if let Some(p) = prompt {
                q.append_pair("prompt", p);
            }
        }
        Ok(AuthorizationRequest {
            url,
            pending: PendingAuthorization {
                provider: self.config.name.clone(),
                state,
                nonce,
                pkce_verifier: verifier.secret().clone(),
                redirect_uri,
            },
        })
    }

    /// Checks the authorization response against what was sent: same provider, same `state`
    /// (constant time), RFC 9207 `iss` (required when the provider advertises it, and compared
    /// whenever sent), then the provider's error, then the code.
    pub fn check_response(
        &self,
        pending: &PendingAuthorization,
        response: &AuthorizationResponse,
    ) -> Result<Zeroizing<String>> {
        if pending.provider != self.config.name {
            return Err(FederationError::StateMismatch);
        }
        match &response.state {
            Some(s) if ct_eq(s, &pending.state) => {}
            Some(_) => return Err(FederationError::StateMismatch),
            None => return Err(FederationError::MissingParameter("state")),
        }
        match &response.iss {
            Some(iss) => {
                let ok = match &self.config.multi_tenant {
                    None => iss == &self.metadata.issuer,
                    Some(mt) => {
                        // The tenant's issuer: the template with a GUID in the placeholder.
                        let mut claims = serde_json::Map::new();
                        let (pre, post) = self
                            .metadata
                            .issuer
                            .split_once(&mt.placeholder)
                            .unwrap_or((&self.metadata.issuer, ""));
                        let tid = iss
                            .strip_prefix(pre)
                            .and_then(|r| r.strip_suffix(post))
                            .unwrap_or_default();
                        claims.insert("tid".to_owned(), serde_json::Value::String(tid.to_owned()));
                        id_token::expected_issuer(&self.metadata.issuer, Some(mt), &claims)
                            .is_ok_and(|e| &e == iss)
                    }
                };
                if !ok {
                    return Err(FederationError::ResponseIssuerMismatch);
                }
            }
            None if self.metadata.authorization_response_iss_parameter_supported => {
                return Err(FederationError::ResponseIssuerMismatch);
            }
            None => {}
        }
        if let Some(error) = &response.error {
            return Err(FederationError::Provider {
                error: error.chars().take(64).collect(),
                description: response
                    .error_description
                    .as_ref()
                    .map(|d| d.chars().take(256).collect()),
            });
        }
        response
            .code
            .clone()
            .ok_or(FederationError::MissingParameter("code"))
    }

    fn client_secret(&self, now: i64) -> Result<Option<ClientSecret>> {
        Ok(match &self.config.client_auth {
            ClientAuth::Secret(s) | ClientAuth::SecretPost(s) => {
                Some(ClientSecret::new(s.to_string()))
            }
            ClientAuth::Apple(a) => Some(ClientSecret::new(
                a.client_secret(&self.config.client_id, now)?,
            )),
            ClientAuth::None => None,
        })
    }

    /// Exchanges the code at the token endpoint (oauth2 crate; PKCE verifier; client
    /// authentication as the provider supports it).
    pub async fn exchange_code(
        &self,
        pending: &PendingAuthorization,
        code: &str,
        now: i64,
    ) -> Result<OidcTokenResponseParts> {
        let token_url = TokenUrl::new(self.metadata.token_endpoint.clone())
            .map_err(|e| FederationError::Config(e.to_string()))?;
        let redirect = RedirectUrl::new(pending.redirect_uri.clone())
            .map_err(|e| FederationError::Config(e.to_string()))?;
        let basic = self
            .metadata
            .token_endpoint_auth_methods_supported
            .iter()
            .any(|m| m == "client_secret_basic")
            && matches!(self.config.client_auth, ClientAuth::Secret(_));
        let mut client = oauth2::Client::<
            BasicErrorResponse,
            OidcTokenResponse,
            BasicTokenIntrospectionResponse,
            StandardRevocableToken,
            BasicRevocationErrorResponse,
            EndpointNotSet,
            EndpointNotSet,
            EndpointNotSet,
            EndpointNotSet,
            EndpointNotSet,
        >::new(ClientId::new(self.config.client_id.clone()))
        .set_token_uri(token_url)
        .set_redirect_uri(redirect)
        .set_auth_type(if basic {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        });
        if let Some(secret) = self.client_secret(now)? {
            client = client.set_client_secret(secret);
        }
        let resp = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    FederationError::TokenExchange(r.error().to_string())
                }
                RequestTokenError::Request(r) => FederationError::Http(r.to_string()),
                RequestTokenError::Parse(p, _) => {
                    FederationError::TokenExchange(format!("unparsable answer: {p}"))
                }
                RequestTokenError::Other(o) => FederationError::TokenExchange(o),
            })?;
        Ok(OidcTokenResponseParts {
            access_token: Zeroizing::new(resp.access_token().secret().clone()),
            refresh_token: resp
                .refresh_token()
                .map(|r| Zeroizing::new(r.secret().clone())),
            expires_at: resp
                .expires_in()
                .map(|d| now.saturating_add(d.as_secs() as i64)),
            scopes: resp
                .scopes()
                .map(|s| s.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default(),
            id_token: resp.extra_fields().id_token.clone().map(Zeroizing::new),
        })
    }

    /// Validates an ID token from this provider (signature with its JWKS, refreshed on an
    /// unknown `kid`; then every claim check of Core §3.1.3.7).
    pub async fn validate_id_token(
        &self,
        token: &str,
        nonce: &str,
        access_token: Option<&str>,
        code: Option<&str>,
        now: i64,
    ) -> Result<IdTokenClaims> {
        let jwks = self.jwks.as_ref().ok_or(FederationError::MissingIdToken)?;
        let (alg, kid) = id_token::peek_header(token)?;
        // Refuse a bad algorithm before touching the network.
        if !self.algorithms.contains(&alg) {
            return Err(IdTokenError::AlgorithmNotAllowed(alg).into());
        }
        let keys = jwks.keys_for(&self.http, kid.as_deref()).await?;
        let exp = Expectations {
            issuer: &self.config.issuer,
            multi_tenant: self.config.multi_tenant.as_ref(),
            client_id: &self.config.client_id,
            algorithms: &self.algorithms,
            nonce,
            access_token,
            code,
            max_age: self.config.max_age,
            leeway: self.config.leeway,
            max_token_age: self.config.max_token_age,
            now,
        };
        Ok(id_token::validate(token, &keys, &exp)?)
    }

    /// The whole callback: checks the response, exchanges the code, validates the ID token (or
    /// reads GitHub's API) and maps the profile.
    pub async fn complete(
        &self,
        pending: &PendingAuthorization,
        response: &AuthorizationResponse,
        now: i64,
    ) -> Result<FederatedLogin> {
        let code = self.check_response(pending, response)?;
        let tokens = self.exchange_code(pending, &code, now).await?;
        let mut profile = match &self.config.protocol {
            Protocol::OpenIdConnect => {
                let id_token = tokens
                    .id_token
                    .as_ref()
                    .ok_or(FederationError::MissingIdToken)?;
                let claims = self
                    .validate_id_token(
                        id_token,
                        &pending.nonce,
                        Some(&tokens.access_token),
                        Some(&code),
                        now,
                    )
                    .await?;
                FederatedProfile::from_claims(
                    &claims.issuer,
                    &claims.subject,
                    &claims.claims,
                    &self.config.claims,
                )
            }
            Protocol::GitHub { api_base } => {
                let base = api_base.trim_end_matches('/');
                let user = get_json(
                    &self.http,
                    &format!("{base}/user"),
                    Some(&tokens.access_token),
                )
                .await?;
                let emails = get_json(
                    &self.http,
                    &format!("{base}/user/emails"),
                    Some(&tokens.access_token),
                )
                .await?;
                FederatedProfile::from_github(&user, &emails)?
            }
        };
        if self.config.apple_user_field
            && let Some((first, last)) = response.user.as_deref().and_then(parse_user_field)
        {
            profile.given_name = profile.given_name.or(first.clone());
            profile.family_name = profile.family_name.or(last.clone());
            if profile.name.is_none() {
                let full = [first, last]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                profile.name = Some(full).filter(|n| !n.is_empty());
            }
        }
        let kept = self.config.keep_tokens.then(|| ProviderTokens {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes.clone(),
        });
        Ok(FederatedLogin {
            provider: self.config.name.clone(),
            profile,
            tokens: kept,
        })
    }
}

/// The token endpoint's answer, secrets zeroized on drop.
#[derive(Clone)]
pub struct OidcTokenResponseParts {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// The refresh token, if any.
    pub refresh_token: Option<Zeroizing<String>>,
    /// Expiry of the access token, Unix seconds.
    pub expires_at: Option<i64>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The ID token (OIDC).
    pub id_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for OidcTokenResponseParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcTokenResponseParts")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_parameters_are_single() {
        let r = AuthorizationResponse::from_pairs([("code", "c"), ("state", "s"), ("other", "x")])
            .unwrap();
        assert_eq!(r.state.as_deref(), Some("s"));
        assert!(!format!("{r:?}").contains("\"c\""));
        assert!(matches!(
            AuthorizationResponse::from_pairs([("state", "a"), ("state", "b")]),
            Err(FederationError::RepeatedParameter(_))
        ));
        assert!(matches!(
            AuthorizationResponse::from_pairs([("code", "a"), ("code", "b")]),
            Err(FederationError::RepeatedParameter(_))
        ));
    }
}
