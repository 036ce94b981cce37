//! A credential-stuffing simulation against the quickstart binary over HTTP.
//!
//! 2,000 verified accounts are written into the SQLite file before the quickstart starts
//! (with cheap argon2id hashes, which the quickstart verifies and upgrades on the first
//! sign-in). 5% of them reuse the password that the attacker's leaked list pairs with their
//! address; the others have unique strong passwords. Every owner first signs in once from a
//! home address of their own, which gives the account a sign-in history and the owner's
//! browser its trusted-device cookie (`ciam_device`).
//!
//! The attacker then makes 20,000 `POST /auth/login` attempts from 200 addresses, without
//! cookies and without waiting for `Retry-After`: each account's leaked pair first, then common
//! passwords. Meanwhile, and afterwards, owners sign in from home with their cookie, and other
//! owners from a new browser (no cookie: they wait out the delays, and a full hashing queue's
//! 503, as `Retry-After` asks, and answer the challenge with the code mailed to them). The test prints a report and asserts:
//!
//! - the throttling itself: every attacker address is delayed, none gets more passwords
//!   checked than its free failures plus the doublings of the delay that fit into the attack,
//!   and most attempts are answered 429 with `Retry-After`;
//! - that a delayed attempt never reaches the password check: from a delayed address the
//!   right password is answered 429 like a wrong one (no session, no challenge, no mail), and
//!   429s are answered much faster than checked passwords;
//! - the risk policy's explanation of each challenge;
//! - that only vulnerable accounts can fall, and (risk policy on) at most 1% of them do;
//! - that every owner got in, with the cookie or from a new browser.
//!
//! Addresses are real TCP peers: every client binds to a loopback address 127.a.b.c of its
//! own (Linux routes all of 127.0.0.0/8 to the loopback interface), each in a /24 of its own,
//! and the quickstart runs with its default client-IP setting (the peer, no trusted proxy).
//!
//! `CIAM_STUFFING_RISK=off` runs the quickstart with `CIAM_RISK=off`, to measure what
//! throttling alone does: the bound on fallen accounts is then reported, not asserted.
//!
//! Needs the SMTP sink like `tests/http.rs` (`scripts/test.sh` starts it): a challenged
//! sign-in makes the quickstart mail the owner a sign-in code.

// A test harness: its helpers fail the test by panicking, like the tests themselves (clippy's
// in-test allowances cover only `#[test]` functions, not helpers of an integration-test crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ciam::credential::{Credential, CredentialKind};
use ciam::id::{CredentialId, UserId};
use ciam::identifier::Email;
use ciam::password::{Argon2Params, PasswordConfig, PasswordHasher};
use ciam::rng::SystemRandom;
use ciam::storage::sqlite::SqliteBackend;
use ciam::store::IdentityStore;
use ciam::user::User;
use ciam::{OpaqueToken, SecretString, ThrottlePolicy};
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, ORIGIN, RETRY_AFTER};
use reqwest::{Client, StatusCode};
use serde_json::json;
use support::*;

/// Accounts on the site.
const ACCOUNTS: usize = 2_000;
/// Every 20th account (5%) reuses the password the leaked list pairs with its address.
const REUSE_EVERY: usize = 20;
/// Addresses the attacker spreads the attempts over, each in its own /24.
const ATTACKER_IPS: usize = 200;
/// What the attacker tries on every account after its leaked pair (the head of the usual
/// most-common-passwords lists).
const COMMON: [&str; 9] = [
    "123456",
    "password",
    "123456789",
    "qwerty",
    "12345678",
    "111111",
    "iloveyou",
    "Password1",
    "abc123",
];
/// Words the leaked list's passwords are made of.
const WORDS: [&str; 8] = [
    "Sunshine", "Dragon", "Monkey", "Football", "Princess", "Shadow", "Master", "Baseball",
];
/// Attack requests in flight at once.
const ATTACK_IN_FLIGHT: usize = 12;
/// Owners' first sign-ins in flight at once.
const HISTORY_IN_FLIGHT: usize = 8;
/// The attack must be over by then.
const ATTACK_LIMIT: Duration = Duration::from_secs(240);
/// Pause between owners' sign-ins during the attack.
const OWNER_PAUSE: Duration = Duration::from_millis(250);
/// Owners of accounts that are not vulnerable who sign in after the attack (all vulnerable
/// owners do too).
const AFTER_OTHERS: usize = 100;
/// Owners signing in from a new browser after the attack, of vulnerable and of other accounts.
const NEW_BROWSERS_AFTER: usize = 4;
/// The longest an owner on a new browser may have to wait in all (`Retry-After`).
const NEW_BROWSER_PATIENCE: Duration = Duration::from_secs(120);
/// The vulnerable account whose right password is sent from a delayed attacker address.
const PROBED: usize = 20 * 99;

