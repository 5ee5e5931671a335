//! A DPoP client (RFC 9449) for the example API: makes a key, gets a token bound to it from the
//! token endpoint, and reads a company with it, signing a fresh proof per request with
//! `apiauth::dpop::DpopKey`. It then shows what a thief holding the token gets: a replayed
//! proof and the token as `Bearer` are both 401.
//!
//! ```sh
//! cargo run --example saas                       # in one shell
//! C=target/saas-demo-credentials.json
//! cargo run --example dpop-client -- http://localhost:8080 \
//!     "$(jq -r .oauth_client.client_id $C)" "$(jq -r .oauth_client.client_secret $C)"
//! ```
//!
//! The base URL is the one the API is published at (`--public-url`): proofs name it in `htu`.
//! A server started with `--dpop-nonce` answers the first proof `use_dpop_nonce` with a
//! `DPoP-Nonce`; the client retries once with it (RFC 9449 §8–9).

use std::process::ExitCode;

use apiauth::dpop::DpopKey;
use base64::Engine;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;

const COMPANY: &str = "/v1/companies/acme.com";

/// Sends the request `make(nonce)` builds; once more with the server's nonce if it asks for
/// one (`use_dpop_nonce`, RFC 9449 §8.2 and §9).
async fn send_with_nonce(
    mut make: impl FnMut(Option<&str>) -> anyhow::Result<RequestBuilder>,
) -> anyhow::Result<Response> {
    let res = make(None)?.send().await?;
    let asks_nonce =
        matches!(res.status().as_u16(), 400 | 401) && res.headers().contains_key("dpop-nonce");
    if !asks_nonce {
        return Ok(res);
    }
    let nonce = res.headers()["dpop-nonce"].to_str()?.to_owned();
    println!("server asked for a nonce (use_dpop_nonce); retrying with it");
    Ok(make(Some(&nonce))?.send().await?)
}

fn error_of(res: &Response) -> String {
    res.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("error="))
        .unwrap_or("")
        .to_owned()
}

async fn run(base: &str, client_id: &str, secret: &str) -> anyhow::Result<bool> {
    let http = Client::new();
    let key = DpopKey::generate_es256()?;
    println!("DPoP key thumbprint (jkt): {}", key.thumbprint());

    // RFC 9449 §5: a token request with a proof for POST on the token endpoint.
    let token_url = format!("{base}/oauth/token");
    let res = send_with_nonce(|nonce| {
        let mut proof = key.proof("POST", &token_url);
        if let Some(n) = nonce {
            proof = proof.nonce(n);
        }
        Ok(http
            .post(&token_url)
            .basic_auth(client_id, Some(secret))
            .header("dpop", proof.sign()?)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "companies:read"),
            ]))
    })
    .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() {
        anyhow::bail!("token request: {status} {body}");
    }
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    println!(
        "token: token_type={} cnf.jkt={}",
        body["token_type"], claims["cnf"]["jkt"]
    );

    // RFC 9449 §7: the token under the DPoP scheme, a fresh proof with `ath`.
    let url = format!("{base}{COMPANY}");
    let mut last_proof = String::new();
    let res = send_with_nonce(|nonce| {
        let mut proof = key.proof("GET", &url).access_token(&token);
        if let Some(n) = nonce {
            proof = proof.nonce(n);
        }
        let proof = proof.sign()?;
        last_proof.clone_from(&proof);
        Ok(http
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof))
    })
    .await?;
    let ok = res.status().is_success();
    println!(
        "GET {COMPANY} with DPoP: {} {}",
        res.status(),
        res.text().await?
    );

    // What a thief gets: the proof replayed, and the token as a bearer token.
    let res = http
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &last_proof)
        .send()
        .await?;
    println!("same proof again: {} {}", res.status(), error_of(&res));
    let res = http.get(&url).bearer_auth(&token).send().await?;
    println!("token as Bearer: {} {}", res.status(), error_of(&res));
    Ok(ok)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, client_id, secret] = args.as_slice() else {
        eprintln!("usage: dpop-client BASE_URL CLIENT_ID CLIENT_SECRET");
        return ExitCode::from(2);
    };
    match run(base.trim_end_matches('/'), client_id, secret).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dpop-client: {e}");
            ExitCode::FAILURE
        }
    }
}
