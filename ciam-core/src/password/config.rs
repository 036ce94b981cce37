//! Configuration of the password hasher: argon2 parameters, peppers, the pool and imports.

use std::fmt;
use std::sync::Arc;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{MAX_ARGON2_M_COST_KIB, MAX_ARGON2_T_P, MAX_SCRYPT_MEMORY_BYTES, PasswordError};

/// The argon2id cost parameters used for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Number of lanes.
    pub p_cost: u32,
}

impl Argon2Params {
    /// The OWASP Password Storage Cheat Sheet minimum: m=19456 KiB (19 MiB), t=2, p=1.
    pub const OWASP: Self = Self {
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };

    fn validate(&self) -> Result<(), PasswordError> {
        let bad = |m: &str| {
            Err(PasswordError::InvalidConfig(format!(
                "argon2 parameters: {m}"
            )))
        };
        if self.t_cost == 0 || self.p_cost == 0 {
            return bad("t_cost and p_cost must be at least 1");
        }
        if self.t_cost > MAX_ARGON2_T_P || self.p_cost > MAX_ARGON2_T_P {
            return bad("t_cost and p_cost must be at most 16");
        }
        if self.m_cost_kib < 8 * self.p_cost || self.m_cost_kib > MAX_ARGON2_M_COST_KIB {
            return bad("m_cost_kib must be between 8 * p_cost and 262144");
        }
        Ok(())
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// A server-side secret key mixed into every argon2id hash (NIST 800-63B §5.1.1.2 pepper).
///
/// The id is stored in the hash (`keyid=`) so that keys can be rotated; the key never is.
/// Generate the key with a CSPRNG and keep it apart from the database. It is wiped on drop and
/// redacted in `Debug`.
#[derive(Clone)]
pub struct Pepper {
    pub(crate) id: String,
    pub(crate) key: Arc<Zeroizing<Vec<u8>>>,
}

impl Pepper {
    /// The shortest key accepted, in bytes (112 bits).
    pub const MIN_KEY_BYTES: usize = 14;

    /// Creates a pepper from its id (1 to 16 characters of `[A-Za-z0-9_-]`) and key (at least
    /// [`Pepper::MIN_KEY_BYTES`] bytes).
    pub fn new(id: &str, key: Vec<u8>) -> Result<Self, PasswordError> {
        let key = Zeroizing::new(key);
        if !valid_key_id(id) {
            return Err(PasswordError::InvalidConfig(
                "pepper id must be 1 to 16 characters of [A-Za-z0-9_-]".into(),
            ));
        }
        if key.len() < Self::MIN_KEY_BYTES {
            return Err(PasswordError::InvalidConfig(
                "pepper key must be at least 14 bytes".into(),
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            key: Arc::new(key),
        })
    }

    /// The key id written into hashes.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pepper")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

/// Whether `id` is a syntactically valid pepper id.
pub(crate) fn valid_key_id(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The size of the hashing pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of worker threads; each holds one argon2 memory area of the current `m_cost`.
    pub workers: usize,
    /// Number of jobs that may wait for a worker before calls fail with `Overloaded` (at most
    /// 65536).
    pub queue: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            workers,
            queue: workers * 8,
        }
    }
}

/// The project-wide parameters of Firebase Authentication's modified scrypt, as shown in the
/// Firebase console (Authentication → Users → Password hash parameters).
///
/// The signer key is secret: it is wiped on drop and redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FirebaseScryptKey {
    /// The base64-decoded `base64_signer_key`.
    pub signer_key: Vec<u8>,
    /// The base64-decoded `base64_salt_separator`.
    pub salt_separator: Vec<u8>,
    /// The scrypt block size `r` (`rounds`).
    pub rounds: u32,
    /// The scrypt cost as a power of two: `N = 2^mem_cost`.
    pub mem_cost: u32,
}

impl FirebaseScryptKey {
    fn validate(&self) -> Result<(), PasswordError> {
        let ok = !self.signer_key.is_empty()
            && (1..=32).contains(&self.rounds)
            && (1..=24).contains(&self.mem_cost)
            && 128u64 * (1u64 << self.mem_cost) * u64::from(self.rounds) <= MAX_SCRYPT_MEMORY_BYTES;
        if ok {
            Ok(())
        } else {
            Err(PasswordError::InvalidConfig(
                "firebase scrypt parameters out of range".into(),
            ))
        }
    }
}

impl fmt::Debug for FirebaseScryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirebaseScryptKey")
            .field("signer_key", &"***")
            .field("rounds", &self.rounds)
            .field("mem_cost", &self.mem_cost)
            .finish_non_exhaustive()
    }
}

