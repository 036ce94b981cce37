//! API tokens (feature `tokens`): short-lived JWT access tokens minted from a session, a
//! rotating signing key set published as JWKS, and rotating refresh tokens with reuse
//! detection.
//!
//! # What a client gets
//!
//! [`Ciam::issue_tokens`] turns a signed-in session into a [`TokenPair`]: an access token
//! (a JWT, RFC 9068 shape) and an opaque refresh token bound to the same session.
//! [`Ciam::refresh_tokens`] exchanges a refresh token for a new pair. Enable them with
//! [`CiamBuilder::tokens`](crate::CiamBuilder::tokens).
//!
//! # Access tokens
//!
//! Signed with the current key of the key set: Ed25519 (`EdDSA`, default) or P-256 (`ES256`),
//! through jsonwebtoken. The header carries `typ: at+jwt` (RFC 9068 §2.1) and `kid`, the
//! signing key's RFC 7638 thumbprint. The claims are `iss` (the public URL), `sub` (the user
//! id, `usr_…`), `aud` ([`TokenConfig::audience`], default the public URL), `exp`, `nbf`,
//! `iat`, `jti` (128 random bits), `sid` (the session id), and from the session `acr`,
//! `amr` and `auth_time`. `exp` is at most [`TokenConfig::access_ttl`] away (default 5
//! minutes) and never past the session's own end. There is no `client_id`: the tokens are
//! first-party, issued to the application's own front ends.
//!
//! # Verifying: which call to use
//!
//! - [`Ciam::verify_access_token`] needs no store: the signature with the key its `kid`
//!   names and *that key's* algorithm (never the header's `alg`; `none` and HMAC are refused,
//!   RFC 8725 §3.1), `typ`, `iss` and `aud` exactly, `exp` and `nbf` with
//!   [`TokenConfig::leeway`] (default 30 s, at most 60 s). A token stays valid until it
//!   expires even if the session is revoked meanwhile, which is why access tokens are short.
//!   Use it on hot API paths where minutes of staleness after a sign-out are acceptable.
//! - [`Ciam::verify_access_token_live`] does the same and then reads the session store: the
//!   token's session (`sid`) must still exist and not have expired. Signing out, revoking a
//!   device, "sign out everywhere", a password change or closing the account (each deletes
//!   sessions) then takes effect at once. This is the per-user revocation: every token of a
//!   user whose sessions were all ended stops verifying. Use it for sensitive operations
//!   (payments, changes to the account) and wherever the store is reachable anyway.
//!
//! Other services can verify the tokens with any JWT library from the JWKS document
//! ([`Ciam::jwks`], served by `ciam-axum` at `/.well-known/jwks.json`).
//!
//! # Key rotation
//!
//! The key set has one current signing key and previous keys that are still published and
//! accepted. [`Ciam::rotate_signing_key`] (or [`Ciam::rotate_signing_key_to`]) makes a new
//! key current; the old one stays published and accepted for `access_ttl + leeway`, long
//! enough for every token it signed to expire, then disappears from the JWKS and from
//! verification. [`Ciam::retire_signing_key`] drops a previous key at once (compromise).
//! Rotation at runtime changes one process; a fleet rotates by configuration: deploy the new
//! key as the signing key with the old one as [`TokenConfig::previous_key`], then remove the
//! old one after `access_ttl + leeway`.
//!
//! # Refresh tokens
//!
//! 256 random bits ([`OpaqueToken`]); the stores only ever see their SHA-256. Each is a
//! record in the [`ChallengeStore`](crate::store::ChallengeStore) (purpose
//! [`RefreshToken`](crate::challenge::ChallengePurpose::RefreshToken)) bound to its session,
//! so every backend keeps them without new tables. A refresh:
//!
//! 1. refuses anything whose session no longer exists or has expired (sign-out, revocation,
//!    the absolute lifetime): refreshing never extends a session past its absolute end, and
//!    counts as activity for the idle timeout;
//! 2. **rotates**: the presented token is spent and a new pair is issued. Exactly one of
//!    several concurrent presenters wins the rotation: it first inserts a *spent marker* under
//!    a key derived from the token's hash (the insert is the atomic claim), then consumes
//!    the live record;
//! 3. allows a **grace window** ([`TokenConfig::refresh_grace`], default 10 s) after a
//!    rotation: the spent token may be exchanged **once more** within it (again an atomic
//!    insert claims that one extra exchange), giving that caller its own new pair, so two
//!    tabs refreshing at once both keep working. Further presentations inside the window are
//!    refused without revoking anything;
//! 4. treats a spent token presented **after** the grace window as **reuse**: someone holds
//!    a copy of a token that was already exchanged, so the whole family, which is the
//!    session, is revoked (every refresh token and, for live verification, every access
//!    token of that session), audited as `session_revoked` / `refresh_token_reused`.
//!
//! Every refusal answers [`Error::InvalidRefreshToken`] (`invalid_grant`), whichever the
//! reason, and the client signs in again.
//!
//! Storage: each rotation leaves one spent marker (and at most one grace claim), kept until
//! the session's absolute end so that reuse is detected for as long as the session could be
//! used. Redis drops them by TTL when they expire; the SQL backends keep expired challenge
//! records (of every purpose) until something deletes them, because
//! [`ChallengeStore`](crate::store::ChallengeStore) has no purge method yet: with many
//! refreshing clients, delete expired `challenges` rows periodically.

