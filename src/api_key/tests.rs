//! Manager and authenticator tests, on request views (no HTTP server; see tests/api_key_http.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::*;
use crate::authenticator::{Authenticator, Outcome};
use crate::error::StoreErrorKind;
use crate::future::BoxFuture;
use crate::key_format::checksum;
use crate::principal::{Scheme, SubjectKind};
use crate::reject::RejectionKind;
use crate::request::RequestView;
use crate::store::{ApiKeyStore, MemoryApiKeyStore};

const PEPPER: &str = "test pepper: 32 bytes or more, not from a real deployment";
const DAY: Duration = Duration::from_secs(86_400);

/// A memory store that counts lookups and writes, and can be made to fail.
#[derive(Debug, Default)]
struct Instrumented {
    inner: MemoryApiKeyStore,
    finds: AtomicUsize,
    touches: AtomicUsize,
    down: AtomicBool,
}

impl Instrumented {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "store is down",
            ))
        } else {
            Ok(())
        }
    }
}

impl ApiKeyStore for Instrumented {
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.check()?;
            self.inner.insert(record).await
        })
    }
    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            self.check()?;
            self.inner.find(id).await
        })
    }
    fn list<'a>(
        &'a self,
        owner: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>> {
        self.inner.list(owner)
    }
    fn revoke<'a>(
        &'a self,
        id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
        self.inner.revoke(id, at)
    }
    fn set_expires_at<'a>(
        &'a self,
        id: &'a str,
        expires_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_expires_at(id, expires_at)
    }
    fn rotate<'a>(
        &'a self,
        old_id: &'a str,
        old_expires_by: DateTime<Utc>,
        new: ApiKeyRecord,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
        self.inner.rotate(old_id, old_expires_by, new)
    }
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.delete(id)
    }
    fn touch_last_used<'a>(
        &'a self,
        uses: &'a [(String, DateTime<Utc>)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            self.check()?;
            self.inner.touch_last_used(uses).await
        })
    }
}

fn setup(configure: impl FnOnce(ApiKeysBuilder) -> ApiKeysBuilder) -> (ApiKeys, Arc<Instrumented>) {
    let store = Arc::new(Instrumented::default());
    let keys = configure(ApiKeys::builder(store.clone(), PEPPER.into()))
        .build()
        .unwrap();
    (keys, store)
}

async fn issue(keys: &ApiKeys) -> IssuedKey {
    keys.create(
        NewApiKey::new("alice")
            .with_name("laptop")
            .with_scopes(["read", "write"])
            .with_groups(["staff"])
            .with_expires_in(DAY),
    )
    .await
    .unwrap()
}

async fn run(auth: &ApiKeyAuthenticator, uri: &str, headers: &[(&str, &str)]) -> Outcome {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (method, uri) = (Method::GET, uri.parse::<Uri>().unwrap());
    let view = RequestView::new(&method, &uri, &map);
    let carried = auth.sources().iter().any(|source| source.is_in(&view));
    let outcome = auth.authenticate(&view).await;
    // The Gate asks only authenticators whose source the request carries: one that would not
    // abstain must declare where it read the credential.
    assert!(
        carried || matches!(outcome, Outcome::Abstain),
        "an outcome without a declared source: {outcome:?}"
    );
    outcome
}

