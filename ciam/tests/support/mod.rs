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
