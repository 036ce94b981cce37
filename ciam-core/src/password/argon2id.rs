//! Argon2 PHC strings: our argon2id hashes and imported argon2i/argon2d/argon2id hashes.

use argon2::{Algorithm, Argon2, AssociatedData, Block, ParamsBuilder, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::config::{Argon2Params, valid_key_id};
use super::{MAX_ARGON2_M_COST_KIB, MAX_ARGON2_T_P, PasswordError};
use crate::secret::constant_time_eq;

/// Tag length of the hashes we produce.
pub(crate) const TAG_LEN: usize = 32;
/// Salt length of the hashes we produce.
pub(crate) const SALT_LEN: usize = 16;

/// A parsed argon2 PHC string.
#[derive(Debug, Clone)]
pub(crate) struct ArgonHash {
    pub(crate) algorithm: Algorithm,
    pub(crate) version: Version,
    pub(crate) m_cost: u32,
    pub(crate) t_cost: u32,
    pub(crate) p_cost: u32,
    pub(crate) keyid: Option<String>,
    pub(crate) salt: Vec<u8>,
    pub(crate) tag: Vec<u8>,
    /// Wrapped in Django's `argon2$` prefix (an import).
    pub(crate) django: bool,
}

impl ArgonHash {
    /// Whether the hash could have been produced by [`super::PasswordHasher::hash`]: those
    /// verify the NFKC form of the password; imports verify the raw bytes.
    pub(crate) fn is_native(&self) -> bool {
        self.algorithm == Algorithm::Argon2id && !self.django
    }

    /// Whether the hash is exactly what `hash` would produce today with `params` and `pepper_id`.
    pub(crate) fn is_current(&self, params: &Argon2Params, pepper_id: Option<&str>) -> bool {
        self.is_native()
            && self.version == Version::V0x13
            && self.m_cost == params.m_cost_kib
            && self.t_cost == params.t_cost
            && self.p_cost == params.p_cost
            && self.salt.len() >= SALT_LEN
            && self.tag.len() == TAG_LEN
            && self.keyid.as_deref() == pepper_id
    }

    /// Recomputes the tag (on a pool worker) and compares it in constant time.
    pub(crate) fn verify(
        &self,
        password: &[u8],
        secret: Option<&[u8]>,
        memory: &mut [Block],
    ) -> Result<bool, PasswordError> {
        let mut out = zeroize::Zeroizing::new(vec![0u8; self.tag.len()]);
        let params = Argon2Params {
            m_cost_kib: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
        };
        compute(
            self.algorithm,
            self.version,
            &params,
            secret,
            password,
            &self.salt,
            &mut out,
            memory,
        )?;
        Ok(constant_time_eq(&out, &self.tag))
    }
}

/// Computes an argon2 tag into `out`, reusing `memory` when it is large enough.
///
/// A larger area (a stored hash with more memory than the current parameters, bounded by the
/// parser) is allocated for this call only, so the pool's resident memory stays fixed.
#[allow(clippy::too_many_arguments)] // Mirrors the argon2 inputs one to one.
pub(crate) fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Argon2Params,
    secret: Option<&[u8]>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut [Block],
) -> Result<(), PasswordError> {
    let params = argon2::Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(out.len()),
    )
    .map_err(|_| PasswordError::UnsupportedFormat)?;
    let needed = params.block_count();
    let ctx = match secret {
        Some(key) => Argon2::new_with_secret(key, algorithm, version, params),
        None => Ok(Argon2::new(algorithm, version, params)),
    }
    .map_err(|e| PasswordError::Internal(format!("argon2: {e}")))?;
    let result = if memory.len() >= needed {
        ctx.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
    } else {
        ctx.hash_password_into_with_memory(password, salt, out, vec![Block::new(); needed])
    };
    result.map_err(|e| PasswordError::Internal(format!("argon2: {e}")))
}

/// Computes a raw argon2 tag with secret and associated data, for the RFC 9106 known-answer
/// tests; not part of the supported API.
///
/// `algorithm` is `argon2d`, `argon2i` or `argon2id`; `version` is 16 or 19.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // Mirrors the RFC 9106 inputs one to one.
pub fn raw_argon2(
    algorithm: &str,
    version: u32,
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    associated_data: &[u8],
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    tag_len: usize,
) -> Result<Vec<u8>, PasswordError> {
    let algorithm = parse_algorithm(algorithm)?;
    let version = match version {
        16 => Version::V0x10,
        19 => Version::V0x13,
        _ => return Err(PasswordError::UnsupportedFormat),
    };
    let bad = |_| PasswordError::UnsupportedFormat;
    let params = ParamsBuilder::new()
        .m_cost(m_cost_kib)
        .t_cost(t_cost)
        .p_cost(p_cost)
        .output_len(tag_len)
        .data(AssociatedData::new(associated_data).map_err(bad)?)
        .build()
        .map_err(bad)?;
    let ctx = Argon2::new_with_secret(secret, algorithm, version, params).map_err(bad)?;
    let mut out = vec![0u8; tag_len];
    ctx.hash_password_into(password, salt, &mut out)
        .map_err(bad)?;
    Ok(out)
}

