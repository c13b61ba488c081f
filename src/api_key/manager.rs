//! [`ApiKeys`]: the lifecycle of keys (create, list, revoke, rotate, delete) and the state the
//! authenticator shares with it (lookup cache, pending last-used times).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::cache::{Cached, CachedKey, KeyCache};
use super::digest::KeyHasher;
use super::{ApiKeyAuthenticator, ApiKeyAuthenticatorBuilder, ApiKeyError, IssuedKey, NewApiKey};
use crate::error::{ConfigError, StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::key_format::{KeyFormat, ParsedKey};
use crate::principal::{Scheme, SubjectKind};
use crate::reject::{Reason, Rejection};
use crate::secret::SecretString;
use crate::store::{ApiKeyRecord, ApiKeyStore, KeyChange, UserStore};
use crate::telemetry;

/// How many times `create` draws a new id when the store says the one drawn is taken. With 71-bit
/// random ids a second draw should never be needed; more than a few means the store is broken.
const ID_ATTEMPTS: u32 = 3;

/// How far a stored key's lifetime may pass the cap before a check refuses it: more than the
/// rounding of stored times, far less than any cap.
const STORED_TIME_GRACE: Duration = Duration::from_millis(1);

/// Issues, lists, revokes, rotates and deletes API keys, and makes the
/// [`ApiKeyAuthenticator`] that checks them. Cheap to clone (one `Arc`).
///
/// The manager and its authenticators share a lookup cache, so a revocation, rotation or deletion
/// made through this instance takes effect on this instance at once. Other instances see it when
/// their cached copy expires, at most [`cache_ttl`](ApiKeysBuilder::cache_ttl) later, or at once
/// when the store reports changes ([`watch_store_changes`](ApiKeysBuilder::watch_store_changes):
/// PostgreSQL does).
///
/// Uses of a key are recorded in memory and written to the store's `last_used_at` in batches
/// ([`last_used_flush_interval`](ApiKeysBuilder::last_used_flush_interval)), never once per
/// request. Call [`flush`](Self::flush) before shutting down to write the last batch.
#[derive(Clone)]
pub struct ApiKeys {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    store: Arc<dyn ApiKeyStore>,
    format: KeyFormat,
    hasher: KeyHasher,
    allow_non_expiring: bool,
    max_lifetime: Option<Duration>,
    cache: KeyCache,
    cache_ttl: Duration,
    usage: Mutex<Usage>,
    flush_interval: Duration,
    /// Whether to start the store's change watch; cleared once the store says it has none.
    watch_store: AtomicBool,
    /// The store's change watch, once started (see [`Inner::watch_store_changes`]).
    watcher: Mutex<Option<JoinHandle<()>>>,
    /// Where a self-served key's owner is read from, at each lookup that misses the cache.
    owners: Option<Arc<dyn UserStore>>,
    /// Whether the missing `owners` has been logged.
    warned_no_owners: AtomicBool,
    /// `portcullis_api_key_cache_hits_total` and `_misses_total`.
    cache_hits: telemetry::Counter,
    cache_misses: telemetry::Counter,
}

#[derive(Default)]
struct Usage {
    pending: HashMap<String, DateTime<Utc>>,
    flusher: Option<JoinHandle<()>>,
}

impl ApiKeys {
    /// Starts building a manager over `store`, hashing secrets under `pepper`.
    ///
    /// The pepper is a server-side secret of at least 32 bytes (for example
    /// `openssl rand -base64 32`), kept out of the database: in an environment variable, a secret
    /// manager, a file only the service can read. Every instance sharing a store needs the same
    /// pepper; changing it invalidates every key.
    pub fn builder(store: Arc<dyn ApiKeyStore>, pepper: SecretString) -> ApiKeysBuilder {
        ApiKeysBuilder {
            store,
            pepper,
            prefix: None,
            allow_non_expiring: false,
            max_lifetime: None,
            cache_ttl: Duration::from_secs(5),
            cache_capacity: 10_000,
            negative_cache_capacity: 10_000,
            flush_interval: Duration::from_secs(60),
            watch_store: true,
            owners: None,
        }
    }

    /// An authenticator with the default options, sharing this manager's cache.
    pub fn authenticator(&self) -> ApiKeyAuthenticator {
        ApiKeyAuthenticator::from_inner(Arc::clone(&self.inner))
    }

    /// Starts building an authenticator (header name, realm, query parameter) that shares this
    /// manager's cache.
    pub fn authenticator_builder(&self) -> ApiKeyAuthenticatorBuilder {
        ApiKeyAuthenticatorBuilder::new(Arc::clone(&self.inner))
    }

    /// The key store.
    pub fn store(&self) -> &Arc<dyn ApiKeyStore> {
        &self.inner.store
    }

    /// The key format (its prefix).
    pub fn format(&self) -> &KeyFormat {
        &self.inner.format
    }

    /// Whether a user store for self-served keys' owners was given
    /// ([`ApiKeysBuilder::owners`]); without one every self-served key is refused.
    #[cfg(feature = "self-service")]
    pub(crate) fn has_owners(&self) -> bool {
        self.inner.owners.is_some()
    }

    /// The longest lifetime a new key may have, if capped.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.inner.max_lifetime
    }

    /// How long this instance may use a cached lookup: the bound on how long a key revoked
    /// through another instance still works here.
    pub fn cache_ttl(&self) -> Duration {
        self.inner.cache_ttl
    }

    /// Creates a key and returns it. The whole key is in the result and nowhere else: show it to
    /// its owner once; the store keeps only a keyed hash of the secret.
    ///
    /// Fails with [`ApiKeyError::ExpiryRequired`] when `expires_in` is `None` and non-expiring
    /// keys are not allowed, and with [`ApiKeyError::LifetimeExceedsCap`] when it is longer than
    /// the configured maximum.
    pub async fn create(&self, new: NewApiKey) -> Result<IssuedKey, ApiKeyError> {
        self.issue_new(new, None).await
    }

    /// Creates a self-served key: one a user makes for themselves (see
    /// [`ApiKeyRecord::self_served`]). Like [`create`](Self::create) (same lifetime rules), and:
    ///
    /// - the key carries no groups of its own: at authentication its principal gets the owner's
    ///   current groups from the user store given to [`ApiKeysBuilder::owners`], and a disabled
    ///   or missing owner's key is refused. `new.groups` must be empty, and the owner a user, not
    ///   an application ([`ApiKeyError::Invalid`] otherwise);
    /// - its name is unique among the owner's active self-served keys
    ///   ([`ApiKeyError::NameTaken`]), and the owner may have at most `max_active` of them
    ///   ([`ApiKeyError::TooManyKeys`]), both checked atomically by the store
    ///   ([`ApiKeyStore::insert_self_served`]), so concurrent creates cannot pass either rule.
    ///   Expired keys are revoked then, freeing their names and places.
    ///
    /// A store that does not implement `insert_self_served` refuses with a store error of kind
    /// [`Unsupported`](StoreErrorKind::Unsupported).
    pub async fn create_self_served(
        &self,
        new: NewApiKey,
        max_active: usize,
    ) -> Result<IssuedKey, ApiKeyError> {
        if !new.groups.is_empty() {
            return Err(ApiKeyError::Invalid(
                "a self-served key carries no groups of its own; its owner's groups apply".into(),
            ));
        }
        if new.owner_kind != SubjectKind::User {
            return Err(ApiKeyError::Invalid(
                "a self-served key's owner must be a user, not an application".into(),
            ));
        }
        self.issue_new(new, Some(max_active)).await
    }

    /// `create`, or with `self_served = Some(max_active)`, `create_self_served`.
    async fn issue_new(
        &self,
        new: NewApiKey,
        self_served: Option<usize>,
    ) -> Result<IssuedKey, ApiKeyError> {
        new.validate()?;
        let now = Utc::now();
        let expires_at = self.inner.expiry_for(new.expires_in, now)?;
        let NewApiKey {
            owner,
            owner_kind,
            name,
            scopes,
            groups,
            created_by,
            ..
        } = new;
        let template = ApiKeyRecord {
            id: String::new(),
            owner,
            owner_kind,
            name,
            scopes,
            groups,
            created_at: now,
            created_by,
            expires_at,
            revoked_at: None,
            last_used_at: None,
            replaces: None,
            replaced_by: None,
            self_served: self_served.is_some(),
            digest: Default::default(),
        };
        let mut attempt = 1;
        loop {
            let (key, record) = self.inner.issue(&template);
            let inserted = match self_served {
                None => self.inner.store.insert(record.clone()).await,
                Some(max_active) => {
                    self.inner
                        .store
                        .insert_self_served(record.clone(), max_active)
                        .await
                }
            };
            match inserted {
                Ok(()) => {
                    // A made-up id that happened to match may be cached as unknown.
                    self.inner.cache.invalidate(&record.id);
                    tracing::info!(
                        key_id = %record.id,
                        owner = %record.owner,
                        expires_at = ?record.expires_at,
                        self_served = record.self_served,
                        "API key created"
                    );
                    return Ok(IssuedKey { key, record });
                }
                Err(err) if err.kind() == StoreErrorKind::Conflict && attempt < ID_ATTEMPTS => {
                    attempt += 1;
                }
                Err(err) if err.kind() == StoreErrorKind::NameTaken => {
                    return Err(ApiKeyError::NameTaken);
                }
                Err(err) if err.kind() == StoreErrorKind::LimitReached => {
                    return Err(ApiKeyError::TooManyKeys {
                        limit: self_served.unwrap_or(0),
                    });
                }
                Err(err) => return Err(ApiKeyError::Store(err)),
            }
        }
    }

    /// The key with id `id`, from the store (not the cache).
    pub async fn get(&self, id: &str) -> Result<ApiKeyRecord, ApiKeyError> {
        self.inner
            .store
            .find(id)
            .await?
            .ok_or_else(|| ApiKeyError::NotFound(id.to_owned()))
    }

    /// Every key, or `owner`'s, oldest first: metadata only, never a secret.
    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        Ok(self.inner.store.list(owner).await?)
    }

    /// Revokes a key. On this instance it stops working as soon as this returns; on others within
    /// the cache TTL. Revoking a revoked key succeeds and keeps the first revocation time.
    pub async fn revoke(&self, id: &str) -> Result<ApiKeyRecord, ApiKeyError> {
        let result = self.inner.store.revoke(id, Utc::now()).await;
        self.inner.cache.invalidate(id);
        let record = result.map_err(|err| not_found_or(id, err))?;
        tracing::info!(key_id = %id, owner = %record.owner, "API key revoked");
        Ok(record)
    }

    /// Replaces a key with a new one carrying the same owner, name, scopes and groups. The old key
    /// keeps working for `overlap` (or until it expires, if sooner), so clients can switch
    /// without downtime; a zero overlap ends it at once.
    ///
    /// The new key gets the old key's lifetime (`expires_at - created_at`) counted from now,
    /// shortened to the maximum lifetime if that is lower now. A key is rotated at most once:
    /// rotate its successor to rotate again. Revoked and expired keys cannot be rotated.
    pub async fn rotate(&self, id: &str, overlap: Duration) -> Result<IssuedKey, ApiKeyError> {
        let old = self.get(id).await?;
        let now = Utc::now();
        check_rotatable(&old, now)?;
        let lifetime = old
            .expires_at
            .map(|at| (at - old.created_at).to_std().unwrap_or(Duration::ZERO));
        let lifetime = match (lifetime, self.inner.max_lifetime) {
            (Some(lifetime), Some(cap)) => Some(lifetime.min(cap)),
            (None, Some(cap)) => Some(cap),
            (lifetime, None) => lifetime,
        };
        let expires_at = self.inner.expiry_for(lifetime, now)?;
        let overlap_ends = delta(overlap)
            .and_then(|overlap| now.checked_add_signed(overlap))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let template = ApiKeyRecord {
            id: String::new(),
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
            replaces: Some(old.id.clone()),
            replaced_by: None,
            ..old
        };
        let (key, record) = self.inner.issue(&template);
        let result = self
            .inner
            .store
            .rotate(id, overlap_ends, record.clone())
            .await;
        self.inner.cache.invalidate(id);
        match result {
            Ok(updated) => {
                self.inner.cache.invalidate(&record.id);
                tracing::info!(
                    key_id = %id,
                    new_key_id = %record.id,
                    old_expires_at = ?updated.expires_at,
                    "API key rotated"
                );
                Ok(IssuedKey { key, record })
            }
            Err(err) if err.kind() == StoreErrorKind::Conflict => {
                // Lost a race with a revocation or another rotation: say which.
                let current = self.get(id).await?;
                check_rotatable(&current, now)?;
                Err(ApiKeyError::Store(err))
            }
            Err(err) => Err(not_found_or(id, err)),
        }
    }

    /// Sets when a key expires (`None`: never, if non-expiring keys are allowed). The maximum
    /// lifetime still applies, counted from the key's creation. A time in the past expires it now.
    pub async fn set_expires_at(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), ApiKeyError> {
        let record = self.get(id).await?;
        match (expires_at, self.inner.max_lifetime) {
            (None, _) if !self.inner.allow_non_expiring => return Err(ApiKeyError::ExpiryRequired),
            (Some(at), Some(cap)) => {
                let requested = (at - record.created_at).to_std().unwrap_or(Duration::ZERO);
                if requested > cap {
                    return Err(ApiKeyError::LifetimeExceedsCap { requested, cap });
                }
            }
            _ => {}
        }
        let result = self.inner.store.set_expires_at(id, expires_at).await;
        self.inner.cache.invalidate(id);
        result.map_err(|err| not_found_or(id, err))
    }

    /// Deletes a key and its record. Prefer [`revoke`](Self::revoke), which keeps the record for
    /// audit.
    pub async fn delete(&self, id: &str) -> Result<(), ApiKeyError> {
        let result = self.inner.store.delete(id).await;
        self.inner.cache.invalidate(id);
        self.inner.lock_usage().pending.remove(id);
        result.map_err(|err| not_found_or(id, err))?;
        tracing::info!(key_id = %id, "API key deleted");
        Ok(())
    }

    /// Forgets what this instance cached about `id`, so its next use reads the store. For a
    /// service that hears of changes made elsewhere (e.g. PostgreSQL `LISTEN`/`NOTIFY`).
    pub fn invalidate(&self, id: &str) {
        self.inner.cache.invalidate(id);
    }

    /// Writes the pending last-used times to the store now, in one batch. On failure they stay
    /// pending for the next flush.
    pub async fn flush(&self) -> Result<(), ApiKeyError> {
        Ok(self.inner.flush_usage().await?)
    }
}

