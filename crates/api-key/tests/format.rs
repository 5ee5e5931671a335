//! Key format, checksum and hashing at rest, seen through a router and through the store.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use apiauth_api_key::{ApiKeyAuth, ApiKeyStore, ApiKeys, KeyFilter, NewKey};
use apiauth_core::ScopeSet;
use apiauth_core::token::SecretHash;
use common::*;
use http::StatusCode;

#[tokio::test]
async fn created_key_has_prefix_random_body_and_checksum_and_is_accepted() {
    let f = Fixture::new();
    let a = f.keys.create(NewKey::new("alice")).await.unwrap();
    let b = f.keys.create(NewKey::new("alice")).await.unwrap();
    let key = a.key.expose_secret();
    // prefix + 12 id + 30 secret + 6 checksum, base62 after the prefix.
    assert!(key.starts_with(PREFIX));
    assert_eq!(key.len(), PREFIX.len() + 48);
    assert!(
        key[PREFIX.len()..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric())
    );
    // The id is the public part right after the prefix.
    assert_eq!(&key[PREFIX.len()..PREFIX.len() + 12], &*a.summary.id);
    assert_ne!(a.key, b.key);
    assert_ne!(a.summary.id, b.summary.id);

    let seen = send(&f.app(), get_with("/me", &[("x-api-key", key)])).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
}

#[tokio::test]
async fn any_flipped_character_is_refused_without_a_store_lookup() {
    let store = Instrumented::default();
    let keys = ApiKeys::new(Arc::new(store.clone()))
        .prefix(PREFIX)
        .unwrap();
    let created = keys.create(NewKey::new("alice")).await.unwrap();
    let key = created.key.expose_secret();
    let app = routes().layer(keys.auth().layer().unwrap());
    let valid = send(&app, get_with("/me", &[("x-api-key", key)])).await;
    assert_eq!(valid.status, StatusCode::OK);
    store.gets.store(0, Ordering::SeqCst);

    let mut bodies = std::collections::HashSet::new();
    for i in 0..key.len() {
        let seen = send(&app, get_with("/me", &[("x-api-key", &flip(key, i))])).await;
        assert_eq!(
            seen.status,
            StatusCode::UNAUTHORIZED,
            "flip at {i} accepted"
        );
        bodies.insert(seen.body);
    }
    // The checksum (or the prefix check) caught every one before the store was asked.
    assert_eq!(store.gets.load(Ordering::SeqCst), 0);
    assert_eq!(bodies.len(), 1, "rejection bodies differ: {bodies:?}");
}

#[tokio::test]
async fn made_up_wrong_length_and_foreign_prefix_keys_are_401() {
    let f = Fixture::new();
    let app = f.app();
    let live = ApiKeys::new(f.store.clone())
        .create(NewKey::new("alice"))
        .await
        .unwrap();
    let too_long = format!("{PREFIX}{}", "a".repeat(5000));
    for bad in [
        "sk_test_",
        "sk_test_abc",
        "hello",
        too_long.as_str(),
        // A real key, but of another prefix: this layer only takes `sk_test_`.
        live.key.expose_secret(),
    ] {
        let seen = send(&app, get_with("/me", &[("x-api-key", bad)])).await;
        assert_eq!(seen.status, StatusCode::UNAUTHORIZED, "{bad:.20}");
        assert_eq!(seen.json()["error"], "invalid_key");
    }
}

#[tokio::test]
async fn store_keeps_only_the_sha256_digest_of_the_key() {
    let f = Fixture::new();
    let created = f
        .keys
        .create(NewKey::new("alice").scopes(ScopeSet::parse("reports:read").unwrap()))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    let secret_part = &key[PREFIX.len() + 12..PREFIX.len() + 42];
    let record = f.store.get(&created.summary.id).await.unwrap().unwrap();
    assert!(record.hash.ct_eq(&SecretHash::of(key.as_bytes())));

    // Neither the serialised record (what a networked store keeps) nor any Debug output
    // holds the key or its secret part.
    let json = serde_json::to_string(&record).unwrap();
    let debug = format!("{record:?} {created:?} {:?}", f.keys);
    for text in [&json, &debug] {
        assert!(!text.contains(key) && !text.contains(secret_part), "{text}");
    }
    assert!(json.contains(&SecretHash::of(key.as_bytes()).to_hex()));
}

#[tokio::test]
async fn listing_shows_no_secret_and_no_digest() {
    let f = Fixture::new();
    let created = f
        .keys
        .create(NewKey::new("alice").tenant("acme").plan("pro"))
        .await
        .unwrap();
    f.keys
        .create(NewKey::new("bob").tenant("other"))
        .await
        .unwrap();
    let listed = f.keys.list(&KeyFilter::all().tenant("acme")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.summary.id);
    assert_eq!(listed[0].owner.as_ref(), "alice");
    let json = serde_json::to_string(&listed).unwrap();
    let record = f.store.get(&created.summary.id).await.unwrap().unwrap();
    assert!(!json.contains(&record.hash.to_hex()));
    assert!(!json.contains(created.key.expose_secret()));
    assert!(!json.contains("hash"));
    assert_eq!(
        f.keys
            .list(&KeyFilter::all().owner("bob"))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn invalid_configuration_is_a_startup_error() {
    let store = Arc::new(apiauth_api_key::MemoryApiKeyStore::new());
    let cases = [
        ApiKeyAuth::new(store.clone()).prefix("Live-"),
        ApiKeyAuth::new(store.clone()).authorization_scheme("Api Key"),
        ApiKeyAuth::new(store.clone()).realm("caf\u{e9}"),
        ApiKeyAuth::new(store.clone()).dangerous_allow_query_key("a&b"),
        ApiKeyAuth::new(store.clone())
            .without_header()
            .without_authorization(),
    ];
    for b in cases {
        let shown = format!("{b:?}");
        assert!(b.build().is_err(), "{shown}");
    }
    assert!(ApiKeys::new(store).prefix("NOPE").is_err());
}
