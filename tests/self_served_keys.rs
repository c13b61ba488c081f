//! Self-served API keys (issue #21): a user's own tokens carry no groups of their own; at
//! authentication the owner's current user record gives the principal's groups, and a disabled
//! or missing owner's token is refused, within the cache TTL. Checked through the Gate, with the
//! key sent in its header and as the Basic password (`accept_api_keys`).
#![cfg(all(feature = "basic", feature = "api-key"))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::StatusCode;
use portcullis::api_key::{ApiKeyError, ApiKeysBuilder, IssuedKey};
use portcullis::basic::encode_basic;
use portcullis::reject::Reason;
use portcullis::store::{
    MemoryApiKeyStore, PasswordHash, StoreError, StoreErrorKind, UserRecord, UserStore,
};
use portcullis::{
    ApiKeys, BasicAuthenticator, BoxFuture, Gate, NewApiKey, Principal, Rejection, RequestView,
    Scheme, SubjectKind,
};

const PEPPER: &str = "self-served test pepper, at least thirty-two bytes";
const DAY: Duration = Duration::from_secs(86_400);
const TTL: Duration = Duration::from_millis(50);

/// Users whose groups a test can change (the built-in stores have no call for it), and which
/// can be made to fail.
#[derive(Debug, Default)]
struct Users(RwLock<HashMap<String, UserRecord>>, AtomicBool);

impl Users {
    fn with(users: &[(&str, &[&str])]) -> Arc<Self> {
        let store = Self::default();
        for (name, groups) in users {
            store.put(UserRecord::new(*name, hash()).with_groups(groups.iter().copied()));
        }
        Arc::new(store)
    }

    fn put(&self, user: UserRecord) {
        self.0.write().unwrap().insert(user.name.clone(), user);
    }

    fn change(&self, name: &str, change: impl FnOnce(&mut UserRecord)) {
        change(self.0.write().unwrap().get_mut(name).expect("a known user"));
    }

    fn remove(&self, name: &str) {
        self.0.write().unwrap().remove(name);
    }
}

fn hash() -> PasswordHash {
    PasswordHash::new("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaDE")
}

impl UserStore for Users {
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        let found = if self.1.load(Ordering::SeqCst) {
            Err(StoreError::new(StoreErrorKind::Unavailable, "users: down"))
        } else {
            Ok(self.0.read().unwrap().get(name).cloned())
        };
        Box::pin(async move { found })
    }
    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        self.put(user);
        Box::pin(async { Ok(()) })
    }
    fn set_password_hash<'a>(
        &'a self,
        _: &'a str,
        _: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async { Err(StoreError::new(StoreErrorKind::Invalid, "not in tests")) })
    }
    fn replace_password_hash<'a>(
        &'a self,
        _: &'a str,
        _: &'a PasswordHash,
        _: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Err(StoreError::new(StoreErrorKind::Invalid, "not in tests")) })
    }
    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.change(name, |u| u.disabled = disabled);
        Box::pin(async { Ok(()) })
    }
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        let all = self.0.read().unwrap().values().cloned().collect();
        Box::pin(async move { Ok(all) })
    }
}

/// A manager over a memory store (cache TTL of 50 ms) reading owners from `users`, if given.
fn keys(users: Option<Arc<Users>>) -> ApiKeys {
    let builder: ApiKeysBuilder =
        ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), PEPPER.into())
            .cache_ttl(TTL)
            .max_lifetime(90 * DAY);
    match users {
        Some(users) => builder.owners(users),
        None => builder,
    }
    .build()
    .unwrap()
}

/// A Gate taking keys in their header, and as the Basic password of their owner.
fn gate(keys: &ApiKeys, users: Arc<Users>) -> Gate {
    let basic = BasicAuthenticator::builder(users)
        .accept_api_keys(keys.clone())
        .build()
        .unwrap();
    Gate::builder()
        .authenticator(basic)
        .authenticator(keys.authenticator())
        .build()
        .unwrap()
}

async fn mint(keys: &ApiKeys, owner: &str) -> IssuedKey {
    keys.create_self_served(
        NewApiKey::new(owner)
            .with_name("laptop")
            .with_scopes(["read"])
            .with_expires_in(DAY),
        5,
    )
    .await
    .unwrap()
}

