//! Sign-in throttling end to end, on the memory and SQLite backends: the account delay (the
//! same for unknown addresses, decided before any hashing), doubling delays, the reset after a
//! success, the trusted-device exemption, the IP, subnet and global keys, and the audit
//! entries explaining each refusal.
//!
//! Failures are counted in sliding windows (the current fixed window plus the overlapping part
//! of the previous one). The harness clock starts on a window boundary and most tests stay
//! inside the first window, so the previous window is empty and the counts are exact;
//! `a_sliding_window_carries_the_previous_one_weighted` crosses boundaries on purpose.
//!
//! The run of consecutive failures (NIST SP 800-63B §5.2.2: at most 100) is driven across
//! simulated days, with the ways the owner still gets in at the limit.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use ciam::audit::AuditAction as Action;
use ciam::store::Backend;
use ciam::{Error, Policy, RequestContext, ThrottlePolicy};
use support::{Harness, PW, PW2, ctx_from, expect_signed_in, harness, on_both_backends, token_in};
use time::Duration;

on_both_backends!(
    account_delay_comes_before_hashing_for_known_and_unknown_addresses,
    a_success_after_the_delay_resets_the_account,
    delays_double_with_each_failure,
    trusted_devices_keep_their_owner_out_of_the_account_delay,
    one_ip_failing_on_many_accounts_is_delayed,
    a_subnet_shares_one_key,
    without_a_client_ip_only_account_and_global_keys_apply,
    the_global_key_delays_untrusted_attempts,
    a_sliding_window_carries_the_previous_one_weighted,
    consecutive_failures_are_capped_across_days,
    the_owner_gets_in_at_the_consecutive_limit,
    a_full_hashing_queue_refuses_without_store_work_or_records,
);

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.10";

