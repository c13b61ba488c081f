//! The `[jwt]` section: its TOML shape and how it becomes a [`JwtAuthenticator`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::duration::{DurationSetting, LifetimeCap};
use super::{mapping, read_secret};
use crate::error::ConfigError;
use crate::jwt::dpop::{DpopMode, DpopSettings, MemoryReplayCache, ReplayCache};
use crate::jwt::mtls::CertificateBindingMode;
use crate::jwt::{
    Algorithm, JwksCacheConfig, JwtAuthenticator, JwtAuthenticatorBuilder, KeySet, KeySource,
    VerifyingKey,
};

/// The `[jwt]` section: a [`JwtAuthenticator`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JwtSettings {
    /// The realm in the `Bearer` challenge. Defaults to `api`.
    pub(crate) realm: Option<String>,
    /// The trusted issuers, each with its key source. At least one.
    #[serde(default)]
    pub(crate) issuers: Vec<IssuerSettings>,
    /// The accepted audiences (`aud`). At least one.
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    /// The accepted algorithms. Defaults to every public-key algorithm plus those of the static
    /// HMAC secrets.
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, e.g. `30s`. Defaults to `30s`.
    pub(crate) leeway: Option<DurationSetting>,
    /// Claims every token must carry. Defaults to `["exp", "iss", "aud"]`.
    pub(crate) required_claims: Option<Vec<String>>,
    /// The required header `typ`, e.g. `at+jwt`. Defaults to none (any).
    pub(crate) typ: Option<String>,
    /// The largest token accepted, in bytes. Defaults to 8192.
    pub(crate) max_token_size: Option<usize>,
    /// The longest `kid` accepted, in bytes. Defaults to 256.
    pub(crate) max_kid_len: Option<usize>,
    /// The longest token lifetime accepted, e.g. `1h`, or `none` for no cap. Defaults to `24h`.
    pub(crate) max_lifetime: Option<LifetimeCap>,
    /// Claims (dotted paths) the principal's groups come from. Defaults to `["groups"]`.
    pub(crate) groups_claims: Option<Vec<String>>,
    /// Also read tokens from the `access_token` query parameter. Dangerous (tokens end up in
    /// logs). Defaults to `false`.
    #[serde(default)]
    pub(crate) dangerous_allow_query_token: bool,
    /// Accept any audience. Dangerous: tokens for other services are accepted. Defaults to
    /// `false`.
    #[serde(default)]
    pub(crate) dangerous_skip_audience_check: bool,
    /// How remote key sets are fetched and cached.
    pub(crate) jwks: Option<JwksSettings>,
    /// `[jwt.dpop]`: the rules for DPoP proofs (RFC 9449), for this section's issuers and for
    /// `[introspection]`.
    pub(crate) dpop: Option<DpopToml>,
}

/// `[jwt.dpop]`: how DPoP proofs are checked and where seen proofs are remembered.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DpopToml {
    /// How long after its `iat` a proof is accepted. Defaults to `60s`.
    pub(crate) max_age: Option<DurationSetting>,
    /// How far in the future a proof's `iat` may be. Defaults to `5s`.
    pub(crate) max_future_skew: Option<DurationSetting>,
    /// The proof algorithms accepted (public-key ones only). Defaults to ES256, ES384, RS256,
    /// PS256, PS384, EdDSA.
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    /// `memory` or a Redis URL (`redis://`, `rediss://`). Defaults to `memory`.
    pub(crate) replay_store: Option<String>,
    /// The most proofs the memory replay store holds. Defaults to 100000.
    pub(crate) replay_capacity: Option<usize>,
    /// Namespace of the Redis replay store's keys. Defaults to none.
    pub(crate) redis_key_prefix: Option<String>,
    /// The CA file for a `rediss://` replay store. Defaults to the system's roots.
    pub(crate) redis_ca_file: Option<PathBuf>,
    /// Accept proofs without remembering them while the Redis replay store is unreachable
    /// (instead of 503). Dangerous: a captured proof can then be replayed. Defaults to `false`.
    #[serde(default)]
    pub(crate) dangerous_accept_when_replay_store_down: bool,
    /// Require a server nonce in proofs (`use_dpop_nonce`). Defaults to `false`.
    #[serde(default)]
    pub(crate) use_dpop_nonce: bool,
    /// How long a nonce is accepted. Defaults to `5m`.
    pub(crate) nonce_lifetime: Option<DurationSetting>,
    /// A file holding the nonce key (at least 32 bytes), the same on every instance. Defaults
    /// to a random key per process.
    pub(crate) nonce_secret_file: Option<PathBuf>,
    /// The largest `DPoP` header accepted, in bytes. Defaults to 8192.
    pub(crate) max_proof_bytes: Option<usize>,
}

