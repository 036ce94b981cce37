//! The provider's signing keys, cached, fetched again on an unknown `kid` at most once per
//! interval (so a flood of tokens with made-up key ids cannot make us hammer the provider).

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use tokio::sync::Mutex;

use crate::error::Result;
use crate::http::get_json;

#[derive(Debug, Default)]
struct State {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    fetches: u64,
}

/// A cache of one provider's JWKS.
#[derive(Debug)]
pub struct JwksCache {
    uri: String,
    min_refresh: Duration,
    state: Mutex<State>,
}

impl JwksCache {
    /// A cache for `uri`, fetched on first use.
    pub fn new(uri: String, min_refresh: Duration) -> Self {
        Self {
            uri,
            min_refresh,
            state: Mutex::new(State::default()),
        }
    }

    /// How many times the JWKS has been fetched (for tests and metrics).
    pub async fn fetches(&self) -> u64 {
        self.state.lock().await.fetches
    }

    async fn fetch(&self, http: &reqwest::Client, st: &mut State) -> Result<()> {
        st.fetched_at = Some(Instant::now());
        st.fetches += 1;
        let doc = get_json(http, &self.uri, None).await?;
        // Keep every key jsonwebtoken understands; skip the others (an `enc` key, an unknown kty).
        st.keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        Ok(())
    }

    /// The keys that may have signed a token with this `kid` (all keys when the token has none).
    /// An unknown `kid` fetches the JWKS again unless it was fetched less than `min_refresh` ago.
    pub async fn keys_for(&self, http: &reqwest::Client, kid: Option<&str>) -> Result<Vec<Jwk>> {
        let mut st = self.state.lock().await;
        if st.fetched_at.is_none() {
            self.fetch(http, &mut st).await?;
        }
        let pick = |st: &State| -> Vec<Jwk> {
            st.keys
                .iter()
                .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
                .filter(|k| {
                    !matches!(
                        k.common.public_key_use,
                        Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                    )
                })
                .cloned()
                .collect()
        };
        let found = pick(&st);
        if !found.is_empty() {
            return Ok(found);
        }
        let stale = st
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        if stale {
            self.fetch(http, &mut st).await?;
            return Ok(pick(&st));
        }
        Ok(Vec::new())
    }
}
