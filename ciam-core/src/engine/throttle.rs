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
//! subnet keys still apply to the attacker's own addresses). With the defaults an attacker
//! gets about 20 guesses per account in the first 15 minutes and then one per `max_delay`.
//!
//! # Consecutive failures (NIST SP 800-63B §5.2.2)
//!
//! The windows forget, so on their own they would allow an unbounded number of failures
//! over time. Password sign-in therefore also keeps a per-account count of *consecutive*
//! failures that does not expire with the window: a [`CounterStore`](crate::store::CounterStore)
//! counter with windows of [`ThrottlePolicy::consecutive_memory`] (default 30 days), read as
//! the current window plus the whole previous one, so a failure is remembered for at least
//! that long (and at most twice that) unless the run ends first. It works on every backend,
//! because it is an ordinary counter with a long window. At
//! [`ThrottlePolicy::consecutive_failures`] (default 100, NIST's ceiling) a password sign-in
//! from an untrusted device is refused with [`Error::RateLimited`](crate::Error::RateLimited)
//! before any hashing, for known and unknown addresses alike, and the refusal is audited as
//! `throttled` / `consecutive_failures`.
//!
//! This is still not a lockout of the owner: a trusted device signs in as before (it is not
//! subject to the account keys), and the passwordless paths (e-mail code, magic link, SMS
//! code) and the password reset keep working, since they have their own keys. The run ends
//! (the count is reset) with any successful sign-in of the account (password from any
//! device, passwordless) and with a password reset or change, because the guesses were made
//! against a password that no longer exists. A success on a trusted device ends the run but
//! leaves the windowed delays in place, so the attacker stays slowed down.
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
use crate::store::{CounterRead, window_index};

/// Sign-in throttling limits.
///
/// Failed sign-ins are counted in sliding windows of [`Self::window`] per account (by the
/// canonical e-mail address, known or not), client IP, subnet and overall; past each key's
/// free failures every further failure doubles the delay before the next attempt on that key
/// is looked at, up to [`Self::max_delay`]. A browser holding the account's trusted-device
/// token is exempt from the account and global keys.
///
/// Password sign-in also counts *consecutive* failures per account (NIST SP 800-63B §5.2.2),
/// in a counter that does not expire with the window: a failure is remembered for at least
/// [`Self::consecutive_memory`] (and at most twice that) unless the run ends first. At
/// [`Self::consecutive_failures`] a password sign-in from an untrusted device is refused with
/// [`Error::RateLimited`](crate::Error::RateLimited) before any hashing, for known and
/// unknown addresses alike. This is no lockout of the owner: a trusted device still signs in,
/// the passwordless paths and the password reset keep working, and the run ends with any
/// successful sign-in of the account and with a password reset or change.
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
    /// Consecutive password failures on one account after which password sign-in from
    /// untrusted devices is refused until the run ends (see [`ThrottlePolicy`]). Default
    /// (and at most) 100, NIST SP 800-63B §5.2.2.
    pub consecutive_failures: u32,
    /// How long a failure counts towards [`Self::consecutive_failures`] if the run does not
    /// end first: at least this long, at most twice this long. Default 30 days; at least
    /// [`Self::window`].
    pub consecutive_memory: Duration,
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
            consecutive_failures: Self::MAX_CONSECUTIVE_FAILURES,
            consecutive_memory: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl ThrottlePolicy {
    /// The highest [`Self::consecutive_failures`] the builder accepts: NIST SP 800-63B §5.2.2
    /// allows no more than 100 consecutive failed attempts on one account.
    pub const MAX_CONSECUTIVE_FAILURES: u32 = 100;

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

/// The flows whose account key also counts consecutive failures (see the module docs):
/// password sign-in only. The passwordless flows and the second factor keep their windowed
/// delays but no cap, so that they stay open to the owner when the password path is capped.
const CONSECUTIVE_FLOWS: &[&str] = &["signin"];

/// One throttled key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// `account`, `ip`, `subnet` or `global`.
    pub(crate) scope: &'static str,
    pub(crate) key: String,
    pub(crate) free: u32,
    /// Whether the key delays and counts this attempt. The account key of a trusted device is
    /// carried but not enforced: a success there still ends the run of consecutive failures.
    pub(crate) enforced: bool,
    /// Whether the key also counts consecutive failures (account keys of
    /// [`CONSECUTIVE_FLOWS`]).
    pub(crate) consecutive: bool,
}

