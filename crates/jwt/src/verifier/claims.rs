//! The registered claims the verifier reads, and their checks (RFC 7519 §4.1, RFC 9068 §2.2).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_core::clock::unix_seconds;
use apiauth_core::{
    AuthError, AuthMethod, AuthenticationContext, Principal, PrincipalBuilder, ScopeSet,
};

use super::{IssuerState, JwtVerifier, invalid};
use crate::claims::Roles;
use crate::json::{Member, Members, known_members};

known_members! {
    /// Registered and scope claims the verifier reads; other claims are read only when
    /// configured (tenant, plan, roles), and every claim is checked (valid JSON, no repeated
    /// names) and left in the payload for [`JwtClaims`](crate::JwtClaims).
    pub(super) struct RegisteredClaims {
        iss: "iss",
        sub: "sub",
        aud: "aud",
        exp: "exp",
        nbf: "nbf",
        iat: "iat",
        jti: "jti",
        scope: "scope",
        scp: "scp",
        // RFC 9470 §6.1: read for step-up routes.
        acr: "acr",
        auth_time: "auth_time",
        // RFC 7800 §3.1: read to tell DPoP-bound tokens (RFC 9449 §6.1) apart.
        cnf: "cnf",
    }
}

/// The claims of one token: the registered ones as fields, configured ones by name.
pub(super) type Claims<'p> = Members<'p, RegisteredClaims<'p>>;

/// A NumericDate claim (RFC 7519 §2): a JSON number of seconds; fractions are truncated.
/// Present with another type is an error, never "absent".
fn numeric_date(
    claim: Option<&Member<'_>>,
    malformed: &'static str,
) -> Result<Option<i64>, AuthError> {
    match claim {
        None => Ok(None),
        Some(Member::Num(n)) => Ok(Some(*n)),
        Some(_) => Err(invalid(malformed)),
    }
}

fn optional_string<'a>(
    claim: Option<&'a Member<'_>>,
    malformed: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    match claim {
        None => Ok(None),
        Some(Member::Str(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(malformed)),
    }
}

fn string_array<'a, 'de>(v: &'a Member<'de>) -> Option<&'a [Cow<'de, str>]> {
    match v {
        Member::StrList(l) => Some(l),
        _ => None,
    }
}

fn to_system_time(secs: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)))
}

impl JwtVerifier {
    /// Whether `validate_claims` reads the claim `name`, besides the registered ones.
    pub(super) fn wants_claim(&self, name: &str) -> bool {
        let inner = &*self.inner;
        [&inner.tenant_claim, &inner.plan_claim, &inner.roles_claim]
            .into_iter()
            .any(|c| c.as_deref() == Some(name))
    }

