//! Where the key is read: header, `Authorization`, query string, and other methods beside it.

mod common;

use apiauth_api_key::NewKey;
use apiauth_core::header::authorization_token68;
use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{Request, StatusCode, header};

async fn key(f: &Fixture) -> String {
    let c = f.keys.create(NewKey::new("alice")).await.unwrap();
    c.key.expose_secret().to_owned()
}

#[tokio::test]
async fn key_is_accepted_in_x_api_key_and_in_authorization_apikey() {
    let f = Fixture::new();
    let k = key(&f).await;
    let app = f.app();
    for (name, value) in [
        ("x-api-key", k.clone()),
        ("X-API-KEY", k.clone()),
        ("authorization", format!("ApiKey {k}")),
        // RFC 7235 §2.1: the scheme is case-insensitive.
        ("authorization", format!("apikey {k}")),
    ] {
        let seen = send(&app, get_with("/me", &[(name, &value)])).await;
        assert_eq!(seen.status, StatusCode::OK, "{name}");
        assert_eq!(seen.json()["subject"], "alice");
    }
}

#[tokio::test]
async fn header_name_and_scheme_are_configurable() {
    let f = Fixture::new();
    let k = key(&f).await;
    let app = routes().layer(
        f.auth()
            .header(http::HeaderName::from_static("x-acme-key"))
            .authorization_scheme("AcmeKey")
            .realm("acme")
            .layer()
            .unwrap(),
    );
    let ok = send(&app, get_with("/me", &[("x-acme-key", &k)])).await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = send(
        &app,
        get_with("/me", &[("authorization", &format!("AcmeKey {k}"))]),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    // The default places are no longer read: the key is not seen, so the route asks for one.
    let seen = send(&app, get_with("/me", &[("x-api-key", &k)])).await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        seen.headers[header::WWW_AUTHENTICATE],
        r#"AcmeKey realm="acme""#
    );
}

#[tokio::test]
async fn missing_key_is_401_with_an_apikey_challenge() {
    let f = Fixture::new();
    let seen = send(&f.app(), get_with("/me", &[])).await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        seen.headers[header::WWW_AUTHENTICATE],
        r#"ApiKey realm="api""#
    );
    // Nothing was presented, so no error code (RFC 6750 §3 style).
    assert!(seen.json().get("error").is_none());
}

#[tokio::test]
async fn key_in_both_header_and_authorization_is_400() {
    let f = Fixture::new();
    let k = key(&f).await;
    let seen = send(
        &f.app(),
        get_with(
            "/me",
            &[("x-api-key", &k), ("authorization", &format!("ApiKey {k}"))],
        ),
    )
    .await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST);
    assert_eq!(seen.json()["error"], "invalid_request");
    let twice = send(
        &f.app(),
        get_with("/me", &[("x-api-key", &k), ("x-api-key", &k)]),
    )
    .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn query_string_key_is_refused_with_a_400_naming_the_header() {
    let f = Fixture::new();
    let k = key(&f).await;
    let app = f.app();
    for uri in [
        format!("/me?api_key={k}"),
        format!("/me?page=2&API_KEY={k}"),
        format!("/me?token={k}"),
        "/me?apikey=whatever".to_owned(),
    ] {
        let seen = send(&app, get_with(&uri, &[])).await;
        assert_eq!(seen.status, StatusCode::BAD_REQUEST, "{uri}");
        let p = seen.json();
        assert_eq!(p["error"], "invalid_request");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("query string") && detail.contains("X-API-Key"),
            "{detail}"
        );
        assert!(!seen.body.contains(&k));
    }
    // Refused even with a valid header key alongside: the key in the URL is already leaked.
    let seen = send(
        &app,
        get_with(&format!("/me?api_key={k}"), &[("x-api-key", &k)]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST);
    // Ordinary query strings are untouched.
    let seen = send(&app, get_with("/me?page=2&key=name", &[("x-api-key", &k)])).await;
    assert_eq!(seen.status, StatusCode::OK);
}

