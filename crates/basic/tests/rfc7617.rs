//! RFC 7617 parsing through a real router: what a client sees for good and malformed headers.

mod common;

use apiauth_basic::{
    BasicAuth, BasicCredentials, CredentialEncoding, CredentialRecord, MemoryCredentialStore,
};
use apiauth_core::ScopeSet;
use axum::Router;
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use common::{app, basic, cheap, me, me_raw, send};
use http::{Request, StatusCode};

fn users() -> MemoryCredentialStore {
    let h = cheap();
    let s = MemoryCredentialStore::new();
    s.insert_user("Aladdin", h.hash("open sesame"));
    s.insert_user("test", h.hash("123\u{a3}"));
    s.insert_user("alice", h.hash("wonder:land"));
    s.insert_user("nopass", h.hash(""));
    s.insert(
        "bob",
        CredentialRecord::new("user-42", h.hash("pw"))
            .tenant("acme")
            .scopes(ScopeSet::parse("admin:read admin:write").unwrap()),
    );
    s
}

fn router() -> Router {
    app(BasicAuth::builder(users())
        .realm("WallyWorld")
        .password_hasher(cheap())
        .layer()
        .unwrap())
}

fn assert_400(a: &common::Seen, what: &str) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}: {}", a.body);
    assert!(a.json().get("error").is_none(), "{what}: {}", a.body);
    assert!(
        !a.body.contains("Aladdin") && !a.body.contains("sesame"),
        "{what}: body echoes the credentials"
    );
}

#[tokio::test]
async fn rfc7617_aladdin_example_is_accepted() {
    // RFC 7617 §2: "Aladdin" / "open sesame".
    let a = me_raw(&router(), b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "Aladdin");
    assert_eq!(a.json()["method"], "basic");
}

