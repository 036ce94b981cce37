//! Choosing and assembling the storage from the environment.
//!
//! | setting | effect |
//! |---|---|
//! | `CIAM_DATABASE_URL=sqlite://…` or a path (default) | everything in one SQLite file |
//! | `CIAM_DATABASE_URL=postgres://…` | everything in PostgreSQL; revocations fan out over `LISTEN/NOTIFY` |
//! | `CIAM_REDIS_URL=redis://…` (optional) | sessions and one-time challenges in Redis instead; revocations fan out over pub/sub |
//!
//! Sessions are always validated through a [`SessionCache`] (1 s TTL, 5 min grace when the
//! store is unreachable). With PostgreSQL or Redis, several quickstart processes can share the
//! data: a revocation on one reaches the others' caches through the channel at once.

use std::sync::Arc;
use std::time::Duration;

use ciam::storage::cache::{CacheOptions, SessionCache};
use ciam::storage::compose::ComposedBackend;
use ciam::storage::postgres::PostgresBackend;
use ciam::storage::redis::RedisStore;
use ciam::storage::revocation::postgres::PostgresRevocations;
use ciam::storage::revocation::redis::RedisRevocations;
use ciam::storage::sqlite::SqliteBackend;
use ciam::store::SessionStore;

use crate::chain;

/// The notification channel revocations travel on.
const REVOCATION_CHANNEL: &str = "ciam_revocations";

/// The opened storage: the backend for the engine and what to close on shutdown.
pub(crate) struct Storage {
    pub(crate) backend: Arc<ComposedBackend>,
    sql: Sql,
    listener: Option<tokio::task::JoinHandle<()>>,
}

enum Sql {
    Sqlite(SqliteBackend),
    Postgres(PostgresBackend),
}

impl Storage {
    /// Opens the database (and Redis, when configured) and wires the session cache and the
    /// revocation channel.
    pub(crate) async fn open(database_url: &str, redis_url: Option<&str>) -> Result<Self, String> {
        let postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        let cannot =
            |what: &str, e: &dyn std::error::Error| format!("cannot open {what}: {}", chain(e));
        let db = crate::config::redact_url(database_url);
        let (sql, mut backend) = if postgres {
            let pg = PostgresBackend::connect(database_url)
                .await
                .map_err(|e| cannot(&format!("the database {db}"), &e))?;
            let composed = ComposedBackend::from_backend(Arc::new(pg.clone()));
            (Sql::Postgres(pg), composed)
        } else {
            let lite = SqliteBackend::connect(database_url).await.map_err(|e| {
                format!(
                    "{}\n  (check that the directory exists and is writable, that the file is an SQLite database, \
                     and that no other process holds it locked; set CIAM_DATABASE_URL to choose another)",
                    cannot(&format!("the database {db}"), &e)
                )
            })?;
            let composed = ComposedBackend::from_backend(Arc::new(lite.clone()));
            (Sql::Sqlite(lite), composed)
        };
        let mut sessions: Arc<dyn SessionStore> = Arc::clone(backend.sessions());
        let mut channel = None;
        if let Some(url) = redis_url {
            let redis = Arc::new(RedisStore::connect(url).await.map_err(|e| {
                cannot(
                    &format!("Redis {} (CIAM_REDIS_URL)", crate::config::redact_url(url)),
                    &e,
                )
            })?);
            backend = backend.with_challenges(redis.clone());
            sessions = redis;
            channel = Some(Channel::Redis(
                RedisRevocations::connect(url, REVOCATION_CHANNEL)
                    .await
                    .map_err(|e| cannot("Redis pub/sub", &e))?,
            ));
        } else if let Sql::Postgres(pg) = &sql {
            channel = Some(Channel::Postgres(
                PostgresRevocations::new(pg.pool().clone(), REVOCATION_CHANNEL)
                    .map_err(|e| cannot("LISTEN/NOTIFY", &e))?,
            ));
        }
        let options = CacheOptions::new(100_000, Duration::from_secs(1), Duration::from_secs(300));
        let mut cache = SessionCache::new(sessions, options);
        let listener = match channel {
            Some(Channel::Redis(ch)) => {
                let task = ch
                    .listen(cache.clone())
                    .await
                    .map_err(|e| cannot("the revocation listener", &e))?;
                cache = cache.with_channel(Arc::new(ch));
                Some(task)
            }
            Some(Channel::Postgres(ch)) => {
                let task = ch
                    .listen(cache.clone())
                    .await
                    .map_err(|e| cannot("the revocation listener", &e))?;
                cache = cache.with_channel(Arc::new(ch));
                Some(task)
            }
            None => None,
        };
        let backend = Arc::new(backend.with_sessions(Arc::new(cache)));
        tracing::info!(
            database = if postgres { "postgres" } else { "sqlite" },
            redis = redis_url.is_some(),
            "storage ready"
        );
        Ok(Self {
            backend,
            sql,
            listener,
        })
    }

    /// Stops the listener and closes the database pool.
    pub(crate) async fn close(self) {
        if let Some(task) = self.listener {
            task.abort();
        }
        match self.sql {
            Sql::Sqlite(s) => s.close().await,
            Sql::Postgres(p) => p.close().await,
        }
    }
}

enum Channel {
    Redis(RedisRevocations),
    Postgres(PostgresRevocations),
}
