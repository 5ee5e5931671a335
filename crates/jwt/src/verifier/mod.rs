//! The verifier: the per-request checks. Configuration and startup are in `builder`, the
//! registered claims and their rules in `claims`.

mod builder;
mod claims;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apiauth_bearer::TokenVerifier;
use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::confirmation::{CertificateBinding, refuse_unchecked_certificate_binding};
use apiauth_core::{AuthError, AuthMethod, Principal, RevocationList};
use serde_json::Value;

use crate::cache::{self, TokenCache};
use crate::claims::JwtClaims;
use crate::error::{FetchError, JwtConfigError};
use crate::json::{Member, Wanted};
use crate::key::JwtKey;
use crate::remote::{FetchSettings, RemoteKeys, check_url, fetch_json};
use crate::token::{self, Parsed, typ_matches};

use builder::IssuerState;
pub use builder::{Issuer, JwtVerifierBuilder};
use claims::{Claims, attribute_to_claims};

/// Default and largest clock-skew leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// Default largest token accepted, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Keys tried for one token without a `kid`; more candidates than this need a `kid`.
const MAX_CANDIDATES: usize = 4;

fn invalid(reason: &'static str) -> AuthError {
    AuthError::invalid_credentials(reason)
}

struct Inner {
    issuers: Vec<IssuerState>,
    leeway: i64,
    max_token_len: usize,
    revocation: Option<Arc<dyn RevocationList>>,
    clock: SharedClock,
    cache: Option<TokenCache>,
    tenant_claim: Option<String>,
    plan_claim: Option<String>,
    roles_claim: Option<String>,
}

/// Verifies JWT bearer tokens (RFC 7519, RFC 9068) for `apiauth_bearer::Bearer`.
///
/// Cheap to clone. Built once at startup with [`JwtVerifier::builder`].
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self.inner.issuers.iter().map(|i| &*i.iss).collect();
        f.debug_struct("JwtVerifier")
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Starts a builder with safe defaults.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::new()
    }

    /// Number of verified tokens currently cached (0 without a cache).
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Verifies `token` and builds its principal.
    pub async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        let inner = &*self.inner;
        // Bounded before anything else touches the token, the cache's hash included.
        if token.len() > inner.max_token_len {
            return Err(invalid("token_too_large"));
        }
        let cache_key = inner.cache.as_ref().map(|_| cache::key(token));
        if let (Some(c), Some(k)) = (&inner.cache, &cache_key)
            && let Some((principal, jti)) = c.get(k, inner.clock.now())
        {
            self.check_revoked(jti.as_deref()).await?;
            return Ok(principal);
        }
        let parsed = token::parse(token, inner.max_token_len)?;
        let claims: Claims<'_> = parsed.claims(Wanted {
            extra: &|name| self.wants_claim(name),
        })?;
        // The unverified `iss` only chooses whose keys to try; everything is verified below.
        let iss = match &claims.iss {
            Some(Member::Str(s)) => &**s,
            Some(_) => return Err(invalid("malformed_iss")),
            None => return Err(invalid("missing_iss")),
        };
        let issuer = inner
            .issuers
            .iter()
            .find(|i| &*i.iss == iss)
            .ok_or_else(|| invalid("unknown_issuer"))?;
        self.verify_signature(issuer, &parsed).await?;
        if let Some(expected) = &issuer.typ {
            match &parsed.typ {
                Some(t) if typ_matches(t, expected) => {}
                _ => return Err(invalid("wrong_typ")),
            }
        }
        // From here the claims are the issuer's own words, so a refusal may name whom it
        // refused in the audit event (never in the response).
        let now = inner.clock.now();
        let (builder, jti, exp) = self
            .validate_claims(issuer, &claims, parsed.kid.as_deref(), now)
            .map_err(|e| attribute_to_claims(e, &claims, parsed.kid.as_deref()))?;
        // The decoded payload moves into the principal, read into JSON values only if a
        // handler asks for the claims.
        let has_cnf = claims.cnf.is_some();
        let jwt_claims = JwtClaims::from_payload(parsed.payload);
        // Only a token that carries `cnf` pays for reading the payload again here.
        let cnf = if has_cnf { jwt_claims.get("cnf") } else { None };
        let bound = cnf.and_then(|c| c.get("jkt")).is_some();
        // RFC 8705 §3.1: `x5t#S256` binds the token to a client certificate.
        let certificate = match cnf.and_then(|c| c.get("x5t#S256")) {
            None => None,
            Some(Value::String(x5t)) => Some(CertificateBinding::new(x5t.as_str())),
            Some(_) => return Err(invalid("malformed_cnf")),
        };
        let mut builder = builder.attribute(jwt_claims);
        if bound {
            builder = builder.attribute(DpopBound);
        }
        if let Some(c) = certificate {
            builder = builder.attribute(c);
        }
        let principal = builder.build();
        self.check_revoked(jti.as_deref()).await.map_err(|e| {
            let e = e.with_subject(principal.subject());
            match principal.credential_id() {
                Some(id) => e.with_credential_id(id),
                None => e,
            }
        })?;
        if let (Some(c), Some(k)) = (&inner.cache, cache_key) {
            c.insert(k, principal.clone(), jti, exp, now);
        }
        Ok(principal)
    }

    async fn check_revoked(&self, jti: Option<&str>) -> Result<(), AuthError> {
        let (Some(list), Some(jti)) = (&self.inner.revocation, jti) else {
            return Ok(());
        };
        // A store failure is an outage (503), not a pass and not a 401.
        if list.is_revoked(jti).await? {
            return Err(invalid("revoked"));
        }
        Ok(())
    }

    /// `Some(valid)` if `keys` hold a candidate for this token, `None` if none fits.
    fn try_keys(keys: &[JwtKey], parsed: &Parsed<'_>) -> Result<Option<bool>, AuthError> {
        let candidates = || {
            keys.iter()
                .filter(|k| k.allows(parsed.alg))
                .filter(|k| match (&parsed.kid, &k.kid) {
                    // `kid` only selects among configured keys: an exact, case-sensitive
                    // lookup, never a path, URL or query.
                    (Some(want), Some(have)) => **want == **have,
                    (Some(_), None) => false,
                    (None, _) => true,
                })
        };
        match candidates().take(MAX_CANDIDATES + 1).count() {
            0 => return Ok(None),
            n if n > MAX_CANDIDATES => return Err(invalid("kid_required")),
            _ => {}
        }
        Ok(Some(candidates().any(|k| {
            // RFC 7515 §5.2 step 8: the signature over the exact received signing input.
            k.verify(
                parsed.alg,
                parsed.signing_input.as_bytes(),
                parsed.signature,
            )
        })))
    }

    async fn verify_signature(
        &self,
        issuer: &IssuerState,
        parsed: &Parsed<'_>,
    ) -> Result<(), AuthError> {
        let verdict = match Self::try_keys(&issuer.keys, parsed)? {
            Some(v) => Some(v),
            None => match &issuer.remote {
                None => None,
                Some(remote) => {
                    let keys = remote.keys().await?;
                    match Self::try_keys(&keys, parsed)? {
                        Some(v) => Some(v),
                        None if parsed.kid.is_some() => {
                            // Maybe the issuer rotated: refetch (rate-limited, one in flight).
                            let keys = remote.refresh_for_unknown_kid().await?;
                            Self::try_keys(&keys, parsed)?
                        }
                        None => None,
                    }
                }
            },
        };
        match verdict {
            Some(true) => Ok(()),
            Some(false) => Err(invalid("bad_signature")),
            None => Err(invalid("unknown_key")),
        }
    }
}

