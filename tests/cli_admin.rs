//! `portcullis user …` and `portcullis key …` against a SQLite file, run as an operator would.
#![cfg(all(feature = "cli", feature = "sqlite"))]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use portcullis::store::open_store;
use portcullis::{ApiKeys, Gate, Principal, Rejection, RequestView, SecretString};

use common::cli::{self, TempDir, portcullis, succeeded};

const PEPPER: &str = "cli-test-pepper-0123456789-abcdefghijklmnop";

/// A SQLite database file (not there yet) in a directory of its own.
struct Db {
    dir: TempDir,
    url: String,
}

impl Db {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let url = format!("sqlite://{}", dir.path().join("admin.db").display());
        Self { dir, url }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = cli::command(&["--db", &self.url]);
        command.args(args);
        run(command, stdin)
    }

    /// Runs with the database named by `PORTCULLIS_DB` instead of `--db`.
    fn run_from_env(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = cli::command(args);
        command.env("PORTCULLIS_DB", &self.url);
        run(command, stdin)
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("admin.db")
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        succeeded(args, self.run(args, stdin))
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

    /// The keys as `key list --json` shows them.
    fn keys(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let args = [&["key", "list", "--json"], extra].concat();
        let list: serde_json::Value = serde_json::from_str(&self.ok(&args, None)).expect("json");
        list.as_array().expect("array").clone()
    }
}

