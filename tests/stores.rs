//! One lifecycle suite for users and API keys, run against every store: in memory, SQLite (in
//! memory and on a temporary file) and PostgreSQL (a scratch schema per test).
//!
//! PostgreSQL is found at `PORTCULLIS_TEST_PG`, or `postgres://postgres@127.0.0.1:5432/test`
//! (then the same as `root`). When none answers, the PostgreSQL tests print `SKIPPED: …` and pass,
//! unless `PORTCULLIS_REQUIRE_SERVICES=1` (set by CI), when they fail.
#![cfg(all(feature = "basic", feature = "api-key"))]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::SubjectKind;
use portcullis::store::{
    ApiKeyRecord, ApiKeyStore, KeyDigest, Stores, UserRecord, UserStore, open_store,
};
use portcullis::store::{PasswordHash, StoreErrorKind};

// ---------------------------------------------------------------------------------------------
// The suite

async fn users_lifecycle(stores: Stores) {
    let users = &*stores.users;
    let t = now();
    users_create_and_list(users, t).await;
    users_change_passwords(users, t).await;
    users_disable(users).await;
}

/// Three distinct PHC strings (`hash1`, `hash2`, `hash3` as the hash).
fn hashes() -> [PasswordHash; 3] {
    ["aGFzaDE", "aGFzaDI", "aGFzaDM"]
        .map(|h| PasswordHash::new(format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ${h}")))
}

async fn users_create_and_list(users: &dyn UserStore, t: DateTime<Utc>) {
    let [h1, h2, _] = hashes();
    assert!(users.find_user("alice").await.unwrap().is_none());
    assert!(users.list_users().await.unwrap().is_empty());

    // Create and find, every field intact.
    let mut alice = UserRecord::new("alice", h1.clone()).with_groups(["admin", "ops \"x\""]);
    alice.created_at = t;
    alice.updated_at = t;
    users.create_user(alice).await.unwrap();
    let found = users.find_user("alice").await.unwrap().expect("alice");
    assert_eq!(found.name, "alice");
    assert!(found.password_hash.ct_eq(&h1));
    assert_eq!(found.kind, SubjectKind::User);
    assert_eq!(found.groups, ["admin", "ops \"x\""]);
    assert!(!found.disabled);
    assert_eq!((found.created_at, found.updated_at), (t, t));

    // A taken name conflicts and changes nothing.
    let err = users
        .create_user(UserRecord::new("alice", h2.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
    let found = users.find_user("alice").await.unwrap().unwrap();
    assert!(found.password_hash.ct_eq(&h1));
    assert_eq!(found.groups.len(), 2);

    // Listing is by name.
    users
        .create_user(UserRecord::new("bob", h1.clone()))
        .await
        .unwrap();
    users
        .create_user(UserRecord::new("app", h1.clone()).with_kind(SubjectKind::Application))
        .await
        .unwrap();
    let listed = users.list_users().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "app", "bob"]);
    assert_eq!(listed[1].kind, SubjectKind::Application);
}

async fn users_change_passwords(users: &dyn UserStore, t: DateTime<Utc>) {
    let [h1, h2, h3] = hashes();
    let stored = async |name| users.find_user(name).await.unwrap().unwrap().password_hash;
    // set_password_hash.
    users.set_password_hash("alice", h2.clone()).await.unwrap();
    let found = users.find_user("alice").await.unwrap().unwrap();
    assert!(found.password_hash.ct_eq(&h2));
    assert!(found.updated_at >= t);
    assert_eq!(found.created_at, t);
    let err = users
        .set_password_hash("nobody", h2.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");

    // replace_password_hash: a stale expectation replaces nothing; a current one does.
    assert!(
        !users
            .replace_password_hash("alice", &h1, h3.clone())
            .await
            .unwrap()
    );
    assert!(stored("alice").await.ct_eq(&h2));
    assert!(
        users
            .replace_password_hash("alice", &h2, h3.clone())
            .await
            .unwrap()
    );
    assert!(stored("alice").await.ct_eq(&h3));
    let err = users
        .replace_password_hash("nobody", &h2, h3.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
}

async fn users_disable(users: &dyn UserStore) {
    // set_disabled, both ways.
    users.set_disabled("bob", true).await.unwrap();
    assert!(users.find_user("bob").await.unwrap().unwrap().disabled);
    assert!(!users.find_user("alice").await.unwrap().unwrap().disabled);
    users.set_disabled("bob", false).await.unwrap();
    assert!(!users.find_user("bob").await.unwrap().unwrap().disabled);
    let err = users.set_disabled("nobody", true).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
}

async fn api_keys_lifecycle(stores: Stores) {
    let keys = &*stores.api_keys;
    let t = now();
    let k1 = keys_insert_and_list(keys, t).await;
    keys_revoke_and_expire(keys, t).await;
    keys_rotate(keys, t).await;
    keys_touch_and_delete(keys, t, &k1).await;
}

/// Inserts k1 (returned), k2 and k3.
async fn keys_insert_and_list(keys: &dyn ApiKeyStore, t: DateTime<Utc>) -> ApiKeyRecord {
    assert!(keys.find("k1").await.unwrap().is_none());
    assert!(keys.list(None).await.unwrap().is_empty());

    // Insert and find, every field intact.
    let mut k1 = key("k1", "alice", t - TimeDelta::seconds(10));
    k1.owner_kind = SubjectKind::Application;
    k1.groups = vec!["deployers".into()];
    k1.created_by = Some("operator".into());
    k1.expires_at = Some(t + TimeDelta::hours(1));
    k1.last_used_at = Some(t - TimeDelta::seconds(5));
    keys.insert(k1.clone()).await.unwrap();
    assert_same(&keys.find("k1").await.unwrap().expect("k1"), &k1);
    let mut k2 = key("k2", "bob", t);
    k2.replaces = Some("k0".into());
    keys.insert(k2.clone()).await.unwrap();
    assert_same(&keys.find("k2").await.unwrap().unwrap(), &k2);
    keys.insert(key("k3", "alice", t)).await.unwrap();
    assert!(keys.find("nope").await.unwrap().is_none());

    // A taken id conflicts and changes nothing.
    let err = keys.insert(key("k1", "mallory", t)).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
    assert_same(&keys.find("k1").await.unwrap().unwrap(), &k1);

    // Listing: per owner, oldest first; everyone's; nobody's.
    assert_eq!(ids(keys.list(Some("alice")).await.unwrap()), ["k1", "k3"]);
    assert_eq!(ids(keys.list(None).await.unwrap()), ["k1", "k2", "k3"]);
    assert!(keys.list(Some("carol")).await.unwrap().is_empty());
    k1
}

/// Revokes k3 and leaves k2 without an expiry.
async fn keys_revoke_and_expire(keys: &dyn ApiKeyStore, t: DateTime<Utc>) {
    // Revoke: the first time stays.
    let revoked = keys.revoke("k3", t).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(t));
    assert_eq!(revoked.id, "k3");
    let again = keys.revoke("k3", t + TimeDelta::seconds(5)).await.unwrap();
    assert_eq!(again.revoked_at, Some(t));
    assert_eq!(keys.find("k3").await.unwrap().unwrap().revoked_at, Some(t));
    let err = keys.revoke("nope", t).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");

    // set_expires_at: set, clear, missing.
    let later = t + TimeDelta::hours(2);
    keys.set_expires_at("k2", Some(later)).await.unwrap();
    assert_eq!(
        keys.find("k2").await.unwrap().unwrap().expires_at,
        Some(later)
    );
    keys.set_expires_at("k2", None).await.unwrap();
    assert_eq!(keys.find("k2").await.unwrap().unwrap().expires_at, None);
    let err = keys.set_expires_at("nope", Some(later)).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
}

/// Rotates k1 to k4, k2 to k6 and k6 to k7; k3 (revoked) refuses.
async fn keys_rotate(keys: &dyn ApiKeyStore, t: DateTime<Utc>) {
    // Rotate: the overlap ends before the old expiry, so it wins; the new key is there.
    let by = t + TimeDelta::minutes(5);
    let mut k4 = key("k4", "alice", t);
    k4.replaces = Some("k1".into());
    let old = keys.rotate("k1", by, k4.clone()).await.unwrap();
    assert_eq!(old.id, "k1");
    assert_eq!(old.expires_at, Some(by));
    assert_eq!(old.replaced_by.as_deref(), Some("k4"));
    assert_same(&keys.find("k1").await.unwrap().unwrap(), &old);
    assert_same(&keys.find("k4").await.unwrap().unwrap(), &k4);

    // Rotating again conflicts and writes nothing.
    let err = keys
        .rotate("k1", by, key("k5", "alice", t))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
    assert!(keys.find("k5").await.unwrap().is_none());
    assert_eq!(
        keys.find("k1")
            .await
            .unwrap()
            .unwrap()
            .replaced_by
            .as_deref(),
        Some("k4")
    );

    // The old expiry wins when it is earlier; a key with no expiry gets the overlap's end.
    let soon = t + TimeDelta::seconds(1);
    keys.set_expires_at("k2", Some(soon)).await.unwrap();
    let old = keys
        .rotate("k2", t + TimeDelta::hours(1), key("k6", "bob", t))
        .await
        .unwrap();
    assert_eq!(old.expires_at, Some(soon));
    let old = keys.rotate("k6", by, key("k7", "bob", t)).await.unwrap();
    assert_eq!(old.expires_at, Some(by));

    // A revoked key cannot be rotated; a missing one is NotFound; a taken new id conflicts.
    // None of them writes anything.
    let err = keys
        .rotate("k3", by, key("k8", "alice", t))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
    let err = keys
        .rotate("nope", by, key("k9", "alice", t))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    let err = keys
        .rotate("k4", by, key("k2", "alice", t))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
    for absent in ["k8", "k9"] {
        assert!(keys.find(absent).await.unwrap().is_none(), "{absent}");
    }
    let k4_now = keys.find("k4").await.unwrap().unwrap();
    assert_same(&k4_now, &k4);
    assert_eq!(keys.find("k2").await.unwrap().unwrap().owner, "bob");
}

async fn keys_touch_and_delete(keys: &dyn ApiKeyStore, t: DateTime<Utc>, k1: &ApiKeyRecord) {
    let last_used = async |id| keys.find(id).await.unwrap().unwrap().last_used_at;
    // touch_last_used: one batch, the latest time per key, gone keys skipped, never backwards.
    let earlier = t - TimeDelta::seconds(30);
    keys.touch_last_used(&[
        ("k4".into(), t),
        ("gone".into(), t),
        ("k4".into(), earlier),
        ("k7".into(), earlier),
    ])
    .await
    .unwrap();
    assert_eq!(last_used("k4").await, Some(t));
    assert_eq!(last_used("k7").await, Some(earlier));
    keys.touch_last_used(&[("k4".into(), earlier)])
        .await
        .unwrap();
    assert_eq!(last_used("k4").await, Some(t));
    let t1 = t + TimeDelta::seconds(1);
    keys.touch_last_used(&[("k4".into(), t1)]).await.unwrap();
    assert_eq!(last_used("k4").await, Some(t1));
    keys.touch_last_used(&[]).await.unwrap();
    // k1 had a last use before; an older touch leaves it.
    keys.touch_last_used(&[("k1".into(), t - TimeDelta::seconds(60))])
        .await
        .unwrap();
    assert_eq!(last_used("k1").await, k1.last_used_at);

    // Delete.
    keys.delete("k2").await.unwrap();
    assert!(keys.find("k2").await.unwrap().is_none());
    let err = keys.delete("k2").await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    assert_eq!(
        ids(keys.list(None).await.unwrap()),
        ["k1", "k3", "k4", "k6", "k7"]
    );
}

/// A self-served key of `owner` named `name`, expiring in an hour.
fn own(id: &str, owner: &str, name: &str, t: DateTime<Utc>) -> ApiKeyRecord {
    let mut record = key(id, owner, t);
    record.name = name.into();
    record.self_served = true;
    record.expires_at = Some(t + TimeDelta::hours(1));
    record
}

/// Self-served keys: names unique among an owner's active ones, the per-owner limit, and what
/// frees a name and a place (revocation, rotation, expiry); rotation keeps the name.
async fn self_served_keys(stores: Stores) {
    let keys = &*stores.api_keys;
    let t = now();
    let kind = async |record: ApiKeyRecord, max: usize| {
        keys.insert_self_served(record, max)
            .await
            .unwrap_err()
            .kind()
    };
    let laptop = own("s1", "alice", "laptop", t);
    keys.insert_self_served(laptop.clone(), 3).await.unwrap();
    assert_same(&keys.find("s1").await.unwrap().unwrap(), &laptop);
    assert_eq!(
        kind(own("s2", "alice", "laptop", t), 3).await,
        StoreErrorKind::NameTaken
    );
    assert!(keys.find("s2").await.unwrap().is_none());
    // Another owner's, and keys that are not self-served, share names freely.
    keys.insert_self_served(own("s3", "bob", "laptop", t), 3)
        .await
        .unwrap();
    let mut plain = key("p1", "alice", t);
    plain.name = "laptop".into();
    keys.insert(plain.clone()).await.unwrap();
    plain.id = "p2".into();
    keys.insert(plain).await.unwrap();
    // A taken id conflicts; a record not marked self-served is invalid.
    assert_eq!(
        kind(own("s1", "carol", "x", t), 3).await,
        StoreErrorKind::Conflict
    );
    assert_eq!(
        kind(key("p3", "carol", t), 3).await,
        StoreErrorKind::Invalid
    );
    assert!(keys.find("p3").await.unwrap().is_none());

    // The limit: plain keys do not count; the limit is checked before the name.
    keys.insert_self_served(own("s4", "alice", "phone", t), 3)
        .await
        .unwrap();
    keys.insert_self_served(own("s5", "alice", "ci", t), 3)
        .await
        .unwrap();
    assert_eq!(
        kind(own("s6", "alice", "tablet", t), 3).await,
        StoreErrorKind::LimitReached
    );
    assert_eq!(
        kind(own("s6", "alice", "laptop", t), 3).await,
        StoreErrorKind::LimitReached
    );
    assert_eq!(
        kind(own("s6", "alice", "tablet", t), 0).await,
        StoreErrorKind::LimitReached
    );
    assert!(keys.find("s6").await.unwrap().is_none());
    self_served_keys_free(keys, t).await;
}

/// After [`self_served_keys`]: alice has laptop (s1), phone (s4) and ci (s5), at her limit of 3.
async fn self_served_keys_free(keys: &dyn ApiKeyStore, t: DateTime<Utc>) {
    let kind = async |record: ApiKeyRecord, max: usize| {
        keys.insert_self_served(record, max)
            .await
            .unwrap_err()
            .kind()
    };
    // Rotation: the new key keeps the name and the place; the old one frees both.
    let mut next = own("s7", "alice", "laptop", t);
    next.replaces = Some("s1".into());
    keys.rotate("s1", t + TimeDelta::minutes(5), next.clone())
        .await
        .unwrap();
    assert_same(&keys.find("s7").await.unwrap().unwrap(), &next);
    assert_eq!(
        kind(own("s8", "alice", "tablet", t), 3).await,
        StoreErrorKind::LimitReached
    );

    // Revocation frees a place and the name.
    keys.revoke("s7", t).await.unwrap();
    keys.insert_self_served(own("s9", "alice", "laptop", t), 3)
        .await
        .unwrap();

    // Expiry: the next insert revokes the expired key at its expiry, freeing both.
    let expired = t - TimeDelta::seconds(1);
    keys.set_expires_at("s4", Some(expired)).await.unwrap();
    keys.insert_self_served(own("s10", "alice", "phone", t), 3)
        .await
        .unwrap();
    let s4 = keys.find("s4").await.unwrap().unwrap();
    assert_eq!(s4.revoked_at, Some(expired));
    // Bob's keys, and keys already revoked, are left as they were.
    assert_eq!(keys.find("s3").await.unwrap().unwrap().revoked_at, None);
    assert_eq!(keys.find("s7").await.unwrap().unwrap().revoked_at, Some(t));
    assert_eq!(
        kind(own("s11", "alice", "tablet", t), 3).await,
        StoreErrorKind::LimitReached
    );
    let mut active: Vec<String> = keys
        .list(Some("alice"))
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.self_served && k.revoked_at.is_none() && k.replaced_by.is_none())
        .map(|k| k.name)
        .collect();
    active.sort();
    assert_eq!(active, ["ci", "laptop", "phone"]);
}

/// 20 tasks create self-served keys for one owner at once, with a limit of 5: exactly 5
/// succeed and the rest are refused at the limit. Then 20 tasks create keys of one name: exactly
/// one succeeds, the rest are refused for the name.
async fn self_served_race(stores: Stores) {
    let keys = stores.api_keys;
    let t = now();
    let race = async |owner: &'static str, same_name: bool, max: usize| {
        let start = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (keys, start) = (keys.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                let name = if same_name {
                    "one".to_owned()
                } else {
                    format!("n{i}")
                };
                start.wait().await;
                keys.insert_self_served(own(&format!("{owner}-{i}"), owner, &name, t), max)
                    .await
            }));
        }
        let mut outcomes = (0, Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => outcomes.0 += 1,
                Err(err) => outcomes.1.push(err.kind()),
            }
        }
        let stored = keys.list(Some(owner)).await.unwrap().len();
        (outcomes, stored)
    };
    let ((won, lost), stored) = race("racer", false, 5).await;
    assert_eq!((won, stored), (5, 5), "{lost:?}");
    assert!(
        lost.iter().all(|k| *k == StoreErrorKind::LimitReached),
        "{lost:?}"
    );
    let ((won, lost), stored) = race("namer", true, 100).await;
    assert_eq!((won, stored), (1, 1), "{lost:?}");
    assert!(
        lost.iter().all(|k| *k == StoreErrorKind::NameTaken),
        "{lost:?}"
    );
}

