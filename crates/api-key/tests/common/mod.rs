//! Shared test fixtures: a router guarded by the API key layer, a request helper, and stores
//! that count or fail.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use apiauth_api_key::{
    ApiKeyAuth, ApiKeyRecord, ApiKeyStore, ApiKeys, KeyChange, KeyFilter, MemoryApiKeyStore,
};
use apiauth_core::clock::ManualClock;
use apiauth_core::{Auth, Scoped, StoreError, scope};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;

scope!(pub ReportsRead = "reports:read");

pub const PREFIX: &str = "sk_test_";

#[allow(unused_imports)]
pub use apiauth_testkit::{Seen, send};

pub fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// `/me` echoes every principal field; `/reports` needs `reports:read`.
pub fn routes() -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move {
                serde_json::json!({
                    "subject": p.subject(),
                    "method": p.method().as_str(),
                    "credential_id": p.credential_id(),
                    "tenant": p.tenant(),
                    "plan": p.plan(),
                    "scopes": p.scopes().to_string(),
                    "expires_at": p.expires_at().map(apiauth_core::clock::unix_seconds),
                })
                .to_string()
            }),
        )
        .route(
            "/reports",
            get(|Scoped(p, ..): Scoped<ReportsRead>| async move {
                format!("reports of {}", p.tenant().unwrap_or("-"))
            }),
        )
}

pub struct Fixture {
    pub store: Arc<MemoryApiKeyStore>,
    pub keys: ApiKeys,
    pub clock: ManualClock,
}

impl Fixture {
    pub fn new() -> Self {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let store = Arc::new(MemoryApiKeyStore::new());
        let keys = ApiKeys::new(store.clone())
            .prefix(PREFIX)
            .unwrap()
            .clock(Arc::new(clock.clone()));
        Self { store, keys, clock }
    }

    pub fn auth(&self) -> ApiKeyAuth {
        self.keys.auth()
    }

    pub fn app(&self) -> Router {
        routes().layer(self.auth().layer().unwrap())
    }
}

/// Every batch handed to `record_last_used`, in order.
pub type Batches = Arc<Mutex<Vec<Vec<(Arc<str>, SystemTime)>>>>;

/// Counts calls and can be switched to fail, around a memory store.
#[derive(Clone, Default)]
pub struct Instrumented {
    pub inner: MemoryApiKeyStore,
    pub gets: Arc<AtomicUsize>,
    pub last_used_calls: Batches,
    pub down: Arc<AtomicBool>,
    /// Yield to the scheduler before every call, so concurrent callers interleave.
    pub interleave: Arc<AtomicBool>,
}

impl Instrumented {
    async fn check(&self) -> Result<(), StoreError> {
        if self.interleave.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl ApiKeyStore for Instrumented {
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.check().await?;
        self.inner.get(id).await
    }
    async fn insert(&self, record: ApiKeyRecord) -> Result<bool, StoreError> {
        self.check().await?;
        self.inner.insert(record).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.check().await?;
        self.inner.list(filter).await
    }
    async fn update(
        &self,
        id: &str,
        change: &KeyChange,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.check().await?;
        self.inner.update(id, change).await
    }
    async fn record_last_used(&self, batch: &[(Arc<str>, SystemTime)]) -> Result<(), StoreError> {
        self.check().await?;
        self.last_used_calls.lock().unwrap().push(batch.to_vec());
        self.inner.record_last_used(batch).await
    }
}

/// Replaces the character at byte `i` of `key` by another base62 character.
pub fn flip(key: &str, i: usize) -> String {
    let mut b = key.as_bytes().to_vec();
    b[i] = if b[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(b).unwrap()
}

/// A well-formed key (valid checksum) with the given 12-char id and 30-char secret.
pub fn forge(prefix: &str, id: &str, secret: &str) -> String {
    let signed = format!("{prefix}{id}{secret}");
    let mut v = crc32fast::hash(signed.as_bytes());
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = B62[(v % 62) as usize];
        v /= 62;
    }
    format!("{signed}{}", std::str::from_utf8(&digits).unwrap())
}
