//! The audit log as stored: hash-chained records with the personal data sealed.
//!
//! Every record carries `prev_hash`, the hash of the record before it in the global order
//! (`seq` 1, 2, 3…). Its own `hash` is SHA-256 over a length-prefixed encoding of every
//! field, the link and the position (see [`record_hash`]), including the personal data as
//! stored (the ciphertext when it is sealed). So:
//!
//! - editing any stored field changes the record's hash (caught at that record);
//! - deleting a record leaves a gap in `seq` (caught at the record after the gap);
//! - inserting a record needs renumbering, which changes hashes (caught at the first
//!   renumbered record), or a record whose link does not match;
//! - reordering two records changes their positions, which are hashed (caught at the first).
//!
//! Erasure destroys the user's data key, never a record, so every chain still verifies after
//! it. What a chain cannot show by itself is a rewrite of the whole tail by someone who can
//! write the database, or a truncated tail; keep the [`AuditHead`] that verification returns
//! (or sign it) somewhere else and compare it later.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use super::{AuditAction, AuditOutcome};
use crate::id::{AuditId, SessionId, UserId};

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A SHA-256 chain hash; shown and serialised as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AuditHash(pub [u8; 32]);

impl AuditHash {
    /// The link of the first record: 32 zero bytes.
    pub const GENESIS: Self = Self([0; 32]);
}

impl fmt::Display for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AuditHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for AuditHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The personal part of a record (client IP, user agent, the decision's inputs), as stored.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredPersonal {
    /// Not sealed: the entry names no user, so there is no key to seal it with (and no one
    /// whose erasure could ask for it). JSON bytes.
    Clear(Vec<u8>),
    /// Sealed with the user's data key (`nonce || ciphertext || tag`).
    Sealed(Vec<u8>),
}

impl StoredPersonal {
    /// The stored form's tag: 0 clear, 1 sealed.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Clear(_) => 0,
            Self::Sealed(_) => 1,
        }
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Clear(b) | Self::Sealed(b) => b,
        }
    }

    /// From a stored tag and bytes; `None` for an unknown tag.
    pub fn from_parts(tag: u8, bytes: Vec<u8>) -> Option<Self> {
        match tag {
            0 => Some(Self::Clear(bytes)),
            1 => Some(Self::Sealed(bytes)),
            _ => None,
        }
    }
}

impl fmt::Debug for StoredPersonal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Clear(b) => write!(f, "Clear({} bytes)", b.len()),
            Self::Sealed(b) => write!(f, "Sealed({} bytes)", b.len()),
        }
    }
}

/// A record as the engine hands it to a store: everything but its position and link, which
/// the store assigns inside its append transaction ([`AuditRecord::link`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecordBody {
    /// Entry id.
    pub id: AuditId,
    /// When (UTC).
    pub at: OffsetDateTime,
    /// The decision point (which flow decided).
    pub action: AuditAction,
    /// What it decided.
    pub outcome: AuditOutcome,
    /// The rule that decided, a stable code.
    pub reason: String,
    /// The account, when known (a pseudonymous random id; it stays after erasure).
    pub user_id: Option<UserId>,
    /// The session concerned, when any.
    pub session_id: Option<SessionId>,
    /// IP, user agent and the rule's inputs.
    pub personal: StoredPersonal,
}

/// A record as stored: the body with its position, link and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Hash of record `seq - 1` ([`AuditHash::GENESIS`] for the first).
    pub prev_hash: AuditHash,
    /// This record's hash ([`record_hash`]).
    pub hash: AuditHash,
    /// The content.
    pub body: AuditRecordBody,
}

impl AuditRecord {
    /// Links `body` after the chain's head `(seq, hash)` (`None` for an empty log) and computes
    /// its hash. Stores call this inside their append transaction.
    pub fn link(body: AuditRecordBody, head: Option<(u64, AuditHash)>) -> Self {
        let (seq, prev_hash) = head.unwrap_or((0, AuditHash::GENESIS));
        let mut r = Self {
            seq: seq + 1,
            prev_hash,
            hash: AuditHash::GENESIS,
            body,
        };
        r.hash = record_hash(&r);
        r
    }
}

/// Domain separation for [`record_hash`].
const DOMAIN: &[u8] = b"ciam-core/audit/v1";

fn put(buf: &mut Vec<u8>, field: &[u8]) {
    // Every field is far below 4 GiB (the engine bounds detail), so the length fits.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(field);
}

fn nanos(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
}

