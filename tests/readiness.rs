//! `Gate::readiness` (issue #19 item 5): per component, ready only when keys are loaded and
//! within `max_stale` and the stores the Gate reads answer; a failing refresh within `max_stale`
//! is degraded, not down; reports are cached and shared by concurrent probes. Real servers on
//! 127.0.0.1 throughout: a JWKS server, SQLite files, PostgreSQL (through a TCP proxy the test
//! stops) and Redis (a closed port for the outage).
#![cfg(all(
    feature = "jwt",
    feature = "basic",
    feature = "api-key",
    feature = "sqlite"
))]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis::audit::{ComponentStatus, Health, Readiness};
use portcullis::basic::HashingConfig;
use portcullis::jwt::Algorithm;
use portcullis::jwt::{JwksCacheConfig, JwtAuthenticator, KeySet, KeySource, VerifyingKey};
use portcullis::reject::Challenge;
use portcullis::store::{MemoryUserStore, PasswordHash, StoreError, UserRecord, UserStore};
use portcullis::{
    ApiKeys, Authenticator, BasicAuthenticator, BoxFuture, CredentialSource, Gate, Outcome,
    RequestView, Scheme, SecretString,
};
use support::{IdpServer, Mode, TestKey, client, jwks};

const ISS: &str = "https://idp.example";

fn cheap() -> HashingConfig {
    HashingConfig::default()
        .with_memory_kib(64)
        .with_iterations(1)
}

fn cache(refresh_ms: u64, retry_ms: u64) -> JwksCacheConfig {
    JwksCacheConfig::default()
        .with_refresh_interval(Duration::from_millis(refresh_ms))
        .with_retry_interval(Duration::from_millis(retry_ms))
        .with_fetch_timeout(Duration::from_millis(500))
}

fn jwt(idp: &IdpServer, config: JwksCacheConfig) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .issuer(ISS, KeySource::jwks_url(idp.jwks_url()))
        .audience("api")
        .jwks_cache(config)
        .http_client(client())
        .build()
        .unwrap()
}

fn component<'a>(report: &'a Readiness, name: &str) -> &'a ComponentStatus {
    report
        .components
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no component {name}: {report:?}"))
}

/// A unique SQLite file under the target directory's temp space.
fn sqlite_url(test: &str) -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-readiness-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (format!("sqlite://{}/auth.db", dir.display()), dir)
}

