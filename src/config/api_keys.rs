//! The `[api_keys]` section: its TOML shape and how it becomes the key manager and authenticator.

use super::*;
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKeys {
    pub(super) pepper_env: Option<String>,
    pub(super) pepper_file: Option<PathBuf>,
    pub(super) prefix: Option<Spanned<String>>,
    pub(super) header: Option<String>,
    pub(super) bearer: Option<bool>,
    pub(super) realm: Option<String>,
    pub(super) max_lifetime: Option<DurationSetting>,
    #[serde(default)]
    pub(super) allow_non_expiring: bool,
    pub(super) cache_ttl: Option<DurationSetting>,
    pub(super) cache_capacity: Option<usize>,
    pub(super) negative_cache_capacity: Option<usize>,
    pub(super) watch_store_changes: Option<bool>,
    pub(super) last_used_flush_interval: Option<DurationSetting>,
    pub(super) dangerous_query_param: Option<String>,
}

#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
/// The environment variable read for the API key pepper when the file names none.
pub const DEFAULT_PEPPER_ENV: &str = "PORTCULLIS_API_KEY_PEPPER";

impl RawApiKeys {
    pub(super) fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
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
    pub(super) fn pepper(&self, base_dir: Option<&Path>) -> Result<SecretString, ConfigError> {
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

    pub(super) fn build(
        &self,
        stores: &Stores,
        base_dir: Option<&Path>,
    ) -> Result<(ApiKeys, ApiKeyAuthenticator), ConfigError> {
        // Self-served keys' owners are the `[store]`'s users, the ones Basic logs in.
        let mut builder = ApiKeys::builder(Arc::clone(&stores.api_keys), self.pepper(base_dir)?)
            .owners(Arc::clone(&stores.users))
            .allow_non_expiring(self.allow_non_expiring);
        if let Some(prefix) = &self.prefix {
            builder = builder.prefix(prefix.get_ref().clone());
        }
        if let Some(cap) = self.max_lifetime {
            builder = builder.max_lifetime(cap.get());
        }
        if let Some(ttl) = self.cache_ttl {
            builder = builder.cache_ttl(ttl.get());
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
        if let Some(interval) = self.last_used_flush_interval {
            builder = builder.last_used_flush_interval(interval.get());
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