fn check_rotatable(record: &ApiKeyRecord, now: DateTime<Utc>) -> Result<(), ApiKeyError> {
    if record.revoked_at.is_some() {
        return Err(ApiKeyError::Revoked(record.id.clone()));
    }
    if let Some(next) = &record.replaced_by {
        return Err(ApiKeyError::AlreadyRotated {
            id: record.id.clone(),
            replaced_by: next.clone(),
        });
    }
    if record.expires_at.is_some_and(|at| now >= at) {
        return Err(ApiKeyError::Expired(record.id.clone()));
    }
    Ok(())
}

fn not_found_or(id: &str, err: StoreError) -> ApiKeyError {
    match err.kind() {
        StoreErrorKind::NotFound => ApiKeyError::NotFound(id.to_owned()),
        _ => ApiKeyError::Store(err),
    }
}

fn delta(duration: Duration) -> Option<TimeDelta> {
    TimeDelta::from_std(duration).ok()
}

/// Why a presented key was refused, for the authenticator to turn into a rejection.
pub(super) enum CheckFailure {
    /// The key is not valid: 401, with this reason and detail for logs.
    Invalid(Reason, &'static str),
    /// The store failed: 503.
    Store(StoreError),
}

impl Inner {
    /// The key store's [`ping`](ApiKeyStore::ping), for readiness.
    pub(super) fn store_ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store.ping()
    }

