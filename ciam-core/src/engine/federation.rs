//! Sign-in with external identity providers (feature `federation`): OpenID Connect and
//! OAuth 2.0 through [`ciam_federation`], with account linking that cannot be hijacked.
//!
//! # The flow
//!
//! 1. [`Ciam::start_federated_sign_in`] (or [`Ciam::start_federated_link`] for a signed-in user)
//!    builds the authorization request (PKCE S256, `state`, `nonce`) and keeps the pending
//!    authorization in the [`ChallengeStore`](crate::store::ChallengeStore) under the SHA-256
//!    of its `state`: single use, with a TTL (10 minutes by default). It also returns a
//!    *binding* token for the browser (the adapter keeps it in a cookie); its hash is stored
//!    with the state, so a response is only accepted from the browser that started the flow
//!    (login CSRF and injected-code defence).
//! 2. [`Ciam::finish_federation`] consumes the state (a replay finds nothing), checks the
//!    binding and the provider, lets the relying party check the response (RFC 9207 `iss`),
//!    exchange the code and validate the ID token, then signs in, creates, links or asks for
//!    the existing account, as below.
//!
//! # Identities and linking
//!
//! An external identity is a credential of kind
//! [`CredentialKind::Federated`](crate::credential::CredentialKind) whose `lookup` is the
//! SHA-256 of the (issuer, subject) pair. Links are keyed by (issuer, subject), **never by
//! e-mail**: an address only ever decides which *existing* account to offer, and only under
//! these rules.
//!
//! | identity already linked | provider's e-mail | local account with that address | result |
//! |---|---|---|---|
//! | yes | any | any | sign-in to the linked account |
//! | no | verified | none | a new account with only this identity; address verified |
//! | no | verified | verified | linked automatically, then sign-in |
//! | no | verified | **unverified** | the unverified account is superseded (below), then a new account |
//! | no | unverified or none | any, or none | [`FederationOutcome::LinkRequired`]: sign in to (or create) an account, then [`Ciam::complete_federated_link`] |
//!
//! An account that may not sign in (closed, locked, disabled) is never linked to
//! automatically: the answer is [`Error::AccountUnavailable`]. Closing an account
//! ([`Ciam::delete_account`]) removes its identities with its other credentials.
//!
//! The last row answers the same whether or not an account holds the address, so an identity
//! with an address the provider has not verified cannot be used to find out which addresses
//! have accounts here, nor to claim one.
//!
//! # Pre-hijacking: what happens to an unverified account
//!
//! Someone may register a password account with a victim's address before the victim ever
//! signs in with their provider, hoping the provider identity will be merged into it. An
//! account whose address is **not verified** therefore never absorbs a verified external
//! identity. When a provider asserts the same address verified, the unverified account is
//! *superseded*: all its credentials (password, passkeys, second factors, other identities)
//! are deleted, all its sessions end, its outstanding links and codes are deleted, its address
//! is removed from it and its status becomes `disabled`. The identity then gets a **new
//! account with a new user id**, so nothing the unverified account's holder stored under the
//! old id is reachable from it, and that password opens nothing any more. The audit log
//! records `account_superseded` on the old account, with the issuer that superseded it.
//!
//! # Second factors
//!
//! A federated sign-in is a first factor (`amr` `fed`, AAL1). An account with a second factor
//! goes through the same gate as a password sign-in: [`SignInOutcome::MfaRequired`] unless
//! the browser is a remembered device, and [`Ciam::complete_mfa`] finishes it.
//!
//! # Provider tokens
//!
//! A provider configured with `keep_tokens` has its access and refresh tokens stored with the
//! identity, sealed with AES-256-GCM under [`FederationConfig::with_token_key`] and bound to
//! the user id (a sealed blob copied to another account does not open). Read them with
//! [`Ciam::federated_tokens`]. Without a token key such a provider is refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciam_federation::{
    AuthorizationResponse, EnterpriseDirectory, FederatedLogin, FederatedProfile, FederationError,
    PendingAuthorization, ProviderTokens, RelyingParty,
};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

use super::context::{AuthContext, RequestContext};
use super::outcome::{SignInOutcome, SignedIn};
use super::{Ciam, Decision};
use crate::audit::AuditAction;
use crate::challenge::{Challenge, ChallengePurpose};
use crate::credential::{Credential, CredentialKind};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::{CredentialId, UserId};
use crate::identifier::Email;
use crate::secret::{OpaqueToken, TokenHash, constant_time_eq};
use crate::session::{Aal, AuthMethod};
use crate::store::StoreError;
use crate::user::{User, UserStatus};

/// The key that seals kept provider tokens.
struct TokenKey {
    id: String,
    key: LessSafeKey,
}

