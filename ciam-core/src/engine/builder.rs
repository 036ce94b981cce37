//! The validated builder for [`Ciam`].

use std::sync::Arc;

use super::config::{LinkPaths, Policy};
use super::{Ciam, Inner};
use crate::clock::{Clock, SystemClock};
use crate::event::{EventSink, NoEvents};
use crate::mail::{ConsoleMailer, DefaultTemplates, MailTemplates, Mailer};
use crate::password::{PasswordConfig, PasswordError, PasswordHasher, PasswordPolicy};
use crate::profile::ProfileSchema;
use crate::rng::{SecureRandom, SystemRandom};
use crate::store::{
    AuditStore, Backend, ChallengeStore, CounterStore, CredentialStore, IdentityStore, SessionStore,
};

/// The engine could not be built from the given configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required store was not given.
    #[error("missing store: {0} (call .backend(...) or the matching setter)")]
    MissingStore(&'static str),
    /// The public URL is not an absolute http(s) URL without query or fragment.
    #[error("invalid public URL: {0}")]
    InvalidPublicUrl(String),
    /// A policy value is out of range.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
    /// The password configuration was refused.
    #[error("invalid password configuration")]
    Password(#[from] PasswordError),
}

/// Builds a [`Ciam`]. Only the backend is required; everything else has a safe default.
///
/// ```no_run
/// # async fn demo(backend: std::sync::Arc<impl ciam_core::store::Backend>) -> Result<(), ciam_core::BuildError> {
/// use ciam_core::Ciam;
///
/// let ciam = Ciam::builder()
///     .backend(backend)
///     .app_name("Acme")
///     .public_url("https://acme.example")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Default)]
#[must_use]
pub struct CiamBuilder {
    identities: Option<Arc<dyn IdentityStore>>,
    credentials: Option<Arc<dyn CredentialStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    challenges: Option<Arc<dyn ChallengeStore>>,
    audit: Option<Arc<dyn AuditStore>>,
    counters: Option<Arc<dyn CounterStore>>,
    clock: Option<Arc<dyn Clock>>,
    rng: Option<Arc<dyn SecureRandom>>,
    mailer: Option<Arc<dyn Mailer>>,
    templates: Option<Arc<dyn MailTemplates>>,
    events: Option<Arc<dyn EventSink>>,
    pub(super) privacy: super::privacy::PrivacyConfig,
    consent_gate: Option<Arc<dyn super::consent_gate::ConsentGate>>,
    password: Option<PasswordConfig>,
    password_policy: Option<PasswordPolicy>,
    profile: Option<ProfileSchema>,
    policy: Option<Policy>,
    app_name: Option<String>,
    public_url: Option<String>,
    paths: Option<LinkPaths>,
    mfa: Option<super::mfa::MfaConfig>,
    risk: Option<Arc<dyn crate::risk::RiskPolicy>>,
    breached: Option<Arc<dyn crate::risk::BreachedPasswords>>,
    sms: Option<Arc<dyn crate::risk::SmsSender>>,
    bot_check: Option<Arc<dyn crate::risk::BotCheck>>,
    user_cache_ttl: Option<std::time::Duration>,
    #[cfg(feature = "passkeys")]
    passkeys: Option<super::passkeys::PasskeyConfig>,
    #[cfg(feature = "tokens")]
    tokens: Option<super::tokens::TokenConfig>,
    #[cfg(feature = "federation")]
    federation: Option<super::federation::FederationConfig>,
}

impl std::fmt::Debug for CiamBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiamBuilder")
            .field("app_name", &self.app_name)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl CiamBuilder {
    /// Sets how long [`Ciam::user_for_display`](super::Ciam::user_for_display) may answer
    /// from the in-process copy of a user (default 1 s, the session cache's bound; zero reads
    /// the store every time). Copies are replaced by every write made through this engine;
    /// the TTL bounds how long a write made by another process can go unseen.
    pub fn user_cache_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.user_cache_ttl = Some(ttl);
        self
    }

    /// Uses one backend for every store.
    pub fn backend<B: Backend>(mut self, backend: Arc<B>) -> Self {
        self.identities = Some(backend.clone());
        self.credentials = Some(backend.clone());
        self.sessions = Some(backend.clone());
        self.challenges = Some(backend.clone());
        self.audit = Some(backend.clone());
        self.counters = Some(backend);
        self
    }

    /// Overrides the rate-limit counter store (for example Redis, shared by every instance).
    pub fn counter_store(mut self, store: Arc<dyn CounterStore>) -> Self {
        self.counters = Some(store);
        self
    }

    /// Turns on adaptive risk at sign-in: every sign-in whose first factor passed is assessed
    /// by `policy`, recorded with its explanation, and allowed, challenged or denied (see
    /// [`crate::risk`]).
    pub fn risk_policy(mut self, policy: Arc<dyn crate::risk::RiskPolicy>) -> Self {
        self.risk = Some(policy);
        self
    }

    /// Checks passwords at sign-in against a breach corpus (a risk signal) and refuses
    /// breached passwords when one is set or changed.
    pub fn breached_passwords(mut self, check: Arc<dyn crate::risk::BreachedPasswords>) -> Self {
        self.breached = Some(check);
        self
    }

    /// Asks `check` (a CAPTCHA or bot-management service) about every sign-in the risk
    /// policy assesses: its score feeds the `bot_score` rule (with the application-supplied
    /// [`RequestContext::bot_score`](crate::RequestContext), the higher counts), and a request
    /// whose token passed the CAPTCHA is not asked for one again. It also verifies
    /// [`MfaProof::Captcha`](crate::MfaProof) answers. Needs [`Self::risk_policy`]: without a
    /// policy nothing would act on the score, so [`Self::build`] refuses that.
    pub fn bot_check(mut self, check: Arc<dyn crate::risk::BotCheck>) -> Self {
        self.bot_check = Some(check);
        self
    }

    /// Sends SMS sign-in codes ([`Ciam::start_sms_code`]) through `sender`.
    pub fn sms(mut self, sender: Arc<dyn crate::risk::SmsSender>) -> Self {
        self.sms = Some(sender);
        self
    }

    /// Turns on second factors (TOTP and recovery codes) with the key that seals TOTP secrets
    /// at rest.
    pub fn mfa(mut self, config: super::mfa::MfaConfig) -> Self {
        self.mfa = Some(config);
        self
    }

    /// Overrides the session store (for example a cache or another database).
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// Overrides the identity store.
    pub fn identity_store(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.identities = Some(store);
        self
    }

    /// Overrides the credential store.
    pub fn credential_store(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.credentials = Some(store);
        self
    }

    /// Overrides the challenge store.
    pub fn challenge_store(mut self, store: Arc<dyn ChallengeStore>) -> Self {
        self.challenges = Some(store);
        self
    }

    /// Overrides the audit store.
    pub fn audit_store(mut self, store: Arc<dyn AuditStore>) -> Self {
        self.audit = Some(store);
        self
    }

    /// Sets the clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sets the random source (default: the OS CSPRNG).
    pub fn rng(mut self, rng: Arc<dyn SecureRandom>) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Sets the mail transport (default: [`ConsoleMailer`], for development).
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Sets the mail templates (default: [`DefaultTemplates`]).
    pub fn templates(mut self, templates: Arc<dyn MailTemplates>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Sets the event sink (default: discard).
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// Sets the consent gate every successful sign-in asks which consents the user must give
    /// (again), answered in [`SignedIn::consent_required`](crate::SignedIn::consent_required);
    /// see [`ConsentGate`](crate::ConsentGate). Default: none (nothing is asked).
    pub fn consent_gate(mut self, gate: Arc<dyn super::consent_gate::ConsentGate>) -> Self {
        self.consent_gate = Some(gate);
        self
    }

    /// Sets password hashing (parameters, pepper, pool size).
    pub fn password_config(mut self, config: PasswordConfig) -> Self {
        self.password = Some(config);
        self
    }

    /// Sets the password policy (length, blocklist).
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = Some(policy);
        self
    }

    /// Sets the profile schema.
    pub fn profile_schema(mut self, schema: ProfileSchema) -> Self {
        self.profile = Some(schema);
        self
    }

    /// Sets the flow policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Names the application in mail and refuses it inside passwords. Default `ciam`.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// The public base URL mailed links start with, such as `https://acme.example`.
    /// Default `http://localhost:3000`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Sets the paths mailed links point to.
    pub fn link_paths(mut self, paths: LinkPaths) -> Self {
        self.paths = Some(paths);
        self
    }

    /// Turns on the passkey flows (feature `passkeys`). Every origin of the relying party
    /// should be the public URL's origin or another origin of the same application.
    #[cfg(feature = "passkeys")]
    pub fn passkeys(mut self, config: super::passkeys::PasskeyConfig) -> Self {
        self.passkeys = Some(config);
        self
    }

    /// Turns on sign-in with external identity providers (feature `federation`).
    #[cfg(feature = "federation")]
    pub fn federation(mut self, config: super::federation::FederationConfig) -> Self {
        self.federation = Some(config);
        self
    }

    /// Turns on API tokens (feature `tokens`): JWT access tokens, the JWKS document and
    /// rotating refresh tokens (see [`crate::tokens`]).
    #[cfg(feature = "tokens")]
    pub fn tokens(mut self, config: super::tokens::TokenConfig) -> Self {
        self.tokens = Some(config);
        self
    }

    /// Validates the configuration and starts the engine (and its hashing pool).
    pub fn build(self) -> Result<Ciam, BuildError> {
        let public_url = validate_public_url(
            self.public_url
                .as_deref()
                .unwrap_or("http://localhost:3000"),
        )?;
        let policy = self.policy.unwrap_or_default();
        validate_policy(&policy)?;
        if self.bot_check.is_some() && self.risk.is_none() {
            return Err(BuildError::InvalidPolicy(
                "bot_check needs a risk_policy to act on its score",
            ));
        }
        let app_name = self.app_name.unwrap_or_else(|| "ciam".to_owned());
        if app_name.trim().is_empty() {
            return Err(BuildError::InvalidPolicy("app_name must not be empty"));
        }
        #[cfg(feature = "tokens")]
        let tokens = match self.tokens {
            Some(config) => {
                config.validate().map_err(BuildError::InvalidPolicy)?;
                Some(super::tokens::TokenState::new(config, &public_url))
            }
            None => None,
        };
        let rng: Arc<dyn SecureRandom> = self.rng.unwrap_or_else(|| Arc::new(SystemRandom::new()));
        let hasher = PasswordHasher::new(self.password.unwrap_or_default(), Arc::clone(&rng))?;
        let user_cache = Arc::new(super::user_cache::UserCache::new(
            self.user_cache_ttl
                .unwrap_or(std::time::Duration::from_secs(1)),
            100_000,
        ));
        let inner = Inner {
            identities: Arc::new(super::user_cache::CachingIdentities {
                inner: self
                    .identities
                    .ok_or(BuildError::MissingStore("identities"))?,
                cache: Arc::clone(&user_cache),
            }),
            user_cache,
            credentials: self
                .credentials
                .ok_or(BuildError::MissingStore("credentials"))?,
            sessions: self.sessions.ok_or(BuildError::MissingStore("sessions"))?,
            challenges: self
                .challenges
                .ok_or(BuildError::MissingStore("challenges"))?,
            audit: self.audit.ok_or(BuildError::MissingStore("audit"))?,
            counters: self.counters.ok_or(BuildError::MissingStore("counters"))?,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            rng,
            mailer: self.mailer.unwrap_or_else(|| Arc::new(ConsoleMailer)),
            templates: self
                .templates
                .unwrap_or_else(|| Arc::new(DefaultTemplates::new(app_name.clone()))),
            events: self.events.unwrap_or_else(|| Arc::new(NoEvents)),
            privacy: self.privacy,
            consent_gate: self.consent_gate,
            hasher,
            password_policy: self.password_policy.unwrap_or_default(),
            profile: self.profile.unwrap_or_default(),
            policy,
            app_name,
            public_url,
            paths: self.paths.unwrap_or_default(),
            mfa: self.mfa,
            risk: self.risk,
            breached: self.breached,
            sms: self.sms,
            bot_check: self.bot_check,
            #[cfg(feature = "passkeys")]
            passkeys: self.passkeys,
            #[cfg(feature = "tokens")]
            tokens,
            #[cfg(feature = "federation")]
            federation: self.federation,
        };
        Ok(Ciam {
            inner: Arc::new(inner),
        })
    }
}

