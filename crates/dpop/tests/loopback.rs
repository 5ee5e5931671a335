//! The resource-server method over real HTTP on loopback: an axum router on 127.0.0.1:0
//! behind the JWT verifier, a reqwest client signing proofs with `DpopKey`. Every test
//! asserts what the client sees (status, `WWW-Authenticate`, `DPoP-Nonce`, body) and the
//! audit reason the server logged, so a refusal for the wrong reason fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_core::Auth;
use apiauth_core::audit::sensitive_headers_layer_with;
use apiauth_dpop::{
    DPOP_HEADER, Dpop, DpopConfirmation, DpopKey, DpopMode, DpopVerifier, HmacDpopNonces,
    access_token_hash,
};
use apiauth_jwt::{Issuer, JwtKey, JwtVerifier};
use apiauth_testkit::LogCapture;
use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use serde_json::{Value, json};

const ISS: &str = "https://as.example.test";
const AUD: &str = "https://api.example.test";
const SECRET: &[u8] = b"a token-signing secret of at least 32 bytes";
/// The URL clients use (a proxy's); the server itself listens on 127.0.0.1:<port>.
const PUBLIC: &str = "https://api.example.test";
const ITEMS: &str = "https://api.example.test/api/items";
const CHALLENGE: &str = r#"DPoP algs="ES256 EdDSA""#;
const PROOF_ERROR: &str = r#"DPoP algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="The DPoP proof is not valid.""#;
const TOKEN_ERROR: &str = r#"DPoP algs="ES256 EdDSA", error="invalid_token", error_description="The credentials are not valid.""#;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An access token from the issuer, bound to `jkt` when given.
fn token(jkt: Option<&str>) -> String {
    let mut claims = json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "exp": now() + 300, "scope": "items:read",
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

async fn jwt() -> JwtVerifier {
    JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(JwtKey::hmac(SECRET).unwrap())
                .audience(AUD),
        )
        .build()
        .await
        .unwrap()
}

async fn me(Auth(p): Auth, headers: HeaderMap) -> axum::Json<Value> {
    axum::Json(json!({
        "method": p.method().as_str(),
        "subject": p.subject(),
        "jkt": p.attribute::<DpopConfirmation>().map(|c| c.jkt().to_owned()),
        "dpop_header_sensitive": headers.get("dpop").map(|v| v.is_sensitive()),
    }))
}

struct Server {
    addr: SocketAddr,
    client: reqwest::Client,
}

async fn serve_router(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        client: reqwest::Client::new(),
    }
}

async fn serve_with(proofs: DpopVerifier, mode: DpopMode) -> Server {
    serve_router(
        Router::new()
            .route("/api/items", get(me).post(me))
            .layer(Dpop::new(jwt().await, proofs).mode(mode).layer())
            .layer(sensitive_headers_layer_with([DPOP_HEADER])),
    )
    .await
}

async fn serve(mode: DpopMode) -> Server {
    serve_with(DpopVerifier::builder(PUBLIC).build().unwrap(), mode).await
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Server {
    async fn send(
        &self,
        method: reqwest::Method,
        authorization: Option<String>,
        proofs: &[&str],
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("http://{}/api/items", self.addr));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        for p in proofs {
            req = req.header("dpop", *p);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn dpop(&self, token: &str, proof: &str) -> Answer {
        self.send(
            reqwest::Method::GET,
            Some(format!("DPoP {token}")),
            &[proof],
        )
        .await
    }
}

impl Answer {
    fn challenge(&self) -> &str {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// The request was refused with `challenge` and the server logged `reason`.
fn assert_refused(a: &Answer, logs: &LogCapture, challenge: &str, reason: &str) {
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_eq!(a.challenge(), challenge);
    let reasons: Vec<String> = logs
        .take_events()
        .iter()
        .filter_map(|e| e.field("reason").map(str::to_owned))
        .collect();
    assert_eq!(reasons, [reason], "audit reasons");
}

fn bound() -> (DpopKey, String) {
    let key = DpopKey::generate_es256().unwrap();
    let t = token(Some(key.thumbprint()));
    (key, t)
}

#[tokio::test]
async fn a_valid_proof_with_its_bound_token_is_accepted() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let a = s.dpop(&t, &proof).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["method"], "dpop");
    assert_eq!(a.body["subject"], "alice");
    assert_eq!(a.body["jkt"], key.thumbprint());
    // The proof is a credential: traces print `Sensitive`, never its value.
    assert_eq!(a.body["dpop_header_sensitive"], true);

    // An Ed25519 key works the same way.
    let ed = DpopKey::generate_ed25519().unwrap();
    let t = token(Some(ed.thumbprint()));
    let proof = ed.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    assert_eq!(s.dpop(&t, &proof).await.status, 200);
}

#[tokio::test]
async fn no_credentials_get_the_dpop_challenge_with_its_algorithms() {
    let s = serve(DpopMode::Required).await;
    let a = s.send(reqwest::Method::GET, None, &[]).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge(), CHALLENGE);
}

#[tokio::test]
async fn a_normalised_equal_htu_is_accepted_and_the_query_ignored() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    for htu in [
        "HTTPS://API.Example.TEST:443/api/items",
        "https://api.example.test/api/./items",
        "https://api.example.test/api/%69tems",
        "https://api.example.test/api/items?page=2#top",
    ] {
        let proof = key.proof("GET", htu).access_token(&t).sign().unwrap();
        let proof = if htu.contains('?') {
            // The builder drops the query; sign one that keeps it, as a sloppy client might.
            key.sign_jws(
                &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()}),
                &json!({"jti": format!("q-{}", now()), "htm": "GET", "htu": htu, "iat": now(),
                        "ath": access_token_hash(&t)}),
            )
            .unwrap()
        } else {
            proof
        };
        assert_eq!(s.dpop(&t, &proof).await.status, 200, "{htu}");
    }
}

