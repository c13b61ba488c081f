//! TOML configuration: everything the builders can do, in one file.
//!
//! [`Config::from_str`] and [`Config::from_file`] parse and validate without any I/O, reporting
//! the first mistake with file, line, column and key; [`Config::build`] then makes the Gate
//! (opening stores). `docs/configuration.md` documents every key; `examples/portcullis.toml`
//! exercises them all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Method;
use serde::Deserialize;
use toml::Spanned;

#[cfg(feature = "api-key")]
use crate::api_key::{ApiKeyAuthenticator, ApiKeys};
use crate::authenticator::Authenticator;
#[cfg(feature = "basic")]
use crate::basic::{ApiKeyVerifier, BasicAuthenticator, BasicLimits, HashingConfig};
use crate::client_ip::{ForwardedHeader, TrustedProxies};
pub(crate) use crate::duration::parse_duration;
use crate::error::ConfigError;
pub use crate::error::Location;
use crate::gate::{Gate, GateBuilder};
use crate::ipset::IpSet;
#[cfg(feature = "introspection")]
use crate::jwt::IntrospectionSettings;
#[cfg(feature = "jwt")]
use crate::jwt::JwtSettings;
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
#[cfg(feature = "api-key")]
use crate::secret::SecretString;
#[cfg(feature = "basic")]
use crate::store::UserRecord;
use crate::store::{
    ApiKeyStore, StoreOptions, Stores, UserStore, check_store_url, open_store_with,
};

/// A parsed and validated configuration, ready to [`build`](Config::build) a Gate.
#[derive(Debug)]
pub struct Config {
    base_dir: Option<PathBuf>,
    store: Option<RawStore>,
    #[cfg(feature = "basic")]
    basic: Option<RawBasic>,
    /// `[basic.hashing]` with its defaults filled in; `None` without `[basic]`.
    #[cfg(feature = "basic")]
    hashing: Option<HashingConfig>,
    #[cfg(feature = "api-key")]
    api_keys: Option<RawApiKeys>,
    #[cfg(feature = "jwt")]
    jwt: Option<JwtSettings>,
    #[cfg(feature = "introspection")]
    introspection: Option<IntrospectionSettings>,
    routes: Vec<Route>,
    default_policy: Arc<dyn Policy>,
    trusted_proxies: TrustedProxies,
    max_path_bytes: Option<usize>,
    upstream_paths: UpstreamPaths,
    /// Scheme names the policies use that are not built in, each with the error (key and
    /// location) for when no authenticator checks it; checked when the Gate is built.
    custom_scheme_names: Vec<(String, ConfigError)>,
    /// Authenticators of the service's own (see [`Config::authenticator`]).
    authenticators: Vec<Arc<dyn Authenticator>>,
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

    fn parse(text: &str, file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let at = |span: Option<std::ops::Range<usize>>| {
            Spans {
                text,
                file: file.clone(),
            }
            .locate(span)
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            ConfigError::new(e.message().trim().to_owned()).with_location(at(e.span()))
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // A `Spanned` value adds a private field to the path; the key is the value's.
            let key = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let error =
                ConfigError::new(inner.message().trim().to_owned()).with_location(at(inner.span()));
            if key == "." {
                error
            } else {
                error.with_key(key)
            }
        })?;
        let base_dir = file
            .as_ref()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf);
        let spans = Spans { text, file };
        let mut config = Validator {
            raw: &raw,
            spans: &spans,
            built: BTreeMap::new(),
            custom_scheme_names: Vec::new(),
        }
        .finish()
        .map_err(|e| spans.locate_error(e))?;
        config.base_dir = base_dir;
        Ok(config)
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
            .map_err(|e| ConfigError::new(e.to_string()).with_key("store.url"))
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

    /// Builds as [`build_services`](Self::build_services) does, reusing what `kept` holds from
    /// the previous build and, on success, leaving there what the next one may reuse.
    pub(crate) async fn build_keeping(&self, kept: &mut Kept) -> Result<Services, ConfigError> {
        let stores = open_stores(self.store.as_ref(), self.base_dir.as_deref()).await?;
        let mut builder: GateBuilder =
            Gate::builder().trusted_proxies(self.trusted_proxies.clone());
        if let Some(bytes) = self.max_path_bytes {
            builder = builder.max_path_bytes(bytes);
        }
        // The key manager comes first, for `[basic] accept_api_keys`; its authenticator is
        // added after Basic's, so the challenges keep their order.
        #[cfg(feature = "api-key")]
        let key_services = self
            .api_keys
            .as_ref()
            .map(|section| section.build(Arc::clone(&stores.api_keys), self.base_dir.as_deref()))
            .transpose()?;
        #[cfg(feature = "basic")]
        let lockout_counters = self.basic.as_ref().and_then(|s| s.memory_counters(kept));
        #[cfg(feature = "basic")]
        let mut basic = None;
        #[cfg(feature = "basic")]
        if let Some(section) = &self.basic {
            let counters = lockout_counters.clone();
            // Validation refused `accept_api_keys` without `[api_keys]` (and so without the
            // `api-key` feature).
            #[cfg(feature = "api-key")]
            let verifier = key_services
                .as_ref()
                .filter(|_| section.accepts_api_keys())
                .map(|(manager, _)| Arc::new(manager.clone()) as Arc<dyn ApiKeyVerifier>);
            #[cfg(not(feature = "api-key"))]
            let verifier = None;
            let authenticator = Arc::new(
                section
                    .build(
                        Arc::clone(&stores.users),
                        counters.clone(),
                        verifier,
                        self.base_dir.as_deref(),
                    )
                    .await?,
            );
            builder = builder.shared_authenticator(authenticator.clone());
            basic = Some(authenticator);
        }
        #[cfg(feature = "api-key")]
        let mut api_keys = None;
        #[cfg(feature = "api-key")]
        if let Some((manager, authenticator)) = key_services {
            builder = builder.authenticator(authenticator);
            api_keys = Some(manager);
        }
        #[cfg(any(feature = "jwt", feature = "introspection"))]
        let base = self.base_dir.as_deref();
        #[cfg(feature = "jwt")]
        if let Some(settings) = &self.jwt {
            let mut settings = settings.clone();
            for issuer in &mut settings.issuers {
                for path in [
                    &mut issuer.jwks_file,
                    &mut issuer.pem_file,
                    &mut issuer.secret_file,
                ] {
                    rebase(path.as_mut(), base);
                }
            }
            builder = builder.authenticator(settings.build()?);
        }
        #[cfg(feature = "introspection")]
        if let Some(settings) = &self.introspection {
            let mut settings = settings.clone();
            if !settings.client_secret_file.as_os_str().is_empty() {
                rebase(Some(&mut settings.client_secret_file), base);
            }
            rebase(settings.client_token_file.as_mut(), base);
            // Keys of a custom `[api_keys] prefix` are left to the API-key authenticator, as
            // `pc_` keys are; otherwise both would claim them, and every Bearer key is a 400.
            #[cfg(feature = "api-key")]
            if settings.api_key_prefix.is_none()
                && !settings.introspect_api_key_shaped
                && let Some(prefix) = self.api_keys.as_ref().and_then(|a| a.prefix.as_ref())
            {
                settings.api_key_prefix = Some(prefix.get_ref().clone());
            }
            builder = builder.authenticator(settings.build()?);
        }
        for authenticator in &self.authenticators {
            builder = builder.shared_authenticator(Arc::clone(authenticator));
        }
        // The first unknown name in the file, not in the order policies were read.
        let unknown = self
            .custom_scheme_names
            .iter()
            .filter(|(name, _)| !builder.schemes().any(|scheme| scheme.as_str() == name))
            .map(|(_, error)| error)
            .min_by_key(|error| error.location().map(|at| (at.line, at.column)));
        if let Some(error) = unknown {
            return Err(error.clone());
        }
        for route in &self.routes {
            builder = builder.rule(route.clone());
        }
        let gate = builder
            .default_policy(Arc::clone(&self.default_policy))
            .build()?;
        *kept = Kept {
            #[cfg(feature = "basic")]
            lockout_counters,
        };
        Ok(Services {
            gate,
            #[cfg(feature = "basic")]
            basic,
            #[cfg(feature = "api-key")]
            api_keys,
            users: stores.users,
            api_key_store: stores.api_keys,
        })
    }
}

