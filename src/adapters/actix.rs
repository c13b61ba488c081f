//! actix-web 4: [`GateMiddleware`] runs the [`Gate`](crate::Gate) in front of an app, a scope or
//! a resource, and [`Principal`] is an extractor.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use portcullis::actix::GateMiddleware;
//! use portcullis::{Gate, Principal};
//!
//! async fn me(principal: Principal) -> String {
//!     format!("hello, {}", principal.subject())
//! }
//!
//! async fn home(principal: Option<Principal>) -> String {
//!     match principal {
//!         Some(principal) => format!("welcome back, {}", principal.subject()),
//!         None => "welcome, stranger".to_owned(),
//!     }
//! }
//!
//! # async fn run(gate: Gate) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(GateMiddleware::new(gate.clone()))
//!         .route("/", web::get().to(home))
//!         .route("/me", web::get().to(me))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await
//! # }
//! ```
//!
//! A refused request gets exactly the response [`Gate::respond`](crate::Gate::respond) builds
//! (status, `WWW-Authenticate`, `Retry-After`, body) and never reaches the handler.
//! [`PolicyMiddleware`] adds a policy to a resource or scope, and the extractors
//! ([`Principal`], [`Guard`](crate::extract::Guard), [`Claims`](crate::extract::Claims)) refuse
//! through the same responder.
//!
//! actix-web 4 is built on `http` 0.2 while portcullis uses `http` 1, so the middleware copies
//! the method, URI and headers into `http` 1 types for the Gate, and the rejection back. Both
//! versions accept the same header bytes, so the copy never changes what the Gate sees.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode as ActixStatus;
use actix_web::http::header::{HeaderName as ActixName, HeaderValue as ActixValue};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};

use serde::de::DeserializeOwned;

use super::extract::{Claims, Guard};
use crate::context::{GateContext, HANDLER, ROUTE, no_context};
use crate::error::ConfigError;
use crate::handle::GateHandle;
use crate::policy::Policy;
use crate::principal::Principal;
use crate::reject::{Refusal, Rejection};
use crate::request::{ClientCertificate, RequestView};

/// actix-web middleware that passes every request through the [`Gate`](crate::Gate):
/// `App::new().wrap(GateMiddleware::new(gate))`. An allowed request reaches the handler with its
/// [`Principal`] in the request extensions (take it as a handler argument); a refused one gets
/// the Gate's rejection response. The peer address is the connection's (`peer_addr()`).
///
/// Give it a [`Gate`](crate::Gate), or a [`GateHandle`] to reload configuration while serving;
/// each request uses one snapshot of the Gate from start to end.
#[derive(Clone, Debug)]
pub struct GateMiddleware {
    gate: GateHandle,
}

impl GateMiddleware {
    /// Middleware running `gate`: a [`Gate`](crate::Gate) or a [`GateHandle`].
    pub fn new(gate: impl Into<GateHandle>) -> Self {
        Self { gate: gate.into() }
    }
}

impl<S, B> Transform<S, ServiceRequest> for GateMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = GateMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GateMiddlewareService {
            gate: self.gate.clone(),
            service: Rc::new(service),
        }))
    }
}

/// The service [`GateMiddleware`] wraps around the app's.
pub struct GateMiddlewareService<S> {
    gate: GateHandle,
    // Shared with the request's future, which calls it after the Gate's await.
    service: Rc<S>,
}

impl<S> fmt::Debug for GateMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateMiddlewareService")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for GateMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        // One snapshot for the whole request: a reload cannot change the Gate halfway.
        let gate = self.gate.gate();
        Box::pin(async move {
            let decision = match HttpParts::of(request.request()) {
                Ok(parts) => GateContext::decide(&gate, &parts.view()).await,
                Err(rejection) => Err(rejection),
            };
            match decision {
                Ok(context) => {
                    let mut extensions = request.extensions_mut();
                    if let Some(principal) = context.principal() {
                        extensions.insert(principal.clone());
                    }
                    extensions.insert(context);
                }
                Err(rejection) => {
                    let response = to_actix(gate.respond(&rejection));
                    return Ok(request.into_response(response).map_into_right_body());
                }
            }
            let response = service.call(request).await?;
            Ok(response.map_into_left_body())
        })
    }
}

