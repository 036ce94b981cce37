//! Breached-password checks: the [`BreachedPasswords`] trait and [`RangeFiles`], which reads
//! Have I Been Pwned style k-anonymity range files from a directory.

use std::fmt::Debug;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use zeroize::Zeroizing;

use crate::secret::SecretString;

/// A breach check could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BreachCheckError {
    /// The range directory, or a range file in it, could not be read.
    #[error("breached-password range files unreadable at {path}")]
    Unreadable {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a range file is not `SUFFIX:COUNT` with a 35-hex-digit suffix.
    #[error("malformed breached-password range file {path}, line {line}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
    },
    /// The lookup task was cancelled or panicked.
    #[error("breached-password lookup interrupted")]
    Interrupted,
    /// Another implementation's failure (for example an unreachable HTTP service).
    #[error("breached-password check failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Tells whether a password appears in a corpus of breached passwords.
///
/// The engine decides what an error means (most deployments fail open and log it: a breach
/// check is a defence in depth, not a gate).
///
/// ```
/// use ciam_core::SecretString;
/// use ciam_core::risk::{BreachCheckError, BreachedPasswords};
///
/// /// Knows one breached password (for tests).
/// #[derive(Debug)]
/// struct OnlyPassword;
///
/// #[async_trait::async_trait]
/// impl BreachedPasswords for OnlyPassword {
///     async fn is_breached(&self, password: &SecretString) -> Result<bool, BreachCheckError> {
///         Ok(password.expose() == "password")
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait BreachedPasswords: Send + Sync + Debug + 'static {
    /// Whether `password` is breached.
    async fn is_breached(&self, password: &SecretString) -> Result<bool, BreachCheckError>;
}

/// Breached-password lookup in a directory of k-anonymity range files, as served by the
/// [Have I Been Pwned range API](https://haveibeenpwned.com/API/v3#SearchingPwnedPasswordsByRange)
/// and saved by its downloader.
///
/// # Format
///
/// - The password's SHA-1 (RFC 3174, over its UTF-8 bytes as given, not normalised) in
///   uppercase hex, 40 digits: the first 5 are the *prefix*, the other 35 the *suffix*.
/// - One file per prefix, named **`ABCDE.txt`** (the prefix in uppercase hex plus `.txt`, as
///   the official downloader writes them), in the directory given to [`RangeFiles::new`].
/// - One entry a line: `SUFFIX:COUNT`, the suffix in hex (either case) and the number of
///   times the password was seen. Lines end in LF or CRLF; blank lines are skipped.
/// - Padding entries (count 0, added by the API's `Add-Padding` option to hide the response
///   size) never count as breached. A password counts as breached when its count is at least
///   [`RangeFiles::with_min_count`] (default 1; a minimum of 0 is treated as 1).
///
/// A missing range file means "not breached"; an unreadable directory or file, or a
/// malformed line, is a [`BreachCheckError`].
///
/// # Privacy
///
/// Only the 5-character prefix selects a file (one of 16⁵ = 1,048,576), and the suffix is
/// compared in memory: the full hash never leaves the lookup (it is not in a path, an error or
/// a log line), so pointing the directory at a network share reveals no more than the
/// HIBP range API does. The hex digest is zeroized after use.
#[derive(Debug, Clone)]
pub struct RangeFiles {
    dir: PathBuf,
    min_count: u64,
}

/// A password's SHA-1 in uppercase hex, zeroized on drop.
fn sha1_hex(password: &SecretString) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let hash = digest(&SHA1_FOR_LEGACY_USE_ONLY, password.expose().as_bytes());
    let mut hex = Zeroizing::new(String::with_capacity(40));
    for b in hash.as_ref() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    hex
}

impl RangeFiles {
    /// Range files in `dir`. Nothing is read until the first lookup.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            min_count: 1,
        }
    }

    /// Counts a password as breached only when seen at least `min_count` times (default 1).
    #[must_use]
    pub fn with_min_count(mut self, min_count: u64) -> Self {
        self.min_count = min_count.max(1);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The blocking lookup (run on the blocking pool by [`BreachedPasswords::is_breached`]).
    fn lookup(dir: &Path, min_count: u64, hex: &str) -> Result<bool, BreachCheckError> {
        let (prefix, suffix) = hex.split_at(5);
        let path = dir.join(format!("{prefix}.txt"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // A missing file is "not breached", a missing or unreadable directory is not.
                return match std::fs::read_dir(dir) {
                    Ok(_) => Ok(false),
                    Err(source) => Err(BreachCheckError::Unreadable {
                        path: dir.to_owned(),
                        source,
                    }),
                };
            }
            Err(source) => return Err(BreachCheckError::Unreadable { path, source }),
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r').trim();
            if line.is_empty() {
                continue;
            }
            let malformed = || BreachCheckError::Malformed {
                path: path.clone(),
                line: index + 1,
            };
            let (entry, count) = line.split_once(':').ok_or_else(malformed)?;
            if entry.len() != 35 || !entry.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed());
            }
            let count: u64 = count.trim().parse().map_err(|_| malformed())?;
            if entry.eq_ignore_ascii_case(suffix) {
                return Ok(count >= min_count);
            }
        }
        Ok(false)
    }
}

#[async_trait::async_trait]
impl BreachedPasswords for RangeFiles {
    async fn is_breached(&self, password: &SecretString) -> Result<bool, BreachCheckError> {
        let hex = sha1_hex(password);
        let dir = self.dir.clone();
        let min_count = self.min_count;
        tokio::task::spawn_blocking(move || Self::lookup(&dir, min_count, &hex))
            .await
            .map_err(|_| BreachCheckError::Interrupted)?
    }
}
