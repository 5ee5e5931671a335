//! sqlx's `Any` driver list is process-wide and set once. An application that installed its
//! own set before connecting keeps it: connecting neither panics nor replaces it, and a URL
//! whose driver the application left out is a connect error. Its own test binary, since the
//! list cannot be reset.

mod common;

use apiauth_core::clock::ManualClock;
use apiauth_sql::SqlDatabase;
use common::TempSqlite;

#[tokio::test]
async fn an_application_driver_set_installed_first_is_kept_and_never_a_panic() {
    // The application wants SQLite only.
    sqlx::any::install_drivers(&[sqlx::sqlite::any::DRIVER]).expect("the first installation");

    let file = TempSqlite::new();
    let db = common::connect(&file.url(), &ManualClock::new(std::time::UNIX_EPOCH)).await;
    assert_eq!(db.dialect().name(), "SQLite");

    // PostgreSQL is not in the application's set: an error, not a panic, and no network.
    let err = SqlDatabase::builder("postgres://user@127.0.0.1:1/none")
        .connect()
        .await
        .expect_err("no PostgreSQL driver installed");
    assert!(!err.to_string().is_empty());
}
