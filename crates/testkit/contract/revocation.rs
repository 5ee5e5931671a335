//! `RevocationList`: revoke until an end, only ever lengthened; exact ids; forgotten after.

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::store::RevocationList;

use super::time::Time;

/// The contract.
pub async fn revocation_contract(list: Arc<dyn RevocationList>, time: Time) {
    let t0 = time.now();
    assert!(!list.is_revoked("never").await.unwrap(), "unknown id");

    list.revoke("short", t0 + Duration::from_secs(2))
        .await
        .unwrap();
    // A later revoke with an earlier end must not shorten the first.
    list.revoke("long", t0 + Duration::from_secs(8))
        .await
        .unwrap();
    list.revoke("long", t0 + Duration::from_secs(1))
        .await
        .unwrap();
    // Already expired: nothing to remember.
    list.revoke("past", t0 - Duration::from_secs(1))
        .await
        .unwrap();
    let odd = format!("ünï cödé {}", "x".repeat(5000));
    list.revoke(&odd, t0 + Duration::from_secs(8))
        .await
        .unwrap();

    assert!(list.is_revoked("short").await.unwrap());
    assert!(list.is_revoked("long").await.unwrap());
    assert!(!list.is_revoked("past").await.unwrap());
    assert!(list.is_revoked(&odd).await.unwrap());
    assert!(
        !list.is_revoked(&odd[..odd.len() - 1]).await.unwrap(),
        "ids are exact"
    );
    assert!(!list.is_revoked("shor").await.unwrap(), "no prefix match");

    time.advance(Duration::from_secs(3)).await;
    assert!(
        !list.is_revoked("short").await.unwrap(),
        "forgotten after expiry"
    );
    assert!(
        list.is_revoked("long").await.unwrap(),
        "the longer revocation stands"
    );
}
