//! Starts the example SaaS API as a separate process on a free loopback port and reads the
//! demo credentials it writes.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Saas {
    child: Child,
    pub base: String,
    pub creds: serde_json::Value,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl Drop for Saas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "apiauth-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ rand_u64()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    u128::from(RandomState::new().hash_one(std::thread::current().id()))
}

/// The example binary that `cargo test` builds next to the test binaries.
pub fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/examples/saas
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = profile_dir
        .join("examples")
        .join(format!("saas{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "example binary missing at {}; run via cargo test",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Saas {
    /// Starts the example with extra arguments and waits until `/healthz` answers.
    pub async fn start(extra: &[&str]) -> Saas {
        Self::start_with_env(extra, &[]).await
    }

    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Saas {
        Self::start_full(extra, env, None, None).await
    }

    /// Starts the example as a user would: in working directory `cwd`, with its default
    /// stores (no in-memory override), its output appended to `log`.
    pub async fn start_in(cwd: &std::path::Path, extra: &[&str], log: &std::path::Path) -> Saas {
        Self::start_full(extra, &[("RUST_LOG", "info")], Some(log), Some(cwd)).await
    }

    /// Like [`start`], with the process's stdout and stderr appended to `log`.
    pub async fn start_logging(
        extra: &[&str],
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Saas {
        Self::start_full(extra, env, Some(log), None).await
    }

    async fn start_full(
        extra: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
        cwd: Option<&std::path::Path>,
    ) -> Saas {
        let dir = TempDir::new("saas");
        let creds_path = dir.0.join("creds.json");
        let port = free_port();
        let mut cmd = Command::new(example_binary());
        cmd.arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials-out")
            .arg(&creds_path)
            .args(extra)
            .env_remove("REDIS_URL")
            .env_remove("SAAS_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        // Each test its own state: in memory unless it names a database (the default,
        // target/saas.db, would be shared by every test).
        match cwd {
            Some(dir) => {
                cmd.current_dir(dir);
            }
            None if !extra.contains(&"--database-url") => {
                cmd.env("SAAS_IN_MEMORY", "true");
            }
            None => {}
        }
        match log {
            Some(path) => {
                let f = std::fs::File::create(path).unwrap();
                cmd.stdout(f.try_clone().unwrap()).stderr(f);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start example");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // --dev-tls serves a self-signed certificate for localhost.
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let creds = loop {
            if let Ok(bytes) = std::fs::read(&creds_path)
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
            {
                break v;
            }
            assert!(
                Instant::now() < deadline,
                "example did not write its credentials"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The listening address, whatever public URL the credentials name.
        let scheme = if creds["base_url"].as_str().unwrap().starts_with("https") {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://localhost:{port}");
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "example did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Saas {
            child,
            base,
            creds,
            http,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
        }
        self.child.wait().unwrap()
    }
}

/// A `redis-server` on a free loopback port for the duration of a test, or `REDIS_URL`.
pub struct Redis {
    child: Option<Child>,
    pub url: String,
    _dir: TempDir,
}

impl Redis {
    pub async fn start() -> Redis {
        let dir = TempDir::new("redis");
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Redis {
                child: None,
                url,
                _dir: dir,
            };
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for these tests (CI installs it); or set REDIS_URL");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Redis {
            child: Some(child),
            url: format!("redis://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
