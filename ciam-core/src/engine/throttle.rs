//! Throttling of failed sign-ins without victim lockout.
//!
//! Failures are counted in sliding windows ([`ThrottlePolicy::window`], default 15 minutes:
//! the current fixed window plus the previous one weighted by how much of it still overlaps)
//! under four keys: the account (by its canonical e-mail address, so unknown and known
//! addresses are throttled alike), the client IP, the client's subnet (IPv4 /24, IPv6 /56)
//! and everything together. Each key has a number of free failures; past it, every further
//! failure doubles the delay before the next attempt on that key is looked at, from
//! [`ThrottlePolicy::base_delay`] up to [`ThrottlePolicy::max_delay`]. An attempt inside a delay
//! is answered [`Error::RateLimited`](crate::Error::RateLimited) with the time left, before
//! any password is hashed, whatever the account.
//!
//! There is no hard lockout: the owner can always get in after the delay, and a browser that
//! signed in to the account before (a *trusted device*: the token of
//! [`SignedIn::device_token`](crate::SignedIn), sent back in
//! [`RequestContext::device_token`](crate::RequestContext)) is exempt from the account and
//! global keys, so an attacker hammering an account cannot lock its owner out (the IP and
//! subnet keys still apply to the attacker's own addresses). NIST SP 800-63B limits
//! consecutive failures on one account to 100; with the defaults an attacker gets about 20
//! guesses per account in the first 15 minutes and then one per `max_delay`.
//!
//! Without a client IP (`RequestContext::ip` is `None`) the IP and subnet keys are skipped:
//! an application behind a proxy must resolve the client IP (see `ciam-axum`'s
//! `TrustedProxies`), never pass the proxy's own address, which would put every user in one
//! bucket.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::context::RequestContext;
use super::{Ciam, Decision};
use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::identifier::Email;
use crate::secret::TokenHash;
use crate::store::window_index;

/// Sign-in throttling limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottlePolicy {
    /// Length of the sliding window failures are counted in. Default 15 minutes.
    pub window: Duration,
    /// Failures per account before delays start. Default 5.
    pub account_free: u32,
    /// Failures per client IP before delays start. Default 20.
    pub ip_free: u32,
    /// Failures per subnet (IPv4 /24, IPv6 /56) before delays start. Default 60.
    pub subnet_free: u32,
    /// Failures across all accounts before delays start for attempts from untrusted devices.
    /// Default 10,000.
    pub global_free: u32,
    /// The first delay. Default 1 second.
    pub base_delay: Duration,
    /// The longest delay. Default 15 minutes.
    pub max_delay: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            account_free: 5,
            ip_free: 20,
            subnet_free: 60,
            global_free: 10_000,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

impl ThrottlePolicy {
    /// The delay after `failures` failures on a key with `free` free failures.
    pub fn delay_after(&self, failures: u64, free: u32) -> Option<Duration> {
        let over = failures.checked_sub(u64::from(free))?;
        let factor = 1_u64 << over.min(30);
        let ms = u64::try_from(self.base_delay.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(factor);
        Some(Duration::from_millis(ms).min(self.max_delay))
    }
}

/// The subnet an address belongs to, as text (IPv4 /24, IPv6 /56).
pub(crate) fn subnet_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return subnet_of(IpAddr::V4(v4));
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}00::/56", s[0], s[1], s[2], s[3] >> 8)
        }
    }
}

/// One throttled key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// `account`, `ip`, `subnet` or `global`.
    pub(crate) scope: &'static str,
    pub(crate) key: String,
    pub(crate) free: u32,
}