    pub(super) fn format(&self) -> &KeyFormat {
        &self.format
    }

    /// A new key and its record, from `template`'s metadata.
    fn issue(&self, template: &ApiKeyRecord) -> (SecretString, ApiKeyRecord) {
        let (key, id, secret) = self.format.generate().into_parts();
        let record = ApiKeyRecord {
            digest: self.hasher.digest(&id, &secret),
            id,
            ..template.clone()
        };
        (key, record)
    }

    fn expiry_for(
        &self,
        expires_in: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ApiKeyError> {
        let Some(expires_in) = expires_in else {
            return if self.allow_non_expiring {
                Ok(None)
            } else {
                Err(ApiKeyError::ExpiryRequired)
            };
        };
        if expires_in.is_zero() {
            return Err(ApiKeyError::Invalid(
                "the expiry must be in the future".into(),
            ));
        }
        if let Some(cap) = self.max_lifetime
            && expires_in > cap
        {
            return Err(ApiKeyError::LifetimeExceedsCap {
                requested: expires_in,
                cap,
            });
        }
        delta(expires_in)
            .and_then(|d| now.checked_add_signed(d))
            .map(Some)
            .ok_or_else(|| ApiKeyError::Invalid("the expiry is too far in the future".into()))
    }

    /// Checks a parsed key: lookup (cache, then store), keyed hash, revocation, expiry, the
    /// lifetime rules in force now, and for a self-served key its owner. An unknown id costs the
    /// same hash and comparison as a known one.
    pub(super) async fn check(
        self: &Arc<Self>,
        key: &ParsedKey,
    ) -> Result<Arc<CachedKey>, CheckFailure> {
        let entry = self.lookup(key.id()).await.map_err(CheckFailure::Store)?;
        let stored = entry.as_deref().map(|e| &e.record.digest);
        let matched = self.hasher.verify(key.id(), key.secret(), stored);
        let entry = match entry {
            None => {
                return Err(CheckFailure::Invalid(
                    Reason::CredentialsInvalid,
                    "unknown API key id",
                ));
            }
            Some(_) if !matched => {
                return Err(CheckFailure::Invalid(
                    Reason::CredentialsInvalid,
                    "wrong API key secret",
                ));
            }
            Some(entry) => entry,
        };
        let record = &entry.record;
        // The secret matched: only now may the reason say revoked or expired (a wrong secret
        // for a revoked key's id is `credentials_invalid`, like any wrong secret).
        let now = Utc::now();
        if record.revoked_at.is_some() {
            return Err(CheckFailure::Invalid(Reason::KeyRevoked, "API key revoked"));
        }
        if record.expires_at.is_some_and(|at| now >= at) {
            return Err(CheckFailure::Invalid(
                Reason::KeyExpired,
                if record.replaced_by.is_some() {
                    "API key rotated out (overlap ended)"
                } else {
                    "API key expired"
                },
            ));
        }
        if let Some(reason) = self.beyond_lifetime_rules(record) {
            return Err(CheckFailure::Invalid(Reason::KeyExpired, reason));
        }
        if let Some(Err(why)) = &entry.owner {
            return Err(CheckFailure::Invalid(Reason::CredentialsInvalid, why));
        }
        self.record_use(&record.id, now);
        Ok(entry)
    }

    /// Why a key breaks today's lifetime rules, if it does. Creation enforces them, but a key
    /// made before the cap was lowered, or before non-expiring keys were forbidden, would
    /// otherwise keep working for as long as it was first given.
    fn beyond_lifetime_rules(&self, record: &ApiKeyRecord) -> Option<&'static str> {
        match (record.expires_at, self.max_lifetime) {
            (None, _) if !self.allow_non_expiring => {
                Some("API key never expires, and non-expiring keys are not allowed")
            }
            (Some(at), Some(cap)) => {
                let lifetime = (at - record.created_at).to_std().unwrap_or(Duration::ZERO);
                // Stores keep times to the microsecond: a key made at exactly the cap stays valid.
                (lifetime > cap + STORED_TIME_GRACE)
                    .then_some("API key lifetime exceeds the maximum")
            }
            _ => None,
        }
    }