/// What a rebuilt configuration keeps from the previous one (see [`GateHandle::reload`]): the
/// in-memory lockout counters, so that a reload does not give a password guesser a fresh
/// allowance.
///
/// [`GateHandle::reload`]: crate::GateHandle::reload
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The memory counters of `[basic.lockout]`, with the capacity they were made with.
    #[cfg(feature = "basic")]
    lockout_counters: Option<(usize, Arc<MemoryFailureStore>)>,
}

/// What [`Config::build_services`] makes.
#[derive(Debug)]
#[non_exhaustive]
pub struct Services {
    /// The Gate.
    pub gate: Gate,
    /// The Basic authenticator, when `[basic]` is configured.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub basic: Option<Arc<BasicAuthenticator>>,
    /// The API key manager, when `[api_keys]` is configured.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub api_keys: Option<ApiKeys>,
    /// The user store named by `[store]`.
    pub users: Arc<dyn UserStore>,
    /// The API key store named by `[store]`.
    pub api_key_store: Arc<dyn ApiKeyStore>,
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

struct Spans<'a> {
    text: &'a str,
    file: Option<PathBuf>,
}

impl Spans<'_> {
    fn locate(&self, span: Option<std::ops::Range<usize>>) -> Location {
        let offset = span.map_or(0, |s| s.start).min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    /// Places an error that names a key but no location at that key in the file, so checks
    /// made on plain values (the `[jwt]` settings, whole tables) are located too.
    fn locate_error(&self, error: ConfigError) -> ConfigError {
        match (error.location(), error.key()) {
            (None, Some(key)) => {
                let span = self.key_span(key);
                error.with_location(self.locate(span))
            }
            _ => error,
        }
    }

    /// Where `key` (`jwt.issuers[0].algorithm`) is written: its value, or for a table its name.
    /// A key that is not written (a required one left out) falls back to the deepest table that
    /// is, which is where it should be added.
    fn key_span(&self, key: &str) -> Option<std::ops::Range<usize>> {
        use toml::de::DeValue;
        let document = toml::de::DeTable::parse(self.text).ok()?;
        let mut table = Some(document.get_ref());
        let mut span = None;
        'segments: for segment in key.split('.') {
            let mut parts = segment.split('[');
            let name = parts.next().unwrap_or_default();
            let Some((name, mut value)) = table.and_then(|t| t.get_key_value(name)) else {
                break;
            };
            span = Some(match value.get_ref() {
                DeValue::Table(_) => name.span(),
                _ => value.span(),
            });
            for index in parts {
                let item = index
                    .trim_end_matches(']')
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| match value.get_ref() {
                        DeValue::Array(items) => items.get(i),
                        _ => None,
                    });
                let Some(item) = item else { break 'segments };
                value = item;
                span = Some(item.span());
            }
            table = match value.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        span
    }

    fn error<T>(
        &self,
        value: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(message)
            .with_key(key)
            .with_location(self.locate(Some(value.span())))
    }
}

#[cfg(feature = "basic")]
/// The capacity of the memory lockout counters when `memory_capacity` is not given (that of
/// `MemoryFailureStore::default`).
const DEFAULT_LOCKOUT_CAPACITY: usize = 100_000;

/// Policy names that always mean the built-in policy.
const BUILT_IN_POLICIES: [&str; 3] = ["public", "authenticated", "anonymous"];

struct Validator<'a> {
    raw: &'a RawConfig,
    spans: &'a Spans<'a>,
    built: BTreeMap<String, Arc<dyn Policy>>,
    custom_scheme_names: Vec<(String, ConfigError)>,
}

