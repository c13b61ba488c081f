//! API keys sent as the Basic password, the way Jira and GitHub users send personal tokens
//! (`curl -u alice:<token>`, issue #20): through a real HTTP server (axum behind `GateLayer`),
//! with real argon2 at a cheap cost, real stores and a lockout whose store counts every call.
//!
//! A key-shaped password is checked as that key only: the key's principal (scheme `api_key`) when
//! its owner is the user named, a 401 otherwise, never argon2 and never the lockout counters. The
//! recipe in `docs/api-tokens.md` is run as written, from its TOML and from its code.
#![cfg(all(
    feature = "axum",
    feature = "sqlite",
    feature = "basic",
    feature = "api-key"
))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use portcullis::api_key::KeyFormat;
use portcullis::basic::encode_basic;
use portcullis::client_ip::IpSet;
use portcullis::config::Config;
use portcullis::lockout::{FailureRecord, FailureStore, Lockout, MemoryFailureStore};
use portcullis::policy::IpRanges;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore, StoreError};
use portcullis::{
    ApiKeys, BasicAuthenticator, BoxFuture, Gate, Groups, NewApiKey, PeerAddr, PolicyExt,
    Principal, Public, Rejection, RequestView, Scheme, Schemes,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{BASIC_CHALLENGE, challenges, expect_problem};

const PEPPER: &str = "integration-test pepper, at least thirty-two bytes";
const OTHER_PEPPER: &str = "another instance's pepper, also thirty-two bytes";
const API_KEY_CHALLENGE: &str = r#"ApiKey realm="api", header="X-API-Key""#;
const ALICE_PASSWORD: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "tr0ub4dor&3";
const MONTH: Duration = Duration::from_secs(30 * 86_400);

/// A lockout store that counts every call made to it, so a test can show a request never
/// consulted nor counted the password lockout.
#[derive(Debug)]
struct Watched {
    inner: MemoryFailureStore,
    calls: Arc<AtomicUsize>,
}

impl FailureStore for Watched {
    fn failures<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<FailureRecord>, StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.failures(key)
    }
    fn record_failure<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
    ) -> BoxFuture<'a, Result<u32, StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.record_failure(key, window)
    }
    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.clear(key)
    }
    fn forget_one<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.forget_one(key)
    }
}

/// A server with alice (`staff`) and bob, Basic taking keys as passwords (unless `accept` is
/// false) and locking a user after 2 failures for 30 s, the API-key authenticator, and
/// `/rest/**` closed to Basic (`Schemes::deny([Scheme::BASIC])`).
struct App {
    base: String,
    client: reqwest::Client,
    basic: Arc<BasicAuthenticator>,
    keys: ApiKeys,
    gate: Gate,
    lockout_calls: Arc<AtomicUsize>,
}

impl App {
    async fn start(accept: bool) -> App {
        let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), PEPPER.into())
            .build()
            .expect("valid API key settings");
        let lockout_calls = Arc::new(AtomicUsize::new(0));
        let lockout = Lockout::new(Watched {
            inner: MemoryFailureStore::default(),
            calls: Arc::clone(&lockout_calls),
        })
        .user_threshold(2)
        .base_delay(Duration::from_secs(30));
        let mut builder = common::basic_builder(Arc::new(MemoryUserStore::new())).lockout(lockout);
        if accept {
            builder = builder.accept_api_keys(keys.clone());
        }
        let basic = Arc::new(builder.build().expect("valid Basic settings"));
        basic
            .add_user("alice", &ALICE_PASSWORD.into(), ["staff"])
            .await
            .expect("alice added");
        basic
            .add_user("bob", &BOB_PASSWORD.into(), ["staff"])
            .await
            .expect("bob added");
        let gate = Gate::builder()
            .shared_authenticator(basic.clone())
            .authenticator(keys.authenticator())
            .route("/rest/**", Schemes::deny([Scheme::BASIC]))
            .build()
            .expect("valid gate");
        let router = Router::new()
            .route("/me", get(me))
            .route("/rest/issues", get(me));
        let base = common::serve_router(router, gate.clone()).await;
        App {
            base,
            client: common::client(),
            basic,
            keys,
            gate,
            lockout_calls,
        }
    }

    /// A key for `owner`, valid for a month: the whole key.
    async fn token(&self, owner: &str) -> (String, String) {
        let issued = self
            .keys
            .create(
                NewApiKey::new(owner)
                    .with_groups(["scripts"])
                    .with_expires_in(MONTH),
            )
            .await
            .expect("key created");
        (
            issued.key().expose_secret().to_owned(),
            issued.id().to_owned(),
        )
    }

    async fn get(&self, path: &str, header: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send().await.expect("request sent")
    }

    async fn basic(&self, path: &str, user: &str, password: &str) -> reqwest::Response {
        let header = encode_basic(user, password);
        self.get(path, Some(("authorization", &header))).await
    }

    fn hashes(&self) -> u64 {
        self.basic.hashing_pool().metrics().completed
    }

    fn lockout_calls(&self) -> usize {
        self.lockout_calls.load(Ordering::SeqCst)
    }
}

