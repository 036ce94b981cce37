//! Typed identifiers with private fields and a stable text form.
//!
//! Every id is 128 random bits from the injected [`SecureRandom`],
//! written as a short type prefix and 32 lower-case hex digits (`usr_4f1c…`). The prefix makes
//! an id pasted into the wrong place fail to parse instead of silently matching nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rng::SecureRandom;

/// The text form of an id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} id")]
pub struct IdParseError {
    kind: &'static str,
}

/// The longest type prefix an id may have (checked at compile time for every id type).
const MAX_PREFIX: usize = 8;

/// An id's text form on the stack: the prefix, `_` and 32 hex digits. Displaying and
/// serializing an id (every `/me` answer carries two) then costs no allocation.
struct IdText {
    buf: [u8; MAX_PREFIX + 1 + 32],
    len: usize,
}

impl IdText {
    fn new(bytes: &[u8; 16], prefix: &str) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; MAX_PREFIX + 1 + 32];
        let p = prefix.len().min(MAX_PREFIX);
        buf[..p].copy_from_slice(&prefix.as_bytes()[..p]);
        buf[p] = b'_';
        for (i, b) in bytes.iter().enumerate() {
            buf[p + 1 + 2 * i] = HEX[usize::from(b >> 4)];
            buf[p + 2 + 2 * i] = HEX[usize::from(b & 0x0f)];
        }
        Self {
            buf,
            len: p + 1 + 32,
        }
    }

    /// The text; `None` never happens (the prefixes and the digits are ASCII).
    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.buf[..self.len]).ok()
    }
}

fn decode_hex(s: &str, prefix: &str, kind: &'static str) -> Result<[u8; 16], IdParseError> {
    let err = IdParseError { kind };
    let rest = s
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .ok_or_else(|| err.clone())?;
    if rest.len() != 32 {
        return Err(err);
    }
    let mut out = [0u8; 16];
    for (i, pair) in rest.as_bytes().chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or_else(|| err.clone())?;
        let lo = hex_val(pair[1]).ok_or_else(|| err.clone())?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// The text prefix of this kind of id.
            pub const PREFIX: &'static str = $prefix;

            /// Draws a new random id.
            pub fn generate(rng: &dyn SecureRandom) -> Result<Self, crate::rng::RandomError> {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes)?;
                Ok(Self(bytes))
            }

            /// Rebuilds an id from its 16 raw bytes (as stored by a backend).
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The 16 raw bytes of the id.
            pub fn to_bytes(self) -> [u8; 16] {
                self.0
            }
        }

        const _: () = assert!($prefix.len() <= MAX_PREFIX && $prefix.is_ascii());

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(IdText::new(&self.0, $prefix).as_str().ok_or(fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_hex(s, $prefix, $kind).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let text = IdText::new(&self.0, $prefix);
                let text = text
                    .as_str()
                    .ok_or_else(|| serde::ser::Error::custom("id text is not UTF-8"))?;
                s.serialize_str(text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// Identifies a user account.
    UserId, "usr", "user"
);
define_id!(
    /// Identifies a tenant (an organisation using a multi-tenant application).
    TenantId, "tnt", "tenant"
);
define_id!(
    /// Identifies a session. Safe to show (it is not the session token).
    SessionId, "ses", "session"
);
define_id!(
    /// Identifies a credential (a password, and in later crates passkeys and links).
    CredentialId, "crd", "credential"
);
define_id!(
    /// Identifies an audit-log entry.
    AuditId, "aud", "audit"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_rejects_other_kinds() {
        let id = UserId::from_bytes([0xab; 16]);
        let text = id.to_string();
        assert_eq!(text, format!("usr_{}", "ab".repeat(16)));
        assert_eq!(text.parse::<UserId>(), Ok(id));
        assert!(text.parse::<SessionId>().is_err());
        assert!("usr_".parse::<UserId>().is_err());
        assert!(
            format!("usr_{}", "AB".repeat(16))
                .parse::<UserId>()
                .is_err()
        );
        assert!(format!("usr_{}", "é".repeat(16)).parse::<UserId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
    }

    #[test]
    fn every_nibble_is_written_in_order_by_display_and_serialize() {
        // High nibble i, low nibble 15 - i: every digit in both places.
        let bytes: [u8; 16] = std::array::from_fn(|i| (i as u8) * 16 + (15 - i as u8));
        let id = SessionId::from_bytes(bytes);
        let expected = format!(
            "ses_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        assert_eq!(id.to_string(), expected);
        assert_eq!(format!("{id:?}"), expected);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{expected}\"")
        );
        assert_eq!(expected.parse::<SessionId>(), Ok(id));
    }
}
