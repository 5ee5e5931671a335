//! RFC 9728: a client that gets a 401 finds the metadata document named in the challenge and
//! learns which authorization server issues tokens for the resource.

use apiauth_bearer::{Bearer, ProtectedResourceMetadata, TokenVerifier};
use apiauth_core::{Auth, AuthError, AuthMethod, Principal};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Nobody;

impl TokenVerifier for Nobody {
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    async fn verify(
        &self,
        _token: &str,
        _req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        Err(AuthError::invalid_credentials("unknown_token"))
    }
}

fn app() -> (Router, ProtectedResourceMetadata) {
    let meta = ProtectedResourceMetadata::new("https://api.example.com/v1")
        .unwrap()
        .authorization_server("https://auth.example.com")
        .scopes_supported(["contacts:read"])
        .resource_name("Example API");
    let api = Router::new()
        .route(
            "/v1/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(
            Bearer::new(Nobody)
                .realm("api")
                .resource_metadata(meta.metadata_url())
                .layer(),
        );
    (api.merge(meta.router()), meta)
}

async fn get_path(app: &Router, path: &str, token: Option<&str>) -> http::Response<Body> {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn metadata_param(challenge: &str) -> &str {
    let start = challenge.find("resource_metadata=\"").unwrap() + "resource_metadata=\"".len();
    let rest = &challenge[start..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn a_401_names_the_metadata_and_the_metadata_names_the_authorization_server() {
    let (app, _) = app();
    for token in [None, Some("wrong")] {
        let res = get_path(&app, "/v1/me", token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
        let url = metadata_param(challenge);
        assert_eq!(
            url,
            "https://api.example.com/.well-known/oauth-protected-resource/v1"
        );
        // The client fetches it (here: its path on this router) without credentials.
        let path = url.strip_prefix("https://api.example.com").unwrap();
        let res = get_path(&app, path, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        // RFC 9728 §3.3: the resource is the identifier the URL was made from.
        assert_eq!(doc["resource"], "https://api.example.com/v1");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!(["https://auth.example.com"])
        );
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["contacts:read"])
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
    }
    // With a token error the challenge keeps RFC 6750's attributes beside it.
    let res = get_path(&app, "/v1/me", Some("wrong")).await;
    let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn without_resource_metadata_the_challenge_is_unchanged() {
    let app = Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(Bearer::new(Nobody).realm("api").layer());
    let res = get_path(&app, "/me", None).await;
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"api\""
    );
}
