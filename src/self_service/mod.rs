//! Personal API tokens, self-served (feature `self-service`): a JSON API, mountable at any prefix
//! behind the [`Gate`](crate::Gate), through which local users list, create, rotate and revoke
//! their own API keys within limits the operator sets.
//!
//! [`SelfService`] holds the rules and the [`ApiKeys`] it issues through; [`SelfService::handle`]
//! is the framework-free core (an `http::Request<Bytes>` whose path is relative to the mount
//! prefix), and [`SelfService::router`] (axum) and [`SelfService::actix_scope`] (actix-web) mount
//! it. The Gate in front authenticates the caller; this module reads the principal it put in the
//! request's extensions ([`GateContext`]) and never authenticates
//! again.
//!
//! | Request | Answer |
//! |---------|--------|
//! | `GET {prefix}` | the caller's active tokens: metadata, never a secret or digest |
//! | `POST {prefix}` `{"name", "expires_in" or "expires_at", "scopes"}` | 201, the token once, `Cache-Control: no-store` |
//! | `DELETE {prefix}/{id}` | 204; another user's id is 404, as an unknown one |
//! | `POST {prefix}/{id}/rotate` `{"overlap"}` | 201, the successor once, `no-store` |
//! | `GET {prefix}/ui` | the page: the caller's tokens, a create form, revoke buttons (HTML) |
//! | `POST {prefix}/ui`, `POST {prefix}/ui/revoke` | the page's forms: 201 with the new token shown once; 303 back to the page |
//!
//! The rules (see `docs/self-service.md`): only callers authenticated by HTTP Basic (local
//! users) create and rotate; a caller authenticated by an API key lists and revokes its owner's
//! tokens, and creates or rotates only with [`SelfServiceBuilder::allow_key_principals`] and then
//! within its own scopes; any other scheme (a JWT, introspection) is refused with 403. Scopes are
//! a subset of the allowlist and of the caller's scopes; lifetimes stop at the cap; names are
//! unique per owner among active tokens, and the per-user limit holds under concurrent creates
//! (the store checks both in one transaction). Basic credentials are ambient in a browser, so a
//! state-changing request authenticated by them passes a CSRF check (`Sec-Fetch-Site`, else
//! `Origin`), and JSON bodies need `Content-Type: application/json`. Errors are
//! `application/problem+json` (RFC 9457) naming the field.
//!
//! The page is server-rendered HTML without cookies or external assets: its one inline style
//! and script are allowed by their SHA-256 in a `Content-Security-Policy` that forbids
//! everything else. Its forms (`application/x-www-form-urlencoded`) pass the same origin check
//! and carry a form token, an HMAC of the caller's subject and an expiry (one hour) under a
//! server key: random per process, or derived from [`SelfServiceBuilder::form_key`] when
//! several instances serve one origin. Its URLs are relative, so it works at any prefix.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use portcullis::ApiKeys;
//! use portcullis::self_service::SelfService;
//! use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
//!
//! # fn main() -> Result<(), portcullis::ConfigError> {
//! let users = Arc::new(MemoryUserStore::new());
//! let keys = ApiKeys::builder(
//!     Arc::new(MemoryApiKeyStore::new()),
//!     "a server-side pepper of at least 32 bytes".into(),
//! )
//! .max_lifetime(Duration::from_secs(365 * 86_400))
//! // Tokens carry no groups: their owner's are read at authentication.
//! .owners(users)
//! .build()?;
//! let tokens = SelfService::builder(keys)
//!     .max_lifetime(Duration::from_secs(90 * 86_400))
//!     .scope_allowlist(["reports:read"])
//!     .public_origin("https://api.example.com")
//!     .build()?;
//! # let _ = tokens;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};

use crate::api_key::ApiKeys;
use crate::context::GateContext;
use crate::error::ConfigError;
use crate::policy::Policy;
use crate::principal::Principal;
use crate::reject::Rejection;
use crate::request::RequestView;
use crate::secret::SecretString;

#[cfg(feature = "actix")]
mod actix;
mod api;
#[cfg(feature = "axum")]
mod axum;
mod form_token;
mod page;
mod problem;
// The rules apart from HTTP, for the API and the page alike (`check_csrf`, `create_for`, ...).
pub(crate) mod rules;

