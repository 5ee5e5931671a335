//! The RFC 7662 §2.2 introspection response, shared by both halves of the crate.

use std::sync::Arc;

use apiauth_core::Principal;
use serde::{Deserialize, Serialize};

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is among the audiences.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// An introspection answer (RFC 7662 §2.2). Every member but `active` is optional.
///
/// This is also what an [`IntrospectionCache`](crate::IntrospectionCache) stores, so a
/// networked cache can serialize it as JSON. It never holds the token itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active.
    pub active: bool,
    /// Space-separated scopes (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The tenant of the client the token was issued to: an extension member (RFC 7662
    /// §2.2) that this suite's authorization server writes for clients registered with one;
    /// `IntrospectionVerifier` copies it to `Principal::tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// A human-readable resource owner name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The token type (`Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not-before time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The intended audience(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The token identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The key the token is bound to (RFC 7800 §3.1): RFC 9449 §6.2 `jkt` for DPoP, RFC
    /// 8705 §3.2 `x5t#S256` for a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` of an introspection answer or a token (RFC 7800 §3.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the RFC 7638 SHA-256 thumbprint of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// RFC 8705 §3.1: the SHA-256 thumbprint of the client certificate.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl IntrospectionResponse {
    /// `{"active": false}`: all RFC 7662 §2.2 lets an inactive answer say.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// The answer `principal` was built from, when an
    /// [`IntrospectionVerifier`](crate::IntrospectionVerifier) authenticated it. The verifier
    /// attaches the answer as an `Arc<IntrospectionResponse>` attribute, shared with its cache.
    pub fn of(principal: &Principal) -> Option<&IntrospectionResponse> {
        principal
            .attribute::<Arc<IntrospectionResponse>>()
            .map(|a| &**a)
    }
}