/// One `[[jwt.issuers]]` entry: the issuer and exactly one key source.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuerSettings {
    /// The issuer, compared exactly with the token's `iss`.
    pub(crate) issuer: String,
    /// Find the keys through OpenID Connect discovery from the issuer URL. Defaults to `false`.
    #[serde(default)]
    pub(crate) discovery: bool,
    /// A JWKS URL (`https`, or `http` to a loopback address).
    pub(crate) jwks_url: Option<String>,
    /// A JWKS file (read once, at build).
    pub(crate) jwks_file: Option<PathBuf>,
    /// A PEM public key file; needs `algorithm`.
    pub(crate) pem_file: Option<PathBuf>,
    /// A file holding an HMAC secret (its text; trailing line endings are ignored). `algorithm`
    /// defaults to `HS256`.
    pub(crate) secret_file: Option<PathBuf>,
    /// The algorithm of `pem_file` or `secret_file`.
    pub(crate) algorithm: Option<Algorithm>,
    /// The `kid` of the `pem_file` or `secret_file` key. Defaults to none (the key serves tokens
    /// without a matching `kid`).
    pub(crate) kid: Option<String>,
    /// This issuer's DPoP mode: `allowed`, `required` or `disabled`. Defaults to `allowed`.
    pub(crate) dpop: Option<DpopMode>,
    /// This issuer's certificate binding (RFC 8705): `allowed`, `required` or `disabled`.
    /// Defaults to `allowed`.
    pub(crate) certificate_binding: Option<CertificateBindingMode>,
}

/// `[jwt.jwks]`: how remote key sets are fetched and cached (see [`JwksCacheConfig`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JwksSettings {
    /// Age at which a key set is fetched again. Defaults to `5m`.
    pub(crate) refresh_interval: Option<DurationSetting>,
    /// Least time between fetches caused by unknown `kid`s. Defaults to `30s`.
    pub(crate) unknown_kid_cooldown: Option<DurationSetting>,
    /// Wait after a failed fetch. Defaults to `5s`.
    pub(crate) retry_interval: Option<DurationSetting>,
    /// Timeout of one fetch. Defaults to `5s`.
    pub(crate) fetch_timeout: Option<DurationSetting>,
    /// Largest document read, in bytes. Defaults to 262144.
    pub(crate) max_response_size: Option<usize>,
    /// How long after the last successful fetch (discovery included) a key set still serves
    /// while fetches fail; past it, the issuer's tokens get 503. Longer than `refresh_interval`.
    /// Defaults to `24h`.
    pub(crate) max_stale: Option<DurationSetting>,
    /// Serve the last good key set for as long as fetches fail, with no limit. Dangerous: a key
    /// the provider removed keeps working while the provider is unreachable. Excludes
    /// `max_stale`. Defaults to `false`.
    #[serde(default)]
    pub(crate) dangerous_serve_stale_keys_forever: bool,
}

impl JwtSettings {
    /// The builder these settings describe, to add what a file cannot say (an HTTP client).
    pub(crate) fn builder(&self) -> Result<JwtAuthenticatorBuilder, ConfigError> {
        let mut builder = self.builder_without_issuers()?;
        for (i, issuer) in self.issuers.iter().enumerate() {
            let source = issuer.source(&format!("jwt.issuers[{i}]"))?;
            builder = builder.issuer(issuer.issuer.clone(), source);
            if let Some(mode) = issuer.dpop {
                builder = builder.issuer_dpop_mode(issuer.issuer.clone(), mode);
            }
            if let Some(mode) = issuer.certificate_binding {
                builder = builder.issuer_certificate_binding(issuer.issuer.clone(), mode);
            }
        }
        Ok(builder)
    }