/// The configuration of a [`PasswordHasher`](super::PasswordHasher), built with chained calls
/// and validated by [`PasswordHasher::new`](super::PasswordHasher::new).
///
/// ```
/// use ciam_core::password::{Argon2Params, PasswordConfig, Pepper};
///
/// # fn main() -> Result<(), ciam_core::password::PasswordError> {
/// let config = PasswordConfig::default()
///     .argon2(Argon2Params::OWASP)
///     .pepper(Pepper::new("k2025", vec![7; 32])?)
///     .old_pepper(Pepper::new("k2024", vec![9; 32])?);
/// # let _ = config; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub(crate) argon2: Argon2Params,
    pub(crate) pepper: Option<Pepper>,
    pub(crate) old_peppers: Vec<Pepper>,
    pub(crate) pool: PoolConfig,
    pub(crate) firebase: Option<FirebaseScryptKey>,
    pub(crate) niceness: u8,
}

/// The niceness hashing threads run at unless [`PasswordConfig::worker_niceness`] says
/// otherwise.
pub const DEFAULT_WORKER_NICENESS: u8 = 10;

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            argon2: Argon2Params::default(),
            pepper: None,
            old_peppers: Vec::new(),
            pool: PoolConfig::default(),
            firebase: None,
            niceness: DEFAULT_WORKER_NICENESS,
        }
    }
}

impl PasswordConfig {
    /// Sets the argon2id parameters for new hashes (default [`Argon2Params::OWASP`]).
    pub fn argon2(mut self, params: Argon2Params) -> Self {
        self.argon2 = params;
        self
    }

    /// Sets the current pepper: new hashes use it.
    pub fn pepper(mut self, pepper: Pepper) -> Self {
        self.pepper = Some(pepper);
        self
    }

    /// Adds a retired pepper: hashes made with it still verify and report `needs_rehash`.
    pub fn old_pepper(mut self, pepper: Pepper) -> Self {
        self.old_peppers.push(pepper);
        self
    }

    /// Sets the size of the hashing pool.
    pub fn pool(mut self, pool: PoolConfig) -> Self {
        self.pool = pool;
        self
    }

    /// Sets the scheduling niceness of the hashing threads (Linux; 0 to 19, default
    /// [`DEFAULT_WORKER_NICENESS`]; 0 keeps the process's priority).
    ///
    /// Hashing is the one CPU-bound job of an auth server. At the default, a hashing thread
    /// yields to request handling: a sign-in storm that keeps every hashing thread busy does
    /// not slow the rest of the application (measured in `benches/README.md`, "Sign-in
    /// storm"), while hashing still gets every cycle the requests leave. Elsewhere than on
    /// Linux the setting is ignored.
    pub fn worker_niceness(mut self, niceness: u8) -> Self {
        self.niceness = niceness.min(19);
        self
    }

    /// Enables verification of imported Firebase scrypt hashes with the project's parameters.
    pub fn firebase(mut self, key: FirebaseScryptKey) -> Self {
        self.firebase = Some(key);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), PasswordError> {
        self.argon2.validate()?;
        // The queue's slots are allocated up front, hence the upper bound.
        if !(1..=1024).contains(&self.pool.workers) || !(1..=65_536).contains(&self.pool.queue) {
            return Err(PasswordError::InvalidConfig(
                "pool needs 1 to 1024 workers and a queue of 1 to 65536".into(),
            ));
        }
        let mut ids: Vec<&str> = self
            .pepper
            .iter()
            .chain(&self.old_peppers)
            .map(|p| p.id())
            .collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(PasswordError::InvalidConfig(
                "pepper ids must be unique".into(),
            ));
        }
        if let Some(fb) = &self.firebase {
            fb.validate()?;
        }
        Ok(())
    }
}