const SESSION_COOKIE: &str = "ciam_session=";
const DEVICE_COOKIE: &str = "ciam_device=";

/// The risk policy's sentence for a challenge caused mainly by an unknown device.
const NEW_DEVICE_REASON: &str = "We don't recognise this device, so we need to confirm it's you.";
/// Its sentence for one caused mainly by failed attempts on the account.
const ACCOUNT_VELOCITY_REASON: &str = "There have been several unsuccessful attempts to sign in to this account, so we need to confirm it's you.";

/// One account, as its owner and the leaked list know it.
struct Account {
    email: String,
    password: String,
    /// The password the attacker's list pairs with the address.
    leaked: String,
    vulnerable: bool,
    /// The owner's own address (a /24 of its own).
    home_ip: IpAddr,
}

fn accounts() -> Vec<Account> {
    let rng = SystemRandom::new();
    (0..ACCOUNTS)
        .map(|i| {
            let vulnerable = i % REUSE_EVERY == 0;
            let leaked = format!("{}{}!{}", WORDS[i % WORDS.len()], 1960 + i % 60, i % 97);
            let password = if vulnerable {
                leaked.clone()
            } else {
                format!("own {}", OpaqueToken::generate(&rng).unwrap().expose())
            };
            Account {
                email: format!("user{i:04}@stuffing.example"),
                password,
                leaked,
                vulnerable,
                home_ip: loopback(100 + i / 250, i % 250, 23),
            }
        })
        .collect()
}

fn loopback(b: usize, c: usize, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        u8::try_from(b).unwrap(),
        u8::try_from(c).unwrap(),
        d,
    ))
}

fn attacker_ip(n: usize) -> IpAddr {
    loopback(18 + n / 256, n % 256, 77)
}

/// Writes the accounts, verified, with cheap argon2id hashes, into the database at `url`.
async fn seed(url: &str, accounts: &[Account]) {
    let backend = SqliteBackend::connect(url).await.unwrap();
    let cheap = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let rng = SystemRandom::new();
    let hasher = PasswordHasher::new(
        PasswordConfig::default().argon2(cheap),
        Arc::new(SystemRandom::new()),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    for a in accounts {
        let mut user = User::new(UserId::generate(&rng).unwrap(), now);
        user.email = Some(Email::parse(&a.email).unwrap());
        user.email_verified_at = Some(now);
        let phc = hasher
            .hash(&SecretString::new(a.password.clone()))
            .await
            .unwrap();
        let credential = Credential::new(
            CredentialId::generate(&rng).unwrap(),
            user.id,
            CredentialKind::Password,
            phc,
            now,
        );
        backend.create_user(&user, &[credential]).await.unwrap();
    }
    backend.close().await;
}

/// What one `POST /auth/login` (or `/auth/mfa/challenge`) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 200 with a session cookie.
    SignedIn,
    /// 200 `mfa_required`: the risk policy asked for a second factor.
    MfaRequired,
    /// 401 `invalid_credentials`.
    InvalidCredentials,
    /// 429 `rate_limited`: refused before any hashing.
    RateLimited,
    /// 403 `risk_denied`.
    RiskDenied,
    /// 503: the hashing pool was full.
    Overloaded,
    Other,
}

impl Outcome {
    fn of(a: &Answer) -> Self {
        let error = a.body["error"].as_str().unwrap_or("");
        match a.status {
            StatusCode::OK if a.body["status"] == "mfa_required" => Self::MfaRequired,
            StatusCode::OK
                if a.set_cookies()
                    .iter()
                    .any(|c| c.starts_with(SESSION_COOKIE)) =>
            {
                Self::SignedIn
            }
            StatusCode::UNAUTHORIZED if error == "invalid_credentials" => Self::InvalidCredentials,
            StatusCode::TOO_MANY_REQUESTS if error == "rate_limited" => Self::RateLimited,
            StatusCode::FORBIDDEN if error == "risk_denied" => Self::RiskDenied,
            StatusCode::SERVICE_UNAVAILABLE => Self::Overloaded,
            _ => Self::Other,
        }
    }

