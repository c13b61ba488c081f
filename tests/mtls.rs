//! Mutual TLS end to end (RFC 8705, issue #23): examples/mtls.rs's rustls acceptor and axum app
//! on 127.0.0.1, a real TLS client. A certificate-bound token is accepted over a connection
//! authenticated with its certificate, refused with none or another one; a client that holds
//! the certificate but not its private key fails the handshake and never reaches the app.

#[path = "../examples/mtls.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not used here"
)]
mod example;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use portcullis::jwt::mtls::thumbprint;
use portcullis::testing::TestIssuer;

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

/// What the client presents.
enum Presents<'a> {
    Nothing,
    /// A certificate with its own key.
    Certificate(&'a Cert),
    /// `cert`, but signing the handshake with another key: a stolen certificate without its key.
    WithoutItsKey(&'a Cert, &'a Cert),
}

/// Sends the certificate and key it is given, whether they belong together or not (as an
/// attacker's client would; rustls's own builder refuses a mismatched pair).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

struct Server {
    addr: SocketAddr,
    roots: Arc<RootCertStore>,
}

impl Server {
    /// One GET over TLS, HTTP/1.1: the response's text, or the error that ended the connection.
    async fn get(
        &self,
        presents: Presents<'_>,
        path: &str,
        token: &str,
    ) -> std::io::Result<String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(Arc::clone(&self.roots));
        let config = match presents {
            Presents::Nothing => builder.with_no_client_auth(),
            Presents::Certificate(cert) => builder
                .with_client_auth_cert(vec![cert.der.clone()], key_der(cert))
                .unwrap(),
            Presents::WithoutItsKey(cert, other) => {
                let key = provider
                    .key_provider
                    .load_private_key(key_der(other))
                    .unwrap();
                let certified = CertifiedKey::new(vec![cert.der.clone()], key);
                builder.with_client_cert_resolver(Arc::new(Fixed(Arc::new(certified))))
            }
        };
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\
             connection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }
}

async fn start(issuer: &TestIssuer) -> Server {
    let server = self_signed("localhost");
    let mut roots = RootCertStore::empty();
    roots.add(server.der.clone()).unwrap();
    let tls = example::server_config(vec![server.der.clone()], key_der(&server)).unwrap();
    let gate = example::rules()
        .authenticator(issuer.authenticator().unwrap())
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve(listener, tls, example::app(gate)));
    Server {
        addr,
        roots: Arc::new(roots),
    }
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("none")
}

#[tokio::test]
async fn a_bound_token_works_only_over_a_connection_with_its_certificate() {
    let issuer = TestIssuer::new("https://issuer.test", "api").unwrap();
    let server = start(&issuer).await;
    let client = self_signed("client-a");
    let other = self_signed("client-b");
    let token = issuer
        .token("alice")
        .claim("cnf", json!({"x5t#S256": thumbprint(&client.der)}))
        .sign();

    let ok = server
        .get(Presents::Certificate(&client), "/transfers/1", &token)
        .await
        .unwrap();
    assert_eq!(status(&ok), "200", "{ok}");
    assert!(ok.contains("alice Certificate"), "{ok}");

    let none = server
        .get(Presents::Nothing, "/orders/1", &token)
        .await
        .unwrap();
    assert_eq!(status(&none), "401", "{none}");
    assert!(none.contains("error=\"invalid_token\""), "{none}");
    let another = server
        .get(Presents::Certificate(&other), "/orders/1", &token)
        .await
        .unwrap();
    assert_eq!(status(&another), "401", "{another}");

    // A plain bearer token still works without a certificate, but not where the route needs a
    // sender-constrained one.
    let plain = issuer.token("bob").sign();
    let response = server
        .get(Presents::Nothing, "/orders/1", &plain)
        .await
        .unwrap();
    assert_eq!(status(&response), "200", "{response}");
    let response = server
        .get(Presents::Nothing, "/transfers/1", &plain)
        .await
        .unwrap();
    assert_eq!(status(&response), "403", "{response}");
}

#[tokio::test]
async fn a_certificate_without_its_private_key_fails_the_handshake() {
    let issuer = TestIssuer::new("https://issuer.test", "api").unwrap();
    let server = start(&issuer).await;
    let client = self_signed("client-a");
    let thief = self_signed("thief");
    let token = issuer
        .token("alice")
        .claim("cnf", json!({"x5t#S256": thumbprint(&client.der)}))
        .sign();
    let result = server
        .get(
            Presents::WithoutItsKey(&client, &thief),
            "/orders/1",
            &token,
        )
        .await;
    // TLS 1.3: the client's side of the handshake completes before the server checks its
    // CertificateVerify; the server then aborts with an alert, so no HTTP response ever comes.
    match result {
        Err(err) => {
            let text = err.to_string();
            assert!(
                text.contains("DecryptError") || text.contains("alert"),
                "not a TLS alert: {text}"
            );
        }
        Ok(response) => panic!("the request got a response: {response}"),
    }
    // The same client with the certificate's own key is let in: the refusal above is the
    // signature, not the certificate.
    let ok = server
        .get(Presents::Certificate(&client), "/orders/1", &token)
        .await
        .unwrap();
    assert_eq!(status(&ok), "200", "{ok}");
}
