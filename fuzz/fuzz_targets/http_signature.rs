//! RFC 9421 `Signature-Input`/`Signature` parsing, signature-base construction and RFC 9530
//! `Content-Digest`, through `HttpSignatureVerifier` behind a real `Router`.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{ManualClock, SharedClock};
use apiauth_core::{Auth, AuthLayer, MemoryReplayStore};
use apiauth_fuzz::{block_on, epoch_now, seen};
use apiauth_hmac::{
    Component, CoveragePolicy, HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore,
    SIGNATURE, SIGNATURE_INPUT, Signer,
};
use arbitrary::Arbitrary;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use base64::Engine;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig, general_purpose::STANDARD};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use sha2::Digest;
use tower::ServiceExt;

const SECRET: &[u8] = b"fuzz http signature secret, 32+ bytes";
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "QUERY"];
const RESERVED: [&str; 6] = [
    "signature",
    "signature-input",
    "content-digest",
    "host",
    "content-length",
    "transfer-encoding",
];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Comp<'a> {
    Method,
    TargetUri,
    Authority,
    Scheme,
    RequestTarget,
    Path,
    Query,
    QueryParam(&'a str),
    Field(u8),
    FieldSf(u8),
    FieldBs(u8),
    FieldKey(u8, &'a str),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Mutation {
    Body(u16, u8),
    SignatureInput(u16, u8),
    Signature(u16, u8),
    Method(u8),
    Path(u16),
    Query(u16),
    Header(u8, u16),
}

#[derive(Arbitrary, Debug)]
struct Signed<'a> {
    method: u8,
    absolute_uri: bool,
    path: &'a str,
    query: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    components: Vec<Comp<'a>>,
    content_digest: Option<&'a str>,
    mutation: Option<Mutation>,
}

#[derive(Arbitrary, Debug)]
struct Raw<'a> {
    signature_input: &'a [u8],
    signature: &'a [u8],
    content_digest: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    target: &'a str,
    body: &'a [u8],
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw(Raw<'a>),
    Signed(Signed<'a>),
}

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(epoch_now()))
}

/// A fresh verifier per input: its replay store must start empty for the replay check.
fn router(clock: SharedClock) -> Router {
    let keys = MemoryHmacKeyStore::new();
    keys.insert(
        "client-1",
        HmacKey::new("acme").secret(HmacSecret::new(SECRET).expect("long enough")),
    );
    let verifier = HttpSignatureVerifier::builder(keys)
        .policy(CoveragePolicy::dangerous_minimal())
        .clock(clock.clone())
        .replay_store(MemoryReplayStore::with_capacity(16, clock))
        .max_body_bytes(64 * 1024)
        .body_timeout(Duration::from_secs(5))
        .build()
        .expect("verifier builds");
    Router::new()
        .route("/{*rest}", any(|Auth(p): Auth| async move { p.subject().to_owned() }))
        .route("/", any(|Auth(p): Auth| async move { p.subject().to_owned() }))
        .layer(AuthLayer::new(verifier))
}