/// Judges the principal the [`GateMiddleware`] in front already established (no second
/// authentication) with one more [`Policy`], for the resource or scope it wraps:
///
/// ```no_run
/// use actix_web::{App, web};
/// use portcullis::actix::{GateMiddleware, PolicyMiddleware};
/// use portcullis::{Gate, Groups};
///
/// # fn app(gate: Gate) -> Result<(), portcullis::ConfigError> {
/// let admins = PolicyMiddleware::new(Groups::any_of(["admin"]))?;
/// let app = App::new()
///     .wrap(GateMiddleware::new(gate)) // outside: runs first, once per request
///     .service(
///         web::scope("/admin")
///             .wrap(admins)
///             .route("/users", web::get().to(|| async { "users" })),
///     );
/// # Ok(()) }
/// ```
///
/// It refuses exactly as the Gate does, with the Gate's responder: 401 with every challenge for
/// an anonymous caller, 403 for a principal, Bearer `insufficient_scope` with `scope=` for
/// missing scopes; each refusal is one audit event with `stage = "route"`. Without a
/// [`GateMiddleware`] in front it refuses with 500 and an audit event, and never judges the
/// request as anonymous.
#[derive(Clone, Debug)]
pub struct PolicyMiddleware {
    policy: Arc<dyn Policy>,
}

impl PolicyMiddleware {
    /// Middleware requiring `policy`, or the error its [`validate`](Policy::validate) reports,
    /// as [`GateBuilder::build`](crate::GateBuilder::build) would.
    pub fn new(policy: impl Policy) -> Result<Self, ConfigError> {
        policy.validate()?;
        Ok(Self {
            policy: Arc::new(policy),
        })
    }
}

impl<S, B> Transform<S, ServiceRequest> for PolicyMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = PolicyMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(PolicyMiddlewareService {
            policy: Arc::clone(&self.policy),
            service,
        }))
    }
}

/// The service [`PolicyMiddleware`] wraps around a resource's or scope's.
pub struct PolicyMiddlewareService<S> {
    policy: Arc<dyn Policy>,
    service: S,
}

impl<S> fmt::Debug for PolicyMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyMiddlewareService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for PolicyMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let verdict = judge_route(&self.policy, request.request());
        if let Err(refusal) = verdict {
            let response = refusal_response(&refusal);
            return Box::pin(ready(Ok(request
                .into_response(response)
                .map_into_right_body())));
        }
        let future = self.service.call(request);
        Box::pin(async move { Ok(future.await?.map_into_left_body()) })
    }
}

