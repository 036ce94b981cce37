//! The injected source of randomness.
//!
//! Production code uses [`SystemRandom`] (the operating system's CSPRNG through `ring`).
//! Tests inject their own implementation to make ids and tokens predictable.

use std::fmt::Debug;

/// The random source could not produce bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random number generator failed")]
pub struct RandomError;

/// A cryptographically secure source of random bytes.
///
/// Object-safe so that the engine can hold `Arc<dyn SecureRandom>`.
///
/// ```
/// use ciam_core::rng::{RandomError, SecureRandom};
///
/// /// Counts up; for tests only, never for production.
/// #[derive(Debug, Default)]
/// struct Counter(std::sync::atomic::AtomicU8);
///
/// impl SecureRandom for Counter {
///     fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
///         for b in dest {
///             *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         }
///         Ok(())
///     }
/// }
/// let mut buf = [0u8; 3];
/// Counter::default().fill(&mut buf).unwrap();
/// assert_eq!(buf, [0, 1, 2]);
/// ```
pub trait SecureRandom: Send + Sync + Debug + 'static {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError>;
}

/// The operating system's CSPRNG.
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

impl Default for SystemRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRandom {
    /// Creates the system random source.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl SecureRandom for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        ring::rand::SecureRandom::fill(&self.0, dest).map_err(|_| RandomError)
    }
}

/// Draws an array of random bytes.
pub(crate) fn array<const N: usize>(rng: &dyn SecureRandom) -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    rng.fill(&mut out)?;
    Ok(out)
}
