//! `portcullis config check|explain` and `portcullis hash-password`, run as a user would.
#![cfg(feature = "cli")]

mod common;

use std::process::Output;
use std::time::Duration;

use portcullis::SecretString;
use portcullis::basic::{HashingConfig, HashingPool};
use portcullis::jwt::{JwtIssuer, SigningKey};
use portcullis::store::PasswordHash;
use portcullis::{Principal, Scheme, SubjectKind};

use common::cli::{TempDir, portcullis};

fn example() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/portcullis.toml").to_owned()
}

fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn check_accepts_the_example() {
    let out = portcullis(&["config", "check", &example()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_reports_line_column_and_key() {
    let dir = TempDir::new("bad-config");
    let file = dir.write("bad.toml", "[gate]\ntrusted_proxies = [\"300.0.0.1\"]\n");
    let out = portcullis(&["config", "check", &file], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("{file}:2:")), "{stderr}");
    assert!(stderr.contains("gate.trusted_proxies[0]"), "{stderr}");
}

#[test]
fn explain_prints_the_trace_and_the_decision() {
    let out = portcullis(
        &["config", "explain", &example(), "--path", "/health"],
        None,
    );
    assert!(out.status.success());
    assert!(last_line(&out).starts_with("allow"), "{}", last_line(&out));

    let out = portcullis(
        &[
            "config",
            "explain",
            &example(),
            "--method",
            "DELETE",
            "--path",
            "/admin/users",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("route: matched rule * /admin/**"),
        "{stdout}"
    );
    assert!(last_line(&out).starts_with("deny: 401"), "{stdout}");

    // Basic is blocked on /admin before any other rule of the admins policy is reached.
    let basic = "Authorization: Basic YWxpY2U6Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==";
    let out = admin_via_proxy("198.51.100.9", basic);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        last_line(&out).starts_with("deny: 403 Forbidden (schemes:"),
        "{stdout}"
    );

    // An admin's token passes the scheme and group rules; the client IP then decides.
    let bearer = format!("Authorization: Bearer {}", admin_token());
    let out = admin_via_proxy("198.51.100.9", &bearer);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("resolved to 198.51.100.9"), "{stdout}");
    assert!(stdout.contains("authenticated \"root\""), "{stdout}");
    let last = last_line(&out);
    assert!(last.starts_with("deny: 403"), "{stdout}");
    assert!(
        last.contains("ip_ranges: 198.51.100.9 is not in the allow list"),
        "{stdout}"
    );
    let out = admin_via_proxy("192.0.2.10", &bearer);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        last_line(&out).starts_with("allow: user \"root\" via jwt"),
        "{stdout}"
    );
}

/// `GET /admin/x` through the trusted proxy 10.1.1.1, forwarding for `client`.
fn admin_via_proxy(client: &str, credential: &str) -> Output {
    portcullis(
        &[
            "config",
            "explain",
            &example(),
            "--path",
            "/admin/x",
            "--peer",
            "10.1.1.1",
            "--header",
            &format!("X-Forwarded-For: {client}"),
            "--header",
            credential,
        ],
        None,
    )
}

/// A token from the example's `billing` issuer for "root", in group admin.
fn admin_token() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/example-hs256.key");
    let secret = std::fs::read_to_string(path).expect("example key");
    let key = SigningKey::hs256(secret.trim_end().as_bytes()).expect("HS256 key");
    let issuer = JwtIssuer::builder("billing", key)
        .audience("orders-api")
        .build()
        .expect("issuer");
    let root = Principal::new("root", SubjectKind::User, Scheme::JWT).with_groups(["admin"]);
    let token = issuer
        .issue(&root, Duration::from_secs(300))
        .expect("token");
    token.expose_secret().to_owned()
}

#[test]
fn hash_password_prints_a_phc_string() {
    let out = portcullis(&["hash-password"], Some("correct horse\n"));
    assert!(out.status.success());
    let phc = String::from_utf8_lossy(&out.stdout);
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
}

#[test]
fn check_reports_jwt_mistakes_with_line_and_key() {
    let dir = TempDir::new("jwt-config");
    let file = dir.write(
        "jwt.toml",
        "[jwt]\naudiences = [\"orders\"]\nmax_lifetime = \"ninety days\"\n\n[[jwt.issuers]]\nissuer = \"billing\"\nsecret_file = \"billing.key\"\n",
    );
    let out = portcullis(&["config", "check", &file], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{file}:3:16: jwt.max_lifetime:")),
        "{stderr}"
    );
    assert!(stderr.contains("not a duration"), "{stderr}");
}

