//! Where API keys live: [`ApiKeyStore`], the [`ApiKeyRecord`] it holds, and the in-memory
//! [`MemoryApiKeyStore`].
//!
//! A store never sees a key: it holds the key's public id and a [`KeyDigest`], the keyed hash of
//! the secret (see [`crate::api_key`]). Every write is durable when its future completes, and
//! conditional writes (revoke, rotate) are atomic in the store, so two instances racing on one
//! key cannot both win.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::principal::SubjectKind;
use crate::secret::constant_time_eq;

/// One API key's metadata and the keyed hash of its secret. Never the key itself.
///
/// `Debug` and `Serialize` leave the digest out, so a record can be logged or listed as JSON.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ApiKeyRecord {
    /// The public id: the part of the key between the prefix and the secret.
    pub id: String,
    /// Who the key acts as: a user name or an application id.
    pub owner: String,
    /// Whether the owner is a user or an application.
    pub owner_kind: SubjectKind,
    /// A label for people (`"ci deploy"`); not unique.
    pub name: String,
    /// Scopes the key grants.
    pub scopes: Vec<String>,
    /// Groups the key's principal is in.
    pub groups: Vec<String>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// Who created it (an operator, a service), when known.
    pub created_by: Option<String>,
    /// When the key stops working (`now >= expires_at`). `None` only for keys created while
    /// non-expiring keys were allowed.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was revoked; a revoked key never works again.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key last authenticated a request, as of the last batched flush.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one was rotated from, if any.
    pub replaces: Option<String>,
    /// The key this one was rotated to, if any. Set once; a key is rotated at most once.
    pub replaced_by: Option<String>,
    /// A token its owner made for themselves ([`ApiKeys::create_self_served`]): it carries no
    /// groups of its own; at authentication the owner's current user record gives the
    /// principal's groups, and a disabled or missing owner's token is refused. Its name is
    /// unique among the owner's active self-served tokens.
    ///
    /// [`ApiKeys::create_self_served`]: crate::ApiKeys::create_self_served
    pub self_served: bool,
    /// The keyed hash of the secret.
    #[serde(skip)]
    pub digest: KeyDigest,
}

impl ApiKeyRecord {
    /// A record for key `id` of user `owner` with `digest`, created now, with no name, scopes,
    /// groups or expiry: what a custom [`ApiKeyStore`] starts from when it reads a row (then it
    /// sets the other fields).
    pub fn new(id: impl Into<String>, owner: impl Into<String>, digest: KeyDigest) -> Self {
        Self {
            id: id.into(),
            owner: owner.into(),
            owner_kind: SubjectKind::User,
            name: String::new(),
            scopes: Vec::new(),
            groups: Vec::new(),
            digest,
            created_at: Utc::now(),
            created_by: None,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            replaces: None,
            replaced_by: None,
            self_served: false,
        }
    }

    /// Whether the key is revoked or expired at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// The keyed hash (HMAC-SHA256 under the server's pepper) of a key's secret: 32 bytes.
///
/// Not reversible, and useless without the pepper, but kept out of logs all the same: `Debug`
/// prints `KeyDigest([redacted])`, and there is no `PartialEq`; compare with
/// [`ct_eq`](Self::ct_eq).
#[derive(Clone, Default)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// The length in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 bytes read from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps bytes read from a store, or `None` if they are not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The bytes, for writing to a store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest([redacted])")
    }
}

