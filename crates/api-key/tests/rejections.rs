//! Every rejection looks the same to the caller; the audit event says which it was; a store
//! failure is a 503; no key reaches a log line.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use apiauth_api_key::{ApiKeys, NewKey};
use apiauth_core::audit::sensitive_headers_layer;
use apiauth_testkit::LogCapture;
use common::*;
use http::{StatusCode, header};

#[tokio::test]
async fn unknown_revoked_expired_rotated_malformed_and_bad_checksum_keys_get_one_body() {
    let logs = LogCapture::start();

    let f = Fixture::new();
    let revoked = f.keys.create(NewKey::new("r")).await.unwrap();
    f.keys.revoke(&revoked.summary.id).await.unwrap();
    let expired = f
        .keys
        .create(NewKey::new("e").expires_in(Duration::from_secs(1)))
        .await
        .unwrap();
    let rotated = f.keys.create(NewKey::new("o")).await.unwrap();
    f.keys
        .rotate(&rotated.summary.id, Duration::from_secs(1))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(2));
    let valid = f.keys.create(NewKey::new("v")).await.unwrap();
    let v = valid.key.expose_secret();
    let id = &*valid.summary.id;

    let cases = [
        (
            "unknown_key",
            forge(PREFIX, "ZZZZZZZZZZZZ", &"s".repeat(30)),
        ),
        ("wrong_secret", forge(PREFIX, id, &"s".repeat(30))),
        ("revoked", revoked.key.expose_secret().to_owned()),
        ("expired", expired.key.expose_secret().to_owned()),
        ("rotated", rotated.key.expose_secret().to_owned()),
        ("bad_checksum", flip(v, v.len() - 1)),
        ("malformed", format!("{PREFIX}short")),
        ("wrong_prefix", v.replace(PREFIX, "sk_live_")),
    ];
    let app = f.app().layer(sensitive_headers_layer());
    let mut first: Option<(String, String)> = None;
    for (reason, key) in &cases {
        let seen = send(&app, get_with("/me", &[("x-api-key", key)])).await;
        assert_eq!(seen.status, StatusCode::UNAUTHORIZED, "{reason}");
        let challenge = seen.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            challenge,
            r#"ApiKey realm="api", error="invalid_key", error_description="The credentials are not valid.""#
        );
        match &first {
            None => first = Some((seen.body.clone(), challenge)),
            Some((body, _)) => assert_eq!(&seen.body, body, "{reason} answers differently"),
        }
        assert!(!seen.body.contains(reason));
        let log = logs.take_text();
        assert!(
            log.contains(&format!("reason=\"{reason}\"")) && log.contains("method=\"api_key\""),
            "audit for {reason}: {log}"
        );
        assert!(
            !log.contains(key.as_str()),
            "key leaked into the log: {log}"
        );
        if *reason == "revoked" {
            // The real key's rejection names its public id and owner for the audit trail.
            assert!(
                log.contains(&format!("credential_id=\"{}\"", revoked.summary.id))
                    && log.contains("subject=\"r\""),
                "revoked key not identified in the audit: {log}"
            );
        }
    }

    // The accepted request's audit event names the key id, never the key.
    let seen = send(&app, get_with("/me", &[("x-api-key", v)])).await;
    assert_eq!(seen.status, StatusCode::OK);
    let log = logs.take_text();
    assert!(log.contains("outcome=\"accept\"") && log.contains(&format!("credential_id=\"{id}\"")));
    assert!(!log.contains(v), "{log}");
}

#[tokio::test]
async fn store_failure_is_503_never_401_or_a_pass() {
    let store = Instrumented::default();
    let keys = ApiKeys::new(Arc::new(store.clone()))
        .prefix(PREFIX)
        .unwrap();
    let created = keys.create(NewKey::new("alice")).await.unwrap();
    let app = routes().layer(keys.auth().layer().unwrap());
    store.down.store(true, Ordering::SeqCst);
    let seen = send(
        &app,
        get_with("/me", &[("x-api-key", created.key.expose_secret())]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.headers[header::RETRY_AFTER], "1");
    assert!(seen.headers.get(header::WWW_AUTHENTICATE).is_none());
    // A key that fails the checksum never needed the store: still a plain 401.
    let k = created.key.expose_secret();
    let seen = send(
        &app,
        get_with("/me", &[("x-api-key", &flip(k, k.len() - 1))]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_key_with_a_wrong_secret_is_audited_as_a_wrong_secret() {
    let logs = LogCapture::start();
    let f = Fixture::new();
    let created = f.keys.create(NewKey::new("alice")).await.unwrap();
    f.keys.revoke(&created.summary.id).await.unwrap();
    let guess = forge(PREFIX, &created.summary.id, &"q".repeat(30));
    let seen = send(&f.app(), get_with("/me", &[("x-api-key", &guess)])).await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    // The audit reports `revoked` only for the real key, not for a guess at its id.
    let log = logs.take_text();
    assert!(log.contains("reason=\"wrong_secret\""), "{log}");
}
