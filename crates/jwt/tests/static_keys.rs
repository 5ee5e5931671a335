//! Static-key issuers through a real axum Router: the happy path, the principal, and every
//! attack in the issue. Each refusal is checked as the client sees it (status, challenge,
//! body) and by the audit reason, so a test cannot pass because some other check failed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{Clock, ManualClock};
use apiauth_core::{MemoryRevocationList, RevocationList, StoreError};
use apiauth_jwt::{Algorithm, Issuer, JwtConfigError, JwtKey, JwtVerifier};
use async_trait::async_trait;
use common::*;
use http::StatusCode;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

fn ec_key() -> JwtKey {
    JwtKey::ec_pem(data("ec_public.pem")).unwrap().kid("ec-1")
}

fn issuer() -> Issuer {
    Issuer::new(ISS)
        .key(ec_key())
        .key(
            JwtKey::rsa_pem(data("rsa_public.pem"))
                .unwrap()
                .kid("rsa-1"),
        )
        .key(
            JwtKey::ed25519_pem(data("ed_public.pem"))
                .unwrap()
                .kid("ed-1"),
        )
        .audience(AUD)
}

fn builder() -> apiauth_jwt::JwtVerifierBuilder {
    JwtVerifier::builder()
        .issuer(issuer())
        .tenant_claim("tenant_id")
        .plan_claim("plan")
        .roles_claim("roles")
}

async fn default_app() -> axum::Router {
    app(builder().build().await.unwrap())
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_every_principal_field() {
    let app = default_app().await;
    let now = now_secs();
    let a = call(&app, "/me", &es256("ec-1", good_claims(now))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({
            "sub": "user-1", "method": "jwt", "credential_id": "jti-1", "tenant": "acme",
            "plan": "pro", "scopes": "profile reports:read", "roles": ["admin", "billing"],
            "expires_at": now + 600,
        })
    );
    assert_eq!(a.reasons, Vec::<String>::new());
}

#[tokio::test]
async fn rs256_and_eddsa_keys_verify_with_their_own_algorithms() {
    let app = default_app().await;
    let c = good_claims(now_secs());
    let rs = sign(
        json!({"alg": "RS256", "kid": "rsa-1"}),
        c.clone(),
        &rsa_private(),
        Algorithm::RS256,
    );
    assert_eq!(call(&app, "/me", &rs).await.status, StatusCode::OK);
    let ed = sign(
        json!({"alg": "EdDSA", "kid": "ed-1"}),
        c.clone(),
        &ed_private(),
        Algorithm::EdDSA,
    );
    assert_eq!(call(&app, "/me", &ed).await.status, StatusCode::OK);
    // PS256 with the same RSA key is outside its allowlist (RS256 by default)...
    let ps = sign(
        json!({"alg": "PS256", "kid": "rsa-1"}),
        c.clone(),
        &rsa_private(),
        Algorithm::PS256,
    );
    call(&app, "/me", &ps)
        .await
        .assert_invalid_token("unknown_key");
    // ...until the key allows it.
    let v = JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(
                    JwtKey::rsa_pem(data("rsa_public.pem"))
                        .unwrap()
                        .kid("rsa-1")
                        .algorithms([Algorithm::PS256]),
                )
                .audience(AUD),
        )
        .build()
        .await
        .unwrap();
    assert_eq!(call(&app_of(v), "/me", &ps).await.status, StatusCode::OK);
}

fn app_of(v: JwtVerifier) -> axum::Router {
    app(v)
}

