//! The file's shape: the top-level tables, `[policies]` and `[[routes]]` as serde reads them.

use super::*;
// ---- the file's shape -------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) gate: RawGate,
    pub(super) store: Option<RawStore>,
    #[cfg(feature = "basic")]
    pub(super) basic: Option<RawBasic>,
    #[cfg(not(feature = "basic"))]
    pub(super) basic: Option<CompiledOut>,
    #[cfg(feature = "api-key")]
    pub(super) api_keys: Option<RawApiKeys>,
    #[cfg(not(feature = "api-key"))]
    pub(super) api_keys: Option<CompiledOut>,
    #[cfg(feature = "jwt")]
    pub(super) jwt: Option<JwtSettings>,
    #[cfg(not(feature = "jwt"))]
    pub(super) jwt: Option<CompiledOut>,
    #[cfg(feature = "introspection")]
    pub(super) introspection: Option<IntrospectionSettings>,
    #[cfg(not(feature = "introspection"))]
    pub(super) introspection: Option<CompiledOut>,
    #[cfg(feature = "self-service")]
    pub(super) self_service: Option<RawSelfService>,
    #[cfg(not(feature = "self-service"))]
    pub(super) self_service: Option<CompiledOut>,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, RawPolicy>,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    #[serde(default)]
    pub(super) gateway: RawGateway,
}

/// A section whose scheme is compiled out: read (so that it is not an unknown key) only to be
/// refused by [`RawConfig::refuse_compiled_out`], never silently ignored.
#[cfg(not(all(
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection",
    feature = "self-service"
)))]
pub(super) type CompiledOut = serde::de::IgnoredAny;

impl RawConfig {
    /// Refuses a section (`[jwt]`) whose feature (`jwt`) this build of portcullis leaves out.
    /// The error names the section's key; [`Spans::locate_error`] places it at the table's name.
    pub(super) fn refuse_compiled_out(&self) -> Result<(), ConfigError> {
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
        #[cfg(not(feature = "self-service"))]
        if self.self_service.is_some() {
            return Err(needs_feature("self_service", "self-service"));
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
    feature = "redis",
    feature = "self-service"
)))]
pub(super) fn needs_feature(key: &str, feature: &str) -> ConfigError {
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
pub(super) struct RawGateway {
    #[serde(default)]
    pub(super) upstream_paths: UpstreamPaths,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    pub(super) default_policy: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) trusted_proxies: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) client_cert_proxies: Vec<Spanned<String>>,
    pub(super) forwarded_header: Option<Spanned<String>>,
    pub(super) max_forwarded_entries: Option<usize>,
    pub(super) max_path_bytes: Option<Spanned<usize>>,
    pub(super) audit_allowed_level: Option<Spanned<String>>,
    pub(super) public_origin: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) authenticated: Option<bool>,
    pub(super) anonymous: Option<bool>,
    pub(super) groups_any: Option<Vec<String>>,
    pub(super) groups_all: Option<Vec<String>>,
    pub(super) scopes_any: Option<Vec<String>>,
    pub(super) scopes_all: Option<Vec<String>>,
    pub(super) kind: Option<SubjectKind>,
    pub(super) schemes_allow: Option<Vec<Spanned<String>>>,
    pub(super) schemes_deny: Option<Vec<Spanned<String>>>,
    pub(super) ip_allow: Option<Vec<Spanned<String>>>,
    pub(super) ip_deny: Option<Vec<Spanned<String>>>,
    pub(super) max_lifetime: Option<BTreeMap<String, Spanned<DurationSetting>>>,
    pub(super) allow_non_expiring: Option<bool>,
    pub(super) all: Option<Vec<Spanned<String>>>,
    pub(super) any: Option<Vec<Spanned<String>>>,
    pub(super) not: Option<Spanned<String>>,
    pub(super) sender_constrained: Option<bool>,
    #[serde(default)]
    pub(super) report_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) path: Spanned<String>,
    #[serde(default)]
    pub(super) methods: Vec<Spanned<String>>,
    pub(super) policy: Spanned<String>,
}
