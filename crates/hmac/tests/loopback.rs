//! The signing half and the verifier over real HTTP on 127.0.0.1, HTTP/1.1 and HTTP/2.

mod common;

use std::net::SocketAddr;

use apiauth_hmac::{
    HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, Signer, sign_reqwest,
};
use http::StatusCode;

async fn serve(secret: HmacSecret) -> SocketAddr {
    let keys = MemoryHmacKeyStore::new();
    keys.insert("client-1", HmacKey::new("acme").secret(secret));
    let verifier = HttpSignatureVerifier::builder(keys).build().unwrap();
    let app = common::app(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn round_trip(
    client: &reqwest::Client,
    signer: &Signer,
    url: &str,
    body: &str,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .build()
        .unwrap();
    sign_reqwest(&mut req, signer).unwrap();
    client.execute(req).await.unwrap()
}

#[tokio::test]
async fn signed_reqwest_requests_verify_over_loopback_http1_and_http2() {
    let secret = HmacSecret::generate();
    let addr = serve(secret.clone()).await;
    let signer = Signer::builder("client-1", secret).build().unwrap();
    let url = format!("http://{addr}/orders?dry=1&note=a+b");

    let h1 = reqwest::Client::builder().build().unwrap();
    let res = round_trip(&h1, &signer, &url, r#"{"qty":1}"#).await;
    assert_eq!(res.version(), http::Version::HTTP_11);
    assert_eq!(res.status(), StatusCode::OK);
    let j: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(j["subject"], "acme");
    assert_eq!(j["body"], r#"{"qty":1}"#);

    // HTTP/2 (prior knowledge, cleartext): authority and scheme arrive as pseudo-headers.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = round_trip(&h2, &signer, &url, r#"{"qty":2}"#).await;
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status(), StatusCode::OK);
    let j: serde_json::Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(j["body"], r#"{"qty":2}"#);
}

#[tokio::test]
async fn tampered_or_replayed_requests_fail_over_loopback() {
    let secret = HmacSecret::generate();
    let addr = serve(secret.clone()).await;
    let signer = Signer::builder("client-1", secret).build().unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/orders");

    // Body changed after signing.
    let mut req = client.post(&url).body(r#"{"qty":1}"#).build().unwrap();
    sign_reqwest(&mut req, &signer).unwrap();
    *req.body_mut() = Some(reqwest::Body::from(r#"{"qty":9}"#));
    let res = client.execute(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The same signed request sent twice.
    let mut req = client.post(&url).body("{}").build().unwrap();
    sign_reqwest(&mut req, &signer).unwrap();
    let again = req.try_clone().unwrap();
    assert_eq!(client.execute(req).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        client.execute(again).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Unsigned.
    let res = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