mod keys;
mod refresh;

use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use keys::KeySet;
pub use keys::{Jwk, Jwks, KeyError, SigningKey, TokenAlgorithm};

use super::Ciam;
use super::context::AuthContext;
use crate::error::Error;
use crate::id::{SessionId, UserId};
use crate::secret::{OpaqueToken, SecretString};
use crate::session::{Aal, AuthMethod, Session};
use crate::store::StoreError;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Longest access token accepted for verification, in bytes.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Token settings: the signing key (and previous keys), audience, lifetimes.
#[derive(Debug)]
#[must_use]
pub struct TokenConfig {
    key: SigningKey,
    previous: Vec<SigningKey>,
    audience: Option<String>,
    access_ttl: Duration,
    refresh_grace: Duration,
    leeway: Duration,
}

impl TokenConfig {
    /// Default access-token lifetime: 5 minutes.
    pub const DEFAULT_ACCESS_TTL: Duration = Duration::minutes(5);
    /// Longest access-token lifetime accepted: 1 hour.
    pub const MAX_ACCESS_TTL: Duration = Duration::hours(1);
    /// Default refresh grace window: 10 seconds.
    pub const DEFAULT_REFRESH_GRACE: Duration = Duration::seconds(10);
    /// Longest refresh grace window accepted: 60 seconds.
    pub const MAX_REFRESH_GRACE: Duration = Duration::seconds(60);
    /// Default clock-skew leeway for `exp` and `nbf`: 30 seconds.
    pub const DEFAULT_LEEWAY: Duration = Duration::seconds(30);
    /// Largest leeway accepted: 60 seconds.
    pub const MAX_LEEWAY: Duration = Duration::seconds(60);

    /// Settings signing with `key`, every other value at its default.
    pub fn new(key: SigningKey) -> Self {
        Self {
            key,
            previous: Vec::new(),
            audience: None,
            access_ttl: Self::DEFAULT_ACCESS_TTL,
            refresh_grace: Self::DEFAULT_REFRESH_GRACE,
            leeway: Self::DEFAULT_LEEWAY,
        }
    }

    /// Settings with a freshly generated key. Tokens then do not survive a restart and are not
    /// accepted by another process: configure a key ([`SigningKey::from_pkcs8_text`]) in
    /// production.
    pub fn generated(alg: TokenAlgorithm) -> Result<Self, KeyError> {
        Ok(Self::new(SigningKey::generate(alg)?))
    }