    /// Checks the claims of a token whose signature verified, and starts its principal.
    /// Returns the principal builder, the `jti` kept for the revocation list, and `exp`.
    pub(super) fn validate_claims(
        &self,
        issuer: &IssuerState,
        c: &Claims<'_>,
        kid: Option<&str>,
        now: SystemTime,
    ) -> Result<(PrincipalBuilder, Option<String>, SystemTime), AuthError> {
        let inner = &*self.inner;
        let now_s = i64::try_from(unix_seconds(now)).unwrap_or(i64::MAX);
        let leeway = inner.leeway;
        // RFC 7519 §4.1.4: required here, and the current time must be before it.
        let exp =
            numeric_date(c.exp.as_ref(), "malformed_exp")?.ok_or_else(|| invalid("missing_exp"))?;
        if now_s >= exp.saturating_add(leeway) {
            return Err(invalid("expired"));
        }
        // RFC 7519 §4.1.5: not before.
        if let Some(nbf) = numeric_date(c.nbf.as_ref(), "malformed_nbf")?
            && now_s.saturating_add(leeway) < nbf
        {
            return Err(invalid("not_yet_valid"));
        }
        // RFC 7519 §4.1.6: a token issued in the future is refused.
        if let Some(iat) = numeric_date(c.iat.as_ref(), "malformed_iat")?
            && iat > now_s.saturating_add(leeway)
        {
            return Err(invalid("issued_in_future"));
        }
        // RFC 7519 §4.1.3: `aud` is a string or an array of strings.
        let aud: Option<&[Cow<'_, str>]> = match &c.aud {
            None => None,
            Some(Member::Str(s)) => Some(std::slice::from_ref(s)),
            Some(v) => Some(string_array(v).ok_or_else(|| invalid("malformed_aud"))?),
        };
        if !issuer.any_audience {
            let aud = aud.ok_or_else(|| invalid("missing_aud"))?;
            if !aud.iter().any(|a| issuer.audiences.iter().any(|x| x == a)) {
                return Err(invalid("wrong_aud"));
            }
        }
        let sub = match optional_string(c.sub.as_ref(), "malformed_sub")? {
            Some(s) if !s.is_empty() => s,
            _ => return Err(invalid("missing_sub")),
        };
        let jti = optional_string(c.jti.as_ref(), "malformed_jti")?;
        if jti.is_none() && inner.revocation.is_some() {
            return Err(invalid("missing_jti"));
        }
        // RFC 9068 §2.2.3 / RFC 8693 §4.2: `scope` is a space-delimited string; `scp` is the
        // common array form. A token with both is ambiguous.
        let scopes = match (&c.scope, &c.scp) {
            (None, None) => ScopeSet::empty(),
            (Some(Member::Str(s)), None) => {
                ScopeSet::parse(s).map_err(|_| invalid("malformed_scope"))?
            }
            (None, Some(v)) => {
                let list = string_array(v).ok_or_else(|| invalid("malformed_scope"))?;
                ScopeSet::from_tokens(list).map_err(|_| invalid("malformed_scope"))?
            }
            (Some(_), Some(_)) => return Err(invalid("ambiguous_scope")),
            _ => return Err(invalid("malformed_scope")),
        };
        let exp_time = to_system_time(exp);
        let mut b = Principal::builder(sub, AuthMethod::JWT)
            .issuer(Arc::clone(&issuer.iss))
            .scopes(scopes)
            .expires_at(exp_time);
        if let Some(id) = jti.or(kid) {
            b = b.credential_id(id);
        }
        if let Some(name) = &inner.tenant_claim
            && let Some(t) = optional_string(c.get(name), "malformed_tenant")?
        {
            b = b.tenant(t);
        }
        if let Some(name) = &inner.plan_claim
            && let Some(p) = optional_string(c.get(name), "malformed_plan")?
        {
            b = b.plan(p);
        }
        // RFC 9470 §6.1 (OpenID Connect Core §2): how and when the user authenticated, for
        // routes that require a step-up (`RequireAuthentication`).
        let acr = optional_string(c.acr.as_ref(), "malformed_acr")?;
        let auth_time = numeric_date(c.auth_time.as_ref(), "malformed_auth_time")?;
        if acr.is_some() || auth_time.is_some() {
            b = b.attribute(AuthenticationContext {
                acr: acr.map(Into::into),
                auth_time: auth_time.map(to_system_time),
            });
        }
        if let Some(name) = &inner.roles_claim
            && let Some(v) = c.get(name)
        {
            let roles = string_array(v).ok_or_else(|| invalid("malformed_roles"))?;
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            b = b.attribute(Roles(roles.into()));
        }
        // Kept past the claims only for the revocation list (checked again on cache hits).
        let jti = jti
            .filter(|_| inner.revocation.is_some())
            .map(str::to_owned);
        Ok((b, jti, exp_time))
    }
}

/// Names the subject and credential id of verified claims on a refusal, for the audit event.
pub(super) fn attribute_to_claims(
    e: AuthError,
    claims: &Claims<'_>,
    kid: Option<&str>,
) -> AuthError {
    let e = match &claims.sub {
        Some(Member::Str(s)) => e.with_subject(&**s),
        _ => e,
    };
    match (claims.jti.as_ref().and_then(Member::as_str), kid) {
        (Some(j), _) => e.with_credential_id(j),
        (_, Some(k)) => e.with_credential_id(k),
        _ => e,
    }
}