/// Everything up: a JWKS issuer and a static one, Basic and API keys over one SQLite file, and,
/// when Redis answers, Redis lockout. Each component is named and ready, and the report is JSON.
#[tokio::test]
async fn ready_when_everything_is_up() {
    let key = TestKey::rsa(0, "k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let hs = VerifyingKey::hmac(Algorithm::HS256, b"0123456789abcdef0123456789abcdef")
        .unwrap()
        .with_kid("s1");
    let jwt = JwtAuthenticator::builder()
        .issuer(ISS, KeySource::jwks_url(idp.jwks_url()))
        .issuer(
            "https://static.example",
            KeySource::keys(KeySet::new().with(hs)),
        )
        .audience("api")
        .jwks_cache(cache(60_000, 50))
        .http_client(client())
        .build()
        .unwrap();
    let (url, dir) = sqlite_url("up");
    let store = Arc::new(portcullis::store::SqliteStore::open(&url).await.unwrap());
    let mut basic = BasicAuthenticator::builder(store.clone()).hashing(cheap());
    #[cfg(feature = "redis")]
    let redis = redis_up();
    #[cfg(feature = "redis")]
    if redis {
        let redis_store = portcullis::lockout::RedisFailureStore::builder("redis://127.0.0.1:6379")
            .build()
            .unwrap();
        basic = basic.lockout(portcullis::lockout::Lockout::new(redis_store));
    }
    let keys = ApiKeys::builder(
        store,
        SecretString::new("pepper-pepper-pepper-pepper-pepper"),
    )
    .build()
    .unwrap();
    let gate = Gate::builder()
        .authenticator(basic.build().unwrap())
        .authenticator(keys.authenticator())
        .authenticator(jwt)
        .build()
        .unwrap();

    let report = gate.readiness().await;
    assert!(report.is_ready(), "{report:?}");
    for name in [
        "basic/users",
        "basic/lockout",
        "api_key/keys",
        "jwt/keys/https://idp.example",
        "jwt/keys/https://static.example",
    ] {
        assert_eq!(component(&report, name).status, Health::Ready, "{report:?}");
    }
    // The probe loaded the keys: no token was needed first.
    assert_eq!(idp.jwks_fetches(), 1);
    assert!(
        component(&report, "jwt/keys/https://idp.example")
            .reason
            .starts_with("1 keys loaded"),
        "{report:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["ready"], true);
    assert_eq!(json["components"][0]["name"], "basic/users");
    assert_eq!(json["components"][0]["status"], "ready");
    assert!(!report.to_json().contains("pepper"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A JWKS that never loaded: not ready, whether the server answers 500 or nothing listens;
/// the probe tried to fetch it (at most once per retry interval).
#[tokio::test]
async fn not_ready_while_a_jwks_has_never_loaded() {
    let key = TestKey::rsa(0, "k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    idp.set_mode(Mode::Fail);
    let gate = Gate::builder()
        .authenticator(jwt(&idp, cache(60_000, 60_000)))
        .readiness_cache(Duration::ZERO)
        .build()
        .unwrap();
    let report = gate.readiness().await;
    assert!(!report.is_ready(), "{report:?}");
    let keys = component(&report, "jwt/keys/https://idp.example");
    assert_eq!(keys.status, Health::NotReady);
    assert_eq!(keys.reason, "keys never loaded: fetching them fails");
    assert_eq!(idp.jwks_fetches(), 1);
    // Within the retry interval the probe does not fetch again.
    assert!(!gate.readiness().await.is_ready());
    assert_eq!(idp.jwks_fetches(), 1);

    // Nothing listening at all.
    let closed = JwtAuthenticator::builder()
        .issuer(ISS, KeySource::jwks_url("http://127.0.0.1:1/jwks"))
        .audience("api")
        .jwks_cache(cache(60_000, 60_000))
        .http_client(client())
        .build()
        .unwrap();
    let gate = Gate::builder().authenticator(closed).build().unwrap();
    let report = gate.readiness().await;
    assert!(!report.is_ready(), "{report:?}");
    assert_eq!(
        component(&report, "jwt/keys/https://idp.example").status,
        Health::NotReady
    );
}

/// Once loaded, a failing refresh within `max_stale` is degraded and ready: the identity
/// provider's hiccup must not take every instance out. Past `max_stale` it is not ready.
#[tokio::test]
async fn a_failing_refresh_is_degraded_within_max_stale_and_not_ready_past_it() {
    let key = TestKey::rsa(0, "k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let max_stale = Duration::from_millis(800);
    let jwt = jwt(&idp, cache(100, 50).with_max_stale(max_stale));
    let gate = Gate::builder()
        .authenticator(jwt.clone())
        .readiness_cache(Duration::ZERO)
        .build()
        .unwrap();
    jwt.refresh_keys().await.unwrap();
    let loaded = Instant::now();
    assert!(gate.readiness().await.is_ready());

    idp.set_mode(Mode::Fail);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(jwt.refresh_keys().await.is_err());
    if loaded.elapsed() < max_stale {
        let report = gate.readiness().await;
        assert!(report.is_ready(), "{report:?}");
        let keys = component(&report, "jwt/keys/https://idp.example");
        assert_eq!(keys.status, Health::Degraded, "{report:?}");
        assert!(keys.reason.contains("refreshing them fails"), "{report:?}");
    }

    tokio::time::sleep(max_stale.saturating_sub(loaded.elapsed()) + Duration::from_millis(50))
        .await;
    let report = gate.readiness().await;
    assert!(!report.is_ready(), "{report:?}");
    let keys = component(&report, "jwt/keys/https://idp.example");
    assert_eq!(keys.status, Health::NotReady);
    assert!(
        keys.reason.starts_with("keys older than max_stale"),
        "{report:?}"
    );

    // The provider is back: the probe itself fetches (past the retry interval) and is ready.
    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let report = gate.readiness().await;
    assert!(report.is_ready(), "{report:?}");
    assert_eq!(
        component(&report, "jwt/keys/https://idp.example").status,
        Health::Ready
    );
}

/// A closed SQLite store: not ready, and the reason names the backend, not the file.
#[tokio::test]
async fn not_ready_when_sqlite_is_down() {
    let (url, dir) = sqlite_url("down");
    let store = Arc::new(portcullis::store::SqliteStore::open(&url).await.unwrap());
    let keys = ApiKeys::builder(
        store.clone(),
        SecretString::new("pepper-pepper-pepper-pepper-pepper"),
    )
    .build()
    .unwrap();
    let gate = Gate::builder()
        .authenticator(
            BasicAuthenticator::builder(store.clone())
                .hashing(cheap())
                .build()
                .unwrap(),
        )
        .authenticator(keys.authenticator())
        .readiness_cache(Duration::ZERO)
        .build()
        .unwrap();
    assert!(gate.readiness().await.is_ready());
    store.close().await;
    let report = gate.readiness().await;
    assert!(!report.is_ready(), "{report:?}");
    for name in ["basic/users", "api_key/keys"] {
        let found = component(&report, name);
        assert_eq!(found.status, Health::NotReady, "{report:?}");
        assert!(found.reason.contains("sqlite"), "{report:?}");
        assert!(
            !found.reason.contains(&dir.display().to_string()),
            "{report:?}"
        );
    }
    // The lockout counters in memory are always up.
    assert_eq!(component(&report, "basic/lockout").status, Health::Ready);
    let _ = std::fs::remove_dir_all(dir);
}

/// Redis on a closed port: the lockout store is not ready; with `dangerous_fail_open` it is
/// degraded (requests go on without lockout), so the Gate stays ready.
#[cfg(feature = "redis")]
#[tokio::test]
async fn not_ready_when_redis_is_down_unless_it_fails_open() {
    use portcullis::lockout::{Lockout, RedisFailureStore};
    let gate_with = |store: RedisFailureStore| {
        Gate::builder()
            .authenticator(
                BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
                    .hashing(cheap())
                    .lockout(Lockout::new(store))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let closed = "redis://:hunter2@127.0.0.1:1";
    let report = gate_with(RedisFailureStore::builder(closed).build().unwrap())
        .readiness()
        .await;
    assert!(!report.is_ready(), "{report:?}");
    let lockout = component(&report, "basic/lockout");
    assert_eq!(lockout.status, Health::NotReady);
    assert!(lockout.reason.contains("127.0.0.1:1"), "{report:?}");
    assert!(!report.to_json().contains("hunter2"), "{report:?}");
    assert_eq!(component(&report, "basic/users").status, Health::Ready);

    let report = gate_with(
        RedisFailureStore::builder(closed)
            .dangerous_fail_open()
            .build()
            .unwrap(),
    )
    .readiness()
    .await;
    assert!(report.is_ready(), "{report:?}");
    let lockout = component(&report, "basic/lockout");
    assert_eq!(lockout.status, Health::Degraded);
    assert!(lockout.reason.contains("fails open"), "{report:?}");
}

#[cfg(feature = "redis")]
fn redis_up() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().unwrap(),
        Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        assert_ne!(
            std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "no Redis at 127.0.0.1:6379, and PORTCULLIS_REQUIRE_SERVICES=1"
        );
        println!("SKIPPED (Redis part): no Redis at 127.0.0.1:6379");
    }
    up
}

/// PostgreSQL through a TCP proxy on 127.0.0.1 that the test stops: ready, then not ready,
/// and the report never holds the URL's password.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn not_ready_when_postgres_is_down() {
    let Some(target) = postgres_target().await else {
        return;
    };
    let proxy = TcpProxy::start(target).await;
    let url = format!("postgres://postgres:hunter2@{}/test", proxy.addr);
    let store = match portcullis::store::PostgresStore::connect(&url).await {
        Ok(store) => Arc::new(store),
        Err(_) => {
            // Trust authentication under another user name (`root`).
            let url = format!("postgres://root:hunter2@{}/test", proxy.addr);
            Arc::new(
                portcullis::store::PostgresStore::connect(&url)
                    .await
                    .unwrap(),
            )
        }
    };
    let keys = ApiKeys::builder(
        store.clone(),
        SecretString::new("pepper-pepper-pepper-pepper-pepper"),
    )
    .build()
    .unwrap();
    let gate = Gate::builder()
        .authenticator(
            BasicAuthenticator::builder(store.clone())
                .hashing(cheap())
                .build()
                .unwrap(),
        )
        .authenticator(keys.authenticator())
        .readiness_cache(Duration::ZERO)
        .readiness_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let report = gate.readiness().await;
    assert!(report.is_ready(), "{report:?}");

    proxy.stop();
    let report = gate.readiness().await;
    assert!(!report.is_ready(), "{report:?}");
    for name in ["basic/users", "api_key/keys"] {
        assert_eq!(
            component(&report, name).status,
            Health::NotReady,
            "{report:?}"
        );
    }
    assert!(!report.to_json().contains("hunter2"), "{report:?}");
}

/// The PostgreSQL address tests use, or `None` (printing `SKIPPED`) when none answers.
#[cfg(feature = "postgres")]
async fn postgres_target() -> Option<std::net::SocketAddr> {
    let addr: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    if tokio::net::TcpStream::connect(addr).await.is_ok() {
        return Some(addr);
    }
    assert_ne!(
        std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref(),
        Ok("1"),
        "no PostgreSQL at 127.0.0.1:5432, and PORTCULLIS_REQUIRE_SERVICES=1"
    );
    println!("SKIPPED: no PostgreSQL at 127.0.0.1:5432");
    None
}

/// Forwards connections on a port of 127.0.0.1 to `target` until stopped; stopping closes the
/// port and every connection, as a database going down does.
#[cfg(feature = "postgres")]
struct TcpProxy {
    addr: std::net::SocketAddr,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

#[cfg(feature = "postgres")]
impl TcpProxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let registry = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(relay.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Self { addr, tasks }
    }

    fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// A user store that counts its pings, over the memory store.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryUserStore,
    pings: AtomicUsize,
}

impl UserStore for CountingStore {
    fn canonical_name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        self.inner.canonical_name(name)
    }
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        self.inner.find_user(name)
    }
    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.create_user(user)
    }
    fn set_password_hash<'a>(
        &'a self,
        name: &'a str,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_password_hash(name, hash)
    }
    fn replace_password_hash<'a>(
        &'a self,
        name: &'a str,
        expected: &'a PasswordHash,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.replace_password_hash(name, expected, hash)
    }
    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.set_disabled(name, disabled)
    }
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        self.inner.list_users()
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.pings.fetch_add(1, Ordering::SeqCst);
            // Slow enough that concurrent probes overlap it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        })
    }
}

