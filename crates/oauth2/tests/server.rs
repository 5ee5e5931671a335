//! The authorization-server half over real HTTP on loopback.

mod common;

use std::time::Duration;

use apiauth_core::ScopeSet;
use apiauth_oauth2::{
    AuthorizationServer, KeyRotation, MemoryClientRegistry, OAuth2ConfigError, RegisteredClient,
};
use base64::Engine as _;
use common::{AUDIENCE, As, Client, LIFETIME, REPORTS, ROTATION, cheap_hasher};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use serde_json::Value;

/// Form-urlencodes like RFC 6749 §2.3.1 and builds the Basic header by hand.
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn post_form(
    a: &As,
    path: &str,
    auth: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = a.http.post(a.url(path)).form(form);
    if let Some(h) = auth {
        req = req.header(reqwest::header::AUTHORIZATION, h);
    }
    req.send().await.unwrap()
}

async fn jwks(a: &As) -> JwkSet {
    a.http
        .get(a.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let dec = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    let h = dec(it.next().unwrap());
    let c = dec(it.next().unwrap());
    (h, c)
}

/// Asserts an RFC 6749 §5.2 error answer and returns its body.
async fn assert_oauth_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "for {code}");
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(res.headers()[PRAGMA], "no-cache");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string());
    body
}

#[tokio::test]
async fn basic_client_auth_gets_an_rfc9068_jwt_with_no_store() {
    let a = As::start().await;
    let res = post_form(
        &a,
        "/oauth/token",
        Some(&basic(&a.worker.id, &a.worker.secret)),
        &[("grant_type", "client_credentials"), ("scope", "a")],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(res.headers()[PRAGMA], "no-cache");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], LIFETIME.as_secs());
    assert_eq!(body["scope"], "a");
    let token = body["access_token"].as_str().unwrap();

    let (header, claims) = jwt_parts(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["iss"], a.base);
    assert_eq!(claims["sub"], "worker");
    assert_eq!(claims["client_id"], "worker");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["scope"], "a");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        LIFETIME.as_secs()
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);

    // The signature verifies with the key the JWKS publishes under the header's kid.
    let set = jwks(&a).await;
    let jwk = set.find(header["kid"].as_str().unwrap()).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[AUDIENCE]);
    v.set_issuer(&[&a.base]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
}

#[tokio::test]
async fn client_secret_post_is_accepted_and_two_tokens_have_distinct_jti() {
    let a = As::start().await;
    let mut jtis = Vec::new();
    for _ in 0..2 {
        let res = post_form(
            &a,
            "/oauth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &a.worker.id),
                ("client_secret", &a.worker.secret),
            ],
        )
        .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        // No scope requested: the client's allowed scopes (RFC 6749 §3.3 default).
        assert_eq!(body["scope"], "a b");
        let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    assert_ne!(jtis[0], jtis[1]);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    let a = As::start().await;
    // A client id with characters that RFC 6749 §2.3.1 encoding changes (':' and ' ').
    let secret = a
        .clients
        .register("svc:reports v2", ScopeSet::parse("a").unwrap());
    let res = post_form(
        &a,
        "/oauth/token",
        Some(&basic("svc:reports v2", secret.expose_secret())),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], "svc:reports v2");
}

#[tokio::test]
async fn invalid_client_is_401_with_a_basic_challenge_and_one_body_for_every_cause() {
    let a = As::start().await;
    let grant = [("grant_type", "client_credentials")];
    // Wrong secret over Basic.
    let wrong = post_form(
        &a,
        "/oauth/token",
        Some(&basic(&a.worker.id, "ocs_not-the-secret")),
        &grant,
    )
    .await;
    let challenge = wrong.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let wrong = assert_oauth_error(wrong, 401, "invalid_client").await;
    // Unknown client over client_secret_post.
    let unknown = post_form(
        &a,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", &a.worker.secret),
        ],
    )
    .await;
    assert!(unknown.headers().contains_key(WWW_AUTHENTICATE));
    let unknown = assert_oauth_error(unknown, 401, "invalid_client").await;
    // No client authentication at all, and a client id without a secret.
    let none = assert_oauth_error(
        post_form(&a, "/oauth/token", None, &grant).await,
        401,
        "invalid_client",
    )
    .await;
    let public = assert_oauth_error(
        post_form(
            &a,
            "/oauth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "worker"),
            ],
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    // The caller cannot tell which client ids exist.
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, none);
    assert_eq!(wrong, public);
    assert!(!unknown.to_string().contains(&a.worker.secret));
}

