//! HTTP Basic through a real HTTP server: an axum app behind `GateLayer` on 127.0.0.1, called
//! with reqwest.
//!
//! Seen from the client: challenges, malformed credentials, groups, lockout, the bounded hashing
//! pool, hash upgrades and the verified cache. The audit trail is checked against the Gate
//! directly, since the server's task does not run under the test's tracing subscriber.
#![cfg(all(feature = "axum", feature = "basic"))]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portcullis::basic::{HashingConfig, HashingPool, encode_basic};
use portcullis::lockout::Lockout;
use portcullis::reject::Challenge;
use portcullis::reject::add_standard_headers;
use portcullis::store::{PasswordHash, StoreError, StoreErrorKind, UserRecord, UserStore};
use portcullis::{
    BasicAuthenticator, BoxFuture, Gate, Groups, PeerAddr, Principal, Rejection, RequestView,
};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use common::{BASIC_CHALLENGE, TestApp, challenges, expect_problem, internal_reason};

const ALICE_PASSWORD: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "tr0ub4dor&3";

/// A server with the default (cheap) authenticator, alice in `admin` and bob in `staff`.
async fn app_with_users() -> TestApp {
    let app = TestApp::start(|b| b).await;
    app.add_user("alice", ALICE_PASSWORD, ["admin", "staff"])
        .await;
    app.add_user("bob", BOB_PASSWORD, ["staff"]).await;
    app
}

fn alice() -> String {
    encode_basic("alice", ALICE_PASSWORD)
}

fn basic_of_bytes(raw: &[u8]) -> String {
    format!("Basic {}", BASE64.encode(raw))
}

/// Asserts a 401 carrying exactly the Basic challenge; returns the body text.
async fn expect_basic_401(response: reqwest::Response) -> String {
    let (headers, body) = expect_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(challenges(&headers), [BASIC_CHALLENGE]);
    body
}

// 1
#[tokio::test]
async fn no_credentials_get_401_with_one_basic_challenge() {
    let app = app_with_users().await;
    let response = app.get("/me", None).await;
    let body = expect_basic_401(response).await;
    let reason = internal_reason(&app.gate, "/me", None).await;
    assert!(!reason.is_empty());
    assert!(!body.contains(&reason), "body leaks {reason:?}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["title"], "Unauthorized");
}

// 2
#[tokio::test]
async fn public_route_needs_no_credentials() {
    let app = app_with_users().await;
    let response = app.get("/public", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(response.text().await.unwrap(), "public");
}

// 3
#[tokio::test]
async fn right_password_reaches_the_handler_with_the_principal() {
    let app = app_with_users().await;
    let response = app.get("/me", Some(&alice())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"subject": "alice", "scheme": "basic", "groups": ["admin", "staff"]})
    );
}

// 4
#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = app_with_users().await;
    let wrong = app
        .get("/me", Some(&encode_basic("alice", "not her password")))
        .await;
    let wrong = expect_basic_401(wrong).await;
    let unknown = app
        .get("/me", Some(&encode_basic("mallory", ALICE_PASSWORD)))
        .await;
    let unknown = expect_basic_401(unknown).await;
    assert_eq!(wrong, unknown, "a client cannot tell which was wrong");
    let body: Value = serde_json::from_str(&wrong).unwrap();
    assert_eq!(body["detail"], "The credentials are not valid.");
}