impl TokenVerifier for JwtVerifier {
    fn method(&self) -> AuthMethod {
        AuthMethod::JWT
    }

    async fn verify(
        &self,
        token: &str,
        req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        let principal = self.verify_token(token).await?;
        // RFC 9449 §7.1: a DPoP-bound token (`cnf.jkt`) presented as a bearer token is
        // refused on every route; the DPoP method presents it under its own scheme.
        if principal.attribute::<DpopBound>().is_some() && !presented_as_dpop(req) {
            return Err(invalid("dpop_bound_token_as_bearer")
                .with_subject(principal.subject())
                .with_credential_id(principal.credential_id().unwrap_or("")));
        }
        // RFC 8705 §3: a certificate-bound token (`cnf.x5t#S256`) only where a wrapper
        // compares it with the client certificate (`apiauth-mtls`'s `CertificateBound`).
        refuse_unchecked_certificate_binding(&principal, req)?;
        Ok(principal)
    }
}

/// Marks a principal whose token is bound to a DPoP key (`cnf.jkt`).
#[derive(Clone, Copy, Debug)]
struct DpopBound;

/// The token came in `Authorization: DPoP …`.
fn presented_as_dpop(req: &apiauth_core::RequestContext<'_>) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("DPoP"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn rfc7515_appendix_a_signatures_verify_and_a_changed_payload_does_not() {
        let v: Value =
            serde_json::from_str(include_str!("../../tests/data/rfc7515_appendix_a_jws.json"))
                .unwrap();
        for (section, prefix) in [("A.1", "a.1.1"), ("A.2", "a.2.1"), ("A.3", "a.3.1")] {
            let jwk = v[section][format!("{prefix}.jwk+json")].as_str().unwrap();
            let key = JwtKey::jwk(jwk).unwrap();
            let token = v[section][format!("{prefix}.compact")].as_str().unwrap();
            let parsed = token::parse(token, DEFAULT_MAX_TOKEN_LEN).unwrap();
            let keys = [key];
            assert_eq!(
                JwtVerifier::try_keys(&keys, &parsed).unwrap(),
                Some(true),
                "{section}"
            );
            let (h, rest) = token.split_once('.').unwrap();
            let sig = rest.rsplit('.').next().unwrap();
            let payload = v[section][format!("{prefix}.payload")].as_str().unwrap();
            let changed = URL_SAFE_NO_PAD.encode(payload.replace("joe", "eve"));
            let tampered = format!("{h}.{changed}.{sig}");
            let parsed = token::parse(&tampered, DEFAULT_MAX_TOKEN_LEN).unwrap();
            assert_eq!(
                JwtVerifier::try_keys(&keys, &parsed).unwrap(),
                Some(false),
                "{section}"
            );
        }
    }
}
