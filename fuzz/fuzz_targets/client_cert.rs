//! RFC 9440 `Client-Cert` from a trusted proxy (apiauth-mtls's `ClientCertHeaderLayer`) on
//! arbitrary header bytes, from a trusted and from an untrusted peer. Properties: no panic;
//! from a trusted peer the answer is 200 or 400 `invalid_request`, and a 200 carries the
//! thumbprint (RFC 8705 §3.1) of exactly the bytes the value's byte sequence holds; from an
//! untrusted peer the header never reaches the handler.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use apiauth_fuzz::{block_on, seen};
use apiauth_mtls::{ClientCertHeaderLayer, ClientCertificate};
use arbitrary::Arbitrary;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    value: &'a [u8],
    trusted: bool,
}

fn router() -> &'static Router {
    static R: OnceLock<Router> = OnceLock::new();
    R.get_or_init(|| {
        Router::new()
            .route(
                "/r",
                get(|req: axum::extract::Request| async move {
                    match req.extensions().get::<ClientCertificate>() {
                        Some(c) => c.x5t_s256().to_owned(),
                        None => "none".to_owned(),
                    }
                }),
            )
            .layer(ClientCertHeaderLayer::from_cidrs(["10.0.0.1"]).expect("a valid range"))
    })
}

/// The bytes of `:base64:` (surrounding spaces and `=` padding optional), else `None`.
fn oracle(value: &[u8]) -> Option<Vec<u8>> {
    let inner = value.trim_ascii().strip_prefix(b":")?.strip_suffix(b":")?;
    let unpadded: Vec<u8> = inner.to_vec();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(unpadded).ok()
}

fuzz_target!(|input: Input<'_>| {
    let Ok(value) = http::HeaderValue::from_bytes(input.value) else {
        return;
    };
    let peer: SocketAddr = if input.trusted {
        ([10, 0, 0, 1], 4000).into()
    } else {
        ([192, 0, 2, 7], 4000).into()
    };
    let mut req = http::Request::get("/r")
        .header("client-cert", value)
        .body(Body::empty())
        .expect("a valid request");
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = block_on(router().clone().oneshot(req)).expect("infallible router");
    let s = block_on(seen(res));
    if !input.trusted {
        assert_eq!(s.status, 200);
        assert_eq!(s.body, "none", "a client's Client-Cert reached the handler");
        return;
    }
    match s.status {
        200 => {
            let der = oracle(input.value).expect("accepted only a byte sequence");
            assert_eq!(der.first(), Some(&0x30), "accepted a non-SEQUENCE");
            let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
            assert_eq!(s.body, x5t);
        }
        400 => assert!(s.body.contains("invalid_request"), "{}", s.body),
        other => panic!("unexpected status {other}"),
    }
});
