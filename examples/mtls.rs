//! Certificate-bound access tokens (RFC 8705) over mutual TLS: axum behind a rustls acceptor
//! that asks for a client certificate and hands it to the Gate as a
//! [`ClientCertificate`](portcullis::extract::ClientCertificate) request extension.
//!
//! ```text
//! ISSUER=https://sso.example.com AUDIENCE=orders-api cargo run --example mtls --features jwks
//! ```
//!
//! It listens on https://127.0.0.1:3443 with a fresh self-signed server certificate (written to
//! `server.pem` in the temporary directory, for `curl --cacert`). Tokens from `ISSUER` (keys
//! through discovery) whose `cnf["x5t#S256"]` names a client certificate are accepted only over
//! a connection authenticated with that certificate; `/transfers/**` takes only such tokens
//! (or DPoP-bound ones).
//!
//! Client certificates are self-signed (RFC 8705 §2.2: the authorization server bound the
//! token to this exact certificate, so no CA is involved), so the verifier accepts any
//! certificate chain; it still checks the handshake signature by delegating to rustls, so a
//! client that holds the certificate without its private key fails the handshake
//! (tests/mtls.rs). For PKI-issued client certificates use rustls's `WebPkiClientVerifier`
//! instead.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use portcullis::extract::ClientCertificate;
use portcullis::policy::SenderConstrained;
use portcullis::{Authenticated, Gate, GateLayer, PeerAddr, Principal};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Accepts any client certificate chain (self-signed ones, RFC 8705 §2.2) but verifies the
/// handshake signature with the certificate's key, through rustls: the client must hold the
/// private key. The token's `cnf["x5t#S256"]` then says which certificate it must be.
#[derive(Debug)]
pub struct AnyClientCertificate {
    provider: Arc<CryptoProvider>,
}

impl AnyClientCertificate {
    /// A verifier using `provider`'s signature algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self { provider }
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    /// Optional: clients with plain bearer tokens connect without a certificate.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS settings: the server's certificate and key, client certificates asked for.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyClientCertificate::new(Arc::clone(&provider)));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The API: `/orders/{id}` for any authenticated caller, `/transfers/{id}` for sender-constrained
/// tokens only; each answers with the caller and how its token was bound.
pub fn app(gate: Gate) -> Router {
    async fn who(principal: Principal) -> String {
        let bound = match principal.confirmation() {
            Some(confirmation) => format!("{confirmation:?}"),
            None => "bearer".to_owned(),
        };
        format!("{} {bound}", principal.subject())
    }
    Router::new()
        .route("/orders/{id}", get(who))
        .route("/transfers/{id}", get(who))
        .layer(GateLayer::new(gate))
}

/// The Gate's rules for [`app`].
pub fn rules() -> portcullis::GateBuilder {
    Gate::builder()
        .route("/transfers/**", SenderConstrained)
        .route("/**", Authenticated)
}

/// Accepts TLS connections on `listener` and serves `app` on each, with the connection's client
/// certificate (when it sent one) and peer address in every request's extensions. A failed
/// handshake (a certificate without its key, say) never reaches the app.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, app: Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| ClientCertificate(Bytes::copy_from_slice(der.as_ref())));
            let service = tower::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                if let Some(certificate) = &certificate {
                    request.extensions_mut().insert(certificate.clone());
                }
                app.clone().oneshot(request)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}

#[allow(
    dead_code,
    reason = "tests/mtls.rs includes this file without its main"
)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use portcullis::jwt::{JwtAuthenticator, KeySource};
    let issuer = std::env::var("ISSUER").map_err(|_| "set ISSUER (an OpenID provider)")?;
    let audience = std::env::var("AUDIENCE").map_err(|_| "set AUDIENCE")?;
    let jwt = JwtAuthenticator::builder()
        .issuer(issuer, KeySource::discovery())
        .audience(audience)
        .build()?;
    let gate = rules().authenticator(jwt).build()?;
    let server = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let pem = std::env::temp_dir().join("server.pem");
    std::fs::write(&pem, server.cert.pem())?;
    let key = PrivateKeyDer::Pkcs8(server.signing_key.serialize_der().into());
    let tls = server_config(vec![server.cert.der().clone()], key)?;
    let addr: SocketAddr = "127.0.0.1:3443".parse()?;
    let listener = TcpListener::bind(addr).await?;
    println!(
        "https://localhost:3443 (server certificate: {})",
        pem.display()
    );
    serve(listener, tls, app(gate)).await;
    Ok(())
}