/// Where API keys live. Implemented by the in-memory store here, and by SQL stores.
///
/// Every write is durable when its future completes. A store that cannot answer returns a
/// [`StoreError`] of kind [`Unavailable`](StoreErrorKind::Unavailable): requests then get 503,
/// never 401, because an outage is not a bad key.
pub trait ApiKeyStore: fmt::Debug + Send + Sync + 'static {
    /// Adds a key. `Conflict` if the id is taken.
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The key with id `id`, if any (revoked and expired keys included).
    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>>;

    /// Every key, or `owner`'s keys, oldest first (by `created_at`, then id).
    fn list<'a>(
        &'a self,
        owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>>;

    /// Revokes a key at `at`, unless it is already revoked (then the first `revoked_at` stays).
    /// Returns the record as stored afterwards. `NotFound` if there is no such key.
    fn revoke<'a>(
        &'a self,
        id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>>;

    /// Sets (or with `None` clears) a key's expiry. `NotFound` if there is no such key.
    fn set_expires_at<'a>(
        &'a self,
        id: &'a str,
        expires_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Rotates `old_id` to `new`, atomically: inserts `new`, sets the old key's `replaced_by` to
    /// `new.id` and its `expires_at` to the earlier of its own and `old_expires_by`. Returns the
    /// old record as stored afterwards.
    ///
    /// `NotFound` if the old key does not exist; `Conflict`, with nothing written, if it is
    /// revoked or already rotated, or if `new.id` is taken.
    fn rotate<'a>(
        &'a self,
        old_id: &'a str,
        old_expires_by: DateTime<Utc>,
        new: ApiKeyRecord,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>>;

    /// Adds a self-served key (`record.self_served` must be set, else `Invalid`), in one
    /// transaction or lock that:
    ///
    /// 1. marks the owner's expired, unrevoked, unrotated self-served keys revoked (at their
    ///    `expires_at`), so they free their names;
    /// 2. counts the owner's active self-served keys (not revoked, not rotated) and refuses with
    ///    [`LimitReached`](StoreErrorKind::LimitReached), writing nothing, when there are
    ///    `max_active` already;
    /// 3. inserts the key: [`NameTaken`](StoreErrorKind::NameTaken) if an active self-served key
    ///    of the owner has its name (the SQL stores hold this with a unique index), `Conflict` if
    ///    its id is taken.
    ///
    /// Two calls for one owner at once cannot both pass the count: the SQL stores serialize
    /// them (SQLite's write lock, a PostgreSQL advisory lock per owner).
    ///
    /// The default refuses with [`Unsupported`](StoreErrorKind::Unsupported): a store of your
    /// own must implement this atomically to offer self-served keys; a count then an insert
    /// would let concurrent creates pass the limit.
    fn insert_self_served(
        &self,
        record: ApiKeyRecord,
        max_active: usize,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = (record, max_active);
        Box::pin(async {
            Err(StoreError::new(
                StoreErrorKind::Unsupported,
                "this API key store does not support self-served keys",
            ))
        })
    }

    /// Deletes a key. `NotFound` if there is no such key.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records when keys were last used, in one batch: each key's `last_used_at` becomes the later
    /// of the stored time and the given one. Ids that no longer exist are skipped.
    fn touch_last_used<'a>(
        &'a self,
        uses: &'a [(String, DateTime<Utc>)],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// For a store that several instances share and that can tell when a key changes through any
    /// of them (PostgreSQL, with `LISTEN`/`NOTIFY`): a task that reports each change to `sink`,
    /// run by [`ApiKeys`](crate::ApiKeys) so other instances' revocations reach its cache at once.
    /// It runs until dropped, and reports [`KeyChange::Unknown`] whenever it may have missed
    /// changes. `None` (the default) if the store cannot tell: other instances' changes then reach
    /// a cache within its TTL.
    fn watch_changes(&self, sink: ChangeSink) -> Option<BoxFuture<'static, ()>> {
        let _ = sink;
        None
    }

    /// A cheap query proving the store answers (one row at most read from the keys table), for
    /// [`Gate::readiness`](crate::Gate::readiness); `Unavailable` when it does not. The default
    /// answers `Ok` at once: a store of your own is then not checked.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// What a store's [`watch_changes`](ApiKeyStore::watch_changes) task reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyChange<'a> {
    /// The key with this id was revoked, rotated, re-dated or deleted.
    Key(&'a str),
    /// Changes may have been missed (the watch has just started, or reconnected): forget
    /// everything cached.
    Unknown,
}

/// Receives [`KeyChange`]s.
pub type ChangeSink = Box<dyn Fn(KeyChange<'_>) + Send + Sync>;

/// API keys in a `RwLock<HashMap>`. Nothing survives the process: for tests, demos, and services
/// that provision keys at start-up.
#[derive(Debug, Default)]
pub struct MemoryApiKeyStore {
    keys: RwLock<HashMap<String, ApiKeyRecord>>,
}

impl MemoryApiKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys it holds, in any state.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // A poisoned lock only means another thread panicked while holding it; every write below
    // replaces whole fields, so the map is still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, ApiKeyRecord>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, ApiKeyRecord>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    fn update<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut ApiKeyRecord) -> T,
    ) -> Result<T, StoreError> {
        let mut keys = self.write();
        let record = keys.get_mut(id).ok_or_else(|| not_found(id))?;
        Ok(change(record))
    }
}

