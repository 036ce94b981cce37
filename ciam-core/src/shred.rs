//! Crypto-shredding: per-user data keys, wrapped under a master key, that seal personal data.
//!
//! Each user gets a random 256-bit data key the first time personal data is written for them.
//! The personal data is sealed with it (AES-256-GCM, a random 96-bit nonce per record and
//! associated data naming the user and the record, so a ciphertext moved to another record
//! does not open). The data key is stored wrapped (AES-256-GCM) under the application's
//! [`MasterKey`], which never reaches the database: a dump of the database alone opens
//! nothing. Erasure replaces the wrapped key with a tombstone ([`KeyState::Erased`]); the
//! ciphertext stays where it is, so hash chains over it still verify, but nothing can open it.
//!
//! The audit log (`ciam_core::audit`) uses these primitives; the consent ledger
//! (`ciam-consent`) follows the same scheme.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::rng::SecureRandom;

const TAG_LEN: usize = 16;

/// Sealing or unwrapping failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShredError {
    /// The random source failed.
    #[error("the random number generator failed")]
    Random,
    /// A wrapped key does not open with this master key (wrong key, or corrupt data).
    #[error("a data key does not open with this master key")]
    WrongKey,
}

/// The key-encryption key that wraps every user's data key: 32 bytes from the application's
/// secret store. Lose it and every sealed record is unreadable. `Debug` shows nothing of it.
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A master key from 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            bytes: Zeroizing::new(*bytes),
        }
    }

    /// A fresh random data key, wrapped; `context` is bound to the wrapping (the user id and
    /// a label saying what the key is for), so a wrapped key copied to another user does not
    /// open.
    ///
    /// # Errors
    ///
    /// [`ShredError::Random`] when the random source fails.
    pub fn new_wrapped_key(
        &self,
        context: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, ShredError> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(&mut key[..]).map_err(|_| ShredError::Random)?;
        seal(&aes_key(&self.bytes)?, context, &key[..], rng)
    }

    /// Unwraps a data key made by [`Self::new_wrapped_key`] with the same `context`.
    ///
    /// # Errors
    ///
    /// [`ShredError::WrongKey`] when it does not open.
    pub fn unwrap_key(&self, context: &[u8], wrapped: &[u8]) -> Result<DataKey, ShredError> {
        let plain = open(&aes_key(&self.bytes)?, context, wrapped).ok_or(ShredError::WrongKey)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| ShredError::WrongKey)?;
        let bytes = Zeroizing::new(bytes);
        Ok(DataKey {
            key: aes_key(&bytes)?,
        })
    }
}

/// One user's unwrapped data key. `Debug` shows nothing of it.
pub struct DataKey {
    key: LessSafeKey,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// Seals `plain` as `nonce || ciphertext || tag`, binding `aad` (say, the user and
    /// record ids).
    ///
    /// # Errors
    ///
    /// [`ShredError::Random`] when the random source fails.
    pub fn seal(
        &self,
        aad: &[u8],
        plain: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, ShredError> {
        seal(&self.key, aad, plain, rng)
    }

    /// Opens what [`Self::seal`] sealed with the same `aad`; `None` when it does not open.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open(&self.key, aad, sealed)
    }
}

/// The state of a user's data key in a store.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyState {
    /// No key was ever made for the user.
    Absent,
    /// The data key, wrapped under the master key.
    Present(Vec<u8>),
    /// The key was destroyed (crypto-shredding) at this time.
    Erased(OffsetDateTime),
}

impl fmt::Debug for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Present(_) => f.write_str("Present(..)"),
            Self::Erased(at) => f.debug_tuple("Erased").field(at).finish(),
        }
    }
}

fn aes_key(bytes: &[u8; 32]) -> Result<LessSafeKey, ShredError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| ShredError::WrongKey)
}

/// `nonce || ciphertext || tag`.
fn seal(
    key: &LessSafeKey,
    aad: &[u8],
    plain: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, ShredError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| ShredError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| ShredError::Random)?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = Zeroizing::new(body.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .ok()?
        .len();
    body.truncate(len);
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SystemRandom;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_context() {
        let rng = SystemRandom::new();
        let master = MasterKey::from_bytes(&[7; 32]);
        let wrapped = master.new_wrapped_key(b"user-a", &rng).unwrap();
        let key = master.unwrap_key(b"user-a", &wrapped).unwrap();
        let sealed = key.seal(b"rec-1", b"203.0.113.9", &rng).unwrap();
        assert_eq!(
            key.open(b"rec-1", &sealed).unwrap().as_slice(),
            b"203.0.113.9"
        );
        assert!(key.open(b"rec-2", &sealed).is_none(), "other record");
        assert!(
            master.unwrap_key(b"user-b", &wrapped).is_err(),
            "other user"
        );
        let other = MasterKey::from_bytes(&[8; 32]);
        assert!(
            other.unwrap_key(b"user-a", &wrapped).is_err(),
            "other master"
        );
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(key.open(b"rec-1", &flipped).is_none(), "tampered");
        assert!(key.open(b"rec-1", &sealed[..10]).is_none(), "truncated");
    }
}