    /// Adds a previous key: published in the JWKS and accepted for verification, never used
    /// to sign (configuration-driven rotation across a fleet).
    pub fn previous_key(mut self, key: SigningKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The `aud` of issued tokens, required exactly when verifying. Default: the public URL.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The access-token lifetime (default 5 minutes, at most 1 hour).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// The refresh grace window (default 10 s, at most 60 s; zero turns it off).
    pub fn refresh_grace(mut self, grace: Duration) -> Self {
        self.refresh_grace = grace;
        self
    }

    /// The leeway for `exp` and `nbf` (default 30 s, at most 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The current signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.access_ttl < Duration::seconds(10) || self.access_ttl > Self::MAX_ACCESS_TTL {
            return Err("access_ttl must be between 10 seconds and 1 hour");
        }
        if self.refresh_grace.is_negative() || self.refresh_grace > Self::MAX_REFRESH_GRACE {
            return Err("refresh_grace must be between 0 and 60 seconds");
        }
        if self.leeway.is_negative() || self.leeway > Self::MAX_LEEWAY {
            return Err("leeway must be between 0 and 60 seconds");
        }
        if self
            .audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Err("the token audience must not be empty");
        }
        Ok(())
    }
}

/// The engine's token state: the key set and the settings.
#[derive(Debug)]
pub(crate) struct TokenState {
    keys: RwLock<KeySet>,
    audience: String,
    access_ttl: Duration,
    refresh_grace: Duration,
    leeway: Duration,
}

impl TokenState {
    pub(crate) fn new(config: TokenConfig, public_url: &str) -> Self {
        Self {
            keys: RwLock::new(KeySet::new(config.key, config.previous)),
            audience: config.audience.unwrap_or_else(|| public_url.to_owned()),
            access_ttl: config.access_ttl,
            refresh_grace: config.refresh_grace,
            leeway: config.leeway,
        }
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        // A panic while holding the lock cannot leave the set half-updated (each update is
        // one assignment or `retain`), so a poisoned lock is still consistent.
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, KeySet> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// An access token and a refresh token for one session.
///
/// `Debug` redacts both tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenPair {
    /// The signed access token (JWT), for `Authorization: Bearer`.
    pub access_token: SecretString,
    /// The refresh token, to exchange for the next pair.
    pub refresh_token: OpaqueToken,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the access token expires.
    pub access_expires_at: OffsetDateTime,
    /// The session both tokens belong to.
    pub session_id: SessionId,
}

/// A verified access token.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AccessToken {
    /// The user (`sub`).
    pub user_id: UserId,
    /// The session the token was minted from (`sid`).
    pub session_id: SessionId,
    /// The session's assurance level when the token was minted (`acr`).
    pub aal: Aal,
    /// How the user authenticated (`amr`).
    pub amr: Vec<AuthMethod>,
    /// When the user last authenticated actively (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// When the token was issued (`iat`).
    pub issued_at: OffsetDateTime,
    /// When it expires (`exp`).
    pub expires_at: OffsetDateTime,
    /// The token's unique id (`jti`).
    pub jti: String,
    /// The key that signed it (`kid`).
    pub key_id: String,
}

impl AccessToken {
    /// The caller as an [`AuthContext`], so handlers written for session cookies serve bearer
    /// tokens too. Its `expires_at` is the token's expiry.
    pub fn auth_context(&self) -> AuthContext {
        AuthContext {
            user_id: self.user_id,
            session_id: self.session_id,
            aal: self.aal,
            amr: self.amr.clone(),
            auth_time: self.auth_time,
            expires_at: self.expires_at,
        }
    }
}