/// The request with `key` in its header, as a bearer token, and as `user`'s Basic password.
async fn both(gate: &Gate, user: &str, key: &IssuedKey) -> [Result<Principal, Rejection>; 3] {
    let secret = key.key().expose_secret();
    let header = http::Request::get("/x").header("x-api-key", secret);
    let bearer = http::Request::get("/x").header("authorization", format!("Bearer {secret}"));
    let basic =
        http::Request::get("/x").header("authorization", encode_basic(user, secret).as_str());
    let mut out = Vec::new();
    for request in [header, bearer, basic] {
        let (parts, ()) = request.body(()).unwrap().into_parts();
        out.push(
            gate.check(&RequestView::from_parts(&parts))
                .await
                .map(|p| p.expect("the route needs a principal")),
        );
    }
    out.try_into().unwrap()
}

fn groups(principal: &Principal) -> Vec<&str> {
    principal.groups().iter().map(String::as_str).collect()
}

/// Every way refuses with a 401 of the API-key scheme, naming the key's id and `why` in the audit
/// detail, never the secret.
fn assert_refused(results: [Result<Principal, Rejection>; 3], key: &IssuedKey, why: &str) {
    for result in results {
        let rejection = result.expect_err("refused");
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(rejection.reason(), Reason::CredentialsInvalid);
        assert_eq!(rejection.scheme(), Some(Scheme::API_KEY));
        assert_eq!(rejection.attempted_credential_id(), Some(key.id()));
        assert!(rejection.detail().contains(why), "{}", rejection.detail());
        let secret = key.key().expose_secret();
        assert!(!rejection.detail().contains(secret));
        assert!(!format!("{rejection:?}").contains(secret));
    }
}

#[tokio::test]
async fn a_self_served_key_gets_its_owners_current_groups() {
    let users = Users::with(&[("alice", &["staff", "ops"])]);
    let keys = keys(Some(users.clone()));
    let gate = gate(&keys, users.clone());
    let key = mint(&keys, "alice").await;
    assert!(key.record().self_served);
    assert!(key.record().groups.is_empty());
    for result in both(&gate, "alice", &key).await {
        let principal = result.unwrap();
        assert_eq!(principal.subject(), "alice");
        assert_eq!(principal.scheme(), Scheme::API_KEY);
        assert_eq!(principal.credential_id(), Some(key.id()));
        assert_eq!(groups(&principal), ["staff", "ops"]);
        assert_eq!(principal.scopes(), ["read"]);
    }

    // A group removed is gone within the TTL, by either way in.
    users.change("alice", |u| u.groups = vec!["staff".into()]);
    tokio::time::sleep(TTL * 2).await;
    for result in both(&gate, "alice", &key).await {
        assert_eq!(groups(&result.unwrap()), ["staff"]);
    }

    // A key that is not self-served keeps its own groups, whatever its owner's are.
    let own = keys
        .create(
            NewApiKey::new("alice")
                .with_groups(["deploy"])
                .with_expires_in(DAY),
        )
        .await
        .unwrap();
    assert!(!own.record().self_served);
    for result in both(&gate, "alice", &own).await {
        assert_eq!(groups(&result.unwrap()), ["deploy"]);
    }
}

#[tokio::test]
async fn a_disabled_owner_is_refused_within_the_ttl_and_back_when_enabled() {
    let users = Users::with(&[("alice", &["staff"])]);
    let keys = keys(Some(users.clone()));
    let gate = gate(&keys, users.clone());
    let key = mint(&keys, "alice").await;
    for result in both(&gate, "alice", &key).await {
        result.unwrap();
    }
    users.set_disabled("alice", true).await.unwrap();
    tokio::time::sleep(TTL * 2).await;
    assert_refused(both(&gate, "alice", &key).await, &key, "owner is disabled");
    users.set_disabled("alice", false).await.unwrap();
    tokio::time::sleep(TTL * 2).await;
    for result in both(&gate, "alice", &key).await {
        result.unwrap();
    }
}

#[tokio::test]
async fn a_missing_owner_is_refused() {
    let users = Users::with(&[("alice", &["staff"])]);
    let keys = keys(Some(users.clone()));
    let gate = gate(&keys, users.clone());
    let key = mint(&keys, "alice").await;
    users.remove("alice");
    tokio::time::sleep(TTL * 2).await;
    assert_refused(
        both(&gate, "alice", &key).await,
        &key,
        "owner does not exist",
    );
}

