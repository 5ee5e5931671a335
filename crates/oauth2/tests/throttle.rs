//! The token endpoint throttles (issue 15 item 4): failed client authentication at
//! `/oauth/token`, `/oauth/revoke` and `/oauth/introspect` counts per (client id, address)
//! and per address; past the limit 429 with `Retry-After`. Secret checks are bounded (503
//! with `Retry-After` past the queue timeout, never 401), and a verified secret is
//! remembered so that a valid client never queues behind a flood of wrong ones.
//!
//! Real HTTP on loopback; on Linux every 127.x address is loopback, so clients bind
//! 127.0.0.66 and 127.0.0.77 to be two addresses.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use apiauth_basic::PasswordHasher;
use apiauth_core::ScopeSet;
use apiauth_oauth2::{AuthorizationServer, MemoryClientRegistry};
use apiauth_testkit::Seen;
use common::{AUDIENCE, cheap_hasher, listener};

struct Served {
    base: String,
    clients: MemoryClientRegistry,
    secret: String,
}

/// A server with client `worker`, served with `ConnectInfo` so it sees client addresses.
async fn serve(
    tune: impl FnOnce(
        apiauth_oauth2::AuthorizationServerBuilder,
    ) -> apiauth_oauth2::AuthorizationServerBuilder,
    hasher: PasswordHasher,
) -> Served {
    let clients = MemoryClientRegistry::with_hasher(hasher.clone());
    let secret = clients
        .register("worker", ScopeSet::parse("a").unwrap())
        .expose_secret()
        .to_owned();
    let (l, addr) = listener().await;
    let base = format!("http://{addr}");
    let server = tune(
        AuthorizationServer::builder(base.clone())
            .dangerous_allow_http_issuer()
            .audience(AUDIENCE)
            .password_hasher(hasher)
            .clients(Arc::new(clients.clone())),
    )
    .build()
    .unwrap();
    let app = server
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Served {
        base,
        clients,
        secret,
    }
}

/// An HTTP client whose connections come from `ip` (any 127.x on Linux).
fn from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(http: &reqwest::Client, url: String, form: &[(&str, &str)]) -> Seen {
    let res = http.post(url).form(form).send().await.unwrap();
    Seen::read(http::Response::from(res)).await
}

async fn token(s: &Served, http: &reqwest::Client, secret: &str) -> Seen {
    post(
        http,
        format!("{}/oauth/token", s.base),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "worker"),
            ("client_secret", secret),
        ],
    )
    .await
}