/// The providers and the settings of the federated flows.
pub struct FederationConfig {
    providers: BTreeMap<String, Arc<RelyingParty>>,
    enterprise: EnterpriseDirectory,
    state_ttl: StdDuration,
    link_ttl: StdDuration,
    token_key: Option<TokenKey>,
}

impl std::fmt::Debug for FederationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationConfig")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("state_ttl", &self.state_ttl)
            .field("link_ttl", &self.link_ttl)
            .field("token_key", &self.token_key.as_ref().map(|k| k.id.as_str()))
            .finish_non_exhaustive()
    }
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl FederationConfig {
    /// No providers yet; a 10-minute authorization and a 15-minute pending link.
    pub fn new() -> Self {
        Self {
            providers: BTreeMap::new(),
            enterprise: EnterpriseDirectory::new(),
            state_ttl: StdDuration::from_secs(600),
            link_ttl: StdDuration::from_secs(900),
            token_key: None,
        }
    }

    /// The redirect URI the engine expects for `provider` under `public_url`:
    /// `{public_url}/auth/oidc/{provider}/callback` (register exactly this at the provider).
    pub fn redirect_uri(public_url: &str, provider: &str) -> String {
        format!(
            "{}/auth/oidc/{provider}/callback",
            public_url.trim_end_matches('/')
        )
    }

    /// Adds a provider (discovered with [`RelyingParty::discover`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a second provider of the same name, or one that keeps
    /// tokens while no token key is set (set the key first).
    pub fn with_provider(mut self, rp: RelyingParty) -> Result<Self> {
        let name = rp.config().name.clone();
        if self.providers.contains_key(&name) {
            return Err(Error::InvalidInput("two providers with one name"));
        }
        if rp.config().keep_tokens && self.token_key.is_none() {
            return Err(Error::InvalidInput(
                "a provider keeps tokens but no token key is set",
            ));
        }
        self.providers.insert(name, Arc::new(rp));
        Ok(self)
    }

    /// Enterprise connections: which provider serves which e-mail domain.
    pub fn with_enterprise(mut self, directory: EnterpriseDirectory) -> Self {
        self.enterprise = directory;
        self
    }

    /// How long an authorization may take, from start to callback (1 to 30 minutes; clamped).
    pub fn with_state_ttl(mut self, ttl: StdDuration) -> Self {
        self.state_ttl = ttl.clamp(StdDuration::from_secs(60), StdDuration::from_secs(1800));
        self
    }

    /// The AES-256 key (32 bytes) sealing kept provider tokens, with an id written beside each
    /// sealed value.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a key that is not 32 bytes or an empty id.
    pub fn with_token_key(mut self, id: &str, key: &[u8]) -> Result<Self> {
        if id.is_empty() || id.contains('.') {
            return Err(Error::InvalidInput("token key id"));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| Error::InvalidInput("token key must be 32 bytes"))?;
        self.token_key = Some(TokenKey {
            id: id.to_owned(),
            key: LessSafeKey::new(unbound),
        });
        Ok(self)
    }

    /// The providers, as (name, display name), in name order.
    pub fn providers(&self) -> Vec<(String, String)> {
        self.providers
            .values()
            .map(|rp| (rp.config().name.clone(), rp.config().display_name.clone()))
            .collect()
    }
}

/// A started authorization: where to send the browser, and the binding token to keep in a
/// cookie of that browser until the callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct FederationStart {
    /// The provider's authorization URL.
    pub redirect_url: String,
    /// The browser binding. Secret: never log it.
    pub binding: OpaqueToken,
}

/// How a federated sign-in found its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FederatedAccount {
    /// The identity was already linked.
    Existing,
    /// A new account was created with this identity alone.
    Created,
    /// Linked automatically to the verified account holding the verified address.
    LinkedAutomatically,
    /// An unverified account held the address: it was superseded and a new account created.
    SupersededUnverified,
}

/// What a completed authorization produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum FederationOutcome {
    /// A sign-in: signed in, or a second factor is needed.
    SignIn {
        /// The sign-in outcome (never `VerificationRequired`).
        outcome: SignInOutcome,
        /// How the account was found.
        account: FederatedAccount,
    },
    /// The identity is not linked and cannot be linked automatically: the user signs in to
    /// an existing account (or creates one) and then calls
    /// [`Ciam::complete_federated_link`] with this token.
    LinkRequired(PendingLink),
    /// The identity was linked to the signed-in account that started the flow.
    Linked(FederatedIdentity),
}

/// An identity waiting to be linked.
#[derive(Debug)]
#[non_exhaustive]
pub struct PendingLink {
    /// Single-use token naming the pending link (keep it in a cookie). Secret.
    pub token: OpaqueToken,
    /// The provider's name.
    pub provider: String,
    /// The provider's display name.
    pub provider_name: String,
}

