//! Lockout across instances: [`RedisFailureStore`] against the Redis at 127.0.0.1:6379.
//!
//! Each test namespaces its counters with a prefix of its own, so tests run in parallel and
//! leave nothing behind that another run could see. When no Redis answers, the tests that need
//! it print `SKIPPED: …` and pass, unless `PORTCULLIS_REQUIRE_SERVICES=1` (set by CI), when they
//! fail. The outage tests need no Redis: they point the store at a closed port.
#![cfg(feature = "redis")]

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis::basic::encode_basic;
use portcullis::lockout::{FailureStore, Lockout, MemoryFailureStore, RedisFailureStore};
use portcullis::store::MemoryUserStore;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use tokio::task::JoinSet;

use common::redis_lockout::{REDIS, clean_up, redis_up};
use common::{TestApp, basic_builder, client, gate_with, serve};

const PASSWORD: &str = "correct horse battery staple";
const THRESHOLD: u32 = 3;

/// A key prefix no other test or run uses.
fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "test-{test}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The lockout rules every instance of the test service uses, counting in `store`.
fn lockout(store: impl FailureStore) -> Lockout {
    Lockout::new(store)
        .user_threshold(THRESHOLD)
        .base_delay(Duration::from_secs(60))
        .max_delay(Duration::from_secs(60))
        .window(Duration::from_secs(120))
}

fn redis_store(prefix: &str) -> RedisFailureStore {
    RedisFailureStore::builder(REDIS)
        .key_prefix(prefix)
        .build()
        .expect("valid settings")
}

/// `n` instances of one service: one user database (alice), and each instance with its own
/// authenticator (own hashing pool, own per-user turns) and a lockout counting in `store()`.
async fn instances(n: usize, store: impl Fn() -> Lockout) -> Vec<TestApp> {
    let users = Arc::new(MemoryUserStore::new());
    let mut apps = Vec::new();
    for _ in 0..n {
        let basic = Arc::new(
            basic_builder(Arc::clone(&users))
                .lockout(store())
                .build()
                .expect("valid Basic settings"),
        );
        let gate = gate_with(Arc::clone(&basic));
        let base = serve(gate.clone()).await;
        apps.push(TestApp {
            base,
            client: client(),
            basic,
            store: Arc::clone(&users),
            gate,
        });
    }
    apps[0].add_user("alice", PASSWORD, ["staff"]).await;
    apps
}

/// Sends wrong passwords for alice to the instances in turn until one answers 429; returns how
/// many 401s came first.
async fn failures_until_locked(apps: &[TestApp]) -> u32 {
    let wrong = encode_basic("alice", "a wrong guess");
    for attempt in 0..20u32 {
        let app = &apps[attempt as usize % apps.len()];
        let response = app.get("/me", Some(&wrong)).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => return attempt,
            other => panic!("attempt {attempt}: unexpected {other}"),
        }
    }
    panic!("never locked out after 20 failures");
}

