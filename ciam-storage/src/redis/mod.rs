//! The Redis backend for sessions and one-time challenges.
//!
//! [`RedisStore`] implements [`SessionStore`] and [`ChallengeStore`] on a Redis server (7.0 or
//! later; a single primary, optionally with replicas: Redis Cluster is not supported, because
//! the scripts below touch keys derived from other keys' values). It holds no accounts,
//! credentials or audit log: put it together with a SQL backend in a
//! [`ComposedBackend`](crate::compose::ComposedBackend).
//!
//! ```no_run
//! # async fn open() -> Result<(), ciam_core::store::StoreError> {
//! use std::time::Duration;
//!
//! use ciam_storage::redis::{RedisOptions, RedisStore};
//!
//! let mut options = RedisOptions::new("redis://:password@cache.internal:6379/0");
//! options.key_prefix = "myapp:ciam:".to_owned();
//! options.command_timeout = Duration::from_millis(500);
//! let store = RedisStore::connect_with(options).await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Key layout
//!
//! Every key starts with the configured prefix `P` (default `ciam:`). Ids are written in their
//! text form (`usr_…`, `ses_…`), hashes of tokens and secrets as 64 lowercase hex digits, and
//! times as decimal Unix nanoseconds, so every record reads back exactly as written.
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `P s:<token hash>` | hash | one session: `id`, `user`, `token`, `created`, `last_seen`, `idle`, `absolute`, `auth_time` (ns), `amr` (comma-separated RFC 8176 names), `aal` (1–3), and `ua`, `ip` when known |
//! | `P sid:<session id>` | string | the session's token hash, so a session can be found by id |
//! | `P us:<user id>` | sorted set | the user's session ids, scored by creation time (ns) |
//! | `P exp` | sorted set | every session id, scored by when it expires (the earlier of its idle and absolute expiry, ns); what [`purge_expired_sessions`](ciam_core::store::SessionStore::purge_expired_sessions) walks |
//! | `P c:<secret hash>` | hash | one challenge: `purpose`, `user` (when any), `payload` (JSON), `created`, `expires` (ns) |
//! | `P cu:<user id>:<purpose>` | sorted set | the user's challenge hashes of a purpose, scored by creation time (ns) |
//!
//! Sorted-set scores are doubles, which cannot hold a nanosecond time exactly; they only
//! narrow a search. Every decision about expiry or a time window is taken on the exact decimal
//! value, in the scripts or in Rust.
//!
//! # Expiry
//!
//! Expiry is decided against the `now` each call is given, never against Redis's clock: a
//! session is returned exactly while `now` is before both of its expiries, whatever the time on
//! the Redis server. Keys also carry a TTL (`PEXPIREAT`) so Redis reclaims what nobody deletes,
//! but only as a garbage-collection backstop: a record is kept until
//! [`RedisOptions::gc_grace`] after the later of its expiry and the Redis server's current
//! time, so a clock difference between application and Redis smaller than the grace never
//! loses a live record. Index entries whose record Redis reclaimed are dropped lazily when next
//! read. Call `purge_expired_sessions` periodically (as with any backend) to delete expired
//! sessions promptly and keep the `P exp` index small.
//!
//! # Atomicity
//!
//! Every operation touching more than one key is one Lua script (`EVALSHA`, preloaded on
//! connect), which Redis runs without interleaving any other command, so each call is one
//! round trip and all-or-nothing with respect to other clients:
//!
//! - `insert_session` refuses (with [`StoreError::Conflict`]) when the token hash or the
//!   session id is already stored, and otherwise writes the session, its id mapping and both
//!   index entries;
//! - `touch_session` updates the session only if it still exists (false otherwise);
//! - `delete_session` deletes only when the session belongs to the given user;
//! - `delete_user_sessions` walks the user's set and deletes every session but `keep` in one
//!   script: revoking a thousand sessions is still one round trip, with no `SCAN`;
//! - `purge_expired_sessions` deletes in batches of 1000, each batch one script;
//! - `consume_challenge` reads, checks the purpose and deletes in one script, so of concurrent
//!   consumers exactly one gets the challenge; a wrong purpose leaves it in place, an expired
//!   one is deleted and gives `None`;
//! - `insert_challenge`, `count_challenges` and `delete_challenges` are scripts too.
//!
//! A session store cannot see accounts, so `insert_session` does not check that the user
//! exists (a SQL backend gives [`StoreError::NotFound`] there).
//!
//! # Timeouts and errors
//!
//! Every call is bounded by [`RedisOptions::command_timeout`] (default 2 s), and connecting by
//! [`RedisOptions::connect_timeout`] (default 5 s). A timeout, a refused or dropped connection,
//! or a server that is loading or read-only gives [`StoreError::Unavailable`]; the call never
//! hangs. The underlying `redis::aio::ConnectionManager` reconnects in the background, so a
//! later call succeeds once the server is back. A stored value of the wrong Redis type or one
//! that does not decode gives [`StoreError::Corrupt`], never a panic.
//!
//! [`SessionStore`]: ciam_core::store::SessionStore
//! [`ChallengeStore`]: ciam_core::store::ChallengeStore

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ciam_core::store::{StoreError, StoreResult};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

mod challenges;
mod codec;
mod counters;
mod scripts;
mod sessions;

use scripts::Scripts;