/// The hash of a stored record: SHA-256 over `ciam-core/audit/v1` followed by each field as a
/// 4-byte big-endian length and its bytes, in this order: `seq` (u64 BE), `prev_hash`, `id`
/// (16 bytes), `at` (Unix ns, i128 BE), `action` text, `outcome` text, `reason`, `user_id`
/// (empty or 16 bytes), `session_id` (empty or 16 bytes), the personal data's tag (one byte)
/// and its stored bytes. The stored `hash` is not an input.
pub fn record_hash(r: &AuditRecord) -> AuditHash {
    let b = &r.body;
    let mut buf = Vec::with_capacity(160 + b.reason.len() + b.personal.bytes().len());
    buf.extend_from_slice(DOMAIN);
    put(&mut buf, &r.seq.to_be_bytes());
    put(&mut buf, &r.prev_hash.0);
    put(&mut buf, &b.id.to_bytes());
    put(&mut buf, &nanos(b.at).to_be_bytes());
    put(&mut buf, b.action.as_str().as_bytes());
    put(&mut buf, b.outcome.as_str().as_bytes());
    put(&mut buf, b.reason.as_bytes());
    put(
        &mut buf,
        b.user_id
            .map(|u| u.to_bytes())
            .as_ref()
            .map_or(&[][..], |u| &u[..]),
    );
    put(
        &mut buf,
        b.session_id
            .map(|s| s.to_bytes())
            .as_ref()
            .map_or(&[][..], |s| &s[..]),
    );
    put(&mut buf, &[b.personal.tag()]);
    put(&mut buf, b.personal.bytes());
    AuditHash(sha256(&buf))
}

/// The head of a verified chain: keep it elsewhere to detect a truncated or rewritten tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    /// The last position (0 for an empty log).
    pub seq: u64,
    /// The last record's hash ([`AuditHash::GENESIS`] for an empty log).
    pub hash: AuditHash,
}

/// How the chain is broken at a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditBreakage {
    /// The record's content does not match its hash (a field was edited).
    HashMismatch,
    /// The record's position is not the next one (records missing or moved).
    SequenceGap {
        /// The position it should have had.
        expected: u64,
    },
    /// The record does not link to the record before it.
    PrevHashMismatch,
}

/// The first bad record found by verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at position {position} (entry {id}, seq {seq}): {breakage:?}")]
pub struct AuditChainBroken {
    /// The position (from 1) in the chain where verification failed.
    pub position: u64,
    /// The `seq` stored in the offending record.
    pub seq: u64,
    /// The offending record's id.
    pub id: AuditId,
    /// What is wrong.
    pub breakage: AuditBreakage,
}

/// Checks records one at a time in stored `seq` order.
#[derive(Debug, Default)]
pub struct AuditVerifier {
    head: Option<(u64, AuditHash)>,
}

impl AuditVerifier {
    /// A verifier at the start of the log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record.
    ///
    /// # Errors
    ///
    /// [`AuditChainBroken`] naming this record when it does not fit.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), AuditChainBroken> {
        let (last_seq, last_hash) = self.head.unwrap_or((0, AuditHash::GENESIS));
        let position = last_seq + 1;
        let broken = |breakage| AuditChainBroken {
            position,
            seq: r.seq,
            id: r.body.id,
            breakage,
        };
        if r.seq != position {
            return Err(broken(AuditBreakage::SequenceGap { expected: position }));
        }
        if record_hash(r) != r.hash {
            return Err(broken(AuditBreakage::HashMismatch));
        }
        if r.prev_hash != last_hash {
            return Err(broken(AuditBreakage::PrevHashMismatch));
        }
        self.head = Some((r.seq, r.hash));
        Ok(())
    }

    /// The head so far.
    pub fn head(&self) -> AuditHead {
        let (seq, hash) = self.head.unwrap_or((0, AuditHash::GENESIS));
        AuditHead { seq, hash }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: u8) -> AuditRecordBody {
        AuditRecordBody {
            id: AuditId::from_bytes([n; 16]),
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + i64::from(n)).unwrap(),
            action: AuditAction::SignInPassword,
            outcome: AuditOutcome::Success,
            reason: "password".into(),
            user_id: Some(UserId::from_bytes([9; 16])),
            session_id: None,
            personal: StoredPersonal::Sealed(vec![n; 40]),
        }
    }

    fn chain(n: u8) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let head = out.last().map(|r| (r.seq, r.hash));
            out.push(AuditRecord::link(body(i), head));
        }
        out
    }

    fn verify(records: &[AuditRecord]) -> Result<AuditHead, AuditChainBroken> {
        let mut v = AuditVerifier::new();
        for r in records {
            v.push(r)?;
        }
        Ok(v.head())
    }

    #[test]
    fn intact_chain_verifies_and_each_tampering_is_named() {
        let good = chain(4);
        assert_eq!(verify(&good).unwrap().seq, 4);

        let mut edited = good.clone();
        edited[1].body.reason = "other".into();
        let e = verify(&edited).unwrap_err();
        assert_eq!((e.position, e.breakage), (2, AuditBreakage::HashMismatch));

        let mut deleted = good.clone();
        deleted.remove(2);
        let e = verify(&deleted).unwrap_err();
        assert_eq!(e.id, good[3].body.id);
        assert_eq!(e.breakage, AuditBreakage::SequenceGap { expected: 3 });

        let mut swapped = good.clone();
        swapped.swap(1, 2);
        let e = verify(&swapped).unwrap_err();
        assert_eq!((e.position, e.id), (2, good[2].body.id));
    }
}
