//! The self-service token API (issue #21) behind a real Gate, over a real SQLite store with
//! Basic users: every rule and CSRF case refused with its status and problem body, the positive
//! paths, and the tokens it issues authenticating (or not) through the Gate. axum throughout;
//! actix-web where the adapter matters.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Method, Request, StatusCode};
use portcullis::basic::{HashingPool, encode_basic};
use portcullis::self_service::{SelfService, SelfServiceBuilder};
use portcullis::store::{PasswordHash, SqliteStore, StoreError, UserRecord, UserStore};
use portcullis::testing::{INSECURE_FAST_HASHING, TestIssuer};
use portcullis::{
    ApiKeys, BasicAuthenticator, BoxFuture, Gate, GateLayer, Groups, Principal, Public,
    SecretString,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const PEPPER: &str = "self-service test pepper, at least thirty-two bytes";
const DAY: Duration = Duration::from_secs(86_400);
const TTL: Duration = Duration::from_millis(50);
const ORIGIN: &str = "https://app.example";
const ISSUER: &str = "https://issuer.example";

/// The users (in SQLite), with groups a test can take away (SQLite's store has no call for
/// it): `find_user` leaves out the removed ones.
#[derive(Debug)]
struct Users {
    store: SqliteStore,
    removed_groups: RwLock<HashSet<String>>,
}

impl UserStore for Users {
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        Box::pin(async move {
            let user = self.store.find_user(name).await?;
            let removed = self.removed_groups.read().unwrap().clone();
            Ok(user.map(|mut user| {
                user.groups.retain(|g| !removed.contains(g));
                user
            }))
        })
    }
    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store.create_user(user)
    }
    fn set_password_hash<'a>(
        &'a self,
        name: &'a str,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.set_password_hash(name, hash)
    }
    fn replace_password_hash<'a>(
        &'a self,
        name: &'a str,
        old: &'a PasswordHash,
        new: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.store.replace_password_hash(name, old, new)
    }
    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.set_disabled(name, disabled)
    }
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        self.store.list_users()
    }
}

struct Fixture {
    app: Router,
    gate: Gate,
    keys: ApiKeys,
    service: SelfService,
    users: Arc<Users>,
    issuer: TestIssuer,
}

/// alice and bob (group `staff`), and root (group `admins`), each with password `<name>-pw`.
async fn fixture_with(
    store: SqliteStore,
    configure: impl FnOnce(SelfServiceBuilder) -> SelfServiceBuilder,
) -> Fixture {
    let pool = HashingPool::new(INSECURE_FAST_HASHING).unwrap();
    let users = Arc::new(Users {
        store: store.clone(),
        removed_groups: RwLock::default(),
    });
    for (name, group) in [("alice", "staff"), ("bob", "staff"), ("root", "admins")] {
        let hash = pool
            .hash(&SecretString::from(format!("{name}-pw")))
            .await
            .unwrap();
        users
            .create_user(UserRecord::new(name, hash).with_groups([group]))
            .await
            .unwrap();
    }
    let keys = ApiKeys::builder(Arc::new(store), PEPPER.into())
        .max_lifetime(365 * DAY)
        .cache_ttl(TTL)
        .owners(users.clone())
        .build()
        .unwrap();
    let issuer = TestIssuer::new(ISSUER, "api").unwrap();
    let basic = BasicAuthenticator::builder(users.clone())
        .hashing_pool(pool)
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(basic)
        .authenticator(keys.authenticator())
        .authenticator(issuer.authenticator().unwrap())
        .route("/staff", Groups::any_of(["staff"]))
        .route("/public", Public)
        .build()
        .unwrap();
    let service = configure(
        SelfService::builder(keys.clone())
            .max_lifetime(90 * DAY)
            .default_lifetime(30 * DAY)
            .max_tokens_per_user(3)
            .scope_allowlist(["reports:read", "reports:write"])
            .public_origin(ORIGIN),
    )
    .build()
    .unwrap();
    let app = Router::new()
        .nest("/tokens", service.router())
        .nest(
            "/admin/tokens",
            service.admin_router(Groups::any_of(["admins"])),
        )
        .route("/staff", get(|| async { "staff only" }))
        .route(
            "/whoami",
            get(|p: Principal| async move { format!("{} {:?}", p.subject(), p.groups()) }),
        )
        .layer(GateLayer::new(gate.clone()));
    Fixture {
        app,
        gate,
        keys,
        service,
        users,
        issuer,
    }
}

async fn fixture() -> Fixture {
    fixture_with(SqliteStore::open(":memory:").await.unwrap(), |b| b).await
}

