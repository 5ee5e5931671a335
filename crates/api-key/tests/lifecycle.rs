//! The principal a key produces, and revoke, rotate and expiry as a client sees them.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use apiauth_api_key::{ApiKeyError, ApiKeys, KeyFilter, KeyStatus, NewKey};
use apiauth_core::ScopeSet;
use apiauth_core::clock::{Clock, unix_seconds};
use common::*;
use http::StatusCode;

async fn status_of(f: &Fixture, key: &str) -> StatusCode {
    send(&f.app(), get_with("/me", &[("x-api-key", key)]))
        .await
        .status
}

#[tokio::test]
async fn principal_carries_method_key_id_owner_tenant_scopes_plan_and_expiry() {
    let f = Fixture::new();
    let created = f
        .keys
        .create(
            NewKey::new("user-42")
                .tenant("acme")
                .plan("pro")
                .scopes(ScopeSet::parse("reports:read contacts:write").unwrap())
                .expires_in(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let seen = send(
        &f.app(),
        get_with("/me", &[("x-api-key", created.key.expose_secret())]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK);
    let p = seen.json();
    assert_eq!(p["method"], "api_key");
    assert_eq!(p["subject"], "user-42");
    assert_eq!(p["credential_id"], &*created.summary.id);
    assert_eq!(p["tenant"], "acme");
    assert_eq!(p["plan"], "pro");
    assert_eq!(p["scopes"], "contacts:write reports:read");
    assert_eq!(p["expires_at"], unix_seconds(f.clock.now()) + 3600);
}

#[tokio::test]
async fn scopes_of_the_key_decide_scoped_routes() {
    let f = Fixture::new();
    let reader = f
        .keys
        .create(
            NewKey::new("a")
                .tenant("acme")
                .scopes(ScopeSet::parse("reports:read").unwrap()),
        )
        .await
        .unwrap();
    let other = f
        .keys
        .create(NewKey::new("b").scopes(ScopeSet::parse("contacts:read").unwrap()))
        .await
        .unwrap();
    let app = f.app();
    let ok = send(
        &app,
        get_with("/reports", &[("x-api-key", reader.key.expose_secret())]),
    )
    .await;
    assert_eq!(
        (ok.status, ok.body.as_str()),
        (StatusCode::OK, "reports of acme")
    );
    let denied = send(
        &app,
        get_with("/reports", &[("x-api-key", other.key.expose_secret())]),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.json()["error"], "insufficient_scope");
    assert_eq!(denied.json()["scope"], "reports:read");
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let f = Fixture::new();
    let created = f.keys.create(NewKey::new("alice")).await.unwrap();
    let key = created.key.expose_secret();
    assert_eq!(status_of(&f, key).await, StatusCode::OK);
    let summary = f.keys.revoke(&created.summary.id).await.unwrap();
    assert_eq!(summary.status, KeyStatus::Revoked);
    // No clock movement, no cache to expire: refused at once.
    assert_eq!(status_of(&f, key).await, StatusCode::UNAUTHORIZED);
    f.clock.advance(Duration::from_secs(86_400 * 365));
    assert_eq!(status_of(&f, key).await, StatusCode::UNAUTHORIZED);
    assert!(matches!(
        f.keys.revoke("nosuchkeyid0").await,
        Err(ApiKeyError::NotFound)
    ));
}

#[tokio::test]
async fn rotation_keeps_the_old_key_working_for_the_grace_period_then_stops_it() {
    let f = Fixture::new();
    let old = f
        .keys
        .create(
            NewKey::new("alice")
                .tenant("acme")
                .scopes(ScopeSet::parse("reports:read").unwrap()),
        )
        .await
        .unwrap();
    let new = f
        .keys
        .rotate(&old.summary.id, Duration::from_secs(600))
        .await
        .unwrap();
    assert_ne!(new.key, old.key);
    assert_eq!(new.summary.rotated_from, Some(old.summary.id.clone()));
    assert_eq!(new.summary.tenant.as_deref(), Some("acme"));
    let (old_key, new_key) = (old.key.expose_secret(), new.key.expose_secret());

    // During the grace period both work, with the same owner and scopes.
    assert_eq!(status_of(&f, old_key).await, StatusCode::OK);
    assert_eq!(status_of(&f, new_key).await, StatusCode::OK);
    let seen = send(&f.app(), get_with("/reports", &[("x-api-key", new_key)])).await;
    assert_eq!(seen.status, StatusCode::OK);
    let p = send(&f.app(), get_with("/me", &[("x-api-key", old_key)]))
        .await
        .json();
    // The old key's principal says when it stops.
    assert_eq!(p["expires_at"], unix_seconds(f.clock.now()) + 600);

    f.clock.advance(Duration::from_secs(599));
    assert_eq!(status_of(&f, old_key).await, StatusCode::OK);
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(status_of(&f, old_key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&f, new_key).await, StatusCode::OK);

    let old_now = f.keys.get(&old.summary.id).await.unwrap().unwrap();
    assert_eq!(old_now.status, KeyStatus::Rotated);
    assert_eq!(old_now.rotated_to, Some(new.summary.id.clone()));
}

#[tokio::test]
async fn zero_grace_rotation_stops_the_old_key_at_once_and_rotating_twice_is_refused() {
    let f = Fixture::new();
    let old = f.keys.create(NewKey::new("alice")).await.unwrap();
    let new = f
        .keys
        .rotate(&old.summary.id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        status_of(&f, old.key.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of(&f, new.key.expose_secret()).await, StatusCode::OK);
    assert!(matches!(
        f.keys.rotate(&old.summary.id, Duration::ZERO).await,
        Err(ApiKeyError::NotActive(KeyStatus::Rotated))
    ));
    f.keys.revoke(&new.summary.id).await.unwrap();
    assert!(matches!(
        f.keys.rotate(&new.summary.id, Duration::ZERO).await,
        Err(ApiKeyError::NotActive(KeyStatus::Revoked))
    ));
}

#[tokio::test]
async fn key_expires_at_its_expiry_and_rotation_keeps_the_expiry() {
    let f = Fixture::new();
    let created = f
        .keys
        .create(NewKey::new("alice").expires_in(Duration::from_secs(120)))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    assert_eq!(status_of(&f, key).await, StatusCode::OK);
    // A successor inherits the expiry: rotation must not extend a key's life.
    let successor = f
        .keys
        .rotate(&created.summary.id, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(successor.summary.expires_at, created.summary.expires_at);
    f.clock.advance(Duration::from_secs(119));
    assert_eq!(status_of(&f, key).await, StatusCode::OK);
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(status_of(&f, key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_of(&f, successor.key.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        f.keys
            .get(&created.summary.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        KeyStatus::Expired
    );
}

#[tokio::test]
async fn expiry_can_be_set_and_cleared_later() {
    let f = Fixture::new();
    let created = f.keys.create(NewKey::new("alice")).await.unwrap();
    let key = created.key.expose_secret();
    let soon = f.clock.now() + Duration::from_secs(10);
    f.keys
        .set_expiry(&created.summary.id, Some(soon))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(10));
    assert_eq!(status_of(&f, key).await, StatusCode::UNAUTHORIZED);
    f.keys.set_expiry(&created.summary.id, None).await.unwrap();
    assert_eq!(status_of(&f, key).await, StatusCode::OK);
}

#[tokio::test]
async fn of_two_concurrent_rotations_one_wins_and_the_loser_issues_no_live_key() {
    let store = Instrumented::default();
    let keys = ApiKeys::new(Arc::new(store.clone()))
        .prefix(PREFIX)
        .unwrap();
    let old = keys.create(NewKey::new("alice")).await.unwrap();
    store.interleave.store(true, Ordering::SeqCst);
    let grace = Duration::from_secs(60);
    let (a, b) = tokio::join!(
        keys.rotate(&old.summary.id, grace),
        keys.rotate(&old.summary.id, grace)
    );
    store.interleave.store(false, Ordering::SeqCst);
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        other => panic!("expected exactly one winner: {other:?}"),
    };
    assert!(
        matches!(loser, ApiKeyError::NotActive(KeyStatus::Rotating)),
        "{loser:?}"
    );
    let app = routes().layer(keys.auth().layer().unwrap());
    let seen = send(
        &app,
        get_with("/me", &[("x-api-key", winner.key.expose_secret())]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK);
    // Every key of alice's is either the original, the recorded successor, or revoked.
    let all = keys.list(&KeyFilter::all().owner("alice")).await.unwrap();
    assert_eq!(all.len(), 3, "both rotations issued a successor: {all:?}");
    let usable: Vec<_> = all
        .iter()
        .filter(|k| k.status != KeyStatus::Revoked)
        .collect();
    assert_eq!(usable.len(), 2);
    let recorded = keys.get(&old.summary.id).await.unwrap().unwrap().rotated_to;
    assert_eq!(recorded, Some(winner.summary.id.clone()));
}