/// What a database migrated by the previous schema holds, as the suite reads it after the
/// migration to self-served keys: alice's two keys named `laptop` (allowed before, and still:
/// they are not self-served), one revoked. Self-served keys then work beside them.
async fn check_migrated_keys(keys: &dyn ApiKeyStore, t: DateTime<Utc>) {
    let old = keys.list(Some("alice")).await.unwrap();
    assert_eq!(ids(old.clone()), ["old1", "old2"]);
    for record in &old {
        assert!(!record.self_served, "{}", record.id);
        assert_eq!(record.name, "laptop");
        assert_eq!(record.groups, ["staff"]);
    }
    assert_eq!(old[1].revoked_at, Some(t));
    keys.insert_self_served(own("new1", "alice", "laptop", t), 5)
        .await
        .unwrap();
    let err = keys
        .insert_self_served(own("new2", "alice", "laptop", t), 5)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NameTaken, "{err}");
}

/// The migration bookkeeping row of a migration applied by hand, as the store records it.
fn migration_row(sql: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(sql.as_bytes()).to_vec()
}

/// The tasks of [`concurrent_writes`], and the keys each inserts.
const TASKS: usize = 32;
const PER_TASK: usize = 6;

/// The id of a task's `i`th key in [`concurrent_writes`].
fn id(task: usize, i: usize) -> String {
    format!("c{task:02}-{i}")
}

