//! The shared store contracts (`crates/testkit/contract`), run against the in-memory stores,
//! SQLite files and a real PostgreSQL started by the test. The SQL stores read a
//! `ManualClock`, so nothing here sleeps.

mod common;
#[path = "../../testkit/contract/mod.rs"]
mod contract;

use std::sync::Arc;

use apiauth_basic::CredentialRecord;
use apiauth_core::clock::ManualClock;
use apiauth_oauth2::RegisteredClient;
use apiauth_sql::{SqlClientRegistry, SqlCredentialStore, SqlDatabase};
use common::TempSqlite;
use common::postgres::{TestPostgres, skipped};
use contract::time::Time;

#[async_trait::async_trait]
impl contract::clients::Manage for SqlClientRegistry {
    async fn insert(&self, c: RegisteredClient) {
        SqlClientRegistry::insert(self, &c).await.unwrap()
    }
    async fn suspend(&self, id: &str, s: bool) -> bool {
        self.set_suspended(id, s).await.unwrap()
    }
    async fn remove(&self, id: &str) -> bool {
        SqlClientRegistry::remove(self, id).await.unwrap()
    }
}

#[async_trait::async_trait]
impl contract::credentials::Manage for SqlCredentialStore {
    async fn insert(&self, id: &str, r: CredentialRecord) {
        SqlCredentialStore::insert(self, id, &r).await.unwrap()
    }
    async fn set_hash(&self, id: &str, phc: &str) -> bool {
        self.set_password_hash(id, phc).await.unwrap()
    }
    async fn remove(&self, id: &str) -> bool {
        SqlCredentialStore::remove(self, id).await.unwrap()
    }
}

/// Runs every contract on one database.
async fn revocation(db: SqlDatabase, clock: ManualClock) {
    contract::revocation::revocation_contract(Arc::new(db.revocation_list()), Time::Manual(clock))
        .await;
}
async fn cached_revocation(db: SqlDatabase, clock: ManualClock) {
    contract::revocation::revocation_contract(
        Arc::new(db.cached_revocation_list()),
        Time::Manual(clock),
    )
    .await;
}
async fn cached_api_keys(db: SqlDatabase, _: ManualClock) {
    contract::api_keys::api_key_store_contract(Arc::new(db.cached_api_key_store())).await;
}
async fn api_keys(db: SqlDatabase, _: ManualClock) {
    contract::api_keys::api_key_store_contract(Arc::new(db.api_key_store())).await;
}
async fn credentials(db: SqlDatabase, _: ManualClock) {
    contract::credentials::credential_store_contract(db.credential_store()).await;
}
async fn clients(db: SqlDatabase, _: ManualClock) {
    contract::clients::client_registry_contract(db.client_registry()).await;
}
async fn usage_history(db: SqlDatabase, _: ManualClock) {
    contract::history::usage_history_contract(Arc::new(db.usage_history())).await;
}
async fn usage(db: SqlDatabase, _: ManualClock) {
    contract::usage::usage_meter_contract(Arc::new(db.usage_meter())).await;
}

/// One test per store and backend.
macro_rules! on_both {
    ($($store:ident),*) => {
        mod on_sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store() {
                    let file = TempSqlite::new();
                    let clock = ManualClock::starting_now();
                    let db = common::connect(&file.url(), &clock).await;
                    super::$store(db, clock).await;
                }
            )*
        }
        mod on_postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store() {
                    if skipped(stringify!($store)) {
                        return;
                    }
                    let pg = TestPostgres::start();
                    let clock = ManualClock::starting_now();
                    let db = common::connect(&pg.url(), &clock).await;
                    super::$store(db, clock).await;
                }
            )*
        }
    };
}

on_both!(
    revocation,
    api_keys,
    credentials,
    clients,
    usage,
    usage_history,
    cached_revocation,
    cached_api_keys
);

mod in_memory {
    use super::*;
    use apiauth_core::MemoryRevocationList;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revocation() {
        let clock = ManualClock::starting_now();
        let list = MemoryRevocationList::with_clock(Arc::new(clock.clone()));
        contract::revocation::revocation_contract(Arc::new(list), Time::Manual(clock)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_keys() {
        let store = apiauth_api_key::MemoryApiKeyStore::new();
        contract::api_keys::api_key_store_contract(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credentials() {
        let store = apiauth_basic::MemoryCredentialStore::new();
        contract::credentials::credential_store_contract(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients() {
        let reg = apiauth_oauth2::MemoryClientRegistry::new();
        contract::clients::client_registry_contract(reg).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_history() {
        let history = apiauth_quota::MemoryUsageHistory::new();
        contract::history::usage_history_contract(Arc::new(history)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage() {
        let meter = apiauth_quota::MemoryUsageMeter::new();
        contract::usage::usage_meter_contract(Arc::new(meter)).await;
    }
}