/// A cost below OWASP's argon2id minimum is a configuration error (exit 1) at its line and key,
/// naming the key that allows it; with that key the file checks clean.
#[test]
fn check_refuses_weak_hashing_unless_dangerous() {
    let dir = TempDir::new("weak-hashing");
    let file = dir.write(
        "weak.toml",
        "[basic]\nrealm = \"r\"\n\n[basic.hashing]\nmemory_kib = 19455\niterations = 2\n",
    );
    let out = portcullis(&["config", "check", &file], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{file}:6:14: basic.hashing.iterations:")),
        "{stderr}"
    );
    assert!(stderr.contains("dangerous_weak_hashing = true"), "{stderr}");

    let file = dir.write(
        "allowed.toml",
        "[basic]\nrealm = \"r\"\n\n[basic.hashing]\nmemory_kib = 19455\niterations = 2\n\
         dangerous_weak_hashing = true\n",
    );
    let out = portcullis(&["config", "check", &file], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pool cost of the files below: small, so the tests stay fast.
const POOL_HASHING: &str = "[basic.hashing]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\ndangerous_weak_hashing = true\n";

/// A PHC hash of "pw" at `m`, `t`, `p`.
async fn hash_at(m: u32, t: u32, p: u32) -> String {
    let pool = HashingPool::new(
        HashingConfig::default()
            .with_memory_kib(m)
            .with_iterations(t)
            .with_parallelism(p),
    )
    .expect("pool");
    pool.hash(&SecretString::new("pw"))
        .await
        .expect("hash")
        .expose_phc()
        .to_owned()
}

fn inline_user(name: &str, phc: &str) -> String {
    format!("[[basic.users]]\nname = \"{name}\"\npassword_hash = \"{phc}\"\n")
}

#[tokio::test]
async fn check_warns_only_about_inline_hashes_costlier_than_the_pool() {
    let dir = TempDir::new("costly-inline");
    let costly = hash_at(2048, 2, 1).await;
    let file = dir.write(
        "costly.toml",
        &format!(
            "{POOL_HASHING}\n{}\n{}\n{}",
            inline_user("carol", &costly),
            inline_user("alice", &hash_at(1024, 1, 1).await),
            inline_user("bob", &hash_at(256, 1, 1).await),
        ),
    );
    let out = portcullis(&["config", "check", &file], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let warning = warnings[0];
    assert!(warning.contains("user \"carol\""), "{warning}");
    assert!(warning.contains("m=2048, t=2, p=1"), "{warning}");
    assert!(warning.contains("m=1024, t=1, p=1"), "{warning}");
    // Users at the pool's cost (alice) and below it (bob, padded) get no warning.
    assert!(
        !stderr.contains("alice") && !stderr.contains("bob"),
        "{stderr}"
    );
    // Neither the hash nor any part of it.
    let (_, digest) = costly.rsplit_once('$').expect("PHC");
    assert!(!stderr.contains(digest), "{stderr}");
    assert!(!stderr.contains("$argon2id"), "{stderr}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn check_warns_about_costlier_hashes_in_the_store() {
    use portcullis::store::{SqliteStore, UserRecord, UserStore as _};

    let dir = TempDir::new("costly-store");
    let store = SqliteStore::open(dir.path().join("users.db").to_str().expect("utf8 path"))
        .await
        .expect("store");
    for (name, phc) in [
        ("dave", hash_at(2048, 1, 1).await),
        ("erin", hash_at(1024, 1, 1).await),
    ] {
        store
            .create_user(UserRecord::new(name, PasswordHash::new(phc)))
            .await
            .expect("user");
    }
    store.close().await;
    // A path relative to the file, as `build` takes it.
    let file = dir.write(
        "store.toml",
        &format!("[store]\nurl = \"sqlite://users.db\"\n\n{POOL_HASHING}"),
    );
    let out = portcullis(&["config", "check", &file], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("user \"dave\""), "{stderr}");
    assert!(stderr.contains("m=2048, t=1, p=1"), "{stderr}");

    // A store file that does not exist has no users to warn about, and is not created.
    let file = dir.write(
        "missing.toml",
        &format!("[store]\nurl = \"sqlite://missing.db\"\n\n{POOL_HASHING}"),
    );
    let out = portcullis(&["config", "check", &file], None);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert!(!dir.path().join("missing.db").exists());
}

/// `portcullis hash-password` with `args`, "correct horse" on stdin.
fn hash_password(args: &[&str]) -> Output {
    portcullis(
        &[&["hash-password"], args].concat(),
        Some("correct horse\n"),
    )
}

#[test]
fn hash_password_uses_the_cost_of_the_config_file() {
    let dir = TempDir::new("hash-config");
    let file = dir.write(
        "cost.toml",
        "[basic.hashing]\nmemory_kib = 4096\niterations = 3\nparallelism = 2\ndangerous_weak_hashing = true\n",
    );
    let out = hash_password(&["--config", &file]);
    let phc = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(phc.starts_with("$argon2id$v=19$m=4096,t=3,p=2$"), "{phc}");

    // What the file leaves out keeps its default.
    let file = dir.write("partial.toml", "[basic.hashing]\niterations = 3\n");
    let out = hash_password(&["--config", &file]);
    let phc = String::from_utf8_lossy(&out.stdout);
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"), "{phc}");

    // Without --config: the default cost.
    let out = hash_password(&[]);
    let phc = String::from_utf8_lossy(&out.stdout);
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
}

#[test]
fn hash_password_reports_a_bad_config_file_with_line_and_key() {
    let dir = TempDir::new("hash-bad-config");
    let file = dir.write(
        "bad.toml",
        "[basic]\n\n[basic.hashing]\nmemory_kib = \"lots\"\n",
    );
    let out = hash_password(&["--config", &file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("error: {file}:4:")), "{stderr}");
    assert!(stderr.contains("basic.hashing.memory_kib"), "{stderr}");

    // Parameters argon2 refuses are located by key.
    let file = dir.write("weak.toml", "[basic.hashing]\nmemory_kib = 1\n");
    let out = hash_password(&["--config", &file]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("error: {file}:1:")), "{stderr}");
    assert!(stderr.contains("basic.hashing"), "{stderr}");
}
