//! HOTP (RFC 4226) and TOTP (RFC 6238) generation and verification.

use std::fmt;

use ring::hmac;
use zeroize::Zeroizing;

use super::{OtpError, base32};
use crate::rng::SecureRandom;
use crate::secret::{SecretString, constant_time_eq};

/// The HMAC hash function of an OTP credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OtpAlgorithm {
    /// HMAC-SHA-1, the RFC 4226 default and the only one every authenticator app supports.
    #[default]
    Sha1,
    /// HMAC-SHA-256 (RFC 6238).
    Sha256,
    /// HMAC-SHA-512 (RFC 6238).
    Sha512,
}

impl OtpAlgorithm {
    /// The name used in otpauth:// URIs: `SHA1`, `SHA256` or `SHA512`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses a URI algorithm name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// The secret length [`OtpSecret::generate_for`] draws: the hash output size (20, 32 or 64
    /// bytes), as in the RFC 6238 test seeds.
    pub fn default_secret_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// An OTP shared secret (the HMAC key): wiped on drop, printed as `OtpSecret(***)`.
///
/// Secrets of [`OtpSecret::MIN_BYTES`] (160 bits) to [`OtpSecret::MAX_BYTES`] are
/// accepted; new ones have 160 bits or more.
#[derive(Clone)]
pub struct OtpSecret(Zeroizing<Vec<u8>>);

impl OtpSecret {
    /// The shortest secret accepted, also for imported ones: 20 bytes (160 bits). RFC 4226
    /// §4 R6 requires 128 bits and recommends 160; ciam requires the recommended length, as
    /// the MFA issue asks ("secrets of at least 160 bits"), so no imported secret is weaker
    /// than a generated one.
    pub const MIN_BYTES: usize = 20;
    /// The longest secret accepted: 128 bytes.
    pub const MAX_BYTES: usize = 128;
    /// The length [`OtpSecret::generate`] draws: 20 bytes (160 bits, RFC 4226 §4).
    pub const DEFAULT_BYTES: usize = 20;

    /// Wraps existing secret bytes, checking their length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OtpError> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(OtpError::SecretTooShort);
        }
        if bytes.len() > Self::MAX_BYTES {
            return Err(OtpError::SecretTooLong);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// Decodes a base32 secret (as shown to users for manual entry), checking its length.
    pub fn from_base32(text: &str) -> Result<Self, OtpError> {
        let bytes = base32::decode(text)?;
        Self::from_bytes(&bytes)
    }

    /// Draws a new 160-bit secret from the random source.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, OtpError> {
        Self::generate_len(Self::DEFAULT_BYTES, rng)
    }

    /// Draws a new secret as long as the algorithm's hash output (20, 32 or 64 bytes).
    pub fn generate_for(algorithm: OtpAlgorithm, rng: &dyn SecureRandom) -> Result<Self, OtpError> {
        Self::generate_len(algorithm.default_secret_len(), rng)
    }

    fn generate_len(len: usize, rng: &dyn SecureRandom) -> Result<Self, OtpError> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        rng.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The raw secret bytes. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as unpadded upper-case base32, for manual entry in an authenticator app.
    pub fn to_base32(&self) -> SecretString {
        SecretString::new(base32::encode(&self.0))
    }
}

impl fmt::Debug for OtpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpSecret(***)")
    }
}

/// The RFC 4226 §5.3 value: HMAC, dynamic truncation, modulo `10^digits`, zero-padded.
fn hotp_value(algorithm: OtpAlgorithm, digits: u32, secret: &OtpSecret, counter: u64) -> String {
    let key = hmac::Key::new(algorithm.hmac(), secret.expose());
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    // Every HMAC output here is at least 20 bytes and the offset at most 15, so the four
    // bytes read are always in range.
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let binary = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

fn check_digits(digits: u32) -> Result<(), OtpError> {
    if digits == 6 || digits == 8 {
        Ok(())
    } else {
        Err(OtpError::InvalidConfig(format!(
            "codes have 6 or 8 digits, not {digits}"
        )))
    }
}

/// Checks that a submitted code is exactly `digits` ASCII digits. Its format is not secret.
fn check_code_format(code: &str, digits: u32) -> Result<(), OtpError> {
    if code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(OtpError::MalformedCode)
    }
}