/// The outcome's `retry_after`, which must be a rate limit.
fn limited<T: std::fmt::Debug>(r: Result<T, Error>) -> StdDuration {
    match r {
        Err(Error::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, Error>) {
    match r {
        Err(Error::InvalidCredentials) => {}
        other => panic!("expected InvalidCredentials, got {other:?}"),
    }
}

impl<B: Backend> Harness<B> {
    /// The harness clock starts on a boundary of the default 15-minute window.
    fn at_window_start(&self) {
        let window = ThrottlePolicy::default().window.as_secs();
        assert_eq!(self.unix_now() % window, 0, "not on a window boundary");
    }

    fn hashes(&self) -> u64 {
        self.ciam.password_hasher().jobs_completed()
    }

    /// `n` wrong passwords for `email` from `ctx`, each refused as a wrong password.
    async fn fail(&self, email: &str, n: u32, ctx: &RequestContext) {
        for _ in 0..n {
            refused(self.try_sign_in(email, PW2, ctx).await);
        }
    }

    fn wait(&self, d: StdDuration) {
        self.clock.advance(Duration::try_from(d).unwrap());
    }

    /// The newest `throttled/consecutive_failures` entry.
    async fn last_cap(&self) -> ciam::audit::AuditEntry {
        self.failed_entry(None, Action::Throttled, "consecutive_failures")
            .await
    }

    /// `n` wrong passwords for `email` from `ctx`, 20 minutes apart: more than a window, so
    /// no windowed delay ever starts and only the run of consecutive failures grows.
    async fn fail_slowly(&self, email: &str, n: u32, ctx: &RequestContext) {
        for _ in 0..n {
            refused(self.try_sign_in(email, PW2, ctx).await);
            self.clock.advance(Duration::minutes(20));
        }
    }

    /// Runs `send` and waits for the mail it sends to `email`.
    async fn mail_from<F: std::future::Future>(
        &self,
        email: &str,
        send: F,
    ) -> (F::Output, ciam::mail::OutgoingMail) {
        let before = self.outbox.count_to(email).await;
        let out = send.await;
        (out, self.outbox.nth_to(email, before + 1).await)
    }
}

/// The sliding count is the current window plus the previous one weighted by how much of it
/// the sliding window still covers: right at a boundary the previous window counts in full,
/// half-way through it counts half (rounded down), one window later not at all. The doubling
/// delay follows the weighted count.
async fn a_sliding_window_carries_the_previous_one_weighted<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.at_window_start();
    let start = h.clock_now();
    let window = Duration::try_from(ThrottlePolicy::default().window).unwrap();
    let attacker = ctx_from(Some(ATTACKER));
    let email = "nobody@example.com";
    let free = ThrottlePolicy::default().account_free;
    assert_eq!(free, 5);

    // Window 0: the free failures, then the first delay.
    h.fail(email, free, &attacker).await;
    limited(h.try_sign_in(email, PW, &attacker).await);
    assert_eq!(h.last_delay().await.detail["failures"], 5);

    // The first instant of window 1: window 0 still counts in full (5), so the delay of 5
    // failures (1 s) is due, but its time has long passed; the next failure makes 1 + 5 = 6
    // and doubles the delay, which a window-local count (1) would never have started.
    h.clock.set(start + window);
    refused(h.try_sign_in(email, PW2, &attacker).await);
    let wait = limited(h.try_sign_in(email, PW, &attacker).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["failures"], 6);
    assert_eq!(e.detail["delay_ms"], 2000);
    assert!(wait <= StdDuration::from_secs(2));

    // Half-way through window 1 window 0 counts half: 5 * 1/2 = 2 (rounded down), plus the
    // 1 failure of window 1: 3, under the free count, so two more failures are looked at ...
    h.clock.set(start + window + window / 2);
    refused(h.try_sign_in(email, PW2, &attacker).await);
    refused(h.try_sign_in(email, PW2, &attacker).await);
    // ... and then 3 + 2 = 5 is the first delay again, not the fourth (window 0's five
    // failures would give 8 counted in full).
    limited(h.try_sign_in(email, PW, &attacker).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["failures"], 5);
    assert_eq!(e.detail["delay_ms"], 1000);

    // Window 2 starts: window 0 is gone, window 1's 3 failures count in full.
    h.clock.set(start + window * 2);
    refused(h.try_sign_in(email, PW2, &attacker).await);
    refused(h.try_sign_in(email, PW2, &attacker).await);
    limited(h.try_sign_in(email, PW, &attacker).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["failures"], 5);
    // Two quiet windows later nothing is left: the free failures are free again.
    h.clock.set(start + window * 4);
    h.fail(email, free, &attacker).await;
    limited(h.try_sign_in(email, PW, &attacker).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["failures"], 5);
    assert_eq!(e.detail["delay_ms"], 1000);
}

/// More than 100 failures on one account spread over days, slowly enough that no windowed
/// delay ever starts: the 101st attempt is refused before hashing, even with the right
/// password, for a known and an unknown address alike, and still days later. A password
/// reset ends the run; the unknown address stays capped.
async fn consecutive_failures_are_capped_across_days<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    let p = ThrottlePolicy::default();
    assert_eq!(p.consecutive_failures, 100);
    let attacker = ctx_from(Some(ATTACKER));

    // Ten failures a day on each address for ten days: 100 each, every one a wrong password.
    let first = h.clock_now();
    for day in 0..10 {
        h.clock.set(first + Duration::days(day));
        for _ in 0..10 {
            refused(h.try_sign_in("ada@example.com", PW2, &attacker).await);
            refused(h.try_sign_in("nobody@example.com", PW2, &attacker).await);
            h.clock.advance(Duration::minutes(20));
        }
    }
    assert!(
        h.whole_audit()
            .await
            .iter()
            .all(|e| e.action != Action::Throttled),
        "no windowed delay started"
    );

    // The 101st: refused before any hashing, even with the right password.
    h.clock.set(first + Duration::days(10));
    let before = h.hashes();
    let known = limited(h.try_sign_in("ada@example.com", PW, &attacker).await);
    assert_eq!(h.hashes(), before);
    let e = h.last_cap().await;
    assert_eq!(e.detail["flow"], "sign_in_password");
    assert_eq!(e.detail["scope"], "account");
    assert_eq!(e.detail["failures"], 100);
    assert_eq!(e.detail["limit"], 100);
    assert_eq!(
        e.detail["retry_after_ms"],
        u64::try_from(known.as_millis()).unwrap()
    );
    assert_eq!(e.user_id, None);
    // The count lasts at least consecutive_memory and at most twice that.
    let memory = p.consecutive_memory;
    assert!(
        known > StdDuration::ZERO && known <= memory * 2,
        "{known:?}"
    );
    // The unknown address is answered the same way: the cap reveals no account.
    let unknown = limited(h.try_sign_in("nobody@example.com", PW, &attacker).await);
    assert_eq!(unknown, known);
    assert_eq!(h.last_cap().await.detail["failures"], 100);
    // From another network too: the cap is the account's, not the attacker's.
    let elsewhere = ctx_from(Some(OWNER));
    limited(h.try_sign_in("ada@example.com", PW, &elsewhere).await);
    assert_eq!(h.hashes(), before);

    // Days later the windows are long gone; the run is not.
    h.clock.advance(Duration::days(5));
    limited(h.try_sign_in("ada@example.com", PW, &elsewhere).await);
    assert_eq!(h.last_cap().await.detail["failures"], 100);

    // The password reset still works, and ends the run: the new password signs in from a
    // browser the account never saw.
    let (sent, mail) = h
        .mail_from(
            "ada@example.com",
            h.ciam.forgot_password("ada@example.com", &elsewhere),
        )
        .await;
    sent.unwrap();
    assert!(mail.text.contains("/reset-password?token="));
    h.ciam
        .reset_password(&token_in(&mail), &support::pw(PW2), &elsewhere)
        .await
        .unwrap();
    expect_signed_in(h.try_sign_in("ada@example.com", PW2, &elsewhere).await);
    // The reset was ada's: the other address stays capped.
    limited(h.try_sign_in("nobody@example.com", PW, &elsewhere).await);
}

