//! Extractors and a route layer that turn "who" into "may they".

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Extensions, Request};
use tower::{Layer, Service};

use crate::error::{AuthError, ErrorResponder};
use crate::layer::OfferedChallenges;
use crate::principal::Principal;
use crate::scope::{ScopeRequirement, ScopeSet};

/// The rejection of [`Auth`] and [`Scoped`]: an [`AuthError`] rendered with the router's
/// [`ErrorResponder`], if any.
pub struct AuthRejection {
    error: AuthError,
    responder: Option<ErrorResponder>,
}

impl AuthRejection {
    fn new(error: AuthError, extensions: &Extensions) -> Self {
        Self {
            error,
            responder: extensions.get::<ErrorResponder>().cloned(),
        }
    }

    /// The error behind the rejection.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

impl fmt::Debug for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AuthRejection").field(&self.error).finish()
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self.responder {
            Some(r) => {
                let mut ext = Extensions::new();
                ext.insert(r);
                self.error.render(&ext)
            }
            None => self.error.into_response(),
        }
    }
}

/// The 401 an unauthenticated request gets: a challenge for every scheme the request passed
/// (RFC 7235 §4.1), taken from [`OfferedChallenges`]. For handlers and layers that answer for
/// themselves.
pub fn unauthenticated(extensions: &Extensions) -> AuthError {
    let mut e = AuthError::missing_credentials();
    if let Some(offered) = extensions.get::<OfferedChallenges>() {
        for c in &offered.0 {
            e = e.with_challenge((**c).clone());
        }
    }
    if e.challenges().is_empty() {
        tracing::warn!(
            target: crate::audit::TARGET,
            "401 without a challenge: no authentication layer ran before this extractor"
        );
    }
    e
}

/// 403 `insufficient_scope` (RFC 6750 §3.1), with the challenge the principal's own scheme
/// answers it with ([`Principal::challenge`]), none for schemes that define none.
pub(crate) fn forbidden(principal: &Principal, required: String) -> AuthError {
    let e = AuthError::insufficient_scope(required);
    match principal.challenge() {
        Some(c) => e.with_challenge(c.clone()),
        None => e,
    }
}

/// Requires an authenticated principal: 401 with every offered challenge otherwise.
///
/// `Option<Auth>` never rejects, for routes that serve anonymous callers differently.
#[derive(Clone, Debug)]
pub struct Auth(pub Principal);

impl Deref for Auth {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(Auth(p.clone())),
            None => Err(AuthRejection::new(
                unauthenticated(&parts.extensions),
                &parts.extensions,
            )),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Auth {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned().map(Auth))
    }
}

/// Requires a principal whose scopes satisfy `R`: a [`Scope`](crate::Scope) type,
/// [`AllOf`](crate::AllOf) or [`AnyOf`](crate::AnyOf). 401 when unauthenticated, 403
/// `insufficient_scope` when the scope is missing.
///
/// ```
/// use apiauth_core::{scope, Scoped};
/// scope!(pub ContactsRead = "contacts:read");
///
/// async fn search(Scoped(principal, ..): Scoped<ContactsRead>) -> String {
///     format!("hello {}", principal.subject())
/// }
/// ```
pub struct Scoped<R>(pub Principal, pub PhantomData<fn() -> R>);

impl<R> Scoped<R> {
    /// The principal.
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<R> Deref for Scoped<R> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<R> Clone for Scoped<R> {
    fn clone(&self) -> Self {
        Scoped(self.0.clone(), PhantomData)
    }
}

impl<R> fmt::Debug for Scoped<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scoped").field(&self.0).finish()
    }
}

impl<S: Send + Sync, R: ScopeRequirement> FromRequestParts<S> for Scoped<R> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(p) = parts.extensions.get::<Principal>() else {
            return Err(AuthRejection::new(
                unauthenticated(&parts.extensions),
                &parts.extensions,
            ));
        };
        if R::is_satisfied_by(p.scopes()) {
            Ok(Scoped(p.clone(), PhantomData))
        } else {
            let e = forbidden(p, R::scopes().join(" "));
            audit_forbidden(p, &e, parts);
            Err(AuthRejection::new(e, &parts.extensions))
        }
    }
}

fn audit_forbidden(p: &Principal, e: &AuthError, parts: &Parts) {
    tracing::warn!(
        target: crate::audit::TARGET,
        outcome = "forbidden",
        method = p.method().as_str(),
        subject = p.subject(),
        credential_id = p.credential_id(),
        reason = e.reason(),
        required = e.required_scope(),
        route = parts
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map(|m| m.as_str())
            .unwrap_or_else(|| parts.uri.path()),
    );
}

/// A route layer for a scope list known only at run time (from configuration, a database):
/// `route_layer(RequireScopes::all(scopes))`.
#[derive(Clone, Debug)]
#[must_use]
pub struct RequireScopes {
    scopes: ScopeSet,
    any: bool,
}

impl RequireScopes {
    /// Every scope in `scopes` is required.
    pub fn all(scopes: ScopeSet) -> Self {
        Self { scopes, any: false }
    }

    /// At least one scope in `scopes` is required. An empty set is never satisfied.
    pub fn any(scopes: ScopeSet) -> Self {
        Self { scopes, any: true }
    }

    fn check(&self, granted: &ScopeSet) -> bool {
        if self.any {
            self.scopes.iter().any(|s| granted.contains(s))
        } else {
            granted.is_superset_of(&self.scopes)
        }
    }
}

impl<S> Layer<S> for RequireScopes {
    type Service = RequireScopesService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            inner,
            rule: Arc::new(self.clone()),
        }
    }
}

/// The service made by [`RequireScopes`].
#[derive(Clone, Debug)]
pub struct RequireScopesService<S> {
    inner: S,
    rule: Arc<RequireScopes>,
}

impl<S> Service<Request<Body>> for RequireScopesService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = crate::layer::AuthFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let verdict = match req.extensions().get::<Principal>() {
            None => Err(unauthenticated(req.extensions())),
            Some(p) if self.rule.check(p.scopes()) => Ok(()),
            Some(p) => Err(forbidden(p, self.rule.scopes.to_string())),
        };
        match verdict {
            Ok(()) => {
                let fut = self.inner.call(req);
                Box::pin(fut)
            }
            Err(e) => {
                let res = e.render(req.extensions());
                Box::pin(async move { Ok(res) })
            }
        }
    }
}
