//! The `[introspection]` section: its TOML shape and how it becomes an
//! [`IntrospectionAuthenticator`].

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::duration::DurationSetting;
use super::{mapping, read_secret};
use crate::error::ConfigError;
use crate::jwt::{
    ClientAuth, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, HttpClient, IntrospectionAuthenticator,
    IntrospectionAuthenticatorBuilder,
};
#[cfg(feature = "api-key")]
use crate::key_format::KeyFormat;
use crate::secret::SecretString;

/// How the service authenticates to the introspection endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ClientAuthMethod {
    /// HTTP Basic (`client_secret_basic`). The default.
    #[default]
    ClientSecretBasic,
    /// Form parameters (`client_secret_post`).
    ClientSecretPost,
    /// A bearer token of the service's own (`client_token_file` or `client_token_env`) instead
    /// of a client id and secret.
    Bearer,
}

/// The `[introspection]` section: an [`IntrospectionAuthenticator`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IntrospectionSettings {
    /// The introspection endpoint (`https`, or `http` to a loopback address).
    pub(crate) endpoint: String,
    /// This service's client id at the authorization server. Required unless `auth_method` is
    /// `bearer`.
    #[serde(default)]
    pub(crate) client_id: String,
    /// A file holding the client secret (trailing line endings are ignored). Required unless
    /// `auth_method` is `bearer`.
    #[serde(default)]
    pub(crate) client_secret_file: PathBuf,
    /// How the client authenticates. Defaults to `client_secret_basic`.
    #[serde(default)]
    pub(crate) auth_method: ClientAuthMethod,
    /// With `auth_method = "bearer"`: a file holding the service's own token (trailing line
    /// endings are ignored).
    pub(crate) client_token_file: Option<PathBuf>,
    /// With `auth_method = "bearer"`: the environment variable holding the service's own token.
    pub(crate) client_token_env: Option<String>,
    /// The realm in the `Bearer` challenge. Defaults to `api`.
    pub(crate) realm: Option<String>,
    /// Require the answer's `iss` to be this (set it when the endpoint may answer for more
    /// than one issuer; see [`IntrospectionAuthenticatorBuilder::issuer`]). Defaults to no check.
    ///
    /// [`IntrospectionAuthenticatorBuilder::issuer`]: crate::jwt::IntrospectionAuthenticatorBuilder::issuer
    pub(crate) issuer: Option<String>,
    /// Require the answer's `aud` to name one of these. At least one, unless
    /// `dangerous_skip_audience_check`.
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    /// Accept an answer whatever its `aud`. Dangerous: tokens issued to other services, and
    /// refresh tokens without a `token_type`, authenticate. Defaults to `false`.
    #[serde(default)]
    pub(crate) dangerous_skip_audience_check: bool,
    /// Clock skew allowed on `exp`, `nbf`, `iat`. Defaults to `30s`.
    pub(crate) leeway: Option<DurationSetting>,
    /// How long an answer is reused (never past the token's `exp`); also how long a revoked
    /// token keeps working. Defaults to `60s`.
    pub(crate) cache_ttl: Option<DurationSetting>,
    /// How many answers are cached. Defaults to 10000.
    pub(crate) cache_capacity: Option<usize>,
    /// How many `active: false` answers are cached, apart from active ones. Defaults to 10000.
    pub(crate) inactive_cache_capacity: Option<usize>,
    /// The most calls to the endpoint in flight at once. Defaults to 32.
    pub(crate) max_concurrent: Option<usize>,
    /// How long a check waits for a free call slot before it is refused with 503. Defaults to
    /// `1s`.
    pub(crate) max_wait: Option<DurationSetting>,
    /// Timeout of one call. Defaults to `5s`.
    pub(crate) timeout: Option<DurationSetting>,
    /// Largest answer read, in bytes. Defaults to 65536.
    pub(crate) max_response_size: Option<usize>,
    /// Largest token accepted, in bytes. Defaults to 8192.
    pub(crate) max_token_size: Option<usize>,
    /// Claims (dotted paths) the principal's groups come from. Defaults to `["groups"]`.
    pub(crate) groups_claims: Option<Vec<String>>,
    /// The prefix of API keys, which are left to the API-key authenticator. Defaults to
    /// `[api_keys] prefix` in a configuration file that has one, else `pc`. Refused without the
    /// `api-key` feature, where every non-JWT bearer token is introspected.
    pub(crate) api_key_prefix: Option<String>,
    /// Also introspect JWT-shaped tokens. Defaults to `false`.
    #[serde(default)]
    pub(crate) introspect_jwt_shaped: bool,
    /// Also introspect API-key-shaped tokens (for a service with no API keys of its own);
    /// excludes `api_key_prefix`. Defaults to `false`.
    #[serde(default)]
    pub(crate) introspect_api_key_shaped: bool,
    /// Also read tokens from the `access_token` query parameter. Dangerous. Defaults to `false`.
    #[serde(default)]
    pub(crate) dangerous_allow_query_token: bool,
    /// DPoP (RFC 9449): `allowed`, `required` or `disabled`; proofs are checked by the
    /// `[jwt.dpop]` rules when there is such a section. Defaults to `allowed`. Needs the `jwt`
    /// feature for anything but `disabled`.
    #[cfg(feature = "jwt")]
    pub(crate) dpop: Option<crate::jwt::dpop::DpopMode>,
    #[cfg(not(feature = "jwt"))]
    pub(crate) dpop: Option<String>,
    /// Certificate binding (RFC 8705): `allowed`, `required` or `disabled`. Defaults to
    /// `allowed`.
    pub(crate) certificate_binding: Option<crate::jwt::mtls::CertificateBindingMode>,
}

