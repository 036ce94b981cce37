//! The engine: one [`Ciam`] value that runs every flow.

pub(crate) mod account;
mod assess;
mod builder;
pub(crate) mod config;
pub mod consent_gate;
pub(crate) mod context;
mod credentials;
#[cfg(feature = "federation")]
pub mod federation;
pub(crate) mod maintenance;
pub(crate) mod mfa;
mod observe;
pub(crate) mod outcome;
#[cfg(feature = "passkeys")]
pub(crate) mod passkeys;
pub(crate) mod passwordless;
pub mod privacy;
mod sessions;
pub(crate) mod throttle;
#[cfg(feature = "tokens")]
pub mod tokens;
mod user_cache;

use std::sync::Arc;

use time::OffsetDateTime;

pub use builder::{BuildError, CiamBuilder};

use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::challenge::{Challenge, ChallengePurpose};
use crate::clock::Clock;
use crate::credential::CredentialKind;
use crate::error::{Error, Result};
use crate::event::{Event, EventSink};
use crate::id::{AuditId, SessionId, UserId};
use crate::identifier::Email;
use crate::mail::{MailKind, MailTemplates, Mailer, OutgoingMail};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::profile::ProfileSchema;
use crate::rng::SecureRandom;
use crate::secret::{OpaqueToken, SecretString};
use crate::session::{Aal, AuthMethod, Session};
use crate::store::{
    AuditStore, ChallengeStore, CounterStore, CredentialStore, IdentityStore, SessionStore,
};
use crate::user::User;
use config::{LinkPaths, Policy};
use context::RequestContext;

/// The engine. Cheap to clone (one `Arc`); share it across handlers and threads.
///
/// Build it with [`Ciam::builder`].
#[derive(Clone)]
pub struct Ciam {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    identities: Arc<dyn IdentityStore>,
    user_cache: Arc<user_cache::UserCache>,
    credentials: Arc<dyn CredentialStore>,
    sessions: Arc<dyn SessionStore>,
    challenges: Arc<dyn ChallengeStore>,
    audit: Arc<dyn AuditStore>,
    counters: Arc<dyn CounterStore>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    mailer: Arc<dyn Mailer>,
    templates: Arc<dyn MailTemplates>,
    events: Arc<dyn EventSink>,
    privacy: privacy::PrivacyConfig,
    consent_gate: Option<Arc<dyn consent_gate::ConsentGate>>,
    hasher: PasswordHasher,
    password_policy: PasswordPolicy,
    profile: ProfileSchema,
    policy: Policy,
    app_name: String,
    public_url: String,
    paths: LinkPaths,
    mfa: Option<mfa::MfaConfig>,
    risk: Option<Arc<dyn crate::risk::RiskPolicy>>,
    breached: Option<Arc<dyn crate::risk::BreachedPasswords>>,
    sms: Option<Arc<dyn crate::risk::SmsSender>>,
    bot_check: Option<Arc<dyn crate::risk::BotCheck>>,
    #[cfg(feature = "passkeys")]
    passkeys: Option<passkeys::PasskeyConfig>,
    #[cfg(feature = "tokens")]
    tokens: Option<tokens::TokenState>,
    #[cfg(feature = "federation")]
    federation: Option<federation::FederationConfig>,
}

/// One decision for the audit log, built fluently at the call site.
struct Decision<'a> {
    action: AuditAction,
    outcome: AuditOutcome,
    reason: &'a str,
    user: Option<UserId>,
    session: Option<SessionId>,
    detail: serde_json::Value,
}

