//! Writes RFC 9421 signed `GET` requests for the load test (`benches/load.sh`): one line per
//! request, `Signature-Input` and `Signature` separated by a tab, each with its own nonce, so
//! that `wrk` can send them without a replay.
//!
//! ```sh
//! sign-requests CREDENTIALS_JSON PATH COUNT > signed.tsv
//! ```
//! The key id, secret and base URL come from the example's credentials file (`hmac.key_id`,
//! `hmac.secret_base64`, `base_url`).
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;

use apiauth_hmac::{HmacSecret, Signer};
use base64::Engine as _;

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(creds), Some(path), Some(count)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: sign-requests CREDENTIALS_JSON PATH COUNT".into());
    };
    let count: usize = count.parse().map_err(|_| "COUNT must be a number")?;
    let text = std::fs::read_to_string(&creds).map_err(|e| format!("{creds}: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let field = |p: &str| {
        json.pointer(p)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{creds}: no {p}"))
    };
    let base_url = field("/base_url")?;
    let key_id = field("/hmac/key_id")?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(field("/hmac/secret_base64")?)
        .map_err(|_| "hmac.secret_base64 is not base64")?;
    let signer = Signer::builder(&key_id, HmacSecret::new(secret).map_err(|e| e.to_string())?)
        .build()
        .map_err(|e| e.to_string())?;
    let uri = format!("{}{path}", base_url.trim_end_matches('/'));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for _ in 0..count {
        let mut req = http::Request::get(&uri)
            .body(Vec::<u8>::new())
            .map_err(|e| e.to_string())?;
        signer.sign(&mut req).map_err(|e| e.to_string())?;
        let h = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        writeln!(out, "{}\t{}", h("signature-input"), h("signature")).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sign-requests: {e}");
            ExitCode::FAILURE
        }
    }
}