/// 32 tasks create and revoke keys at once, then revoke each other's keys (two tasks racing on
/// every odd row) while uses of every key are recorded; then 16 tasks race to rotate one key.
async fn concurrent_writes(stores: Stores) {
    let keys = stores.api_keys;
    let t = now();
    let (later, used_early, used_late) = (
        t + TimeDelta::seconds(1),
        t + TimeDelta::minutes(1),
        t + TimeDelta::minutes(2),
    );
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let inserted = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let keys = keys.clone();
        let (start, inserted) = (start.clone(), inserted.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for i in 0..PER_TASK {
                keys.insert(key(&id(task, i), &format!("owner{}", task % 4), t))
                    .await
                    .unwrap();
                // One key revoked as soon as it exists, while other tasks insert.
                if i == 1 {
                    let revoked = keys.revoke(&id(task, i), t).await.unwrap();
                    assert_eq!(revoked.revoked_at, Some(t));
                }
            }
            inserted.wait().await;
            // Every key is used through its owner and the previous task at once, and every odd
            // one is revoked by both: no write may undo another.
            let next = (task + 1) % TASKS;
            for i in 0..PER_TASK {
                let uses = [(id(task, i), used_late), (id(next, i), used_early)];
                keys.touch_last_used(&uses).await.unwrap();
                if i % 2 == 1 {
                    keys.revoke(&id(task, i), t).await.unwrap();
                    keys.revoke(&id(next, i), later).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    check_concurrent_writes(&*keys, t, later, used_late).await;
    rotation_race(keys, t).await;
}

/// What `concurrent_writes` left: every key, revoked at the first time, used at the latest.
async fn check_concurrent_writes(
    keys: &dyn ApiKeyStore,
    t: DateTime<Utc>,
    later: DateTime<Utc>,
    used_late: DateTime<Utc>,
) {
    let all = keys.list(None).await.unwrap();
    assert_eq!(all.len(), TASKS * PER_TASK);
    for task in 0..TASKS {
        for i in 0..PER_TASK {
            let id = id(task, i);
            let record = all
                .iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| panic!("{id} lost"));
            match i {
                // Revoked first at `t`: the later revocations keep that time.
                1 => assert_eq!(record.revoked_at, Some(t), "{id}"),
                // Whichever racer came first set the time.
                _ if i % 2 == 1 => assert!(
                    record.revoked_at == Some(t) || record.revoked_at == Some(later),
                    "{id} revoked at {:?}",
                    record.revoked_at
                ),
                _ => assert_eq!(record.revoked_at, None, "{id} is still active"),
            }
            assert_eq!(
                record.last_used_at,
                Some(used_late),
                "{id}: the later use wins"
            );
            assert!(record.digest.ct_eq(&digest_for(&id)), "{id}");
        }
    }
    assert_eq!(
        keys.list(Some("owner0")).await.unwrap().len(),
        TASKS / 4 * PER_TASK
    );
}

async fn rotation_race(keys: Arc<dyn ApiKeyStore>, t: DateTime<Utc>) {
    // Rotation races: exactly one winner, and the losers leave no new key behind.
    keys.insert(key("hot", "alice", t)).await.unwrap();
    let by = t + TimeDelta::minutes(1);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            keys.rotate("hot", by, key(&format!("hot-{i}"), "alice", t))
                .await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(old) => {
                winners += 1;
                assert_eq!(old.expires_at, Some(by));
            }
            Err(err) => assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}"),
        }
    }
    assert_eq!(winners, 1);
    let new: Vec<String> = ids(keys.list(Some("alice")).await.unwrap())
        .into_iter()
        .filter(|id| id.starts_with("hot-"))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let hot = keys.find("hot").await.unwrap().unwrap();
    assert_eq!(hot.replaced_by.as_deref(), Some(new[0].as_str()));
}

