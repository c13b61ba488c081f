//! Interop for certificate-bound tokens (RFC 8705, issue #23) with a real OpenID provider: node
//! `oidc-provider` (scripts/oidc-provider, mTLS certificate-bound access tokens) issues a
//! client-credentials JWT bound to a test client certificate. A Gate built from a TOML file
//! (discovery) accepts it over a TLS connection presenting that certificate (examples/mtls.rs's
//! acceptor), and refuses it with no certificate, with another certificate, with `Client-Cert`
//! from a peer not in `client_cert_proxies`; a token whose binding is a hex thumbprint is
//! refused with the right certificate.
//!
//! The provider serves plain HTTP on loopback; its `getCertificate` helper (written for the test)
//! reads the client certificate from the `x-test-client-cert` header, standing in for the TLS
//! terminator in front of it. Needs Node.js and npm, like tests/jwt_interop.rs (whose start-up
//! helpers are repeated here): without them the test prints `SKIPPED:` and passes, unless
//! `PORTCULLIS_REQUIRE_SERVICES=1`.

#[path = "../examples/mtls.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used here"
)]
mod example;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use portcullis::jwt::mtls::thumbprint;
use portcullis::reject::Reason;
use portcullis::{Gate, RequestView};

const RESOURCE: &str = "urn:portcullis:api";
const SECRET: &str = "mtls-secret-for-tests-only";

fn unavailable(why: &str) {
    if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("oidc-provider interop cannot run: {why} (PORTCULLIS_REQUIRE_SERVICES=1)");
    }
    println!("SKIPPED: oidc-provider mTLS interop: {why}");
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
        Err(format!("`{program} {}` failed", args.join(" ")))
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

async fn provider() -> Option<(Provider, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oidc-provider");
    if let Err(why) =
        runs("node", &["--version"], &dir).and_then(|()| runs("npm", &["--version"], &dir))
    {
        unavailable(&why);
        return None;
    }
    if !dir.join("node_modules/oidc-provider").exists() {
        let installed = runs("npm", &["ci", "--no-audit", "--no-fund"], &dir)
            .or_else(|_| runs("npm", &["install", "--no-audit", "--no-fund"], &dir));
        if let Err(why) = installed {
            unavailable(&why);
            return None;
        }
    }
    match tokio::task::spawn_blocking(move || start_provider(&dir)).await {
        Ok(Ok(started)) => Some(started),
        Ok(Err(why)) => {
            unavailable(&why);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

struct Cert {
    der: CertificateDer<'static>,
    key: Vec<u8>,
}

fn self_signed(name: &str) -> Cert {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    Cert {
        der: made.cert.der().clone(),
        key: made.signing_key.serialize_der(),
    }
}

fn key_der(cert: &Cert) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(cert.key.clone().into())
}

/// A client-credentials token for `client`, bound by the provider to `cert`.
async fn bound_token(issuer: &str, client: &str, cert: &Cert) -> String {
    let basic = STANDARD.encode(format!("{client}:{SECRET}"));
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-test-client-cert", STANDARD.encode(&cert.der))
        .body(format!(
            "grant_type=client_credentials&scope=orders%3Aread&resource={}",
            RESOURCE.replace(':', "%3A")
        ))
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().expect("a token").to_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// One GET over TLS presenting `cert` (or none): the HTTP status.
async fn get_over_tls(
    addr: SocketAddr,
    roots: &Arc<RootCertStore>,
    cert: Option<&Cert>,
    token: &str,
) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(Arc::clone(roots));
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(cert) => builder
            .with_client_auth_cert(vec![cert.der.clone()], key_der(cert))
            .unwrap(),
    };
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let request = format!(
        "GET /orders/1 HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\
         connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split(' ').nth(1).unwrap_or("none").to_owned()
}

#[tokio::test]
async fn the_providers_certificate_bound_token_needs_its_certificate() {
    let Some((provider, issuer)) = provider().await else {
        return;
    };
    let client = self_signed("client");
    let other = self_signed("other");
    let token = bound_token(&issuer, "portcullis-mtls", &client).await;
    assert_eq!(
        claims(&token)["cnf"]["x5t#S256"].as_str(),
        Some(thumbprint(&client.der).as_str())
    );
    let hex_token = bound_token(&issuer, "portcullis-mtls-hex", &client).await;
    let hex = claims(&hex_token)["cnf"]["x5t#S256"]
        .as_str()
        .expect("a thumbprint")
        .to_owned();
    assert_eq!(hex.len(), 64, "{hex}");

    let config = format!(
        r#"
[gate]
client_cert_proxies = ["10.9.8.7"]

[jwt]
audiences = ["{RESOURCE}"]
typ = "at+jwt"

[[jwt.issuers]]
issuer = "{issuer}"
discovery = true
"#
    );
    let gate = portcullis::config::Config::from_str(&config)
        .expect("valid config")
        .build()
        .await
        .expect("the Gate builds");

    // Over TLS, through examples/mtls.rs's acceptor.
    let server = self_signed("localhost");
    let mut roots = RootCertStore::empty();
    roots.add(server.der.clone()).unwrap();
    let roots = Arc::new(roots);
    let tls = example::server_config(vec![server.der.clone()], key_der(&server)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = example::app(gate.clone());
    tokio::spawn(example::serve(listener, tls, app));
    assert_eq!(
        get_over_tls(addr, &roots, Some(&client), &token).await,
        "200"
    );
    assert_eq!(get_over_tls(addr, &roots, None, &token).await, "401");
    assert_eq!(
        get_over_tls(addr, &roots, Some(&other), &token).await,
        "401"
    );
    assert_eq!(
        get_over_tls(addr, &roots, Some(&client), &hex_token).await,
        "401"
    );

    client_cert_from_proxies_only(&gate, &client, &token, &hex_token).await;
    drop(provider);
}

/// `Client-Cert` counts only from a peer in `client_cert_proxies` (10.9.8.7 here).
async fn client_cert_from_proxies_only(gate: &Gate, client: &Cert, token: &str, hex_token: &str) {
    // `Client-Cert` counts only from a listed proxy.
    let client_cert = format!(":{}:", STANDARD.encode(&client.der));
    let check = |peer: &str, token: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers.insert("client-cert", HeaderValue::from_str(&client_cert).unwrap());
        let peer: SocketAddr = peer.parse().unwrap();
        (headers, peer)
    };
    let (method, uri) = (Method::GET, Uri::from_static("/orders/1"));
    let run = |gate: &Gate, peer: &str, token: &str| {
        let (headers, peer) = check(peer, token);
        let gate = gate.clone();
        let (method, uri) = (method.clone(), uri.clone());
        async move {
            let view = RequestView::new(&method, &uri, &headers).with_peer(Some(peer));
            gate.check(&view).await
        }
    };
    assert!(run(gate, "10.9.8.7:4000", token).await.is_ok());
    let refused = run(gate, "127.0.0.1:4000", token).await.unwrap_err();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.reason(), Reason::CertificateBinding);
    let refused = run(gate, "10.9.8.7:4000", hex_token).await.unwrap_err();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.reason(), Reason::TokenClaims);
}
