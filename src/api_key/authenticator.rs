//! [`ApiKeyAuthenticator`]: finds a key in the request, checks it, builds the principal.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;

use super::cache::CachedKey;
use super::manager::Inner;
use crate::authenticator::{Authenticator, CredentialSource, Outcome};
use crate::error::ConfigError;
use crate::future::BoxFuture;
use crate::health::{self, ComponentStatus};
use crate::principal::{Principal, Scheme};
use crate::reject::{Challenge, Rejection};
use crate::request::{RequestView, split_authorization};

/// The header an API key is read from unless configured otherwise.
pub const DEFAULT_HEADER: &str = "X-API-Key";

/// Authenticates requests carrying an API key. Made by [`ApiKeys::authenticator`] or
/// [`ApiKeys::authenticator_builder`](super::ApiKeys::authenticator_builder), and sharing the
/// manager's cache, so revocations through the manager apply at once.
///
/// A key is read from the API-key header (`X-API-Key` unless configured), and from
/// `Authorization: Bearer` when the token has a key's shape (`<prefix>_…` without a `.`; a JWT has
/// dots, so a JWT authenticator can share the Bearer header). A key in two places is a 400.
/// A malformed key or a bad checksum is a 401 without any store lookup; an unknown id, a wrong
/// secret, a revoked or an expired key is a 401 with its own reason in the audit log; a store
/// failure is a 503.
///
/// [`ApiKeys::authenticator`]: super::ApiKeys::authenticator
#[derive(Debug)]
pub struct ApiKeyAuthenticator {
    inner: Arc<Inner>,
    realm: String,
    header: HeaderName,
    header_display: String,
    bearer: bool,
    query_param: Option<String>,
}

/// Where a key was found.
#[derive(Clone, Copy, Debug)]
enum Source {
    Header,
    Bearer,
    Query,
}

impl ApiKeyAuthenticator {
    pub(super) fn from_inner(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            realm: "api".to_owned(),
            header: HeaderName::from_static("x-api-key"),
            header_display: DEFAULT_HEADER.to_owned(),
            bearer: true,
            query_param: None,
        }
    }

    async fn check(&self, request: &RequestView<'_>) -> Outcome {
        let presented = match self.presented(request) {
            Ok(Some(presented)) => presented,
            Ok(None) => return Outcome::Abstain,
            Err(rejection) => return Outcome::Rejected(rejection.for_scheme(Scheme::API_KEY)),
        };
        match verify(&self.inner, &presented).await {
            Ok(principal) => Outcome::Authenticated(principal),
            Err(rejection) => Outcome::Rejected(rejection),
        }
    }

    /// The one key the request carries, if any. Only ever the first value of its header: a
    /// repeated header, or a key in two places, is refused.
    fn presented<'r>(&self, request: &RequestView<'r>) -> Result<Option<Cow<'r, str>>, Rejection> {
        let mut found: Option<(Source, Cow<'r, str>)> = None;
        if let Some(value) = request.single_header(&self.header)? {
            // A header value that is not visible ASCII cannot be a key; the parse will say so.
            let key = value.to_str().unwrap_or("\u{fffd}").trim();
            add(&mut found, Source::Header, Cow::Borrowed(key))?;
        }
        if self.bearer {
            let authorization = request.headers().get_all(AUTHORIZATION);
            let mut ours = authorization.iter().filter_map(|v| self.bearer_key(v));
            if let Some(key) = ours.next() {
                if authorization.iter().count() > 1 {
                    return Err(Rejection::invalid_request(
                        "the Authorization header is repeated",
                    ));
                }
                add(&mut found, Source::Bearer, Cow::Borrowed(key))?;
            }
        }
        if let (Some(name), Some(query)) = (&self.query_param, request.query()) {
            let mut values = query_values(query, name);
            if let Some(key) = values.next() {
                if values.next().is_some() {
                    return Err(Rejection::invalid_request(
                        "the API key query parameter is repeated",
                    ));
                }
                add(&mut found, Source::Query, key)?;
            }
        }
        Ok(found.map(|(_, key)| key))
    }

    /// The token of `Authorization: Bearer <token>` when it has the shape of one of our keys.
    fn bearer_key<'v>(&self, value: &'v http::HeaderValue) -> Option<&'v str> {
        let (scheme, token) = split_authorization(value.to_str().ok()?);
        let token = token?.trim();
        (scheme.eq_ignore_ascii_case("bearer") && self.inner.format().looks_like_key(token))
            .then_some(token)
    }
}

/// Checks a presented key, wherever it came from: the principal, or the rejection of the API-key
/// scheme.
async fn verify(inner: &Arc<Inner>, presented: &str) -> Result<Principal, Rejection> {
    let parsed = inner.format().parse(presented).map_err(|err| {
        Rejection::invalid_credentials(Scheme::API_KEY, format!("malformed API key: {err}"))
    })?;
    match inner.check(&parsed).await {
        Ok(entry) => Ok(principal_of(&entry)),
        // The id of a key that parsed (prefix, id alphabet and length, checksum) goes to the
        // audit trail, so use of a revoked or leaked key can be found by its id; a key that did
        // not parse names no id, and the secret is never named (issue #16).
        Err(failure) => Err(failure
            .into_rejection()
            .with_attempted_credential_id(parsed.id())),
    }
}

