//! The token API as an actix-web [`Scope`] (feature `actix`). actix-web 4 is on `http` 0.2, so
//! the request is copied into the `http` 1 types [`SelfService::handle`] takes, and back.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode as ActixStatus;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Scope, web};
use bytes::Bytes;

use super::{MAX_BODY_LEN, Problem, SelfService, SelfServiceAdmin};
use crate::context::GateContext;
use crate::policy::Policy;

impl SelfService {
    /// The token API as an actix-web scope at `prefix` (`"/tokens"`), to register in an `App`
    /// wrapped by the Gate's middleware.
    pub fn actix_scope(&self, prefix: &str) -> Scope {
        let service = self.clone();
        scope(prefix, move |request| {
            let service = service.clone();
            async move { service.handle(request).await }
        })
    }

    /// The admin API ([`SelfService::admin`]) as an actix-web scope, for callers `policy`
    /// allows.
    pub fn admin_scope(&self, prefix: &str, policy: impl Policy) -> Scope {
        self.admin(policy).actix_scope(prefix)
    }
}

impl SelfServiceAdmin {
    /// The admin API as an actix-web scope at `prefix`.
    pub fn actix_scope(&self, prefix: &str) -> Scope {
        let admin = self.clone();
        scope(prefix, move |request| {
            let admin = admin.clone();
            async move { admin.handle(request).await }
        })
    }
}

fn scope<F, Fut>(prefix: &str, handle: F) -> Scope
where
    F: Fn(http::Request<Bytes>) -> Fut + Clone + 'static,
    Fut: Future<Output = http::Response<Bytes>> + 'static,
{
    let service = web::to(move |request: HttpRequest, payload: web::Payload| {
        let handle = handle.clone();
        async move {
            let body = match payload.to_bytes_limited(MAX_BODY_LEN).await {
                Ok(Ok(body)) => body,
                Ok(Err(_)) => {
                    return to_actix(
                        Problem::new(http::StatusCode::BAD_REQUEST, "unreadable body").response(),
                    );
                }
                Err(_) => return to_actix(Problem::too_large().response()),
            };
            match to_http(&request, body) {
                Some(request) => to_actix(handle(request).await),
                None => to_actix(
                    Problem::new(http::StatusCode::BAD_REQUEST, "unreadable request").response(),
                ),
            }
        }
    });
    web::scope(prefix).default_service(service)
}

/// The request as `http` 1, its path relative to the scope, with the Gate's context.
fn to_http(request: &HttpRequest, body: Bytes) -> Option<http::Request<Bytes>> {
    let relative = match request.match_info().unprocessed() {
        "" => "/",
        path if path.starts_with('/') => path,
        _ => return None,
    };
    let uri = match request.query_string() {
        "" => relative.to_owned(),
        query => format!("{relative}?{query}"),
    };
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(request.method().as_str().as_bytes()).ok()?)
        .uri(uri);
    for (name, value) in request.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let mut converted = builder.body(body).ok()?;
    if let Some(context) = request.extensions().get::<GateContext>() {
        converted.extensions_mut().insert(context.clone());
    }
    Some(converted)
}

fn to_actix(response: http::Response<Bytes>) -> HttpResponse<BoxBody> {
    let (parts, body) = response.into_parts();
    let status =
        ActixStatus::from_u16(parts.status.as_u16()).unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    builder.body(body)
}
