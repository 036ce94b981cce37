//! Signed anchors: the ledger's head, signed, so that a later ledger can be checked for
//! rewrites by anyone holding the published key.
//!
//! An anchor is a compact JWS (`typ` `ciam-consent-anchor+jwt`, `alg` `EdDSA`) whose claims
//! are the head's sequence number, its hash and the signing time:
//!
//! ```json
//! {"seq": 1042, "hash": "9f2c…64 hex…", "iat": 1767225600}
//! ```
//!
//! Publish anchors somewhere the database's operators cannot rewrite (an e-mail to the
//! auditor, a transparency log, a WORM bucket). An auditor verifies an anchor offline with
//! [`verify_anchor`] and the published [`PublicJwk`], and checks a dump of the ledger against
//! it with [`check_against`]: the chain must verify and still hold, at the anchored position,
//! the record the anchor signed. A rewrite before the anchor (even one that recomputed every
//! hash after the change) shows up as [`Error::Rewritten`], a cut-off tail as
//! [`Error::Truncated`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::chain::{ChainHash, ChainHead, ChainVerifier, StoredRecord};
use crate::error::Error;
use crate::keys::{PublicJwk, SigningKey};

/// The JWS `typ` of an anchor.
pub const ANCHOR_TYP: &str = "ciam-consent-anchor+jwt";

/// A ledger head as signed in an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The last sequence number covered.
    pub seq: u64,
    /// That record's hash.
    pub hash: ChainHash,
    /// When the anchor was signed (Unix seconds).
    pub iat: i64,
}

impl Anchor {
    /// The anchor of `head` at `at`.
    pub fn new(head: ChainHead, at: OffsetDateTime) -> Self {
        Self {
            seq: head.seq,
            hash: head.hash,
            iat: at.unix_timestamp(),
        }
    }

    /// Signs the anchor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when signing fails.
    pub fn sign(&self, key: &SigningKey) -> Result<String, Error> {
        key.sign(ANCHOR_TYP, self)
    }
}

/// Verifies a signed anchor with the published key, offline.
///
/// # Errors
///
/// [`Error::BadSignature`] when the token is malformed, of another type or not signed by
/// `key`.
pub fn verify_anchor(token: &str, key: &PublicJwk) -> Result<Anchor, Error> {
    key.verify(token, ANCHOR_TYP)
}

/// Follows a ledger against an anchor: feed every record in `seq` order to
/// [`push`](Self::push), then call [`finish`](Self::finish).
#[derive(Debug)]
pub struct AnchorCheck {
    anchor: Anchor,
    verifier: ChainVerifier,
    seen: bool,
}

impl AnchorCheck {
    /// Starts checking against `anchor`.
    pub fn new(anchor: Anchor) -> Self {
        Self {
            anchor,
            verifier: ChainVerifier::new(),
            seen: anchor.seq == 0,
        }
    }

    /// Checks the next record.
    ///
    /// # Errors
    ///
    /// [`Error::Chain`] when the chain breaks at this record, [`Error::Rewritten`] when it is
    /// the anchored position and holds another record.
    pub fn push(&mut self, record: &StoredRecord) -> Result<(), Error> {
        self.verifier.push(record)?;
        if record.seq == self.anchor.seq {
            if record.hash != self.anchor.hash {
                return Err(Error::Rewritten {
                    seq: self.anchor.seq,
                    anchored: self.anchor.hash,
                    found: record.hash,
                });
            }
            self.seen = true;
        }
        Ok(())
    }

    /// The verified head.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when the ledger ended before the anchored position.
    pub fn finish(self) -> Result<ChainHead, Error> {
        let head = self.verifier.head();
        if !self.seen {
            return Err(Error::Truncated {
                anchored: self.anchor.seq,
                head: head.seq,
            });
        }
        Ok(head)
    }
}

/// Checks a whole ledger dump (records in `seq` order) against `anchor`.
///
/// # Errors
///
/// As [`AnchorCheck::push`] and [`AnchorCheck::finish`].
pub fn check_against<'a>(
    records: impl IntoIterator<Item = &'a StoredRecord>,
    anchor: &Anchor,
) -> Result<ChainHead, Error> {
    let mut check = AnchorCheck::new(*anchor);
    for r in records {
        check.push(r)?;
    }
    check.finish()
}
