//! Writes are durable when the call returns: a child process creating API keys (through
//! [`ApiKeys::create`], as a service would) and users in a SQLite file is killed with SIGKILL
//! mid-burst, and every key it reported authenticates through a Gate after reopening; every user
//! it reported is there, intact.
//!
//! The child is this test binary again, running the ignored [`child_writer`] (`--ignored
//! --exact child_writer`) with `PORTCULLIS_DURABILITY_WRITER` naming the file. It is ignored so
//! that it never shows as a test that passed: on its own it tests nothing, and run without the
//! variable (`--include-ignored`) it fails saying so.
#![cfg(all(feature = "sqlite", feature = "api-key"))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portcullis::store::PasswordHash;
use portcullis::store::{ApiKeyStore, SqliteStore, UserRecord, UserStore};
use portcullis::{ApiKeys, Gate, NewApiKey, RequestView, SecretString};

const WRITER_ENV: &str = "PORTCULLIS_DURABILITY_WRITER";

/// The pepper both processes use, so the parent can check the keys the child made.
const PEPPER: &str = "durability-test-pepper-0123456789-abcdefghij";

/// How many reported writes to wait for before killing the writer.
const KILL_AFTER: usize = 40;

/// Writer tasks running at once in the child.
const WRITERS: usize = 4;

#[test]
fn killed_writer_loses_nothing_it_reported() {
    let db = TempDb::new();
    let started = Instant::now();
    let reported = write_until_killed(&db.path, started);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(check_survivors(&db.path, &reported));
    println!(
        "{} reported writes survived SIGKILL ({:?})",
        reported.len(),
        started.elapsed()
    );
}

/// Runs [`child_writer`] on `path` and kills it with SIGKILL after [`KILL_AFTER`] reports;
/// returns every write it reported.
fn write_until_killed(path: &std::path::Path, started: Instant) -> Vec<Reported> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // Read reports until enough are in, then kill the writer while it is still writing.
    let mut reported = Vec::new();
    for line in lines.by_ref() {
        if let Some(write) = Reported::parse(&line.unwrap()) {
            reported.push(write);
            if reported.len() == KILL_AFTER {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer is too slow"
        );
    }
    assert_eq!(reported.len(), KILL_AFTER, "the writer stopped early");
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no checkpoint.
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer was killed, not finished");
    // Whatever it reported before it died counts too.
    reported.extend(
        lines
            .map_while(Result::ok)
            .filter_map(|l| Reported::parse(&l)),
    );
    reported
}

/// Every reported write reads back from the file at `path`, and the store still writes.
async fn check_survivors(path: &std::path::Path, reported: &[Reported]) {
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let keys = manager(&store);
    let gate = Gate::builder()
        .authenticator(keys.authenticator())
        .build()
        .unwrap();
    for write in reported {
        match write {
            Reported::Key(n, key) => {
                let principal = authenticate(&gate, key)
                    .await
                    .unwrap_or_else(|e| panic!("reported key {n} refused: {e}"))
                    .expect("a principal");
                assert_eq!(principal.subject(), owner(*n));
                let id = principal.credential_id().expect("a key id");
                let record = store.find(id).await.unwrap().expect("listed");
                assert_eq!(record.name, key_name(*n));
                assert_eq!(record.scopes, ["read".to_owned(), format!("s{n}")]);
            }
            Reported::User(n) => {
                let expected = user_record(*n);
                let found = store
                    .find_user(&expected.name)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("reported user {} is lost", expected.name));
                assert!(found.password_hash.ct_eq(&expected.password_hash));
                assert_eq!(found.groups, expected.groups);
            }
        }
    }
    // The file is whole: everything in it reads back, and writing still works.
    let all = store.list(None).await.unwrap();
    assert!(
        all.len()
            >= reported
                .iter()
                .filter(|w| matches!(w, Reported::Key(..)))
                .count()
    );
    let after = keys.create(new_key(1_000_000)).await.unwrap();
    let key = after.key().expose_secret().to_owned();
    assert!(authenticate(&gate, &key).await.is_ok());
    drop((gate, keys));
    store.close().await;
}

/// The child: creates keys (and every fifth time a user) as fast as it can, printing each key in
/// full only after the call returned. Only [`killed_writer_loses_nothing_it_reported`] runs it,
/// with `PORTCULLIS_DURABILITY_WRITER` set.
#[test]
#[ignore = "the child process of killed_writer_loses_nothing_it_reported, which runs it"]
fn child_writer() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        panic!("{WRITER_ENV} is not set: this is a child process, not a test on its own");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WRITERS)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open(Path::new(&path).to_str().unwrap())
            .await
            .unwrap();
        let keys = manager(&store);
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (store, keys) = (store.clone(), keys.clone());
                tokio::spawn(async move {
                    // Writer w writes numbers w, w + WRITERS, … so no two collide.
                    let mut n = writer;
                    while Instant::now() < deadline {
                        let line = if n % 5 == 4 {
                            store.create_user(user_record(n)).await.unwrap();
                            format!("user {n}")
                        } else {
                            let issued = keys.create(new_key(n)).await.unwrap();
                            format!("key {n} {}", issued.key().expose_secret())
                        };
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "{line}").unwrap();
                        out.flush().unwrap();
                        n += WRITERS;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// A write the child reported.
#[derive(Debug)]
enum Reported {
    /// Key number `n`, in full.
    Key(usize, String),
    User(usize),
}

impl Reported {
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let kind = words.next()?;
        let n = words.next()?.parse().ok()?;
        match (kind, words.next()) {
            ("key", Some(key)) => Some(Self::Key(n, key.to_owned())),
            ("user", None) => Some(Self::User(n)),
            _ => None,
        }
    }
}

/// The key manager both processes use over `store`.
fn manager(store: &SqliteStore) -> ApiKeys {
    let store: Arc<dyn ApiKeyStore> = Arc::new(store.clone());
    ApiKeys::builder(store, SecretString::new(PEPPER))
        .build()
        .unwrap()
}

/// What key number `n` is created with, so the parent knows what to find.
fn new_key(n: usize) -> NewApiKey {
    NewApiKey::new(owner(n))
        .with_name(key_name(n))
        .with_scopes(["read".to_owned(), format!("s{n}")])
        .with_expires_in(Duration::from_secs(30 * 86_400))
        .with_created_by("durability test")
}

fn owner(n: usize) -> String {
    format!("owner{}", n % 7)
}

fn key_name(n: usize) -> String {
    format!("key number {n}")
}

/// Presents `key` to `gate` in the API-key header.
async fn authenticate(
    gate: &Gate,
    key: &str,
) -> Result<Option<portcullis::Principal>, portcullis::Rejection> {
    let (parts, ()) = http::Request::get("/x")
        .header("x-api-key", key)
        .body(())
        .unwrap()
        .into_parts();
    gate.check(&RequestView::from_parts(&parts)).await
}

fn user_record(n: usize) -> UserRecord {
    let mut user = UserRecord::new(
        format!("user{n}"),
        PasswordHash::new(format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$h{n}")),
    )
    .with_groups([format!("g{n}")]);
    user.created_at = at(n);
    user.updated_at = at(n);
    user
}

/// A fixed time per record, so the parent knows what the child wrote.
fn at(n: usize) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + n as i64, 0).unwrap()
}

/// A database file in the temporary directory, removed (with its sidecars) on drop.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self {
            path: std::env::temp_dir().join(format!(
                "portcullis-durability-{}-{nanos}.db",
                std::process::id()
            )),
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}