    /// The key of the first setting that turns DPoP on explicitly (and so needs
    /// `[gate] public_origin`): `[jwt.dpop]`, or an issuer's `dpop` other than `disabled`.
    pub(crate) fn explicit_dpop_key(&self) -> Option<String> {
        if self.dpop.is_some() {
            return Some("jwt.dpop".to_owned());
        }
        self.issuers
            .iter()
            .position(|i| i.dpop.is_some_and(|mode| mode != DpopMode::Disabled))
            .map(|i| format!("jwt.issuers[{i}].dpop"))
    }

    /// `[jwt.dpop]` as settings, its replay store opened (without connecting) and its nonce key
    /// read; `None` without the section (the defaults apply).
    pub(crate) fn dpop_settings(
        &self,
        base: Option<&Path>,
    ) -> Result<Option<DpopSettings>, ConfigError> {
        let Some(toml) = &self.dpop else {
            return Ok(None);
        };
        toml.settings(base).map(Some)
    }

    /// Checks what can be checked without reading a file or the network: here, what only the
    /// file can get wrong (one key source per issuer, `algorithm` and `kid` where they belong);
    /// every other rule through [`JwtAuthenticatorBuilder`]'s own check. The key files are read
    /// at build. Errors name the key (`jwt.max_lifetime`).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut builder = self.builder_without_issuers()?;
        let mut static_algorithms = Vec::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            issuer.check(&format!("jwt.issuers[{i}]"))?;
            if let Some(algorithm) = issuer.static_algorithm() {
                static_algorithms.push((i, algorithm));
            }
            builder = builder.issuer(issuer.issuer.clone(), issuer.stand_in_source());
        }
        // Every other rule is the builder's own, given the algorithms the file declares for
        // its key files (which are read only at build).
        builder
            .check(&static_algorithms)
            .map(|_| ())
            .map_err(|e| e.in_section("jwt"))?;
        if let Some(dpop) = &self.dpop {
            dpop.validate()?;
        }
        Ok(())
    }

    /// Everything but the issuers, whose key sources may need files read.
    fn builder_without_issuers(&self) -> Result<JwtAuthenticatorBuilder, ConfigError> {
        let mut builder = JwtAuthenticator::builder().audiences(self.audiences.iter().cloned());
        if let Some(realm) = &self.realm {
            builder = builder.realm(realm.clone());
        }
        if let Some(algorithms) = &self.algorithms {
            builder = builder.algorithms(algorithms.iter().copied());
        }
        if let Some(leeway) = self.leeway {
            builder = builder.leeway(leeway.get());
        }
        if let Some(claims) = &self.required_claims {
            builder = builder.required_claims(claims.iter().cloned());
        }
        if let Some(typ) = &self.typ {
            builder = builder.require_typ(typ.clone());
        }
        if let Some(size) = self.max_token_size {
            builder = builder.max_token_size(size);
        }
        if let Some(len) = self.max_kid_len {
            builder = builder.max_kid_len(len);
        }
        if let Some(lifetime) = self.max_lifetime {
            builder = builder.max_lifetime(lifetime.get());
        }
        if let Some(paths) = &self.groups_claims {
            builder = builder.claims(mapping(paths));
        }
        if self.dangerous_allow_query_token {
            builder = builder.dangerous_allow_query_token();
        }
        if self.dangerous_skip_audience_check {
            builder = builder.dangerous_skip_audience_check();
        }
        if let Some(jwks) = &self.jwks {
            builder = builder.jwks_cache(jwks.config()?);
        }
        Ok(builder)
    }
}

