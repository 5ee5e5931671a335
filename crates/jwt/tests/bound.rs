//! RFC 9449 §7.1: a token bound to a DPoP key (`cnf.jkt`) is refused when presented as a
//! bearer token, on any route; other tokens, certificate-bound ones included, are not.

mod common;

use apiauth_jwt::{Issuer, JwtKey, JwtVerifier};
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
    // A certificate-bound token (RFC 8705) and an unbound one are bearer tokens as usual.
    let mut mtls = good_claims(now_secs());
    mtls["cnf"] = json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" });
    for t in [es256("ec-1", mtls), es256("ec-1", good_claims(now_secs()))] {
        let a = call(&app, "/me", &t).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
}
