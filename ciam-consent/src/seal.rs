//! Crypto-shredding: per-subject data keys and the sealing of personal data.
//!
//! Each subject gets a random 256-bit data key the first time a record is written for them.
//! The personal part of every record ([`PersonalData`](crate::PersonalData)) is sealed with it
//! (AES-256-GCM, a random 96-bit nonce per record, the subject id and record id as associated
//! data, so a ciphertext moved to another record does not open). The data key itself is stored
//! wrapped (AES-256-GCM) under the application's [`MasterKey`], which never reaches the
//! database; a dump of the database alone opens nothing.
//!
//! Erasure replaces the wrapped key with a tombstone. The records keep their ciphertext, so
//! every hash still matches and every chain still verifies, but nothing can open them any
//! more: they read as [`Personal::Erased`](crate::Personal::Erased).

use std::fmt;

use ciam_core::id::UserId;
use ciam_core::rng::SecureRandom;
use ciam_core::shred::{self, ShredError};
use zeroize::Zeroizing;

use crate::chain::RecordId;
use crate::error::Error;

const KEY_AAD: &[u8] = b"ciam-consent/data-key/v1";
const RECORD_AAD: &[u8] = b"ciam-consent/personal/v1";

/// The key-encryption key that wraps every subject's data key. 32 bytes from the
/// application's secret store; lose it and every sealed record is unreadable. `Debug` shows
/// nothing of it. The sealing itself is ciam-core's ([`ciam_core::shred`]), shared with the
/// audit log.
pub struct MasterKey {
    inner: shred::MasterKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

fn shred_error(e: ShredError) -> Error {
    match e {
        ShredError::Random => Error::Random,
        _ => Error::Corrupt("a data key does not open with this master key"),
    }
}

impl MasterKey {
    /// A master key from 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            inner: shred::MasterKey::from_bytes(bytes),
        }
    }

    /// Wraps a fresh random data key for `user`.
    pub(crate) fn new_wrapped_key(
        &self,
        user: UserId,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, Error> {
        self.inner
            .new_wrapped_key(&key_aad(user), rng)
            .map_err(shred_error)
    }

    /// Unwraps `user`'s data key.
    pub(crate) fn unwrap_key(&self, user: UserId, wrapped: &[u8]) -> Result<DataKey, Error> {
        self.inner
            .unwrap_key(&key_aad(user), wrapped)
            .map(|key| DataKey { key })
            .map_err(shred_error)
    }
}

/// A subject's unwrapped data key.
pub(crate) struct DataKey {
    key: shred::DataKey,
}

impl DataKey {
    pub(crate) fn seal(
        &self,
        user: UserId,
        record: RecordId,
        plain: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, Error> {
        self.key
            .seal(&record_aad(user, record), plain, rng)
            .map_err(shred_error)
    }

    pub(crate) fn open(
        &self,
        user: UserId,
        record: RecordId,
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        self.key.open(&record_aad(user, record), sealed)
    }
}

fn key_aad(user: UserId) -> Vec<u8> {
    let mut aad = KEY_AAD.to_vec();
    aad.extend_from_slice(&user.to_bytes());
    aad
}

fn record_aad(user: UserId, record: RecordId) -> Vec<u8> {
    let mut aad = RECORD_AAD.to_vec();
    aad.extend_from_slice(&user.to_bytes());
    aad.extend_from_slice(&record.to_bytes());
    aad
}
