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
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::chain::RecordId;
use crate::error::Error;

const KEY_AAD: &[u8] = b"ciam-consent/data-key/v1";
const RECORD_AAD: &[u8] = b"ciam-consent/personal/v1";
const TAG_LEN: usize = 16;

/// The key-encryption key that wraps every subject's data key. 32 bytes from the
/// application's secret store; lose it and every sealed record is unreadable. `Debug` shows
/// nothing of it.
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

    /// Wraps a fresh random data key for `user`.
    pub(crate) fn new_wrapped_key(
        &self,
        user: UserId,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(&mut key[..]).map_err(|_| Error::Random)?;
        seal(&aes_key(&self.bytes)?, &key_aad(user), &key[..], rng)
    }

    /// Unwraps `user`'s data key.
    pub(crate) fn unwrap_key(&self, user: UserId, wrapped: &[u8]) -> Result<DataKey, Error> {
        let plain = open(&aes_key(&self.bytes)?, &key_aad(user), wrapped).ok_or(Error::Corrupt(
            "a data key does not open with this master key",
        ))?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt("a data key has the wrong length"))?;
        let bytes = Zeroizing::new(bytes);
        Ok(DataKey {
            key: aes_key(&bytes)?,
        })
    }
}

/// A subject's unwrapped data key.
pub(crate) struct DataKey {
    key: LessSafeKey,
}

impl DataKey {
    pub(crate) fn seal(
        &self,
        user: UserId,
        record: RecordId,
        plain: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, Error> {
        seal(&self.key, &record_aad(user, record), plain, rng)
    }

    pub(crate) fn open(
        &self,
        user: UserId,
        record: RecordId,
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        open(&self.key, &record_aad(user, record), sealed)
    }
}

fn aes_key(bytes: &[u8; 32]) -> Result<LessSafeKey, Error> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| Error::Corrupt("AES-256 key refused"))?;
    Ok(LessSafeKey::new(unbound))
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

/// `nonce || ciphertext || tag`.
fn seal(
    key: &LessSafeKey,
    aad: &[u8],
    plain: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| Error::Random)?;
    let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    buf.extend_from_slice(&nonce);
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| Error::Corrupt("sealing failed"))?;
    buf.extend_from_slice(&body);
    Ok(buf)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = Zeroizing::new(body.to_vec());
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .ok()?
        .len();
    body.truncate(plain_len);
    Some(body)
}
