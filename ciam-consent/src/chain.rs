//! Ledger records, their hashes and chain verification.
//!
//! Every record carries two links: `prev_hash`, the hash of the record before it in the
//! global order (`seq` 1, 2, 3…), and `prev_subject_hash`, the hash of the same subject's
//! previous record (`subject_seq` 1, 2, 3… per user). The record's own `hash` is SHA-256 over
//! a length-prefixed encoding of every field, both links and both positions (see
//! [`record_hash`]), including the sealed personal data as ciphertext. So:
//!
//! - editing any stored field changes the record's hash (caught at that record);
//! - deleting a record leaves a gap in `seq` and a `prev_hash` pointing at a record that is
//!   not the one before (caught at the record after the gap);
//! - inserting a record needs renumbering, which changes the hashes (caught at the first
//!   renumbered record), or appending one whose links do not match the chain;
//! - reordering two records changes their positions, which are hashed (caught at the first).
//!
//! What a hash chain cannot show by itself is a *rewrite*: someone with write access who
//! recomputes every hash from the point of change, or cuts the tail off. That is what signed
//! anchors are for ([`crate::anchor`]): a head (sequence, hash, time) signed with a key the
//! database never sees, checked later against the ledger.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ciam_core::id::UserId;
use ciam_core::rng::{RandomError, SecureRandom};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::model::{EventKind, LegalBasis, PurposeId};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses lower- or upper-case hex into exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from((hi << 4) | lo).ok()?;
    }
    Some(out)
}

/// Serialises a type as its `Display` text and parses it back with `FromStr`.
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A SHA-256 chain hash; shown and serialised as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The link of a first record: 32 zero bytes.
    pub const GENESIS: Self = Self([0; 32]);
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ChainHash {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        unhex::<32>(s)
            .map(Self)
            .ok_or(crate::Error::InvalidInput("chain hash"))
    }
}

text_serde!(ChainHash);

/// Identifies a ledger record (`cns_` and 32 hex digits); also the receipt id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 16]);

impl RecordId {
    /// The text prefix.
    pub const PREFIX: &'static str = "cns_";

    /// Draws a new random id.
    ///
    /// # Errors
    ///
    /// When the random source fails.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, RandomError> {
        let mut b = [0u8; 16];
        rng.fill(&mut b)?;
        Ok(Self(b))
    }

    /// From the 16 stored bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex(&self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for RecordId {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(Self::PREFIX)
            .and_then(unhex::<16>)
            .map(Self)
            .ok_or(crate::Error::InvalidInput("record id"))
    }
}

text_serde!(RecordId);

/// A record as the ledger hands it to a store to append: everything but its position and
/// links, which the store assigns inside its append transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBody {
    /// Random id.
    pub id: RecordId,
    /// The subject (a pseudonymous random id; it stays after erasure).
    pub user: UserId,
    /// What happened.
    pub kind: EventKind,
    /// For which purpose.
    pub purpose: PurposeId,
    /// The policy version shown.
    pub policy_version: u32,
    /// The legal basis.
    pub basis: LegalBasis,
    /// Source application.
    pub application: String,
    /// Source channel / collection method.
    pub channel: String,
    /// SHA-256 of the text shown.
    pub text_hash: Option<[u8; 32]>,
    /// When it happened.
    pub at: OffsetDateTime,
    /// When a grant stops counting.
    pub expires_at: Option<OffsetDateTime>,
    /// The personal data, sealed with the subject's data key (nonce, ciphertext and tag).
    pub sealed: Vec<u8>,
}

/// A record as stored: the body with its positions, links and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Position in the global chain, from 1.
    pub seq: u64,
    /// Position in the subject's chain, from 1.
    pub subject_seq: u64,
    /// Hash of record `seq - 1` ([`ChainHash::GENESIS`] for the first).
    pub prev_hash: ChainHash,
    /// Hash of the subject's record `subject_seq - 1` ([`ChainHash::GENESIS`] for the first).
    pub prev_subject_hash: ChainHash,
    /// This record's hash ([`record_hash`]).
    pub hash: ChainHash,
    /// The content.
    pub body: RecordBody,
}