#[tokio::test]
async fn scopes_come_from_scope_or_scp_and_scoped_answers_403_without_the_scope() {
    let app = default_app().await;
    let now = now_secs();
    let a = call(&app, "/reports", &es256("ec-1", good_claims(now))).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(&app, "/write", &es256("ec-1", good_claims(now))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["error"], "insufficient_scope");
    assert_eq!(a.json()["scope"], "reports:write");

    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["reports:write"]);
    let t = es256("ec-1", c);
    assert_eq!(call(&app, "/write", &t).await.status, StatusCode::OK);
    assert_eq!(
        call(&app, "/reports", &t).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn malformed_or_ambiguous_scope_claims_are_401() {
    let app = default_app().await;
    let now = now_secs();
    for (scope, scp) in [
        (Some(json!("a  b")), None),
        (Some(json!(" a")), None),
        (Some(json!(["a"])), None),
        (None, Some(json!("a b"))),
        (None, Some(json!(["a", 1]))),
        (None, Some(json!(["a b"]))),
    ] {
        let mut c = good_claims(now);
        c.as_object_mut().unwrap().remove("scope");
        if let Some(s) = scope {
            c["scope"] = s;
        }
        if let Some(s) = scp {
            c["scp"] = s;
        }
        call(&app, "/me", &es256("ec-1", c))
            .await
            .assert_invalid_token("malformed_scope");
    }
    let mut c = good_claims(now);
    c["scp"] = json!(["x"]);
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("ambiguous_scope");
}

#[tokio::test]
async fn alg_none_in_every_casing_is_401() {
    let app = default_app().await;
    let claims = b64(good_claims(now_secs()).to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": alg, "kid": "ec-1"}).to_string());
        // Unsigned, as RFC 7519 §6.1 writes it, and with a stray signature.
        for t in [format!("{h}.{claims}."), format!("{h}.{claims}.c2ln")] {
            call(&app, "/me", &t).await.assert_invalid_token("alg_none");
        }
    }
    // RFC 7515 appendix A.5 verbatim.
    let v: Value = serde_json::from_str(&data("rfc7515_appendix_a_jws.json")).unwrap();
    call(&app, "/me", v["A.5"]["a.5.compact"].as_str().unwrap())
        .await
        .assert_invalid_token("alg_none");
}

#[tokio::test]
async fn hs256_signed_with_a_public_key_is_401() {
    let app = default_app().await;
    let c = good_claims(now_secs());
    for (pem, kid) in [
        ("rsa_public.pem", "rsa-1"),
        ("ec_public.pem", "ec-1"),
        ("ed_public.pem", "ed-1"),
    ] {
        // The classic confusion: the public key's PEM bytes as an HMAC secret.
        let secret = EncodingKey::from_secret(data(pem).as_bytes());
        for header in [json!({"alg": "HS256", "kid": kid}), json!({"alg": "HS256"})] {
            let t = sign(header, c.clone(), &secret, Algorithm::HS256);
            call(&app, "/me", &t)
                .await
                .assert_invalid_token("unknown_key");
        }
    }
}

#[tokio::test]
async fn unknown_and_path_traversal_kid_values_are_401() {
    let app = default_app().await;
    let c = good_claims(now_secs());
    for kid in [
        "ec-2",
        "EC-1",
        "../../../../etc/passwd",
        "ec-1/../ec-1",
        "' OR '1'='1",
        "ec-1\u{0}",
        "/dev/null",
    ] {
        call(&app, "/me", &es256(kid, c.clone()))
            .await
            .assert_invalid_token("unknown_key");
    }
    for kid in [json!(""), json!("k".repeat(257)), json!(1), json!(["ec-1"])] {
        let t = sign(
            json!({"alg": "ES256", "kid": kid}),
            c.clone(),
            &ec_private(),
            Algorithm::ES256,
        );
        call(&app, "/me", &t)
            .await
            .assert_invalid_token("malformed_kid");
    }
}

#[tokio::test]
async fn jku_x5u_jwk_and_x5c_headers_are_refused_even_when_the_signature_is_good() {
    let app = default_app().await;
    let c = good_claims(now_secs());
    let jwk = public_jwk(&ec_private(), Algorithm::ES256, "ec-1");
    for (name, value) in [
        ("jku", json!("https://attacker.test/jwks.json")),
        ("x5u", json!("https://attacker.test/cert.pem")),
        ("jwk", jwk),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "ec-1"});
        h[name] = value;
        let t = sign(h, c.clone(), &ec_private(), Algorithm::ES256);
        call(&app, "/me", &t)
            .await
            .assert_invalid_token("key_reference_header");
    }
}

#[tokio::test]
async fn crit_headers_are_refused() {
    let app = default_app().await;
    let h = json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"], "exp": 1});
    let t = sign(h, good_claims(now_secs()), &ec_private(), Algorithm::ES256);
    call(&app, "/me", &t)
        .await
        .assert_invalid_token("unsupported_crit");
}

