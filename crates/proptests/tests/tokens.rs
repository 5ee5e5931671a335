//! Tokens and keys as properties, through real axum `Router`s: a JWT signed by its issuer
//! verifies whatever its claims, and any single-byte change to it is refused; the same for
//! API keys, opaque bearer tokens and Basic passwords; and a token never crosses issuers.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use apiauth_api_key::{ApiKeys, MemoryApiKeyStore, NewKey};
use apiauth_basic::{
    BasicAuth, BasicCredentials, CredentialEncoding, MemoryCredentialStore, PasswordHasher,
};
use apiauth_bearer::{Bearer, OpaqueTokens};
use apiauth_core::Auth;
use apiauth_core::clock::ManualClock;
use apiauth_jwt::{Algorithm, Issuer, JwtKey, JwtVerifier};
use apiauth_proptests::{Seen, mutate_within, send};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::json;

const NOW: u64 = 1_750_000_000;
const KEY_A: &[u8] = b"proptest issuer A secret, 32+ bytes";
const KEY_B: &[u8] = b"proptest issuer B secret, 32+ bytes";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn get_with(app: &Router, name: &str, value: &str) -> Seen {
    let req = Request::get("/me")
        .header(name, value)
        .body(Body::empty())
        .unwrap();
    rt().block_on(send(app, req))
}

fn me_route() -> Router {
    Router::new().route(
        "/me",
        get(|Auth(p): Auth| async move { p.subject().to_owned() }),
    )
}

/// Two issuers, each with its own key, both for audience `api`.
fn jwt_app() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        let key = |k: &[u8]| JwtKey::hmac(k).unwrap().algorithms([Algorithm::HS256]);
        let verifier = rt()
            .block_on(
                JwtVerifier::builder()
                    .issuer(
                        Issuer::new("https://a.example")
                            .key(key(KEY_A))
                            .audience("api"),
                    )
                    .issuer(
                        Issuer::new("https://b.example")
                            .key(key(KEY_B))
                            .audience("api"),
                    )
                    .clock(Arc::new(ManualClock::new(
                        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
                    )))
                    .build(),
            )
            .unwrap();
        me_route().layer(Bearer::new(verifier).layer())
    })
}

fn jwt(iss: &str, key: &[u8], sub: &str, scope: &str, extra: &str, ttl: u64) -> String {
    let claims = json!({
        "iss": iss, "aud": "api", "sub": sub, "scope": scope, "x": extra,
        "iat": NOW - 10, "exp": NOW + ttl,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn scope_string() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z]{1,8}(:[a-z]{1,8})?", 0..4).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn a_jwt_signed_by_its_issuer_verifies_whatever_its_claims(
        sub in "[a-zA-Z0-9@._-]{1,32}",
        scope in scope_string(),
        extra in "\\PC{0,40}",
        ttl in 60u64..100_000,
        b in any::<bool>(),
    ) {
        let (iss, key) = if b { ("https://b.example", KEY_B) } else { ("https://a.example", KEY_A) };
        let s = get_with(jwt_app(), "authorization", &format!("Bearer {}", jwt(iss, key, &sub, &scope, &extra, ttl)));
        prop_assert_eq!(s.status, 200, "{:?}", s);
        prop_assert_eq!(s.body, sub);
    }

    #[test]
    fn any_single_byte_change_to_a_jwt_is_refused(
        sub in "[a-z]{1,16}",
        scope in scope_string(),
        index in any::<usize>(),
        pick in 0usize..1000,
    ) {
        let token = jwt("https://a.example", KEY_A, &sub, &scope, "", 3600);
        let (bad, at) = mutate_within(token.as_bytes(), index, pick, BASE64URL);
        let bad = String::from_utf8(bad).unwrap();
        let s = get_with(jwt_app(), "authorization", &format!("Bearer {bad}"));
        prop_assert_eq!(s.status, 401, "changed byte {} of {}: {:?}", at, token, s);
        prop_assert!(s.header_text().contains("invalid_token"));
    }

    /// Confused deputy across tenants: issuer B's key cannot mint tokens for issuer A, and
    /// the other way round.
    #[test]
    fn a_token_signed_with_one_issuers_key_never_passes_as_another_issuer(
        sub in "[a-z]{1,16}",
        scope in scope_string(),
        b in any::<bool>(),
    ) {
        let (iss, key) = if b { ("https://a.example", KEY_B) } else { ("https://b.example", KEY_A) };
        let s = get_with(jwt_app(), "authorization", &format!("Bearer {}", jwt(iss, key, &sub, &scope, "", 3600)));
        prop_assert_eq!(s.status, 401);
    }
}

