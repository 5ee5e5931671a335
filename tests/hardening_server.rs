//! Issue 15, items 5, 6 and 7: the example holds against slow and hostile clients, wants
//! HTTPS for credentials sent in a body, and logs no query credential even at TRACE.
//!
//! The example runs as a separate process on loopback (see `tests/support`); slow clients are
//! raw TCP sockets that send part of a request and stop. No assertion is about how long
//! something took: each waits generously for what must happen (a close, a status) and fails
//! only when it does not happen at all.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth::hmac::{HmacSecret, Signer};
use base64::Engine;
use serde_json::Value;
use support::{Saas, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than any timeout a test configures, so that a loaded machine cannot make a test
/// fail; a server that never acts makes it fail.
const PATIENCE: Duration = Duration::from_secs(30);

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

fn addr(s: &Saas) -> String {
    s.base
        .rsplit("//")
        .next()
        .unwrap()
        .replace("localhost", "127.0.0.1")
}

/// A connection that has sent `bytes` and nothing more.
async fn half_sent(s: &Saas, bytes: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(addr(s)).await.unwrap();
    c.write_all(bytes).await.unwrap();
    c
}

/// What the server sends until it closes the connection, or `None` when it keeps the
/// connection open for all of `PATIENCE`.
async fn until_closed(c: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| got)
}

/// Reads one response head (up to the blank line).
async fn read_head(c: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            match c.read(&mut byte).await {
                Ok(1) => got.push(byte[0]),
                _ => return,
            }
        }
    })
    .await
    .expect("a response head");
    got
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The head of a billing webhook delivery declaring `len` bytes. The signature is
/// well-formed but wrong: whoever sends it needs no secret, which is why its body is read
/// before anything is known about the sender.
fn webhook_head(len: usize) -> Vec<u8> {
    format!(
        "POST /v1/webhooks/billing HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Webhook-Signature: t={},v1={}\r\nContent-Length: {len}\r\n\r\n",
        now(),
        "0".repeat(64)
    )
    .into_bytes()
}

