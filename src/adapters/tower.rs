//! The tower [`Layer`]: runs the Gate before the inner service, for axum, hyper and tonic.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Extensions, HeaderMap, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tower_layer::Layer;
use tower_service::Service;

use crate::context::{GateContext, ROUTE, no_context};
use crate::error::ConfigError;
use crate::future::BoxFuture;
use crate::handle::GateHandle;
use crate::policy::Policy;
use crate::reject::{Rejection, RejectionKind};
use crate::request::{PeerAddr, RequestView, connection_certificate};

/// Wraps a service so every request passes the [`Gate`](crate::Gate) first. An authenticated request reaches
/// the service with its [`Principal`](crate::Principal) in the request extensions; a refused one
/// gets the Gate's rejection response and never reaches it.
///
/// **Nesting.** Rules name paths as the client sent them. Under axum's `Router::nest` and
/// `nest_service` the inner router sees the path without its prefix; with the `axum` feature the
/// layer decides on axum's `OriginalUri` instead, so a rule for `/api/admin/**` holds for a
/// `GateLayer` on the router nested at `/api`.
///
/// The peer address is taken from a [`PeerAddr`] or `SocketAddr` extension, and with the `axum`
/// feature from `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`).
/// hyper and tonic servers do not put a `SocketAddr` there: insert a [`PeerAddr`] per
/// connection (hyper) or from tonic's `TcpConnectInfo` (`examples/hyper.rs`, `examples/tonic.rs`).
///
/// **gRPC.** A request whose `content-type` is `application/grpc…` is refused the way gRPC clients
/// understand: HTTP 200 with no body and the outcome in `grpc-status` and `grpc-message`
/// (a "trailers-only" response), `UNAUTHENTICATED` for 401, `PERMISSION_DENIED` for 403,
/// `RESOURCE_EXHAUSTED` for 429, `UNAVAILABLE` for 503 and `INVALID_ARGUMENT` for 400. The
/// `WWW-Authenticate` and `Retry-After` headers the Gate's responder set are kept, so they reach
/// the client as metadata.
///
/// Responses carry a [`GateBody`]: the inner service's body, or the rejection's. It works with any
/// inner body whose data is [`Bytes`] (`axum::body::Body`, `http_body_util::Full<Bytes>`,
/// `tonic::body::Body`, hyper's `Incoming`).
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
    ResBody: 'static,
{
    type Response = Response<GateBody<ResBody>>;
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
            let uri = client_uri(&parts.extensions).unwrap_or(&parts.uri);
            let view = RequestView::new(&parts.method, uri, &parts.headers)
                .with_peer(peer)
                .with_client_certificate(connection_certificate(&parts.extensions));
            match GateContext::decide(&gate, &view).await {
                Ok(context) => {
                    if let Some(principal) = context.principal() {
                        parts.extensions.insert(principal.clone());
                    }
                    parts.extensions.insert(context);
                }
                Err(rejection) => {
                    let response = gate.respond(&rejection);
                    let grpc = grpc_content_type(&parts.headers);
                    return Ok(refused(response, &rejection, grpc));
                }
            }
            let response = inner.call(Request::from_parts(parts, body)).await?;
            Ok(response.map(GateBody::inner))
        })
    }
}

