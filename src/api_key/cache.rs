//! The lookup cache in front of the key store: found records (positive) and unknown ids
//! (negative), each bounded in entries, with one TTL.
//!
//! The TTL is the bound on how stale this instance's view of a key can be: a key revoked through
//! *another* instance keeps working here for at most one TTL. Changes made through this instance's
//! [`ApiKeys`](super::ApiKeys) evict at once, and so do changes a store reports from elsewhere
//! (PostgreSQL's `LISTEN`/`NOTIFY`; see `ApiKeyStore::watch_changes`). A cached record still goes
//! through the full check on every request (keyed hash, revocation, expiry against the clock), so
//! caching never extends a key's life past its `expires_at`.
//!
//! Each table is an [`ExpiringMap`]; all entries share one TTL, so insertion order is expiry
//! order, and eviction (expired first, then oldest when full) is O(1) amortised, even under a
//! flood of made-up ids.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::cache::ExpiringMap;
use crate::store::ApiKeyRecord;

/// A key's record as the store gave it, with, for a self-served key, its owner as the user
/// store gave it at the same time: both are cached together, so a disabled owner or a removed
/// group takes effect within one TTL, like a revocation.
#[derive(Debug)]
pub(crate) struct CachedKey {
    pub(crate) record: ApiKeyRecord,
    /// `None` for a key that is not self-served; else the owner's groups, or why the owner
    /// cannot use the key (for the audit detail).
    pub(crate) owner: Option<Result<Vec<String>, &'static str>>,
}

/// What the cache knows about an id.
pub(crate) enum Cached {
    /// The store had this record within the TTL.
    Found(Arc<CachedKey>),
    /// The store had no such id within the TTL.
    Unknown,
    /// Ask the store; pass the epoch back to [`KeyCache::insert`].
    Miss(u64),
}

#[derive(Debug)]
pub(crate) struct KeyCache {
    ttl: Duration,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    found: ExpiringMap<String, Arc<CachedKey>>,
    unknown: ExpiringMap<String, ()>,
    /// Bumped by every eviction. A lookup that missed remembers the epoch before reading the
    /// store, and its answer is cached only if no eviction happened meanwhile: otherwise a read
    /// that raced a revocation could put the pre-revocation record back after the eviction.
    epoch: u64,
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration, found_capacity: usize, unknown_capacity: usize) -> Self {
        Self {
            ttl,
            state: RwLock::new(State {
                found: ExpiringMap::new(found_capacity),
                unknown: ExpiringMap::new(unknown_capacity),
                epoch: 0,
            }),
        }
    }

    pub(crate) fn get(&self, id: &str) -> Cached {
        let now = Instant::now();
        // A poisoned lock means a panic mid-insert; at worst an entry is missing, which is a miss.
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        // Both tables are read whatever the first says, so a cached unknown id costs what a
        // cached known one does: timing must not tell a caller which ids exist.
        let found = state.found.get(id, now);
        let unknown = state.unknown.get(id, now);
        if let Some(record) = found {
            return Cached::Found(Arc::clone(record));
        }
        if unknown.is_some() {
            return Cached::Unknown;
        }
        Cached::Miss(state.epoch)
    }

    /// Caches what the store said about `id`, unless something was evicted since `epoch`.
    pub(crate) fn insert(&self, id: &str, found: Option<Arc<CachedKey>>, epoch: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let until = now + self.ttl;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.epoch != epoch {
            return;
        }
        match found {
            Some(record) => state.found.insert(id.to_owned(), record, now, until),
            None => state.unknown.insert(id.to_owned(), (), now, until),
        }
    }

    /// Forgets `id`, found or unknown, so the next lookup reads the store.
    pub(crate) fn invalidate(&self, id: &str) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.found.remove(id);
        state.unknown.remove(id);
        state.epoch = state.epoch.wrapping_add(1);
    }

    /// Forgets everything, found or unknown.
    pub(crate) fn clear(&self) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.found.clear();
        state.unknown.clear();
        state.epoch = state.epoch.wrapping_add(1);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        (state.found.len(), state.unknown.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eviction_during_a_store_read_keeps_the_stale_answer_out() {
        let cache = KeyCache::new(Duration::from_secs(5), 10, 10);
        let Cached::Miss(epoch) = cache.get("k") else {
            panic!("empty cache should miss")
        };
        // The store read happens here; meanwhile the key is revoked and evicted.
        cache.invalidate("k");
        cache.insert("k", None, epoch);
        assert!(matches!(cache.get("k"), Cached::Miss(_)));
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = KeyCache::new(Duration::ZERO, 10, 10);
        let Cached::Miss(epoch) = cache.get("k") else {
            panic!("empty cache should miss")
        };
        cache.insert("k", None, epoch);
        assert!(matches!(cache.get("k"), Cached::Miss(_)));
    }
}
