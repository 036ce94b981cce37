//! A measurement, run by hand: the credential-stuffing plan of the quickstart's
//! `tests/stuffing.rs` (2,000 accounts, 100 of them with a leaked password, 20,000 attempts
//! from 200 addresses: every leaked pair first, then nine common passwords) replayed against
//! the engine in process (memory store, manual clock at a steady 200 attempts a second, risk
//! policy off), once per set of throttling limits. It prints how many vulnerable accounts fall
//! to throttling alone and what the limits cost an owner signing in from a new browser during
//! the attack. The figures are recorded in `benches/README.md` ("Credential stuffing").
//!
//! `cargo nextest run -p ciam-axum --run-ignored only --no-capture -E 'test(stuffing_replay)'`

use std::net::{IpAddr, Ipv4Addr};

use ciam_core::clock::ManualClock;
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{CredentialId, UserId};
use ciam_core::identifier::Email;
use ciam_core::password::{Argon2Params, PasswordConfig, PasswordHasher};
use ciam_core::rng::SystemRandom;
use ciam_core::secret::SecretString;
use ciam_core::store::IdentityStore;
use ciam_core::user::User;
use ciam_core::{RequestContext, SignInOutcome, ThrottlePolicy};

use super::*;

const ACCOUNTS: usize = 2_000;
const IPS: usize = 200;
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

struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn leaked(i: usize) -> String {
    format!("Leaked{}!{}", 1960 + i % 60, i % 97)
}

fn own(i: usize) -> String {
    format!("own strong password number {i} xyzzy")
}

async fn run(name: &str, tweak: impl Fn(&mut ThrottlePolicy)) {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let backend = Arc::new(MemoryBackend::new());
    let cheap = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let mut policy = Policy::default();
    tweak(&mut policy.throttle);
    let t = policy.throttle;
    let ciam = Ciam::builder()
        .backend(Arc::clone(&backend))
        .public_url(HTTP_URL)
        .policy(policy)
        .clock(Arc::new(clock.clone()))
        .password_config(PasswordConfig::default().argon2(cheap))
        .build()
        .unwrap();
    let hasher = PasswordHasher::new(
        PasswordConfig::default().argon2(cheap),
        Arc::new(SystemRandom::new()),
    )
    .unwrap();
    let rng = SystemRandom::new();
    let now = time::OffsetDateTime::now_utc();
    for i in 0..ACCOUNTS {
        let mut user = User::new(UserId::generate(&rng).unwrap(), now);
        user.email = Some(Email::parse(&format!("user{i:04}@stuffing.example")).unwrap());
        user.email_verified_at = Some(now);
        let pw = if i % 20 == 0 { leaked(i) } else { own(i) };
        let phc = hasher.hash(&SecretString::new(pw)).await.unwrap();
        let c = Credential::new(
            CredentialId::generate(&rng).unwrap(),
            user.id,
            CredentialKind::Password,
            phc,
            now,
        );
        backend.create_user(&user, &[c]).await.unwrap();
    }
    let mut mix = Mix(0x5eed_c1a0);
    let mut plan = Vec::new();
    for round in 0..=COMMON.len() {
        let mut order: Vec<usize> = (0..ACCOUNTS).collect();
        for i in (1..order.len()).rev() {
            let j = usize::try_from(mix.next() % (i as u64 + 1)).unwrap();
            order.swap(i, j);
        }
        for a in order {
            let pw = if round == 0 {
                leaked(a)
            } else {
                COMMON[round - 1].to_owned()
            };
            plan.push((a, pw));
        }
    }
    let (mut fell, mut limited, mut checked) = (0, 0, 0);
    let (mut owner_tries, mut owner_delayed, mut owner_max_retry) = (0, 0, 0u64);
    let mut fell_round0 = 0;
    for (k, (a, pw)) in plan.iter().enumerate() {
        clock.advance(time::Duration::milliseconds(5));
        let n = k % IPS;
        let ip = IpAddr::V4(Ipv4Addr::new(198, 18, u8::try_from(n).unwrap(), 77));
        let ctx = RequestContext::new(Some(ip), Some("attacker"));
        let email = format!("user{a:04}@stuffing.example");
        match ciam
            .sign_in_password(&email, &SecretString::new(pw.clone()), &ctx)
            .await
        {
            Ok(SignInOutcome::SignedIn(_)) => {
                fell += 1;
                checked += 1;
                if k < ACCOUNTS {
                    fell_round0 += 1;
                }
            }
            Ok(_) => checked += 1,
            Err(e) if e.kind() == ErrorKind::RateLimited => limited += 1,
            Err(_) => checked += 1,
        }
        // Every 100 attempts (half a second), an owner of an account that is not vulnerable
        // signs in from a new browser (no trusted-device token) at home.
        if k % 100 == 50 {
            let i = (k / 100 * 20 + 7) % ACCOUNTS;
            let home = IpAddr::V4(Ipv4Addr::new(
                10,
                u8::try_from(i / 250).unwrap(),
                u8::try_from(i % 250).unwrap(),
                23,
            ));
            let ctx = RequestContext::new(Some(home), Some("owner"));
            let email = format!("user{i:04}@stuffing.example");
            owner_tries += 1;
            match ciam
                .sign_in_password(&email, &SecretString::new(own(i)), &ctx)
                .await
            {
                Err(Error::RateLimited { retry_after }) => {
                    owner_delayed += 1;
                    owner_max_retry = owner_max_retry.max(retry_after.as_secs());
                }
                Ok(_) => {}
                Err(e) => panic!("owner: {e}"),
            }
        }
    }
    println!(
        "{name:<34} ip {:>3} subnet {:>3} acct {:>2} global {:>5} | fell {fell:>3}/100 (round 0: {fell_round0}) | 429 {limited:>5} | checked {checked:>5} | new-browser owners delayed {owner_delayed}/{owner_tries}, longest Retry-After {owner_max_retry} s",
        t.ip_free, t.subnet_free, t.account_free, t.global_free
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand (see the module docs)"]
async fn throttling_alone_against_stuffing() {
    run("defaults", |_| {}).await;
    run("ip 5, subnet 15", |t| {
        t.ip_free = 5;
        t.subnet_free = 15;
    })
    .await;
    run("ip 1, subnet 3", |t| {
        t.ip_free = 1;
        t.subnet_free = 3;
    })
    .await;
    run("global 1000", |t| t.global_free = 1000).await;
    run("global 200", |t| t.global_free = 200).await;
    run("global 100", |t| t.global_free = 100).await;
    run("global 50", |t| t.global_free = 50).await;
    run("global 20", |t| t.global_free = 20).await;
    run("ip 5, subnet 15, global 200", |t| {
        t.ip_free = 5;
        t.subnet_free = 15;
        t.global_free = 200;
    })
    .await;
}