#[tokio::test]
async fn a_route_that_opts_in_accepts_the_query_key_and_others_still_refuse_it() {
    let f = Fixture::new();
    let k = key(&f).await;
    let header_only = f.auth().layer().unwrap();
    let with_query = f
        .auth()
        .dangerous_allow_query_key("api_key")
        .layer()
        .unwrap();
    let app = Router::new()
        .route(
            "/export.csv",
            get(|p: apiauth_core::Auth| async move { p.subject().to_owned() })
                .route_layer(with_query),
        )
        .merge(routes().route_layer(header_only));

    let seen = send(&app, get_with(&format!("/export.csv?api_key={k}"), &[])).await;
    assert_eq!((seen.status, seen.body.as_str()), (StatusCode::OK, "alice"));
    let seen = send(&app, get_with(&format!("/me?api_key={k}"), &[])).await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST);
    // On the opted-in route the header still works, but not both at once.
    let seen = send(&app, get_with("/export.csv", &[("x-api-key", &k)])).await;
    assert_eq!(seen.status, StatusCode::OK);
    let seen = send(
        &app,
        get_with(&format!("/export.csv?api_key={k}"), &[("x-api-key", &k)]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::BAD_REQUEST);
    // A wrong query key is a 401 like any other.
    let seen = send(&app, get_with("/export.csv?api_key=nope", &[])).await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
}

/// `Authorization: Bearer good` is valid.
struct TestBearer;

impl Authenticator for TestBearer {
    type Credential = String;
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    fn challenge(&self) -> Challenge {
        Challenge::bearer("api")
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        Ok(authorization_token68(req, "Bearer")?.map(str::to_owned))
    }
    async fn verify(&self, t: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
        if t == "good" {
            Ok(Principal::builder("bearer-user", AuthMethod::BEARER).build())
        } else {
            Err(AuthError::invalid_credentials("unknown_token"))
        }
    }
}

#[tokio::test]
async fn api_key_and_another_method_at_once_is_400_and_each_alone_works() {
    let f = Fixture::new();
    let k = key(&f).await;
    let app = routes()
        .layer(f.auth().layer().unwrap())
        .layer(AuthLayer::new(TestBearer));
    let both = send(
        &app,
        get_with(
            "/me",
            &[("authorization", "Bearer good"), ("x-api-key", &k)],
        ),
    )
    .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.json()["error"], "invalid_request");

    let key_only = send(&app, get_with("/me", &[("x-api-key", &k)])).await;
    assert_eq!(key_only.json()["method"], "api_key");
    // A Bearer Authorization field is not an API key: the key layer passes it on.
    let bearer_only = send(&app, get_with("/me", &[("authorization", "Bearer good")])).await;
    assert_eq!(bearer_only.json()["method"], "bearer");

    let none = send(&app, get_with("/me", &[])).await;
    let offered: Vec<_> = none
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(offered, [r#"Bearer realm="api""#, r#"ApiKey realm="api""#]);
}

/// Sends one raw HTTP/1.1 request and returns the status code.
async fn raw_status(addr: std::net::SocketAddr, target: &str, headers: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn over_a_real_socket_header_and_authorization_work_and_query_keys_are_refused() {
    let f = Fixture::new();
    let k = key(&f).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, f.app()).into_future());

    assert_eq!(
        raw_status(addr, "/me", &format!("X-API-Key: {k}\r\n")).await,
        200
    );
    assert_eq!(
        raw_status(addr, "/me", &format!("Authorization: ApiKey {k}\r\n")).await,
        200
    );
    assert_eq!(raw_status(addr, &format!("/me?api_key={k}"), "").await, 400);
    assert_eq!(
        raw_status(addr, "/me", "X-API-Key: sk_test_nope\r\n").await,
        401
    );
    assert_eq!(raw_status(addr, "/me", "").await, 401);
    server.abort();
}