#[tokio::test]
async fn expiry_not_before_and_issued_at_follow_the_clock_with_bounded_leeway() {
    let clock = ManualClock::starting_now();
    let v = builder()
        .clock(Arc::new(clock.clone()))
        .leeway(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let app = app(v);
    let now = now_secs();
    let mut c = good_claims(now);
    c["exp"] = json!(now + 60);
    let t = es256("ec-1", c);
    assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK);
    clock.advance(Duration::from_secs(60 + 29));
    assert_eq!(
        call(&app, "/me", &t).await.status,
        StatusCode::OK,
        "inside leeway"
    );
    clock.advance(Duration::from_secs(2));
    call(&app, "/me", &t).await.assert_invalid_token("expired");

    let now = now_secs() + 200; // the clock is ~91 s ahead of the system clock now
    let mut c = good_claims(now);
    c["nbf"] = json!(now + 300);
    let t = es256("ec-1", c);
    call(&app, "/me", &t)
        .await
        .assert_invalid_token("not_yet_valid");

    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("nbf");
    c["iat"] = json!(now + 3600);
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("issued_in_future");

    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("exp");
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("missing_exp");
}

#[tokio::test]
async fn leeway_above_sixty_seconds_is_a_startup_error() {
    let e = builder()
        .leeway(Duration::from_secs(61))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, JwtConfigError::InvalidSetting(_)), "{e}");
}