#[tokio::test]
async fn invalid_request_cases() {
    let a = As::start().await;
    let auth = basic(&a.worker.id, &a.worker.secret);
    // grant_type missing.
    assert_oauth_error(
        post_form(&a, "/oauth/token", Some(&auth), &[("scope", "a")]).await,
        400,
        "invalid_request",
    )
    .await;
    // A repeated parameter (RFC 6749 §3.2).
    assert_oauth_error(
        post_form(
            &a,
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "a"),
                ("scope", "b"),
            ],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    // Two client authentication methods at once (RFC 6749 §2.3).
    assert_oauth_error(
        post_form(
            &a,
            "/oauth/token",
            Some(&auth),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &a.worker.secret),
            ],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    // Not a form body.
    let res = a
        .http
        .post(a.url("/oauth/token"))
        .header("authorization", &auth)
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // The secret in the URL (RFC 6749 §2.3.1).
    let res = a
        .http
        .post(a.url(&format!(
            "/oauth/token?client_id=worker&client_secret={}",
            a.worker.secret
        )))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(!body.to_string().contains(&a.worker.secret));
    // A body past the limit is refused without being buffered whole.
    let huge = "x".repeat(64 * 1024);
    let res = post_form(
        &a,
        "/oauth/token",
        Some(&auth),
        &[("grant_type", "client_credentials"), ("pad", &huge)],
    )
    .await;
    assert_oauth_error(res, 413, "invalid_request").await;
}

#[tokio::test]
async fn unsupported_grant_type_for_anything_but_client_credentials() {
    let a = As::start().await;
    for grant in ["authorization_code", "password", "refresh_token", "urn:x"] {
        assert_oauth_error(
            post_form(
                &a,
                "/oauth/token",
                Some(&basic(&a.worker.id, &a.worker.secret)),
                &[("grant_type", grant), ("code", "abc")],
            )
            .await,
            400,
            "unsupported_grant_type",
        )
        .await;
    }
}