impl StoredRecord {
    /// Links `body` after the global head `(seq, hash)` and the subject's head, computing its
    /// hash. Stores call this inside their append transaction.
    pub fn link(
        body: RecordBody,
        global_head: Option<(u64, ChainHash)>,
        subject_head: Option<(u64, ChainHash)>,
    ) -> Self {
        let (prev_seq, prev_hash) = global_head.unwrap_or((0, ChainHash::GENESIS));
        let (prev_sseq, prev_subject_hash) = subject_head.unwrap_or((0, ChainHash::GENESIS));
        let mut r = Self {
            seq: prev_seq + 1,
            subject_seq: prev_sseq + 1,
            prev_hash,
            prev_subject_hash,
            hash: ChainHash::GENESIS,
            body,
        };
        r.hash = record_hash(&r);
        r
    }

    /// Where the record stands, for proofs and decisions.
    pub fn position(&self) -> RecordRef {
        RecordRef {
            id: self.body.id,
            seq: self.seq,
            subject_seq: self.subject_seq,
            hash: self.hash,
            at: self.body.at,
            kind: self.body.kind,
            policy_version: self.body.policy_version,
            expires_at: self.body.expires_at,
        }
    }
}

/// A small, copyable reference to a record: what a decision or proof points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    /// The record id.
    pub id: RecordId,
    /// Global position.
    pub seq: u64,
    /// Position in the subject's chain.
    pub subject_seq: u64,
    /// The record's hash.
    pub hash: ChainHash,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What it recorded.
    pub kind: EventKind,
    /// Under which policy version.
    pub policy_version: u32,
    /// When it stops counting.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Domain separation for [`record_hash`].
const DOMAIN: &[u8] = b"ciam-consent/record/v1";

fn put(buf: &mut Vec<u8>, field: &[u8]) {
    // Lengths fit: every field is bounded far below 4 GiB by the ledger.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(field);
}

/// Unix nanoseconds (i64 covers the years 1677 to 2262).
pub(crate) fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// The hash of a stored record: SHA-256 over `ciam-consent/record/v1` followed by each field
/// as a 4-byte big-endian length and its bytes, in this order: `seq` (u64 BE),
/// `subject_seq` (u64 BE), `prev_hash`, `prev_subject_hash`, `id` (16 bytes), `user`
/// (16 bytes), `kind` text, `purpose` text, `policy_version` (u32 BE), `basis` text,
/// `application`, `channel`, `text_hash` (empty or 32 bytes), `at` (Unix ns, i64 BE),
/// `expires_at` (empty or i64 BE), `sealed`. The stored `hash` field is not an input.
pub fn record_hash(r: &StoredRecord) -> ChainHash {
    let b = &r.body;
    let mut buf = Vec::with_capacity(256 + b.sealed.len());
    buf.extend_from_slice(DOMAIN);
    put(&mut buf, &r.seq.to_be_bytes());
    put(&mut buf, &r.subject_seq.to_be_bytes());
    put(&mut buf, &r.prev_hash.0);
    put(&mut buf, &r.prev_subject_hash.0);
    put(&mut buf, &b.id.to_bytes());
    put(&mut buf, &b.user.to_bytes());
    put(&mut buf, b.kind.as_str().as_bytes());
    put(&mut buf, b.purpose.as_str().as_bytes());
    put(&mut buf, &b.policy_version.to_be_bytes());
    put(&mut buf, b.basis.as_str().as_bytes());
    put(&mut buf, b.application.as_bytes());
    put(&mut buf, b.channel.as_bytes());
    put(&mut buf, b.text_hash.as_ref().map_or(&[][..], |h| &h[..]));
    put(&mut buf, &nanos(b.at).to_be_bytes());
    match b.expires_at {
        Some(t) => put(&mut buf, &nanos(t).to_be_bytes()),
        None => put(&mut buf, &[]),
    }
    put(&mut buf, &b.sealed);
    ChainHash(sha256(&buf))
}