    async fn lookup(self: &Arc<Self>, id: &str) -> Result<Option<Arc<CachedKey>>, StoreError> {
        let epoch = match self.cache.get(id) {
            Cached::Found(entry) => {
                self.cache_hits.increment(1);
                return Ok(Some(entry));
            }
            Cached::Unknown => {
                self.cache_hits.increment(1);
                return Ok(None);
            }
            Cached::Miss(epoch) => epoch,
        };
        self.cache_misses.increment(1);
        // The first lookup always misses, so the watch starts before anything is cached.
        self.watch_store_changes();
        let span = tracing::debug_span!(target: "portcullis::api_key", "portcullis.store", op = "find_key");
        let found = match self.store.find(id).instrument(span).await? {
            Some(record) => {
                let owner = if record.self_served {
                    Some(self.owner_groups(&record).await?)
                } else {
                    None
                };
                Some(Arc::new(CachedKey { record, owner }))
            }
            None => None,
        };
        self.cache.insert(id, found.clone(), epoch);
        Ok(found)
    }

    /// A self-served key's owner, read now: their groups, or why they cannot use the key. The
    /// owner is looked up by [`UserStore::canonical_name`], as Basic looks users up.
    async fn owner_groups(
        &self,
        record: &ApiKeyRecord,
    ) -> Result<Result<Vec<String>, &'static str>, StoreError> {
        let Some(users) = &self.owners else {
            // Fail closed: without the owner's record there are no groups to give, and no way
            // to tell a disabled owner.
            if !self.warned_no_owners.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    key_id = %record.id,
                    "a self-served API key was presented, but no user store is set to read its \
                     owner from (ApiKeysBuilder::owners): self-served keys are refused"
                );
            }
            return Ok(Err(
                "self-served API key, and no user store to read its owner from",
            ));
        };
        let span = tracing::debug_span!(target: "portcullis::api_key", "portcullis.store", op = "find_owner");
        let name = users.canonical_name(&record.owner);
        let owner = users.find_user(&name).instrument(span).await?;
        Ok(match owner {
            None => Err("self-served API key, and its owner does not exist"),
            Some(user) if user.disabled => Err("self-served API key, and its owner is disabled"),
            Some(user) if user.kind != SubjectKind::User => {
                Err("self-served API key, and its owner is not a user")
            }
            Some(user) => Ok(user.groups),
        })
    }

    fn lock_usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        // A poisoned lock means a panic mid-insert; the map of times is still usable.
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a use in memory; starts the flushing task on first use inside a tokio runtime (and
    /// again if the runtime it ran on has gone).
    fn record_use(self: &Arc<Self>, id: &str, at: DateTime<Utc>) {
        let mut usage = self.lock_usage();
        match usage.pending.get_mut(id) {
            Some(last) => *last = (*last).max(at),
            None => {
                usage.pending.insert(id.to_owned(), at);
            }
        }
        if usage.flusher.as_ref().is_none_or(JoinHandle::is_finished)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let weak = Arc::downgrade(self);
            usage.flusher = Some(runtime.spawn(flush_periodically(weak, self.flush_interval)));
        }
    }

    /// Starts the store's change watch, if it has one and watching is on, inside the current
    /// tokio runtime (and again if the runtime it ran on has gone). Changes evict from the cache.
    fn watch_store_changes(self: &Arc<Self>) {
        if !self.watch_store.load(Ordering::Relaxed) {
            return;
        }
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if watcher.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        let sink = Box::new(move |change: KeyChange<'_>| {
            let Some(inner) = weak.upgrade() else { return };
            match change {
                KeyChange::Key(id) => inner.cache.invalidate(id),
                _ => inner.cache.clear(),
            }
        });
        *watcher = self
            .store
            .watch_changes(sink)
            .map(|task| runtime.spawn(task));
        if watcher.is_none() {
            // The store cannot watch: do not ask on every miss.
            self.watch_store.store(false, Ordering::Relaxed);
        }
    }

    async fn flush_usage(&self) -> Result<(), StoreError> {
        let batch: Vec<(String, DateTime<Utc>)> = self.lock_usage().pending.drain().collect();
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.store.touch_last_used(&batch).await;
        if let Err(err) = &result {
            tracing::warn!(error = %err, keys = batch.len(), "could not record API key use");
            let mut usage = self.lock_usage();
            for (id, at) in batch {
                let last = usage.pending.entry(id).or_insert(at);
                *last = (*last).max(at);
            }
        }
        result
    }
}

