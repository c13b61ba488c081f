//! TOML configuration: everything the builders can do, in one file.
//!
//! [`Config::from_str`] and [`Config::from_file`] parse and validate without any I/O, reporting
//! the first mistake with file, line, column and key; [`Config::build`] then makes the Gate
//! (opening stores). `docs/configuration.md` documents every key; `examples/portcullis.toml`
//! exercises them all.

#[cfg(feature = "api-key")]
mod api_keys;
#[cfg(feature = "basic")]
mod basic;
mod build;
mod duration;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "jwt")]
mod jwt;
mod load;
mod policies;
mod reload;
#[cfg(feature = "self-service")]
mod self_service;
mod shape;
mod store;
#[cfg(test)]
mod tests;

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use api_keys::DEFAULT_PEPPER_ENV;
pub use build::Services;
pub use reload::Reloader;

// The names every file of this module shares: each `use super::*`, so that a file needs no
// import list of its own that would differ with each feature set.
#[cfg(feature = "api-key")]
use self::api_keys::RawApiKeys;
#[cfg(feature = "basic")]
use self::basic::*;
use self::build::Kept;
use self::duration::DurationSetting;
use self::load::{Source, Spans};
use self::policies::Validator;
#[cfg(feature = "self-service")]
use self::self_service::RawSelfService;
use self::shape::*;
use self::store::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Method;
use serde::Deserialize;
use toml::Spanned;

#[cfg(feature = "introspection")]
use self::introspection::IntrospectionSettings;
#[cfg(feature = "jwt")]
use self::jwt::JwtSettings;
#[cfg(feature = "api-key")]
use crate::api_key::{ApiKeyAuthenticator, ApiKeys};
use crate::authenticator::Authenticator;
#[cfg(feature = "basic")]
use crate::basic::{ApiKeyVerifier, BasicAuthenticator, BasicLimits, HashingConfig};
use crate::client_ip::{ForwardedHeader, TrustedProxies};
use crate::error::ConfigError;
pub use crate::error::Location;
use crate::gate::{Gate, GateBuilder};
use crate::ipset::IpSet;
#[cfg(feature = "basic")]
use crate::lockout::{FailureStore, Lockout, MemoryFailureStore};
use crate::policy::{
    All, Anonymous, Any, Authenticated, ExpiryCap, Groups, IpRanges, KindIs, Not, Policy, Public,
    ReportOnly, Schemes, Scopes,
};
use crate::principal::{Scheme, SubjectKind};
use crate::route::{Methods, Route};
#[cfg(feature = "basic")]
use crate::secret::PasswordHash;
#[cfg(any(feature = "api-key", feature = "jwt", feature = "introspection"))]
use crate::secret::SecretString;
#[cfg(feature = "basic")]
use crate::store::UserRecord;
use crate::store::{
    ApiKeyStore, StoreOptions, Stores, UserStore, check_store_url, open_store_with,
};

/// A parsed and validated configuration, ready to [`build`](Config::build) a Gate.
#[derive(Debug)]
pub struct Config {
    source: Source,
    base_dir: Option<PathBuf>,
    store: Option<RawStore>,
    #[cfg(feature = "basic")]
    basic: Option<RawBasic>,
    /// `[basic.hashing]` with its defaults filled in; `None` without `[basic]`.
    #[cfg(feature = "basic")]
    hashing: Option<HashingConfig>,
    #[cfg(feature = "api-key")]
    api_keys: Option<RawApiKeys>,
    #[cfg(feature = "self-service")]
    self_service: Option<RawSelfService>,
    #[cfg(feature = "jwt")]
    jwt: Option<JwtSettings>,
    #[cfg(feature = "introspection")]
    introspection: Option<IntrospectionSettings>,
    routes: Vec<Route>,
    default_policy: Arc<dyn Policy>,
    trusted_proxies: TrustedProxies,
    /// `[gate] client_cert_proxies`.
    client_cert_proxies: crate::client_ip::IpSet,
    max_path_bytes: Option<usize>,
    /// `[gate] audit_allowed_level`.
    audit_allowed_level: Option<tracing::Level>,
    public_origin: Option<String>,
    upstream_paths: UpstreamPaths,
    /// The client that fetches keys and calls the introspection endpoint; `None` for the
    /// default one (feature `jwks`).
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    http_client: Option<Arc<dyn crate::jwt::HttpClient>>,
    /// Scheme names the policies use that are not built in, each with the error (key and
    /// location) for when no authenticator checks it; checked when the Gate is built.
    custom_scheme_names: Vec<(String, ConfigError)>,
    /// Authenticators of the service's own (see [`Config::authenticator`]).
    authenticators: Vec<Arc<dyn Authenticator>>,
}