/// At the consecutive limit (lowered to 10 here; the 100 of the default is driven above) the
/// owner is never locked out: a magic link, a mailed code and a trusted device all sign in,
/// and each success ends the run, so the password works again from any browser.
async fn the_owner_gets_in_at_the_consecutive_limit<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.throttle.consecutive_failures = 10;
    let h = harness(store, policy);
    h.register_only("ada@example.com").await;
    let owner = ctx_from(Some(OWNER));
    let attacker = ctx_from(Some(ATTACKER));
    let s = expect_signed_in(h.try_sign_in("ada@example.com", PW, &owner).await);
    let trusted = owner.clone().with_device_token(s.device_token.clone());
    let new_browser = ctx_from(Some("198.51.100.99"));
    let capped = async || {
        limited(h.try_sign_in("ada@example.com", PW, &new_browser).await);
        let e = h.last_cap().await;
        assert_eq!(e.detail["failures"], 10);
        assert_eq!(e.detail["limit"], 10);
    };

    // A magic link.
    h.fail_slowly("ada@example.com", 10, &attacker).await;
    capped().await;
    let (binding, mail) = h
        .mail_from(
            "ada@example.com",
            h.ciam.start_magic_link("ada@example.com", &new_browser),
        )
        .await;
    let binding = binding.unwrap();
    let link = h
        .ciam
        .confirm_magic_link(&token_in(&mail), Some(&binding), &new_browser)
        .await;
    expect_signed_in(link);
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &new_browser).await);

    // A mailed code.
    h.fail_slowly("ada@example.com", 10, &attacker).await;
    capped().await;
    let (binding, mail) = h
        .mail_from(
            "ada@example.com",
            h.ciam.start_sign_in_code("ada@example.com", &new_browser),
        )
        .await;
    let binding = binding.unwrap();
    let code: String = mail
        .text
        .split("code is ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    expect_signed_in(
        h.ciam
            .verify_sign_in_code(Some(&binding), &code, &new_browser)
            .await,
    );
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &new_browser).await);

    // A trusted device: not subject to the cap at all, and its success ends the run too.
    h.fail_slowly("ada@example.com", 10, &attacker).await;
    capped().await;
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &trusted).await);
    let e = h.ok_entry(None, Action::SignInPassword, "password").await;
    assert_eq!(e.ip, Some(OWNER.parse().unwrap()));
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &new_browser).await);

    // A success ends the run: 9 more failures after it are under the cap.
    h.fail_slowly("ada@example.com", 9, &attacker).await;
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &new_browser).await);
}