    /// Whether the password was checked (hashed) to come to this answer.
    fn checked(self) -> bool {
        matches!(
            self,
            Self::SignedIn | Self::MfaRequired | Self::InvalidCredentials | Self::RiskDenied
        )
    }

    fn label(self) -> &'static str {
        match self {
            Self::SignedIn => "200 signed in (account fell)",
            Self::MfaRequired => "200 mfa_required (stopped by risk)",
            Self::InvalidCredentials => "401 invalid_credentials",
            Self::RateLimited => "429 rate_limited (no hash)",
            Self::RiskDenied => "403 risk_denied",
            Self::Overloaded => "503 overloaded",
            Self::Other => "other",
        }
    }
}

/// A client without a cookie jar, connecting from `from`, that sends `Origin` like a
/// browser's `fetch` POST.
fn client_from(server: &Server, from: IpAddr) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_str(&server.base).unwrap());
    Client::builder()
        .default_headers(headers)
        .local_address(from)
        .build()
        .unwrap()
}

async fn sign_in(
    client: &Client,
    server: &Server,
    device: Option<&str>,
    email: &str,
    password: &str,
) -> Answer {
    let mut request = client
        .post(format!("{}/auth/login", server.base))
        .json(&json!({"email": email, "password": password}));
    if let Some(cookie) = device {
        request = request.header(COOKIE, cookie);
    }
    answer(request.send().await.unwrap()).await
}

/// The `Retry-After` of a 429, in seconds.
fn retry_after(a: &Answer) -> u64 {
    a.headers[RETRY_AFTER].to_str().unwrap().parse().unwrap()
}

/// One attacker attempt: account, password, attacker address.
struct Attempt {
    account: usize,
    password: String,
    ip: usize,
}

/// A small deterministic generator (splitmix64) for the attack's order.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.next() % (i as u64 + 1)).unwrap();
            items.swap(i, j);
        }
    }
}

/// The attacker's plan: every account's leaked pair (in a shuffled order), then each common
/// password on every account; attempt `k` comes from address `k % ATTACKER_IPS`.
fn plan(accounts: &[Account]) -> Vec<Attempt> {
    let mut mix = Mix(0x5eed_c1a0);
    let mut out = Vec::with_capacity(accounts.len() * (1 + COMMON.len()));
    for round in 0..=COMMON.len() {
        let mut order: Vec<usize> = (0..accounts.len()).collect();
        mix.shuffle(&mut order);
        for a in order {
            let password = match round {
                0 => accounts[a].leaked.clone(),
                r => COMMON[r - 1].to_owned(),
            };
            let ip = out.len() % ATTACKER_IPS;
            out.push(Attempt {
                account: a,
                password,
                ip,
            });
        }
    }
    out
}

/// What the attacker's workers saw.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<Outcome, u64>,
    /// Accounts the attacker got a session for.
    fell: Vec<usize>,
    /// Outcomes of the attempts that carried the account's real password.
    correct: BTreeMap<Outcome, u64>,
    /// The risk policy's reasons in the `mfa_required` answers.
    reasons: BTreeMap<String, u64>,
    /// Per attacker address: attempts whose password was checked, and 429s.
    checked_per_ip: BTreeMap<usize, u64>,
    limited_per_ip: BTreeMap<usize, u64>,
    /// Answer times of 429s and of checked wrong passwords.
    limited_took: Vec<Duration>,
    refused_took: Vec<Duration>,
    /// 429s without `Retry-After`.
    no_retry_after: u64,
    others: Vec<String>,
    accounts: HashSet<usize>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.correct {
            *self.correct.entry(k).or_default() += v;
        }
        for (k, v) in other.reasons {
            *self.reasons.entry(k).or_default() += v;
        }
        for (k, v) in other.checked_per_ip {
            *self.checked_per_ip.entry(k).or_default() += v;
        }
        for (k, v) in other.limited_per_ip {
            *self.limited_per_ip.entry(k).or_default() += v;
        }
        self.limited_took.extend(other.limited_took);
        self.refused_took.extend(other.refused_took);
        self.fell.extend(other.fell);
        self.no_retry_after += other.no_retry_after;
        self.others.extend(other.others);
        self.accounts.extend(other.accounts);
    }

    fn attempts(&self) -> u64 {
        self.counts.values().sum()
    }

    fn count(&self, outcome: Outcome) -> u64 {
        self.counts.get(&outcome).copied().unwrap_or(0)
    }
}

