//! The `[basic]` section: its TOML shape (users, hashing, cache, lockout, limits) and how it
//! becomes a [`BasicAuthenticator`].

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasic {
    pub(super) realm: Option<String>,
    #[serde(default)]
    pub(super) users: Vec<RawUser>,
    pub(super) hashing: Option<RawHashing>,
    pub(super) cache: Option<RawCache>,
    pub(super) lockout: Option<RawLockout>,
    pub(super) limits: Option<RawBasicLimits>,
    #[serde(default)]
    pub(super) dangerous_disable_lockout: bool,
    pub(super) accept_api_keys: Option<Spanned<bool>>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) name: String,
    pub(super) password_hash: Spanned<String>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    #[serde(default)]
    pub(super) kind: SubjectKind,
    #[serde(default)]
    pub(super) disabled: bool,
}

impl RawUser {
    pub(super) fn record(&self) -> UserRecord {
        let mut record =
            UserRecord::new(&self.name, PasswordHash::new(self.password_hash.get_ref()))
                .with_groups(self.groups.clone())
                .with_kind(self.kind);
        record.disabled = self.disabled;
        record
    }
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHashing {
    pub(super) memory_kib: Option<Spanned<u32>>,
    pub(super) iterations: Option<Spanned<u32>>,
    pub(super) parallelism: Option<u32>,
    pub(super) max_concurrent: Option<usize>,
    pub(super) max_wait: Option<Spanned<DurationSetting>>,
    #[serde(default)]
    pub(super) dangerous_weak_hashing: bool,
}

/// OWASP's minimum argon2id costs (Password Storage Cheat Sheet), as (memory KiB, iterations):
/// a cost is strong enough when it meets one row in both. More iterations than the last row
/// still need its memory.
const ARGON2ID_FLOOR: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// Whether `memory_kib` and `iterations` meet a row of [`ARGON2ID_FLOOR`].
fn meets_floor(memory_kib: u32, iterations: u32) -> bool {
    ARGON2ID_FLOOR
        .iter()
        .any(|&(m, t)| memory_kib >= m && iterations >= t)
}

impl RawHashing {
    /// Refuses a cost below [`ARGON2ID_FLOOR`] unless `dangerous_weak_hashing` allows it. The
    /// error points at the key to raise: `iterations` when more of them at this memory would
    /// do, else `memory_kib`.
    fn check_floor(&self, config: &HashingConfig, spans: &Spans<'_>) -> Result<(), ConfigError> {
        let (m, t) = (config.memory_kib, config.iterations);
        if self.dangerous_weak_hashing || meets_floor(m, t) {
            return Ok(());
        }
        let needed_t = ARGON2ID_FLOOR
            .iter()
            .find(|&&(row_m, _)| m >= row_m)
            .map(|&(_, row_t)| row_t);
        let needed_m = ARGON2ID_FLOOR
            .iter()
            .rev()
            .find(|&&(_, row_t)| t >= row_t)
            .map_or(ARGON2ID_FLOOR[0].0, |&(row_m, _)| row_m);
        let message = format!(
            "argon2id cost m={m} KiB, t={t} is below OWASP's minimum ({}); \
             set `dangerous_weak_hashing = true` in [basic.hashing] to allow it",
            match needed_t {
                Some(needed_t) =>
                    format!("at m={m} KiB needs t>={needed_t}, or m>={needed_m} KiB at t={t}"),
                None => format!("needs m>={needed_m} KiB at t={t}"),
            }
        );
        // Point at the key given in the file: iterations when it is the one short at this
        // memory, else memory_kib; fall back to whichever is present.
        let iterations_short = needed_t.is_some();
        let (key, value) = match (&self.memory_kib, &self.iterations, iterations_short) {
            (_, Some(it), true) | (None, Some(it), false) => ("iterations", it),
            (Some(mem), _, _) => ("memory_kib", mem),
            // Neither key given: the defaults meet the floor, so this cannot be reached.
            (None, None, _) => return Err(ConfigError::new(message).with_key("basic.hashing")),
        };
        Err(spans.error(value, format!("basic.hashing.{key}"), message))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) ttl: DurationSetting,
    pub(super) capacity: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLockout {
    pub(super) user_threshold: Option<u32>,
    pub(super) ip_threshold: Option<u32>,
    pub(super) ipv6_prefix_len: Option<Spanned<u32>>,
    pub(super) base_delay: Option<Spanned<DurationSetting>>,
    pub(super) max_delay: Option<Spanned<DurationSetting>>,
    pub(super) window: Option<Spanned<DurationSetting>>,
    pub(super) store: Option<Spanned<RedisUrl>>,
    pub(super) memory_capacity: Option<Spanned<usize>>,
    pub(super) redis_prefix: Option<Spanned<String>>,
    pub(super) redis_timeout: Option<Spanned<DurationSetting>>,
    pub(super) redis_retry_after: Option<Spanned<DurationSetting>>,
    pub(super) redis_ca_file: Option<Spanned<PathBuf>>,
    pub(super) dangerous_fail_open: Option<Spanned<bool>>,
    pub(super) dangerous_allow_insecure_tls: Option<Spanned<bool>>,
}

/// `memory` or a Redis URL, which may hold a password: `Debug` shows only the scheme.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(super) struct RedisUrl(String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split_once(':').map_or(self.0.as_str(), |(s, _)| s);
        write!(f, "RedisUrl({scheme}:[redacted])")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasicLimits {
    pub(super) max_header_bytes: Option<Spanned<usize>>,
    pub(super) max_user_bytes: Option<Spanned<usize>>,
    pub(super) max_password_bytes: Option<Spanned<usize>>,
}

impl RawBasic {
    pub(super) fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
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
        let hashing = self.hashing_config()?;
        if let Some(raw) = &self.hashing {
            raw.check_floor(&hashing, spans)?;
        }
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

