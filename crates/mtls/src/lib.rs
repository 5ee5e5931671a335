//! # apiauth-mtls
//!
//! Certificate-bound access tokens with mutual TLS (RFC 8705): a token whose `cnf` claim
//! names a client certificate (`x5t#S256`, its SHA-256 thumbprint, §3.1) is accepted only
//! over a connection where the client proved possession of that certificate's key in the
//! TLS handshake. A stolen token alone is useless.
//!
//! - [`ClientCertificate`]: the peer's end-entity certificate, in the request extensions.
//!   The server inserts it per connection: [`ClientCertificate::layer`] around the service of
//!   each connection, with [`ClientCertificate::from_tls_stream`] (feature `rustls`) after a
//!   tokio-rustls handshake.
//! - [`ClientCertHeaderLayer`]: behind a TLS-terminating proxy, the certificate comes from
//!   the RFC 9440 `Client-Cert` header, believed only from configured proxy addresses and
//!   removed from everyone else's requests.
//! - [`CertificateBound`]: wraps any token verifier (JWT, introspection, …) and checks the
//!   token's binding against the request's certificate; 401 `invalid_token` otherwise.
//!
//! Without the wrapper, the suite's verifiers refuse certificate-bound tokens
//! (`apiauth_core::confirmation`): a layer that does not check the certificate cannot be
//! talked into accepting a token that is valid only with one.
//!
//! With the feature `x509`, [`x509`] reads a certificate's subject DN and subjectAltNames for
//! `tls_client_auth` (RFC 8705 §2.1) at an authorization server.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bound;
mod certificate;
mod header;
#[cfg(feature = "x509")]
#[cfg_attr(docsrs, doc(cfg(feature = "x509")))]
pub mod x509;

pub use bound::{
    CERTIFICATE_MISMATCH, CLIENT_CERTIFICATE_MISSING, CertificateBound, TOKEN_NOT_CERTIFICATE_BOUND,
};
pub use certificate::{ClientCertificate, ClientCertificateLayer, ClientCertificateService};
pub use header::{
    CLIENT_CERT, CLIENT_CERT_CHAIN, ClientCertHeaderLayer, ClientCertHeaderService,
    DEFAULT_MAX_HEADER_LEN,
};