/// How a [`RedisStore`] connects and names its keys.
///
/// Make one with [`RedisOptions::new`] and change the fields you need. `Debug` leaves out the
/// password and query string of the URL.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The server, as `redis://[[user]:password@]host[:port][/db]` (`rediss://` needs a TLS
    /// feature of the `redis` crate, which this crate does not enable).
    pub url: String,
    /// Prepended to every key (default `ciam:`), so several applications or test runs can
    /// share one database.
    pub key_prefix: String,
    /// The longest any one call may take, round trip included (default 2 s).
    pub command_timeout: Duration,
    /// The longest connecting may take (default 5 s).
    pub connect_timeout: Duration,
    /// How long after its expiry (or after being written, when already expired by the Redis
    /// server's clock) Redis may reclaim a record on its own (default 1 hour). See the module
    /// documentation on expiry.
    pub gc_grace: Duration,
}

impl RedisOptions {
    /// Options for the server at `url`, with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "ciam:".to_owned(),
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            gc_grace: Duration::from_secs(3600),
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("gc_grace", &self.gc_grace)
            .finish()
    }
}

/// Sessions and one-time challenges in Redis. Cheap to clone (clones share the connection).
///
/// Implements [`SessionStore`](ciam_core::store::SessionStore) and
/// [`ChallengeStore`](ciam_core::store::ChallengeStore); see the [module documentation](self)
/// for the key layout, atomicity and timeouts.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    gc_grace_ms: u64,
    redacted_url: String,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.redacted_url)
            .field("key_prefix", &self.inner.prefix)
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server at `url` with the default [`RedisOptions`].
    ///
    /// Fails with [`StoreError::Unavailable`] when the server cannot be reached in time and
    /// [`StoreError::Other`] for a malformed URL or refused credentials.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(RedisOptions::new(url)).await
    }

    /// Connects with `options`, and loads the scripts into the server's script cache.
    ///
    /// Fails like [`RedisStore::connect`].
    pub async fn connect_with(options: RedisOptions) -> StoreResult<Self> {
        let redacted_url = redact(&options.url);
        let client = redis::Client::open(options.url.as_str()).map_err(|e| {
            StoreError::Other(format!("invalid Redis URL {redacted_url}: {e}").into())
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let conn = bounded(
            options.connect_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await?;
        let scripts = Scripts::new();
        for script in scripts.all() {
            let mut c = conn.clone();
            let _sha: String = bounded(options.command_timeout, script.load_async(&mut c)).await?;
        }
        tracing::debug!(url = %redacted_url, prefix = %options.key_prefix, "redis store ready");
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                prefix: options.key_prefix,
                timeout: options.command_timeout,
                gc_grace_ms: u64::try_from(options.gc_grace.as_millis()).unwrap_or(u64::MAX),
                redacted_url,
                scripts,
            }),
        })
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// A handle on the connection, for diagnostics and tests. Writing through it bypasses the
    /// rules this store enforces.
    #[doc(hidden)]
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    /// `P <kind>:<rest>`.
    fn key(&self, kind: &str, rest: &str) -> String {
        format!("{}{kind}:{rest}", self.inner.prefix)
    }

    /// `P exp`, the sessions by expiry.
    fn expiry_index(&self) -> String {
        format!("{}exp", self.inner.prefix)
    }

    /// Runs `fut` within the command timeout, mapping errors.
    async fn run<T>(&self, fut: impl Future<Output = RedisResult<T>>) -> StoreResult<T> {
        bounded(self.inner.timeout, fut).await
    }
}

/// Awaits `fut` for at most `limit`: a timeout is [`StoreError::Unavailable`], other errors are
/// mapped by [`map_err`].
async fn bounded<T>(limit: Duration, fut: impl Future<Output = RedisResult<T>>) -> StoreResult<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(map_err(err)),
        Err(_) => {
            tracing::warn!(?limit, "redis call timed out");
            Err(StoreError::Unavailable(
                format!("redis did not answer within {limit:?}").into(),
            ))
        }
    }
}

/// Classifies a Redis error: connection trouble and transient server states are
/// [`StoreError::Unavailable`], values of the wrong type or shape [`StoreError::Corrupt`].
fn map_err(err: RedisError) -> StoreError {
    let wrong_type =
        err.code() == Some("WRONGTYPE") || err.detail().is_some_and(|d| d.contains("WRONGTYPE"));
    if wrong_type {
        return StoreError::Corrupt(format!("a key holds the wrong Redis type: {err}"));
    }
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
    {
        tracing::warn!(error = %err, "redis unavailable");
        return StoreError::Unavailable(Box::new(err));
    }
    match err.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::ReadOnly,
        ) => {
            tracing::warn!(error = %err, "redis unavailable");
            StoreError::Unavailable(Box::new(err))
        }
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::Corrupt(format!("unexpected Redis reply: {err}"))
        }
        _ => StoreError::Other(Box::new(err)),
    }
}

/// The URL without credentials or query string, for logs and `Debug`.
fn redact(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(base, _)| base);
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsed Redis URL>".to_owned();
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0?x=1"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://:secret@host"), "redis://***@host");
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(
            redact("redis+unix:///run/redis.sock?pass=secret"),
            "redis+unix:///run/redis.sock"
        );
        assert_eq!(redact("nonsense"), "<unparsed Redis URL>");
    }
}
