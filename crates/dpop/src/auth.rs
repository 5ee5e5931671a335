//! The resource-server method: `Authorization: DPoP <token>` plus a `DPoP` proof, on the
//! core layer contract.

use std::borrow::Cow;

use apiauth_bearer::TokenVerifier;
use apiauth_core::header::authorization_token68;
use apiauth_core::{
    AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal, RequestContext,
};
use aws_lc_rs::constant_time;
use axum::body::Body;
use axum::extract::OriginalUri;
use http::{HeaderName, Request};

use crate::error::DpopRefusal;
use crate::verifier::{DpopVerifier, VerifiedProof};

/// The method name on principals authenticated with a DPoP-bound token.
pub const DPOP: AuthMethod = AuthMethod::custom("dpop");

/// The `DPoP` request header (RFC 9449 §4.1). It carries a signed proof: mark it sensitive
/// with `apiauth_core::audit::sensitive_headers_layer_with([apiauth_dpop::DPOP_HEADER])`.
pub const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
pub const DPOP_NONCE_HEADER: HeaderName = HeaderName::from_static("dpop-nonce");

/// Whether a route also takes `Bearer` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DpopMode {
    /// Only DPoP: a `Bearer` token is refused with 401 and the DPoP challenge (§7.2).
    #[default]
    Required,
    /// DPoP or `Bearer`; a `Bearer` token must not be DPoP-bound (§7.1), and is verified by
    /// the same token verifier.
    Allowed,
    /// Only the `DPoP` scheme is this layer's: a `Bearer` header is not its credential and
    /// passes on, for an `apiauth_bearer::Bearer` layer on the same route to verify. Each
    /// layer then offers and answers in its own scheme (a bearer client sees `Bearer`
    /// challenges, RFC 6750 §3). The bearer layer's verifier must refuse DPoP-bound tokens
    /// itself (§7.1): `apiauth_jwt::JwtVerifier` and the introspection verifier do.
    BesideBearer,
}

/// The key binding of a token whose verifier is not `apiauth-jwt`: attach it to the
/// principal as an attribute (`PrincipalBuilder::attribute(DpopBinding(jkt))`) when the
/// token's `cnf.jkt` (RFC 9449 §6) is `jkt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopBinding(pub String);

/// What a DPoP principal carries besides the token principal's facts: the proof key's
/// thumbprint and the principal the token verifier made (with its own attributes).
#[derive(Debug, Clone)]
pub struct DpopConfirmation {
    jkt: String,
    token_principal: Principal,
}

impl DpopConfirmation {
    /// The RFC 7638 thumbprint of the key the request was proven with.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
    /// The principal the token verifier produced, as it was.
    pub fn token_principal(&self) -> &Principal {
        &self.token_principal
    }
}

/// The token's binding as its principal states it.
fn binding(p: &Principal) -> Result<Option<String>, DpopRefusal> {
    if let Some(DpopBinding(jkt)) = p.attribute::<DpopBinding>() {
        return Ok(Some(jkt.clone()));
    }
    #[cfg(feature = "jwt")]
    if let Some(claims) = p.attribute::<apiauth_jwt::JwtClaims>() {
        return match claims.get("cnf") {
            None => Ok(None),
            Some(serde_json::Value::Object(cnf)) => match cnf.get("jkt") {
                None => Ok(None),
                Some(serde_json::Value::String(jkt)) => Ok(Some(jkt.clone())),
                Some(_) => Err(DpopRefusal::MalformedConfirmation),
            },
            Some(_) => Err(DpopRefusal::MalformedConfirmation),
        };
    }
    Ok(None)
}

/// What [`Dpop`]'s `extract` found.
pub enum DpopCredential {
    /// `Authorization: DPoP <token>` with exactly one `DPoP` header.
    Dpop {
        /// The access token.
        token: String,
        /// The proof.
        proof: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The access token.
        token: String,
    },
}

impl std::fmt::Debug for DpopCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DpopCredential::Dpop { .. } => "Dpop([redacted])",
            DpopCredential::Bearer { .. } => "Bearer([redacted])",
        })
    }
}

/// The DPoP resource-server method: a [`TokenVerifier`] for the access token (for example
/// `apiauth_jwt::JwtVerifier`) and a [`DpopVerifier`] for the proof.
#[must_use]
pub struct Dpop<V> {
    verifier: V,
    proofs: DpopVerifier,
    mode: DpopMode,
    realm: Option<Cow<'static, str>>,
    resource_metadata: Option<Cow<'static, str>>,
}

impl<V: TokenVerifier> Dpop<V> {
    /// DPoP-bound tokens verified by `verifier`, proofs by `proofs`; [`DpopMode::Required`].
    pub fn new(verifier: V, proofs: DpopVerifier) -> Self {
        Self {
            verifier,
            proofs,
            mode: DpopMode::Required,
            realm: None,
            resource_metadata: None,
        }
    }