/// A route-bound policy: judges the principal the [`GateLayer`] in front already established
/// (no second authentication) with one more [`Policy`], for the routes it wraps. Made for axum's
/// `route_layer`, so a policy sits beside the handler it guards rather than in the Gate's table:
///
/// ```
/// # use axum::{Router, routing::{delete, get}};
/// # use portcullis::{Gate, GateLayer, Groups, Scopes};
/// # use portcullis::tower::PolicyLayer;
/// # fn app(gate: Gate) -> Result<Router, portcullis::ConfigError> {
/// let admin = Router::new()
///     .route("/users/{id}", delete(|| async { "deleted" }))
///     .route_layer(PolicyLayer::new(Groups::any_of(["admin"]))?);
/// let app = Router::new()
///     .route("/reports", get(|| async { "reports" }))
///     .route_layer(PolicyLayer::new(Scopes::all_of(["reports:read"]))?)
///     .merge(admin)
///     .layer(GateLayer::new(gate)); // outside: runs first, once per request
/// # Ok(app) }
/// ```
///
/// It refuses exactly as the Gate does, with the Gate's responder: 401 with every challenge for
/// an anonymous caller, 403 for a principal, Bearer `insufficient_scope` with `scope=` for
/// missing scopes; each refusal is one audit event with `stage = "route"`. Without a
/// [`GateLayer`] in front (no [`GateContext`](crate::extract::GateContext) in the request's
/// extensions) it refuses with 500 and an audit event, and never judges the request as
/// anonymous. gRPC requests are refused as [`GateLayer`] refuses them.
#[derive(Clone, Debug)]
pub struct PolicyLayer {
    policy: Arc<dyn Policy>,
}

impl PolicyLayer {
    /// A layer requiring `policy`, or the error its [`validate`](Policy::validate) reports (an
    /// empty list of groups, scopes, schemes or IP ranges), as
    /// [`GateBuilder::build`](crate::GateBuilder::build) would.
    pub fn new(policy: impl Policy) -> Result<Self, ConfigError> {
        policy.validate()?;
        Ok(Self {
            policy: Arc::new(policy),
        })
    }
}

impl<S> Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            policy: Arc::clone(&self.policy),
            inner,
        }
    }
}

/// The service [`PolicyLayer`] makes.
#[derive(Clone, Debug)]
pub struct PolicyService<S> {
    policy: Arc<dyn Policy>,
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PolicyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<GateBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        let uri = client_uri(&parts.extensions).unwrap_or(&parts.uri);
        let view = RequestView::new(&parts.method, uri, &parts.headers)
            .with_peer(peer_addr(&parts.extensions));
        let verdict = match parts.extensions.get::<GateContext>() {
            Some(context) => context.judge(&*self.policy, &view, ROUTE),
            None => Err(no_context(&view, ROUTE, "a route-bound policy")),
        };
        if let Err(refusal) = verdict {
            let grpc = grpc_content_type(&parts.headers);
            // Built inside the future: the response body need not be `Send`.
            return Box::pin(async move {
                let (rejection, response) = refusal.split();
                Ok(refused(response, &rejection, grpc))
            });
        }
        let future = inner.call(Request::from_parts(parts, body));
        Box::pin(async move { Ok(future.await?.map(GateBody::inner)) })
    }
}

/// The response for a refusal: the responder's, or for a gRPC request its Trailers-Only form.
fn refused<B>(
    response: Response<String>,
    rejection: &Rejection,
    grpc_content_type: Option<HeaderValue>,
) -> Response<GateBody<B>> {
    match grpc_content_type {
        Some(content_type) => grpc_rejection(response, rejection, content_type),
        None => response.map(|text| GateBody::rejection(Bytes::from(text))),
    }
}

/// The URI the client sent, where a router in front rewrote it: axum's `nest` and `nest_service`
/// strip their prefix and keep the original in `OriginalUri`.
#[cfg(feature = "axum")]
pub(crate) fn client_uri(extensions: &Extensions) -> Option<&http::Uri> {
    extensions
        .get::<axum::extract::OriginalUri>()
        .map(|original| &original.0)
}

#[cfg(not(feature = "axum"))]
pub(crate) fn client_uri(_: &Extensions) -> Option<&http::Uri> {
    None
}

pin_project_lite::pin_project! {
    /// The body of a [`GateService`] response: the inner service's body when the request was let
    /// through, the rejection's when it was refused.
    pub struct GateBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProjection]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Rejection { body: Option<Bytes> },
    }
}