async fn account_delay_comes_before_hashing_for_known_and_unknown_addresses<B: Backend>(
    store: Arc<B>,
) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let attacker = ctx_from(Some(ATTACKER));
    let free = ThrottlePolicy::default().account_free;

    // The free failures are answered as wrong passwords, after hashing.
    let before = h.hashes();
    h.fail("ada@example.com", free, &attacker).await;
    assert_eq!(h.hashes(), before + u64::from(free));
    let e = h
        .failed_entry(None, Action::SignInPassword, "wrong_password")
        .await;
    assert_eq!(e.ip, Some(ATTACKER.parse().unwrap()));

    // The next attempt, even with the right password, waits; no hash is computed.
    let before = h.hashes();
    let known = limited(h.try_sign_in("ada@example.com", PW, &attacker).await);
    assert_eq!(h.hashes(), before);
    assert!(known > StdDuration::ZERO && known <= StdDuration::from_secs(1));
    let e = h.last_delay().await;
    assert_eq!(e.detail["flow"], "sign_in_password");
    assert_eq!(e.detail["scope"], "account");
    assert_eq!(e.detail["failures"], free);
    assert_eq!(e.detail["free"], free);
    assert_eq!(e.detail["delay_ms"], 1000);
    assert_eq!(
        e.detail["retry_after_ms"],
        u64::try_from(known.as_millis()).unwrap()
    );
    assert_eq!(e.user_id, None);
    assert_eq!(e.ip, Some(ATTACKER.parse().unwrap()));

    // An unknown address behaves the same: no enumeration through the delay.
    let before = h.hashes();
    h.fail("nobody@example.com", free, &attacker).await;
    assert_eq!(h.hashes(), before + u64::from(free));
    let before = h.hashes();
    let unknown = limited(h.try_sign_in("nobody@example.com", PW, &attacker).await);
    assert_eq!(h.hashes(), before);
    assert_eq!(unknown, known);
    let e = h.last_delay().await;
    assert_eq!(e.detail["scope"], "account");
    assert_eq!(e.detail["failures"], free);
    // The address is matched canonically.
    limited(h.try_sign_in("NoBody@Example.com", PW, &attacker).await);

    // Another account from the same IP is not delayed.
    refused(h.try_sign_in("grace@example.com", PW, &attacker).await);
    // Still inside the delay just before it ends.
    h.wait(known - StdDuration::from_millis(1));
    limited(h.try_sign_in("ada@example.com", PW, &attacker).await);
}

async fn a_success_after_the_delay_resets_the_account<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let attacker = ctx_from(Some(ATTACKER));
    let free = ThrottlePolicy::default().account_free;

    h.fail("ada@example.com", free, &attacker).await;
    let wait = limited(h.try_sign_in("ada@example.com", PW, &attacker).await);
    h.wait(wait);
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &attacker).await);

    // The counter started again: the free failures are free again, then the delay is back at
    // its first step.
    h.fail("ada@example.com", free, &attacker).await;
    limited(h.try_sign_in("ada@example.com", PW, &attacker).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["failures"], free);
    assert_eq!(e.detail["delay_ms"], 1000);
}

async fn delays_double_with_each_failure<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.at_window_start();
    let attacker = ctx_from(Some(ATTACKER));
    let email = "nobody@example.com";
    let free = ThrottlePolicy::default().account_free;
    h.fail(email, free, &attacker).await;
    let mut expected_ms = 1000_u64;
    for failures in free..free + 5 {
        let wait = limited(h.try_sign_in(email, PW, &attacker).await);
        let e = h.last_delay().await;
        assert_eq!(e.detail["scope"], "account");
        assert_eq!(e.detail["failures"], failures);
        assert_eq!(e.detail["delay_ms"], expected_ms);
        // The wait never exceeds the delay; the delay is served in fixed windows of its length.
        assert!(wait > StdDuration::ZERO);
        assert!(wait <= StdDuration::from_millis(expected_ms));
        h.wait(wait);
        // After the wait, one more guess is looked at (and hashed) ...
        let before = h.hashes();
        refused(h.try_sign_in(email, PW, &attacker).await);
        assert_eq!(h.hashes(), before + 1);
        // ... and doubles the delay.
        expected_ms *= 2;
    }
    limited(h.try_sign_in(email, PW, &attacker).await);
    assert_eq!(h.last_delay().await.detail["delay_ms"], expected_ms);
}

