//! Checking the file as a whole: `[policies]`, `[[routes]]` and `[gate]` become policies, routes
//! and client-IP rules, and every section is validated before any I/O.

use super::*;
/// Policy names that always mean the built-in policy.
pub(super) const BUILT_IN_POLICIES: [&str; 3] = ["public", "authenticated", "anonymous"];

pub(super) struct Validator<'a> {
    pub(super) raw: &'a RawConfig,
    pub(super) spans: &'a Spans<'a>,
    pub(super) built: BTreeMap<String, Arc<dyn Policy>>,
    pub(super) custom_scheme_names: Vec<(String, ConfigError)>,
}

impl Validator<'_> {
    pub(super) fn finish(mut self) -> Result<Config, ConfigError> {
        self.define_policies()?;
        let routes = self.routes()?;
        let upstream_paths = self.upstream_paths()?;
        let default_policy = match &self.raw.gate.default_policy {
            Some(name) => self.reference(name, "gate.default_policy", &mut BTreeSet::new())?,
            None => Arc::new(Authenticated),
        };
        let trusted_proxies = self.trusted_proxies()?;
        let client_cert_proxies = self.ip_set(
            &self.raw.gate.client_cert_proxies,
            "gate.client_cert_proxies",
        )?;
        self.validate_sections()?;
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
        let audit_allowed_level = match &self.raw.gate.audit_allowed_level {
            None => None,
            Some(level) => Some(parse_level(level.get_ref()).ok_or_else(|| {
                self.spans.error(
                    level,
                    "gate.audit_allowed_level",
                    format!(
                        "{:?} is not a level: one of \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
                        level.get_ref()
                    ),
                )
            })?),
        };
        let public_origin = self.public_origin()?;
        Ok(Config {
            public_origin,
            source: Source::default(),
            base_dir: None,
            store: self.raw.store.clone(),
            #[cfg(feature = "api-key")]
            api_keys: self.raw.api_keys.clone(),
            #[cfg(feature = "self-service")]
            self_service: self.raw.self_service.clone(),
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
            client_cert_proxies,
            max_path_bytes,
            audit_allowed_level,
            upstream_paths,
            #[cfg(any(feature = "jwt", feature = "introspection"))]
            http_client: None,
            custom_scheme_names: self.custom_scheme_names,
            authenticators: Vec::new(),
        })
    }

    /// Builds every `[policies]` entry, refusing one that takes a built-in name.
    fn define_policies(&mut self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// The `[[routes]]`, in order.
    fn routes(&mut self) -> Result<Vec<Route>, ConfigError> {
        let mut routes = Vec::new();
        for (i, route) in self.raw.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            let policy = self.reference(
                &route.policy,
                &format!("{key}.policy"),
                &mut BTreeSet::new(),
            )?;
            let methods = self.methods(&route.methods, &key)?;
            let route = Route::new(methods, route.path.get_ref(), policy).map_err(|e| {
                self.spans
                    .error(&route.path, format!("{key}.path"), e.message().to_owned())
            })?;
            routes.push(route);
        }
        Ok(routes)
    }

    /// A route's `methods`: any method when the list is empty.
    fn methods(&self, names: &[Spanned<String>], key: &str) -> Result<Methods, ConfigError> {
        if names.is_empty() {
            return Ok(Methods::Any);
        }
        let mut list = Vec::new();
        for (j, m) in names.iter().enumerate() {
            let method =
                Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()).map_err(|_| {
                    self.spans.error(
                        m,
                        format!("{key}.methods[{j}]"),
                        format!("`{}` is not an HTTP method", m.get_ref()),
                    )
                })?;
            list.push(method);
        }
        let methods = Methods::Only(list);
        methods.check().map_err(|e| {
            self.spans
                .error(&names[0], format!("{key}.methods"), e.message().to_owned())
        })?;
        Ok(methods)
    }

    /// `[gateway] upstream_paths`, refusing route patterns a case-insensitive upstream would
    /// route past their rule.
    fn upstream_paths(&self) -> Result<UpstreamPaths, ConfigError> {
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
        Ok(upstream_paths)
    }

    /// `[gate] public_origin`, normalised; required when DPoP is set up explicitly (a
    /// `[jwt.dpop]` section, or a `dpop` mode other than `disabled`), since no proof's `htu`
    /// can be checked without it.
    fn public_origin(&self) -> Result<Option<String>, ConfigError> {
        if let Some(origin) = &self.raw.gate.public_origin {
            return crate::request::normalize_origin(origin.get_ref())
                .map(Some)
                .map_err(|why| self.spans.error(origin, "gate.public_origin", why));
        }
        #[cfg(feature = "jwt")]
        if let Some(key) = self
            .raw
            .jwt
            .as_ref()
            .and_then(|jwt| jwt.explicit_dpop_key())
        {
            return Err(ConfigError::new(
                "DPoP is set up here, but `[gate] public_origin` is missing: proofs name the URI \
                 they were made for, and the origin clients reach this service at is needed to \
                 check it",
            )
            .with_key(key));
        }
        #[cfg(all(feature = "jwt", feature = "introspection"))]
        if self.raw.introspection.as_ref().is_some_and(|i| {
            i.dpop
                .is_some_and(|mode| mode != crate::jwt::dpop::DpopMode::Disabled)
        }) {
            return Err(ConfigError::new(
                "DPoP is set up here, but `[gate] public_origin` is missing",
            )
            .with_key("introspection.dpop"));
        }
        Ok(None)
    }

    /// `[gate]`'s client-IP settings.
    fn trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
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
        Ok(trusted_proxies)
    }

    /// Each section's own checks, before any I/O.
    fn validate_sections(&self) -> Result<(), ConfigError> {
        if let Some(store) = &self.raw.store {
            store.validate(self.spans)?;
        }
        self.raw.refuse_compiled_out()?;
        #[cfg(feature = "basic")]
        if let Some(basic) = &self.raw.basic {
            self.validate_basic(basic)?;
        }
        #[cfg(feature = "api-key")]
        if let Some(api_keys) = &self.raw.api_keys {
            api_keys.validate(self.spans)?;
        }
        #[cfg(feature = "self-service")]
        if let Some(section) = &self.raw.self_service {
            section.validate(self.raw.api_keys.as_ref(), self.spans)?;
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
        Ok(())
    }

    /// `[basic]`'s own checks, and those that need the other sections.
    #[cfg(feature = "basic")]
    fn validate_basic(&self, basic: &RawBasic) -> Result<(), ConfigError> {
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
        Ok(())
    }

    pub(super) fn ip_set(
        &self,
        entries: &[Spanned<String>],
        key: &str,
    ) -> Result<IpSet, ConfigError> {
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
    pub(super) fn reference(
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

    pub(super) fn policy_named(
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

    pub(super) fn build_policy(
        &mut self,
        section: &RawPolicy,
        key: &str,
        visiting: &mut BTreeSet<String>,
    ) -> Result<Arc<dyn Policy>, ConfigError> {
        refuse_empty_lists(section, key)?;
        let mut rules: Vec<Box<dyn Policy>> = Vec::new();
        if section.authenticated == Some(true) {
            rules.push(Box::new(Authenticated));
        }
        if section.anonymous == Some(true) {
            rules.push(Box::new(Anonymous));
        }
        if let Some(list) = &section.schemes_allow {
            self.scheme_names(list, &format!("{key}.schemes_allow"))?;
            rules.push(Box::new(Schemes::allow(list.iter().map(Spanned::get_ref))));
        }
        if let Some(list) = &section.schemes_deny {
            self.scheme_names(list, &format!("{key}.schemes_deny"))?;
            rules.push(Box::new(Schemes::deny(list.iter().map(Spanned::get_ref))));
        }
        if let Some(kind) = section.kind {
            rules.push(Box::new(KindIs(kind)));
        }
        if section.sender_constrained == Some(true) {
            rules.push(Box::new(crate::policy::SenderConstrained));
        }
        if let Some(ranges) = self.ip_ranges(section, key)? {
            rules.push(Box::new(ranges));
        }
        if let Some(groups) = &section.groups_any {
            rules.push(Box::new(Groups::any_of(groups.clone())));
        }
        if let Some(groups) = &section.groups_all {
            rules.push(Box::new(Groups::all_of(groups.clone())));
        }
        if let Some(scopes) = &section.scopes_any {
            rules.push(Box::new(Scopes::any_of(scopes.clone())));
        }
        if let Some(scopes) = &section.scopes_all {
            rules.push(Box::new(Scopes::all_of(scopes.clone())));
        }
        if let Some(cap) = self.expiry_cap(section, key)? {
            rules.push(Box::new(cap));
        }
        self.combinators(section, key, visiting, &mut rules)?;
        if rules.is_empty() {
            return Err(ConfigError::new("a policy must state at least one rule").with_key(key));
        }
        let all = All::from(rules);
        if section.report_only {
            return Ok(Arc::new(ReportOnly::new(all)));
        }
        Ok(Arc::new(all))
    }

    /// Checks each name of a `schemes_allow` or `schemes_deny` list (`key`).
    fn scheme_names(&mut self, list: &[Spanned<String>], key: &str) -> Result<(), ConfigError> {
        for (i, s) in list.iter().enumerate() {
            self.scheme_name(s.get_ref(), s, format!("{key}[{i}]"))?;
        }
        Ok(())
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

    /// `ip_allow` and `ip_deny`, when either is given.
    fn ip_ranges(&self, section: &RawPolicy, key: &str) -> Result<Option<IpRanges>, ConfigError> {
        if section.ip_allow.is_none() && section.ip_deny.is_none() {
            return Ok(None);
        }
        let mut ranges = IpRanges::new();
        if let Some(deny) = &section.ip_deny {
            ranges = ranges.deny(self.ip_set(deny, &format!("{key}.ip_deny"))?);
        }
        if let Some(allow) = &section.ip_allow {
            ranges = ranges.allow(self.ip_set(allow, &format!("{key}.ip_allow"))?);
        }
        Ok(Some(ranges))
    }

    /// `max_lifetime` and `allow_non_expiring`, when either is given.
    fn expiry_cap(
        &mut self,
        section: &RawPolicy,
        key: &str,
    ) -> Result<Option<ExpiryCap>, ConfigError> {
        if section.max_lifetime.is_none() && section.allow_non_expiring.is_none() {
            return Ok(None);
        }
        let mut cap =
            ExpiryCap::new().allow_non_expiring(section.allow_non_expiring.unwrap_or(false));
        for (scheme, lifetime) in section.max_lifetime.iter().flatten() {
            let field = format!("{key}.max_lifetime.{scheme}");
            let duration = lifetime.get_ref().get();
            cap = match scheme.as_str() {
                "default" => cap.default_max_lifetime(duration),
                name => {
                    self.scheme_name(name, lifetime, field)?;
                    cap.max_lifetime(name, duration)
                }
            };
        }
        Ok(Some(cap))
    }

    /// `all`, `any` and `not`: rules made of other policies, by name.
    fn combinators(
        &mut self,
        section: &RawPolicy,
        key: &str,
        visiting: &mut BTreeSet<String>,
        rules: &mut Vec<Box<dyn Policy>>,
    ) -> Result<(), ConfigError> {
        for (field, names) in [("all", &section.all), ("any", &section.any)] {
            let Some(names) = names else { continue };
            let mut policies: Vec<Box<dyn Policy>> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let key = format!("{key}.{field}[{i}]");
                policies.push(Box::new(self.reference(name, &key, visiting)?));
            }
            rules.push(if field == "all" {
                Box::new(All::from(policies))
            } else {
                Box::new(Any::from(policies))
            });
        }
        if let Some(name) = &section.not {
            let inner = self.reference(name, &format!("{key}.not"), visiting)?;
            rules.push(Box::new(Not::new(inner)));
        }
        Ok(())
    }
}

/// An empty list makes a rule that allows everyone (`groups_all = []`) or no one: never what was
/// meant, so it is refused where it is written. (`GateBuilder::build` refuses the same for
/// policies built in code, through `Policy::validate`.)
fn refuse_empty_lists(section: &RawPolicy, key: &str) -> Result<(), ConfigError> {
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
            "an empty list would allow every caller or none; list at least one, or remove the key",
        )
        .with_key(format!("{key}.{field}")));
    }
    Ok(())
}

/// A `tracing` level by name, as `[gate] audit_allowed_level` spells it (any case).
fn parse_level(name: &str) -> Option<tracing::Level> {
    Some(match name.to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => return None,
    })
}