/// What a [`Config`] was given in code ([`Config::authenticator`], `Config::with_http_client`),
/// which a [`Reloader`] carries over to the file it reads again.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddedInCode {
    authenticators: Vec<Arc<dyn Authenticator>>,
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    http_client: Option<Arc<dyn crate::jwt::HttpClient>>,
}

/// How the upstream behind a proxy built on the Gate reads paths (`[gateway] upstream_paths`).
///
/// The Gate never reads it: it matches paths byte for byte, as in-process routers (axum,
/// actix-web) do. It tells a proxy such as `examples/gateway.rs` which extra paths to refuse
/// because its upstream would route them to another handler than the Gate's rule names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UpstreamPaths {
    /// The upstream routes paths case-sensitively, as sent (nginx, Go's `net/http`, axum,
    /// actix-web, Django, Flask, Rails, Spring by default). The default.
    #[default]
    Exact,
    /// The upstream routes paths ignoring ASCII letter case (Express by default, ASP.NET Core,
    /// IIS, anything serving files from a case-insensitive file system). With it, every route
    /// pattern must be lowercase, so that a proxy can decide on a path's lowercase spelling (which
    /// a lowercase pattern matches exactly when it matches the path ignoring case).
    CaseInsensitive,
}

impl Config {
    /// Parses and validates a configuration held in a string.
    #[expect(
        clippy::should_implement_trait,
        reason = "fallible with a rich error; FromStr adds nothing"
    )]
    pub fn from_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, None)
    }

    /// What this configuration was given in code rather than read from its file.
    pub(crate) fn added_in_code(&self) -> AddedInCode {
        AddedInCode {
            authenticators: self.authenticators.clone(),
            #[cfg(any(feature = "jwt", feature = "introspection"))]
            http_client: self.http_client.clone(),
        }
    }

    /// This configuration with what another was given in code (a reload reads only the file).
    pub(crate) fn with_added_in_code(mut self, added: &AddedInCode) -> Self {
        self.authenticators
            .extend(added.authenticators.iter().cloned());
        #[cfg(any(feature = "jwt", feature = "introspection"))]
        if self.http_client.is_none() {
            self.http_client.clone_from(&added.http_client);
        }
        self
    }

    /// Adds an authenticator of your own, asked after the ones the file configures. Its scheme's
    /// name may then appear in `schemes_allow`, `schemes_deny` and `max_lifetime`; a name there
    /// that is neither built in nor the scheme of an added authenticator is an error, keyed and
    /// located, when the Gate is built.
    #[must_use]
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators.push(Arc::new(authenticator));
        self
    }

    /// Reads, parses and validates a configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text, Some(path.to_owned()))
    }

    /// The headers this configuration reads credentials from: `Authorization` always, and the
    /// API-key header (`[api_keys] header`, `X-API-Key` by default) when `[api_keys]` is set. A
    /// proxy removes them before forwarding (Kong's `hide_credentials`), so that the upstream
    /// never holds a caller's secret.
    pub fn credential_headers(&self) -> Vec<&str> {
        #[cfg_attr(
            not(feature = "api-key"),
            expect(unused_mut, reason = "only an API-key header is added")
        )]
        let mut headers = vec![http::header::AUTHORIZATION.as_str()];
        #[cfg(feature = "api-key")]
        if let Some(section) = &self.api_keys {
            headers.push(
                section
                    .header
                    .as_deref()
                    .unwrap_or(crate::api_key::DEFAULT_HEADER),
            );
        }
        headers
    }

    /// The query parameters this configuration reads credentials from: those the `dangerous_*`
    /// options turn on (`[api_keys] dangerous_query_param`, and `access_token` with
    /// `dangerous_allow_query_token`). Empty by default. See [`credential_headers`](Self::credential_headers).
    pub fn credential_query_params(&self) -> Vec<&str> {
        let mut params = Vec::new();
        #[cfg(feature = "api-key")]
        if let Some(param) = self
            .api_keys
            .as_ref()
            .and_then(|s| s.dangerous_query_param.as_deref())
        {
            params.push(param);
        }
        #[cfg(feature = "jwt")]
        let jwt_query = self
            .jwt
            .as_ref()
            .is_some_and(|s| s.dangerous_allow_query_token);
        #[cfg(not(feature = "jwt"))]
        let jwt_query = false;
        #[cfg(feature = "introspection")]
        let introspection_query = self
            .introspection
            .as_ref()
            .is_some_and(|s| s.dangerous_allow_query_token);
        #[cfg(not(feature = "introspection"))]
        let introspection_query = false;
        if jwt_query || introspection_query {
            params.push("access_token"); // RFC 6750 §2.3
        }
        params
    }

    /// Fetches JWKS and discovery documents and calls the introspection endpoint with `client`
    /// instead of the default one (feature `jwks`): something a file cannot say.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "jwt", feature = "introspection"))))]
    #[must_use]
    pub fn with_http_client(mut self, client: Arc<dyn crate::jwt::HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }

    /// How the upstream behind a proxy reads paths (`[gateway] upstream_paths`); the Gate itself
    /// does not use it. Defaults to [`UpstreamPaths::Exact`].
    pub fn upstream_paths(&self) -> UpstreamPaths {
        self.upstream_paths
    }

    /// The argon2id cost and pool settings Basic hashes and verifies passwords with:
    /// `[basic.hashing]`, each setting it leaves out at its default ([`HashingConfig`]).
    /// `None` when the file has no `[basic]` section. `portcullis hash-password --config FILE`
    /// hashes at this cost.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub fn hashing(&self) -> Option<HashingConfig> {
        self.hashing
    }

    /// The users Basic checks passwords against, for audits such as the warning of
    /// `portcullis config check` about stored hashes costlier than [`hashing`](Self::hashing):
    /// the inline `[[basic.users]]` when the store is `memory`, else every user of the store
    /// `[store] url` names, opened (and migrated) as [`build`](Self::build) opens it. A SQLite
    /// file that does not exist holds no users and is not created. Empty without `[basic]`.
    ///
    /// # Errors
    ///
    /// The store's, keyed `store.url`, when it cannot be opened or listed.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub async fn users(&self) -> Result<Vec<UserRecord>, ConfigError> {
        let Some(basic) = &self.basic else {
            return Ok(Vec::new());
        };
        let url = self
            .store
            .as_ref()
            .map_or("memory", |s| s.url.get_ref().as_str());
        if url == "memory" {
            return Ok(basic.users.iter().map(RawUser::record).collect());
        }
        if crate::store::missing_sqlite_file(&store_url(url, self.base_dir.as_deref())).is_some() {
            return Ok(Vec::new());
        }
        open_stores(self.store.as_ref(), self.base_dir.as_deref())
            .await?
            .users
            .list_users()
            .await
            .map_err(|e| {
                let error = ConfigError::new(e.to_string()).with_key("store.url");
                self.source.locate_error(error)
            })
    }

    /// Builds the Gate: opens the store and makes the authenticators the file names.
    pub async fn build(&self) -> Result<Gate, ConfigError> {
        Ok(self.build_services().await?.gate)
    }

    /// Builds the Gate and hands back what a service needs besides it: the API key manager (to
    /// issue, rotate and revoke keys with the configured pepper and caps) and the Basic
    /// authenticator (to add users with the configured hashing cost).
    pub async fn build_services(&self) -> Result<Services, ConfigError> {
        self.build_keeping(&mut Kept::default()).await
    }
}

