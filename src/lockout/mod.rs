//! Brute-force lockout: failure counters per user name and per client IP, with exponential
//! back-off. A locked-out request is refused with 429 before any password hashing.
//!
//! An IPv4 client is counted by its address; an IPv6 client by its prefix (a /64 by default,
//! [`Lockout::ipv6_prefix_len`]), since one host is routinely given a whole /64 and could
//! otherwise spray guesses from as many addresses as it likes.
//!
//! The counters live behind [`FailureStore`], so several instances can share them (a Redis
//! backend); [`MemoryFailureStore`] keeps them in a bounded in-process table.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv6Net};

use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::health::{self, ComponentStatus};

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::{
    RedisFailureStore, RedisFailureStoreBuilder, RedisSetting, RedisSettingError,
};

/// The failures recorded for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureRecord {
    /// Failures since the counter was last cleared or expired.
    pub count: u32,
    /// How long ago the last failure was.
    pub since_last: Duration,
}

impl FailureRecord {
    /// `count` failures, the last one `since_last` ago: what a [`FailureStore`] returns.
    pub fn new(count: u32, since_last: Duration) -> Self {
        Self { count, since_last }
    }
}

/// Where failure counters live. Implementations must increment atomically and forget a key
/// `window` after its last failure.
pub trait FailureStore: fmt::Debug + Send + Sync + 'static {
    /// The failures recorded for `key`, if any.
    fn failures<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<FailureRecord>, StoreError>>;

    /// Records one failure for `key`; returns the new count.
    fn record_failure<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u32, StoreError>>;

    /// Forgets the failures of `key`.
    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes back one failure of `key` (an attempt counted before it was checked, which then
    /// was not), keeping the time of the last one. The default does nothing, which only ever
    /// counts too much: it fails closed.
    fn forget_one<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = key;
        Box::pin(async { Ok(()) })
    }

    /// A cheap round trip proving the store answers (Redis: `PING`), for
    /// [`Gate::readiness`](crate::Gate::readiness); `Unavailable` when it does not, whatever
    /// [`fails_open`](Self::fails_open) says. The default answers `Ok` at once: an in-process
    /// store always answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether requests go on when this store cannot answer (counting nothing) instead of being
    /// refused with 503. Readiness then reports the store `degraded`, not down: the Gate still
    /// decides requests without it. Defaults to `false`.
    fn fails_open(&self) -> bool {
        false
    }
}

/// How an attempt begun with [`Lockout::begin_attempt`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptEnd {
    /// The password was right: the user's count starts over, and this attempt's count for the
    /// client IP is taken back (the IP's earlier failures stay: one valid account must not
    /// reset an attacker's count against others).
    Succeeded,
    /// The password was wrong (or the user unknown or disabled): it stays counted for the user
    /// and for the client IP.
    Failed,
    /// The password was never checked (the hashing pool was busy, a store failed): this
    /// attempt's counts for the user and the client IP are taken back.
    NotChecked,
}

/// The lowest lock threshold: a lock needs at least two failures. A full [`MemoryFailureStore`]
/// makes room by evicting counters of one failure; with a threshold of 1 such a counter would be
/// a lock, and a flood of new names could evict it.
pub const MIN_THRESHOLD: u32 = 2;

/// Lockout rules and the store that counts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Lockout {
    store: Arc<dyn FailureStore>,
    user_threshold: u32,
    ip_threshold: u32,
    base_delay: Duration,
    max_delay: Duration,
    window: Duration,
    ipv6_prefix_len: u8,
}

impl Default for Lockout {
    fn default() -> Self {
        Self::new(MemoryFailureStore::default())
    }
}

impl Lockout {
    /// Lockout with the default rules, counting in `store`.
    pub fn new(store: impl FailureStore) -> Self {
        Self {
            store: Arc::new(store),
            user_threshold: 5,
            ip_threshold: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            window: Duration::from_secs(60 * 60),
            ipv6_prefix_len: DEFAULT_IPV6_PREFIX_LEN,
        }
    }

    /// Lockout with the default rules, counting in a store shared with other lockouts (a
    /// reloaded configuration keeps its predecessor's memory counters).
    pub(crate) fn shared(store: Arc<dyn FailureStore>) -> Self {
        Self {
            store,
            ..Self::default()
        }
    }

    /// Failures for one user name before it is locked. Defaults to 5; at least
    /// [`MIN_THRESHOLD`] (a lower value is raised to it).
    pub fn user_threshold(mut self, failures: u32) -> Self {
        self.user_threshold = failures.max(MIN_THRESHOLD);
        self
    }

