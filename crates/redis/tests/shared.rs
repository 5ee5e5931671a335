//! Two instances of one app, each with its own Redis connection, sharing one Redis.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::store::RevocationList;
use common::TestRedis;
use common::app::{get_with_token, instance};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Two routers on two backends (two connections) in one namespace, as two processes would be.
fn two_instances(redis: &TestRedis) -> (axum::Router, axum::Router, Arc<dyn RevocationList>) {
    let ns = common::unique_namespace();
    let a = redis.backend_in(&ns, TIMEOUT).stores();
    let b = redis.backend_in(&ns, TIMEOUT).stores();
    let router_a = instance(a.revocations.clone(), a.replay.clone());
    let router_b = instance(b.revocations.clone(), b.replay.clone());
    (router_a, router_b, a.revocations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_instance_a_is_rejected_on_instance_b_at_the_next_request() {
    let redis = TestRedis::new();
    let (a, b, revocations_a) = two_instances(&redis);

    assert_eq!(get_with_token(&b, "jti.tok-1").await.status, 200);
    assert_eq!(get_with_token(&a, "jti.tok-1").await.status, 200);

    revocations_a
        .revoke("tok-1", SystemTime::now() + Duration::from_secs(600))
        .await
        .unwrap();

    // No cache in between: the very next request on B sees it.
    let seen = get_with_token(&b, "jti.tok-1").await;
    assert_eq!(seen.status, 401);
    assert!(
        seen.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer") && h.contains("error=\"invalid_token\"")),
        "{:?}",
        seen.headers
    );
    assert_eq!(get_with_token(&a, "jti.tok-1").await.status, 401);
    // Other credentials are untouched.
    assert_eq!(get_with_token(&b, "jti.tok-2").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_used_on_a_is_rejected_when_replayed_on_b() {
    let redis = TestRedis::new();
    let (a, b, _) = two_instances(&redis);

    let first = get_with_token(&a, "once.n-42").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, "bob");
    assert_eq!(get_with_token(&b, "once.n-42").await.status, 401);
    assert_eq!(get_with_token(&a, "once.n-42").await.status, 401);
    assert_eq!(get_with_token(&b, "once.n-43").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nonce_raced_on_both_instances_is_accepted_exactly_once() {
    let redis = TestRedis::new();
    let (a, b, _) = two_instances(&redis);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            get_with_token(&app, "once.raced").await.status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 401, "{status}");
        ok += usize::from(status == 200);
    }
    assert_eq!(ok, 1);
}

#[cfg(feature = "api-key")]
mod api_keys {
    use super::*;
    use apiauth_api_key::{ApiKeys, NewKey};
    use apiauth_core::Auth;
    use axum::body::Body;
    use axum::routing::get;
    use common::app::send;

    fn keyed_instance(keys: &ApiKeys) -> axum::Router {
        axum::Router::new()
            .route(
                "/me",
                get(|Auth(p): Auth| async move { p.subject().to_owned() }),
            )
            .layer(keys.auth().realm("api").layer().unwrap())
    }

    async fn call(app: &axum::Router, key: &str) -> common::app::Seen {
        let req = http::Request::get("/me")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap();
        send(app, req).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_key_created_on_a_works_on_b_and_revoked_on_a_is_refused_on_b() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let keys_a = ApiKeys::new(redis.backend_in(&ns, TIMEOUT).stores().api_keys);
        let keys_b = ApiKeys::new(redis.backend_in(&ns, TIMEOUT).stores().api_keys);
        let (a, b) = (keyed_instance(&keys_a), keyed_instance(&keys_b));

        let created = keys_a
            .create(NewKey::new("carol").tenant("acme"))
            .await
            .unwrap();
        let key = created.key.expose_secret();
        let on_b = call(&b, key).await;
        assert_eq!((on_b.status.as_u16(), on_b.body.as_str()), (200, "carol"));
        // Management on B sees A's key, without its secret.
        let listed = keys_b
            .list(&apiauth_api_key::KeyFilter::all())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}").contains(key));

        keys_a.revoke(&created.summary.id).await.unwrap();
        let on_b = call(&b, key).await;
        assert_eq!(on_b.status, 401);
        assert!(!on_b.body.contains(key));
        assert_eq!(call(&a, key).await.status, 401);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn opaque_bearer_token_revoked_on_a_is_refused_on_b() {
        use apiauth_bearer::{Bearer, OpaqueTokens};
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let tokens =
            |stores: apiauth_redis::Stores| ApiKeys::new(stores.api_keys).prefix("pat_").unwrap();
        let tokens_a = tokens(redis.backend_in(&ns, TIMEOUT).stores());
        let tokens_b = tokens(redis.backend_in(&ns, TIMEOUT).stores());
        let bearer = |t: &ApiKeys| {
            axum::Router::new()
                .route(
                    "/me",
                    get(|Auth(p): Auth| async move { p.subject().to_owned() }),
                )
                .layer(
                    Bearer::new(OpaqueTokens::new(t).unwrap())
                        .realm("api")
                        .layer(),
                )
        };
        let (a, b) = (bearer(&tokens_a), bearer(&tokens_b));

        let created = tokens_a.create(NewKey::new("erin")).await.unwrap();
        let token = created.key.expose_secret();
        assert_eq!(get_with_token(&b, token).await.status, 200);
        tokens_a.revoke(&created.summary.id).await.unwrap();
        let seen = get_with_token(&b, token).await;
        assert_eq!(seen.status, 401);
        assert!(
            seen.header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token"))
        );
        assert_eq!(get_with_token(&a, token).await.status, 401);
    }
}

#[cfg(feature = "quota")]
mod quota {
    use super::*;
    use apiauth_bearer::Bearer;
    use apiauth_quota::{QuotaLayer, QuotaPolicy, StatusClass, UsageMeter, own_usage};
    use axum::routing::get;
    use common::app::SharedStateVerifier;

    /// An instance with authentication outside and the shared quota inside.
    fn metered_instance(stores: &apiauth_redis::Stores) -> axum::Router {
        let quota = QuotaLayer::builder()
            .legacy_headers()
            .default_plan(QuotaPolicy::per_hour(60).burst(3))
            .limiter(stores.rate_limiter.clone())
            .usage_meter(stores.usage.clone())
            .build()
            .unwrap();
        axum::Router::new()
            .route("/me", get(|| async { "ok" }))
            .route("/usage", get(own_usage))
            .layer(quota)
            .layer(
                Bearer::new(SharedStateVerifier {
                    revocations: stores.revocations.clone(),
                    replay: stores.replay.clone(),
                })
                .layer(),
            )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_quota_holds_across_both_instances_with_the_same_headers() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let a = metered_instance(&redis.backend_in(&ns, TIMEOUT).stores());
        let b = metered_instance(&redis.backend_in(&ns, TIMEOUT).stores());

        // Burst of 3 shared by A and B: A, B, A pass with 2, 1, 0 left; then B is refused.
        for (app, left) in [(&a, "2"), (&b, "1"), (&a, "0")] {
            let res = call(app, "/me").await;
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["ratelimit-limit"], "3");
            assert_eq!(res.headers()["ratelimit-remaining"], left);
        }
        let refused = call(&b, "/me").await;
        assert_eq!(refused.status(), 429);
        assert_eq!(refused.headers()["ratelimit-limit"], "3");
        assert_eq!(refused.headers()["ratelimit-remaining"], "0");
        // One cell per 60 s: a client may retry within a minute; full again within three.
        let secs = |h: &str| {
            refused.headers()[h]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        assert!(
            (1..=60).contains(&secs("retry-after")),
            "{:?}",
            refused.headers()
        );
        assert!(
            (121..=180).contains(&secs("ratelimit-reset")),
            "{:?}",
            refused.headers()
        );
        assert_eq!(call(&a, "/me").await.status(), 429);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_counted_on_both_instances_is_reported_by_either() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let a = metered_instance(&redis.backend_in(&ns, TIMEOUT).stores());
        let b = metered_instance(&redis.backend_in(&ns, TIMEOUT).stores());
        assert_eq!(call(&a, "/me").await.status(), 200);
        assert_eq!(call(&b, "/me").await.status(), 200);
        let res = call(&a, "/usage").await;
        assert_eq!(res.status(), 200);
        let body = apiauth_testkit::Seen::read(res).await.body;
        let report: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(report["subject"], "alice");
        assert_eq!(report["usage"][0]["route"], "/me");
        assert_eq!(report["usage"][0]["count"], 2, "{report}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_concurrent_increments_from_two_instances_are_counted_exactly() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        // A generous timeout: this measures exactness, not latency, on a busy machine.
        let meters: [Arc<dyn UsageMeter>; 2] = [
            Arc::new(redis.backend_in(&ns, Duration::from_secs(60)).usage_meter()),
            Arc::new(redis.backend_in(&ns, Duration::from_secs(60)).usage_meter()),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..10_000usize {
            let m = meters[i % 2].clone();
            tasks.spawn(async move { m.record("dave", "/items/{id}", StatusClass::Success).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        for m in &meters {
            let usage = m.usage("dave").await.unwrap();
            assert_eq!(usage.len(), 1);
            assert_eq!(usage[0].count, 10_000);
        }
    }

    async fn call(app: &axum::Router, path: &str) -> http::Response<axum::body::Body> {
        use tower::ServiceExt;
        let req = http::Request::get(path)
            .header("authorization", "Bearer jti.alice-token")
            .body(axum::body::Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap()
    }
}

#[cfg(feature = "basic")]
mod basic {
    use super::*;
    use apiauth_basic::{BasicAuth, PasswordHasher};
    use apiauth_core::Auth;
    use apiauth_redis::RedisCredentialStore;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn basic_instance(users: RedisCredentialStore, hasher: PasswordHasher) -> axum::Router {
        axum::Router::new()
            .route(
                "/admin",
                get(|Auth(p): Auth| async move { p.subject().to_owned() }),
            )
            .layer(
                BasicAuth::builder(users)
                    .realm("admin")
                    .password_hasher(hasher)
                    .layer()
                    .unwrap(),
            )
    }

    async fn status(app: &axum::Router, user: &str, password: &str) -> u16 {
        use base64::Engine as _;
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let req = http::Request::get("/admin")
            .header("authorization", format!("Basic {creds}"))
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_changed_on_a_ends_the_old_password_on_b_despite_its_cache() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        // Cheap argon2 parameters: this is about shared state, not hashing cost.
        let hasher = PasswordHasher::dangerous_with_params(8, 1, 1).unwrap();
        let users_a = redis.backend_in(&ns, TIMEOUT).credential_store();
        let users_b = redis.backend_in(&ns, TIMEOUT).credential_store();
        users_a
            .insert_user("admin", &hasher.hash("old password"))
            .await
            .unwrap();
        let a = basic_instance(users_a.clone(), hasher.clone());
        let b = basic_instance(users_b, hasher.clone());

        // B verifies (and caches) the old password.
        assert_eq!(status(&b, "admin", "old password").await, 200);
        assert_eq!(status(&b, "admin", "old password").await, 200);

        assert!(
            users_a
                .set_password_hash("admin", &hasher.hash("new password"))
                .await
                .unwrap()
        );
        assert_eq!(status(&b, "admin", "old password").await, 401);
        assert_eq!(status(&b, "admin", "new password").await, 200);
        assert_eq!(status(&a, "admin", "new password").await, 200);

        users_a.remove("admin").await.unwrap();
        assert_eq!(status(&b, "admin", "new password").await, 401);
    }
}