/// The keys an attempt on `email` from `ctx` counts against.
pub(crate) fn keys(
    policy: &ThrottlePolicy,
    flow: &str,
    email: Option<&Email>,
    ctx: &RequestContext,
    trusted_device: bool,
) -> Vec<Key> {
    let mut out = Vec::with_capacity(4);
    if !trusted_device {
        if let Some(e) = email {
            let h = TokenHash::of(e.canonical());
            let tag: String = h.as_bytes()[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push(Key {
                scope: "account",
                key: format!("{flow}:acct:{tag}"),
                free: policy.account_free,
            });
        }
        out.push(Key {
            scope: "global",
            key: format!("{flow}:all"),
            free: policy.global_free,
        });
    }
    if let Some(ip) = ctx.ip {
        out.push(Key {
            scope: "ip",
            key: format!("{flow}:ip:{ip}"),
            free: policy.ip_free,
        });
        out.push(Key {
            scope: "subnet",
            key: format!("{flow}:net:{}", subnet_of(ip)),
            free: policy.subnet_free,
        });
    }
    out
}

fn delay_key(key: &str, delay: Duration) -> String {
    format!("{key}:delay:{}", delay.as_millis())
}

/// Milliseconds from `now` to the end of the `window`-long window containing it.
fn until_window_end(window: Duration, now: OffsetDateTime) -> Duration {
    let len = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let index = u64::try_from(window_index(window, now)).unwrap_or(0);
    let end_ms = index.saturating_add(1).saturating_mul(len);
    let now_ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    Duration::from_millis(end_ms.saturating_sub(now_ms).max(1))
}

impl Ciam {
    /// Failures on `key` in the sliding window ending at `now`.
    pub(crate) async fn sliding_failures(&self, key: &str, now: OffsetDateTime) -> Result<u64> {
        self.sliding_count(key, self.inner.policy.throttle.window, now)
            .await
    }

    /// The count of `key` in the sliding `window` ending at `now`: the current fixed window
    /// plus the previous one weighted by how much of it the sliding window still covers.
    pub(crate) async fn sliding_count(
        &self,
        key: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let counters = &self.inner.counters;
        let current = counters.count(key, window, now).await?;
        let previous = counters
            .count(
                key,
                window,
                now - time::Duration::try_from(window).unwrap_or_default(),
            )
            .await?;
        let len = window.as_millis().max(1);
        let into = u128::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) % len;
        let weight_left = len - into;
        let carried = u128::from(previous) * weight_left / len;
        Ok(current + u64::try_from(carried).unwrap_or(u64::MAX))
    }

    /// Refuses the attempt when one of `keys` is inside its delay. Records the refusal.
    pub(crate) async fn check_throttle(
        &self,
        keys: &[Key],
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<()> {
        let now = self.now();
        let policy = self.inner.policy.throttle;
        for k in keys {
            let failures = self.sliding_failures(&k.key, now).await?;
            let Some(delay) = policy.delay_after(failures, k.free) else {
                continue;
            };
            let marker = delay_key(&k.key, delay);
            if self.inner.counters.count(&marker, delay, now).await? > 0 {
                let retry_after = until_window_end(delay, now);
                self.record(
                    Decision::failure(AuditAction::Throttled, "sign_in_delay").detail(json!({
                        "flow": action.as_str(),
                        "scope": k.scope,
                        "failures": failures,
                        "free": k.free,
                        "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "retry_after_ms": u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                    })),
                    ctx,
                )
                .await;
                return Err(Error::RateLimited { retry_after });
            }
        }
        Ok(())
    }

    /// Counts a failure against every key and arms the delay each key has reached.
    pub(crate) async fn count_failure(&self, keys: &[Key]) -> Result<()> {
        let now = self.now();
        let policy = self.inner.policy.throttle;
        for k in keys {
            self.inner.counters.hit(&k.key, policy.window, now).await?;
            let failures = self.sliding_failures(&k.key, now).await?;
            if let Some(delay) = policy.delay_after(failures, k.free) {
                self.inner
                    .counters
                    .hit(&delay_key(&k.key, delay), delay, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Forgets the account's failures after a successful sign-in.
    pub(crate) async fn clear_account_failures(&self, keys: &[Key]) -> Result<()> {
        for k in keys.iter().filter(|k| k.scope == "account") {
            self.inner.counters.reset(&k.key).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_free_count_and_cap() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.delay_after(4, 5), None);
        assert_eq!(p.delay_after(5, 5), Some(Duration::from_secs(1)));
        assert_eq!(p.delay_after(6, 5), Some(Duration::from_secs(2)));
        assert_eq!(p.delay_after(10, 5), Some(Duration::from_secs(32)));
        assert_eq!(p.delay_after(15, 5), Some(Duration::from_secs(900)));
        assert_eq!(p.delay_after(u64::MAX, 5), Some(Duration::from_secs(900)));
    }

    #[test]
    fn subnets() {
        assert_eq!(subnet_of("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            subnet_of("2001:db8:1234:5678::1".parse().unwrap()),
            "2001:db8:1234:5600::/56"
        );
        assert_eq!(
            subnet_of("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn window_end() {
        let now = time::macros::datetime!(2026-01-01 00:00:10.250 UTC);
        assert_eq!(
            until_window_end(Duration::from_secs(60), now),
            Duration::from_millis(49_750)
        );
    }
}
