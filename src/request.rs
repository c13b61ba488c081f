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
    public_origin: Option<&'a str>,
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
            public_origin: None,
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

    pub(crate) fn with_public_origin(mut self, origin: Option<&'a str>) -> Self {
        self.public_origin = origin;
        self
    }

    /// The origin clients reach the service at (`https://api.example.com`), as the Gate's
    /// [`public_origin`](crate::GateBuilder::public_origin) sets it, normalised (lowercase,
    /// no default port). With the path, it makes the URI a DPoP proof's `htu` must name. `None`
    /// before the Gate has seen the request or when none is configured.
    pub fn public_origin(&self) -> Option<&'a str> {
        self.public_origin
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

/// A public origin, checked and normalised (RFC 3986 §6.2.2, §6.2.3): `http` or `https`, a
/// host, an optional port, nothing else; scheme and host lowercase, the default port dropped.
pub(crate) fn normalize_origin(origin: &str) -> Result<String, String> {
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or_else(|| format!("`{origin}` is not an origin (scheme://host[:port])"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(format!("`{origin}`: the scheme must be http or https")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty()
        || rest
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'%' | b'\\') || !b.is_ascii_graphic())
    {
        return Err(format!(
            "`{origin}`: an origin is scheme://host[:port], without path, query, user or escapes"
        ));
    }
    let (host, port) = split_host_port(rest)
        .ok_or_else(|| format!("`{origin}`: not a host with an optional numeric port"))?;
    if host.is_empty() {
        return Err(format!("`{origin}` has no host"));
    }
    let host = host.to_ascii_lowercase();
    Ok(match port {
        Some(port) if port.as_str() != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `host[:port]` or `[v6]:port` apart; the port without leading zeros. `None` for a port that
/// is not a number below 65536.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<String>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        match &authority[end + 1..] {
            "" => (&authority[..=end], None),
            rest => (&authority[..=end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(port) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let number: u32 = port.parse().ok().filter(|n| *n < 65536)?;
            Some(number.to_string())
        }
    };
    Some((host, port))
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