/// Flushes every `period` until the manager is dropped. Holds only a weak reference between
/// flushes, so it never keeps the manager alive.
async fn flush_periodically(inner: Weak<Inner>, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // The first tick is immediate.
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        // The error is logged in `flush_usage`, and the batch kept for the next tick.
        let _ = inner.flush_usage().await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let watcher = self.watcher.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(watcher) = watcher.take() {
            watcher.abort();
        }
        let usage = self.usage.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(flusher) = usage.flusher.take() {
            flusher.abort();
        }
        if usage.pending.is_empty() {
            return;
        }
        // Best effort: a last batch if a runtime is there to run it. Call `ApiKeys::flush` at
        // shutdown to be sure.
        let batch: Vec<_> = usage.pending.drain().collect();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            runtime.spawn(async move {
                if let Err(err) = store.touch_last_used(&batch).await {
                    tracing::warn!(error = %err, "could not record API key use at shutdown");
                }
            });
        }
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("store", &self.store)
            .field("prefix", &self.format.prefix())
            .field("allow_non_expiring", &self.allow_non_expiring)
            .field("max_lifetime", &self.max_lifetime)
            .field("cache_ttl", &self.cache_ttl)
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}

impl CheckFailure {
    pub(super) fn into_rejection(self) -> Rejection {
        match self {
            CheckFailure::Invalid(reason, detail) => {
                Rejection::invalid_credentials(Scheme::API_KEY, detail).with_reason(reason)
            }
            CheckFailure::Store(err) => {
                tracing::warn!(error = %err, "API key store failed");
                Rejection::unavailable(format!("API key store: {err}")).for_scheme(Scheme::API_KEY)
            }
        }
    }
}

