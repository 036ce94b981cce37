//! The engine test harness shared by the integration tests (`flows`, `passkeys`): a mail
//! outbox, an event recorder, a controlled clock, small argon2 parameters, and a macro that
//! runs each scenario on the memory and SQLite backends.
// Each test crate uses its own subset of the harness.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use ciam::clock::{Clock, ManualClock};
use ciam::event::{Event, EventSink};
use ciam::mail::{MailError, Mailer, OutgoingMail};
use ciam::password::{Argon2Params, PasswordConfig, PoolConfig};
use ciam::rng::SystemRandom;
use ciam::storage::memory::MemoryBackend;
use ciam::storage::sqlite::SqliteBackend;
use ciam::store::Backend;
use ciam::{
    AuthContext, Ciam, CiamBuilder, Error, Policy, Registration, RequestContext, SecretString,
    SignInOutcome, SignedIn, VerifyOutcome,
};
use time::macros::datetime;

/// Collects sent mail and lets a test wait for the next one to an address.
#[derive(Debug, Default)]
pub(crate) struct Outbox(pub(crate) Mutex<Vec<OutgoingMail>>, tokio::sync::Notify);

#[async_trait::async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.0.lock().unwrap().push(mail.clone());
        self.1.notify_waiters();
        Ok(())
    }
}

impl Outbox {
    /// Waits (bounded) until `n` mails to `to` have arrived and returns the last.
    pub(crate) async fn nth_to(&self, to: &str, n: usize) -> OutgoingMail {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            let notified = self.1.notified();
            {
                let all = self.0.lock().unwrap();
                let mine: Vec<_> = all.iter().filter(|m| m.to.as_str() == to).collect();
                if mine.len() >= n {
                    return mine[n - 1].clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no mail #{n} to {to} within 10 s");
            }
        }
    }

    /// Mail to `to` after letting background sends finish.
    pub(crate) async fn count_to(&self, to: &str) -> usize {
        tokio::time::sleep(StdDuration::from_millis(150)).await;
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to.as_str() == to)
            .count()
    }
}

