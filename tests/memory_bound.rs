//! Memory bounds of Basic under load, measured as the kernel counts them: the peak resident set
//! (`VmHWM` in `/proc/PID/status`) of a server process.
//!
//! The server runs in a child process (this test binary, re-run with `--ignored --exact
//! child_server` and `PORTCULLIS_MEMORY_CHILD` set), so neither the test harness nor the
//! 1,000-connection client blurs the figure. The parent fires the requests and reads the
//! child's `/proc` entry. Linux only.
//!
//! The bound asserted is `max_concurrent × m + MARGIN`: the argon2 buffers the pool may hold,
//! plus everything else the server process needs. See [`MARGIN_MIB`] for what that covers.
#![cfg(all(target_os = "linux", feature = "axum", feature = "basic"))]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::BasicAuthenticator;
use portcullis::basic::{HashingConfig, HashingPool, encode_basic};
use portcullis::store::MemoryUserStore;
use reqwest::StatusCode;
use tokio::task::JoinSet;

/// The environment variable that turns [`child_server`] into a server.
const CHILD: &str = "PORTCULLIS_MEMORY_CHILD";
/// Starts each line the child prints for the parent.
const MARK: &str = "@@child: ";
/// argon2id memory cost in the flood: the default, 19 MiB.
const FLOOD_M_KIB: u32 = 19_456;
/// argon2id memory cost for the many-verifications test: smaller, so a debug build runs a few
/// hundred of them in seconds. The allocator behaves the same for any cost above its 128 KiB
/// mmap threshold.
const MANY_M_KIB: u32 = 1_024;
/// How many pairs of verifications the many-verifications test runs.
const MANY_PAIRS: usize = 200;
const PERMITS: usize = 2;
/// How long a request waits for a hashing slot before it gets 503.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// Everything in the server process but argon2's buffers. Measured in a debug build: the idle
/// server process (runtime, axum, test harness) holds about 10 MiB besides its one argon2
/// buffer, and 1,000 open connections with their request tasks add about 17 MiB (hyper's read
/// and write buffers and the task, some 17 KiB each): 27 MiB in all. 48 MiB leaves room for
/// allocator slack and another libc, and is still less than three more argon2 buffers; one
/// buffer per request in flight would be 1,000 × 19 MiB.
const MARGIN_MIB: u64 = 48;

#[test]
fn a_flood_of_basic_attempts_stays_within_the_pool_bound() {
    let server = Server::start("flood");
    let port = server.port;
    let baseline = server.kib("VmRSS");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let outcomes = runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let mut tasks = JoinSet::new();
        for i in 0..1_000 {
            let client = client.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let response = client
                    .get(format!("http://127.0.0.1:{port}/me"))
                    .header("authorization", encode_basic(&format!("user{i}"), "guess"))
                    .send()
                    .await
                    .expect("an answer");
                (response.status(), started.elapsed())
            });
        }
        let mut outcomes = Vec::new();
        while let Some(outcome) = tasks.join_next().await {
            outcomes.push(outcome.expect("request task"));
        }
        outcomes
    });
    let peak = server.kib("VmHWM");
    drop(server);

    let refused: Vec<Duration> = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .map(|(_, took)| *took)
        .collect();
    let checked = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::UNAUTHORIZED)
        .count();
    let slowest_503 = refused.iter().max().copied().unwrap_or_default();
    let bound = PERMITS as u64 * u64::from(FLOOD_M_KIB) + MARGIN_MIB * 1024;
    println!(
        "1000 attempts: {checked} checked (401), {} refused (503), slowest 503 after {slowest_503:?}; \
         server RSS before {} KiB, peak {peak} KiB, bound {bound} KiB",
        refused.len(),
        baseline
    );
    assert_eq!(
        checked + refused.len(),
        1_000,
        "only 401 and 503: {outcomes:?}"
    );
    assert!(checked >= PERMITS, "the pool kept working: {checked}");
    assert!(
        refused.len() > 900,
        "the excess was refused: {}",
        refused.len()
    );
    // A refused request waited for a slot for MAX_WAIT, no longer; the slack covers 1,000
    // connections being accepted and answered by a debug build on two busy cores.
    assert!(
        slowest_503 < MAX_WAIT + Duration::from_secs(3),
        "503 after {slowest_503:?}"
    );
    assert!(peak <= bound, "peak {peak} KiB over the bound {bound} KiB");
}

