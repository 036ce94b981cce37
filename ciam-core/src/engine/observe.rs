//! Tracing spans and metrics for every engine flow.
//!
//! Each public flow of [`Ciam`](super::Ciam) runs inside a span named `ciam.flow` with the
//! fields `flow` (the method's name) and `outcome` (`ok` or the error's
//! [`code`](crate::Error::code)), at INFO level (`authenticate`, run on every request, at
//! DEBUG). Only these static names are recorded: no address, password, token, code or key is
//! ever a span field, so a subscriber that logs every span shows nothing secret. Events the
//! flow logs inside the span carry its fields.
//!
//! Through the [`metrics`] facade (a no-op until the application installs a recorder, such as
//! a Prometheus exporter), each flow records:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `ciam_flow_total` | counter | `flow`, `outcome` |
//! | `ciam_flow_duration_seconds` | histogram | `flow` |
//!
//! Outcomes are bounded (the error codes), so the label sets stay small. A refusal for load
//! (`overloaded`) or throttling (`rate_limited`) is counted like any other outcome, which is
//! how a dashboard sees a sign-in storm being shed.

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;

use crate::error::Result;

/// The flow's outcome label: `ok` or the error code.
fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn record<T>(name: &'static str, span: &tracing::Span, start: Instant, result: &Result<T>) {
    let outcome = outcome(result);
    span.record("outcome", outcome);
    metrics::counter!("ciam_flow_total", "flow" => name, "outcome" => outcome).increment(1);
    metrics::histogram!("ciam_flow_duration_seconds", "flow" => name)
        .record(start.elapsed().as_secs_f64());
}

/// Runs a flow inside an INFO `ciam.flow` span and records its count and latency.
pub(crate) async fn flow<T>(name: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    let span = tracing::info_span!("ciam.flow", flow = name, outcome = tracing::field::Empty);
    let start = Instant::now();
    let result = fut.instrument(span.clone()).await;
    record(name, &span, start, &result);
    result
}

/// [`flow`] for `authenticate`, which runs on every request: a DEBUG span, and the metric
/// keys of its usual outcome (`ok`) built once, not per call (the facade's macros make static
/// keys only from literal labels; a key with a variable label allocates its label list each
/// time, even with no recorder installed).
pub(crate) async fn authenticate_flow<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    const NAME: &str = "authenticate";
    let span = tracing::debug_span!("ciam.flow", flow = NAME, outcome = tracing::field::Empty);
    let start = Instant::now();
    let result = fut.instrument(span.clone()).await;
    if result.is_ok() {
        span.record("outcome", "ok");
        metrics::counter!("ciam_flow_total", "flow" => "authenticate", "outcome" => "ok")
            .increment(1);
        metrics::histogram!("ciam_flow_duration_seconds", "flow" => "authenticate")
            .record(start.elapsed().as_secs_f64());
    } else {
        record(NAME, &span, start, &result);
    }
    result
}
