//! RFC 7662 introspection responses: parsing `IntrospectionResponse` and the checks the
//! resource server applies to every answer, fresh or cached.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use apiauth_bearer::TokenVerifier;
use apiauth_core::clock::ManualClock;
use apiauth_core::{ScopeSet, StoreError};
use apiauth_fuzz::{block_on, epoch_now};
use apiauth_oauth2::{IntrospectionCache, IntrospectionResponse, IntrospectionVerifier, TokenKey};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_750_000_000;
const ISS: &str = "https://as.example";

/// Answers every lookup with the response under test: the verifier must judge it exactly as
/// it judges a fresh answer.
#[derive(Default)]
struct Fixed(Mutex<Option<IntrospectionResponse>>);

#[async_trait::async_trait]
impl IntrospectionCache for Fixed {
    async fn get(&self, _key: &TokenKey) -> Result<Option<Arc<IntrospectionResponse>>, StoreError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone().map(Arc::new))
    }
    async fn put(
        &self,
        _: &TokenKey,
        _: &Arc<IntrospectionResponse>,
        _: Duration,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

fn fixture() -> &'static (Arc<Fixed>, IntrospectionVerifier) {
    static F: OnceLock<(Arc<Fixed>, IntrospectionVerifier)> = OnceLock::new();
    F.get_or_init(|| {
        let cache = Arc::new(Fixed::default());
        let v = IntrospectionVerifier::builder("https://as.example/introspect")
            .client_credentials("rs", "rs-secret")
            .audience("api")
            .issuer(ISS)
            .cache(cache.clone())
            .clock(Arc::new(ManualClock::new(epoch_now())))
            .build()
            .expect("verifier builds");
        (cache, v)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = serde_json::from_slice::<IntrospectionResponse>(data) else {
        return;
    };
    // Round trip: what a networked cache stores reads back as the same answer.
    let text = serde_json::to_vec(&r).expect("serialises");
    let back: IntrospectionResponse = serde_json::from_slice(&text).expect("reads back");
    assert_eq!(back, r);

    let (cache, v) = fixture();
    *cache.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
    let scopes = ScopeSet::parse(r.scope.as_deref().unwrap_or(""));
    let req = http::Request::get("/").body(()).unwrap();
    match block_on(v.verify("any-token", &apiauth_core::RequestContext::new(&req))) {
        Ok(p) => {
            assert!(r.active, "inactive token accepted");
            assert!(r.exp.is_none_or(|e| e > NOW), "expired token accepted");
            assert!(r.nbf.is_none_or(|n| n <= NOW), "not-yet-valid token accepted");
            assert!(r.aud.as_ref().is_some_and(|a| a.contains("api")), "wrong audience accepted");
            assert_eq!(r.iss.as_deref(), Some(ISS), "wrong issuer accepted");
            assert_eq!(Some(p.subject()), r.sub.as_deref().or(r.client_id.as_deref()));
            assert_eq!(p.scopes(), &scopes.expect("accepted scopes parse"));
        }
        Err(e) => match e.status().as_u16() {
            401 => {}
            // Only an answer that cannot be understood is an outage.
            503 => assert!(scopes.is_err(), "503 for a well-formed answer"),
            s => panic!("introspection answered {s}"),
        },
    }
});