pub(crate) use form_token::MIN_SECRET_LEN as MIN_FORM_KEY_LEN;
pub(crate) use problem::Problem;

/// The largest request body read, in bytes: a create or rotate request is a few hundred.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Self-served API tokens: the rules, and the [`ApiKeys`] they issue through. Cheap to clone
/// (one `Arc`). Built by [`SelfService::builder`].
#[derive(Clone)]
pub struct SelfService {
    inner: Arc<Inner>,
}

struct Inner {
    keys: ApiKeys,
    max_lifetime: Duration,
    default_lifetime: Duration,
    max_tokens_per_user: usize,
    max_name_len: usize,
    scope_allowlist: BTreeSet<String>,
    allow_key_principals: bool,
    public_origin: Option<String>,
    form_key: form_token::FormKey,
}

impl SelfService {
    /// A builder issuing through `api_keys`, with the defaults its methods document.
    pub fn builder(api_keys: ApiKeys) -> SelfServiceBuilder {
        SelfServiceBuilder {
            keys: api_keys,
            max_lifetime: None,
            default_lifetime: None,
            max_tokens_per_user: DEFAULT_MAX_TOKENS,
            max_name_len: DEFAULT_MAX_NAME_LEN,
            scope_allowlist: BTreeSet::new(),
            allow_key_principals: false,
            public_origin: None,
            form_key: None,
        }
    }

    /// Answers one request to the token API. Its path is relative to where the API is mounted
    /// (`""` or `"/"`, `"/{id}"`, `"/{id}/rotate"`); the Gate's
    /// [`GateContext`] must be in its extensions (the tower layer
    /// and the actix middleware put it there), else the answer is 500: without a Gate in front
    /// nothing is allowed. A body longer than [`MAX_BODY_LEN`] is refused with 413.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let Some(context) = gate_context(&request) else {
            return no_gate(&request);
        };
        let Some(principal) = context.principal().cloned() else {
            return unauthenticated(&context, &request);
        };
        if request.body().len() > MAX_BODY_LEN {
            return Problem::too_large().response();
        }
        let path = request.uri().path().to_owned();
        match Route::of(&path) {
            Route::Page => self.page(request, &principal).await,
            Route::Collection => api::collection(self, request, &principal).await,
            Route::Item(id) => api::item(self, request, &principal, id).await,
            Route::Rotate(id) => api::rotate(self, request, &principal, id).await,
            Route::NotFound => Problem::not_found().response(),
        }
    }

    /// The admin variant of the API: `GET` lists any user's tokens (`?owner=alice`, or everyone's
    /// without it) and `DELETE /{id}` revokes any token, for callers `policy` allows (others:
    /// 401 when anonymous, 403). Nothing is created or rotated through it.
    pub fn admin(&self, policy: impl Policy) -> SelfServiceAdmin {
        SelfServiceAdmin {
            service: self.clone(),
            policy: Arc::new(policy),
        }
    }

    /// The [`ApiKeys`] tokens are issued through.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.inner.keys
    }

    /// The longest lifetime a token may be given.
    pub fn max_lifetime(&self) -> Duration {
        self.inner.max_lifetime
    }

    /// The lifetime of a token created without `expires_in` or `expires_at`.
    pub fn default_lifetime(&self) -> Duration {
        self.inner.default_lifetime
    }

    /// The most active tokens one user may hold.
    pub fn max_tokens_per_user(&self) -> usize {
        self.inner.max_tokens_per_user
    }

    /// The longest token name, in characters.
    pub fn max_name_len(&self) -> usize {
        self.inner.max_name_len
    }

    /// The scopes a token may be given (each caller further limited to its own).
    pub fn scope_allowlist(&self) -> impl Iterator<Item = &str> {
        self.inner.scope_allowlist.iter().map(String::as_str)
    }

    async fn page(&self, request: Request<Bytes>, principal: &Principal) -> Response<Bytes> {
        page::handle(self, request, principal).await
    }
}