impl Key {
    /// The counter of consecutive failures kept beside an account key.
    fn run_key(&self) -> String {
        format!("{}:run", self.key)
    }
}

/// The account key of `flow` for an identifier in canonical form (an e-mail address, or a
/// phone number prefixed with `phone:`): hashed, so the key names no one.
pub(crate) fn account_key(policy: &ThrottlePolicy, flow: &str, canonical: &str) -> Key {
    let h = TokenHash::of(canonical);
    let tag: String = h.as_bytes()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Key {
        scope: "account",
        key: format!("{flow}:acct:{tag}"),
        free: policy.account_free,
        enforced: true,
        consecutive: CONSECUTIVE_FLOWS.contains(&flow),
    }
}

/// The IP and subnet keys of `flow` for `ctx` (none without a client IP).
pub(crate) fn network_keys(policy: &ThrottlePolicy, flow: &str, ctx: &RequestContext) -> Vec<Key> {
    let Some(ip) = ctx.ip else {
        return Vec::new();
    };
    vec![
        Key {
            scope: "ip",
            key: format!("{flow}:ip:{ip}"),
            free: policy.ip_free,
            enforced: true,
            consecutive: false,
        },
        Key {
            scope: "subnet",
            key: format!("{flow}:net:{}", subnet_of(ip)),
            free: policy.subnet_free,
            enforced: true,
            consecutive: false,
        },
    ]
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
    if let Some(e) = email {
        let mut account = account_key(policy, flow, e.canonical());
        account.enforced = !trusted_device;
        out.push(account);
    }
    if !trusted_device {
        out.push(Key {
            scope: "global",
            key: format!("{flow}:all"),
            free: policy.global_free,
            enforced: true,
            consecutive: false,
        });
    }
    out.extend(network_keys(policy, flow, ctx));
    out
}

fn delay_key(key: &str, delay: Duration) -> String {
    format!("{key}:delay:{}", delay.as_millis())
}

/// The reads of `key`'s window containing `now` and of the window before it.
fn window_pair(key: &str, window: Duration, now: OffsetDateTime) -> [CounterRead<'_>; 2] {
    [
        CounterRead {
            key,
            window,
            at: now,
        },
        CounterRead {
            key,
            window,
            at: now - time::Duration::try_from(window).unwrap_or_default(),
        },
    ]
}