/// Builds [`ApiKeys`].
#[must_use]
pub struct ApiKeysBuilder {
    store: Arc<dyn ApiKeyStore>,
    pepper: SecretString,
    prefix: Option<String>,
    allow_non_expiring: bool,
    max_lifetime: Option<Duration>,
    cache_ttl: Duration,
    cache_capacity: usize,
    negative_cache_capacity: usize,
    flush_interval: Duration,
    watch_store: bool,
    owners: Option<Arc<dyn UserStore>>,
}

impl ApiKeysBuilder {
    /// The user store self-served keys' owners are read from
    /// ([`ApiKeys::create_self_served`]): at authentication, such a key's principal gets its
    /// owner's current groups, and the key is refused (401) when the owner is disabled, missing
    /// or not a user. The owner is looked up (through
    /// [`canonical_name`](UserStore::canonical_name)) together with the key and cached with it,
    /// so a change to the owner takes effect within [`cache_ttl`](Self::cache_ttl). Without it,
    /// every self-served key is refused. Other keys are unaffected. Defaults to none.
    pub fn owners(mut self, users: Arc<dyn UserStore>) -> Self {
        self.owners = Some(users);
        self
    }

    /// The prefix of new keys, and the only one accepted: 1 to 16 lowercase ASCII letters or
    /// digits. Name your service (`acme`) so secret scanners can tell your keys apart. Defaults
    /// to `pc`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Whether a key may be created without an expiry. A key that never expires is one a leak
    /// exposes forever: leave this off unless something else rotates keys. While it is off, a
    /// stored key without an expiry is refused when presented. Cannot be combined with
    /// [`max_lifetime`](Self::max_lifetime). Defaults to `false`.
    pub fn allow_non_expiring(mut self, allow: bool) -> Self {
        self.allow_non_expiring = allow;
        self
    }

