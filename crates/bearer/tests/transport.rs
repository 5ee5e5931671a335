//! RFC 6750 transport rules through a real axum `Router`.

use apiauth_bearer::{Bearer, TokenVerifier};
use apiauth_core::{Auth, AuthError, AuthMethod, Principal, ScopeSet, Scoped, scope};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

scope!(pub Read = "read");

struct Fixed;

impl TokenVerifier for Fixed {
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    async fn verify(
        &self,
        token: &str,
        _req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        match token {
            "t0k3n" => Ok(Principal::builder("alice", AuthMethod::BEARER)
                .scopes(ScopeSet::parse("read").unwrap())
                .build()),
            "noscope" => Ok(Principal::builder("bob", AuthMethod::BEARER).build()),
            _ => Err(AuthError::invalid_credentials("unknown_token")),
        }
    }
}

fn app(query: bool) -> Router {
    let bearer = Bearer::new(Fixed).realm("example");
    let bearer = if query {
        bearer.dangerous_allow_query_token()
    } else {
        bearer
    };
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .route("/read", get(|_: Scoped<Read>| async { "ok" }))
        .layer(bearer.layer())
}

async fn call(app: Router, req: Request<Body>) -> (StatusCode, Vec<String>, serde_json::Value) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let challenges = res
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() || status.is_success() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, challenges, json)
}

fn req(uri: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn valid_token_in_header_is_accepted_with_any_scheme_casing() {
    for auth in ["Bearer t0k3n", "bearer t0k3n", "BEARER t0k3n"] {
        assert_eq!(
            call(app(false), req("/me", Some(auth))).await.0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn no_token_is_401_with_a_challenge_without_error_code() {
    let (s, c, _) = call(app(false), req("/me", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(c, vec![r#"Bearer realm="example""#]);
}

#[tokio::test]
async fn invalid_token_is_401_invalid_token() {
    let (s, c, p) = call(app(false), req("/me", Some("Bearer nope"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c,
        vec![
            r#"Bearer realm="example", error="invalid_token", error_description="The credentials are not valid.""#
        ]
    );
    assert_eq!(p["error"], "invalid_token");
}

#[tokio::test]
async fn token_not_matching_token68_is_400_invalid_request() {
    for bad in ["Bearer two words", "Bearer a,b", "Bearer =x", "Bearer"] {
        let (s, c, p) = call(app(false), req("/me", Some(bad))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(p["error"], "invalid_request");
        // RFC 6750 §3: a 400 may carry the challenge with error="invalid_request".
        assert!(c.is_empty() || c[0].contains(r#"error="invalid_request""#));
    }
}

#[tokio::test]
async fn query_token_is_refused_by_default() {
    let (s, _, p) = call(app(false), req("/me?access_token=t0k3n", None)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization header")
    );
}

#[tokio::test]
async fn query_token_is_accepted_when_the_route_opts_in() {
    assert_eq!(
        call(app(true), req("/me?access_token=t0k3n", None)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(app(true), req("/me?access_token=nope", None)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_in_header_and_query_is_400() {
    let (s, _, _) = call(
        app(true),
        req("/me?access_token=t0k3n", Some("Bearer t0k3n")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn missing_scope_is_403_with_bearer_insufficient_scope() {
    let (s, c, p) = call(app(false), req("/read", Some("Bearer noscope"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        c[0].starts_with(r#"Bearer error="insufficient_scope""#),
        "{c:?}"
    );
    assert!(c[0].ends_with(r#"scope="read""#));
    assert_eq!(p["scope"], "read");
    assert_eq!(
        call(app(false), req("/read", Some("Bearer t0k3n"))).await.0,
        StatusCode::OK
    );
}

fn form_app() -> Router {
    Router::new()
        .route(
            "/submit",
            axum::routing::post(|Auth(p): Auth, body: String| async move {
                format!("{} sent {body}", p.subject())
            }),
        )
        .layer(
            Bearer::new(Fixed)
                .realm("example")
                .allow_form_body_token()
                .layer(),
        )
}

fn form(method: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/submit")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn call_text(app: Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn form_body_token_is_accepted_on_an_opted_in_route_and_the_body_handed_on() {
    let (s, body) = call_text(form_app(), form("POST", "x=1&access_token=t0k3n&y=2")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, "alice sent x=1&access_token=t0k3n&y=2");
    let (s, _) = call_text(form_app(), form("POST", "access_token=nope")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn form_body_token_rules_of_rfc6750_section_2_2() {
    // No token in the form: 401 with the challenge, no error code.
    let res = form_app().oneshot(form("POST", "x=1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="example""#
    );
    // Twice, malformed or non-ASCII: 400.
    for bad in [
        "access_token=t0k3n&access_token=t0k3n",
        "access_token=a%20b",
        "access_token=t0k3n&z=%C3%A9\u{e9}",
    ] {
        assert_eq!(
            call_text(form_app(), form("POST", bad)).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // GET never carries a form token; other content types are not looked at.
    assert_eq!(
        call_text(form_app(), form("GET", "access_token=t0k3n"))
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let json = Request::post("/submit")
        .header("content-type", "application/json")
        .body(Body::from("access_token=t0k3n"))
        .unwrap();
    assert_eq!(
        call_text(form_app(), json).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A body past 64 KiB is not read: 413.
    let big = format!("access_token=t0k3n&pad={}", "a".repeat(70 * 1024));
    assert_eq!(
        call_text(form_app(), form("POST", &big)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn form_body_tokens_are_ignored_unless_the_route_opts_in() {
    let app = Router::new()
        .route(
            "/submit",
            axum::routing::post(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(Bearer::new(Fixed).layer());
    assert_eq!(
        call_text(app, form("POST", "access_token=t0k3n")).await.0,
        StatusCode::UNAUTHORIZED
    );
}
