//! A real PostgreSQL for one test: `initdb` once per test process into a template directory,
//! then per test a copy of it served by our own `postgres` on a free loopback port, stopped
//! and deleted on drop.
//!
//! Never skipped silently: without the binaries the tests fail and say how to fix it, unless
//! `APIAUTH_SKIP_POSTGRES=1` opts out explicitly (then each test prints that it skipped).
//! Binaries: `APIAUTH_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
//! Run as root, initdb and postgres run as the `postgres` user (they refuse root).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const START_DEADLINE: Duration = Duration::from_secs(30);

/// Whether the Postgres tests were opted out of; prints why when they were.
pub fn skipped(test: &str) -> bool {
    let skip = std::env::var("APIAUTH_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("SKIPPED {test}: APIAUTH_SKIP_POSTGRES=1");
    }
    skip
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("APIAUTH_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = Command::new("pg_config").arg("--bindir").output();
    match on_path {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "PostgreSQL is not installed: these tests start a real server and never skip \
             silently. Install it (`apt-get install postgresql`; .ci/run does this), point \
             APIAUTH_PG_BIN at its bin directory, or opt out with APIAUTH_SKIP_POSTGRES=1"
        ),
    }
}

/// `(uid, gid)` to run the server as: ours, or `postgres`'s when we are root.
fn run_as() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let o = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    let uid = id(&["-u", "postgres"])
        .expect("running as root, and there is no `postgres` user to run the server as");
    let gid = id(&["-g", "postgres"]).expect("gid of postgres");
    Some((uid, gid))
}

fn command(program: PathBuf) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = run_as() {
        c.uid(uid).gid(gid);
    }
    c.stdin(Stdio::null());
    c
}

fn chown(path: &Path) {
    if let Some((uid, gid)) = run_as() {
        let ok = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {}", path.display());
    }
}

fn unique_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "apiauth-pg-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A cluster made once and copied per test (faster than `initdb` per test); deleted when the
/// last server of the process stops, made again if another starts later.
static TEMPLATE: Mutex<(Option<PathBuf>, usize)> = Mutex::new((None, 0));

fn copy_template(to: &Path) {
    let mut t = TEMPLATE.lock().unwrap_or_else(|p| p.into_inner());
    if t.0.is_none() {
        t.0 = Some(init_template());
    }
    let Some(template) = &t.0 else { unreachable!() };
    let copied = Command::new("cp")
        .arg("-a")
        .arg(template.join("data"))
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(copied, "copy the template cluster");
    t.1 += 1;
}

fn release_template() {
    let mut t = TEMPLATE.lock().unwrap_or_else(|p| p.into_inner());
    t.1 = t.1.saturating_sub(1);
    if t.1 == 0
        && let Some(dir) = t.0.take()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn init_template() -> PathBuf {
    let root = unique_dir("template");
    chown(&root);
    let out = command(bin_dir().join("initdb"))
        .arg("-D")
        .arg(root.join("data"))
        .args(["-U", "apiauth", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().expect("local addr").port()
}

/// One PostgreSQL server of our own.
pub struct TestPostgres {
    child: Option<Child>,
    root: PathBuf,
    port: u16,
}

impl TestPostgres {
    /// A fresh server with an empty database `apiauth`.
    pub fn start() -> Self {
        let root = unique_dir("run");
        copy_template(&root.join("data"));
        chown(&root);
        let mut pg = Self {
            child: None,
            root,
            port: 0,
        };
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            match pg.spawn() {
                Ok(()) => return pg,
                Err(e) => last = e,
            }
        }
        panic!("could not start postgres: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.root.join("postgres.log")).map_err(|e| e.to_string())?;
        let mut child = command(bin_dir().join("postgres"))
            .arg("-D")
            .arg(self.root.join("data"))
            .arg("-k")
            .arg(&self.root)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            // No fsync: a throwaway cluster. Commits still reach the kernel before they are
            // acknowledged, so a killed server keeps them (the fault tests rely on that).
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=50"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn postgres: {e}"))?;
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "postgres on port {} exited ({status}): {}",
                    self.port,
                    std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
                ));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.ready() {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "postgres on port {} did not become ready",
            self.port
        ))
    }

    fn ready(&self) -> bool {
        Command::new(bin_dir().join("pg_isready"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "apiauth",
            ])
            .args(["-d", "postgres"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The URL of the `postgres` database, which every cluster has.
    pub fn url(&self) -> String {
        format!("postgres://apiauth@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (SIGKILL to the postmaster; its backends follow).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            // Backends notice the postmaster's death; give them a moment to go.
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.root.join("data").join("postmaster.pid"));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("restart postgres: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// SIGSTOP / SIGCONT of the postmaster and every backend (the server freezes).
    pub fn signal_all(&self, sig: &str) {
        let Some(c) = &self.child else { return };
        let pid = c.id().to_string();
        let _ = Command::new("pkill").args([sig, "-P", &pid]).status();
        let _ = Command::new("kill").args([sig, &pid]).status();
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.signal_all("-CONT");
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
        release_template();
    }
}
