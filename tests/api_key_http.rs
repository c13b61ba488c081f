//! API keys through a real HTTP server: an axum app behind `GateLayer`, with an API-key and a
//! Basic authenticator, called with reqwest.
//!
//! Every refused key gets 401 with the `ApiKey` challenge; ambiguous credentials get 400; the
//! lifecycle (cap, rotation overlap, immediate revocation) is seen from the client's side.
#![cfg(all(feature = "axum", feature = "basic", feature = "api-key"))]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use portcullis::api_key::{ApiKeyError, IssuedKey};
use portcullis::api_key::{ApiKeysBuilder, CHECKSUM_LEN};
use portcullis::basic::encode_basic;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{ApiKeys, BasicAuthenticator, Gate, NewApiKey, Principal, RequestView};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;

const PEPPER: &str = "integration-test pepper, at least thirty-two bytes";
const DAY: Duration = Duration::from_secs(86_400);
const API_KEY_CHALLENGE: &str = r#"ApiKey realm="api", header="X-API-Key""#;

/// A running server and the handles a test needs.
struct App {
    base: String,
    client: reqwest::Client,
    keys: ApiKeys,
}

impl App {
    async fn start(configure: impl FnOnce(ApiKeysBuilder) -> ApiKeysBuilder) -> App {
        App::on(Arc::new(MemoryApiKeyStore::new()), configure).await
    }

    /// A server whose keys live in `store`, which another `App` may share (another instance).
    async fn on(
        store: Arc<MemoryApiKeyStore>,
        configure: impl FnOnce(ApiKeysBuilder) -> ApiKeysBuilder,
    ) -> App {
        let keys = configure(ApiKeys::builder(store, PEPPER.into()))
            .build()
            .expect("valid API key settings");
        let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .hashing(common::cheap_hashing())
            .build()
            .expect("valid Basic settings");
        basic
            .add_user("carol", &"hunter22".into(), ["staff"])
            .await
            .expect("user added");
        let gate = Gate::builder()
            .authenticator(keys.authenticator())
            .authenticator(basic)
            .build()
            .expect("valid gate");
        let base = common::serve_router(Router::new().route("/whoami", get(whoami)), gate).await;
        App {
            base,
            client: reqwest::Client::new(),
            keys,
        }
    }

    async fn default() -> App {
        App::start(|b| b).await
    }

    async fn issue(&self, lifetime: Duration) -> IssuedKey {
        self.keys
            .create(
                NewApiKey::new("alice")
                    .with_name("laptop")
                    .with_scopes(["reports:read"])
                    .with_groups(["analysts"])
                    .with_expires_in(lifetime)
                    .with_created_by("test"),
            )
            .await
            .expect("key created")
    }

    fn get(&self) -> reqwest::RequestBuilder {
        self.client.get(format!("{}/whoami", self.base))
    }

    async fn with_header(&self, key: &str) -> reqwest::Response {
        self.get()
            .header("x-api-key", key)
            .send()
            .await
            .expect("request")
    }

    async fn with_bearer(&self, key: &str) -> reqwest::Response {
        self.get().bearer_auth(key).send().await.expect("request")
    }
}

async fn whoami(principal: Principal) -> Json<Principal> {
    Json(principal)
}

fn expose(issued: &IssuedKey) -> &str {
    issued.key().expose_secret()
}

async fn assert_ok_as_alice(response: reqwest::Response, issued: &IssuedKey) {
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["subject"], "alice");
    assert_eq!(body["kind"], "user");
    assert_eq!(body["scheme"], "api_key");
    assert_eq!(body["credential_id"], issued.id());
    assert_eq!(body["groups"], serde_json::json!(["analysts"]));
    assert_eq!(body["scopes"], serde_json::json!(["reports:read"]));
    assert!(body["expires_at"].is_string());
}

/// 401 carrying the `ApiKey` challenge (next to Basic's), and a problem body with no reason in it.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<&str> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().expect("ascii challenge"))
        .collect();
    assert!(
        challenges.contains(&API_KEY_CHALLENGE),
        "challenges: {challenges:?}"
    );
    assert!(challenges.iter().any(|c| c.starts_with("Basic ")));
    let body = response.text().await.expect("body");
    assert!(body.contains("\"status\":401"), "{body}");
    for internal in ["revoked", "expired", "unknown", "secret", "checksum"] {
        assert!(!body.contains(internal), "{body} leaks {internal:?}");
    }
}