// ---------------------------------------------------------------------------------------------
// Memory

#[tokio::test]
async fn memory_users_lifecycle() {
    users_lifecycle(open_store("memory").await.unwrap()).await;
}

#[tokio::test]
async fn memory_api_keys_lifecycle() {
    api_keys_lifecycle(open_store("memory").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn memory_concurrent_writes() {
    concurrent_writes(open_store("memory").await.unwrap()).await;
}

#[tokio::test]
async fn memory_self_served_keys() {
    self_served_keys(open_store("memory").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn memory_self_served_race() {
    self_served_race(open_store("memory").await.unwrap()).await;
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use portcullis::store::{ApiKeyStore, SqliteStore, UserStore};
    use std::path::Path;

    #[tokio::test]
    async fn sqlite_in_memory_lifecycle() {
        users_lifecycle(open_store("sqlite::memory:").await.unwrap()).await;
        api_keys_lifecycle(open_store("sqlite::memory:").await.unwrap()).await;
    }

    #[tokio::test]
    async fn sqlite_file_users_lifecycle() {
        let db = TempDb::new("users");
        users_lifecycle(open_store(&db.url()).await.unwrap()).await;
    }

    #[tokio::test]
    async fn sqlite_file_api_keys_lifecycle() {
        let db = TempDb::new("keys");
        api_keys_lifecycle(open_store(&db.url()).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn sqlite_file_concurrent_writes() {
        let db = TempDb::new("concurrent");
        concurrent_writes(open_store(&db.url()).await.unwrap()).await;
    }

    #[tokio::test]
    async fn sqlite_self_served_keys() {
        self_served_keys(open_store("sqlite::memory:").await.unwrap()).await;
        let db = TempDb::new("self-served");
        self_served_keys(open_store(&db.url()).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn sqlite_file_self_served_race() {
        let db = TempDb::new("self-served-race");
        self_served_race(open_store(&db.url()).await.unwrap()).await;
    }

    /// A database created by schema 1 (before self-served keys) is migrated when opened: its
    /// keys read as not self-served, two of one owner's with one name stay, and the unique index
    /// holds for self-served keys from then on.
    #[tokio::test]
    async fn sqlite_file_migrates_a_database_of_the_previous_schema() {
        use sqlx::{Connection, SqliteConnection};
        let db = TempDb::new("migrate");
        let t = now();
        let init = include_str!("../migrations/sqlite/0001_init.sql");
        {
            let mut conn = SqliteConnection::connect(&format!("{}?mode=rwc", db.url()))
                .await
                .unwrap();
            sqlx::raw_sql(
                "CREATE TABLE portcullis_migrations (version INTEGER NOT NULL PRIMARY KEY, \
                 description TEXT NOT NULL, checksum BLOB NOT NULL, \
                 applied_at INTEGER NOT NULL) STRICT",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::raw_sql(init).execute(&mut conn).await.unwrap();
            sqlx::query(
                "INSERT INTO portcullis_migrations VALUES (1, 'users and API keys', $1, 0)",
            )
            .bind(migration_row(init))
            .execute(&mut conn)
            .await
            .unwrap();
            for (id, revoked) in [("old1", None), ("old2", Some(t.timestamp_micros()))] {
                sqlx::query(
                    "INSERT INTO api_keys (id, owner, owner_kind, name, groups, created_at, \
                     revoked_at, digest) VALUES ($1, 'alice', 'user', 'laptop', '[\"staff\"]', \
                     $2, $3, $4)",
                )
                .bind(id)
                .bind(t.timestamp_micros())
                .bind(revoked)
                .bind(digest_for(id).as_bytes().to_vec())
                .execute(&mut conn)
                .await
                .unwrap();
            }
            conn.close().await.unwrap();
        }
        let store = SqliteStore::open(&db.url()).await.unwrap();
        check_migrated_keys(&store, t).await;
        store.close().await;
        // Opening again finds nothing left to migrate, and the data as it was.
        let store = SqliteStore::open(&db.url()).await.unwrap();
        assert_eq!(store.list(Some("alice")).await.unwrap().len(), 3);
        store.close().await;
    }

    /// Everything survives closing and reopening, and reopening does not migrate again.
    #[tokio::test]
    async fn sqlite_file_reopens_with_its_data() {
        let db = TempDb::new("reopen");
        let t = now();
        {
            let store = SqliteStore::open(db.path.to_str().unwrap()).await.unwrap();
            store
                .create_user(UserRecord::new("alice", PasswordHash::new("$argon2id$x")))
                .await
                .unwrap();
            store.insert(key("k1", "alice", t)).await.unwrap();
            store.close().await;
        }
        for url in [db.url(), db.path.display().to_string()] {
            let store = SqliteStore::open(&url).await.unwrap();
            assert!(store.find_user("alice").await.unwrap().is_some());
            assert_same(
                &store.find("k1").await.unwrap().unwrap(),
                &key("k1", "alice", t),
            );
            store.close().await;
        }
    }

    /// The file (and its write-ahead log) holds neither an API key, nor its secret, nor a
    /// password: only their hashes.
    #[tokio::test]
    async fn sqlite_file_never_contains_a_key_or_a_password() {
        use portcullis::basic::HashingConfig;
        use portcullis::{ApiKeys, BasicAuthenticator, NewApiKey};
        use std::time::Duration;

        let db = TempDb::new("secrets");
        let stores = open_store(&db.url()).await.unwrap();
        let keys = ApiKeys::builder(
            stores.api_keys.clone(),
            "a pepper of at least thirty-two bytes, for tests".into(),
        )
        .build()
        .unwrap();
        let issued = keys
            .create(
                NewApiKey::new("alice")
                    .with_name("ci")
                    .with_expires_in(Duration::from_secs(86_400)),
            )
            .await
            .unwrap();
        let full_key = issued.key().expose_secret().to_owned();
        let parsed = keys.format().parse(&full_key).unwrap();
        let secret = parsed.secret().expose_secret().to_owned();
        assert!(secret.len() >= 40, "a 256-bit secret in base62");
        let rotated = keys
            .rotate(issued.id(), Duration::from_secs(60))
            .await
            .unwrap();
        let rotated_key = rotated.key().expose_secret().to_owned();

        let password = "correct horse battery staple 8d1f";
        let basic = BasicAuthenticator::builder(stores.users.clone())
            .hashing(
                HashingConfig::default()
                    .with_memory_kib(64)
                    .with_iterations(1),
            )
            .build()
            .unwrap();
        basic
            .add_user("alice", &password.into(), ["admin"])
            .await
            .unwrap();

        let check = |when: &str| {
            let bytes = db.bytes();
            // The records are really in these bytes (so the search below means something).
            assert!(find(&bytes, issued.id().as_bytes()), "{when}: id missing");
            assert!(find(&bytes, rotated.id().as_bytes()), "{when}: id missing");
            assert!(find(&bytes, b"$argon2id$"), "{when}: password hash missing");
            for (what, needle) in [
                ("the key", full_key.as_str()),
                ("the secret", secret.as_str()),
                ("the secret's first half", &secret[..secret.len() / 2]),
                ("the rotated key", rotated_key.as_str()),
                ("the password", password),
            ] {
                assert!(
                    !find(&bytes, needle.as_bytes()),
                    "{when}: {what} is in the file"
                );
            }
        };
        check("open");
        drop((keys, basic));
        // Closing checkpoints the write-ahead log into the main file.
        drop(stores);
        let store = SqliteStore::open(&db.url()).await.unwrap();
        store.close().await;
        check("closed");
    }

    /// A temporary database file, removed (with its `-wal` and `-shm` files) on drop.
    pub(super) struct TempDb {
        pub(super) path: PathBuf,
    }

    impl TempDb {
        pub(super) fn new(tag: &str) -> Self {
            Self {
                path: unique_path(tag),
            }
        }

        pub(super) fn url(&self) -> String {
            format!("sqlite://{}", self.path.display())
        }

        /// The bytes of the database file and its write-ahead log, if any.
        fn bytes(&self) -> Vec<u8> {
            let mut bytes = std::fs::read(&self.path).unwrap();
            if let Ok(wal) = std::fs::read(sidecar(&self.path, "-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(sidecar(&self.path, suffix));
            }
        }
    }

    fn sidecar(path: &Path, suffix: &str) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    fn find(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use portcullis::store::{ApiKeyStore, PostgresStore};
    use sqlx::{Connection, PgConnection};
    use std::future::Future;
    use std::time::Duration;

    #[tokio::test]
    async fn postgres_users_lifecycle() {
        with_postgres(users_lifecycle).await;
    }

    #[tokio::test]
    async fn postgres_api_keys_lifecycle() {
        with_postgres(api_keys_lifecycle).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn postgres_concurrent_writes() {
        with_postgres(concurrent_writes).await;
    }

    #[tokio::test]
    async fn postgres_self_served_keys() {
        with_postgres(self_served_keys).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn postgres_self_served_race() {
        with_postgres(self_served_race).await;
    }

    /// A database migrated by schema 2 (before self-served keys) is migrated on connect.
    #[tokio::test]
    async fn postgres_migrates_a_database_of_the_previous_schema() {
        with_postgres_url(|url| async move {
            let t = now();
            previous_schema(url.clone(), t).await;
            let store = PostgresStore::connect(&url).await.unwrap();
            check_migrated_keys(&store, t).await;
            store.close().await;
        })
        .await;
    }

    /// Schema 2 and alice's two old keys, written as that version of portcullis would have.
    async fn previous_schema(url: String, t: DateTime<Utc>) {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE portcullis_migrations (version BIGINT NOT NULL PRIMARY KEY, \
                 description TEXT NOT NULL, checksum BYTEA NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let shipped = [
            (
                1,
                "users and API keys",
                include_str!("../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "notify API key changes",
                include_str!("../migrations/postgres/0002_notify_key_changes.sql"),
            ),
        ];
        for (version, description, sql) in shipped {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO portcullis_migrations VALUES ($1, $2, $3, now())")
                .bind(version as i64)
                .bind(description)
                .bind(migration_row(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        for (id, revoked) in [("old1", None), ("old2", Some(t))] {
            sqlx::query(
                "INSERT INTO api_keys (id, owner, owner_kind, name, groups, created_at, \
                     revoked_at, digest) VALUES ($1, 'alice', 'user', 'laptop', '[\"staff\"]', \
                     $2, $3, $4)",
            )
            .bind(id)
            .bind(t)
            .bind(revoked)
            .bind(digest_for(id).as_bytes().to_vec())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }

    /// Two stores on one database see each other's writes at once, and connecting again
    /// does not migrate again.
    #[tokio::test]
    async fn postgres_two_instances_share_one_database() {
        with_postgres_url(|url| async move {
            let a = PostgresStore::connect(&url).await.unwrap();
            let b = PostgresStore::connect(&url).await.unwrap();
            let t = now();
            a.insert(key("k1", "alice", t)).await.unwrap();
            assert_same(
                &b.find("k1").await.unwrap().unwrap(),
                &key("k1", "alice", t),
            );
            b.revoke("k1", t).await.unwrap();
            assert_eq!(a.find("k1").await.unwrap().unwrap().revoked_at, Some(t));
            a.close().await;
            b.close().await;
        })
        .await;
    }

    /// Two Gates (two instances) share one database: a key revoked through one is refused by the
    /// other once its positive cache entry expires, so the cache TTL bounds revocation. Measured.
    #[tokio::test]
    async fn revocation_reaches_another_gate_within_the_cache_ttl() {
        with_postgres_url(|url| async move {
            use portcullis::NewApiKey;
            let ttl = Duration::from_millis(500);
            // Without the change watch, so the TTL alone bounds it.
            let (keys_a, gate_a) = instance(&url, ttl, false).await;
            let (_keys_b, gate_b) = instance(&url, ttl, false).await;
            let issued = keys_a
                .create(NewApiKey::new("svc").with_expires_in(Duration::from_secs(3600)))
                .await
                .unwrap();
            let key = issued.key().expose_secret().to_owned();
            assert!(
                accepts(&gate_a, &key).await && accepts(&gate_b, &key).await,
                "both accept, B now caches it"
            );
            let revoked_at = std::time::Instant::now();
            keys_a.revoke(issued.id()).await.unwrap();
            assert!(
                !accepts(&gate_a, &key).await,
                "the revoking instance refuses at once"
            );
            while accepts(&gate_b, &key).await {
                assert!(
                    revoked_at.elapsed() < ttl * 3,
                    "still accepted after {:?}",
                    revoked_at.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let bound = revoked_at.elapsed();
            println!("revocation reached the other instance after {bound:?} (cache TTL {ttl:?})");
            assert!(bound <= ttl + Duration::from_millis(100), "{bound:?}");
        })
        .await;
    }

    /// With the change watch (`LISTEN`/`NOTIFY`), a key revoked through one instance, or by plain
    /// SQL, is refused by another at once although its cache TTL is a minute; and after the
    /// listening connection is killed, the watch listens again and keeps working. Measured.
    #[tokio::test]
    async fn revocation_reaches_another_gate_at_once_through_notify() {
        with_postgres_url(|url| async move {
            use portcullis::NewApiKey;
            let ttl = Duration::from_secs(60);
            let (keys_a, _gate_a) = instance(&url, ttl, true).await;
            let (_keys_b, gate_b) = instance(&url, ttl, true).await;
            let accepts = |key: String| {
                let gate = gate_b.clone();
                async move { accepts(&gate, &key).await }
            };
            // Waits until instance B refuses `key`; the time it took.
            let refused_within = |key: String, limit: Duration| async move {
                let start = std::time::Instant::now();
                while accepts(key.clone()).await {
                    assert!(
                        start.elapsed() < limit,
                        "instance B still accepts a revoked key after {:?}",
                        start.elapsed()
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                start.elapsed()
            };
            let create = || async {
                let issued = keys_a
                    .create(NewApiKey::new("svc").with_expires_in(Duration::from_secs(3600)))
                    .await
                    .unwrap();
                let key = issued.key().expose_secret().to_owned();
                assert!(accepts(key.clone()).await, "B accepts it, and caches it");
                (issued.id().to_owned(), key)
            };
            let (first_id, first) = create().await;
            // B's watch starts on its first lookup; give LISTEN a moment before the first change.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = std::time::Instant::now();
            keys_a.revoke(&first_id).await.unwrap();
            let through_a = started.elapsed() + refused_within(first, Duration::from_secs(5)).await;

            // A change by hand (an operator's SQL, another tool) is reported the same way.
            let (second_id, second) = create().await;
            let mut sql = sqlx::PgConnection::connect(&url).await.unwrap();
            let started = std::time::Instant::now();
            sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1")
                .bind(&second_id)
                .execute(&mut sql)
                .await
                .unwrap();
            let by_hand = started.elapsed() + refused_within(second, Duration::from_secs(5)).await;

            // Kill every connection listening on the channel: B listens again (after 1 s) and
            // starts over with an empty cache, so the next revocation is seen at once again.
            let (third_id, third) = create().await;
            let killed: Vec<(bool,)> = sqlx::query_as(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query ILIKE 'LISTEN%portcullis_api_keys%'",
            )
            .fetch_all(&mut sql)
            .await
            .unwrap();
            assert!(!killed.is_empty(), "B's listening connection was found");
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(
                accepts(third.clone()).await,
                "cached again after the restart"
            );
            let started = std::time::Instant::now();
            keys_a.revoke(&third_id).await.unwrap();
            let after_restart =
                started.elapsed() + refused_within(third, Duration::from_secs(5)).await;
            println!(
                "revocation reached the other instance through NOTIFY after {through_a:?} \
                 (by hand: {by_hand:?}; after the listener was killed: {after_restart:?}; \
                 cache TTL {ttl:?})"
            );
        })
        .await;
    }

    /// One instance on the database at `url`: its key manager and a Gate checking its keys.
    async fn instance(
        url: &str,
        ttl: Duration,
        watch: bool,
    ) -> (portcullis::ApiKeys, portcullis::Gate) {
        let store = Arc::new(PostgresStore::connect(url).await.unwrap());
        let pepper = portcullis::SecretString::new("two-gates-pepper-0123456789abcdefghijklmno");
        let keys = portcullis::ApiKeys::builder(store, pepper)
            .cache_ttl(ttl)
            .watch_store_changes(watch)
            .build()
            .unwrap();
        let gate = portcullis::Gate::builder()
            .authenticator(keys.authenticator())
            .build()
            .unwrap();
        (keys, gate)
    }

    /// Whether `gate` lets a request with API key `key` through.
    async fn accepts(gate: &portcullis::Gate, key: &str) -> bool {
        let (parts, ()) = http::Request::get("/x")
            .header("x-api-key", key)
            .body(())
            .unwrap()
            .into_parts();
        gate.check(&portcullis::RequestView::from_parts(&parts))
            .await
            .is_ok()
    }

    /// Runs `test` on fresh stores in a scratch schema, which is dropped afterwards even if the
    /// test panics.
    async fn with_postgres<F, Fut>(test: F)
    where
        F: FnOnce(Stores) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        with_postgres_url(|url| async move {
            let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
            test(Stores::shared(store.clone())).await;
            store.close().await;
        })
        .await;
    }

    async fn with_postgres_url<F, Fut>(test: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(server) = server().await else {
            return;
        };
        let schema = format!(
            "pc_test_{}",
            unique_path("pg")
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(['-', '.'], "_")
        );
        let mut admin = PgConnection::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options[search_path]={schema}");
        // A spawned task, so a failing assertion comes back as an error and the schema is
        // still dropped.
        let outcome = tokio::spawn(test(url)).await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        if let Err(err) = outcome {
            std::panic::resume_unwind(err.into_panic());
        }
    }

    /// The URL of a PostgreSQL server that answers, or `None` after printing why the test is
    /// skipped. Panics instead when `PORTCULLIS_REQUIRE_SERVICES=1`.
    async fn server() -> Option<String> {
        let candidates = match std::env::var("PORTCULLIS_TEST_PG") {
            Ok(url) => vec![url],
            Err(_) => vec![
                "postgres://postgres@127.0.0.1:5432/test".to_owned(),
                "postgres://root@127.0.0.1:5432/test".to_owned(),
            ],
        };
        let mut failures = Vec::new();
        for url in &candidates {
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    return Some(url.clone());
                }
                Ok(Err(err)) => failures.push(err.to_string()),
                Err(_) => failures.push("timed out".to_owned()),
            }
        }
        let message = format!(
            "no PostgreSQL at {} ({})",
            candidates[0],
            failures.join("; ")
        );
        if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{message}, and PORTCULLIS_REQUIRE_SERVICES=1");
        }
        println!("SKIPPED: {message}");
        None
    }
}

// ---------------------------------------------------------------------------------------------
// open_store errors

#[tokio::test]
async fn open_store_reports_bad_urls_and_unreachable_databases() {
    let err = open_store("mysql://root:hunter2@localhost/auth")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Invalid);
    assert!(!err.to_string().contains("hunter2"), "{err}");

    if cfg!(feature = "sqlite") {
        let dir = unique_path("no-such-dir");
        let err = open_store(&format!("sqlite://{}/auth.db", dir.display()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    }
    if cfg!(feature = "postgres") {
        // Nothing listens on port 1.
        let err = open_store("postgres://root:hunter2@127.0.0.1:1/test")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Now, to the microsecond: what every store keeps.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn key(id: &str, owner: &str, created_at: DateTime<Utc>) -> ApiKeyRecord {
    // Built as a custom store would: `new`, then the fields it read.
    let mut record = ApiKeyRecord::new(id, owner, digest_for(id));
    record.name = format!("{id}'s key");
    record.scopes = vec!["read".into(), "write:all".into()];
    record.created_at = created_at;
    record
}

/// A digest that differs per id, so a record read back can be matched to the one written.
fn digest_for(id: &str) -> KeyDigest {
    let mut bytes = [0u8; 32];
    for (i, (b, c)) in bytes.iter_mut().zip(id.bytes().cycle()).enumerate() {
        *b = c.wrapping_mul(31).wrapping_add(i as u8);
    }
    KeyDigest::from_bytes(bytes)
}

fn assert_same(found: &ApiKeyRecord, expected: &ApiKeyRecord) {
    let id = &expected.id;
    assert_eq!(found.id, expected.id);
    assert_eq!(found.owner, expected.owner, "{id}");
    assert_eq!(found.owner_kind, expected.owner_kind, "{id}");
    assert_eq!(found.name, expected.name, "{id}");
    assert_eq!(found.scopes, expected.scopes, "{id}");
    assert_eq!(found.groups, expected.groups, "{id}");
    assert_eq!(found.created_at, expected.created_at, "{id}");
    assert_eq!(found.created_by, expected.created_by, "{id}");
    assert_eq!(found.expires_at, expected.expires_at, "{id}");
    assert_eq!(found.revoked_at, expected.revoked_at, "{id}");
    assert_eq!(found.last_used_at, expected.last_used_at, "{id}");
    assert_eq!(found.replaces, expected.replaces, "{id}");
    assert_eq!(found.replaced_by, expected.replaced_by, "{id}");
    assert_eq!(found.self_served, expected.self_served, "{id}");
    assert!(found.digest.ct_eq(&expected.digest), "{id}: digest differs");
}

fn ids(records: Vec<ApiKeyRecord>) -> Vec<String> {
    records.into_iter().map(|r| r.id).collect()
}

/// A path in the temporary directory no other test (or test run) uses.
fn unique_path(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "portcullis-{tag}-{}-{nanos}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
