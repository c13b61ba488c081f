//! [`RedisFailureStore`]: lockout counters in Redis, shared by every instance of a service.
//!
//! One hash per counter, `portcullis:lockout:<prefix>:<key>` with fields `n` (failures) and `t`
//! (the last failure, in milliseconds of the Redis server's clock). A failure is counted by one
//! Lua script that increments, stamps and sets the expiry together, so concurrent failures from
//! many instances are never lost and a counter never outlives its window. Times come from the
//! server's `TIME`, not the instances' clocks, so instances whose clocks disagree still agree on
//! how long ago the last failure was.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisError, Script, TlsCertificates};

use super::{FailureRecord, FailureStore};
use crate::error::{ConfigError, StoreError, StoreErrorKind};
use crate::future::BoxFuture;

/// Every key this store writes starts with this.
const NAMESPACE: &str = "portcullis:lockout:";

/// Counts one failure: increment, stamp with the server's time, (re)arm the expiry. Returns the
/// new count. One script, so the three happen together even with many instances writing.
const RECORD_FAILURE: &str = r"
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local count = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 't', string.format('%d', now_ms))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return count
";

/// The count and the milliseconds since the last failure, or nil when there is no counter.
const FAILURES: &str = r"
local v = redis.call('HMGET', KEYS[1], 'n', 't')
if not v[1] or not v[2] then return nil end
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local since = now_ms - tonumber(v[2])
if since < 0 then since = 0 end
return {tonumber(v[1]), since}
";

/// Takes back one failure, keeping the time of the last; deletes a counter that reaches zero.
const FORGET_ONE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local count = redis.call('HINCRBY', KEYS[1], 'n', -1)
if count <= 0 then redis.call('DEL', KEYS[1]) end
return 0
";

/// How often, at most, an unreachable Redis is reported in the log: an outage under load would
/// otherwise log twice per request.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Brute-force counters in Redis, so that N instances of a service lock an attacker out after as
/// many failures as one instance would. Made with [`RedisFailureStore::builder`]; give it to
/// [`Lockout::new`](super::Lockout::new).
///
/// The connection is made at the first use, not at build time, so a service starts while Redis
/// is down; once made, it is one multiplexed connection that reconnects by itself. While Redis
/// cannot be reached (no connection, or no answer within the
/// [timeout](RedisFailureStoreBuilder::timeout)), the store **fails closed**: every check
/// answers `Unavailable`, which Basic turns into 503, because a lockout that cannot count cannot
/// protect. [`dangerous_fail_open`](RedisFailureStoreBuilder::dangerous_fail_open) makes it
/// answer "no failures" instead. Either way the outage is logged with `tracing::warn!`, at most
/// once every 10 seconds.
///
/// ```no_run
/// use std::sync::Arc;
/// use portcullis::lockout::{Lockout, RedisFailureStore};
/// use portcullis::BasicAuthenticator;
/// use portcullis::store::MemoryUserStore;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let counters = RedisFailureStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("billing-api")
///     .build()?;
/// let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
///     .lockout(Lockout::new(counters).user_threshold(5))
///     .build()?;
/// # Ok(())
/// # }
/// ```
pub struct RedisFailureStore {
    client: Client,
    /// `host:port` (or socket path) for messages; never the URL, which may hold a password.
    address: String,
    namespace: String,
    timeout: Duration,
    retry_after: Duration,
    fail_open: bool,
    connection: tokio::sync::Mutex<Connection>,
    record_script: Script,
    failures_script: Script,
    forget_script: Script,
    warnings: Warnings,
}

/// The connection, or when the last attempt to make one failed.
#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

impl RedisFailureStore {
    /// Starts building a store for the Redis at `url`: `redis://[user:password@]host:port[/db]`,
    /// `rediss://…` for TLS (see [`ca_file`](RedisFailureStoreBuilder::ca_file)), or
    /// `redis+unix:///path`.
    pub fn builder(url: impl Into<String>) -> RedisFailureStoreBuilder {
        RedisFailureStoreBuilder {
            url: url.into(),
            prefix: String::new(),
            timeout: Duration::from_millis(500),
            retry_after: Duration::from_secs(1),
            fail_open: false,
            ca_file: None,
            allow_insecure_tls: false,
        }
    }