/// The parameters of a TOTP credential (RFC 6238): algorithm, digits, period and allowed skew.
///
/// The default is SHA-1, 6 digits, 30 seconds and ±1 step, what every authenticator app
/// supports.
///
/// ```
/// use ciam_core::otp::{OtpAlgorithm, OtpError, OtpSecret, TotpConfig};
///
/// let config = TotpConfig::default();
/// let secret = OtpSecret::from_bytes(b"12345678901234567890").unwrap();
/// let now = 1_111_111_111; // from the server's clock
/// let code = config.code_at(&secret, now);
/// let step = config.verify_totp(&secret, &code, now, None).unwrap();
/// // Store `step`; the same code is refused from now on.
/// assert_eq!(config.verify_totp(&secret, &code, now, Some(step)), Err(OtpError::Replayed));
/// assert!(TotpConfig::new(OtpAlgorithm::Sha1, 7, 30, 1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpConfig {
    algorithm: OtpAlgorithm,
    digits: u32,
    period: u64,
    skew: u64,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            period: Self::DEFAULT_PERIOD,
            skew: Self::MAX_SKEW,
        }
    }
}

impl TotpConfig {
    /// The default time step: 30 seconds (RFC 6238 §5.2).
    pub const DEFAULT_PERIOD: u64 = 30;
    /// The shortest period accepted, in seconds.
    pub const MIN_PERIOD: u64 = 15;
    /// The longest period accepted, in seconds.
    pub const MAX_PERIOD: u64 = 120;
    /// The largest skew accepted: one step either side (RFC 6238 §5.2, ASVS 6.5.5).
    pub const MAX_SKEW: u64 = 1;

    /// Validates a configuration: 6 or 8 digits, a period from [`Self::MIN_PERIOD`] to
    /// [`Self::MAX_PERIOD`] seconds, and a skew of 0 or 1 steps.
    pub fn new(
        algorithm: OtpAlgorithm,
        digits: u32,
        period: u64,
        skew: u64,
    ) -> Result<Self, OtpError> {
        check_digits(digits)?;
        if !(Self::MIN_PERIOD..=Self::MAX_PERIOD).contains(&period) {
            return Err(OtpError::InvalidConfig(format!(
                "the period must be {} to {} seconds, not {period}",
                Self::MIN_PERIOD,
                Self::MAX_PERIOD
            )));
        }
        if skew > Self::MAX_SKEW {
            return Err(OtpError::InvalidConfig(format!(
                "the skew is at most {} step, not {skew}",
                Self::MAX_SKEW
            )));
        }
        Ok(Self {
            algorithm,
            digits,
            period,
            skew,
        })
    }

    /// The HMAC algorithm.
    pub fn algorithm(&self) -> OtpAlgorithm {
        self.algorithm
    }

    /// The number of digits in a code (6 or 8).
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// The time step in seconds.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// How many steps before and after the current one are accepted (0 or 1).
    pub fn skew(&self) -> u64 {
        self.skew
    }

    /// The time step (RFC 6238 `T`, with `T0 = 0`) containing a Unix time.
    pub fn step_at(&self, unix_secs: u64) -> u64 {
        unix_secs / self.period
    }

    /// The code for a counter value (a time step for TOTP), zero-padded to the digit count.
    pub fn generate(&self, secret: &OtpSecret, counter: u64) -> String {
        hotp_value(self.algorithm, self.digits, secret, counter)
    }

    /// The code for the step containing a Unix time.
    pub fn code_at(&self, secret: &OtpSecret, unix_secs: u64) -> String {
        self.generate(secret, self.step_at(unix_secs))
    }