impl DpopToml {
    /// The checks that need no file or network.
    fn validate(&self) -> Result<(), ConfigError> {
        self.base_settings().checked("jwt.dpop").map(|_| ())?;
        match self.replay_store.as_deref() {
            None | Some("memory") => {
                for (given, key) in [
                    (self.redis_key_prefix.is_some(), "redis_key_prefix"),
                    (self.redis_ca_file.is_some(), "redis_ca_file"),
                    (
                        self.dangerous_accept_when_replay_store_down,
                        "dangerous_accept_when_replay_store_down",
                    ),
                ] {
                    if given {
                        return Err(ConfigError::new(
                            "this goes with a Redis `replay_store`, not the memory one",
                        )
                        .with_key(format!("jwt.dpop.{key}")));
                    }
                }
                if self.replay_capacity == Some(0) {
                    return Err(ConfigError::new("replay_capacity must be above zero")
                        .with_key("jwt.dpop.replay_capacity"));
                }
            }
            Some(url)
                if url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("redis+unix://") =>
            {
                if cfg!(not(feature = "redis")) {
                    return Err(ConfigError::new(
                        "a Redis replay store needs the `redis` feature, which this build leaves out",
                    )
                    .with_key("jwt.dpop.replay_store"));
                }
                if self.replay_capacity.is_some() {
                    return Err(
                        ConfigError::new("replay_capacity goes with the memory store")
                            .with_key("jwt.dpop.replay_capacity"),
                    );
                }
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "`memory` or a Redis URL (redis://, rediss://, redis+unix://)",
                )
                .with_key("jwt.dpop.replay_store"));
            }
        }
        if self.nonce_secret_file.is_some() && !self.use_dpop_nonce {
            return Err(
                ConfigError::new("a nonce key goes with `use_dpop_nonce = true`")
                    .with_key("jwt.dpop.nonce_secret_file"),
            );
        }
        Ok(())
    }

    /// Everything but the replay store and the nonce key.
    fn base_settings(&self) -> DpopSettings {
        let mut settings = DpopSettings::new();
        if let Some(age) = self.max_age {
            settings = settings.max_age(age.get());
        }
        if let Some(skew) = self.max_future_skew {
            settings = settings.max_future_skew(skew.get());
        }
        if let Some(algorithms) = &self.algorithms {
            settings = settings.algorithms(algorithms.iter().copied());
        }
        if let Some(bytes) = self.max_proof_bytes {
            settings = settings.max_proof_bytes(bytes);
        }
        if let Some(lifetime) = self.nonce_lifetime {
            settings = settings.nonce_lifetime(lifetime.get());
        }
        settings.use_nonce(self.use_dpop_nonce)
    }

    fn settings(&self, base: Option<&Path>) -> Result<DpopSettings, ConfigError> {
        self.validate()?;
        let mut settings = self.base_settings();
        if let Some(path) = &self.nonce_secret_file {
            let path = match base {
                Some(base) if path.is_relative() => base.join(path),
                _ => path.clone(),
            };
            let secret = read_secret(&path, "DPoP nonce key")
                .map_err(|e| e.with_key("jwt.dpop.nonce_secret_file"))?;
            settings = settings.nonce_secret(secret.expose_secret().as_bytes());
        }
        let replay: Arc<dyn ReplayCache> = match self.replay_store.as_deref() {
            None | Some("memory") => Arc::new(MemoryReplayCache::new(
                self.replay_capacity
                    .unwrap_or(crate::jwt::dpop::DEFAULT_REPLAY_CAPACITY),
            )),
            #[cfg(feature = "redis")]
            Some(url) => {
                let mut builder = crate::jwt::dpop::RedisReplayCache::builder(url);
                if let Some(prefix) = &self.redis_key_prefix {
                    builder = builder.key_prefix(prefix.clone());
                }
                if let Some(path) = &self.redis_ca_file {
                    let path = match base {
                        Some(base) if path.is_relative() => base.join(path),
                        _ => path.clone(),
                    };
                    builder = builder.ca_file(path);
                }
                if self.dangerous_accept_when_replay_store_down {
                    builder = builder.dangerous_accept_when_unreachable();
                }
                let cache = builder.build().map_err(|e| {
                    let key = match e.key() {
                        Some("ca_file") => "jwt.dpop.redis_ca_file",
                        Some("key_prefix") => "jwt.dpop.redis_key_prefix",
                        _ => "jwt.dpop.replay_store",
                    };
                    ConfigError::new(e.message().to_owned()).with_key(key)
                })?;
                Arc::new(cache)
            }
            #[cfg(not(feature = "redis"))]
            Some(_) => {
                return Err(
                    ConfigError::new("a Redis replay store needs the `redis` feature")
                        .with_key("jwt.dpop.replay_store"),
                );
            }
        };
        Ok(settings.replay_cache(replay))
    }
}

