//! `CertificateBound`: the RFC 8705 §3 proof-of-possession check around a token verifier.

use apiauth_bearer::TokenVerifier;
use apiauth_core::confirmation::CertificateBinding;
use apiauth_core::token::ct_eq;
use apiauth_core::{AuthError, AuthMethod, Principal, RequestContext};

use crate::ClientCertificate;

/// Audit reason: the token is bound to a certificate and the request carries none.
pub const CLIENT_CERTIFICATE_MISSING: &str = "client_certificate_missing";
/// Audit reason: the request's certificate is not the one the token is bound to.
pub const CERTIFICATE_MISMATCH: &str = "certificate_binding_mismatch";
/// Audit reason: the route requires a certificate-bound token and this one is not.
pub const TOKEN_NOT_CERTIFICATE_BOUND: &str = "token_not_certificate_bound";

/// A [`TokenVerifier`] that accepts a certificate-bound token (`cnf.x5t#S256`, RFC 8705 §3)
/// only over a request whose [`ClientCertificate`] has that thumbprint.
///
/// The inner verifier (`apiauth_jwt::JwtVerifier`, `apiauth_oauth2::IntrospectionVerifier`,
/// or any verifier that attaches a
/// [`CertificateBinding`](apiauth_core::confirmation::CertificateBinding)) verifies the token
/// as usual; it is told that this wrapper checks the binding
/// ([`RequestContext::checking_certificate_binding`]), without which it refuses bound tokens.
/// Then:
///
/// - a bound token with the matching certificate passes, unchanged (compared in constant
///   time);
/// - a bound token with another certificate, or with none, is refused: 401 `invalid_token`
///   under the carrying layer's challenge (`Bearer` for `apiauth_bearer::Bearer`);
/// - an unbound token passes, unless [`require_binding`](Self::require_binding) is set.
///
/// ```
/// use apiauth_bearer::{Bearer, TokenVerifier};
/// use apiauth_core::confirmation::{CertificateBinding, refuse_unchecked_certificate_binding};
/// use apiauth_core::{AuthError, AuthMethod, Principal, RequestContext};
/// use apiauth_mtls::{CertificateBound, ClientCertificate};
/// use axum::{body::Body, routing::get, Router};
/// use http::Request;
/// use tower::ServiceExt;
///
/// /// A toy verifier: the token names the certificate thumbprint it is bound to.
/// struct Toy;
/// impl TokenVerifier for Toy {
///     fn method(&self) -> AuthMethod { AuthMethod::BEARER }
///     async fn verify(&self, token: &str, cx: &RequestContext<'_>) -> Result<Principal, AuthError> {
///         let x5t = token.strip_prefix("bound.").ok_or(AuthError::invalid_credentials("x"))?;
///         let p = Principal::builder("svc", AuthMethod::BEARER)
///             .attribute(CertificateBinding::new(x5t))
///             .build();
///         refuse_unchecked_certificate_binding(&p, cx)?;
///         Ok(p)
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(Bearer::new(CertificateBound::new(Toy)).layer());
/// let cert = ClientCertificate::from_der(vec![0x30, 0x00]);
/// let token = format!("bound.{}", cert.x5t_s256());
///
/// let mut req = Request::get("/").header("authorization", format!("Bearer {token}"));
/// req.extensions_mut().unwrap().insert(cert);
/// assert_eq!(app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap().status(), 200);
///
/// // The same token without the certificate: a stolen token alone is useless.
/// let req = Request::get("/").header("authorization", format!("Bearer {token}"));
/// let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), 401);
/// assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
/// # });
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct CertificateBound<V> {
    inner: V,
    require_binding: bool,
}

impl<V> CertificateBound<V> {
    /// Checks the certificate binding of the tokens `inner` accepts.
    pub fn new(inner: V) -> Self {
        Self {
            inner,
            require_binding: false,
        }
    }

    /// Refuses tokens that are not certificate-bound (for routes that take only
    /// sender-constrained tokens). Default: unbound tokens pass.
    pub fn require_binding(mut self) -> Self {
        self.require_binding = true;
        self
    }

    /// The wrapped verifier.
    pub fn inner(&self) -> &V {
        &self.inner
    }
}

impl<V: TokenVerifier> TokenVerifier for CertificateBound<V> {
    fn method(&self) -> AuthMethod {
        self.inner.method()
    }

    async fn verify(&self, token: &str, cx: &RequestContext<'_>) -> Result<Principal, AuthError> {
        let principal = self
            .inner
            .verify(token, &cx.checking_certificate_binding())
            .await?;
        check_binding(&principal, cx, self.require_binding)?;
        Ok(principal)
    }
}

/// RFC 8705 §3: the token's `x5t#S256` is the thumbprint of the request's certificate.
fn check_binding(
    principal: &Principal,
    cx: &RequestContext<'_>,
    require_binding: bool,
) -> Result<(), AuthError> {
    let refuse = |reason: &'static str| {
        let e = AuthError::invalid_credentials(reason).with_subject(principal.subject());
        match principal.credential_id() {
            Some(id) => e.with_credential_id(id),
            None => e,
        }
    };
    let Some(binding) = principal.attribute::<CertificateBinding>() else {
        return if require_binding {
            Err(refuse(TOKEN_NOT_CERTIFICATE_BOUND))
        } else {
            Ok(())
        };
    };
    let Some(cert) = cx.extensions().get::<ClientCertificate>() else {
        return Err(refuse(CLIENT_CERTIFICATE_MISSING));
    };
    if !ct_eq(cert.x5t_s256().as_bytes(), binding.x5t_s256().as_bytes()) {
        return Err(refuse(CERTIFICATE_MISMATCH));
    }
    Ok(())
}