/// Runs `command` with the test pepper and `stdin`, and waits for it.
fn run(mut command: Command, stdin: Option<&str>) -> Output {
    command.env("PORTCULLIS_API_KEY_PEPPER", PEPPER);
    cli::run(command, stdin)
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
    let bad_duration = db.fails(
        &["key", "create", "--owner", "bob", "--expires-in", "3x"],
        None,
    );
    assert!(bad_duration.starts_with("error: "), "{bad_duration}");
    assert!(bad_duration.contains("3x"), "{bad_duration}");
    let unknown_flag = db.fails(&["key", "list", "--colour"], None);
    assert!(unknown_flag.contains("--colour"), "{unknown_flag}");
    let missing = db.fails(&["key", "create", "--expires-in", "1d"], None);
    assert!(missing.contains("--owner"), "{missing}");
    assert_eq!(
        db.run(&["key", "list", "--colour"], None).status.code(),
        Some(2)
    );
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
    let out = portcullis(
        &["--db", "postgres://nobody@127.0.0.1:1/none", "user", "list"],
        None,
    );
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
    let out = portcullis(&["user", "list"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db"));
}

#[test]
fn help_and_version_print_as_usual() {
    for (args, expected) in [
        (&["--version"][..], "portcullis "),
        (&["key", "create", "--help"][..], "--expires-in"),
    ] {
        let out = portcullis(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(expected), "{args:?}: {stdout}");
    }
}

/// Only commands that add data may create the database file: anything else against a missing
/// (mistyped) path is a one-line error that leaves no file, and so is a failed creating command.
#[test]
fn a_missing_database_is_created_only_by_a_command_that_adds_data() {
    let db = Db::new("missing");
    let refused: &[(&[&str], Option<&str>)] = &[
        (&["user", "list"], None),
        (&["user", "disable", "bob"], None),
        (&["user", "passwd", "bob"], Some("pw\n")),
        (&["key", "list"], None),
        (&["key", "revoke", "someid"], None),
        (&["key", "rotate", "someid"], None),
        (&["key", "delete", "someid"], None),
        // A user's key needs that user, whom a new database cannot hold.
        (
            &["key", "create", "--owner", "bob", "--expires-in", "1d"],
            None,
        ),
    ];
    for (args, stdin) in refused {
        let error = db.fails(args, *stdin);
        assert!(error.contains("no database at"), "{args:?}: {error}");
        assert!(error.contains("admin.db"), "{args:?}: {error}");
        assert!(!db.path().exists(), "{args:?} created the file");
    }
    // Creating commands that fail leave nothing behind either.
    db.fails(&["user", "add", "bob"], Some("\n"));
    assert!(!db.path().exists(), "an empty password created the file");
    db.fails(&["key", "create", "--owner", "svc", "--application"], None);
    assert!(!db.path().exists(), "a key without expiry created the file");

    db.ok(&["user", "add", "bob"], Some("pw\n"));
    assert!(db.path().exists());
    assert_eq!(db.ok(&["user", "list"], None).lines().count(), 1);
}

#[tokio::test]
async fn key_rotate_prints_the_new_key_alone_and_the_old_key_s_real_end() {
    let db = Db::new("rotate");
    db.ok(&["user", "add", "alice"], Some("pw\n"));
    db.ok(
        &["key", "create", "--owner", "alice", "--expires-in", "1h"],
        None,
    );
    let old = db.keys(&[]).remove(0);
    let id = old["id"].as_str().expect("id");
    // A day's overlap, but the old key expires within the hour: the message says so.
    let out = db.run(&["key", "rotate", id, "--overlap", "1d"], None);
    let stdout = succeeded(&["key", "rotate"], out.clone());
    assert_eq!(
        stdout.lines().count(),
        1,
        "the key alone on stdout: {stdout:?}"
    );
    assert!(stdout.starts_with("pc_"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).expect("utf8");
    let end = stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("key {id} keeps working until ")))
        .unwrap_or_else(|| panic!("no end in {stderr}"));
    let end = chrono::DateTime::parse_from_rfc3339(end).expect("an RFC 3339 time");
    let expires = chrono::DateTime::parse_from_rfc3339(old["expires_at"].as_str().expect("time"))
        .expect("an RFC 3339 time");
    assert_eq!(
        end, expires,
        "the old key's own expiry, not the overlap's end"
    );
    let manager = manager(&db).await;
    let principal = check(&gate(&manager), stdout.trim())
        .await
        .expect("the new key works")
        .expect("principal");
    assert_eq!(principal.subject(), "alice");

    // With no overlap the old key stops at once.
    let new_id = principal.credential_id().expect("id").to_owned();
    let out = db.run(&["key", "rotate", &new_id, "--overlap", "0s"], None);
    assert_eq!(
        succeeded(&["key", "rotate"], out.clone()).lines().count(),
        1
    );
    let stderr = String::from_utf8(out.stderr).expect("utf8");
    assert!(
        stderr.contains(&format!("key {new_id} no longer works")),
        "{stderr}"
    );
}

#[tokio::test]
async fn key_list_by_owner_delete_and_application_keys() {
    let db = Db::new("listing");
    db.ok(&["user", "add", "alice"], Some("pw\n"));
    db.ok(&["user", "add", "bob"], Some("pw\n"));
    for owner in ["alice", "alice", "bob"] {
        db.ok(
            &["key", "create", "--owner", owner, "--expires-in", "1d"],
            None,
        );
    }
    let app_key = db.ok(
        &[
            "key",
            "create",
            "--owner",
            "billing",
            "--application",
            "--group",
            "payers",
            "--group",
            "ops",
            "--expires-in",
            "1d",
        ],
        None,
    );
    assert_eq!(db.keys(&[]).len(), 4);
    let owners = |list: Vec<serde_json::Value>| -> Vec<String> {
        list.iter()
            .map(|k| k["owner"].as_str().expect("owner").to_owned())
            .collect()
    };
    assert_eq!(owners(db.keys(&["--owner", "alice"])), ["alice", "alice"]);
    assert_eq!(owners(db.keys(&["--owner", "bob"])), ["bob"]);
    assert!(db.keys(&["--owner", "nobody"]).is_empty());
    let text = db.ok(&["key", "list", "--owner", "bob"], None);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\tbob\t"), "{text}");
    assert!(text.trim_end().ends_with("\tactive"), "{text}");

    // The application's key: no such user needed, its groups recorded and carried.
    let billing = db.keys(&["--owner", "billing"]).remove(0);
    assert_eq!(billing["owner_kind"], "application");
    assert_eq!(billing["groups"], serde_json::json!(["payers", "ops"]));
    let manager = manager(&db).await;
    let principal = check(&gate(&manager), app_key.trim())
        .await
        .expect("valid")
        .expect("principal");
    assert_eq!(principal.subject(), "billing");
    assert_eq!(principal.kind(), portcullis::SubjectKind::Application);
    assert_eq!(principal.groups(), ["payers", "ops"]);

    // Deleting removes the record, and the key stops working.
    let id = billing["id"].as_str().expect("id");
    db.ok(&["key", "delete", id], None);
    assert!(db.keys(&["--owner", "billing"]).is_empty());
    assert_eq!(db.keys(&[]).len(), 3);
    assert_eq!(
        check(&gate(&manager), app_key.trim())
            .await
            .unwrap_err()
            .status(),
        401
    );
    assert!(db.fails(&["key", "delete", id], None).contains(id));

    // Keys are checked against the key store only: disabling their owner leaves them working
    // (docs/operations.md says so, and how to revoke them too).
    let alice_key = db.ok(
        &["key", "create", "--owner", "alice", "--expires-in", "1d"],
        None,
    );
    db.ok(&["user", "disable", "alice"], None);
    assert!(check(&gate(&manager), alice_key.trim()).await.is_ok());
}

/// A self-served key (made by the token API) is marked as such, in text and in JSON.
#[tokio::test]
async fn key_list_marks_self_served_keys() {
    let db = Db::new("self-served");
    db.ok(&["user", "add", "bob"], Some("pw\n"));
    db.ok(
        &["key", "create", "--owner", "bob", "--expires-in", "1d"],
        None,
    );

    manager(&db)
        .await
        .create_self_served(
            portcullis::NewApiKey::new("bob")
                .with_name("laptop")
                .with_expires_in(std::time::Duration::from_secs(3600)),
            5,
        )
        .await
        .expect("self-served");
    let text = db.ok(&["key", "list", "--owner", "bob"], None);
    assert!(text.contains("\tlaptop\t"), "{text}");
    assert!(text.contains("\tactive, self-served\n"), "{text}");
    let bobs = db.keys(&["--owner", "bob"]);
    assert_eq!(bobs[0]["self_served"], false);
    assert_eq!(bobs[1]["self_served"], true);
}

#[test]
fn portcullis_db_names_the_store_instead_of_db() {
    let db = Db::new("env");
    succeeded(
        &["user", "add"],
        db.run_from_env(&["user", "add", "dana", "--group", "ops"], Some("pw\n")),
    );
    let key = succeeded(
        &["key", "create"],
        db.run_from_env(
            &["key", "create", "--owner", "dana", "--expires-in", "1d"],
            None,
        ),
    );
    assert!(key.starts_with("pc_"), "{key}");
    // Written where PORTCULLIS_DB points: `--db` sees it.
    let users = db.ok(&["user", "list"], None);
    assert!(users.starts_with("dana\t"), "{users}");
    assert_eq!(db.keys(&["--owner", "dana"]).len(), 1);
    let listed = succeeded(
        &["key", "list"],
        db.run_from_env(&["key", "list", "--owner", "dana"], None),
    );
    assert_eq!(listed.lines().count(), 1, "{listed}");
}

/// A library-side manager over the CLI's database, with no cache so every check reads the file.
async fn manager(db: &Db) -> ApiKeys {
    let stores = open_store(&db.url).await.expect("open");
    ApiKeys::builder(stores.api_keys, SecretString::new(PEPPER))
        .cache_ttl(std::time::Duration::ZERO)
        .build()
        .expect("manager")
}

fn gate(manager: &ApiKeys) -> Gate {
    Gate::builder()
        .authenticator(manager.authenticator())
        .build()
        .expect("gate")
}

async fn check(gate: &Gate, key: &str) -> Result<Option<Principal>, Rejection> {
    let (parts, ()) = http::Request::get("/x")
        .header("x-api-key", key)
        .body(())
        .expect("req")
        .into_parts();
    gate.check(&RequestView::from_parts(&parts)).await
}

/// A pepper file others can read is reported on stderr, whether named with `--pepper-file` or
/// by a configuration file (the library's warning, which the command prints); the command still
/// runs. The database file the command creates is its owner's only.
#[cfg(unix)]
#[test]
fn a_pepper_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = Db::new("pepper-mode");
    let pepper = db.dir.path().join("pepper");
    std::fs::write(&pepper, format!("{PEPPER}\n")).expect("pepper");
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let pepper_arg = pepper.to_str().expect("utf8 path");
    db.ok(&["user", "add", "alice"], Some("pw\n"));
    let out = db.run(
        &[
            "key",
            "create",
            "--owner",
            "alice",
            "--expires-in",
            "1d",
            "--pepper-file",
            pepper_arg,
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    succeeded(&["key", "create"], out);
    assert!(
        stderr.contains("readable by group or others (mode 0644)"),
        "{stderr}"
    );
    assert!(!stderr.contains(PEPPER), "{stderr}");
    let mode = std::fs::metadata(db.path())
        .expect("db")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");

    let config = db.dir.path().join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n[api_keys]\npepper_file = \"pepper\"\n",
            db.url
        ),
    )
    .expect("config");
    let command = cli::command(&[
        "key",
        "list",
        "--config",
        config.to_str().expect("utf8 path"),
    ]);
    let out = run(command, None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    succeeded(&["key", "list"], out);
    assert!(
        stderr.contains("readable by group or others (mode 0644)"),
        "{stderr}"
    );

    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let out = db.run(&["key", "list", "--pepper-file", pepper_arg], None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    succeeded(&["key", "list"], out);
    assert!(!stderr.contains("readable"), "{stderr}");
}
