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
use std::time::Duration;

use ::redis::Script;

use super::{FailureRecord, FailureStore};
use crate::error::StoreError;
use crate::future::BoxFuture;
use crate::redis::{RedisConnection, RedisOptions};
pub use crate::redis::{RedisSetting, RedisSettingError};

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
    connection: RedisConnection,
    namespace: String,
    fail_open: bool,
    record_script: Script,
    failures_script: Script,
    forget_script: Script,
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

    /// Runs `script` on `key` with `args`, within the timeout.
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        key: &str,
        args: &[u64],
    ) -> Result<T, StoreError> {
        self.connection
            .invoke(script, self.redis_key(key), args)
            .await
    }

    /// Applies the configured choice to a failed operation: the error (fail closed), or `open`
    /// (fail open). Logs either way.
    fn unreachable<T>(&self, err: StoreError, open: T) -> Result<T, StoreError> {
        self.connection.warn(
            &err,
            self.fail_open,
            "lockout store",
            "failures are not counted",
        );
        if self.fail_open { Ok(open) } else { Err(err) }
    }
}

impl FailureStore for RedisFailureStore {
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.connection
                .query::<String>(&::redis::cmd("PING"))
                .await
                .map(|_| ())
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
            let mut del = ::redis::cmd("DEL");
            del.arg(self.redis_key(key));
            let deleted = self.connection.query::<u64>(&del).await.map(|_| ());
            match deleted {
                Ok(()) => Ok(()),
                Err(err) => self.unreachable(err, ()),
            }
        })
    }
}

impl fmt::Debug for RedisFailureStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFailureStore")
            .field("connection", &self.connection)
            .field("namespace", &self.namespace)
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
        if self.prefix.chars().any(char::is_control) {
            return Err(RedisSettingError::new(
                RedisSetting::KeyPrefix,
                "the Redis key prefix contains a control character",
            ));
        }
        let mut options = RedisOptions::new(self.url);
        options.timeout = self.timeout;
        options.retry_after = self.retry_after;
        options.ca_file = self.ca_file;
        options.allow_insecure_tls = self.allow_insecure_tls;
        let connection = RedisConnection::open(options)?;
        let namespace = if self.prefix.is_empty() {
            NAMESPACE.to_owned()
        } else {
            format!("{NAMESPACE}{}:", self.prefix)
        };
        Ok(RedisFailureStore {
            connection,
            namespace,
            fail_open: self.fail_open,
            record_script: Script::new(RECORD_FAILURE),
            failures_script: Script::new(FAILURES),
            forget_script: Script::new(FORGET_ONE),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StoreErrorKind;

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