#[tokio::test]
async fn two_instances_lock_out_after_as_many_failures_as_one() {
    if !redis_up() {
        return;
    }
    let one = instances(1, || lockout(MemoryFailureStore::default())).await;
    let single = failures_until_locked(&one).await;

    let prefix = unique_prefix("two-instances");
    let two = instances(2, || lockout(redis_store(&prefix))).await;
    let shared = failures_until_locked(&two).await;
    assert_eq!(single, THRESHOLD);
    assert_eq!(
        shared, single,
        "two instances sharing Redis lock out like one"
    );

    // Both instances now refuse alice, even with the right password, and say for how long.
    for app in &two {
        let response = app.get("/me", Some(&encode_basic("alice", PASSWORD))).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = response.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    clean_up(&prefix).await;
}

/// Guesses sent at once to four instances: each attempt is counted before its hash, so exactly
/// as many are checked as one instance would allow, and the rest are refused with 429 unhashed.
/// (Counted after the hash, the first guess on every instance would pass the check at once.)
#[tokio::test]
async fn concurrent_guesses_on_many_instances_get_no_more_tries_than_one() {
    if !redis_up() {
        return;
    }
    let prefix = unique_prefix("concurrent-guesses");
    let apps = Arc::new(instances(4, || lockout(redis_store(&prefix))).await);
    let wrong = encode_basic("alice", "a wrong guess");
    let hashed = || -> u64 {
        apps.iter()
            .map(|app| app.basic.hashing_pool().metrics().completed)
            .sum()
    };
    let hashed_before = hashed();
    let mut tasks = JoinSet::new();
    for i in 0..12 {
        let apps = Arc::clone(&apps);
        let wrong = wrong.clone();
        tasks.spawn(async move { apps[i % 4].get("/me", Some(&wrong)).await.status() });
    }
    let (mut checked, mut locked) = (0, 0);
    while let Some(status) = tasks.join_next().await {
        match status.expect("request task") {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => locked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (checked, locked),
        (THRESHOLD, 12 - THRESHOLD),
        "as many guesses checked as the threshold allows, however they are spread"
    );
    let hashed = hashed() - hashed_before;
    // Attempts refused after being counted (they raced) were taken back.
    let counted = redis_store(&prefix)
        .failures("user:alice")
        .await
        .expect("redis answers")
        .map(|record| record.count);
    clean_up(&prefix).await;
    assert_eq!(counted, Some(THRESHOLD));
    assert_eq!(
        hashed,
        u64::from(THRESHOLD),
        "refused guesses never reached argon2"
    );
}

#[tokio::test]
async fn a_login_on_one_instance_clears_the_count_on_all() {
    if !redis_up() {
        return;
    }
    let prefix = unique_prefix("clear");
    let apps = instances(2, || lockout(redis_store(&prefix))).await;
    let wrong = encode_basic("alice", "a wrong guess");
    let right = encode_basic("alice", PASSWORD);
    for _ in 0..THRESHOLD - 1 {
        assert_eq!(
            apps[0].get("/me", Some(&wrong)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        apps[1].get("/me", Some(&right)).await.status(),
        StatusCode::OK
    );
    // The count started again: THRESHOLD - 1 more failures on the first instance lock nothing.
    for _ in 0..THRESHOLD - 1 {
        assert_eq!(
            apps[0].get("/me", Some(&wrong)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        apps[1].get("/me", Some(&right)).await.status(),
        StatusCode::OK
    );
    clean_up(&prefix).await;
}

#[tokio::test]
async fn concurrent_failures_from_many_instances_are_all_counted() {
    if !redis_up() {
        return;
    }
    let prefix = unique_prefix("atomic");
    let stores: Vec<Arc<RedisFailureStore>> =
        (0..4).map(|_| Arc::new(redis_store(&prefix))).collect();
    let window = Duration::from_secs(60);
    let mut tasks = JoinSet::new();
    for store in &stores {
        for _ in 0..50 {
            let store = Arc::clone(store);
            tasks.spawn(async move { store.record_failure("user:mallory", window).await });
        }
    }
    let mut counts = Vec::new();
    while let Some(result) = tasks.join_next().await {
        counts.push(result.unwrap().expect("counted"));
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=200).collect::<Vec<u32>>(),
        "every increment saw its own count"
    );
    let record = stores[0]
        .failures("user:mallory")
        .await
        .unwrap()
        .expect("a counter");
    assert_eq!(record.count, 200);
    assert!(record.since_last < Duration::from_secs(5));
    clean_up(&prefix).await;
}

#[tokio::test]
async fn counters_expire_a_window_after_the_last_failure() {
    if !redis_up() {
        return;
    }
    let prefix = unique_prefix("expiry");
    let store = redis_store(&prefix);
    let window = Duration::from_millis(400);
    store.record_failure("user:bob", window).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // A second failure re-arms the expiry: the counter outlives the first failure's window.
    assert_eq!(store.record_failure("user:bob", window).await.unwrap(), 2);

    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("portcullis:lockout:{prefix}:user:bob"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 400, "PTTL {ttl}");

    tokio::time::sleep(Duration::from_millis(250)).await;
    let record = store.failures("user:bob").await.unwrap().expect("alive");
    assert_eq!(record.count, 2);
    assert!(
        record.since_last >= Duration::from_millis(200)
            && record.since_last < Duration::from_secs(2),
        "since_last {:?}",
        record.since_last
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.failures("user:bob").await.unwrap(), None);

    store.record_failure("user:carol", window).await.unwrap();
    store.clear("user:carol").await.unwrap();
    assert_eq!(store.failures("user:carol").await.unwrap(), None);
    clean_up(&prefix).await;
}

/// A TCP port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn unreachable_redis_fails_closed_with_503_by_default() {
    let store = RedisFailureStore::builder(format!("redis://127.0.0.1:{}", closed_port()))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let app = TestApp::start(|b| b.lockout(lockout(store))).await;
    app.add_user("alice", PASSWORD, ["staff"]).await;
    let before = app.hashes_completed();
    for _ in 0..3 {
        let started = Instant::now();
        let response = app.get("/me", Some(&encode_basic("alice", PASSWORD))).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        app.hashes_completed(),
        before,
        "no password is checked while failures cannot be counted"
    );
}

#[tokio::test]
async fn unreachable_redis_fails_open_when_configured() {
    let store = RedisFailureStore::builder(format!("redis://127.0.0.1:{}", closed_port()))
        .timeout(Duration::from_millis(300))
        .dangerous_fail_open()
        .build()
        .unwrap();
    let app = TestApp::start(|b| b.lockout(lockout(store))).await;
    app.add_user("alice", PASSWORD, ["staff"]).await;
    let wrong = encode_basic("alice", "a wrong guess");
    // Far past the threshold, and never locked: nothing is counted.
    for _ in 0..THRESHOLD * 2 {
        assert_eq!(
            app.get("/me", Some(&wrong)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app.get("/me", Some(&encode_basic("alice", PASSWORD))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A private `redis-server` on a free port, killed on drop.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_store_reconnects_after_redis_comes_back() {
    let port = closed_port();
    let Some(server) = PrivateRedis::start(port) else {
        let message = "cannot start redis-server";
        if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{message}, and PORTCULLIS_REQUIRE_SERVICES=1");
        }
        println!("SKIPPED: {message}");
        return;
    };
    let store = RedisFailureStore::builder(format!("redis://127.0.0.1:{}", server.port))
        .timeout(Duration::from_millis(300))
        .retry_after(Duration::from_millis(100))
        .build()
        .unwrap();
    let window = Duration::from_secs(60);
    assert_eq!(store.record_failure("user:dave", window).await.unwrap(), 1);

    drop(server);
    let err = store.failures("user:dave").await.unwrap_err();
    assert_eq!(err.kind(), portcullis::store::StoreErrorKind::Unavailable);

    // Back on the same port (empty: it keeps nothing on disk).
    let _server = PrivateRedis::start(port).expect("redis-server restarts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = loop {
        match store.record_failure("user:dave", window).await {
            Ok(count) => break count,
            Err(err) if Instant::now() < deadline => {
                assert_eq!(err.kind(), portcullis::store::StoreErrorKind::Unavailable);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("did not reconnect: {err}"),
        }
    };
    assert_eq!(count, 1);
}

/// Issue #15, with Redis counters: guesses for many users at once from one IPv6 /64, spread over
/// four instances, reach argon2 at most `ip_threshold` times (the IP is counted before hashing,
/// by prefix), and correct logins from that /64 take back their own count, so they never lock it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_for_many_users_from_one_64_are_bounded_by_the_ip_threshold() {
    if !redis_up() {
        return;
    }
    const IP_THRESHOLD: u32 = 5;
    let prefix = unique_prefix("ip-threshold");
    let apps = Arc::new(
        instances(4, || {
            lockout(redis_store(&prefix))
                .ip_threshold(IP_THRESHOLD)
                .user_threshold(5)
        })
        .await,
    );
    let check = |app: &TestApp, authorization: String, address: String| {
        let gate = app.gate.clone();
        async move {
            let (parts, ()) = http::Request::get("/me")
                .header("authorization", authorization)
                .body(())
                .expect("request")
                .into_parts();
            let peer = format!("[{address}]:443").parse().expect("peer");
            let view = portcullis::RequestView::from_parts(&parts).with_peer(Some(peer));
            gate.check(&view).await.map(drop)
        }
    };
    // Correct logins first: 25 of them, from one address, never lock it.
    for i in 0..25 {
        let login = check(
            &apps[i % 4],
            encode_basic("alice", PASSWORD),
            "2001:db8:5:5::1".to_owned(),
        );
        assert!(login.await.is_ok(), "correct login {i} refused");
    }
    let hashed = || -> u64 {
        apps.iter()
            .map(|app| app.basic.hashing_pool().metrics().completed)
            .sum()
    };
    let before = hashed();
    let mut tasks = JoinSet::new();
    for i in 0..40usize {
        let guess = check(
            &apps[i % 4],
            encode_basic(&format!("user{i}"), "guess"),
            format!("2001:db8:5:5::{:x}", i + 2),
        );
        tasks.spawn(async move { guess.await.unwrap_err().status() });
    }
    while let Some(status) = tasks.join_next().await {
        let status = status.expect("task");
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    let hashed = hashed() - before;
    clean_up(&prefix).await;
    assert!(
        hashed <= u64::from(IP_THRESHOLD),
        "{hashed} argon2 runs with an ip_threshold of {IP_THRESHOLD}"
    );
}
