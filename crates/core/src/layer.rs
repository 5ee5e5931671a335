//! The method-layer contract, implemented once.
//!
//! A method crate implements [`Authenticator`] ("find my credential", "verify it") and wraps it
//! in [`AuthLayer`]. The layer then keeps the contract for it:
//!
//! 1. it looks only for its own kind of credential ([`Authenticator::extract`]);
//! 2. none present: the request passes on untouched and the method's challenge is recorded in
//!    [`OfferedChallenges`], so a later 401 lists every scheme that was offered;
//! 3. present and valid: a [`Principal`] is inserted into the request extensions;
//! 4. present and invalid (or malformed): the layer answers at once and never falls through to
//!    another method, so nobody can downgrade;
//! 5. credentials of a second method on a request that already presented one: 400
//!    `invalid_request` (RFC 6750 §2: "MUST NOT use more than one method");
//! 6. the principal carries the method's [`scope_challenge`](Authenticator::scope_challenge),
//!    so a later 403 answers in the scheme that authenticated it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tower::{Layer, Service};

use crate::audit;
use crate::error::{AuthError, Challenge};
use crate::principal::{AuthMethod, Principal};

/// One authentication method: how to find its credential and how to verify it.
///
/// ```
/// use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
/// use axum::body::Body;
/// use http::Request;
///
/// /// Accepts `X-Demo: let-me-in` (a toy; real methods compare hashes in constant time).
/// struct Demo;
///
/// impl Authenticator for Demo {
///     type Credential = String;
///     fn method(&self) -> AuthMethod { AuthMethod::custom("demo") }
///     fn challenge(&self) -> Challenge { Challenge::new("Demo").param("realm", "api") }
///     fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
///         match req.headers().get("x-demo") {
///             None => Ok(None),
///             Some(v) => v.to_str().map(|s| Some(s.to_owned()))
///                 .map_err(|_| AuthError::invalid_request("X-Demo must be ASCII")),
///         }
///     }
///     async fn verify(&self, cred: String, _req: &mut Request<Body>) -> Result<Principal, AuthError> {
///         if cred == "let-me-in" {
///             Ok(Principal::builder("demo-user", self.method()).build())
///         } else {
///             Err(AuthError::invalid_credentials("wrong_demo_secret"))
///         }
///     }
/// }
///
/// let layer = AuthLayer::new(Demo);
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// What [`extract`](Self::extract) hands to [`verify`](Self::verify).
    type Credential: Send + 'static;

    /// The method this authenticator implements.
    fn method(&self) -> AuthMethod;

    /// The challenge offered when the method's credential is absent. Called once, when the
    /// layer is built.
    fn challenge(&self) -> Challenge;

    /// Finds this method's credential in the request, without any I/O.
    ///
    /// `Ok(None)`: not present, the request passes on. `Err`: present but malformed (400) or
    /// refused outright (401); the layer answers with it.
    fn extract(&self, req: &Request<Body>) -> Result<Option<Self::Credential>, AuthError>;

    /// Verifies a credential. May read or replace the request body (signature methods do).
    fn verify(
        &self,
        credential: Self::Credential,
        req: &mut Request<Body>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send;

    /// The challenge a 403 `insufficient_scope` on this method's principals carries, with
    /// RFC 6750 §3.1 error attributes, or `None` (the default) for schemes that define no
    /// such answer. Called once, when the layer is built; the layer attaches it to every
    /// principal it inserts ([`Principal::challenge`]).
    ///
    /// Token schemes return their bare scheme:
    /// `Some(Challenge::new("Bearer").with_error_attributes())` (the realm is optional there,
    /// so none is repeated).
    fn scope_challenge(&self) -> Option<Challenge> {
        None
    }
}

