//! A principal and the Gate's context on a test request, without a Gate in front.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use crate::context::GateContext;
use crate::gate::Gate;
use crate::principal::Principal;
use crate::request::{PeerAddr, RequestView};

/// A context for `principal`, as if a Gate had authenticated it: put it on a request with
/// [`on`](TestContext::on) (or [`on_actix`](TestContext::on_actix)) and the `Principal`,
/// `Option<Principal>`, [`Guard`](crate::extract::Guard) and [`Claims`](crate::extract::Claims)
/// extractors and route-bound policies see it, with no Gate layer in front.
pub fn authenticated(principal: Principal) -> TestContext {
    TestContext::new(Some(principal))
}

/// A context for an anonymous caller the Gate let through (a route its rules open to everyone):
/// `Option<Principal>` is `None`, `Principal` refuses with 401.
pub fn anonymous() -> TestContext {
    TestContext::new(None)
}

/// The [`GateContext`] a test puts on a request: a principal (or none), the Gate whose
/// challenges, responder and rule names refusals use, and the client IP.
///
/// What it skips: authentication and the Gate's route rule. The principal is taken as given
/// and the handler runs whatever the Gate's rules say about it; a handler's own guard,
/// extractors and route-bound policies still judge it. To test the Gate's rules, send real
/// credentials (see [`Credentials`](super::Credentials)) through the real layer.
#[derive(Clone)]
pub struct TestContext {
    principal: Option<Principal>,
    /// `None`: the empty Gate, built once per process.
    gate: Option<Gate>,
    client_ip: Option<IpAddr>,
}

impl TestContext {
    fn new(principal: Option<Principal>) -> Self {
        Self {
            principal,
            gate: None,
            client_ip: None,
        }
    }

    /// The Gate refusals are built with (its challenges and responder) and whose route rule
    /// names [`GateContext::rule`]; use the one your service builds. Defaults to a Gate with no
    /// authenticators, no routes and the default responder (one per process).
    #[must_use]
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The client IP the context reports (what `IpRanges` judges). Defaults to the request's
    /// peer address ([`PeerAddr`], a `SocketAddr` extension or axum's `ConnectInfo`; the actix
    /// `TestRequest::peer_addr`), and none without one.
    #[must_use]
    pub fn with_client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// The principal this context carries.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The context for `request`: the rule the Gate matches for its method and path.
    pub fn context(&self, request: &RequestView<'_>) -> GateContext {
        let gate = self.gate.as_ref().unwrap_or_else(|| empty_gate());
        GateContext::for_test(gate, self.principal.clone(), self.client_ip, request)
    }

    /// `request` with the context (and the principal) in its extensions, where the Gate's
    /// tower layer puts them: for an axum router's `oneshot`, or for extracting by hand.
    pub fn on<B>(&self, request: http::Request<B>) -> http::Request<B> {
        let (mut parts, body) = request.into_parts();
        let peer = peer(&parts.extensions);
        let context = self.context(&RequestView::from_parts(&parts).with_peer(peer));
        if let Some(principal) = &self.principal {
            parts.extensions.insert(principal.clone());
        }
        parts.extensions.insert(context);
        http::Request::from_parts(parts, body)
    }

    /// The actix-web request for `request` with the context (and the principal) in its
    /// extensions, where `actix::GateMiddleware` puts them: for
    /// `actix_web::test::call_service` on an app without the middleware.
    #[cfg(feature = "actix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn on_actix(&self, request: actix_web::test::TestRequest) -> actix_http::Request {
        use actix_web::HttpMessage as _;
        let request = request.to_request();
        let context = self.actix_context(
            request.method().as_str(),
            &request.uri().to_string(),
            request.peer_addr(),
        );
        let mut extensions = request.extensions_mut();
        if let Some(principal) = &self.principal {
            extensions.insert(principal.clone());
        }
        extensions.insert(context);
        drop(extensions);
        request
    }

    /// The actix-web `HttpRequest` for `request` with the context (and the principal) in its
    /// extensions: for running an extractor (`Principal::extract(&request)`) or a handler that
    /// takes an `HttpRequest` directly.
    #[cfg(feature = "actix")]
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn on_actix_http(&self, request: actix_web::test::TestRequest) -> actix_web::HttpRequest {
        use actix_web::HttpMessage as _;
        let request = request.to_http_request();
        let context = self.actix_context(
            request.method().as_str(),
            &request.uri().to_string(),
            request.peer_addr(),
        );
        {
            let mut extensions = request.extensions_mut();
            if let Some(principal) = &self.principal {
                extensions.insert(principal.clone());
            }
            extensions.insert(context);
        }
        request
    }

    /// actix-web is on `http` 0.2: the method and URI are read back as `http` 1 values. A test
    /// request that cannot be (none `TestRequest` builds) matches the rule for `GET /`.
    #[cfg(feature = "actix")]
    fn actix_context(
        &self,
        method: &str,
        uri: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> GateContext {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
        let uri = http::Uri::try_from(uri).unwrap_or_else(|_| http::Uri::from_static("/"));
        let headers = http::HeaderMap::new();
        self.context(&RequestView::new(&method, &uri, &headers).with_peer(peer))
    }
}

impl fmt::Debug for TestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestContext")
            .field("principal", &self.principal)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

/// The peer address as the tower layer reads it.
fn peer(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<::axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<std::net::SocketAddr>().copied()
}

/// A Gate with nothing in it (every path falls to the default rule), built once: one WARN.
fn empty_gate() -> &'static Gate {
    static EMPTY: OnceLock<Gate> = OnceLock::new();
    EMPTY.get_or_init(|| {
        // No authenticators, routes or policies to validate: building cannot fail.
        Gate::builder()
            .build()
            .expect("a Gate with no authenticators or routes builds")
    })
}