/// The route-bound policy's verdict on `request`.
fn judge_route(policy: &Arc<dyn Policy>, request: &HttpRequest) -> Result<(), Refusal> {
    let parts = HttpParts::of(request);
    let context = request.extensions().get::<GateContext>().cloned();
    match (context, parts) {
        (Some(context), Ok(parts)) => context.judge(&**policy, &parts.view(), ROUTE),
        (None, parts) => Err(no_context(
            &parts.unwrap_or_else(|_| HttpParts::unknown()).view(),
            ROUTE,
            "a route-bound policy",
        )),
        // The Gate in front read this request through the same conversion; it cannot fail here.
        (Some(context), Err(rejection)) => {
            Err(context.refuse(&HttpParts::unknown().view(), ROUTE, rejection, None))
        }
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> ActixStatus {
        actix_status(self.response().status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        refusal_response(self)
    }
}

/// The Gate's context for a handler's extractor, or the 500 refusal when no Gate ran in front.
fn context(request: &HttpRequest, what: &str) -> Result<GateContext, Refusal> {
    request
        .extensions()
        .get::<GateContext>()
        .cloned()
        .ok_or_else(|| {
            let parts = HttpParts::of(request).unwrap_or_else(|_| HttpParts::unknown());
            no_context(&parts.view(), HANDLER, what)
        })
}

/// Runs `f` with the request's view; a request the conversion cannot represent was refused by
/// the Gate in front, so the fallback only serves the audit line of a refusal.
fn with_view<R>(request: &HttpRequest, f: impl FnOnce(&RequestView<'_>) -> R) -> R {
    let parts = HttpParts::of(request).unwrap_or_else(|_| HttpParts::unknown());
    f(&parts.view())
}

/// `Principal` as a handler argument: 401 with every challenge for an anonymous caller, 500
/// without a Gate in front. `Option<Principal>` (actix-web's blanket impl) turns every refusal
/// into `None`, the 500 included: where a missing Gate must not read as an anonymous caller,
/// take a [`Guard`] and read [`Guard::principal`].
impl FromRequest for Principal {
    type Error = Refusal;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            context(request, "the Principal extractor").and_then(|context| {
                match context.principal() {
                    Some(principal) => Ok(principal.clone()),
                    None => with_view(request, |view| context.principal_or_refuse(view).cloned()),
                }
            }),
        )
    }
}

impl FromRequest for Guard {
    type Error = Refusal;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(context(request, "the Guard extractor").and_then(|context| {
            match HttpParts::of(request) {
                Ok(parts) => Ok(Guard::new(
                    context,
                    parts.method,
                    parts.uri,
                    parts.headers,
                    parts.peer,
                )),
                Err(rejection) => {
                    Err(context.refuse(&HttpParts::unknown().view(), HANDLER, rejection, None))
                }
            }
        }))
    }
}

impl<T: DeserializeOwned> FromRequest for Claims<T> {
    type Error = Refusal;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            context(request, "the Claims extractor")
                .and_then(|context| with_view(request, |view| context.claims(view)))
                .map(Claims),
        )
    }
}

/// The request's method, URI and headers as `http` 1 types, for a [`RequestView`].
struct HttpParts {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
    /// The connection's client certificate: actix `on_connect` data, or a request extension.
    certificate: Option<ClientCertificate>,
}

impl HttpParts {
    fn of(request: &HttpRequest) -> Result<Self, Rejection> {
        let malformed = |what: &'static str| Rejection::invalid_request(what);
        let method = http::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|_| malformed("method not representable"))?;
        let uri = http::Uri::try_from(request.uri().to_string())
            .map_err(|_| malformed("URI not representable"))?;
        let mut headers = http::HeaderMap::with_capacity(request.headers().len());
        for (name, value) in request.headers() {
            let name = http::HeaderName::from_bytes(name.as_str().as_bytes())
                .map_err(|_| malformed("header name not representable"))?;
            let value = http::HeaderValue::from_bytes(value.as_bytes())
                .map_err(|_| malformed("header value not representable"))?;
            // `append`: repeated headers stay repeated (a repeated credential is a 400).
            headers.append(name, value);
        }
        Ok(Self {
            method,
            uri,
            headers,
            peer: request.peer_addr(),
            certificate: request
                .conn_data::<ClientCertificate>()
                .cloned()
                .or_else(|| request.extensions().get::<ClientCertificate>().cloned()),
        })
    }

    /// Stands in for a request the conversion cannot represent, in an audit line.
    fn unknown() -> Self {
        Self {
            method: http::Method::GET,
            uri: http::Uri::from_static("/"),
            headers: http::HeaderMap::new(),
            peer: None,
            certificate: None,
        }
    }

    fn view(&self) -> RequestView<'_> {
        RequestView::new(&self.method, &self.uri, &self.headers)
            .with_peer(self.peer)
            .with_client_certificate(self.certificate.as_ref().map(|cert| cert.0.as_ref()))
    }
}

/// A refusal's response as an actix response.
fn refusal_response(refusal: &Refusal) -> HttpResponse<BoxBody> {
    let response = refusal.response();
    let mut copy = http::Response::new(response.body().clone());
    *copy.status_mut() = response.status();
    *copy.headers_mut() = response.headers().clone();
    to_actix(copy)
}