    /// Checks a submitted code at `now_unix_secs`, the **server's** clock (never a time sent
    /// by the client), and returns the step it matched.
    ///
    /// The code must be exactly [`Self::digits`] ASCII digits ([`OtpError::MalformedCode`]
    /// otherwise; strip spaces before calling if the form allows them). It is compared, as a
    /// fixed-width digit string in constant time, with the codes of the current step and
    /// [`Self::skew`] steps either side; every candidate is computed and compared.
    ///
    /// A code matching only steps at or before `last_used_step` is [`OtpError::Replayed`]:
    /// the caller stores the returned step as the new `last_used_step` so that each code is
    /// accepted once. A code matching nothing is [`OtpError::InvalidCode`]. Attempts must be
    /// rate-limited by the caller.
    pub fn verify_totp(
        &self,
        secret: &OtpSecret,
        code: &str,
        now_unix_secs: u64,
        last_used_step: Option<u64>,
    ) -> Result<u64, OtpError> {
        check_code_format(code, self.digits)?;
        let current = self.step_at(now_unix_secs);
        let first = current.saturating_sub(self.skew);
        let last = current.saturating_add(self.skew);
        let mut fresh: Option<u64> = None;
        let mut replayed = false;
        for step in first..=last {
            let expected = self.generate(secret, step);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
                if last_used_step.is_some_and(|used| step <= used) {
                    replayed = true;
                } else {
                    // The latest fresh step wins, so a later code is never accepted twice.
                    fresh = Some(step);
                }
            }
        }
        match (fresh, replayed) {
            (Some(step), _) => Ok(step),
            (None, true) => Err(OtpError::Replayed),
            (None, false) => Err(OtpError::InvalidCode),
        }
    }
}

/// The parameters of an HOTP credential (RFC 4226): algorithm, digits and look-ahead window.
///
/// ```
/// use ciam_core::otp::{HotpConfig, OtpSecret};
///
/// let config = HotpConfig::default();
/// let secret = OtpSecret::from_bytes(b"12345678901234567890").unwrap();
/// assert_eq!(config.generate(&secret, 0), "755224"); // RFC 4226 Appendix D
/// // The user pressed the button twice: the counter stored is 0, the code is for 1.
/// let next = config.verify_hotp(&secret, "287082", 0).unwrap();
/// assert_eq!(next, 2); // store 2
/// assert!(config.verify_hotp(&secret, "287082", next).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotpConfig {
    algorithm: OtpAlgorithm,
    digits: u32,
    look_ahead: u64,
}

impl Default for HotpConfig {
    fn default() -> Self {
        Self {
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
            look_ahead: Self::DEFAULT_LOOK_AHEAD,
        }
    }
}

impl HotpConfig {
    /// The default look-ahead: counters up to 10 ahead of the stored one are accepted.
    pub const DEFAULT_LOOK_AHEAD: u64 = 10;
    /// The largest look-ahead accepted (RFC 4226 §7.4 asks for a bounded window).
    pub const MAX_LOOK_AHEAD: u64 = 50;

    /// Validates a configuration: 6 or 8 digits and a look-ahead of at most
    /// [`Self::MAX_LOOK_AHEAD`].
    pub fn new(algorithm: OtpAlgorithm, digits: u32, look_ahead: u64) -> Result<Self, OtpError> {
        check_digits(digits)?;
        if look_ahead > Self::MAX_LOOK_AHEAD {
            return Err(OtpError::InvalidConfig(format!(
                "the look-ahead is at most {}, not {look_ahead}",
                Self::MAX_LOOK_AHEAD
            )));
        }
        Ok(Self {
            algorithm,
            digits,
            look_ahead,
        })
    }

    /// The HMAC algorithm.
    pub fn algorithm(&self) -> OtpAlgorithm {
        self.algorithm
    }

    /// The number of digits in a code (6 or 8).
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// How many counter values beyond the stored one are tried.
    pub fn look_ahead(&self) -> u64 {
        self.look_ahead
    }

    /// The code for a counter value, zero-padded to the digit count.
    pub fn generate(&self, secret: &OtpSecret, counter: u64) -> String {
        hotp_value(self.algorithm, self.digits, secret, counter)
    }

    /// Checks a submitted code against counters `counter ..= counter + look_ahead` and returns
    /// the counter to store next (the matched counter plus one).
    ///
    /// `counter` is the next counter value not yet used (0 for a new credential). On failure
    /// nothing moves: the stored counter only ever increases, and only after a successful
    /// check. Every counter in the window is computed and compared in constant time; the
    /// lowest match wins. Attempts must be rate-limited by the caller.
    pub fn verify_hotp(
        &self,
        secret: &OtpSecret,
        code: &str,
        counter: u64,
    ) -> Result<u64, OtpError> {
        check_code_format(code, self.digits)?;
        let mut matched: Option<u64> = None;
        for offset in 0..=self.look_ahead {
            let Some(candidate) = counter.checked_add(offset) else {
                break;
            };
            let expected = self.generate(secret, candidate);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
                matched = Some(candidate);
            }
        }
        matched
            .and_then(|c| c.checked_add(1))
            .ok_or(OtpError::InvalidCode)
    }
}