async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "subject": principal.subject(),
        "scheme": principal.scheme().as_str(),
        "credential_id": principal.credential_id(),
        "groups": principal.groups(),
    }))
}

/// Asserts a 401 carrying the challenges of both schemes.
async fn expect_401(response: reqwest::Response) {
    let (headers, _) = expect_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(challenges(&headers), [BASIC_CHALLENGE, API_KEY_CHALLENGE]);
}

/// A key with a valid shape and checksum whose id no store holds.
fn unknown_key() -> String {
    KeyFormat::default()
        .generate()
        .key()
        .expose_secret()
        .to_owned()
}

/// Asks `gate` directly about `GET path` from `ip` with one header.
async fn check(
    gate: &Gate,
    path: &str,
    ip: &str,
    header: (&str, &str),
) -> Result<Option<Principal>, Rejection> {
    let mut request = http::Request::get(path)
        .header(header.0, header.1)
        .body(())
        .expect("valid request");
    request
        .extensions_mut()
        .insert(PeerAddr(format!("{ip}:40000").parse().expect("address")));
    let (parts, ()) = request.into_parts();
    gate.check(&RequestView::from_parts(&parts)).await
}

#[tokio::test]
async fn a_token_as_the_password_of_its_owner_is_the_key_principal() {
    let app = App::start(true).await;
    let (token, id) = app.token("alice").await;
    let (hashes, calls) = (app.hashes(), app.lockout_calls());

    let response = app.basic("/me", "alice", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"subject": "alice", "scheme": "api_key", "credential_id": id, "groups": ["scripts"]})
    );
    assert_eq!(app.hashes(), hashes, "no argon2 for a key");
    assert_eq!(app.lockout_calls(), calls, "no lockout for a key");

    // The same principal as the key sent in its own header.
    let header = app.get("/me", Some(("x-api-key", &token))).await;
    assert_eq!(header.json::<Value>().await.unwrap(), body);
}

#[tokio::test]
async fn a_token_as_the_password_of_another_user_gets_401_with_challenges() {
    let app = App::start(true).await;
    let (token, id) = app.token("alice").await;
    let (hashes, calls) = (app.hashes(), app.lockout_calls());

    expect_401(app.basic("/me", "bob", &token).await).await;
    // A name alice's key does not own, known or not, gets the same answer.
    expect_401(app.basic("/me", "mallory", &token).await).await;
    assert_eq!(app.hashes(), hashes);
    assert_eq!(app.lockout_calls(), calls);

    let rejection = check(
        &app.gate,
        "/me",
        "192.0.2.1",
        ("authorization", &encode_basic("bob", &token)),
    )
    .await
    .expect_err("bob does not own alice's key");
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rejection.scheme(), Some(Scheme::API_KEY));
    assert_eq!(rejection.attempted_credential_id(), Some(id.as_str()));
    assert_eq!(rejection.attempted_subject(), Some("bob"));
}

#[tokio::test]
async fn a_wrong_key_shaped_password_costs_no_argon2_and_no_lockout() {
    let app = App::start(true).await;
    app.token("alice").await;
    // Same shape, another pepper: the id is found, the secret does not match.
    let elsewhere = ApiKeys::builder(Arc::clone(app.keys.store()), OTHER_PEPPER.into())
        .build()
        .unwrap()
        .create(NewApiKey::new("alice").with_expires_in(MONTH))
        .await
        .unwrap();
    let wrong_secret = elsewhere.key().expose_secret().to_owned();
    let unknown = unknown_key();

    let (hashes, calls) = (app.hashes(), app.lockout_calls());
    for (key, reason) in [
        (&unknown, "unknown API key id"),
        (&wrong_secret, "wrong API key secret"),
    ] {
        // Far past the user threshold of 2.
        for _ in 0..5 {
            expect_401(app.basic("/me", "alice", key).await).await;
        }
        let rejection = check(
            &app.gate,
            "/me",
            "192.0.2.1",
            ("authorization", &encode_basic("alice", key)),
        )
        .await
        .expect_err("a bad key");
        assert_eq!(rejection.detail(), reason);
        assert_eq!(rejection.scheme(), Some(Scheme::API_KEY));
    }
    assert_eq!(app.hashes(), hashes, "no argon2 ran");
    assert_eq!(
        app.lockout_calls(),
        calls,
        "the lockout was neither consulted nor counted"
    );

    // Twelve bad tokens later, alice's password is not locked out.
    let response = app.basic("/me", "alice", ALICE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.hashes(), hashes + 1);
}