    /// Failures from one client IP before it is locked. Defaults to 20 (an office behind one NAT
    /// shares an address); at least [`MIN_THRESHOLD`] (a lower value is raised to it).
    pub fn ip_threshold(mut self, failures: u32) -> Self {
        self.ip_threshold = failures.max(MIN_THRESHOLD);
        self
    }

    /// The first lock's length; each further failure doubles it. Defaults to 1 s.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest lock. Defaults to 15 minutes.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How long after its last failure a counter is forgotten. Defaults to 1 hour (at least the
    /// longest lock).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How many leading bits of an IPv6 client address share one per-IP counter. Defaults to 64:
    /// a host given a /64 (the usual assignment, and what SLAAC and privacy addresses draw from)
    /// is one client, whichever of its 2^64 addresses it sends from. 128 counts each address
    /// apart, which lets such a host spray guesses; a shorter prefix counts a whole site
    /// together. Values above 128 are lowered to 128. IPv4 clients are always counted by their
    /// address (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn ipv6_prefix_len(mut self, bits: u8) -> Self {
        self.ipv6_prefix_len = bits.min(128);
        self
    }

    /// The readiness of the counters' store (named `name`): not ready when it does not answer
    /// within `timeout`, degraded instead when it [fails open](FailureStore::fails_open).
    pub(crate) fn readiness(
        &self,
        name: &'static str,
        timeout: Duration,
    ) -> impl Future<Output = ComponentStatus> + Send + 'static {
        let store = Arc::clone(&self.store);
        async move {
            let status = health::ping(name, timeout, store.ping()).await;
            if !status.status.is_ready() && store.fails_open() {
                return ComponentStatus::degraded(
                    name,
                    format!(
                        "{}; it fails open, so requests go on without lockout",
                        status.reason
                    ),
                );
            }
            status
        }
    }

    /// How long the caller must wait, if the user or the IP is locked out.
    pub async fn retry_after(
        &self,
        user: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<Duration>, StoreError> {
        let mut wait = self.wait_for(&user_key(user), self.user_threshold).await?;
        if let Some(ip) = ip {
            wait = wait.max(self.wait_for(&self.ip_key(ip), self.ip_threshold).await?);
        }
        Ok(wait)
    }

    /// Counts an attempt for `user` and for the client IP *before* its password is checked,
    /// unless the user or the IP is locked out, in which case it returns how long to wait and
    /// counts nothing. End every attempt it lets through with [`end_attempt`](Self::end_attempt).
    ///
    /// Counting first is what makes checks running at once (on one instance, or on several
    /// sharing a store) lock out after as many failures as checks one after another: each takes
    /// its own number, and those beyond the threshold are refused, where checking and counting
    /// afterwards would let every one of them through to the hash.
    pub async fn begin_attempt(
        &self,
        user: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<Duration>, StoreError> {
        let ip_key = ip.map(|ip| self.ip_key(ip));
        if let Some(key) = &ip_key
            && let Some(wait) = self.count(key, self.ip_threshold).await?
        {
            return Ok(Some(wait));
        }
        let refused = match self.count(&user_key(user), self.user_threshold).await {
            Ok(None) => return Ok(None),
            Ok(Some(wait)) => Ok(Some(wait)),
            Err(err) => Err(err),
        };
        // The user refused this attempt: it is not one against the IP either.
        if let Some(key) = &ip_key {
            self.store.forget_one(key).await?;
        }
        refused
    }

    /// Ends an attempt [`begin_attempt`](Self::begin_attempt) let through.
    pub async fn end_attempt(
        &self,
        user: &str,
        ip: Option<IpAddr>,
        end: AttemptEnd,
    ) -> Result<(), StoreError> {
        let ip_key = ip.map(|ip| self.ip_key(ip));
        match end {
            AttemptEnd::Succeeded => self.record_success(user).await?,
            AttemptEnd::Failed => return Ok(()),
            AttemptEnd::NotChecked => self.store.forget_one(&user_key(user)).await?,
        }
        // Exactly this attempt's count: never a clear, which would forget other guesses.
        match ip_key {
            Some(key) => self.store.forget_one(&key).await,
            None => Ok(()),
        }
    }

    /// Counts one attempt on `key` unless it is locked; returns the wait when it is, or when
    /// attempts counted at the same time took it past `threshold` (then this one is taken back).
    async fn count(&self, key: &str, threshold: u32) -> Result<Option<Duration>, StoreError> {
        let before = self.store.failures(key).await?;
        if let Some(wait) = before.and_then(|record| self.lock_left(record, threshold)) {
            return Ok(Some(wait));
        }
        let count = self
            .store
            .record_failure(key, self.counter_window())
            .await?;
        let expected = before.map_or(1, |record| record.count.saturating_add(1));
        if count > threshold && count != expected {
            // Other attempts were counted between the read and the increment, and this one is
            // past the threshold: it is one of the guesses a lock exists to stop.
            self.store.forget_one(key).await?;
            return Ok(Some(self.lock_after(count - 1, threshold)));
        }
        Ok(None)
    }

    /// Records a failed attempt for the user and the IP.
    pub async fn record_failure(&self, user: &str, ip: Option<IpAddr>) -> Result<(), StoreError> {
        let window = self.counter_window();
        self.store.record_failure(&user_key(user), window).await?;
        if let Some(ip) = ip {
            self.store.record_failure(&self.ip_key(ip), window).await?;
        }
        Ok(())
    }

    /// Clears the user's counter after a successful login. The IP's counter is kept: one valid
    /// account must not reset an attacker's count against others.
    pub async fn record_success(&self, user: &str) -> Result<(), StoreError> {
        self.store.clear(&user_key(user)).await
    }

    async fn wait_for(&self, key: &str, threshold: u32) -> Result<Option<Duration>, StoreError> {
        let record = self.store.failures(key).await?;
        Ok(record.and_then(|record| self.lock_left(record, threshold)))
    }

    /// What is left of the lock `record` puts on its key, if any.
    fn lock_left(&self, record: FailureRecord, threshold: u32) -> Option<Duration> {
        if record.count < threshold {
            return None;
        }
        let lock = self.lock_after(record.count, threshold);
        lock.checked_sub(record.since_last).filter(|d| !d.is_zero())
    }

    /// How long `failures` (at least `threshold`) lock a key after the last of them.
    fn lock_after(&self, failures: u32, threshold: u32) -> Duration {
        let doublings = failures.saturating_sub(threshold).min(30);
        self.base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    /// How long a counter lives after its last failure: at least the longest lock.
    fn counter_window(&self) -> Duration {
        self.window.max(self.max_delay)
    }

    /// The per-IP counter's key: the IPv4 address, or the IPv6 prefix.
    fn ip_key(&self, ip: IpAddr) -> String {
        match ip.to_canonical() {
            IpAddr::V4(v4) => format!("ip:{v4}"),
            IpAddr::V6(v6) => {
                let net = Ipv6Net::new(v6, self.ipv6_prefix_len)
                    .map_or(IpNet::V6(Ipv6Net::from(v6)), |net| IpNet::V6(net.trunc()));
                format!("ip:{net}")
            }
        }
    }
}

/// The default for [`Lockout::ipv6_prefix_len`].
pub const DEFAULT_IPV6_PREFIX_LEN: u8 = 64;

fn user_key(user: &str) -> String {
    format!("user:{user}")
}

/// Failure counters in a bounded in-process table.
///
/// When the table is full, expired counters are purged, then counters of one failure, which are
/// below every lock threshold ([`MIN_THRESHOLD`]), so a lock is never evicted. If it is still full
/// (an attacker holding that many keys locked), attempts for names not in it cannot be counted
/// and the store answers `CapacityExceeded`, which Basic requests see as 503: fail closed.
#[derive(Debug)]
pub struct MemoryFailureStore {
    table: Mutex<Table>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    last_purge: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    count: u32,
    last: Instant,
    window: Duration,
}

/// How many keys (user names and client IPs) a [`MemoryFailureStore`] holds unless told
/// otherwise ([`MemoryFailureStore::default`], and `[basic.lockout] memory_capacity`).
pub const DEFAULT_MEMORY_CAPACITY: usize = 100_000;

impl Default for MemoryFailureStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_MEMORY_CAPACITY)
    }
}