// 5
#[tokio::test]
async fn malformed_credentials_get_400() {
    let app = app_with_users().await;
    let long_password = format!("alice:{}", "x".repeat(2000));
    let cases: Vec<(&str, HeaderValue)> = vec![
        ("scheme only", HeaderValue::from_static("Basic")),
        (
            "not base64",
            HeaderValue::from_static("Basic !!!not-base64!!!"),
        ),
        (
            "no colon",
            basic_of_bytes(b"alicewithoutcolon").parse().unwrap(),
        ),
        (
            "invalid UTF-8",
            basic_of_bytes(b"al\xffice:pw").parse().unwrap(),
        ),
        (
            "control character in user",
            basic_of_bytes(b"ali\x01ce:pw").parse().unwrap(),
        ),
        (
            "control character in password",
            basic_of_bytes(b"alice:p\x7fw").parse().unwrap(),
        ),
        (
            "non-ASCII header bytes",
            HeaderValue::from_bytes(b"Basic \xc3\xa9t\xc3\xa9").unwrap(),
        ),
        (
            "oversized header",
            format!("Basic {}", "A".repeat(5000)).parse().unwrap(),
        ),
        (
            "oversized password",
            basic_of_bytes(long_password.as_bytes()).parse().unwrap(),
        ),
    ];
    for (case, value) in cases {
        let response = app
            .client
            .get(format!("{}/me", app.base))
            .header(AUTHORIZATION, value)
            .send()
            .await
            .unwrap();
        let (headers, _) = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            challenges(&headers).is_empty(),
            "{case}: no challenge on 400"
        );
    }

    // Two Authorization headers, even both valid, are ambiguous: never "pick one".
    let response = app
        .client
        .get(format!("{}/me", app.base))
        .header(AUTHORIZATION, alice())
        .header(AUTHORIZATION, encode_basic("bob", BOB_PASSWORD))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;

    // None of these was a failed guess: alice is not locked out.
    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
}

// 6
#[tokio::test]
async fn scheme_name_is_case_insensitive() {
    let app = app_with_users().await;
    let token = BASE64.encode(format!("alice:{ALICE_PASSWORD}"));
    for scheme in ["bAsIc", "basic", "BASIC"] {
        let response = app.get("/me", Some(&format!("{scheme} {token}"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["subject"], "alice");
    }
}

// 7
#[tokio::test]
async fn admin_routes_need_the_admin_group() {
    let app = app_with_users().await;
    let bob = encode_basic("bob", BOB_PASSWORD);

    let response = app.get("/admin/x", Some(&bob)).await;
    let (headers, body) = expect_problem(response, StatusCode::FORBIDDEN).await;
    assert!(challenges(&headers).is_empty(), "403 carries no challenge");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["title"], "Forbidden");

    let response = app.get("/admin/x", Some(&alice())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "admin");

    expect_basic_401(app.get("/admin/x", None).await).await;
    expect_basic_401(app.get("/admin", None).await).await;
}

// 8
#[tokio::test]
async fn locked_out_user_gets_429_without_hashing() {
    let app = TestApp::start(|b| {
        b.lockout(
            Lockout::default()
                .user_threshold(3)
                .base_delay(Duration::from_secs(30)),
        )
    })
    .await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;

    for _ in 0..3 {
        let response = app.get("/me", Some(&encode_basic("alice", "guess"))).await;
        expect_basic_401(response).await;
    }

    let before = app.hashes_completed();
    let response = app.get("/me", Some(&alice())).await;
    let after = app.hashes_completed();
    let (headers, _) = expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    let retry_after: u64 = headers
        .get(RETRY_AFTER)
        .expect("Retry-After on 429")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=30).contains(&retry_after), "Retry-After {retry_after}");
    assert!(challenges(&headers).is_empty(), "429 carries no challenge");
    assert_eq!(before, after, "a locked-out request never reaches argon2");
}

// 9
#[tokio::test]
async fn failures_across_users_lock_the_client_ip() {
    let app = TestApp::start(|b| {
        b.lockout(
            Lockout::default()
                .ip_threshold(4)
                .base_delay(Duration::from_secs(30)),
        )
    })
    .await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;

    for user in ["u1", "u2", "u3", "u4"] {
        let response = app.get("/me", Some(&encode_basic(user, "guess"))).await;
        expect_basic_401(response).await;
    }

    // A fifth user, never tried before, with the right password: the IP is locked.
    let before = app.hashes_completed();
    let response = app.get("/me", Some(&alice())).await;
    let (headers, _) = expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(headers.contains_key(RETRY_AFTER));
    assert_eq!(app.hashes_completed(), before);
}

