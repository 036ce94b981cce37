//! Storage traits.
//!
//! They are object-safe (`async_trait`, `Send + Sync + Debug + 'static`) on purpose: an
//! application holds `Arc<dyn SessionStore>` and can compose a backend from parts (SQLite for
//! identities, another store for sessions) without generics leaking into every type. The cost
//! of one boxed future per call is negligible next to the I/O behind it.
//!
//! Every backend must pass the conformance kit in `ciam-storage` (feature `conformance`).
//! The rules the kit checks are written on each method.

use std::fmt::Debug;

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit::{AuditRecord, AuditRecordBody};
use crate::challenge::{Challenge, ChallengePurpose};
use crate::credential::{Credential, CredentialKind};
use crate::id::{CredentialId, SessionId, UserId};
use crate::identifier::{Email, Phone};
use crate::secret::TokenHash;
use crate::session::{DeviceInfo, Session};
use crate::shred::KeyState;
use crate::user::User;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule refused the write (for example the normalised e-mail is taken).
    #[error("conflict: {0} already exists")]
    Conflict(&'static str),
    /// The record changed since it was read (optimistic concurrency); read again and retry.
    #[error("the record was changed concurrently")]
    VersionConflict,
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The store cannot be reached or is busy; the operation may succeed if retried.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("storage failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts.
#[async_trait]
pub trait IdentityStore: Send + Sync + Debug + 'static {
    /// Creates an account together with its first credentials, atomically: either everything
    /// is written or nothing is. Fails with [`StoreError::Conflict`] when the canonical e-mail,
    /// username or phone is already used by another account, even when two creations race.
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()>;

    /// Reads an account by id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;

    /// Reads an account by e-mail, compared by [`Email::canonical`].
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>>;

    /// Reads an account by phone number (E.164, as [`Phone::as_str`]).
    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>>;

    /// Writes `user` if the stored version equals `user.version`, storing `user.version + 1`
    /// and returning the stored record. A stale version gives [`StoreError::VersionConflict`];
    /// a taken e-mail gives [`StoreError::Conflict`]; a missing account [`StoreError::NotFound`].
    /// [`User::last_active_at`] is not written (only [`Self::touch_user_activity`] moves it);
    /// the returned record carries the stored value.
    async fn update_user(&self, user: &User) -> StoreResult<User>;

    /// Records activity (a sign-in) at `at`: [`User::last_active_at`] becomes the later of its
    /// stored value and `at`. Does not change the version. Returns false when the account does
    /// not exist.
    async fn touch_user_activity(&self, id: UserId, at: OffsetDateTime) -> StoreResult<bool>;

    /// Up to `limit` accounts whose last activity ([`User::last_active_at`], or
    /// [`User::created_at`] when there was none) is before `inactive_since`, least recently
    /// active first (ties by id). For the retention job.
    async fn dormant_users(
        &self,
        inactive_since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>>;

    /// Deletes an account together with its credentials (erasure); its e-mail, username and
    /// phone become free. True when it existed.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
}

/// Credentials: password hashes, passkeys, TOTP secrets, recovery codes.
#[async_trait]
pub trait CredentialStore: Send + Sync + Debug + 'static {
    /// Adds a credential. Fails with [`StoreError::Conflict`] when its id exists, or when its
    /// `lookup` is already used by another credential of the same kind (even when two inserts
    /// race), and with [`StoreError::NotFound`] when the owner does not exist.
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()>;

    /// Reads a credential by id.
    async fn credential_by_id(&self, id: CredentialId) -> StoreResult<Option<Credential>>;

    /// Reads the credential of `kind` whose `lookup` key equals `lookup` (compared as bytes).
    async fn credential_by_lookup(
        &self,
        kind: CredentialKind,
        lookup: &[u8],
    ) -> StoreResult<Option<Credential>>;

    /// A user's credentials of a kind, oldest first.
    async fn credentials_for_user(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> StoreResult<Vec<Credential>>;

    /// Replaces a credential's `secret`, `name` and `updated_at` if its stored version equals
    /// `credential.version`, storing `version + 1` and returning the stored record
    /// ([`StoreError::VersionConflict`] otherwise; [`StoreError::NotFound`] when it is gone).
    /// This is how a rehash on sign-in loses no concurrent password change, and how a passkey
    /// sign counter never moves backwards under concurrent sign-ins. Owner, kind, lookup and
    /// creation time never change.
    async fn update_credential(&self, credential: &Credential) -> StoreResult<Credential>;

    /// Records a successful use.
    async fn touch_credential(&self, id: CredentialId, at: OffsetDateTime) -> StoreResult<()>;

    /// Removes a credential; true when it existed.
    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool>;
}

/// Sessions, looked up by token hash.
#[async_trait]
pub trait SessionStore: Send + Sync + Debug + 'static {
    /// Stores a new session.
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;

    /// The session whose token hashes to `hash`, if it exists and has not expired at `now`.
    async fn session_by_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>>;

    /// Slides a session's idle expiry and records activity. Returns false when the session no
    /// longer exists (revoked concurrently).
    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        device: &DeviceInfo,
    ) -> StoreResult<bool>;

    /// A user's sessions that have not expired at `now`, newest first.
    async fn sessions_for_user(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>>;

    /// Deletes one session of `user`; true when it existed. A session id belonging to another
    /// user is not deleted (and gives false).
    async fn delete_session(&self, user: UserId, id: SessionId) -> StoreResult<bool>;

    /// Deletes all of a user's sessions except `keep`; returns how many were deleted.
    async fn delete_user_sessions(&self, user: UserId, keep: Option<SessionId>)
    -> StoreResult<u64>;

    /// Deletes sessions expired at `now`; returns how many.
    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// One-time challenges.
#[async_trait]
pub trait ChallengeStore: Send + Sync + Debug + 'static {
    /// Stores a challenge. A second challenge with the same secret hash is a
    /// [`StoreError::Conflict`].
    async fn insert_challenge(&self, challenge: &Challenge) -> StoreResult<()>;

    /// Atomically removes and returns the challenge with this purpose and secret hash, if it
    /// has not expired at `now`. Of concurrent callers with the same secret, at most one gets
    /// `Some`. An expired challenge is removed and gives `None`.
    async fn consume_challenge(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>>;

    /// Reads, without consuming, the challenge with this purpose and secret hash if it has not
    /// expired at `now`. For long-lived records checked on every use (trusted-device tokens),
    /// never for one-time secrets, which must be consumed.
    async fn challenge_by_hash(
        &self,
        purpose: ChallengePurpose,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>>;

    /// How many live challenges of `purpose` were issued to `user` at or after `since`
    /// (used to rate-limit mail).
    async fn count_challenges(
        &self,
        user: UserId,
        purpose: ChallengePurpose,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<u64>;

    /// Removes every challenge of `purpose` for `user` (voiding outstanding links).
    async fn delete_challenges(&self, user: UserId, purpose: ChallengePurpose) -> StoreResult<u64>;

    /// Deletes every challenge expired at `now` (its `expires_at` is at or before `now`) and
    /// returns how many. An expired challenge is never valid, but one nobody presents again
    /// (an unused link, an abandoned sign-in, a spent refresh token's record) stays in the
    /// store, user id and payload included, until this runs: the engine's
    /// `Ciam::purge_expired` calls it from the application's maintenance job. A store that
    /// expires records by itself (Redis, through key TTLs) may delete nothing and return 0.
    async fn purge_expired_challenges(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// The audit log: an append-only hash chain ([`AuditRecord`]), and the users' data keys that
/// seal its personal part ([`crate::shred`]).
#[async_trait]
pub trait AuditStore: Send + Sync + Debug + 'static {
    /// Appends a record. In one transaction serialised against every other append (also
    /// from other processes): reads the chain's head, links `body` after it with
    /// [`AuditRecord::link`] and writes it, so concurrent appends give one valid chain and an
    /// append that dies midway leaves none of itself. A record id that exists is
    /// [`StoreError::Conflict`].
    async fn append_audit(&self, body: AuditRecordBody) -> StoreResult<AuditRecord>;

    /// The newest records naming `user`, newest first (by `seq`), at most `limit`.
    async fn audit_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<AuditRecord>>;

    /// The newest records overall, newest first (by `seq`), at most `limit`.
    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>>;

    /// Up to `limit` records with `seq > after`, in `seq` order, exactly as stored (for
    /// verification: nothing is checked or repaired on the way).
    async fn audit_after(&self, after: u64, limit: u32) -> StoreResult<Vec<AuditRecord>>;

    /// The user's audit data key.
    async fn audit_key(&self, user: UserId) -> StoreResult<KeyState>;

    /// Stores `wrapped` as the user's data key unless a key or a tombstone exists already
    /// (of concurrent callers exactly one wins) and returns the state afterwards.
    async fn insert_audit_key(
        &self,
        user: UserId,
        wrapped: &[u8],
        at: OffsetDateTime,
    ) -> StoreResult<KeyState>;

    /// Replaces the user's data key with a tombstone dated `at`, also when there was no key
    /// (so none is made later). Idempotent: a second call keeps the first date.
    async fn erase_audit_key(&self, user: UserId, at: OffsetDateTime) -> StoreResult<()>;
}

/// Rate-limit counters in fixed windows, keyed by an opaque string (for example
/// `signin:acct:<user id>` or `signin:ip:<subnet>`).
///
/// Windows are `window` long and aligned to the Unix epoch; the window containing `now` is
/// counted. A sliding window is the caller's combination of the current and the previous
/// window (`count` at `now - window`). Counters of windows older than the previous one may be
/// forgotten by the store.
#[async_trait]
pub trait CounterStore: Send + Sync + Debug + 'static {
    /// Adds one to `key` in the window containing `now` and returns the window's count,
    /// this hit included. Atomic: `n` concurrent hits return `1..=n`, each once.
    async fn hit(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64>;

    /// The count of `key` in the window containing `now` (0 when none), without adding.
    async fn count(&self, key: &str, window: Duration, now: OffsetDateTime) -> StoreResult<u64>;

    /// Several [`Self::count`]s at once: the counts of `reads`, in their order. A sign-in
    /// reads about ten windows before it may hash (each throttle key's current and previous
    /// window), so backends that can answer in one round trip override this; the default
    /// asks one by one.
    async fn counts(&self, reads: &[CounterRead<'_>]) -> StoreResult<Vec<u64>> {
        let mut out = Vec::with_capacity(reads.len());
        for r in reads {
            out.push(self.count(r.key, r.window, r.at).await?);
        }
        Ok(out)
    }

    /// Forgets every window of `key` (for example after a successful sign-in).
    async fn reset(&self, key: &str) -> StoreResult<()>;
}

/// One read of [`CounterStore::counts`]: the window of length `window` containing `at`, of
/// `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRead<'a> {
    /// The counter's key.
    pub key: &'a str,
    /// The window length.
    pub window: Duration,
    /// An instant inside the window to read.
    pub at: OffsetDateTime,
}

/// Answers `reads` from rows of `(key, window ms, window index, count)`, as the SQL backends
/// fetch them (every row of the keys asked): 0 where no row matches.
#[doc(hidden)]
pub fn counts_from_rows(reads: &[CounterRead<'_>], rows: &[(String, i64, i64, i64)]) -> Vec<u64> {
    reads
        .iter()
        .map(|r| {
            let ms = window_ms(r.window);
            let index = window_index(r.window, r.at);
            rows.iter()
                .find(|(k, m, i, _)| k == r.key && *m == ms && *i == index)
                .and_then(|(_, _, _, c)| u64::try_from(*c).ok())
                .unwrap_or(0)
        })
        .collect()
}

/// A window length in milliseconds as the stores keep it: at least 1.
#[doc(hidden)]
pub fn window_ms(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The index of the window of length `window` containing `now`, counted from the Unix epoch.
/// A window shorter than a millisecond counts as one millisecond.
pub fn window_index(window: Duration, now: OffsetDateTime) -> i64 {
    let len = i128::try_from(window.as_millis())
        .unwrap_or(i128::MAX)
        .max(1);
    let millis = now.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis.div_euclid(len)).unwrap_or(i64::MAX)
}

/// A complete backend: every store in one value. Implemented automatically for any type that
/// implements all of the store traits.
pub trait Backend:
    IdentityStore + CredentialStore + SessionStore + ChallengeStore + AuditStore + CounterStore
{
}

impl<T> Backend for T where
    T: IdentityStore + CredentialStore + SessionStore + ChallengeStore + AuditStore + CounterStore
{
}
