//! `Authorization` header schemes: core's token68 reader, Basic (RFC 7617), Bearer (RFC 6750)
//! and ApiKey, on one arbitrary header value and query string.
#![no_main]

use std::sync::{Arc, OnceLock};

use apiauth_api_key::{ApiKeyAuth, ApiKeyAuthenticator, MemoryApiKeyStore};
use apiauth_basic::{CredentialEncoding, parse_authorization_with};
use apiauth_bearer::{Bearer, BearerCredential, TokenVerifier};
use apiauth_core::header::{authorization_token68, is_token68};
use apiauth_core::{Auth, AuthError, AuthLayer, AuthMethod, Authenticator, Principal};
use apiauth_fuzz::{block_on, get_with_authorization, seen};
use arbitrary::Arbitrary;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Refuses every token: no fuzz input may reach a handler.
struct RefuseAll;

impl TokenVerifier for RefuseAll {
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    async fn verify(
        &self,
        _token: &str,
        _req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        Err(AuthError::invalid_credentials("fuzz_refuses_all"))
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    value: &'a [u8],
    query: Option<&'a str>,
}

struct Fixture {
    bearer: Bearer<RefuseAll>,
    bearer_query: Bearer<RefuseAll>,
    api_key: ApiKeyAuthenticator,
    router: Router,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let router = Router::new()
            .route("/r", get(|Auth(p): Auth| async move { p.subject().to_owned() }))
            .layer(
                ApiKeyAuth::new(Arc::new(MemoryApiKeyStore::new()))
                    .layer()
                    .expect("default api key config builds"),
            )
            .layer(AuthLayer::new(Bearer::new(RefuseAll)));
        Fixture {
            bearer: Bearer::new(RefuseAll),
            bearer_query: Bearer::new(RefuseAll).dangerous_allow_query_token(),
            api_key: ApiKeyAuth::new(Arc::new(MemoryApiKeyStore::new()))
                .build()
                .expect("default api key config builds"),
            router,
        }
    })
}

/// The scheme word: everything before the first space.
fn scheme_word(v: &[u8]) -> &[u8] {
    let end = v.iter().position(|&c| c == b' ').unwrap_or(v.len());
    &v[..end]
}

/// A value long and distinctive enough that finding it in a response means it was echoed.
fn distinctive(s: &str) -> bool {
    s.len() >= 16 && s.bytes().any(|b| b.is_ascii_digit())
}

fn check_token68(req: &http::Request<Body>, value: &[u8]) {
    for scheme in ["Basic", "Bearer", "ApiKey"] {
        let ours = scheme_word(value).eq_ignore_ascii_case(scheme.as_bytes());
        match authorization_token68(req, scheme) {
            Ok(Some(t)) => {
                assert!(ours, "token68 taken for a foreign scheme");
                assert!(is_token68(t), "returned token is not token68: {t:?}");
                assert!(value.ends_with(t.as_bytes()), "token is not the value's tail");
                // Re-serialised, it parses to the same token.
                let again = format!("{scheme} {t}");
                let req2 = get_with_authorization(again.as_bytes(), "/r").expect("token68 is a valid header value");
                assert_eq!(authorization_token68(&req2, scheme).ok().flatten(), Some(t));
            }
            Ok(None) => assert!(!ours, "own scheme reported absent"),
            Err(e) => {
                assert!(ours, "a foreign scheme must not be an error");
                assert_eq!(e.status(), 400);
            }
        }
    }
}

fn check_basic(req: &http::Request<Body>) {
    for enc in [CredentialEncoding::Plain, CredentialEncoding::FormUrlEncoded] {
        match parse_authorization_with(req, enc) {
            Ok(Some(c)) => {
                let pass = c.password().expose_secret();
                assert!(!c.user_id().chars().any(char::is_control));
                assert!(!pass.chars().any(char::is_control));
                // Debug shows the user-id and never the password.
                assert_eq!(
                    format!("{c:?}"),
                    format!(
                        "BasicCredentials {{ user_id: {:?}, password: \"[redacted]\" }}",
                        c.user_id()
                    )
                );
                // Round trip: what a client would send for these credentials parses back to
                // the same credentials.
                let v = c.to_header_value(enc).expect("parsed credentials re-encode");
                let req2 = get_with_authorization(v.as_bytes(), "/r").expect("valid header");
                let back = parse_authorization_with(&req2, enc)
                    .expect("re-encoded credentials parse")
                    .expect("and are Basic");
                assert_eq!(back, c, "Basic credentials do not round-trip");
            }
            Ok(None) => {}
            Err(e) => assert_eq!(e.status(), 400, "malformed Basic must be 400"),
        }
    }
}

fn check_bearer_and_api_key(req: &http::Request<Body>, query: Option<&str>) {
    let f = fixture();
    let header = authorization_token68(req, "Bearer");
    let has_query_token = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p.split_once('=').map_or(p, |(k, _)| k).contains("access_token")
                || p.contains("%"))
    });
    match f.bearer.extract(req) {
        Ok(Some(BearerCredential::Token(t))) => {
            assert!(is_token68(&t));
            assert_eq!(header.as_ref().ok().copied().flatten(), Some(t.as_str()));
        }
        // Form-body tokens are read only on routes that opt in; this layer does not.
        Ok(Some(BearerCredential::FormBody)) => panic!("form body claimed without opting in"),
        Ok(None) => assert!(matches!(header, Ok(None))),
        Err(e) => assert_eq!(e.status(), 400),
    }
    match f.bearer_query.extract(req) {
        Ok(Some(BearerCredential::FormBody)) => panic!("form body claimed without opting in"),
        Ok(Some(BearerCredential::Token(t))) => {
            assert!(is_token68(&t) && t.len() <= 16 * 1024);
            let from_header = header.as_ref().ok().copied().flatten();
            assert!(from_header == Some(t.as_str()) || has_query_token);
        }
        Ok(None) | Err(_) => {}
    }
    match f.api_key.extract(req) {
        Ok(Some(_)) => {
            let in_header = matches!(authorization_token68(req, "ApiKey"), Ok(Some(_)));
            assert!(in_header, "an API key was found where none was sent");
        }
        Ok(None) => {}
        Err(e) => assert_eq!(e.status(), 400),
    }
}

fuzz_target!(|input: Input<'_>| {
    let uri = match input.query {
        Some(q) => format!("/r?{q}"),
        None => "/r".to_owned(),
    };
    let Some(req) = get_with_authorization(input.value, &uri)
        .or_else(|| get_with_authorization(input.value, "/r"))
    else {
        return;
    };
    let query = req.uri().query().map(str::to_owned);
    check_token68(&req, input.value);
    check_basic(&req);
    check_bearer_and_api_key(&req, query.as_deref());

    // Through the layers, as a client sees it: never the handler, never a 5xx, never the
    // presented credential echoed back.
    let router = fixture().router.clone();
    let s = block_on(async move { seen(router.oneshot(req).await.expect("infallible")).await });
    assert!(
        matches!(s.status, 400 | 401),
        "unexpected status {} for {:?}",
        s.status,
        input
    );
    if let Ok(text) = std::str::from_utf8(input.value) {
        if let Some((_, token)) = text.split_once(' ') {
            let token = token.trim_start_matches(' ');
            if distinctive(token) {
                assert!(!s.shows(token), "credential echoed in the response");
            }
        }
    }
});
