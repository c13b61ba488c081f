//! `portcullis config check|explain` and `portcullis hash-password`, run as a user would.
#![cfg(feature = "cli")]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use portcullis::jwt::{JwtIssuer, SigningKey};
use portcullis::{Principal, Scheme, SubjectKind};

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .expect("portcullis runs")
}

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
    let out = portcullis(&["config", "check", &example()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_reports_line_column_and_key() {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[gate]\ntrusted_proxies = [\"300.0.0.1\"]\n").expect("write");
    let out = portcullis(&["config", "check", file.to_str().expect("utf8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:2:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("gate.trusted_proxies[0]"), "{stderr}");
}

#[test]
fn explain_prints_the_trace_and_the_decision() {
    let out = portcullis(&["config", "explain", &example(), "--path", "/health"]);
    assert!(out.status.success());
    assert!(last_line(&out).starts_with("allow"), "{}", last_line(&out));

    let out = portcullis(&[
        "config",
        "explain",
        &example(),
        "--method",
        "DELETE",
        "--path",
        "/admin/users",
    ]);
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
    portcullis(&[
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
    ])
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
    let root = Principal::new("root", SubjectKind::User, Scheme::Jwt).with_groups(["admin"]);
    let token = issuer
        .issue(&root, Duration::from_secs(300))
        .expect("token");
    token.expose_secret().to_owned()
}

#[test]
fn hash_password_prints_a_phc_string() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse\n")
        .expect("write");
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success());
    let phc = String::from_utf8_lossy(&out.stdout);
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
}

#[test]
fn check_reports_jwt_mistakes_with_line_and_key() {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("jwt.toml");
    std::fs::write(
        &file,
        "[jwt]\naudiences = [\"orders\"]\nmax_lifetime = \"ninety days\"\n\n[[jwt.issuers]]\nissuer = \"billing\"\nsecret_file = \"billing.key\"\n",
    )
    .expect("write");
    let out = portcullis(&["config", "check", file.to_str().expect("utf8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:3:16: jwt.max_lifetime:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("not a duration"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
