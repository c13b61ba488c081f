//! The opt-in cache of verified Basic credentials.
//!
//! Keyed by HMAC-SHA256 under a per-process random key of (user, password), so the table holds
//! nothing an attacker who reads memory could reverse without that key. Each entry remembers the
//! stored hash it was verified against: a password change (new hash) or a disabled user misses
//! the cache at once, on every instance, because the record is read on every request anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::secret::{PasswordHash, SecretString};

type Fingerprint = [u8; 32];

#[derive(Debug)]
pub(crate) struct VerifiedCache {
    /// HMAC keyed once; cloning the keyed state is cheaper than re-keying per request.
    mac: Hmac<Sha256>,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Fingerprint, Entry>>,
}

#[derive(Debug)]
struct Entry {
    hash: PasswordHash,
    expires: Instant,
}

impl VerifiedCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self {
            mac,
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn fingerprint(&self, user: &str, password: &SecretString) -> Fingerprint {
        let mut mac = self.mac.clone();
        // Length-prefix the user so ("ab", "c") and ("a", "bc") differ.
        mac.update(&(user.len() as u64).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(password.expose_secret().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether this credential was verified against `current` within the TTL.
    pub(crate) fn contains(&self, fingerprint: &Fingerprint, current: &PasswordHash) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(fingerprint)
            .is_some_and(|e| e.expires > Instant::now() && e.hash.ct_eq(current))
    }

    pub(crate) fn insert(&self, fingerprint: Fingerprint, hash: PasswordHash) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            // Only after a successful argon2 verify (tens of ms), so the scan is cheap by comparison.
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.capacity {
                return;
            }
        }
        let expires = now + self.ttl;
        entries.insert(fingerprint, Entry { hash, expires });
    }
}