// 10
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_hashing_pool_gives_503() {
    let app = TestApp::start(|b| {
        b.hashing(
            HashingConfig::default()
                .with_memory_kib(19_456)
                .with_iterations(2)
                .with_max_concurrent(1)
                .with_max_wait(Duration::from_millis(5)),
        )
    })
    .await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;
    // Twenty users sharing alice's (full-cost) hash: checks for one user wait their turn, so the
    // pool is saturated by many users at once, as in a real flood.
    let hash = app
        .store
        .find_user("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    for i in 0..20 {
        let user = UserRecord::new(format!("user{i}"), hash.clone());
        app.store.create_user(user).await.unwrap();
    }
    let busy_before = app.basic.hashing_pool().metrics().busy;

    let mut requests = JoinSet::new();
    for i in 0..20 {
        let request = app.client.get(format!("{}/me", app.base)).header(
            AUTHORIZATION,
            encode_basic(&format!("user{i}"), ALICE_PASSWORD),
        );
        requests.spawn(async move { request.send().await.expect("request sent") });
    }
    let (mut ok, mut unavailable) = (0, 0);
    while let Some(response) = requests.join_next().await {
        let response = response.unwrap();
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                unavailable += 1;
                let (headers, _) = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
                assert_eq!(headers[RETRY_AFTER], "1");
                assert!(challenges(&headers).is_empty(), "an outage is not a 401");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1, "someone got through ({ok} ok, {unavailable} busy)");
    assert!(
        unavailable >= 1,
        "someone was refused ({ok} ok, {unavailable} busy)"
    );
    let metrics = app.basic.hashing_pool().metrics();
    assert!(metrics.busy >= 1);
    assert_eq!(metrics.busy - busy_before, unavailable);
}

// 11
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_concurrent_verifications_run_at_once() {
    const PERMITS: usize = 3;
    const REQUESTS: usize = 200;
    let app = TestApp::start(|b| {
        b.hashing(
            HashingConfig::default()
                .with_memory_kib(2048)
                .with_iterations(1)
                .with_max_concurrent(PERMITS)
                .with_max_wait(Duration::from_secs(120)),
        )
        .dangerous_disable_lockout()
    })
    .await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;
    // 200 distinct users sharing alice's hash: checks for one user take turns, so only distinct
    // names can put more than one verification in flight and press on the pool's bound.
    let hash = app
        .store
        .find_user("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    for i in 0..REQUESTS {
        let user = UserRecord::new(format!("user{i}"), hash.clone());
        app.store.create_user(user).await.unwrap();
    }
    let before = app.hashes_completed();

    let mut requests = JoinSet::new();
    for i in 0..REQUESTS {
        let right = i % 2 == 0;
        let password = if right { ALICE_PASSWORD } else { "guess" };
        let request = app
            .client
            .get(format!("{}/me", app.base))
            .header(AUTHORIZATION, encode_basic(&format!("user{i}"), password));
        requests
            .spawn(async move { (right, request.send().await.expect("request sent").status()) });
    }
    while let Some(result) = requests.join_next().await {
        let (right, status) = result.unwrap();
        let expected = if right {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected);
    }

    let metrics = app.basic.hashing_pool().metrics();
    // Reached (the flood did press on the bound) and never exceeded.
    assert_eq!(metrics.peak_in_flight, PERMITS, "peak in flight");
    assert_eq!(metrics.completed - before, REQUESTS as u64);
    assert_eq!(metrics.in_flight, 0);
    assert_eq!(metrics.busy, 0);
}

