//! A credential-stuffing simulation against the quickstart binary over HTTP.
//!
//! 2,000 verified accounts are written into the SQLite file before the quickstart starts
//! (with cheap argon2id hashes, which the quickstart verifies and upgrades on the first
//! sign-in). 5% of them reuse the password that the attacker's leaked list pairs with their
//! address; the others have unique strong passwords. Every owner first signs in once from a
//! home address of their own, which gives the account a sign-in history and the owner's
//! browser its trusted-device cookie (`ciam_device`).
//!
//! The attacker then makes 20,000 `POST /auth/login` attempts from 200 addresses (each in its
//! own /24, given through `X-Forwarded-For` with `CIAM_TRUSTED_PROXY_HOPS=1`), without cookies
//! and without waiting for `Retry-After`: each account's leaked pair first, then common
//! passwords. Meanwhile, and afterwards, owners sign in from home with their cookie. The test
//! prints a report and asserts that at most 1% of the vulnerable accounts fell, that only
//! vulnerable accounts can fall, and that every owner got in.
//!
//! Needs the SMTP sink like `tests/http.rs` (`scripts/test.sh` starts it): a challenged
//! attacker makes the quickstart mail the owner a sign-in code.

// A test harness: its helpers fail the test by panicking, like the tests themselves (clippy's
// in-test allowances cover only `#[test]` functions, not helpers of an integration-test crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ciam::OpaqueToken;
use ciam::SecretString;
use ciam::credential::{Credential, CredentialKind};
use ciam::id::{CredentialId, UserId};
use ciam::identifier::Email;
use ciam::password::{Argon2Params, PasswordConfig, PasswordHasher};
use ciam::rng::SystemRandom;
use ciam::storage::sqlite::SqliteBackend;
use ciam::store::IdentityStore;
use ciam::user::User;
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

const SESSION_COOKIE: &str = "ciam_session=";
const DEVICE_COOKIE: &str = "ciam_device=";

/// One account, as its owner and the leaked list know it.
struct Account {
    email: String,
    password: String,
    /// The password the attacker's list pairs with the address.
    leaked: String,
    vulnerable: bool,
    /// The owner's own address (a /24 of its own).
    home_ip: String,
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
                home_ip: format!("10.{}.{}.23", i / 250, i % 250),
            }
        })
        .collect()
}

fn attacker_ip(n: usize) -> String {
    format!("198.{}.{}.77", 18 + n / 256, n % 256)
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

/// What one `POST /auth/login` came to.
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

/// A client without a cookie jar that sends `Origin` like a browser's `fetch` POST.
fn cookieless(server: &Server) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_str(&server.base).unwrap());
    Client::builder().default_headers(headers).build().unwrap()
}