/// `text` with its last character changed to another base62 character.
fn change_last(text: &str) -> String {
    let other = if text.ends_with('a') { "b" } else { "a" };
    format!("{}{other}", &text[..text.len() - 1])
}

/// `key` with the last character of its secret changed: the checksum no longer matches.
fn changed_before_checksum(key: &str) -> String {
    let (body, checksum) = key.split_at(key.len() - CHECKSUM_LEN);
    format!("{}{checksum}", change_last(body))
}

/// The same id with another secret and a correct checksum: only the keyed hash can refuse it.
fn other_secret_valid_checksum(key: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = change_last(&key[..key.len() - CHECKSUM_LEN]);
    let mut crc = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{body}{}", String::from_utf8_lossy(&digits))
}

#[tokio::test]
async fn a_good_key_in_the_api_key_header_is_200_with_its_principal() {
    let app = App::default().await;
    let issued = app.issue(DAY).await;
    assert_ok_as_alice(app.with_header(expose(&issued)).await, &issued).await;
}

#[tokio::test]
async fn a_good_key_as_bearer_is_200() {
    let app = App::default().await;
    let issued = app.issue(DAY).await;
    assert_ok_as_alice(app.with_bearer(expose(&issued)).await, &issued).await;
}

#[tokio::test]
async fn an_expired_key_is_401() {
    let app = App::default().await;
    let issued = app.issue(Duration::from_secs(1)).await;
    assert_eq!(
        app.with_header(expose(&issued)).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_refused(app.with_header(expose(&issued)).await).await;
}

#[tokio::test]
async fn a_revoked_key_is_401_at_once_despite_the_cache() {
    let app = App::default().await;
    assert_eq!(app.keys.cache_ttl(), Duration::from_secs(5));
    let issued = app.issue(DAY).await;
    // Warm the positive cache, then revoke well inside its TTL.
    for _ in 0..3 {
        assert_eq!(
            app.with_header(expose(&issued)).await.status(),
            StatusCode::OK
        );
    }
    app.keys.revoke(issued.id()).await.expect("revoked");
    assert_refused(app.with_header(expose(&issued)).await).await;
    assert_refused(app.with_bearer(expose(&issued)).await).await;
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_overlap_only() {
    let app = App::default().await;
    let old = app.issue(DAY).await;
    assert_eq!(app.with_header(expose(&old)).await.status(), StatusCode::OK);
    let new = app
        .keys
        .rotate(old.id(), Duration::from_secs(1))
        .await
        .expect("rotated");
    assert_ne!(new.id(), old.id());
    // During the overlap both work.
    assert_eq!(app.with_header(expose(&old)).await.status(), StatusCode::OK);
    assert_ok_as_alice(app.with_header(expose(&new)).await, &new).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // After it, only the new one.
    assert_refused(app.with_header(expose(&old)).await).await;
    assert_eq!(app.with_bearer(expose(&new)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_rotated_out_key_is_401_when_the_overlap_ends() {
    let app = App::default().await;
    let old = app.issue(DAY).await;
    app.keys
        .rotate(old.id(), Duration::ZERO)
        .await
        .expect("rotated");
    assert_refused(app.with_header(expose(&old)).await).await;
}

#[tokio::test]
async fn a_wrong_checksum_is_401() {
    let app = App::default().await;
    let issued = app.issue(DAY).await;
    let typo = changed_before_checksum(expose(&issued));
    assert_refused(app.with_header(&typo).await).await;
    assert_refused(app.with_bearer(&typo).await).await;
}

#[tokio::test]
async fn an_unknown_id_is_401() {
    let app = App::default().await;
    let never_stored = app.keys.format().generate();
    assert_refused(app.with_header(never_stored.key().expose_secret()).await).await;
    // Twice: the second answer comes from the negative cache, and is the same.
    assert_refused(app.with_header(never_stored.key().expose_secret()).await).await;
}

#[tokio::test]
async fn a_wrong_secret_is_401() {
    let app = App::default().await;
    let issued = app.issue(DAY).await;
    let forged = other_secret_valid_checksum(expose(&issued));
    assert!(
        app.keys.format().parse(&forged).is_ok(),
        "checksum is valid"
    );
    assert_refused(app.with_header(&forged).await).await;
}

#[tokio::test]
async fn a_key_in_the_header_and_as_bearer_is_400() {
    let app = App::default().await;
    let issued = app.issue(DAY).await;
    let response = app
        .get()
        .header("x-api-key", expose(&issued))
        .bearer_auth(expose(&issued))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_api_key_and_basic_in_one_request_is_400() {
    let app = App::default().await;
    let issued = app.issue(DAY).await;
    // Each alone works...
    let basic = encode_basic("carol", "hunter22");
    let alone = app
        .get()
        .header("authorization", &basic)
        .send()
        .await
        .expect("request");
    assert_eq!(alone.status(), StatusCode::OK);
    // ...together they are ambiguous.
    let response = app
        .get()
        .header("x-api-key", expose(&issued))
        .header("authorization", &basic)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_lifetime_over_the_cap_is_refused_at_creation_naming_the_cap() {
    let app = App::start(|b| b.max_lifetime(90 * DAY)).await;
    let err = app
        .keys
        .create(NewApiKey::new("alice").with_expires_in(365 * DAY))
        .await
        .expect_err("over the cap");
    assert!(
        matches!(err, ApiKeyError::LifetimeExceedsCap { cap, .. } if cap == 90 * DAY),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("maximum API key lifetime of 90d"),
        "{message}"
    );
    assert!(message.contains("365d"), "{message}");
    assert!(app.keys.list(None).await.expect("list").is_empty());
    // At the cap is fine, and works.
    let issued = app.issue(90 * DAY).await;
    assert_eq!(
        app.with_header(expose(&issued)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn no_credentials_is_401_with_the_api_key_challenge() {
    let app = App::default().await;
    let response = app.get().send().await.expect("request");
    assert_refused(response).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_creates_and_revokes_lose_no_update() {
    const TASKS: usize = 32;
    const PER_TASK: usize = 8;
    let app = App::default().await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let keys = app.keys.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("owner{task}");
            let mut created = Vec::new();
            let mut revoked = Vec::new();
            for i in 0..PER_TASK {
                let issued = keys
                    .create(NewApiKey::new(&owner).with_expires_in(DAY))
                    .await
                    .expect("created");
                if i % 2 == 0 {
                    keys.revoke(issued.id()).await.expect("revoked");
                    revoked.push(issued.id().to_owned());
                }
                created.push(issued);
            }
            (created, revoked)
        }));
    }
    let mut all = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    let (mut live, mut dead) = (Vec::new(), Vec::new());
    for task in tasks {
        let (created, gone) = task.await.expect("task");
        for issued in created {
            all.insert(issued.id().to_owned());
            if gone.iter().any(|id| id == issued.id()) {
                dead.push(issued);
            } else {
                live.push(issued);
            }
        }
        revoked.extend(gone);
    }
    assert_eq!(all.len(), TASKS * PER_TASK);

    let listed = app.keys.list(None).await.expect("list");
    let listed_ids: BTreeSet<String> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        listed_ids, all,
        "every created key is listed, and nothing else"
    );
    let listed_revoked: BTreeSet<String> = listed
        .iter()
        .filter(|r| r.revoked_at.is_some())
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(listed_revoked, revoked, "every revocation is recorded");
    let per_owner = app.keys.list(Some("owner7")).await.expect("list");
    assert_eq!(per_owner.len(), PER_TASK);

    // And the server agrees: live keys work, revoked ones do not.
    for issued in live.iter().take(4) {
        assert_eq!(
            app.with_header(expose(issued)).await.status(),
            StatusCode::OK
        );
    }
    for issued in dead.iter().take(4) {
        assert_refused(app.with_header(expose(issued)).await).await;
    }
}

/// A key made before the cap was lowered: created by an uncapped instance, presented to a capped
/// one over the same store. The cap applies to every request, not only at creation.
#[tokio::test]
async fn a_stored_key_longer_than_the_cap_is_refused_at_request_time() {
    let store = Arc::new(MemoryApiKeyStore::new());
    let uncapped = App::on(Arc::clone(&store), |b| b).await;
    let long = uncapped.issue(365 * DAY).await;
    let within = uncapped.issue(90 * DAY).await;
    assert_eq!(
        uncapped.with_header(expose(&long)).await.status(),
        StatusCode::OK
    );

    let capped = App::on(store, |b| b.max_lifetime(90 * DAY)).await;
    assert_refused(capped.with_header(expose(&long)).await).await;
    assert_refused(capped.with_bearer(expose(&long)).await).await;
    assert_ok_as_alice(capped.with_header(expose(&within)).await, &within).await;

    let audit = audit_of_check(&capped.keys, expose(&long));
    assert!(
        audit.contains(r#"detail="API key lifetime exceeds the maximum""#),
        "{audit}"
    );
    assert_no_key_in(&audit, expose(&long));
}

/// A key made when non-expiring keys were allowed stops working once they are not.
#[tokio::test]
async fn a_stored_key_without_expiry_is_refused_once_they_are_not_allowed() {
    let store = Arc::new(MemoryApiKeyStore::new());
    let permissive = App::on(Arc::clone(&store), |b| b.allow_non_expiring(true)).await;
    let forever = permissive
        .keys
        .create(NewApiKey::new("alice"))
        .await
        .expect("non-expiring key created");
    assert_eq!(forever.record().expires_at, None);
    assert_eq!(
        permissive.with_header(expose(&forever)).await.status(),
        StatusCode::OK
    );

    for strict in [
        App::on(Arc::clone(&store), |b| b).await,
        App::on(Arc::clone(&store), |b| b.max_lifetime(90 * DAY)).await,
    ] {
        assert_refused(strict.with_header(expose(&forever)).await).await;
        let audit = audit_of_check(&strict.keys, expose(&forever));
        assert!(
            audit.contains(
                r#"detail="API key never expires, and non-expiring keys are not allowed""#
            ),
            "{audit}"
        );
        assert_no_key_in(&audit, expose(&forever));
    }
}

/// Issue #16 item 7: a refused key that parsed names its id in the audit event (so use of a
/// revoked, leaked key can be found), never its secret; a malformed key names no id.
#[tokio::test]
async fn a_refused_key_names_its_id_in_the_audit_event_and_never_its_secret() {
    let app = App::default().await;
    let revoked = app.issue(DAY).await;
    app.keys.revoke(revoked.id()).await.expect("revoked");
    let live = app.issue(DAY).await;
    let forged = other_secret_valid_checksum(expose(&live));
    for (key, id, reason) in [
        (expose(&revoked), revoked.id(), "API key revoked"),
        (forged.as_str(), live.id(), "wrong API key secret"),
    ] {
        let audit = audit_of_check(&app.keys, key);
        assert!(
            audit.contains(&format!("attempted_credential_id=\"{id}\"")),
            "{audit}"
        );
        assert!(audit.contains(&format!("detail=\"{reason}\"")), "{audit}");
        assert_no_key_in(&audit, key);
    }
    // A key that does not parse (here: a typo caught by the checksum) names no id: the id
    // part of a malformed key is whatever the sender typed.
    let typo = changed_before_checksum(expose(&live));
    let audit = audit_of_check(&app.keys, &typo);
    assert!(!audit.contains("attempted_credential_id"), "{audit}");
    assert!(!audit.contains(live.id()), "{audit}");
    assert_no_key_in(&audit, &typo);
}

/// The audit output of one check of `key` by a Gate over `keys`, captured from `tracing`.
fn audit_of_check(keys: &ApiKeys, key: &str) -> String {
    let gate = Gate::builder()
        .authenticator(keys.authenticator())
        .build()
        .expect("valid gate");
    let (parts, ()) = http::Request::get("/whoami")
        .header("x-api-key", key)
        .body(())
        .expect("request")
        .into_parts();
    // A thread and runtime of its own, so the check (and nothing else) is captured.
    let (refused, output) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let logs = common::logs::capture();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let refused = runtime.block_on(gate.check(&RequestView::from_parts(&parts)));
                (refused, logs.text())
            })
            .join()
            .expect("check ran")
    });
    assert_eq!(
        refused.expect_err("refused").status(),
        StatusCode::UNAUTHORIZED
    );
    let audit: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("portcullis::audit"))
        .collect();
    assert_eq!(audit.len(), 1, "one audit event:\n{output}");
    output
}

/// Asserts neither the key nor its secret part is in `text`.
fn assert_no_key_in(text: &str, key: &str) {
    let secret = &key[key.rfind('_').expect("key has an id") + 1..];
    assert!(
        !text.contains(secret),
        "the key's secret in the logs:\n{text}"
    );
}
