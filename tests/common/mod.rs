//! Shared fixtures for the HTTP integration tests: an axum app behind [`GateLayer`] served on
//! `127.0.0.1`, a reqwest client, and Basic authenticators with cheap argon2 parameters.
//!
//! The app has three kinds of route: `/public` (policy `Public`), `/me` (the default policy,
//! `Authenticated`; answers with the principal as JSON) and `/admin/**` (`Groups::any_of(["admin"])`).

// Each test file uses only some of these helpers; the rest would warn as dead code.
#![allow(dead_code, reason = "shared by several test files, each using a part")]

pub(crate) mod browser;
#[cfg(feature = "cli")]
pub(crate) mod cli;
pub(crate) mod logs;
#[cfg(feature = "redis")]
pub(crate) mod redis_lockout;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::get;
use chrono::{DateTime, Utc};
use portcullis::basic::{BasicAuthenticatorBuilder, HashingConfig};
use portcullis::reject::Challenge;
use portcullis::store::MemoryUserStore;
use portcullis::{
    Authenticator, BasicAuthenticator, BoxFuture, CredentialSource, Gate, GateLayer, Groups,
    Outcome, Principal, Public, RequestView, Scheme, SubjectKind,
};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

/// The realm every test authenticator announces.
pub(crate) const REALM: &str = "portcullis-tests";

/// The one challenge a 401 from the test Gate carries.
pub(crate) const BASIC_CHALLENGE: &str = r#"Basic realm="portcullis-tests", charset="UTF-8""#;

/// argon2id at a cost that makes a hash take well under a millisecond: for tests that are about
/// behaviour, not cost.
pub(crate) fn cheap_hashing() -> HashingConfig {
    HashingConfig::default()
        .with_memory_kib(64)
        .with_iterations(1)
}

/// A Basic authenticator builder over `store` with the test realm and cheap hashing; tests
/// override what they need (hashing, lockout, cache) before `build`.
pub(crate) fn basic_builder(store: Arc<MemoryUserStore>) -> BasicAuthenticatorBuilder {
    BasicAuthenticator::builder(store)
        .realm(REALM)
        .hashing(cheap_hashing())
}

/// The test Gate: `basic` as the only authenticator, `/public` open, `/admin/**` for the `admin`
/// group, everything else for any authenticated caller.
pub(crate) fn gate_with(basic: Arc<BasicAuthenticator>) -> Gate {
    Gate::builder()
        .shared_authenticator(basic)
        .route("/public", Public)
        .route("/admin/**", Groups::any_of(["admin"]))
        .build()
        .expect("valid gate")
}

/// The test app's routes, not yet behind a Gate.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/public", get(|| async { "public" }))
        .route("/me", get(me))
        .route("/admin", get(|| async { "admin" }))
        .route("/admin/{*rest}", get(|| async { "admin" }))
}

/// Serves the test router behind `gate` on an ephemeral port of 127.0.0.1, with the peer address
/// available to the Gate, and returns the base URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(gate: Gate) -> String {
    serve_router(router(), gate).await
}

/// Serves `router` behind `gate` as [`serve`] does, for tests that need routes of their own.
pub(crate) async fn serve_router(router: Router, gate: Gate) -> String {
    let app = router.layer(GateLayer::new(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    format!("http://{addr}")
}

/// A plain HTTP/1.1 client that never follows redirects.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// A running test server and the handles a test needs to look behind it.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// A client for `base`.
    pub(crate) client: reqwest::Client,
    /// The authenticator, for its hashing pool metrics and to add users.
    pub(crate) basic: Arc<BasicAuthenticator>,
    /// The user store behind `basic`.
    pub(crate) store: Arc<MemoryUserStore>,
    /// The Gate the server runs.
    pub(crate) gate: Gate,
}

impl TestApp {
    /// Builds an authenticator from `configure(basic_builder(store))`, a Gate over it, and serves
    /// the test app.
    pub(crate) async fn start(
        configure: impl FnOnce(BasicAuthenticatorBuilder) -> BasicAuthenticatorBuilder,
    ) -> TestApp {
        let store = Arc::new(MemoryUserStore::new());
        let basic = Arc::new(
            configure(basic_builder(Arc::clone(&store)))
                .build()
                .expect("valid Basic settings"),
        );
        let gate = gate_with(Arc::clone(&basic));
        let base = serve(gate.clone()).await;
        TestApp {
            base,
            client: client(),
            basic,
            store,
            gate,
        }
    }

    /// Adds a user with the authenticator's own hashing cost.
    pub(crate) async fn add_user<const N: usize>(
        &self,
        name: &str,
        password: &str,
        groups: [&str; N],
    ) {
        self.basic
            .add_user(name, &password.into(), groups)
            .await
            .expect("user added");
    }

    /// `GET path`, with `authorization` as the `Authorization` header when given.
    pub(crate) async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request.send().await.expect("request sent")
    }

    /// The hashing pool's `completed` counter.
    pub(crate) fn hashes_completed(&self) -> u64 {
        self.basic.hashing_pool().metrics().completed
    }
}

