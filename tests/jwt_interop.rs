//! Interop with a real OpenID provider: node `oidc-provider` (pinned in
//! `scripts/oidc-provider/package.json`) on 127.0.0.1 issues a client-credentials JWT access
//! token over HTTP; portcullis finds the keys through discovery and accepts it.
//!
//! Needs Node.js and npm; installs the provider's dependencies on first run. Without them the
//! test prints `SKIPPED:` and passes, unless `PORTCULLIS_REQUIRE_SERVICES=1` (CI), where it fails.

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use portcullis::jwt::{JwtAuthenticator, KeySource};
use portcullis::{Gate, Scheme, Scopes, SubjectKind};
use serde_json::Value;

const CLIENT_ID: &str = "portcullis-interop";
const CLIENT_SECRET: &str = "interop-secret-for-tests-only";
const RESOURCE: &str = "urn:portcullis:api";

/// Skips with a notice, or fails when services are required.
fn unavailable(why: &str) {
    if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("oidc-provider interop cannot run: {why} (PORTCULLIS_REQUIRE_SERVICES=1)");
    }
    println!("SKIPPED: oidc-provider interop: {why}");
}

fn runs(program: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("`{program}` cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

/// The provider process, stopped when dropped.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_provider(dir: &Path) -> Result<(Provider, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg(port.to_string())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("node cannot start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let provider = Provider(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(issuer) = line.strip_prefix("ready ") {
                let _ = tx.send(issuer.to_owned());
            }
        }
    });
    let issuer = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the provider did not start within 30 s".to_owned())?;
    Ok((provider, issuer))
}

#[tokio::test]
async fn an_oidc_provider_token_verifies_through_discovery() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oidc-provider");
    if let Err(why) =
        runs("node", &["--version"], &dir).and_then(|()| runs("npm", &["--version"], &dir))
    {
        return unavailable(&why);
    }
    if !dir.join("node_modules/oidc-provider").exists() {
        let installed = runs("npm", &["ci", "--no-audit", "--no-fund"], &dir)
            .or_else(|_| runs("npm", &["install", "--no-audit", "--no-fund"], &dir));
        if let Err(why) = installed {
            return unavailable(&why);
        }
    }
    let (provider, issuer) = match tokio::task::spawn_blocking(move || start_provider(&dir)).await {
        Ok(Ok(started)) => started,
        Ok(Err(why)) => return unavailable(&why),
        Err(e) => panic!("{e}"),
    };

    // A client-credentials token for the resource, over HTTP.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=orders%3Aread&resource=urn%3Aportcullis%3Aapi")
        .send()
        .await
        .expect("token endpoint answers");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    let token = answer["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    assert_eq!(token.matches('.').count(), 2, "a JWT access token");

    #[cfg(feature = "jwks")]
    let builder = JwtAuthenticator::builder();
    #[cfg(not(feature = "jwks"))]
    let builder = JwtAuthenticator::builder().http_client(support::client());
    let jwt = builder
        .issuer(issuer.clone(), KeySource::discovery())
        .audience(RESOURCE)
        .require_typ("at+jwt")
        .build()
        .expect("valid settings");
    let principal = jwt
        .verify(&token)
        .await
        .expect("the provider's token verifies");
    assert_eq!(principal.subject(), CLIENT_ID);
    assert_eq!(principal.kind(), SubjectKind::Application);
    assert_eq!(principal.scheme(), Scheme::Jwt);
    assert_eq!(principal.scopes(), ["orders:read"]);
    assert!(principal.credential_id().is_some());
    let lifetime = principal.expires_at().unwrap() - principal.issued_at().unwrap();
    assert_eq!(lifetime.num_seconds(), 300);

    // Through the Gate, with a scope rule.
    let gate = Gate::builder()
        .authenticator(jwt)
        .route("/orders/**", Scopes::all_of(["orders:read"]))
        .route("/admin/**", Scopes::all_of(["orders:write"]))
        .build()
        .unwrap();
    let ok = support::call(
        &gate,
        "/orders/1",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(ok.status, 200);
    let denied = support::call(
        &gate,
        "/admin/x",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.bearer_error().as_deref(), Some("insufficient_scope"));
    drop(provider);
}
