//! # ciam: customer identity you link into your Rust application
//!
//! ciam gives a web application sign-up with e-mail verification; sign-in with a password, a
//! passkey (feature `passkeys`), a magic link or a one-time code; TOTP second factors with
//! recovery codes; throttling without victim lockout and an explained risk policy
//! ([`risk`]); password reset and change, e-mail change, account closing behind a step-up; a
//! list of signed-in devices with revoke, and an audit log of every decision, all
//! in-process, on storage you choose (SQLite by default). It is a library, not a server: no
//! extra service to run.
//!
//! This crate is a facade. It re-exports [`ciam_core`] (the model, storage traits and the
//! [`Ciam`] engine) at its root, the storage backends as [`storage`], and the axum
//! integration as `ciam::axum`.
//!
//! ## Getting started
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use ciam::storage::sqlite::SqliteBackend;
//! use ciam::{Ciam, Registration, RequestContext, SecretString, SignInOutcome};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = Arc::new(SqliteBackend::connect("sqlite://app.db?mode=rwc").await?);
//! let ciam = Ciam::builder().backend(backend).app_name("Acme").public_url("https://acme.example").build()?;
//!
//! let ctx = RequestContext::new(None, Some("curl/8"));
//! let password = SecretString::new("correct horse battery staple");
//! ciam.register(Registration::new("ada@example.com", Some(password.clone())), &ctx).await?;
//! // ... the user follows the mailed link: ciam.verify_email(token, &ctx) ...
//! match ciam.sign_in_password("ada@example.com", &password, &ctx).await? {
//!     SignInOutcome::SignedIn(s) => println!("session {} for {}", s.session.id, s.user.id),
//!     SignInOutcome::VerificationRequired => println!("check your inbox"),
//!     _ => {}
//! }
//! # Ok(()) }
//! ```
//!
//! With axum, add the layer and mount the ready-made routes; see `ciam::axum` and the
//! quickstart in `examples/quickstart`.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | [`storage::sqlite::SqliteBackend`]: embedded SQLite (WAL, migrations) |
//! | `axum` | yes | `ciam::axum`: tower layer, extractors, CSRF defence, JSON auth routes |
//! | `actix` | no | `ciam::actix`: the same for actix-web 4 (middleware, extractors, the auth routes as a `Scope`), with the same status codes and JSON bodies |
//! | `memory` | no | [`storage::memory::MemoryBackend`]: in-process reference backend |
//! | `smtp` | no | [`mail::SmtpMailer`]: SMTP delivery with STARTTLS and AUTH (lettre) |
//! | `postgres` | no | `storage::postgres::PostgresBackend`, revocations over `LISTEN/NOTIFY` |
//! | `redis` | no | `storage::redis::RedisStore` for sessions, challenges and counters |
//! | `tokens` | no | `tokens`: JWT access tokens (EdDSA or ES256) minted from a session (`Ciam::issue_tokens`), store-free and live verification, a rotating key set and its JWKS, rotating refresh tokens with a grace window and reuse detection; with `axum`, `POST /auth/token`, `POST /auth/token/refresh`, `GET /.well-known/jwks.json` and the `BearerAuthenticated` extractor |
//! | `federation` | no | sign-in with external identity providers (`Ciam::start_federated_sign_in`, `Ciam::finish_federation`, linking and unlinking; `CiamBuilder::federation`), `ciam::oidc` (the ciam-federation relying party: Google, Apple, Microsoft Entra, GitHub, any OIDC issuer, enterprise connections), identities keyed by (issuer, subject) and linking safe against pre-hijacking; with `axum`, the `/auth/oidc/...` and `/auth/identities` routes |
//! | `consent` | no | `ciam::consent`: the ciam-consent ledger (purposes, hash-chained consent records, `check`, receipts, erasure) with the stores of the enabled backend features (`memory`, `sqlite`, `postgres`); with `axum`, the `RequireConsent<P>` extractor |
//! | `passkeys` | no | the engine's passkey flows (`Ciam::passkey_*`, `CiamBuilder::passkeys`), the `/passkeys/...` axum routes, and `ciam::webauthn`: WebAuthn L3 verification (none, packed, fido-u2f, apple, android-key, tpm) |
//!
//! ## Security properties
//!
//! - Passwords: argon2id at the OWASP parameters on a bounded pool off the async executor
//!   (past the bound, [`Error::Overloaded`] with a retry hint); optional pepper with key
//!   rotation; imported bcrypt, PBKDF2, scrypt and Firebase hashes verify and are upgraded on
//!   the next sign-in; NIST SP 800-63B length rules and a common-password blocklist.
//! - No account enumeration: sign-in, registration, reset and resend answer the same for
//!   known and unknown addresses, after the same hashing work.
//! - Sessions: opaque 256-bit tokens stored only as SHA-256; idle and absolute expiry; a new
//!   token at sign-in and on password change; revocable per device.
//! - Secrets are zeroized on drop and redacted in `Debug`; `unsafe` is forbidden.
//!
//! ## Where to read next
//!
//! [`Ciam`] for every flow, [`store`] for the storage traits, [`storage`] for the backends
//! and their conformance kit, and `ARCHITECTURE.md` in the repository for the design.

pub use ciam_core::*;

/// Storage backends and the conformance kit (re-export of `ciam-storage`).
pub use ciam_storage as storage;

/// Passkeys: WebAuthn ceremony verification (re-export of `ciam-webauthn`).
#[cfg(feature = "passkeys")]
pub use ciam_webauthn as webauthn;

/// axum integration (re-export of `ciam-axum`).
#[cfg(feature = "axum")]
pub use ciam_axum as axum;

/// actix-web integration (re-export of `ciam-actix`).
#[cfg(feature = "actix")]
pub use ciam_actix as actix;

/// Consent: the ledger, its stores, receipts and anchors (re-export of `ciam-consent`).
#[cfg(feature = "consent")]
pub use ciam_consent as consent;

// Compiles the README's code samples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
