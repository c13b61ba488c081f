//! One Redis connection, as the stores that keep state in Redis share it: the lockout counters
//! (`lockout::RedisFailureStore`) and the DPoP replay cache (`jwt::dpop::RedisReplayCache`).
//! Each store owns one; this module is how it is opened (URL, TLS, CA file), connected lazily,
//! bounded in time, and how its outages are logged, so the stores never import each other.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    Client, Cmd, ConnectionAddr, FromRedisValue, IntoConnectionInfo, RedisError, Script,
    TlsCertificates,
};

use crate::error::{ConfigError, StoreError, StoreErrorKind};

/// How often, at most, an unreachable Redis is reported in the log: an outage under load would
/// otherwise log twice per request.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How to reach Redis: what a store's builder collects.
#[derive(Clone)]
pub(crate) struct RedisOptions {
    pub(crate) url: String,
    pub(crate) timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) allow_insecure_tls: bool,
}

impl RedisOptions {
    /// The defaults: 500 ms timeout, 1 s between connection attempts, the system's roots.
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            timeout: Duration::from_millis(500),
            retry_after: Duration::from_secs(1),
            ca_file: None,
            allow_insecure_tls: false,
        }
    }
}

/// A lazily made, multiplexed connection that reconnects by itself; every call is bounded by
/// the timeout, and after a failed attempt to connect, calls fail at once for `retry_after`.
pub(crate) struct RedisConnection {
    client: Client,
    /// `host:port` (or socket path) for messages; never the URL, which may hold a password.
    address: String,
    timeout: Duration,
    retry_after: Duration,
    connection: tokio::sync::Mutex<Connection>,
    warnings: Warnings,
}

/// The connection, or when the last attempt to make one failed.
#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

impl RedisConnection {
    /// Checks the URL and the settings, reads the CA file; does not connect.
    pub(crate) fn open(options: RedisOptions) -> Result<Self, RedisSettingError> {
        let info = options.url.as_str().into_connection_info().map_err(|err| {
            RedisSettingError::new(RedisSetting::Url, format!("not a usable Redis URL: {err}"))
        })?;
        let tls = match &info.addr {
            ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
            _ => None,
        };
        if tls == Some(true) && !options.allow_insecure_tls {
            return Err(RedisSettingError::new(
                RedisSetting::Url,
                "a `#insecure` Redis URL checks no certificate, so anyone on the network path can \
                 answer as Redis; give the CA with `redis_ca_file` instead, or set \
                 `dangerous_allow_insecure_tls = true`",
            ));
        }
        let client = match (&options.ca_file, tls) {
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
        if options.timeout.is_zero() {
            return Err(RedisSettingError::new(
                RedisSetting::Timeout,
                "the Redis timeout must be above zero",
            ));
        }
        let address = client.get_connection_info().addr.to_string();
        Ok(Self {
            client,
            address,
            timeout: options.timeout,
            retry_after: options.retry_after,
            connection: tokio::sync::Mutex::new(Connection::default()),
            warnings: Warnings::default(),
        })
    }

    /// The connection, making it if there is none. After a failed attempt, further attempts wait
    /// `retry_after`, so requests during an outage fail at once instead of each waiting for a
    /// connection timeout.
    pub(crate) async fn manager(&self) -> Result<ConnectionManager, StoreError> {
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

    /// Runs one command within the timeout.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, StoreError> {
        let mut manager = self.manager().await?;
        self.timed(command.query_async(&mut manager)).await
    }

    /// Runs `script` on `key` with `args`, within the timeout.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        script: &Script,
        key: String,
        args: &[u64],
    ) -> Result<T, StoreError> {
        let mut manager = self.manager().await?;
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(*arg);
        }
        self.timed(invocation.invoke_async(&mut manager)).await
    }

    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
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

    /// Logs an outage, at most once every 10 s: `what` names the store, and the message says
    /// whether it fails open or closed.
    pub(crate) fn warn(&self, err: &StoreError, fail_open: bool, what: &str, open_means: &str) {
        self.warnings.warn(err, fail_open, what, open_means);
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .field("retry_after", &self.retry_after)
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
    fn warn(&self, err: &StoreError, fail_open: bool, what: &str, open_means: &str) {
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
                "{what} unreachable: failing open, {open_means}"
            );
        } else {
            tracing::warn!(
                error = %err,
                suppressed,
                "{what} unreachable: failing closed, requests that need it get 503"
            );
        }
    }
}

/// A setting of a Redis store's builder, as the builder names it: what a
/// [`RedisSettingError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisSetting {
    /// The URL given to the builder.
    Url,
    /// The builder's `ca_file`.
    CaFile,
    /// The builder's `timeout`.
    Timeout,
    /// The builder's `key_prefix`.
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

/// Why a Redis store's builder refused: the setting at fault and what is wrong with it.
/// Converts into a [`ConfigError`] keyed by the setting's builder name; a configuration file
/// maps the setting to its own key (`basic.lockout.redis_ca_file`) instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", setting.name())]
pub struct RedisSettingError {
    setting: RedisSetting,
    message: String,
}

impl RedisSettingError {
    pub(crate) fn new(setting: RedisSetting, message: impl Into<String>) -> Self {
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
