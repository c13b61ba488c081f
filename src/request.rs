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

/// The DER of the client certificate a TLS connection was authenticated with (mutual TLS), for
/// certificate-bound access tokens (RFC 8705). The service's TLS acceptor inserts it into each
/// request's extensions, once the handshake verified that the client holds the certificate's
/// private key; the adapters read it, and
/// [`RequestView::from_parts`] does. The end-entity certificate only: not the chain.
///
/// The Gate uses it unless the TCP peer is one of its
/// [`client_cert_proxies`](crate::GateBuilder::client_cert_proxies), whose `Client-Cert` header
/// (RFC 9440) is used instead (see [`RequestView::client_certificate`]). The axum example
/// `examples/mtls.rs` shows an acceptor with rustls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(pub bytes::Bytes);

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
    client_certificate: Option<&'a [u8]>,
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
            client_certificate: None,
        }
    }

    /// A view of request parts; the peer address is taken from a [`PeerAddr`] or `SocketAddr`
    /// extension when present, the client certificate from a [`ClientCertificate`] extension.
    pub fn from_parts(parts: &'a Parts) -> Self {
        let peer = parts
            .extensions
            .get::<PeerAddr>()
            .map(|p| p.0)
            .or_else(|| parts.extensions.get::<SocketAddr>().copied());
        Self::new(&parts.method, &parts.uri, &parts.headers)
            .with_peer(peer)
            .with_client_certificate(connection_certificate(&parts.extensions))
    }

    /// Sets the DER of the client certificate the connection was authenticated with (mutual
    /// TLS); see [`ClientCertificate`].
    pub fn with_client_certificate(mut self, der: Option<&'a [u8]>) -> Self {
        self.client_certificate = der;
        self
    }

    /// The DER of the client certificate the request is made with. Before the Gate has seen
    /// the request: the connection's, as given. In the Gate: the connection's, unless the TCP
    /// peer is one of the Gate's
    /// [`client_cert_proxies`](crate::GateBuilder::client_cert_proxies), in which case it is
    /// the one in that proxy's `Client-Cert` header (RFC 9440), or none when it sent none.
    pub fn client_certificate(&self) -> Option<&'a [u8]> {
        self.client_certificate
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

/// The connection's client certificate, from a [`ClientCertificate`] extension.
pub(crate) fn connection_certificate(extensions: &http::Extensions) -> Option<&[u8]> {
    extensions
        .get::<ClientCertificate>()
        .map(|cert| cert.0.as_ref())
}

/// The `Client-Cert` header (RFC 9440 §2.2).
pub(crate) const CLIENT_CERT: http::HeaderName = http::HeaderName::from_static("client-cert");

/// The largest `Client-Cert` value read: 16 KiB (a certificate with an RSA-8192 key is ~2 KiB).
pub(crate) const MAX_CLIENT_CERT_BYTES: usize = 16 * 1024;

/// The DER in a `Client-Cert` header (RFC 9440 §2.2): one field line holding a structured-field
/// byte sequence (RFC 8941 §3.3.5), `:` base64 `:`, padding optional. `Ok(None)` when absent;
/// an error (the reason) when repeated, too large or malformed.
pub(crate) fn client_cert_header(headers: &HeaderMap) -> Result<Option<Vec<u8>>, &'static str> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut values = headers.get_all(CLIENT_CERT).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(_), Some(_)) => return Err("more than one field line"),
        (Some(value), None) => value,
    };
    if value.len() > MAX_CLIENT_CERT_BYTES {
        return Err("larger than 16 KiB");
    }
    let text = value
        .to_str()
        .map_err(|_| "not ASCII")?
        .trim_matches(|c| c == ' ' || c == '\t');
    let inner = text
        .strip_prefix(':')
        .and_then(|rest| rest.strip_suffix(':'))
        .filter(|inner| !inner.is_empty())
        .ok_or("not a structured-field byte sequence (`:base64:`)")?;
    STANDARD_ANY_PAD
        .decode(inner)
        .map(Some)
        .map_err(|_| "not base64 in a structured-field byte sequence")
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
    fn client_cert_header_is_one_sf_binary() {
        let parse = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(CLIENT_CERT, HeaderValue::from_str(value).unwrap());
            }
            client_cert_header(&headers)
        };
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[":AQID:"]), Ok(Some(vec![1, 2, 3])));
        assert_eq!(parse(&[" :AQIDBA==: "]), Ok(Some(vec![1, 2, 3, 4])));
        assert_eq!(parse(&[":AQIDBA:"]), Ok(Some(vec![1, 2, 3, 4])));
        for bad in [
            "AQID",
            ":AQID",
            "::",
            ":AQ-_:",
            ":AQID:, :AQID:",
            "\"AQID\"",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
        assert!(parse(&[":AQID:", ":AQID:"]).is_err());
        let huge = format!(":{}:", "A".repeat(MAX_CLIENT_CERT_BYTES));
        assert!(parse(&[&huge]).is_err());
    }

    proptest::proptest! {
        /// Any DER survives the sf-binary encoding a proxy sends, padded or not.
        #[test]
        fn client_cert_round_trips(der in proptest::collection::vec(proptest::num::u8::ANY, 1..2048), pad: bool) {
            use base64::Engine;
            let mut text = base64::engine::general_purpose::STANDARD.encode(&der);
            if !pad {
                text = text.trim_end_matches('=').to_owned();
            }
            let mut headers = HeaderMap::new();
            headers.insert(CLIENT_CERT, HeaderValue::from_str(&format!(":{text}:")).unwrap());
            proptest::prop_assert_eq!(client_cert_header(&headers), Ok(Some(der)));
        }
    }

    #[test]
    fn certificate_comes_from_extensions() {
        let mut req = http::Request::new(());
        req.extensions_mut()
            .insert(ClientCertificate(bytes::Bytes::from_static(b"DER")));
        let (parts, ()) = req.into_parts();
        assert_eq!(
            RequestView::from_parts(&parts).client_certificate(),
            Some(b"DER".as_slice())
        );
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
