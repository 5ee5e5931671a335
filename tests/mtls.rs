//! RFC 8705 end to end: the example serving HTTPS (`--dev-tls`) and asking for client
//! certificates from a CA (`--mtls-ca`). A token requested at `/oauth/token` over a
//! connection presenting certificate A is bound to A (`cnf.x5t#S256`): it works over a
//! connection presenting A, and not over one presenting B or none.

mod support;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{Saas, TempDir};

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

/// A CA (PEM) and two client identities it issued (certificate + key PEM, and DER).
fn pki() -> (String, [(String, Vec<u8>); 2]) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "demo clients CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let client = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &ca).unwrap();
        (
            format!("{}{}", cert.pem(), key.serialize_pem()),
            cert.der().to_vec(),
        )
    };
    (ca.pem(), [client("client-a"), client("client-b")])
}

fn https_client(identity: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        // --dev-tls serves a self-signed certificate for localhost.
        .tls_danger_accept_invalid_certs(true);
    if let Some(pem) = identity {
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn a_token_requested_over_mtls_works_only_over_connections_with_the_same_certificate() {
    let dir = TempDir::new("mtls");
    let (ca, [(a_pem, a_der), (b_pem, _)]) = pki();
    let ca_path = dir.0.join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let s = Saas::start(&["--dev-tls", "--mtls-ca", ca_path.to_str().unwrap()]).await;
    let (with_a, with_b, without) = (
        https_client(Some(&a_pem)),
        https_client(Some(&b_pem)),
        https_client(None),
    );

    let res = with_a
        .post(s.url("/oauth/token"))
        .basic_auth(
            cred(&s, &["oauth_client", "client_id"]),
            Some(cred(&s, &["oauth_client", "client_secret"])),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "companies:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap().to_owned();
    // RFC 8705 §3.1: the thumbprint of certificate A, computed here independently.
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&a_der))
    );

    let call = |c: &reqwest::Client| {
        c.get(s.url("/v1/companies/acme.com"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(call(&with_a).await.unwrap().status(), 200);
    for other in [&with_b, &without] {
        let res = call(other).await.unwrap();
        assert_eq!(res.status(), 401);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
}