#[tokio::test]
async fn wrong_iss_or_aud_is_401_and_aud_may_be_an_array() {
    let app = default_app().await;
    let now = now_secs();
    let mut c = good_claims(now);
    c["iss"] = json!("https://evil.test");
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("unknown_issuer");
    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("iss");
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("missing_iss");
    let mut c = good_claims(now);
    c["aud"] = json!("https://other-api.test");
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("wrong_aud");
    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("aud");
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("missing_aud");
    let mut c = good_claims(now);
    c["aud"] = json!(["https://other-api.test", AUD]);
    assert_eq!(
        call(&app, "/me", &es256("ec-1", c)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn claims_of_the_wrong_json_type_are_401_not_absent() {
    let app = default_app().await;
    let now = now_secs();
    for (claim, value, reason) in [
        ("exp", json!((now + 600).to_string()), "malformed_exp"),
        ("exp", json!(null), "malformed_exp"),
        ("nbf", json!(now.to_string()), "malformed_nbf"),
        ("iat", json!(true), "malformed_iat"),
        ("iss", json!([ISS]), "malformed_iss"),
        ("aud", json!(42), "malformed_aud"),
        ("aud", json!([AUD, 1]), "malformed_aud"),
        ("sub", json!(7), "malformed_sub"),
        ("jti", json!({"id": 1}), "malformed_jti"),
        ("tenant_id", json!(["acme"]), "malformed_tenant"),
        ("plan", json!(1), "malformed_plan"),
        ("roles", json!("admin"), "malformed_roles"),
    ] {
        let mut c = good_claims(now);
        c[claim] = value;
        call(&app, "/me", &es256("ec-1", c))
            .await
            .assert_invalid_token(reason);
    }
}

#[tokio::test]
async fn oversize_tokens_are_refused_before_decoding() {
    let app = default_app().await;
    // Not even a JWT: the length check comes first.
    let big = "A".repeat(8 * 1024 + 1);
    call(&app, "/me", &big)
        .await
        .assert_invalid_token("token_too_large");
    // A real, validly signed token over the limit.
    let mut c = good_claims(now_secs());
    c["pad"] = json!("x".repeat(7000));
    let t = es256("ec-1", c);
    assert!(t.len() > 8192);
    call(&app, "/me", &t)
        .await
        .assert_invalid_token("token_too_large");
}

#[tokio::test]
async fn trailing_garbage_extra_parts_and_bad_base64_are_401() {
    let app = default_app().await;
    let t = es256("ec-1", good_claims(now_secs()));
    let (input, sig) = t.rsplit_once('.').unwrap();
    let (h, p) = input.split_once('.').unwrap();
    let cases = [
        (format!("{t}.AAAA"), "malformed_jws"),
        (format!("{t}."), "malformed_jws"),
        (format!("{h}.{p}"), "malformed_jws"),
        (format!("{h}.{p}.{sig}.x.y"), "malformed_jws"),
        (format!(".{p}.{sig}"), "malformed_jws"),
        (format!("{t}AA"), "bad_signature"),
        (format!("{t}A"), "bad_signature"),
        (format!("{h}.{p}X.{sig}"), "malformed_base64"),
        (format!("{h}.{p}.{sig}=="), "bad_signature"),
        (
            format!("{}.{p}.{sig}", b64("{\"alg\":\"ES256\"} trailing")),
            "malformed_header",
        ),
        (
            format!("{}.{p}.{sig}", b64("[\"ES256\"]")),
            "malformed_header",
        ),
        (format!("{h}.{}.{sig}", b64("not json")), "malformed_claims"),
    ];
    for (token, reason) in cases {
        call(&app, "/me", &token).await.assert_invalid_token(reason);
    }
    // A token with characters outside token68 never reaches the verifier: 400 from transport.
    let a = call(&app, "/me", &format!("{h}.{p}.{sig}!")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn duplicate_json_member_names_are_refused() {
    let app = default_app().await;
    let now = now_secs();
    let good = good_claims(now).to_string();
    // Header with `alg` twice: a last-wins parser would read ES256.
    let t = sign_raw(
        r#"{"alg":"HS256","kid":"ec-1","alg":"ES256"}"#,
        &good,
        &ec_private(),
        Algorithm::ES256,
    );
    call(&app, "/me", &t)
        .await
        .assert_invalid_token("malformed_header");
    // Claims with `sub` twice.
    let dup = good.replacen('{', r#"{"sub":"admin","#, 1);
    let t = sign_raw(
        r#"{"alg":"ES256","kid":"ec-1"}"#,
        &dup,
        &ec_private(),
        Algorithm::ES256,
    );
    call(&app, "/me", &t)
        .await
        .assert_invalid_token("malformed_claims");
}

#[tokio::test]
async fn ecdsa_signatures_with_r_or_s_zero_are_401() {
    let app = default_app().await;
    let v: Value = serde_json::from_str(&data("wycheproof_ecdsa_p256_p1363_zero.json")).unwrap();
    let t = es256("ec-1", good_claims(now_secs()));
    let (input, _) = t.rsplit_once('.').unwrap();
    let tests = v["tests"].as_array().unwrap();
    assert!(tests.len() >= 10);
    for case in tests {
        let hex = case["sig"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let forged = format!("{input}.{}", b64(&bytes));
        call(&app, "/me", &forged)
            .await
            .assert_invalid_token("bad_signature");
    }
}

#[tokio::test]
async fn at_jwt_typ_is_required_when_configured_and_compared_case_insensitively() {
    let v = JwtVerifier::builder()
        .issuer(issuer().require_at_jwt())
        .build()
        .await
        .unwrap();
    let app = app(v);
    let c = good_claims(now_secs());
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let t = sign(
            json!({"alg": "ES256", "kid": "ec-1", "typ": typ}),
            c.clone(),
            &ec_private(),
            Algorithm::ES256,
        );
        assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK, "{typ}");
    }
    for typ in [Some(json!("JWT")), Some(json!("at+jwt+x")), None] {
        let mut h = json!({"alg": "ES256", "kid": "ec-1"});
        if let Some(t) = typ {
            h["typ"] = t;
        }
        let t = sign(h, c.clone(), &ec_private(), Algorithm::ES256);
        call(&app, "/me", &t)
            .await
            .assert_invalid_token("wrong_typ");
    }
}

struct DownStore;

#[async_trait]
impl RevocationList for DownStore {
    async fn revoke(&self, _: &str, _: std::time::SystemTime) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn is_revoked(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn revoked_jti_is_401_tokens_without_jti_are_401_and_a_failing_store_is_503() {
    let list = Arc::new(MemoryRevocationList::new());
    let app = app(builder()
        .revocation_list(list.clone())
        .build()
        .await
        .unwrap());
    let now = now_secs();
    let t = es256("ec-1", good_claims(now));
    assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK);
    list.revoke(
        "jti-1",
        std::time::SystemTime::now() + Duration::from_secs(600),
    )
    .await
    .unwrap();
    call(&app, "/me", &t).await.assert_invalid_token("revoked");

    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("jti");
    call(&app, "/me", &es256("ec-1", c))
        .await
        .assert_invalid_token("missing_jti");

    let app = app_of(
        builder()
            .revocation_list(Arc::new(DownStore))
            .build()
            .await
            .unwrap(),
    );
    let a = call(&app, "/me", &t).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    assert_eq!(a.reasons, ["store_unavailable"]);
}

#[tokio::test]
async fn several_issuers_each_verify_only_with_their_own_keys_and_audience() {
    let secret = b"issuer-b shared secret, 32+ bytes long";
    let v = JwtVerifier::builder()
        .issuer(issuer())
        .issuer(
            Issuer::new("https://b.test")
                .key(JwtKey::hmac(secret).unwrap().kid("b-1"))
                .audience("b-api"),
        )
        .build()
        .await
        .unwrap();
    let app = app(v);
    let now = now_secs();
    let mut b = good_claims(now);
    b["iss"] = json!("https://b.test");
    b["aud"] = json!("b-api");
    let hs = |c: Value, kid: &str| {
        sign(
            json!({"alg": "HS256", "kid": kid}),
            c,
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
    };
    assert_eq!(
        call(&app, "/me", &hs(b.clone(), "b-1")).await.status,
        StatusCode::OK
    );
    // Issuer B's token signed with issuer A's key.
    call(&app, "/me", &es256("ec-1", b.clone()))
        .await
        .assert_invalid_token("unknown_key");
    // Issuer A's token signed with issuer B's key.
    call(&app, "/me", &hs(good_claims(now), "b-1"))
        .await
        .assert_invalid_token("unknown_key");
    // Issuer B's token carrying issuer A's audience.
    let mut wrong = b.clone();
    wrong["aud"] = json!(AUD);
    call(&app, "/me", &hs(wrong, "b-1"))
        .await
        .assert_invalid_token("wrong_aud");
}

#[tokio::test]
async fn claims_extractor_gives_typed_claims_401_when_anonymous_and_403_on_a_bad_shape() {
    let app = default_app().await;
    let now = now_secs();
    let a = call(&app, "/claims", &es256("ec-1", good_claims(now))).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "user-1@acme"));

    let mut c = good_claims(now);
    c.as_object_mut().unwrap().remove("tenant_id");
    let a = call(&app, "/claims", &es256("ec-1", c)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // A plain 403: no RFC 6750 code, since no scope would have helped.
    assert!(a.json().get("error").is_none(), "{}", a.body);
    assert_eq!(
        a.json()["detail"],
        "The token's claims do not meet this resource's requirements."
    );
    assert_eq!(a.reasons, ["claims_mismatch"]);

    let anon = send(
        &app,
        http::Request::get("/claims")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.www_authenticate(), r#"Bearer realm="api""#);
}

#[tokio::test]
async fn cache_hits_still_check_revocation_and_never_outlive_exp() {
    let clock = ManualClock::starting_now();
    let list = Arc::new(MemoryRevocationList::with_clock(Arc::new(clock.clone())));
    let v = builder()
        .clock(Arc::new(clock.clone()))
        .leeway(Duration::ZERO)
        .revocation_list(list.clone())
        .cache(2, Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let app = app(v.clone());
    // "Now" from the verifier's own clock: with zero leeway, the system time read a moment
    // later could already be the next second, and `iat`/`nbf` would be in the future.
    let clock_secs = || {
        clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let now = clock_secs();
    let mut c = good_claims(now);
    c["exp"] = json!(now + 30);
    let t = es256("ec-1", c);
    assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK);
    assert_eq!(v.cached_tokens(), 1);
    assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK);

    // Past `exp`: the cached entry is dead too.
    clock.advance(Duration::from_secs(31));
    call(&app, "/me", &t).await.assert_invalid_token("expired");

    // Revoked while cached: refused on the hit.
    let now = clock_secs();
    let mut c = good_claims(now);
    c["jti"] = json!("jti-2");
    let t = es256("ec-1", c);
    assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK);
    list.revoke("jti-2", clock.now() + Duration::from_secs(600))
        .await
        .unwrap();
    call(&app, "/me", &t).await.assert_invalid_token("revoked");

    // Bounded.
    for i in 0..5 {
        let mut c = good_claims(now);
        c["jti"] = json!(format!("many-{i}"));
        assert_eq!(
            call(&app, "/me", &es256("ec-1", c)).await.status,
            StatusCode::OK
        );
    }
    assert!(v.cached_tokens() <= 2);
}

#[tokio::test]
async fn no_secret_appears_in_logs_bodies_or_debug_output() {
    let secret = "a very secret hmac key of 32+ bytes!";
    let v = JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(JwtKey::hmac(secret).unwrap().kid("h"))
                .audience(AUD),
        )
        .build()
        .await
        .unwrap();
    assert!(!format!("{v:?}").contains(secret));
    assert!(!format!("{:?}", JwtKey::hmac(secret).unwrap()).contains(secret));
    let app = app(v);
    let key = EncodingKey::from_secret(secret.as_bytes());
    let now = now_secs();
    let good = sign(
        json!({"alg": "HS256", "kid": "h"}),
        good_claims(now),
        &key,
        Algorithm::HS256,
    );
    let mut expired = good_claims(now);
    expired["exp"] = json!(now - 3600);
    let bad = sign(
        json!({"alg": "HS256", "kid": "h"}),
        expired,
        &key,
        Algorithm::HS256,
    );
    for t in [good, bad] {
        let a = call(&app, "/me", &t).await;
        let sig = t.rsplit('.').next().unwrap();
        assert!(!a.log.is_empty());
        for line in &a.log {
            assert!(!line.contains(sig) && !line.contains(secret), "{line}");
        }
        assert!(!a.body.contains(sig));
    }
}

#[tokio::test]
async fn unsafe_configurations_are_startup_errors() {
    assert!(matches!(
        JwtKey::hmac(b"short"),
        Err(JwtConfigError::InvalidKey(_))
    ));
    let e = JwtVerifier::builder()
        .issuer(Issuer::new(ISS).key(ec_key()))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, JwtConfigError::NoAudience(_)), "{e}");
    let e = JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(
                    JwtKey::rsa_pem(data("rsa_public.pem"))
                        .unwrap()
                        .algorithms([Algorithm::HS256]),
                )
                .audience(AUD),
        )
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e, JwtConfigError::AlgorithmNotForKey { .. }),
        "{e}"
    );
    let e = JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(ec_key().algorithms([Algorithm::ES384]))
                .audience(AUD),
        )
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e, JwtConfigError::AlgorithmNotForKey { .. }),
        "{e}"
    );
    let e = JwtVerifier::builder()
        .issuer(Issuer::jwks(ISS, "http://idp.example/jwks.json").audience(AUD))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, JwtConfigError::InvalidUrl { .. }), "{e}");
    let e = JwtVerifier::builder().build().await.unwrap_err();
    assert!(matches!(e, JwtConfigError::NoIssuer));
}

