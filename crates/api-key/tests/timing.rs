//! Statistical timing test: the rejections cannot be told apart by how long they take.
//!
//! Method: the request classes are sent interleaved, in a shuffled order each round, so that
//! machine load falls on all of them alike; each class is summarised by its median, which
//! ignores the scheduler's outliers. The margin is three quarters of one SHA-256 of a key,
//! measured in the same run: a path that skipped the hash (the leak this guards against)
//! differs by at least a whole hash. A probe class, the reference plus one extra hash, checks
//! in every run that the measurement really resolves a difference that large, so a too-noisy
//! run fails instead of passing vacuously.

mod common;

use std::time::{Duration, Instant};

use apiauth_api_key::NewKey;
use apiauth_core::token::SecretHash;
use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use tower::ServiceExt;

const ROUNDS: usize = 4000;
const WARMUP: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::test]
async fn unknown_id_bad_checksum_malformed_and_revoked_take_as_long_as_a_wrong_secret() {
    let f = Fixture::new();
    let valid = f.keys.create(NewKey::new("v")).await.unwrap();
    let revoked = f.keys.create(NewKey::new("r")).await.unwrap();
    f.keys.revoke(&revoked.summary.id).await.unwrap();
    // A store with some content, so lookups are not trivially into an empty map.
    for i in 0..2000 {
        f.keys
            .create(NewKey::new(format!("user-{i}")))
            .await
            .unwrap();
    }
    let v = valid.key.expose_secret();
    let secret = "s".repeat(30);
    // (name, key, extra hash inside the timed region)
    let classes: [(&str, String, bool); 6] = [
        (
            "wrong_secret",
            forge(PREFIX, &valid.summary.id, &secret),
            false,
        ),
        ("unknown_id", forge(PREFIX, "ZZZZZZZZZZZZ", &secret), false),
        ("bad_checksum", flip(v, v.len() - 1), false),
        (
            "malformed",
            format!("{PREFIX}{}", &v[PREFIX.len() + 5..]),
            false,
        ),
        ("revoked", revoked.key.expose_secret().to_owned(), false),
        ("probe", forge(PREFIX, &valid.summary.id, &secret), true),
    ];
    let app = f.app();

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); classes.len()];
    let mut hash_samples = Vec::with_capacity(ROUNDS);
    let mut order: Vec<usize> = (0..classes.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..WARMUP + ROUNDS {
        // Fisher-Yates with a small LCG: a fresh order every round.
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for &c in &order {
            let (name, key, extra_hash) = &classes[c];
            let req = Request::get("/me")
                .header("x-api-key", key.as_str())
                .body(Body::empty())
                .unwrap();
            let started = Instant::now();
            let res = app.clone().oneshot(req).await.unwrap();
            if *extra_hash {
                std::hint::black_box(SecretHash::of(std::hint::black_box(key.as_bytes())));
            }
            let took = started.elapsed();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
            drop(res);
            if round >= WARMUP {
                samples[c].push(took);
            }
        }
        let started = Instant::now();
        std::hint::black_box(SecretHash::of(std::hint::black_box(v.as_bytes())));
        if round >= WARMUP {
            hash_samples.push(started.elapsed());
        }
    }

    let hash = median(hash_samples);
    let margin = hash * 3 / 4;
    let medians: Vec<(&str, Duration)> = classes
        .iter()
        .zip(samples)
        .map(|((name, ..), s)| (*name, median(s)))
        .collect();
    let report = format!("one SHA-256: {hash:?}, margin: {margin:?}, medians: {medians:?}");
    let reference = medians[0].1;

    // The measurement can see a skipped hash…
    let probe = medians[5].1;
    assert!(
        probe > reference + margin,
        "too noisy to resolve one hash; {report}"
    );
    // …and none of the rejections differs from a wrong secret by that much.
    for (name, m) in &medians[1..5] {
        assert!(
            m.abs_diff(reference) < margin,
            "{name} is distinguishable from wrong_secret; {report}"
        );
    }
    println!("{report}");
}
