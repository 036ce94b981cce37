//! Propagation: the outbox relay.
//!
//! Every ledger append writes an outbox row in the same transaction as the record
//! ([`ConsentStore::append`]), so a change is never recorded without its event, nor the
//! reverse, whatever crashes. An [`OutboxRelay`] claims due rows, hands each event to the
//! application's [`ConsentSink`] and marks it delivered only after the sink returns `Ok`:
//! delivery is at least once (a crash after the sink accepted and before the mark delivers it
//! again), so sinks should be idempotent on [`OutboxEvent::record`]. A failed delivery is
//! retried after `base * 2^(attempts - 1)`, capped at `max_backoff`. A claimed row is leased
//! for `lease`; a relay that dies mid-delivery leaves it to be picked up when the lease ends.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ciam_core::clock::{Clock, SystemClock};
use time::Duration;

use crate::error::Error;
use crate::store::{ConsentStore, OutboxEvent};

/// Where consent changes go: a message bus, a webhook, a downstream service.
#[async_trait]
pub trait ConsentSink: Send + Sync + Debug + 'static {
    /// Delivers one event. `Err` means "not delivered, try again later".
    async fn deliver(
        &self,
        event: &OutboxEvent,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Events delivered.
    pub delivered: usize,
    /// Events whose delivery failed (scheduled for a retry).
    pub failed: usize,
}

/// Delivers outbox events to a sink with retries.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    store: Arc<dyn ConsentStore>,
    sink: Arc<dyn ConsentSink>,
    clock: Arc<dyn Clock>,
    base_backoff: Duration,
    max_backoff: Duration,
    lease: Duration,
    batch: usize,
}

impl OutboxRelay {
    /// A relay from `store` to `sink` with the defaults: backoff from 1 s doubling to at most
    /// 1 h, 60 s leases, 100 events per pass, the system clock.
    pub fn new(store: Arc<dyn ConsentStore>, sink: Arc<dyn ConsentSink>) -> Self {
        Self {
            store,
            sink,
            clock: Arc::new(SystemClock),
            base_backoff: Duration::seconds(1),
            max_backoff: Duration::hours(1),
            lease: Duration::seconds(60),
            batch: 100,
        }
    }

    /// The clock deciding what is due (tests move it instead of sleeping).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The first retry delay and the cap.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max.max(base);
        self
    }

    /// How long a claimed event is reserved for this relay.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many events one pass claims (at least 1).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The delay before retry number `attempts` (1 for the first failure).
    pub fn backoff_after(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        let factor = 1_i32 << shift;
        let delay = self.base_backoff.saturating_mul(factor);
        delay.min(self.max_backoff)
    }

    /// One pass: claims due events and delivers them in order.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails; events already delivered in this pass stay
    /// delivered.
    pub async fn run_once(&self) -> Result<RelayReport, Error> {
        let now = self.clock.now();
        let items = self
            .store
            .claim_outbox(now, now + self.lease, self.batch)
            .await?;
        let mut report = RelayReport::default();
        for item in items {
            match self.sink.deliver(&item.event).await {
                Ok(()) => {
                    self.store
                        .outbox_delivered(item.id, self.clock.now())
                        .await?;
                    report.delivered += 1;
                }
                Err(e) => {
                    let attempts = item.attempts.saturating_add(1);
                    let retry_at = self.clock.now() + self.backoff_after(attempts);
                    let message = e.to_string();
                    tracing::warn!(
                        outbox = item.id,
                        attempts,
                        error = %message,
                        "consent event delivery failed; will retry"
                    );
                    self.store
                        .outbox_failed(item.id, attempts, retry_at, &message)
                        .await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Runs passes every `poll` until `shutdown` completes. Store failures are logged and
    /// retried at the next poll.
    pub async fn run(&self, poll: StdDuration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "consent outbox relay pass failed");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}