async fn healthz(s: &Saas) -> u16 {
    // A fresh client: no pooled connection from before.
    let http = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    http.get(s.url("/healthz"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_timeout() {
    let mut s = Saas::start(&["--header-timeout", "1"]).await;
    let mut c = half_sent(&s, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await;
    let answer = until_closed(&mut c).await;
    assert_eq!(
        answer,
        Some(Vec::new()),
        "the connection is closed without an answer"
    );
    // A connection that sends nothing at all is closed too.
    let mut silent = half_sent(&s, b"").await;
    assert_eq!(until_closed(&mut silent).await, Some(Vec::new()));
    // Graceful shutdown still works with a half-sent head open.
    let _open = half_sent(&s, b"GET / HTTP/1.1\r\n").await;
    assert!(s.terminate().success());
}

#[tokio::test]
async fn a_stalled_tls_handshake_and_an_idle_keep_alive_connection_are_closed() {
    // The header timeout is far away: only the handshake and idle timeouts can act.
    let s = Saas::start(&[
        "--dev-tls",
        "--tls-handshake-timeout",
        "1",
        "--header-timeout",
        "600",
    ])
    .await;
    let mut c = half_sent(&s, b"").await;
    assert_eq!(until_closed(&mut c).await, Some(Vec::new()));

    let s = Saas::start(&["--idle-timeout", "1", "--header-timeout", "600"]).await;
    let mut c = half_sent(&s, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    // Answered, kept alive, then closed once idle.
    let answer = until_closed(&mut c).await.expect("closed once idle");
    assert_eq!(status_of(&answer), Some(200));
}

#[tokio::test]
async fn past_the_connection_cap_half_sent_heads_are_closed_and_healthz_answers() {
    // The header timeout is far away: only the cap can close these connections.
    let s = Saas::start(&["--max-connections", "32", "--header-timeout", "600"]).await;
    let mut heads = Vec::new();
    for _ in 0..200 {
        heads.push(half_sent(&s, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await);
    }
    assert_eq!(healthz(&s).await, 200);
    // The server holds at most 32 of them: the others were closed, oldest first.
    let mut closed = 0;
    for c in &mut heads[..160] {
        if until_closed(c).await == Some(Vec::new()) {
            closed += 1;
        }
    }
    assert_eq!(closed, 160, "connections past the cap are closed");
}

#[tokio::test]
async fn a_stalled_body_gets_408_after_the_body_timeout() {
    let s = Saas::start(&["--body-timeout", "1"]).await;
    // A form the token endpoint reads before authenticating anyone...
    let mut c = half_sent(
        &s,
        b"POST /oauth/token HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
          grant_type=client_credentials",
    )
    .await;
    let answer = until_closed(&mut c).await.expect("answered and closed");
    assert_eq!(
        status_of(&answer),
        Some(408),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // ...and a webhook body read for its signature.
    let mut head = webhook_head(1000);
    head.extend_from_slice(b"{\"partial\":");
    let mut c = half_sent(&s, &head).await;
    let answer = until_closed(&mut c).await.expect("answered and closed");
    assert_eq!(
        status_of(&answer),
        Some(408),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(healthz(&s).await, 200);
}

#[tokio::test]
async fn connections_past_the_cap_are_not_served_until_a_slot_frees() {
    let s = Saas::start(&["--max-connections", "2", "--body-timeout", "3"]).await;
    // Two connections with a request in flight (a body that stalls) fill both slots. The
    // `100 Continue` (RFC 9110 §10.1.1) shows the server is reading each body.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut head = webhook_head(1000);
        head.truncate(head.len() - 2);
        head.extend_from_slice(b"Expect: 100-continue\r\n\r\n");
        let mut c = half_sent(&s, &head).await;
        let interim = read_head(&mut c).await;
        assert_eq!(status_of(&interim), Some(100));
        c.write_all(b"{").await.unwrap();
        busy.push(c);
    }
    let mut third = half_sent(&s, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let answer = until_closed(&mut third).await;
    assert_eq!(
        answer,
        Some(Vec::new()),
        "no slot is free: the connection is closed unanswered"
    );
    // The stalled bodies time out (408), their slots free, and the next client is served.
    for c in &mut busy {
        let answer = until_closed(c).await.expect("answered and closed");
        assert_eq!(status_of(&answer), Some(408));
    }
    assert_eq!(healthz(&s).await, 200);
}

fn signer(s: &Saas) -> Signer {
    let secret = base64::engine::general_purpose::STANDARD
        .decode(cred(s, &["hmac", "secret_base64"]))
        .unwrap();
    Signer::builder(
        cred(s, &["hmac", "key_id"]),
        HmacSecret::new(secret).unwrap(),
    )
    .build()
    .unwrap()
}

async fn signed_crm_event(s: &Saas) -> reqwest::Response {
    let mut req = http::Request::post(s.url("/v1/webhooks/crm"))
        .header("content-type", "application/json")
        .body(br#"{"event":"contact.updated"}"#.to_vec())
        .unwrap();
    signer(s).sign(&mut req).unwrap();
    s.http
        .execute(reqwest::Request::try_from(req).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn stalled_bodies_beyond_the_body_budget_get_503_with_retry_after() {
    let s = Saas::start(&["--body-budget", "2MiB", "--body-timeout", "600"]).await;
    // Two stalled 1 MiB deliveries, from a sender with no secret, hold the whole budget.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut head = webhook_head(1024 * 1024);
        head.extend_from_slice(&[b' '; 1000]);
        stalled.push(half_sent(&s, &head).await);
    }
    // A validly signed request now finds no budget for its body: 503, not 413, not a wait.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let res = loop {
        let res = signed_crm_event(&s).await;
        // The stalled heads may not have been read yet on a loaded machine.
        if res.status() != 202 || tokio::time::Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 503);
    // A webhook delivery within its own limit is refused the same way.
    let mut c = half_sent(&s, &webhook_head(10)).await;
    c.write_all(b"{\"a\":true}").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, c.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).to_ascii_lowercase();
    assert_eq!(status_of(&answer[..n]), Some(503), "{text}");
    assert!(text.contains("retry-after:"), "{text}");
    // The stalled senders go away: their budget returns.
    drop(stalled);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = signed_crm_event(&s).await.status();
        if status == 202 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn token_form(s: &Saas) -> [(&'static str, &str); 4] {
    // client_secret_post (RFC 6749 §2.3.1): the secret travels in the body.
    [
        ("grant_type", "client_credentials"),
        ("scope", "companies:read"),
        ("client_id", cred(s, &["oauth_client", "client_id"])),
        ("client_secret", cred(s, &["oauth_client", "client_secret"])),
    ]
}

#[tokio::test]
async fn require_https_refuses_the_token_endpoint_over_plain_http() {
    let s = Saas::start(&["--require-https", "--trust-forwarded", "127.0.0.1/32"]).await;
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .form(&token_form(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Credentials must be sent over HTTPS.");
    assert!(body.get("access_token").is_none());
    // Revocation and introspection carry secrets and tokens in the body too.
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let res = s
            .http
            .post(s.url(path))
            .form(&[("token", "x"), ("client_id", "a"), ("client_secret", "b")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }
    // The public keys stay readable over HTTP.
    let res = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The trusted proxy says the client spoke HTTPS to it: a token is issued.
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .header("x-forwarded-proto", "https")
        .form(&token_form(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["access_token"].is_string());

    // Over TLS the same request is issued a token.
    let s = Saas::start(&["--require-https", "--dev-tls"]).await;
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .form(&token_form(&s))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn no_query_credential_reaches_the_log_at_trace() {
    let dir = TempDir::new("server-log");
    let log = dir.0.join("saas.log");
    let s = Saas::start_logging(&[], &[("RUST_LOG", "trace")], &log).await;
    let pro = cred(&s, &["api_keys", "pro", "key"]).to_owned();
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            cred(&s, &["oauth_client", "client_id"]),
            Some(cred(&s, &["oauth_client", "client_secret"])),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "companies:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Credentials in the query are refused (400), after the request was logged.
    for query in [format!("api_key={pro}"), format!("access_token={token}")] {
        let res = s
            .http
            .get(s.url(&format!("/v1/companies/acme.com?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{query}");
    }
    let secret = cred(&s, &["oauth_client", "client_secret"]).to_owned();
    let client_id = cred(&s, &["oauth_client", "client_id"]).to_owned();
    s.http
        .post(s.url(&format!(
            "/oauth/token?grant_type=client_credentials&client_id={client_id}&client_secret={secret}"
        )))
        .send()
        .await
        .unwrap();
    drop(s);
    let text = std::fs::read_to_string(&log).unwrap();
    // The filter is TRACE; the request span itself is a DEBUG span.
    assert!(text.contains("DEBUG request{"), "request spans are logged");
    assert!(
        text.contains("uri=/v1/companies/acme.com?api_key=*"),
        "the request span names the path and the parameter"
    );
    let token_signature = token.rsplit('.').next().unwrap();
    for (what, value) in [
        ("API key", pro.as_str()),
        ("API key secret", &pro[8..]),
        ("access token", token.as_str()),
        ("access token signature", token_signature),
        ("client secret", secret.as_str()),
    ] {
        assert!(!text.contains(value), "the {what} reached the log");
    }
}

#[tokio::test]
async fn a_request_not_answered_within_the_request_timeout_is_503_with_retry_after() {
    // The body may take 600 s but the whole request only 1 s: the server gives up first, and
    // says so with 503 (its limit, not the client's fault: no 408).
    let s = Saas::start(&["--request-timeout", "1", "--body-timeout", "600"]).await;
    let mut head = webhook_head(1000);
    head.push(b'{');
    let mut c = half_sent(&s, &head).await;
    let answer = read_head(&mut c).await;
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert_eq!(status_of(&answer), Some(503), "{text}");
    assert!(text.contains("retry-after:"), "{text}");
}