// 12
#[tokio::test]
async fn weak_hash_is_upgraded_on_successful_login_only() {
    let app = TestApp::start(|b| {
        b.hashing(
            HashingConfig::default()
                .with_memory_kib(256)
                .with_iterations(2),
        )
    })
    .await;
    let weak_pool = HashingPool::new(common::cheap_hashing()).unwrap();
    let weak = weak_pool.hash(&ALICE_PASSWORD.into()).await.unwrap();
    assert!(weak.expose_phc().contains("m=64,t=1"));
    app.store
        .create_user(UserRecord::new("alice", weak.clone()).with_groups(["admin"]))
        .await
        .unwrap();
    let store = &app.store;
    let stored = || async move {
        store
            .find_user("alice")
            .await
            .unwrap()
            .expect("alice exists")
            .password_hash
    };

    expect_basic_401(app.get("/me", Some(&encode_basic("alice", "guess"))).await).await;
    assert!(
        stored().await.ct_eq(&weak),
        "a wrong password changes nothing"
    );

    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
    let upgraded = stored().await;
    assert!(!upgraded.ct_eq(&weak));
    assert!(
        upgraded.expose_phc().contains("m=256,t=2"),
        "{}",
        upgraded.expose_phc()
    );

    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
    assert!(stored().await.ct_eq(&upgraded), "no second upgrade");

    expect_basic_401(app.get("/me", Some(&encode_basic("alice", "guess"))).await).await;
    assert!(stored().await.ct_eq(&upgraded));
}

// 13
#[tokio::test]
async fn verified_cache_skips_argon2_until_the_record_changes() {
    let app = TestApp::start(|b| b.verified_cache(Duration::from_secs(60), 1000)).await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;

    let start = app.hashes_completed();
    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.hashes_completed(), start + 1, "first login verifies");
    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.hashes_completed(), start + 1, "second login is cached");

    // A new password: the old one stops working at once, cached or not.
    let new_password = "a brand new passphrase";
    let new_hash = app
        .basic
        .hashing_pool()
        .hash(&new_password.into())
        .await
        .unwrap();
    app.store
        .set_password_hash("alice", new_hash)
        .await
        .unwrap();
    expect_basic_401(app.get("/me", Some(&alice())).await).await;
    let new = encode_basic("alice", new_password);
    assert_eq!(app.get("/me", Some(&new)).await.status(), StatusCode::OK);
    let cached = app.hashes_completed();
    assert_eq!(app.get("/me", Some(&new)).await.status(), StatusCode::OK);
    assert_eq!(app.hashes_completed(), cached, "the new password is cached");

    // Disabled: refused even with the right, cached password.
    app.store.set_disabled("alice", true).await.unwrap();
    expect_basic_401(app.get("/me", Some(&new)).await).await;
}

/// `gate`'s decision on a GET of `path` from 192.0.2.10 with the `Authorization` value given.
async fn check_from_peer(
    gate: &Gate,
    path: &str,
    authorization: String,
) -> Result<Option<Principal>, Rejection> {
    let mut request = http::Request::get(path)
        .header(http::header::AUTHORIZATION, authorization)
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(PeerAddr("192.0.2.10:5555".parse().unwrap()));
    let (parts, ()) = request.into_parts();
    gate.check(&RequestView::from_parts(&parts)).await
}

