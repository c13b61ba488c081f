//! The `[self_service]` section: self-served API tokens' rules, checked against `[api_keys]`
//! as the file is read, and built into a [`SelfService`] beside the Gate.

use super::*;
use crate::self_service::SelfService;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelfService {
    pub(super) max_lifetime: Option<Spanned<DurationSetting>>,
    pub(super) default_lifetime: Option<Spanned<DurationSetting>>,
    pub(super) max_tokens_per_user: Option<Spanned<usize>>,
    pub(super) max_name_len: Option<Spanned<usize>>,
    #[serde(default)]
    pub(super) scope_allowlist: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_key_principals: bool,
    /// The page's form-token secret, shared by every instance of one origin; relative to the
    /// configuration file. Without it, a random key per process.
    pub(super) form_key_file: Option<PathBuf>,
}

impl RawSelfService {
    /// What can be checked without building: an `[api_keys]` section to issue through, and
    /// `max_lifetime` within its cap, each error at its key's line.
    pub(super) fn validate(
        &self,
        api_keys: Option<&RawApiKeys>,
        spans: &Spans<'_>,
    ) -> Result<(), ConfigError> {
        let Some(api_keys) = api_keys else {
            return Err(ConfigError::new(
                "needs an `[api_keys]` section: self-served tokens are API keys",
            )
            .with_key("self_service"));
        };
        let keys_cap = api_keys.max_lifetime.map(DurationSetting::get);
        if let (Some(cap), Some(keys_cap)) = (&self.max_lifetime, keys_cap)
            && cap.get_ref().get() > keys_cap
        {
            return Err(spans.error(
                cap,
                "self_service.max_lifetime",
                format!(
                    "longer than `[api_keys] max_lifetime` ({}s): a self-served token cannot \
                     outlive what the API keys allow",
                    keys_cap.as_secs()
                ),
            ));
        }
        // The rest is the builder's, run now so that the error points at its line.
        crate::self_service::check_limits(
            keys_cap,
            self.max_lifetime.as_ref().map(|d| d.get_ref().get()),
            self.default_lifetime.as_ref().map(|d| d.get_ref().get()),
            self.max_tokens_per_user
                .as_ref()
                .map_or(crate::self_service::DEFAULT_MAX_TOKENS, |n| *n.get_ref()),
            self.max_name_len
                .as_ref()
                .map_or(crate::self_service::DEFAULT_MAX_NAME_LEN, |n| *n.get_ref()),
            self.scope_allowlist.iter().map(|s| s.get_ref().as_str()),
        )
        .map(|_| ())
        .map_err(|err| {
            let at = match err.key().unwrap_or_default() {
                "max_lifetime" => self.max_lifetime.as_ref().map(Spanned::span),
                "default_lifetime" => self.default_lifetime.as_ref().map(Spanned::span),
                "max_tokens_per_user" => self.max_tokens_per_user.as_ref().map(Spanned::span),
                "max_name_len" => self.max_name_len.as_ref().map(Spanned::span),
                "scope_allowlist" => self.scope_allowlist.first().map(Spanned::span),
                _ => None,
            };
            let error = err.in_section("self_service");
            match at {
                Some(span) => error.with_location(spans.locate(Some(span))),
                None => error,
            }
        })
    }

    /// The service over `keys`, with `[gate] public_origin` for the CSRF check.
    pub(super) fn build(
        &self,
        keys: ApiKeys,
        public_origin: Option<&str>,
        base_dir: Option<&Path>,
    ) -> Result<SelfService, ConfigError> {
        let mut builder = self.builder(keys, public_origin);
        if let Some(path) = &self.form_key_file {
            let mut path = path.clone();
            rebase(Some(&mut path), base_dir);
            let secret = crate::secret::read_secret_file(&path, "form key").map_err(|e| {
                ConfigError::new(format!(
                    "cannot read the form key file {}: {e}",
                    path.display()
                ))
                .with_key("self_service.form_key_file")
            })?;
            if secret.expose_secret().len() < crate::self_service::MIN_FORM_KEY_LEN {
                return Err(ConfigError::new(format!(
                    "the form key file {} holds fewer than {} bytes",
                    path.display(),
                    crate::self_service::MIN_FORM_KEY_LEN
                ))
                .with_key("self_service.form_key_file"));
            }
            builder = builder.form_key(secret);
        }
        builder.build().map_err(|e| e.in_section("self_service"))
    }

    fn builder(
        &self,
        keys: ApiKeys,
        public_origin: Option<&str>,
    ) -> crate::self_service::SelfServiceBuilder {
        let mut builder = SelfService::builder(keys)
            .scope_allowlist(self.scope_allowlist.iter().map(|s| s.get_ref().clone()))
            .allow_key_principals(self.allow_key_principals);
        if let Some(cap) = &self.max_lifetime {
            builder = builder.max_lifetime(cap.get_ref().get());
        }
        if let Some(lifetime) = &self.default_lifetime {
            builder = builder.default_lifetime(lifetime.get_ref().get());
        }
        if let Some(n) = &self.max_tokens_per_user {
            builder = builder.max_tokens_per_user(*n.get_ref());
        }
        if let Some(n) = &self.max_name_len {
            builder = builder.max_name_len(*n.get_ref());
        }
        if let Some(origin) = public_origin {
            builder = builder.public_origin(origin);
        }
        builder
    }
}