/// The `q` quantile (0 to 1) of `values`.
fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let i = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// An owner's sign-in from home with the trusted-device cookie.
struct OwnerResult {
    account: usize,
    outcome: Outcome,
    took: Duration,
}

async fn owner_sign_in(
    server: &Server,
    accounts: &[Account],
    devices: &[String],
    i: usize,
) -> OwnerResult {
    let a = &accounts[i];
    let client = client_from(server, a.home_ip);
    let started = Instant::now();
    let r = sign_in(&client, server, Some(&devices[i]), &a.email, &a.password).await;
    OwnerResult {
        account: i,
        outcome: Outcome::of(&r),
        took: started.elapsed(),
    }
}

fn summary(results: &[OwnerResult], accounts: &[Account]) -> String {
    let ok = results
        .iter()
        .filter(|r| r.outcome == Outcome::SignedIn)
        .count();
    let vulnerable = results
        .iter()
        .filter(|r| accounts[r.account].vulnerable)
        .count();
    let took: Vec<Duration> = results.iter().map(|r| r.took).collect();
    format!(
        "{ok}/{} signed in ({vulnerable} of them vulnerable accounts); median {} ms, max {} ms",
        results.len(),
        quantile(&took, 0.5).as_millis(),
        quantile(&took, 1.0).as_millis()
    )
}

/// An owner's sign-in from a browser that never signed in to the account: no trusted-device
/// cookie, so the account's delays and the risk policy apply.
struct NewBrowser {
    account: usize,
    /// The answers before the session, in order (429s, the challenge).
    steps: Vec<Outcome>,
    /// The risk policy's reason, when it asked for a second factor.
    reason: Option<String>,
    /// Time spent waiting for `Retry-After`.
    waited: Duration,
    took: Duration,
}

