//! `portcullis token verify`, run as a user would: the principal as JSON and exit 0, or why the
//! token is refused and exit 1; keys from a secret file, a JWKS file and a JWKS URL.
#![cfg(feature = "cli")]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use portcullis::jwt::{Algorithm, JwtIssuer, SigningKey};
use portcullis::{Principal, Scheme, SubjectKind};
use support::{IdpServer, TestKey, claims, jwks};

fn portcullis(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("portcullis runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(input);
    child.wait_with_output().expect("portcullis ends")
}

/// A directory of this process's own for the test `name`.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-token-cli-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn stdout(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn verify_with_a_secret_file() {
    let dir = temp_dir("secret");
    let secret = "a CLI test secret of 32+ bytes!!";
    std::fs::write(dir.join("secret"), format!("{secret}\n")).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(
        dir.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let issuer = JwtIssuer::builder(
        "https://me.example",
        SigningKey::hs256(secret.as_bytes()).unwrap(),
    )
    .audience("api")
    .build()
    .unwrap();
    let alice = Principal::new("alice", SubjectKind::User, Scheme::BASIC).with_groups(["staff"]);
    let token = issuer.issue(&alice, Duration::from_secs(300)).unwrap();
    let secret_file = dir.join("secret");
    let args = [
        "token",
        "verify",
        "--secret-file",
        secret_file.to_str().unwrap(),
        "--issuer",
        "https://me.example",
        "--audience",
        "api",
        "--typ",
        "at+jwt",
    ];
    let out = portcullis(&[&args[..], &[token.expose_secret()]].concat(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Written with the umask's 0644: the CLI warns, on stderr, and still verifies.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("readable by group or others (mode 0644)"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    let json = stdout(&out);
    assert_eq!(json["subject"], "alice");
    assert_eq!(json["groups"][0], "staff");
    assert_eq!(json["claims"]["iss"], "https://me.example");

    // From stdin, with the wrong audience: refused, exit 1, the reason on stderr.
    let wrong = [&args[..6], &["--audience", "billing", "-"]].concat();
    let out = portcullis(&wrong, Some(token.expose_secret()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("InvalidAudience"), "{stderr}");
    assert!(!stderr.contains(token.expose_secret()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn verify_with_a_jwks_file() {
    let dir = temp_dir("jwks");
    let alice = Principal::new("alice", SubjectKind::User, Scheme::BASIC).with_groups(["staff"]);
    // A JWKS file with an ES256 issuer's public key.
    let es = JwtIssuer::builder(
        "https://es.example",
        SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k"),
    )
    .audience("api")
    .build()
    .unwrap();
    std::fs::write(dir.join("jwks.json"), es.jwks().to_string()).unwrap();
    let token = es.issue(&alice, Duration::from_secs(60)).unwrap();
    let jwks_file = dir.join("jwks.json");
    let out = portcullis(
        &[
            "token",
            "verify",
            "--jwks",
            jwks_file.to_str().unwrap(),
            "--issuer",
            "https://es.example",
            "--audience",
            "api",
            token.expose_secret(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No key source: a usage error, exit 2.
    let out = portcullis(
        &["token", "verify", "--issuer", "x", "--audience", "api", "t"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn verify_with_a_jwks_url() {
    let key = TestKey::es256("url-key");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let token = key.token(&claims("https://idp.example"));
    let url = idp.jwks_url();
    let out = tokio::task::spawn_blocking(move || {
        portcullis(
            &[
                "token",
                "verify",
                "--jwks",
                &url,
                "--issuer",
                "https://idp.example",
                "--audience",
                "api",
                &token,
            ],
            None,
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out)["subject"], "alice");
    assert_eq!(idp.jwks_fetches(), 1);
}