// 14
#[tokio::test]
async fn audit_events_carry_the_decision_but_never_the_password() {
    // This test's runtime is single-threaded: the Gate runs on this thread.
    let logs = common::logs::capture();

    let store = Arc::new(portcullis::store::MemoryUserStore::new());
    let basic = Arc::new(common::basic_builder(store).build().unwrap());
    basic
        .add_user("alice", &ALICE_PASSWORD.into(), ["admin"])
        .await
        .unwrap();
    basic
        .add_user("bob", &BOB_PASSWORD.into(), ["staff"])
        .await
        .unwrap();
    let gate = common::gate_with(basic);
    let wrong_password = "alice's wrong guess 42";

    let check = |path, authorization| check_from_peer(&gate, path, authorization);
    let allowed = check("/me", alice()).await.unwrap().unwrap();
    assert_eq!(allowed.subject(), "alice");
    let denied = check("/admin/x", encode_basic("bob", BOB_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let rejected = check("/me", encode_basic("alice", wrong_password))
        .await
        .unwrap_err();
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);

    let output = logs.text();
    let audit = common::logs::audit_lines(&output);
    assert_eq!(audit.len(), 3, "one event per decision:\n{output}");
    common::logs::assert_fields(
        audit[0],
        &[
            r#"outcome="allow""#,
            r#"subject="alice""#,
            r#"scheme="basic""#,
            "client_ip=192.0.2.10",
        ],
    );
    common::logs::assert_fields(
        audit[1],
        &[
            r#"outcome="deny""#,
            r#"subject="bob""#,
            "status=403",
            "reason=",
            "rule=",
        ],
    );
    common::logs::assert_fields(
        audit[2],
        &[
            r#"outcome="reject""#,
            "status=401",
            r#"reason="credentials_invalid""#,
            r#"detail="wrong password""#,
        ],
    );

    for secret in [ALICE_PASSWORD, BOB_PASSWORD, wrong_password] {
        assert!(
            !output.contains(secret),
            "{secret:?} in the logs:\n{output}"
        );
    }
    for header in [
        alice(),
        encode_basic("bob", BOB_PASSWORD),
        encode_basic("alice", wrong_password),
    ] {
        let token = header.trim_start_matches("Basic ");
        assert!(
            !output.contains(token),
            "a credential in the logs:\n{output}"
        );
    }
}

// 15
#[tokio::test]
async fn a_store_outage_is_503_never_401_and_nothing_is_hashed() {
    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(UnavailableUserStore))
            .realm(common::REALM)
            .hashing(common::cheap_hashing())
            .build()
            .unwrap(),
    );
    let base = common::serve(common::gate_with(Arc::clone(&basic))).await;
    let client = common::client();
    let before = basic.hashing_pool().metrics().completed;
    for authorization in [alice(), encode_basic("mallory", "guess")] {
        let response = client
            .get(format!("{base}/me"))
            .header(AUTHORIZATION, authorization)
            .send()
            .await
            .unwrap();
        let (headers, body) = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(
            challenges(&headers).is_empty(),
            "an outage is not a 401: {headers:?}"
        );
        assert!(!body.contains("db host"), "{body}");
    }
    assert_eq!(
        basic.hashing_pool().metrics().completed,
        before,
        "nothing hashed while the store is down"
    );
}

/// A user store that cannot be reached.
#[derive(Debug)]
struct UnavailableUserStore;

impl UnavailableUserStore {
    fn down<T: Send + 'static>() -> BoxFuture<'static, Result<T, StoreError>> {
        Box::pin(async {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "db host 10.0.0.5 unreachable",
            ))
        })
    }
}

impl UserStore for UnavailableUserStore {
    fn find_user<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        Self::down()
    }
    fn create_user(&self, _: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Self::down()
    }
    fn set_password_hash<'a>(
        &'a self,
        _: &'a str,
        _: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Self::down()
    }
    fn replace_password_hash<'a>(
        &'a self,
        _: &'a str,
        _: &'a PasswordHash,
        _: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Self::down()
    }
    fn set_disabled<'a>(&'a self, _: &'a str, _: bool) -> BoxFuture<'a, Result<(), StoreError>> {
        Self::down()
    }
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        Self::down()
    }
}