    /// The longest lifetime a key may have; longer requests fail with
    /// [`ApiKeyError::LifetimeExceedsCap`], and a stored key with a longer lifetime (made before
    /// the cap was set or lowered) is refused when presented. Without a cap an expiry is still
    /// required, unless [`allow_non_expiring`](Self::allow_non_expiring). Defaults to no cap.
    pub fn max_lifetime(mut self, cap: Duration) -> Self {
        self.max_lifetime = Some(cap);
        self
    }

    /// How long a lookup is cached, found or not. This is the bound on how long a key revoked
    /// through another instance keeps working on this one; changes through this instance evict at
    /// once. Zero turns caching off (a store read per request). Defaults to 5 seconds.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How many found keys are cached; the oldest leave first. Defaults to 10,000.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// How many unknown ids are cached, so a client retrying a deleted or made-up key does not
    /// reach the store each time; the oldest leave first. Defaults to 10,000.
    pub fn negative_cache_capacity(mut self, entries: usize) -> Self {
        self.negative_cache_capacity = entries;
        self
    }

    /// How often the pending last-used times are written to the store, in one batch, by a
    /// background tokio task started on first use. Defaults to 60 seconds.
    pub fn last_used_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Whether to follow changes made to keys through other instances, for stores that can report
    /// them ([`ApiKeyStore::watch_changes`]: PostgreSQL, through `LISTEN`/`NOTIFY`). A revocation
    /// anywhere then evicts this instance's cached copy at once, and the
    /// [`cache_ttl`](Self::cache_ttl) only bounds the time while the store cannot report. The
    /// watch runs as a tokio task started on the first lookup. Defaults to `true`.
    pub fn watch_store_changes(mut self, watch: bool) -> Self {
        self.watch_store = watch;
        self
    }