#[tokio::test]
async fn a_user_store_that_cannot_answer_is_a_503_not_a_401() {
    let users = Users::with(&[("alice", &["staff"])]);
    let keys = keys(Some(users.clone()));
    let gate = gate(&keys, users.clone());
    let key = mint(&keys, "alice").await;
    users.1.store(true, Ordering::SeqCst);
    for result in both(&gate, "alice", &key).await {
        let rejection = result.expect_err("refused");
        assert_eq!(rejection.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            rejection.detail().contains("users: down"),
            "{}",
            rejection.detail()
        );
    }
    // Not cached: the next request, with the store back, reads it.
    users.1.store(false, Ordering::SeqCst);
    for result in both(&gate, "alice", &key).await {
        assert_eq!(groups(&result.unwrap()), ["staff"]);
    }
}

#[tokio::test]
async fn an_owner_who_is_an_application_is_refused() {
    let users = Users::with(&[("alice", &["staff"])]);
    let keys = keys(Some(users.clone()));
    let gate = gate(&keys, users.clone());
    let key = mint(&keys, "alice").await;
    users.change("alice", |u| u.kind = SubjectKind::Application);
    tokio::time::sleep(TTL * 2).await;
    assert_refused(
        both(&gate, "alice", &key).await,
        &key,
        "owner is not a user",
    );
}

#[tokio::test]
async fn without_an_owner_store_self_served_keys_are_refused() {
    let users = Users::with(&[("alice", &["staff"])]);
    let keys = keys(None);
    let gate = gate(&keys, users);
    let key = mint(&keys, "alice").await;
    assert_refused(
        both(&gate, "alice", &key).await,
        &key,
        "no user store to read its owner from",
    );
    // Other keys still work.
    let own = keys
        .create(NewApiKey::new("alice").with_expires_in(DAY))
        .await
        .unwrap();
    for result in both(&gate, "alice", &own).await {
        result.unwrap();
    }
}

#[tokio::test]
async fn groups_and_application_owners_are_refused_at_creation() {
    let users = Users::with(&[("alice", &["staff"])]);
    let keys = keys(Some(users));
    let err = keys
        .create_self_served(
            NewApiKey::new("alice")
                .with_groups(["admin"])
                .with_expires_in(DAY),
            5,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiKeyError::Invalid(why) if why.contains("no groups")),
        "{err}"
    );
    let err = keys
        .create_self_served(NewApiKey::application("robot").with_expires_in(DAY), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiKeyError::Invalid(why) if why.contains("must be a user")),
        "{err}"
    );
    // The lifetime cap holds as for `create`.
    let err = keys
        .create_self_served(NewApiKey::new("alice").with_expires_in(91 * DAY), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiKeyError::LifetimeExceedsCap { .. }),
        "{err}"
    );
    assert!(keys.list(None).await.unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn names_and_the_limit_are_reported_as_their_own_errors() {
    let keys = keys(Some(Users::with(&[("alice", &[])])));
    let new = |name: &str| NewApiKey::new("alice").with_name(name).with_expires_in(DAY);
    let laptop = keys.create_self_served(new("laptop"), 2).await.unwrap();
    let err = keys.create_self_served(new("laptop"), 2).await.unwrap_err();
    assert!(matches!(err, ApiKeyError::NameTaken), "{err}");
    keys.create_self_served(new("phone"), 2).await.unwrap();
    let err = keys.create_self_served(new("ci"), 2).await.unwrap_err();
    assert!(
        matches!(err, ApiKeyError::TooManyKeys { limit: 2 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "too many API keys: at most 2 active self-served keys per owner"
    );

    // Rotation keeps the key self-served, with its name, in the same place.
    let rotated = keys.rotate(laptop.id(), Duration::ZERO).await.unwrap();
    assert!(rotated.record().self_served);
    assert_eq!(rotated.record().name, "laptop");
    let err = keys.create_self_served(new("ci"), 2).await.unwrap_err();
    assert!(matches!(err, ApiKeyError::TooManyKeys { .. }), "{err}");
    // Revoking frees a place and the name.
    keys.revoke(rotated.id()).await.unwrap();
    keys.create_self_served(new("laptop"), 2).await.unwrap();

    // `list` shows which keys are self-served.
    let listed = serde_json::to_value(keys.list(Some("alice")).await.unwrap()).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["self_served"] == true)
    );
}
