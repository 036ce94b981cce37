//! Secret values: zeroized on drop, redacted in `Debug`, never serialised, compared in
//! constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::rng::{RandomError, SecureRandom};

/// A secret string, such as a password as the user typed it.
///
/// It is wiped from memory when dropped and prints as `SecretString(***)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reads the secret. Keep the borrow short; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// The SHA-256 digest of a bearer token: what the stores keep instead of the token itself.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl std::hash::Hash for TokenHash {
    // Hashes the same bytes that the constant-time `PartialEq` compares.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl TokenHash {
    /// Hashes token text.
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Rebuilds a hash read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines and useless for guessing.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A bearer token handed to a client (session cookie, e-mail link): 256 random bits, base64url.
///
/// Only its [`TokenHash`] is ever stored.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OpaqueToken(String);

impl OpaqueToken {
    /// Number of random bytes in a token.
    pub const BYTES: usize = 32;

    /// Draws a new token.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, RandomError> {
        let bytes = Zeroizing::new(crate::rng::array::<{ Self::BYTES }>(rng)?);
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
    }

    /// Wraps token text received from a client. It is not validated here: lookups by its hash
    /// simply find nothing when it is malformed.
    pub fn from_client(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The text to hand to the client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    /// Whether the text has the shape of a token this library issued (43 base64url characters).
    pub fn is_well_formed(&self) -> bool {
        self.0.len() == 43 && self.0.bytes().all(|b| BASE64URL[usize::from(b)])
    }
}

/// The bytes of the base64url alphabet (RFC 4648 §5), as a table: checked on every request.
const BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        i += 1;
    }
    table
};

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(***)")
    }
}

/// Compares two byte strings in constant time (for equal lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SystemRandom;

    #[test]
    fn debug_redacts_and_tokens_are_256_bit() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let t = OpaqueToken::generate(&SystemRandom::new()).unwrap();
        assert!(t.is_well_formed());
        assert!(!format!("{t:?}").contains(t.expose()));
        assert_eq!(t.hash(), TokenHash::of(t.expose()));
        assert!(!OpaqueToken::from_client("short").is_well_formed());
    }

    /// Every byte value, at the start, the middle and the end of a 43-character token: only
    /// the base64url alphabet (RFC 4648 §5: `A-Z a-z 0-9 - _`) passes; padding does not.
    #[test]
    fn well_formed_tokens_are_base64url_only() {
        let alphabet: Vec<u8> = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain([b'-', b'_'])
            .collect();
        for byte in 0..=255u8 {
            for at in [0, 21, 42] {
                let mut text = vec![b'A'; 43];
                text[at] = byte;
                let token = OpaqueToken::from_client(&String::from_utf8_lossy(&text));
                let expected = alphabet.contains(&byte);
                assert_eq!(token.is_well_formed(), expected, "byte {byte} at {at}");
            }
        }
        assert!(!OpaqueToken::from_client(&"A".repeat(42)).is_well_formed());
        assert!(!OpaqueToken::from_client(&"A".repeat(44)).is_well_formed());
        assert!(!OpaqueToken::from_client(&format!("{}=", "A".repeat(42))).is_well_formed());
    }
}
