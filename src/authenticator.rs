//! The [`Authenticator`] trait: one per scheme, asked in order by the Gate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::principal::{Principal, Scheme};
use crate::reject::{Challenge, Rejection};
use crate::request::RequestView;

/// A boxed, `Send` future: what trait objects in this crate return from async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an authenticator made of a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// The request carries no credential of this scheme; the next authenticator is asked.
    Abstain,
    /// The credential is valid.
    Authenticated(Principal),
    /// The credential is present but bad, or cannot be checked now. The Gate stops here: a bad
    /// credential never falls through to a weaker scheme.
    Rejected(Rejection),
}

/// Checks one scheme's credentials. Held by the [`Gate`](crate::Gate) as a trait object, so a
/// list can be built from configuration.
///
/// `recognizes` is the cheap, synchronous question "does this request carry a credential of my
/// scheme?"; the Gate uses it to refuse requests that carry two (400) before any expensive work.
/// `authenticate` does the checking, and may do I/O.
pub trait Authenticator: fmt::Debug + Send + Sync + 'static {
    /// The scheme this authenticator checks.
    fn scheme(&self) -> Scheme;

    /// The `WWW-Authenticate` challenge this scheme adds to a 401.
    fn challenge(&self) -> Challenge;

    /// Whether the request carries a credential this authenticator handles. No I/O, no crypto.
    fn recognizes(&self, request: &RequestView<'_>) -> bool;

    /// Checks the credential.
    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome>;
}