fn assert_throttled(seen: &Seen) {
    assert_eq!(seen.status, 429, "{}", seen.body);
    assert!(seen.retry_after().is_some_and(|s| s >= 1), "Retry-After");
    assert_eq!(seen.json()["error"], "temporarily_unavailable");
    assert!(
        !seen.headers.contains_key("www-authenticate"),
        "a 429 is no challenge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_from_one_address_get_429_while_the_right_secret_from_another_gets_a_token() {
    let s = serve(|b| b, cheap_hasher()).await;
    let attacker = from("127.0.0.66");
    // The default: 10 failures per (client id, address), the first lock-out 60 s.
    for i in 0..10 {
        let seen = token(&s, &attacker, &format!("ocs_wrong{i}")).await;
        assert_eq!(seen.status, 401, "guess {i}");
        assert_eq!(seen.json()["error"], "invalid_client");
    }
    for _ in 0..5 {
        let seen = token(&s, &attacker, "ocs_wrong").await;
        assert_throttled(&seen);
        assert_eq!(seen.retry_after(), Some(60));
    }
    // Refused before any check: the right secret from the attacker's address too.
    assert_throttled(&token(&s, &attacker, &s.secret).await);
    // Nobody elsewhere is locked out of the client.
    let seen = token(&s, &from("127.0.0.77"), &s.secret).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.json()["access_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_at_token_revoke_and_introspect_add_up_and_each_answers_429() {
    let s = serve(|b| b, cheap_hasher()).await;
    let http = from("127.0.0.68");
    let wrong = [("client_id", "worker"), ("client_secret", "ocs_wrong")];
    let endpoints = ["token", "revoke", "introspect"];
    for i in 0..10 {
        let endpoint = endpoints[i % 3];
        let mut form = wrong.to_vec();
        form.push(("token", "x"));
        form.push(("grant_type", "client_credentials"));
        let seen = post(&http, format!("{}/oauth/{endpoint}", s.base), &form).await;
        assert_eq!(seen.status, 401, "{endpoint}: {}", seen.body);
    }
    for endpoint in endpoints {
        let mut form = wrong.to_vec();
        form.push(("token", "x"));
        form.push(("grant_type", "client_credentials"));
        assert_throttled(&post(&http, format!("{}/oauth/{endpoint}", s.base), &form).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_spraying_client_ids_meets_the_address_lock() {
    let s = serve(|b| b, cheap_hasher()).await;
    let spray = from("127.0.0.69");
    for i in 0..20 {
        let seen = post(
            &spray,
            format!("{}/oauth/token", s.base),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &format!("client{i}")),
                ("client_secret", "ocs_x"),
            ],
        )
        .await;
        assert_eq!(seen.status, 401);
    }
    let seen = token(&s, &spray, &s.secret).await;
    assert_throttled(&seen);
    assert_eq!(seen.retry_after(), Some(900));
    assert_eq!(token(&s, &from("127.0.0.70"), &s.secret).await.status, 200);
}

/// Argon2 costly enough that eight checks through one slot take far longer than 200 ms.
fn costly() -> PasswordHasher {
    PasswordHasher::with_params(32 * 1024, 2, 1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_secret_checks_are_503_with_retry_after_and_never_401_for_the_waiting() {
    let s = serve(
        |b| {
            b.max_concurrent_secret_checks(1)
                .secret_check_queue_timeout(Duration::from_millis(200))
        },
        costly(),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let http = from(&format!("127.0.1.{}", i + 1));
        let url = format!("{}/oauth/token", s.base);
        tasks.push(tokio::spawn(async move {
            post(
                &http,
                url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", "worker"),
                    ("client_secret", "ocs_wrong"),
                ],
            )
            .await
        }));
    }
    let mut saturated = 0;
    for t in tasks {
        let seen = t.await.unwrap();
        match seen.status.as_u16() {
            401 => assert_eq!(seen.json()["error"], "invalid_client"),
            503 => {
                saturated += 1;
                assert_eq!(seen.retry_after(), Some(1));
                assert_eq!(seen.json()["error"], "temporarily_unavailable");
                assert!(!seen.headers.contains_key("www-authenticate"));
            }
            other => panic!("unexpected {other}: {}", seen.body),
        }
    }
    assert!(
        saturated > 0,
        "eight costly checks through one slot in 200 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_client_never_queues_behind_a_flood_of_wrong_secrets() {
    // One slot and a short queue: any request that needs argon2 during the flood may get
    // 503. The verified client needs none.
    let s = serve(
        |b| {
            b.max_concurrent_secret_checks(1)
                .secret_check_queue_timeout(Duration::from_millis(50))
        },
        costly(),
    )
    .await;
    let user = from("127.0.0.77");
    assert_eq!(token(&s, &user, &s.secret).await.status, 200);

    let flood: Vec<_> = (0..16)
        .map(|i| {
            let http = from(&format!("127.0.2.{}", i + 1));
            let url = format!("{}/oauth/token", s.base);
            tokio::spawn(async move {
                for _ in 0..3 {
                    post(
                        &http,
                        url.clone(),
                        &[
                            ("grant_type", "client_credentials"),
                            ("client_id", "ghost"),
                            ("client_secret", "ocs_wrong"),
                        ],
                    )
                    .await;
                }
            })
        })
        .collect();
    for _ in 0..10 {
        let seen = token(&s, &user, &s.secret).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
    }
    for f in flood {
        f.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_or_removed_secret_is_not_served_from_the_cache() {
    let s = serve(|b| b, cheap_hasher()).await;
    let http = from("127.0.0.78");
    assert_eq!(token(&s, &http, &s.secret).await.status, 200);
    assert_eq!(token(&s, &http, &s.secret).await.status, 200);
    // Rotate: the old secret is refused at once, the new one works.
    let new = s
        .clients
        .register("worker", ScopeSet::parse("a").unwrap())
        .expose_secret()
        .to_owned();
    assert_eq!(token(&s, &http, &s.secret).await.status, 401);
    assert_eq!(token(&s, &http, &new).await.status, 200);
    assert!(s.clients.remove("worker"));
    assert_eq!(token(&s, &http, &new).await.status, 401);
}