impl Validator<'_> {
    fn finish(mut self) -> Result<Config, ConfigError> {
        for name in self.raw.policies.keys() {
            // A reference to a built-in name never reaches a policy defined under that name, so
            // defining one would be silently ignored: `[policies.public]` with a rule would
            // still let everyone in.
            if BUILT_IN_POLICIES.contains(&name.as_str()) {
                return Err(ConfigError::new(format!(
                    "`{name}` is a built-in policy and cannot be redefined; give this policy \
                     another name"
                ))
                .with_key(format!("policies.{name}")));
            }
            self.policy_named(name, &mut BTreeSet::new())?;
        }
        let mut routes = Vec::new();
        for (i, route) in self.raw.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            let policy = self.reference(
                &route.policy,
                &format!("{key}.policy"),
                &mut BTreeSet::new(),
            )?;
            let methods = if route.methods.is_empty() {
                Methods::Any
            } else {
                let mut list = Vec::new();
                for (j, m) in route.methods.iter().enumerate() {
                    let method = Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
                        .map_err(|_| {
                            self.spans.error(
                                m,
                                format!("{key}.methods[{j}]"),
                                format!("`{}` is not an HTTP method", m.get_ref()),
                            )
                        })?;
                    list.push(method);
                }
                let methods = Methods::Only(list);
                if let Err(e) = methods.check() {
                    return Err(self.spans.error(
                        &route.methods[0],
                        format!("{key}.methods"),
                        e.message().to_owned(),
                    ));
                }
                methods
            };
            let route = Route::new(methods, route.path.get_ref(), policy).map_err(|e| {
                self.spans
                    .error(&route.path, format!("{key}.path"), e.message().to_owned())
            })?;
            routes.push(route);
        }
        let upstream_paths = self.raw.gateway.upstream_paths;
        if upstream_paths == UpstreamPaths::CaseInsensitive {
            // A rule for `/Admin/**` would never see the paths a case-insensitive upstream
            // serves under it (`/admin/x`, `/ADMIN/x`): a proxy finds those by lowercasing.
            for (i, route) in self.raw.routes.iter().enumerate() {
                if route.path.get_ref().bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(self.spans.error(
                        &route.path,
                        format!("routes[{i}].path"),
                        "with `gateway.upstream_paths = \"case-insensitive\"` patterns must be \
                         lowercase",
                    ));
                }
            }
        }
        let default_policy = match &self.raw.gate.default_policy {
            Some(name) => self.reference(name, "gate.default_policy", &mut BTreeSet::new())?,
            None => Arc::new(Authenticated),
        };
        let proxies = &self.raw.gate.trusted_proxies;
        let set = self.ip_set(proxies, "gate.trusted_proxies")?;
        let mut trusted_proxies = TrustedProxies::new(set);
        if let Some(n) = self.raw.gate.max_forwarded_entries {
            trusted_proxies = trusted_proxies.max_forwarded_entries(n);
        }
        if let Some(name) = &self.raw.gate.forwarded_header {
            let header = match name.get_ref().as_str() {
                "x-forwarded-for" => ForwardedHeader::XForwardedFor,
                "forwarded" => ForwardedHeader::Forwarded,
                other => {
                    return Err(self.spans.error(
                        name,
                        "gate.forwarded_header",
                        format!(
                            "unknown forwarding header `{other}` (use \"x-forwarded-for\" or \"forwarded\")"
                        ),
                    ));
                }
            };
            trusted_proxies = trusted_proxies.forwarded_header(header);
        }
        if let Some(store) = &self.raw.store {
            store.validate(self.spans)?;
        }
        self.raw.refuse_compiled_out()?;
        #[cfg(feature = "basic")]
        if let Some(basic) = &self.raw.basic {
            basic.validate(self.spans)?;
            let store_is_memory = self
                .raw
                .store
                .as_ref()
                .is_none_or(|s| s.url.get_ref() == "memory");
            if let (false, Some(user)) = (store_is_memory, basic.users.first()) {
                return Err(self.spans.error(
                    &user.password_hash,
                    "basic.users",
                    "inline users need `store.url = \"memory\"`; add users to a database with `portcullis user add`",
                ));
            }
            if let (true, Some(accept), None) = (
                basic.accepts_api_keys(),
                &basic.accept_api_keys,
                &self.raw.api_keys,
            ) {
                let needs = if cfg!(feature = "api-key") {
                    "needs an `[api_keys]` section: a key sent as the password is checked with \
                     its pepper and store"
                } else {
                    "needs an `[api_keys]` section, and portcullis's `api-key` feature, which this \
                     build leaves out"
                };
                return Err(self.spans.error(accept, "basic.accept_api_keys", needs));
            }
        }
        #[cfg(feature = "api-key")]
        if let Some(api_keys) = &self.raw.api_keys {
            api_keys.validate(self.spans)?;
        }
        // Located by key (`jwt.max_lifetime`) in `Config::parse`.
        #[cfg(feature = "jwt")]
        if let Some(jwt) = &self.raw.jwt {
            jwt.validate()?;
        }
        #[cfg(feature = "introspection")]
        if let Some(introspection) = &self.raw.introspection {
            introspection.validate()?;
        }
        let max_path_bytes = match &self.raw.gate.max_path_bytes {
            Some(bytes) if *bytes.get_ref() == 0 => {
                return Err(self.spans.error(
                    bytes,
                    "gate.max_path_bytes",
                    "must be positive (0 would refuse every request)",
                ));
            }
            bytes => bytes.as_ref().map(|b| *b.get_ref()),
        };
        Ok(Config {
            base_dir: None,
            store: self.raw.store.clone(),
            #[cfg(feature = "api-key")]
            api_keys: self.raw.api_keys.clone(),
            #[cfg(feature = "jwt")]
            jwt: self.raw.jwt.clone(),
            #[cfg(feature = "introspection")]
            introspection: self.raw.introspection.clone(),
            #[cfg(feature = "basic")]
            basic: self.raw.basic.clone(),
            #[cfg(feature = "basic")]
            hashing: self
                .raw
                .basic
                .as_ref()
                .map(RawBasic::hashing_config)
                .transpose()?,
            routes,
            default_policy,
            trusted_proxies,
            max_path_bytes,
            upstream_paths,
            custom_scheme_names: self.custom_scheme_names,
            authenticators: Vec::new(),
        })
    }

    /// Checks a scheme name written at `value` (key `key`) and, unless it is built in, keeps it
    /// to check against the authenticators when the Gate is built.
    fn scheme_name<T>(
        &mut self,
        name: &str,
        value: &Spanned<T>,
        key: String,
    ) -> Result<(), ConfigError> {
        crate::principal::check_name(name)
            .map_err(|e| self.spans.error(value, key.clone(), e.message().to_owned()))?;
        if Scheme::built_in(name).is_none() {
            let error = self.spans.error(
                value,
                key,
                format!(
                    "unknown scheme `{name}`: not one of basic, api_key, jwt or introspection, \
                     and no authenticator added to the configuration checks it"
                ),
            );
            self.custom_scheme_names.push((name.to_owned(), error));
        }
        Ok(())
    }

    fn ip_set(&self, entries: &[Spanned<String>], key: &str) -> Result<IpSet, ConfigError> {
        for (i, entry) in entries.iter().enumerate() {
            IpSet::parse([entry.get_ref()]).map_err(|e| {
                self.spans
                    .error(entry, format!("{key}[{i}]"), e.message().to_owned())
            })?;
        }
        IpSet::parse(entries.iter().map(|e| e.get_ref()))
            .map_err(|e| ConfigError::new(e.message().to_owned()).with_key(key))
    }

    /// A policy by name: a built-in (`public`, `authenticated`, `anonymous`) or one defined in
    /// `[policies]`.
    fn reference(
        &mut self,
        name: &Spanned<String>,
        key: &str,
        visiting: &mut BTreeSet<String>,
    ) -> Result<Arc<dyn Policy>, ConfigError> {
        match name.get_ref().as_str() {
            "public" => return Ok(Arc::new(Public)),
            "authenticated" => return Ok(Arc::new(Authenticated)),
            "anonymous" => return Ok(Arc::new(Anonymous)),
            _ => {}
        }
        if !self.raw.policies.contains_key(name.get_ref()) {
            let defined: Vec<&str> = self.raw.policies.keys().map(String::as_str).collect();
            return Err(self.spans.error(
                name,
                key,
                format!(
                    "unknown policy `{}` (built-in: public, authenticated, anonymous; defined: {})",
                    name.get_ref(),
                    if defined.is_empty() {
                        "none".to_owned()
                    } else {
                        defined.join(", ")
                    }
                ),
            ));
        }
        if visiting.contains(name.get_ref()) {
            return Err(self.spans.error(
                name,
                key,
                format!("policy `{}` refers to itself", name.get_ref()),
            ));
        }
        self.policy_named(name.get_ref(), visiting)
    }

    fn policy_named(
        &mut self,
        name: &str,
        visiting: &mut BTreeSet<String>,
    ) -> Result<Arc<dyn Policy>, ConfigError> {
        if let Some(policy) = self.built.get(name) {
            return Ok(Arc::clone(policy));
        }
        let raw = self.raw;
        let Some(section) = raw.policies.get(name) else {
            return Err(ConfigError::new(format!("unknown policy `{name}`")));
        };
        visiting.insert(name.to_owned());
        let key = format!("policies.{name}");
        let policy = self.build_policy(section, &key, visiting)?;
        visiting.remove(name);
        self.built.insert(name.to_owned(), Arc::clone(&policy));
        Ok(policy)
    }

    fn build_policy(
        &mut self,
        section: &RawPolicy,
        key: &str,
        visiting: &mut BTreeSet<String>,
    ) -> Result<Arc<dyn Policy>, ConfigError> {
        let mut all = All::new();
        let mut rules = 0usize;
        let mut add = |all: All, p: Box<dyn Policy>| {
            rules += 1;
            let policies: Vec<Box<dyn Policy>> = vec![Box::new(all), p];
            All::from(policies)
        };
        // An empty list makes a rule that allows everyone (`groups_all = []`) or no one: never
        // what was meant, so it is refused where it is written. (`GateBuilder::build` refuses
        // the same for policies built in code, through `Policy::validate`.)
        let lengths = [
            ("groups_any", section.groups_any.as_ref().map(Vec::len)),
            ("groups_all", section.groups_all.as_ref().map(Vec::len)),
            ("scopes_any", section.scopes_any.as_ref().map(Vec::len)),
            ("scopes_all", section.scopes_all.as_ref().map(Vec::len)),
            (
                "schemes_allow",
                section.schemes_allow.as_ref().map(Vec::len),
            ),
            ("schemes_deny", section.schemes_deny.as_ref().map(Vec::len)),
            ("ip_allow", section.ip_allow.as_ref().map(Vec::len)),
            ("ip_deny", section.ip_deny.as_ref().map(Vec::len)),
        ];
        if let Some((field, _)) = lengths.iter().find(|(_, len)| *len == Some(0)) {
            return Err(ConfigError::new(
                "an empty list would allow every caller or none; list at least one, or remove \
                 the key",
            )
            .with_key(format!("{key}.{field}")));
        }
        if section.authenticated == Some(true) {
            all = add(all, Box::new(Authenticated));
        }
        if section.anonymous == Some(true) {
            all = add(all, Box::new(Anonymous));
        }
        for (field, list) in [
            ("schemes_allow", &section.schemes_allow),
            ("schemes_deny", &section.schemes_deny),
        ] {
            let Some(list) = list else { continue };
            for (i, s) in list.iter().enumerate() {
                self.scheme_name(s.get_ref(), s, format!("{key}.{field}[{i}]"))?;
            }
            let names = list.iter().map(Spanned::get_ref);
            all = add(
                all,
                Box::new(if field == "schemes_allow" {
                    Schemes::allow(names)
                } else {
                    Schemes::deny(names)
                }),
            );
        }
        if let Some(kind) = section.kind {
            all = add(all, Box::new(KindIs(kind)));
        }
        if section.ip_allow.is_some() || section.ip_deny.is_some() {
            let empty = Vec::new();
            let allow = section.ip_allow.as_ref();
            let allow_set = self.ip_set(allow.unwrap_or(&empty), &format!("{key}.ip_allow"))?;
            let deny_set = self.ip_set(
                section.ip_deny.as_ref().unwrap_or(&empty),
                &format!("{key}.ip_deny"),
            )?;
            let mut ranges = IpRanges::new();
            if section.ip_deny.is_some() {
                ranges = ranges.deny(deny_set);
            }
            if allow.is_some() {
                ranges = ranges.allow(allow_set);
            }
            all = add(all, Box::new(ranges));
        }
        if let Some(groups) = &section.groups_any {
            all = add(all, Box::new(Groups::any_of(groups.clone())));
        }
        if let Some(groups) = &section.groups_all {
            all = add(all, Box::new(Groups::all_of(groups.clone())));
        }
        if let Some(scopes) = &section.scopes_any {
            all = add(all, Box::new(Scopes::any_of(scopes.clone())));
        }
        if let Some(scopes) = &section.scopes_all {
            all = add(all, Box::new(Scopes::all_of(scopes.clone())));
        }
        if section.max_lifetime.is_some() || section.allow_non_expiring.is_some() {
            let mut cap =
                ExpiryCap::new().allow_non_expiring(section.allow_non_expiring.unwrap_or(false));
            for (scheme, lifetime) in section.max_lifetime.iter().flatten() {
                let field = format!("{key}.max_lifetime.{scheme}");
                let duration = parse_duration(lifetime.get_ref())
                    .map_err(|e| self.spans.error(lifetime, field.clone(), e))?;
                cap = match scheme.as_str() {
                    "default" => cap.default_max_lifetime(duration),
                    name => {
                        self.scheme_name(name, lifetime, field)?;
                        cap.max_lifetime(name, duration)
                    }
                };
            }
            all = add(all, Box::new(cap));
        }
        for (field, names) in [("all", &section.all), ("any", &section.any)] {
            let Some(names) = names else { continue };
            let mut policies: Vec<Box<dyn Policy>> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                policies.push(Box::new(self.reference(
                    name,
                    &format!("{key}.{field}[{i}]"),
                    visiting,
                )?));
            }
            let combined: Box<dyn Policy> = if field == "all" {
                Box::new(All::from(policies))
            } else {
                Box::new(Any::from(policies))
            };
            all = add(all, combined);
        }
        if let Some(name) = &section.not {
            let inner = self.reference(name, &format!("{key}.not"), visiting)?;
            all = add(all, Box::new(Not::new(inner)));
        }
        if rules == 0 {
            return Err(ConfigError::new("a policy must state at least one rule").with_key(key));
        }
        if section.report_only {
            return Ok(Arc::new(ReportOnly::new(all)));
        }
        Ok(Arc::new(all))
    }
}

