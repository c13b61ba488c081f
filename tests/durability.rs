//! Writes are durable when the call returns: a child process writing API keys and users to a
//! SQLite file is killed with SIGKILL mid-burst, and every write it reported is there, intact,
//! after reopening.
//!
//! The child is this test binary again, running [`child_writer`] with
//! `PORTCULLIS_DURABILITY_WRITER` naming the file; without the variable that test does nothing.
#![cfg(feature = "sqlite")]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use portcullis::store::{ApiKeyRecord, ApiKeyStore, KeyDigest, SqliteStore, UserRecord, UserStore};
use portcullis::{PasswordHash, SubjectKind};

const WRITER_ENV: &str = "PORTCULLIS_DURABILITY_WRITER";

/// How many reported writes to wait for before killing the writer.
const KILL_AFTER: usize = 40;

/// Writer tasks running at once in the child.
const WRITERS: usize = 4;

#[test]
fn killed_writer_loses_nothing_it_reported() {
    let db = TempDb::new();
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, &db.path)
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

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(db.path.to_str().unwrap()).await.unwrap();
        for write in &reported {
            match write {
                Reported::Key(n) => {
                    let expected = key_record(*n);
                    let found = store
                        .find(&expected.id)
                        .await
                        .unwrap()
                        .unwrap_or_else(|| panic!("reported key {} is lost", expected.id));
                    assert_eq!(found.owner, expected.owner);
                    assert_eq!(found.name, expected.name);
                    assert_eq!(found.scopes, expected.scopes);
                    assert_eq!(found.created_at, expected.created_at);
                    assert_eq!(found.expires_at, expected.expires_at);
                    assert!(found.digest.ct_eq(&expected.digest), "{}", expected.id);
                    assert!(found.is_active_at(expected.created_at));
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
                    .filter(|w| matches!(w, Reported::Key(_)))
                    .count()
        );
        store.insert(key_record(1_000_000)).await.unwrap();
        store.close().await;
    });
    println!(
        "{} reported writes survived SIGKILL ({:?})",
        reported.len(),
        started.elapsed()
    );
}

/// The child: writes keys (and every fifth time a user) as fast as it can, printing each one
/// only after the store call returned. Does nothing unless `PORTCULLIS_DURABILITY_WRITER` is set.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return;
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
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    // Writer w writes numbers w, w + WRITERS, … so no two collide.
                    let mut n = writer;
                    while Instant::now() < deadline {
                        let line = if n % 5 == 4 {
                            store.create_user(user_record(n)).await.unwrap();
                            format!("user {n}")
                        } else {
                            store.insert(key_record(n)).await.unwrap();
                            format!("key {n}")
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
    Key(usize),
    User(usize),
}

impl Reported {
    fn parse(line: &str) -> Option<Self> {
        let (kind, n) = line.split_once(' ')?;
        let n = n.trim().parse().ok()?;
        match kind {
            "key" => Some(Self::Key(n)),
            "user" => Some(Self::User(n)),
            _ => None,
        }
    }
}

fn key_record(n: usize) -> ApiKeyRecord {
    let created_at = at(n);
    ApiKeyRecord {
        id: format!("dur{n:07}"),
        owner: format!("owner{}", n % 7),
        owner_kind: SubjectKind::User,
        name: format!("key number {n}"),
        scopes: vec!["read".into(), format!("s{n}")],
        groups: Vec::new(),
        created_at,
        created_by: Some("durability test".into()),
        expires_at: Some(created_at + chrono::TimeDelta::days(30)),
        revoked_at: None,
        last_used_at: None,
        replaces: None,
        replaced_by: None,
        digest: KeyDigest::from_bytes(std::array::from_fn(|i| (n as u8) ^ (i as u8 * 7))),
    }
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
