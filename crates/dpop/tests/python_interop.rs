//! Proofs made by an independent implementation (Python, pyca/cryptography only:
//! `tests/interop/make_proof.py`) verify here, with the thumbprint and `ath` it computed.
//!
//! Needs `python3` with `cryptography` (or `DPOP_INTEROP_PYTHON` naming such an interpreter,
//! for example the venv of `tests/interop/run.sh`), so it is ignored by default:
//! `cargo test -p apiauth-dpop --test python_interop -- --ignored`.

use std::process::Command;

use apiauth_dpop::{DpopVerifier, access_token_hash};
use http::Method;
use serde_json::Value;

#[test]
#[ignore = "needs python3 with the cryptography package"]
fn a_proof_made_with_pyca_cryptography_verifies_with_its_thumbprint() {
    let python = std::env::var("DPOP_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/make_proof.py");
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let token = "an.access.token";
    let out = Command::new(&python)
        .args([script, "POST", "https://api.example/v1/items", token, &iat])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = DpopVerifier::builder("https://api.example")
        .build()
        .unwrap();
    let proof = v
        .check(
            made["proof"].as_str().unwrap(),
            &Method::POST,
            "/v1/items",
            Some(token),
        )
        .expect("the independent proof verifies");
    assert_eq!(proof.jkt(), made["jkt"].as_str().unwrap());
    assert_eq!(access_token_hash(token), made["ath"].as_str().unwrap());
    // And it is bound to its request like ours.
    assert!(
        v.check(
            made["proof"].as_str().unwrap(),
            &Method::GET,
            "/v1/items",
            Some(token)
        )
        .is_err()
    );
}
