//! Consent for ciam: a tamper-evident, crypto-shreddable consent ledger with fast
//! enforcement, historical proofs, signed anchors, signed receipts and at-least-once
//! propagation.
//!
//! # What it does
//!
//! - **Model** ([`model`]): purposes with a legal basis, data categories and a sale-or-share
//!   flag; versioned policy documents with a material-change flag; consent events (granted,
//!   withdrawn, expired, re-consent required) with their source, jurisdiction, time and expiry.
//! - **Ledger** ([`chain`]): records are append-only and hash-chained twice, per subject and
//!   globally; [`ConsentLedger::verify`] finds any edit, deletion, insertion or reordering
//!   and names the first bad record ([`ChainBroken`]).
//! - **Crypto-shredding** ([`seal`]): the personal part of each record is sealed with a
//!   per-subject data key; [`ConsentLedger::erase_subject`] destroys the key, after which the
//!   records read as [`Personal::Erased`] and every chain still verifies.
//! - **Enforcement** ([`ConsentLedger::check`]): allow or deny with the justifying record,
//!   from a bounded in-process cache (well under a microsecond when cached, see
//!   `benches/README.md`), evicted on every change made through the process. Historical
//!   answers with proof ([`ConsentLedger::was_permitted`]), material policy changes
//!   ([`ConsentLedger::needs_reconsent`]), Global Privacy Control
//!   ([`ConsentLedger::apply_gpc`]).
//! - **Anchors** ([`anchor`]): the chain head signed as a JWS (EdDSA), checked later against
//!   the ledger to show nothing before it was rewritten.
//! - **Receipts** ([`receipt`]): Kantara Consent Receipt v1.1 as a JWS, with a mapping to
//!   ISO/IEC TS 27560; verified offline with the published JWK.
//! - **Sign-in gate** ([`gate`]): [`LedgerGate`] plugs the ledger into ciam-core's
//!   `ConsentGate`, so a material policy change makes the next sign-in answer the purposes
//!   to ask again (`SignedIn::consent_required`) and denies them until granted.
//! - **Privacy requests** ([`privacy`]): [`privacy::LedgerPrivacy`] puts the ledger into
//!   ciam-core's export (`Ciam::export_user`, section `consent`) and erasure
//!   (`Ciam::erase_user`, hook `consent`, crypto-shredding the subject).
//! - **Propagation** ([`outbox`]): each change writes an outbox event in the same
//!   transaction; [`OutboxRelay`] delivers them to the application's [`ConsentSink`] at least
//!   once, with exponential backoff.
//!
//! # Features
//!
//! | Feature | Default | Gives |
//! |---|---|---|
//! | `memory` | yes | [`memory::MemoryConsentStore`], the in-process reference store (tests, prototypes) |
//! | `sqlite` | no | `sqlite::SqliteConsentStore`: SQLite through sqlx, migrations under `migrations/sqlite` |
//! | `postgres` | no | `postgres::PostgresConsentStore`: PostgreSQL through sqlx, migrations under `migrations/postgres`, appends serialised by an advisory lock |
//! | `conformance` | no | `conformance`: the kit every store runs (tamper detection, concurrency, erasure, outbox) |
//!
//! Every table is prefixed `consent_` (`consent_ledger`, `consent_keys`, `consent_outbox`,
//! `consent_schema_version`), so the stores can share a database with `ciam-storage`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use ciam_consent::memory::MemoryConsentStore;
//! use ciam_consent::{
//!     Catalog, ConsentEvent, ConsentLedger, LegalBasis, MasterKey, PolicyDocument, Purpose,
//!     SigningKey, Source,
//! };
//! use ciam_core::clock::ManualClock;
//! use ciam_core::id::UserId;
//! use time::{Duration, macros::datetime};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ciam_consent::Error> {
//! let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
//! let catalog = Catalog::new()
//!     .purpose(Purpose::new("newsletter", "The weekly newsletter", LegalBasis::Consent)?)
//!     .purpose(
//!         Purpose::new("ads", "Sharing with advertisers", LegalBasis::Consent)?
//!             .sale_or_share(true),
//!     )
//!     .policy(PolicyDocument::new(
//!         1,
//!         b"Privacy policy, version 1",
//!         datetime!(2025-01-01 00:00 UTC),
//!         "https://example.com/privacy/v1",
//!     ))?;
//! // In production: 32 bytes from your secret store, never from the database.
//! let master = MasterKey::from_bytes(&[7; 32]);
//! let ledger = ConsentLedger::builder(Arc::new(MemoryConsentStore::new()), catalog, master)
//!     .clock(Arc::new(clock.clone()))
//!     .build()?;
//!
//! let user = UserId::from_bytes([1; 16]);
//! let web = Source::new("web", "privacy-centre").text_shown(b"Send me the newsletter");
//! ledger
//!     .record(
//!         user,
//!         ConsentEvent::grant("newsletter")?
//!             .source(web.clone())
//!             .jurisdiction("DE")
//!             .expires_at(datetime!(2026-07-01 00:00 UTC)),
//!     )
//!     .await?;
//!
//! // The hot path: allow, with the grant that justifies it.
//! let decision = ledger.check(user, "newsletter").await?;
//! assert!(decision.is_allowed());
//! assert!(!ledger.check(user, "ads").await?.is_allowed());
//!
//! // Expiry is honoured.
//! clock.advance(Duration::days(200));
//! assert!(!ledger.check(user, "newsletter").await?.is_allowed());
//! // ... and history remembers.
//! let then = ledger
//!     .was_permitted(user, "newsletter", datetime!(2026-02-01 00:00 UTC))
//!     .await?;
//! assert!(then.decision.is_allowed());
//! assert_eq!(then.policy_version, Some(1));
//!
//! // The chain verifies; sign its head for the auditor.
//! let head = ledger.verify().await?;
//! assert_eq!(head.seq, 1);
//! let key = SigningKey::from_seed(&[9; 32])?;
//! let anchor = ledger.sign_anchor(&key).await?;
//! ledger.verify_against_anchor(&anchor, key.public_jwk()).await?;
//!
//! // Erasure shreds the personal data; the chain still verifies.
//! ledger.erase_subject(user).await?;
//! assert_eq!(ledger.history(user).await?[0].personal, ciam_consent::Personal::Erased);
//! ledger.verify().await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod anchor;
pub mod cache;
pub mod chain;
mod decision;
mod error;
pub mod gate;
pub mod keys;
mod ledger;
#[cfg(feature = "memory")]
pub mod memory;
pub mod model;
pub mod outbox;
pub mod privacy;
pub mod receipt;
pub mod seal;
pub mod store;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use chain::{Breakage, ChainBroken, ChainHash, ChainHead, RecordId, RecordRef, StoredRecord};
pub use decision::{Allowed, Decision, Denied, Permission, ReconsentNeeded};
pub use error::Error;
pub use gate::LedgerGate;
pub use keys::{PublicJwk, SigningKey};
pub use ledger::{
    ConsentLedger, ConsentRecord, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, LedgerBuilder,
    Personal,
};
pub use model::{
    Catalog, ConsentEvent, EventKind, LegalBasis, PersonalData, PolicyDocument, Purpose, PurposeId,
    Source,
};
pub use outbox::{ConsentSink, OutboxRelay, RelayReport};
pub use receipt::{ConsentReceipt, ReceiptConfig, verify_receipt};
pub use seal::MasterKey;
pub use store::{ConsentStore, KeyState, OutboxEvent, OutboxItem};
