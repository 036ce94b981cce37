//! Every engine flow runs in a `ciam.flow` span and is counted and timed through the
//! `metrics` facade; no secret reaches a span or an event (see `ciam_core`'s `observe`
//! module). A real `tracing-subscriber` formatter at TRACE level writes everything it sees
//! into a buffer, and a recorder installed through the `metrics` facade keeps what the engine
//! records.

// The recorder's and the buffer's locks are test plumbing: a poisoned lock fails the test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use ciam::password::{Argon2Params, PasswordConfig};
use ciam::storage::memory::MemoryBackend;
use ciam::{Ciam, Error, Policy, Registration, RequestContext, SecretString, SignInOutcome};
use metrics::{Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata};
use metrics::{Recorder, SharedString, Unit};

/// Counter totals and histogram sample counts by `name{label=value,...}` (labels sorted).
#[derive(Default)]
struct Recorded {
    counters: Mutex<HashMap<String, u64>>,
    samples: Mutex<HashMap<String, Vec<f64>>>,
}

struct Handle {
    key: String,
    to: Arc<Recorded>,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self
            .to
            .counters
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.to
            .counters
            .lock()
            .unwrap()
            .insert(self.key.clone(), value);
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.to
            .samples
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default()
            .push(value);
    }
}

struct TestRecorder(Arc<Recorded>);

fn key_text(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle {
            key: key_text(key),
            to: Arc::clone(&self.0),
        }))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle {
            key: key_text(key),
            to: Arc::clone(&self.0),
        }))
    }
}

/// What the formatter wrote.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn flows_are_spanned_counted_and_timed_without_secrets() {
    let recorded = Arc::new(Recorded::default());
    metrics::set_global_recorder(TestRecorder(Arc::clone(&recorded))).unwrap();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let password = "observability check passphrase 7f3a";
    let token_text = rt.block_on(async {
        let mut policy = Policy::default();
        policy.allow_unverified_sign_in = true;
        let ciam = Ciam::builder()
            .backend(Arc::new(MemoryBackend::new()))
            .password_config(PasswordConfig::default().argon2(Argon2Params {
                m_cost_kib: 64,
                t_cost: 1,
                p_cost: 1,
            }))
            .policy(policy)
            .build()
            .unwrap();
        let ctx = RequestContext::new(None, Some("observability-test"));
        let pw = SecretString::new(password);
        ciam.register(Registration::new("obs@example.com", Some(pw.clone())), &ctx)
            .await
            .unwrap();
        let Err(Error::InvalidCredentials) = ciam
            .sign_in_password(
                "obs@example.com",
                &SecretString::new("not the password at all"),
                &ctx,
            )
            .await
        else {
            panic!("a wrong password must be refused");
        };
        let SignInOutcome::SignedIn(s) = ciam
            .sign_in_password("obs@example.com", &pw, &ctx)
            .await
            .unwrap()
        else {
            panic!("expected a session");
        };
        ciam.authenticate(&s.token, &ctx).await.unwrap();
        s.token.expose().to_owned()
    });

    let counters = recorded.counters.lock().unwrap().clone();
    let count = |k: &str| counters.get(k).copied().unwrap_or(0);
    assert_eq!(
        count("ciam_flow_total{flow=register,outcome=ok}"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count("ciam_flow_total{flow=sign_in_password,outcome=ok}"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count("ciam_flow_total{flow=sign_in_password,outcome=invalid_credentials}"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count("ciam_flow_total{flow=authenticate,outcome=ok}"),
        1,
        "{counters:?}"
    );
    let samples = recorded.samples.lock().unwrap().clone();
    let timings = &samples["ciam_flow_duration_seconds{flow=sign_in_password}"];
    assert_eq!(timings.len(), 2);
    assert!(timings.iter().all(|s| *s > 0.0 && *s < 60.0), "{timings:?}");

    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("ciam.flow") && logged.contains("flow=\"sign_in_password\""),
        "no flow span was closed:\n{logged}"
    );
    assert!(
        logged.contains("outcome=\"invalid_credentials\""),
        "{logged}"
    );
    assert!(
        !logged.contains(password),
        "the password reached the log:\n{logged}"
    );
    assert!(
        !logged.contains(&token_text),
        "the session token reached the log:\n{logged}"
    );
}
