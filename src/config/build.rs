//! Building: from a validated [`Config`] to a Gate and the services beside it.

use super::*;

/// What a rebuilt configuration keeps from the previous one (see [`Reloader::reload`]): the
/// in-memory lockout counters, so that a reload does not give a password guesser a fresh
/// allowance.
///
/// [`Reloader::reload`]: super::Reloader::reload
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The memory counters of `[basic.lockout]`, with the capacity they were made with.
    #[cfg(feature = "basic")]
    pub(super) lockout_counters: Option<(usize, Arc<MemoryFailureStore>)>,
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
    /// The self-served token API, when `[self_service]` is configured: mount it behind the
    /// Gate (`SelfService::router`, `SelfService::actix_scope`).
    #[cfg(feature = "self-service")]
    #[cfg_attr(docsrs, doc(cfg(feature = "self-service")))]
    pub self_service: Option<crate::self_service::SelfService>,
    /// The user store named by `[store]`.
    pub users: Arc<dyn UserStore>,
    /// The API key store named by `[store]`.
    pub api_key_store: Arc<dyn ApiKeyStore>,
}

impl Config {
    /// Builds as [`build_services`](Self::build_services) does, reusing what `kept` holds from
    /// the previous build and, on success, leaving there what the next one may reuse.
    pub(crate) async fn build_keeping(&self, kept: &mut Kept) -> Result<Services, ConfigError> {
        self.build_unlocated(kept)
            .await
            .map_err(|e| self.source.locate_error(e))
    }

    async fn build_unlocated(&self, kept: &mut Kept) -> Result<Services, ConfigError> {
        let stores = open_stores(self.store.as_ref(), self.base_dir.as_deref()).await?;
        let mut builder = self.gate_builder();
        // The key manager comes first, for `[basic] accept_api_keys`; its authenticator is
        // added after Basic's, so the challenges keep their order.
        #[cfg(feature = "api-key")]
        let key_services = self
            .api_keys
            .as_ref()
            .map(|section| section.build(&stores, self.base_dir.as_deref()))
            .transpose()?;
        #[cfg(feature = "basic")]
        let lockout_counters = self.basic.as_ref().and_then(|s| s.memory_counters(kept));
        #[cfg(feature = "basic")]
        let basic = match &self.basic {
            Some(section) => {
                // Validation refused `accept_api_keys` without `[api_keys]` (and so without the
                // `api-key` feature).
                #[cfg(feature = "api-key")]
                let verifier = key_services
                    .as_ref()
                    .filter(|_| section.accepts_api_keys())
                    .map(|(manager, _)| Arc::new(manager.clone()) as Arc<dyn ApiKeyVerifier>);
                #[cfg(not(feature = "api-key"))]
                let verifier = None;
                let authenticator = section
                    .build(
                        Arc::clone(&stores.users),
                        lockout_counters.clone(),
                        verifier,
                        self.base_dir.as_deref(),
                    )
                    .await?;
                let authenticator = Arc::new(authenticator);
                builder = builder.shared_authenticator(authenticator.clone());
                Some(authenticator)
            }
            None => None,
        };
        #[cfg(feature = "api-key")]
        let mut api_keys = None;
        #[cfg(feature = "api-key")]
        if let Some((manager, authenticator)) = key_services {
            builder = builder.authenticator(authenticator);
            api_keys = Some(manager);
        }
        builder = self.bearer_authenticators(builder)?;
        for authenticator in &self.authenticators {
            builder = builder.shared_authenticator(Arc::clone(authenticator));
        }
        self.check_custom_schemes(&builder)?;
        for route in &self.routes {
            builder = builder.rule(route.clone());
        }
        let gate = builder
            .default_policy(Arc::clone(&self.default_policy))
            .build()?;
        #[cfg(feature = "self-service")]
        let self_service = self.self_service(api_keys.as_ref())?;
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
            #[cfg(feature = "self-service")]
            self_service,
            users: stores.users,
            api_key_store: stores.api_keys,
        })
    }

    /// Refuses a scheme name the policies use that no authenticator checks: the first in the
    /// file, not in the order policies were read.
    fn check_custom_schemes(&self, builder: &GateBuilder) -> Result<(), ConfigError> {
        let unknown = self
            .custom_scheme_names
            .iter()
            .filter(|(name, _)| !builder.schemes().any(|scheme| scheme.as_str() == name))
            .map(|(_, error)| error)
            .min_by_key(|error| error.location().map(|at| (at.line, at.column)));
        match unknown {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// `[self_service]` over the key manager (validation refused the section without
    /// `[api_keys]`), with `[gate] public_origin` for its CSRF check.
    #[cfg(feature = "self-service")]
    fn self_service(
        &self,
        api_keys: Option<&ApiKeys>,
    ) -> Result<Option<crate::self_service::SelfService>, ConfigError> {
        match (&self.self_service, api_keys) {
            (Some(section), Some(keys)) => section
                .build(
                    keys.clone(),
                    self.public_origin.as_deref(),
                    self.base_dir.as_deref(),
                )
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Adds the `[jwt]` and `[introspection]` authenticators, their files taken relative to the
    /// configuration file.
    #[cfg_attr(
        not(any(feature = "jwt", feature = "introspection")),
        expect(
            clippy::unused_self,
            reason = "only the bearer-token sections read `self`"
        )
    )]
    /// The Gate's own settings: `[gate]`.
    fn gate_builder(&self) -> GateBuilder {
        let mut builder = Gate::builder()
            .trusted_proxies(self.trusted_proxies.clone())
            .client_cert_proxies(self.client_cert_proxies.clone());
        if let Some(origin) = &self.public_origin {
            builder = builder.public_origin(origin.clone());
        }
        if let Some(bytes) = self.max_path_bytes {
            builder = builder.max_path_bytes(bytes);
        }
        if let Some(level) = self.audit_allowed_level {
            builder = builder.audit_allowed_level(level);
        }
        builder
    }

    fn bearer_authenticators(&self, builder: GateBuilder) -> Result<GateBuilder, ConfigError> {
        #[cfg(any(feature = "jwt", feature = "introspection"))]
        let mut builder = builder;
        #[cfg(any(feature = "jwt", feature = "introspection"))]
        let base = self.base_dir.as_deref();
        // One set of DPoP rules and one replay cache for both bearer authenticators.
        #[cfg(feature = "jwt")]
        let dpop = match &self.jwt {
            Some(settings) => settings.dpop_settings(base)?,
            None => None,
        };
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
            let mut jwt = settings.builder()?;
            if let Some(dpop) = &dpop {
                jwt = jwt.dpop(dpop.clone());
            }
            if let Some(client) = &self.http_client {
                jwt = jwt.http_client(Arc::clone(client));
            }
            builder = builder.authenticator(jwt.build().map_err(|e| e.in_section("jwt"))?);
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
            builder = builder.authenticator(settings.build_with_client(
                self.http_client.clone(),
                #[cfg(feature = "jwt")]
                dpop,
            )?);
        }
        Ok(builder)
    }
}
