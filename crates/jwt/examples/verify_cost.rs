//! Measures what one verification costs per algorithm with the aws-lc-rs backend, with and
//! without the verified-token cache. Run with
//! `cargo run --release -p apiauth-jwt --example verify_cost`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apiauth_jwt::{Algorithm, Issuer, JwtKey, JwtVerifier};
use jsonwebtoken::{EncodingKey, Header};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("test data")
}

async fn verifier(cache: bool) -> JwtVerifier {
    let secret = b"benchmark secret of at least 32 bytes!!";
    let mut b = JwtVerifier::builder().issuer(
        Issuer::new("bench")
            .key(JwtKey::hmac(secret).unwrap().kid("hs"))
            .key(JwtKey::rsa_pem(data("rsa_public.pem")).unwrap().kid("rs"))
            .key(JwtKey::ec_pem(data("ec_public.pem")).unwrap().kid("es"))
            .key(
                JwtKey::ed25519_pem(data("ed_public.pem"))
                    .unwrap()
                    .kid("ed"),
            )
            .audience("api"),
    );
    if cache {
        b = b.cache(1024, Duration::from_secs(60));
    }
    b.build().await.unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({
        "iss": "bench", "aud": "api", "sub": "u", "exp": exp, "scope": "a b",
    });
    let secret = b"benchmark secret of at least 32 bytes!!";
    let keys = [
        (
            "HS256",
            Algorithm::HS256,
            "hs",
            EncodingKey::from_secret(secret),
        ),
        (
            "RS256",
            Algorithm::RS256,
            "rs",
            EncodingKey::from_rsa_pem(data("rsa_private.pem").as_bytes()).unwrap(),
        ),
        (
            "ES256",
            Algorithm::ES256,
            "es",
            EncodingKey::from_ec_pem(data("ec_private.pem").as_bytes()).unwrap(),
        ),
        (
            "EdDSA",
            Algorithm::EdDSA,
            "ed",
            EncodingKey::from_ed_pem(data("ed_private.pem").as_bytes()).unwrap(),
        ),
    ];
    let (plain, cached) = (verifier(false).await, verifier(true).await);
    println!(
        "{:<6} {:>14} {:>14}",
        "alg", "uncached µs/op", "cached µs/op"
    );
    for (name, alg, kid, key) in &keys {
        let mut h = Header::new(*alg);
        h.kid = Some((*kid).to_owned());
        let token = jsonwebtoken::encode(&h, &claims, key).unwrap();
        let mut per = [0f64; 2];
        for (i, v) in [&plain, &cached].into_iter().enumerate() {
            let n = 2000;
            v.verify_token(&token).await.unwrap(); // warm up (and fill the cache)
            let start = Instant::now();
            for _ in 0..n {
                v.verify_token(&token).await.unwrap();
            }
            per[i] = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        }
        println!("{name:<6} {:>14.1} {:>14.1}", per[0], per[1]);
    }
}