#[test]
fn many_verifications_keep_no_more_than_the_pool_holds() {
    let mut server = Server::start("many");
    let done = server.line();
    let peak = server.kib("VmHWM");
    let baseline: u64 = done
        .strip_prefix("done, baseline ")
        .and_then(|rest| rest.parse().ok())
        .unwrap_or_else(|| panic!("unexpected child output {done:?}"));
    drop(server);
    // The process before the pool, then the pool's buffers, and a little for the rest: glibc
    // keeping freed 4 MiB buffers in per-thread arenas (as it did before buffers were reused)
    // would add one or more buffers per arena, dozens of MiB.
    let bound = baseline + PERMITS as u64 * u64::from(MANY_M_KIB) + 8 * 1024;
    println!(
        "{} verifications, {PERMITS} at a time: baseline {baseline} KiB, peak {peak} KiB, \
         bound {bound} KiB",
        MANY_PAIRS * PERMITS
    );
    assert!(peak <= bound, "peak {peak} KiB over the bound {bound} KiB");
}

/// The server side of [`a_flood_of_basic_attempts_stays_within_the_pool_bound`] and
/// [`many_verifications_keep_no_more_than_the_pool_holds`]; does nothing unless run by them.
#[test]
#[ignore = "run as a child process by the memory tests"]
fn child_server() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        match mode.as_str() {
            "flood" => flood_server().await,
            "many" => many_verifications().await,
            other => panic!("unknown mode {other}"),
        }
    });
    // Exit once the parent closes stdin (or, if it died, after a minute).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(60));
}

async fn flood_server() {
    let config = HashingConfig::default()
        .with_memory_kib(FLOOD_M_KIB)
        .with_iterations(2)
        .with_parallelism(1)
        .with_max_concurrent(PERMITS)
        .with_max_wait(MAX_WAIT);
    // Lockout off: every attempt comes from 127.0.0.1, and the IP's lock would refuse the
    // flood before hashing, which is not what this test measures.
    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .hashing(config)
            .dangerous_disable_lockout()
            .build()
            .expect("valid settings"),
    );
    let gate = common::gate_with(basic);
    let base = common::serve(gate).await;
    let port = base.rsplit(':').next().expect("port");
    println!("{MARK}port {port}");
    // The server runs on this runtime's worker threads; keep the runtime alive until stdin closes.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    let _ = tokio::time::timeout(Duration::from_secs(120), rx).await;
}

async fn many_verifications() {
    println!("{MARK}port 0");
    let baseline = status_kib(std::process::id(), "VmRSS");
    let pool = HashingPool::new(
        HashingConfig::default()
            .with_memory_kib(MANY_M_KIB)
            .with_iterations(1)
            .with_parallelism(1)
            .with_max_concurrent(PERMITS)
            .with_max_wait(Duration::from_secs(60)),
    )
    .expect("valid settings");
    for _ in 0..MANY_PAIRS {
        let mut pair = JoinSet::new();
        for _ in 0..PERMITS {
            let pool = pool.clone();
            pair.spawn(async move { pool.verify(&"guess".into(), None).await });
        }
        while let Some(result) = pair.join_next().await {
            assert!(!result.expect("task").expect("verified").matched);
        }
    }
    println!("{MARK}done, baseline {baseline}");
}

/// A child process running [`child_server`] in `mode`.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Server {
    fn start(mode: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--ignored", "--exact", "child_server", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut server = Self {
            child,
            stdout,
            port: 0,
        };
        let line = server.line();
        server.port = line
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected child output {line:?}"));
        server
    }

    /// The next line the child prints that is not the test harness's own.
    fn line(&mut self) -> String {
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line).expect("child output");
            assert!(read > 0, "the child exited");
            // The harness prints `test child_server ... ` on the same line as the first message.
            if let Some((_, message)) = line.split_once(MARK) {
                return message.trim().to_owned();
            }
        }
    }

    fn kib(&self, field: &str) -> u64 {
        status_kib(self.child.id(), field)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kB` field of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("a number of kB")
}
