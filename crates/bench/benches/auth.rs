//! Cost per request of each apiauth method, against the bare handler, the crypto floor and
//! peer crates, all measured in one run (`cargo bench -p apiauth-bench`).
//!
//! Each criterion group holds one method: `bare` (the same request to the unguarded
//! handler), `layer` (the apiauth stack), `floor` (the primitive the method cannot avoid) and
//! `peer_*`. Ratios are taken within a group, so machine drift between groups does not
//! enter them. `bench-report` turns the results into the table in docs/BENCHMARKS.md.

#[path = "common/peers.rs"]
mod peers;

use std::time::Duration;

use apiauth_bench::{
    Case, DpopFloor, HmacFloor, JwtAlg, JwtFloor, Sha256Floor, SignatureFloor,
    reference_signed_request,
};
use axum::Router;
use axum::body::Body;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::Request;
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// Fixed batches: signed requests age while a batch waits, and 256 × 10 ms stays far inside
/// the five-minute `created` window.
const BATCH: BatchSize = BatchSize::NumIterations(256);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

/// Fails the run (rather than measuring a refusal) unless `router` answers 200.
fn check(rt: &Runtime, what: &str, router: &Router, req: Request<Body>) {
    let status = rt
        .block_on(router.clone().oneshot(req))
        .map(|r| r.status())
        .expect("infallible router");
    assert_eq!(status, 200, "{what} must accept the benchmark request");
}

fn bench_router(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    router: &Router,
    make: impl Fn() -> Request<Body>,
) {
    check(rt, id, router, make());
    g.bench_function(id, |b| {
        b.to_async(rt)
            .iter_batched(&make, |req| router.clone().oneshot(req), BATCH)
    });
    // Still accepting after the run: nothing measured was a refusal.
    check(rt, id, router, make());
}

/// `bare`, `layer` (the method layer alone: its own overhead) and `layer_guarded` (with
/// core's `Auth` required, refusing a missing credential as the peers do), same requests.
fn bench_case(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, case: &Case) {
    let bare = case.unguarded();
    bench_router(g, rt, "bare", &bare.router, || bare.request());
    bench_router(g, rt, "layer", &case.layer_only, || case.request());
    bench_router(g, rt, "layer_guarded", &case.router, || case.request());
}

fn api_key(c: &mut Criterion, rt: &Runtime) {
    let case = rt
        .block_on(apiauth_bench::api_key_case())
        .expect("api key case");
    let floor = Sha256Floor::new(case.key.as_bytes());
    let mut g = c.benchmark_group("api_key");
    bench_case(&mut g, rt, &case.case);
    g.bench_function("floor", |b| b.iter(|| floor.run()));
    g.finish();
}

fn basic(c: &mut Criterion, rt: &Runtime) {
    let case = rt.block_on(apiauth_bench::basic()).expect("basic case");
    let floor = HmacFloor::new(case.credentials.as_bytes());
    let mut g = c.benchmark_group("basic_cached");
    bench_case(&mut g, rt, &case.case);
    g.bench_function("floor", |b| b.iter(|| floor.run()));
    g.finish();
}

fn opaque_bearer(c: &mut Criterion, rt: &Runtime) {
    let case = rt
        .block_on(apiauth_bench::opaque_bearer())
        .expect("opaque case");
    let floor = Sha256Floor::new(case.key.as_bytes());
    let mut g = c.benchmark_group("bearer_opaque");
    bench_case(&mut g, rt, &case.case);
    g.bench_function("floor", |b| b.iter(|| floor.run()));
    g.finish();
}

fn jwt(c: &mut Criterion, rt: &Runtime) {
    for alg in [JwtAlg::Hs256, JwtAlg::Es256, JwtAlg::Rs256] {
        let plain = rt
            .block_on(apiauth_bench::jwt(alg, false))
            .expect("jwt case");
        let cached = rt
            .block_on(apiauth_bench::jwt(alg, true))
            .expect("cached jwt case");
        let floor = JwtFloor::new(alg, &plain.token).expect("jwt floor");
        let mut g = c.benchmark_group(format!("jwt_{}", alg.name()));
        bench_case(&mut g, rt, &plain.case);
        bench_router(&mut g, rt, "layer_cached", &cached.case.router, || {
            cached.case.request()
        });
        g.bench_function("floor", |b| b.iter(|| floor.run()));
        let peer = peers::axum_jwt_auth(alg).expect("axum-jwt-auth");
        bench_router(&mut g, rt, "peer_axum_jwt_auth", &peer, || {
            plain.case.request()
        });
        if alg != JwtAlg::Hs256 {
            let peer = rt
                .block_on(peers::tower_oauth2_resource_server(alg))
                .expect("tower-oauth2-resource-server");
            bench_router(
                &mut g,
                rt,
                "peer_tower_oauth2_resource_server",
                &peer,
                || plain.case.request(),
            );
        }
        g.finish();
    }
}

