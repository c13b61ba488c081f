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
//! All entries share one TTL, so insertion order is expiry order: each table is a map plus a FIFO
//! queue, and eviction (expired first, then oldest when full) is O(1) amortised, even under a
//! flood of made-up ids.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::store::ApiKeyRecord;

/// What the cache knows about an id.
pub(crate) enum Cached {
    /// The store had this record within the TTL.
    Found(Arc<ApiKeyRecord>),
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
    found: Fifo<Arc<ApiKeyRecord>>,
    unknown: Fifo<()>,
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
                found: Fifo::new(found_capacity),
                unknown: Fifo::new(unknown_capacity),
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
        let found = state.found.get(id, now, self.ttl);
        let unknown = state.unknown.get(id, now, self.ttl);
        if let Some(record) = found {
            return Cached::Found(Arc::clone(record));
        }
        if unknown.is_some() {
            return Cached::Unknown;
        }
        Cached::Miss(state.epoch)
    }

    /// Caches what the store said about `id`, unless something was evicted since `epoch`.
    pub(crate) fn insert(&self, id: &str, found: Option<Arc<ApiKeyRecord>>, epoch: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.epoch != epoch {
            return;
        }
        match found {
            Some(record) => state.found.insert(id, record, now, self.ttl),
            None => state.unknown.insert(id, (), now, self.ttl),
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
        (state.found.map.len(), state.unknown.map.len())
    }
}

/// A bounded map whose entries leave in insertion order.
#[derive(Debug)]
struct Fifo<V> {
    capacity: usize,
    map: HashMap<String, Entry<V>>,
    /// `(id, seq)` in insertion order. An element whose `seq` no longer matches the map's entry
    /// (removed or re-inserted since) is stale and skipped.
    order: VecDeque<(String, u64)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    at: Instant,
    seq: u64,
}

impl<V> Fifo<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    fn get(&self, id: &str, now: Instant, ttl: Duration) -> Option<&V> {
        self.map
            .get(id)
            .filter(|e| now.saturating_duration_since(e.at) < ttl)
            .map(|e| &e.value)
    }

    fn insert(&mut self, id: &str, value: V, now: Instant, ttl: Duration) {
        if self.capacity == 0 {
            return;
        }
        // A re-inserted id leaves a stale element in `order`.
        self.map.remove(id);
        while let Some((front, seq)) = self.order.front() {
            let live = self.map.get(front).filter(|e| e.seq == *seq);
            let keep = live.is_some_and(|e| {
                self.map.len() < self.capacity && now.saturating_duration_since(e.at) < ttl
            });
            if keep {
                break;
            }
            if let Some((front, _)) = self.order.pop_front()
                && live.is_some()
            {
                self.map.remove(&front);
            }
        }
        // Stale elements behind a fresh front can pile up (ids evicted by revocations); compact
        // when they outnumber the live ones, so `order` stays O(capacity).
        if self.order.len() > 2 * self.capacity + 16 {
            let map = &self.map;
            self.order
                .retain(|(id, seq)| map.get(id).is_some_and(|e| e.seq == *seq));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((id.to_owned(), seq));
        self.map.insert(
            id.to_owned(),
            Entry {
                value,
                at: now,
                seq,
            },
        );
    }

    fn remove(&mut self, id: &str) {
        self.map.remove(id);
    }

    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut fifo = Fifo::new(10);
        let start = Instant::now();
        let ttl = Duration::from_secs(5);
        fifo.insert("a", 1, start, ttl);
        assert_eq!(fifo.get("a", start + Duration::from_secs(4), ttl), Some(&1));
        assert_eq!(fifo.get("a", start + ttl, ttl), None);
    }

    #[test]
    fn the_oldest_entry_leaves_when_full() {
        let mut fifo = Fifo::new(3);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            fifo.insert(id, i, now, ttl);
        }
        assert_eq!(fifo.map.len(), 3);
        assert_eq!(fifo.get("a", now, ttl), None);
        assert_eq!(fifo.get("d", now, ttl), Some(&3));
    }

    #[test]
    fn expired_entries_leave_before_live_ones() {
        let mut fifo = Fifo::new(100);
        let start = Instant::now();
        let ttl = Duration::from_secs(5);
        fifo.insert("old", 0, start, ttl);
        fifo.insert("new", 1, start + Duration::from_secs(6), ttl);
        assert!(!fifo.map.contains_key("old"));
        assert_eq!(fifo.order.len(), 1);
    }

    #[test]
    fn a_flood_of_ids_stays_bounded() {
        let mut fifo = Fifo::new(100);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        for i in 0..10_000 {
            fifo.insert(&format!("id{i}"), (), now, ttl);
            if i % 3 == 0 {
                // Evictions and re-inserts leave stale queue elements behind.
                fifo.remove(&format!("id{}", i / 2));
                fifo.insert(&format!("id{}", i / 3), (), now, ttl);
            }
        }
        assert!(fifo.map.len() <= 100);
        assert!(fifo.order.len() <= 2 * 100 + 17, "{}", fifo.order.len());
    }

    #[test]
    fn a_reinserted_id_is_not_evicted_by_its_stale_element() {
        let mut fifo = Fifo::new(2);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        fifo.insert("a", 1, now, ttl);
        fifo.insert("a", 2, now, ttl);
        fifo.insert("b", 3, now, ttl);
        assert_eq!(fifo.get("a", now, ttl), Some(&2));
        assert_eq!(fifo.get("b", now, ttl), Some(&3));
    }

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
