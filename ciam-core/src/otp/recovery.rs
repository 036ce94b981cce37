//! Recovery (lookup) codes: single-use codes a user writes down for when the authenticator is
//! lost.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::OtpError;
use crate::rng::SecureRandom;
use crate::secret::SecretString;

/// The 32 symbols of a code: Crockford's base32 in lower case, without `i`, `l`, `o` and `u`,
/// so nothing can be misread (`0`/`o`, `1`/`l`/`i`).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters per group.
const GROUP: usize = 6;
/// Groups per code.
const GROUPS: usize = 4;
/// Symbols per code.
const SYMBOLS: usize = GROUP * GROUPS;

/// The entropy of one recovery code, by construction: 24 symbols of 5 uniform random bits.
///
/// At 112 bits or more a fast hash is as good as a slow one (ASVS 6.5.2 asks for the password
/// KDF only under 112 bits): nobody can enumerate 2^120 candidates, so codes are stored as
/// SHA-256 and checked without the password-hashing pool.
pub const RECOVERY_CODE_BITS: u32 = 120;

/// How many codes [`RecoveryCodes::generate`] draws by default.
pub const DEFAULT_RECOVERY_CODES: usize = 10;

/// The largest number of codes drawn at once.
pub const MAX_RECOVERY_CODES: usize = 50;

/// The stored form of a recovery code: the SHA-256 of its normalised text. Compared in
/// constant time.
#[derive(Clone, Copy, Eq)]
pub struct RecoveryCodeHash([u8; 32]);

impl RecoveryCodeHash {
    /// Rebuilds a hash read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn of_normalised(code: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, code.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }
}

impl PartialEq for RecoveryCodeHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for RecoveryCodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecoveryCodeHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A fresh set of recovery codes and their hashes.
///
/// Show [`RecoveryCodes::codes`] to the user once, store only [`RecoveryCodes::hashes`].
/// Each code looks like `7m3k9q-x2fpa0-h8rtzc-4vnbw6`: four groups of six lower-case
/// characters from an alphabet without ambiguous symbols, 120 random bits
/// ([`RECOVERY_CODE_BITS`]).
///
/// ```
/// use ciam_core::otp::{RecoveryCodes, verify_recovery_code};
/// use ciam_core::rng::SystemRandom;
///
/// let set = RecoveryCodes::generate(10, &SystemRandom::new()).unwrap();
/// let typed = set.codes()[3].expose().to_uppercase().replace('-', " ");
/// assert_eq!(verify_recovery_code(&typed, set.hashes()), Some(3));
/// // The caller now deletes hash 3: each code works once.
/// ```
#[derive(Debug)]
pub struct RecoveryCodes {
    codes: Vec<SecretString>,
    hashes: Vec<RecoveryCodeHash>,
}

impl RecoveryCodes {
    /// Draws `count` codes (1 to [`MAX_RECOVERY_CODES`]; usually
    /// [`DEFAULT_RECOVERY_CODES`]) from the random source.
    pub fn generate(count: usize, rng: &dyn SecureRandom) -> Result<Self, OtpError> {
        if count == 0 || count > MAX_RECOVERY_CODES {
            return Err(OtpError::InvalidConfig(format!(
                "draw 1 to {MAX_RECOVERY_CODES} recovery codes, not {count}"
            )));
        }
        let mut codes = Vec::with_capacity(count);
        let mut hashes = Vec::with_capacity(count);
        for _ in 0..count {
            // 15 bytes are exactly 24 symbols of 5 bits, so every symbol is uniform.
            let bytes = Zeroizing::new(crate::rng::array::<15>(rng)?);
            let mut plain = Zeroizing::new(String::with_capacity(SYMBOLS));
            let mut shown = String::with_capacity(SYMBOLS + GROUPS - 1);
            for i in 0..SYMBOLS {
                let bit = i * 5;
                let pair = (u16::from(bytes[bit / 8]) << 8)
                    | u16::from(bytes.get(bit / 8 + 1).copied().unwrap_or(0));
                let symbol = (pair >> (11 - bit % 8)) & 0x1f;
                let c = char::from(ALPHABET[usize::from(symbol)]);
                if i > 0 && i % GROUP == 0 {
                    shown.push('-');
                }
                plain.push(c);
                shown.push(c);
            }
            hashes.push(RecoveryCodeHash::of_normalised(&plain));
            codes.push(SecretString::new(shown));
        }
        Ok(Self { codes, hashes })
    }

    /// The codes as shown to the user (`xxxxxx-xxxxxx-xxxxxx-xxxxxx`). Show them once.
    pub fn codes(&self) -> &[SecretString] {
        &self.codes
    }

    /// The hashes to store, in the same order as the codes.
    pub fn hashes(&self) -> &[RecoveryCodeHash] {
        &self.hashes
    }

    /// Splits into the codes and the hashes.
    pub fn into_parts(self) -> (Vec<SecretString>, Vec<RecoveryCodeHash>) {
        (self.codes, self.hashes)
    }
}

/// Normalises typed input: drops spaces and dashes, lower-cases, reads `o` as `0` and `i`,
/// `l` as `1`. `None` unless the result is 24 symbols of the alphabet.
fn normalise(code: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(SYMBOLS));
    for c in code.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() >= SYMBOLS {
            return None;
        }
        out.push(c);
    }
    (out.len() == SYMBOLS).then_some(out)
}

/// Checks a typed recovery code against the stored hashes and returns the index of the one it
/// matches.
///
/// Input is normalised first (spaces and dashes dropped, case ignored, `o`/`i`/`l` read as
/// `0`/`1`). Every stored hash is compared, each in constant time. The caller deletes the
/// matched hash so the code works once, and rate-limits attempts.
pub fn verify_recovery_code(code: &str, stored: &[RecoveryCodeHash]) -> Option<usize> {
    let normalised = normalise(code)?;
    let hash = RecoveryCodeHash::of_normalised(&normalised);
    let mut found = None;
    for (i, candidate) in stored.iter().enumerate() {
        if *candidate == hash && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let n = normalise("O1IL-abcdef ghjkmn-PQRSTVwx").unwrap();
        assert_eq!(n.as_str(), "0111abcdefghjkmnpqrstvwx");
        assert!(normalise("0111abcdefghjkmnpqrstvu0").is_none());
        assert!(normalise("0111abcdefghjkmnpqrstvwxyz").is_none());
    }
}