    /// The Redis key that holds the counter for lockout key `key`.
    fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    /// The connection, making it if there is none. After a failed attempt, further attempts wait
    /// [`retry_after`](RedisFailureStoreBuilder::retry_after), so requests during an outage fail
    /// at once instead of each waiting for a connection timeout.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut connection = self.connection.lock().await;
        if let Some(manager) = &connection.manager {
            return Ok(manager.clone());
        }
        if connection
            .failed_at
            .is_some_and(|at| at.elapsed() < self.retry_after)
        {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!("redis at {} is unreachable", self.address),
            ));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            // The manager retries a lost connection in the background; a request never waits
            // for more than one attempt.
            .set_number_of_retries(1)
            .set_max_delay(self.retry_after.as_millis().try_into().unwrap_or(u64::MAX));
        let made = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(manager)) => {
                connection.manager = Some(manager.clone());
                connection.failed_at = None;
                Ok(manager)
            }
            Ok(Err(err)) => {
                connection.failed_at = Some(Instant::now());
                Err(self.error(err))
            }
            Err(_) => {
                connection.failed_at = Some(Instant::now());
                Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!(
                        "redis at {} did not accept a connection within {:?}",
                        self.address, self.timeout
                    ),
                ))
            }
        }
    }

    /// Runs `script` on `key` with `args`, within the timeout.
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        key: &str,
        args: &[u64],
    ) -> Result<T, StoreError> {
        let mut manager = self.connection().await?;
        let mut invocation = script.key(self.redis_key(key));
        for arg in args {
            invocation.arg(*arg);
        }
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut manager)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.error(err)),
            Err(_) => Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "redis at {} did not answer within {:?}",
                    self.address, self.timeout
                ),
            )),
        }
    }

    fn error(&self, err: RedisError) -> StoreError {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!("redis at {}", self.address),
        )
        .with_source(err)
    }

    /// Applies the configured choice to a failed operation: the error (fail closed), or `open`
    /// (fail open). Logs either way.
    fn unreachable<T>(&self, err: StoreError, open: T) -> Result<T, StoreError> {
        self.warnings.warn(&err, self.fail_open);
        if self.fail_open { Ok(open) } else { Err(err) }
    }
}

impl FailureStore for RedisFailureStore {
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut manager = self.connection().await?;
            let ping = ::redis::cmd("PING");
            match tokio::time::timeout(self.timeout, ping.query_async::<String>(&mut manager)).await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err(self.error(err)),
                Err(_) => Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!(
                        "redis at {} did not answer within {:?}",
                        self.address, self.timeout
                    ),
                )),
            }
        })
    }

    fn fails_open(&self) -> bool {
        self.fail_open
    }

    fn failures<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<FailureRecord>, StoreError>> {
        Box::pin(async move {
            match self
                .run::<Option<(u64, u64)>>(&self.failures_script, key, &[])
                .await
            {
                Ok(found) => Ok(found.map(|(count, since_ms)| FailureRecord {
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    since_last: Duration::from_millis(since_ms),
                })),
                Err(err) => self.unreachable(err, None),
            }
        })
    }

    fn record_failure<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u32, StoreError>> {
        // PEXPIRE needs at least 1 ms; a zero window would delete the counter at once.
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            match self
                .run::<u64>(&self.record_script, key, &[window_ms])
                .await
            {
                Ok(count) => Ok(u32::try_from(count).unwrap_or(u32::MAX)),
                Err(err) => self.unreachable(err, 0),
            }
        })
    }

    fn forget_one<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            match self.run::<u64>(&self.forget_script, key, &[]).await {
                Ok(_) => Ok(()),
                Err(err) => self.unreachable(err, ()),
            }
        })
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let deleted = async {
                let mut manager = self.connection().await?;
                let mut del = ::redis::cmd("DEL");
                del.arg(self.redis_key(key));
                match tokio::time::timeout(self.timeout, del.query_async::<u64>(&mut manager)).await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(self.error(err)),
                    Err(_) => Err(StoreError::new(
                        StoreErrorKind::Unavailable,
                        format!(
                            "redis at {} did not answer within {:?}",
                            self.address, self.timeout
                        ),
                    )),
                }
            };
            match deleted.await {
                Ok(()) => Ok(()),
                Err(err) => self.unreachable(err, ()),
            }
        })
    }
}

impl fmt::Debug for RedisFailureStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFailureStore")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("retry_after", &self.retry_after)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisFailureStore`].
#[derive(Clone)]
#[must_use]
pub struct RedisFailureStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    retry_after: Duration,
    fail_open: bool,
    ca_file: Option<PathBuf>,
    allow_insecure_tls: bool,
}