/// A sliding window's count from its [`window_pair`] counts: the current fixed window plus
/// the previous one weighted by how much of it the sliding window ending at `now` still
/// covers.
fn sliding_total(pair: &[u64], window: Duration, now: OffsetDateTime) -> u64 {
    let current = pair.first().copied().unwrap_or(0);
    let previous = pair.get(1).copied().unwrap_or(0);
    let len = window.as_millis().max(1);
    let into = u128::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) % len;
    let weight_left = len - into;
    let carried = u128::from(previous) * weight_left / len;
    current.saturating_add(u64::try_from(carried).unwrap_or(u64::MAX))
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
    /// The counts of `reads`, one per read: a store that answers another number of counts
    /// is an error, never a count of 0 (which would let attempts through).
    async fn counts_of(&self, reads: &[CounterRead<'_>]) -> Result<Vec<u64>> {
        let counts = self.inner.counters.counts(reads).await?;
        if counts.len() != reads.len() {
            return Err(crate::store::StoreError::Corrupt(format!(
                "counter store answered {} counts for {} reads",
                counts.len(),
                reads.len()
            ))
            .into());
        }
        Ok(counts)
    }

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
        let counts = self.counts_of(&window_pair(key, window, now)).await?;
        Ok(sliding_total(&counts, window, now))
    }

    /// The sliding-window failures of each of `keys` (in their order), read in one store
    /// call.
    pub(crate) async fn sliding_failures_of(
        &self,
        keys: &[&Key],
        now: OffsetDateTime,
    ) -> Result<Vec<u64>> {
        let window = self.inner.policy.throttle.window;
        let reads: Vec<CounterRead<'_>> = keys
            .iter()
            .flat_map(|k| window_pair(&k.key, window, now))
            .collect();
        let counts = self.counts_of(&reads).await?;
        Ok(counts
            .chunks(2)
            .map(|pair| sliding_total(pair, window, now))
            .collect())
    }

    /// Refuses the attempt when one of `keys` is inside its delay. Records the refusal.
    ///
    /// Every window the decision needs (the consecutive-failure runs and each key's sliding
    /// window) is read in one store call; a delay marker is read only for a key past its free
    /// failures.
    pub(crate) async fn check_throttle(
        &self,
        keys: &[Key],
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<()> {
        let now = self.now();
        let policy = self.inner.policy.throttle;
        let enforced: Vec<&Key> = keys.iter().filter(|k| k.enforced).collect();
        let runs: Vec<(&Key, String)> = enforced
            .iter()
            .filter(|k| k.consecutive)
            .map(|k| (*k, k.run_key()))
            .collect();
        let mut reads: Vec<CounterRead<'_>> = Vec::with_capacity(2 * (runs.len() + enforced.len()));
        for (_, run) in &runs {
            reads.extend(window_pair(run, policy.consecutive_memory, now));
        }
        for k in &enforced {
            reads.extend(window_pair(&k.key, policy.window, now));
        }
        let counts = self.counts_of(&reads).await?;
        let (run_counts, window_counts) = counts.split_at(2 * runs.len());
        for ((k, _), pair) in runs.iter().zip(run_counts.chunks(2)) {
            // The current window of the run's memory plus the whole previous one.
            let current = pair.first().copied().unwrap_or(0);
            let run = current.saturating_add(pair.get(1).copied().unwrap_or(0));
            if run < u64::from(policy.consecutive_failures) {
                continue;
            }
            // The previous window leaves the count at the end of the current one; if the
            // current window alone holds the limit, the count drops one window later.
            let mut retry_after = until_window_end(policy.consecutive_memory, now);
            if current >= u64::from(policy.consecutive_failures) {
                retry_after = retry_after.saturating_add(policy.consecutive_memory);
            }
            self.record(
                Decision::failure(AuditAction::Throttled, "consecutive_failures").detail(json!({
                    "flow": action.as_str(),
                    "scope": k.scope,
                    "failures": run,
                    "limit": policy.consecutive_failures,
                    "retry_after_ms": u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                })),
                ctx,
            )
            .await;
            return Err(Error::RateLimited { retry_after });
        }
        for (k, pair) in enforced.iter().zip(window_counts.chunks(2)) {
            let failures = sliding_total(pair, policy.window, now);
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

    /// Counts a failure against every enforced key, arms the delay each key has reached, and
    /// extends the run of consecutive failures where one is kept.
    pub(crate) async fn count_failure(&self, keys: &[Key]) -> Result<()> {
        let now = self.now();
        let policy = self.inner.policy.throttle;
        for k in keys.iter().filter(|k| k.enforced) {
            if k.consecutive {
                self.inner
                    .counters
                    .hit(&k.run_key(), policy.consecutive_memory, now)
                    .await?;
            }
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

    /// Forgets the account's failures after a successful sign-in: the run of consecutive
    /// failures always, the windowed count when the key was enforced (a trusted device's
    /// success leaves the attacker's delay in place).
    pub(crate) async fn clear_account_failures(&self, keys: &[Key]) -> Result<()> {
        for k in keys.iter().filter(|k| k.scope == "account") {
            if k.consecutive {
                self.inner.counters.reset(&k.run_key()).await?;
            }
            if k.enforced {
                self.inner.counters.reset(&k.key).await?;
            }
        }
        Ok(())
    }

    /// Ends the run of consecutive password failures of `user`'s account (after a
    /// passwordless sign-in, or a password reset or change). The windowed delays stay.
    pub(crate) async fn end_failure_run(&self, user: &crate::user::User) -> Result<()> {
        let Some(email) = &user.email else {
            return Ok(());
        };
        let policy = &self.inner.policy.throttle;
        for flow in CONSECUTIVE_FLOWS {
            let k = account_key(policy, flow, email.canonical());
            self.inner.counters.reset(&k.run_key()).await?;
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