#[derive(Clone)]
struct Msg {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Msg {
    fn request(&self) -> http::Request<Body> {
        let mut req = http::Request::new(Body::from(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

fn status(router: &Router, msg: &Msg) -> u16 {
    let r = router.clone();
    let req = msg.request();
    block_on(async move { seen(r.oneshot(req).await.expect("infallible")).await }).status
}

fn check_raw(raw: &Raw<'_>) {
    let mut b = http::Request::post(format!("/{}", raw.target));
    for (name, v) in [
        (Some(SIGNATURE_INPUT), Some(raw.signature_input)),
        (Some(SIGNATURE), Some(raw.signature)),
        (HeaderName::from_bytes(b"content-digest").ok(), raw.content_digest),
        (Some(http::header::HOST), raw.host),
    ] {
        if let (Some(n), Some(v)) = (name, v.and_then(|v| HeaderValue::from_bytes(v).ok())) {
            b = b.header(n, v);
        }
    }
    let Ok(req) = b.body(raw.body.to_vec()) else {
        return;
    };
    let (parts, body) = req.into_parts();
    let msg = Msg {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let s = status(&router(clock()), &msg);
    // Nobody without the secret gets in, and nothing a client sends makes the verifier fail.
    assert!(matches!(s, 400 | 401 | 413), "raw input answered {s}");
}

fn alnum_other(orig: u8, seed: u16) -> u8 {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let c = A[usize::from(seed) % A.len()];
    // Never the same letter in another case either: percent-encodings compare that way.
    if c.eq_ignore_ascii_case(&orig) {
        if c == b'0' { b'1' } else { b'0' }
    } else {
        c
    }
}

/// `label=:base64:` read leniently (non-zero pad bits allowed, as RFC 8941 §4.2.7 lets
/// parsers do), so a mutation that only flips unused bits counts as "the same signature".
fn same_signature(a: &[u8], b: &[u8]) -> bool {
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let split = |v: &[u8]| -> Option<(Vec<u8>, Vec<u8>)> {
        let s = std::str::from_utf8(v).ok()?.trim();
        let (label, rest) = s.split_once('=')?;
        let inner = rest.strip_prefix(':')?.strip_suffix(':')?;
        Some((label.as_bytes().to_vec(), lenient.decode(inner).ok()?))
    };
    matches!((split(a), split(b)), (Some(x), Some(y)) if x == y)
}

fn check_signed(s: &Signed<'_>) {
    let method = METHODS[usize::from(s.method) % METHODS.len()];
    let target = match s.query {
        Some(q) => format!("/{}?{q}", s.path),
        None => format!("/{}", s.path),
    };
    let uri = if s.absolute_uri {
        format!("http://api.example.com{target}")
    } else {
        target
    };
    let mut b = http::Request::builder().method(method).uri(uri);
    if !s.absolute_uri {
        b = b.header(http::header::HOST, "api.example.com");
    }
    let mut names = Vec::new();
    for (n, v) in s.headers.iter().take(4) {
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.as_bytes()), HeaderValue::from_str(v)) else {
            continue;
        };
        if RESERVED.contains(&n.as_str()) {
            continue;
        }
        names.push(n.clone());
        b = b.header(n, v);
    }
    let mut custom_digest = false;
    if let Some(d) = s.content_digest.and_then(|d| HeaderValue::from_str(d).ok()) {
        b = b.header("content-digest", d);
        custom_digest = true;
    }
    let Ok(mut req) = b.body(s.body.to_vec()) else {
        return;
    };

    let field = |i: u8| names.get(usize::from(i) % names.len().max(1)).cloned();
    let mut comps = Vec::new();
    // Field names covered as plain or `;bs` values: any change to them changes the base.
    let mut plain_fields = Vec::new();
    let (mut method_cov, mut path_cov, mut query_cov) = (false, false, false);
    for c in s.components.iter().take(8) {
        let comp = match *c {
            Comp::Method => {
                method_cov = true;
                Some(Component::method())
            }
            Comp::TargetUri | Comp::RequestTarget => {
                path_cov = true;
                query_cov = true;
                Some(if matches!(c, Comp::TargetUri) { Component::target_uri() } else { Component::request_target() })
            }
            Comp::Authority => Some(Component::authority()),
            Comp::Scheme => Some(Component::scheme()),
            Comp::Path => {
                path_cov = true;
                Some(Component::path())
            }
            Comp::Query => {
                query_cov = true;
                Some(Component::query())
            }
            Comp::QueryParam(n) => Component::query_param(n).ok(),
            Comp::Field(i) => field(i).map(|n| {
                plain_fields.push(n.clone());
                Component::field(n)
            }),
            Comp::FieldBs(i) => field(i).map(|n| {
                plain_fields.push(n.clone());
                Component::field(n).bs()
            }),
            Comp::FieldSf(i) => field(i).map(|n| Component::field(n).sf()),
            Comp::FieldKey(i, k) => field(i).and_then(|n| Component::field(n).key(k).ok()),
        };
        if let Some(comp) = comp {
            if !comps.contains(&comp) {
                comps.push(comp);
            }
        }
    }
    let clock = clock();
    let Ok(signer) = Signer::builder("client-1", HmacSecret::new(SECRET).expect("long enough"))
        .components(comps)
        .clock(clock.clone())
        .build()
    else {
        return;
    };
    if signer.sign(&mut req).is_err() {
        // Components the request does not have (an absent field or parameter) cannot be
        // signed; that is the signer's correct answer.
        return;
    }
    let (parts, body) = req.into_parts();
    let msg = Msg {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let router = router(clock);

    if let Some(m) = s.mutation {
        let mut bad = msg.clone();
        let must_refuse = match m {
            Mutation::Body(pos, byte) => {
                if bad.body.is_empty() {
                    false
                } else {
                    let i = usize::from(pos) % bad.body.len();
                    bad.body[i] = byte;
                    bad.body != msg.body && !custom_digest
                }
            }
            Mutation::SignatureInput(pos, byte) | Mutation::Signature(pos, byte) => {
                let name = if matches!(m, Mutation::Signature(..)) { SIGNATURE } else { SIGNATURE_INPUT };
                let orig = msg.headers.get(&name).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
                let mut v = orig.clone();
                let i = usize::from(pos) % v.len().max(1);
                if let Some(b) = v.get_mut(i) {
                    *b = byte;
                }
                match HeaderValue::from_bytes(&v) {
                    Ok(hv) if v != orig => {
                        bad.headers.insert(name.clone(), hv);
                        !(name == SIGNATURE && same_signature(&orig, &v))
                    }
                    _ => false,
                }
            }
            Mutation::Method(i) => {
                let other = METHODS[usize::from(i) % METHODS.len()];
                bad.method = Method::from_bytes(other.as_bytes()).expect("valid method");
                method_cov && bad.method != msg.method
            }
            Mutation::Path(pos) | Mutation::Query(pos) => {
                let is_path = matches!(m, Mutation::Path(_));
                let text = if is_path { msg.uri.path().to_owned() } else { msg.uri.query().unwrap_or_default().to_owned() };
                if text.is_empty() || (is_path && text.len() < 2) {
                    false
                } else {
                    // Never the leading '/': the path must stay a path.
                    let i = if is_path { 1 + usize::from(pos) % (text.len() - 1) } else { usize::from(pos) % text.len() };
                    let mut t = text.into_bytes();
                    t[i] = alnum_other(t[i], pos);
                    let t = String::from_utf8_lossy(&t).into_owned();
                    let (p, q) = if is_path { (t, msg.uri.query().map(str::to_owned)) } else { (msg.uri.path().to_owned(), Some(t)) };
                    let pq = match q { Some(q) => format!("{p}?{q}"), None => p };
                    let mut parts = msg.uri.clone().into_parts();
                    match pq.parse() {
                        Ok(pq) => {
                            parts.path_and_query = Some(pq);
                            match Uri::from_parts(parts) {
                                Ok(u) => {
                                    bad.uri = u;
                                    if is_path { path_cov } else { query_cov }
                                }
                                Err(_) => false,
                            }
                        }
                        Err(_) => false,
                    }
                }
            }
            Mutation::Header(idx, pos) => match field(idx) {
                Some(n) => {
                    let orig = msg.headers.get(&n).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
                    if orig.is_empty() {
                        false
                    } else {
                        let mut v = orig.clone();
                        let i = usize::from(pos) % v.len();
                        v[i] = alnum_other(v[i], pos);
                        match HeaderValue::from_bytes(&v) {
                            Ok(hv) => {
                                bad.headers.insert(n.clone(), hv);
                                plain_fields.contains(&n) && msg.headers.get_all(&n).iter().count() == 1
                            }
                            Err(_) => false,
                        }
                    }
                }
                None => false,
            },
        };
        let changed = bad.method != msg.method
            || bad.uri != msg.uri
            || bad.headers != msg.headers
            || bad.body != msg.body;
        if changed {
            let st = status(&router, &bad);
            if must_refuse {
                assert_ne!(st, 200, "a mutated signed request was accepted: {m:?}");
            }
            assert!(matches!(st, 200 | 400 | 401 | 413), "mutated request answered {st}");
            if st == 200 {
                // A change to an uncovered part legitimately passed and used the nonce.
                return;
            }
        }
    }

    let st = status(&router, &msg);
    if custom_digest {
        // A Content-Digest the client set itself is checked against the body.
        if st == 200 {
            let v = msg.headers.get("content-digest").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default();
            let s256 = STANDARD.encode(sha2::Sha256::digest(&msg.body));
            let s512 = STANDARD.encode(sha2::Sha512::digest(&msg.body));
            assert!(v.contains(&s256) || v.contains(&s512), "wrong Content-Digest accepted");
        }
        return;
    }
    assert_eq!(st, 200, "sign then verify failed for {s:?}");
    // The same request again is a replay.
    assert_eq!(status(&router, &msg), 401, "a replayed signed request was accepted");
}

fuzz_target!(|input: Input<'_>| match input {
    Input::Raw(r) => check_raw(&r),
    Input::Signed(s) => check_signed(&s),
});
