//! The [`Authenticator`] trait: one per scheme, asked in order by the Gate, and the
//! [`CredentialSource`]s each reads.

use std::fmt;
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;

use crate::future::BoxFuture;
use crate::health::ComponentStatus;
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
/// [`sources`](Self::sources) says where the credential is read (cheap, no I/O): the Gate
/// refuses a request that carries credentials in two sources (400) before any expensive work,
/// and asks only the authenticators whose source the request carries. `authenticate` does the
/// checking, and may do I/O; it abstains when what it finds there is not its own (a JWT reading
/// `Authorization: Bearer` abstains on a token shaped like an API key).
///
/// An authenticator of your own is a scheme of its own: give it a name with [`Scheme::new`],
/// and that name is what the principal, the audit trail and [`Schemes`](crate::Schemes)
/// policies see.
pub trait Authenticator: fmt::Debug + Send + Sync + 'static {
    /// The scheme this authenticator checks.
    fn scheme(&self) -> Scheme;

    /// The `WWW-Authenticate` challenge this scheme adds to a 401.
    fn challenge(&self) -> Challenge;

    /// Every `WWW-Authenticate` challenge this authenticator adds to a 401, for one that
    /// accepts its credential under several auth-schemes (a JWT authenticator taking tokens as
    /// `Bearer` and `DPoP` offers both). Defaults to [`challenge`](Self::challenge) alone.
    fn challenges(&self) -> Vec<Challenge> {
        vec![self.challenge()]
    }

    /// Where this authenticator reads its credential: each source is one credential. An empty
    /// list (a credential the request's headers and query do not carry, such as a client
    /// certificate in the extensions) means it is asked on every request.
    fn sources(&self) -> Vec<CredentialSource>;

    /// Checks the credential.
    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome>;

    /// Whether what this authenticator needs works now, one status per component (a key set, a
    /// store), for [`Gate::readiness`](crate::Gate::readiness). Each check should answer within
    /// `timeout` (the Gate reports an authenticator that takes longer as not ready) and be cheap:
    /// the Gate caches the report briefly, but probes still come every few seconds.
    ///
    /// Report [`Health::NotReady`](crate::audit::Health::NotReady) only for what requests cannot
    /// do without (requests are refused with 503 while it lasts), and
    /// [`Health::Degraded`](crate::audit::Health::Degraded) for a problem that does not refuse
    /// requests yet. Reasons are read by people and must hold no secret.
    ///
    /// The default reports nothing: an authenticator with nothing to check is always ready.
    fn readiness(&self, timeout: Duration) -> BoxFuture<'_, Vec<ComponentStatus>> {
        let _ = timeout;
        Box::pin(async { Vec::new() })
    }
}

/// Where one credential is read: an `Authorization` scheme, a header, a query parameter, or
/// several headers that together hold one credential (an id and a signature).
///
/// Two authenticators that read the same source share it: `Authorization: Bearer` is read by the
/// JWT, introspection and API-key authenticators alike, and a request with one bearer token
/// carries one credential. A request carrying two different sources is refused (400
/// `invalid_request`), whatever the schemes behind them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialSource {
    /// Sorted and deduplicated, so equal sources compare equal.
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Part {
    /// An `Authorization` header with this auth-scheme, lowercase (RFC 9110 §11.1: case-insensitive).
    Authorization(String),
    Header(HeaderName),
    Query(String),
}

impl CredentialSource {
    /// An `Authorization` header whose auth-scheme is `scheme` (`Basic`, `Bearer`), compared
    /// without regard to case.
    pub fn authorization(scheme: &str) -> Self {
        Self::of(Part::Authorization(scheme.to_ascii_lowercase()))
    }

    /// A header of its own (`X-API-Key`).
    pub fn header(name: HeaderName) -> Self {
        Self::of(Part::Header(name))
    }

    /// A query parameter, matched by its name as sent (not percent-decoded).
    pub fn query(name: impl Into<String>) -> Self {
        Self::of(Part::Query(name.into()))
    }