// 16
#[tokio::test]
async fn a_replaced_responder_keeps_the_status_and_challenges() {
    let store = Arc::new(portcullis::store::MemoryUserStore::new());
    let basic = Arc::new(common::basic_builder(store).build().unwrap());
    basic
        .add_user("bob", &BOB_PASSWORD.into(), ["staff"])
        .await
        .unwrap();
    let gate = Gate::builder()
        .shared_authenticator(basic)
        .route("/admin/**", Groups::any_of(["admin"]))
        .responder(
            |rejection: &portcullis::reject::PublicRejection, challenges: &[Challenge]| {
                let mut response =
                    http::Response::new(format!("custom refusal {}", rejection.status().as_u16()));
                *response.status_mut() = rejection.status();
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                add_standard_headers(&mut response, rejection, challenges);
                response
            },
        )
        .build()
        .unwrap();
    let base = common::serve(gate).await;
    let client = common::client();
    let get = |path: &'static str, authorization: Option<String>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        async move { request.send().await.unwrap() }
    };

    for authorization in [None, Some(encode_basic("bob", "guess"))] {
        let response = get("/me", authorization).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenges(response.headers()), [BASIC_CHALLENGE]);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(response.text().await.unwrap(), "custom refusal 401");
    }
    let response = get("/admin/x", Some(encode_basic("bob", BOB_PASSWORD))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(challenges(response.headers()).is_empty());
    assert_eq!(response.text().await.unwrap(), "custom refusal 403");
    // Allowed requests never meet the responder.
    let response = get("/me", Some(encode_basic("bob", BOB_PASSWORD))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

// 17
#[tokio::test]
async fn handlers_can_take_the_principal_as_an_axum_extension() {
    async fn subject(Extension(principal): Extension<Principal>) -> String {
        format!("{} via {}", principal.subject(), principal.scheme())
    }
    let store = Arc::new(portcullis::store::MemoryUserStore::new());
    let basic = Arc::new(common::basic_builder(store).build().unwrap());
    basic
        .add_user("alice", &ALICE_PASSWORD.into(), ["admin"])
        .await
        .unwrap();
    let router = common::router().route("/extension", get(subject));
    let base = common::serve_router(router, common::gate_with(basic)).await;
    let client = common::client();

    let response = client
        .get(format!("{base}/extension"))
        .header(AUTHORIZATION, alice())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "alice via basic");
    // Without credentials the Gate answers, and the handler never runs.
    let response = client
        .get(format!("{base}/extension"))
        .send()
        .await
        .unwrap();
    expect_basic_401(response).await;
}

// Regressions for two lockout gaps found by these tests (both fixed).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn concurrent_guesses_are_bounded_by_the_lockout() {
    let app = TestApp::start(|b| {
        b.hashing(
            HashingConfig::default()
                .with_memory_kib(1024)
                .with_iterations(1)
                .with_max_concurrent(1)
                .with_max_wait(Duration::from_secs(60)),
        )
        .lockout(
            Lockout::default()
                .user_threshold(3)
                .base_delay(Duration::from_secs(30)),
        )
    })
    .await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;

    let mut requests = JoinSet::new();
    for i in 0..50 {
        let request = app
            .client
            .get(format!("{}/me", app.base))
            .header(AUTHORIZATION, encode_basic("alice", &format!("guess {i}")));
        requests.spawn(async move { request.send().await.expect("request sent").status() });
    }
    let mut verified = 0;
    while let Some(status) = requests.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => verified += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // Today all 50 guesses are checked against the hash.
    assert!(
        verified <= 3,
        "{verified} guesses checked with a threshold of 3"
    );
}

#[tokio::test]