/// The one-time token in a mailed link.
pub(crate) fn token_in(mail: &OutgoingMail) -> String {
    let start = mail
        .text
        .find("token=")
        .unwrap_or_else(|| panic!("no token in {:?}", mail.subject))
        + 6;
    mail.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Records published events.
#[derive(Debug, Default)]
pub(crate) struct Events(pub(crate) Mutex<Vec<Event>>);

#[async_trait::async_trait]
impl EventSink for Events {
    async fn publish(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

/// An engine on `store` with the test's clock, outbox and event recorder.
pub(crate) struct Harness<B> {
    pub(crate) ciam: Ciam,
    pub(crate) store: Arc<B>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) events: Arc<Events>,
    pub(crate) clock: ManualClock,
}

/// A password the policy accepts.
pub(crate) const PW: &str = "correct horse battery staple";
/// Another accepted password.
pub(crate) const PW2: &str = "a brand new passphrase, long enough";

/// Small argon2 parameters keep the suites fast; the parameters themselves are tested in
/// ciam-core's password tests.
pub(crate) fn small_params() -> PasswordConfig {
    PasswordConfig::default()
        .argon2(Argon2Params {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        })
        .pool(PoolConfig {
            workers: 2,
            queue: 64,
        })
}

/// The harness with `policy`.
pub(crate) fn harness<B: Backend>(store: Arc<B>, policy: Policy) -> Harness<B> {
    harness_with(store, policy, |b| b)
}

/// The harness with `policy` and whatever else `configure` sets on the builder.
pub(crate) fn harness_with<B: Backend>(
    store: Arc<B>,
    policy: Policy,
    configure: impl FnOnce(CiamBuilder) -> CiamBuilder,
) -> Harness<B> {
    let outbox = Arc::new(Outbox::default());
    let events = Arc::new(Events::default());
    let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
    let builder = Ciam::builder()
        .backend(store.clone())
        .clock(Arc::new(clock.clone()))
        .rng(Arc::new(SystemRandom::new()))
        .mailer(outbox.clone())
        .events(events.clone())
        .password_config(small_params())
        .policy(policy)
        .app_name("Acme")
        .public_url("https://acme.example");
    let ciam = configure(builder).build().unwrap();
    Harness {
        ciam,
        store,
        outbox,
        events,
        clock,
    }
}

/// The request context every test request carries.
pub(crate) fn ctx() -> RequestContext {
    RequestContext::new(Some("203.0.113.7".parse().unwrap()), Some("flows-test/1.0"))
}

/// A password.
pub(crate) fn pw(s: &str) -> SecretString {
    SecretString::new(s)
}

impl<B: Backend> Harness<B> {
    /// Registers `email` with [`PW`], follows the verification link and signs in.
    pub(crate) async fn register_verified(&self, email: &str) -> SignedIn {
        self.ciam
            .register(Registration::new(email, Some(pw(PW))), &ctx())
            .await
            .unwrap();
        self.verify_latest(email).await;
        self.sign_in(email, PW).await
    }

    /// Follows the newest verification link mailed to `email`.
    pub(crate) async fn verify_latest(&self, email: &str) {
        let n = self.outbox.count_to(email).await.max(1);
        let mail = self.outbox.nth_to(email, n).await;
        let token = token_in(&mail);
        assert!(matches!(
            self.ciam.verify_email(&token, &ctx()).await.unwrap(),
            VerifyOutcome::EmailVerified(_)
        ));
    }

    /// Signs in with a password, which must succeed.
    pub(crate) async fn sign_in(&self, email: &str, password: &str) -> SignedIn {
        match self
            .ciam
            .sign_in_password(email, &pw(password), &ctx())
            .await
            .unwrap()
        {
            SignInOutcome::SignedIn(s) => *s,
            other => panic!("expected signed in, got {other:?}"),
        }
    }

    /// The session's authentication context.
    pub(crate) async fn auth(&self, s: &SignedIn) -> Result<AuthContext, Error> {
        self.ciam.authenticate(&s.token, &ctx()).await
    }
}

impl<B> Harness<B> {
    /// The engine's current time.
    pub(crate) fn clock_now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

/// A fresh memory backend.
pub(crate) async fn memory() -> Arc<MemoryBackend> {
    Arc::new(MemoryBackend::new())
}

/// A fresh in-memory SQLite backend.
pub(crate) async fn sqlite() -> Arc<SqliteBackend> {
    Arc::new(SqliteBackend::connect("sqlite::memory:").await.unwrap())
}

/// Runs each named `async fn(Arc<B: Backend>)` of the including file on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::memory().await).await;
                }
            )*
        }
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::sqlite().await).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

// ---- Helpers for the MFA, throttling and passwordless suites ----

/// Second factors with a fixed test sealing key.
pub(crate) fn mfa_config() -> ciam::MfaConfig {
    let key = ciam::otp::SealingKey::new("k1", [7; 32]).unwrap();
    ciam::MfaConfig::new(ciam::otp::SecretBox::new(key).unwrap())
}

/// The harness with `policy` and second factors configured.
pub(crate) fn mfa_harness<B: Backend>(store: Arc<B>, policy: Policy) -> Harness<B> {
    harness_with(store, policy, |b| b.mfa(mfa_config()))
}

/// A request context from `ip` (none when `None`).
pub(crate) fn ctx_from(ip: Option<&str>) -> RequestContext {
    RequestContext::new(ip.map(|ip| ip.parse().unwrap()), Some("flows-test/1.0"))
}

/// The newest entry of `log` with `action`, `outcome` and `reason`; the test fails, listing
/// what was logged, without one.
pub(crate) fn logged_entry<'a>(
    log: &'a [ciam::audit::AuditEntry],
    action: ciam::audit::AuditAction,
    outcome: ciam::audit::AuditOutcome,
    reason: &str,
) -> &'a ciam::audit::AuditEntry {
    log.iter()
        .find(|e| e.action == action && e.outcome == outcome && e.reason == reason)
        .unwrap_or_else(|| {
            let seen: Vec<_> = log
                .iter()
                .map(|e| format!("{}/{}/{}", e.action.as_str(), e.outcome.as_str(), e.reason))
                .collect();
            panic!(
                "no {}/{}/{reason} in {seen:#?}",
                action.as_str(),
                outcome.as_str()
            )
        })
}

impl<B: Backend> Harness<B> {
    /// The newest audit entries, with or without a user, newest first.
    pub(crate) async fn whole_audit(&self) -> Vec<ciam::audit::AuditEntry> {
        self.ciam.recent_audit(1000).await.unwrap()
    }

