//! hyper 1 with hyper-util, no framework: `cargo run --example hyper`.
//!
//! `GateLayer` is a tower layer, so it wraps a `service_fn` as it wraps an axum router;
//! `TowerToHyperService` hands the result to hyper. hyper does not tell a service who is
//! calling, so each connection's service first inserts a [`PeerAddr`]: the Gate needs it for the
//! audit trail, IP policies, lockout and trusted proxies.
//!
//! The password is generated at start and printed once. Serves on `ADDR` (default
//! `127.0.0.1:3000`), HTTP/1.1 and HTTP/2.

use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use portcullis::store::MemoryUserStore;
use portcullis::{BasicAuthenticator, Gate, GateLayer, PeerAddr, Principal, Public};
use rand::Rng;
use rand::distr::Alphanumeric;
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
        .realm("hyper-example")
        .build()?;
    let password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    basic
        .add_user("ada", &password.as_str().into(), ["staff"])
        .await?;
    let gate = Gate::builder()
        .authenticator(basic)
        .route("/", Public)
        .build()?; // every other path: any authenticated caller

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("hyper example listening on {base}");
    println!("curl -i {base}/                      # 200: hello, stranger");
    println!("curl -i -u ada:{password} {base}/me   # 200: ada");
    println!("curl -i {base}/me                    # 401 with a Basic challenge");

    loop {
        let (stream, peer) = listener.accept().await?;
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .layer(GateLayer::new(gate.clone()))
            .service_fn(handle);
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(err) = connection.await {
                eprintln!("connection from {peer}: {err}");
            }
        });
    }
}

/// The app: the Gate has already decided; an allowed request's principal is in its extensions.
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let principal = request.extensions().get::<Principal>();
    let (status, text) = match (request.uri().path(), principal) {
        ("/", None) => (StatusCode::OK, "hello, stranger\n".to_owned()),
        ("/", Some(principal)) | ("/me", Some(principal)) => {
            (StatusCode::OK, format!("hello, {}\n", principal.subject()))
        }
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}