    /// Sets whether `Bearer` tokens are also accepted on the route.
    pub fn mode(mut self, mode: DpopMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds a `realm` to the challenge.
    pub fn realm(mut self, realm: impl Into<Cow<'static, str>>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Names the resource's RFC 9728 metadata document in every challenge
    /// (`resource_metadata="…"`, RFC 9728 §5.1), as `apiauth_bearer::Bearer::resource_metadata`
    /// does; `url` is `ProtectedResourceMetadata::metadata_url`.
    pub fn resource_metadata(mut self, url: impl Into<Cow<'static, str>>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// The proof verifier.
    pub fn proofs(&self) -> &DpopVerifier {
        &self.proofs
    }

    /// Wraps this method in the core [`AuthLayer`].
    pub fn layer(self) -> AuthLayer<Self> {
        AuthLayer::new(self)
    }

    fn refuse(&self, refusal: DpopRefusal) -> AuthError {
        let nonce = match refusal {
            DpopRefusal::NonceMissing | DpopRefusal::NonceInvalid => self.proofs.issue_nonce(),
            _ => None,
        };
        refusal.into_auth_error(nonce)
    }

    fn dpop_principal(&self, inner: Principal, proof: &VerifiedProof) -> Principal {
        let mut b = Principal::builder(inner.subject(), DPOP).scopes(inner.scopes().clone());
        if let Some(i) = inner.issuer() {
            b = b.issuer(i);
        }
        if let Some(t) = inner.tenant() {
            b = b.tenant(t);
        }
        if let Some(c) = inner.credential_id() {
            b = b.credential_id(c);
        }
        if let Some(e) = inner.expires_at() {
            b = b.expires_at(e);
        }
        if let Some(p) = inner.plan() {
            b = b.plan(p);
        }
        // Handlers reading JWT claims (`Claims<T>`, `Roles`) keep working under DPoP.
        #[cfg(feature = "jwt")]
        {
            if let Some(c) = inner.attribute::<apiauth_jwt::JwtClaims>() {
                b = b.attribute(c.clone());
            }
            if let Some(r) = inner.attribute::<apiauth_jwt::Roles>() {
                b = b.attribute(r.clone());
            }
        }
        b.attribute(DpopConfirmation {
            jkt: proof.jkt().to_owned(),
            token_principal: inner,
        })
        .build()
    }
}

/// The path the client addressed: before any `Router::nest` stripped a prefix.
fn request_path(req: &Request<Body>) -> &str {
    req.extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |o| o.0.path())
}

impl<V: TokenVerifier> Authenticator for Dpop<V> {
    type Credential = DpopCredential;

    fn method(&self) -> AuthMethod {
        DPOP
    }

    fn challenge(&self) -> Challenge {
        // RFC 9449 §7.1: `algs` lists the accepted algorithms; errors add RFC 6750 attributes.
        let mut c = Challenge::new("DPoP");
        if let Some(realm) = &self.realm {
            c = c.param("realm", realm.clone());
        }
        let c = c
            .param("algs", self.proofs.algs_param().to_owned())
            .with_error_attributes();
        // RFC 9728 §5.1: the metadata document, on every 401 this scheme answers.
        match &self.resource_metadata {
            Some(url) => c.param("resource_metadata", url.clone()),
            None => c,
        }
    }

    fn scope_challenge(&self) -> Option<Challenge> {
        Some(
            Challenge::new("DPoP")
                .param("algs", self.proofs.algs_param().to_owned())
                .with_error_attributes(),
        )
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<DpopCredential>, AuthError> {
        if let Some(token) = authorization_token68(req, "DPoP")? {
            // §4.3 step 1: exactly one DPoP header.
            let mut proofs = req.headers().get_all(DPOP_HEADER).iter();
            let proof = match (proofs.next(), proofs.next()) {
                (None, _) => return Err(self.refuse(DpopRefusal::ProofMissing)),
                (Some(_), Some(_)) => return Err(self.refuse(DpopRefusal::MultipleProofs)),
                (Some(v), None) => v,
            };
            let proof = proof
                .to_str()
                .map_err(|_| self.refuse(DpopRefusal::Malformed))?;
            return Ok(Some(DpopCredential::Dpop {
                token: token.to_owned(),
                proof: proof.to_owned(),
            }));
        }
        if self.mode == DpopMode::BesideBearer {
            return Ok(None);
        }
        match authorization_token68(req, "Bearer")? {
            Some(token) => Ok(Some(DpopCredential::Bearer {
                token: token.to_owned(),
            })),
            None => Ok(None),
        }
    }

    async fn verify(
        &self,
        credential: DpopCredential,
        req: &mut Request<Body>,
    ) -> Result<Principal, AuthError> {
        match credential {
            DpopCredential::Bearer { token } => {
                if self.mode != DpopMode::Allowed {
                    return Err(self.refuse(DpopRefusal::BearerNotAccepted));
                }
                let principal = self
                    .verifier
                    .verify(&token, &RequestContext::new(req))
                    .await?;
                // §7.1: a bound token is never a bearer token, whatever the route allows.
                match binding(&principal).map_err(|r| self.refuse(r))? {
                    Some(_) => Err(self.refuse(DpopRefusal::BoundTokenAsBearer)),
                    None => Ok(principal),
                }
            }
            DpopCredential::Dpop { token, proof } => {
                let checked = self
                    .proofs
                    .check(&proof, req.method(), request_path(req), Some(&token))
                    .map_err(|r| self.refuse(r))?;
                let principal = self
                    .verifier
                    .verify(&token, &RequestContext::new(req))
                    .await?;
                // §4.3 step 12: the token is bound to the key that signed the proof.
                let jkt = binding(&principal)
                    .map_err(|r| self.refuse(r))?
                    .ok_or_else(|| self.refuse(DpopRefusal::TokenNotBound))?;
                if constant_time::verify_slices_are_equal(jkt.as_bytes(), checked.jkt().as_bytes())
                    .is_err()
                {
                    return Err(self.refuse(DpopRefusal::KeyBindingMismatch));
                }
                self.proofs
                    .check_nonce(&checked)
                    .map_err(|r| self.refuse(r))?;
                // Last: a request refused for any other reason leaves no replay entry.
                self.proofs
                    .spend(&checked)
                    .await
                    .map_err(|r| self.refuse(r))?;
                Ok(self.dpop_principal(principal, &checked))
            }
        }
    }
}
