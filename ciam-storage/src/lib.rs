//! Storage backends for ciam, and the conformance kit every backend passes.
//!
//! `ciam-core` defines the storage traits ([`IdentityStore`], [`CredentialStore`],
//! [`SessionStore`], [`ChallengeStore`], [`AuditStore`], [`CounterStore`]) and the blanket
//! [`Backend`] for a type implementing all six. This crate provides the implementations below
//! and the kit that checks them.
//!
//! | Backend | Feature | Use it for |
//! |---|---|---|
//! | `sqlite::SqliteBackend` | `sqlite` (default) | production on one machine: an embedded SQLite file (WAL, pooled, migrated on connect) |
//! | `postgres::PostgresBackend` | `postgres` | production on a PostgreSQL server: pooled, one schema, migrated on connect under an advisory lock |
//! | `memory::MemoryBackend` | `memory` (default) | tests and prototypes: the reference implementation, lost on exit |
//! | `redis::RedisStore` | `redis` | sessions, one-time challenges and rate-limit counters only, in Redis; combine with another backend through `compose` |
//! | `compose::ComposedBackend` | (always) | a `Backend` assembled from parts, e.g. SQL for accounts, credentials and audit plus Redis for sessions and challenges |
//! | `conformance` module | `conformance` | testing a backend, this crate's or your own |
//! | [`regional::RegionalBackend`] | (always; `PostgresDirectory` with `postgres`) | data residency: each account pinned to a region, its data in that region's backend, cross-region access refused by default |
//! | [`cache::SessionCache`] | always | a bounded read-through session cache in front of any session store, with a grace period when the store is down |
//!
//! [`IdentityStore`]: ciam_core::store::IdentityStore
//! [`CredentialStore`]: ciam_core::store::CredentialStore
//! [`SessionStore`]: ciam_core::store::SessionStore
//! [`ChallengeStore`]: ciam_core::store::ChallengeStore
//! [`AuditStore`]: ciam_core::store::AuditStore
//! [`CounterStore`]: ciam_core::store::CounterStore
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
//! # Composing a backend from parts
//!
//! [`compose::ComposedBackend`] holds one `Arc<dyn …>` per store trait and delegates to it, so
//! each part can live where it fits best. Start from a complete backend and replace parts:
//!
//! ```no_run
//! # #[cfg(all(feature = "sqlite", feature = "redis"))]
//! # async fn open() -> Result<(), ciam_core::store::StoreError> {
//! use std::sync::Arc;
//!
//! use ciam_storage::compose::ComposedBackend;
//! use ciam_storage::redis::RedisStore;
//! use ciam_storage::sqlite::SqliteBackend;
//!
//! let sql = Arc::new(SqliteBackend::connect("sqlite://ciam.db?mode=rwc").await?);
//! let redis = Arc::new(RedisStore::connect("redis://127.0.0.1:6379/").await?);
//! // Accounts, credentials and the audit log in SQLite; sessions and challenges in Redis.
//! let backend = ComposedBackend::from_backend(sql)
//!     .with_sessions(redis.clone())
//!     .with_challenges(redis);
//! # let _ = backend;
//! # Ok(())
//! # }
//! ```
//!
//! The composed value is a `Backend` like any other (the conformance kit runs against it).
//! Each trait's rules hold within its own store; none of the rules spans two stores, except
//! that a session or challenge store that cannot see accounts does not check that the user
//! exists.
//!
//! # Writing your own backend
//!
//! Implement the six traits from `ciam_core::store` on one type (it then is a `Backend`), with
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
//! - `credentials`: passwords (PHC strings), passkeys, TOTP secrets and recovery codes, each
//!   with a kind, its own version, an optional label and an optional `lookup` key unique per
//!   kind (a passkey's WebAuthn credential id), by user;
//! - `sessions`: session records under the SHA-256 of the token (unique), by user;
//! - `challenges`: one-time challenges under the hash of their secret, by purpose and user;
//! - `audit`: the append-only audit log, by user and time;
//! - `rate_counters`: rate-limit counters per key, window length and window.
//!
//! Ids are stored as 16-byte blobs, hashes as 32-byte blobs and times as Unix nanoseconds, so
//! every record reads back equal to what was written. A row that does not decode gives
//! [`StoreError::Corrupt`](ciam_core::store::StoreError::Corrupt), never a panic.

#![forbid(unsafe_code)]

pub mod cache;
pub mod compose;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod regional;
pub mod revocation;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