/// Why an access token was refused. Every variant means "not authenticated" to a client
/// (HTTP 401 `invalid_token`) except [`TokenError::Store`] (retry) and
/// [`TokenError::NotConfigured`] (a server bug); the variants are for logs and tests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS, bad base64 or JSON, a `crit` header, or claims of the wrong shape.
    #[error("malformed access token")]
    Malformed,
    /// The `typ` header is not `at+jwt` (an ID token or another JWT).
    #[error("not an access token (typ)")]
    WrongType,
    /// No `kid`, or no accepted key has it (unknown, or retired).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify, or the header's `alg` is not the key's algorithm.
    #[error("bad signature or algorithm")]
    BadSignature,
    /// Past `exp` (plus leeway).
    #[error("access token expired")]
    Expired,
    /// Before `nbf` or `iat` (minus leeway).
    #[error("access token not yet valid")]
    NotYetValid,
    /// `iss` is not this application's public URL.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is not the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// Live verification: the token's session was ended (sign-out, revocation, expiry).
    #[error("session ended")]
    SessionEnded,
    /// Live verification: the store could not be read.
    #[error("storage unavailable")]
    Store(#[source] StoreError),
    /// Tokens are not configured ([`CiamBuilder::tokens`](crate::CiamBuilder::tokens)).
    #[error("tokens are not configured")]
    NotConfigured,
}

/// The claims as they travel.
#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    sid: String,
    auth_time: i64,
    acr: String,
    amr: Vec<String>,
}

fn aal_from_acr(acr: &str) -> Option<Aal> {
    [Aal::Aal1, Aal::Aal2, Aal::Aal3]
        .into_iter()
        .find(|a| a.acr() == acr)
}

fn unix(t: i64) -> Result<OffsetDateTime, TokenError> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| TokenError::Malformed)
}

impl Ciam {
    pub(crate) fn token_state(&self) -> Result<&TokenState, TokenError> {
        self.inner.tokens.as_ref().ok_or(TokenError::NotConfigured)
    }

    /// The JWKS document (RFC 7517 §5) of the keys verifiers should accept now: the current
    /// signing key and the previous keys not yet retired. `None` without tokens configured.
    pub fn jwks(&self) -> Option<Jwks> {
        let state = self.inner.tokens.as_ref()?;
        Some(state.read_keys().jwks(self.now()))
    }

    /// Generates a new signing key (of the current key's algorithm) and makes it current; the
    /// old key stays published and accepted for `access_ttl + leeway`. Returns the new `kid`.
    pub fn rotate_signing_key(&self) -> Result<String, KeyError> {
        let alg = self
            .token_state()
            .map_err(|_| KeyError::NotConfigured)?
            .read_keys()
            .current()
            .algorithm();
        self.rotate_signing_key_to(SigningKey::generate(alg)?)
    }

    /// Makes `key` the signing key; the old one stays published and accepted for
    /// `access_ttl + leeway`. Returns the new `kid`.
    pub fn rotate_signing_key_to(&self, key: SigningKey) -> Result<String, KeyError> {
        let state = self.token_state().map_err(|_| KeyError::NotConfigured)?;
        let kid = key.kid().to_owned();
        let now = self.now();
        let retire_at = now + state.access_ttl + state.leeway;
        state.write_keys().rotate(key, now, retire_at);
        tracing::info!(kid = %kid, "token signing key rotated");
        Ok(kid)
    }

    /// Stops publishing and accepting a previous key now (for example a compromised one).
    /// Tokens it signed are refused from then on. The current key cannot be retired.
    pub fn retire_signing_key(&self, kid: &str) -> Result<(), KeyError> {
        let state = self.token_state().map_err(|_| KeyError::NotConfigured)?;
        state.write_keys().retire(kid)?;
        tracing::info!(kid, "token signing key retired");
        Ok(())
    }