/// A shared authenticator is one too, so one instance can serve a layer and the code that
/// manages it (flushing, reloading) at once.
impl<A: Authenticator> Authenticator for Arc<A> {
    type Credential = A::Credential;
    fn method(&self) -> AuthMethod {
        (**self).method()
    }
    fn challenge(&self) -> Challenge {
        (**self).challenge()
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<Self::Credential>, AuthError> {
        (**self).extract(req)
    }
    fn verify(
        &self,
        credential: Self::Credential,
        req: &mut Request<Body>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send {
        (**self).verify(credential, req)
    }
    fn scope_challenge(&self) -> Option<Challenge> {
        (**self).scope_challenge()
    }
}

/// The challenges recorded by every layer the request passed without presenting that layer's
/// credential, in the order passed (outermost first).
#[derive(Clone, Debug, Default)]
pub struct OfferedChallenges(pub Vec<Arc<Challenge>>);

/// A Tower layer that authenticates requests with one [`Authenticator`].
#[must_use]
pub struct AuthLayer<A> {
    shared: Arc<Shared<A>>,
}

struct Shared<A> {
    authenticator: A,
    challenge: Arc<Challenge>,
    scope_challenge: Option<Arc<Challenge>>,
}

impl<A: Authenticator> AuthLayer<A> {
    /// Wraps an authenticator.
    pub fn new(authenticator: A) -> Self {
        let challenge = Arc::new(authenticator.challenge());
        let scope_challenge = authenticator.scope_challenge().map(Arc::new);
        Self {
            shared: Arc::new(Shared {
                authenticator,
                challenge,
                scope_challenge,
            }),
        }
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &A {
        &self.shared.authenticator
    }
}

impl<A> Clone for AuthLayer<A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S, A> Layer<S> for AuthLayer<A> {
    type Service = AuthService<S, A>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
pub struct AuthService<S, A> {
    inner: S,
    shared: Arc<Shared<A>>,
}

impl<S: Clone, A> Clone for AuthService<S, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The response future of [`AuthService`].
pub type AuthFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S, A> Service<Request<Body>> for AuthService<S, A>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    A: Authenticator,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let auth = &shared.authenticator;
            let method = auth.method();
            let credential = match auth.extract(&req) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    // Rule 2: not ours; record the challenge and pass on.
                    let ext = req.extensions_mut();
                    match ext.get_mut::<OfferedChallenges>() {
                        Some(offered) => offered.0.push(shared.challenge.clone()),
                        None => {
                            ext.insert(OfferedChallenges(vec![shared.challenge.clone()]));
                        }
                    }
                    return inner.call(req).await;
                }
                Err(e) => return Ok(reject(&shared, method, e, &req)),
            };
            // Rule 5: a second method's credentials on the same request. An outer layer that
            // found its credential either inserted a principal or answered already, so the
            // principal alone marks that a credential was presented.
            if req.extensions().get::<Principal>().is_some() {
                let e =
                    AuthError::invalid_request("Use only one authentication method per request.")
                        .with_reason("multiple_methods");
                return Ok(reject(&shared, method, e, &req));
            }
            match auth.verify(credential, &mut req).await {
                Ok(principal) => {
                    principal.attach_challenge(&shared.scope_challenge);
                    audit::accepted(&principal, &req);
                    req.extensions_mut().insert(principal);
                    inner.call(req).await
                }
                // Rule 4: answer now, never fall through.
                Err(e) => Ok(reject(&shared, method, e, &req)),
            }
        })
    }
}

fn reject<A>(
    shared: &Shared<A>,
    method: AuthMethod,
    mut e: AuthError,
    req: &Request<Body>,
) -> Response {
    audit::rejected(method, &e, req);
    if !e.has_error_codes() {
        // The body's `error` member speaks the vocabulary of the method that refused.
        e = e.with_error_codes(shared.challenge.error_codes());
    }
    if e.status() == http::StatusCode::UNAUTHORIZED && e.challenges().is_empty() {
        // RFC 7235 §3.1: a 401 carries at least one challenge; ours is the one that applies.
        e = e.with_challenge((*shared.challenge).clone());
    }
    e.render(req.extensions())
}