struct KeyApp {
    app: Router,
    key: String,
}

/// One API key (header `X-API-Key`) and one opaque bearer token (prefix `pat_`).
fn key_apps() -> &'static (KeyApp, KeyApp) {
    static APPS: OnceLock<(KeyApp, KeyApp)> = OnceLock::new();
    APPS.get_or_init(|| {
        rt().block_on(async {
            let keys = ApiKeys::new(Arc::new(MemoryApiKeyStore::new()));
            let key = keys.create(NewKey::new("alice")).await.unwrap();
            let api = KeyApp {
                app: me_route().layer(keys.auth().layer().unwrap()),
                key: key.key.expose_secret().to_owned(),
            };
            let tokens = ApiKeys::new(Arc::new(MemoryApiKeyStore::new()))
                .prefix("pat_")
                .unwrap();
            let token = tokens.create(NewKey::new("bob")).await.unwrap();
            let opaque = KeyApp {
                app: me_route().layer(Bearer::new(OpaqueTokens::new(&tokens).unwrap()).layer()),
                key: token.key.expose_secret().to_owned(),
            };
            (api, opaque)
        })
    })
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn any_single_character_change_to_an_api_key_is_refused(index in any::<usize>(), pick in 0usize..1000) {
        let (api, _) = key_apps();
        prop_assert_eq!(get_with(&api.app, "x-api-key", &api.key).status, 200);
        let (bad, at) = mutate_within(api.key.as_bytes(), index, pick, BASE62);
        let bad = String::from_utf8(bad).unwrap();
        let s = get_with(&api.app, "x-api-key", &bad);
        prop_assert_eq!(s.status, 401, "changed character {}", at);
        // Neither the presented value nor the real key's secret part is echoed.
        prop_assert!(!s.shows(&bad) && !s.shows(&api.key[20..]));
    }

    #[test]
    fn any_single_character_change_to_an_opaque_bearer_token_is_refused(index in any::<usize>(), pick in 0usize..1000) {
        let (_, opaque) = key_apps();
        prop_assert_eq!(get_with(&opaque.app, "authorization", &format!("Bearer {}", opaque.key)).status, 200);
        let (bad, at) = mutate_within(opaque.key.as_bytes(), index, pick, BASE62);
        let bad = String::from_utf8(bad).unwrap();
        let s = get_with(&opaque.app, "authorization", &format!("Bearer {bad}"));
        prop_assert_eq!(s.status, 401, "changed character {}", at);
        prop_assert!(s.header_text().contains("invalid_token"));
    }
}

proptest! {
    // Each case runs argon2 (cheap parameters, for tests only) a few times.
    #![proptest_config(config(12))]

    #[test]
    fn basic_credentials_verify_and_any_changed_password_byte_is_refused(
        user in "[a-zA-Z0-9._-]{1,16}",
        password in "[ -~]{1,24}",
        index in any::<usize>(),
        pick in 0usize..1000,
    ) {
        let hasher = PasswordHasher::dangerous_with_params(64, 1, 1).unwrap();
        let users = MemoryCredentialStore::new();
        users.insert_user(&user, hasher.hash(&password));
        let app = me_route().layer(BasicAuth::builder(users).password_hasher(hasher).layer().unwrap());
        let header = |p: &str| {
            BasicCredentials::new(user.clone(), p)
                .to_header_value(CredentialEncoding::Plain)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        let ok = get_with(&app, "authorization", &header(&password));
        prop_assert_eq!(ok.status, 200, "{:?}", ok);
        let printable: Vec<u8> = (b' '..=b'~').collect();
        let (bad, _) = mutate_within(password.as_bytes(), index, pick, &printable);
        let bad = String::from_utf8(bad).unwrap();
        let s = get_with(&app, "authorization", &header(&bad));
        prop_assert_eq!(s.status, 401);
        prop_assert!(bad.len() < 8 || !s.shows(&bad), "password echoed");
    }
}