impl IssuerSettings {
    /// The checks that need no file: one key source, `algorithm` and `kid` where they belong,
    /// an algorithm of the key's family, URLs fit to fetch keys from.
    fn check(&self, key: &str) -> Result<(), ConfigError> {
        let given = [
            self.discovery,
            self.jwks_url.is_some(),
            self.jwks_file.is_some(),
            self.pem_file.is_some(),
            self.secret_file.is_some(),
        ]
        .into_iter()
        .filter(|given| *given)
        .count();
        if given != 1 {
            return Err(ConfigError::new(
                "give exactly one key source: discovery, jwks_url, jwks_file, pem_file or \
                 secret_file",
            )
            .with_key(key));
        }
        if (self.algorithm.is_some() || self.kid.is_some())
            && self.pem_file.is_none()
            && self.secret_file.is_none()
        {
            let field = if self.algorithm.is_some() {
                "algorithm"
            } else {
                "kid"
            };
            return Err(ConfigError::new(
                "`algorithm` and `kid` go with pem_file or secret_file (a JWKS names its own)",
            )
            .with_key(format!("{key}.{field}")));
        }
        if self.pem_file.is_some() {
            match self.algorithm {
                None => {
                    return Err(ConfigError::new("a PEM key needs `algorithm`")
                        .with_key(format!("{key}.algorithm")));
                }
                Some(alg) if alg.is_hmac() => {
                    return Err(ConfigError::new(format!(
                        "{alg} is an HMAC algorithm: its key goes in secret_file, not pem_file"
                    ))
                    .with_key(format!("{key}.algorithm")));
                }
                Some(_) => {}
            }
        }
        if let (Some(_), Some(alg)) = (&self.secret_file, self.algorithm)
            && !alg.is_hmac()
        {
            return Err(ConfigError::new(format!(
                "{alg} is a public-key algorithm: its key goes in pem_file, not secret_file"
            ))
            .with_key(format!("{key}.algorithm")));
        }
        Ok(())
    }

    /// The key source the builder's checks see before any file is read: a remote source as it
    /// is, a key file as an empty key set (its algorithm is passed apart).
    fn stand_in_source(&self) -> KeySource {
        if self.discovery {
            KeySource::Discovery
        } else if let Some(url) = &self.jwks_url {
            KeySource::JwksUrl(url.clone())
        } else {
            KeySource::Static(KeySet::new())
        }
    }

    /// The algorithm of a `pem_file` or `secret_file` key.
    fn static_algorithm(&self) -> Option<Algorithm> {
        if self.secret_file.is_some() {
            return Some(self.algorithm.unwrap_or(Algorithm::HS256));
        }
        self.pem_file.as_ref().and(self.algorithm)
    }

    fn source(&self, key: &str) -> Result<KeySource, ConfigError> {
        self.check(key)?;
        let with_kid = |k: VerifyingKey| match &self.kid {
            Some(kid) => k.with_kid(kid.clone()),
            None => k,
        };
        if self.discovery {
            return Ok(KeySource::Discovery);
        }
        if let Some(url) = &self.jwks_url {
            return Ok(KeySource::JwksUrl(url.clone()));
        }
        if let Some(path) = &self.jwks_file {
            let field = format!("{key}.jwks_file");
            let text = read(path, &field)?;
            let set = KeySet::from_jwks(&String::from_utf8_lossy(&text)).map_err(|e| {
                ConfigError::new(format!("{}: {e}", path.display())).with_key(field)
            })?;
            return Ok(KeySource::Static(set));
        }
        if let Some(path) = &self.pem_file {
            let field = format!("{key}.pem_file");
            let algorithm = self.algorithm.ok_or_else(|| {
                ConfigError::new("a PEM key needs `algorithm`").with_key(format!("{key}.algorithm"))
            })?;
            let text = read(path, &field)?;
            let key = VerifyingKey::from_pem(algorithm, &String::from_utf8_lossy(&text)).map_err(
                |e| ConfigError::new(format!("{}: {e}", path.display())).with_key(field),
            )?;
            return Ok(KeySource::Static(KeySet::new().with(with_kid(key))));
        }
        let Some(path) = &self.secret_file else {
            return Err(ConfigError::new("no key source").with_key(key));
        };
        let field = format!("{key}.secret_file");
        let secret = read_secret(path, "HMAC key").map_err(|e| e.with_key(field.clone()))?;
        let algorithm = self.algorithm.unwrap_or(Algorithm::HS256);
        let verifying = VerifyingKey::hmac(algorithm, secret.expose_secret().as_bytes())
            .map_err(|e| ConfigError::new(format!("{}: {e}", path.display())).with_key(field))?;
        Ok(KeySource::Static(KeySet::new().with(with_kid(verifying))))
    }
}