impl RedisFailureStoreBuilder {
    /// Namespaces the counters: keys become `portcullis:lockout:<prefix>:<key>`. Services that
    /// share a Redis but not their users need different prefixes; the instances of one service
    /// need the same one. Defaults to none (`portcullis:lockout:<key>`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for a connection, and then for each answer, before treating Redis as
    /// unreachable. Every Basic check waits on this store, so keep it short. Defaults to 500 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After a failed attempt to connect, how long requests are answered as unreachable without
    /// trying again. Defaults to 1 s.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    /// While Redis is unreachable, answers "no failures" and counts nothing, instead of failing
    /// closed (503). Dangerous: whoever can cut this service off from Redis (a network fault, or
    /// filling its memory) can then guess passwords without limit, slowed only by the hashing
    /// pool. Off by default.
    pub fn dangerous_fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// For a `rediss://` URL: the PEM file of the CA(s) that signed the Redis server's
    /// certificate. Only these are trusted then; the host name in the URL must match the
    /// certificate. Read once, by [`build`](Self::build). Defaults to none: the operating
    /// system's trusted roots (through `rustls-native-certs`).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Accepts a `rediss://…/#insecure` URL, which turns off every certificate check: whoever
    /// sits on the network path can read and answer as Redis, so can reset the counters and guess
    /// passwords without limit. Without this, such a URL is refused by [`build`](Self::build).
    /// Off by default.
    pub fn dangerous_allow_insecure_tls(mut self) -> Self {
        self.allow_insecure_tls = true;
        self
    }

    /// Builds the store. Checks the URL and the settings, reads the CA file; does not connect.
    pub fn build(self) -> Result<RedisFailureStore, RedisSettingError> {
        let info = self.url.as_str().into_connection_info().map_err(|err| {
            RedisSettingError::new(RedisSetting::Url, format!("not a usable Redis URL: {err}"))
        })?;
        let tls = match &info.addr {
            ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
            _ => None,
        };
        if tls == Some(true) && !self.allow_insecure_tls {
            return Err(RedisSettingError::new(
                RedisSetting::Url,
                "a `#insecure` Redis URL checks no certificate, so anyone on the network path can \
                 reset the lockout counters; give the CA with `redis_ca_file` instead, or set \
                 `dangerous_allow_insecure_tls = true`",
            ));
        }
        let client = match (&self.ca_file, tls) {
            (None, _) => Client::open(info),
            (Some(path), Some(_)) => {
                let pem = std::fs::read(path).map_err(|err| {
                    RedisSettingError::new(
                        RedisSetting::CaFile,
                        format!("cannot read `{}`: {err}", path.display()),
                    )
                })?;
                // An empty or non-PEM file would trust nothing and fail every connection later.
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(RedisSettingError::new(
                        RedisSetting::CaFile,
                        format!("`{}` holds no PEM certificate", path.display()),
                    ));
                }
                let certificates = TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Client::build_with_tls(info, certificates)
            }
            (Some(_), None) => {
                return Err(RedisSettingError::new(
                    RedisSetting::CaFile,
                    "a CA file needs a `rediss://` (TLS) URL",
                ));
            }
        }
        .map_err(|err| {
            RedisSettingError::new(
                RedisSetting::Url,
                format!("not a usable Redis URL or CA file: {err}"),
            )
        })?;
        if self.timeout.is_zero() {
            return Err(RedisSettingError::new(
                RedisSetting::Timeout,
                "the Redis timeout must be above zero",
            ));
        }
        if self.prefix.chars().any(char::is_control) {
            return Err(RedisSettingError::new(
                RedisSetting::KeyPrefix,
                "the Redis key prefix contains a control character",
            ));
        }
        let address = client.get_connection_info().addr.to_string();
        let namespace = if self.prefix.is_empty() {
            NAMESPACE.to_owned()
        } else {
            format!("{NAMESPACE}{}:", self.prefix)
        };
        Ok(RedisFailureStore {
            client,
            address,
            namespace,
            timeout: self.timeout,
            retry_after: self.retry_after,
            fail_open: self.fail_open,
            connection: tokio::sync::Mutex::new(Connection::default()),
            record_script: Script::new(RECORD_FAILURE),
            failures_script: Script::new(FAILURES),
            forget_script: Script::new(FORGET_ONE),
            warnings: Warnings::default(),
        })
    }
}

impl fmt::Debug for RedisFailureStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisFailureStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("retry_after", &self.retry_after)
            .field("fail_open", &self.fail_open)
            .field("ca_file", &self.ca_file)
            .field("allow_insecure_tls", &self.allow_insecure_tls)
            .finish_non_exhaustive()
    }
}

/// Rate-limited logging of an unreachable Redis.
#[derive(Default)]
struct Warnings {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Warnings {
    fn warn(&self, err: &StoreError, fail_open: bool) {
        let now = Instant::now();
        {
            // A poisoned lock only means a panic while holding a timestamp; it is still usable.
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *last = Some(now);
        }
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        if fail_open {
            tracing::warn!(
                error = %err,
                suppressed,
                "lockout store unreachable: failing open, failures are not counted"
            );
        } else {
            tracing::warn!(
                error = %err,
                suppressed,
                "lockout store unreachable: failing closed, requests that need it get 503"
            );
        }
    }
}

/// A setting of [`RedisFailureStoreBuilder`], as the builder names it: what a
/// [`RedisSettingError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisSetting {
    /// The URL given to [`RedisFailureStore::builder`].
    Url,
    /// [`RedisFailureStoreBuilder::ca_file`].
    CaFile,
    /// [`RedisFailureStoreBuilder::timeout`].
    Timeout,
    /// [`RedisFailureStoreBuilder::key_prefix`].
    KeyPrefix,
}

