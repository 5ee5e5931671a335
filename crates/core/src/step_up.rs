//! Step-up authentication (RFC 9470): a route that needs a stronger (`acr`) or more recent
//! (`auth_time`) user authentication than the token shows answers 401
//! `insufficient_user_authentication`, telling the client what to ask the authorization server
//! for.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tower::{Layer, Service};

use crate::clock::{SharedClock, SystemClock};
use crate::error::AuthError;
use crate::extract::unauthenticated;
use crate::principal::Principal;

/// How the user behind a token authenticated, as the token or the introspection answer says
/// (`acr` and `auth_time`, RFC 9470 §6; OpenID Connect Core §2). Verifiers attach it to the
/// [`Principal`] as an attribute; [`RequireAuthentication`] reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthenticationContext {
    /// The authentication context class reference (`acr`).
    pub acr: Option<Arc<str>>,
    /// When the user last authenticated (`auth_time`).
    pub auth_time: Option<SystemTime>,
}

impl AuthenticationContext {
    /// The context of `principal`, if its verifier attached one.
    pub fn of(principal: &Principal) -> Option<&AuthenticationContext> {
        principal.attribute::<AuthenticationContext>()
    }
}

/// A route layer requiring an authentication context: `route_layer(RequireAuthentication::
/// acr_values(["phrh"]).max_age(Duration::from_secs(300)))`.
///
/// A principal whose `acr` is not among the values, or whose `auth_time` is missing or older
/// than `max_age`, gets 401 `insufficient_user_authentication` with `acr_values` and `max_age`
/// in the challenge and the body (RFC 9470 §3), so that the client can ask for a new token
/// (RFC 9470 §4). A request with no principal gets the plain 401.
#[derive(Clone)]
#[must_use]
pub struct RequireAuthentication {
    acr_values: Option<Arc<[Arc<str>]>>,
    max_age: Option<Duration>,
    clock: SharedClock,
}

impl std::fmt::Debug for RequireAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireAuthentication")
            .field("acr_values", &self.acr_values)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl RequireAuthentication {
    /// Requires one of `values` as the token's `acr` (listed in the challenge in this order,
    /// the preferred first).
    pub fn acr_values<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Arc<str>>,
    {
        Self {
            acr_values: Some(values.into_iter().map(Into::into).collect()),
            max_age: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Requires an `auth_time` no older than `max_age` (whole seconds).
    pub fn within(max_age: Duration) -> Self {
        Self {
            acr_values: None,
            max_age: Some(max_age),
            clock: Arc::new(SystemClock),
        }
    }

    /// Also requires an `auth_time` no older than `max_age` (whole seconds).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The clock `auth_time` is compared with (for tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn satisfied_by(&self, ctx: Option<&AuthenticationContext>) -> bool {
        if let Some(values) = &self.acr_values {
            let acr = ctx.and_then(|c| c.acr.as_deref());
            if !acr.is_some_and(|a| values.iter().any(|v| &**v == a)) {
                return false;
            }
        }
        if let Some(max_age) = self.max_age {
            let Some(at) = ctx.and_then(|c| c.auth_time) else {
                return false;
            };
            // An auth_time in the future is as recent as now; one before the window is stale.
            let age = self
                .clock
                .now()
                .duration_since(at)
                .unwrap_or(Duration::ZERO);
            if age > max_age {
                return false;
            }
        }
        true
    }

    fn refusal(&self, principal: &Principal) -> AuthError {
        let acr = self
            .acr_values
            .as_ref()
            .map(|v| v.iter().map(|s| &**s).collect::<Vec<_>>().join(" "));
        let e = AuthError::insufficient_user_authentication(acr, self.max_age.map(|d| d.as_secs()));
        match principal.challenge() {
            Some(c) => e.with_challenge(c.clone()),
            None => e,
        }
    }
}

impl<S> Layer<S> for RequireAuthentication {
    type Service = RequireAuthenticationService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthenticationService {
            inner,
            rule: Arc::new(self.clone()),
        }
    }
}

/// The service made by [`RequireAuthentication`].
#[derive(Clone)]
pub struct RequireAuthenticationService<S> {
    inner: S,
    rule: Arc<RequireAuthentication>,
}

impl<S> Service<Request<Body>> for RequireAuthenticationService<S>
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
            Some(p) if self.rule.satisfied_by(AuthenticationContext::of(p)) => Ok(()),
            Some(p) => {
                let e = self.rule.refusal(p);
                tracing::warn!(
                    target: crate::audit::TARGET,
                    outcome = "step_up_required",
                    method = p.method().as_str(),
                    subject = p.subject(),
                    credential_id = p.credential_id(),
                    acr = AuthenticationContext::of(p).and_then(|c| c.acr.as_deref()),
                );
                Err(e)
            }
        };
        match verdict {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(e) => {
                let res = e.render(req.extensions());
                Box::pin(async move { Ok(res) })
            }
        }
    }
}
