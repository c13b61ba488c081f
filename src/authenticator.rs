//! The [`Authenticator`] trait: one per scheme, asked in order by the Gate.

use std::fmt;

use crate::future::BoxFuture;
use crate::principal::{Principal, Scheme};
use crate::reject::{Challenge, Rejection};
use crate::request::RequestView;

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

/// Checks an API key sent where a password goes: the password of `Authorization: Basic`, as Jira
/// and GitHub users send personal tokens (`curl -u alice:<token>`). Handed to
/// [`BasicAuthenticatorBuilder::accept_api_keys`](crate::basic::BasicAuthenticatorBuilder::accept_api_keys);
/// `ApiKeys` implements it (feature `api-key`).
///
/// It lives beside [`Authenticator`], in the layer both schemes build on, so that Basic can ask
/// the API-key scheme without either importing the other. The principal and the rejection are
/// the key scheme's own: Basic passes them on unchanged, apart from checking the owner.
#[cfg(feature = "basic")]
pub trait ApiKeyVerifier: fmt::Debug + Send + Sync + 'static {
    /// Whether `password` has the shape of a key this verifier checks (for portcullis keys: the
    /// prefix, the length, the alphabet and the checksum). No I/O and no secret compared: it
    /// only decides whether the password is checked as a key or as a password.
    fn is_key(&self, password: &str) -> bool;

    /// Checks a password [`is_key`](Self::is_key) accepted as that key: the principal the key
    /// authenticates (its scheme, owner, id, groups and scopes), or the rejection (401 of the
    /// key's scheme naming the key's id in `attempted_credential_id`, 503 when the store fails).
    fn verify_key<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Principal, Rejection>>;
}