/// Whether a self-served key counts towards its owner's limit and holds its name: neither
/// revoked nor rotated (an expired one too, until `insert_self_served` revokes it).
fn holds_name(key: &ApiKeyRecord) -> bool {
    key.revoked_at.is_none() && key.replaced_by.is_none()
}

fn id_taken(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!("API key id `{id}` is taken"),
    )
}

// The messages below are shared with the SQL stores, so every store says the same.

pub(crate) fn not_self_served(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Invalid,
        format!("API key `{id}` is not marked self-served"),
    )
}

pub(crate) fn limit_reached(owner: &str, max_active: usize) -> StoreError {
    StoreError::new(
        StoreErrorKind::LimitReached,
        format!("`{owner}` already has {max_active} active self-served API keys, the most allowed"),
    )
}

pub(crate) fn name_taken(owner: &str, name: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NameTaken,
        format!("`{owner}` already has an active self-served API key named `{name}`"),
    )
}

fn not_found(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("no API key with id `{id}`"),
    )
}

impl ApiKeyStore for MemoryApiKeyStore {
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut keys = self.write();
        let result = if keys.contains_key(&record.id) {
            Err(id_taken(&record.id))
        } else {
            keys.insert(record.id.clone(), record);
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        let found = self.read().get(id).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn list<'a>(
        &'a self,
        owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>> {
        let mut records: Vec<ApiKeyRecord> = self
            .read()
            .values()
            .filter(|r| owner.is_none_or(|owner| r.owner == owner))
            .cloned()
            .collect();
        records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Box::pin(async move { Ok(records) })
    }

    fn revoke<'a>(
        &'a self,
        id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
        let result = self.update(id, |record| {
            record.revoked_at.get_or_insert(at);
            record.clone()
        });
        Box::pin(async move { result })
    }

