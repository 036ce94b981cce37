//! Password hashing, verification of imported hashes, and the password policy.
//!
//! # Hashing
//!
//! [`PasswordHasher::hash`] produces an argon2id (v=19) PHC string with a 16-byte salt from the
//! injected [`SecureRandom`](crate::rng::SecureRandom) and a 32-byte tag:
//! `$argon2id$v=19$m=19456,t=2,p=1,keyid=k2025$<salt>$<tag>`. The default parameters are the
//! OWASP minimum ([`Argon2Params::OWASP`]). When a [`Pepper`] is configured, its key is the
//! argon2 secret input (RFC 9106 `K`) and its id is written as the `keyid` parameter; the key
//! itself is never stored with the hashes.
//!
//! # Normalisation and length
//!
//! Passwords are NFKC-normalised before argon2id hashing *and* verification, so "Å" typed as
//! one or two code points verifies the same. Nothing is ever truncated or case-folded. Imported
//! legacy hashes (bcrypt, PBKDF2, scrypt, Firebase scrypt, argon2i/argon2d, Django-wrapped
//! argon2) are verified against the raw UTF-8 bytes as received, because the systems that
//! produced them did not normalise. A bare `$argon2id$` string is treated as one of ours
//! (NFKC); for ASCII passwords, the usual case for imports, both forms are the same. Input
//! over [`MAX_PASSWORD_BYTES`] (1024 bytes) is refused with [`PasswordError::TooLong`] before
//! any hashing.
//!
//! # Accepted stored formats
//!
//! | Format | Example prefix | Notes |
//! |---|---|---|
//! | argon2id / argon2i / argon2d PHC | `$argon2id$v=19$m=..,t=..,p=..[,keyid=..]$` | v=16 and v=19; only current-parameter argon2id does not need a rehash |
//! | Django argon2 | `argon2$argon2id$...` | |
//! | bcrypt | `$2a$`, `$2b$`, `$2y$` | `$2x$` and costs outside 04..=31 are refused |
//! | Django bcrypt, bcrypt_sha256 | `bcrypt$$2b$...`, `bcrypt_sha256$$2b$...` | |
//! | PBKDF2 PHC | `$pbkdf2-sha256$i=N,l=32$salt$hash` | sha1, sha256, sha512 |
//! | PBKDF2 passlib | `$pbkdf2-sha256$N$salt$hash` | `$pbkdf2$` is SHA-1; adapted base64 |
//! | PBKDF2 Django | `pbkdf2_sha256$N$salt$hash` | also `pbkdf2_sha1` |
//! | scrypt passlib | `$scrypt$ln=..,r=..,p=..$salt$hash` | |
//! | scrypt Django | `scrypt$N$salt$r$p$hash` | |
//! | Firebase scrypt | `$firebase-scrypt$<salt b64>$<hash b64>` | needs [`FirebaseScryptKey`] |
//!
//! The `keyid` parameter holds our pepper id as text (1 to 16 of `[A-Za-z0-9_-]`); PHC strings
//! with the argon2 `data` parameter are not accepted. Stored tags must be 16 to 64 bytes.
//!
//! Anything else is [`PasswordError::UnsupportedFormat`]; parsing never panics. Every format
//! other than current-parameter argon2id with the current pepper reports `needs_rehash`, so the
//! caller rehashes after the next successful login.
//!
//! bcrypt only ever hashed the first 72 bytes of a password. A password longer than 72 bytes
//! therefore never verifies against a bcrypt hash: accepting it would mean verifying only a
//! prefix of what the user typed (NIST 800-63B: never truncate). Such users reset their password.
//!
//! # Bounds on stored parameters
//!
//! Stored hashes come from a database an attacker may have written to, so their cost parameters
//! are bounded before any memory is allocated ([`PasswordError::CostTooHigh`]): argon2 memory at
//! most [`MAX_ARGON2_M_COST_KIB`] (256 MiB), `t` and `p` at most 16; scrypt `128·N·r` at most
//! 256 MiB and `p` at most 16; PBKDF2 at most [`MAX_PBKDF2_ITERATIONS`]; bcrypt cost at most
//! [`MAX_BCRYPT_COST`].
//!
//! # Pepper rotation
//!
//! Configure the new key with [`PasswordConfig::pepper`] and keep the previous one with
//! [`PasswordConfig::old_pepper`]. Hashes are checked with the key their `keyid` names; one made
//! with an old key (or with no key) verifies and reports `needs_rehash`. A `keyid` that is not
//! configured is [`PasswordError::UnknownPepper`].
//!
//! # The hashing pool
//!
//! Hashing is CPU- and memory-bound, so it never runs on the async executor. A fixed set of
//! worker threads ([`PoolConfig`]) takes jobs from a bounded queue; each worker keeps one argon2
//! memory area sized for the current parameters and reuses it. When the queue is full the call
//! fails fast with [`PasswordError::Overloaded`] and a `retry_after` estimate instead of piling
//! up memory. A caller with other work to do before hashing (a sign-in reads the stored hash
//! after its throttle check) reserves its place first with [`PasswordHasher::reserve`]: the
//! [`HashingSlot`] counts as queued until it is used or dropped, so admission is decided
//! once, before that work, and never undone after it.
//! A quarter of the queue is kept for the priority lane ([`PasswordHasher::verify_trusted`]).
//! The workers exit when the last clone of the [`PasswordHasher`] is dropped.
//!
//! # Policy
//!
//! [`PasswordPolicy`] implements NIST SP 800-63B: length in code points (8, or 15 when the
//! password is the only factor), at least 64 accepted, no composition rules, and a blocklist of
//! common passwords plus context words.

