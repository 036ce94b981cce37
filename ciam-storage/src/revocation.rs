//! Carrying session revocations between processes, so that every instance's
//! [`SessionCache`] drops a revoked session at once rather than within its TTL.
//!
//! A [`RevocationChannel`] publishes; a listener task per process receives and calls
//! [`SessionCache::evict`]. Delivery is best effort by design: a lost message costs at most
//! the cache TTL of staleness, and a listener that loses its connection clears its cache when
//! it reconnects (it may have missed messages), so correctness never depends on the channel.
//!
//! | channel | feature | transport |
//! |---|---|---|
//! | `redis::RedisRevocations` | `redis` | Redis `PUBLISH` / `SUBSCRIBE` |
//! | `postgres::PostgresRevocations` | `postgres` | PostgreSQL `pg_notify` / `LISTEN` |
//!
//! Messages are short text: `s:<session id>` or `u:<user id>:<kept session id or ->`.

use std::fmt::Debug;

use async_trait::async_trait;
use ciam_core::store::StoreResult;

use crate::cache::Revocation;
#[cfg(any(feature = "redis", feature = "postgres"))]
use crate::cache::SessionCache;

/// Publishes revocations to the other processes.
#[async_trait]
pub trait RevocationChannel: Send + Sync + Debug + 'static {
    /// Announces one revocation.
    async fn publish(&self, revocation: Revocation) -> StoreResult<()>;
}

/// The wire form of a revocation.
pub fn encode(r: Revocation) -> String {
    match r {
        Revocation::Session(id) => format!("s:{id}"),
        Revocation::User { user, keep } => match keep {
            Some(k) => format!("u:{user}:{k}"),
            None => format!("u:{user}:-"),
        },
    }
}

/// Parses the wire form; `None` for anything else.
pub fn decode(text: &str) -> Option<Revocation> {
    if let Some(id) = text.strip_prefix("s:") {
        return id.parse().ok().map(Revocation::Session);
    }
    let rest = text.strip_prefix("u:")?;
    let (user, keep) = rest.split_once(':')?;
    let user = user.parse().ok()?;
    let keep = match keep {
        "-" => None,
        k => Some(k.parse().ok()?),
    };
    Some(Revocation::User { user, keep })
}

/// Applies one received message to a cache.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn apply(cache: &SessionCache, payload: &str) {
    match decode(payload) {
        Some(r) => cache.evict(r),
        None => tracing::warn!(
            len = payload.len(),
            "ignoring a malformed revocation message"
        ),
    }
}

#[cfg(feature = "redis")]
pub mod redis {
    //! Revocations over Redis pub/sub.

    use std::time::Duration;

    use async_trait::async_trait;
    use ciam_core::store::{StoreError, StoreResult};
    use futures_util::StreamExt;
    use redis::AsyncCommands;
    use redis::aio::ConnectionManager;

    use super::{RevocationChannel, apply, encode};
    use crate::cache::{Revocation, SessionCache};

    /// Publishes and receives revocations on one Redis pub/sub channel.
    #[derive(Clone)]
    pub struct RedisRevocations {
        client: redis::Client,
        publisher: ConnectionManager,
        channel: String,
        timeout: Duration,
    }

