//! Where seen proofs are remembered: [`ReplayCache`], in memory ([`MemoryReplayCache`]) or in
//! Redis ([`RedisReplayCache`], feature `redis`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;

use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;

/// Remembers the proofs already accepted, keyed on (key thumbprint, `jti`), so that each is
/// accepted once (RFC 9449 §11.1).
///
/// The authenticator records a proof only after its signature and the token verified, so
/// made-up proofs cannot fill it; an entry lives for as long as its proof could be accepted
/// (until `iat + max_age`).
pub trait ReplayCache: fmt::Debug + Send + Sync + 'static {
    /// Records the proof `(jkt, jti)` for `ttl`: `Ok(true)` when it was not seen before,
    /// `Ok(false)` when it was (a replay). An error (the cache is full of live entries, its
    /// store is unreachable) refuses the request with 503: a proof that cannot be remembered
    /// could be replayed.
    fn check_and_record<'a>(
        &'a self,
        jkt: &'a str,
        jti: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Checks that the cache's store answers now, for [`Gate::readiness`](crate::Gate::readiness)
    /// (an error there makes DPoP requests 503); `None` when there is nothing to check, as for
    /// an in-process cache. Defaults to `None`.
    fn ping(&self) -> Option<BoxFuture<'_, Result<(), StoreError>>> {
        None
    }

    /// Whether the cache accepts proofs unremembered when its store is unreachable (a
    /// `dangerous_` setting): readiness then reports an outage as degraded, not as not ready.
    /// Defaults to `false`.
    fn fails_open(&self) -> bool {
        false
    }
}

/// The readiness of `cache` within `timeout`, as the component `name`; `None` when it has
/// nothing to check.
pub(crate) async fn readiness(
    cache: &dyn ReplayCache,
    name: String,
    timeout: Duration,
) -> Option<crate::health::ComponentStatus> {
    use crate::health::ComponentStatus;
    let ping = cache.ping()?;
    Some(match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => ComponentStatus::ready(name, "the DPoP replay cache answers"),
        Ok(Err(err)) if cache.fails_open() => ComponentStatus::degraded(
            name,
            format!("{err}; proofs are accepted without being remembered"),
        ),
        Ok(Err(err)) => ComponentStatus::not_ready(name, err.to_string()),
        Err(_) if cache.fails_open() => ComponentStatus::degraded(name, "no answer in time"),
        Err(_) => ComponentStatus::not_ready(name, "the DPoP replay cache did not answer in time"),
    })
}

/// The entry key: SHA-256 of the thumbprint and the `jti`, so that an entry's size does not
/// depend on what the client sent.
pub(crate) fn entry_key(jkt: &str, jti: &str) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(jkt.as_bytes());
    context.update(&[0]);
    context.update(jti.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// A replay cache in this process's memory, of at most `capacity` entries.
///
/// It never evicts a live entry: when every slot holds a proof that could still be accepted,
/// a new proof is refused (503) rather than forgetting one that could then be replayed. Expired
/// entries are dropped as new ones come. Private to the process: several instances need a
/// shared cache ([`RedisReplayCache`](super::RedisReplayCache)).
pub struct MemoryReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    deadlines: HashMap<[u8; 32], Instant>,
    /// Every entry by deadline, soonest first (one item per entry: an entry is recorded once).
    queue: BinaryHeap<Reverse<(Instant, [u8; 32])>>,
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    /// How many entries it holds, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().deadlines.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent map (every update is one call).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, key: [u8; 32], ttl: Duration, now: Instant) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let State { deadlines, queue } = &mut *state;
        while let Some(Reverse((deadline, oldest))) = queue.peek().copied() {
            if deadline > now {
                break;
            }
            queue.pop();
            if deadlines.get(&oldest) == Some(&deadline) {
                deadlines.remove(&oldest);
            }
        }
        if deadlines.contains_key(&key) {
            return Ok(false);
        }
        // Every entry left is live: a full cache refuses rather than forget one.
        if deadlines.len() >= self.capacity.max(1) {
            return Err(StoreError::new(
                StoreErrorKind::CapacityExceeded,
                format!(
                    "the DPoP replay cache holds {} live proofs, its capacity",
                    self.capacity
                ),
            ));
        }
        let deadline = now + ttl;
        deadlines.insert(key, deadline);
        queue.push(Reverse((deadline, key)));
        Ok(true)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_record<'a>(
        &'a self,
        jkt: &'a str,
        jti: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let result = self.record(entry_key(jkt, jti), ttl, Instant::now());
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(feature = "redis")]
pub use self::redis_cache::{RedisReplayCache, RedisReplayCacheBuilder};

#[cfg(feature = "redis")]
mod redis_cache {
    use std::fmt;
    use std::path::PathBuf;
    use std::time::Duration;

    use base64::Engine;

    use super::{ReplayCache, entry_key};
    use crate::error::{ConfigError, StoreError};
    use crate::future::BoxFuture;
    use crate::jwt::compact::BASE64URL;
    use crate::redis::{RedisConnection, RedisOptions};

    /// Every key this cache writes starts with this.
    const NAMESPACE: &str = "portcullis:dpop:";

    /// A replay cache in Redis, shared by every instance of a service: a proof accepted by one
    /// is refused as a replay by the others. One `SET key 1 NX PX ttl` per proof, so two
    /// instances racing on one proof cannot both accept it.
    ///
    /// The connection is made at the first use and shared with nothing else. While Redis cannot
    /// be reached, DPoP requests get 503 (a proof that cannot be remembered could be replayed),
    /// unless [`dangerous_accept_when_unreachable`](RedisReplayCacheBuilder::dangerous_accept_when_unreachable).
    pub struct RedisReplayCache {
        connection: RedisConnection,
        namespace: String,
        accept_when_unreachable: bool,
    }