async fn cached_login_clears_the_failure_counter() {
    let app = TestApp::start(|b| {
        b.verified_cache(Duration::from_secs(60), 100).lockout(
            Lockout::default()
                .user_threshold(3)
                .base_delay(Duration::from_secs(30)),
        )
    })
    .await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;
    let guess = encode_basic("alice", "guess");

    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
    expect_basic_401(app.get("/me", Some(&guess)).await).await;
    expect_basic_401(app.get("/me", Some(&guess)).await).await;
    // A success (from the cache) clears the counter, as an uncached one does...
    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
    expect_basic_401(app.get("/me", Some(&guess)).await).await;
    // ...so one more mistake does not lock alice out. Today this is 429.
    assert_eq!(
        app.get("/me", Some(&alice())).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_logins_of_one_user_take_turns_and_share_the_cache() {
    let app = TestApp::start(|b| b.verified_cache(Duration::from_secs(60), 100)).await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;
    let before = app.basic.hashing_pool().metrics().completed;
    let mut requests = JoinSet::new();
    for _ in 0..10 {
        let request = app
            .client
            .get(format!("{}/me", app.base))
            .header(AUTHORIZATION, alice());
        requests.spawn(async move { request.send().await.expect("request sent").status() });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(
            status.unwrap(),
            StatusCode::OK,
            "no 429 for a user's own parallel calls"
        );
    }
    let hashed = app.basic.hashing_pool().metrics().completed - before;
    assert_eq!(
        hashed, 1,
        "the first check fills the cache for the ones waiting their turn"
    );
}

// ---- issue #15: lockout per client, per account, and counted before hashing -----------------

/// Checks `authorization` on the test Gate as a request from `peer`.
async fn check_from(
    gate: &Gate,
    authorization: &str,
    peer: &str,
) -> Result<Option<Principal>, Rejection> {
    let (parts, ()) = http::Request::get("/me")
        .header(AUTHORIZATION, authorization)
        .body(())
        .expect("request")
        .into_parts();
    let peer: std::net::SocketAddr = peer.parse().expect("peer");
    gate.check(&RequestView::from_parts(&parts).with_peer(Some(peer)))
        .await
}

/// One host holding a /64 sent 50 guesses from 50 addresses and got 50 × 401: each address had
/// its own counter. It is one client now (`ipv6_prefix_len`, default 64).
#[tokio::test]
async fn an_ipv6_64_is_one_client_for_the_lockout() {
    let app =
        TestApp::start(|b| b.lockout(Lockout::default().base_delay(Duration::from_secs(30)))).await;
    let mut statuses = Vec::new();
    for i in 1..=50 {
        let guess = encode_basic(&format!("user{i}"), "guess");
        let peer = format!("[2001:db8:0:7::{i:x}]:443");
        let status = match check_from(&app.gate, &guess, &peer).await {
            Err(rejection) => rejection.status().as_u16(),
            Ok(_) => panic!("a guess was accepted"),
        };
        statuses.push(status);
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 20, "ip_threshold guesses, then 429: {statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another /64 is another client.
    let guess = encode_basic("user1", "guess");
    let other = check_from(&app.gate, &guess, "[2001:db8:0:8::1]:443").await;
    assert_eq!(other.unwrap_err().status().as_u16(), 401);
}

/// The IP's count was read before hashing and added after, so guesses for many users at once
/// all passed: N parallel guesses ran N argon2 hashes. They are counted before hashing now, so
/// at most `ip_threshold` reach argon2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_from_one_64_hash_at_most_the_ip_threshold() {
    let app = TestApp::start(|b| {
        b.hashing(
            common::cheap_hashing()
                .with_max_concurrent(2)
                .with_max_wait(Duration::from_secs(60)),
        )
        .lockout(
            Lockout::default()
                .ip_threshold(5)
                .base_delay(Duration::from_secs(30)),
        )
    })
    .await;
    let before = app.hashes_completed();
    let mut requests = JoinSet::new();
    for i in 1..=40 {
        let gate = app.gate.clone();
        requests.spawn(async move {
            let guess = encode_basic(&format!("user{i}"), "guess");
            let peer = format!("[2001:db8:0:9::{i:x}]:443");
            check_from(&gate, &guess, &peer).await.unwrap_err().status()
        });
    }
    let mut checked = 0;
    while let Some(status) = requests.join_next().await {
        match status.unwrap().as_u16() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    let hashed = app.hashes_completed() - before;
    assert!(
        hashed <= 5,
        "{hashed} argon2 runs with an ip_threshold of 5"
    );
    assert_eq!(checked, hashed, "every 401 was checked, every 429 was not");
}

/// A success takes back its own count for the IP (and never clears the IP's failures), so a
/// client that only ever logs in correctly is never locked out, however often it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn correct_logins_from_one_address_are_never_locked_out() {
    let app = TestApp::start(|b| b.lockout(Lockout::default().ip_threshold(20))).await;
    app.add_user("alice", ALICE_PASSWORD, ["admin"]).await;
    app.add_user("bob", BOB_PASSWORD, ["staff"]).await;
    for _ in 0..25 {
        check_from(&app.gate, &alice(), "192.0.2.10:1")
            .await
            .unwrap();
    }
    let mut logins = JoinSet::new();
    for i in 0..25 {
        let gate = app.gate.clone();
        logins.spawn(async move {
            let who = if i % 2 == 0 {
                alice()
            } else {
                encode_basic("bob", BOB_PASSWORD)
            };
            check_from(&gate, &who, "192.0.2.10:1").await.is_ok()
        });
    }
    while let Some(ok) = logins.join_next().await {
        assert!(ok.unwrap(), "a correct login was refused");
    }
    // Failures still count: 20 wrong guesses lock the address, successes between them or not.
    for i in 0..20 {
        let guess = encode_basic(&format!("user{i}"), "guess");
        let _ = check_from(&app.gate, &guess, "192.0.2.10:1").await;
        check_from(&app.gate, &alice(), "192.0.2.10:1").await.ok();
    }
    let locked = check_from(&app.gate, &alice(), "192.0.2.10:1").await;
    assert_eq!(locked.unwrap_err().status().as_u16(), 429);
}

/// A user store that finds names case-insensitively, as a directory often does.
#[derive(Debug, Default)]
struct CaseInsensitiveStore(portcullis::store::MemoryUserStore);

impl UserStore for CaseInsensitiveStore {
    fn canonical_name<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        std::borrow::Cow::Owned(name.to_lowercase())
    }
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        Box::pin(async move { self.0.find_user(&name.to_lowercase()).await })
    }
    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.create_user(user)
    }
    fn set_password_hash<'a>(
        &'a self,
        name: &'a str,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.set_password_hash(name, hash)
    }
    fn replace_password_hash<'a>(
        &'a self,
        name: &'a str,
        expected: &'a PasswordHash,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.0.replace_password_hash(name, expected, hash)
    }
    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.set_disabled(name, disabled)
    }
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        self.0.list_users()
    }
}