async fn sign_in(
    client: &Client,
    server: &Server,
    ip: &str,
    device: Option<&str>,
    email: &str,
    password: &str,
) -> Answer {
    let mut request = client
        .post(format!("{}/auth/login", server.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}));
    if let Some(cookie) = device {
        request = request.header(COOKIE, cookie);
    }
    answer(request.send().await.unwrap()).await
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
    /// 429s without `Retry-After`.
    no_retry_after: u64,
    others: Vec<String>,
    accounts: HashSet<usize>,
    ips: HashSet<usize>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.correct {
            *self.correct.entry(k).or_default() += v;
        }
        self.fell.extend(other.fell);
        self.no_retry_after += other.no_retry_after;
        self.others.extend(other.others);
        self.accounts.extend(other.accounts);
        self.ips.extend(other.ips);
    }

    fn attempts(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// An owner's sign-in from home with the trusted-device cookie.
struct OwnerResult {
    account: usize,
    outcome: Outcome,
    took: Duration,
}

async fn owner_sign_in(
    client: &Client,
    server: &Server,
    accounts: &[Account],
    devices: &[String],
    i: usize,
) -> OwnerResult {
    let a = &accounts[i];
    let started = Instant::now();
    let r = sign_in(
        client,
        server,
        &a.home_ip,
        Some(&devices[i]),
        &a.email,
        &a.password,
    )
    .await;
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
    let mut took: Vec<Duration> = results.iter().map(|r| r.took).collect();
    took.sort();
    let median = took.get(took.len() / 2).copied().unwrap_or_default();
    let max = took.last().copied().unwrap_or_default();
    format!(
        "{ok}/{} signed in ({vulnerable} of them vulnerable accounts); median {} ms, max {} ms",
        results.len(),
        median.as_millis(),
        max.as_millis()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stuffing_is_stopped_and_owners_get_in() {
    let started = Instant::now();
    let accounts = Arc::new(accounts());
    let vulnerable = accounts.iter().filter(|a| a.vulnerable).count();

    // 1. The accounts, written straight into the database.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ciam.db").display());
    seed(&url, &accounts).await;
    let seeded = started.elapsed();

    let (server, _mail) = start_with_env(
        Instance {
            database_url: Some(url),
            ..Instance::default()
        },
        &[("CIAM_TRUSTED_PROXY_HOPS", "1")],
    )
    .await;
    let server = Arc::new(server);

    // 2. Every owner signs in once from home: a history for the account, a trusted-device
    //    cookie for the browser (and the hash upgraded to the quickstart's parameters).
    let phase = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..HISTORY_IN_FLIGHT {
        let (server, accounts, next) = (server.clone(), accounts.clone(), next.clone());
        workers.spawn(async move {
            let client = cookieless(&server);
            let mut devices = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(a) = accounts.get(i) else { break };
                let r = sign_in(&client, &server, &a.home_ip, None, &a.email, &a.password).await;
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
    let clients: Arc<Vec<Client>> =
        Arc::new((0..ATTACKER_IPS).map(|_| cookieless(&server)).collect());
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
                let r = sign_in(
                    &clients[attempt.ip],
                    &server,
                    &attacker_ip(attempt.ip),
                    None,
                    &a.email,
                    &attempt.password,
                )
                .await;
                let outcome = Outcome::of(&r);
                *tally.counts.entry(outcome).or_default() += 1;
                if attempt.password == a.password {
                    *tally.correct.entry(outcome).or_default() += 1;
                }
                match outcome {
                    Outcome::SignedIn => tally.fell.push(attempt.account),
                    Outcome::RateLimited if !r.headers.contains_key(RETRY_AFTER) => {
                        tally.no_retry_after += 1;
                    }
                    Outcome::Other if tally.others.len() < 5 => {
                        tally.others.push(format!("{} {}", r.status, r.body));
                    }
                    _ => {}
                }
                tally.accounts.insert(attempt.account);
                tally.ips.insert(attempt.ip);
            }
            tally
        });
    }
    // Owners during the attack: vulnerable and other accounts in turn.
    let attacking = Arc::new(AtomicBool::new(true));
    let owners = {
        let (server, accounts, devices, attacking) = (
            server.clone(),
            accounts.clone(),
            devices.clone(),
            attacking.clone(),
        );
        tokio::spawn(async move {
            let client = cookieless(&server);
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
                results.push(owner_sign_in(&client, &server, &accounts, &devices, i).await);
                tokio::time::sleep(OWNER_PAUSE).await;
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

    // After the attack: every vulnerable owner, and some others.
    let phase = Instant::now();
    let client = cookieless(&server);
    let mut after = Vec::new();
    let others = (0..ACCOUNTS)
        .filter(|i| !accounts[*i].vulnerable)
        .step_by((ACCOUNTS - vulnerable) / AFTER_OTHERS);
    for i in (0..ACCOUNTS)
        .filter(|i| accounts[*i].vulnerable)
        .chain(others)
    {
        after.push(owner_sign_in(&client, &server, &accounts, &devices, i).await);
    }
    let after_took = phase.elapsed();

    // 5. The report.
    let attempts = tally.attempts();
    let fell: HashSet<usize> = tally.fell.iter().copied().collect();
    let fell_vulnerable = fell.iter().filter(|i| accounts[**i].vulnerable).count();
    let rate = |n: u64| n as f64 / attack.as_secs_f64();
    println!();
    println!("credential stuffing against the quickstart (risk on, CIAM_TRUSTED_PROXY_HOPS=1)");
    println!("  accounts: {ACCOUNTS}, vulnerable (password on the leaked list): {vulnerable}");
    println!(
        "  attack: {attempts} attempts from {} addresses across {} accounts, {ATTACK_IN_FLIGHT} in flight, {:.1} s ({:.0}/s)",
        tally.ips.len(),
        tally.accounts.len(),
        attack.as_secs_f64(),
        rate(attempts),
    );
    for (outcome, n) in &tally.counts {
        println!("    {:<38} {n:>6}", outcome.label());
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
    println!(
        "  accounts fell: {} ({fell_vulnerable} of {vulnerable} vulnerable); password hashes avoided by throttling: {}",
        fell.len(),
        tally.counts.get(&Outcome::RateLimited).unwrap_or(&0),
    );
    println!(
        "  owners during the attack: {}",
        summary(&during, &accounts)
    );
    println!("  owners after the attack:  {}", summary(&after, &accounts));
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

    // 6. The verdict.
    assert_eq!(
        attempts,
        u64::try_from(plan.len()).unwrap(),
        "the attack did not finish within {ATTACK_LIMIT:?}"
    );
    assert!(attempts >= 20_000);
    assert_eq!(tally.ips.len(), ATTACKER_IPS);
    assert_eq!(tally.accounts.len(), ACCOUNTS);
    assert!(
        fell.iter().all(|i| accounts[*i].vulnerable),
        "an account whose password is not on the list fell: {fell:?}"
    );
    assert!(
        fell_vulnerable * 100 <= vulnerable,
        "{fell_vulnerable} of {vulnerable} vulnerable accounts fell"
    );
    assert_eq!(tally.no_retry_after, 0, "429 without Retry-After");
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
}