/// Waits (bounded) for an unread mail to `to` whose subject contains `subject`, with the
/// mailbox shared between tasks.
async fn wait_mail(mail: &Mutex<Mailbox>, to: &str, subject: &str) -> Mail {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        if let Some(m) = mail.lock().unwrap().find(to, subject) {
            return m;
        }
        assert!(Instant::now() < deadline, "no mail {subject:?} to {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The digits after "code is " in a mail.
fn code_in(mail: &Mail) -> String {
    let start = mail.body.find("code is ").expect("a code in the mail") + "code is ".len();
    mail.body[start..].chars().take(6).collect()
}

/// Signs the owner of account `i` in from home in a new browser: waits out `Retry-After`
/// (at most [`NEW_BROWSER_PATIENCE`] in all), whether the account is delayed (429) or the
/// hashing queue is full (503: a new browser has no device token, so it queues in the normal
/// lane with the attack; a slow machine fills it), and answers a challenge with the mailed
/// code.
/// Mail the attacker's attempts caused must have arrived before (it is discarded).
async fn new_browser_sign_in(
    server: &Server,
    mail: &Mutex<Mailbox>,
    accounts: &[Account],
    i: usize,
) -> NewBrowser {
    let a = &accounts[i];
    while mail
        .lock()
        .unwrap()
        .find(&a.email, "sign-in code")
        .is_some()
    {}
    let client = client_from(server, a.home_ip);
    let started = Instant::now();
    let mut out = NewBrowser {
        account: i,
        steps: Vec::new(),
        reason: None,
        waited: Duration::ZERO,
        took: Duration::ZERO,
    };
    // The pending sign-in's token and the mailed code, once challenged.
    let mut pending: Option<(String, String)> = None;
    loop {
        let r = match &pending {
            None => sign_in(&client, server, None, &a.email, &a.password).await,
            Some((token, code)) => {
                post(
                    &client,
                    server,
                    "/auth/mfa/challenge",
                    json!({"mfa_token": token, "email_code": code}),
                )
                .await
            }
        };
        let outcome = Outcome::of(&r);
        match outcome {
            Outcome::SignedIn => break,
            Outcome::RateLimited | Outcome::Overloaded => {
                let wait = Duration::from_secs(retry_after(&r));
                out.waited += wait;
                assert!(
                    out.waited <= NEW_BROWSER_PATIENCE,
                    "the owner of {} waited {:?} and is still delayed or busy",
                    a.email,
                    out.waited
                );
                tokio::time::sleep(wait).await;
            }
            Outcome::MfaRequired if pending.is_none() => {
                let factors = r.body["factors"].as_array().unwrap();
                assert!(factors.contains(&json!("email_code")), "{factors:?}");
                out.reason = r.body["reason"].as_str().map(str::to_owned);
                let code = code_in(&wait_mail(mail, &a.email, "sign-in code").await);
                pending = Some((r.body["mfa_token"].as_str().unwrap().to_owned(), code));
            }
            _ => panic!(
                "the owner of {} in a new browser got {} {}",
                a.email, r.status, r.body
            ),
        }
        out.steps.push(outcome);
    }
    out.took = started.elapsed();
    out
}

fn new_browser_summary(results: &[NewBrowser]) -> String {
    let challenged = results.iter().filter(|r| r.reason.is_some()).count();
    let delayed = results
        .iter()
        .filter(|r| r.steps.contains(&Outcome::RateLimited))
        .count();
    let busy = results
        .iter()
        .filter(|r| r.steps.contains(&Outcome::Overloaded))
        .count();
    let waited = results.iter().map(|r| r.waited).max().unwrap_or_default();
    let took = results.iter().map(|r| r.took).max().unwrap_or_default();
    format!(
        "{n}/{n} signed in; {challenged} challenged (mailed code), {delayed} delayed first, {busy} answered busy (503) first; longest wait {} s, longest sign-in {:.1} s",
        waited.as_secs(),
        took.as_secs_f64(),
        n = results.len(),
    )
}

/// From attacker address `n`, once it is inside a delay, the right password of account `i`
/// is answered 429 like the wrong ones: no session, no challenge, no mail. Returns the
/// `Retry-After` it was given.
async fn right_password_while_delayed(
    server: &Server,
    mail: &Mutex<Mailbox>,
    accounts: &[Account],
    n: usize,
    i: usize,
) -> u64 {
    let a = &accounts[i];
    while mail.lock().unwrap().find(&a.email, "").is_some() {}
    let client = client_from(server, attacker_ip(n));
    let mut seen = Vec::new();
    for _ in 0..40 {
        // Wrong guesses on an address without an account keep the attacker address delayed
        // without touching the account.
        let r = sign_in(&client, server, None, "nobody@stuffing.example", "guess").await;
        let outcome = Outcome::of(&r);
        if outcome != Outcome::RateLimited || retry_after(&r) < 2 {
            seen.push(format!("{outcome:?} {}", r.status));
            if matches!(outcome, Outcome::RateLimited | Outcome::Overloaded) {
                // The delay's window ends within a second or two (delays are aligned to
                // windows of their own length): wait it out, so the next guess is counted
                // and starts a new delay, instead of asking again inside the old one.
                let wait = r
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_millis(wait * 1000 + 200)).await;
            }
            continue;
        }
        let right = sign_in(&client, server, None, &a.email, &a.password).await;
        assert_eq!(
            Outcome::of(&right),
            Outcome::RateLimited,
            "the right password from a delayed address: {} {}",
            right.status,
            right.body
        );
        assert!(right.set_cookies().is_empty(), "{:?}", right.set_cookies());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            mail.lock().unwrap().find(&a.email, "").is_none(),
            "a delayed attempt mailed the owner: its password was checked"
        );
        return retry_after(&right);
    }
    panic!("attacker address {n} is never delayed for 2 s or more: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stuffing_is_stopped_and_owners_get_in() {
    let started = Instant::now();
    let risk = !std::env::var("CIAM_STUFFING_RISK").is_ok_and(|v| v.eq_ignore_ascii_case("off"));
    let throttle = ThrottlePolicy::default();
    let accounts = Arc::new(accounts());
    let vulnerable = accounts.iter().filter(|a| a.vulnerable).count();

    // 1. The accounts, written straight into the database.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ciam.db").display());
    seed(&url, &accounts).await;
    let seeded = started.elapsed();

    let env: &[(&str, &str)] = if risk { &[] } else { &[("CIAM_RISK", "off")] };
    let (server, mail) = start_with_env(
        Instance {
            database_url: Some(url),
            ..Instance::default()
        },
        env,
    )
    .await;
    let server = Arc::new(server);
    let mail = Arc::new(Mutex::new(mail));

    // 2. Every owner signs in once from home: a history for the account, a trusted-device
    //    cookie for the browser (and the hash upgraded to the quickstart's parameters).
    let phase = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..HISTORY_IN_FLIGHT {
        let (server, accounts, next) = (server.clone(), accounts.clone(), next.clone());
        workers.spawn(async move {
            let mut devices = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(a) = accounts.get(i) else { break };
                let client = client_from(&server, a.home_ip);
                let r = sign_in(&client, &server, None, &a.email, &a.password).await;
                assert_eq!(
                    Outcome::of(&r),
                    Outcome::SignedIn,
                    "{}: {:?}",
                    a.email,
                    r.body
                );
                let device = r
                    .set_cookies()
                    .into_iter()
                    .find(|c| c.starts_with(DEVICE_COOKIE))
                    .unwrap_or_else(|| panic!("no trusted-device cookie for {}", a.email));
                devices.push((i, device.split(';').next().unwrap().to_owned()));
            }
            devices
        });
    }
    let mut devices = vec![String::new(); ACCOUNTS];
    while let Some(done) = workers.join_next().await {
        for (i, cookie) in done.unwrap() {
            devices[i] = cookie;
        }
    }
    let devices = Arc::new(devices);
    let history = phase.elapsed();

    // 3. The attack, with 4. owners signing in from home meanwhile.
    let phase = Instant::now();
    let plan = Arc::new(plan(&accounts));
    let clients: Arc<Vec<Client>> = Arc::new(
        (0..ATTACKER_IPS)
            .map(|n| client_from(&server, attacker_ip(n)))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..ATTACK_IN_FLIGHT {
        let (server, accounts, plan, clients, next) = (
            server.clone(),
            accounts.clone(),
            plan.clone(),
            clients.clone(),
            next.clone(),
        );
        attackers.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(attempt) = plan.get(i) else { break };
                if phase.elapsed() > ATTACK_LIMIT {
                    break;
                }
                let a = &accounts[attempt.account];
                let sent = Instant::now();
                let r = sign_in(
                    &clients[attempt.ip],
                    &server,
                    None,
                    &a.email,
                    &attempt.password,
                )
                .await;
                let took = sent.elapsed();
                let outcome = Outcome::of(&r);
                *tally.counts.entry(outcome).or_default() += 1;
                if attempt.password == a.password {
                    *tally.correct.entry(outcome).or_default() += 1;
                }
                if outcome.checked() {
                    *tally.checked_per_ip.entry(attempt.ip).or_default() += 1;
                }
                match outcome {
                    Outcome::SignedIn => tally.fell.push(attempt.account),
                    Outcome::MfaRequired => {
                        let reason = r.body["reason"].as_str().unwrap_or("(none)").to_owned();
                        *tally.reasons.entry(reason).or_default() += 1;
                    }
                    Outcome::InvalidCredentials => tally.refused_took.push(took),
                    Outcome::RateLimited => {
                        *tally.limited_per_ip.entry(attempt.ip).or_default() += 1;
                        tally.limited_took.push(took);
                        if !r.headers.contains_key(RETRY_AFTER) {
                            tally.no_retry_after += 1;
                        }
                    }
                    Outcome::Other if tally.others.len() < 5 => {
                        tally.others.push(format!("{} {}", r.status, r.body));
                    }
                    _ => {}
                }
                tally.accounts.insert(attempt.account);
            }
            tally
        });
    }
    // Owners during the attack, with their cookie: vulnerable and other accounts in turn.
    let attacking = Arc::new(AtomicBool::new(true));
    let owners = {
        let (server, accounts, devices, attacking) = (
            server.clone(),
            accounts.clone(),
            devices.clone(),
            attacking.clone(),
        );
        tokio::spawn(async move {
            let mut results = Vec::new();
            let mut n = 0;
            while attacking.load(Ordering::Relaxed) {
                // A vulnerable account (0, 20, 40, …), then one next to it that is not.
                let k = n / 2;
                let base = k % (ACCOUNTS / REUSE_EVERY) * REUSE_EVERY;
                let i = if n % 2 == 0 {
                    base
                } else {
                    base + 1 + k / (ACCOUNTS / REUSE_EVERY) % (REUSE_EVERY - 1)
                };
                n += 1;
                results.push(owner_sign_in(&server, &accounts, &devices, i).await);
                tokio::time::sleep(OWNER_PAUSE).await;
            }
            results
        })
    };
    // Owners during the attack in a new browser: accounts that are not vulnerable (the
    // attacker never has their password, so no mail of its making reaches them), under
    // attack with common passwords.
    let new_during = {
        let (server, accounts, mail, attacking) = (
            server.clone(),
            accounts.clone(),
            mail.clone(),
            attacking.clone(),
        );
        tokio::spawn(async move {
            let mut results = Vec::new();
            let mut i = 7;
            while attacking.load(Ordering::Relaxed) && i < ACCOUNTS {
                results.push(new_browser_sign_in(&server, &mail, &accounts, i).await);
                i += REUSE_EVERY * 3;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            results
        })
    };
    let mut tally = Tally::default();
    while let Some(done) = attackers.join_next().await {
        tally.merge(done.unwrap());
    }
    let attack = phase.elapsed();
    attacking.store(false, Ordering::Relaxed);
    let during = owners.await.unwrap();
    let new_during = new_during.await.unwrap();

    // 5. A delayed attacker address sends a vulnerable account's right password.
    let probe_retry = right_password_while_delayed(&server, &mail, &accounts, 0, PROBED).await;

    // 6. After the attack: every vulnerable owner with the cookie, and some others; and a few
    //    owners in a new browser.
    let phase = Instant::now();
    let mut after = Vec::new();
    let others = (0..ACCOUNTS)
        .filter(|i| !accounts[*i].vulnerable)
        .step_by((ACCOUNTS - vulnerable) / AFTER_OTHERS);
    for i in (0..ACCOUNTS)
        .filter(|i| accounts[*i].vulnerable)
        .chain(others)
    {
        after.push(owner_sign_in(&server, &accounts, &devices, i).await);
    }
    let mut new_after = Vec::new();
    for k in 0..NEW_BROWSERS_AFTER {
        // Vulnerable accounts 40, 60, ... and the account next to each.
        let base = REUSE_EVERY * (2 + k / 2);
        let i = if k % 2 == 0 { base } else { base + 3 };
        new_after.push(new_browser_sign_in(&server, &mail, &accounts, i).await);
    }
    let after_took = phase.elapsed();

    // 7. The report.
    let attempts = tally.attempts();
    let limited = tally.count(Outcome::RateLimited);
    let fell: HashSet<usize> = tally.fell.iter().copied().collect();
    let fell_vulnerable = fell.iter().filter(|i| accounts[**i].vulnerable).count();
    let rate = |n: u64| n as f64 / attack.as_secs_f64();
    let max_checked = tally.checked_per_ip.values().copied().max().unwrap_or(0);
    // Past its free failures an address gets one password checked per delay. The delay
    // doubles from `base_delay` and runs to the end of a window aligned on its length, so each
    // lasts at least half its length: at most log2(2 * attack / base_delay + 1) + 1 delays
    // fit into the attack, plus one check at each end.
    let delays = (2.0 * attack.as_secs_f64() / throttle.base_delay.as_secs_f64() + 1.0)
        .log2()
        .ceil() as u64
        + 1;
    let checked_bound = u64::from(throttle.ip_free) + delays + 2;
    let (limited_p50, limited_p90) = (
        quantile(&tally.limited_took, 0.5),
        quantile(&tally.limited_took, 0.9),
    );
    let refused_p50 = quantile(&tally.refused_took, 0.5);
    println!();
    println!(
        "credential stuffing against the quickstart (risk {}, client IP = TCP peer)",
        if risk { "on" } else { "off" }
    );
    println!("  accounts: {ACCOUNTS}, vulnerable (password on the leaked list): {vulnerable}");
    println!(
        "  throttling: {} free failures per IP, {} per subnet, {} per account, {} global; delay from {:?} doubling to {:?} in a {:?} window",
        throttle.ip_free,
        throttle.subnet_free,
        throttle.account_free,
        throttle.global_free,
        throttle.base_delay,
        throttle.max_delay,
        throttle.window,
    );
    println!(
        "  attack: {attempts} attempts from {} addresses across {} accounts, {ATTACK_IN_FLIGHT} in flight, {:.1} s ({:.0}/s)",
        tally.checked_per_ip.len().max(tally.limited_per_ip.len()),
        tally.accounts.len(),
        attack.as_secs_f64(),
        rate(attempts),
    );
    for (outcome, n) in &tally.counts {
        println!(
            "    {:<38} {n:>6} ({:.1}%)",
            outcome.label(),
            *n as f64 * 100.0 / attempts as f64
        );
    }
    println!(
        "  attempts with the account's real password: {}",
        tally
            .correct
            .iter()
            .map(|(o, n)| format!("{} {n}", o.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (reason, n) in &tally.reasons {
        println!("  risk reason x{n}: {reason}");
    }
    println!(
        "  passwords checked per attacker address: max {max_checked} (bound {checked_bound}: {} free + {delays} delays + 2), min {}",
        throttle.ip_free,
        tally.checked_per_ip.values().copied().min().unwrap_or(0),
    );
    println!(
        "  answer times: 429 median {} ms, p90 {} ms; 401 (password checked) median {} ms",
        limited_p50.as_millis(),
        limited_p90.as_millis(),
        refused_p50.as_millis(),
    );
    println!(
        "  right password from a delayed address: 429 (Retry-After {probe_retry} s), no session, no mail"
    );
    println!(
        "  accounts fell: {} ({fell_vulnerable} of {vulnerable} vulnerable); password hashes avoided by throttling: {limited}",
        fell.len(),
    );
    println!(
        "  owners during the attack: {}",
        summary(&during, &accounts)
    );
    println!(
        "  owners during the attack, new browser: {}",
        new_browser_summary(&new_during)
    );
    println!("  owners after the attack:  {}", summary(&after, &accounts));
    println!(
        "  owners after the attack, new browser: {}",
        new_browser_summary(&new_after)
    );
    for r in new_during.iter().chain(&new_after) {
        if let Some(reason) = &r.reason {
            println!("    new browser, {}: {reason}", accounts[r.account].email);
        }
    }
    println!(
        "  wall time: seeding {:.1} s, owners' first sign-ins {:.1} s, attack {:.1} s, owners after {:.1} s, total {:.1} s",
        seeded.as_secs_f64(),
        history.as_secs_f64(),
        attack.as_secs_f64(),
        after_took.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    if !tally.others.is_empty() {
        println!("  other answers (first few): {:?}", tally.others);
    }

    // 8. The verdict.
    assert_eq!(
        attempts,
        u64::try_from(plan.len()).unwrap(),
        "the attack did not finish within {ATTACK_LIMIT:?}"
    );
    assert!(attempts >= 20_000);
    assert_eq!(tally.accounts.len(), ACCOUNTS);
    // The throttling itself: every attacker address was delayed, none had more passwords
    // checked than its free failures and the delays allow, and most attempts never reached
    // the password check.
    assert_eq!(
        tally.limited_per_ip.len(),
        ATTACKER_IPS,
        "attacker addresses never delayed"
    );
    assert!(
        max_checked <= checked_bound,
        "an attacker address had {max_checked} passwords checked (bound {checked_bound})"
    );
    assert!(
        limited * 2 >= attempts,
        "only {limited} of {attempts} attempts were delayed"
    );
    assert_eq!(tally.no_retry_after, 0, "429 without Retry-After");
    // A delay answers without hashing: much faster than a checked password.
    assert!(
        limited_p50 * 4 <= refused_p50,
        "429 median {limited_p50:?} against 401 median {refused_p50:?}"
    );
    // Only accounts whose password is on the list can fall.
    assert!(
        fell.iter().all(|i| accounts[*i].vulnerable),
        "an account whose password is not on the list fell: {fell:?}"
    );
    if risk {
        assert!(
            fell_vulnerable * 100 <= vulnerable,
            "{fell_vulnerable} of {vulnerable} vulnerable accounts fell"
        );
        // Each challenge of the attacker is explained: its first attempt on the account, so
        // no failures yet; an unknown device (20 points) on an unknown network (15).
        assert!(!tally.reasons.is_empty(), "no challenge");
        assert_eq!(
            tally.reasons.keys().collect::<Vec<_>>(),
            [NEW_DEVICE_REASON],
            "{:?}",
            tally.reasons
        );
    } else {
        assert!(tally.reasons.is_empty(), "{:?}", tally.reasons);
    }
    // Every owner got in: with the cookie at once, in a new browser after waiting out the
    // delays and answering the mailed code.
    assert!(!during.is_empty(), "no owner signed in during the attack");
    for r in during.iter().chain(&after) {
        assert_eq!(
            r.outcome,
            Outcome::SignedIn,
            "owner of {} (vulnerable: {}) did not get in",
            accounts[r.account].email,
            accounts[r.account].vulnerable
        );
    }
    assert!(!new_during.is_empty(), "no new browser during the attack");
    for r in new_during.iter().chain(&new_after) {
        if let Some(reason) = &r.reason {
            assert!(
                [NEW_DEVICE_REASON, ACCOUNT_VELOCITY_REASON].contains(&reason.as_str()),
                "{reason}"
            );
        }
        if !risk {
            assert!(r.reason.is_none(), "challenged with the risk policy off");
        }
    }
}
