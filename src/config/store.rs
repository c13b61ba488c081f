//! The `[store]` section: which credential store to open, and where.

use super::*;
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) url: Spanned<String>,
    #[serde(default)]
    pub(super) dangerous_allow_unverified_tls: bool,
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
    pub(super) fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
        check_store_url(self.url.get_ref())
            .map_err(|e| spans.error(&self.url, "store.url", e.to_string()))
    }
}

pub(super) async fn open_stores(
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
pub(super) fn store_url(url: &str, base_dir: Option<&Path>) -> String {
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