fn validate_public_url(url: &str) -> Result<String, BuildError> {
    let bad = || BuildError::InvalidPublicUrl(url.to_owned());
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.contains(['?', '#', ' ']) || host.contains('@') {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn validate_policy(p: &Policy) -> Result<(), BuildError> {
    let s = &p.session;
    if !s.idle_timeout.is_positive() || !s.absolute_lifetime.is_positive() {
        return Err(BuildError::InvalidPolicy(
            "session lifetimes must be positive",
        ));
    }
    if s.idle_timeout > s.absolute_lifetime {
        return Err(BuildError::InvalidPolicy(
            "idle timeout must not exceed the absolute lifetime",
        ));
    }
    if s.touch_interval.is_negative() || s.touch_interval >= s.idle_timeout {
        return Err(BuildError::InvalidPolicy(
            "touch interval must be shorter than the idle timeout",
        ));
    }
    for ttl in [
        p.verify_email_ttl,
        p.reset_password_ttl,
        p.change_email_ttl,
        p.recent_auth_max_age,
    ] {
        if !ttl.is_positive() {
            return Err(BuildError::InvalidPolicy(
                "link lifetimes and the recent-auth age must be positive",
            ));
        }
    }
    if p.reset_password_ttl > time::Duration::hours(24) {
        return Err(BuildError::InvalidPolicy(
            "a reset link must expire within 24 hours",
        ));
    }
    let t = &p.throttle;
    if t.consecutive_failures == 0
        || t.consecutive_failures > super::throttle::ThrottlePolicy::MAX_CONSECUTIVE_FAILURES
    {
        return Err(BuildError::InvalidPolicy(
            "throttle.consecutive_failures must be 1 to 100 (NIST SP 800-63B 5.2.2)",
        ));
    }
    if t.consecutive_memory < t.window {
        return Err(BuildError::InvalidPolicy(
            "throttle.consecutive_memory must be at least the throttle window",
        ));
    }
    if p.mails_per_hour == 0 {
        return Err(BuildError::InvalidPolicy(
            "mails_per_hour must be at least 1",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_must_be_absolute_http() {
        assert_eq!(
            validate_public_url("https://a.example/").unwrap(),
            "https://a.example"
        );
        assert_eq!(
            validate_public_url("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "a.example",
            "ftp://a",
            "https://",
            "https://a?x=1",
            "https://u@a",
            "javascript:alert(1)",
        ] {
            assert!(validate_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_bounds() {
        let mut p = Policy::default();
        assert!(validate_policy(&p).is_ok());
        p.session.idle_timeout = time::Duration::days(60);
        assert!(validate_policy(&p).is_err());
        let p = Policy {
            mails_per_hour: 0,
            ..Policy::default()
        };
        assert!(validate_policy(&p).is_err());
        let p = Policy {
            reset_password_ttl: time::Duration::days(3),
            ..Policy::default()
        };
        assert!(validate_policy(&p).is_err());
        for (n, ok) in [(0, false), (1, true), (100, true), (101, false)] {
            let mut p = Policy::default();
            p.throttle.consecutive_failures = n;
            assert_eq!(validate_policy(&p).is_ok(), ok, "{n}");
        }
        let mut p = Policy::default();
        p.throttle.consecutive_memory = p.throttle.window / 2;
        assert!(validate_policy(&p).is_err());
    }
}