impl MemoryFailureStore {
    /// A table holding at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            capacity: capacity.max(1),
        }
    }

    /// How many keys are held now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds plain counters: a panic elsewhere cannot leave one half-written.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Table {
    fn make_room(&mut self, capacity: usize, now: Instant) -> bool {
        if self.entries.len() < capacity {
            return true;
        }
        // Purging scans the table: at most once a second, so a flood cannot make every request
        // pay for a full scan.
        if self
            .last_purge
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        self.last_purge = Some(now);
        self.entries
            .retain(|_, e| now.duration_since(e.last) < e.window);
        if self.entries.len() >= capacity {
            // A single failure locks no one (thresholds are at least `MIN_THRESHOLD`, 2), and a
            // full table of them is the flood this bound exists for.
            self.entries.retain(|_, e| e.count >= MIN_THRESHOLD);
        }
        self.entries.len() < capacity
    }
}

impl FailureStore for MemoryFailureStore {
    fn failures<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<FailureRecord>, StoreError>> {
        let now = Instant::now();
        let record = self.lock().entries.get(key).and_then(|e| {
            let since_last = now.duration_since(e.last);
            (since_last < e.window).then_some(FailureRecord {
                count: e.count,
                since_last,
            })
        });
        Box::pin(async move { Ok(record) })
    }