impl IntrospectionSettings {
    /// Checks what can be checked without reading a file or the network: that the credentials
    /// fit `auth_method` here, every other rule through the builder's own check. Errors name the
    /// key.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        #[cfg(not(feature = "jwt"))]
        if self.dpop.as_deref().is_some_and(|mode| mode != "disabled") {
            return Err(ConfigError::new(
                "DPoP proofs are verified with the `jwt` feature, which this build leaves out; \
                 set `dpop = \"disabled\"` or enable it",
            )
            .with_key("introspection.dpop"));
        }
        let secret_given =
            !self.client_id.is_empty() || !self.client_secret_file.as_os_str().is_empty();
        match self.auth_method {
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
                if self.client_id.is_empty() {
                    return Err(
                        ConfigError::new("required unless `auth_method = \"bearer\"`")
                            .with_key("introspection.client_id"),
                    );
                }
                if self.client_secret_file.as_os_str().is_empty() {
                    return Err(
                        ConfigError::new("required unless `auth_method = \"bearer\"`")
                            .with_key("introspection.client_secret_file"),
                    );
                }
                if self.client_token_file.is_some() || self.client_token_env.is_some() {
                    return Err(ConfigError::new(
                        "a client token goes with `auth_method = \"bearer\"`",
                    )
                    .with_key("introspection.auth_method"));
                }
            }
            ClientAuthMethod::Bearer => {
                if secret_given {
                    return Err(ConfigError::new(
                        "`bearer` sends a token, not a client id and secret",
                    )
                    .with_key("introspection.auth_method"));
                }
                if self.client_token_file.is_some() == self.client_token_env.is_some() {
                    return Err(ConfigError::new(
                        "give client_token_file or client_token_env (one of them)",
                    )
                    .with_key("introspection.auth_method"));
                }
            }
        }
        if let Some(prefix) = &self.api_key_prefix {
            if self.introspect_api_key_shaped {
                return Err(ConfigError::new(
                    "give api_key_prefix or introspect_api_key_shaped, not both",
                )
                .with_key("introspection.introspect_api_key_shaped"));
            }
            api_key_format(prefix)?;
        }
        // Every other rule is the builder's: it checks them here with a stand-in credential, so
        // that no file is read.
        let stand_in = SecretString::new("stand-in".to_owned());
        let auth = match self.auth_method {
            ClientAuthMethod::Bearer => ClientAuth::Bearer(stand_in),
            _ => ClientAuth::basic(self.client_id.clone(), stand_in),
        };
        self.builder(auth, None)?
            .check()
            .map_err(|e| e.in_section("introspection"))
    }

    /// Builds the authenticator with `client`, or the default one when `None`.
    pub(crate) fn build_with_client(
        &self,
        client: Option<Arc<dyn HttpClient>>,
        #[cfg(feature = "jwt")] dpop: Option<crate::jwt::dpop::DpopSettings>,
    ) -> Result<IntrospectionAuthenticator, ConfigError> {
        self.validate()?;
        #[allow(unused_mut, reason = "DPoP settings only with the `jwt` feature")]
        let mut builder = self.builder(self.client_auth()?, client)?;
        #[cfg(feature = "jwt")]
        {
            if let Some(mode) = self.dpop {
                builder = builder.dpop_mode(mode);
            }
            if let Some(dpop) = dpop {
                builder = builder.dpop(dpop);
            }
        }
        builder.build().map_err(|e| e.in_section("introspection"))
    }

    /// The builder these settings describe, with `auth` and `client`.
    fn builder(
        &self,
        auth: ClientAuth,
        client: Option<Arc<dyn HttpClient>>,
    ) -> Result<IntrospectionAuthenticatorBuilder, ConfigError> {
        let mut builder = IntrospectionAuthenticator::builder(self.endpoint.clone(), auth)
            .audiences(self.audiences.iter().cloned())
            .introspect_jwt_shaped(self.introspect_jwt_shaped);
        if let Some(realm) = &self.realm {
            builder = builder.realm(realm.clone());
        }
        if let Some(mode) = self.certificate_binding {
            builder = builder.certificate_binding(mode);
        }
        if let Some(issuer) = &self.issuer {
            builder = builder.issuer(issuer.clone());
        }
        if let Some(leeway) = self.leeway {
            builder = builder.leeway(leeway.get());
        }
        let ttl = self
            .cache_ttl
            .map_or(DEFAULT_CACHE_TTL, DurationSetting::get);
        builder = builder.cache(ttl, self.cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY));
        if let Some(capacity) = self.inactive_cache_capacity {
            builder = builder.inactive_cache_capacity(capacity);
        }
        if let Some(requests) = self.max_concurrent {
            builder = builder.max_concurrent(requests);
        }
        if let Some(wait) = self.max_wait {
            builder = builder.max_wait(wait.get());
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout.get());
        }
        if let Some(size) = self.max_response_size {
            builder = builder.max_response_size(size);
        }
        if let Some(size) = self.max_token_size {
            builder = builder.max_token_size(size);
        }
        if let Some(paths) = &self.groups_claims {
            builder = builder.claims(mapping(paths));
        }
        // Without the `api-key` feature every non-JWT token is introspected: `validate` refused
        // `api_key_prefix`, and `introspect_api_key_shaped` is what happens anyway.
        #[cfg(feature = "api-key")]
        {
            if let Some(prefix) = &self.api_key_prefix {
                builder = builder.api_key_format(Some(api_key_format(prefix)?));
            }
            if self.introspect_api_key_shaped {
                builder = builder.api_key_format(None);
            }
        }
        if self.dangerous_allow_query_token {
            builder = builder.dangerous_allow_query_token();
        }
        if self.dangerous_skip_audience_check {
            builder = builder.dangerous_skip_audience_check();
        }
        if let Some(client) = client {
            builder = builder.http_client(client);
        }
        Ok(builder)
    }
}

