//! `ApiKeyStore`: round trips, filtered ordered listing, atomic changes, batched last-used.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_api_key::{ApiKeyRecord, ApiKeyStore, KeyChange, KeyFilter, KeyStatus};
use apiauth_core::ScopeSet;
use apiauth_core::token::SecretHash;

/// Whole seconds: the JSON form keeps Unix seconds, so both stores agree exactly.
pub fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000 + secs)
}

pub fn record(id: &str, owner: &str, tenant: Option<&str>, created: u64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        hash: SecretHash::of(format!("secret-of-{id}").as_bytes()),
        owner: owner.into(),
        tenant: tenant.map(Into::into),
        scopes: ScopeSet::parse("reports:read reports:write").unwrap(),
        plan: Some("pro".into()),
        created_at: at(created),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        rotated_from: None,
        grace_until: None,
    }
}

fn json(r: &ApiKeyRecord) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

fn ids(rs: &[ApiKeyRecord]) -> Vec<&str> {
    rs.iter().map(|r| &*r.id).collect()
}

pub async fn api_key_store_contract(store: Arc<dyn ApiKeyStore>) {
    assert!(store.get("nope").await.unwrap().is_none());

    let a = record("idA000000001", "alice", Some("acme"), 10);
    assert!(store.insert(a.clone()).await.unwrap());
    let mut dup = record("idA000000001", "mallory", None, 99);
    dup.hash = SecretHash::of(b"other");
    assert!(
        !store.insert(dup).await.unwrap(),
        "an existing id is left unchanged"
    );
    let got = store.get("idA000000001").await.unwrap().unwrap();
    assert_eq!(json(&got), json(&a), "every field round-trips");
    assert!(got.hash.ct_eq(&a.hash));

    // Listing: oldest first, ties by id, filtered, limited.
    store
        .insert(record("idC000000003", "bob", Some("acme"), 5))
        .await
        .unwrap();
    store
        .insert(record("idB000000002", "alice", None, 10))
        .await
        .unwrap();
    store
        .insert(record("idD000000004", "alice", Some("zeta"), 20))
        .await
        .unwrap();
    let all = store.list(&KeyFilter::all()).await.unwrap();
    assert_eq!(
        ids(&all),
        [
            "idC000000003",
            "idA000000001",
            "idB000000002",
            "idD000000004"
        ]
    );
    let alice = store.list(&KeyFilter::all().owner("alice")).await.unwrap();
    assert_eq!(
        ids(&alice),
        ["idA000000001", "idB000000002", "idD000000004"]
    );
    let acme = store.list(&KeyFilter::all().tenant("acme")).await.unwrap();
    assert_eq!(ids(&acme), ["idC000000003", "idA000000001"]);
    let both = store
        .list(&KeyFilter::all().owner("alice").tenant("acme"))
        .await
        .unwrap();
    assert_eq!(ids(&both), ["idA000000001"]);
    let two = store.list(&KeyFilter::all().limit(2)).await.unwrap();
    assert_eq!(ids(&two), ["idC000000003", "idA000000001"]);
    assert!(
        store
            .list(&KeyFilter::all().owner("nobody"))
            .await
            .unwrap()
            .is_empty()
    );

    // Changes: an earlier revocation stands; unknown ids are None.
    let r = store
        .update("idA000000001", &KeyChange::Revoke { at: at(100) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.revoked_at, Some(at(100)));
    let r = store
        .update("idA000000001", &KeyChange::Revoke { at: at(200) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.revoked_at, Some(at(100)));
    assert_eq!(r.status(at(150)), KeyStatus::Revoked);
    assert_eq!(
        store.get("idA000000001").await.unwrap().unwrap().revoked_at,
        Some(at(100))
    );
    assert!(
        store
            .update("nope", &KeyChange::Revoke { at: at(1) })
            .await
            .unwrap()
            .is_none()
    );
    let r = store
        .update(
            "idB000000002",
            &KeyChange::Rotate {
                successor: "idE000000005".into(),
                grace_until: at(300),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.rotated_to.as_deref(), Some("idE000000005"));
    let r = store
        .update(
            "idB000000002",
            &KeyChange::SetExpiry {
                expires_at: Some(at(400)),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.grace_until, r.expires_at),
        (Some(at(300)), Some(at(400)))
    );

    // Last used: batched, the latest wins, unknown ids ignored.
    store
        .record_last_used(&[
            ("idC000000003".into(), at(50)),
            ("unknown".into(), at(50)),
            ("idC000000003".into(), at(40)),
        ])
        .await
        .unwrap();
    store
        .record_last_used(&[("idC000000003".into(), at(30))])
        .await
        .unwrap();
    assert_eq!(
        store
            .get("idC000000003")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(at(50))
    );
    assert!(store.get("unknown").await.unwrap().is_none());

    // Concurrent changes of different kinds are all applied: none is lost.
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let change = if i % 2 == 0 {
                KeyChange::Revoke { at: at(1000 + i) }
            } else {
                KeyChange::SetExpiry {
                    expires_at: Some(at(5000)),
                }
            };
            s.update("idD000000004", &change).await.unwrap().unwrap();
            s.record_last_used(&[("idD000000004".into(), at(i))])
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let d = store.get("idD000000004").await.unwrap().unwrap();
    assert_eq!(d.revoked_at, Some(at(1000)), "the earliest revocation");
    assert_eq!(d.expires_at, Some(at(5000)));
    assert_eq!(d.last_used_at, Some(at(15)));
}
