//! Storage backends for ciam, and the conformance kit every backend passes.
//!
//! `ciam-core` defines the storage traits ([`IdentityStore`], [`CredentialStore`],
//! [`SessionStore`], [`ChallengeStore`], [`AuditStore`]) and the blanket [`Backend`] for a type
//! implementing all five. This crate provides two implementations and the kit that checks them.
//!
//! | Backend | Feature | Use it for |
//! |---|---|---|
//! | `sqlite::SqliteBackend` | `sqlite` (default) | production on one machine: an embedded SQLite file (WAL, pooled, migrated on connect) |
//! | `memory::MemoryBackend` | `memory` (default) | tests and prototypes: the reference implementation, lost on exit |
//! | `conformance` module | `conformance` | testing a backend, this crate's or your own |
//! | [`cache::SessionCache`] | always | a bounded read-through session cache in front of any session store, with a grace period when the store is down |
//!
//! [`IdentityStore`]: ciam_core::store::IdentityStore
//! [`CredentialStore`]: ciam_core::store::CredentialStore
//! [`SessionStore`]: ciam_core::store::SessionStore
//! [`ChallengeStore`]: ciam_core::store::ChallengeStore
//! [`AuditStore`]: ciam_core::store::AuditStore
//! [`Backend`]: ciam_core::store::Backend
//!
//! # Opening a backend
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn open() -> Result<(), ciam_core::store::StoreError> {
//! use ciam_storage::sqlite::SqliteBackend;
//!
//! // `sqlite://path?mode=rwc`, a plain path, or `sqlite::memory:` for a throwaway database.
//! let backend = SqliteBackend::connect("sqlite://ciam.db?mode=rwc").await?;
//! # let _ = backend;
//! # Ok(())
//! # }
//! ```
//!
//! # Caching sessions
//!
//! Validating a session is a store read on every request. [`cache::SessionCache`] wraps any
//! [`SessionStore`] and answers repeated validations from memory for up to a second (the
//! bound on how stale a revocation made by another process can be), evicting at once on
//! revocations made through it; give it to `CiamBuilder::session_store`.
//!
//! # Writing your own backend
//!
//! Implement the five traits from `ciam_core::store` on one type (it then is a `Backend`), with
//! the semantics written on each trait method: uniqueness of the canonical e-mail, username
//! and phone even under concurrent writes, optimistic-concurrency versions, atomic one-time
//! challenge consumption. Then run the kit against it from your test suite, giving it a
//! function that makes a fresh, empty backend for each check:
//!
//! ```ignore
//! // In your crate's Cargo.toml:
//! // [dev-dependencies]
//! // ciam-storage = { version = "0.1", features = ["conformance"] }
//! // tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_backend_conforms() {
//!     ciam_storage::conformance::run_all(|| async { MyBackend::connect_fresh().await }).await;
//! }
//! ```
//!
//! Each check is also a public function (for example
//! `conformance::identity::email_unique_under_concurrency`), so a failing rule can be run on
//! its own. A failed check panics with a message naming the rule.
//!
//! # The SQLite schema
//!
//! Migrations are embedded in the binary and applied in order on connect, inside a
//! transaction; the applied version is recorded in `ciam_schema_version`. Version 1 creates:
//!
//! - `users`: one row per account, with the display and canonical forms of the e-mail and
//!   username (unique indexes on the canonical forms and on the phone number), status,
//!   verification times, profile attributes as JSON text, region, tenant and version;
//! - `credentials`: password hashes (PHC strings) with their own version, by user;
//! - `sessions`: session records under the SHA-256 of the token (unique), by user;
//! - `challenges`: one-time challenges under the hash of their secret, by purpose and user;
//! - `audit`: the append-only audit log, by user and time.
//!
//! Ids are stored as 16-byte blobs, hashes as 32-byte blobs and times as Unix nanoseconds, so
//! every record reads back equal to what was written. A row that does not decode gives
//! [`StoreError::Corrupt`](ciam_core::store::StoreError::Corrupt), never a panic.

#![forbid(unsafe_code)]

pub mod cache;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