    fn record_failure<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u32, StoreError>> {
        let now = Instant::now();
        let mut table = self.lock();
        let result = if let Some(e) = table.entries.get_mut(key) {
            if now.duration_since(e.last) >= e.window {
                e.count = 0;
            }
            e.count = e.count.saturating_add(1);
            e.last = now;
            e.window = window;
            Ok(e.count)
        } else if table.make_room(self.capacity, now) {
            let entry = Entry {
                count: 1,
                last: now,
                window,
            };
            table.entries.insert(key.to_owned(), entry);
            Ok(1)
        } else {
            Err(StoreError::new(
                StoreErrorKind::CapacityExceeded,
                "lockout table is full",
            ))
        };
        drop(table);
        Box::pin(async move { result })
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().entries.remove(key);
        Box::pin(async move { Ok(()) })
    }

    fn forget_one<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(key) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                table.entries.remove(key);
            }
        }
        drop(table);
        Box::pin(async move { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn locks_after_threshold_and_backs_off() {
        let lockout = Lockout::default()
            .user_threshold(3)
            .base_delay(Duration::from_secs(10));
        for _ in 0..2 {
            lockout.record_failure("alice", None).await.unwrap();
        }
        assert_eq!(lockout.retry_after("alice", None).await.unwrap(), None);
        lockout.record_failure("alice", None).await.unwrap();
        let first = lockout.retry_after("alice", None).await.unwrap().unwrap();
        assert!(first > Duration::from_secs(9) && first <= Duration::from_secs(10));
        lockout.record_failure("alice", None).await.unwrap();
        let second = lockout.retry_after("alice", None).await.unwrap().unwrap();
        assert!(second > Duration::from_secs(19), "doubles: {second:?}");
        lockout.record_success("alice").await.unwrap();
        assert_eq!(lockout.retry_after("alice", None).await.unwrap(), None);
    }

    #[tokio::test]
    async fn attempts_are_counted_when_they_begin_and_ended_as_they_went() {
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let lockout = Lockout::default()
            .user_threshold(3)
            .ip_threshold(10)
            .base_delay(Duration::from_secs(10));
        let count = |key: String| {
            let lockout = lockout.clone();
            async move { lockout.store.failures(&key).await.unwrap().map(|r| r.count) }
        };
        // Counted before any check, so three begun attempts lock the fourth out.
        for _ in 0..3 {
            assert_eq!(
                lockout.begin_attempt("alice", Some(ip)).await.unwrap(),
                None
            );
        }
        let wait = lockout.begin_attempt("alice", Some(ip)).await.unwrap();
        assert!(wait.is_some_and(|w| w > Duration::from_secs(9)), "{wait:?}");
        assert_eq!(
            count(user_key("alice")).await,
            Some(3),
            "a refused attempt is not counted"
        );
        assert_eq!(
            count(lockout.ip_key(ip)).await,
            Some(3),
            "nor counted against the IP"
        );
        // Ends: a failure stays counted for the user and the IP; an unchecked attempt is taken
        // back from both; a success starts the user over and takes back only its own IP count.
        lockout
            .end_attempt("alice", Some(ip), AttemptEnd::Failed)
            .await
            .unwrap();
        assert_eq!(count(lockout.ip_key(ip)).await, Some(3));
        assert_eq!(lockout.begin_attempt("bob", Some(ip)).await.unwrap(), None);
        assert_eq!(count(lockout.ip_key(ip)).await, Some(4));
        lockout
            .end_attempt("bob", Some(ip), AttemptEnd::NotChecked)
            .await
            .unwrap();
        assert_eq!(count(user_key("bob")).await, None);
        assert_eq!(count(lockout.ip_key(ip)).await, Some(3));
        assert_eq!(
            lockout.begin_attempt("carol", Some(ip)).await.unwrap(),
            None
        );
        lockout
            .end_attempt("carol", Some(ip), AttemptEnd::Succeeded)
            .await
            .unwrap();
        assert_eq!(count(user_key("carol")).await, None);
        assert_eq!(count(lockout.ip_key(ip)).await, Some(3));
    }

    /// Issue #15: one host with a /64 sprayed guesses from 50 addresses and was never locked.
    #[tokio::test]
    async fn ipv6_clients_are_counted_by_prefix_and_ipv4_by_address() {
        let lockout = Lockout::default().ip_threshold(3);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        for (i, address) in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "2001:db8:1:2::abcd",
        ]
        .into_iter()
        .enumerate()
        {
            lockout
                .record_failure(&format!("u{i}"), Some(ip(address)))
                .await
                .unwrap();
        }
        let same_64 = lockout.retry_after("v", Some(ip("2001:db8:1:2::77"))).await;
        assert!(same_64.unwrap().is_some(), "the whole /64 is locked");
        let next_64 = lockout.retry_after("v", Some(ip("2001:db8:1:3::1"))).await;
        assert_eq!(next_64.unwrap(), None, "the next /64 is another client");
        assert_eq!(
            lockout.ip_key(ip("2001:db8:1:2::1")),
            "ip:2001:db8:1:2::/64"
        );
        // IPv4 by address; an IPv4-mapped IPv6 address is that IPv4 address.
        assert_eq!(lockout.ip_key(ip("192.0.2.1")), "ip:192.0.2.1");
        assert_eq!(lockout.ip_key(ip("::ffff:192.0.2.1")), "ip:192.0.2.1");
        // The prefix is configurable; 128 is one counter per address.
        let per_address = Lockout::default().ipv6_prefix_len(200);
        assert_eq!(per_address.ip_key(ip("2001:db8::1")), "ip:2001:db8::1/128");
        let per_48 = Lockout::default().ipv6_prefix_len(48);
        assert_eq!(per_48.ip_key(ip("2001:db8:1:2::1")), "ip:2001:db8:1::/48");
    }

    /// Issue #15: the IP's count was read before hashing and incremented after, so guesses for
    /// many users at once all passed a threshold none of them had reached yet.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn attempts_begun_at_once_never_pass_the_ip_threshold() {
        let lockout = Lockout::default().ip_threshold(5);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let lockout = lockout.clone();
            tasks.spawn(async move {
                lockout
                    .begin_attempt(&format!("user{i}"), Some(ip))
                    .await
                    .unwrap()
                    .is_none()
            });
        }
        let mut begun = 0;
        while let Some(ok) = tasks.join_next().await {
            begun += usize::from(ok.unwrap());
        }
        assert_eq!(begun, 5);
    }

    #[tokio::test]
    async fn ip_counter_survives_a_success() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let lockout = Lockout::default().ip_threshold(2);
        lockout.record_failure("a", Some(ip)).await.unwrap();
        lockout.record_failure("b", Some(ip)).await.unwrap();
        lockout.record_success("b").await.unwrap();
        assert!(lockout.retry_after("c", Some(ip)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn table_is_bounded_and_fails_closed() {
        let store = MemoryFailureStore::with_capacity(4);
        let window = Duration::from_secs(60);
        for i in 0..4 {
            let key = format!("k{i}");
            store.record_failure(&key, window).await.unwrap();
            store.record_failure(&key, window).await.unwrap();
        }
        let err = store.record_failure("new", window).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::CapacityExceeded);
        assert_eq!(store.len(), 4);
    }

    #[tokio::test]
    async fn a_threshold_of_one_is_raised_so_a_full_table_never_evicts_a_lock() {
        let store = Arc::new(MemoryFailureStore::with_capacity(4));
        let lockout = Lockout {
            store: store.clone(),
            ..Lockout::default()
        }
        .user_threshold(1)
        .ip_threshold(0)
        .base_delay(Duration::from_secs(600));
        assert_eq!(
            (lockout.user_threshold, lockout.ip_threshold),
            (MIN_THRESHOLD, MIN_THRESHOLD)
        );
        // One failure is not a lock, so evicting it for room takes no lock away.
        lockout.record_failure("alice", None).await.unwrap();
        assert_eq!(lockout.retry_after("alice", None).await.unwrap(), None);
        lockout.record_failure("alice", None).await.unwrap();
        assert!(lockout.retry_after("alice", None).await.unwrap().is_some());
        // A flood of new names (each one failure) fills the table; alice's lock stays.
        for i in 0..50 {
            let _ = lockout.record_failure(&format!("user{i}"), None).await;
            assert!(store.len() <= 4);
        }
        assert!(
            lockout.retry_after("alice", None).await.unwrap().is_some(),
            "the lock survived the flood"
        );
    }

    #[tokio::test]
    async fn single_failures_are_evicted_for_room() {
        let store = MemoryFailureStore::with_capacity(4);
        let window = Duration::from_secs(60);
        for i in 0..10 {
            let _ = store.record_failure(&format!("k{i}"), window).await;
        }
        assert!(store.len() <= 4);
    }
}
