//! A bounded map whose entries expire: the one cache behind the API-key lookup cache
//! (`api_key/cache.rs`) and the token introspection cache (`jwt/introspection.rs`).
//!
//! Each entry has its own deadline. Entries leave in insertion order: when the map is full the
//! oldest goes first, and an expired entry at the front goes on the next insert, so an insert is
//! O(1) amortised even under a flood of made-up keys, and the map never holds more than its
//! capacity. With one TTL for every entry (the API-key cache) insertion order is expiry order, so
//! expired entries leave as soon as anything is inserted.
//!
//! Not synchronised: each owner wraps it in the lock that suits it. A lookup takes `&self`, so
//! it can run under a read lock, and costs the same whether the key is there or not but for the
//! hash-table probe.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

/// A map of at most `capacity` entries, each valid until its own deadline.
#[derive(Debug)]
pub(crate) struct ExpiringMap<K, V> {
    capacity: usize,
    map: HashMap<K, Entry<V>>,
    /// `(key, seq)` in insertion order. An element whose `seq` no longer matches the map's entry
    /// (removed or re-inserted since) is stale and skipped.
    order: VecDeque<(K, u64)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    until: Instant,
    seq: u64,
}

impl<K: Hash + Eq + Clone, V> ExpiringMap<K, V> {
    /// An empty map that holds at most `capacity` entries (none with 0).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// The value under `key`, if it is there and `now` is before its deadline.
    pub(crate) fn get<Q>(&self, key: &Q, now: Instant) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map
            .get(key)
            .filter(|e| now < e.until)
            .map(|e| &e.value)
    }

    /// Puts `value` under `key` until `until`, replacing what was there, after making room:
    /// expired entries at the front leave, then the oldest while the map is full. Nothing is
    /// stored with capacity 0 or a deadline not after `now`.
    pub(crate) fn insert(&mut self, key: K, value: V, now: Instant, until: Instant) {
        if self.capacity == 0 || until <= now {
            return;
        }
        // A re-inserted key leaves a stale element in `order`.
        self.map.remove(&key);
        while let Some((front, seq)) = self.order.front() {
            let live = self.map.get(front).filter(|e| e.seq == *seq);
            let keep = live.is_some_and(|e| self.map.len() < self.capacity && now < e.until);
            if keep {
                break;
            }
            if let Some((front, _)) = self.order.pop_front()
                && live.is_some()
            {
                self.map.remove(&front);
            }
        }
        // Stale elements behind a live front can pile up (keys removed by revocations); compact
        // when they outnumber the live ones, so `order` stays O(capacity).
        if self.order.len() > 2 * self.capacity + 16 {
            let map = &self.map;
            self.order
                .retain(|(key, seq)| map.get(key).is_some_and(|e| e.seq == *seq));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((key.clone(), seq));
        self.map.insert(key, Entry { value, until, seq });
    }

    /// Forgets `key`.
    #[cfg_attr(
        not(feature = "api-key"),
        expect(dead_code, reason = "only the API-key cache forgets entries")
    )]
    pub(crate) fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key);
    }

    /// Forgets everything.
    #[cfg_attr(
        not(feature = "api-key"),
        expect(dead_code, reason = "only the API-key cache forgets entries")
    )]
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    /// How many entries the map holds, expired ones not yet gone included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn entries_expire_at_their_deadline() {
        let mut map = ExpiringMap::new(10);
        let start = Instant::now();
        let ttl = Duration::from_secs(5);
        map.insert("a", 1, start, start + ttl);
        map.insert("b", 2, start, start + 2 * ttl);
        assert_eq!(map.get("a", start + Duration::from_secs(4)), Some(&1));
        assert_eq!(map.get("a", start + ttl), None);
        assert_eq!(map.get("b", start + ttl), Some(&2));
    }

    #[test]
    fn nothing_is_stored_without_capacity_or_past_its_deadline() {
        let now = Instant::now();
        let mut none = ExpiringMap::new(0);
        none.insert("a", 1, now, now + MINUTE);
        assert_eq!(none.len(), 0);
        let mut map = ExpiringMap::new(10);
        map.insert("a", 1, now, now);
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn the_oldest_entry_leaves_when_full() {
        let mut map = ExpiringMap::new(3);
        let now = Instant::now();
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            map.insert(key, i, now, now + MINUTE);
        }
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("a", now), None);
        assert_eq!(map.get("d", now), Some(&3));
    }

    #[test]
    fn expired_entries_leave_before_live_ones() {
        let mut map = ExpiringMap::new(100);
        let start = Instant::now();
        let ttl = Duration::from_secs(5);
        map.insert("old", 0, start, start + ttl);
        let later = start + Duration::from_secs(6);
        map.insert("new", 1, later, later + ttl);
        assert!(!map.map.contains_key("old"));
        assert_eq!(map.order.len(), 1);
    }

    #[test]
    fn a_flood_of_keys_stays_bounded() {
        let mut map = ExpiringMap::new(100);
        let now = Instant::now();
        for i in 0..10_000 {
            map.insert(format!("id{i}"), (), now, now + MINUTE);
            if i % 3 == 0 {
                // Removals and re-inserts leave stale queue elements behind.
                map.remove(format!("id{}", i / 2).as_str());
                map.insert(format!("id{}", i / 3), (), now, now + MINUTE);
            }
        }
        assert!(map.len() <= 100);
        assert!(map.order.len() <= 2 * 100 + 17, "{}", map.order.len());
    }

    #[test]
    fn a_reinserted_key_is_not_evicted_by_its_stale_element() {
        let mut map = ExpiringMap::new(2);
        let now = Instant::now();
        map.insert("a", 1, now, now + MINUTE);
        map.insert("a", 2, now, now + MINUTE);
        map.insert("b", 3, now, now + MINUTE);
        assert_eq!(map.get("a", now), Some(&2));
        assert_eq!(map.get("b", now), Some(&3));
    }
}