// ---- the file's shape -------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    gate: RawGate,
    store: Option<RawStore>,
    #[cfg(feature = "basic")]
    basic: Option<RawBasic>,
    #[cfg(not(feature = "basic"))]
    basic: Option<CompiledOut>,
    #[cfg(feature = "api-key")]
    api_keys: Option<RawApiKeys>,
    #[cfg(not(feature = "api-key"))]
    api_keys: Option<CompiledOut>,
    #[cfg(feature = "jwt")]
    jwt: Option<JwtSettings>,
    #[cfg(not(feature = "jwt"))]
    jwt: Option<CompiledOut>,
    #[cfg(feature = "introspection")]
    introspection: Option<IntrospectionSettings>,
    #[cfg(not(feature = "introspection"))]
    introspection: Option<CompiledOut>,
    #[serde(default)]
    policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    gateway: RawGateway,
}

/// A section whose scheme is compiled out: read (so that it is not an unknown key) only to be
/// refused by [`RawConfig::refuse_compiled_out`], never silently ignored.
#[cfg(not(all(
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection"
)))]
type CompiledOut = serde::de::IgnoredAny;

impl RawConfig {
    /// Refuses a section (`[jwt]`) whose feature (`jwt`) this build of portcullis leaves out.
    /// The error names the section's key; [`Spans::locate_error`] places it at the table's name.
    fn refuse_compiled_out(&self) -> Result<(), ConfigError> {
        #[cfg(not(feature = "basic"))]
        if self.basic.is_some() {
            return Err(needs_feature("basic", "basic"));
        }
        #[cfg(not(feature = "api-key"))]
        if self.api_keys.is_some() {
            return Err(needs_feature("api_keys", "api-key"));
        }
        #[cfg(not(feature = "jwt"))]
        if self.jwt.is_some() {
            return Err(needs_feature("jwt", "jwt"));
        }
        #[cfg(not(feature = "introspection"))]
        if self.introspection.is_some() {
            return Err(needs_feature("introspection", "introspection"));
        }
        Ok(())
    }
}