impl IntrospectionSettings {
    /// How the service authenticates to the endpoint, its secret read from where the file says.
    fn client_auth(&self) -> Result<ClientAuth, ConfigError> {
        let secret = || {
            read_secret(&self.client_secret_file, "client secret")
                .map_err(|e| e.with_key("introspection.client_secret_file"))
        };
        Ok(match self.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                ClientAuth::basic(self.client_id.clone(), secret()?)
            }
            ClientAuthMethod::ClientSecretPost => {
                ClientAuth::post(self.client_id.clone(), secret()?)
            }
            ClientAuthMethod::Bearer => ClientAuth::Bearer(self.client_token()?),
        })
    }

    /// The service's own token, from the file or the environment variable `validate` checked
    /// is given: never from the configuration file itself.
    fn client_token(&self) -> Result<SecretString, ConfigError> {
        if let Some(path) = &self.client_token_file {
            return read_secret(path, "client token")
                .map_err(|e| e.with_key("introspection.client_token_file"));
        }
        let var = self.client_token_env.as_deref().unwrap_or_default();
        match std::env::var(var) {
            Ok(token) if !token.is_empty() => Ok(SecretString::new(token)),
            _ => Err(
                ConfigError::new(format!("environment variable {var} is not set or empty"))
                    .with_key("introspection.client_token_env"),
            ),
        }
    }
}

/// The key format `[introspection] api_key_prefix` names.
#[cfg(all(feature = "introspection", feature = "api-key"))]
pub(super) fn api_key_format(prefix: &str) -> Result<KeyFormat, ConfigError> {
    KeyFormat::new(prefix).map_err(|e| {
        ConfigError::new(e.message().to_owned()).with_key("introspection.api_key_prefix")
    })
}

/// Without the `api-key` feature there are no API keys to leave to another authenticator.
#[cfg(all(feature = "introspection", not(feature = "api-key")))]
pub(super) fn api_key_format(_prefix: &str) -> Result<(), ConfigError> {
    Err(ConfigError::new(
        "`introspection.api_key_prefix` needs portcullis's `api-key` feature, which this build \
         leaves out",
    )
    .with_key("introspection.api_key_prefix"))
}