/// A linked external identity, as shown on an account page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FederatedIdentity {
    /// The credential id (for unlinking).
    pub id: CredentialId,
    /// The provider's name.
    pub provider: String,
    /// The provider's display name.
    pub provider_name: String,
    /// The issuer.
    pub issuer: String,
    /// The subject at the issuer.
    pub subject: String,
    /// The address the provider gave when linked, if any (informational, never a key).
    pub email: Option<String>,
    /// When it was linked.
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a federated credential's `secret` holds (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredIdentity {
    provider: String,
    issuer: String,
    subject: String,
    #[serde(default)]
    email: Option<String>,
    /// The provider's tokens, sealed (`key_id.base64url(nonce || ciphertext)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<String>,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct SealedTokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<i64>,
    scopes: Vec<String>,
}

/// The state kept between start and callback.
#[derive(Serialize, Deserialize)]
struct StatePayload {
    pending: PendingAuthorization,
    /// base64url SHA-256 of the browser binding token.
    binding: String,
}

/// An identity waiting for its account.
#[derive(Serialize, Deserialize)]
struct LinkPayload {
    provider: String,
    issuer: String,
    subject: String,
    email: Option<String>,
}

/// The lookup key of an identity: SHA-256 over the length-prefixed issuer and the subject,
/// so no (issuer, subject) pair can collide with another by moving the boundary.
pub(crate) fn identity_lookup(issuer: &str, subject: &str) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"ciam-federated-identity\0");
    ctx.update(&(issuer.len() as u64).to_be_bytes());
    ctx.update(issuer.as_bytes());
    ctx.update(subject.as_bytes());
    ctx.finish().as_ref().to_vec()
}

fn binding_text(hash: &TokenHash) -> String {
    URL_SAFE_NO_PAD.encode(hash.as_bytes())
}

fn token_aad(user: UserId, key_id: &str) -> Vec<u8> {
    format!("ciam/federated-tokens\0{user}\0{key_id}").into_bytes()
}

impl FederatedIdentity {
    fn from_credential(c: &Credential, config: &FederationConfig) -> Result<Self> {
        let s = decode(c)?;
        let provider_name = config
            .providers
            .get(&s.provider)
            .map(|rp| rp.config().display_name.clone())
            .or_else(|| c.name.clone())
            .unwrap_or_else(|| s.provider.clone());
        Ok(Self {
            id: c.id,
            provider: s.provider,
            provider_name,
            issuer: s.issuer,
            subject: s.subject,
            email: s.email,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        })
    }
}

fn decode(c: &Credential) -> Result<StoredIdentity> {
    serde_json::from_str(&c.secret)
        .map_err(|e| Error::Internal(format!("stored identity {} is unreadable: {e}", c.id).into()))
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string().into())
}

impl Ciam {
    fn federation(&self) -> Result<&FederationConfig> {
        self.inner.federation.as_ref().ok_or_else(|| {
            Error::Internal("federation is not configured (CiamBuilder::federation)".into())
        })
    }

    /// The configured providers, as (name, display name).
    pub fn federation_providers(&self) -> Vec<(String, String)> {
        self.inner
            .federation
            .as_ref()
            .map(FederationConfig::providers)
            .unwrap_or_default()
    }

    /// The enterprise provider serving this address's domain, if one does.
    pub fn federation_provider_for_email(&self, email: &str) -> Option<String> {
        let config = self.inner.federation.as_ref()?;
        config
            .enterprise
            .provider_for_email(email)
            .filter(|p| config.providers.contains_key(*p))
            .map(str::to_owned)
    }

    fn provider(&self, name: &str) -> Result<Arc<RelyingParty>> {
        self.federation()?
            .providers
            .get(name)
            .cloned()
            .ok_or(Error::NotFound)
    }

    async fn start_authorization(
        &self,
        provider: &str,
        login_hint: Option<&str>,
        link_for: Option<UserId>,
    ) -> Result<FederationStart> {
        let config = self.federation()?;
        let rp = self.provider(provider)?;
        let login_hint = login_hint
            .map(str::trim)
            .filter(|h| !h.is_empty() && h.len() <= 320);
        let request = rp
            .authorization_request(login_hint, None)
            .map_err(|e| internal(format!("authorization request for {provider}: {e}")))?;
        let binding = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let now = self.now();
        let ttl = time::Duration::try_from(config.state_ttl)
            .unwrap_or_else(|_| time::Duration::minutes(10));
        let payload = StatePayload {
            pending: request.pending.clone(),
            binding: binding_text(&binding.hash()),
        };
        let challenge = Challenge::new(
            TokenHash::of(&request.pending.state),
            ChallengePurpose::FederationState,
            link_for,
            serde_json::to_value(&payload).map_err(internal)?,
            now,
            now + ttl,
        );
        self.inner.challenges.insert_challenge(&challenge).await?;
        Ok(FederationStart {
            redirect_url: request.url.to_string(),
            binding,
        })
    }