#[tokio::test]
async fn a_locked_out_user_s_token_still_works() {
    let app = App::start(true).await;
    let (token, _) = app.token("alice").await;
    for _ in 0..2 {
        expect_401(app.basic("/me", "alice", "a wrong guess").await).await;
    }
    let locked = app.basic("/me", "alice", ALICE_PASSWORD).await;
    expect_problem(locked, StatusCode::TOO_MANY_REQUESTS).await;

    let calls = app.lockout_calls();
    let response = app.basic("/me", "alice", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scheme"], "api_key");
    assert_eq!(app.lockout_calls(), calls);
    // And the password is still locked: the token cleared nothing.
    let locked = app.basic("/me", "alice", ALICE_PASSWORD).await;
    expect_problem(locked, StatusCode::TOO_MANY_REQUESTS).await;
}

/// A key as the password passes the checks a key in `X-API-Key` passes, and only those: a revoked
/// key is refused, and a disabled user's key keeps working (the user record is not read).
#[tokio::test]
async fn a_token_as_the_password_is_checked_like_a_key_in_a_header() {
    let app = App::start(true).await;
    let (token, id) = app.token("alice").await;

    app.basic
        .store()
        .set_disabled("alice", true)
        .await
        .expect("alice disabled");
    expect_401(app.basic("/me", "alice", ALICE_PASSWORD).await).await;
    let response = app.basic("/me", "alice", &token).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "revoke the keys to stop them"
    );

    app.keys.revoke(&id).await.expect("revoked");
    expect_401(app.basic("/me", "alice", &token).await).await;
    let rejection = check(
        &app.gate,
        "/me",
        "192.0.2.1",
        ("authorization", &encode_basic("alice", &token)),
    )
    .await
    .expect_err("a revoked key");
    assert_eq!(rejection.detail(), "API key revoked");
    assert_eq!(rejection.attempted_credential_id(), Some(id.as_str()));
}