impl Gate {
    /// Parses, validates and builds a Gate from a TOML string.
    pub async fn from_config_str(text: &str) -> Result<Gate, ConfigError> {
        Config::from_str(text)?.build().await
    }

    /// Reads, validates and builds a Gate from a TOML file; errors name file, line and key.
    pub async fn from_config_file(path: impl AsRef<Path>) -> Result<Gate, ConfigError> {
        Config::from_file(path)?.build().await
    }
}

#[cfg(any(
    feature = "api-key",
    feature = "jwt",
    feature = "introspection",
    feature = "redis"
))]
/// Makes a relative path relative to the configuration file's directory, like every path in it.
fn rebase(path: Option<&mut PathBuf>, base: Option<&Path>) {
    if let (Some(path), Some(base)) = (path, base)
        && path.is_relative()
    {
        *path = base.join(&*path);
    }
}

#[cfg(any(feature = "jwt", feature = "introspection"))]
fn mapping(paths: &[String]) -> crate::jwt::ClaimMapping {
    crate::jwt::ClaimMapping::new()
        .groups_claims(paths.iter().map(|p| crate::jwt::ClaimPath::new(p.clone())))
}

/// A secret from a file, by the one rule of `crate::secret_file::read_secret_file` (trailing line
/// endings dropped, an empty secret refused). Warns when the file is readable by group or
/// others; `what` names it in that warning.
#[cfg(any(feature = "jwt", feature = "introspection"))]
fn read_secret(path: &Path, what: &str) -> Result<SecretString, ConfigError> {
    crate::secret_file::read_secret_file(path, what)
        .map(SecretString::new)
        .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))
}
