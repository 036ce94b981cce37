//! The crate's error type.

use ciam_core::store::StoreError;

use crate::chain::{ChainBroken, ChainHash};

/// What went wrong in a ledger call. Bad input never changes state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given by the caller is malformed or out of bounds; names the value.
    #[error("invalid {0}")]
    InvalidInput(&'static str),
    /// The purpose is not in the catalog.
    #[error("unknown purpose")]
    UnknownPurpose,
    /// The policy version is not in the catalog, or no policy is in force yet.
    #[error("unknown policy version")]
    UnknownPolicyVersion,
    /// The subject was erased: nothing more is recorded or disclosed for them.
    #[error("the subject was erased")]
    Erased,
    /// No such record.
    #[error("not found")]
    NotFound,
    /// The ledger's hash chain is broken; names the first bad record.
    #[error(transparent)]
    Chain(#[from] ChainBroken),
    /// The ledger no longer holds, at an anchored position, the record the anchor signed: the
    /// history before the anchor was rewritten.
    #[error("the ledger was rewritten before the anchor at seq {seq}")]
    Rewritten {
        /// The anchored position.
        seq: u64,
        /// The hash the anchor signed.
        anchored: ChainHash,
        /// The hash found there now.
        found: ChainHash,
    },
    /// The ledger is shorter than a signed anchor says it was: records were cut off.
    #[error("the ledger ends at seq {head}, before the anchor at seq {anchored}")]
    Truncated {
        /// The anchored position.
        anchored: u64,
        /// The ledger's last position now.
        head: u64,
    },
    /// A signature (anchor or receipt) does not verify, or the token is malformed.
    #[error("signature does not verify")]
    BadSignature,
    /// A signing key is unusable.
    #[error("invalid signing key")]
    InvalidKey,
    /// The random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// Stored data does not decode or open.
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
