//! The password policy for new passwords (NIST SP 800-63B §5.1.1.2, OWASP ASVS 6.2).

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::MAX_PASSWORD_BYTES;
use super::blocklist;
use crate::secret::SecretString;

/// Context words shorter than this are only refused when they are the whole password.
const MIN_CONTEXT_WORD_CHARS: usize = 4;

/// The largest minimum length accepted: NIST requires accepting at least 64 characters.
const MAX_MIN_CHARS: usize = 64;

/// Why a new password was refused. The `Display` text is safe to show to the user.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer code points than the minimum.
    #[error("Choose a password of at least {min} characters.")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More bytes than the maximum.
    #[error("Choose a password of at most {max_bytes} bytes.")]
    TooLong {
        /// The maximum length in UTF-8 bytes.
        max_bytes: usize,
    },
    /// On the list of common or breached passwords.
    #[error("This password is too common and easy to guess. Choose a different one.")]
    Common,
    /// Contains the user's name, e-mail address or the service name.
    #[error("The password must not contain your name, e-mail address or the name of this service.")]
    ContainsContext,
    /// Found in a breach corpus by the configured
    /// [`BreachedPasswords`](crate::risk::BreachedPasswords) check.
    #[error("This password has appeared in a data breach. Choose a different one.")]
    Breached,
}

/// Rules for new passwords, following NIST SP 800-63B: length only, no composition rules.
///
/// Length is counted in Unicode code points of the NFKC form ("パスワード" is 5). Blocklist and
/// context checks are case-insensitive, after NFKC. The defaults are 8 characters, 15 when the
/// password is the only factor, at most 1024 bytes, and the built-in list of common passwords.
///
/// ```
/// use ciam_core::password::{PasswordPolicy, PolicyViolation};
/// use ciam_core::secret::SecretString;
///
/// let policy = PasswordPolicy::default().context_words(vec!["acmeshop".into()]);
/// let pw = SecretString::new("correct horse battery staple");
/// assert_eq!(policy.check(&pw, &["alice"], true), Ok(()));
/// let pw = SecretString::new("alice-in-wonderland");
/// assert_eq!(policy.check(&pw, &["alice"], false), Err(PolicyViolation::ContainsContext));
/// ```
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_chars: usize,
    min_chars_single_factor: usize,
    max_bytes: usize,
    context_words: Vec<String>,
    extra_blocklist: HashSet<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 8,
            min_chars_single_factor: 15,
            max_bytes: MAX_PASSWORD_BYTES,
            context_words: Vec::new(),
            extra_blocklist: HashSet::new(),
        }
    }
}

fn fold(s: &str) -> String {
    s.nfkc().collect::<String>().to_lowercase()
}

impl PasswordPolicy {
    /// Sets the minimum length when another factor is also required (capped at 64).
    pub fn min_chars(mut self, n: usize) -> Self {
        self.min_chars = n.min(MAX_MIN_CHARS);
        self
    }

    /// Sets the minimum length when the password is the only factor (capped at 64).
    pub fn min_chars_single_factor(mut self, n: usize) -> Self {
        self.min_chars_single_factor = n.min(MAX_MIN_CHARS);
        self
    }

    /// Sets words that may never appear in a password, such as the service name.
    pub fn context_words(mut self, words: Vec<String>) -> Self {
        self.context_words = words;
        self
    }

    /// Adds passwords to refuse besides the built-in list (compared case-insensitively).
    pub fn extra_blocklist(mut self, passwords: Vec<String>) -> Self {
        self.extra_blocklist
            .extend(passwords.iter().map(|p| fold(p)));
        self
    }

    /// Checks a new password. `context` holds per-user words (e-mail local part, user name);
    /// `single_factor` is true when no other factor protects the account.
    ///
    /// A password equal to a context word, or containing one of at least 4 characters, is
    /// refused.
    pub fn check(
        &self,
        password: &SecretString,
        context: &[&str],
        single_factor: bool,
    ) -> Result<(), PolicyViolation> {
        let raw = password.expose();
        if raw.len() > self.max_bytes {
            return Err(PolicyViolation::TooLong {
                max_bytes: self.max_bytes,
            });
        }
        let folded = Zeroizing::new(fold(raw));
        let min = if single_factor {
            self.min_chars_single_factor
        } else {
            self.min_chars
        };
        if raw.nfkc().count() < min {
            return Err(PolicyViolation::TooShort { min });
        }
        if blocklist::is_common(&folded) || self.extra_blocklist.contains(folded.as_str()) {
            return Err(PolicyViolation::Common);
        }
        let words = context
            .iter()
            .copied()
            .chain(self.context_words.iter().map(String::as_str));
        for word in words.map(fold) {
            let word = word.trim();
            if word.is_empty() {
                continue;
            }
            if *folded == word
                || (word.chars().count() >= MIN_CONTEXT_WORD_CHARS && folded.contains(word))
            {
                return Err(PolicyViolation::ContainsContext);
            }
        }
        Ok(())
    }
}