/// The error for a setting whose feature is compiled out, keyed (and so located) at `key`.
#[cfg(not(all(
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection",
    feature = "redis"
)))]
fn needs_feature(key: &str, feature: &str) -> ConfigError {
    let shown = if key.contains('.') {
        format!("`{key}`")
    } else {
        format!("`[{key}]`")
    };
    ConfigError::new(format!(
        "{shown} needs portcullis's `{feature}` feature, which this build leaves out"
    ))
    .with_key(key)
}

/// Settings for a proxy built on the Gate; the Gate does not read them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    #[serde(default)]
    upstream_paths: UpstreamPaths,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    default_policy: Option<Spanned<String>>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    forwarded_header: Option<Spanned<String>>,
    max_forwarded_entries: Option<usize>,
    max_path_bytes: Option<Spanned<usize>>,
}

#[cfg(feature = "basic")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasic {
    realm: Option<String>,
    #[serde(default)]
    users: Vec<RawUser>,
    hashing: Option<RawHashing>,
    cache: Option<RawCache>,
    lockout: Option<RawLockout>,
    limits: Option<RawBasicLimits>,
    #[serde(default)]
    dangerous_disable_lockout: bool,
    accept_api_keys: Option<Spanned<bool>>,
}

#[cfg(feature = "basic")]
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    password_hash: Spanned<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    kind: SubjectKind,
    #[serde(default)]
    disabled: bool,
}

#[cfg(feature = "basic")]
impl RawUser {
    fn record(&self) -> UserRecord {
        let mut record =
            UserRecord::new(&self.name, PasswordHash::new(self.password_hash.get_ref()))
                .with_groups(self.groups.clone())
                .with_kind(self.kind);
        record.disabled = self.disabled;
        record
    }
}

#[cfg(feature = "basic")]
/// By hand, like [`PasswordHash`]'s: a PHC string is an offline cracking target, and a
/// `Config` gets logged.
impl fmt::Debug for RawUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawUser")
            .field("name", &self.name)
            .field("password_hash", &format_args!("[redacted]"))
            .field("groups", &self.groups)
            .field("kind", &self.kind)
            .field("disabled", &self.disabled)
            .finish()
    }
}

#[cfg(feature = "basic")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHashing {
    memory_kib: Option<u32>,
    iterations: Option<u32>,
    parallelism: Option<u32>,
    max_concurrent: Option<usize>,
    max_wait: Option<Spanned<String>>,
}

#[cfg(feature = "basic")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    ttl: Spanned<String>,
    capacity: Option<usize>,
}

#[cfg(feature = "basic")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockout {
    user_threshold: Option<u32>,
    ip_threshold: Option<u32>,
    ipv6_prefix_len: Option<Spanned<u32>>,
    base_delay: Option<Spanned<String>>,
    max_delay: Option<Spanned<String>>,
    window: Option<Spanned<String>>,
    store: Option<Spanned<RedisUrl>>,
    memory_capacity: Option<Spanned<usize>>,
    redis_prefix: Option<Spanned<String>>,
    redis_timeout: Option<Spanned<String>>,
    redis_retry_after: Option<Spanned<String>>,
    redis_ca_file: Option<Spanned<PathBuf>>,
    dangerous_fail_open: Option<Spanned<bool>>,
    dangerous_allow_insecure_tls: Option<Spanned<bool>>,
}

#[cfg(feature = "basic")]
/// `memory` or a Redis URL, which may hold a password: `Debug` shows only the scheme.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
struct RedisUrl(String);

#[cfg(feature = "basic")]
impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split_once(':').map_or(self.0.as_str(), |(s, _)| s);
        write!(f, "RedisUrl({scheme}:[redacted])")
    }
}

#[cfg(feature = "basic")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicLimits {
    max_header_bytes: Option<Spanned<usize>>,
    max_user_bytes: Option<Spanned<usize>>,
    max_password_bytes: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    authenticated: Option<bool>,
    anonymous: Option<bool>,
    groups_any: Option<Vec<String>>,
    groups_all: Option<Vec<String>>,
    scopes_any: Option<Vec<String>>,
    scopes_all: Option<Vec<String>>,
    kind: Option<SubjectKind>,
    schemes_allow: Option<Vec<Spanned<String>>>,
    schemes_deny: Option<Vec<Spanned<String>>>,
    ip_allow: Option<Vec<Spanned<String>>>,
    ip_deny: Option<Vec<Spanned<String>>>,
    max_lifetime: Option<BTreeMap<String, Spanned<String>>>,
    allow_non_expiring: Option<bool>,
    all: Option<Vec<Spanned<String>>>,
    any: Option<Vec<Spanned<String>>>,
    not: Option<Spanned<String>>,
    #[serde(default)]
    report_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: Spanned<String>,
    #[serde(default)]
    methods: Vec<Spanned<String>>,
    policy: Spanned<String>,
}

#[cfg(feature = "basic")]
impl RawBasic {
    fn durations(&self) -> Vec<(&Spanned<String>, String)> {
        let mut list = Vec::new();
        if let Some(h) = &self.hashing {
            list.extend(
                h.max_wait
                    .as_ref()
                    .map(|d| (d, "basic.hashing.max_wait".to_owned())),
            );
        }
        if let Some(c) = &self.cache {
            list.push((&c.ttl, "basic.cache.ttl".to_owned()));
        }
        if let Some(l) = &self.lockout {
            for (d, name) in [
                (&l.base_delay, "base_delay"),
                (&l.max_delay, "max_delay"),
                (&l.window, "window"),
                (&l.redis_timeout, "redis_timeout"),
                (&l.redis_retry_after, "redis_retry_after"),
            ] {
                list.extend(d.as_ref().map(|d| (d, format!("basic.lockout.{name}"))));
            }
        }
        list
    }

    fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
        for (value, key) in self.durations() {
            parse_duration(value.get_ref()).map_err(|e| spans.error(value, key, e))?;
        }
        for (i, user) in self.users.iter().enumerate() {
            let phc = user.password_hash.get_ref();
            if argon2::password_hash::PasswordHash::new(phc).is_err() {
                return Err(spans.error(
                    &user.password_hash,
                    format!("basic.users[{i}].password_hash"),
                    "not a PHC string (make one with `portcullis hash-password`)",
                ));
            }
        }
        self.hashing_config()?;
        if self.dangerous_disable_lockout && self.lockout.is_some() {
            // One of the two is a mistake; which one is not ours to guess.
            return Err(ConfigError::new(
                "lockout settings given while dangerous_disable_lockout turns lockout off",
            )
            .with_key("basic.lockout"));
        }
        if let Some(lockout) = &self.lockout {
            lockout.validate(spans)?;
        }
        if let Some(limits) = &self.limits {
            // A zero limit would refuse every credential.
            for (value, name) in limits.fields() {
                if let Some(value) = value.filter(|v| *v.get_ref() == 0) {
                    return Err(spans.error(
                        value,
                        format!("basic.limits.{name}"),
                        "must be positive",
                    ));
                }
            }
        }
        Ok(())
    }

    fn hashing_config(&self) -> Result<HashingConfig, ConfigError> {
        let mut config = HashingConfig::default();
        if let Some(h) = &self.hashing {
            config.memory_kib = h.memory_kib.unwrap_or(config.memory_kib);
            config.iterations = h.iterations.unwrap_or(config.iterations);
            config.parallelism = h.parallelism.unwrap_or(config.parallelism);
            config.max_concurrent = h.max_concurrent.unwrap_or(config.max_concurrent);
            if let Some(wait) = &h.max_wait {
                config.max_wait = duration(wait)?;
            }
        }
        argon2::Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| {
            ConfigError::new(format!("argon2 parameters: {e}")).with_key("basic.hashing")
        })?;
        Ok(config)
    }

    /// The in-memory lockout counters this section counts in: those of the previous build when
    /// it counted in memory with the same capacity, else new ones. `None` when lockout is off
    /// or counts in Redis.
    fn memory_counters(&self, kept: &Kept) -> Option<(usize, Arc<MemoryFailureStore>)> {
        if self.dangerous_disable_lockout {
            return None;
        }
        let lockout = self.lockout.as_ref();
        if lockout
            .and_then(|l| l.store.as_ref())
            .is_some_and(|url| url.get_ref().0 != "memory")
        {
            return None;
        }
        let capacity = lockout
            .and_then(|l| l.memory_capacity.as_ref())
            .map_or(DEFAULT_LOCKOUT_CAPACITY, |c| *c.get_ref());
        match &kept.lockout_counters {
            Some((kept_capacity, store)) if *kept_capacity == capacity => {
                Some((capacity, Arc::clone(store)))
            }
            _ => Some((
                capacity,
                Arc::new(MemoryFailureStore::with_capacity(capacity)),
            )),
        }
    }

    /// Whether `accept_api_keys = true`.
    fn accepts_api_keys(&self) -> bool {
        self.accept_api_keys.as_ref().is_some_and(|a| *a.get_ref())
    }

    async fn build(
        &self,
        store: Arc<dyn UserStore>,
        counters: Option<(usize, Arc<MemoryFailureStore>)>,
        api_keys: Option<Arc<dyn ApiKeyVerifier>>,
        base_dir: Option<&Path>,
    ) -> Result<BasicAuthenticator, ConfigError> {
        for user in &self.users {
            store
                .create_user(user.record())
                .await
                .map_err(|e| ConfigError::new(e.to_string()).with_key("basic.users"))?;
        }
        let mut builder = BasicAuthenticator::builder(store).hashing(self.hashing_config()?);
        if let Some(realm) = &self.realm {
            builder = builder.realm(realm.clone());
        }
        if let Some(cache) = &self.cache {
            builder =
                builder.verified_cache(duration(&cache.ttl)?, cache.capacity.unwrap_or(10_000));
        }
        if let Some(limits) = &self.limits {
            builder = builder.limits(limits.limits());
        }
        if let Some(verifier) = api_keys {
            builder = builder.api_key_verifier(verifier);
        }
        let memory = counters.map(|(_, store)| Lockout::shared(store as Arc<dyn FailureStore>));
        if self.dangerous_disable_lockout {
            builder = builder.dangerous_disable_lockout();
        } else if let Some(l) = &self.lockout {
            let mut lockout = match memory {
                Some(lockout) => lockout,
                None => l.counters(base_dir)?,
            };
            if let Some(n) = l.user_threshold {
                lockout = lockout.user_threshold(n);
            }
            if let Some(n) = l.ip_threshold {
                lockout = lockout.ip_threshold(n);
            }
            if let Some(bits) = &l.ipv6_prefix_len {
                // `validate` kept it within 0..=128.
                lockout = lockout.ipv6_prefix_len(u8::try_from(*bits.get_ref()).unwrap_or(128));
            }
            if let Some(d) = &l.base_delay {
                lockout = lockout.base_delay(duration(d)?);
            }
            if let Some(d) = &l.max_delay {
                lockout = lockout.max_delay(duration(d)?);
            }
            if let Some(d) = &l.window {
                lockout = lockout.window(duration(d)?);
            }
            builder = builder.lockout(lockout);
        } else if let Some(lockout) = memory {
            builder = builder.lockout(lockout);
        }
        builder.build()
    }
}

#[cfg(feature = "basic")]
impl RawLockout {
    fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
        for (threshold, key) in [
            (self.user_threshold, "basic.lockout.user_threshold"),
            (self.ip_threshold, "basic.lockout.ip_threshold"),
        ] {
            // The builder raises a lower value; in a file it is refused, so what is written is
            // what applies.
            if threshold.is_some_and(|n| n < crate::lockout::MIN_THRESHOLD) {
                return Err(ConfigError::new(format!(
                    "must be at least {}",
                    crate::lockout::MIN_THRESHOLD
                ))
                .with_key(key));
            }
        }
        if let Some(bits) = self.ipv6_prefix_len.as_ref().filter(|b| *b.get_ref() > 128) {
            return Err(spans.error(
                bits,
                "basic.lockout.ipv6_prefix_len",
                "an IPv6 prefix is at most 128 bits",
            ));
        }
        let redis = self
            .store
            .as_ref()
            .filter(|url| url.get_ref().0 != "memory");
        if let Some(url) = redis
            && !url.get_ref().0.starts_with("redis")
        {
            return Err(spans.error(
                url,
                "basic.lockout.store",
                "expected `memory` or a Redis URL (`redis://host:port`, `rediss://host:port`, `redis+unix:///path`)",
            ));
        }
        if redis.is_some() {
            if let Some(capacity) = &self.memory_capacity {
                return Err(spans.error(
                    capacity,
                    "basic.lockout.memory_capacity",
                    "only for `store = \"memory\"`; Redis holds the counters here",
                ));
            }
        } else {
            let redis_only = [
                self.redis_prefix
                    .as_ref()
                    .map(|v| (v.span(), "redis_prefix")),
                self.redis_timeout
                    .as_ref()
                    .map(|v| (v.span(), "redis_timeout")),
                self.redis_retry_after
                    .as_ref()
                    .map(|v| (v.span(), "redis_retry_after")),
                self.dangerous_fail_open
                    .as_ref()
                    .map(|v| (v.span(), "dangerous_fail_open")),
                self.redis_ca_file
                    .as_ref()
                    .map(|v| (v.span(), "redis_ca_file")),
                self.dangerous_allow_insecure_tls
                    .as_ref()
                    .map(|v| (v.span(), "dangerous_allow_insecure_tls")),
            ];
            if let Some((span, name)) = redis_only.into_iter().flatten().next() {
                return Err(ConfigError::new("only for a Redis `store`")
                    .with_key(format!("basic.lockout.{name}"))
                    .with_location(spans.locate(Some(span))));
            }
            if let Some(capacity) = self.memory_capacity.as_ref().filter(|c| *c.get_ref() == 0) {
                return Err(spans.error(
                    capacity,
                    "basic.lockout.memory_capacity",
                    "must be positive",
                ));
            }
        }
        // Builds the store, which checks the URL and settings (and reads the CA file) without
        // connecting.
        let base = spans.file.as_deref().and_then(Path::parent);
        self.counters(base).map(|_| ())
    }

    /// A lockout with default rules counting in the configured store; relative paths are taken
    /// from `base`, the configuration file's directory.
    fn counters(&self, base: Option<&Path>) -> Result<Lockout, ConfigError> {
        let url = match &self.store {
            Some(url) if url.get_ref().0 != "memory" => &url.get_ref().0,
            _ => {
                let capacity = self
                    .memory_capacity
                    .as_ref()
                    .map_or(DEFAULT_LOCKOUT_CAPACITY, |c| *c.get_ref());
                return Ok(Lockout::new(MemoryFailureStore::with_capacity(capacity)));
            }
        };
        self.redis_counters(url, base)
    }

    #[cfg(feature = "redis")]
    fn redis_counters(&self, url: &str, base: Option<&Path>) -> Result<Lockout, ConfigError> {
        let mut builder = crate::lockout::RedisFailureStore::builder(url);
        if let Some(path) = &self.redis_ca_file {
            let mut path = path.get_ref().clone();
            rebase(Some(&mut path), base);
            builder = builder.ca_file(path);
        }
        if self
            .dangerous_allow_insecure_tls
            .as_ref()
            .is_some_and(|v| *v.get_ref())
        {
            builder = builder.dangerous_allow_insecure_tls();
        }
        if let Some(prefix) = &self.redis_prefix {
            builder = builder.key_prefix(prefix.get_ref().clone());
        }
        if let Some(timeout) = &self.redis_timeout {
            builder = builder.timeout(duration(timeout)?);
        }
        if let Some(wait) = &self.redis_retry_after {
            builder = builder.retry_after(duration(wait)?);
        }
        if self
            .dangerous_fail_open
            .as_ref()
            .is_some_and(|v| *v.get_ref())
        {
            builder = builder.dangerous_fail_open();
        }
        let store = builder.build().map_err(|e| {
            // The builder names its keys `lockout.…`; here they live in `[basic.lockout]`.
            let key = e.key().map(|k| format!("basic.{k}"));
            let error = ConfigError::new(e.message().to_owned());
            match key {
                Some(key) => error.with_key(key),
                None => error,
            }
        })?;
        Ok(Lockout::new(store))
    }

    #[cfg(not(feature = "redis"))]
    fn redis_counters(&self, _url: &str, _base: Option<&Path>) -> Result<Lockout, ConfigError> {
        Err(needs_feature("basic.lockout.store", "redis"))
    }
}