/// Probes within the cache window cost one store query, concurrent ones included; without a
/// cache every probe queries.
#[tokio::test]
async fn probes_within_the_cache_window_cost_one_store_query() {
    let store = Arc::new(CountingStore::default());
    let gate = Gate::builder()
        .authenticator(
            BasicAuthenticator::builder(store.clone())
                .hashing(cheap())
                .build()
                .unwrap(),
        )
        .readiness_cache(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let gate = gate.clone();
        probes.spawn(async move { gate.readiness().await });
    }
    while let Some(report) = probes.join_next().await {
        assert!(report.unwrap().is_ready());
    }
    for _ in 0..50 {
        assert!(gate.readiness().await.is_ready());
    }
    assert_eq!(store.pings.load(Ordering::SeqCst), 1);

    let store = Arc::new(CountingStore::default());
    let gate = Gate::builder()
        .authenticator(
            BasicAuthenticator::builder(store.clone())
                .hashing(cheap())
                .build()
                .unwrap(),
        )
        .readiness_cache(Duration::ZERO)
        .build()
        .unwrap();
    for _ in 0..3 {
        gate.readiness().await;
    }
    assert_eq!(store.pings.load(Ordering::SeqCst), 3);
}

/// A custom authenticator: the default reports nothing (ready); one whose check hangs is
/// reported not ready under its scheme's name after the timeout.
#[tokio::test]
async fn custom_authenticators_default_to_ready_and_a_hanging_check_times_out() {
    #[derive(Debug)]
    struct Plain;
    impl Authenticator for Plain {
        fn scheme(&self) -> Scheme {
            Scheme::new("plain")
        }
        fn challenge(&self) -> Challenge {
            Challenge::new("Plain")
        }
        fn sources(&self) -> Vec<CredentialSource> {
            vec![CredentialSource::authorization("Plain")]
        }
        fn authenticate<'a>(&'a self, _: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
            Box::pin(async { Outcome::Abstain })
        }
    }
    #[derive(Debug)]
    struct Hanging;
    impl Authenticator for Hanging {
        fn scheme(&self) -> Scheme {
            Scheme::new("hanging")
        }
        fn challenge(&self) -> Challenge {
            Challenge::new("Hanging")
        }
        fn sources(&self) -> Vec<CredentialSource> {
            vec![CredentialSource::authorization("Hanging")]
        }
        fn authenticate<'a>(&'a self, _: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
            Box::pin(async { Outcome::Abstain })
        }
        fn readiness(&self, _: Duration) -> BoxFuture<'_, Vec<ComponentStatus>> {
            Box::pin(std::future::pending())
        }
    }
    let err = Gate::builder()
        .readiness_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("readiness_timeout"), "{err}");

    let gate = Gate::builder().authenticator(Plain).build().unwrap();
    let report = gate.readiness().await;
    assert!(
        report.is_ready() && report.components.is_empty(),
        "{report:?}"
    );

    let gate = Gate::builder()
        .authenticator(Plain)
        .authenticator(Hanging)
        .readiness_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let report = gate.readiness().await;
    assert!(!report.is_ready(), "{report:?}");
    assert_eq!(
        report.components,
        vec![ComponentStatus::not_ready(
            "hanging",
            "no answer within 50ms"
        )]
    );
}