    impl RedisReplayCache {
        /// Starts building a cache for the Redis at `url` (`redis://`, `rediss://`,
        /// `redis+unix://`, as for [`RedisFailureStore`](crate::lockout::RedisFailureStore)).
        pub fn builder(url: impl Into<String>) -> RedisReplayCacheBuilder {
            RedisReplayCacheBuilder {
                options: RedisOptions::new(url.into()),
                prefix: String::new(),
                accept_when_unreachable: false,
            }
        }

        fn redis_key(&self, jkt: &str, jti: &str) -> String {
            let mut key = self.namespace.clone();
            BASE64URL.encode_string(entry_key(jkt, jti), &mut key);
            key
        }
    }

    impl ReplayCache for RedisReplayCache {
        fn check_and_record<'a>(
            &'a self,
            jkt: &'a str,
            jti: &'a str,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async move {
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut set = ::redis::cmd("SET");
                set.arg(self.redis_key(jkt, jti))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms);
                match self.connection.query::<Option<String>>(&set).await {
                    Ok(answer) => Ok(answer.is_some()),
                    Err(err) => {
                        self.connection.warn(
                            &err,
                            self.accept_when_unreachable,
                            "DPoP replay cache",
                            "proofs are accepted without being remembered",
                        );
                        if self.accept_when_unreachable {
                            Ok(true)
                        } else {
                            Err(err)
                        }
                    }
                }
            })
        }

        fn ping(&self) -> Option<BoxFuture<'_, Result<(), StoreError>>> {
            Some(self.ping_now())
        }

        fn fails_open(&self) -> bool {
            self.accept_when_unreachable
        }
    }

    impl RedisReplayCache {
        fn ping_now(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async move {
                self.connection
                    .query::<String>(&::redis::cmd("PING"))
                    .await
                    .map(|_| ())
            })
        }
    }

    impl fmt::Debug for RedisReplayCache {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RedisReplayCache")
                .field("connection", &self.connection)
                .field("namespace", &self.namespace)
                .field("accept_when_unreachable", &self.accept_when_unreachable)
                .finish()
        }
    }

    /// Builds a [`RedisReplayCache`].
    #[derive(Clone)]
    #[must_use]
    pub struct RedisReplayCacheBuilder {
        options: RedisOptions,
        prefix: String,
        accept_when_unreachable: bool,
    }

    impl RedisReplayCacheBuilder {
        /// Namespaces the entries: keys become `portcullis:dpop:<prefix>:<hash>`. The instances
        /// of one service need the same prefix. Defaults to none.
        pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.prefix = prefix.into();
            self
        }

        /// How long to wait for a connection, then for each answer. Defaults to 500 ms.
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.options.timeout = timeout;
            self
        }

        /// For a `rediss://` URL: the PEM file of the CA(s) that signed the server's
        /// certificate. Defaults to the operating system's roots.
        pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
            self.options.ca_file = Some(path.into());
            self
        }

        /// While Redis is unreachable, accepts proofs without remembering them instead of
        /// answering 503. Dangerous: whoever can cut this service off from Redis can replay a
        /// captured proof (with its token) within its `max_age`. Off by default.
        pub fn dangerous_accept_when_unreachable(mut self) -> Self {
            self.accept_when_unreachable = true;
            self
        }

        /// Checks the URL and settings; does not connect.
        pub fn build(self) -> Result<RedisReplayCache, ConfigError> {
            if self.prefix.chars().any(char::is_control) {
                return Err(
                    ConfigError::new("the Redis key prefix contains a control character")
                        .with_key("key_prefix"),
                );
            }
            let connection = RedisConnection::open(self.options)?;
            let namespace = if self.prefix.is_empty() {
                NAMESPACE.to_owned()
            } else {
                format!("{NAMESPACE}{}:", self.prefix)
            };
            Ok(RedisReplayCache {
                connection,
                namespace,
                accept_when_unreachable: self.accept_when_unreachable,
            })
        }
    }

    impl fmt::Debug for RedisReplayCacheBuilder {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RedisReplayCacheBuilder")
                .field("prefix", &self.prefix)
                .field("accept_when_unreachable", &self.accept_when_unreachable)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_recorded_once_and_forgotten_when_it_expires() {
        let cache = MemoryReplayCache::new(10);
        let now = Instant::now();
        let key = entry_key("jkt", "jti-1");
        assert!(cache.record(key, Duration::from_secs(60), now).unwrap());
        assert!(!cache.record(key, Duration::from_secs(60), now).unwrap());
        let later = now + Duration::from_secs(61);
        assert!(cache.record(key, Duration::from_secs(60), later).unwrap());
        assert_ne!(entry_key("jkt", "jti-1"), entry_key("jkt2", "jti-1"));
        assert_ne!(entry_key("a", "bc"), entry_key("ab", "c"));
    }

    #[test]
    fn a_full_cache_refuses_and_never_evicts_a_live_entry() {
        let cache = MemoryReplayCache::new(3);
        let now = Instant::now();
        for i in 0..3 {
            let key = entry_key("k", &i.to_string());
            assert!(cache.record(key, Duration::from_secs(60), now).unwrap());
        }
        let err = cache
            .record(entry_key("k", "3"), Duration::from_secs(60), now)
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::CapacityExceeded);
        // Every live entry is still there: its replay is still caught.
        for i in 0..3 {
            let key = entry_key("k", &i.to_string());
            assert!(!cache.record(key, Duration::from_secs(60), now).unwrap());
        }
        // Once one expires, there is room again.
        let later = now + Duration::from_secs(61);
        assert!(
            cache
                .record(entry_key("k", "3"), Duration::from_secs(60), later)
                .unwrap()
        );
        assert_eq!(cache.len(), 1);
    }
}
