//! Test support: databases on SQLite temp files and on a real PostgreSQL.
#![allow(dead_code)]

pub mod postgres;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use apiauth_core::clock::ManualClock;
use apiauth_sql::SqlDatabase;

/// A SQLite file in its own temp directory, deleted on drop.
pub struct TempSqlite {
    dir: PathBuf,
}

impl TempSqlite {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "apiauth-sqlite-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("test.db")
    }

    pub fn url(&self) -> String {
        format!("sqlite:{}", self.path().display())
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connected, migrated database on `url` whose stores read `clock`.
pub async fn connect(url: &str, clock: &ManualClock) -> SqlDatabase {
    SqlDatabase::builder(url)
        .clock(Arc::new(clock.clone()))
        .command_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect and migrate")
}
