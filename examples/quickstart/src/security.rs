//! Second factors, adaptive risk and the client IP for the quickstart.

use std::sync::Arc;

use ciam::otp::{SealingKey, SecretBox};
use ciam::risk::{DefaultRiskPolicy, RangeFiles};
use ciam::rng::{SecureRandom, SystemRandom};
use ciam::{CiamBuilder, MfaConfig};

/// Reads 64 hex characters as 32 bytes.
pub(crate) fn key_from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0_u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Turns on TOTP and recovery codes (secrets sealed with `CIAM_SEALING_KEY`, or a key drawn
/// at start when it is unset), the default risk policy (unless `CIAM_RISK=off`) and, with
/// `CIAM_BREACHED_PASSWORDS_DIR`, the offline breached-password check.
pub(crate) fn configure(
    builder: CiamBuilder,
    sealing_key: Option<&str>,
    risk: bool,
    breached_dir: Option<&str>,
) -> Result<CiamBuilder, String> {
    let key = match sealing_key {
        Some(text) => key_from_hex(text)
            .ok_or_else(|| "CIAM_SEALING_KEY must be 64 hex characters (32 bytes)".to_owned())?,
        None => {
            tracing::warn!(
                "CIAM_SEALING_KEY is not set: TOTP secrets are sealed with a key drawn now, and authenticator apps enrolled in this run stop working after a restart"
            );
            let mut key = [0_u8; 32];
            SecureRandom::fill(&SystemRandom::new(), &mut key)
                .map_err(|_| "the system random source failed".to_owned())?;
            key
        }
    };
    let sealing = SealingKey::new("k1", key).map_err(|e| e.to_string())?;
    let secret_box = SecretBox::new(sealing).map_err(|e| e.to_string())?;
    let mut builder = builder.mfa(MfaConfig::new(secret_box));
    if risk {
        builder = builder.risk_policy(Arc::new(DefaultRiskPolicy::default()));
    }
    if let Some(dir) = breached_dir {
        builder = builder.breached_passwords(Arc::new(RangeFiles::new(dir)));
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::key_from_hex;

    #[test]
    fn sealing_keys_are_64_hex_characters() {
        let key = key_from_hex(&"0f".repeat(32)).unwrap();
        assert_eq!(key, [0x0f; 32]);
        assert!(key_from_hex(&"0f".repeat(31)).is_none());
        assert!(key_from_hex(&"zz".repeat(32)).is_none());
    }
}