impl RedisSetting {
    /// The builder's name for the setting (`ca_file`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::CaFile => "ca_file",
            Self::Timeout => "timeout",
            Self::KeyPrefix => "key_prefix",
        }
    }
}

/// Why [`RedisFailureStoreBuilder::build`] refused: the setting at fault and what is wrong with
/// it. Converts into a [`ConfigError`] keyed by the setting's builder name; a configuration file
/// maps the setting to its own key (`basic.lockout.redis_ca_file`) instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", setting.name())]
pub struct RedisSettingError {
    setting: RedisSetting,
    message: String,
}

impl RedisSettingError {
    fn new(setting: RedisSetting, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }

    /// The setting at fault.
    pub fn setting(&self) -> RedisSetting {
        self.setting
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<RedisSettingError> for ConfigError {
    fn from(error: RedisSettingError) -> Self {
        ConfigError::new(error.message).with_key(error.setting.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced() {
        let plain = RedisFailureStore::builder("redis://127.0.0.1:1")
            .build()
            .unwrap();
        assert_eq!(
            plain.redis_key("user:alice"),
            "portcullis:lockout:user:alice"
        );
        let prefixed = RedisFailureStore::builder("redis://127.0.0.1:1")
            .key_prefix("billing")
            .build()
            .unwrap();
        assert_eq!(
            prefixed.redis_key("ip:192.0.2.1"),
            "portcullis:lockout:billing:ip:192.0.2.1"
        );
    }

    #[test]
    fn bad_settings_are_config_errors() {
        assert!(RedisFailureStore::builder("not a url").build().is_err());
        assert!(
            RedisFailureStore::builder("redis://127.0.0.1")
                .timeout(Duration::ZERO)
                .build()
                .is_err()
        );
    }

    /// A TCP port on 127.0.0.1 where nothing listens.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// Either way, an unreachable Redis is logged as a warning, once per 10 s, with how many
    /// warnings were held back.
    #[tokio::test]
    async fn an_outage_is_logged_once_per_interval_open_or_closed() {
        // Thread-local, and this test's runtime is single-threaded.
        let captured = crate::audit::CapturedLogs::start();
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let window = Duration::from_secs(60);

        let closed = RedisFailureStore::builder(&url).build().unwrap();
        for _ in 0..3 {
            let err = closed.failures("user:a").await.unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        }
        let open = RedisFailureStore::builder(&url)
            .dangerous_fail_open()
            .build()
            .unwrap();
        assert_eq!(open.failures("user:a").await.unwrap(), None);
        assert_eq!(open.record_failure("user:a", window).await.unwrap(), 0);
        open.clear("user:a").await.unwrap();

        let logs = captured.text();
        let closed_lines = logs.matches("failing closed").count();
        let open_lines = logs.matches("failing open").count();
        assert_eq!((closed_lines, open_lines), (1, 1), "{logs}");
        assert!(logs.contains("WARN"), "{logs}");
    }

    /// `#insecure` turns off certificate checks in the redis crate: refused unless allowed by
    /// name. Decided on the parsed URL.
    #[test]
    fn insecure_tls_urls_are_refused_unless_allowed() {
        let err = RedisFailureStore::builder("rediss://127.0.0.1:6380/#insecure")
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), RedisSetting::Url);
        assert!(err.message().contains("#insecure"), "{err}");
        assert!(
            RedisFailureStore::builder("rediss://127.0.0.1:6380/#insecure")
                .dangerous_allow_insecure_tls()
                .build()
                .is_ok()
        );
        assert!(
            RedisFailureStore::builder("rediss://u:hunter2@redis.internal:6380/0")
                .build()
                .is_ok()
        );
        assert!(
            RedisFailureStore::builder("redis://redis.internal:6379")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn a_ca_file_needs_tls_and_must_be_readable() {
        let err = RedisFailureStore::builder("redis://127.0.0.1:6379")
            .ca_file("/etc/hostname")
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), RedisSetting::CaFile, "{err}");
        let err = RedisFailureStore::builder("rediss://127.0.0.1:6380")
            .ca_file("/nonexistent/portcullis-ca.pem")
            .build()
            .unwrap_err();
        assert_eq!(err.setting(), RedisSetting::CaFile, "{err}");
        assert!(err.message().contains("portcullis-ca.pem"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let builder = RedisFailureStore::builder("redis://user:hunter2@127.0.0.1:6379");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let store = builder.build().unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