    pub(super) fn hashing_config(&self) -> Result<HashingConfig, ConfigError> {
        let mut config = HashingConfig::default();
        if let Some(h) = &self.hashing {
            config.memory_kib = h
                .memory_kib
                .as_ref()
                .map_or(config.memory_kib, |m| *m.get_ref());
            config.iterations = h
                .iterations
                .as_ref()
                .map_or(config.iterations, |t| *t.get_ref());
            config.parallelism = h.parallelism.unwrap_or(config.parallelism);
            config.max_concurrent = h.max_concurrent.unwrap_or(config.max_concurrent);
            if let Some(wait) = &h.max_wait {
                config.max_wait = wait.get_ref().get();
            }
        }
        config.check().map_err(|e| e.with_key("basic.hashing"))?;
        Ok(config)
    }

    /// The in-memory lockout counters this section counts in: those of the previous build when
    /// it counted in memory with the same capacity, else new ones. `None` when lockout is off
    /// or counts in Redis.
    pub(super) fn memory_counters(&self, kept: &Kept) -> Option<(usize, Arc<MemoryFailureStore>)> {
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
            .map_or(crate::lockout::DEFAULT_MEMORY_CAPACITY, |c| *c.get_ref());
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
    pub(super) fn accepts_api_keys(&self) -> bool {
        self.accept_api_keys.as_ref().is_some_and(|a| *a.get_ref())
    }

    pub(super) async fn build(
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
        let hashing = self.hashing_config()?;
        if self
            .hashing
            .as_ref()
            .is_some_and(|h| h.dangerous_weak_hashing)
        {
            tracing::warn!(
                memory_kib = hashing.memory_kib,
                iterations = hashing.iterations,
                "dangerous_weak_hashing: [basic.hashing] may be below OWASP's argon2id minimum; \
                 password hashes are then cheap to crack if the store leaks"
            );
        }
        let mut builder = BasicAuthenticator::builder(store).hashing(hashing);
        if let Some(realm) = &self.realm {
            builder = builder.realm(realm.clone());
        }
        if let Some(cache) = &self.cache {
            builder = builder.verified_cache(cache.ttl.get(), cache.capacity.unwrap_or(10_000));
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
                lockout = lockout.base_delay(d.get_ref().get());
            }
            if let Some(d) = &l.max_delay {
                lockout = lockout.max_delay(d.get_ref().get());
            }
            if let Some(d) = &l.window {
                lockout = lockout.window(d.get_ref().get());
            }
            builder = builder.lockout(lockout);
        } else if let Some(lockout) = memory {
            builder = builder.lockout(lockout);
        }
        builder.build()
    }
}

impl RawLockout {
    pub(super) fn validate(&self, spans: &Spans<'_>) -> Result<(), ConfigError> {
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
    pub(super) fn counters(&self, base: Option<&Path>) -> Result<Lockout, ConfigError> {
        let url = match &self.store {
            Some(url) if url.get_ref().0 != "memory" => &url.get_ref().0,
            _ => {
                let capacity = self
                    .memory_capacity
                    .as_ref()
                    .map_or(crate::lockout::DEFAULT_MEMORY_CAPACITY, |c| *c.get_ref());
                return Ok(Lockout::new(MemoryFailureStore::with_capacity(capacity)));
            }
        };
        self.redis_counters(url, base)
    }

    #[cfg(feature = "redis")]
    pub(super) fn redis_counters(
        &self,
        url: &str,
        base: Option<&Path>,
    ) -> Result<Lockout, ConfigError> {
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
            builder = builder.timeout(timeout.get_ref().get());
        }
        if let Some(wait) = &self.redis_retry_after {
            builder = builder.retry_after(wait.get_ref().get());
        }
        if self
            .dangerous_fail_open
            .as_ref()
            .is_some_and(|v| *v.get_ref())
        {
            builder = builder.dangerous_fail_open();
        }
        let store = builder.build().map_err(|e| {
            use crate::lockout::RedisSetting;
            let key = match e.setting() {
                RedisSetting::CaFile => "basic.lockout.redis_ca_file",
                RedisSetting::Timeout => "basic.lockout.redis_timeout",
                RedisSetting::KeyPrefix => "basic.lockout.redis_prefix",
                // The URL, and any setting added later, under the table's `store`.
                _ => "basic.lockout.store",
            };
            ConfigError::new(e.message().to_owned()).with_key(key)
        })?;
        Ok(Lockout::new(store))
    }

    #[cfg(not(feature = "redis"))]
    pub(super) fn redis_counters(
        &self,
        _url: &str,
        _base: Option<&Path>,
    ) -> Result<Lockout, ConfigError> {
        Err(needs_feature("basic.lockout.store", "redis"))
    }
}

impl RawBasicLimits {
    pub(super) fn fields(&self) -> [(Option<&Spanned<usize>>, &'static str); 3] {
        [
            (self.max_header_bytes.as_ref(), "max_header_bytes"),
            (self.max_user_bytes.as_ref(), "max_user_bytes"),
            (self.max_password_bytes.as_ref(), "max_password_bytes"),
        ]
    }

    /// These limits over the defaults.
    pub(super) fn limits(&self) -> BasicLimits {
        let mut limits = BasicLimits::default();
        let value =
            |v: &Option<Spanned<usize>>, default| v.as_ref().map_or(default, |v| *v.get_ref());
        limits.max_header_bytes = value(&self.max_header_bytes, limits.max_header_bytes);
        limits.max_user_bytes = value(&self.max_user_bytes, limits.max_user_bytes);
        limits.max_password_bytes = value(&self.max_password_bytes, limits.max_password_bytes);
        limits
    }
}