/// A proof with `claims` over the defaults (`None` removes a claim) and `header` over the
/// defaults, signed by `key`.
fn crafted(key: &DpopKey, t: &str, header: Value, claims: Value) -> String {
    let mut h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk()});
    let mut c = json!({
        "jti": format!("jti-{}", rand_suffix()), "htm": "GET", "htu": ITEMS, "iat": now(),
        "ath": access_token_hash(t),
    });
    for (dst, src) in [(&mut h, header), (&mut c, claims)] {
        for (k, v) in src.as_object().unwrap() {
            if v.is_null() {
                dst.as_object_mut().unwrap().remove(k);
            } else {
                dst[k] = v.clone();
            }
        }
    }
    key.sign_jws(&h, &c).unwrap()
}

fn rand_suffix() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn each_bad_proof_is_refused_with_invalid_dpop_proof_for_its_own_reason() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    let other = DpopKey::generate_es256().unwrap();
    let mut private_jwk = key.public_jwk().clone();
    private_jwk["d"] = json!("c2VjcmV0LXNjYWxhci1ub3QtcmVhbGx5LWEta2V5");

    let cases: Vec<(&str, String)> = vec![
        (
            "dpop_wrong_typ",
            crafted(&key, &t, json!({"typ": "JWT"}), json!({})),
        ),
        (
            "dpop_wrong_typ",
            crafted(&key, &t, json!({"typ": null}), json!({})),
        ),
        (
            "dpop_symmetric_or_none_alg",
            crafted(&key, &t, json!({"alg": "HS256"}), json!({})),
        ),
        (
            "dpop_symmetric_or_none_alg",
            crafted(&key, &t, json!({"alg": "none"}), json!({})),
        ),
        (
            "dpop_alg_not_allowed",
            crafted(&key, &t, json!({"alg": "RS256"}), json!({})),
        ),
        (
            "dpop_private_jwk",
            crafted(&key, &t, json!({"jwk": private_jwk}), json!({})),
        ),
        (
            "dpop_jwk_missing",
            crafted(&key, &t, json!({"jwk": null}), json!({})),
        ),
        (
            "dpop_crit_header",
            crafted(&key, &t, json!({"crit": ["exp"]}), json!({})),
        ),
        // Signed by another key than the one in `jwk`.
        (
            "dpop_bad_signature",
            crafted(&other, &t, json!({"jwk": key.public_jwk()}), json!({})),
        ),
        (
            "dpop_htm_mismatch",
            crafted(&key, &t, json!({}), json!({"htm": "POST"})),
        ),
        (
            "dpop_htm_mismatch",
            crafted(&key, &t, json!({}), json!({"htm": "get"})),
        ),
        (
            "dpop_htu_mismatch",
            crafted(
                &key,
                &t,
                json!({}),
                json!({"htu": "https://api.example.test/api/other"}),
            ),
        ),
        (
            "dpop_htu_mismatch",
            crafted(
                &key,
                &t,
                json!({}),
                json!({"htu": "http://api.example.test/api/items"}),
            ),
        ),
        (
            "dpop_htu_mismatch",
            crafted(
                &key,
                &t,
                json!({}),
                json!({"htu": "https://evil.example/api/items"}),
            ),
        ),
        (
            "dpop_iat_too_old",
            crafted(&key, &t, json!({}), json!({"iat": now() - 120})),
        ),
        (
            "dpop_iat_in_future",
            crafted(&key, &t, json!({}), json!({"iat": now() + 60})),
        ),
        (
            "dpop_missing_claim",
            crafted(&key, &t, json!({}), json!({"jti": null})),
        ),
        (
            "dpop_missing_claim",
            crafted(&key, &t, json!({}), json!({"iat": null})),
        ),
        (
            "dpop_invalid_jti",
            crafted(&key, &t, json!({}), json!({"jti": "x".repeat(300)})),
        ),
        (
            "dpop_ath_missing",
            crafted(&key, &t, json!({}), json!({"ath": null})),
        ),
        (
            "dpop_ath_mismatch",
            crafted(
                &key,
                &t,
                json!({}),
                json!({"ath": access_token_hash("another token")}),
            ),
        ),
        (
            "dpop_proof_malformed",
            crafted(&key, &t, json!({}), json!({"iat": "yesterday"})),
        ),
        ("dpop_proof_malformed", "not.a.jws".to_owned()),
        (
            "dpop_proof_too_large",
            crafted(&key, &t, json!({}), json!({"pad": "x".repeat(9 * 1024)})),
        ),
    ];
    for (reason, proof) in cases {
        let logs = LogCapture::start();
        let a = s.dpop(&t, &proof).await;
        assert_eq!(a.body["error"], "invalid_dpop_proof", "{reason}");
        assert_refused(&a, &logs, PROOF_ERROR, reason);
    }
}