/// The head of a verified chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The last sequence number (0 for an empty ledger).
    pub seq: u64,
    /// The last record's hash ([`ChainHash::GENESIS`] for an empty ledger).
    pub hash: ChainHash,
}

/// How a chain is broken at a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// The record's content does not match its hash (a field was edited).
    HashMismatch,
    /// The record's sequence number is not the next one (records missing or moved).
    SequenceGap {
        /// The number the record should have had.
        expected: u64,
    },
    /// The record does not link to the record before it in the global chain.
    PrevHashMismatch,
    /// The record's position in its subject's chain is not the next one.
    SubjectSequenceGap {
        /// The subject position it should have had.
        expected: u64,
    },
    /// The record does not link to its subject's previous record.
    SubjectPrevHashMismatch,
}

/// The first bad record found by verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("consent ledger broken at position {position} (record {id}, seq {seq}): {breakage:?}")]
pub struct ChainBroken {
    /// The position (1-based) in the global order where verification failed.
    pub position: u64,
    /// The `seq` stored in the offending record.
    pub seq: u64,
    /// The offending record's id.
    pub id: RecordId,
    /// Its subject.
    pub user: UserId,
    /// What is wrong.
    pub breakage: Breakage,
}

/// Checks records one at a time in global order; keeps the last hash of every subject seen.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    head: Option<(u64, ChainHash)>,
    subjects: HashMap<UserId, (u64, ChainHash)>,
}

impl ChainVerifier {
    /// A verifier at the start of the ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record (records must come in stored `seq` order).
    ///
    /// # Errors
    ///
    /// [`ChainBroken`] naming this record when it does not fit.
    pub fn push(&mut self, r: &StoredRecord) -> Result<(), ChainBroken> {
        let (last_seq, last_hash) = self.head.unwrap_or((0, ChainHash::GENESIS));
        let position = last_seq + 1;
        let broken = |breakage| ChainBroken {
            position,
            seq: r.seq,
            id: r.body.id,
            user: r.body.user,
            breakage,
        };
        if r.seq != position {
            return Err(broken(Breakage::SequenceGap { expected: position }));
        }
        if record_hash(r) != r.hash {
            return Err(broken(Breakage::HashMismatch));
        }
        if r.prev_hash != last_hash {
            return Err(broken(Breakage::PrevHashMismatch));
        }
        let (sseq, shash) = self
            .subjects
            .get(&r.body.user)
            .copied()
            .unwrap_or((0, ChainHash::GENESIS));
        if r.subject_seq != sseq + 1 {
            return Err(broken(Breakage::SubjectSequenceGap { expected: sseq + 1 }));
        }
        if r.prev_subject_hash != shash {
            return Err(broken(Breakage::SubjectPrevHashMismatch));
        }
        self.head = Some((r.seq, r.hash));
        self.subjects.insert(r.body.user, (r.subject_seq, r.hash));
        Ok(())
    }

    /// The head so far.
    pub fn head(&self) -> ChainHead {
        let (seq, hash) = self.head.unwrap_or((0, ChainHash::GENESIS));
        ChainHead { seq, hash }
    }
}

/// Checks one subject's records (in `subject_seq` order) on their own: contents match hashes
/// and each links to the previous. Global links are not checked (they point at other
/// subjects' records); [`ChainVerifier`] checks those.
///
/// # Errors
///
/// [`ChainBroken`] naming the first bad record (`position` is its subject position).
pub fn verify_subject(records: &[StoredRecord]) -> Result<(), ChainBroken> {
    let mut last = (0u64, ChainHash::GENESIS);
    for r in records {
        let position = last.0 + 1;
        let broken = |breakage| ChainBroken {
            position,
            seq: r.seq,
            id: r.body.id,
            user: r.body.user,
            breakage,
        };
        if record_hash(r) != r.hash {
            return Err(broken(Breakage::HashMismatch));
        }
        if r.subject_seq != position {
            return Err(broken(Breakage::SubjectSequenceGap { expected: position }));
        }
        if r.prev_subject_hash != last.1 {
            return Err(broken(Breakage::SubjectPrevHashMismatch));
        }
        last = (r.subject_seq, r.hash);
    }
    Ok(())
}
