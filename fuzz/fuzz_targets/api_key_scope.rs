//! API key format and checksum (core `TokenFormat`, `ApiKeyAuthenticator`) and RFC 6749 §3.3
//! scope strings.
#![no_main]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use apiauth_api_key::{
    ApiKeyAuth, ApiKeyAuthenticator, ApiKeyRecord, ApiKeyStore, ApiKeys, DEFAULT_PREFIX, KeyChange,
    KeyFilter, MemoryApiKeyStore, NewKey,
};
use apiauth_core::scope::is_valid_scope_token;
use apiauth_core::token::TokenFormat;
use apiauth_core::{Auth, AuthMethod, ScopeSet, StoreError};
use apiauth_fuzz::{block_on, seen};
use arbitrary::Arbitrary;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// A store that counts lookups, to prove that keys failing the checksum never reach it.
struct CountingStore {
    inner: MemoryApiKeyStore,
    gets: AtomicUsize,
}

#[async_trait::async_trait]
impl ApiKeyStore for CountingStore {
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id).await
    }
    async fn insert(&self, record: ApiKeyRecord) -> Result<bool, StoreError> {
        self.inner.insert(record).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.list(filter).await
    }
    async fn update(&self, id: &str, change: &KeyChange) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.inner.update(id, change).await
    }
    async fn record_last_used(&self, batch: &[(Arc<str>, SystemTime)]) -> Result<(), StoreError> {
        self.inner.record_last_used(batch).await
    }
}

struct Fixture {
    store: Arc<CountingStore>,
    auth: ApiKeyAuthenticator,
    key: String,
    router: Router,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let store = Arc::new(CountingStore {
            inner: MemoryApiKeyStore::new(),
            gets: AtomicUsize::new(0),
        });
        let keys = ApiKeys::new(store.clone());
        let created = block_on(keys.create(NewKey::new("alice"))).expect("key created");
        let router = Router::new()
            .route("/r", get(|Auth(p): Auth| async move { p.subject().to_owned() }))
            .layer(keys.auth().layer().expect("default config builds"));
        Fixture {
            auth: ApiKeyAuth::for_keys(&keys).build().expect("default config builds"),
            store,
            key: created.key.expose_secret().to_owned(),
            router,
        }
    })
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The checksum rule written out independently of core: CRC32 of everything before the last
/// six characters, as six fixed-width base62 digits.
fn checksum_ok(s: &str, prefix: &str) -> bool {
    let Some(body) = s.strip_prefix(prefix) else {
        return false;
    };
    if body.len() != 48 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (signed, tail) = s.split_at(s.len() - 6);
    let mut v = crc32fast::hash(signed.as_bytes());
    let mut digits = [0u8; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    digits == tail.as_bytes()
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    raw: &'a str,
    mutations: Vec<(u8, u8)>,
    scope: &'a str,
}

fn check_raw(raw: &str) {
    let f = fixture();
    let format = TokenFormat::new(DEFAULT_PREFIX).expect("default prefix is valid");
    let parsed = format.parse(raw);
    assert_eq!(parsed.is_ok(), checksum_ok(raw, DEFAULT_PREFIX), "checksum oracle disagrees");
    if let Ok(p) = &parsed {
        assert_eq!(p.id, &raw[DEFAULT_PREFIX.len()..DEFAULT_PREFIX.len() + 12]);
    }
    let before = f.store.gets.load(Ordering::SeqCst);
    let result = block_on(f.auth.verify_secret(raw, AuthMethod::API_KEY));
    let lookups = f.store.gets.load(Ordering::SeqCst) - before;
    if parsed.is_err() {
        assert_eq!(lookups, 0, "a key that fails the format or checksum reached the store");
    } else {
        assert_eq!(lookups, 1);
    }
    match result {
        Ok(_) => assert_eq!(raw, f.key, "accepted a key that is not the issued one"),
        Err(e) => {
            assert_ne!(raw, f.key);
            assert_eq!(e.status(), 401);
        }
    }
}

fn check_mutated(mutations: &[(u8, u8)]) {
    let f = fixture();
    let mut bytes = f.key.clone().into_bytes();
    for &(pos, b) in mutations.iter().take(8) {
        let i = usize::from(pos) % bytes.len();
        bytes[i] = b;
    }
    let Ok(value) = http::HeaderValue::from_bytes(&bytes) else {
        return;
    };
    let req = http::Request::get("/r")
        .header("x-api-key", value)
        .body(Body::empty())
        .expect("valid request");
    let router = f.router.clone();
    let s = block_on(async move { seen(router.oneshot(req).await.expect("infallible")).await });
    if bytes == f.key.as_bytes() {
        assert_eq!(s.status, 200);
    } else {
        assert_eq!(s.status, 401, "a mutated key got {}", s.status);
        assert!(!s.shows(&f.key[DEFAULT_PREFIX.len()..]), "key echoed");
    }
}

fn check_scope(s: &str) {
    let expected = s.is_empty() || s.split(' ').all(is_valid_scope_token);
    let parsed = ScopeSet::parse(s);
    assert_eq!(parsed.is_ok(), expected, "RFC 6749 §3.3 oracle disagrees on {s:?}");
    let Ok(set) = parsed else { return };
    for t in s.split(' ').filter(|t| !t.is_empty()) {
        assert!(set.contains(t));
    }
    assert!(set.iter().all(is_valid_scope_token));
    // Re-serialised, it parses to the same set (and the text is then canonical).
    let text = set.to_string();
    let again = ScopeSet::parse(&text).expect("canonical form parses");
    assert_eq!(again, set);
    assert_eq!(again.to_string(), text);
    let json = serde_json::to_string(&set).expect("serialises");
    assert_eq!(serde_json::from_str::<ScopeSet>(&json).expect("deserialises"), set);
    assert_eq!(ScopeSet::from_tokens(set.iter()).expect("valid tokens"), set);
}

fuzz_target!(|input: Input<'_>| {
    check_raw(input.raw);
    check_mutated(&input.mutations);
    check_scope(input.scope);
});