#[tokio::test]
async fn the_proof_must_name_the_public_url_not_what_the_host_header_says() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    // What a server trusting `Host` would expect: the loopback address it was reached at.
    let host_based = format!("http://{}/api/items", s.addr);
    let proof = key
        .proof("GET", &host_based)
        .access_token(&t)
        .sign()
        .unwrap();
    let logs = LogCapture::start();
    let a = s.dpop(&t, &proof).await;
    assert_refused(&a, &logs, PROOF_ERROR, "dpop_htu_mismatch");
}

#[tokio::test]
async fn a_replayed_proof_is_refused_on_second_use() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    assert_eq!(s.dpop(&t, &proof).await.status, 200);
    let logs = LogCapture::start();
    let a = s.dpop(&t, &proof).await;
    assert_refused(&a, &logs, PROOF_ERROR, "dpop_proof_replayed");
}

#[tokio::test]
async fn a_refused_request_does_not_spend_its_proof() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    // The same proof with a token it was not made for: refused, and nothing remembered...
    let other = token(Some(key.thumbprint()))
        .replace('.', ".x")
        .replacen(".x", ".", 1);
    assert_eq!(s.dpop(&other, &proof).await.status, 401);
    // ...so the rightful request still passes.
    assert_eq!(s.dpop(&t, &proof).await.status, 200);
}

#[tokio::test]
async fn a_token_bound_to_another_key_is_refused_with_invalid_token() {
    let s = serve(DpopMode::Required).await;
    let (_, t) = bound();
    let thief = DpopKey::generate_es256().unwrap();
    let proof = thief.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let logs = LogCapture::start();
    let a = s.dpop(&t, &proof).await;
    assert_eq!(a.body["error"], "invalid_token");
    assert_refused(&a, &logs, TOKEN_ERROR, "dpop_key_binding_mismatch");
}