#[tokio::test]
async fn audit_names_the_subject_only_once_the_signature_has_verified() {
    let app = default_app().await;
    let now = now_secs();
    let mut c = good_claims(now);
    c["aud"] = json!("https://other-api.test");
    let a = call(&app, "/me", &es256("ec-1", c.clone())).await;
    a.assert_invalid_token("wrong_aud");
    let reject = a.log.iter().find(|l| l.contains("outcome=reject")).unwrap();
    assert!(
        reject.contains("subject=user-1") && reject.contains("credential_id=jti-1"),
        "{reject}"
    );

    // The same claims under a forged signature: nothing the forger wrote is attributed.
    let forged = sign(
        json!({"alg": "ES256", "kid": "ec-1"}),
        c,
        &ec2_private(),
        Algorithm::ES256,
    );
    let a = call(&app, "/me", &forged).await;
    a.assert_invalid_token("bad_signature");
    let reject = a.log.iter().find(|l| l.contains("outcome=reject")).unwrap();
    assert!(
        !reject.contains("user-1") && !reject.contains("jti-1"),
        "{reject}"
    );
}

#[tokio::test]
async fn nested_jwts_and_header_members_of_the_wrong_type_are_refused() {
    let app = default_app().await;
    let c = good_claims(now_secs());
    for (extra, reason) in [
        (json!({"cty": "JWT"}), "nested_jwt"),
        (json!({"cty": "jwt"}), "nested_jwt"),
        (json!({"cty": 1}), "nested_jwt"),
        (json!({"typ": ["at+jwt"]}), "malformed_typ"),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "ec-1"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        let t = sign(h, c.clone(), &ec_private(), Algorithm::ES256);
        call(&app, "/me", &t).await.assert_invalid_token(reason);
    }
    for (alg, reason) in [
        (json!("es256"), "unsupported_alg"),
        (json!("HS1"), "unsupported_alg"),
        (json!(null), "malformed_header"),
        (json!(["ES256"]), "malformed_header"),
    ] {
        let h = b64(json!({"alg": alg, "kid": "ec-1"}).to_string());
        let t = format!("{h}.{}.c2ln", b64(c.to_string()));
        call(&app, "/me", &t).await.assert_invalid_token(reason);
    }
}
