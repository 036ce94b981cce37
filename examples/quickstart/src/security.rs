//! Second factors, adaptive risk and the client IP for the quickstart.

use std::sync::Arc;

use ciam::otp::{SealingKey, SecretBox};
use ciam::risk::{DefaultRiskPolicy, RangeFiles};
use ciam::{CiamBuilder, MfaConfig};

/// Turns on TOTP and recovery codes (secrets sealed with `CIAM_SEALING_KEY`, or the
/// development key of [`crate::dev_keys`] when it is unset), the default risk policy (unless `CIAM_RISK=off`) and, with
/// `CIAM_BREACHED_PASSWORDS_DIR`, the offline breached-password check.
pub(crate) fn configure(
    builder: CiamBuilder,
    sealing_key: Option<&str>,
    risk: bool,
    breached_dir: Option<&str>,
) -> Result<CiamBuilder, String> {
    let key = crate::dev_keys::key("CIAM_SEALING_KEY", sealing_key)?;
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
