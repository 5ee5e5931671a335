//! The RFC 9421 verifier's policy, driven with the signing half through a real axum `Router`.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{ManualClock, SharedClock};
use apiauth_core::{ReplayStore, StoreError};
use apiauth_hmac::{
    Component, CoveragePolicy, HmacKey, HmacKeyStore, HmacSecret, HttpSignatureVerifier,
    MemoryHmacKeyStore, RotatingSecret, Signer, sign_request,
};
use async_trait::async_trait;
use axum::body::Body;
use common::{NOW, SECRET, app_for, clock, copy, keys, secret, send, signed, signer};
use http::{HeaderName, Request, StatusCode};

#[tokio::test]
async fn signed_request_reaches_handler_with_principal_and_unchanged_body() {
    let c = clock();
    let app = app_for(&c);
    let req = signed(
        &signer(&c),
        "http://api.example.com/orders?dry=1",
        br#"{"qty":1}"#,
    );
    assert!(req.headers().contains_key("content-digest"));
    let res = send(&app, copy(&req)).await;
    assert_eq!(res.status, StatusCode::OK);
    let j = res.json();
    assert_eq!(j["subject"], "acme");
    assert_eq!(j["tenant"], "tenant-a");
    assert_eq!(j["credential_id"], "client-1");
    assert_eq!(j["label"], "sig1");
    assert_eq!(j["body"], r#"{"qty":1}"#);
}

#[tokio::test]
async fn request_without_signature_gets_401_with_signature_challenge() {
    let c = clock();
    let app = app_for(&c);
    let req = Request::get("http://api.example.com/orders")
        .body(Body::empty())
        .unwrap();
    let res = send(&app, req).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers["www-authenticate"], r#"Signature realm="api""#);
}

#[tokio::test]
async fn replayed_nonce_is_rejected() {
    let c = clock();
    let app = app_for(&c);
    let req = signed(&signer(&c), "http://api.example.com/orders", b"{}");
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);
    let again = send(&app, copy(&req)).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    // Still refused later in the window.
    c.advance(Duration::from_secs(200));
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn stale_created_is_rejected() {
    let c = clock();
    let app = app_for(&c);
    let req = signed(&signer(&c), "http://api.example.com/orders", b"{}");
    c.advance(Duration::from_secs(301));
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn created_in_the_future_past_the_skew_is_rejected_but_within_it_accepted() {
    let c = clock();
    let app = app_for(&c);
    let ahead = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 31));
    let req = signed(&signer(&ahead), "http://api.example.com/orders", b"{}");
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let slightly = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 20));
    let req = signed(&signer(&slightly), "http://api.example.com/orders", b"{}");
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn expired_signature_is_rejected() {
    let c = clock();
    let app = app_for(&c);
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .expires_in(Duration::from_secs(10))
        .build()
        .unwrap();
    let req = signed(&s, "http://api.example.com/orders", b"{}");
    c.advance(Duration::from_secs(41)); // 10 s validity + 30 s skew
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn missing_required_component_is_rejected() {
    let c = clock();
    let app = app_for(&c);
    // No `@query`/`@authority`: the target is not covered.
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .components([Component::method(), Component::path()])
        .build()
        .unwrap();
    let req = signed(&s, "http://api.example.com/orders", b"{}");
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // `@target-uri` alone satisfies the target requirement.
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .components([Component::method(), Component::target_uri()])
        .build()
        .unwrap();
    let req = signed(&s, "http://api.example.com/orders", b"{}");
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);

    // A policy that also requires `date`.
    let v = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .policy(
            CoveragePolicy::recommended()
                .require(Component::field(HeaderName::from_static("date"))),
        )
        .build()
        .unwrap();
    let app = common::app(v);
    let mut req = Request::post("http://api.example.com/orders")
        .header("date", "Tue, 14 Nov 2023 22:13:20 GMT")
        .body(b"{}".to_vec())
        .unwrap();
    sign_request(&mut req, &signer(&c)).unwrap();
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .cover(Component::field(HeaderName::from_static("date")))
        .build()
        .unwrap();
    let mut req = Request::post("http://api.example.com/orders")
        .header("date", "Tue, 14 Nov 2023 22:13:20 GMT")
        .body(b"{}".to_vec())
        .unwrap();
    sign_request(&mut req, &s).unwrap();
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn body_digest_mismatch_is_rejected() {
    let c = clock();
    let app = app_for(&c);
    let mut req = signed(
        &signer(&c),
        "http://api.example.com/orders",
        br#"{"qty":1}"#,
    );
    *req.body_mut() = br#"{"qty":9}"#.to_vec();
    let res = send(&app, copy(&req)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn body_without_covered_digest_is_rejected() {
    let c = clock();
    let app = app_for(&c);
    // Signed without a body (so no digest), then a body is attached.
    let mut req = signed(&signer(&c), "http://api.example.com/orders", b"");
    assert!(!req.headers().contains_key("content-digest"));
    *req.body_mut() = b"{}".to_vec();
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413_declared_or_streamed() {
    let c = clock();
    let v = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .max_body_bytes(16)
        .build()
        .unwrap();
    let app = common::app(v);
    let body = b"0123456789abcdefX".to_vec(); // 17 bytes
    let req = signed(&signer(&c), "http://api.example.com/orders", &body);
    let mut with_len = copy(&req);
    with_len
        .headers_mut()
        .insert("content-length", http::HeaderValue::from(17));
    assert_eq!(
        send(&app, with_len).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // No Content-Length: the limit holds while streaming.
    let req = signed(&signer(&c), "http://api.example.com/orders", &body);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(5).map(|c| Ok(c.to_vec())).collect();
    let mut streamed = copy(&req);
    *streamed.body_mut() = Body::from_stream(futures_util::stream::iter(chunks));
    assert_eq!(
        send(&app, streamed).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // At the limit it passes.
    let req = signed(&signer(&c), "http://api.example.com/orders", &body[..16]);
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_key_id_and_wrong_secret_are_rejected() {
    let c = clock();
    let app = app_for(&c);
    let s = Signer::builder("nobody", secret())
        .clock(Arc::new(c.clone()))
        .build()
        .unwrap();
    let req = signed(&s, "http://api.example.com/orders", b"{}");
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let s = Signer::builder("client-1", HmacSecret::new([9u8; 32]).unwrap())
        .clock(Arc::new(c.clone()))
        .build()
        .unwrap();
    let req = signed(&s, "http://api.example.com/orders", b"{}");
    assert_eq!(
        send(&app, copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rotated_key_old_and_new_both_valid_in_the_overlap_then_only_new() {
    let c = clock();
    let old = HmacSecret::new([1u8; 32]).unwrap();
    let new = HmacSecret::new([2u8; 32]).unwrap();
    let keys = MemoryHmacKeyStore::new();
    let cutover = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 60);
    keys.insert(
        "client-1",
        HmacKey::new("acme")
            .secret(RotatingSecret::new(old.clone()).until(cutover))
            .secret(new.clone()),
    );
    let v = HttpSignatureVerifier::builder(keys)
        .clock(Arc::new(c.clone()))
        .build()
        .unwrap();
    let app = common::app(v);
    let with = |s: &HmacSecret| {
        Signer::builder("client-1", s.clone())
            .clock(Arc::new(c.clone()) as SharedClock)
            .build()
            .unwrap()
    };
    let u = "http://api.example.com/orders";
    assert_eq!(
        send(&app, copy(&signed(&with(&old), u, b"{}")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, copy(&signed(&with(&new), u, b"{}")))
            .await
            .status,
        StatusCode::OK
    );
    c.advance(Duration::from_secs(61));
    assert_eq!(
        send(&app, copy(&signed(&with(&old), u, b"{}")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, copy(&signed(&with(&new), u, b"{}")))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_nonce_is_rejected_by_default_and_allowed_only_dangerously() {
    let c = clock();
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .dangerous_without_nonce()
        .build()
        .unwrap();
    let req = signed(&s, "http://api.example.com/orders", b"{}");
    assert_eq!(
        send(&app_for(&c), copy(&req)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let v = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .dangerous_without_nonce()
        .build()
        .unwrap();
    assert_eq!(
        send(&common::app(v), copy(&req)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_structured_fields_are_400_and_never_panic() {
    let c = clock();
    let app = app_for(&c);
    let long = format!("sig1=({})", "\"@method\" ".repeat(2000));
    let nested = format!("sig1={}", "(".repeat(5000));
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"".to_vec(), b"sig1=:AAAA:".to_vec()),
        (b"sig1".to_vec(), b"sig1=:AAAA:".to_vec()),
        (b"sig1=(".to_vec(), b"sig1=:AAAA:".to_vec()),
        (
            b"sig1=(\"@method\";created=abc".to_vec(),
            b"sig1=:AAAA:".to_vec(),
        ),
        (
            b"sig1=(\"@method\");created=1".to_vec(),
            b"sig1=:not base64:".to_vec(),
        ),
        (
            b"sig1=(\"@method\");created=1".to_vec(),
            b"sig1=\"text\"".to_vec(),
        ),
        (
            b"sig1=(\"@method\");created=1".to_vec(),
            b"other=:AAAA:".to_vec(),
        ),
        (b"sig1=\"@method\"".to_vec(), b"sig1=:AAAA:".to_vec()),
        (b"sig1=(@method)".to_vec(), b"sig1=:AAAA:".to_vec()),
        (
            b"sig1=(\"@method\" \"@method\");created=1".to_vec(),
            b"sig1=:AAAA:".to_vec(),
        ),
        (
            b"sig1=(\"Content-Type\");created=1".to_vec(),
            b"sig1=:AAAA:".to_vec(),
        ),
        (
            b"sig1=(\"@method\");created=\"1\"".to_vec(),
            b"sig1=:AAAA:".to_vec(),
        ),
        (
            b"sig1=(\"@method\");created=99999999999999999999".to_vec(),
            b"sig1=:AAAA:".to_vec(),
        ),
        (b"sig1=(\"\xff\xfe\")".to_vec(), b"sig1=:AAAA:".to_vec()),
        (long.into_bytes(), b"sig1=:AAAA:".to_vec()),
        (nested.into_bytes(), b"sig1=:AAAA:".to_vec()),
        (b"sig1=(\"@method\");created=1".to_vec(), Vec::new()),
    ];
    for (input, sig) in cases {
        let mut b = Request::post("http://api.example.com/orders").header(
            "signature-input",
            http::HeaderValue::from_bytes(&input).unwrap(),
        );
        if !sig.is_empty() {
            b = b.header("signature", http::HeaderValue::from_bytes(&sig).unwrap());
        }
        let res = send(&app, b.body(Body::from("{}")).unwrap()).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&input)
        );
        // RFC 9421 defines no error codes; none is borrowed from Bearer.
        assert!(res.json().get("error").is_none(), "{}", res.json());
        assert_eq!(res.json()["status"], 400);
    }
    // Only `Signature`, no `Signature-Input`.
    let req = Request::get("http://api.example.com/")
        .header("signature", "sig1=:AAAA:")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::BAD_REQUEST);
}

struct DownKeys;

#[async_trait]
impl HmacKeyStore for DownKeys {
    async fn key(&self, _: &str) -> Result<Option<HmacKey>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

struct DownReplay;

#[async_trait]
impl ReplayStore for DownReplay {
    async fn insert_if_absent(&self, _: &str, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn store_failures_fail_closed_with_503() {
    let c = clock();
    let v = HttpSignatureVerifier::builder(DownKeys)
        .clock(Arc::new(c.clone()))
        .build()
        .unwrap();
    let req = signed(&signer(&c), "http://api.example.com/orders", b"{}");
    let res = send(&common::app(v), copy(&req)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers.contains_key("retry-after"));

    let v = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .replay_store(DownReplay)
        .build()
        .unwrap();
    let res = send(&common::app(v), copy(&req)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn sf_key_bs_query_param_and_multiple_field_lines_are_covered() {
    let c = clock();
    let v = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .policy(CoveragePolicy::dangerous_minimal().require(Component::method()))
        .build()
        .unwrap();
    let app = common::app(v);
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .components([
            Component::method(),
            Component::query_param("Pet").unwrap(),
            Component::field(HeaderName::from_static("priority")).sf(),
            Component::field(HeaderName::from_static("x-list")).bs(),
            Component::field(HeaderName::from_static("x-multi")),
        ])
        .cover(
            Component::field(HeaderName::from_static("content-digest"))
                .key("sha-256")
                .unwrap(),
        )
        .build()
        .unwrap();
    let build = |query: &str, priority: &str, lines: [&str; 2]| {
        let mut r = Request::post(format!("http://api.example.com/p?{query}"))
            .header("priority", priority)
            .header("x-list", lines[0])
            .header("x-list", lines[1])
            .header("x-multi", lines[0])
            .header("x-multi", lines[1])
            .body(b"{}".to_vec())
            .unwrap();
        sign_request(&mut r, &s).unwrap();
        r
    };
    let req = build("Pet=dog&a=1", "u=1,   i", ["one", " two "]);
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);

    // An uncovered query parameter may change; the covered one may not.
    let req = build("Pet=dog&a=1", "u=1, i", ["one", "two"]);
    let moved = |r: &Request<Vec<u8>>, uri: &str| {
        let mut x = copy(r);
        *x.uri_mut() = uri.parse().unwrap();
        x
    };
    assert_eq!(
        send(&app, moved(&req, "http://api.example.com/p?Pet=dog&a=2"))
            .await
            .status,
        StatusCode::OK
    );
    let req = build("Pet=dog&a=1", "u=1, i", ["one", "two"]);
    assert_eq!(
        send(&app, moved(&req, "http://api.example.com/p?Pet=cat&a=1"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // `;sf` re-serializes, so spacing inside the structured field does not matter.
    let req = build("Pet=dog", "u=1, i", ["one", "two"]);
    let mut x = copy(&req);
    x.headers_mut().insert("priority", "u=1,i".parse().unwrap());
    assert_eq!(send(&app, x).await.status, StatusCode::OK);

    // The order of field lines matters (RFC 9421 §2.1).
    let req = build("Pet=dog", "u=1, i", ["one", "two"]);
    let mut x = copy(&req);
    x.headers_mut().remove("x-multi");
    x.headers_mut().append("x-multi", "two".parse().unwrap());
    x.headers_mut().append("x-multi", "one".parse().unwrap());
    assert_eq!(send(&app, x).await.status, StatusCode::UNAUTHORIZED);

    // Missing a covered field.
    let req = build("Pet=dog", "u=1, i", ["one", "two"]);
    let mut x = copy(&req);
    x.headers_mut().remove("x-list");
    assert_eq!(send(&app, x).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn http1_and_http2_request_forms_give_the_same_base() {
    let c = clock();
    let req = signed(&signer(&c), "http://API.example.com:80/orders?x=1", b"{}");
    // HTTP/2 form: authority in the URI.
    assert_eq!(send(&app_for(&c), copy(&req)).await.status, StatusCode::OK);
    // HTTP/1.1 form: origin-form target and a Host header; same signature headers.
    let mut h1 = copy(&req);
    *h1.uri_mut() = "/orders?x=1".parse().unwrap();
    h1.headers_mut()
        .insert("host", "api.example.com".parse().unwrap());
    assert_eq!(send(&app_for(&c), h1).await.status, StatusCode::OK);
}

#[tokio::test]
async fn scheme_is_configured_behind_a_tls_terminating_proxy() {
    let c = clock();
    let s = Signer::builder("client-1", secret())
        .clock(Arc::new(c.clone()))
        .components([
            Component::method(),
            Component::target_uri(),
            Component::scheme(),
        ])
        .build()
        .unwrap();
    let req = signed(&s, "https://api.example.com/orders", b"{}");
    // What reaches the app after TLS termination: HTTP/1.1, no scheme in the request line.
    let behind_proxy = || {
        let mut x = copy(&req);
        *x.uri_mut() = "/orders".parse().unwrap();
        x.headers_mut()
            .insert("host", "api.example.com".parse().unwrap());
        x
    };
    assert_eq!(
        send(&app_for(&c), behind_proxy()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let v = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .scheme("https")
        .build()
        .unwrap();
    assert_eq!(
        send(&common::app(v), behind_proxy()).await.status,
        StatusCode::OK
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let c = clock();
    let s = signer(&c);
    let text = format!(
        "{s:?} {:?} {:?}",
        secret(),
        HmacKey::new("x").secret(secret())
    );
    assert!(!text.contains(std::str::from_utf8(&SECRET).unwrap()));
    assert!(!text.contains("48, 49, 50")); // the bytes as a list
    assert!(text.contains("redacted"));
}

#[test]
fn short_secrets_are_refused_unless_dangerous() {
    assert!(HmacSecret::new([0u8; 31]).is_err());
    assert!(HmacSecret::dangerous_short([0u8; 1]).is_ok());
    assert!(HmacSecret::dangerous_short([]).is_err());
}

/// A GET signed by hand (as a shell client would) with the given `nonce` parameter.
fn signed_with_nonce(nonce: &str) -> Request<Body> {
    use hmac::{Mac, SimpleHmac};
    let params = format!(
        r#"("@method" "@authority" "@path" "@query");created={NOW};keyid="client-1";alg="hmac-sha256";nonce="{nonce}""#
    );
    let base = format!(
        "\"@method\": GET\n\"@authority\": api.example.com\n\"@path\": /orders\n\"@query\": ?\n\"@signature-params\": {params}"
    );
    let mut mac = <SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(&SECRET).unwrap();
    mac.update(base.as_bytes());
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        mac.finalize().into_bytes(),
    );
    Request::get("http://api.example.com/orders")
        .header("signature-input", format!("sig1={params}"))
        .header("signature", format!("sig1=:{sig}:"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn empty_nonce_is_rejected_even_when_nonces_are_optional() {
    let c = clock();
    // The same hand-made signature with a real nonce passes: only the empty value is refused.
    assert_eq!(
        send(&app_for(&c), signed_with_nonce("n-1")).await.status,
        StatusCode::OK
    );
    let logs = common::capture_logs();
    let res = send(&app_for(&c), signed_with_nonce("")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers["www-authenticate"], r#"Signature realm="api""#);
    assert!(logs.text().contains("empty_nonce"), "{}", logs.text());
    let lenient = HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(c.clone()))
        .dangerous_without_nonce()
        .build()
        .unwrap();
    assert_eq!(
        send(&common::app(lenient), signed_with_nonce(""))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}
