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
//!
//! actix-web 4 is built on `http` 0.2 while portcullis uses `http` 1, so the middleware copies
//! the method, URI and headers into `http` 1 types for the Gate, and the rejection back. Both
//! versions accept the same header bytes, so the copy never changes what the Gate sees.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode as ActixStatus;
use actix_web::http::header::{HeaderName as ActixName, HeaderValue as ActixValue};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};

use crate::handle::GateHandle;
use crate::principal::Principal;
use crate::reject::{MissingPrincipal, Rejection};
use crate::request::RequestView;

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
            let decision = match HttpParts::of(&request) {
                Ok(parts) => gate.check(&parts.view()).await,
                Err(rejection) => Err(rejection),
            };
            match decision {
                Ok(Some(principal)) => {
                    request.extensions_mut().insert(principal);
                }
                Ok(None) => {}
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

impl ResponseError for MissingPrincipal {
    fn status_code(&self) -> ActixStatus {
        ActixStatus::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        to_actix(self.response())
    }
}

/// `Principal` as a handler argument; `Option<Principal>` (actix-web's blanket impl) for routes
/// anonymous callers may also use.
impl FromRequest for Principal {
    type Error = MissingPrincipal;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<Principal>()
                .cloned()
                .ok_or(MissingPrincipal),
        )
    }
}

/// The request's method, URI and headers as `http` 1 types, for a [`RequestView`].
struct HttpParts {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
}

impl HttpParts {
    fn of(request: &ServiceRequest) -> Result<Self, Rejection> {
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
        })
    }

    fn view(&self) -> RequestView<'_> {
        RequestView::new(&self.method, &self.uri, &self.headers).with_peer(self.peer)
    }
}

/// The Gate's `http` 1 response as an actix response: same status, headers (in order, repeated
/// ones repeated) and body.
fn to_actix(response: http::Response<String>) -> HttpResponse<BoxBody> {
    let (parts, body) = response.into_parts();
    // Both `http` versions accept every status from 100 to 999, which is all an `http` 1 one can
    // be; the fallback is unreachable.
    let status =
        ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
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
        let parts = HttpParts::of(&request).unwrap();
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
    fn an_extension_method_is_copied() {
        let request = TestRequest::default()
            .method(actix_web::http::Method::from_bytes(b"PURGE").unwrap())
            .to_srv_request();
        let parts = HttpParts::of(&request).unwrap();
        assert_eq!(parts.method.as_str(), "PURGE");
    }

    #[test]
    fn the_response_keeps_status_headers_and_body() {
        let rejection = Rejection::locked_out(std::time::Duration::from_secs(3));
        let challenges = [
            crate::reject::Challenge::new("Basic").param("realm", "r"),
            crate::reject::Challenge::new("ApiKey").param("realm", "r"),
        ];
        let original = ProblemJson.respond(&rejection, &challenges);
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
