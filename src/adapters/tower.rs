//! The tower [`Layer`]: runs the Gate before the inner service, for axum, hyper and tonic.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use http::{Extensions, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::authenticator::BoxFuture;
use crate::handle::GateHandle;
use crate::request::{PeerAddr, RequestView};

/// Wraps a service so every request passes the [`Gate`](crate::Gate) first. An authenticated request reaches
/// the service with its [`Principal`](crate::Principal) in the request extensions; a refused one
/// gets the Gate's rejection response and never reaches it.
///
/// The peer address is taken from a [`PeerAddr`] or `SocketAddr` extension, and with the `axum`
/// feature from `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`).
#[derive(Clone, Debug)]
pub struct GateLayer {
    gate: GateHandle,
}

impl GateLayer {
    /// A layer running `gate`: a [`Gate`](crate::Gate), or a [`GateHandle`] to reload configuration live.
    pub fn new(gate: impl Into<GateHandle>) -> Self {
        Self { gate: gate.into() }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            gate: self.gate.clone(),
            inner,
        }
    }
}

/// The service [`GateLayer`] makes.
#[derive(Clone, Debug)]
pub struct GateService<S> {
    gate: GateHandle,
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GateService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one to call; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // One snapshot for the whole request: a reload cannot change the Gate halfway.
        let gate = self.gate.gate();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let peer = peer_addr(&parts.extensions);
            let view = RequestView::new(&parts.method, &parts.uri, &parts.headers).with_peer(peer);
            match gate.check(&view).await {
                Ok(Some(principal)) => {
                    parts.extensions.insert(principal);
                }
                Ok(None) => {}
                Err(rejection) => return Ok(gate.respond(&rejection).map(ResBody::from)),
            }
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<::axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}