#[tokio::test]
async fn an_unbound_token_under_the_dpop_scheme_is_refused() {
    let s = serve(DpopMode::Allowed).await;
    let key = DpopKey::generate_es256().unwrap();
    let t = token(None);
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let logs = LogCapture::start();
    let a = s.dpop(&t, &proof).await;
    assert_refused(&a, &logs, TOKEN_ERROR, "dpop_token_not_bound");
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_always_refused() {
    for mode in [DpopMode::Required, DpopMode::Allowed] {
        let s = serve(mode).await;
        let (key, t) = bound();
        let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
        let logs = LogCapture::start();
        // With or without a proof next to it.
        for proofs in [&[][..], &[proof.as_str()][..]] {
            let a = s
                .send(reqwest::Method::GET, Some(format!("Bearer {t}")), proofs)
                .await;
            assert_eq!(a.status, 401, "{mode:?}");
            assert!(
                a.challenge()
                    .starts_with(r#"DPoP algs="ES256 EdDSA", error="invalid_token""#)
            );
        }
        let reasons: Vec<_> = logs
            .take_events()
            .iter()
            .filter_map(|e| e.field("reason").map(str::to_owned))
            .collect();
        let want = match mode {
            DpopMode::Required => "dpop_bearer_not_accepted",
            _ => "dpop_bound_token_as_bearer",
        };
        assert_eq!(reasons, [want, want]);
    }
}

#[tokio::test]
async fn bearer_tokens_pass_only_where_allowed_and_only_unbound() {
    let t = token(None);
    let allowed = serve(DpopMode::Allowed).await;
    let a = allowed
        .send(reqwest::Method::GET, Some(format!("Bearer {t}")), &[])
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["method"], "jwt");

    let required = serve(DpopMode::Required).await;
    let a = required
        .send(reqwest::Method::GET, Some(format!("Bearer {t}")), &[])
        .await;
    assert_eq!(a.status, 401);
    assert!(a.challenge().starts_with(CHALLENGE));
}

#[tokio::test]
async fn missing_or_repeated_dpop_headers_are_refused() {
    let s = serve(DpopMode::Required).await;
    let (key, t) = bound();
    let p1 = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let p2 = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let logs = LogCapture::start();
    let a = s
        .send(reqwest::Method::GET, Some(format!("DPoP {t}")), &[&p1, &p2])
        .await;
    assert_refused(&a, &logs, PROOF_ERROR, "dpop_multiple_proofs");
    let a = s
        .send(reqwest::Method::GET, Some(format!("DPoP {t}")), &[])
        .await;
    assert_refused(&a, &logs, PROOF_ERROR, "dpop_proof_missing");
    // Neither spent p1: it still works alone.
    assert_eq!(s.dpop(&t, &p1).await.status, 200);
}

#[tokio::test]
async fn an_invalid_access_token_is_refused_with_invalid_token_whatever_the_proof() {
    let s = serve(DpopMode::Required).await;
    let key = DpopKey::generate_es256().unwrap();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"iss": ISS, "aud": AUD, "sub": "mallory", "exp": now() + 300,
                "cnf": {"jkt": key.thumbprint()}}),
        &jsonwebtoken::EncodingKey::from_secret(b"not the issuer's secret, 32+ bytes long"),
    )
    .unwrap();
    let proof = key
        .proof("GET", ITEMS)
        .access_token(&forged)
        .sign()
        .unwrap();
    let a = s.dpop(&forged, &proof).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge(), TOKEN_ERROR);
}

#[tokio::test]
async fn a_required_nonce_is_handed_out_then_accepted() {
    let nonces = Arc::new(
        HmacDpopNonces::new()
            .unwrap()
            .period(Duration::from_secs(60)),
    );
    let proofs = DpopVerifier::builder(PUBLIC)
        .require_nonce(nonces)
        .build()
        .unwrap();
    let s = serve_with(proofs, DpopMode::Required).await;
    let (key, t) = bound();

    let logs = LogCapture::start();
    let first = key.proof("POST", ITEMS).access_token(&t).sign().unwrap();
    let a = s
        .send(reqwest::Method::POST, Some(format!("DPoP {t}")), &[&first])
        .await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge()
            .starts_with(r#"DPoP algs="ES256 EdDSA", error="use_dpop_nonce""#),
        "{}",
        a.challenge()
    );
    assert_eq!(a.body["error"], "use_dpop_nonce");
    let nonce = a.headers["dpop-nonce"].to_str().unwrap().to_owned();
    logs.take_events();

    // A nonce the server never issued gets the same answer and a fresh nonce.
    let forged = key
        .proof("POST", ITEMS)
        .access_token(&t)
        .nonce("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .sign()
        .unwrap();
    let a = s
        .send(reqwest::Method::POST, Some(format!("DPoP {t}")), &[&forged])
        .await;
    assert_eq!(a.status, 401);
    assert!(a.headers.contains_key("dpop-nonce"));
    let reasons: Vec<_> = logs
        .take_events()
        .iter()
        .filter_map(|e| e.field("reason").map(str::to_owned))
        .collect();
    assert_eq!(reasons, ["dpop_nonce_invalid"]);

    let retry = key
        .proof("POST", ITEMS)
        .access_token(&t)
        .nonce(&nonce)
        .sign()
        .unwrap();
    let a = s
        .send(reqwest::Method::POST, Some(format!("DPoP {t}")), &[&retry])
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["method"], "dpop");
}

#[tokio::test]
async fn a_nested_router_still_compares_the_path_the_client_used() {
    let inner = Router::new()
        .route("/items", get(me))
        .layer(Dpop::new(jwt().await, DpopVerifier::builder(PUBLIC).build().unwrap()).layer());
    let app = Router::new().nest("/api", inner);
    let s = serve_router(app).await;
    let (key, t) = bound();
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    assert_eq!(s.dpop(&t, &proof).await.status, 200);
    // The path the nested router sees (`/items`) is not the target URI.
    let stripped = key
        .proof("GET", "https://api.example.test/items")
        .access_token(&t)
        .sign()
        .unwrap();
    assert_eq!(s.dpop(&t, &stripped).await.status, 401);
}