impl<B> GateBody<B> {
    /// The inner service's body.
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A rejection's body (empty for gRPC).
    pub(crate) fn rejection(body: Bytes) -> Self {
        let body = (!body.is_empty()).then_some(body);
        Self {
            kind: Kind::Rejection { body },
        }
    }
}

impl<B> http_body::Body for GateBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProjection::Inner { body } => body.poll_frame(cx),
            KindProjection::Rejection { body } => Poll::Ready(body.take().map(Frame::data).map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Rejection { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Rejection { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl<B> std::fmt::Debug for GateBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("GateBody::Inner"),
            Kind::Rejection { body } => f
                .debug_struct("GateBody::Rejection")
                .field("len", &body.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

pub(crate) fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<::axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

// gRPC: adapter translation of the Gate's HTTP answer, not a second responder. A gRPC client
// ignores the HTTP status and body of an error; it reads `grpc-status` (gRPC over HTTP/2,
// "Responses": a Trailers-Only response puts it in the headers). See
// https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md and .../doc/statuscodes.md.

/// The request's content type when it is gRPC (`application/grpc`, `application/grpc+proto`,
/// `application/grpc-web…`): the response answers in the same one.
fn grpc_content_type(headers: &HeaderMap) -> Option<HeaderValue> {
    headers
        .get(CONTENT_TYPE)
        .filter(|value| value.as_bytes().starts_with(b"application/grpc"))
        .cloned()
}

/// The gRPC status code for a rejection.
fn grpc_code(kind: RejectionKind) -> u16 {
    match kind {
        RejectionKind::InvalidRequest => 3, // INVALID_ARGUMENT
        RejectionKind::MissingCredentials | RejectionKind::InvalidCredentials => 16, // UNAUTHENTICATED
        RejectionKind::Forbidden | RejectionKind::InsufficientScope => 7, // PERMISSION_DENIED
        RejectionKind::LockedOut => 8,                                    // RESOURCE_EXHAUSTED
        RejectionKind::Unavailable => 14,                                 // UNAVAILABLE
        RejectionKind::Misconfigured => 13,                               // INTERNAL
    }
}

/// `grpc-message` is percent-encoded: every byte outside 0x20..=0x7E, and `%` itself.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// The Gate's response, turned into a Trailers-Only gRPC response: status 200, no body, the
/// Gate's headers (challenges, `Retry-After`) kept, `grpc-status` and `grpc-message` added.
fn grpc_rejection<B>(
    response: Response<String>,
    rejection: &Rejection,
    content_type: HeaderValue,
) -> Response<GateBody<B>> {
    let (mut parts, _problem_body) = response.into_parts();
    parts.status = StatusCode::OK;
    let headers = &mut parts.headers;
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from(grpc_code(rejection.kind())),
    );
    let message = utf8_percent_encode(rejection.public_detail(), GRPC_MESSAGE).to_string();
    if let Ok(message) = HeaderValue::from_str(&message) {
        headers.insert(HeaderName::from_static("grpc-message"), message);
    }
    Response::from_parts(parts, GateBody::rejection(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_kind_has_the_grpc_code_of_its_status() {
        let cases = [
            (Rejection::invalid_request("x"), 400, 3),
            (Rejection::missing_credentials("x"), 401, 16),
            (Rejection::forbidden("x"), 403, 7),
            (Rejection::insufficient_scope(["a"], "x"), 403, 7),
            (
                Rejection::locked_out(std::time::Duration::from_secs(1)),
                429,
                8,
            ),
            (Rejection::unavailable("x"), 503, 14),
            (Rejection::misconfigured("x"), 500, 13),
        ];
        for (rejection, status, code) in cases {
            assert_eq!(rejection.status().as_u16(), status);
            assert_eq!(grpc_code(rejection.kind()), code, "{rejection:?}");
        }
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        let encoded = utf8_percent_encode("50% done\nnext: é", GRPC_MESSAGE).to_string();
        assert_eq!(encoded, "50%25 done%0Anext: %C3%A9");
    }
}