impl fmt::Debug for SelfService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("SelfService")
            .field("max_lifetime", &inner.max_lifetime)
            .field("default_lifetime", &inner.default_lifetime)
            .field("max_tokens_per_user", &inner.max_tokens_per_user)
            .field("max_name_len", &inner.max_name_len)
            .field("scope_allowlist", &inner.scope_allowlist)
            .field("allow_key_principals", &inner.allow_key_principals)
            .field("public_origin", &inner.public_origin)
            .finish_non_exhaustive()
    }
}

/// The admin variant of the token API ([`SelfService::admin`]): lists and revokes any user's
/// tokens, for callers its policy allows. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SelfServiceAdmin {
    service: SelfService,
    policy: Arc<dyn Policy>,
}

impl SelfServiceAdmin {
    /// Answers one request to the admin API (path relative to the mount prefix, as for
    /// [`SelfService::handle`]): the policy first, on the principal the Gate established.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let Some(context) = gate_context(&request) else {
            return no_gate(&request);
        };
        let (parts, body) = request.into_parts();
        if let Err(refusal) = context.require(&*self.policy, &RequestView::from_parts(&parts)) {
            let (_, response) = refusal.split();
            return response.map(Bytes::from);
        }
        let Some(principal) = context.principal().cloned() else {
            return unauthenticated(&context, &Request::from_parts(parts, body));
        };
        if body.len() > MAX_BODY_LEN {
            return Problem::too_large().response();
        }
        let request = Request::from_parts(parts, body);
        let path = request.uri().path().to_owned();
        match Route::of(&path) {
            Route::Collection => api::admin_collection(&self.service, request, &principal).await,
            Route::Item(id) => api::admin_item(&self.service, request, &principal, id).await,
            Route::Rotate(_) | Route::Page | Route::NotFound => Problem::not_found().response(),
        }
    }
}

/// Builds a [`SelfService`]: [`SelfService::builder`].
#[must_use]
pub struct SelfServiceBuilder {
    keys: ApiKeys,
    max_lifetime: Option<Duration>,
    default_lifetime: Option<Duration>,
    max_tokens_per_user: usize,
    max_name_len: usize,
    scope_allowlist: BTreeSet<String>,
    allow_key_principals: bool,
    public_origin: Option<String>,
    form_key: Option<SecretString>,
}

/// Default cap on a token's lifetime: 90 days.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// Default lifetime of a token created without an expiry: 30 days.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Default per-user limit on active tokens.
pub(crate) const DEFAULT_MAX_TOKENS: usize = 10;
/// Default longest token name, in characters.
pub(crate) const DEFAULT_MAX_NAME_LEN: usize = 64;
/// Bounds on the settings, so that a typo cannot make the per-user limit or a name unbounded.
const MAX_TOKENS_LIMIT: usize = 1_000;
const MAX_NAME_LEN_LIMIT: usize = 256;

impl SelfServiceBuilder {
    /// The longest lifetime a token may be given: at most the [`ApiKeys`]' own maximum, else
    /// [`build`](Self::build) fails. Defaults to 90 days, or the `ApiKeys`' maximum if lower.
    pub fn max_lifetime(mut self, cap: Duration) -> Self {
        self.max_lifetime = Some(cap);
        self
    }

