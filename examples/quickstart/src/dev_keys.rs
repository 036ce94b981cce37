//! Keys for a development run. A key setting that is unset (`CIAM_SEALING_KEY`,
//! `CIAM_CONSENT_KEY`, `CIAM_RECEIPT_KEY`, `CIAM_AUDIT_KEY`) is read from
//! [`KEY_FILE`] in the working directory, beside the default SQLite file, or drawn and written
//! there on first use (mode 0600), with a warning. Restarts then keep TOTP secrets, consent
//! records, receipts and the audit log readable, as they would with the settings in the
//! environment. A deployment sets every key in the environment (from its secret store) and
//! has no such file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use ciam::rng::{SecureRandom, SystemRandom};

/// The file unset keys are kept in, relative to the working directory.
pub(crate) const KEY_FILE: &str = "quickstart-keys.json";

/// A 32-byte key given as 64 hex characters.
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

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of `setting`: its value when set (64 hex characters), else the development key
/// kept in [`KEY_FILE`] (drawn and saved on first use).
pub(crate) fn key(setting: &str, value: Option<&str>) -> Result<[u8; 32], String> {
    if let Some(text) = value {
        return key_from_hex(text)
            .ok_or_else(|| format!("{setting} must be 64 hex characters (32 bytes)"));
    }
    key_in(Path::new(KEY_FILE), setting)
}

fn key_in(file: &Path, setting: &str) -> Result<[u8; 32], String> {
    let mut keys: BTreeMap<String, String> = match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a key file: {e}", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    if let Some(text) = keys.get(setting) {
        tracing::warn!(
            "{setting} is not set: using the development key kept in {}",
            file.display()
        );
        return key_from_hex(text)
            .ok_or_else(|| format!("{setting} in {} is not 64 hex characters", file.display()));
    }
    let mut key = [0_u8; 32];
    SecureRandom::fill(&SystemRandom::new(), &mut key)
        .map_err(|_| "the system random source failed".to_owned())?;
    keys.insert(setting.to_owned(), hex(&key));
    let text = serde_json::to_string_pretty(&keys).map_err(|e| e.to_string())?;
    // Written beside and renamed over, so a crash never leaves half a file.
    let tmp = file.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    tracing::warn!(
        "{setting} is not set: drew a development key and kept it in {} (set {setting} in a deployment)",
        file.display()
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::{key_from_hex, key_in};

    #[test]
    fn keys_are_64_hex_characters() {
        assert_eq!(key_from_hex(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(key_from_hex("ab"), None);
        assert_eq!(key_from_hex(&"zz".repeat(32)), None);
    }

    #[test]
    fn a_drawn_key_is_kept_across_runs_and_per_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.json");
        let first = key_in(&file, "CIAM_CONSENT_KEY").unwrap();
        let again = key_in(&file, "CIAM_CONSENT_KEY").unwrap();
        let other = key_in(&file, "CIAM_AUDIT_KEY").unwrap();
        assert_eq!(first, again, "a restart reads the same key");
        assert_ne!(first, other, "each setting has its own key");
        assert_eq!(key_in(&file, "CIAM_CONSENT_KEY").unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key file");
        }
        std::fs::write(&file, "not json").unwrap();
        assert!(
            key_in(&file, "CIAM_CONSENT_KEY").is_err(),
            "a corrupt file is an error, not a new key"
        );
    }
}
