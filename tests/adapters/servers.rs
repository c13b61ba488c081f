//! One small app per adapter, each serving the same three routes behind the same Gate on an
//! ephemeral port of 127.0.0.1:
//!
//! | route | HTTP | gRPC | handler takes |
//! |-------|------|------|---------------|
//! | me | `GET /me` | `whoami.Identity/WhoAmI` | the principal |
//! | admin | `GET /admin` | `whoami.Identity/Admin` | the principal |
//! | public | `GET /public` | `whoami.Identity/Hello` | an optional principal |
//!
//! HTTP handlers answer `{"subject": …, "scheme": …}` (nulls when anonymous); gRPC ones a `Caller`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use portcullis::{Gate, GateLayer, PeerAddr, Principal};
use serde_json::{Value, json};
use tower::ServiceBuilder;

use crate::whoami::identity_server::{Identity, IdentityServer};
use crate::whoami::{Caller, WhoAmIRequest};

/// What an HTTP handler answers for `principal`.
fn caller_json(principal: Option<&Principal>) -> Value {
    json!({
        "subject": principal.map(Principal::subject),
        "scheme": principal.map(|p| p.scheme().as_str()),
    })
}

async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// axum: `GateLayer` on the router, `Principal` / `Option<Principal>` extractors.
pub(crate) async fn axum(gate: Gate) -> String {
    use axum::Json;
    use axum::routing::get;

    async fn required(principal: Principal) -> Json<Value> {
        Json(caller_json(Some(&principal)))
    }
    async fn optional(principal: Option<Principal>) -> Json<Value> {
        Json(caller_json(principal.as_ref()))
    }

    let app = axum::Router::new()
        .route("/me", get(required))
        .route("/admin", get(required))
        .route("/public", get(optional))
        .layer(GateLayer::new(gate));
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("axum serves");
    });
    format!("http://{addr}")
}

/// actix-web: `GateMiddleware` on the app, `Principal` / `Option<Principal>` extractors. actix
/// runs its own single-threaded runtime, so the server gets a thread of its own.
pub(crate) async fn actix(gate: Gate) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use portcullis::actix::GateMiddleware;

    async fn required(principal: Principal) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(caller_json(Some(&principal)).to_string())
    }
    async fn optional(principal: Option<Principal>) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(caller_json(principal.as_ref()).to_string())
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .wrap(GateMiddleware::new(gate.clone()))
                    .route("/me", web::get().to(required))
                    .route("/admin", web::get().to(required))
                    .route("/public", web::get().to(optional))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("actix listens")
            .run()
            .await
            .expect("actix serves");
        });
    });
    format!("http://{addr}")
}

/// hyper 1 with hyper-util: `GateLayer` around a `service_fn`, the peer address inserted per
/// connection, served through `TowerToHyperService`.
pub(crate) async fn hyper(gate: Gate) -> String {
    async fn handler(
        request: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, Infallible> {
        let caller = caller_json(request.extensions().get::<Principal>());
        let mut response = http::Response::new(Full::new(Bytes::from(caller.to_string())));
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().expect("valid"));
        Ok(response)
    }

    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let service = ServiceBuilder::new()
                .map_request(move |mut request: http::Request<_>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    request
                })
                .layer(GateLayer::new(gate.clone()))
                .service_fn(handler);
            tokio::spawn(async move {
                // A client that hangs up mid-request is not a test failure.
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// tonic: `GateLayer` on the server, the principal read from the request's extensions.
pub(crate) async fn tonic(gate: Gate) -> String {
    use tonic::transport::Server;
    use tonic::transport::server::TcpIncoming;

    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        Server::builder()
            .layer(GateLayer::new(gate))
            .add_service(IdentityServer::new(IdentityService))
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .expect("tonic serves");
    });
    format!("http://{addr}")
}

struct IdentityService;

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn who_am_i(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<Caller>, tonic::Status> {
        required(&request)
    }

    async fn admin(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<Caller>, tonic::Status> {
        required(&request)
    }

    async fn hello(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<Caller>, tonic::Status> {
        Ok(tonic::Response::new(caller(
            request.extensions().get::<Principal>(),
        )))
    }
}

fn required<T>(request: &tonic::Request<T>) -> Result<tonic::Response<Caller>, tonic::Status> {
    match request.extensions().get::<Principal>() {
        Some(principal) => Ok(tonic::Response::new(caller(Some(principal)))),
        None => Err(tonic::Status::internal(
            "the Gate let an anonymous call through",
        )),
    }
}

fn caller(principal: Option<&Principal>) -> Caller {
    principal.map_or_else(Caller::default, |principal| Caller {
        subject: principal.subject().to_owned(),
        scheme: principal.scheme().as_str().to_owned(),
        groups: principal.groups().to_vec(),
        scopes: principal.scopes().to_vec(),
    })
}