#[tokio::test]
async fn rfc7617_utf8_example_is_accepted() {
    // RFC 7617 §2.1: "test" / "123£" in UTF-8.
    let a = me_raw(&router(), b"Basic dGVzdDoxMjPCow==").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "test");
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let h = format!("{scheme} QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let a = me_raw(&router(), h.as_bytes()).await;
        assert_eq!(a.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn missing_credentials_get_a_challenge_with_realm_and_utf8_charset() {
    let a = send(&router(), Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.challenges(),
        vec![r#"Basic realm="WallyWorld", charset="UTF-8""#.to_owned()]
    );
    // Routes that need no principal still work without credentials.
    let h = send(
        &router(),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!((h.status, h.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_401() {
    let wrong = me(&router(), "Aladdin", "open sesame!").await;
    let unknown = me(&router(), "Jafar", "open sesame").await;
    for a in [&wrong, &unknown] {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.challenges(),
            vec![r#"Basic realm="WallyWorld", charset="UTF-8""#.to_owned()]
        );
        // RFC 7617 defines no error codes: none is borrowed from Bearer (RFC 6750).
        assert!(a.json().get("error").is_none(), "{}", a.body);
    }
    assert_eq!(
        wrong.body, unknown.body,
        "the body must not tell them apart"
    );
    assert!(!wrong.body.contains("wrong_password") && !unknown.body.contains("unknown_user"));
}

#[tokio::test]
async fn malformed_base64_is_400_not_401() {
    let aladdin = "QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
    // `?>?` encodes to "Pz4/" in the standard alphabet and "Pz4_" in the URL-safe one.
    let url_safe = URL_SAFE.encode("u?>?:p?>?");
    assert!(url_safe.contains('_'));
    let cases: Vec<(String, &str)> = vec![
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ".into(), "missing padding"),
        (
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==".into(),
            "non-zero trailing bits",
        ),
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=".into(), "short padding"),
        (format!("Basic {url_safe}"), "URL-safe alphabet"),
        ("Basic Q".into(), "truncated"),
        ("Basic !!!!".into(), "not token68"),
        (format!("Basic {aladdin} extra"), "trailing data"),
        (format!("Basic {aladdin},"), "comma"),
        ("Basic".into(), "no credentials"),
        ("Basic ".into(), "empty credentials"),
    ];
    for (header, what) in cases {
        assert_400(&me_raw(&router(), header.as_bytes()).await, what);
    }
}

#[tokio::test]
async fn missing_colon_is_400() {
    let h = format!("Basic {}", STANDARD.encode("Aladdinopen sesame"));
    assert_400(&me_raw(&router(), h.as_bytes()).await, "missing colon");
}

#[tokio::test]
async fn non_utf8_bytes_are_400() {
    for raw in [
        &b"Aladdin:open \xff sesame"[..],
        b"Alad\xc3din:open sesame",
        b"\xfe:x",
    ] {
        let h = format!("Basic {}", STANDARD.encode(raw));
        assert_400(&me_raw(&router(), h.as_bytes()).await, "non-UTF-8");
    }
    // Non-ASCII in the header itself (not base64 at all).
    assert_400(
        &me_raw(&router(), b"Basic \xc3\xa9t\xc3\xa9").await,
        "raw non-ASCII",
    );
}

#[tokio::test]
async fn control_characters_are_400() {
    // RFC 7617 §2: neither part may contain a CTL.
    for raw in [
        "Alad\0din:open sesame",
        "Aladdin:open\nsesame",
        "Aladdin:\x7f",
        "\tA:b",
    ] {
        let h = format!("Basic {}", STANDARD.encode(raw));
        assert_400(&me_raw(&router(), h.as_bytes()).await, "control character");
    }
}

#[tokio::test]
async fn empty_password_is_verified_not_refused_as_malformed() {
    // `Aladdin:` is well-formed (RFC 7617 §2 allows an empty password): it is checked and fails.
    let a = me(&router(), "Aladdin", "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.json().get("error").is_none(), "{}", a.body);
    // A user whose password really is empty gets in with it, and not with anything else.
    assert_eq!(me(&router(), "nopass", "").await.status, StatusCode::OK);
    assert_eq!(
        me(&router(), "nopass", "x").await.status,
        StatusCode::UNAUTHORIZED
    );
    // An empty user-id is well-formed too, and simply unknown.
    assert_eq!(
        me(&router(), "", "pw").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn password_may_contain_colons() {
    // The first ':' ends the user-id; the rest belongs to the password.
    assert_eq!(
        me(&router(), "alice", "wonder:land").await.status,
        StatusCode::OK
    );
    assert_eq!(
        me(&router(), "alice", "wonder").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn two_authorization_headers_are_400() {
    let req = Request::get("/me")
        .header("authorization", basic("Aladdin", "open sesame"))
        .header("authorization", basic("Aladdin", "open sesame"))
        .body(Body::empty())
        .unwrap();
    assert_400(&send(&router(), req).await, "two headers");
}

#[tokio::test]
async fn other_schemes_pass_through_untouched() {
    let a = me_raw(&router(), b"Bearer abc").await;
    // Not ours: the Basic layer only records its challenge, the extractor answers 401.
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json().get("error"), None);
}

#[tokio::test]
async fn principal_carries_subject_credential_id_tenant_and_scopes() {
    let a = me(&router(), "bob", "pw").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let p = a.json();
    assert_eq!(p["subject"], "user-42");
    assert_eq!(p["credential_id"], "bob");
    assert_eq!(p["tenant"], "acme");
    assert_eq!(p["scopes"], "admin:read admin:write");
}

#[tokio::test]
async fn decomposed_unicode_matches_the_precomposed_password() {
    // RFC 7617 §2.1: NFC. "123£" is already NFC; "café" shows the normalization.
    let s = MemoryCredentialStore::new();
    s.insert_user("caf\u{e9}", cheap().hash("cr\u{e8}me"));
    let r = app(BasicAuth::builder(s)
        .password_hasher(cheap())
        .layer()
        .unwrap());
    assert_eq!(
        me(&r, "cafe\u{301}", "cre\u{300}me").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn overlong_credentials_are_400() {
    let r = app(BasicAuth::builder(users())
        .password_hasher(cheap())
        .max_credentials_len(64)
        .layer()
        .unwrap());
    let a = me(&r, "Aladdin", &"x".repeat(100)).await;
    assert_400(&a, "overlong");
    assert_eq!(
        me(&r, "Aladdin", "open sesame").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oauth_client_credentials_are_form_urlencoded_per_rfc6749() {
    let s = MemoryCredentialStore::new();
    // RFC 6749 §2.3.1's example client.
    s.insert_user("s6BhdRkqt3", cheap().hash("7Fjfp0ZBr1KtDRbnfVdmIw"));
    s.insert_user("client:one", cheap().hash("se cret+%"));
    let r = app(BasicAuth::builder(s)
        .password_hasher(cheap())
        .encoding(CredentialEncoding::FormUrlEncoded)
        .layer()
        .unwrap());
    let a = me_raw(&r, b"Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "s6BhdRkqt3");
    // A ':' in the client id and reserved characters in the secret travel percent-encoded.
    let h = BasicCredentials::new("client:one", "se cret+%")
        .to_header_value(CredentialEncoding::FormUrlEncoded)
        .unwrap();
    let a = me_raw(&r, h.as_bytes()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "client:one");
    // A broken percent-encoding is malformed, not a wrong secret.
    let h = format!("Basic {}", STANDARD.encode("client%3:x"));
    assert_400(&me_raw(&r, h.as_bytes()).await, "bad percent-encoding");
}