fn rejected(outcome: Outcome) -> crate::reject::Rejection {
    match outcome {
        Outcome::Rejected(rejection) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn assert_invalid(outcome: Outcome, reason: &str) {
    let rejection = rejected(outcome);
    assert_eq!(rejection.kind(), RejectionKind::InvalidCredentials);
    assert_eq!(rejection.scheme(), Some(Scheme::API_KEY));
    assert!(
        rejection.detail().contains(reason),
        "reason {:?} should contain {reason:?}",
        rejection.detail()
    );
}

/// The same id with another secret, and a valid checksum: only the keyed hash can refuse it.
fn with_other_secret(key: &str) -> String {
    let body = &key[..key.len() - CHECKSUM_LEN];
    let last = body.chars().last().unwrap();
    let other = if last == 'a' { 'b' } else { 'a' };
    let body = format!("{}{other}", &body[..body.len() - 1]);
    format!("{body}{}", checksum(body.as_bytes()))
}

#[tokio::test]
async fn a_good_key_authenticates_with_its_metadata() {
    let (keys, _) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys.authenticator();
    let outcome = run(&auth, "/", &[("x-api-key", issued.key().expose_secret())]).await;
    let Outcome::Authenticated(principal) = outcome else {
        panic!("expected success, got {outcome:?}")
    };
    let record = issued.record();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.kind(), SubjectKind::User);
    assert_eq!(principal.scheme(), Scheme::API_KEY);
    assert_eq!(principal.credential_id(), Some(issued.id()));
    assert_eq!(principal.groups(), ["staff"]);
    assert_eq!(principal.scopes(), ["read", "write"]);
    assert_eq!(principal.issued_at(), Some(record.created_at));
    assert_eq!(principal.expires_at(), record.expires_at);
    assert!(record.expires_at.unwrap() > record.created_at + TimeDelta::hours(23));
}

#[tokio::test]
async fn bearer_is_read_only_for_tokens_shaped_like_a_key() {
    let (keys, _) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys.authenticator();
    let bearer = format!("Bearer {}", issued.key().expose_secret());
    assert!(matches!(
        run(&auth, "/", &[("authorization", &bearer)]).await,
        Outcome::Authenticated(_)
    ));
    let lower = format!("bearer {}", issued.key().expose_secret());
    assert!(matches!(
        run(&auth, "/", &[("authorization", &lower)]).await,
        Outcome::Authenticated(_)
    ));
    // A JWT, another prefix, Basic: someone else's credential.
    for other in [
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln",
        "Bearer xx_abc",
        "Basic YTpi",
    ] {
        assert!(matches!(
            run(&auth, "/", &[("authorization", other)]).await,
            Outcome::Abstain
        ));
    }
    // Key-shaped but broken: ours, and bad.
    assert_invalid(
        run(&auth, "/", &[("authorization", "Bearer pc_short")]).await,
        "malformed",
    );
    let no_bearer = keys.authenticator_builder().bearer(false).build().unwrap();
    assert!(matches!(
        run(&no_bearer, "/", &[("authorization", &bearer)]).await,
        Outcome::Abstain
    ));
}

#[tokio::test]
async fn a_key_in_two_places_or_a_repeated_header_is_a_bad_request() {
    let (keys, _) = setup(|b| b);
    let issued = issue(&keys).await;
    let key = issued.key().expose_secret();
    let bearer = format!("Bearer {key}");
    let auth = keys
        .authenticator_builder()
        .dangerous_allow_query_param("api_key")
        .build()
        .unwrap();
    let query = format!("/?api_key={key}");
    for (uri, headers) in [
        ("/", vec![("x-api-key", key), ("authorization", &bearer)]),
        ("/", vec![("x-api-key", key), ("x-api-key", key)]),
        (
            "/",
            vec![("authorization", &bearer), ("authorization", "Basic YTpi")],
        ),
        (&query, vec![("x-api-key", key)]),
        (&format!("{query}&api_key={key}"), vec![]),
    ] {
        let rejection = rejected(run(&auth, uri, &headers).await);
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(rejection.scheme(), Some(Scheme::API_KEY));
    }
}

#[tokio::test]
async fn the_query_string_is_read_only_when_dangerously_allowed() {
    let (keys, _) = setup(|b| b);
    let issued = issue(&keys).await;
    let uri = format!("/r?x=1&api_key={}", issued.key().expose_secret());
    assert!(matches!(
        run(&keys.authenticator(), &uri, &[]).await,
        Outcome::Abstain
    ));
    let auth = keys
        .authenticator_builder()
        .dangerous_allow_query_param("api_key")
        .build()
        .unwrap();
    assert!(matches!(
        run(&auth, &uri, &[]).await,
        Outcome::Authenticated(_)
    ));
    assert!(matches!(run(&auth, "/r?x=1", &[]).await, Outcome::Abstain));
}

/// A percent-encoded query parameter can carry any UTF-8: two-byte characters adding up to a
/// key's length used to make the key parser slice inside a character and panic (found by
/// fuzzing `KeyFormat::parse`). Refused as malformed now, without a lookup.
#[tokio::test]
async fn a_non_ascii_key_of_the_right_length_is_malformed_not_a_panic() {
    let (keys, store) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys
        .authenticator_builder()
        .dangerous_allow_query_param("api_key")
        .build()
        .unwrap();
    let key = issued.key().expose_secret();
    // The secret's last character and the checksum's first become one two-byte `é` (%C3%A9):
    // the same length in bytes, and the end of the secret falls inside the `é`.
    let at = key.len() - CHECKSUM_LEN - 1;
    let uri = format!("/r?api_key={}%C3%A9{}", &key[..at], &key[at + 2..]);
    assert_invalid(run(&auth, &uri, &[]).await, "malformed");
    assert_eq!(store.finds.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_malformed_key_is_refused_without_a_lookup() {
    let (keys, store) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys.authenticator();
    let key = issued.key().expose_secret();
    let mut typo = key.to_owned();
    let c = if typo.ends_with('a') { "b" } else { "a" };
    typo.replace_range(typo.len() - 1.., c);
    for bad in [
        typo.as_str(),
        &key[..key.len() - 1],
        "pc_not-a-key",
        "qq_abc",
        "",
    ] {
        assert_invalid(run(&auth, "/", &[("x-api-key", bad)]).await, "malformed");
    }
    assert_eq!(store.finds.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_ids_and_wrong_secrets_are_refused_and_unknown_ids_cached() {
    let (keys, store) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys.authenticator();

    let wrong = with_other_secret(issued.key().expose_secret());
    assert_invalid(
        run(&auth, "/", &[("x-api-key", &wrong)]).await,
        "wrong API key secret",
    );

    let format = keys.format().clone();
    let unknown = format.generate();
    let unknown = unknown.key().expose_secret();
    let before = store.finds.load(Ordering::SeqCst);
    assert_invalid(
        run(&auth, "/", &[("x-api-key", unknown)]).await,
        "unknown API key id",
    );
    assert_invalid(
        run(&auth, "/", &[("x-api-key", unknown)]).await,
        "unknown API key id",
    );
    assert_eq!(
        store.finds.load(Ordering::SeqCst),
        before + 1,
        "negative cache"
    );
}

#[tokio::test]
async fn found_keys_are_cached_but_revocation_applies_at_once() {
    let (keys, store) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys.authenticator();
    let header = [("x-api-key", issued.key().expose_secret())];
    for _ in 0..3 {
        assert!(matches!(
            run(&auth, "/", &header).await,
            Outcome::Authenticated(_)
        ));
    }
    assert_eq!(store.finds.load(Ordering::SeqCst), 1, "positive cache");
    let revoked = keys.revoke(issued.id()).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_invalid(run(&auth, "/", &header).await, "API key revoked");
    // Idempotent, and keeps the first time.
    let again = keys.revoke(issued.id()).await.unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
    assert!(matches!(
        keys.revoke("nope").await,
        Err(ApiKeyError::NotFound(id)) if id == "nope"
    ));
}

#[tokio::test]
async fn a_revocation_elsewhere_shows_within_the_ttl() {
    let (keys, store) = setup(|b| b.cache_ttl(Duration::from_millis(200)));
    let issued = issue(&keys).await;
    let auth = keys.authenticator();
    let header = [("x-api-key", issued.key().expose_secret())];
    assert!(matches!(
        run(&auth, "/", &header).await,
        Outcome::Authenticated(_)
    ));
    // Another instance revokes straight in the shared store: this one cannot know yet.
    store.inner.revoke(issued.id(), Utc::now()).await.unwrap();
    assert!(matches!(
        run(&auth, "/", &header).await,
        Outcome::Authenticated(_)
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_invalid(run(&auth, "/", &header).await, "API key revoked");
}

#[tokio::test]
async fn expired_and_rotated_out_keys_have_their_own_reasons() {
    let (keys, _) = setup(|b| b);
    let auth = keys.authenticator();
    let expired = issue(&keys).await;
    keys.set_expires_at(expired.id(), Some(Utc::now() - TimeDelta::seconds(1)))
        .await
        .unwrap();
    assert_invalid(
        run(&auth, "/", &[("x-api-key", expired.key().expose_secret())]).await,
        "API key expired",
    );

    let old = issue(&keys).await;
    let new = keys.rotate(old.id(), Duration::ZERO).await.unwrap();
    assert_invalid(
        run(&auth, "/", &[("x-api-key", old.key().expose_secret())]).await,
        "rotated out",
    );
    assert!(matches!(
        run(&auth, "/", &[("x-api-key", new.key().expose_secret())]).await,
        Outcome::Authenticated(_)
    ));
}

#[tokio::test]
async fn a_store_outage_is_503_not_401() {
    let (keys, store) = setup(|b| b.cache_ttl(Duration::ZERO));
    let issued = issue(&keys).await;
    store.down.store(true, Ordering::SeqCst);
    let rejection = rejected(
        run(
            &keys.authenticator(),
            "/",
            &[("x-api-key", issued.key().expose_secret())],
        )
        .await,
    );
    assert_eq!(rejection.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(
        keys.create(NewApiKey::new("bob").with_expires_in(DAY)).await,
        Err(ApiKeyError::Store(err)) if err.kind() == StoreErrorKind::Unavailable
    ));
}

#[tokio::test]
async fn expiry_rules_are_enforced_at_creation() {
    let (keys, _) = setup(|b| b.max_lifetime(90 * DAY));
    let err = keys.create(NewApiKey::new("alice")).await.unwrap_err();
    assert!(matches!(err, ApiKeyError::ExpiryRequired), "{err}");
    let err = keys
        .create(NewApiKey::new("alice").with_expires_in(91 * DAY))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiKeyError::LifetimeExceedsCap { .. }));
    assert_eq!(
        err.to_string(),
        "the requested lifetime of 91d exceeds the maximum API key lifetime of 90d (max_lifetime)"
    );
    assert!(
        keys.create(NewApiKey::new("alice").with_expires_in(90 * DAY))
            .await
            .is_ok()
    );
    assert!(
        keys.list(None).await.unwrap().len() == 1,
        "nothing written on refusal"
    );

    let (open, _) = setup(|b| b.allow_non_expiring(true));
    let forever = open.create(NewApiKey::application("cron")).await.unwrap();
    assert_eq!(forever.record().expires_at, None);
    assert_eq!(forever.record().owner_kind, SubjectKind::Application);

    let err = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), PEPPER.into())
        .allow_non_expiring(true)
        .max_lifetime(DAY)
        .build()
        .unwrap_err();
    assert!(err.message().contains("maximum lifetime"), "{err}");
}

#[tokio::test]
async fn bad_requests_are_refused_before_the_store() {
    let (keys, _) = setup(|b| b);
    for new in [
        NewApiKey::new("").with_expires_in(DAY),
        NewApiKey::new("a\nb").with_expires_in(DAY),
        NewApiKey::new("a")
            .with_scopes(["two words"])
            .with_expires_in(DAY),
        NewApiKey::new("a").with_groups([""]).with_expires_in(DAY),
        NewApiKey::new("a").with_expires_in(Duration::ZERO),
        NewApiKey::new("a".repeat(300)).with_expires_in(DAY),
    ] {
        let err = keys.create(new).await.unwrap_err();
        assert!(matches!(err, ApiKeyError::Invalid(_)), "{err}");
    }
    assert!(keys.list(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_store_never_sees_the_key() {
    let (keys, store) = setup(|b| b);
    let issued = issue(&keys).await;
    let key = issued.key().expose_secret();
    let secret = key[3 + ID_LEN + 1..key.len() - CHECKSUM_LEN].to_owned();
    assert_eq!(secret.len(), SECRET_LEN);
    let stored = store.inner.find(issued.id()).await.unwrap().unwrap();
    let shown = format!("{stored:?} {}", serde_json::to_string(&stored).unwrap());
    assert!(!shown.contains(&secret));
    assert!(!format!("{issued:?}").contains(&secret));
    assert!(
        !stored
            .digest
            .as_bytes()
            .windows(8)
            .any(|w| secret.as_bytes().starts_with(w))
    );
    assert_eq!(stored.digest.as_bytes().len(), 32);
}

#[tokio::test]
async fn rotation_keeps_metadata_and_links_the_keys() {
    let (keys, _) = setup(|b| b.max_lifetime(30 * DAY));
    let old = issue(&keys).await;
    let new = keys
        .rotate(old.id(), Duration::from_secs(3600))
        .await
        .unwrap();
    let (old_now, new_record) = (keys.get(old.id()).await.unwrap(), new.record());
    assert_eq!(new_record.owner, "alice");
    assert_eq!(new_record.name, "laptop");
    assert_eq!(new_record.scopes, ["read", "write"]);
    assert_eq!(new_record.groups, ["staff"]);
    assert_eq!(new_record.replaces.as_deref(), Some(old.id()));
    assert_eq!(old_now.replaced_by.as_deref(), Some(new.id()));
    // The overlap (1 h) ends before the old key's own expiry (1 d).
    let overlap_end = old_now.expires_at.unwrap();
    assert!(overlap_end <= Utc::now() + TimeDelta::hours(1));
    assert!(overlap_end > Utc::now() + TimeDelta::minutes(59));
    // Same lifetime as the old key, from now.
    let lifetime = new_record.expires_at.unwrap() - new_record.created_at;
    assert_eq!(lifetime, TimeDelta::days(1));

    let err = keys.rotate(old.id(), Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, ApiKeyError::AlreadyRotated { .. }), "{err}");
    keys.revoke(new.id()).await.unwrap();
    let err = keys.rotate(new.id(), Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, ApiKeyError::Revoked(_)), "{err}");
    let err = keys.rotate("missing", Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, ApiKeyError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn delete_removes_the_key_everywhere() {
    let (keys, _) = setup(|b| b);
    let issued = issue(&keys).await;
    let auth = keys.authenticator();
    let header = [("x-api-key", issued.key().expose_secret())];
    assert!(matches!(
        run(&auth, "/", &header).await,
        Outcome::Authenticated(_)
    ));
    keys.delete(issued.id()).await.unwrap();
    assert_invalid(run(&auth, "/", &header).await, "unknown API key id");
    assert!(matches!(
        keys.delete(issued.id()).await,
        Err(ApiKeyError::NotFound(_))
    ));
}

#[tokio::test]
async fn last_used_is_written_in_batches_not_per_request() {
    let (keys, store) = setup(|b| b.last_used_flush_interval(Duration::from_secs(3600)));
    let a = issue(&keys).await;
    let b = issue(&keys).await;
    let auth = keys.authenticator();
    for _ in 0..10 {
        for key in [&a, &b] {
            let header = [("x-api-key", key.key().expose_secret())];
            assert!(matches!(
                run(&auth, "/", &header).await,
                Outcome::Authenticated(_)
            ));
        }
    }
    assert_eq!(store.touches.load(Ordering::SeqCst), 0);
    assert_eq!(keys.get(a.id()).await.unwrap().last_used_at, None);

    // A failed flush keeps the batch for the next one.
    store.down.store(true, Ordering::SeqCst);
    assert!(keys.flush().await.is_err());
    store.down.store(false, Ordering::SeqCst);
    keys.flush().await.unwrap();
    assert_eq!(store.touches.load(Ordering::SeqCst), 2);
    for key in [&a, &b] {
        assert!(keys.get(key.id()).await.unwrap().last_used_at.is_some());
    }
    // Nothing pending: no write.
    keys.flush().await.unwrap();
    assert_eq!(store.touches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn last_used_is_flushed_in_the_background() {
    let (keys, store) = setup(|b| b.last_used_flush_interval(Duration::from_millis(50)));
    let issued = issue(&keys).await;
    let header = [("x-api-key", issued.key().expose_secret())];
    assert!(matches!(
        run(&keys.authenticator(), "/", &header).await,
        Outcome::Authenticated(_)
    ));
    let mut used = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        used = keys.get(issued.id()).await.unwrap().last_used_at;
        if used.is_some() {
            break;
        }
    }
    assert!(used.is_some(), "background flush never ran");
    assert!(store.touches.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn the_challenge_names_realm_and_header() {
    let (keys, _) = setup(|b| b);
    assert_eq!(
        keys.authenticator().challenge().to_string(),
        r#"ApiKey realm="api", header="X-API-Key""#
    );
    let custom = keys
        .authenticator_builder()
        .realm("acme")
        .header("X-Acme-Key")
        .build()
        .unwrap();
    assert_eq!(
        custom.challenge().to_string(),
        r#"ApiKey realm="acme", header="X-Acme-Key""#
    );
    let issued = issue(&keys).await;
    let header = [("x-acme-key", issued.key().expose_secret())];
    assert!(matches!(
        run(&custom, "/", &header).await,
        Outcome::Authenticated(_)
    ));
    let header = [("x-api-key", issued.key().expose_secret())];
    assert!(matches!(run(&custom, "/", &header).await, Outcome::Abstain));
}

#[test]
fn bad_settings_are_config_errors() {
    let store = || Arc::new(MemoryApiKeyStore::new());
    let err = ApiKeys::builder(store(), "short".into())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("api_keys.pepper"));
    let err = ApiKeys::builder(store(), PEPPER.into())
        .prefix("Acme")
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("api_keys.prefix"));
    let keys = ApiKeys::builder(store(), PEPPER.into()).build().unwrap();
    for bad in [
        keys.authenticator_builder().header("bad header"),
        keys.authenticator_builder().header("Authorization"),
        keys.authenticator_builder()
            .dangerous_allow_query_param("a&b"),
        keys.authenticator_builder().realm("a\nb"),
    ] {
        assert!(bad.build().is_err());
    }
    // The pepper never shows in Debug.
    assert!(!format!("{keys:?}").contains("pepper:"));
}

#[tokio::test]
async fn a_custom_prefix_is_issued_and_required() {
    let (keys, _) = setup(|b| b.prefix("acme"));
    let issued = issue(&keys).await;
    assert!(issued.key().expose_secret().starts_with("acme_"));
    let auth = keys.authenticator();
    let bearer = format!("Bearer {}", issued.key().expose_secret());
    assert!(matches!(
        run(&auth, "/", &[("authorization", &bearer)]).await,
        Outcome::Authenticated(_)
    ));
    let (default, _) = setup(|b| b);
    let other = issue(&default).await;
    let bearer = format!("Bearer {}", other.key().expose_secret());
    assert!(matches!(
        run(&auth, "/", &[("authorization", &bearer)]).await,
        Outcome::Abstain
    ));
    assert_invalid(
        run(&auth, "/", &[("x-api-key", other.key().expose_secret())]).await,
        "prefix",
    );
}

#[test]
fn durations_read_like_an_operator_wrote_them() {
    let show = |secs| HumanDuration(Duration::from_secs(secs)).to_string();
    assert_eq!(show(90 * 86_400), "90d");
    assert_eq!(show(86_400 + 12 * 3_600), "1d12h");
    assert_eq!(show(1_830), "30m30s");
    assert_eq!(
        HumanDuration(Duration::from_millis(250)).to_string(),
        "250ms"
    );
}

/// The checksum refuses noise, not an attacker: anyone can compute a CRC32. Every made-up key
/// with a fresh id and a valid checksum reaches the store once; the negative cache only absorbs
/// repeats of an id (docs/security.md, "Guess an API key").
#[tokio::test]
async fn made_up_ids_with_a_valid_checksum_cost_one_lookup_each() {
    let (keys, store) = setup(|b| b);
    let auth = keys.authenticator();
    let made_up: Vec<String> = (0..50)
        .map(|_| keys.format().generate().key().expose_secret().to_owned())
        .collect();
    for key in made_up.iter().chain(&made_up) {
        assert_invalid(
            run(&auth, "/", &[("x-api-key", key)]).await,
            "unknown API key id",
        );
    }
    assert_eq!(store.finds.load(Ordering::SeqCst), made_up.len());
}

/// `ApiKeyError::Store` shows the store's message and, as every error here, has no `source()`.
#[test]
fn a_store_error_shows_in_the_message_not_as_the_source() {
    use std::error::Error as _;
    let error = ApiKeyError::from(
        StoreError::new(StoreErrorKind::Unavailable, "sqlite: find user `a`")
            .with_source(std::io::Error::other("pool timed out")),
    );
    assert_eq!(
        error.to_string(),
        "API key store: sqlite: find user `a`: pool timed out"
    );
    assert!(error.source().is_none());
}