    /// This source and another header, which hold one credential together (`X-Client-Id` with
    /// `X-Signature`): a request with either is carrying this credential, not two.
    #[must_use]
    pub fn and_header(mut self, name: HeaderName) -> Self {
        self.parts.push(Part::Header(name));
        self.parts.sort_by(|a, b| a.order().cmp(&b.order()));
        self.parts.dedup();
        self
    }

    fn of(part: Part) -> Self {
        Self { parts: vec![part] }
    }

    /// Whether this source is an `Authorization` header with auth-scheme `scheme` (lowercase).
    pub(crate) fn is_authorization(&self, scheme: &str) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Authorization(s) if s == scheme))
    }

    /// Whether `request` carries any part of this credential.
    pub(crate) fn is_in(&self, request: &RequestView<'_>) -> bool {
        self.parts.iter().any(|part| match part {
            Part::Authorization(scheme) => request
                .headers()
                .get_all(AUTHORIZATION)
                .iter()
                .any(|value| auth_scheme_is(value.as_bytes(), scheme)),
            Part::Header(name) => request.headers().contains_key(name),
            Part::Query(name) => request.query().is_some_and(|query| {
                query
                    .split('&')
                    .any(|pair| pair.split_once('=').map_or(pair, |(key, _)| key) == name)
            }),
        })
    }
}

impl Part {
    fn order(&self) -> (u8, &str) {
        match self {
            Part::Authorization(scheme) => (0, scheme),
            Part::Header(name) => (1, name.as_str()),
            Part::Query(name) => (2, name),
        }
    }
}

/// Whether an `Authorization` value starts with the auth-scheme `scheme` (lowercase), followed by
/// a space or nothing.
fn auth_scheme_is(value: &[u8], scheme: &str) -> bool {
    value.len() >= scheme.len()
        && value[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        && matches!(value.get(scheme.len()), None | Some(b' '))
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            match part {
                Part::Authorization(scheme) => write!(f, "Authorization: {scheme}")?,
                Part::Header(name) => write!(f, "header {name}")?,
                Part::Query(name) => write!(f, "query parameter {name}")?,
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Method, Request};

    use super::*;

    fn carries(source: &CredentialSource, uri: &str, headers: &[(&str, &str)]) -> bool {
        let mut request = Request::builder().method(Method::GET).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_str(value).unwrap());
        }
        let (parts, ()) = request.body(()).unwrap().into_parts();
        source.is_in(&RequestView::from_parts(&parts))
    }

    #[test]
    fn authorization_sources_match_the_auth_scheme_only() {
        let bearer = CredentialSource::authorization("Bearer");
        assert!(carries(&bearer, "/", &[("authorization", "bearer abc")]));
        assert!(carries(&bearer, "/", &[("authorization", "BEARER")]));
        assert!(!carries(&bearer, "/", &[("authorization", "Bearerx abc")]));
        assert!(!carries(&bearer, "/", &[("authorization", "Basic abc")]));
        assert!(!carries(&bearer, "/", &[]));
        assert_eq!(bearer, CredentialSource::authorization("bearer"));
    }

    #[test]
    fn header_query_and_spanning_sources() {
        let id = HeaderName::from_static("x-id");
        let sig = HeaderName::from_static("x-sig");
        let pair = CredentialSource::header(id.clone()).and_header(sig.clone());
        assert!(carries(&pair, "/", &[("x-sig", "s")]));
        assert!(carries(&pair, "/", &[("x-id", "i")]));
        assert!(!carries(&pair, "/", &[("x-other", "i")]));
        assert_eq!(pair, CredentialSource::header(sig).and_header(id));
        assert_eq!(pair.to_string(), "header x-id + header x-sig");
        let query = CredentialSource::query("access_token");
        assert!(carries(&query, "/?a=1&access_token=t", &[]));
        assert!(carries(&query, "/?access_token", &[]));
        assert!(!carries(&query, "/?access_tokens=t", &[]));
        assert!(!carries(&query, "/?x=access_token", &[]));
    }
}
