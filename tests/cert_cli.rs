//! `portcullis token verify --client-cert FILE` (RFC 8705, issue #23): a certificate-bound token
//! is accepted with its certificate (PEM or DER) and refused without it or with another one.

#![cfg(feature = "cli")]

mod common;

use common::cli::{TempDir, portcullis};
use portcullis::jwt::mtls::thumbprint;
use portcullis::testing::TestIssuer;
use serde_json::json;

#[test]
fn verify_checks_the_client_certificate() {
    let temp = TempDir::new("token-verify-cert");
    let issuer = TestIssuer::new("https://issuer.test", "api").unwrap();
    let jwks = temp.write("jwks.json", &issuer.jwks().to_string());
    let client = rcgen::generate_simple_self_signed(vec!["client".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
    let pem = temp.write("client.pem", &client.cert.pem());
    let other_pem = temp.write("other.pem", &other.cert.pem());
    let der = temp.path().join("client.der");
    std::fs::write(&der, client.cert.der().as_ref()).unwrap();
    let token = issuer
        .token("alice")
        .claim("cnf", json!({"x5t#S256": thumbprint(client.cert.der())}))
        .sign();
    let base = [
        "token",
        "verify",
        "--jwks",
        &jwks,
        "--issuer",
        "https://issuer.test",
        "--audience",
        "api",
    ];
    let run = |extra: &[&str]| portcullis(&[&base[..], extra, &[token.as_str()]].concat(), None);

    for file in [pem.as_str(), der.to_str().unwrap()] {
        let out = run(&["--client-cert", file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let principal: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            principal["confirmation"]["certificate"]["x5t#S256"],
            json!(thumbprint(client.cert.der()))
        );
    }

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CertificateMissing"), "{stderr}");
    assert!(stderr.contains("--client-cert"), "{stderr}");

    let out = run(&["--client-cert", &other_pem]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CertificateMismatch"), "{stderr}");

    let junk = temp.write("junk.pem", "not a certificate");
    let out = run(&["--client-cert", &junk]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no PEM CERTIFICATE block"), "{stderr}");
}
