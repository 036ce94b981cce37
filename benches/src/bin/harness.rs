//! The performance harness: every side-by-side figure of the performance issue, measured in
//! one run on loopback and printed as a table of ratios. Run it through `benches/run.sh`,
//! which builds the release binaries, the C reference program and installs `wrk`.
//!
//! Phases (each bounded; `HARNESS_SECONDS`, default 8, is the length of one measurement):
//! 1. **Hashing**: argon2id at ciam's default (OWASP) parameters, hashes/s by thread count,
//!    through ciam's `PasswordHasher` pool, through the raw RustCrypto call with a reused
//!    memory block, and through the reference C implementation (Debian's libargon2, run by
//!    `argon2_ref`). Three interleaved rounds; the best round of each counts.
//! 2. **Protected route**: the quickstart's `GET /auth/me` with a valid session cookie against
//!    `GET /healthz` of the same process (wrk, 64 connections).
//! 3. **Peer**: the same route on the peer app (`peer`: axum-login + tower-sessions), which
//!    answers the same document; its lighter `/auth/whoami` (`{"id", "email"}`, what its
//!    `/auth/me` answered before 2026-11-24) is measured beside it for comparison.
//! 4. **Storm**: sign-ins offered at 10x the measured hashing capacity (open loop) while wrk
//!    loads the protected route; then 64 closed-loop sign-in clients on ciam and on the peer.
//!    Peak memory is the quickstart's `VmHWM`; during the open loop a sampler also records
//!    its resident set, open file descriptors and the sign-ins in flight.
//!
//! Settings: `HARNESS_BIN_DIR` (where `quickstart`, `peer` and `argon2_ref` are; default the
//! directory of this executable), `HARNESS_OUT` (where the database, logs and `results.md`
//! go; default `target/harness`), `HARNESS_SECONDS`, `HARNESS_USERS` (default 256).
//! Last, when valgrind is installed (`HARNESS_CALLGRIND=0` skips it), the quickstart and the
//! peer are started again under callgrind and each route's instructions and allocations per
//! request are counted: a figure the machine's load does not move.
//!
//! `HARNESS_ONLY=instructions` runs only that last phase.
//!
//! For iterating on the storm alone: `HARNESS_ONLY=storm` skips phases 2-3, and
//! `HARNESS_CAPACITY=<hashes/s>` skips phase 1 and takes that figure as the capacity.
//!
//! A measurement that saw an unexpected status (wrk's "Non-2xx" line, or a sign-in answered
//! something other than 200/503) is marked invalid in the table rather than reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{CredentialId, UserId};
use ciam_core::identifier::Email;
use ciam_core::password::{Argon2Params, PasswordConfig, PasswordHasher, PoolConfig};
use ciam_core::rng::SystemRandom;
use ciam_core::secret::SecretString;
use ciam_core::store::IdentityStore;
use ciam_core::user::User;
use ciam_storage::sqlite::SqliteBackend;

/// Connections wrk and the closed-loop sign-in clients use (the figure).
const CONNECTIONS: usize = 64;

struct Settings {
    bin_dir: PathBuf,
    out: PathBuf,
    seconds: u64,
    users: usize,
    /// `HARNESS_ONLY=storm`: only section 4 (with `HARNESS_CAPACITY`, no hashing either).
    storm_only: bool,
    /// `HARNESS_ONLY=instructions`: only the instruction counts (callgrind).
    instructions_only: bool,
    /// `HARNESS_CAPACITY`: hashes/s to take as capacity instead of measuring it.
    capacity: Option<f64>,
}

