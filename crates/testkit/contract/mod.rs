//! Store contracts shared by every backend's tests: memory, Redis and SQL run the same
//! assertions. Included with `#[path = "…/testkit/contract/mod.rs"] mod contract;`, so the
//! including test crate needs the store crates (api-key, basic, oauth2, quota), `tokio`,
//! `async-trait` and `serde_json` as dev-dependencies.
#![allow(dead_code)]

pub mod api_keys;
pub mod clients;
pub mod credentials;
pub mod history;
pub mod revocation;
pub mod time;
pub mod usage;