    impl std::fmt::Debug for RedisRevocations {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisRevocations")
                .field("channel", &self.channel)
                .finish_non_exhaustive()
        }
    }

    fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Unavailable(Box::new(e))
    }

    impl RedisRevocations {
        /// Connects to Redis at `url` for the pub/sub `channel` (for example
        /// `ciam:revocations`), with a 2-second bound on each publish.
        pub async fn connect(url: &str, channel: &str) -> StoreResult<Self> {
            let client = redis::Client::open(url).map_err(unavailable)?;
            let timeout = Duration::from_secs(2);
            let publisher = tokio::time::timeout(timeout, ConnectionManager::new(client.clone()))
                .await
                .map_err(unavailable)?
                .map_err(unavailable)?;
            Ok(Self {
                client,
                publisher,
                channel: channel.to_owned(),
                timeout,
            })
        }

        /// Spawns the task that applies this channel's messages to `cache`, resubscribing
        /// after a lost connection (and then clearing the cache, which may have missed
        /// messages). Returns once the first subscription is active, so no revocation
        /// published after this call is missed. The task ends when the handle is aborted.
        pub async fn listen(
            &self,
            cache: SessionCache,
        ) -> StoreResult<tokio::task::JoinHandle<()>> {
            let mut pubsub = self.subscribe().await?;
            let this = self.clone();
            Ok(tokio::spawn(async move {
                loop {
                    {
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            if let Ok(payload) = msg.get_payload::<String>() {
                                apply(&cache, &payload);
                            }
                        }
                    }
                    tracing::warn!(channel = %this.channel, "revocation subscription lost; resubscribing");
                    pubsub = loop {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        if let Ok(p) = this.subscribe().await {
                            break p;
                        }
                    };
                    cache.clear();
                }
            }))
        }

        async fn subscribe(&self) -> StoreResult<redis::aio::PubSub> {
            let connect = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(&self.channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            tokio::time::timeout(self.timeout, connect)
                .await
                .map_err(unavailable)?
                .map_err(unavailable)
        }
    }

    #[async_trait]
    impl RevocationChannel for RedisRevocations {
        async fn publish(&self, revocation: Revocation) -> StoreResult<()> {
            let mut conn = self.publisher.clone();
            let publish = conn.publish::<_, _, i64>(&self.channel, encode(revocation));
            tokio::time::timeout(self.timeout, publish)
                .await
                .map_err(unavailable)?
                .map_err(unavailable)?;
            Ok(())
        }
    }
}

#[cfg(feature = "postgres")]
pub mod postgres {
    //! Revocations over PostgreSQL `LISTEN/NOTIFY`.

    use std::time::Duration;

    use async_trait::async_trait;
    use ciam_core::store::{StoreError, StoreResult};
    use sqlx::PgPool;
    use sqlx::postgres::PgListener;

    use super::{RevocationChannel, apply, encode};
    use crate::cache::{Revocation, SessionCache};

    /// Publishes and receives revocations on one PostgreSQL notification channel.
    #[derive(Debug, Clone)]
    pub struct PostgresRevocations {
        pool: PgPool,
        channel: String,
    }

    fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Unavailable(Box::new(e))
    }

    impl PostgresRevocations {
        /// Uses `pool` for the notification `channel` (an SQL identifier such as
        /// `ciam_revocations`: letters, digits and `_`, at most 63 bytes).
        pub fn new(pool: PgPool, channel: &str) -> StoreResult<Self> {
            let ok = !channel.is_empty()
                && channel.len() <= 63
                && channel
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(StoreError::Other(
                    "invalid notification channel name".into(),
                ));
            }
            Ok(Self {
                pool,
                channel: channel.to_owned(),
            })
        }

        /// Spawns the task that applies this channel's notifications to `cache`. After a
        /// lost connection the listener reconnects and the cache is cleared (notifications
        /// sent meanwhile are lost). Returns once `LISTEN` is active.
        pub async fn listen(
            &self,
            cache: SessionCache,
        ) -> StoreResult<tokio::task::JoinHandle<()>> {
            let mut listener = PgListener::connect_with(&self.pool)
                .await
                .map_err(unavailable)?;
            listener.listen(&self.channel).await.map_err(unavailable)?;
            let channel = self.channel.clone();
            Ok(tokio::spawn(async move {
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => apply(&cache, n.payload()),
                        // The connection was lost; the next call reconnects and listens again.
                        Ok(None) => {
                            tracing::warn!(%channel, "revocation listener reconnecting");
                            cache.clear();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, %channel, "revocation listener error");
                            cache.clear();
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            }))
        }
    }

    #[async_trait]
    impl RevocationChannel for PostgresRevocations {
        async fn publish(&self, revocation: Revocation) -> StoreResult<()> {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(encode(revocation))
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciam_core::id::{SessionId, UserId};

    #[test]
    fn wire_form_round_trips_and_rejects_garbage() {
        let s = SessionId::from_bytes([1; 16]);
        let u = UserId::from_bytes([2; 16]);
        for r in [
            Revocation::Session(s),
            Revocation::User {
                user: u,
                keep: Some(s),
            },
            Revocation::User {
                user: u,
                keep: None,
            },
        ] {
            assert_eq!(decode(&encode(r)), Some(r));
        }
        for bad in [
            "",
            "s:",
            "s:nope",
            "u:",
            "x:1",
            "u:usr_00:-",
            &format!("u:{u}"),
            &format!("u:{u}:junk"),
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
