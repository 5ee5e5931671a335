//! Test support: a real `redis-server` on a free loopback port, or the one at `REDIS_URL`.
//!
//! These tests never skip. Without `redis-server` on `PATH` (or `REDIS_SERVER_BIN`) and without
//! `REDIS_URL` they fail and say how to fix it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apiauth_redis::RedisBackend;

const START_DEADLINE: Duration = Duration::from_secs(15);

/// A Redis server for one test: our own child process (killed on drop), or `REDIS_URL`.
pub struct TestRedis {
    child: Option<Child>,
    port: u16,
    url: String,
}

fn binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().expect("local addr").port()
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl TestRedis {
    /// `REDIS_URL` when set, else a fresh server of our own.
    pub fn new() -> Self {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => Self {
                child: None,
                port: 0,
                url,
            },
            _ => Self::own(),
        }
    }

    /// Always a server of our own (the fault tests kill and restart it).
    pub fn own() -> Self {
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(port) {
                Ok(child) => {
                    return Self {
                        child: Some(child),
                        port,
                        url: format!("redis://127.0.0.1:{port}/"),
                    };
                }
                Err(e) => last_err = e,
            }
        }
        panic!("could not start redis-server: {last_err}");
    }

    /// The URL of the server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A backend on this server under a namespace no other test uses.
    pub fn backend(&self, timeout: Duration) -> RedisBackend {
        self.backend_in(&unique_namespace(), timeout)
    }

    /// A backend on this server under `namespace`.
    pub fn backend_in(&self, namespace: &str, timeout: Duration) -> RedisBackend {
        RedisBackend::builder(self.url.clone())
            .namespace(namespace)
            .command_timeout(timeout)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build()
            .expect("backend")
    }

    /// Kills the server (SIGKILL): connections drop at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        assert!(self.port != 0, "restart needs a server of our own");
        self.kill();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match spawn(self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("restart redis-server: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("a server of our own").id();
        let ok = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} {pid} failed");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A frozen server ignores SIGTERM but not SIGKILL; thaw anyway for tidiness.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(c.id().to_string())
                .status();
        }
        self.kill();
    }
}

fn spawn(port: u16) -> Result<Child, String> {
    let mut child = Command::new(binary())
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--protected-mode", "yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                panic!(
                    "redis-server is not installed and REDIS_URL is not set. These tests need a \
                     real Redis and never skip: install it (`apt-get install redis-server`; \
                     .ci/run does this) or set REDIS_URL=redis://host:port/"
                )
            }
            format!("spawn {}: {e}", binary())
        })?;
    let deadline = Instant::now() + START_DEADLINE;
    while Instant::now() < deadline {
        if answers_ping(port) {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server on port {port} exited: {status}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("redis-server on port {port} did not answer PING"))
}

/// A namespace unique to this process and call.
pub fn unique_namespace() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// A plain connection for inspecting what the stores wrote.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// Every key under `namespace` with its PTTL.
pub async fn keys_with_ttl(url: &str, namespace: &str) -> Vec<(String, i64)> {
    let mut c = raw(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query_async(&mut c)
        .await
        .expect("KEYS");
    let mut out = Vec::new();
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut c)
            .await
            .expect("PTTL");
        out.push((k, ttl));
    }
    out.sort();
    out
}

pub mod app;