    /// A password sign-in from `ctx`, whatever it answers.
    pub(crate) async fn try_sign_in(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome, Error> {
        self.ciam.sign_in_password(email, &pw(password), ctx).await
    }

    /// Registers `email` with [`PW`] and follows the verification link, without signing in.
    pub(crate) async fn register_only(&self, email: &str) {
        self.ciam
            .register(Registration::new(email, Some(pw(PW))), &ctx())
            .await
            .unwrap();
        self.verify_latest(email).await;
    }
}

impl<B> Harness<B> {
    /// The engine's current Unix time in seconds.
    pub(crate) fn unix_now(&self) -> u64 {
        u64::try_from(self.clock.now().unix_timestamp()).unwrap()
    }
}

/// The session of a sign-in that must have succeeded.
pub(crate) fn expect_signed_in(r: Result<SignInOutcome, Error>) -> SignedIn {
    match r {
        Ok(SignInOutcome::SignedIn(s)) => *s,
        other => panic!("expected signed in, got {other:?}"),
    }
}

/// The methods a session was authenticated with, as text.
pub(crate) fn amr_text(auth: &AuthContext) -> Vec<&'static str> {
    auth.amr.iter().map(|m| m.as_str()).collect()
}

impl<B: Backend> Harness<B> {
    /// The newest audit entry (about `user`, or about anyone when `None`) with `action`,
    /// `outcome` and `reason`; the test fails without one.
    pub(crate) async fn audit_entry(
        &self,
        user: Option<ciam::id::UserId>,
        action: ciam::audit::AuditAction,
        outcome: ciam::audit::AuditOutcome,
        reason: &str,
    ) -> ciam::audit::AuditEntry {
        let log = match user {
            Some(u) => self.ciam.audit_log(u, 1000).await.unwrap(),
            None => self.whole_audit().await,
        };
        logged_entry(&log, action, outcome, reason).clone()
    }
}

impl<B: Backend> Harness<B> {
    /// The newest refusal of `action` for `reason` (about `user`, or anyone when `None`).
    pub(crate) async fn failed_entry(
        &self,
        user: Option<ciam::id::UserId>,
        action: ciam::audit::AuditAction,
        reason: &str,
    ) -> ciam::audit::AuditEntry {
        let outcome = ciam::audit::AuditOutcome::Failure;
        self.audit_entry(user, action, outcome, reason).await
    }

    /// The newest success of `action` for `reason` (about `user`, or anyone when `None`).
    pub(crate) async fn ok_entry(
        &self,
        user: Option<ciam::id::UserId>,
        action: ciam::audit::AuditAction,
        reason: &str,
    ) -> ciam::audit::AuditEntry {
        let outcome = ciam::audit::AuditOutcome::Success;
        self.audit_entry(user, action, outcome, reason).await
    }

    /// The newest `throttled/sign_in_delay` entry: an attempt refused inside a delay.
    pub(crate) async fn last_delay(&self) -> ciam::audit::AuditEntry {
        let action = ciam::audit::AuditAction::Throttled;
        self.failed_entry(None, action, "sign_in_delay").await
    }
}

/// A CAPTCHA / bot-management service for the tests. The token stands for what the service
/// would conclude: no token is a human-looking request, `mid` a suspicious one, `solved` a
/// suspicious one that solved the CAPTCHA, `bot` an automated one; `down` fails.
#[derive(Debug)]
pub(crate) struct Captchas;

#[async_trait::async_trait]
impl ciam::risk::BotCheck for Captchas {
    async fn check(
        &self,
        token: Option<&str>,
        _ip: Option<std::net::IpAddr>,
    ) -> Result<ciam::risk::BotVerdict, ciam::risk::BotCheckError> {
        match token {
            None => ciam::risk::BotVerdict::new(0.1, false),
            Some("mid") => ciam::risk::BotVerdict::new(0.7, false),
            Some("solved") => ciam::risk::BotVerdict::new(0.7, true),
            Some("bot") => ciam::risk::BotVerdict::new(0.97, false),
            Some("down") => Err(ciam::risk::BotCheckError::Unavailable(
                "service down".into(),
            )),
            Some(_) => ciam::risk::BotVerdict::new(0.7, false),
        }
    }
}