    /// Starts a sign-in (or sign-up) with `provider`. `login_hint` (an address) is passed on
    /// to the provider. Redirect the browser to [`FederationStart::redirect_url`] and keep
    /// [`FederationStart::binding`] in a cookie for [`Ciam::finish_federation`].
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown provider.
    pub async fn start_federated_sign_in(
        &self,
        provider: &str,
        login_hint: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<FederationStart> {
        crate::engine::observe::flow("start_federated_sign_in", async move {
            let _ = ctx;
            self.start_authorization(provider, login_hint, None).await
        })
        .await
    }

    /// Starts linking `provider` to the signed-in account (`login_hint` as for a sign-in).
    /// Adding a way to sign in needs a
    /// sign-in within [`Policy::recent_auth_max_age`](crate::Policy)
    /// ([`Error::StepUpRequired`] otherwise).
    pub async fn start_federated_link(
        &self,
        auth: &AuthContext,
        provider: &str,
        login_hint: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<FederationStart> {
        crate::engine::observe::flow("start_federated_link", async move {
            let user = self.user(auth.user_id).await?;
            self.step_up(&user, auth, None, AuditAction::FederatedLinked, ctx)
                .await?;
            self.start_authorization(provider, login_hint, Some(user.id))
                .await
        })
        .await
    }

    /// Consumes the challenge stored for `purpose` under the hash of `secret`.
    async fn take(&self, purpose: ChallengePurpose, secret: &str) -> Result<Option<Challenge>> {
        Ok(self
            .inner
            .challenges
            .consume_challenge(purpose, &TokenHash::of(secret), self.now())
            .await?)
    }

    /// The identity is already linked to another account: refused and audited.
    async fn linked_elsewhere<T>(
        &self,
        user: UserId,
        login: &FederatedLogin,
        ctx: &RequestContext,
    ) -> Result<T> {
        self.federation_refused(
            AuditAction::FederatedLinked,
            "identity_linked_to_another_account",
            Some(user),
            json!({"provider": login.provider}),
            ctx,
        )
        .await
    }

    async fn federation_refused<T>(
        &self,
        action: AuditAction,
        reason: &'static str,
        user: Option<UserId>,
        detail: serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<T> {
        self.record(
            Decision::failure(action, reason).user(user).detail(detail),
            ctx,
        )
        .await;
        Err(Error::FederationRejected(reason))
    }

    /// Finishes an authorization at the callback: `params` are the response parameters (the
    /// query of a GET, or the form of a `form_post`), `binding` the browser's binding cookie.
    ///
    /// # Errors
    /// [`Error::FederationRejected`] for every refusal (unknown, replayed or expired state,
    /// another browser or provider, the provider's error, a failed code exchange or ID
    /// token), with the reason in the audit log; [`Error::AccountUnavailable`] for a linked
    /// account that may not sign in.
    pub async fn finish_federation(
        &self,
        provider: &str,
        params: &[(String, String)],
        binding: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<FederationOutcome> {
        crate::engine::observe::flow("finish_federation", async move {
            let action = AuditAction::SignInFederated;
            let detail = json!({ "provider": provider });
            let Ok(response) = AuthorizationResponse::from_pairs(
                params.iter().map(|(k, v)| (k.as_str(), v.clone())),
            ) else {
                return self
                    .federation_refused(action, "malformed_response", None, detail, ctx)
                    .await;
            };
            let Some(state) = response.state.as_deref().filter(|s| s.len() <= 512) else {
                return self
                    .federation_refused(action, "missing_state", None, detail, ctx)
                    .await;
            };
            let Some(stored) = self.take(ChallengePurpose::FederationState, state).await? else {
                return self
                    .federation_refused(action, "unknown_or_expired_state", None, detail, ctx)
                    .await;
            };
            let action = if stored.user_id.is_some() {
                AuditAction::FederatedLinked
            } else {
                action
            };
            let payload: StatePayload =
                serde_json::from_value(stored.payload.clone()).map_err(internal)?;
            if payload.pending.provider != provider {
                return self
                    .federation_refused(
                        action,
                        "state_of_another_provider",
                        stored.user_id,
                        detail,
                        ctx,
                    )
                    .await;
            }
            let bound = binding.is_some_and(|b| {
                constant_time_eq(
                    binding_text(&TokenHash::of(b)).as_bytes(),
                    payload.binding.as_bytes(),
                )
            });
            if !bound {
                return self
                    .federation_refused(action, "browser_mismatch", stored.user_id, detail, ctx)
                    .await;
            }
            let rp = self.provider(provider)?;
            let login = match rp
                .complete(&payload.pending, &response, self.now().unix_timestamp())
                .await
            {
                Ok(login) => login,
                Err(e) => {
                    let reason = refusal_reason(&e);
                    let detail = json!({ "provider": provider, "error": e.to_string() });
                    return self
                        .federation_refused(action, reason, stored.user_id, detail, ctx)
                        .await;
                }
            };
            match stored.user_id {
                Some(user) => {
                    let identity = self.link_identity(user, &login, ctx).await?;
                    Ok(FederationOutcome::Linked(identity))
                }
                None => self.federated_sign_in(login, ctx).await,
            }
        })
        .await
    }

    async fn federated_sign_in(
        &self,
        login: FederatedLogin,
        ctx: &RequestContext,
    ) -> Result<FederationOutcome> {
        let profile = &login.profile;
        let lookup = identity_lookup(&profile.issuer, &profile.subject);
        if let Some(credential) = self
            .inner
            .credentials
            .credential_by_lookup(CredentialKind::Federated, &lookup)
            .await?
        {
            let user = self.user(credential.user_id).await?;
            return self
                .finish_federated_sign_in(user, credential, &login, FederatedAccount::Existing, ctx)
                .await;
        }
        let email = profile.email.as_deref().and_then(|e| Email::parse(e).ok());
        let (Some(email), true) = (email, profile.email_verified) else {
            return self.pending_link(&login, ctx).await;
        };
        match self.inner.identities.user_by_email(&email).await? {
            Some(existing) if existing.email_verified() => {
                // A closed or locked account gains no new way in.
                if !existing.status.may_sign_in() {
                    self.record(
                        Decision::failure(AuditAction::SignInFederated, existing.status.as_str())
                            .user(existing.id),
                        ctx,
                    )
                    .await;
                    return Err(Error::AccountUnavailable);
                }
                let credential = self.identity_credential(existing.id, &login)?;
                self.insert_identity(
                    &credential,
                    existing.id,
                    &login,
                    "linked_automatically",
                    ctx,
                )
                .await?;
                self.finish_federated_sign_in(
                    existing,
                    credential,
                    &login,
                    FederatedAccount::LinkedAutomatically,
                    ctx,
                )
                .await
            }
            Some(unverified) => {
                self.supersede(&unverified, profile, ctx).await?;
                let (user, credential) = self.create_federated_account(&email, &login, ctx).await?;
                self.finish_federated_sign_in(
                    user,
                    credential,
                    &login,
                    FederatedAccount::SupersededUnverified,
                    ctx,
                )
                .await
            }
            None => {
                let (user, credential) = self.create_federated_account(&email, &login, ctx).await?;
                self.finish_federated_sign_in(
                    user,
                    credential,
                    &login,
                    FederatedAccount::Created,
                    ctx,
                )
                .await
            }
        }
    }

    /// Keeps the identity as a pending link and answers `LinkRequired`.
    async fn pending_link(
        &self,
        login: &FederatedLogin,
        ctx: &RequestContext,
    ) -> Result<FederationOutcome> {
        let config = self.federation()?;
        let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let now = self.now();
        let ttl = time::Duration::try_from(config.link_ttl)
            .unwrap_or_else(|_| time::Duration::minutes(15));
        let payload = LinkPayload {
            provider: login.provider.clone(),
            issuer: login.profile.issuer.clone(),
            subject: login.profile.subject.clone(),
            email: login.profile.email.clone(),
        };
        let challenge = Challenge::new(
            token.hash(),
            ChallengePurpose::FederationLink,
            None,
            serde_json::to_value(&payload).map_err(internal)?,
            now,
            now + ttl,
        );
        self.inner.challenges.insert_challenge(&challenge).await?;
        self.record(
            Decision::failure(AuditAction::SignInFederated, "link_required").detail(json!({
                "provider": login.provider,
                "email_verified": login.profile.email_verified,
            })),
            ctx,
        )
        .await;
        let provider_name = self
            .provider(&login.provider)
            .map(|rp| rp.config().display_name.clone())
            .unwrap_or_else(|_| login.provider.clone());
        Ok(FederationOutcome::LinkRequired(PendingLink {
            token,
            provider: login.provider.clone(),
            provider_name,
        }))
    }

    /// Links the identity waiting under `link_token` (from [`FederationOutcome::LinkRequired`])
    /// to the signed-in account, which must have signed in recently
    /// ([`Error::StepUpRequired`] otherwise): signing in to the account is what proves it.
    ///
    /// # Errors
    /// [`Error::FederationRejected`] for an unknown, used or expired token, or an identity
    /// linked to another account meanwhile.
    pub async fn complete_federated_link(
        &self,
        auth: &AuthContext,
        link_token: &str,
        ctx: &RequestContext,
    ) -> Result<FederatedIdentity> {
        crate::engine::observe::flow("complete_federated_link", async move {
            let user = self.user(auth.user_id).await?;
            self.step_up(&user, auth, None, AuditAction::FederatedLinked, ctx)
                .await?;
            let Some(stored) = self
                .take(ChallengePurpose::FederationLink, link_token)
                .await?
            else {
                return self
                    .federation_refused(
                        AuditAction::FederatedLinked,
                        "unknown_or_expired_link",
                        Some(user.id),
                        json!({}),
                        ctx,
                    )
                    .await;
            };
            let p: LinkPayload = serde_json::from_value(stored.payload).map_err(internal)?;
            let login = FederatedLogin {
                provider: p.provider,
                profile: FederatedProfile {
                    issuer: p.issuer,
                    subject: p.subject,
                    email: p.email,
                    email_verified: false,
                    name: None,
                    given_name: None,
                    family_name: None,
                    auth_time: None,
                    attributes: BTreeMap::new(),
                },
                tokens: None,
            };
            self.link_identity(user.id, &login, ctx).await
        })
        .await
    }

    /// Links `login`'s identity to `user`: a no-op when it already is, refused when it is
    /// another account's.
    async fn link_identity(
        &self,
        user: UserId,
        login: &FederatedLogin,
        ctx: &RequestContext,
    ) -> Result<FederatedIdentity> {
        let config = self.federation()?;
        let lookup = identity_lookup(&login.profile.issuer, &login.profile.subject);
        if let Some(existing) = self
            .inner
            .credentials
            .credential_by_lookup(CredentialKind::Federated, &lookup)
            .await?
        {
            if existing.user_id == user {
                return FederatedIdentity::from_credential(&existing, config);
            }
            return self.linked_elsewhere(user, login, ctx).await;
        }
        let credential = self.identity_credential(user, login)?;
        self.insert_identity(&credential, user, login, "linked", ctx)
            .await?;
        FederatedIdentity::from_credential(&credential, config)
    }

    async fn insert_identity(
        &self,
        credential: &Credential,
        user: UserId,
        login: &FederatedLogin,
        reason: &'static str,
        ctx: &RequestContext,
    ) -> Result<()> {
        match self.inner.credentials.insert_credential(credential).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return self.linked_elsewhere(user, login, ctx).await;
            }
            Err(e) => return Err(e.into()),
        }
        self.record(
            Decision::success(AuditAction::FederatedLinked, reason)
                .user(user)
                .detail(json!({"provider": login.provider, "credential": credential.id})),
            ctx,
        )
        .await;
        Ok(())
    }

    fn seal_tokens(&self, user: UserId, tokens: &ProviderTokens) -> Result<Option<String>> {
        let Some(key) = self.federation()?.token_key.as_ref() else {
            return Ok(None);
        };
        let plain = SealedTokens {
            access_token: tokens.access_token.to_string(),
            refresh_token: tokens.refresh_token.as_ref().map(|r| r.to_string()),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes.clone(),
        };
        let mut buf = Zeroizing::new(serde_json::to_vec(&plain).map_err(internal)?);
        let mut nonce = [0_u8; NONCE_LEN];
        self.inner.rng.fill(&mut nonce)?;
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(token_aad(user, &key.id)),
                &mut *buf,
            )
            .map_err(|_| internal("sealing provider tokens failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(Some(format!("{}.{}", key.id, URL_SAFE_NO_PAD.encode(out))))
    }

    fn identity_credential(&self, user: UserId, login: &FederatedLogin) -> Result<Credential> {
        let p = &login.profile;
        let tokens = match &login.tokens {
            Some(t) => self.seal_tokens(user, t)?,
            None => None,
        };
        let stored = StoredIdentity {
            provider: login.provider.clone(),
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            email: p.email.clone(),
            tokens,
        };
        let name = self
            .provider(&login.provider)
            .map(|rp| rp.config().display_name.clone())
            .unwrap_or_else(|_| login.provider.clone());
        Ok(Credential::new(
            CredentialId::generate(self.inner.rng.as_ref())?,
            user,
            CredentialKind::Federated,
            serde_json::to_string(&stored).map_err(internal)?,
            self.now(),
        )
        .with_lookup(identity_lookup(&p.issuer, &p.subject))
        .with_name(name))
    }

    /// A new account holding only this identity; the provider verified the address.
    async fn create_federated_account(
        &self,
        email: &Email,
        login: &FederatedLogin,
        ctx: &RequestContext,
    ) -> Result<(User, Credential)> {
        let now = self.now();
        let mut user = User::new(UserId::generate(self.inner.rng.as_ref())?, now);
        user.email = Some(email.clone());
        user.email_verified_at = Some(now);
        if let Some(name) = &login.profile.name {
            let mut attrs = crate::user::ProfileAttributes::new();
            attrs.insert("name".to_owned(), json!(name));
            if self.inner.profile.validate_all(&attrs).is_ok() {
                user.profile = attrs;
            }
        }
        let credential = self.identity_credential(user.id, login)?;
        match self
            .inner
            .identities
            .create_user(&user, std::slice::from_ref(&credential))
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(Error::Conflict),
            Err(e) => return Err(e.into()),
        }
        self.record(
            Decision::success(AuditAction::Register, "federated")
                .user(user.id)
                .detail(json!({"provider": login.provider, "credential": credential.id})),
            ctx,
        )
        .await;
        self.emit(Event::Registered { user_id: user.id }).await;
        Ok((user, credential))
    }

    /// Pre-hijacking defence: the unverified account holding a verified identity's address
    /// loses its credentials, sessions, pending links, address and standing (see the module
    /// documentation).
    async fn supersede(
        &self,
        unverified: &User,
        by: &FederatedProfile,
        ctx: &RequestContext,
    ) -> Result<()> {
        let id = unverified.id;
        let (removed, sessions) = self.strip_account(id).await?;
        self.modify_user(id, |u| {
            u.email = None;
            u.email_verified_at = None;
            u.status = UserStatus::Disabled;
            Ok(())
        })
        .await?;
        self.record(
            Decision::success(AuditAction::AccountSuperseded, "unverified_address_claimed")
                .user(id)
                .detail(json!({
                    "by_issuer": by.issuer,
                    "credentials_removed": removed,
                    "sessions_ended": sessions,
                })),
            ctx,
        )
        .await;
        Ok(())
    }

    async fn finish_federated_sign_in(
        &self,
        user: User,
        credential: Credential,
        login: &FederatedLogin,
        account: FederatedAccount,
        ctx: &RequestContext,
    ) -> Result<FederationOutcome> {
        if !user.status.may_sign_in() {
            self.record(
                Decision::failure(AuditAction::SignInFederated, user.status.as_str()).user(user.id),
                ctx,
            )
            .await;
            return Err(Error::AccountUnavailable);
        }
        let now = self.now();
        if account == FederatedAccount::Existing
            && let Some(tokens) = &login.tokens
        {
            // Keep the newest tokens; a concurrent change wins (the next sign-in stores them).
            let mut updated = credential.clone();
            let mut stored = decode(&credential)?;
            stored.tokens = self.seal_tokens(user.id, tokens)?;
            updated.secret = serde_json::to_string(&stored).map_err(internal)?;
            updated.updated_at = now;
            if let Err(e) = self.inner.credentials.update_credential(&updated).await {
                tracing::info!(error = %e, "provider tokens not updated");
            }
        }
        self.inner
            .credentials
            .touch_credential(credential.id, now)
            .await?;
        let trusted = self.trusted_device(user.id, ctx).await?;
        let factors = self.second_factors(user.id).await?;
        if !factors.is_empty() && trusted != Some(true) {
            let outcome = self
                .mfa_required(&user, &[AuthMethod::Fed], factors, None, ctx)
                .await?;
            return Ok(FederationOutcome::SignIn { outcome, account });
        }
        let (amr, aal) = if factors.is_empty() {
            (vec![AuthMethod::Fed], Aal::Aal1)
        } else {
            (vec![AuthMethod::Fed, AuthMethod::Mfa], Aal::Aal2)
        };
        let amr_text: Vec<&str> = amr.iter().map(|m| m.as_str()).collect();
        let mut signed_in: SignedIn = self.start_session(user, amr, aal, now, ctx).await?;
        signed_in.device_token = self
            .issue_device_token(signed_in.user.id, None, ctx)
            .await?;
        self.record(
            Decision::success(AuditAction::SignInFederated, "federated")
                .user(signed_in.user.id)
                .session(signed_in.session.id)
                .detail(json!({
                    "provider": login.provider,
                    "account": account,
                    "amr": amr_text,
                    "aal": aal.level(),
                    "credential": credential.id,
                })),
            ctx,
        )
        .await;
        Ok(FederationOutcome::SignIn {
            outcome: SignInOutcome::SignedIn(Box::new(signed_in)),
            account,
        })
    }

    /// The signed-in user's linked identities, oldest first.
    pub async fn federated_identities(&self, auth: &AuthContext) -> Result<Vec<FederatedIdentity>> {
        crate::engine::observe::flow("federated_identities", async move {
            let config = self.federation()?;
            self.inner
                .credentials
                .credentials_for_user(auth.user_id, CredentialKind::Federated)
                .await?
                .iter()
                .map(|c| FederatedIdentity::from_credential(c, config))
                .collect()
        })
        .await
    }

    /// The provider tokens kept with one of the signed-in user's identities (providers with
    /// `keep_tokens`), unsealed; `None` when none are kept.
    pub async fn federated_tokens(
        &self,
        auth: &AuthContext,
        id: CredentialId,
    ) -> Result<Option<ProviderTokens>> {
        crate::engine::observe::flow("federated_tokens", async move {
            let c = self
                .own_credential(auth, id, CredentialKind::Federated)
                .await?;
            let Some(sealed) = decode(&c)?.tokens else {
                return Ok(None);
            };
            let key = self
                .federation()?
                .token_key
                .as_ref()
                .ok_or_else(|| internal("no token key"))?;
            let (key_id, body) = sealed
                .split_once('.')
                .ok_or_else(|| internal("sealed tokens malformed"))?;
            if key_id != key.id {
                return Err(internal("sealed tokens under an unknown key"));
            }
            let raw = URL_SAFE_NO_PAD.decode(body).map_err(internal)?;
            if raw.len() < NONCE_LEN {
                return Err(internal("sealed tokens malformed"));
            }
            let (nonce, ct) = raw.split_at(NONCE_LEN);
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| internal("nonce"))?;
            let mut buf = Zeroizing::new(ct.to_vec());
            let plain = key
                .key
                .open_in_place(nonce, Aad::from(token_aad(c.user_id, key_id)), &mut buf)
                .map_err(|_| internal("sealed tokens do not open"))?;
            let mut t: SealedTokens = serde_json::from_slice(plain).map_err(internal)?;
            let out = ProviderTokens {
                access_token: Zeroizing::new(std::mem::take(&mut t.access_token)),
                refresh_token: t.refresh_token.take().map(Zeroizing::new),
                expires_at: t.expires_at,
                scopes: std::mem::take(&mut t.scopes),
            };
            Ok(Some(out))
        })
        .await
    }

    /// Unlinks one of the signed-in user's identities. Needs a recent sign-in
    /// ([`Error::StepUpRequired`]) and is refused with [`Error::LastSignInMethod`] when it is
    /// the account's last way to sign in (passwords, passkeys and identities count), even
    /// when two removals race.
    pub async fn unlink_federated_identity(
        &self,
        auth: &AuthContext,
        id: CredentialId,
        ctx: &RequestContext,
    ) -> Result<()> {
        crate::engine::observe::flow("unlink_federated_identity", async move {
            let user = self.user(auth.user_id).await?;
            let c = self
                .own_credential(auth, id, CredentialKind::Federated)
                .await?;
            self.step_up(&user, auth, None, AuditAction::FederatedUnlinked, ctx)
                .await?;
            self.remove_sign_in_credential(auth, &c, AuditAction::FederatedUnlinked, ctx)
                .await?;
            self.record(
                Decision::success(AuditAction::FederatedUnlinked, "unlinked")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(json!({"credential": id, "provider": decode(&c)?.provider})),
                ctx,
            )
            .await;
            Ok(())
        })
        .await
    }
}

/// A short, stable reason for the audit log.
fn refusal_reason(e: &FederationError) -> &'static str {
    match e {
        FederationError::Provider { .. } => "provider_error",
        FederationError::StateMismatch => "state_mismatch",
        FederationError::ResponseIssuerMismatch => "response_issuer_mismatch",
        FederationError::MissingParameter(_) | FederationError::RepeatedParameter(_) => {
            "malformed_response"
        }
        FederationError::TokenExchange(_) => "token_exchange",
        FederationError::MissingIdToken | FederationError::IdToken(_) => "id_token_invalid",
        FederationError::Http(_) | FederationError::UserInfo(_) => "provider_unreachable",
        _ => "federation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_lookup_is_not_ambiguous() {
        // Moving the boundary between issuer and subject gives another key.
        assert_ne!(
            identity_lookup("https://a.example", "bc"),
            identity_lookup("https://a.exampleb", "c")
        );
        assert_eq!(identity_lookup("i", "s").len(), 32);
        assert_eq!(
            FederationConfig::redirect_uri("https://app.example/", "google"),
            "https://app.example/auth/oidc/google/callback"
        );
        assert!(
            FederationConfig::new()
                .with_token_key("k1", &[0; 31])
                .is_err()
        );
        assert!(
            FederationConfig::new()
                .with_token_key("k.1", &[0; 32])
                .is_err()
        );
    }
}
