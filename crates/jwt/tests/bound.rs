//! Bound tokens presented as plain bearer tokens: RFC 9449 §7.1 (a DPoP-bound token,
//! `cnf.jkt`) and RFC 8705 §3 (a certificate-bound token, `cnf.x5t#S256`) are refused on any
//! route whose layer does not check the binding, cache hits included; a certificate-bound
//! token passes only through `apiauth_mtls::CertificateBound` with its certificate.

mod common;

use apiauth_bearer::Bearer;
use apiauth_core::Auth;
use apiauth_jwt::{Issuer, JwtKey, JwtVerifier};
use apiauth_mtls::{CertificateBound, ClientCertificate};
use axum::{Router, routing::get};
use common::*;
use http::StatusCode;
use serde_json::json;

async fn verifier() -> JwtVerifier {
    JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(JwtKey::ec_pem(data("ec_public.pem")).unwrap().kid("ec-1"))
                .audience(AUD),
        )
        .cache(100, std::time::Duration::from_secs(60))
        .build()
        .await
        .unwrap()
}

fn cert(der: &[u8]) -> ClientCertificate {
    ClientCertificate::from_der(der.to_vec())
}

fn bound_to(c: &ClientCertificate) -> String {
    let mut claims = good_claims(now_secs());
    claims["cnf"] = json!({ "x5t#S256": c.x5t_s256() });
    es256("ec-1", claims)
}

#[tokio::test]
async fn a_dpop_bound_token_presented_as_bearer_is_refused_even_from_the_cache() {
    let app = app(verifier().await);
    let mut bound = good_claims(now_secs());
    bound["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    let token = es256("ec-1", bound);
    for _ in 0..2 {
        let a = call(&app, "/me", &token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        a.assert_invalid_token("dpop_bound_token_as_bearer");
    }
    // An unbound token is a bearer token as usual.
    let a = call(&app, "/me", &es256("ec-1", good_claims(now_secs()))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn a_certificate_bound_token_through_a_plain_bearer_layer_is_refused_even_from_the_cache() {
    let app = app(verifier().await);
    let c = cert(&[0x30, 0x01, 0x01]);
    let token = bound_to(&c);
    for _ in 0..2 {
        // Even with its certificate on the request: nobody here checks it.
        let mut req = bearer("/me", &token);
        req.extensions_mut().insert(c.clone());
        let a = send(&app, req).await;
        a.assert_invalid_token("certificate_bound_token_unchecked");
    }
}

fn wrapped(v: JwtVerifier) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(Bearer::new(CertificateBound::new(v)).realm("api").layer())
}

#[tokio::test]
async fn a_certificate_bound_token_passes_certificate_bound_only_with_its_certificate() {
    let app = wrapped(verifier().await);
    let (a, b) = (cert(&[0x30, 0x01, 0x0a]), cert(&[0x30, 0x01, 0x0b]));
    let token = bound_to(&a);
    // Twice: the second answer comes from the verifier's cache, and is checked all the same.
    for _ in 0..2 {
        let mut ok = bearer("/me", &token);
        ok.extensions_mut().insert(a.clone());
        assert_eq!(send(&app, ok).await.status, StatusCode::OK);

        let mut other = bearer("/me", &token);
        other.extensions_mut().insert(b.clone());
        send(&app, other)
            .await
            .assert_invalid_token("certificate_binding_mismatch");

        send(&app, bearer("/me", &token))
            .await
            .assert_invalid_token("client_certificate_missing");
    }
    // Unbound tokens pass the wrapper unchanged.
    let plain = es256("ec-1", good_claims(now_secs()));
    assert_eq!(call(&app, "/me", &plain).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_certificate_confirmation_is_refused() {
    let app = wrapped(verifier().await);
    let mut claims = good_claims(now_secs());
    claims["cnf"] = json!({ "x5t#S256": 42 });
    call(&app, "/me", &es256("ec-1", claims))
        .await
        .assert_invalid_token("malformed_cnf");
}