impl<'a> Decision<'a> {
    fn new(action: AuditAction, outcome: AuditOutcome, reason: &'a str) -> Self {
        Self {
            action,
            outcome,
            reason,
            user: None,
            session: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    fn success(action: AuditAction, reason: &'a str) -> Self {
        Self::new(action, AuditOutcome::Success, reason)
    }

    fn failure(action: AuditAction, reason: &'a str) -> Self {
        Self::new(action, AuditOutcome::Failure, reason)
    }

    fn user(mut self, user: impl Into<Option<UserId>>) -> Self {
        self.user = user.into();
        self
    }

    fn session(mut self, session: impl Into<Option<SessionId>>) -> Self {
        self.session = session.into();
        self
    }

    fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

impl std::fmt::Debug for Ciam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ciam")
            .field("app_name", &self.inner.app_name)
            .field("public_url", &self.inner.public_url)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Ciam {
    /// Starts building an engine.
    pub fn builder() -> CiamBuilder {
        CiamBuilder::default()
    }

    /// The flow policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The profile schema in force.
    pub fn profile_schema(&self) -> &ProfileSchema {
        &self.inner.profile
    }

    /// The application name used in mail.
    pub fn app_name(&self) -> &str {
        &self.inner.app_name
    }

    /// Whether second factors are configured ([`CiamBuilder::mfa`]).
    pub fn mfa_enabled(&self) -> bool {
        self.inner.mfa.is_some()
    }

    /// The public base URL (no trailing slash).
    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    /// The password hasher (shared pool).
    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// Reads an account.
    pub async fn user(&self, id: UserId) -> Result<User> {
        self.inner
            .identities
            .user_by_id(id)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// Reads an account for display (a "who am I" endpoint, a page header): from the
    /// in-process copy when it is younger than the user-cache TTL (default 1 s; see
    /// [`CiamBuilder::user_cache_ttl`]), else from the store. Writes made through this engine
    /// are seen at once; a write made by another process within the TTL. Use [`Self::user`]
    /// to read a user you are about to change.
    pub async fn user_for_display(&self, id: UserId) -> Result<Arc<User>> {
        if let Some(user) = self.inner.user_cache.get(id) {
            return Ok(user);
        }
        self.user(id).await.map(Arc::new)
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn link(&self, path: &str, token: &OpaqueToken) -> String {
        format!("{}{}?token={}", self.inner.public_url, path, token.expose())
    }

    fn page(&self, path: &str) -> String {
        format!("{}{}", self.inner.public_url, path)
    }

    /// Writes a decision to the audit log (and to `tracing`). A failure to write is logged,
    /// not propagated: the flow's own result has already been decided and stored.
    async fn record(&self, d: Decision<'_>, ctx: &RequestContext) {
        let id = match AuditId::generate(self.inner.rng.as_ref()) {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, action = d.action.as_str(), "audit id generation failed");
                return;
            }
        };
        tracing::info!(
            action = d.action.as_str(),
            outcome = d.outcome.as_str(),
            reason = d.reason,
            user = d.user.map(|u| u.to_string()),
            "ciam audit"
        );
        let entry = AuditEntry {
            seq: 0,
            id,
            at: self.now(),
            action: d.action,
            outcome: d.outcome,
            reason: d.reason.to_owned(),
            user_id: d.user,
            session_id: d.session,
            ip: ctx.ip,
            user_agent: ctx.user_agent.clone(),
            detail: d.detail,
            erased: false,
        };
        if let Err(e) = self.append_entry(&entry).await {
            tracing::error!(error = %e, action = d.action.as_str(), "audit write failed");
        }
    }

    /// Publishes `event`, after the engine's own reaction to it: a password reset or change
    /// ends the account's run of consecutive password failures (the guesses were against a
    /// password that no longer exists; see [`throttle`]). Reacting here covers every flow that
    /// changes a password, since each announces it with [`Event::PasswordChanged`].
    async fn emit(&self, event: Event) {
        if let Event::PasswordChanged { user_id } = &event {
            let ended = match self.inner.identities.user_by_id(*user_id).await {
                Ok(Some(user)) => self.end_failure_run(&user).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = ended {
                tracing::warn!(error = %e, "could not end the failure run after a password change");
            }
        }
        self.inner.events.publish(&event).await;
    }

    /// Renders and sends a mail in the background, so that whether a mail goes out (which
    /// depends on whether an account exists) does not show in the response time. Failures
    /// are logged.
    fn send_mail(&self, to: &Email, kind: MailKind) {
        let mail = OutgoingMail::new(to.clone(), self.inner.templates.render(&kind));
        let mailer = Arc::clone(&self.inner.mailer);
        let send = async move {
            if let Err(e) = mailer.send(&mail).await {
                tracing::error!(error = %e, subject = %mail.subject, "mail delivery failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(send);
            }
            Err(_) => tracing::error!("no tokio runtime: mail not sent"),
        }
    }

    /// Issues a one-time link for `purpose` and mails it to `to`, within the hourly mail limit
    /// per account and purpose; over the limit it records a throttled decision and sends
    /// nothing. Returns whether a link went out. The challenge remembers the address it was
    /// sent to, so a link only ever proves that address.
    async fn send_link(
        &self,
        user: UserId,
        to: &Email,
        purpose: ChallengePurpose,
        ctx: &RequestContext,
    ) -> Result<bool> {
        let (policy, paths) = (&self.inner.policy, &self.inner.paths);
        let (ttl, path, throttled) = match purpose {
            ChallengePurpose::VerifyEmail => (
                policy.verify_email_ttl,
                &paths.verify_email,
                "verification_mail_limit",
            ),
            ChallengePurpose::ResetPassword => (
                policy.reset_password_ttl,
                &paths.reset_password,
                "reset_mail_limit",
            ),
            ChallengePurpose::ChangeEmail => (
                policy.change_email_ttl,
                &paths.verify_email,
                "change_email_mail_limit",
            ),
            other => {
                return Err(Error::Internal(
                    format!("no mailed link for challenge purpose {}", other.as_str()).into(),
                ));
            }
        };
        if !self
            .message_quota(user, purpose.as_str(), throttled, ctx)
            .await?
        {
            return Ok(false);
        }
        let now = self.now();
        let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let payload = serde_json::json!({ "email": to.as_str() });
        let challenge = Challenge::new(token.hash(), purpose, Some(user), payload, now, now + ttl);
        self.inner.challenges.insert_challenge(&challenge).await?;
        let link = self.link(path, &token);
        let kind = match purpose {
            ChallengePurpose::VerifyEmail => MailKind::VerifyEmail { link },
            ChallengePurpose::ResetPassword => MailKind::ResetPassword { link },
            _ => MailKind::ConfirmNewEmail { link },
        };
        self.send_mail(to, kind);
        Ok(true)
    }

    /// Counts one more message of `kind` to `user` if the hourly limit
    /// ([`Policy::mails_per_hour`](crate::Policy)) allows it, and says whether it did.
    /// Counted on the counter store in a sliding hour, not as live challenges: a link that
    /// expired or was used was still a message. A refusal is recorded as `throttled` with
    /// `reason`.
    async fn message_quota(
        &self,
        user: UserId,
        kind: &str,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<bool> {
        const WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
        let now = self.now();
        let key = format!("mail:{kind}:{user}");
        let counters = &self.inner.counters;
        let sent = self.sliding_count(&key, WINDOW, now).await?;
        if sent >= u64::from(self.inner.policy.mails_per_hour) {
            self.record(
                Decision::failure(AuditAction::Throttled, reason)
                    .user(user)
                    .detail(serde_json::json!({"kind": kind})),
                ctx,
            )
            .await;
            return Ok(false);
        }
        counters.hit(&key, WINDOW, now).await?;
        Ok(true)
    }

    /// Tells the owner of `to` that someone tried to use the address for another account.
    fn account_exists_notice(&self, to: &Email) {
        let kind = MailKind::AccountExists {
            sign_in_link: self.page(&self.inner.paths.sign_in),
            reset_link: self.page(&self.inner.paths.forgot_password),
        };
        self.send_mail(to, kind);
    }

    async fn create_session(
        &self,
        user: UserId,
        amr: Vec<AuthMethod>,
        aal: Aal,
        auth_time: OffsetDateTime,
        ctx: &RequestContext,
    ) -> Result<(OpaqueToken, Session)> {
        let now = self.now();
        let policy = self.inner.policy.session;
        let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let absolute = now + policy.absolute_lifetime;
        let session = Session {
            id: SessionId::generate(self.inner.rng.as_ref())?,
            user_id: user,
            token_hash: token.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: (now + policy.idle_timeout).min(absolute),
            absolute_expires_at: absolute,
            auth_time,
            amr,
            aal,
            device: ctx.device(),
        };
        self.inner.sessions.insert_session(&session).await?;
        Ok((token, session))
    }

    /// Checks a new password: the policy, then (when configured) the breach corpus. A breach
    /// check that fails is logged and does not block the change (the policy still applies).
    async fn check_new_password(
        &self,
        password: &SecretString,
        email: Option<&Email>,
    ) -> Result<()> {
        let words = self.context_words(email);
        self.inner.password_policy.check(
            password,
            &words,
            self.inner.policy.password_is_single_factor,
        )?;
        if let Some(check) = &self.inner.breached {
            match check.is_breached(password).await {
                Ok(true) => return Err(crate::password::PolicyViolation::Breached.into()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "breached-password check failed; ignored"),
            }
        }
        Ok(())
    }

    /// Words a password must not contain: the application name and the e-mail local part.
    fn context_words<'a>(&'a self, email: Option<&'a Email>) -> Vec<&'a str> {
        let mut words = vec![self.inner.app_name.as_str()];
        if let Some(e) = email {
            words.push(e.local_part());
        }
        words
    }

    /// How many ways the user has to sign in: passwords, passkeys and linked external
    /// identities ("never remove the last way to sign in" counts these).
    #[cfg(any(feature = "passkeys", feature = "federation"))]
    async fn sign_in_methods(&self, user: UserId) -> Result<usize> {
        let mut n = 0;
        for kind in [
            crate::credential::CredentialKind::Password,
            crate::credential::CredentialKind::Passkey,
            crate::credential::CredentialKind::Federated,
        ] {
            n += self
                .inner
                .credentials
                .credentials_for_user(user, kind)
                .await?
                .len();
        }
        Ok(n)
    }

    /// Takes everything an account could sign in or act with: every credential of every
    /// kind, every session, and every pending one-time challenge bound to the user. Used when
    /// an account closes and when an unverified one is superseded, so the two can never drift
    /// apart on a newly added kind. Returns (credentials removed, sessions ended).
    pub(crate) async fn strip_account(&self, user: UserId) -> Result<(u64, u64)> {
        let mut removed = 0_u64;
        for kind in [
            CredentialKind::Password,
            CredentialKind::Passkey,
            CredentialKind::Totp,
            CredentialKind::RecoveryCodes,
            // Linked external identities go too, so the identity can sign up afresh.
            CredentialKind::Federated,
        ] {
            for c in self
                .inner
                .credentials
                .credentials_for_user(user, kind)
                .await?
            {
                if self.inner.credentials.delete_credential(c.id).await? {
                    removed += 1;
                }
            }
        }
        let sessions = self.inner.sessions.delete_user_sessions(user, None).await?;
        for purpose in [
            ChallengePurpose::VerifyEmail,
            ChallengePurpose::ResetPassword,
            ChallengePurpose::ChangeEmail,
            ChallengePurpose::PasskeyRegistration,
            ChallengePurpose::MfaPending,
            ChallengePurpose::TotpEnrolment,
            ChallengePurpose::TrustedDevice,
            ChallengePurpose::MagicLink,
            ChallengePurpose::SignInCode,
            ChallengePurpose::RefreshToken,
            ChallengePurpose::RefreshTokenSpent,
            ChallengePurpose::FederationLink,
        ] {
            self.inner
                .challenges
                .delete_challenges(user, purpose)
                .await?;
        }
        Ok((removed, sessions))
    }

    /// One of the signed-in user's credentials of `kind`; another user's, another kind's or
    /// an unknown id is [`Error::NotFound`] (the same answer, so ids cannot be probed).
    #[cfg(any(feature = "passkeys", feature = "federation"))]
    pub(crate) async fn own_credential(
        &self,
        auth: &context::AuthContext,
        id: crate::id::CredentialId,
        kind: CredentialKind,
    ) -> Result<crate::credential::Credential> {
        match self.inner.credentials.credential_by_id(id).await? {
            Some(c) if c.user_id == auth.user_id && c.kind == kind => Ok(c),
            _ => Err(Error::NotFound),
        }
    }

    /// Removes `credential` (a way to sign in) unless it is the account's last one: refused
    /// with [`Error::LastSignInMethod`] (and a `last_sign_in_method` failure under `action`)
    /// even when two removals race, since whoever finds none left puts theirs back.
    #[cfg(any(feature = "passkeys", feature = "federation"))]
    async fn remove_sign_in_credential(
        &self,
        auth: &context::AuthContext,
        credential: &crate::credential::Credential,
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<()> {
        let refuse = || async {
            self.record(
                Decision::failure(action, "last_sign_in_method")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(serde_json::json!({"credential": credential.id})),
                ctx,
            )
            .await;
            Err(Error::LastSignInMethod)
        };
        if self.sign_in_methods(auth.user_id).await? <= 1 {
            return refuse().await;
        }
        if !self
            .inner
            .credentials
            .delete_credential(credential.id)
            .await?
        {
            return Err(Error::NotFound);
        }
        if self.sign_in_methods(auth.user_id).await? == 0 {
            self.inner.credentials.insert_credential(credential).await?;
            return refuse().await;
        }
        Ok(())
    }

    /// Re-reads and rewrites a user until the write applies (bounded), for changes that must
    /// not be lost to a concurrent edit.
    async fn modify_user(
        &self,
        id: UserId,
        mut change: impl FnMut(&mut User) -> Result<()>,
    ) -> Result<User> {
        for _ in 0..3 {
            let mut user = self
                .inner
                .identities
                .user_by_id(id)
                .await?
                .ok_or(Error::Unauthenticated)?;
            change(&mut user)?;
            user.updated_at = self.now();
            match self.inner.identities.update_user(&user).await {
                Ok(stored) => return Ok(stored),
                Err(crate::store::StoreError::VersionConflict) => continue,
                Err(crate::store::StoreError::Conflict("email")) => return Err(Error::EmailTaken),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }
}
