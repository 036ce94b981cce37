//! Throwaway PostgreSQL and Redis servers for tests that stop and restart their store.
//!
//! Each server gets a free port and (for PostgreSQL) a fresh data directory, so test runs in
//! parallel never share one. Every wait is bounded: a server that does not come up within
//! [`READY_WITHIN`] fails the test instead of hanging it. Dropping a server stops it (and
//! removes its data directory), also when the test panics.
//!
//! Needs the Debian PostgreSQL binaries (`/usr/lib/postgresql/<major>/bin`) and `redis-server`
//! on the `PATH`. When the tests run as root, PostgreSQL runs as the `postgres` user (initdb
//! refuses root) through `runuser`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest a server may take to start or stop.
pub(crate) const READY_WITHIN: Duration = Duration::from_secs(20);

/// A port nobody listens on right now (the OS picks it; a small race remains, so the
/// servers retry with another port when binding fails).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Whether something accepts TCP connections on `port`.
fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Runs `cmd` to completion, failing the test with its output when it does not succeed.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest installed PostgreSQL's `bin` directory.
fn postgres_bin() -> PathBuf {
    let mut dirs: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (no /usr/lib/postgresql)")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e
                .file_name()
                .to_string_lossy()
                .split('.')
                .map(|p| p.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|(_, bin)| bin)
        .expect("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
}

/// A PostgreSQL cluster of its own, on a free port, trusting every local connection.
pub(crate) struct ThrowawayPostgres {
    bin: PathBuf,
    /// Holds the data directory; removed on drop.
    root: Option<tempfile::TempDir>,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl ThrowawayPostgres {
    /// Creates a cluster in a fresh directory and starts it.
    pub(crate) fn start() -> Self {
        let bin = postgres_bin();
        // /dev/shm makes initdb about twice as fast; any world-traversable place works.
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let root = tempfile::Builder::new()
            .prefix("ciam-outage-pg-")
            .tempdir_in(&base)
            .expect("create a temporary directory");
        // The server user must be able to traverse to its data directory.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temporary directory");
        let data = root.path().join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown").arg("postgres:postgres").arg(&data),
                "chown the data directory",
            );
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .expect("chmod the data directory");
        let mut pg = Self {
            bin,
            root: Some(root),
            data,
            port: 0,
            as_postgres,
            running: false,
        };
        pg.pg(
            "initdb",
            &[
                "-D",
                &pg.data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        // Bind races with other processes are retried on another port.
        for attempt in 1..=3 {
            pg.port = free_port();
            let conf = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                 max_connections = 40\nshared_buffers = 16MB\n",
                pg.port,
                pg.data.display()
            );
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(pg.data.join("postgresql.conf"))
                .expect("open postgresql.conf");
            file.write_all(conf.as_bytes())
                .expect("write postgresql.conf");
            match pg.try_start() {
                Ok(()) => return pg,
                Err(e) if attempt < 3 => eprintln!("postgres did not start ({e}); retrying"),
                Err(e) => panic!("postgres did not start: {e}"),
            }
        }
        unreachable!()
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: open connections are ended) and waits until it is gone.
    pub(crate) fn stop(&mut self) {
        if !self.running {
            return;
        }
        let t = READY_WITHIN.as_secs().to_string();
        let data = self.data.to_string_lossy().into_owned();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", &t, "stop"],
        );
        self.running = false;
        assert!(!accepts(self.port), "postgres still accepts connections");
    }

    /// Starts the stopped server again, with the same data and port.
    pub(crate) fn start_again(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("postgres did not restart: {e}");
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let t = READY_WITHIN.as_secs().to_string();
        let data = self.data.to_string_lossy().into_owned();
        let log = self.data.join("server.log").to_string_lossy().into_owned();
        let out = self
            .command("pg_ctl")
            .args(["-D", &data, "-l", &log, "-w", "-t", &t, "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "{}: {}{}\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.running = true;
        let deadline = Instant::now() + READY_WITHIN;
        while !accepts(self.port) {
            if Instant::now() > deadline {
                return Err(format!("port {} not accepting", self.port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A PostgreSQL program, run as `postgres` when the test runs as root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn pg(&self, program: &str, args: &[&str]) {
        run(self.command(program).args(args), program);
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data.to_string_lossy().into_owned();
            // Immediate: nothing in a throwaway cluster needs a clean shutdown.
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "-w", "-t", "20", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(root) = self.root.take() {
            let _ = root.close();
        }
    }
}

/// A Redis server of its own, on a free port, without persistence (a restart loses the data).
pub(crate) struct ThrowawayRedis {
    port: u16,
    child: Option<Child>,
}

impl ThrowawayRedis {
    /// Starts a server and waits until it answers `PING`.
    pub(crate) fn start() -> Self {
        let mut redis = Self {
            port: 0,
            child: None,
        };
        for attempt in 1..=3 {
            redis.port = free_port();
            match redis.try_start() {
                Ok(()) => return redis,
                Err(e) if attempt < 3 => eprintln!("redis did not start ({e}); retrying"),
                Err(e) => panic!("redis did not start: {e}"),
            }
        }
        unreachable!()
    }

    /// `redis://127.0.0.1:<port>/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and waits for it to exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(!accepts(self.port), "redis still accepts connections");
    }

    /// Starts the stopped server again on the same port (empty: nothing was persisted).
    pub(crate) fn start_again(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("redis did not restart: {e}");
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let mut child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                &std::env::temp_dir().to_string_lossy(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            if ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no PONG on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a Redis server on `port` answers `PING`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
