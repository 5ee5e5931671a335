//! Every benchmarked stack, driven through its router: it accepts the benchmark credential,
//! and refuses a tampered or missing one. A benchmark of a stack that let everything through
//! would measure nothing, so these run in CI with the bench code itself.

#[path = "../benches/common/peers.rs"]
mod peers;

use apiauth_bench::{Case, JwtAlg, PATH};
use axum::Router;
use axum::body::Body;
use http::Request;
use tower::ServiceExt;

async fn status(router: &Router, req: Request<Body>) -> u16 {
    router.clone().oneshot(req).await.unwrap().status().as_u16()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn no_credential() -> Request<Body> {
    Request::get(PATH).body(Body::empty()).unwrap()
}

/// The case's contract, plus its bare twin serving the same request without a check.
async fn assert_guards(case: &Case) {
    assert_eq!(status(&case.router, case.request()).await, 200, "valid");
    assert_eq!(
        status(&case.router, case.tampered_request()).await,
        401,
        "tampered"
    );
    assert_eq!(status(&case.router, no_credential()).await, 401, "missing");
    // The method layer alone verifies just the same.
    assert_eq!(
        status(&case.layer_only, case.request()).await,
        200,
        "layer valid"
    );
    assert_eq!(
        status(&case.layer_only, case.tampered_request()).await,
        401,
        "layer tampered"
    );
    let bare = case.unguarded();
    assert_eq!(
        status(&bare.router, bare.tampered_request()).await,
        200,
        "bare"
    );
}

async fn assert_peer_guards(peer: &Router, case: &Case) {
    assert_eq!(status(peer, case.request()).await, 200, "valid");
    assert_eq!(status(peer, case.tampered_request()).await, 401, "tampered");
    assert_eq!(status(peer, no_credential()).await, 401, "missing");
}

#[tokio::test]
async fn api_key_case_accepts_its_key_and_refuses_a_tampered_or_missing_one() {
    let c = apiauth_bench::api_key_case().await.unwrap();
    assert_guards(&c.case).await;
    assert!(apiauth_bench::Sha256Floor::new(c.key.as_bytes()).run());
}

#[tokio::test]
async fn opaque_bearer_case_accepts_its_token_and_refuses_a_tampered_or_missing_one() {
    let c = apiauth_bench::opaque_bearer().await.unwrap();
    assert_guards(&c.case).await;
}

#[tokio::test]
async fn basic_case_serves_repeat_requests_from_the_verification_cache() {
    let c = apiauth_bench::basic().await.unwrap();
    let before = c.layer.authenticator().stats();
    for _ in 0..3 {
        assert_eq!(status(&c.case.router, c.case.request()).await, 200);
    }
    let after = c.layer.authenticator().stats();
    assert_eq!(after.cache_hits, before.cache_hits + 3);
    assert_eq!(after.password_verifications, before.password_verifications);
    assert_guards(&c.case).await;
}

#[tokio::test]
async fn jwt_cases_verify_each_algorithm_and_cache_only_when_asked() {
    for alg in [JwtAlg::Hs256, JwtAlg::Es256, JwtAlg::Rs256] {
        for cache in [false, true] {
            let c = apiauth_bench::jwt(alg, cache).await.unwrap();
            assert_guards(&c.case).await;
            let cached = c.layer.authenticator().verifier().cached_tokens();
            assert_eq!(cached, usize::from(cache), "{alg:?} cache={cache}");
            assert!(apiauth_bench::JwtFloor::new(alg, &c.token).unwrap().run());
        }
    }
}

#[tokio::test]
async fn hmac_case_signs_fresh_requests_and_refuses_a_replay() {
    let c = apiauth_bench::hmac().await.unwrap();
    assert_guards(&c.case).await;
    let signed = apiauth_bench::signed_request(&c.signer).unwrap();
    assert_eq!(
        status(&c.case.router, signed.clone().map(Body::from)).await,
        200
    );
    assert_eq!(
        status(&c.case.router, signed.map(Body::from)).await,
        401,
        "replay"
    );
}

#[tokio::test]
async fn apiauth_hmac_signer_requests_pass_the_benchmarked_verifier() {
    // The benchmark signs in the parameter order every verifier accepts; requests from
    // apiauth-hmac's own Signer (another order) pass the same verifier too.
    let c = apiauth_bench::hmac().await.unwrap();
    let signed = apiauth_bench::signed_request(&c.signer).unwrap();
    assert_eq!(status(&c.case.router, signed.map(Body::from)).await, 200);
}

#[tokio::test]
async fn signature_floor_rebuilds_the_verifiers_base_and_rejects_a_changed_body() {
    let c = apiauth_bench::hmac().await.unwrap();
    let signed = apiauth_bench::reference_signed_request(c.secret.expose_secret(), now()).unwrap();
    let floor = apiauth_bench::SignatureFloor::new(&signed, c.secret.expose_secret()).unwrap();
    assert!(floor.run());
    let mut changed = signed;
    changed.body_mut()[100] = b'y';
    assert!(apiauth_bench::SignatureFloor::new(&changed, c.secret.expose_secret()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_case_answers_from_its_warm_cache() {
    let c = apiauth_bench::introspection().await.unwrap();
    assert_guards(&c.case).await;
}

#[tokio::test]
async fn full_stack_accepts_api_key_and_jwt_and_sets_rate_limit_headers() {
    let stack = apiauth_bench::full_stack().await.unwrap();
    for case in [stack.api_key_case(), stack.jwt_case()] {
        assert_guards(&case).await;
        let res = stack.router.clone().oneshot(case.request()).await.unwrap();
        // draft-ietf-httpapi-ratelimit-headers: the policy and the current state.
        assert!(res.headers().contains_key("ratelimit-policy"), "{res:?}");
        assert!(res.headers().contains_key("ratelimit"), "{res:?}");
    }
}

#[tokio::test]
async fn axum_jwt_auth_peer_verifies_the_same_tokens() {
    for alg in [JwtAlg::Hs256, JwtAlg::Es256, JwtAlg::Rs256] {
        let c = apiauth_bench::jwt(alg, false).await.unwrap();
        assert_peer_guards(&peers::axum_jwt_auth(alg).unwrap(), &c.case).await;
    }
}

#[tokio::test]
async fn tower_oauth2_resource_server_peer_verifies_the_same_tokens() {
    for alg in [JwtAlg::Es256, JwtAlg::Rs256] {
        let c = apiauth_bench::jwt(alg, false).await.unwrap();
        let peer = peers::tower_oauth2_resource_server(alg).await.unwrap();
        assert_peer_guards(&peer, &c.case).await;
    }
}

#[tokio::test]
async fn httpsig_hyper_peer_verifies_the_same_signed_requests() {
    let c = apiauth_bench::hmac().await.unwrap();
    let peer = peers::httpsig_hyper(c.secret.expose_secret()).unwrap();
    assert_peer_guards(&peer, &c.case).await;
}

#[tokio::test]
async fn dpop_case_accepts_a_fresh_proof_once_and_refuses_a_tampered_or_missing_one() {
    let c = apiauth_bench::dpop().await.unwrap();
    assert_guards(&c.case).await;
    assert_guards(&c.token_case).await;
    // Each benchmark request carries its own proof; the same one twice is a replay.
    let proof = c.proof().unwrap();
    let req = |p: &str| {
        Request::get(PATH)
            .header("authorization", format!("DPoP {}", c.token))
            .header("dpop", p)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(status(&c.case.layer_only, req(&proof)).await, 200);
    assert_eq!(status(&c.case.layer_only, req(&proof)).await, 401);
    // The bound token is no bearer token.
    let bearer = Request::get(PATH)
        .header("authorization", format!("Bearer {}", c.token))
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&c.token_case.layer_only, bearer).await, 401);
    // The floor verifies the proof the layer checks, and only it.
    assert!(apiauth_bench::DpopFloor::new(&c.key, &proof).unwrap().run());
    assert!(apiauth_bench::DpopFloor::new(&c.key, &apiauth_bench::tamper(&proof)).is_err());
}

#[tokio::test]
async fn the_credits_benchmark_charges_every_request_and_refuses_an_empty_balance() {
    let case = apiauth_bench::credits_case().unwrap();
    for router in [&case.quota, &case.credits, &case.credits_history] {
        assert_eq!(status(router, case.request()).await, 200);
    }
    let before = case.ledger.tenant_balance("acme").await.unwrap().unwrap();
    assert_eq!(status(&case.credits, case.request()).await, 200);
    let after = case.ledger.tenant_balance("acme").await.unwrap().unwrap();
    assert_eq!(
        before.remaining - after.remaining,
        1,
        "one credit per request"
    );
    // The credit check is live in the measured stack: an empty balance is refused.
    case.ledger.set_tenant("acme", 0).await.unwrap();
    assert_eq!(status(&case.credits, case.request()).await, 429);
    assert_eq!(status(&case.quota, case.request()).await, 200);
}