fn hmac(c: &mut Criterion, rt: &Runtime) {
    let case = rt.block_on(apiauth_bench::hmac()).expect("hmac case");
    let secret = case.secret.expose_secret().to_vec();
    let one = reference_signed_request(
        &secret,
        apiauth_core::clock::unix_seconds(apiauth_core::clock::Clock::now(&case.clock)),
    )
    .expect("signed request");
    let floor = SignatureFloor::new(&one, &secret).expect("signature floor");
    let mut g = c.benchmark_group("hmac_1kib");
    bench_case(&mut g, rt, &case.case);
    g.bench_function("floor", |b| b.iter(|| floor.run()));
    // The two readings of the same `Signature-Input` and `Signature` (parsing only): the
    // hand-written parser on requests, `sfv` as its reference.
    let (si, sig) = (
        one.headers()["signature-input"].as_bytes().to_vec(),
        one.headers()["signature"].as_bytes().to_vec(),
    );
    for (id, by_sfv) in [("parse_fields", false), ("parse_fields_sfv", true)] {
        assert!(apiauth_hmac::differential::read_signature_fields(
            &si, &sig, by_sfv
        ));
        g.bench_function(id, |b| {
            b.iter(|| {
                apiauth_hmac::differential::read_signature_fields(
                    std::hint::black_box(&si),
                    std::hint::black_box(&sig),
                    by_sfv,
                )
            })
        });
    }
    let peer = peers::httpsig_hyper(&secret).expect("httpsig-hyper");
    bench_router(&mut g, rt, "peer_httpsig_hyper", &peer, || {
        case.case.request()
    });
    g.finish();
}

fn introspection(c: &mut Criterion, rt: &Runtime) {
    let case = rt
        .block_on(apiauth_bench::introspection())
        .expect("introspection case");
    let floor = Sha256Floor::new(case.token.as_bytes());
    let mut g = c.benchmark_group("introspection_cached");
    bench_case(&mut g, rt, &case.case);
    g.bench_function("floor", |b| b.iter(|| floor.run()));
    g.finish();
}

/// DPoP (RFC 9449): `bare`, `token` (the same kind of ES256 JWT, unbound, as `Bearer`: today's
/// token cost), `layer` (the bound token with a fresh proof, pre-signed in each batch's
/// setup since a proof is single-use) and `floor` (ES256 verification of one proof). Issue
/// 19's budget: `layer` − `bare` ≤ `floor` + (`token` − `bare`) + 1 µs.
fn dpop(c: &mut Criterion, rt: &Runtime) {
    let case = rt.block_on(apiauth_bench::dpop()).expect("dpop case");
    let floor = DpopFloor::new(&case.key, &case.proof().expect("a proof")).expect("dpop floor");
    let bare = case.case.unguarded();
    let mut g = c.benchmark_group("dpop");
    bench_router(&mut g, rt, "bare", &bare.router, || bare.request());
    bench_router(&mut g, rt, "token", &case.token_case.layer_only, || {
        case.token_case.request()
    });
    bench_router(&mut g, rt, "layer", &case.case.layer_only, || {
        case.case.request()
    });
    g.bench_function("floor", |b| b.iter(|| floor.run()));
    g.finish();
}

fn full_stack(c: &mut Criterion, rt: &Runtime) {
    let stack = rt
        .block_on(apiauth_bench::full_stack())
        .expect("full stack");
    let (key, jwt) = (stack.api_key_case(), stack.jwt_case());
    let bare = key.unguarded();
    let mut g = c.benchmark_group("full_stack");
    bench_router(&mut g, rt, "bare", &bare.router, || bare.request());
    bench_router(&mut g, rt, "api_key", &key.router, || key.request());
    bench_router(&mut g, rt, "jwt_es256_cached", &jwt.router, || {
        jwt.request()
    });
    g.finish();
}

/// The cost of a credit check (issue 18): the quota layer alone, then with the credits layer
/// (in-memory balance, cost 1), then with the billing history too; same request, one run.
fn credits(c: &mut Criterion, rt: &Runtime) {
    let case = {
        let _enter = rt.enter();
        apiauth_bench::credits_case().expect("credits case")
    };
    let mut g = c.benchmark_group("credits");
    bench_router(&mut g, rt, "quota", &case.quota, || case.request());
    bench_router(&mut g, rt, "quota_credits", &case.credits, || {
        case.request()
    });
    bench_router(
        &mut g,
        rt,
        "quota_credits_history",
        &case.credits_history,
        || case.request(),
    );
    g.finish();
    // Every measured request was charged: the balance went down.
    let left = rt
        .block_on(case.ledger.tenant_balance("acme"))
        .expect("balance")
        .expect("acme has credits")
        .remaining;
    assert!(left < 1 << 50, "the credits layer charged nothing");
}

fn all(c: &mut Criterion) {
    let rt = runtime();
    api_key(c, &rt);
    basic(c, &rt);
    opaque_bearer(c, &rt);
    jwt(c, &rt);
    hmac(c, &rt);
    introspection(c, &rt);
    dpop(c, &rt);
    full_stack(c, &rt);
    credits(c, &rt);
}

fn config() -> Criterion {
    // 40 functions × (1 s + 4 s + analysis) keeps the whole run near five minutes on two
    // shared cores; medians over 60 samples are steady enough for ratios.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60)
}

criterion_group! {
    name = benches;
    config = config();
    targets = all
}
criterion_main!(benches);
