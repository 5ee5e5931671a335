//! Audit events are emitted for accepts and rejects, and a TRACE-level trace of the whole
//! request holds no secret when the sensitive-headers layer is in place.

use apiauth_core::audit::sensitive_headers_layer;
use apiauth_core::header::authorization_token68;
use apiauth_core::{Auth, AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
use apiauth_testkit::LogCapture;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use tower::ServiceExt;
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, TraceLayer};
use tracing::Level;

const SECRET: &str = "s3cr3tTokenValue0123456789";

struct Bearer;

impl Authenticator for Bearer {
    type Credential = String;
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    fn challenge(&self) -> Challenge {
        Challenge::bearer("audit")
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        Ok(authorization_token68(req, "Bearer")?.map(str::to_owned))
    }
    async fn verify(&self, t: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
        if t == SECRET {
            Ok(Principal::builder("alice", AuthMethod::BEARER)
                .credential_id("tok-42")
                .build())
        } else {
            Err(AuthError::invalid_credentials("unknown_token").with_credential_id("tok-unknown"))
        }
    }
}

#[tokio::test]
async fn trace_of_accepted_and_rejected_requests_holds_no_secret() {
    let logs = LogCapture::start();

    let app = Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(AuthLayer::new(Bearer))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(
                    DefaultMakeSpan::new()
                        .level(Level::TRACE)
                        .include_headers(true),
                )
                .on_request(DefaultOnRequest::new().level(Level::TRACE)),
        )
        .layer(sensitive_headers_layer());

    let ok = app
        .clone()
        .oneshot(
            Request::get("/me")
                .header("authorization", format!("Bearer {SECRET}"))
                .header("x-api-key", SECRET)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = format!("{SECRET}x");
    let bad = app
        .oneshot(
            Request::get("/me")
                .header("authorization", format!("Bearer {wrong}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let out = logs.text();
    // The trace did record the headers (as Sensitive) and both audit events…
    assert!(
        out.contains("authorization"),
        "headers were not traced:\n{out}"
    );
    assert!(out.contains("Sensitive"), "{out}");
    assert!(out.contains("apiauth::audit"), "{out}");
    assert!(
        out.contains("outcome=\"accept\"") && out.contains("subject=\"alice\""),
        "{out}"
    );
    assert!(out.contains("credential_id=\"tok-42\""), "{out}");
    // The rejection names the public credential id the method knew, never the secret.
    assert!(out.contains("credential_id=\"tok-unknown\""), "{out}");
    assert!(
        out.contains("outcome=\"reject\"") && out.contains("reason=\"unknown_token\""),
        "{out}"
    );
    // …and never the secret.
    assert!(
        !out.contains(SECRET),
        "secret leaked into the trace:\n{out}"
    );
}