    /// Builds the manager: checks the pepper and prefix.
    pub fn build(self) -> Result<ApiKeys, ConfigError> {
        let format = match &self.prefix {
            Some(prefix) => KeyFormat::new(prefix)?,
            None => KeyFormat::default(),
        };
        let hasher = KeyHasher::new(&self.pepper)?;
        if self.allow_non_expiring && self.max_lifetime.is_some() {
            return Err(ConfigError::new(
                "non-expiring API keys cannot be allowed when a maximum lifetime is set",
            )
            .with_key("api_keys.allow_non_expiring"));
        }
        if self.max_lifetime.is_some_and(|cap| cap.is_zero()) {
            return Err(
                ConfigError::new("the maximum API key lifetime must be longer than zero")
                    .with_key("api_keys.max_lifetime"),
            );
        }
        if self.flush_interval.is_zero() {
            return Err(
                ConfigError::new("the last-used flush interval must be longer than zero")
                    .with_key("api_keys.last_used_flush_interval"),
            );
        }
        Ok(ApiKeys {
            inner: Arc::new(Inner {
                store: self.store,
                format,
                hasher,
                allow_non_expiring: self.allow_non_expiring,
                max_lifetime: self.max_lifetime,
                cache: KeyCache::new(
                    self.cache_ttl,
                    self.cache_capacity,
                    self.negative_cache_capacity,
                ),
                cache_ttl: self.cache_ttl,
                usage: Mutex::new(Usage::default()),
                flush_interval: self.flush_interval,
                watch_store: AtomicBool::new(self.watch_store),
                watcher: Mutex::new(None),
                owners: self.owners,
                warned_no_owners: AtomicBool::new(false),
                cache_hits: telemetry::counter(telemetry::API_KEY_CACHE_HITS),
                cache_misses: telemetry::counter(telemetry::API_KEY_CACHE_MISSES),
            }),
        })
    }
}

impl fmt::Debug for ApiKeysBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeysBuilder")
            .field("store", &self.store)
            .field("prefix", &self.prefix)
            .field("allow_non_expiring", &self.allow_non_expiring)
            .field("max_lifetime", &self.max_lifetime)
            .field("cache_ttl", &self.cache_ttl)
            .field("owners", &self.owners)
            .finish_non_exhaustive()
    }
}
