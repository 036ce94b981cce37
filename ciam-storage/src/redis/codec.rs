//! Turning sessions and challenges into Redis hash fields and back.

use std::collections::HashMap;

use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::secret::TokenHash;
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::store::{StoreError, StoreResult};
use redis::Value;
use time::OffsetDateTime;

/// The decimal Unix nanoseconds of `t`.
pub(super) fn nanos(t: OffsetDateTime) -> String {
    t.unix_timestamp_nanos().to_string()
}

/// 64 lowercase hex digits.
pub(super) fn hex(hash: &TokenHash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in hash.as_bytes() {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(s: &str) -> Option<TokenHash> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (digit(*hi)?, digit(*lo)?),
            _ => return None,
        };
        *o = (hi << 4) | lo;
    }
    Some(TokenHash::from_bytes(out))
}

/// The fields of a decoded Redis hash.
pub(super) struct Fields {
    what: &'static str,
    map: HashMap<String, String>,
}

impl Fields {
    /// Reads an `HGETALL`-shaped reply (a flat array of names and values, or a map); `None`
    /// when it is empty (no such key).
    pub(super) fn from_value(what: &'static str, value: Value) -> StoreResult<Option<Self>> {
        let pairs: Vec<(Value, Value)> = match value {
            Value::Nil => return Ok(None),
            Value::Map(pairs) => pairs,
            Value::Array(items) => {
                if items.len() % 2 != 0 {
                    return Err(corrupt(what, "odd number of hash items"));
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                pairs
            }
            _ => return Err(corrupt(what, "not a hash")),
        };
        if pairs.is_empty() {
            return Ok(None);
        }
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            map.insert(text(what, k)?, text(what, v)?);
        }
        Ok(Some(Self { what, map }))
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    fn get(&self, name: &str) -> StoreResult<&str> {
        self.opt(name)
            .ok_or_else(|| corrupt(self.what, &format!("field `{name}` is missing")))
    }

    fn parse<T: std::str::FromStr>(&self, name: &str) -> StoreResult<T> {
        self.get(name)?
            .parse()
            .map_err(|_| corrupt(self.what, &format!("field `{name}` is malformed")))
    }

    fn time(&self, name: &str) -> StoreResult<OffsetDateTime> {
        let n: i128 = self.parse(name)?;
        OffsetDateTime::from_unix_timestamp_nanos(n)
            .map_err(|_| corrupt(self.what, &format!("field `{name}` is out of range")))
    }

    fn hash(&self, name: &str) -> StoreResult<TokenHash> {
        unhex(self.get(name)?)
            .ok_or_else(|| corrupt(self.what, &format!("field `{name}` is not a hash")))
    }
}

fn text(what: &'static str, v: Value) -> StoreResult<String> {
    match v {
        Value::BulkString(bytes) => {
            String::from_utf8(bytes).map_err(|_| corrupt(what, "a value is not UTF-8"))
        }
        Value::SimpleString(s) => Ok(s),
        Value::Int(n) => Ok(n.to_string()),
        _ => Err(corrupt(what, "a value is not a string")),
    }
}

pub(super) fn corrupt(what: &str, why: &str) -> StoreError {
    tracing::error!(record = what, problem = why, "corrupt record in redis");
    StoreError::Corrupt(format!("redis {what}: {why}"))
}

/// A session as hash fields (`ua` and `ip` only when known).
pub(super) fn session_fields(s: &Session) -> Vec<(&'static str, String)> {
    let amr: Vec<&str> = s.amr.iter().map(|m| m.as_str()).collect();
    let mut out = vec![
        ("id", s.id.to_string()),
        ("user", s.user_id.to_string()),
        ("token", hex(&s.token_hash)),
        ("created", nanos(s.created_at)),
        ("last_seen", nanos(s.last_seen_at)),
        ("idle", nanos(s.idle_expires_at)),
        ("absolute", nanos(s.absolute_expires_at)),
        ("auth_time", nanos(s.auth_time)),
        ("amr", amr.join(",")),
        ("aal", s.aal.level().to_string()),
    ];
    if let Some(ua) = &s.device.user_agent {
        out.push(("ua", ua.clone()));
    }
    if let Some(ip) = s.device.ip {
        out.push(("ip", ip.to_string()));
    }
    out
}

pub(super) fn decode_session(f: &Fields) -> StoreResult<Session> {
    let amr_text = f.get("amr")?;
    let amr = if amr_text.is_empty() {
        Vec::new()
    } else {
        amr_text
            .split(',')
            .map(|m| {
                AuthMethod::parse(m).ok_or_else(|| corrupt(f.what, "field `amr` is malformed"))
            })
            .collect::<StoreResult<Vec<_>>>()?
    };
    let aal = Aal::from_level(f.parse("aal")?)
        .ok_or_else(|| corrupt(f.what, "field `aal` is out of range"))?;
    let ip = match f.opt("ip") {
        Some(ip) => Some(
            ip.parse()
                .map_err(|_| corrupt(f.what, "field `ip` is malformed"))?,
        ),
        None => None,
    };
    Ok(Session {
        id: f.parse("id")?,
        user_id: f.parse("user")?,
        token_hash: f.hash("token")?,
        created_at: f.time("created")?,
        last_seen_at: f.time("last_seen")?,
        idle_expires_at: f.time("idle")?,
        absolute_expires_at: f.time("absolute")?,
        auth_time: f.time("auth_time")?,
        amr,
        aal,
        device: DeviceInfo {
            user_agent: f.opt("ua").map(str::to_owned),
            ip,
        },
    })
}

/// A challenge as hash fields (`user` only when it has one).
pub(super) fn challenge_fields(c: &Challenge) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("purpose", c.purpose.as_str().to_owned()),
        ("payload", c.payload.to_string()),
        ("created", nanos(c.created_at)),
        ("expires", nanos(c.expires_at)),
    ];
    if let Some(user) = c.user_id {
        out.push(("user", user.to_string()));
    }
    out
}

pub(super) fn decode_challenge(f: &Fields, secret_hash: TokenHash) -> StoreResult<Challenge> {
    let purpose = ChallengePurpose::parse(f.get("purpose")?)
        .ok_or_else(|| corrupt(f.what, "field `purpose` is unknown"))?;
    let user_id = match f.opt("user") {
        Some(_) => Some(f.parse("user")?),
        None => None,
    };
    let payload = serde_json::from_str(f.get("payload")?)
        .map_err(|_| corrupt(f.what, "field `payload` is not JSON"))?;
    Ok(Challenge::new(
        secret_hash,
        purpose,
        user_id,
        payload,
        f.time("created")?,
        f.time("expires")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = TokenHash::of("a token");
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert!(unhex("zz").is_none());
        assert!(unhex(&"G".repeat(64)).is_none());
    }
}