    /// The lifetime of a token created without an expiry: at most
    /// [`max_lifetime`](Self::max_lifetime). Defaults to 30 days, or the maximum if lower.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = Some(lifetime);
        self
    }

    /// The most active (neither revoked nor expired) tokens one user may hold, 1 to 1000.
    /// Defaults to 10.
    pub fn max_tokens_per_user(mut self, n: usize) -> Self {
        self.max_tokens_per_user = n;
        self
    }

    /// The longest token name, in characters, 1 to 256. Defaults to 64.
    pub fn max_name_len(mut self, n: usize) -> Self {
        self.max_name_len = n;
        self
    }

    /// The scopes a token may be given. Defaults to none: tokens carry no scopes.
    pub fn scope_allowlist(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scope_allowlist = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a caller authenticated by an API key may create and rotate tokens (within its
    /// own scopes). Defaults to `false`: a leaked key cannot mint more keys.
    pub fn allow_key_principals(mut self, allow: bool) -> Self {
        self.allow_key_principals = allow;
        self
    }

    /// The origin browsers reach this service at (`https://api.example.com`), as
    /// [`GateBuilder::public_origin`](crate::GateBuilder::public_origin): a state-changing
    /// request from a browser without `Sec-Fetch-Site` must carry this `Origin`. Defaults to
    /// none: then such a request with any `Origin` is refused.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }

    /// The secret the page's form tokens are keyed from (at least 32 bytes), the same on every
    /// instance behind one origin, so that a page served by one instance can be posted to
    /// another. Defaults to a random key per process: then a form is accepted only by the
    /// instance that served it, and a restart makes open pages' forms fail (reload to fix).
    pub fn form_key(mut self, secret: SecretString) -> Self {
        self.form_key = Some(secret);
        self
    }

    /// Checks the settings: the lifetimes (default ≤ maximum ≤ the `ApiKeys`' maximum, none
    /// zero), the limits' ranges, the allowlist's scopes, the origin.
    pub fn build(self) -> Result<SelfService, ConfigError> {
        if !self.keys.has_owners() {
            return Err(ConfigError::new(
                "the API keys have no user store for self-served keys' owners \
                 (ApiKeysBuilder::owners, or [api_keys] in a configuration file with users): \
                 every self-served token would be refused",
            ));
        }
        let (max_lifetime, default_lifetime) = check_limits(
            self.keys.max_lifetime(),
            self.max_lifetime,
            self.default_lifetime,
            self.max_tokens_per_user,
            self.max_name_len,
            self.scope_allowlist.iter().map(String::as_str),
        )?;
        let public_origin = match &self.public_origin {
            Some(origin) => Some(
                crate::request::normalize_origin(origin)
                    .map_err(|why| ConfigError::new(why).with_key("public_origin"))?,
            ),
            None => None,
        };
        let form_key = match &self.form_key {
            Some(secret) => form_token::FormKey::from_secret(secret).ok_or_else(|| {
                ConfigError::new(format!(
                    "form_key is shorter than {} bytes",
                    form_token::MIN_SECRET_LEN
                ))
                .with_key("form_key")
            })?,
            None => form_token::FormKey::random(),
        };
        Ok(SelfService {
            inner: Arc::new(Inner {
                keys: self.keys,
                max_lifetime,
                default_lifetime,
                max_tokens_per_user: self.max_tokens_per_user,
                max_name_len: self.max_name_len,
                scope_allowlist: self.scope_allowlist,
                allow_key_principals: self.allow_key_principals,
                public_origin,
                form_key,
            }),
        })
    }
}

impl fmt::Debug for SelfServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfServiceBuilder")
            .field("max_lifetime", &self.max_lifetime)
            .field("default_lifetime", &self.default_lifetime)
            .field("max_tokens_per_user", &self.max_tokens_per_user)
            .field("max_name_len", &self.max_name_len)
            .field("scope_allowlist", &self.scope_allowlist)
            .field("allow_key_principals", &self.allow_key_principals)
            .field("public_origin", &self.public_origin)
            .field("form_key", &self.form_key)
            .finish_non_exhaustive()
    }
}

