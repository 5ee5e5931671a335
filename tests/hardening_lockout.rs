//! Issue 15, items 2, 4 and 7 (last sentence), over real HTTP against the example process:
//! a lock-out nobody can aim, a token endpoint that throttles, and no unknown user-id at
//! WARN.
//!
//! On Linux every 127.x address is loopback, so a client bound with `local_address` to
//! 127.0.0.66 and one bound to 127.0.0.77 are two client addresses to the server.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sha2::Digest;
use support::{Saas, TempDir};

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

/// A client whose connections come from `ip`.
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The example's URL on 127.0.0.1 (`localhost` may resolve to ::1, which a client bound to
/// an IPv4 address cannot reach).
fn url(s: &Saas, path: &str) -> String {
    s.url(path).replacen("localhost", "127.0.0.1", 1)
}

async fn admin(
    s: &Saas,
    http: &reqwest::Client,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut req = http
        .get(url(s, "/admin/api-keys"))
        .basic_auth("admin", Some(password));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// 60 wrong admin passwords through `attack`: the first 5 are checked (401), then that
/// address is locked out of `admin` (429 with `Retry-After`, no challenge).
async fn sixty_wrong(s: &Saas, attack: &reqwest::Client, xff: Option<&str>) {
    for i in 0..60 {
        let res = admin(s, attack, &format!("wrong-{i}"), xff).await;
        if i < 5 {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {i}");
        } else {
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "guess {i}");
            let after = retry_after(&res);
            assert!((800..=900).contains(&after), "Retry-After {after}");
            assert!(res.headers().get("www-authenticate").is_none());
        }
    }
}

#[tokio::test]
async fn sixty_wrong_admin_passwords_from_one_address_leave_admin_free_from_another() {
    let s = Saas::start(&[]).await;
    let password = cred(&s, &["admin", "password"]).to_owned();
    let attacker = from("127.0.0.66");
    sixty_wrong(&s, &attacker, None).await;
    let res = admin(&s, &from("127.0.0.77"), &password, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap()["keys"].is_array());
    // The attacker's address stays locked, the right password included.
    let res = admin(&s, &attacker, &password, None).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked_out() {
    // Loopback is the trusted proxy; the clients are the addresses it forwards for.
    let s = Saas::start(&["--trust-forwarded"]).await;
    let password = cred(&s, &["admin", "password"]).to_owned();
    let proxy = from("127.0.0.1");
    sixty_wrong(&s, &proxy, Some("203.0.113.66")).await;
    let res = admin(&s, &proxy, &password, Some("203.0.113.77")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = admin(&s, &proxy, &password, Some("203.0.113.66")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn guesses_spread_over_many_addresses_reach_the_per_user_lock() {
    let s = Saas::start(&[]).await;
    let password = cred(&s, &["admin", "password"]).to_owned();
    // 20 addresses × 5 failures: no address passes its own limits, and admin reaches the
    // per-user limit of 100. Four addresses at a time, each sequentially.
    let s = std::sync::Arc::new(s);
    for chunk in (1..=20u8).collect::<Vec<_>>().chunks(4) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&host| {
                let s = s.clone();
                tokio::spawn(async move {
                    let http = from(&format!("127.0.3.{host}"));
                    for i in 0..5 {
                        let res = admin(&s, &http, &format!("wrong-{i}"), None).await;
                        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{host}/{i}");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    // Locked from a fresh address too, the right password included: the first lock-out is
    // one minute (it doubles when renewed; see crates/basic/tests/lockout.rs).
    let res = admin(&s, &from("127.0.3.200"), &password, None).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let after = retry_after(&res);
    assert!((1..=60).contains(&after), "Retry-After {after}");
}

async fn token(s: &Saas, http: &reqwest::Client, secret: &str) -> reqwest::Response {
    http.post(url(s, "/oauth/token"))
        .basic_auth(cred(s, &["oauth_client", "client_id"]), Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_client_secrets_get_429_while_the_right_secret_from_another_address_gets_a_token() {
    let s = Saas::start(&[]).await;
    let secret = cred(&s, &["oauth_client", "client_secret"]).to_owned();
    let attacker = from("127.0.0.66");
    for i in 0..10 {
        let res = token(&s, &attacker, &format!("ocs_wrong{i}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let res = token(&s, &attacker, "ocs_wrong").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&res), 60);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());

    let res = token(&s, &from("127.0.0.77"), &secret).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn an_unknown_user_id_reaches_the_warn_log_only_as_a_short_hash() {
    let dir = TempDir::new("lockout-log");
    let log = dir.0.join("saas.log");
    let s = Saas::start_logging(&[], &[("RUST_LOG", "warn")], &log).await;
    // What a password pasted into the user field looks like.
    let pasted = "Tr0ub4dor-and-3-pasted";
    let res = s
        .http
        .get(s.url("/admin/api-keys"))
        .basic_auth(pasted, Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // `sha256:` and the first 8 hex digits, computed here independently of the crate.
    let digest = sha2::Sha256::digest(pasted.as_bytes());
    let short = format!(
        "sha256:{}",
        digest[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("unknown_user") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let line = text
        .lines()
        .find(|l| l.contains("unknown_user"))
        .unwrap_or_else(|| panic!("no reject event in the log:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&short), "{line}");
    assert!(
        !text.contains(pasted),
        "the user-id reached the log:\n{text}"
    );
}
