//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client which
//! authorization servers issue tokens for this API, which scopes it knows and how tokens are
//! presented, served at `/.well-known/oauth-protected-resource`.

use std::fmt;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use serde_json::{Map, Value, json};

/// The well-known URI suffix registered by RFC 9728 §3.
pub const WELL_KNOWN_SUFFIX: &str = "oauth-protected-resource";

/// A resource identifier that RFC 9728 does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadataError(&'static str);

impl fmt::Display for ResourceMetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protected resource identifier: {}", self.0)
    }
}

impl std::error::Error for ResourceMetadataError {}

/// The RFC 9728 §2 metadata of one protected resource.
///
/// ```
/// use apiauth_bearer::ProtectedResourceMetadata;
///
/// let meta = ProtectedResourceMetadata::new("https://api.example.com/v1")?
///     .authorization_server("https://auth.example.com")
///     .scopes_supported(["contacts:read", "enrich:write"]);
/// // RFC 9728 §3.1: the well-known segment goes between the host and the path.
/// assert_eq!(
///     meta.metadata_url(),
///     "https://api.example.com/.well-known/oauth-protected-resource/v1"
/// );
/// assert_eq!(meta.to_json()["bearer_methods_supported"], serde_json::json!(["header"]));
/// let app: axum::Router = meta.router();
/// # Ok::<(), apiauth_bearer::ResourceMetadataError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ProtectedResourceMetadata {
    resource: String,
    origin: String,
    path: String,
    doc: Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// Metadata for the resource identified by `resource`: an absolute `https` URL (`http`
    /// only on loopback, for tests) with no query and no fragment (RFC 9728 §1.2). Tokens are
    /// presented in the header only (`bearer_methods_supported: ["header"]`), as [`Bearer`]
    /// accepts them by default.
    ///
    /// [`Bearer`]: crate::Bearer
    pub fn new(resource: impl Into<String>) -> Result<Self, ResourceMetadataError> {
        Self::parse(resource.into(), false)
    }

    /// Like [`new`](Self::new), also taking a plain `http` identifier off loopback, for a
    /// deployment whose TLS ends in front of it and that is named by its `http` URL. Clients
    /// then fetch the metadata in clear, where anyone on the path can rewrite it.
    pub fn dangerous_allow_http(
        resource: impl Into<String>,
    ) -> Result<Self, ResourceMetadataError> {
        Self::parse(resource.into(), true)
    }

    fn parse(resource: String, allow_http: bool) -> Result<Self, ResourceMetadataError> {
        if resource.contains('#') {
            return Err(ResourceMetadataError("a fragment is not allowed"));
        }
        let uri: Uri = resource
            .parse()
            .map_err(|_| ResourceMetadataError("not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(ResourceMetadataError("not an absolute URL"));
        };
        let loopback = matches!(authority.host(), "localhost" | "127.0.0.1" | "[::1]");
        match scheme {
            "https" => {}
            "http" if loopback || allow_http => {}
            _ => return Err(ResourceMetadataError("the scheme must be https")),
        }
        if uri.query().is_some() {
            return Err(ResourceMetadataError("a query is not allowed"));
        }
        if authority.as_str().contains('@') {
            return Err(ResourceMetadataError("credentials in the URL"));
        }
        let path = match uri.path() {
            "/" | "" => String::new(),
            p => p.trim_end_matches('/').to_owned(),
        };
        let mut doc = Map::new();
        doc.insert("resource".into(), Value::String(resource.clone()));
        doc.insert("bearer_methods_supported".into(), json!(["header"]));
        Ok(Self {
            origin: format!("{scheme}://{authority}"),
            resource,
            path,
            doc,
        })
    }

    fn push(mut self, member: &str, value: impl Into<String>) -> Self {
        let list = self
            .doc
            .entry(member)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(Value::String(value.into()));
        }
        self
    }

    fn set(mut self, member: &str, value: Value) -> Self {
        self.doc.insert(member.into(), value);
        self
    }

    /// Adds an authorization server's issuer identifier (RFC 8414) to
    /// `authorization_servers`.
    pub fn authorization_server(self, issuer: impl Into<String>) -> Self {
        self.push("authorization_servers", issuer)
    }

    /// Adds scopes to `scopes_supported`.
    pub fn scopes_supported<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        scopes
            .into_iter()
            .fold(self, |m, s| m.push("scopes_supported", s))
    }

    /// Replaces `bearer_methods_supported` (`header`, `body`, `query`; RFC 9728 §2). Name only
    /// what the layer really accepts.
    pub fn bearer_methods_supported<I, S>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = methods
            .into_iter()
            .map(|m| Value::String(m.into()))
            .collect();
        self.set("bearer_methods_supported", Value::Array(list))
    }

    /// `jwks_uri`: where the resource publishes its own keys (for signed responses).
    pub fn jwks_uri(self, url: impl Into<String>) -> Self {
        self.set("jwks_uri", Value::String(url.into()))
    }

    /// `resource_name`: a name for people.
    pub fn resource_name(self, name: impl Into<String>) -> Self {
        self.set("resource_name", Value::String(name.into()))
    }

    /// `resource_documentation`: a page for developers.
    pub fn resource_documentation(self, url: impl Into<String>) -> Self {
        self.set("resource_documentation", Value::String(url.into()))
    }

    /// `dpop_signing_alg_values_supported` (RFC 9728 §2, RFC 9449): the proof algorithms the
    /// resource accepts.
    pub fn dpop_signing_alg_values_supported<I, S>(self, algs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = algs.into_iter().map(|a| Value::String(a.into())).collect();
        self.set("dpop_signing_alg_values_supported", Value::Array(list))
    }

    /// `dpop_bound_access_tokens_required`: the resource takes only DPoP-bound tokens.
    pub fn dpop_bound_access_tokens_required(self, required: bool) -> Self {
        self.set("dpop_bound_access_tokens_required", Value::Bool(required))
    }

    /// `tls_client_certificate_bound_access_tokens` (RFC 8705 §3.4).
    pub fn tls_client_certificate_bound_access_tokens(self, bound: bool) -> Self {
        self.set(
            "tls_client_certificate_bound_access_tokens",
            Value::Bool(bound),
        )
    }

    /// Any other member (RFC 9728 §2 allows extensions). `resource` cannot be replaced: it
    /// must stay the identifier the document is published for (§3.3).
    pub fn member(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if name != "resource" {
            self.doc.insert(name, value);
        }
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The path this document is served at on the resource's host: the well-known segment
    /// between the host and the resource's path (RFC 9728 §3.1).
    pub fn metadata_path(&self) -> String {
        format!("/.well-known/{WELL_KNOWN_SUFFIX}{}", self.path)
    }

    /// The absolute URL of this document, for the `resource_metadata` parameter of
    /// `WWW-Authenticate` (RFC 9728 §5.1; see [`Bearer::resource_metadata`]).
    ///
    /// [`Bearer::resource_metadata`]: crate::Bearer::resource_metadata
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin, self.metadata_path())
    }

    /// The document (RFC 9728 §3.2).
    pub fn to_json(&self) -> Value {
        Value::Object(self.doc.clone())
    }

    /// A router serving the document at [`metadata_path`](Self::metadata_path) as
    /// `application/json`. It needs no credentials: clients read it before they have any.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let body: std::sync::Arc<str> = Value::Object(self.doc.clone()).to_string().into();
        Router::new().route(
            &self.metadata_path(),
            get(move || {
                let body = body.clone();
                async move { metadata_response(&body) }
            }),
        )
    }
}