#[tokio::test]
async fn schemes_deny_basic_admits_the_token_and_refuses_the_password() {
    let app = App::start(true).await;
    let (token, _) = app.token("alice").await;

    let password = app.basic("/rest/issues", "alice", ALICE_PASSWORD).await;
    expect_problem(password, StatusCode::FORBIDDEN).await;
    let bearer = format!("Bearer {token}");
    for response in [
        app.basic("/rest/issues", "alice", &token).await,
        app.get("/rest/issues", Some(("x-api-key", &token))).await,
        app.get("/rest/issues", Some(("authorization", &bearer)))
            .await,
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["scheme"], "api_key");
    }
    // The password still works where Basic is allowed.
    let web = app.basic("/me", "alice", ALICE_PASSWORD).await;
    assert_eq!(web.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_that_is_not_key_shaped_is_checked_with_argon2() {
    let app = App::start(true).await;
    let (token, _) = app.token("alice").await;

    let hashes = app.hashes();
    let response = app.basic("/me", "alice", ALICE_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["scheme"], "basic");
    assert_eq!(app.hashes(), hashes + 1);

    // A key's prefix and length but a bad checksum is not key-shaped: a (wrong) password.
    let last = token.chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    let calls = app.lockout_calls();
    let response = app.basic("/me", "alice", &typo).await;
    expect_401(response).await;
    assert_eq!(app.hashes(), hashes + 2, "checked with argon2");
    assert!(app.lockout_calls() > calls, "counted by the lockout");
    let rejection = check(
        &app.gate,
        "/me",
        "192.0.2.1",
        ("authorization", &encode_basic("bob", &typo)),
    )
    .await
    .expect_err("a wrong password");
    assert_eq!(rejection.scheme(), Some(Scheme::BASIC));
    assert_eq!(rejection.detail(), "wrong password");

    // Without `accept_api_keys`, a key is a password like any other, as before.
    let off = App::start(false).await;
    let (token, _) = off.token("alice").await;
    let hashes = off.hashes();
    expect_401(off.basic("/me", "alice", &token).await).await;
    assert_eq!(off.hashes(), hashes + 1);
}

#[tokio::test]
async fn refused_and_accepted_tokens_are_audited_as_api_keys() {
    // Single-threaded runtime: the Gate runs on this thread, where the logs are captured.
    let logs = common::logs::capture();
    let app = App::start(true).await;
    let (token, id) = app.token("alice").await;
    let unknown = unknown_key();
    let unknown_id = unknown.split('_').nth(1).unwrap().to_owned();
    logs.clear();

    for password in [&token, &unknown] {
        let _ = check(
            &app.gate,
            "/me",
            "192.0.2.7",
            ("authorization", &encode_basic("alice", password)),
        )
        .await;
    }
    let output = logs.text();
    let audit = common::logs::audit_lines(&output);
    assert_eq!(audit.len(), 2, "{output}");
    let credential = format!(r#"credential_id="{id}""#);
    let attempted = format!(r#"attempted_credential_id="{unknown_id}""#);
    common::logs::assert_fields(
        audit[0],
        &[
            r#"outcome="allow""#,
            r#"scheme="api_key""#,
            r#"subject="alice""#,
            credential.as_str(),
        ],
    );
    common::logs::assert_fields(
        audit[1],
        &[
            r#"outcome="reject""#,
            "status=401",
            r#"scheme="api_key""#,
            r#"attempted_subject="alice""#,
            attempted.as_str(),
            r#"detail="unknown API key id""#,
        ],
    );
    for secret in [&token, &unknown] {
        let secret_part = &secret[secret.len() - 49..];
        assert!(
            !output.contains(secret_part),
            "a secret in the logs:\n{output}"
        );
    }
}

#[test]
fn accept_api_keys_in_toml_needs_api_keys_and_is_located() {
    let error = Config::from_str("[basic]\nrealm = \"x\"\naccept_api_keys = true\n")
        .expect_err("no [api_keys]");
    assert_eq!(error.key(), Some("basic.accept_api_keys"), "{error}");
    let location = error.location().expect("located");
    assert_eq!((location.line, location.column), (3, 19), "{error}");
    assert!(error.message().contains("[api_keys]"), "{error}");

    // `false` needs nothing.
    Config::from_str("[basic]\naccept_api_keys = false\n").expect("off is fine");
}

/// The recipe's configuration, as `docs/api-tokens.md` shows it, with a SQLite store in a
/// directory of its own and a cheap argon2 cost added.
async fn recipe_services() -> (portcullis::config::Services, std::path::PathBuf) {
    let page = include_str!("../docs/api-tokens.md");
    let toml = page
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("the page has a TOML block");
    let dir = std::env::temp_dir().join(format!(
        "portcullis-api-tokens-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pepper.txt"), PEPPER).unwrap();
    let cheap =
        "\n[basic.hashing]\nmemory_kib = 64\niterations = 1\ndangerous_weak_hashing = true\n";
    std::fs::write(dir.join("portcullis.toml"), format!("{toml}{cheap}")).unwrap();
    let services = Config::from_file(dir.join("portcullis.toml"))
        .expect("the recipe's configuration is valid")
        .build_services()
        .await
        .expect("it builds");
    (services, dir)
}

#[tokio::test]
async fn the_recipe_configuration_works_as_documented() {
    let (services, dir) = recipe_services().await;
    assert!(dir.join("portcullis.db").exists(), "a real SQLite store");
    let basic = services.basic.expect("[basic]");
    let keys = services.api_keys.expect("[api_keys]");
    let gate = services.gate;
    basic
        .add_user("alice", &ALICE_PASSWORD.into(), ["staff"])
        .await
        .unwrap();
    basic
        .add_user("ada", &"ada's own password".into(), ["staff"])
        .await
        .unwrap();
    let alice = keys
        .create(NewApiKey::new("alice").with_expires_in(MONTH))
        .await
        .unwrap();
    let alice = alice.key().expose_secret();
    let ada = keys
        .create(
            NewApiKey::new("ada")
                .with_groups(["tracker-admins"])
                .with_expires_in(MONTH),
        )
        .await
        .unwrap();
    let ada = ada.key().expose_secret();
    let office = "10.1.2.3";
    let outside = "203.0.113.5";
    let bearer = format!("Bearer {alice}");
    let as_password = encode_basic("alice", alice);
    let password = encode_basic("alice", ALICE_PASSWORD);
    let status = |result: Result<Option<Principal>, Rejection>| match result {
        Ok(_) => StatusCode::OK,
        Err(rejection) => rejection.status(),
    };

    // Tokens three ways on the REST API, from the office: all the key's principal.
    for header in [
        ("authorization", bearer.as_str()),
        ("x-api-key", alice),
        ("authorization", as_password.as_str()),
    ] {
        let principal = check(&gate, "/rest/api/issues", office, header)
            .await
            .expect("admitted")
            .expect("a principal");
        assert_eq!(principal.scheme(), Scheme::API_KEY);
        assert_eq!(principal.subject(), "alice");
    }
    // A password on the REST API: 403. In the web UI, from anywhere: allowed.
    let refused = check(
        &gate,
        "/rest/api/issues",
        office,
        ("authorization", &password),
    );
    assert_eq!(status(refused.await), StatusCode::FORBIDDEN);
    let web = check(&gate, "/browse/T-1", outside, ("authorization", &password));
    assert_eq!(status(web.await), StatusCode::OK);
    // A token from outside the ranges: 403; in the web UI: allowed.
    let far = check(&gate, "/rest/api/issues", outside, ("x-api-key", alice));
    assert_eq!(status(far.await), StatusCode::FORBIDDEN);
    let web = check(
        &gate,
        "/browse/T-1",
        outside,
        ("authorization", &as_password),
    );
    assert_eq!(status(web.await), StatusCode::OK);
    // The admin API: only a token made for the admin group.
    let not_admin = check(&gate, "/rest/api/admin/users", office, ("x-api-key", alice));
    assert_eq!(status(not_admin.await), StatusCode::FORBIDDEN);
    let ada_as_password = encode_basic("ada", ada);
    let admin = check(
        &gate,
        "/rest/api/admin/users",
        office,
        ("authorization", &ada_as_password),
    );
    assert_eq!(status(admin.await), StatusCode::OK);
    // alice's token as someone else's password: 401.
    let stolen = encode_basic("ada", alice);
    let stolen = check(&gate, "/browse/T-1", office, ("authorization", &stolen));
    assert_eq!(status(stolen.await), StatusCode::UNAUTHORIZED);
    // /status is public.
    let anonymous = check(&gate, "/status", outside, ("accept", "*/*"));
    assert_eq!(status(anonymous.await), StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_recipe_in_code_works_as_documented() {
    // As `docs/api-tokens.md` writes it ("In code"), with a cheap argon2 cost added.
    let pepper = PEPPER.into();
    let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), pepper)
        .max_lifetime(Duration::from_secs(365 * 86_400))
        .build()
        .unwrap();
    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .realm("tracker")
            .hashing(common::cheap_hashing())
            .accept_api_keys(keys.clone()) // `curl -u alice:<token>`
            .build()
            .unwrap(),
    );
    let tokens_from_the_office = || {
        Schemes::deny([Scheme::BASIC]).and(
            IpRanges::new()
                .allow(IpSet::parse(["10.0.0.0/8", "192.0.2.0/24"]).expect("valid CIDRs")),
        )
    };
    let gate = Gate::builder()
        .shared_authenticator(basic.clone())
        .authenticator(keys.authenticator()) // `X-API-Key: <token>` and `Authorization: Bearer <token>`
        .route("/status", Public)
        .route(
            "/rest/api/admin/**",
            tokens_from_the_office().and(Groups::any_of(["tracker-admins"])),
        )
        .route("/rest/**", tokens_from_the_office())
        .build()
        .unwrap(); // the web UI: any authenticated caller

    basic
        .add_user("alice", &ALICE_PASSWORD.into(), ["staff"])
        .await
        .unwrap();
    let token = keys
        .create(NewApiKey::new("alice").with_expires_in(Duration::from_secs(90 * 86_400)))
        .await
        .unwrap();
    let token = token.key().expose_secret();

    let as_password = encode_basic("alice", token);
    let password = encode_basic("alice", ALICE_PASSWORD);
    let rest = "/rest/api/issues";
    let principal = check(&gate, rest, "192.0.2.9", ("authorization", &as_password))
        .await
        .expect("a token from the office")
        .expect("a principal");
    assert_eq!(principal.scheme(), Scheme::API_KEY);
    let refused = check(&gate, rest, "192.0.2.9", ("authorization", &password))
        .await
        .expect_err("a password on the REST API");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let far = check(&gate, rest, "203.0.113.5", ("x-api-key", token))
        .await
        .expect_err("outside the ranges");
    assert_eq!(far.status(), StatusCode::FORBIDDEN);
    let admin = check(&gate, "/rest/api/admin/x", "10.0.0.1", ("x-api-key", token))
        .await
        .expect_err("not a token for admins");
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    let web = check(
        &gate,
        "/browse/T-1",
        "203.0.113.5",
        ("authorization", &password),
    )
    .await
    .expect("the web UI takes passwords");
    assert_eq!(web.expect("a principal").scheme(), Scheme::BASIC);
}
