//! The core contract is open: two methods defined here, outside the suite, through the
//! facade's public API only. One is a token scheme other than `Bearer` whose verifier reads
//! the request's parts (the shape of RFC 9449 DPoP); the other is a whole `Authenticator`
//! shared through an `Arc`. Neither needs a new `AuthMethod` variant or a core change.

use std::sync::Arc;

use apiauth::bearer::{Bearer, TokenScheme, TokenVerifier};
use apiauth::{
    Auth, AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal, RequestContext,
    ScopeSet, Scoped, audit, scope,
};
use apiauth_testkit::send;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderName, Request, StatusCode, header};

scope!(pub Read = "data:read");
scope!(pub Write = "data:write");

const PROOF: AuthMethod = AuthMethod::custom("proof");
const TOY: AuthMethod = AuthMethod::custom("toy");
static PROOF_HEADER: HeaderName = HeaderName::from_static("proof");

/// `Authorization: Proof <token>` plus a `Proof` header that must name the request's method
/// and path (a toy of a DPoP proof: real proofs are signed JWTs).
struct ProofVerifier;

impl TokenVerifier for ProofVerifier {
    fn method(&self) -> AuthMethod {
        PROOF
    }
    async fn verify(&self, token: &str, req: &RequestContext<'_>) -> Result<Principal, AuthError> {
        if token != "alice-token" {
            return Err(AuthError::invalid_credentials("unknown_token"));
        }
        let expected = format!("{} {}", req.method(), req.uri().path());
        match req.headers().get(&PROOF_HEADER) {
            Some(v) if v.as_bytes() == expected.as_bytes() => {
                Ok(Principal::builder("alice", PROOF)
                    .scopes(ScopeSet::parse("data:read").unwrap())
                    .build())
            }
            _ => Err(AuthError::invalid_credentials("proof_mismatch")),
        }
    }
}

/// `X-Toy: let-me-in`, a whole method written from the trait.
struct Toy;

impl Authenticator for Toy {
    type Credential = String;
    fn method(&self) -> AuthMethod {
        TOY
    }
    fn challenge(&self) -> Challenge {
        Challenge::new("Toy").param("realm", "api")
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        match req.headers().get("x-toy") {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| AuthError::invalid_request("X-Toy must be ASCII")),
        }
    }
    async fn verify(&self, c: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
        if c == "let-me-in" {
            Ok(Principal::builder("bob", TOY)
                .credential_id("toy-1")
                .scopes(ScopeSet::parse("data:read").unwrap())
                .build())
        } else {
            Err(AuthError::invalid_credentials("wrong_toy_secret"))
        }
    }
}

fn app() -> Router {
    let toy = Arc::new(Toy);
    let proof = Bearer::new(ProofVerifier)
        .scheme(TokenScheme::custom("Proof").unwrap())
        .realm("api");
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { format!("{} {}", p.identity(), p.method()) }),
        )
        .route("/write", get(|_: Scoped<Write>| async { "written" }))
        .route("/read", get(|_: Scoped<Read>| async { "read" }))
        .layer(AuthLayer::new(toy.clone()))
        .layer(proof.layer())
        .layer(audit::sensitive_headers_layer_with([PROOF_HEADER.clone()]))
}

fn proof_req(path: &str, proof: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, "Proof alice-token")
        .header(&PROOF_HEADER, proof)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn anonymous_request_is_offered_both_custom_schemes() {
    let a = send(&app(), Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.challenges(),
        vec![r#"Proof realm="api""#, r#"Toy realm="api""#]
    );
}

#[tokio::test]
async fn custom_token_scheme_verifier_sees_method_uri_and_headers() {
    let a = send(&app(), proof_req("/me", "GET /me")).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (StatusCode::OK, "proof::alice proof")
    );
    // The same token with a proof for another request is refused, in the Proof scheme.
    let a = send(&app(), proof_req("/me", "POST /me")).await;
    let ch = a.challenges();
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ch.len(), 1);
    assert!(
        ch[0].starts_with(r#"Proof realm="api", error="invalid_token""#),
        "{ch:?}"
    );
}

#[tokio::test]
async fn custom_token_scheme_answers_403_in_its_own_scheme() {
    let a = send(&app(), proof_req("/write", "GET /write")).await;
    let ch = a.challenges();
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(ch.len(), 1);
    assert!(
        ch[0].starts_with(r#"Proof error="insufficient_scope""#),
        "{ch:?}"
    );
    assert!(ch[0].ends_with(r#"scope="data:write""#), "{ch:?}");
    assert!(a.body.contains("insufficient_scope"));
    assert_eq!(
        send(&app(), proof_req("/read", "GET /read")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn shared_custom_authenticator_works_and_its_403_has_no_challenge() {
    let toy = |path: &str| {
        Request::get(path)
            .header("x-toy", "let-me-in")
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app(), toy("/me")).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (StatusCode::OK, "toy::bob toy")
    );
    let a = send(&app(), toy("/write")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.challenges().is_empty(), "{a:?}");
}

#[tokio::test]
async fn two_custom_methods_on_one_request_are_refused() {
    let mut req = proof_req("/me", "GET /me");
    req.headers_mut()
        .insert("x-toy", http::HeaderValue::from_static("let-me-in"));
    assert_eq!(send(&app(), req).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_new_credential_header_can_be_marked_sensitive() {
    let app: Router = Router::new()
        .route(
            "/",
            get(|h: http::HeaderMap| async move { h[&PROOF_HEADER].is_sensitive().to_string() }),
        )
        .layer(audit::sensitive_headers_layer_with([PROOF_HEADER.clone()]));
    let req = Request::get("/")
        .header(&PROOF_HEADER, "x")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.body, "true");
}