fn metadata_response(body: &str) -> Response {
    let mut res = body.to_owned().into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_segment_goes_between_host_and_path() {
        // RFC 9728 §3.1.
        let at = |r: &str| ProtectedResourceMetadata::new(r).unwrap().metadata_url();
        assert_eq!(
            at("https://resource.example.com"),
            "https://resource.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            at("https://resource.example.com/"),
            "https://resource.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            at("https://resource.example.com/resource1"),
            "https://resource.example.com/.well-known/oauth-protected-resource/resource1"
        );
        assert_eq!(
            at("http://127.0.0.1:8080/api/"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/api"
        );
    }

    #[test]
    fn identifiers_rfc_9728_does_not_allow_are_refused() {
        for bad in [
            "https://api.example.com/#frag",
            "https://api.example.com/?tenant=a",
            "http://api.example.com/",
            "ftp://api.example.com/",
            "/relative",
            "https://user:pw@api.example.com/",
        ] {
            assert!(ProtectedResourceMetadata::new(bad).is_err(), "{bad}");
        }
        assert!(ProtectedResourceMetadata::dangerous_allow_http("http://api.example.com/").is_ok());
    }

    #[test]
    fn resource_cannot_be_overridden() {
        let m = ProtectedResourceMetadata::new("https://api.example.com")
            .unwrap()
            .member("resource", json!("https://evil.example"))
            .member(
                "resource_policy_uri",
                json!("https://api.example.com/policy"),
            );
        let doc = m.to_json();
        assert_eq!(doc["resource"], "https://api.example.com");
        assert_eq!(doc["resource_policy_uri"], "https://api.example.com/policy");
    }
}