async fn trusted_devices_keep_their_owner_out_of_the_account_delay<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let owner = ctx_from(Some(OWNER));
    let attacker = ctx_from(Some(ATTACKER));
    let free = ThrottlePolicy::default().account_free;

    // An earlier sign-in made the owner's browser a trusted device.
    let s = expect_signed_in(h.try_sign_in("ada@example.com", PW, &owner).await);
    let device = s.device_token.clone().expect("a trusted-device token");
    let trusted = owner.clone().with_device_token(Some(device));

    // An attacker hammers the account.
    h.fail("ada@example.com", free, &attacker).await;
    limited(h.try_sign_in("ada@example.com", PW, &attacker).await);

    // The owner's browser is let through with the right password ...
    let s = expect_signed_in(h.try_sign_in("ada@example.com", PW, &trusted).await);
    assert!(s.device_token.is_none(), "the browser keeps its token");
    // ... and a typo is a plain wrong password, not a delay.
    refused(h.try_sign_in("ada@example.com", PW2, &trusted).await);
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &trusted).await);
    // The exemption is the token, not the owner's IP.
    limited(h.try_sign_in("ada@example.com", PW, &owner).await);
    assert_eq!(h.last_delay().await.detail["scope"], "account");
    // The attacker is still delayed.
    limited(h.try_sign_in("ada@example.com", PW, &attacker).await);
    // A token of another account exempts nothing here.
    h.register_only("grace@example.com").await;
    let g = expect_signed_in(h.try_sign_in("grace@example.com", PW, &attacker).await);
    let foreign = attacker.clone().with_device_token(g.device_token);
    limited(h.try_sign_in("ada@example.com", PW, &foreign).await);
}

async fn one_ip_failing_on_many_accounts_is_delayed<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let ip_free = ThrottlePolicy::default().ip_free;
    let sprayer = ctx_from(Some("192.0.2.10"));
    // One failure on each of ip_free accounts: no account reaches its own limit.
    for i in 0..ip_free {
        refused(
            h.try_sign_in(&format!("user{i}@example.com"), PW, &sprayer)
                .await,
        );
    }
    // The next attempt from that IP waits, whatever the account and password.
    let before = h.hashes();
    limited(h.try_sign_in("ada@example.com", PW, &sprayer).await);
    assert_eq!(h.hashes(), before);
    let e = h.last_delay().await;
    assert_eq!(e.detail["scope"], "ip");
    assert_eq!(e.detail["failures"], ip_free);
    assert_eq!(e.detail["free"], ip_free);
    assert_eq!(e.detail["delay_ms"], 1000);
    assert_eq!(e.ip, Some("192.0.2.10".parse().unwrap()));
    // Another IP, in another subnet, is not delayed.
    let other = ctx_from(Some("198.51.100.77"));
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &other).await);
    refused(h.try_sign_in("user0@example.com", PW, &other).await);
}

async fn a_subnet_shares_one_key<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let p = ThrottlePolicy::default();
    // Spread subnet_free failures over a /24 so that no IP reaches its own limit.
    let per_ip = p.ip_free - 5;
    let ips = p.subnet_free.div_ceil(per_ip);
    let mut n = 0;
    'spray: for ip in 1..=ips {
        let from = ctx_from(Some(&format!("203.0.113.{ip}")));
        for _ in 0..per_ip {
            if n == p.subnet_free {
                break 'spray;
            }
            refused(
                h.try_sign_in(&format!("user{n}@example.com"), PW, &from)
                    .await,
            );
            n += 1;
        }
    }
    // A neighbour that never failed shares the subnet's delay.
    let neighbour = ctx_from(Some("203.0.113.200"));
    limited(h.try_sign_in("ada@example.com", PW, &neighbour).await);
    let e = h.last_delay().await;
    assert_eq!(e.detail["scope"], "subnet");
    assert_eq!(e.detail["failures"], p.subnet_free);
    assert_eq!(e.detail["free"], p.subnet_free);
    // The next /24 does not.
    let next_door = ctx_from(Some("203.0.114.200"));
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &next_door).await);
}