/// The checks of [`SelfServiceBuilder::build`] on the limits, shared with the configuration
/// file's (which runs them as the file is read, without an `ApiKeys`): the maximum and default
/// lifetimes, filled in and checked (default ≤ maximum ≤ the API keys' maximum, none zero), the
/// ranges, the allowlist's scopes.
pub(crate) fn check_limits<'a>(
    keys_cap: Option<Duration>,
    max_lifetime_in: Option<Duration>,
    default_lifetime_in: Option<Duration>,
    max_tokens_per_user: usize,
    max_name_len: usize,
    scopes: impl IntoIterator<Item = &'a str>,
) -> Result<(Duration, Duration), ConfigError> {
    let max_lifetime = match max_lifetime_in {
        Some(cap) => cap,
        None => keys_cap.map_or(DEFAULT_MAX_LIFETIME, |k| k.min(DEFAULT_MAX_LIFETIME)),
    };
    if max_lifetime.is_zero() {
        return Err(ConfigError::new("max_lifetime is zero").with_key("max_lifetime"));
    }
    if let Some(keys_cap) = keys_cap.filter(|&k| max_lifetime > k) {
        return Err(ConfigError::new(format!(
            "max_lifetime ({}s) is longer than the API keys' max_lifetime ({}s)",
            max_lifetime.as_secs(),
            keys_cap.as_secs()
        ))
        .with_key("max_lifetime"));
    }
    let default_lifetime = default_lifetime_in.unwrap_or(DEFAULT_LIFETIME.min(max_lifetime));
    if default_lifetime.is_zero() || default_lifetime > max_lifetime {
        return Err(ConfigError::new(format!(
            "default_lifetime ({}s) must be more than zero and at most max_lifetime ({}s)",
            default_lifetime.as_secs(),
            max_lifetime.as_secs()
        ))
        .with_key("default_lifetime"));
    }
    if !(1..=MAX_TOKENS_LIMIT).contains(&max_tokens_per_user) {
        return Err(ConfigError::new(format!(
            "max_tokens_per_user must be 1 to {MAX_TOKENS_LIMIT}"
        ))
        .with_key("max_tokens_per_user"));
    }
    if !(1..=MAX_NAME_LEN_LIMIT).contains(&max_name_len) {
        return Err(
            ConfigError::new(format!("max_name_len must be 1 to {MAX_NAME_LEN_LIMIT}"))
                .with_key("max_name_len"),
        );
    }
    for scope in scopes {
        if !rules::valid_scope(scope) {
            return Err(ConfigError::new(format!(
                "scope {scope:?}: a scope is 1 to 256 visible ASCII characters"
            ))
            .with_key("scope_allowlist"));
        }
    }
    Ok((max_lifetime, default_lifetime))
}

/// Where a relative path leads.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Collection,
    Item(&'a str),
    Rotate(&'a str),
    Page,
    NotFound,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Self {
        let rest = path.strip_prefix('/').unwrap_or(path);
        if rest.is_empty() {
            return Self::Collection;
        }
        if rest == "ui" || rest.starts_with("ui/") {
            return Self::Page;
        }
        match rest.split_once('/') {
            None if rules::valid_id(rest) => Self::Item(rest),
            Some((id, "rotate")) if rules::valid_id(id) => Self::Rotate(id),
            _ => Self::NotFound,
        }
    }
}

/// The Gate's context from the request's extensions; `None` means no Gate ran (see [`no_gate`]).
fn gate_context<B>(request: &Request<B>) -> Option<GateContext> {
    request.extensions().get::<GateContext>().cloned()
}

/// 500, audited: no Gate ran, so nothing is allowed.
fn no_gate<B>(request: &Request<B>) -> Response<Bytes> {
    tracing::error!(
        target: crate::audit::TARGET,
        stage = api::STAGE,
        outcome = "reject",
        status = 500u16,
        method = request.method().as_str(),
        path = request.uri().path(),
        "the token API found no Gate context: no Gate in front of it"
    );
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "no Gate in front").response()
}

/// 401 with every challenge the Gate offers, so that a browser asks for Basic credentials.
fn unauthenticated<B>(context: &GateContext, request: &Request<B>) -> Response<Bytes> {
    let rejection = Rejection::missing_credentials("the token API needs an authenticated caller");
    let (parts, ()) = clone_head(request).into_parts();
    let (_, response) = context
        .refuse(
            &RequestView::from_parts(&parts),
            api::STAGE,
            rejection,
            None,
        )
        .split();
    response.map(Bytes::from)
}

fn clone_head<B>(request: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.headers_mut() = request.headers().clone();
    head
}

/// Whether `method` changes state (and so passes the CSRF check).
fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn routes() {
        assert_eq!(Route::of(""), Route::Collection);
        assert_eq!(Route::of("/"), Route::Collection);
        assert_eq!(Route::of("/abc_DEF-1"), Route::Item("abc_DEF-1"));
        assert_eq!(Route::of("/abc/rotate"), Route::Rotate("abc"));
        assert_eq!(Route::of("/ui"), Route::Page);
        assert_eq!(Route::of("/ui/x"), Route::Page);
        assert_eq!(Route::of("/abc/"), Route::NotFound);
        assert_eq!(Route::of("/a%2Fb"), Route::NotFound);
        assert_eq!(Route::of("/abc/rotate/x"), Route::NotFound);
        assert_eq!(Route::of("//"), Route::NotFound);
    }
}