impl Settings {
    fn from_env() -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let bin_dir = std::env::var_os("HARNESS_BIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| exe.parent().expect("exe dir").to_path_buf());
        let out = std::env::var_os("HARNESS_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/harness"));
        let seconds = std::env::var("HARNESS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8);
        let users = std::env::var("HARNESS_USERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256);
        let storm_only = std::env::var("HARNESS_ONLY").is_ok_and(|v| v == "storm");
        let instructions_only = std::env::var("HARNESS_ONLY").is_ok_and(|v| v == "instructions");
        let capacity = std::env::var("HARNESS_CAPACITY")
            .ok()
            .and_then(|s| s.parse().ok());
        Self {
            bin_dir,
            out,
            seconds,
            users,
            storm_only,
            instructions_only,
            capacity,
        }
    }
}

fn main() {
    let s = Settings::from_env();
    std::fs::create_dir_all(&s.out).expect("create HARNESS_OUT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = Report::default();
    let started = Instant::now();

    if s.instructions_only {
        eprintln!("== seeding {} accounts", s.users);
        let accounts = rt.block_on(seed(&s));
        instructions_phase(&s, &rt, &accounts, &mut report);
        report.finish(started.elapsed(), &s);
        return;
    }

    let capacity = if let Some(c) = s.capacity {
        eprintln!("== 1. hashing skipped: capacity {c}/s from HARNESS_CAPACITY");
        c
    } else {
        eprintln!("== 1. hashing ({} s per measurement)", s.seconds);
        let hashing = hashing(&s, &rt);
        report.hashing(&hashing);
        hashing
            .get(&(cores(), Impl::CiamPool))
            .copied()
            .unwrap_or(1.0)
    };

    eprintln!("== seeding {} accounts", s.users);
    let accounts = rt.block_on(seed(&s));

    eprintln!("== starting the quickstart and the peer");
    let mut ciam = Server::quickstart(&s);
    let mut peer = Server::peer(&s);
    rt.block_on(ciam.wait_ready());
    rt.block_on(peer.wait_ready());
    let ciam_cookie = rt
        .block_on(sign_in_cookie(&ciam, &accounts[0]))
        .expect("ciam sign-in");
    let peer_cookie = rt
        .block_on(sign_in_cookie(&peer, &accounts[0]))
        .expect("peer sign-in");

    let mut runs: BTreeMap<&str, Vec<Wrk>> = BTreeMap::new();
    let rounds = if s.storm_only {
        eprintln!("== 2/3. skipped (HARNESS_ONLY=storm)");
        0
    } else {
        eprintln!("== 2/3. protected route, health route, peer (wrk, {CONNECTIONS} connections)");
        2
    };
    for round in 0..rounds {
        eprintln!("   round {}", round + 1);
        runs.entry("ciam /healthz")
            .or_default()
            .push(wrk(&ciam.url("/healthz"), None, s.seconds));
        runs.entry("ciam /auth/me").or_default().push(wrk(
            &ciam.url("/auth/me"),
            Some(&ciam_cookie),
            s.seconds,
        ));
        runs.entry("peer /auth/me").or_default().push(wrk(
            &peer.url("/auth/me"),
            Some(&peer_cookie),
            s.seconds,
        ));
        runs.entry("peer /healthz")
            .or_default()
            .push(wrk(&peer.url("/healthz"), None, s.seconds));
        runs.entry("peer /auth/whoami").or_default().push(wrk(
            &peer.url("/auth/whoami"),
            Some(&peer_cookie),
            s.seconds,
        ));
    }
    if !runs.is_empty() {
        report.routes(&runs);
    }

    eprintln!(
        "== 4. storm: sign-ins offered at 10x capacity ({:.0}/s) with wrk on /auth/me",
        capacity * 10.0
    );
    let storm_secs = s.seconds.max(5) + 4;
    let route_during = std::thread::spawn({
        let url = ciam.url("/auth/me");
        let cookie = ciam_cookie.clone();
        move || wrk(&url, Some(&cookie), storm_secs)
    });
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let (pid, sampling) = (ciam.child.id(), sampling.clone());
        move || sample_process(pid, &sampling)
    });
    let open = rt.block_on(open_loop_storm(
        &ciam,
        &accounts,
        capacity * 10.0,
        Duration::from_secs(storm_secs),
    ));
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.join().expect("sampler thread");
    let route_during = route_during.join().expect("wrk thread");

    eprintln!("== 4. storm: {CONNECTIONS} closed-loop sign-in clients, ciam then peer");
    let closed_ciam = rt.block_on(closed_loop(
        &ciam,
        &accounts,
        Duration::from_secs(storm_secs),
    ));
    let closed_peer = rt.block_on(closed_loop(
        &peer,
        &accounts,
        Duration::from_secs(storm_secs),
    ));
    let peak = ciam.peak_memory_kib();
    report.storm(
        &open,
        &route_during,
        &closed_ciam,
        &closed_peer,
        capacity,
        peak,
    );
    report.storm_samples(&open, &samples);

    ciam.stop();
    peer.stop();

    if s.storm_only {
        eprintln!("== instructions per request: skipped (HARNESS_ONLY=storm)");
    } else {
        instructions_phase(&s, &rt, &accounts, &mut report);
    }
    report.finish(started.elapsed(), &s);
}

// ---------------------------------------------------------------------------------------------
// 1. Hashing

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Impl {
    CiamPool,
    /// The pool with its workers at nice 0, as the other implementations run: separates the
    /// pool's own cost from the priority it gives up to request handling by default.
    CiamPoolNice0,
    RawReused,
    CRef,
}

