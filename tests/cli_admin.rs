//! `portcullis user …` and `portcullis key …` against a SQLite file, run as an operator would.
#![cfg(all(feature = "cli", feature = "sqlite"))]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use portcullis::store::open_store;
use portcullis::{ApiKeys, Gate, RequestView, SecretString};

const PEPPER: &str = "cli-test-pepper-0123456789-abcdefghijklmnop";

struct Db {
    dir: PathBuf,
    url: String,
}

impl Db {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("portcullis-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("admin.db").display());
        Self { dir, url }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["--db", &self.url])
            .args(args)
            .env("PORTCULLIS_API_KEY_PEPPER", PEPPER)
            .env_remove("PORTCULLIS_DB")
            .env_remove("PORTCULLIS_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("portcullis runs");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("exits")
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8(out.stderr).expect("utf8");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one-line error: {stderr}"
        );
        stderr
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn keys_made_by_the_cli_authenticate_and_revoke() {
    let db = Db::new("keys");
    db.ok(
        &["user", "add", "alice", "--group", "admin"],
        Some("s3cret pass\n"),
    );
    let stdout = db.ok(
        &[
            "key",
            "create",
            "--owner",
            "alice",
            "--expires-in",
            "30d",
            "--scope",
            "read",
            "--name",
            "ci",
        ],
        None,
    );
    let key = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "the key alone on stdout: {stdout:?}"
    );
    assert!(key.starts_with("pc_"), "{key}");

    let list: serde_json::Value =
        serde_json::from_str(&db.ok(&["key", "list", "--json"], None)).expect("json");
    let keys = list.as_array().expect("array");
    assert_eq!(keys.len(), 1);
    let id = keys[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(keys[0]["owner"], "alice");
    let listed = list.to_string();
    assert!(
        !listed.contains(&key[key.len() - 20..]),
        "no secret in listings"
    );
    assert!(!listed.contains("digest"), "no digest in listings");

    // The library, over the same file and pepper, accepts the key the CLI printed.
    let stores = open_store(&db.url).await.expect("open");
    let manager = ApiKeys::builder(stores.api_keys, SecretString::new(PEPPER))
        .cache_ttl(std::time::Duration::ZERO)
        .build()
        .expect("manager");
    let gate = Gate::builder()
        .authenticator(manager.authenticator())
        .build()
        .expect("gate");
    let check = |key: String| {
        let gate = gate.clone();
        async move {
            let (parts, ()) = http::Request::get("/x")
                .header("x-api-key", key)
                .body(())
                .expect("req")
                .into_parts();
            gate.check(&RequestView::from_parts(&parts)).await
        }
    };
    let principal = check(key.to_owned())
        .await
        .expect("valid")
        .expect("principal");
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.scopes(), ["read"]);

    let rotated = db.ok(&["key", "rotate", &id, "--overlap", "1h"], None);
    assert!(
        check(rotated.trim().to_owned()).await.is_ok(),
        "new key works"
    );
    assert!(
        check(key.to_owned()).await.is_ok(),
        "old key works during the overlap"
    );
    db.ok(&["key", "revoke", &id], None);
    assert_eq!(
        check(key.to_owned()).await.unwrap_err().status(),
        401,
        "revoked"
    );
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let db = Db::new("bad");
    db.ok(&["user", "add", "bob"], Some("pw\n"));
    assert!(
        db.fails(&["user", "add", "bob"], Some("pw\n"))
            .contains("already exists")
    );
    assert!(
        db.fails(
            &["key", "create", "--owner", "nobody", "--expires-in", "1d"],
            None
        )
        .contains("unknown owner")
    );
    let over = db.fails(
        &[
            "--max-lifetime",
            "90d",
            "key",
            "create",
            "--owner",
            "bob",
            "--expires-in",
            "400d",
        ],
        None,
    );
    assert!(over.contains("90d"), "{over}");
    assert!(
        db.fails(&["key", "create", "--owner", "bob"], None)
            .contains("expir")
    );
    let bad_duration = db.run(
        &["key", "create", "--owner", "bob", "--expires-in", "3x"],
        None,
    );
    assert!(!bad_duration.status.success());
    assert!(String::from_utf8_lossy(&bad_duration.stderr).contains("3x"));
    assert!(
        db.fails(&["key", "revoke", "nosuchid"], None)
            .to_lowercase()
            .contains("no")
    );
    let list: serde_json::Value =
        serde_json::from_str(&db.ok(&["key", "list", "--json"], None)).expect("json");
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "nothing half-written"
    );
}

#[test]
fn unreachable_database_is_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--db", "postgres://nobody@127.0.0.1:1/none", "user", "list"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        !stderr.contains("nobody@"),
        "no credentials echoed: {stderr}"
    );
}

#[test]
fn users_list_passwd_and_disable() {
    let db = Db::new("users");
    db.ok(&["user", "add", "carol", "--group", "ops"], Some("one\n"));
    db.ok(&["user", "add", "svc", "--application"], Some("two\n"));
    db.ok(&["user", "passwd", "carol"], Some("three\n"));
    db.ok(&["user", "disable", "svc"], None);
    let users: serde_json::Value =
        serde_json::from_str(&db.ok(&["user", "list", "--json"], None)).expect("json");
    let users = users.as_array().expect("array");
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["name"], "carol");
    assert_eq!(users[0]["groups"][0], "ops");
    assert_eq!(users[1]["kind"], "application");
    assert_eq!(users[1]["disabled"], true);
    assert!(
        !users[0].to_string().contains("argon2"),
        "no hashes in listings"
    );
    assert!(
        db.fails(&["user", "passwd", "nobody"], Some("x\n"))
            .contains("nobody")
    );
}

#[test]
fn no_store_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["user", "list"])
        .env_remove("PORTCULLIS_DB")
        .env_remove("PORTCULLIS_CONFIG")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db"));
}