#[tokio::test]
async fn invalid_scope_for_a_scope_beyond_the_clients_or_malformed() {
    let a = As::start().await;
    for scope in ["a c", "b", "a  b", "caf\u{e9}"] {
        assert_oauth_error(
            post_form(
                &a,
                "/oauth/token",
                Some(&basic(&a.other.id, &a.other.secret)),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await,
            400,
            "invalid_scope",
        )
        .await;
    }
}

#[tokio::test]
async fn unauthorized_client_for_a_resource_server_asking_for_tokens() {
    let a = As::start().await;
    assert_oauth_error(
        post_form(
            &a,
            "/oauth/token",
            Some(&basic(&a.rs.id, &a.rs.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await,
        400,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn invalid_grant_for_a_suspended_client_until_reinstated() {
    let a = As::start().await;
    let auth = basic(&a.worker.id, &a.worker.secret);
    let grant = [("grant_type", "client_credentials")];
    assert!(a.clients.set_suspended("worker", true));
    assert_oauth_error(
        post_form(&a, "/oauth/token", Some(&auth), &grant).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(a.clients.set_suspended("worker", false));
    assert_eq!(
        post_form(&a, "/oauth/token", Some(&auth), &grant)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn token_endpoint_refuses_get() {
    let a = As::start().await;
    let res = a.http.get(a.url("/oauth/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

async fn introspect(a: &As, client: &Client, token: &str) -> reqwest::Response {
    post_form(
        a,
        "/oauth/introspect",
        Some(&basic(&client.id, &client.secret)),
        &[("token", token)],
    )
    .await
}

#[tokio::test]
async fn introspection_endpoint_reports_active_expired_revoked_and_unknown() {
    let a = As::start().await;
    let token = a.token(&a.worker, Some("b")).await;

    let res = introspect(&a, &a.rs, &token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "b");
    assert_eq!(body["client_id"], "worker");
    assert_eq!(body["sub"], "worker");
    assert_eq!(body["aud"], AUDIENCE);
    assert_eq!(body["iss"], a.base);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].as_u64().is_some());

    // Unknown and tampered tokens: only `active: false` (RFC 7662 §2.2).
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for t in ["not-a-token", tampered.as_str()] {
        let body: Value = introspect(&a, &a.rs, t).await.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"active": false}));
    }

    // Revoked by its client (RFC 7009): inactive from then on.
    let res = post_form(
        &a,
        "/oauth/revoke",
        Some(&basic(&a.worker.id, &a.worker.secret)),
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = introspect(&a, &a.rs, &token).await.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));

    // Expired.
    let fresh = a.token(&a.worker, None).await;
    a.clock.advance(LIFETIME + Duration::from_secs(1));
    let body: Value = introspect(&a, &a.rs, &fresh).await.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn a_clients_tenant_is_in_its_tokens_and_in_their_introspection() {
    let a = As::start().await;
    let secret = "ocs_tenant-client-secret-0123456789abcdef";
    a.clients.insert(
        RegisteredClient::new(
            "crm-sync",
            cheap_hasher().hash(secret),
            ScopeSet::parse("a").unwrap(),
        )
        .tenant("acme"),
    );
    let acme = Client {
        id: "crm-sync".into(),
        secret: secret.into(),
    };
    let token = a.token(&acme, None).await;
    let (_, claims) = jwt_parts(&token);
    assert_eq!(claims["tenant"], "acme");
    let body: Value = introspect(&a, &a.rs, &token).await.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["tenant"], "acme");

    // A client without a tenant: no claim and no member, rather than an empty one.
    let token = a.token(&a.worker, None).await;
    let (_, claims) = jwt_parts(&token);
    assert!(claims.get("tenant").is_none(), "{claims}");
    let body: Value = introspect(&a, &a.rs, &token).await.json().await.unwrap();
    assert!(body.get("tenant").is_none(), "{body}");
}

#[tokio::test]
async fn introspection_requires_an_authenticated_client_allowed_to_introspect() {
    let a = As::start().await;
    let token = a.token(&a.worker, None).await;
    // No credentials.
    let res = post_form(&a, "/oauth/introspect", None, &[("token", &token)]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // Wrong secret.
    let res = post_form(
        &a,
        "/oauth/introspect",
        Some(&basic(&a.rs.id, &a.worker.secret)),
        &[("token", &token)],
    )
    .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // A client that is not a resource server.
    let res = introspect(&a, &a.other, &token).await;
    assert_oauth_error(res, 403, "unauthorized_client").await;
    // client_secret_post works for resource servers too.
    let res = post_form(
        &a,
        "/oauth/introspect",
        None,
        &[
            ("token", &token),
            ("client_id", "rs"),
            ("client_secret", &a.rs.secret),
        ],
    )
    .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_tokens_and_refuses_other_clients_tokens() {
    let a = As::start().await;
    let worker = basic(&a.worker.id, &a.worker.secret);
    let res = post_form(&a, "/oauth/revoke", Some(&worker), &[("token", "garbage")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");

    let token = a.token(&a.worker, None).await;
    // Another client cannot revoke it (RFC 7009 §2.1)...
    let res = post_form(
        &a,
        "/oauth/revoke",
        Some(&basic(&a.other.id, &a.other.secret)),
        &[("token", &token)],
    )
    .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
    // ...nor can an unauthenticated caller.
    let res = post_form(&a, "/oauth/revoke", None, &[("token", &token)]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    assert!(a.revoked.is_empty());
    let body: Value = introspect(&a, &a.rs, &token).await.json().await.unwrap();
    assert_eq!(body["active"], true);
    // The token parameter is required.
    let res = post_form(&a, "/oauth/revoke", Some(&worker), &[]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    // The owner can; the revocation list remembers the jti only until the token's exp.
    let res = post_form(&a, "/oauth/revoke", Some(&worker), &[("token", &token)]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(a.revoked.len(), 1);
    let (_, claims) = jwt_parts(&token);
    use apiauth_core::RevocationList as _;
    assert!(
        a.revoked
            .is_revoked(claims["jti"].as_str().unwrap())
            .await
            .unwrap()
    );
    a.clock.advance(LIFETIME + Duration::from_secs(1));
    assert!(
        !a.revoked
            .is_revoked(claims["jti"].as_str().unwrap())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn metadata_follows_rfc8414_and_its_urls_work() {
    let a = As::start().await;
    let res = a
        .http
        .get(a.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let m: Value = res.json().await.unwrap();
    // RFC 8414 §3.3: the issuer must be identical to the one the metadata was fetched for.
    assert_eq!(m["issuer"], a.base);
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", a.base));
    assert_eq!(m["revocation_endpoint"], format!("{}/oauth/revoke", a.base));
    assert_eq!(
        m["introspection_endpoint"],
        format!("{}/oauth/introspect", a.base)
    );
    assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", a.base));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!([]));
    let methods = serde_json::json!(["client_secret_basic", "client_secret_post"]);
    assert_eq!(m["token_endpoint_auth_methods_supported"], methods);
    assert_eq!(m["revocation_endpoint_auth_methods_supported"], methods);
    assert_eq!(m["introspection_endpoint_auth_methods_supported"], methods);
    assert_eq!(
        a.server.metadata_url(),
        a.url("/.well-known/oauth-authorization-server")
    );

    let set: JwkSet = a
        .http
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set.keys.len(), 1);
    let jwk = serde_json::to_value(&set.keys[0]).unwrap();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    // Public only: no private scalar.
    assert!(jwk.get("d").is_none());
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_metadata_at_the_rfc8414_location() {
    let (listener, addr) = common::listener().await;
    let issuer = format!("http://{addr}/tenant1");
    let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
    let server = AuthorizationServer::builder(issuer.clone())
        .dangerous_allow_http_issuer()
        .audience(AUDIENCE)
        .clients(std::sync::Arc::new(clients))
        .password_hasher(cheap_hasher())
        .build()
        .unwrap();
    common::serve_on(listener, server.router()).await;
    let http = reqwest::Client::new();
    let m: Value = http
        .get(format!(
            "http://{addr}/.well-known/oauth-authorization-server/tenant1"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], issuer);
    assert_eq!(m["token_endpoint"], format!("{issuer}/oauth/token"));
    let res = http
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_published_so_older_tokens_stay_valid() {
    let a = As::start().await;
    let before = a.token(&a.worker, None).await;
    let (h_before, _) = jwt_parts(&before);
    let kid_before = h_before["kid"].as_str().unwrap().to_owned();

    // Just past the interval: the next use rotates.
    a.clock.advance(ROTATION);
    let after = a.token(&a.worker, None).await;
    let (h_after, _) = jwt_parts(&after);
    let kid_after = h_after["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid_before, kid_after);

    let set = jwks(&a).await;
    let kids: Vec<_> = set
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids, vec![kid_after.clone(), kid_before.clone()]);

    // The token signed just before the rotation is still accepted until it expires... but
    // this one already expired with the interval; issue one right before the next rotation.
    a.clock.advance(ROTATION - LIFETIME);
    let late = a.token(&a.worker, None).await;
    a.clock.advance(LIFETIME - Duration::from_secs(1));
    a.server.rotate_keys().unwrap();
    let body: Value = introspect(&a, &a.rs, &late).await.json().await.unwrap();
    assert_eq!(
        body["active"], true,
        "signed by the previous key, not yet expired"
    );
    let kids: Vec<_> = jwks(&a)
        .await
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(!kids.contains(&kid_before), "two rotations ago: retired");
    assert!(kids.contains(&kid_after));
}

#[tokio::test]
async fn startup_refuses_unsafe_or_inconsistent_configuration() {
    let clients = std::sync::Arc::new(MemoryClientRegistry::with_hasher(cheap_hasher()));
    let base = || {
        AuthorizationServer::builder("https://auth.example.test")
            .audience(AUDIENCE)
            .clients(clients.clone())
            .password_hasher(cheap_hasher())
    };
    assert!(base().build().is_ok());
    assert!(matches!(
        AuthorizationServer::builder("http://auth.example.test")
            .audience(AUDIENCE)
            .clients(clients.clone())
            .build(),
        Err(OAuth2ConfigError::InsecureUrl { .. })
    ));
    assert!(matches!(
        AuthorizationServer::builder("https://auth.example.test/?x=1")
            .audience(AUDIENCE)
            .clients(clients.clone())
            .build(),
        Err(OAuth2ConfigError::InvalidUrl { .. })
    ));
    assert!(matches!(
        base()
            .token_lifetime(Duration::from_secs(600))
            .key_rotation(KeyRotation::every(Duration::from_secs(300)))
            .build(),
        Err(OAuth2ConfigError::Invalid(_))
    ));
    assert!(matches!(
        AuthorizationServer::builder("https://auth.example.test")
            .clients(clients.clone())
            .build(),
        Err(OAuth2ConfigError::Missing("audience"))
    ));
}

#[test]
fn debug_output_never_shows_secrets_or_hashes() {
    let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
    let secret = clients.register("c1", ScopeSet::parse("a").unwrap());
    assert!(
        secret
            .expose_secret()
            .starts_with(apiauth_oauth2::CLIENT_SECRET_PREFIX)
    );
    let hash = cheap_hasher().hash(secret.expose_secret());
    let record = RegisteredClient::new("c1", hash.clone(), ScopeSet::empty());
    for d in [
        format!("{secret:?}"),
        format!("{record:?}"),
        format!("{clients:?}"),
    ] {
        assert!(!d.contains(secret.expose_secret()), "{d}");
        assert!(!d.contains(&hash), "{d}");
    }
}

#[tokio::test]
async fn the_resource_parameter_picks_the_audience_and_an_unknown_one_is_invalid_target() {
    let a = As::start().await;
    let auth = basic(&a.worker.id, &a.worker.secret);
    let aud_of = |body: Value| jwt_parts(body["access_token"].as_str().unwrap()).1["aud"].clone();
    // RFC 8707 §2: the token is for the resource named, or for the default audience.
    for (resource, want) in [
        (None, AUDIENCE),
        (Some(AUDIENCE), AUDIENCE),
        (Some(REPORTS), REPORTS),
    ] {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(resource.map(|r| ("resource", r)));
        let res = post_form(&a, "/oauth/token", Some(&auth), &form).await;
        assert_eq!(res.status(), 200, "{resource:?}");
        assert_eq!(aud_of(res.json().await.unwrap()), want);
    }
    // A token for the second resource is this server's own: introspection knows it.
    let res = post_form(
        &a,
        "/oauth/token",
        Some(&auth),
        &[("grant_type", "client_credentials"), ("resource", REPORTS)],
    )
    .await;
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer: Value = introspect(&a, &a.rs, &token).await.json().await.unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    // Unknown, merely similar, and fragment-carrying resources are refused.
    for bad in [
        "https://evil.example.test",
        "https://reports.example.test/v2/",
        "HTTPS://reports.example.test/v2",
        "https://reports.example.test/v2#x",
    ] {
        let res = post_form(
            &a,
            "/oauth/token",
            Some(&auth),
            &[("grant_type", "client_credentials"), ("resource", bad)],
        )
        .await;
        assert_oauth_error(res, 400, "invalid_target").await;
    }
}