fn actix_status(status: http::StatusCode) -> ActixStatus {
    // Both `http` versions accept every status from 100 to 999, which is all an `http` 1 one can
    // be; the fallback is unreachable.
    ActixStatus::from_u16(status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR)
}

/// The Gate's `http` 1 response as an actix response: same status, headers (in order, repeated
/// ones repeated) and body.
fn to_actix(response: http::Response<String>) -> HttpResponse<BoxBody> {
    let (parts, body) = response.into_parts();
    let status = actix_status(parts.status);
    let mut out = HttpResponse::with_body(status, body).map_into_boxed_body();
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        // Same validity rules in both versions: a header valid in one is valid in the other.
        if let (Ok(name), Ok(value)) = (
            ActixName::from_bytes(name.as_str().as_bytes()),
            ActixValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reject::{ProblemJson, RejectionResponder};
    use actix_web::test::TestRequest;

    #[test]
    fn request_parts_are_copied_faithfully() {
        let request = TestRequest::get()
            .uri("/a/b?x=1&y=%20")
            .append_header(("authorization", "Basic YTpi"))
            .append_header(("x-forwarded-for", "192.0.2.1"))
            .append_header(("x-forwarded-for", "192.0.2.2"))
            .append_header(("x-opaque", &b"caf\xc3\xa9"[..]))
            .peer_addr("10.0.0.7:4000".parse().unwrap())
            .to_srv_request();
        let parts = HttpParts::of(request.request()).unwrap();
        let view = parts.view();
        assert_eq!(view.method(), http::Method::GET);
        assert_eq!(view.path(), "/a/b");
        assert_eq!(view.query(), Some("x=1&y=%20"));
        assert_eq!(view.headers()["authorization"], "Basic YTpi");
        let forwarded: Vec<_> = view.headers().get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(view.headers()["x-opaque"].as_bytes(), b"caf\xc3\xa9");
        assert_eq!(view.peer(), Some("10.0.0.7:4000".parse().unwrap()));
    }

    #[test]
    fn the_client_certificate_extension_is_read() {
        let request = TestRequest::get().uri("/").to_srv_request();
        assert_eq!(
            HttpParts::of(request.request())
                .unwrap()
                .view()
                .client_certificate(),
            None
        );
        request
            .extensions_mut()
            .insert(ClientCertificate(bytes::Bytes::from_static(b"DER")));
        let parts = HttpParts::of(request.request()).unwrap();
        assert_eq!(parts.view().client_certificate(), Some(b"DER".as_slice()));
    }

    #[test]
    fn an_extension_method_is_copied() {
        let request = TestRequest::default()
            .method(actix_web::http::Method::from_bytes(b"PURGE").unwrap())
            .to_srv_request();
        let parts = HttpParts::of(request.request()).unwrap();
        assert_eq!(parts.method.as_str(), "PURGE");
    }

    #[test]
    fn the_response_keeps_status_headers_and_body() {
        let rejection = Rejection::locked_out(std::time::Duration::from_secs(3));
        let challenges = [
            crate::reject::Challenge::new("Basic").param("realm", "r"),
            crate::reject::Challenge::new("ApiKey").param("realm", "r"),
        ];
        let original = ProblemJson.respond(&rejection.public(), &challenges);
        let converted = to_actix(original.clone());
        assert_eq!(converted.status().as_u16(), 429);
        let values = |name: &str| -> Vec<Vec<u8>> {
            converted
                .headers()
                .get_all(name)
                .map(|v| v.as_bytes().to_vec())
                .collect()
        };
        assert_eq!(
            values("www-authenticate"),
            [
                br#"Basic realm="r""#.to_vec(),
                br#"ApiKey realm="r""#.to_vec()
            ]
        );
        assert_eq!(values("retry-after"), [b"3".to_vec()]);
        assert_eq!(
            values("content-type"),
            [b"application/problem+json".to_vec()]
        );
        let body = actix_web::body::to_bytes(converted.into_body());
        let body = block_on(body).unwrap();
        assert_eq!(body, original.body().as_bytes());
    }

    /// Runs a future to completion on a throwaway runtime.
    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }
}
