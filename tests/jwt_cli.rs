//! `portcullis token verify`, run as a user would: the principal as JSON and exit 0, or why the
//! token is refused and exit 1; keys from a secret file, a JWKS file and a JWKS URL.
#![cfg(feature = "cli")]

mod common;
#[path = "jwt_fixtures/support.rs"]
mod support;

use std::process::Output;
use std::time::Duration;

use common::cli::{TempDir, portcullis};
use portcullis::jwt::{Algorithm, JwtIssuer, SigningKey};
use portcullis::{Principal, Scheme, SubjectKind};
use support::{IdpServer, TestKey, claims, jwks};

fn stdout(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn verify_with_a_secret_file() {
    let temp = TempDir::new("token-verify");
    let dir = temp.path();
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
}

/// A JWKS file with an ES256 issuer's public key; no key source at all is a usage error.
#[test]
fn verify_with_a_jwks_file() {
    let temp = TempDir::new("token-verify-jwks");
    let dir = temp.path();
    let alice = Principal::new("alice", SubjectKind::User, Scheme::BASIC).with_groups(["staff"]);
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

/// `--dpop-proof`, `--method` and `--url`: a DPoP-bound token with its proof verifies, and a
/// refusal names the check that failed.
#[test]
fn verify_a_dpop_bound_token_with_its_proof() {
    use serde_json::json;
    use support::{bound_claims, now};

    let temp = TempDir::new("token-verify-dpop");
    let issuer = TestKey::es256("issuer");
    let jwks_file = temp.write("jwks.json", &jwks(&[&issuer]));
    let client = TestKey::es256("client");
    let token = issuer.token(&bound_claims("https://idp.example", &client));
    let url = "https://api.example.com/orders";
    let proof = |htm: &str| client.proof(htm, url).for_token(&token).sign(&client);
    let base = [
        "token",
        "verify",
        "--jwks",
        &jwks_file,
        "--issuer",
        "https://idp.example",
        "--audience",
        "api",
    ];
    let with = |extra: &[&str]| portcullis(&[&base[..], extra].concat(), None);

    let good = proof("POST");
    let out = with(&[
        "--dpop-proof",
        &good,
        "--method",
        "POST",
        "--url",
        url,
        &token,
    ]);
    let json = stdout(&out);
    assert_eq!(json["subject"], "alice");
    assert_eq!(json["confirmation"]["dpop"]["jkt"], json!(client.jkt()));
    assert_eq!(json["claims"]["cnf"]["jkt"], json!(client.jkt()));

    // Each refusal says which check failed, and what a resource server would answer.
    let refusals = [
        (
            vec!["--dpop-proof", &good, "--method", "GET", "--url", url],
            "MethodMismatch",
        ),
        (
            vec![
                "--dpop-proof",
                &good,
                "--method",
                "POST",
                "--url",
                "https://api.example.com/admin",
            ],
            "UriMismatch",
        ),
    ];
    for (extra, check) in refusals {
        let out = with(&[&extra[..], &[token.as_str()]].concat());
        assert_eq!(out.status.code(), Some(1), "{check}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("rejected ({check})")), "{stderr}");
        assert!(stderr.contains(r#"error="invalid_dpop_proof""#), "{stderr}");
        assert!(!stderr.contains(&token), "{stderr}");
    }

    // A proof two minutes old: stale by default, accepted with --dpop-max-age.
    let old = client
        .proof("POST", url)
        .for_token(&token)
        .claim("iat", json!(now() - 120))
        .sign(&client);
    let args = ["--dpop-proof", &old, "--method", "POST", "--url", url];
    let out = with(&[&args[..], &[token.as_str()]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected (Stale)"));
    let out = with(&[&args[..], &["--dpop-max-age", "600", token.as_str()]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--dpop-proof` with a token that fails its own checks, without the proof, or without the
/// request it was for.
#[test]
fn verify_dpop_refusals_of_the_token_and_usage() {
    use serde_json::json;
    use support::{bound_claims, now};

    let temp = TempDir::new("token-verify-dpop-token");
    let issuer = TestKey::es256("issuer");
    let jwks_file = temp.write("jwks.json", &jwks(&[&issuer]));
    let client = TestKey::es256("client");
    let token = issuer.token(&bound_claims("https://idp.example", &client));
    let url = "https://api.example.com/orders";
    let good = client.proof("POST", url).for_token(&token).sign(&client);
    let base = [
        "token",
        "verify",
        "--jwks",
        &jwks_file,
        "--issuer",
        "https://idp.example",
        "--audience",
        "api",
    ];
    let with = |extra: &[&str]| portcullis(&[&base[..], extra].concat(), None);

    // The token's own failure comes with its kind.
    let mut expired = bound_claims("https://idp.example", &client);
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let expired = issuer.token(&expired);
    let proof_for_expired = client.proof("POST", url).for_token(&expired).sign(&client);
    let out = with(&[
        "--dpop-proof",
        &proof_for_expired,
        "--method",
        "POST",
        "--url",
        url,
        &expired,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rejected (InvalidToken: Expired)"),
        "{stderr}"
    );
    assert!(stderr.contains(r#"error="invalid_token""#), "{stderr}");

    // The bound token without its proof: refused as a bearer token, with a hint.
    let out = with(&[&token]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DpopBound"), "{stderr}");
    assert!(stderr.contains("--dpop-proof"), "{stderr}");

    // A proof without the request it was for is a usage error.
    let out = with(&["--dpop-proof", &good, &token]);
    assert_eq!(out.status.code(), Some(2));
}