#[cfg(feature = "basic")]
impl RawBasicLimits {
    fn fields(&self) -> [(Option<&Spanned<usize>>, &'static str); 3] {
        [
            (self.max_header_bytes.as_ref(), "max_header_bytes"),
            (self.max_user_bytes.as_ref(), "max_user_bytes"),
            (self.max_password_bytes.as_ref(), "max_password_bytes"),
        ]
    }

    /// These limits over the defaults.
    fn limits(&self) -> BasicLimits {
        let mut limits = BasicLimits::default();
        let value =
            |v: &Option<Spanned<usize>>, default| v.as_ref().map_or(default, |v| *v.get_ref());
        limits.max_header_bytes = value(&self.max_header_bytes, limits.max_header_bytes);
        limits.max_user_bytes = value(&self.max_user_bytes, limits.max_user_bytes);
        limits.max_password_bytes = value(&self.max_password_bytes, limits.max_password_bytes);
        limits
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Spanned<String>,
    #[serde(default)]
    dangerous_allow_unverified_tls: bool,
}

impl fmt::Debug for RawStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a database password: show its scheme only.
        let url = self.url.get_ref();
        let scheme = url
            .split_once(':')
            .map_or(url.as_str(), |(scheme, _)| scheme);
        f.debug_struct("RawStore")
            .field("scheme", &scheme)
            .finish_non_exhaustive()
    }
}

impl RawStore {
    fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
        check_store_url(self.url.get_ref())
            .map_err(|e| spans.error(&self.url, "store.url", e.to_string()))
    }
}

async fn open_stores(
    store: Option<&RawStore>,
    base_dir: Option<&Path>,
) -> Result<Stores, ConfigError> {
    let url = store.map_or("memory", |s| s.url.get_ref().as_str());
    let options = StoreOptions::new()
        .dangerous_allow_unverified_tls(store.is_some_and(|s| s.dangerous_allow_unverified_tls));
    open_store_with(&store_url(url, base_dir), &options)
        .await
        .map_err(|e| ConfigError::new(e.to_string()).with_key("store.url"))
}

/// `url` with a relative SQLite path made relative to the configuration file's directory, as
/// every other path in the file is.
fn store_url(url: &str, base_dir: Option<&Path>) -> String {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    match (path, base_dir) {
        (Some(path), Some(base))
            if !path.is_empty() && !path.starts_with('/') && !path.starts_with(":memory:") =>
        {
            format!("sqlite://{}", base.join(path).display())
        }
        _ => url.to_owned(),
    }
}

#[cfg(feature = "api-key")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKeys {
    pepper_env: Option<String>,
    pepper_file: Option<PathBuf>,
    prefix: Option<Spanned<String>>,
    header: Option<String>,
    bearer: Option<bool>,
    realm: Option<String>,
    max_lifetime: Option<Spanned<String>>,
    #[serde(default)]
    allow_non_expiring: bool,
    cache_ttl: Option<Spanned<String>>,
    cache_capacity: Option<usize>,
    negative_cache_capacity: Option<usize>,
    watch_store_changes: Option<bool>,
    last_used_flush_interval: Option<Spanned<String>>,
    dangerous_query_param: Option<String>,
}

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
/// The environment variable read for the API key pepper when the file names none.
pub const DEFAULT_PEPPER_ENV: &str = "PORTCULLIS_API_KEY_PEPPER";