fn parse_algorithm(name: &str) -> Result<Algorithm, PasswordError> {
    match name {
        "argon2id" => Ok(Algorithm::Argon2id),
        "argon2i" => Ok(Algorithm::Argon2i),
        "argon2d" => Ok(Algorithm::Argon2d),
        _ => Err(PasswordError::UnsupportedFormat),
    }
}

/// Writes the PHC string of one of our argon2id hashes.
pub(crate) fn encode(
    params: &Argon2Params,
    keyid: Option<&str>,
    salt: &[u8],
    tag: &[u8],
) -> String {
    let keyid = keyid.map(|id| format!(",keyid={id}")).unwrap_or_default();
    format!(
        "$argon2id$v=19$m={},t={},p={}{keyid}${}${}",
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(tag)
    )
}

/// Whether `s` looks like an argon2 hash at all (so other parsers need not try).
pub(crate) fn is_argon2(s: &str) -> bool {
    s.starts_with("$argon2") || s.starts_with("argon2$")
}

/// Parses `$argon2{id,i,d}$[v=19$]m=..,t=..,p=..[,keyid=..]$salt$tag`, optionally wrapped in
/// Django's `argon2$` prefix. Costs are bounded before anything is allocated.
pub(crate) fn parse(s: &str) -> Result<ArgonHash, PasswordError> {
    use PasswordError::{CostTooHigh, UnsupportedFormat};
    let (django, rest) = match (s.strip_prefix("argon2$"), s.strip_prefix('$')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(UnsupportedFormat),
    };
    let mut fields = rest.split('$');
    let algorithm = parse_algorithm(fields.next().ok_or(UnsupportedFormat)?)?;
    let mut next = fields.next().ok_or(UnsupportedFormat)?;
    // A missing version field means the original 0x10 (PHC convention).
    let version = match next.strip_prefix("v=") {
        Some("19") => {
            next = fields.next().ok_or(UnsupportedFormat)?;
            Version::V0x13
        }
        Some("16") => {
            next = fields.next().ok_or(UnsupportedFormat)?;
            Version::V0x10
        }
        Some(_) => return Err(UnsupportedFormat),
        None => Version::V0x10,
    };
    let (mut m, mut t, mut p, mut keyid) = (None, None, None, None);
    for pair in next.split(',') {
        let (k, v) = pair.split_once('=').ok_or(UnsupportedFormat)?;
        let slot = match k {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            "keyid" if keyid.is_none() && valid_key_id(v) => {
                keyid = Some(v.to_owned());
                continue;
            }
            _ => return Err(UnsupportedFormat),
        };
        if slot.is_some() {
            return Err(UnsupportedFormat);
        }
        *slot = Some(parse_decimal(v).ok_or(UnsupportedFormat)?);
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(UnsupportedFormat);
    };
    let salt = STANDARD_NO_PAD
        .decode(fields.next().ok_or(UnsupportedFormat)?)
        .map_err(|_| UnsupportedFormat)?;
    let tag = STANDARD_NO_PAD
        .decode(fields.next().ok_or(UnsupportedFormat)?)
        .map_err(|_| UnsupportedFormat)?;
    if fields.next().is_some() || !(8..=64).contains(&salt.len()) || !(16..=64).contains(&tag.len())
    {
        return Err(UnsupportedFormat);
    }
    if m == 0 || t == 0 || p == 0 {
        return Err(UnsupportedFormat);
    }
    if m > u64::from(MAX_ARGON2_M_COST_KIB)
        || t > u64::from(MAX_ARGON2_T_P)
        || p > u64::from(MAX_ARGON2_T_P)
    {
        return Err(CostTooHigh);
    }
    // The bounds above make these conversions lossless.
    let (m_cost, t_cost, p_cost) = (m as u32, t as u32, p as u32);
    if m_cost < 8 * p_cost {
        return Err(UnsupportedFormat);
    }
    Ok(ArgonHash {
        algorithm,
        version,
        m_cost,
        t_cost,
        p_cost,
        keyid,
        salt,
        tag,
        django,
    })
}

/// Parses a decimal of 1 to 19 ASCII digits (no sign, no spaces).
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