/// Keys sent as the Basic password (issue #20) are checked here exactly as keys sent in a header
/// are: same parse, lookup, keyed hash, revocation and expiry checks, same principal.
#[cfg(feature = "basic")]
impl crate::authenticator::ApiKeyVerifier for super::ApiKeys {
    fn is_key(&self, password: &str) -> bool {
        self.inner.format().parse(password).is_ok()
    }

    fn verify_key<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Principal, Rejection>> {
        Box::pin(verify(&self.inner, key))
    }
}

/// Keeps the first key found; a second is a 400.
fn add<'r>(
    found: &mut Option<(Source, Cow<'r, str>)>,
    source: Source,
    key: Cow<'r, str>,
) -> Result<(), Rejection> {
    if let Some((first, _)) = found {
        return Err(Rejection::invalid_request(format!(
            "API key sent in more than one place ({} and {})",
            first.name(),
            source.name()
        )));
    }
    *found = Some((source, key));
    Ok(())
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Header => "API-key header",
            Source::Bearer => "Authorization: Bearer",
            Source::Query => "query string",
        }
    }
}

/// The values of parameter `name` in a query string, percent-decoded.
fn query_values<'q>(query: &'q str, name: &str) -> impl Iterator<Item = Cow<'q, str>> {
    query.split('&').filter_map(move |pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_encoding::percent_decode_str(value).decode_utf8_lossy())
    })
}

/// The principal of a checked key: a self-served key's groups are its owner's, read with it.
fn principal_of(entry: &CachedKey) -> Principal {
    let record = &entry.record;
    let groups = match &entry.owner {
        Some(Ok(groups)) => groups,
        // `check` refuses a self-served key whose owner is refused; own groups otherwise.
        _ => &record.groups,
    };
    let principal = Principal::new(&record.owner, record.owner_kind, Scheme::API_KEY)
        .with_credential_id(&record.id)
        .with_groups(groups.iter().map(String::as_str))
        .with_scopes(record.scopes.iter().map(String::as_str))
        .with_issued_at(record.created_at);
    match record.expires_at {
        Some(at) => principal.with_expires_at(at),
        None => principal,
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn scheme(&self) -> Scheme {
        Scheme::API_KEY
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("ApiKey")
            .param("realm", self.realm.clone())
            .param("header", self.header_display.clone())
    }

    fn sources(&self) -> Vec<CredentialSource> {
        let mut sources = vec![CredentialSource::header(self.header.clone())];
        if self.bearer {
            sources.push(CredentialSource::authorization("Bearer"));
        }
        if let Some(name) = &self.query_param {
            sources.push(CredentialSource::query(name.clone()));
        }
        sources
    }

    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.check(request))
    }

    /// The key store (`api_key/keys`: a one-row query).
    fn readiness(&self, timeout: Duration) -> BoxFuture<'_, Vec<ComponentStatus>> {
        Box::pin(async move {
            vec![health::ping("api_key/keys", timeout, self.inner.store_ping()).await]
        })
    }
}

/// Builds an [`ApiKeyAuthenticator`]; start from
/// [`ApiKeys::authenticator_builder`](super::ApiKeys::authenticator_builder).
#[derive(Debug)]
#[must_use]
pub struct ApiKeyAuthenticatorBuilder {
    inner: Arc<Inner>,
    realm: String,
    header: String,
    bearer: bool,
    query_param: Option<String>,
}

impl ApiKeyAuthenticatorBuilder {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            realm: "api".to_owned(),
            header: DEFAULT_HEADER.to_owned(),
            bearer: true,
            query_param: None,
        }
    }

    /// The realm in the challenge. Defaults to `api`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The header a key is read from, also named in the challenge. Defaults to `X-API-Key`.
    pub fn header(mut self, name: impl Into<String>) -> Self {
        self.header = name.into();
        self
    }

    /// Whether a key is also read from `Authorization: Bearer` when the token has a key's shape.
    /// Defaults to `true`.
    pub fn bearer(mut self, enabled: bool) -> Self {
        self.bearer = enabled;
        self
    }

    /// Also reads a key from query parameter `name`. Dangerous: URLs end up in access logs,
    /// browser history, `Referer` headers and proxy caches, so a key sent this way should be
    /// treated as leaked. Only for clients that cannot set a header. Defaults to off.
    pub fn dangerous_allow_query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = Some(name.into());
        self
    }

    /// Builds the authenticator; fails if the header or parameter name is not usable.
    pub fn build(self) -> Result<ApiKeyAuthenticator, ConfigError> {
        let header = HeaderName::from_bytes(self.header.as_bytes()).map_err(|_| {
            ConfigError::new(format!("`{}` is not a valid header name", self.header))
                .with_key("api_keys.header")
        })?;
        if header == AUTHORIZATION {
            return Err(ConfigError::new(
                "the API-key header cannot be `Authorization`; keys are read from `Bearer` there",
            )
            .with_key("api_keys.header"));
        }
        if let Some(name) = &self.query_param {
            let usable = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
            if !usable {
                return Err(ConfigError::new(format!(
                    "`{name}` is not a usable query parameter name (letters, digits, `-_.~`)"
                ))
                .with_key("api_keys.dangerous_query_param"));
            }
        }
        if self.realm.chars().any(char::is_control) {
            return Err(ConfigError::new("the realm contains a control character")
                .with_key("api_keys.realm"));
        }
        Ok(ApiKeyAuthenticator {
            inner: self.inner,
            realm: self.realm,
            header,
            header_display: self.header,
            bearer: self.bearer,
            query_param: self.query_param,
        })
    }
}