    /// Signs an access token for `session` at `now`.
    fn mint_access_token(
        &self,
        state: &TokenState,
        session: &Session,
        now: OffsetDateTime,
    ) -> Result<(SecretString, OffsetDateTime), Error> {
        let expires_at = (now + state.access_ttl).min(session.expires_at());
        let jti = URL_SAFE_NO_PAD.encode(crate::rng::array::<16>(self.inner.rng.as_ref())?);
        let claims = Claims {
            iss: self.inner.public_url.clone(),
            sub: session.user_id.to_string(),
            aud: state.audience.clone(),
            exp: expires_at.unix_timestamp(),
            nbf: now.unix_timestamp(),
            iat: now.unix_timestamp(),
            jti,
            sid: session.id.to_string(),
            auth_time: session.auth_time.unix_timestamp(),
            acr: session.aal.acr().to_owned(),
            amr: session.amr.iter().map(|m| m.as_str().to_owned()).collect(),
        };
        let key = state.read_keys().current();
        let mut header = jsonwebtoken::Header::new(key.algorithm().jwt());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(key.kid().to_owned());
        let jwt = jsonwebtoken::encode(&header, &claims, key.encoding())
            .map_err(|e| Error::Internal(Box::new(e)))?;
        Ok((SecretString::new(jwt), expires_at))
    }

    /// Verifies an access token without touching any store; see the
    /// [module docs](crate::tokens#verifying-which-call-to-use) for what is checked and
    /// when to prefer [`Ciam::verify_access_token_live`].
    pub fn verify_access_token(&self, token: &str) -> Result<AccessToken, TokenError> {
        let state = self.token_state()?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        // `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::WrongType);
        }
        let now = self.now();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| state.read_keys().find(kid, now))
            .ok_or(TokenError::UnknownKey)?;
        // The key decides the algorithm: a header naming any other (HS256 with the public key
        // as the secret, RS256...) is refused before any signature check.
        if header.alg != key.algorithm().jwt() {
            return Err(TokenError::BadSignature);
        }
        let mut validation = jsonwebtoken::Validation::new(key.algorithm().jwt());
        // Time and the registered claims are checked below against the engine's clock.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Claims>(token, key.decoding(), &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
                _ => TokenError::Malformed,
            },
        )?;
        let c = data.claims;
        if c.iss != self.inner.public_url {
            return Err(TokenError::WrongIssuer);
        }
        if c.aud != state.audience {
            return Err(TokenError::WrongAudience);
        }
        let (exp, nbf, iat) = (unix(c.exp)?, unix(c.nbf)?, unix(c.iat)?);
        if now >= exp + state.leeway {
            return Err(TokenError::Expired);
        }
        if now + state.leeway < nbf || now + state.leeway < iat {
            return Err(TokenError::NotYetValid);
        }
        let amr = c
            .amr
            .iter()
            .map(|m| AuthMethod::parse(m))
            .collect::<Option<Vec<_>>>()
            .ok_or(TokenError::Malformed)?;
        Ok(AccessToken {
            user_id: c.sub.parse().map_err(|_| TokenError::Malformed)?,
            session_id: c.sid.parse().map_err(|_| TokenError::Malformed)?,
            aal: aal_from_acr(&c.acr).ok_or(TokenError::Malformed)?,
            amr,
            auth_time: unix(c.auth_time)?,
            issued_at: iat,
            expires_at: exp,
            jti: c.jti,
            key_id: key.kid().to_owned(),
        })
    }

    /// Verifies an access token like [`Ciam::verify_access_token`], then checks in the session
    /// store that its session still exists and has not expired (one read). Refused with
    /// [`TokenError::SessionEnded`] after sign-out, revocation or the end of the session.
    pub async fn verify_access_token_live(&self, token: &str) -> Result<AccessToken, TokenError> {
        let verified = self.verify_access_token(token)?;
        let session = self
            .live_session(verified.user_id, verified.session_id)
            .await
            .map_err(TokenError::Store)?;
        match session {
            Some(_) => Ok(verified),
            None => Err(TokenError::SessionEnded),
        }
    }

    /// The user's session `id` if it exists and has not expired.
    async fn live_session(
        &self,
        user: UserId,
        id: SessionId,
    ) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        Ok(self
            .inner
            .sessions
            .sessions_for_user(user, now)
            .await?
            .into_iter()
            .find(|s| s.id == id && !s.is_expired(now)))
    }
}