    fn set_expires_at<'a>(
        &'a self,
        id: &'a str,
        expires_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = self.update(id, |record| record.expires_at = expires_at);
        Box::pin(async move { result })
    }

    fn rotate<'a>(
        &'a self,
        old_id: &'a str,
        old_expires_by: DateTime<Utc>,
        new: ApiKeyRecord,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
        let result = (|| {
            let mut keys = self.write();
            if keys.contains_key(&new.id) {
                return Err(StoreError::new(
                    StoreErrorKind::Conflict,
                    format!("API key id `{}` is taken", new.id),
                ));
            }
            let old = keys.get_mut(old_id).ok_or_else(|| not_found(old_id))?;
            if old.revoked_at.is_some() || old.replaced_by.is_some() {
                return Err(StoreError::new(
                    StoreErrorKind::Conflict,
                    format!("API key `{old_id}` is revoked or already rotated"),
                ));
            }
            old.replaced_by = Some(new.id.clone());
            old.expires_at = Some(
                old.expires_at
                    .map_or(old_expires_by, |at| at.min(old_expires_by)),
            );
            let old = old.clone();
            keys.insert(new.id.clone(), new);
            Ok(old)
        })();
        Box::pin(async move { result })
    }

    fn insert_self_served(
        &self,
        record: ApiKeyRecord,
        max_active: usize,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = (|| {
            if !record.self_served {
                return Err(not_self_served(&record.id));
            }
            let now = Utc::now();
            // The whole check-and-insert runs under the write lock: no other write interleaves.
            let mut keys = self.write();
            if keys.contains_key(&record.id) {
                return Err(id_taken(&record.id));
            }
            let mut active = 0;
            for key in keys.values_mut() {
                if !key.self_served || key.owner != record.owner || !holds_name(key) {
                    continue;
                }
                if let Some(at) = key.expires_at.filter(|at| *at <= now) {
                    key.revoked_at = Some(at);
                    continue;
                }
                active += 1;
            }
            if active >= max_active {
                return Err(limit_reached(&record.owner, max_active));
            }
            let taken = keys.values().any(|key| {
                key.self_served
                    && key.owner == record.owner
                    && key.name == record.name
                    && holds_name(key)
            });
            if taken {
                return Err(name_taken(&record.owner, &record.name));
            }
            keys.insert(record.id.clone(), record);
            Ok(())
        })();
        Box::pin(async move { result })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = match self.write().remove(id) {
            Some(_) => Ok(()),
            None => Err(not_found(id)),
        };
        Box::pin(async move { result })
    }

    fn touch_last_used<'a>(
        &'a self,
        uses: &'a [(String, DateTime<Utc>)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut keys = self.write();
        for (id, at) in uses {
            if let Some(record) = keys.get_mut(id) {
                record.last_used_at = Some(record.last_used_at.map_or(*at, |last| last.max(*at)));
            }
        }
        drop(keys);
        Box::pin(async move { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn record(id: &str, owner: &str) -> ApiKeyRecord {
        ApiKeyRecord::new(id, owner, KeyDigest::from_bytes([7; 32]))
    }

    #[tokio::test]
    async fn insert_conflicts_on_a_taken_id() {
        let store = MemoryApiKeyStore::new();
        store.insert(record("a", "alice")).await.unwrap();
        let err = store.insert(record("a", "bob")).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Conflict);
        assert_eq!(store.find("a").await.unwrap().unwrap().owner, "alice");
    }

    #[tokio::test]
    async fn list_filters_by_owner_in_creation_order() {
        let store = MemoryApiKeyStore::new();
        let mut first = record("z", "alice");
        first.created_at -= TimeDelta::seconds(10);
        store.insert(first).await.unwrap();
        store.insert(record("b", "bob")).await.unwrap();
        store.insert(record("a", "alice")).await.unwrap();
        let ids =
            |records: Vec<ApiKeyRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list(Some("alice")).await.unwrap()), ["z", "a"]);
        assert_eq!(store.list(None).await.unwrap().len(), 3);
        assert!(store.list(Some("carol")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn revoke_keeps_the_first_time_and_reports_missing_keys() {
        let store = MemoryApiKeyStore::new();
        store.insert(record("a", "alice")).await.unwrap();
        let first = Utc::now();
        let revoked = store.revoke("a", first).await.unwrap();
        assert_eq!(revoked.revoked_at, Some(first));
        let again = store
            .revoke("a", first + TimeDelta::seconds(5))
            .await
            .unwrap();
        assert_eq!(again.revoked_at, Some(first));
        let err = store.revoke("nope", first).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::NotFound);
    }

    #[tokio::test]
    async fn rotate_is_all_or_nothing() {
        let store = MemoryApiKeyStore::new();
        let now = Utc::now();
        let mut old = record("old", "alice");
        old.expires_at = Some(now + TimeDelta::hours(1));
        store.insert(old).await.unwrap();

        // The overlap ends before the old expiry: it wins.
        let by = now + TimeDelta::minutes(5);
        let updated = store
            .rotate("old", by, record("new", "alice"))
            .await
            .unwrap();
        assert_eq!(updated.expires_at, Some(by));
        assert_eq!(updated.replaced_by.as_deref(), Some("new"));
        assert!(store.find("new").await.unwrap().is_some());

        // Rotating again conflicts and writes nothing.
        let err = store
            .rotate("old", by, record("newer", "alice"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Conflict);
        assert!(store.find("newer").await.unwrap().is_none());

        // The old expiry wins when it is earlier than the overlap.
        let mut short = record("short", "alice");
        short.expires_at = Some(now + TimeDelta::seconds(1));
        store.insert(short).await.unwrap();
        let updated = store
            .rotate("short", now + TimeDelta::hours(1), record("s2", "alice"))
            .await
            .unwrap();
        assert_eq!(updated.expires_at, Some(now + TimeDelta::seconds(1)));

        // A revoked key cannot be rotated; a missing one is NotFound.
        store.revoke("s2", now).await.unwrap();
        let err = store
            .rotate("s2", by, record("s3", "alice"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Conflict);
        let err = store
            .rotate("nope", by, record("s4", "alice"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::NotFound);
    }

    #[tokio::test]
    async fn touch_keeps_the_latest_time_and_skips_deleted_keys() {
        let store = MemoryApiKeyStore::new();
        store.insert(record("a", "alice")).await.unwrap();
        let now = Utc::now();
        let earlier = now - TimeDelta::seconds(30);
        store
            .touch_last_used(&[("a".into(), now), ("gone".into(), now)])
            .await
            .unwrap();
        store
            .touch_last_used(&[("a".into(), earlier)])
            .await
            .unwrap();
        assert_eq!(
            store.find("a").await.unwrap().unwrap().last_used_at,
            Some(now)
        );
        store.delete("a").await.unwrap();
        assert_eq!(
            store.delete("a").await.unwrap_err().kind(),
            StoreErrorKind::NotFound
        );
    }

    fn own(id: &str, owner: &str, name: &str) -> ApiKeyRecord {
        let mut r = record(id, owner);
        r.name = name.into();
        r.self_served = true;
        r.expires_at = Some(Utc::now() + TimeDelta::hours(1));
        r
    }

    #[tokio::test]
    async fn self_served_keys_hold_their_limit_and_names() {
        let store = MemoryApiKeyStore::new();
        store
            .insert_self_served(own("a", "alice", "laptop"), 2)
            .await
            .unwrap();
        let err = store
            .insert_self_served(own("b", "alice", "laptop"), 2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::NameTaken, "{err}");
        // Another owner, or a key that is not self-served, does not hold the name.
        store
            .insert_self_served(own("c", "bob", "laptop"), 2)
            .await
            .unwrap();
        store.insert(record("d", "alice")).await.unwrap();
        store
            .insert_self_served(own("e", "alice", "ci"), 2)
            .await
            .unwrap();
        let err = store
            .insert_self_served(own("f", "alice", "phone"), 2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::LimitReached, "{err}");
        assert!(store.find("f").await.unwrap().is_none());
        // A taken id is a Conflict, so `create` draws another.
        let err = store
            .insert_self_served(own("a", "carol", "x"), 2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
        // A record not marked self-served is refused.
        let err = store
            .insert_self_served(record("g", "carol"), 2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");

        // Revoking frees a place and the name.
        store.revoke("a", Utc::now()).await.unwrap();
        store
            .insert_self_served(own("h", "alice", "laptop"), 2)
            .await
            .unwrap();
        // Rotating keeps the place and the name with the new key.
        let mut next = own("i", "alice", "laptop");
        next.replaces = Some("h".into());
        store.rotate("h", Utc::now(), next).await.unwrap();
        let err = store
            .insert_self_served(own("j", "alice", "other"), 2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::LimitReached, "{err}");
        // An expired key is revoked at its expiry by the next insert, freeing both.
        let expired_at = Utc::now() - TimeDelta::seconds(1);
        store.set_expires_at("e", Some(expired_at)).await.unwrap();
        store
            .insert_self_served(own("k", "alice", "ci"), 2)
            .await
            .unwrap();
        assert_eq!(
            store.find("e").await.unwrap().unwrap().revoked_at,
            Some(expired_at)
        );
    }

    #[tokio::test]
    async fn a_custom_store_refuses_self_served_keys_unless_it_implements_them() {
        #[derive(Debug)]
        struct Custom(MemoryApiKeyStore);
        impl ApiKeyStore for Custom {
            fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>> {
                self.0.insert(record)
            }
            fn find<'a>(
                &'a self,
                id: &'a str,
            ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
                self.0.find(id)
            }
            fn list<'a>(
                &'a self,
                owner: Option<&'a str>,
            ) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>> {
                self.0.list(owner)
            }
            fn revoke<'a>(
                &'a self,
                id: &'a str,
                at: DateTime<Utc>,
            ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
                self.0.revoke(id, at)
            }
            fn set_expires_at<'a>(
                &'a self,
                id: &'a str,
                expires_at: Option<DateTime<Utc>>,
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                self.0.set_expires_at(id, expires_at)
            }
            fn rotate<'a>(
                &'a self,
                old_id: &'a str,
                old_expires_by: DateTime<Utc>,
                new: ApiKeyRecord,
            ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
                self.0.rotate(old_id, old_expires_by, new)
            }
            fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
                self.0.delete(id)
            }
            fn touch_last_used<'a>(
                &'a self,
                uses: &'a [(String, DateTime<Utc>)],
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                self.0.touch_last_used(uses)
            }
        }
        let store = Custom(MemoryApiKeyStore::new());
        let err = store
            .insert_self_served(own("a", "alice", "laptop"), 5)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unsupported);
        assert!(store.0.is_empty(), "nothing written");
    }

    #[test]
    fn debug_and_json_leave_the_digest_out() {
        let record = record("a", "alice");
        assert!(format!("{record:?}").contains("KeyDigest([redacted])"));
        let json = serde_json::to_value(&record).unwrap();
        assert!(json.get("digest").is_none());
        assert_eq!(json["owner_kind"], "user");
        assert_eq!(json["self_served"], false);
    }

    #[test]
    fn activity_depends_on_revocation_and_expiry() {
        let now = Utc::now();
        let mut r = record("a", "alice");
        assert!(r.is_active_at(now));
        r.expires_at = Some(now);
        assert!(!r.is_active_at(now), "expiry is exclusive");
        r.expires_at = Some(now + TimeDelta::seconds(1));
        assert!(r.is_active_at(now));
        r.revoked_at = Some(now);
        assert!(!r.is_active_at(now));
    }
}