/// With a case-insensitive store, each spelling of a name had its own counter and turn: 14
/// spellings of `alice` got 14 guesses checked against a threshold of 2. The counters use the
/// store's canonical name now, for known and unknown names alike.
#[tokio::test]
async fn every_spelling_of_a_name_shares_its_lockout() {
    let store = Arc::new(CaseInsensitiveStore::default());
    let basic = Arc::new(
        BasicAuthenticator::builder(store)
            .hashing(common::cheap_hashing())
            .lockout(
                Lockout::default()
                    .user_threshold(2)
                    .base_delay(Duration::from_secs(30)),
            )
            .build()
            .expect("authenticator"),
    );
    basic
        .add_user("alice", &ALICE_PASSWORD.into(), ["admin"])
        .await
        .unwrap();
    let gate = common::gate_with(Arc::clone(&basic));
    let spellings = [
        "alice", "Alice", "ALICE", "aLice", "alIce", "aliCe", "alicE", "ALice", "AlIce", "AliCe",
        "AlicE", "aLIce", "aLiCe", "aLicE",
    ];
    // The same spellings of a known and an unknown name: both are counted alike.
    for name in ["alice", "zelda"] {
        let before = basic.hashing_pool().metrics().completed;
        for (i, spelling) in spellings.iter().enumerate() {
            let respelled: String = spelling
                .chars()
                .zip(name.chars())
                .map(|(case, c)| {
                    if case.is_uppercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let guess = encode_basic(&respelled, "guess");
            // A new address each time, so only the user's counter can stop the guesses.
            let _ = check_from(&gate, &guess, &format!("192.0.2.{}:1", i + 1)).await;
        }
        let checked = basic.hashing_pool().metrics().completed - before;
        assert_eq!(checked, 2, "{name}: {checked} of 14 spellings checked");
    }
}