impl JwksSettings {
    fn config(&self) -> Result<JwksCacheConfig, ConfigError> {
        let mut config = JwksCacheConfig::default();
        let fields = [
            (&self.refresh_interval, &mut config.refresh_interval),
            (&self.unknown_kid_cooldown, &mut config.unknown_kid_cooldown),
            (&self.retry_interval, &mut config.retry_interval),
            (&self.fetch_timeout, &mut config.fetch_timeout),
            (&self.max_stale, &mut config.max_stale),
        ];
        for (value, target) in fields {
            if let Some(value) = value {
                *target = value.get();
            }
        }
        if let Some(size) = self.max_response_size {
            config.max_response_size = size;
        }
        if self.dangerous_serve_stale_keys_forever {
            if self.max_stale.is_some() {
                return Err(ConfigError::new(
                    "give max_stale or dangerous_serve_stale_keys_forever, not both",
                )
                .with_key("jwt.jwks.dangerous_serve_stale_keys_forever"));
            }
            config = config.dangerous_serve_stale_keys_forever();
        }
        Ok(config)
    }
}

pub(super) fn read(path: &Path, key: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())).with_key(key))
}

#[cfg(all(test, feature = "jwt"))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn settings_parse_and_refuse_unknown_keys() {
        let settings: JwtSettings = toml::from_str(
            r#"
            audiences = ["api"]
            algorithms = ["ES256", "RS256"]
            leeway = "10s"
            max_lifetime = "none"
            groups_claims = ["realm_access.roles"]
            [[issuers]]
            issuer = "https://sso.example.com"
            discovery = true
            [jwks]
            unknown_kid_cooldown = "1m"
            "#,
        )
        .unwrap();
        assert_eq!(settings.issuers.len(), 1);
        assert!(settings.builder().is_ok());
        let err = toml::from_str::<JwtSettings>("audience = [\"x\"]").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn one_key_source_per_issuer() {
        let settings = JwtSettings {
            audiences: vec!["api".into()],
            issuers: vec![IssuerSettings {
                issuer: "i".into(),
                discovery: true,
                jwks_url: Some("https://i/jwks".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = settings.builder().unwrap_err();
        assert_eq!(err.key(), Some("jwt.issuers[0]"));
    }

    #[test]
    fn jwks_max_stale_parses_and_must_outlast_the_refresh() {
        let parse = |jwks: &str| {
            toml::from_str::<JwtSettings>(&format!(
                "audiences = [\"api\"]\n[[issuers]]\nissuer = \"https://i.example\"\n\
                 discovery = true\n[jwks]\n{jwks}"
            ))
            .unwrap()
        };
        let config = |jwks: &str| parse(jwks).jwks.unwrap().config();
        assert_eq!(
            config("max_stale = \"2h\"").unwrap().max_stale,
            Duration::from_secs(7200)
        );
        assert_eq!(
            config("").unwrap().max_stale,
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            config("dangerous_serve_stale_keys_forever = true")
                .unwrap()
                .max_stale,
            Duration::MAX
        );
        for bad in [
            "max_stale = \"5m\"",
            "max_stale = \"1m\"\nrefresh_interval = \"2m\"",
        ] {
            let err = parse(bad).validate().unwrap_err();
            assert_eq!(err.key(), Some("jwt.jwks.max_stale"), "{bad}");
        }
        let both = config("max_stale = \"2h\"\ndangerous_serve_stale_keys_forever = true");
        assert_eq!(
            both.unwrap_err().key(),
            Some("jwt.jwks.dangerous_serve_stale_keys_forever")
        );
    }
}
