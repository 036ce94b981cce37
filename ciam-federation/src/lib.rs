//! OpenID Connect and OAuth 2.0 relying party for ciam: social and enterprise sign-in.
//!
//! This crate speaks the protocols and verifies what providers send; it stores nothing and
//! has no dependency on ciam-core. The engine flows that use it (state in the challenge store,
//! identities as credentials keyed by `(issuer, subject)`, account linking, sessions) live in
//! ciam-core behind its `federation` feature.
//!
//! # Guide
//!
//! 1. Describe each provider with a preset ([`ProviderConfig::google`], [`ProviderConfig::apple`],
//!    [`ProviderConfig::microsoft_entra`], [`ProviderConfig::github`]) or any issuer
//!    ([`ProviderConfig::oidc`]), and set its exact `redirect_uri`.
//! 2. [`RelyingParty::discover`] fetches the discovery document; its `issuer` must be exactly
//!    the configured one.
//! 3. [`RelyingParty::authorization_request`] gives the URL to redirect to and a
//!    [`PendingAuthorization`] (state, nonce, PKCE verifier) to keep server-side, single-use.
//! 4. At the callback, read the parameters with [`AuthorizationResponse::from_pairs`] (query or
//!    form_post body), find the pending authorization by its `state`, and call
//!    [`RelyingParty::complete`]: state and RFC 9207 `iss` checks, the provider's error as
//!    [`FederationError::Provider`], the code exchange (oauth2 crate), ID token validation and
//!    claim mapping into a [`FederatedProfile`].
//!
//! | capability | where | notes |
//! |---|---|---|
//! | authorization code + PKCE S256 | [`RelyingParty::authorization_request`] | always; `state` and `nonce` 256 random bits each |
//! | discovery, exact issuer | [`ProviderMetadata::discover`] | HTTPS only (HTTP to loopback for tests) |
//! | RFC 9207 `iss` (mix-up defence) | [`RelyingParty::check_response`] | required when advertised, compared whenever sent |
//! | ID token §3.1.3.7 | [`id_token::validate`] | iss, aud, azp, exp/iat/nbf with leeway ≤ 5 min, nonce, at_hash, c_hash, max_age/auth_time |
//! | algorithm allow-list | [`id_token::SAFE_ALGORITHMS`] | metadata ∩ RS/PS/ES/EdDSA; never `none`, never HMAC |
//! | JWKS cache | [`JwksCache`] | refetched on an unknown `kid`, at most once per `jwks_min_refresh` |
//! | Google | [`ProviderConfig::google`] | |
//! | Apple | [`ProviderConfig::apple`], [`AppleClientSecret`] | form_post, ES256 client-secret JWT, name from the first response's `user` field |
//! | Microsoft Entra | [`ProviderConfig::microsoft_entra`] | multi-tenant `{tenantid}` filled by a GUID `tid`, then compared exactly; e-mail unverified |
//! | GitHub | [`ProviderConfig::github`] | OAuth 2.0 only; primary *verified* e-mail from `GET /user/emails` |
//! | enterprise connections | [`EnterpriseDirectory`] | provider chosen by exact e-mail domain |
//! | provider tokens | [`ProviderTokens`] | only with `keep_tokens`; the engine seals them at rest |
//!
//! The crate has no cargo features. HTTP goes through one `reqwest::Client` that should not
//! follow redirects ([`default_http_client`]).

mod apple;
mod client;
mod config;
mod discovery;
mod error;
mod http;
pub mod id_token;
mod jwks;
mod profile;

pub use apple::{APPLE_AUDIENCE, AppleClientSecret};
pub use client::{
    AuthorizationRequest, AuthorizationResponse, FederatedLogin, IdTokenField,
    OidcTokenResponseParts, PendingAuthorization, RelyingParty,
};
pub use config::{
    ClaimMapping, ClientAuth, EnterpriseDirectory, GITHUB_ISSUER, MultiTenant, Protocol,
    ProviderConfig, ResponseMode, TenantPolicy,
};
pub use discovery::ProviderMetadata;
pub use error::{FederationError, IdTokenError, Result};
pub use http::default_http_client;
pub use id_token::IdTokenClaims;
pub use jwks::JwksCache;
pub use profile::{FederatedProfile, ProviderTokens};