/// Introspection is not checked: an endpoint outage refuses its tokens (503), not the instance.
#[cfg(feature = "introspection")]
#[tokio::test]
async fn introspection_is_not_checked() {
    use portcullis::jwt::{ClientAuth, IntrospectionAuthenticator};
    let introspection = IntrospectionAuthenticator::builder(
        "http://127.0.0.1:1/introspect",
        ClientAuth::basic("api", SecretString::new("client-secret")),
    )
    .audiences(["api"])
    .http_client(client())
    .build()
    .unwrap();
    let report = Gate::builder()
        .authenticator(introspection)
        .build()
        .unwrap()
        .readiness()
        .await;
    assert!(
        report.is_ready() && report.components.is_empty(),
        "{report:?}"
    );
}

/// `/healthz` through a small axum app: 503 with the report as JSON while the JWKS has never
/// loaded, 200 once it has.
#[tokio::test]
async fn healthz_is_503_while_a_jwks_has_never_loaded_then_200() {
    let key = TestKey::rsa(0, "k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    idp.set_mode(Mode::Fail);
    let gate = Gate::builder()
        .authenticator(jwt(&idp, cache(60_000, 50)))
        .readiness_cache(Duration::ZERO)
        .build()
        .unwrap();
    let app = Router::new().route(
        "/healthz",
        get(move || {
            let gate = gate.clone();
            async move { healthz(&gate).await }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(
        body["components"][0]["name"],
        "jwt/keys/https://idp.example"
    );
    assert_eq!(body["components"][0]["status"], "not_ready");

    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// What the examples' `/healthz` does: 200 when ready, else 503 with the report.
async fn healthz(gate: &Gate) -> Response {
    let report = gate.readiness().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [("content-type", "application/json")],
        report.to_json(),
    )
        .into_response()
}
