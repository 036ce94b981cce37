//! User identifiers: e-mail addresses, E.164 phone numbers and usernames, each parsed into a
//! normalised value at the edge.
//!
//! E-mail normalisation: surrounding whitespace trimmed, Unicode NFC, domain lower-cased. Two
//! addresses are the same account when their [`Email::canonical`] forms match, which also
//! folds the local part's case (almost no mail provider treats it as case-sensitive, and an
//! account per case variant is a phishing and support hazard). The address as typed (after
//! normalisation) is kept for display and for sending mail.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// The e-mail address is not of the form `local@domain` within the length limits.
    #[error("malformed e-mail address")]
    MalformedEmail,
    /// The phone number is not an E.164 number (`+` and 8 to 15 digits).
    #[error("malformed phone number")]
    MalformedPhone,
    /// The username is not 3 to 32 letters, digits, `.`, `_` or `-`.
    #[error("malformed username")]
    MalformedUsername,
}

/// A normalised e-mail address.
#[derive(Clone)]
pub struct Email {
    display: String,
    canonical: String,
}

impl Email {
    /// Longest address accepted, in bytes (RFC 5321 §4.5.3.1.3 path limit less the brackets).
    pub const MAX_LEN: usize = 254;

    /// Parses and normalises an address.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let err = IdentifierError::MalformedEmail;
        let nfc: String = input.trim().nfc().collect();
        if nfc.is_empty() || nfc.len() > Self::MAX_LEN {
            return Err(err);
        }
        if nfc.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | '"' | ',' | ';' | '\\' | '(' | ')' | '[' | ']'
                )
        }) {
            return Err(err);
        }
        let (local, domain) = nfc.rsplit_once('@').ok_or_else(|| err.clone())?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(err);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(err);
        }
        let domain = domain.to_lowercase();
        let labels_ok = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !labels_ok {
            return Err(err);
        }
        let display = format!("{local}@{domain}");
        let canonical = display.to_lowercase();
        Ok(Self { display, canonical })
    }

    /// The address for display and delivery.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form that decides whether two addresses are the same account.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.display
            .rsplit_once('@')
            .map_or(self.display.as_str(), |(l, _)| l)
    }

    /// The domain, lower-cased.
    pub fn domain(&self) -> &str {
        self.display.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}
impl Eq for Email {}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.display)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A phone number in E.164 form (`+` then 8 to 15 digits, no leading zero).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses a number, dropping spaces, dots, dashes and parentheses used as separators.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let err = IdentifierError::MalformedPhone;
        let trimmed = input.trim();
        let rest = trimmed.strip_prefix('+').ok_or_else(|| err.clone())?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(err),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(err);
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.0)
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Phone::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A username: 3 to 32 characters (NFC), letters, digits, `.`, `_` and `-`; compared
/// case-insensitively.
#[derive(Clone)]
pub struct Username {
    display: String,
    canonical: String,
}

impl Username {
    /// Parses a username.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let display: String = input.trim().nfc().collect();
        let count = display.chars().count();
        if !(3..=32).contains(&count)
            || !display
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(IdentifierError::MalformedUsername);
        }
        let canonical = display.to_lowercase();
        Ok(Self { display, canonical })
    }

    /// The username as chosen.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form used for uniqueness.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

impl PartialEq for Username {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}
impl Eq for Username {}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.display)
    }
}

impl Serialize for Username {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Username::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_nfc_and_domain_lowercased() {
        let e = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice@example.com");
        assert_eq!(e.canonical(), "alice@example.com");
        assert_eq!(e, Email::parse("alice@EXAMPLE.com").unwrap());
        // "é" as e + combining acute (NFD) and as one code point (NFC) are the same address.
        let nfd = Email::parse("jose\u{0301}@example.com").unwrap();
        let nfc = Email::parse("jos\u{e9}@example.com").unwrap();
        assert_eq!(nfd, nfc);
        assert_eq!(nfd.as_str(), "jos\u{e9}@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "a@",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b-.com",
            "a\u{0}@b.com",
            "<a@b.com>",
            "a@b\n.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(IdentifierError::MalformedEmail),
                "{bad:?}"
            );
        }
        let long_local = format!("{}@b.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let long = format!("a@{}.com", "b".repeat(300));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn phone_is_e164() {
        assert_eq!(
            Phone::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            Phone::parse("+1 (415) 555-2671").unwrap().as_str(),
            "+14155552671"
        );
        for bad in [
            "442079460958",
            "+0123456789",
            "+123",
            "+1234567890123456",
            "+1 415 CALL NOW",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn username_rules() {
        let u = Username::parse("Alice_01").unwrap();
        assert_eq!(u, Username::parse("alice_01").unwrap());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse(&"x".repeat(33)).is_err());
    }
}
