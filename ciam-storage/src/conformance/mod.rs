//! The conformance kit: the rules every storage backend must follow, as runnable checks.
//!
//! Each check is an `async fn` taking a fresh, empty backend and panicking with a message
//! naming the broken rule. [`run_all`] runs every check, each on a new backend from your
//! constructor; the group runners ([`run_identity`], [`run_sessions`], …) run one trait's
//! checks. Checks that race writers use `tokio::spawn`, so call them from inside a Tokio
//! runtime, ideally a multi-threaded one (`#[tokio::test(flavor = "multi_thread")]`) so the
//! races are real.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn memory_backend_conforms() {
//!     ciam_storage::conformance::run_all(|| async { ciam_storage::memory::MemoryBackend::new() }).await;
//! }
//! ```
//!
//! Times in the checks carry nanoseconds, so a backend must store them at full precision.

// This module is test support: a failed check must stop the test with a message, which is
// what `panic!`, `assert!`, `unwrap` and `expect` are for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use ciam_core::store::Backend;

pub mod audit;
pub mod challenges;
pub mod counters;
pub mod credentials;
mod fixtures;
pub mod identity;
pub mod sessions;

/// Runs every check, each against a new backend made by `make`.
pub async fn run_all<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    run_identity(&make).await;
    run_credentials(&make).await;
    run_sessions(&make).await;
    run_challenges(&make).await;
    run_audit(&make).await;
    run_counters(&make).await;
}

/// Runs the [`identity`] checks (accounts: round trip, canonical e-mail, uniqueness,
/// atomic creation, optimistic concurrency).
pub async fn run_identity<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    identity::user_round_trip(make().await).await;
    identity::email_lookup_is_canonical(make().await).await;
    identity::email_unique_under_concurrency(make().await).await;
    identity::username_and_phone_unique(make().await).await;
    identity::create_user_is_atomic(make().await).await;
    identity::update_user_checks_version(make().await).await;
    identity::update_user_moves_identifiers(make().await).await;
    identity::activity_and_dormancy(make().await).await;
    identity::delete_user_frees_everything(make().await).await;
}

/// Runs the [`credentials`] checks.
pub async fn run_credentials<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    credentials::update_credential_checks_version(make().await).await;
    credentials::list_by_kind_and_delete(make().await).await;
    credentials::lookup_keys(make().await).await;
    credentials::lookup_key_races(make().await).await;
}

/// Runs the [`sessions`] checks.
pub async fn run_sessions<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    sessions::session_round_trip_and_expiry(make().await).await;
    sessions::touch_slides_expiry(make().await).await;
    sessions::list_newest_first(make().await).await;
    sessions::delete_sessions(make().await).await;
    sessions::purge_expired(make().await).await;
}

/// Runs the [`challenges`] checks.
pub async fn run_challenges<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    challenges::consumed_once(make().await).await;
    challenges::expired_is_removed(make().await).await;
    challenges::consumed_once_under_concurrency(make().await).await;
    challenges::count_and_delete(make().await).await;
    challenges::read_without_consuming(make().await).await;
    challenges::expired_are_purged(make().await).await;
}

/// Runs the [`audit`] checks (the hash chain, concurrent appends, data keys).
pub async fn run_audit<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    audit::newest_first_with_limit(make().await).await;
    audit::appends_form_a_chain(make().await).await;
    audit::concurrent_appends_form_one_chain(make().await).await;
    audit::data_keys_and_tombstones(make().await).await;
}

/// Runs the [`counters`] checks (rate-limit windows, reset, atomic hits, batched reads).
pub async fn run_counters<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    counters::windows_counts_and_reset(make().await).await;
    counters::hits_are_atomic_under_concurrency(make().await).await;
    counters::counts_answer_like_count(make().await).await;
}