impl Impl {
    fn label(self) -> &'static str {
        match self {
            Impl::CiamPool => "ciam pool",
            Impl::CiamPoolNice0 => "ciam pool at nice 0",
            Impl::RawReused => "argon2 crate, reused memory",
            Impl::CRef => "C reference (libargon2)",
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Hashes/s by (threads, implementation): the best of three interleaved rounds.
fn hashing(s: &Settings, rt: &tokio::runtime::Runtime) -> BTreeMap<(usize, Impl), f64> {
    let secs = Duration::from_secs(s.seconds);
    let mut best: BTreeMap<(usize, Impl), f64> = BTreeMap::new();
    for round in 0..3 {
        for threads in 1..=cores() {
            for imp in [
                Impl::CiamPool,
                Impl::CiamPoolNice0,
                Impl::RawReused,
                Impl::CRef,
            ] {
                let rate = match imp {
                    Impl::CiamPool => rt.block_on(pool_rate(threads, secs, None)),
                    Impl::CiamPoolNice0 => rt.block_on(pool_rate(threads, secs, Some(0))),
                    Impl::RawReused => raw_rate(threads, secs),
                    Impl::CRef => c_rate(&s.bin_dir, threads, secs),
                };
                eprintln!(
                    "   round {} threads {threads} {:<28} {rate:7.1}/s",
                    round + 1,
                    imp.label()
                );
                let e = best.entry((threads, imp)).or_insert(0.0);
                *e = e.max(rate);
            }
        }
    }
    best
}

/// The pool's hashes/s with `threads` workers, at the default niceness or at `niceness`.
async fn pool_rate(threads: usize, secs: Duration, niceness: Option<u8>) -> f64 {
    let mut config = PasswordConfig::default()
        .argon2(Argon2Params::OWASP)
        .pool(PoolConfig {
            workers: threads,
            queue: threads * 8,
        });
    if let Some(n) = niceness {
        config = config.worker_niceness(n);
    }
    let hasher = PasswordHasher::new(config, Arc::new(SystemRandom::new())).expect("hasher");
    // Warm the workers (each allocates its memory block on its first job).
    let warm: Vec<_> = (0..threads)
        .map(|_| {
            let h = hasher.clone();
            tokio::spawn(async move { h.hash(&SecretString::new("warm up")).await })
        })
        .collect();
    for w in warm {
        w.await.expect("join").expect("hash");
    }
    let before = hasher.jobs_completed();
    let start = Instant::now();
    let end = start + secs;
    // Twice as many callers as workers keeps every worker busy without filling the queue.
    let callers: Vec<_> = (0..threads * 2)
        .map(|_| {
            let h = hasher.clone();
            tokio::spawn(async move {
                let p = SecretString::new("correct horse battery staple");
                while Instant::now() < end {
                    h.hash(&p).await.expect("hash");
                }
            })
        })
        .collect();
    for c in callers {
        c.await.expect("join");
    }
    (hasher.jobs_completed() - before) as f64 / start.elapsed().as_secs_f64()
}

fn raw_rate(threads: usize, secs: Duration) -> f64 {
    let start = Instant::now();
    let end = start + secs;
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let params = Params::new(19_456, 2, 1, Some(32)).expect("params");
                    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                    let mut blocks = vec![Block::default(); 19_456];
                    let mut out = [0u8; 32];
                    let mut n = 0u64;
                    while Instant::now() < end {
                        argon
                            .hash_password_into_with_memory(
                                b"correct horse battery staple",
                                b"0123456789abcdef",
                                &mut out,
                                &mut blocks,
                            )
                            .expect("hash");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("join")).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn c_rate(bin_dir: &Path, threads: usize, secs: Duration) -> f64 {
    let exe = bin_dir.join("argon2_ref");
    let out = Command::new(&exe)
        .arg(threads.to_string())
        .arg(secs.as_secs().to_string())
        .output()
        .unwrap_or_else(|e| panic!("{} (built by benches/run.sh): {e}", exe.display()));
    assert!(out.status.success(), "argon2_ref failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let n: f64 = parts.next().and_then(|p| p.parse().ok()).expect("count");
    let t: f64 = parts.next().and_then(|p| p.parse().ok()).expect("time");
    n / t
}

// ---------------------------------------------------------------------------------------------
// Accounts and servers

#[derive(Clone)]
struct Account {
    email: String,
    password: String,
}

/// Writes verified accounts with argon2id hashes at the default parameters into the
/// quickstart's SQLite file, and the same PHC strings into the peer's users file.
async fn seed(s: &Settings) -> Vec<Account> {
    let db = s.out.join("quickstart.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let backend = SqliteBackend::connect(&url).await.expect("sqlite");
    let hasher = PasswordHasher::new(
        PasswordConfig::default().argon2(Argon2Params::OWASP),
        Arc::new(SystemRandom::new()),
    )
    .expect("hasher");
    let rng = SystemRandom::new();
    let now = time::OffsetDateTime::now_utc();
    let mut peer_users = String::new();
    let mut accounts = Vec::with_capacity(s.users);
    for i in 0..s.users {
        let a = Account {
            email: format!("user{i}@bench.example"),
            password: format!("bench password {i} for the harness"),
        };
        let mut user = User::new(UserId::generate(&rng).expect("id"), now);
        user.email = Some(Email::parse(&a.email).expect("email"));
        user.email_verified_at = Some(now);
        let phc = hasher
            .hash(&SecretString::new(a.password.clone()))
            .await
            .expect("hash");
        writeln!(peer_users, "{}\t{phc}", a.email).expect("write");
        let credential = Credential::new(
            CredentialId::generate(&rng).expect("id"),
            user.id,
            CredentialKind::Password,
            phc,
            now,
        );
        backend
            .create_user(&user, &[credential])
            .await
            .expect("create user");
        accounts.push(a);
    }
    backend.close().await;
    std::fs::write(s.out.join("peer-users.tsv"), peer_users).expect("write peer users");
    accounts
}

struct Server {
    name: &'static str,
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Server {
    fn quickstart(s: &Settings) -> Self {
        Self::quickstart_under(s, None)
    }

    /// The quickstart, under callgrind when `callgrind` names an output prefix.
    fn quickstart_under(s: &Settings, callgrind: Option<&Path>) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(s.out.join("quickstart.log")).expect("log");
        let child = launcher(&s.bin_dir.join("quickstart"), callgrind)
            .env("CIAM_BIND", format!("127.0.0.1:{port}"))
            .env("CIAM_PUBLIC_URL", &base)
            .env(
                "CIAM_DATABASE_URL",
                format!(
                    "sqlite://{}?mode=rwc",
                    s.out.join("quickstart.db").display()
                ),
            )
            // The peer has no risk engine; the comparison is of the same work.
            .env("CIAM_RISK", "off")
            .env("RUST_LOG", "warn")
            .env_remove("CIAM_REDIS_URL")
            .env_remove("CIAM_SMTP_URL")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start quickstart (built by benches/run.sh)");
        Self {
            name: "quickstart",
            child,
            base,
        }
    }

    fn peer(s: &Settings) -> Self {
        Self::peer_under(s, None)
    }

    /// The peer, under callgrind when `callgrind` names an output prefix.
    fn peer_under(s: &Settings, callgrind: Option<&Path>) -> Self {
        let port = free_port();
        let log = std::fs::File::create(s.out.join("peer.log")).expect("log");
        let child = launcher(&s.bin_dir.join("peer"), callgrind)
            .env("PEER_BIND", format!("127.0.0.1:{port}"))
            .env("PEER_USERS", s.out.join("peer-users.tsv"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start peer (built by benches/run.sh)");
        Self {
            name: "peer",
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        // Under valgrind a start takes seconds.
        for _ in 0..1200 {
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early: {status}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not answer /healthz within 120 s", self.name);
    }

    fn peak_memory_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status_field(&status, "VmHWM:")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The command starting `exe`: directly, or under callgrind with instrumentation off until
/// `callgrind_control -i on` (so start-up and warm-up are not counted), its dumps written to
/// `<callgrind>.<pid>.<n>`.
fn launcher(exe: &Path, callgrind: Option<&Path>) -> Command {
    match callgrind {
        None => Command::new(exe),
        Some(prefix) => {
            let mut c = Command::new("valgrind");
            c.arg("--tool=callgrind")
                .arg("--instr-atstart=no")
                .arg(format!("--callgrind-out-file={}.%p", prefix.display()))
                .arg(exe);
            c
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instructions per request (callgrind)

/// Requests counted per route; the same count warms the route first.
const COUNTED_REQUESTS: u64 = 2000;

/// Instructions and heap allocations per request of one route, counted by callgrind.
#[derive(Debug, Clone, Copy)]
struct Counted {
    instructions: u64,
    allocations: u64,
}

fn callgrind_available() -> bool {
    std::env::var("HARNESS_CALLGRIND").map_or(true, |v| v != "0")
        && Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
}

/// The last phase: the quickstart and the peer under callgrind, each route counted. A
/// failure is reported in the table, not a panic that would lose the phases before it.
fn instructions_phase(
    s: &Settings,
    rt: &tokio::runtime::Runtime,
    accounts: &[Account],
    report: &mut Report,
) {
    if !callgrind_available() {
        eprintln!("== instructions per request: skipped (HARNESS_CALLGRIND=0 or no valgrind)");
        return;
    }
    eprintln!(
        "== instructions per request (callgrind, {COUNTED_REQUESTS} sequential requests per route)"
    );
    let mut counted = Vec::new();
    let mut failures = Vec::new();
    for which in ["ciam", "peer"] {
        let prefix = s.out.join(format!("callgrind.{which}"));
        let mut server = if which == "ciam" {
            Server::quickstart_under(s, Some(&prefix))
        } else {
            Server::peer_under(s, Some(&prefix))
        };
        rt.block_on(server.wait_ready());
        let result = rt.block_on(async {
            let cookie = sign_in_cookie(&server, &accounts[0]).await?;
            let mut routes = vec![("/healthz", None), ("/auth/me", Some(cookie.as_str()))];
            if which == "peer" {
                // The earlier, lighter answer (`{"id", "email"}`), for comparison.
                routes.push(("/auth/whoami", Some(cookie.as_str())));
            }
            count_routes(&server, &prefix, &routes).await
        });
        server.stop();
        match result {
            Ok(rows) => {
                for (path, c) in rows {
                    eprintln!(
                        "   {which} {path}: {} instructions, {} allocations per request",
                        c.instructions, c.allocations
                    );
                    counted.push((which, path, c));
                }
            }
            Err(e) => {
                eprintln!("   {which}: FAILED: {e}");
                failures.push(format!("{which}: {e}"));
            }
        }
    }
    report.instructions(&counted, &failures);
}

fn callgrind_control(args: &[&str], pid: u32) -> Result<(), String> {
    let ok = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if ok {
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?} {pid} failed"))
    }
}

/// Runs `server` (started under callgrind with output prefix `prefix`) through `routes`:
/// per route, `COUNTED_REQUESTS` sequential warm-up requests on one keep-alive connection,
/// then as many counted ones, dumped to their own file. Sequential requests on one connection
/// make the count the server's own work per request, repeatable on a busy machine.
async fn count_routes(
    server: &Server,
    prefix: &Path,
    routes: &[(&'static str, Option<&str>)],
) -> Result<Vec<(&'static str, Counted)>, String> {
    let pid = server.child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let mut out = Vec::new();
    for (dump, (path, cookie)) in routes.iter().enumerate() {
        let run = |n: u64| {
            let client = client.clone();
            let url = server.url(path);
            let cookie = cookie.map(str::to_owned);
            async move {
                for _ in 0..n {
                    let mut req = client.get(&url);
                    if let Some(c) = &cookie {
                        req = req.header("Cookie", c);
                    }
                    let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
                    if !r.status().is_success() {
                        return Err(format!("{url}: {}", r.status()));
                    }
                    r.bytes().await.map_err(|e| format!("{url}: {e}"))?;
                }
                Ok::<(), String>(())
            }
        };
        run(COUNTED_REQUESTS).await?;
        callgrind_control(&["-z"], pid)?;
        callgrind_control(&["-i", "on"], pid)?;
        run(COUNTED_REQUESTS).await?;
        // The dump's trigger label must not look like a path or a pid.
        callgrind_control(&[&format!("--dump=route{}", dump + 1)], pid)?;
        callgrind_control(&["-i", "off"], pid)?;
        let file = PathBuf::from(format!("{}.{pid}.{}", prefix.display(), dump + 1));
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let total: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("{}: no totals line", file.display()))?;
        out.push((
            *path,
            Counted {
                instructions: total / COUNTED_REQUESTS,
                allocations: allocations_in(&file) / COUNTED_REQUESTS,
            },
        ));
    }
    Ok(out)
}

/// Calls to the Rust global allocator in a callgrind dump: the sum of the call counts on the
/// caller lines of `__rustc::__rust_alloc` in `callgrind_annotate --tree=caller`.
fn allocations_in(file: &Path) -> u64 {
    let out = Command::new("callgrind_annotate")
        .arg("--tree=caller")
        .arg(file)
        .output()
        .expect("callgrind_annotate");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut callers = 0u64;
    for line in text.lines() {
        if line.contains(")  *  ") {
            if line.contains(":__rustc::__rust_alloc [") {
                return callers;
            }
            callers = 0;
        } else if line.contains(")  < ")
            && let Some(count) = line
                .rsplit_once('(')
                .and_then(|(_, c)| c.split_once("x)"))
                .and_then(|(n, _)| n.replace(',', "").parse::<u64>().ok())
        {
            callers += count;
        } else if line.trim().is_empty() {
            callers = 0;
        }
    }
    0
}

/// `POST /auth/login` on the server at `base`.
fn login_request(client: &reqwest::Client, base: &str, a: &Account) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/auth/login"))
        // ciam's CSRF defence checks Origin on unsafe methods; the peer ignores it.
        .header("Origin", base)
        .json(&serde_json::json!({ "email": a.email, "password": a.password }))
}

/// Signs in and returns the `Cookie` header value the response set.
async fn sign_in_cookie(server: &Server, a: &Account) -> Result<String, String> {
    let client = reqwest::Client::new();
    let r = login_request(&client, &server.base, a)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("{} sign-in: {}", server.name, r.status()));
    }
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect();
    if cookies.is_empty() {
        return Err(format!("{} set no cookie", server.name));
    }
    let cookie = cookies.join("; ");
    let me = client
        .get(server.url("/auth/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !me.status().is_success() {
        return Err(format!(
            "{} /auth/me with the cookie: {}",
            server.name,
            me.status()
        ));
    }
    Ok(cookie)
}

// ---------------------------------------------------------------------------------------------
// wrk

#[derive(Debug, Clone, Default)]
struct Wrk {
    rps: f64,
    p50: Duration,
    p99: Duration,
    non_2xx: u64,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, scale) = if let Some(v) = t.strip_suffix("us") {
        (v, 1e-6)
    } else if let Some(v) = t.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('m') {
        (v, 60.0)
    } else {
        return None;
    };
    num.parse::<f64>()
        .ok()
        .map(|n| Duration::from_secs_f64(n * scale))
}

fn wrk(url: &str, cookie: Option<&str>, secs: u64) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    let out = cmd
        .arg(url)
        .stderr(Stdio::inherit())
        .output()
        .expect("wrk (installed by benches/run.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = Wrk::default();
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("50%") {
            w.p50 = parse_duration(v).unwrap_or_default();
        } else if let Some(v) = l.strip_prefix("99%") {
            w.p99 = parse_duration(v).unwrap_or_default();
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            w.non_2xx = v.trim().parse().unwrap_or(u64::MAX);
        }
    }
    eprintln!(
        "   {url}: {:.0} req/s, p50 {:?}, p99 {:?}{}",
        w.rps,
        w.p50,
        w.p99,
        if w.non_2xx > 0 {
            format!(", {} non-2xx (INVALID)", w.non_2xx)
        } else {
            String::new()
        }
    );
    w
}

// ---------------------------------------------------------------------------------------------
// 4. Storm

#[derive(Debug, Default)]
struct Storm {
    offered: usize,
    secs: f64,
    ok: Vec<Duration>,
    busy: Vec<Duration>,
    busy_with_retry_after: usize,
    other: BTreeMap<String, usize>,
    /// Most sign-ins the open loop had waiting for an answer at once.
    max_in_flight: usize,
}

impl Storm {
    fn served_per_sec(&self) -> f64 {
        self.ok.len() as f64 / self.secs
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

enum Answer {
    Ok(Duration),
    /// 503 with the time it took and its `Retry-After`, if any.
    Busy(Duration, Option<Duration>),
    Other(String),
}

async fn one_sign_in(client: &reqwest::Client, base: &str, a: &Account) -> Answer {
    let t = Instant::now();
    match login_request(client, base, a).send().await {
        Ok(r) => {
            let status = r.status();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let _ = r.bytes().await;
            let took = t.elapsed();
            match status.as_u16() {
                200 => Answer::Ok(took),
                503 => Answer::Busy(took, retry_after),
                s => Answer::Other(s.to_string()),
            }
        }
        Err(e) => Answer::Other(if e.is_connect() {
            "connect error".into()
        } else {
            "request error".into()
        }),
    }
}

fn record(storm: &mut Storm, a: Answer) {
    match a {
        Answer::Ok(d) => storm.ok.push(d),
        Answer::Busy(d, ra) => {
            storm.busy.push(d);
            storm.busy_with_retry_after += usize::from(ra.is_some());
        }
        Answer::Other(s) => *storm.other.entry(s).or_default() += 1,
    }
}

/// Keep-alive connections opened before the open-loop storm.
const WARM_CONNECTIONS: usize = 128;

/// Sign-ins offered at `rate` per second whatever the answers (open loop).
async fn open_loop_storm(server: &Server, accounts: &[Account], rate: f64, dur: Duration) -> Storm {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("client");
    // Warm the pool first: the sign-ins then go over open keep-alive connections, as wrk's do
    // and as a load balancer's would, so the latencies are the server's answer and not TCP
    // set-up on a saturated loopback (a fresh connection per burst cost tens of ms here).
    let warm: Vec<_> = (0..WARM_CONNECTIONS)
        .map(|_| {
            let c = client.clone();
            let url = format!("{}/healthz", server.base);
            tokio::spawn(async move {
                if let Ok(r) = c.get(url).send().await {
                    let _ = r.bytes().await;
                }
            })
        })
        .collect();
    for w in warm {
        let _ = w.await;
    }
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0usize;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    while start.elapsed() < dur {
        ticker.tick().await;
        let a = accounts[n % accounts.len()].clone();
        let c = client.clone();
        let base = server.base.clone();
        let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            max_in_flight.fetch_max(now, Ordering::Relaxed);
            let answer = one_sign_in(&c, &base, &a).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            answer
        }));
        n += 1;
    }
    let mut storm = Storm {
        offered: n,
        ..Storm::default()
    };
    for t in tasks {
        record(&mut storm, t.await.expect("join"));
    }
    storm.secs = start.elapsed().as_secs_f64();
    storm.max_in_flight = max_in_flight.load(Ordering::Relaxed);
    storm
}

/// What the sampler saw of the quickstart during the open-loop storm.
#[derive(Default)]
struct Samples {
    /// Largest resident set (`VmRSS`), KiB, and when it was seen (s into the storm).
    max_rss_kib: u64,
    max_rss_at: f64,
    /// Most open file descriptors (mostly client connections).
    max_fds: usize,
    /// Threads at the end.
    threads: u64,
}

/// A number field of `/proc/<pid>/status` (`VmHWM:`, `Threads:`...), without its unit.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples the process every 50 ms while `on` is set.
fn sample_process(pid: u32, on: &AtomicBool) -> Samples {
    let start = Instant::now();
    let mut s = Samples::default();
    let field = |status: &str, name: &str| status_field(status, name).unwrap_or(0);
    while on.load(Ordering::Relaxed) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let rss = field(&status, "VmRSS:");
            if rss > s.max_rss_kib {
                s.max_rss_kib = rss;
                s.max_rss_at = start.elapsed().as_secs_f64();
            }
            s.threads = field(&status, "Threads:");
        }
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            s.max_fds = s.max_fds.max(dir.count());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

/// `CONNECTIONS` clients signing in one after another. A 503 is followed by the wait its
/// `Retry-After` asks for (RFC 9110 §10.2.3), as a well-behaved client does; the peer never
/// answers 503, so its clients never wait.
async fn closed_loop(server: &Server, accounts: &[Account], dur: Duration) -> Storm {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let accounts = Arc::new(accounts.to_vec());
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let stop = Arc::clone(&stop);
            let accounts = Arc::clone(&accounts);
            let base = server.base.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut storm = Storm::default();
                let mut k = i;
                while !stop.load(Ordering::Relaxed) {
                    let a = &accounts[k % accounts.len()];
                    k += CONNECTIONS;
                    let answer = one_sign_in(&client, &base, a).await;
                    let wait = match &answer {
                        Answer::Busy(_, Some(after)) => Some(*after),
                        Answer::Busy(_, None) => Some(Duration::from_secs(1)),
                        _ => None,
                    };
                    record(&mut storm, answer);
                    storm.offered += 1;
                    if let Some(wait) = wait {
                        tokio::time::sleep(wait).await;
                    }
                }
                storm
            })
        })
        .collect();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Storm::default();
    for t in tasks {
        let s = t.await.expect("join");
        all.offered += s.offered;
        all.ok.extend(s.ok);
        all.busy.extend(s.busy);
        all.busy_with_retry_after += s.busy_with_retry_after;
        for (k, v) in s.other {
            *all.other.entry(k).or_default() += v;
        }
    }
    all.secs = start.elapsed().as_secs_f64();
    all
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Default)]
struct Report {
    md: String,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl Report {
    fn hashing(&mut self, h: &BTreeMap<(usize, Impl), f64>) {
        let m = &mut self.md;
        writeln!(
            m,
            "### 1. Sign-in hashing (argon2id m=19456 KiB, t=2, p=1; hashes/s)\n"
        )
        .ok();
        writeln!(
            m,
            "| threads | ciam pool (nice 10, the default) | ciam pool at nice 0 | argon2 crate, reused memory | C reference (libargon2) | ciam / fastest (default; nice 0) | target >= 0.95 |"
        )
        .ok();
        writeln!(m, "|---|---|---|---|---|---|---|").ok();
        for t in 1..=cores() {
            let get = |i| h.get(&(t, i)).copied().unwrap_or(0.0);
            let (c, c0, r, x) = (
                get(Impl::CiamPool),
                get(Impl::CiamPoolNice0),
                get(Impl::RawReused),
                get(Impl::CRef),
            );
            let fastest = r.max(x).max(f64::MIN_POSITIVE);
            let (ratio, ratio0) = (c / fastest, c0 / fastest);
            writeln!(
                m,
                "| {t} | {c:.1} | {c0:.1} | {r:.1} | {x:.1} | {ratio:.3}; {ratio0:.3} | {} |",
                verdict(ratio >= 0.95)
            )
            .ok();
        }
        m.push('\n');
    }

    fn routes(&mut self, runs: &BTreeMap<&str, Vec<Wrk>>) {
        let avg = |k: &str| -> Wrk {
            let v = runs.get(k).cloned().unwrap_or_default();
            let n = v.len().max(1) as f64;
            Wrk {
                rps: v.iter().map(|w| w.rps).sum::<f64>() / n,
                p50: v.iter().map(|w| w.p50).max().unwrap_or_default(),
                p99: v.iter().map(|w| w.p99).max().unwrap_or_default(),
                non_2xx: v.iter().map(|w| w.non_2xx).sum(),
            }
        };
        let m = &mut self.md;
        writeln!(
            m,
            "### 2-3. Protected route (wrk, {CONNECTIONS} connections; mean req/s of two rounds, worst p50/p99)\n"
        )
        .ok();
        writeln!(m, "| route | req/s | p50 | p99 | valid |").ok();
        writeln!(m, "|---|---|---|---|---|").ok();
        for k in [
            "ciam /healthz",
            "ciam /auth/me",
            "peer /healthz",
            "peer /auth/me",
            "peer /auth/whoami",
        ] {
            let w = avg(k);
            writeln!(
                m,
                "| {k} | {:.0} | {} | {} | {} |",
                w.rps,
                ms(w.p50),
                ms(w.p99),
                if w.non_2xx == 0 {
                    "yes"
                } else {
                    "NO (non-2xx answers)"
                }
            )
            .ok();
        }
        let (health, me, peer) = (
            avg("ciam /healthz"),
            avg("ciam /auth/me"),
            avg("peer /auth/me"),
        );
        let own = me.rps / health.rps.max(f64::MIN_POSITIVE);
        let vs_peer = me.rps / peer.rps.max(f64::MIN_POSITIVE);
        writeln!(m).ok();
        writeln!(m, "| ratio | value | target | |").ok();
        writeln!(m, "|---|---|---|---|").ok();
        writeln!(
            m,
            "| ciam /auth/me / ciam /healthz | {own:.3} | >= 0.85 | {} |",
            verdict(own >= 0.85)
        )
        .ok();
        writeln!(
            m,
            "| ciam /auth/me / peer /auth/me (req/s) | {vs_peer:.2}x | >= 1.5x | {} |",
            verdict(vs_peer >= 1.5)
        )
        .ok();
        writeln!(
            m,
            "| p99: ciam {} vs peer {} | | no worse | {} |\n",
            ms(me.p99),
            ms(peer.p99),
            verdict(me.p99 <= peer.p99)
        )
        .ok();
    }

    fn storm(
        &mut self,
        open: &Storm,
        route: &Wrk,
        ciam: &Storm,
        peer: &Storm,
        capacity: f64,
        peak_kib: Option<u64>,
    ) {
        let m = &mut self.md;
        let mut busy = open.busy.clone();
        let busy_p99 = percentile(&mut busy, 0.99);
        let mut ok = open.ok.clone();
        let ok_p99 = percentile(&mut ok, 0.99);
        writeln!(m, "### 4. Sign-in storm\n").ok();
        writeln!(
            m,
            "Open loop: {} sign-ins offered in {:.1} s ({:.0}/s, 10x the measured {:.1} hashes/s), with wrk on `/auth/me` meanwhile.\n",
            open.offered,
            open.secs,
            open.offered as f64 / open.secs,
            capacity
        )
        .ok();
        writeln!(m, "| measure | value | target | |").ok();
        writeln!(m, "|---|---|---|---|").ok();
        writeln!(
            m,
            "| protected route during the storm | {:.0} req/s, p99 {}{} | p99 < 10 ms | {} |",
            route.rps,
            ms(route.p99),
            if route.non_2xx > 0 {
                " (non-2xx seen: INVALID)"
            } else {
                ""
            },
            verdict(route.p99 < Duration::from_millis(10) && route.non_2xx == 0)
        )
        .ok();
        writeln!(
            m,
            "| sign-ins served | {} ({:.1}/s), p99 {} | | |",
            open.ok.len(),
            open.served_per_sec(),
            ms(ok_p99)
        )
        .ok();
        writeln!(
            m,
            "| sign-ins answered 503 | {} ({} with Retry-After), p99 {} | p99 < 10 ms, all with Retry-After | {} |",
            open.busy.len(),
            open.busy_with_retry_after,
            ms(busy_p99),
            verdict(
                busy_p99 < Duration::from_millis(10)
                    && open.busy_with_retry_after == open.busy.len()
            )
        )
        .ok();
        if !open.other.is_empty() {
            writeln!(
                m,
                "| other answers (INVALID) | {:?} | none | MISSED |",
                open.other
            )
            .ok();
        }
        let mut c_ok = ciam.ok.clone();
        let mut p_ok = peer.ok.clone();
        let (c99, p99) = (percentile(&mut c_ok, 0.99), percentile(&mut p_ok, 0.99));
        let ratio = ciam.served_per_sec() / peer.served_per_sec().max(f64::MIN_POSITIVE);
        writeln!(
            m,
            "| {CONNECTIONS} closed-loop clients (honouring Retry-After): ciam | {:.1} served/s, p99 {}, {} answered 503{} | | |",
            ciam.served_per_sec(),
            ms(c99),
            ciam.busy.len(),
            if ciam.other.is_empty() { String::new() } else { format!(", other {:?} (INVALID)", ciam.other) }
        )
        .ok();
        writeln!(
            m,
            "| {CONNECTIONS} closed-loop clients: peer | {:.1} served/s, p99 {}{} | | |",
            peer.served_per_sec(),
            ms(p99),
            if peer.other.is_empty() {
                String::new()
            } else {
                format!(", other {:?} (INVALID)", peer.other)
            }
        )
        .ok();
        writeln!(
            m,
            "| served sign-ins, ciam / peer | {ratio:.2}x | >= 5x | {} |",
            verdict(ratio >= 5.0)
        )
        .ok();
        let workers = cores() as u64;
        let limit_kib = workers * 19_456 + 64 * 1024;
        match peak_kib {
            Some(k) => writeln!(
                m,
                "| quickstart peak memory (VmHWM) | {:.1} MiB | <= {workers} x 19 MiB + 64 MiB = {:.1} MiB | {} |",
                k as f64 / 1024.0,
                limit_kib as f64 / 1024.0,
                verdict(k <= limit_kib)
            )
            .ok(),
            None => writeln!(m, "| quickstart peak memory | not readable | | |").ok(),
        };
        m.push('\n');
    }

    fn storm_samples(&mut self, open: &Storm, samples: &Samples) {
        writeln!(
            self.md,
            "Open loop, sampled every 50 ms: at most {} sign-ins waiting for an answer at once; \
             the quickstart held at most {} file descriptors, its resident set peaked at {:.1} MiB \
             ({:.1} s into the storm), {} threads.\n",
            open.max_in_flight,
            samples.max_fds,
            samples.max_rss_kib as f64 / 1024.0,
            samples.max_rss_at,
            samples.threads
        )
        .ok();
    }

    fn instructions(&mut self, counted: &[(&str, &str, Counted)], failures: &[String]) {
        let m = &mut self.md;
        writeln!(
            m,
            "### Instructions per request (callgrind; {COUNTED_REQUESTS} sequential requests on one connection)\n\n\
             The server's own user-space work per request (the kernel's and the client's are not \
             counted), the same on a busy machine as on an idle one.\n\n\
             | server | route | instructions | allocations |\n|---|---|---|---|"
        )
        .unwrap();
        for (which, path, c) in counted {
            writeln!(
                m,
                "| {which} | {path} | {} | {} |",
                c.instructions, c.allocations
            )
            .unwrap();
        }
        for f in failures {
            writeln!(m, "| FAILED | {f} | | |").unwrap();
        }
        let get = |w: &str, p: &str| {
            counted
                .iter()
                .find(|(a, b, _)| *a == w && *b == p)
                .map(|(_, _, c)| c.instructions as f64)
        };
        if let (Some(me), Some(health), Some(peer_me)) = (
            get("ciam", "/auth/me"),
            get("ciam", "/healthz"),
            get("peer", "/auth/me"),
        ) {
            writeln!(
                m,
                "\nciam `/auth/me` costs {:.2}x its `/healthz` and {:.2}x the peer's `/auth/me` in \
                 instructions.\n",
                me / health,
                me / peer_me
            )
            .unwrap();
        }
    }

    fn finish(self, took: Duration, s: &Settings) {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines().find_map(|l| {
                    l.strip_prefix("model name")
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                })
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let head = format!(
            "## Harness run ({} cores, {cpu}; {} s per measurement; whole run {:.0} s)\n\n",
            cores(),
            s.seconds,
            took.as_secs_f64()
        );
        let text = head + &self.md;
        println!("{text}");
        std::fs::write(s.out.join("results.md"), &text).expect("write results.md");
        eprintln!("written to {}", s.out.join("results.md").display());
    }
}