apiauth_core::scope!(ItemsWrite = "items:write");

#[tokio::test]
async fn a_missing_scope_is_403_in_the_dpop_scheme() {
    let app = Router::new()
        .route(
            "/api/items",
            get(
                |apiauth_core::Scoped(p, ..): apiauth_core::Scoped<ItemsWrite>| async move {
                    p.subject().to_owned()
                },
            ),
        )
        .layer(Dpop::new(jwt().await, DpopVerifier::builder(PUBLIC).build().unwrap()).layer());
    let s = serve_router(app).await;
    let (key, t) = bound();
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let a = s.dpop(&t, &proof).await;
    assert_eq!(a.status, 403);
    assert!(
        a.challenge()
            .starts_with(r#"DPoP algs="ES256 EdDSA", error="insufficient_scope""#),
        "{}",
        a.challenge()
    );
}

/// A replay store that cannot answer.
struct Down;

#[async_trait::async_trait]
impl apiauth_dpop::DpopReplayStore for Down {
    async fn first_use(
        &self,
        _: &str,
        _: Duration,
    ) -> Result<bool, apiauth_core::store::StoreError> {
        Err(apiauth_core::store::StoreError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_replay_store_that_cannot_answer_is_503_never_a_pass() {
    let proofs = DpopVerifier::builder(PUBLIC)
        .replay_store(Arc::new(Down))
        .build()
        .unwrap();
    let s = serve_with(proofs, DpopMode::Required).await;
    let (key, t) = bound();
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let a = s.dpop(&t, &proof).await;
    assert_eq!(a.status, 503);
    assert!(a.headers.contains_key("retry-after"));
}

/// `DpopMode::BesideBearer` with a `Bearer` layer on the same route: each scheme is offered,
/// verified and answered by its own layer, both naming the RFC 9728 metadata document.
#[tokio::test]
async fn beside_a_bearer_layer_each_scheme_answers_in_its_own_words() {
    const META: &str = "https://api.example.test/.well-known/oauth-protected-resource";
    let proofs = DpopVerifier::builder(PUBLIC).build().unwrap();
    let s = serve_router(
        Router::new()
            .route("/api/items", get(me))
            .layer(
                Dpop::new(jwt().await, proofs)
                    .mode(DpopMode::BesideBearer)
                    .resource_metadata(META)
                    .layer(),
            )
            .layer(
                apiauth_bearer::Bearer::new(jwt().await)
                    .realm("api")
                    .resource_metadata(META)
                    .layer(),
            ),
    )
    .await;
    // Nothing presented: both challenges, outermost first (RFC 7235 §4.1).
    let a = s.send(reqwest::Method::GET, None, &[]).await;
    assert_eq!(a.status, 401);
    let offered: Vec<&str> = a
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        [
            format!(r#"Bearer realm="api", resource_metadata="{META}""#),
            format!(r#"{CHALLENGE}, resource_metadata="{META}""#),
        ]
    );
    // An unbound bearer token: the Bearer layer's principal.
    let a = s
        .send(
            reqwest::Method::GET,
            Some(format!("Bearer {}", token(None))),
            &[],
        )
        .await;
    assert_eq!((a.status, a.body["method"].as_str()), (200, Some("jwt")));
    // A bound token as Bearer: refused in Bearer's words (RFC 9449 §7.1, RFC 6750 §3.1).
    let (key, t) = bound();
    let a = s
        .send(reqwest::Method::GET, Some(format!("Bearer {t}")), &[])
        .await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge()
            .starts_with(r#"Bearer realm="api", resource_metadata=""#)
            && a.challenge().contains(r#"error="invalid_token""#),
        "{}",
        a.challenge()
    );
    // The same token with a proof: the DPoP layer's principal.
    let proof = key.proof("GET", ITEMS).access_token(&t).sign().unwrap();
    let a = s.dpop(&t, &proof).await;
    assert_eq!((a.status, a.body["method"].as_str()), (200, Some("dpop")));
    // Its replay: refused in DPoP's words, naming the metadata too.
    let a = s.dpop(&t, &proof).await;
    assert_eq!(a.status, 401);
    assert!(
        a.challenge().starts_with(&format!(
            r#"{CHALLENGE}, resource_metadata="{META}", error="invalid_dpop_proof""#
        )),
        "{}",
        a.challenge()
    );
}