fn basic(user: &str) -> String {
    encode_basic(user, &format!("{user}-pw"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A request with `authorization`, extra headers, and a JSON body (with its content type).
fn request(
    method: Method,
    path: &str,
    authorization: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", authorization);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn create(f: &Fixture, user: &str, body: Value) -> Answer {
    call(
        &f.app,
        request(Method::POST, "/tokens", &basic(user), &[], Some(body)),
    )
    .await
}

/// Creates `name` for `user` and returns (id, token).
async fn created(f: &Fixture, user: &str, name: &str) -> (String, String) {
    let answer = create(f, user, json!({ "name": name, "expires_in": "1d" })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    (
        answer.body["id"].as_str().unwrap().to_owned(),
        answer.body["token"].as_str().unwrap().to_owned(),
    )
}

/// A refusal: `status`, problem+json, and (if given) the field or header it names.
fn assert_problem(answer: &Answer, status: StatusCode, field: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.headers["content-type"], "application/problem+json",
        "{}",
        answer.body
    );
    assert_eq!(answer.body["status"], status.as_u16());
    if let Some(field) = field {
        assert_eq!(answer.body["errors"][0]["field"], field, "{}", answer.body);
    }
}

async fn whoami(f: &Fixture, token: &str) -> Answer {
    call(
        &f.app,
        request(Method::GET, "/whoami", &bearer(token), &[], None),
    )
    .await
}

async fn list_tokens(f: &Fixture, authorization: &str) -> Answer {
    call(
        &f.app,
        request(Method::GET, "/tokens", authorization, &[], None),
    )
    .await
}

async fn revoke(f: &Fixture, id: &str, authorization: &str) -> Answer {
    let path = format!("/tokens/{id}");
    call(
        &f.app,
        request(Method::DELETE, &path, authorization, &[], None),
    )
    .await
}

fn assert_no_secret(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains("\"token\""), "{text}");
    assert!(!text.contains("digest"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Positive paths

#[tokio::test]
async fn create_list_rotate_revoke_and_the_tokens_through_the_gate() {
    let f = fixture().await;
    let answer = create(
        &f,
        "alice",
        json!({"name": "laptop", "expires_in": "7d", "scopes": ["reports:read"]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.headers["content-type"], "application/json");
    let token = answer.body["token"].as_str().unwrap().to_owned();
    let id = answer.body["id"].as_str().unwrap().to_owned();
    assert_eq!(answer.body["name"], "laptop");
    assert_eq!(answer.body["scopes"], json!(["reports:read"]));
    assert_eq!(answer.body["self_served"], true);

    // The token authenticates as alice, with her groups (read from her record).
    let who = whoami(&f, &token).await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.body, "alice [\"staff\"]");

    let list = list_tokens(&f, &basic("alice")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["tokens"][0]["id"], id.as_str());
    assert_no_secret(&list.body);
    // bob sees none of alice's.
    let list = list_tokens(&f, &basic("bob")).await;
    assert_eq!(list.body["tokens"], json!([]));

    // Rotate with an overlap: both work for now; the successor is shown once.
    let rotated = call(
        &f.app,
        request(
            Method::POST,
            &format!("/tokens/{id}/rotate"),
            &basic("alice"),
            &[],
            Some(json!({"overlap": "1h"})),
        ),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    assert_eq!(rotated.headers["cache-control"], "no-store");
    assert_eq!(rotated.body["rotated_from"], id.as_str());
    assert_eq!(rotated.body["name"], "laptop");
    let new_id = rotated.body["id"].as_str().unwrap().to_owned();
    let new_token = rotated.body["token"].as_str().unwrap().to_owned();
    for token in [&token, &new_token] {
        let who = whoami(&f, token).await;
        assert_eq!(who.status, StatusCode::OK);
    }

    // Revoke both: 204, then refused by the Gate.
    for id in [&id, &new_id] {
        let revoked = revoke(&f, id, &basic("alice")).await;
        assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    }
    for token in [&token, &new_token] {
        let who = whoami(&f, token).await;
        assert_eq!(who.status, StatusCode::UNAUTHORIZED);
    }
    let list = list_tokens(&f, &basic("alice")).await;
    assert_eq!(list.body["tokens"], json!([]));
}

#[tokio::test]
async fn default_lifetime_expires_at_and_the_cap_itself_are_accepted() {
    let f = fixture().await;
    let answer = create(&f, "alice", json!({"name": "default"})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let created: chrono::DateTime<chrono::Utc> =
        answer.body["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        answer.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_days(), 30);

    let answer = create(&f, "alice", json!({"name": "max", "expires_in": "90d"})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);

    let at = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let answer = create(&f, "alice", json!({"name": "at", "expires_at": at})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

#[tokio::test]
async fn a_script_name_is_stored_and_returned_as_a_json_string() {
    let f = fixture().await;
    let name = "<script>alert(1)</script>";
    let answer = create(&f, "alice", json!({ "name": name })).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.body["name"], name);
    let list = list_tokens(&f, &basic("alice")).await;
    assert_eq!(list.headers["content-type"], "application/json");
    assert_eq!(list.body["tokens"][0]["name"], name);
}

#[tokio::test]
async fn create_rotate_and_revoke_are_audit_events_without_the_token() {
    let f = fixture().await;
    let logs = common::logs::capture();
    let answer = create(&f, "alice", json!({"name": "laptop"})).await;
    let token = answer.body["token"].as_str().unwrap().to_owned();
    let id = answer.body["id"].as_str().unwrap().to_owned();
    let rotated = call(
        &f.app,
        request(
            Method::POST,
            &format!("/tokens/{id}/rotate"),
            &basic("alice"),
            &[],
            Some(json!({})),
        ),
    )
    .await;
    let new_token = rotated.body["token"].as_str().unwrap().to_owned();
    let new_id = rotated.body["id"].as_str().unwrap().to_owned();
    revoke(&f, &new_id, &basic("alice")).await;
    create(&f, "alice", json!({"name": "x", "expires_in": "1y"})).await;
    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("portcullis::audit") && l.contains("stage=\"self_service\""))
        .collect();
    assert_eq!(events.len(), 4, "{text}");
    for (event, (action, key)) in events.iter().zip([
        ("create", id.as_str()),
        ("rotate", new_id.as_str()),
        ("revoke", new_id.as_str()),
    ]) {
        assert!(event.contains(&format!("action=\"{action}\"")), "{event}");
        assert!(event.contains(&format!("key_id={key}")), "{event}");
        assert!(event.contains("subject=\"alice\""), "{event}");
        assert!(event.contains("scheme=\"basic\""), "{event}");
    }
    assert!(
        events[1].contains(&format!("replaces=\"{id}\"")),
        "{}",
        events[1]
    );
    assert!(events[3].contains("outcome=\"reject\"") && events[3].contains("status=400"));
    assert!(
        !text.contains(&token) && !text.contains(&new_token),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rules

#[tokio::test]
async fn an_over_cap_lifetime_is_422_naming_the_field() {
    let f = fixture().await;
    let answer = create(&f, "alice", json!({"name": "n", "expires_in": "91d"})).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_in"),
    );
    let at = (chrono::Utc::now() + chrono::Duration::days(91)).to_rfc3339();
    let answer = create(&f, "alice", json!({"name": "n", "expires_at": at})).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_at"),
    );
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let answer = create(&f, "alice", json!({"name": "n", "expires_at": past})).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_at"),
    );
    let answer = create(
        &f,
        "alice",
        json!({"name": "n", "expires_in": "1d", "expires_at": past}),
    )
    .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_at"),
    );
    assert!(f.keys.list(Some("alice")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_self_service_cap_above_the_api_keys_cap_does_not_build() {
    let store = SqliteStore::open(":memory:").await.unwrap();
    let users = Arc::new(store.clone());
    let keys = ApiKeys::builder(Arc::new(store), PEPPER.into())
        .max_lifetime(30 * DAY)
        .owners(users)
        .build()
        .unwrap();
    let err = SelfService::builder(keys.clone())
        .max_lifetime(31 * DAY)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("max_lifetime"));
    let err = SelfService::builder(keys)
        .max_lifetime(10 * DAY)
        .default_lifetime(11 * DAY)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("default_lifetime"));
}

#[tokio::test]
async fn scopes_beyond_the_allowlist_are_422() {
    let f = fixture().await;
    let answer = create(&f, "alice", json!({"name": "n", "scopes": ["admin"]})).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, Some("scopes"));
    let answer = create(
        &f,
        "alice",
        json!({"name": "n", "scopes": ["reports:read", 3]}),
    )
    .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, Some("scopes"));
}

#[tokio::test]
async fn names_empty_too_long_or_with_control_characters_are_422() {
    let f = fixture().await;
    for name in ["", "  ", "tab\there", "nl\nhere", &"x".repeat(65)] {
        let answer = create(&f, "alice", json!({ "name": name })).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    }
    let answer = create(&f, "alice", json!({ "name": "x".repeat(64) })).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let answer = create(&f, "alice", json!({})).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
}

#[tokio::test]
async fn a_name_in_use_is_409_and_free_again_once_revoked() {
    let f = fixture().await;
    let (id, _) = created(&f, "alice", "laptop").await;
    let answer = create(&f, "alice", json!({"name": "laptop"})).await;
    assert_problem(&answer, StatusCode::CONFLICT, Some("name"));
    // Another user may use the name.
    created(&f, "bob", "laptop").await;
    f.keys.revoke(&id).await.unwrap();
    created(&f, "alice", "laptop").await;
}

#[tokio::test]
async fn another_users_id_is_404_exactly_as_an_unknown_one() {
    let f = fixture().await;
    let (id, token) = created(&f, "alice", "laptop").await;
    let foreign = revoke(&f, &id, &basic("bob")).await;
    let unknown = call(
        &f.app,
        request(
            Method::DELETE,
            "/tokens/AAAAAAAAAAAA",
            &basic("bob"),
            &[],
            None,
        ),
    )
    .await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, None);
    assert_eq!(foreign.body, unknown.body);
    assert_eq!(foreign.status, unknown.status);
    let rotate = call(
        &f.app,
        request(
            Method::POST,
            &format!("/tokens/{id}/rotate"),
            &basic("bob"),
            &[],
            Some(json!({})),
        ),
    )
    .await;
    assert_eq!(rotate.body, unknown.body);
    // alice's token still works.
    let who = whoami(&f, &token).await;
    assert_eq!(who.status, StatusCode::OK);
}

#[tokio::test]
async fn a_jwt_principal_is_403_for_everything() {
    let f = fixture().await;
    let jwt = f.issuer.token("alice").sign();
    let (id, _) = created(&f, "alice", "laptop").await;
    for (method, path, body) in [
        (Method::GET, "/tokens".to_owned(), None),
        (
            Method::POST,
            "/tokens".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/tokens/{id}"), None),
        (
            Method::POST,
            format!("/tokens/{id}/rotate"),
            Some(json!({})),
        ),
    ] {
        let answer = call(&f.app, request(method, &path, &bearer(&jwt), &[], body)).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, None);
        assert!(answer.body["detail"].as_str().unwrap().contains("jwt"));
    }
    assert_eq!(f.keys.list(Some("alice")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_token_principal_lists_and_revokes_but_neither_creates_nor_rotates() {
    let f = fixture().await;
    let (id, token) = created(&f, "alice", "laptop").await;
    let (other, _) = created(&f, "alice", "desktop").await;
    let answer = call(
        &f.app,
        request(
            Method::POST,
            "/tokens",
            &bearer(&token),
            &[],
            Some(json!({"name": "x"})),
        ),
    )
    .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, None);
    let answer = call(
        &f.app,
        request(
            Method::POST,
            &format!("/tokens/{id}/rotate"),
            &bearer(&token),
            &[],
            Some(json!({})),
        ),
    )
    .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, None);
    let list = call(
        &f.app,
        request(Method::GET, "/tokens", &bearer(&token), &[], None),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["tokens"].as_array().unwrap().len(), 2);
    let revoked = call(
        &f.app,
        request(
            Method::DELETE,
            &format!("/tokens/{other}"),
            &bearer(&token),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(f.keys.list(Some("alice")).await.unwrap().len(), 2);
}

#[tokio::test]
async fn with_allow_key_principals_a_token_mints_within_its_own_scopes_and_lifetime() {
    let f = fixture_with(SqliteStore::open(":memory:").await.unwrap(), |b| {
        b.allow_key_principals(true)
    })
    .await;
    let answer = create(
        &f,
        "alice",
        json!({"name": "ci", "expires_in": "2d", "scopes": ["reports:read"]}),
    )
    .await;
    let token = answer.body["token"].as_str().unwrap().to_owned();
    let id = answer.body["id"].as_str().unwrap().to_owned();
    let by_token = |body: Value| {
        call(
            &f.app,
            request(Method::POST, "/tokens", &bearer(&token), &[], Some(body)),
        )
    };
    // Beyond its own scopes (allowlisted, but not the caller's).
    let answer =
        by_token(json!({"name": "w", "expires_in": "1d", "scopes": ["reports:write"]})).await;
    assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, Some("scopes"));
    // Beyond its own expiry.
    let answer = by_token(json!({"name": "long", "expires_in": "3d"})).await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("expires_in"),
    );
    let answer =
        by_token(json!({"name": "r", "expires_in": "1d", "scopes": ["reports:read"]})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let rotated = call(
        &f.app,
        request(
            Method::POST,
            &format!("/tokens/{id}/rotate"),
            &bearer(&token),
            &[],
            Some(json!({})),
        ),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
}

#[tokio::test]
async fn an_administrators_key_is_listed_and_revocable_but_not_rotated_here() {
    let f = fixture().await;
    let admin_key = f
        .keys
        .create(
            portcullis::NewApiKey::new("alice")
                .with_name("issued by ops")
                .with_groups(["ops"])
                .with_expires_in(DAY),
        )
        .await
        .unwrap();
    let rotate = call(
        &f.app,
        request(
            Method::POST,
            &format!("/tokens/{}/rotate", admin_key.id()),
            &basic("alice"),
            &[],
            Some(json!({})),
        ),
    )
    .await;
    assert_problem(&rotate, StatusCode::FORBIDDEN, None);
    let list = list_tokens(&f, &basic("alice")).await;
    assert_eq!(list.body["tokens"][0]["self_served"], false);
    let revoke = call(
        &f.app,
        request(
            Method::DELETE,
            &format!("/tokens/{}", admin_key.id()),
            &basic("alice"),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_disabled_owner_or_a_removed_group_takes_effect_within_the_cache_ttl() {
    let f = fixture().await;
    let (_, token) = created(&f, "alice", "laptop").await;
    let staff = || {
        call(
            &f.app,
            request(Method::GET, "/staff", &bearer(&token), &[], None),
        )
    };
    assert_eq!(staff().await.status, StatusCode::OK);
    f.users
        .removed_groups
        .write()
        .unwrap()
        .insert("staff".into());
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(staff().await.status, StatusCode::FORBIDDEN);

    let (_, token) = created(&f, "bob", "laptop").await;
    let who = || {
        call(
            &f.app,
            request(Method::GET, "/whoami", &bearer(&token), &[], None),
        )
    };
    assert_eq!(who().await.status, StatusCode::OK);
    f.users.set_disabled("bob", true).await.unwrap();
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(who().await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn concurrent_creates_over_http_stop_at_the_limit() {
    let path = std::env::temp_dir().join(format!(
        "portcullis-self-service-{}-{}.db",
        std::process::id(),
        rand_suffix()
    ));
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let f = fixture_with(store, |b| b).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, f.app.clone()).into_future());
    let client = reqwest::Client::new();
    let attempts = (0..12).map(|i| {
        let client = client.clone();
        async move {
            client
                .post(format!("http://{addr}/tokens"))
                .header("authorization", basic("alice"))
                .header("content-type", "application/json")
                .body(json!({ "name": format!("t{i}") }).to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses: Vec<u16> = futures_join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(f.keys.list(Some("alice")).await.unwrap().len(), 3);
    server.abort();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Runs every future at once on the current runtime (no `futures` dependency).
async fn futures_join_all<F: Future<Output = u16> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CSRF and request shape

#[tokio::test]
async fn sec_fetch_site_other_than_same_origin_is_403() {
    let f = fixture().await;
    for site in ["same-site", "cross-site", "none"] {
        let answer = call(
            &f.app,
            request(
                Method::POST,
                "/tokens",
                &basic("alice"),
                &[("sec-fetch-site", site)],
                Some(json!({"name": "x"})),
            ),
        )
        .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, Some("Sec-Fetch-Site"));
    }
    let (id, _) = created(&f, "alice", "laptop").await;
    let answer = call(
        &f.app,
        request(
            Method::DELETE,
            &format!("/tokens/{id}"),
            &basic("alice"),
            &[("sec-fetch-site", "same-site")],
            None,
        ),
    )
    .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, Some("Sec-Fetch-Site"));
    // same-origin passes, whatever Origin says.
    let answer = call(
        &f.app,
        request(
            Method::POST,
            "/tokens",
            &basic("alice"),
            &[("sec-fetch-site", "same-origin")],
            Some(json!({"name": "ok"})),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(f.keys.list(Some("alice")).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_origin_other_than_the_public_origin_is_403() {
    let f = fixture().await;
    for origin in ["null", "https://evil.example", "http://app.example"] {
        let answer = call(
            &f.app,
            request(
                Method::POST,
                "/tokens",
                &basic("alice"),
                &[("origin", origin)],
                Some(json!({"name": "x"})),
            ),
        )
        .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, Some("Origin"));
    }
    let answer = call(
        &f.app,
        request(
            Method::POST,
            "/tokens",
            &basic("alice"),
            &[("origin", "https://APP.example:443")],
            Some(json!({"name": "ok"})),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
}

#[tokio::test]
async fn csrf_applies_to_an_api_key_sent_as_the_basic_password_too() {
    let f = fixture().await;
    let (id, token) = created(&f, "alice", "laptop").await;
    // A Basic authenticator accepting keys as passwords: a browser replays those by itself.
    let pool = HashingPool::new(INSECURE_FAST_HASHING).unwrap();
    let basic_keys = BasicAuthenticator::builder(f.users.clone())
        .hashing_pool(pool)
        .accept_api_keys(f.keys.clone())
        .build()
        .unwrap();
    let gate = Gate::builder().authenticator(basic_keys).build().unwrap();
    let app = Router::new()
        .nest("/tokens", f.service.router())
        .layer(GateLayer::new(gate));
    let answer = call(
        &app,
        request(
            Method::DELETE,
            &format!("/tokens/{id}"),
            &encode_basic("alice", &token),
            &[("origin", "https://evil.example")],
            None,
        ),
    )
    .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, Some("Origin"));
    let _ = f.gate;
}

#[tokio::test]
async fn a_cross_site_text_plain_body_is_415() {
    let f = fixture().await;
    // What an HTML form can send cross-site without a preflight; no browser headers, even.
    let request = Request::post("/tokens")
        .header("authorization", basic("alice"))
        .header("content-type", "text/plain")
        .body(Body::from(json!({"name": "x"}).to_string()))
        .unwrap();
    let answer = call(&f.app, request).await;
    assert_problem(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Some("Content-Type"),
    );
    let request = Request::post("/tokens")
        .header("authorization", basic("alice"))
        .body(Body::from(json!({"name": "x"}).to_string()))
        .unwrap();
    let answer = call(&f.app, request).await;
    assert_problem(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Some("Content-Type"),
    );
    assert!(f.keys.list(Some("alice")).await.unwrap().is_empty());
}

#[tokio::test]
async fn malformed_json_is_400_naming_the_position_or_member() {
    let f = fixture().await;
    let raw = |body: &'static str| {
        Request::post("/tokens")
            .header("authorization", basic("alice"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let answer = call(&f.app, raw("{\"name\": \"x\",\n \"scopes\": [}")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, None);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("line 2 column"),
        "{}",
        answer.body
    );
    let answer = call(&f.app, raw("{\"name\": \"x\", \"name\": \"y\"}")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, None);
    let answer = call(&f.app, raw("[1]")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, None);
    let answer = call(&f.app, raw("{\"name\": 5}")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, Some("name"));
    let answer = call(&f.app, raw("{\"name\": \"x\", \"expires_in\": \"soon\"}")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, Some("expires_in"));
    let answer = call(&f.app, raw("{\"name\": \"x\", \"groups\": [\"admins\"]}")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, Some("groups"));
}

#[tokio::test]
async fn a_body_over_16_kib_is_413() {
    let f = fixture().await;
    let name = "x".repeat(17 * 1024);
    let answer = create(&f, "alice", json!({ "name": name })).await;
    assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, None);
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let f = fixture().await;
    let answer = call(
        &f.app,
        request(Method::PUT, "/tokens", &basic("alice"), &[], None),
    )
    .await;
    assert_problem(&answer, StatusCode::METHOD_NOT_ALLOWED, None);
    assert_eq!(answer.headers["allow"], "GET, POST");
    let answer = call(
        &f.app,
        request(Method::GET, "/tokens/abc", &basic("alice"), &[], None),
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "DELETE");
}

// ---------------------------------------------------------------------------------------------
// The Gate in front, the admin variant

#[tokio::test]
async fn the_gate_still_protects_the_nested_api() {
    let f = fixture().await;
    for path in [
        "/tokens",
        "/tokens/abc",
        "/tokens/abc/rotate",
        "/admin/tokens",
    ] {
        let answer = call(&f.app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(answer.headers.contains_key("www-authenticate"), "{path}");
        let answer = call(
            &f.app,
            request(
                Method::GET,
                path,
                &encode_basic("alice", "wrong"),
                &[],
                None,
            ),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn the_gate_decides_on_the_path_the_client_sent_not_the_nested_remainder() {
    let f = fixture().await;
    // A rule on /tokens/** would not match the nested router's "/" or "/{id}".
    let users = BasicAuthenticator::builder(f.users.clone())
        .hashing(INSECURE_FAST_HASHING)
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(users)
        .route("/tokens", Groups::any_of(["staff"]))
        .route("/tokens/**", Groups::any_of(["staff"]))
        .build()
        .unwrap();
    let app = Router::new()
        .nest("/tokens", f.service.router())
        .layer(GateLayer::new(gate));
    for path in ["/tokens", "/tokens/abc", "/tokens/abc/rotate"] {
        let root = call(&app, request(Method::GET, path, &basic("root"), &[], None)).await;
        assert_eq!(root.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            root.body.get("errors").is_none(),
            "the Gate's 403, not the API's: {path}"
        );
    }
    let alice = call(
        &app,
        request(Method::GET, "/tokens", &basic("alice"), &[], None),
    )
    .await;
    assert_eq!(alice.status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_gate_the_api_refuses_with_500_and_anonymous_callers_get_401() {
    let f = fixture().await;
    let bare = http::Request::get("/").body(bytes::Bytes::new()).unwrap();
    assert_eq!(
        f.service.handle(bare).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let anonymous = portcullis::testing::anonymous()
        .with_gate(f.gate.clone())
        .on(http::Request::get("/").body(bytes::Bytes::new()).unwrap());
    let response = f.service.handle(anonymous).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn the_admin_api_lists_and_revokes_any_token_for_admins_only() {
    let f = fixture().await;
    let (alice_id, alice_token) = created(&f, "alice", "laptop").await;
    created(&f, "bob", "laptop").await;
    let list = call(
        &f.app,
        request(Method::GET, "/admin/tokens", &basic("root"), &[], None),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["tokens"].as_array().unwrap().len(), 2);
    assert_no_secret(&list.body);
    let list = call(
        &f.app,
        request(
            Method::GET,
            "/admin/tokens?owner=alice",
            &basic("root"),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(list.body["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["tokens"][0]["owner"], "alice");

    // Not an admin: 403 from the policy, through the Gate's responder.
    let denied = call(
        &f.app,
        request(Method::GET, "/admin/tokens", &basic("alice"), &[], None),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied = call(
        &f.app,
        request(
            Method::DELETE,
            &format!("/admin/tokens/{alice_id}"),
            &basic("bob"),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let revoked = call(
        &f.app,
        request(
            Method::DELETE,
            &format!("/admin/tokens/{alice_id}"),
            &basic("root"),
            &[],
            None,
        ),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let who = whoami(&f, &alice_token).await;
    assert_eq!(who.status, StatusCode::UNAUTHORIZED);
    // Nothing is created through the admin API.
    let answer = call(
        &f.app,
        request(
            Method::POST,
            "/admin/tokens",
            &basic("root"),
            &[],
            Some(json!({"name": "x"})),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn config_text(self_service: &str) -> String {
    let pepper = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/example-pepper.txt");
    format!(
        "[gate]\npublic_origin = \"https://app.example\"\n\n[store]\nurl = \"sqlite::memory:\"\n\n\
         [api_keys]\npepper_file = \"{pepper}\"\nmax_lifetime = \"30d\"\n\n{self_service}"
    )
}

#[tokio::test]
async fn the_self_service_section_builds_the_service_beside_the_gate() {
    let text = config_text(
        "[self_service]\nmax_lifetime = \"14d\"\ndefault_lifetime = \"7d\"\n\
         max_tokens_per_user = 5\nmax_name_len = 40\nscope_allowlist = [\"reports:read\"]\n\
         allow_key_principals = true\n",
    );
    let services = portcullis::config::Config::from_str(&text)
        .unwrap()
        .build_services()
        .await
        .unwrap();
    let service = services.self_service.expect("[self_service] is configured");
    assert_eq!(service.max_lifetime(), 14 * DAY);
    assert_eq!(service.default_lifetime(), 7 * DAY);
    assert_eq!(service.max_tokens_per_user(), 5);
    assert_eq!(service.max_name_len(), 40);
    assert_eq!(
        service.scope_allowlist().collect::<Vec<_>>(),
        ["reports:read"]
    );

    let without = config_text("");
    let services = portcullis::config::Config::from_str(&without)
        .unwrap()
        .build_services()
        .await
        .unwrap();
    assert!(services.self_service.is_none());
}

#[test]
fn a_bad_self_service_section_is_refused_with_line_and_key() {
    let cases = [
        (
            "max_lifetime = \"31d\"",
            "self_service.max_lifetime",
            "[api_keys] max_lifetime",
        ),
        (
            "max_lifetime = \"10d\"\ndefault_lifetime = \"11d\"",
            "self_service.default_lifetime",
            "at most max_lifetime",
        ),
        (
            "max_tokens_per_user = 0",
            "self_service.max_tokens_per_user",
            "1 to",
        ),
        ("max_name_len = 1000", "self_service.max_name_len", "1 to"),
        (
            "scope_allowlist = [\"a b\"]",
            "self_service.scope_allowlist",
            "scope",
        ),
    ];
    for (section, key, message) in cases {
        let text = config_text(&format!("[self_service]\n{section}\n"));
        let err = portcullis::config::Config::from_str(&text).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(message), "{err}");
        let last = section.lines().last().unwrap();
        let line = text.lines().position(|l| l == last).unwrap() + 1;
        assert_eq!(err.location().map(|at| at.line), Some(line), "{err}");
    }
    let pepperless = "[self_service]\nmax_lifetime = \"1d\"\n";
    let err = portcullis::config::Config::from_str(pepperless).unwrap_err();
    assert_eq!(err.key(), Some("self_service"), "{err}");
    assert!(err.to_string().contains("[api_keys]"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// actix-web

mod actix {
    use actix_web::{App, test};
    use portcullis::actix::GateMiddleware;

    use super::*;

    #[actix_web::test]
    async fn the_actix_scope_creates_lists_refuses_and_revokes() {
        let f = fixture().await;
        let app = test::init_service(
            App::new()
                .wrap(GateMiddleware::new(f.gate.clone()))
                .service(f.service.actix_scope("/tokens")),
        )
        .await;
        let create = test::TestRequest::post()
            .uri("/tokens")
            .insert_header(("authorization", basic("alice")))
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"name": "laptop", "scopes": ["reports:read"]}).to_string())
            .to_request();
        let response = test::call_service(&app, create).await;
        assert_eq!(response.status().as_u16(), 201);
        assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
        let body: Value = test::read_body_json(response).await;
        let id = body["id"].as_str().unwrap().to_owned();
        assert!(body["token"].as_str().is_some());

        let list = test::TestRequest::get()
            .uri("/tokens")
            .insert_header(("authorization", basic("alice")))
            .to_request();
        let body: Value = test::call_and_read_body_json(&app, list).await;
        assert_eq!(body["tokens"][0]["id"], id.as_str());

        let cross = test::TestRequest::post()
            .uri("/tokens")
            .insert_header(("authorization", basic("alice")))
            .insert_header(("sec-fetch-site", "same-site"))
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"name": "x"}).to_string())
            .to_request();
        let response = test::call_service(&app, cross).await;
        assert_eq!(response.status().as_u16(), 403);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/problem+json"
        );

        let plain = test::TestRequest::post()
            .uri("/tokens")
            .insert_header(("authorization", basic("alice")))
            .insert_header(("content-type", "text/plain"))
            .set_payload(json!({"name": "x"}).to_string())
            .to_request();
        assert_eq!(test::call_service(&app, plain).await.status().as_u16(), 415);

        let foreign = test::TestRequest::delete()
            .uri(&format!("/tokens/{id}"))
            .insert_header(("authorization", basic("bob")))
            .to_request();
        assert_eq!(
            test::call_service(&app, foreign).await.status().as_u16(),
            404
        );

        let big = test::TestRequest::post()
            .uri("/tokens")
            .insert_header(("authorization", basic("alice")))
            .insert_header(("content-type", "application/json"))
            .set_payload(json!({"name": "x".repeat(20_000)}).to_string())
            .to_request();
        assert_eq!(test::call_service(&app, big).await.status().as_u16(), 413);

        let revoke = test::TestRequest::delete()
            .uri(&format!("/tokens/{id}"))
            .insert_header(("authorization", basic("alice")))
            .to_request();
        assert_eq!(
            test::call_service(&app, revoke).await.status().as_u16(),
            204
        );

        let anonymous = test::TestRequest::get().uri("/tokens/x").to_request();
        assert_eq!(
            test::call_service(&app, anonymous).await.status().as_u16(),
            401
        );
    }

    #[actix_web::test]
    async fn the_actix_admin_scope_requires_its_policy() {
        let f = fixture().await;
        created(&f, "alice", "laptop").await;
        let app = test::init_service(
            App::new()
                .wrap(GateMiddleware::new(f.gate.clone()))
                .service(
                    f.service
                        .admin_scope("/admin/tokens", Groups::any_of(["admins"])),
                ),
        )
        .await;
        let list = |user: &str| {
            test::TestRequest::get()
                .uri("/admin/tokens?owner=alice")
                .insert_header(("authorization", basic(user)))
                .to_request()
        };
        assert_eq!(
            test::call_service(&app, list("alice"))
                .await
                .status()
                .as_u16(),
            403
        );
        let body: Value = test::call_and_read_body_json(&app, list("root")).await;
        assert_eq!(body["tokens"].as_array().unwrap().len(), 1);
    }
}
