//! RFC 9421 HTTP message signatures and webhook signatures as properties: whatever the
//! request, signing then verifying succeeds, and any single-byte change to a covered part
//! (or to the signature or its parameters) is refused. Driven through a real axum `Router`.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{ManualClock, SharedClock};
use apiauth_core::{Auth, AuthLayer, MemoryReplayStore};
use apiauth_hmac::{
    Component, HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, SIGNATURE,
    SIGNATURE_INPUT, Signer, WebhookProfile, WebhookVerifier,
};
use apiauth_proptests::{Seen, mutate_byte, mutate_within, send};
use axum::Router;
use axum::body::Body;
use axum::routing::any as any_method;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use proptest::prelude::*;
use proptest::test_runner::Config;

const SECRET: &[u8; 32] = b"proptest http signature secret!!";
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const HEADER_NAMES: [&str; 4] = ["content-type", "x-request-id", "x-tenant", "date"];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const NOW: u64 = 1_750_000_000;

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
        // No files written into the source tree; a failure prints its minimal input.
        failure_persistence: None,
        ..Config::default()
    }
}

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
    ))
}

/// A verifier with the recommended coverage policy, its own replay store and clock.
fn app(clock: SharedClock) -> Router {
    let keys = MemoryHmacKeyStore::new();
    keys.insert(
        "client-1",
        HmacKey::new("acme").secret(HmacSecret::new(SECRET).unwrap()),
    );
    let verifier = HttpSignatureVerifier::builder(keys)
        .clock(clock.clone())
        .replay_store(MemoryReplayStore::with_clock(clock))
        .build()
        .unwrap();
    Router::new()
        .route(
            "/",
            any_method(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .route(
            "/{*rest}",
            any_method(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(AuthLayer::new(verifier))
}

#[derive(Debug, Clone)]
struct Msg {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Msg {
    fn send(&self, app: &Router) -> Seen {
        let mut req = Request::new(Body::from(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        rt().block_on(send(app, req))
    }
}

#[derive(Debug, Clone)]
struct Spec {
    method: &'static str,
    absolute: bool,
    path: String,
    query: Option<String>,
    headers: Vec<(usize, String)>,
    body: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(&METHODS[..]),
        any::<bool>(),
        "[a-zA-Z0-9._~-]{1,12}(/[a-zA-Z0-9._~-]{1,12}){0,3}",
        prop::option::of(
            "[a-z]{1,6}=[a-zA-Z0-9._~-]{0,10}(&[a-z]{1,6}=[a-zA-Z0-9._~-]{0,10}){0,2}",
        ),
        prop::collection::vec((0..HEADER_NAMES.len(), "[!-~]([ -~]{0,20}[!-~])?"), 0..3),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(method, absolute, path, query, headers, body)| Spec {
            method,
            absolute,
            path,
            query,
            headers,
            body,
        })
}

/// Builds and signs the request: default components, plus every header it carries.
fn signed(spec: &Spec, clock: SharedClock) -> Msg {
    let target = match &spec.query {
        Some(q) => format!("/{}?{q}", spec.path),
        None => format!("/{}", spec.path),
    };
    let mut b = Request::builder().method(spec.method);
    b = if spec.absolute {
        b.uri(format!("https://api.example.com{target}"))
    } else {
        b.uri(target).header("host", "api.example.com")
    };
    let mut names: Vec<&str> = Vec::new();
    for (i, v) in &spec.headers {
        let name = HEADER_NAMES[*i];
        if !names.contains(&name) {
            names.push(name);
            b = b.header(name, v.as_str());
        }
    }
    let mut req = b.body(spec.body.clone()).unwrap();
    let mut signer = Signer::builder("client-1", HmacSecret::new(SECRET).unwrap()).clock(clock);
    for n in &names {
        signer = signer.cover(Component::field(http::HeaderName::from_static(n)));
    }
    signer.build().unwrap().sign(&mut req).unwrap();
    let (parts, body) = req.into_parts();
    Msg {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    }
}

fn replace_path_and_query(uri: &Uri, pq: &str) -> Uri {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().unwrap());
    Uri::from_parts(parts).unwrap()
}

/// One single-byte change to a part the signature covers, or to the signature fields.
fn mutate(msg: &Msg, part: u8, index: usize, pick: usize) -> (Msg, &'static str) {
    let mut m = msg.clone();
    let header_names: Vec<HeaderName> = m
        .headers
        .keys()
        .filter(|n| HEADER_NAMES.contains(&n.as_str()))
        .cloned()
        .collect();
    match part % 7 {
        0 => {
            let others: Vec<&str> = METHODS
                .iter()
                .copied()
                .filter(|x| *x != m.method.as_str())
                .collect();
            m.method = Method::from_bytes(others[pick % others.len()].as_bytes()).unwrap();
            (m, "method")
        }
        1 => {
            // Never the leading '/'.
            let path = m.uri.path().as_bytes();
            let (rest, _) = mutate_within(&path[1..], index, pick, ALNUM);
            let mut p = b"/".to_vec();
            p.extend(rest);
            let p = String::from_utf8(p).unwrap();
            let pq = match m.uri.query() {
                Some(q) => format!("{p}?{q}"),
                None => p,
            };
            m.uri = replace_path_and_query(&m.uri, &pq);
            (m, "path")
        }
        2 if m.uri.query().is_some_and(|q| !q.is_empty()) => {
            let q = m.uri.query().unwrap().as_bytes();
            let (q, _) = mutate_within(q, index, pick, ALNUM);
            let pq = format!("{}?{}", m.uri.path(), String::from_utf8(q).unwrap());
            m.uri = replace_path_and_query(&m.uri, &pq);
            (m, "query")
        }
        3 if !header_names.is_empty() => {
            let name = header_names[pick % header_names.len()].clone();
            let v = m.headers[&name].as_bytes().to_vec();
            let (v, _) = mutate_within(&v, index, pick, ALNUM);
            m.headers.insert(name, HeaderValue::from_bytes(&v).unwrap());
            (m, "covered header")
        }
        4 if !m.body.is_empty() => {
            let (b, _) = mutate_byte(&m.body, index, pick as u8);
            m.body = b;
            (m, "body")
        }
        5 => {
            let v = m.headers[&SIGNATURE_INPUT].as_bytes().to_vec();
            // Within [A-Za-z0-9]: the value stays a valid header value, whatever it means.
            let (v, _) = mutate_within(&v, index, pick, ALNUM);
            m.headers
                .insert(SIGNATURE_INPUT, HeaderValue::from_bytes(&v).unwrap());
            (m, "Signature-Input")
        }
        _ => {
            // `sig1=:<43 base64 chars>=:`; the 43rd carries two unused bits, so change one of
            // the first 42, each of which holds six bits of the MAC.
            let v = m.headers[&SIGNATURE].as_bytes().to_vec();
            let start = v.iter().position(|&c| c == b':').unwrap() + 1;
            let (inner, _) = mutate_within(&v[start..start + 42], index, pick, BASE64);
            let mut out = v[..start].to_vec();
            out.extend(inner);
            out.extend(&v[start + 42..]);
            m.headers
                .insert(SIGNATURE, HeaderValue::from_bytes(&out).unwrap());
            (m, "Signature")
        }
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn signing_then_verifying_succeeds_for_arbitrary_requests(spec in spec()) {
        let clock = clock();
        let app = app(clock.clone());
        let msg = signed(&spec, clock);
        let s = msg.send(&app);
        prop_assert_eq!(s.status, 200, "{:?}", s);
        prop_assert_eq!(s.body.as_str(), "acme");
    }

    #[test]
    fn any_single_byte_change_to_a_covered_part_or_the_signature_is_refused(
        spec in spec(),
        part in any::<u8>(),
        index in any::<usize>(),
        pick in 1usize..1000,
    ) {
        let clock = clock();
        let app = app(clock.clone());
        let msg = signed(&spec, clock);
        let (bad, what) = mutate(&msg, part, index, pick);
        let s = bad.send(&app);
        prop_assert!(matches!(s.status.as_u16(), 400 | 401), "changed {} got {}", what, s.status);
        // The untouched request still passes: the refusal was the change, not the setup
        // (and a refused request does not burn the nonce).
        prop_assert_eq!(msg.send(&app).status, 200);
        // And a second delivery of it is a replay.
        prop_assert_eq!(msg.send(&app).status, 401);
    }
}

fn webhook_app(github: bool) -> (Router, WebhookProfile) {
    let profile = if github {
        WebhookProfile::github()
    } else {
        WebhookProfile::timestamped()
    };
    let clock = clock();
    let v = WebhookVerifier::builder(profile.clone(), "partner")
        .secret(HmacSecret::new(SECRET).unwrap())
        .clock(clock.clone())
        .replay_store(MemoryReplayStore::with_clock(clock))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/hook",
            any_method(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(AuthLayer::new(v));
    (app, profile)
}

fn deliver(app: &Router, profile: &WebhookProfile, value: &[u8], body: &[u8]) -> u16 {
    let req = Request::post("/hook")
        .header(profile.header(), HeaderValue::from_bytes(value).unwrap())
        .body(Body::from(body.to_vec()))
        .unwrap();
    rt().block_on(send(app, req)).status.as_u16()
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn webhook_sign_then_verify_succeeds_and_any_changed_byte_is_refused(
        github in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
        skew in -250i64..250,
        in_body in any::<bool>(),
        index in any::<usize>(),
        pick in 1usize..1000,
    ) {
        let (app, profile) = webhook_app(github);
        let secret = HmacSecret::new(SECRET).unwrap();
        let value = profile.sign(&secret, NOW.saturating_add_signed(skew), &body);
        if in_body && !body.is_empty() {
            let (b, _) = mutate_byte(&body, index, pick as u8);
            prop_assert_eq!(deliver(&app, &profile, value.as_bytes(), &b), 401);
        } else {
            // Change one hex digit of the MAC to a different hex digit (case kept).
            let (head, mac) = value.rsplit_once('=').unwrap();
            let (mac, _) = mutate_within(mac.as_bytes(), index, pick, b"0123456789abcdef");
            let v = format!("{head}={}", String::from_utf8(mac).unwrap());
            prop_assert_eq!(deliver(&app, &profile, v.as_bytes(), &body), 401);
        }
        prop_assert_eq!(deliver(&app, &profile, value.as_bytes(), &body), 200);
        prop_assert_eq!(deliver(&app, &profile, value.as_bytes(), &body), 401, "replay");
    }
}