/// The principal as `/me` reports it.
async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "subject": principal.subject(),
        "scheme": principal.scheme().as_str(),
        "groups": principal.groups(),
    }))
}

/// Asserts `response` is an RFC 9457 problem with `status` and only the public fields, and returns
/// its headers and body text.
pub(crate) async fn expect_problem(
    response: reqwest::Response,
    status: StatusCode,
) -> (reqwest::header::HeaderMap, String) {
    assert_eq!(response.status(), status, "status");
    let headers = response.headers().clone();
    assert_eq!(
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "content type"
    );
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert_eq!(body["status"], status.as_u16(), "status in body: {text}");
    let mut fields: Vec<&str> = body
        .as_object()
        .expect("problem body is an object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["detail", "status", "title", "type"],
        "only public fields: {text}"
    );
    assert_no_internal_detail(&text);
    (headers, text)
}

/// Asserts a response body carries none of the internal reasons the Basic authenticator and the
/// built-in policies give for logs.
pub(crate) fn assert_no_internal_detail(text: &str) {
    const INTERNAL: &[&str] = &[
        "wrong password",
        "unknown user",
        "disabled",
        "anonymous request",
        "base64",
        "UTF-8",
        "control character",
        "too long",
        "no credentials",
        "no `:`",
        "non-ASCII",
        "repeated",
        "pool",
        "store",
        "groups",
    ];
    for reason in INTERNAL {
        assert!(
            !text.contains(reason),
            "body leaks internal reason {reason:?}: {text}"
        );
    }
}

/// The `WWW-Authenticate` values of a response, in order.
pub(crate) fn challenges(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().expect("challenge is ASCII").to_owned())
        .collect()
}

/// The reason the Gate gives for logs when refusing `GET path` with `authorization`, by asking it
/// directly (no HTTP). Panics if the Gate lets the request through.
pub(crate) async fn internal_reason(
    gate: &Gate,
    path: &str,
    authorization: Option<&str>,
) -> String {
    let mut request = http::Request::get(path);
    if let Some(value) = authorization {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let (parts, ()) = request.body(()).expect("valid request").into_parts();
    gate.check(&RequestView::from_parts(&parts))
        .await
        .expect_err("the gate refuses this request")
        .detail()
        .to_owned()
}

/// Authenticates whoever the `x-user` header names, with the scheme, kind, groups, scopes and
/// credential times other headers give: a stand-in for a real scheme, so policies can be tested
/// on every kind of principal.
#[derive(Debug)]
pub(crate) struct HeaderAuthenticator;

impl Authenticator for HeaderAuthenticator {
    fn scheme(&self) -> Scheme {
        Scheme::API_KEY
    }
    fn challenge(&self) -> Challenge {
        Challenge::new("Test")
    }
    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::header(http::HeaderName::from_static(
            "x-user",
        ))]
    }
    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        let h = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let list = |name: &str| -> Vec<String> {
            h(name)
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let scheme = h("x-scheme")
            .map(|s| Scheme::built_in(&s).expect("a built-in scheme"))
            .unwrap_or(Scheme::API_KEY);
        let kind = match h("x-kind").as_deref() {
            Some("application") => SubjectKind::Application,
            _ => SubjectKind::User,
        };
        let mut principal = Principal::new(h("x-user").unwrap_or_default(), kind, scheme)
            .with_groups(list("x-groups"))
            .with_scopes(list("x-scopes"));
        let time = |name: &str| h(name).map(|v| v.parse::<DateTime<Utc>>().expect("time"));
        if let Some(at) = time("x-issued") {
            principal = principal.with_issued_at(at);
        }
        if let Some(at) = time("x-expires") {
            principal = principal.with_expires_at(at);
        }
        Box::pin(async move { Outcome::Authenticated(principal) })
    }
}
