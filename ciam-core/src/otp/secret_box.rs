//! Encryption of OTP secrets at rest (AES-256-GCM under integrator-supplied keys).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::{OtpError, OtpSecret};
use crate::rng::SecureRandom;

/// Domain separation for the associated data, so these ciphertexts mean nothing elsewhere.
const AAD_CONTEXT: &[u8] = b"ciam.otp-secret.v1\0";

/// The longest key id accepted.
const MAX_KEY_ID_LEN: usize = 16;

/// A 32-byte AES-256-GCM key with its id, supplied by the integrator (for example from a KMS
/// or an environment secret). Wiped on drop; `Debug` shows only the id.
#[derive(Clone)]
pub struct SealingKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl SealingKey {
    /// Wraps a key. The id (1 to 16 of `[A-Za-z0-9_-]`, for example `k2025`) is written in
    /// every sealed secret so that the right key opens it after rotation.
    pub fn new(id: &str, key: [u8; 32]) -> Result<Self, OtpError> {
        let key = Zeroizing::new(key);
        if id.is_empty()
            || id.len() > MAX_KEY_ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(OtpError::InvalidConfig(format!(
                "a sealing key id is 1 to {MAX_KEY_ID_LEN} of [A-Za-z0-9_-]"
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            key,
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .field("key", &"***")
            .finish()
    }
}

struct Entry {
    id: String,
    key: LessSafeKey,
}

/// Seals OTP secrets for storage and opens them again.
///
/// Hashing is impossible (the server needs the secret to compute codes), so secrets are
/// encrypted with AES-256-GCM under a key the integrator supplies and keeps out of the
/// database. The sealed form is `<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>` with a fresh
/// random 96-bit nonce. The associated data binds the key id and the caller's `user_aad`
/// (the user id), so a sealed secret copied to another user's row fails to open.
///
/// Rotation: build the box with the new key as current and the previous ones added with
/// [`SecretBox::with_old_key`]. Everything sealed under any configured key opens;
/// [`SecretBox::needs_reseal`] tells when to re-seal under the current key.
///
/// ```
/// use ciam_core::otp::{OtpSecret, SealingKey, SecretBox};
/// use ciam_core::rng::SystemRandom;
///
/// let rng = SystemRandom::new();
/// let sealer = SecretBox::new(SealingKey::new("k1", [7; 32]).unwrap()).unwrap();
/// let secret = OtpSecret::generate(&rng).unwrap();
/// let sealed = sealer.seal(&secret, b"user-42", &rng).unwrap();
/// assert!(sealed.starts_with("k1."));
/// assert_eq!(sealer.open(&sealed, b"user-42").unwrap().expose(), secret.expose());
/// assert!(sealer.open(&sealed, b"user-43").is_err());
/// ```
pub struct SecretBox {
    /// The first entry is the current key.
    keys: Vec<Entry>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("current", &self.current_key_id())
            .field(
                "key_ids",
                &self.keys.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn aead_key(key: &SealingKey) -> Result<LessSafeKey, OtpError> {
    UnboundKey::new(&AES_256_GCM, key.key.as_slice())
        .map(LessSafeKey::new)
        .map_err(|_| OtpError::InvalidConfig("the sealing key was refused".to_owned()))
}

fn aad(key_id: &str, user_aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_CONTEXT.len() + key_id.len() + 1 + user_aad.len());
    out.extend_from_slice(AAD_CONTEXT);
    out.extend_from_slice(key_id.as_bytes());
    out.push(0);
    out.extend_from_slice(user_aad);
    out
}

impl SecretBox {
    /// A box sealing with `current`.
    pub fn new(current: SealingKey) -> Result<Self, OtpError> {
        Ok(Self {
            keys: vec![Entry {
                key: aead_key(&current)?,
                id: current.id,
            }],
        })
    }

    /// Adds a previous key that still opens what it sealed. Ids must be unique.
    pub fn with_old_key(mut self, old: SealingKey) -> Result<Self, OtpError> {
        if self.keys.iter().any(|e| e.id == old.id) {
            return Err(OtpError::InvalidConfig(format!(
                "the sealing key id {} is configured twice",
                old.id
            )));
        }
        self.keys.push(Entry {
            key: aead_key(&old)?,
            id: old.id.clone(),
        });
        Ok(self)
    }

    /// The id of the key new secrets are sealed with.
    pub fn current_key_id(&self) -> &str {
        self.keys.first().map_or("", |e| e.id.as_str())
    }

    /// Encrypts a secret under the current key with a fresh nonce from `rng`. `user_aad` is
    /// the stable id of the user the secret belongs to; pass the same bytes to
    /// [`SecretBox::open`].
    pub fn seal(
        &self,
        secret: &OtpSecret,
        user_aad: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<String, OtpError> {
        let entry = self
            .keys
            .first()
            .ok_or_else(|| OtpError::InvalidConfig("no sealing key".to_owned()))?;
        let nonce = crate::rng::array::<NONCE_LEN>(rng)?;
        let mut buf = Zeroizing::new(Vec::with_capacity(NONCE_LEN + secret.expose().len() + 16));
        buf.extend_from_slice(secret.expose());
        entry
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&entry.id, user_aad)),
                &mut *buf,
            )
            .map_err(|_| OtpError::SealedInvalid)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!("{}.{}", entry.id, URL_SAFE_NO_PAD.encode(out)))
    }

    /// Decrypts a sealed secret with the key its id names. An unknown id is
    /// [`OtpError::UnknownKey`]; a malformed, tampered or other-user value is
    /// [`OtpError::SealedInvalid`].
    pub fn open(&self, sealed: &str, user_aad: &[u8]) -> Result<OtpSecret, OtpError> {
        let (id, body) = sealed.split_once('.').ok_or(OtpError::SealedInvalid)?;
        let entry = self
            .keys
            .iter()
            .find(|e| e.id == id)
            .ok_or(OtpError::UnknownKey)?;
        let mut bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| OtpError::SealedInvalid)?,
        );
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OtpError::SealedInvalid);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = entry
            .key
            .open_within(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&entry.id, user_aad)),
                &mut bytes,
                NONCE_LEN..,
            )
            .map_err(|_| OtpError::SealedInvalid)?;
        OtpSecret::from_bytes(plain)
    }

    /// Whether a sealed value was made with a key other than the current one, and should be
    /// re-sealed (open, then seal) after rotation.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed
            .split_once('.')
            .is_none_or(|(id, _)| id != self.current_key_id())
    }
}
