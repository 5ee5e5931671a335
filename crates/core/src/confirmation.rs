//! Token confirmation (RFC 7800 `cnf`): what a token verifier read, and who checks it.
//!
//! A certificate-bound access token (RFC 8705 §3) carries `cnf.x5t#S256`, the SHA-256
//! thumbprint of the client certificate it was issued to. A token verifier (JWT,
//! introspection) attaches that thumbprint to its principal as a [`CertificateBinding`]; a
//! wrapper that compares it with the connection's client certificate (`apiauth-mtls`'s
//! `CertificateBound`) tells the verifier so with
//! [`RequestContext::checking_certificate_binding`]. A verifier called without that promise
//! refuses a bound token ([`refuse_unchecked_certificate_binding`]): a layer that does not
//! know about certificates must not accept a token that is only valid with one.

use std::fmt;
use std::sync::Arc;

use crate::{AuthError, Principal, RequestContext};

/// The certificate a token is bound to: the base64url (no padding) SHA-256 of its DER,
/// as the token's `cnf.x5t#S256` states it (RFC 8705 §3.1). A principal attribute.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateBinding(Arc<str>);

impl CertificateBinding {
    /// The binding to the certificate whose `x5t#S256` thumbprint is `x5t_s256`.
    pub fn new(x5t_s256: impl Into<Arc<str>>) -> Self {
        Self(x5t_s256.into())
    }

    /// The `x5t#S256` thumbprint, as the token states it.
    pub fn x5t_s256(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CertificateBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A thumbprint is public, but it is not worth a log line's width.
        let short: String = self.0.chars().take(8).collect();
        write!(f, "CertificateBinding({short}…)")
    }
}

/// The audit reason of a certificate-bound token verified where no one checks the binding.
pub const UNCHECKED_CERTIFICATE_BINDING: &str = "certificate_bound_token_unchecked";

/// Refuses `principal` (401, reason [`UNCHECKED_CERTIFICATE_BINDING`]) when its token is
/// bound to a certificate ([`CertificateBinding`]) and the caller of the verifier did not
/// promise to check that binding ([`RequestContext::checking_certificate_binding`]).
///
/// Token verifiers call it last, on every answer, cached ones included (RFC 8705 §3: a
/// certificate-bound token is accepted only with proof of possession of that certificate).
pub fn refuse_unchecked_certificate_binding(
    principal: &Principal,
    cx: &RequestContext<'_>,
) -> Result<(), AuthError> {
    if principal.attribute::<CertificateBinding>().is_some() && !cx.checks_certificate_binding() {
        let e = AuthError::invalid_credentials(UNCHECKED_CERTIFICATE_BINDING)
            .with_subject(principal.subject());
        return Err(match principal.credential_id() {
            Some(id) => e.with_credential_id(id),
            None => e,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthMethod;

    #[test]
    fn a_bound_principal_is_refused_unless_the_caller_checks_the_binding() {
        let req = http::Request::get("/").body(()).unwrap();
        let cx = RequestContext::new(&req);
        let bound = Principal::builder("c", AuthMethod::JWT)
            .attribute(CertificateBinding::new("abc"))
            .build();
        let unbound = Principal::builder("c", AuthMethod::JWT).build();
        assert!(refuse_unchecked_certificate_binding(&bound, &cx).is_err());
        assert!(refuse_unchecked_certificate_binding(&unbound, &cx).is_ok());
        let checked = cx.checking_certificate_binding();
        assert!(refuse_unchecked_certificate_binding(&bound, &checked).is_ok());
        assert!(!format!("{:?}", CertificateBinding::new("abcdefghijklmnop")).contains("ijkl"));
    }
}