#[cfg(feature = "api-key")]
impl RawApiKeys {
    fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
        for (value, key) in [
            (&self.max_lifetime, "api_keys.max_lifetime"),
            (&self.cache_ttl, "api_keys.cache_ttl"),
            (
                &self.last_used_flush_interval,
                "api_keys.last_used_flush_interval",
            ),
        ] {
            if let Some(value) = value {
                parse_duration(value.get_ref()).map_err(|e| spans.error(value, key, e))?;
            }
        }
        if let Some(prefix) = &self.prefix {
            crate::api_key::KeyFormat::new(prefix.get_ref())
                .map_err(|e| spans.error(prefix, "api_keys.prefix", e.message().to_owned()))?;
        }
        if self.pepper_env.is_some() && self.pepper_file.is_some() {
            return Err(
                ConfigError::new("give pepper_env or pepper_file, not both").with_key("api_keys")
            );
        }
        Ok(())
    }

    /// The pepper, from a file or an environment variable: never from the config file itself,
    /// which tends to end up in version control.
    fn pepper(&self, base_dir: Option<&Path>) -> Result<SecretString, ConfigError> {
        if let Some(path) = &self.pepper_file {
            // Relative to the configuration file, like every path in it.
            let mut path = path.clone();
            rebase(Some(&mut path), base_dir);
            let path = &path;
            return crate::secret::read_secret_file(path, "API key pepper").map_err(|e| {
                ConfigError::new(format!(
                    "cannot read the pepper file {}: {e}",
                    path.display()
                ))
                .with_key("api_keys.pepper_file")
            });
        }
        let var = self.pepper_env.as_deref().unwrap_or(DEFAULT_PEPPER_ENV);
        std::env::var(var).map(SecretString::new).map_err(|_| {
            ConfigError::new(format!("environment variable {var} is not set"))
                .with_key("api_keys.pepper_env")
        })
    }

    fn build(
        &self,
        store: Arc<dyn ApiKeyStore>,
        base_dir: Option<&Path>,
    ) -> Result<(ApiKeys, ApiKeyAuthenticator), ConfigError> {
        let mut builder = ApiKeys::builder(store, self.pepper(base_dir)?)
            .allow_non_expiring(self.allow_non_expiring);
        if let Some(prefix) = &self.prefix {
            builder = builder.prefix(prefix.get_ref().clone());
        }
        if let Some(cap) = &self.max_lifetime {
            builder = builder.max_lifetime(duration(cap)?);
        }
        if let Some(ttl) = &self.cache_ttl {
            builder = builder.cache_ttl(duration(ttl)?);
        }
        if let Some(n) = self.cache_capacity {
            builder = builder.cache_capacity(n);
        }
        if let Some(n) = self.negative_cache_capacity {
            builder = builder.negative_cache_capacity(n);
        }
        if let Some(watch) = self.watch_store_changes {
            builder = builder.watch_store_changes(watch);
        }
        if let Some(interval) = &self.last_used_flush_interval {
            builder = builder.last_used_flush_interval(duration(interval)?);
        }
        let manager = builder.build()?;
        let mut authenticator = manager.authenticator_builder();
        if let Some(header) = &self.header {
            authenticator = authenticator.header(header.clone());
        }
        if let Some(bearer) = self.bearer {
            authenticator = authenticator.bearer(bearer);
        }
        if let Some(realm) = &self.realm {
            authenticator = authenticator.realm(realm.clone());
        }
        if let Some(param) = &self.dangerous_query_param {
            authenticator = authenticator.dangerous_allow_query_param(param.clone());
        }
        let authenticator = authenticator.build()?;
        Ok((manager, authenticator))
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

/// A duration already checked by validation.
#[cfg(any(feature = "basic", feature = "api-key"))]
fn duration(value: &Spanned<String>) -> Result<std::time::Duration, ConfigError> {
    parse_duration(value.get_ref()).map_err(ConfigError::new)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "s", "10y", "1.5h", "-3s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_sqlite_paths_are_relative_to_the_file() {
        let dir = Some(Path::new("/etc/app"));
        assert_eq!(
            store_url("sqlite://keys.db", dir),
            "sqlite:///etc/app/keys.db"
        );
        assert_eq!(
            store_url("sqlite:keys.db", dir),
            "sqlite:///etc/app/keys.db"
        );
        for kept in [
            "sqlite:///var/lib/keys.db",
            "sqlite::memory:",
            "memory",
            "postgres://db/auth",
        ] {
            assert_eq!(store_url(kept, dir), kept);
        }
        assert_eq!(store_url("sqlite://keys.db", None), "sqlite://keys.db");
    }

    #[test]
    fn debug_never_shows_the_store_url() {
        let config =
            Config::from_str("[store]\nurl = \"postgres://app:hunter2@db.internal/auth\"\n");
        // Without feature `postgres` the URL is refused, and the message must not show it either.
        let shown = match config {
            Ok(config) => format!("{config:?}"),
            Err(e) => e.to_string(),
        };
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("db.internal"), "{shown}");
    }

    #[cfg(feature = "basic")]
    #[test]
    fn debug_never_shows_an_inline_password_hash() {
        let phc = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQxMjM0NTY$\
                   2J0kUHMsUy8ZbaKKqZHzcsvvVqQJ1G9TlTxKSOB1PvE";
        let config = Config::from_str(&format!(
            "[basic]\n[[basic.users]]\nname = \"alice\"\npassword_hash = \"{phc}\"\n"
        ))
        .expect("config");
        let shown = format!("{config:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("c29tZXNhbHQxMjM0NTY"), "{shown}");
        assert!(!shown.contains("argon2id"), "{shown}");
    }

    #[cfg(all(feature = "api-key", feature = "jwt"))]
    #[test]
    fn credential_locations_follow_the_configuration() {
        let none = Config::from_str("").expect("empty config");
        assert_eq!(none.credential_headers(), ["authorization"]);
        assert!(none.credential_query_params().is_empty());

        let defaults = Config::from_str("[api_keys]\n").expect("config");
        assert_eq!(
            defaults.credential_headers(),
            ["authorization", "X-API-Key"]
        );
        assert!(defaults.credential_query_params().is_empty());

        let kong_like = Config::from_str(concat!(
            "[api_keys]\nheader = \"apikey\"\ndangerous_query_param = \"apikey\"\n",
            "[jwt]\naudiences = [\"api\"]\ndangerous_allow_query_token = true\n",
            "[[jwt.issuers]]\nissuer = \"https://issuer.test\"\nsecret_file = \"unused.key\"\n",
        ))
        .expect("config");
        assert_eq!(kong_like.credential_headers(), ["authorization", "apikey"]);
        assert_eq!(
            kong_like.credential_query_params(),
            ["apikey", "access_token"]
        );
    }

    /// A section for a scheme this build leaves out is refused where it is written, never
    /// silently ignored (which would, for `[basic]`, leave every route it guards to the others).
    #[cfg(not(all(
        feature = "basic",
        feature = "api-key",
        feature = "jwt",
        feature = "introspection"
    )))]
    #[test]
    fn a_compiled_out_section_is_refused_where_it_is_written() {
        let sections = [
            (cfg!(feature = "basic"), "basic", "basic", "realm = \"x\"\n"),
            (
                cfg!(feature = "api-key"),
                "api_keys",
                "api-key",
                "prefix = \"pc\"\n",
            ),
            (
                cfg!(feature = "jwt"),
                "jwt",
                "jwt",
                "audiences = [\"api\"]\n",
            ),
            (
                cfg!(feature = "introspection"),
                "introspection",
                "introspection",
                "endpoint = \"https://issuer.test/introspect\"\n",
            ),
        ];
        for (_, section, feature, body) in sections.iter().filter(|(on, ..)| !on) {
            let text = format!("[gate]\ndefault_policy = \"public\"\n\n[{section}]\n{body}");
            let error = Config::from_str(&text).expect_err(section);
            assert_eq!(error.key(), Some(*section), "{error}");
            let location = error.location().expect("located");
            assert_eq!((location.line, location.column), (4, 2), "{error}");
            assert!(
                error.message().contains(&format!(
                    "`[{section}]` needs portcullis's `{feature}` feature"
                )),
                "{error}"
            );
            // From a file, the error names it too.
            let path = std::env::temp_dir().join(format!(
                "portcullis-compiled-out-{section}-{}.toml",
                std::process::id()
            ));
            std::fs::write(&path, &text).expect("write the config");
            let error = Config::from_file(&path).expect_err(section);
            std::fs::remove_file(&path).expect("remove the config");
            let location = error.location().expect("located");
            assert_eq!(location.file.as_deref(), Some(path.as_path()), "{error}");
            assert_eq!((location.line, location.column), (4, 2), "{error}");
        }
    }

    #[cfg(all(feature = "basic", not(feature = "redis")))]
    #[test]
    fn a_redis_lockout_store_without_the_feature_is_refused() {
        let error = Config::from_str("[basic]\n[basic.lockout]\nstore = \"redis://127.0.0.1\"\n")
            .expect_err("redis is compiled out");
        assert_eq!(error.key(), Some("basic.lockout.store"), "{error}");
        assert_eq!(error.location().map(|l| l.line), Some(3), "{error}");
        assert!(error.message().contains("`redis` feature"), "{error}");
    }
}
