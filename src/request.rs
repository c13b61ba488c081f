//! [`RequestView`]: the borrowed, framework-free view of a request that the Gate works on.

use std::net::{IpAddr, SocketAddr};

use http::header::{AsHeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Uri};

use crate::reject::Rejection;

/// The peer address of a connection, for servers that put it in request extensions under this
/// type. The tower layer also finds a bare `SocketAddr`, and axum's `ConnectInfo<SocketAddr>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A cheap, borrowed view of what the Gate needs from a request: method, URI, headers and the
/// connection's peer address. Build it from [`http::request::Parts`] or from the pieces.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    peer: Option<SocketAddr>,
    client_ip: Option<IpAddr>,
}

impl<'a> RequestView<'a> {
    /// A view of the given pieces, with no peer address.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
            peer: None,
            client_ip: None,
        }
    }

    /// A view of request parts; the peer address is taken from a [`PeerAddr`] or `SocketAddr`
    /// extension when present.
    pub fn from_parts(parts: &'a Parts) -> Self {
        let peer = parts
            .extensions
            .get::<PeerAddr>()
            .map(|p| p.0)
            .or_else(|| parts.extensions.get::<SocketAddr>().copied());
        Self::new(&parts.method, &parts.uri, &parts.headers).with_peer(peer)
    }

    /// Sets the connection's peer address.
    pub fn with_peer(mut self, peer: Option<SocketAddr>) -> Self {
        self.peer = peer;
        self
    }

    pub(crate) fn with_client_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The path, exactly as the client sent it (the Gate never rewrites it).
    pub fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.uri.query()
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The connection's peer address, when the server provided it.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The client IP the Gate resolved (the peer, or the forwarded address behind a trusted
    /// proxy). `None` before the Gate has seen the request or when the server gave no peer.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The one value of header `name`, if present. Two or more values of a header that carries a
    /// credential are ambiguous, so they are an `invalid_request`, never "pick one".
    pub fn single_header<K: AsHeaderName>(
        &self,
        name: K,
    ) -> Result<Option<&'a HeaderValue>, Rejection> {
        let mut values = self.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => Ok(Some(value)),
            (Some(_), Some(_)) => Err(Rejection::invalid_request(
                "a credential header is repeated",
            )),
        }
    }
}

/// Splits an `Authorization` value into its scheme and the rest, or `None` when it has no
/// credentials part. The scheme is compared case-insensitively by callers (RFC 9110 §11.1).
#[cfg(any(
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection"
))]
pub(crate) fn split_authorization(value: &str) -> (&str, Option<&str>) {
    match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, Some(rest.trim_start_matches(' '))),
        None => (value, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_credential_header_is_invalid() {
        let mut headers = HeaderMap::new();
        headers.append("authorization", HeaderValue::from_static("Basic a"));
        headers.append("authorization", HeaderValue::from_static("Basic b"));
        let (method, uri) = (Method::GET, Uri::from_static("/"));
        let view = RequestView::new(&method, &uri, &headers);
        let err = view.single_header("authorization").unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn peer_comes_from_extensions() {
        let mut req = http::Request::new(());
        let addr: SocketAddr = "10.1.2.3:4000".parse().unwrap();
        req.extensions_mut().insert(PeerAddr(addr));
        let (parts, ()) = req.into_parts();
        assert_eq!(RequestView::from_parts(&parts).peer(), Some(addr));
    }

    #[test]
    #[cfg(any(
        feature = "basic",
        feature = "api-key",
        feature = "jwt",
        feature = "introspection"
    ))]
    fn authorization_splits_at_the_first_space() {
        assert_eq!(split_authorization("Basic  abc"), ("Basic", Some("abc")));
        assert_eq!(split_authorization("Basic"), ("Basic", None));
    }
}