async fn without_a_client_ip_only_account_and_global_keys_apply<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let p = ThrottlePolicy::default();
    let no_ip = ctx_from(None);
    // More failures than an IP may have, over many accounts: none is delayed.
    for i in 0..p.ip_free + 5 {
        refused(
            h.try_sign_in(&format!("user{i}@example.com"), PW, &no_ip)
                .await,
        );
    }
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &no_ip).await);
    assert!(
        h.whole_audit()
            .await
            .iter()
            .all(|e| e.action != Action::Throttled)
    );
    let e = h
        .failed_entry(None, Action::SignInPassword, "unknown_user_or_no_password")
        .await;
    assert_eq!(e.ip, None);
    // The account key still applies.
    h.fail("ada@example.com", p.account_free, &no_ip).await;
    limited(h.try_sign_in("ada@example.com", PW, &no_ip).await);
    assert_eq!(h.last_delay().await.detail["scope"], "account");
}

async fn the_global_key_delays_untrusted_attempts<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.throttle.global_free = 8;
    let h = harness(store, policy);
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let owner = ctx_from(Some(OWNER));
    let s = expect_signed_in(h.try_sign_in("ada@example.com", PW, &owner).await);
    let trusted = owner.clone().with_device_token(s.device_token);
    // One failure per account, per subnet: only the global key adds up.
    for i in 0..8 {
        let from = ctx_from(Some(&format!("10.0.{i}.1")));
        refused(
            h.try_sign_in(&format!("user{i}@example.com"), PW, &from)
                .await,
        );
    }
    limited(
        h.try_sign_in("ada@example.com", PW, &ctx_from(Some("10.9.9.9")))
            .await,
    );
    let e = h.last_delay().await;
    assert_eq!(e.detail["scope"], "global");
    assert_eq!(e.detail["failures"], 8);
    // A trusted device is exempt.
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &trusted).await);
}

/// Past hashing capacity a sign-in is answered `Overloaded` with a `retry_after`, hashes
/// nothing and writes nothing (no audit record, no failure counted), the same for known and
/// unknown addresses; a trusted device still gets the priority places, and once places are
/// free again the owner signs in. The queue is filled by holding reserved places, as
/// sign-ins past their throttle check do.
async fn a_full_hashing_queue_refuses_without_store_work_or_records<B: Backend>(store: Arc<B>) {
    let h = harness(store, Policy::default());
    h.register_only("ada@example.com").await;
    h.at_window_start();
    let owner = ctx_from(Some(OWNER));
    let s = expect_signed_in(h.try_sign_in("ada@example.com", PW, &owner).await);
    let trusted = owner
        .clone()
        .with_device_token(Some(s.device_token.clone().expect("a device token")));
    let hasher = h.ciam.password_hasher();
    let overloaded = |r: Result<ciam::SignInOutcome, Error>| match r {
        Err(Error::Overloaded { retry_after }) => assert!(retry_after > StdDuration::ZERO),
        other => panic!("expected Overloaded, got {other:?}"),
    };

    // Fill the ordinary lane.
    let mut held = Vec::new();
    while let Ok(slot) = hasher.reserve(false) {
        held.push(slot);
    }
    let (hashes, records) = (h.hashes(), h.whole_audit().await.len());
    for email in ["ada@example.com", "nobody@example.com", "not an address"] {
        overloaded(h.try_sign_in(email, PW, &owner).await);
    }
    assert_eq!(h.hashes(), hashes, "a refusal for load hashes nothing");
    assert_eq!(
        h.whole_audit().await.len(),
        records,
        "a refusal for load writes no record"
    );
    // Nor did it count as a failure: the owner's next attempts are not delayed.
    let free = ThrottlePolicy::default().account_free;

    // The owner's trusted browser hashes in the priority places.
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &trusted).await);
    while let Ok(slot) = hasher.reserve(true) {
        held.push(slot);
    }
    overloaded(h.try_sign_in("ada@example.com", PW, &trusted).await);

    // Places given back: the owner signs in from a new browser, and the refusals above
    // left no failures behind (the free failures are all still there).
    drop(held);
    assert!(hasher.saturated(false).is_none());
    expect_signed_in(h.try_sign_in("ada@example.com", PW, &owner).await);
    h.fail("nobody@example.com", free, &owner).await;
    limited(h.try_sign_in("nobody@example.com", PW, &owner).await);
}
