//! Claims for handlers: the whole claim set as a principal attribute, and a typed extractor.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use apiauth_core::{AuthError, Principal};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Every claim of a verified JWT, attached to the [`Principal`] as an attribute.
///
/// ```
/// # fn f(p: &apiauth_core::Principal) {
/// use apiauth_jwt::JwtClaims;
/// if let Some(claims) = p.attribute::<JwtClaims>() {
///     let email = claims.get("email").and_then(|v| v.as_str());
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct JwtClaims(Arc<Lazy>);

/// The verified payload, read into JSON values on first use: the verifier itself reads only
/// the claims it checks, so a handler that never looks at the others does not pay for them.
struct Lazy {
    /// The decoded payload, already checked to be one JSON object with no repeated names.
    payload: Vec<u8>,
    value: OnceLock<Value>,
}

impl JwtClaims {
    pub(crate) fn from_payload(payload: Vec<u8>) -> Self {
        Self(Arc::new(Lazy {
            payload,
            value: OnceLock::new(),
        }))
    }

    /// One claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_value().get(name)
    }

    /// The claim set as a JSON object.
    pub fn as_value(&self) -> &Value {
        self.0.value.get_or_init(|| {
            // The verifier accepted these bytes with the same parser, and duplicate names
            // were refused then, so this cannot fail; an empty object if it ever did.
            match serde_json::from_slice::<Value>(&self.0.payload) {
                Ok(v @ Value::Object(_)) => v,
                _ => Value::Object(Map::new()),
            }
        })
    }

    /// Deserialises the claim set into `T`.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self.as_value())
    }
}

impl fmt::Debug for JwtClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JwtClaims").field(self.as_value()).finish()
    }
}

/// The roles granted by the token, from the claim named by
/// [`JwtVerifierBuilder::roles_claim`](crate::JwtVerifierBuilder::roles_claim).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles(pub(crate) Arc<[String]>);

impl Roles {
    /// Whether `role` is granted.
    pub fn contains(&self, role: &str) -> bool {
        self.0.iter().any(|r| r == role)
    }

    /// The roles, in token order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Extracts the verified token's claims as the user's type `T`.
///
/// - no authenticated principal: 401 with every offered challenge, like `Auth`;
/// - a principal without JWT claims (another method authenticated the request), or claims
///   that do not fit `T`: **403** `insufficient_scope`. The token itself is valid, so a 401
///   would only send the client to fetch the same token again; what it lacks is a grant for
///   this resource. The serde error is never shown (it could quote claim values).
///
/// ```
/// use apiauth_jwt::Claims;
/// #[derive(serde::Deserialize)]
/// struct MyClaims { sub: String, email: String }
///
/// async fn me(Claims(c): Claims<MyClaims>) -> String { c.email }
/// ```
pub struct Claims<T>(pub T);

impl<T> Deref for Claims<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The rejection of [`Claims`]: an `AuthError` rendered with the router's `ErrorResponder`,
/// if any.
#[derive(Debug)]
pub struct ClaimsRejection(AuthError, Option<apiauth_core::ErrorResponder>);

impl ClaimsRejection {
    /// The error behind the rejection.
    pub fn error(&self) -> &AuthError {
        &self.0
    }
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        let mut ext = http::Extensions::new();
        if let Some(r) = self.1 {
            ext.insert(r);
        }
        self.0.render(&ext)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Claims<T> {
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let responder = parts
            .extensions
            .get::<apiauth_core::ErrorResponder>()
            .cloned();
        let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
            // The same 401 as `Auth`: every challenge the request passed (RFC 7235 §4.1).
            let e = apiauth_core::unauthenticated(&parts.extensions);
            return Err(ClaimsRejection(e, responder));
        };
        let parsed = principal
            .attribute::<JwtClaims>()
            .map(|c| c.deserialize::<T>());
        match parsed {
            Some(Ok(t)) => Ok(Claims(t)),
            _ => {
                let e = AuthError::forbidden(
                    "The token's claims do not meet this resource's requirements.",
                )
                .with_reason("claims_mismatch");
                tracing::warn!(
                    target: apiauth_core::audit::TARGET,
                    outcome = "forbidden",
                    method = principal.method().as_str(),
                    subject = principal.subject(),
                    credential_id = principal.credential_id(),
                    reason = e.reason(),
                );
                Err(ClaimsRejection(e, responder))
            }
        }
    }
}