mod argon2id;
mod blocklist;
mod config;
mod hasher;
mod legacy;
mod policy;
mod pool;

use std::time::Duration;

#[doc(hidden)]
pub use argon2id::raw_argon2 as __kat_raw_argon2;
pub use config::{
    Argon2Params, DEFAULT_WORKER_NICENESS, FirebaseScryptKey, PasswordConfig, Pepper, PoolConfig,
};
pub use hasher::{HashingSlot, PasswordHasher};
pub use policy::{PasswordPolicy, PolicyViolation};

/// The longest password accepted, in UTF-8 bytes; longer input is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The largest argon2 memory cost read from a stored hash, in KiB (256 MiB).
pub const MAX_ARGON2_M_COST_KIB: u32 = 256 * 1024;

/// The largest argon2 time cost or parallelism read from a stored hash.
pub const MAX_ARGON2_T_P: u32 = 16;

/// The largest PBKDF2 iteration count read from a stored hash.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The largest bcrypt cost read from a stored hash (2^16 rounds, a few seconds of CPU).
///
/// Real-world bcrypt hashes use costs 10 to 14; anything above this is treated as an attempt
/// to tie up the hashing pool.
pub const MAX_BCRYPT_COST: u32 = 16;

/// The largest scrypt memory (`128 · N · r` bytes) read from a stored hash (256 MiB).
pub const MAX_SCRYPT_MEMORY_BYTES: u64 = 256 * 1024 * 1024;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// Whether the password matched.
    pub matched: bool,
    /// Whether the stored hash should be replaced by a fresh [`PasswordHasher::hash`] after a
    /// successful login (old parameters, old pepper or a legacy format).
    pub needs_rehash: bool,
}

/// Why hashing or verifying a password failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hashing queue is full; try again after the given delay.
    #[error("password hashing is overloaded; retry after {retry_after:?}")]
    Overloaded {
        /// A rough estimate of when a slot will be free.
        retry_after: Duration,
    },
    /// The password is longer than [`MAX_PASSWORD_BYTES`]; it was not hashed.
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The stored hash is malformed or in a format this library does not verify.
    #[error("the stored password hash has an unsupported or malformed format")]
    UnsupportedFormat,
    /// The stored hash asks for more memory or work than the configured bounds allow.
    #[error("the stored password hash has cost parameters above the allowed bounds")]
    CostTooHigh,
    /// The stored hash names a pepper key id that is not configured.
    #[error("the stored password hash uses a pepper key that is not configured")]
    UnknownPepper,
    /// The configuration is invalid.
    #[error("invalid password configuration: {0}")]
    InvalidConfig(String),
    /// An internal failure (random source, worker gone).
    #[error("internal password hashing error: {0}")]
    Internal(String),
}
