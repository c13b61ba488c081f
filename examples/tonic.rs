//! gRPC with tonic: `cargo run --example tonic`.
//!
//! `GateLayer` goes on the server like any tower layer. The Gate's route rules name gRPC methods
//! by their HTTP/2 path, `/<package>.<Service>/<Method>`. A refused call gets a gRPC status,
//! `UNAUTHENTICATED` or `PERMISSION_DENIED`, with the `WWW-Authenticate` challenges in its
//! metadata; an allowed one reaches the service with its `Principal` in the request extensions.
//!
//! The service is `examples/proto/whoami.proto`. The example serves it, calls it with a tonic
//! client as anonymous, with an API key and with a key lacking the `admin` group, prints what
//! each call got, and keeps serving for `grpcurl`:
//!
//! ```text
//! grpcurl -plaintext -import-path examples/proto -proto whoami.proto \
//!     -H 'x-api-key: KEY' 127.0.0.1:50051 whoami.Identity/WhoAmI
//! ```
//!
//! Serves on `ADDR` (default `127.0.0.1:50051`).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis::store::MemoryApiKeyStore;
use portcullis::{
    ApiKeys, Gate, GateLayer, Groups, NewApiKey, PeerAddr, Principal, Public, SecretString,
};
use rand::Rng;
use tonic::transport::server::{TcpConnectInfo, TcpIncoming};
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

// Generated from examples/proto/whoami.proto; in your crate: `tonic::include_proto!("whoami")`
// with tonic-prost-build in build.rs.
#[allow(
    unreachable_pub,
    missing_docs,
    clippy::allow_attributes_without_reason,
    clippy::too_many_lines,
    reason = "generated code"
)]
#[path = "proto/whoami.rs"]
mod whoami;

use whoami::identity_client::IdentityClient;
use whoami::identity_server::{Identity, IdentityServer};
use whoami::{Caller, WhoAmIRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,portcullis::audit=info".into()),
        )
        .init();
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:50051".to_owned())
        .parse()?;

    // The server-side secret keys are hashed with; random here, so keys die with the process.
    let pepper: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), pepper.into()).build()?;
    let day = Duration::from_secs(86_400);
    let admin_key = keys
        .create(
            NewApiKey::application("ops-console")
                .with_groups(["admin"])
                .with_expires_in(day),
        )
        .await?;
    let plain_key = keys
        .create(NewApiKey::application("reporting").with_expires_in(day))
        .await?;

    let gate = Gate::builder()
        .authenticator(keys.authenticator())
        .route("/whoami.Identity/Hello", Public)
        .route("/whoami.Identity/Admin", Groups::any_of(["admin"]))
        .build()?; // WhoAmI, and every other method: any authenticated caller

    let incoming = TcpIncoming::bind(addr)?;
    let bound = incoming.local_addr()?;
    let server = Server::builder()
        // tonic keeps the peer address in `TcpConnectInfo`; the Gate reads a `PeerAddr`.
        .layer(tower::util::MapRequestLayer::new(
            peer_addr::<tonic::body::Body>,
        ))
        .layer(GateLayer::new(gate))
        .add_service(IdentityServer::new(IdentityService))
        .serve_with_incoming(incoming);
    let server = tokio::spawn(server);

    let mut client = IdentityClient::new(
        Channel::from_shared(format!("http://{bound}"))?
            .connect()
            .await?,
    );
    println!("tonic example listening on {bound}");
    let calls = [
        ("Hello, anonymous", "Hello", None),
        ("WhoAmI, anonymous", "WhoAmI", None),
        ("WhoAmI, reporting key", "WhoAmI", Some(plain_key.key())),
        ("Admin, reporting key", "Admin", Some(plain_key.key())),
        ("Admin, ops-console key", "Admin", Some(admin_key.key())),
    ];
    for (label, method, key) in calls {
        call(&mut client, label, method, key).await?;
    }
    println!(
        "keys for grpcurl: ops-console {}  reporting {}",
        admin_key.key().expose_secret(),
        plain_key.key().expose_secret()
    );
    server.await??;
    Ok(())
}

/// Calls `method` with `key` (or none) and prints the answer, or the status and challenges.
async fn call(
    client: &mut IdentityClient<Channel>,
    label: &str,
    method: &str,
    key: Option<&SecretString>,
) -> Result<(), Box<dyn Error>> {
    let mut request = Request::new(WhoAmIRequest {});
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", key.expose_secret().parse()?);
    }
    let result = match method {
        "Hello" => client.hello(request).await,
        "Admin" => client.admin(request).await,
        _ => client.who_am_i(request).await,
    };
    match result {
        Ok(response) => println!("{label}: OK {:?}", response.into_inner()),
        Err(status) => {
            let challenges: Vec<_> = status
                .metadata()
                .get_all("www-authenticate")
                .iter()
                .collect();
            println!(
                "{label}: {:?} {:?}, challenges {challenges:?}",
                status.code(),
                status.message()
            );
        }
    }
    Ok(())
}

struct IdentityService;

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Result<Response<Caller>, Status> {
        Ok(Response::new(caller(principal(&request)?)))
    }

    async fn admin(&self, request: Request<WhoAmIRequest>) -> Result<Response<Caller>, Status> {
        // The `Admin` rule already checked the group; the handler only reads who it is.
        Ok(Response::new(caller(principal(&request)?)))
    }

    async fn hello(&self, request: Request<WhoAmIRequest>) -> Result<Response<Caller>, Status> {
        let principal = request.extensions().get::<Principal>();
        Ok(Response::new(principal.map(caller).unwrap_or_default()))
    }
}

/// The principal the Gate put in the request's extensions.
fn principal<T>(request: &Request<T>) -> Result<&Principal, Status> {
    // Only reachable without one if the method were open in the Gate's rules.
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("authentication is required"))
}

fn caller(principal: &Principal) -> Caller {
    Caller {
        subject: principal.subject().to_owned(),
        scheme: principal.scheme().as_str().to_owned(),
        groups: principal.groups().to_vec(),
        scopes: principal.scopes().to_vec(),
    }
}

/// Copies tonic's `TcpConnectInfo` into the [`PeerAddr`] the Gate reads.
fn peer_addr<B>(mut request: http::Request<B>) -> http::Request<B> {
    let remote = request
        .extensions()
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr);
    if let Some(remote) = remote {
        request.extensions_mut().insert(PeerAddr(remote));
    }
    request
}
