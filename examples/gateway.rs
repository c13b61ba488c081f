//! A config-driven authenticating reverse proxy, the way Kong is used: portcullis in front of an
//! upstream that has no authentication of its own.
//!
//! ```text
//! cargo run --example gateway                                   # with a built-in echo upstream
//! cargo run --example gateway -- examples/gateway.toml http://127.0.0.1:8081
//! ```
//!
//! Arguments: the configuration file (default `examples/gateway.toml`) and the upstream's base URL
//! (`http://host:port`, optionally with a path prefix). Without an upstream, the example starts
//! one on 127.0.0.1 that answers every request with the headers it received, so you can see what
//! an upstream gets. Listens on `ADDR` (default `127.0.0.1:8080`). On `SIGHUP` it reads the
//! configuration again; a broken file is reported and the old one keeps serving.
//!
//! What the upstream can rely on, for every request it gets from the gateway:
//!
//! - the Gate allowed it (route rules and policies from the file);
//! - `x-portcullis-subject`, `-scheme`, `-groups`, `-scopes` and `-credential-id` describe the
//!   caller, and are absent for an anonymous caller on a public route: any `x-portcullis-*`
//!   header the client sent is removed first, so none can be forged;
//! - the credentials (`Authorization`, `X-API-Key`) are not forwarded (Kong's
//!   `hide_credentials = true`): the upstream never holds a secret it does not need;
//! - `X-Forwarded-For` ends with the address the gateway saw.
//!
//! Values are percent-encoded UTF-8 (RFC 3986); lists are comma-separated. The upstream must only
//! be reachable through the gateway (bind it to localhost or a private network), or anyone can
//! send those headers to it directly.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use portcullis::{GateHandle, GateLayer, PeerAddr, Principal};
use tower::ServiceBuilder;

/// The headers the gateway sets for the upstream; incoming ones are removed.
const PRINCIPAL_PREFIX: &str = "x-portcullis-";

/// Credential headers the upstream never sees. Add the `[api_keys] header` of your configuration
/// if you changed it.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key"];

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, not the message.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

type ProxyBody = BoxBody<Bytes, hyper::Error>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let config = args
        .next()
        .unwrap_or_else(|| "examples/gateway.toml".to_owned());
    let upstream: Uri = match args.next() {
        Some(url) => url.parse()?,
        None => format!("http://{}", echo_upstream().await?).parse()?,
    };
    if upstream.scheme_str() != Some("http") || upstream.authority().is_none() {
        return Err(format!("the upstream must be an http://host:port URL, not {upstream}").into());
    }
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()?;

    // Errors name the file, line and key.
    let gate = GateHandle::from_config_file(&config).await?;
    reload_on_sighup(gate.clone());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("gateway on {base}, forwarding to {upstream}, configured by {config}");
    println!("curl -i {base}/health   # 200: public, no x-portcullis-* headers upstream");
    println!("curl -i {base}/orders   # 401: every other route needs a caller");
    println!(
        "curl -i -u 'alice:correct horse battery staple' -H 'x-portcullis-subject: root' \
         {base}/orders   # 200: the upstream sees subject alice, not root"
    );
    println!(
        "curl -i -u 'alice:correct horse battery staple' {base}/admin/users   # 200: alice is an admin"
    );
    println!("curl -i -u 'bob:tr0ub4dor&3' {base}/admin/users   # 403: bob is not");
    serve(listener, gate, upstream).await?;
    Ok(())
}

/// Serves the gateway on `listener`: every request passes the Gate; allowed ones go on to
/// `upstream` (an `http://host:port[/prefix]` URL).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    gate: GateHandle,
    upstream: Uri,
) -> std::io::Result<()> {
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    loop {
        let (stream, peer) = listener.accept().await?;
        let proxy = Proxy {
            client: client.clone(),
            upstream: upstream.clone(),
            peer,
        };
        // hyper does not tell services who is calling: hand the Gate the peer address.
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .layer(GateLayer::new(gate.clone()))
            .service_fn(move |request| proxy.clone().forward(request));
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(err) = connection.await {
                tracing::debug!(%peer, "connection ended: {err}");
            }
        });
    }
}

/// Forwards requests the Gate allowed to the upstream.
#[derive(Clone)]
struct Proxy {
    client: Client<HttpConnector, Incoming>,
    upstream: Uri,
    peer: SocketAddr,
}

impl Proxy {
    async fn forward(self, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (mut parts, body) = request.into_parts();
        let principal = parts.extensions.remove::<Principal>();
        parts.uri = match self.upstream_uri(&parts.uri) {
            Ok(uri) => uri,
            Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "bad request target")),
        };
        prepare_headers(&mut parts.headers, principal.as_ref(), self.peer);
        // Talk HTTP/1.1 upstream, whatever the client spoke.
        parts.version = http::Version::HTTP_11;
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, body.boxed()))
            }
            Err(err) => {
                tracing::warn!("upstream: {err}");
                Ok(plain(StatusCode::BAD_GATEWAY, "upstream unavailable"))
            }
        }
    }

    /// The upstream URL for a request target: the upstream's base path, then the request's path
    /// and query.
    fn upstream_uri(&self, target: &Uri) -> Result<Uri, http::Error> {
        let base = self.upstream.path().trim_end_matches('/');
        let path_and_query = target.path_and_query().map_or("/", PathAndQuery::as_str);
        let path_and_query: PathAndQuery = format!("{base}{path_and_query}").parse()?;
        let mut parts = self.upstream.clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        Ok(Uri::from_parts(parts)?)
    }
}

/// Makes the request's headers fit for the upstream: no hop-by-hop headers, no credentials, no
/// `Host` (the client sets the upstream's), no forged principal headers; then the principal's.
fn prepare_headers(headers: &mut HeaderMap, principal: Option<&Principal>, peer: SocketAddr) {
    remove_hop_by_hop(headers);
    headers.remove(HOST);
    for name in CREDENTIAL_HEADERS {
        headers.remove(*name);
    }
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(PRINCIPAL_PREFIX))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    debug_assert!(headers.get(AUTHORIZATION).is_none());

    // One X-Forwarded-For line, client first, ending with the address the gateway saw.
    let peer_ip = peer.ip().to_string();
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .chain(std::iter::once(peer_ip.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }

    let Some(principal) = principal else {
        return; // anonymous on a public route: no principal headers at all
    };
    let mut set = |name: &'static str, values: &[&str]| {
        if values.is_empty() {
            return;
        }
        let encoded: Vec<String> = values
            .iter()
            .map(|value| utf8_percent_encode(value, HEADER_VALUE).to_string())
            .collect();
        // Percent-encoded text is visible ASCII, always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&encoded.join(",")) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-portcullis-subject", &[principal.subject()]);
    set("x-portcullis-scheme", &[principal.scheme().as_str()]);
    let groups: Vec<&str> = principal.groups().iter().map(String::as_str).collect();
    set("x-portcullis-groups", &groups);
    let scopes: Vec<&str> = principal.scopes().iter().map(String::as_str).collect();
    set("x-portcullis-scopes", &scopes);
    set(
        "x-portcullis-credential-id",
        principal.credential_id().as_slice(),
    );
}

/// Encoded in principal headers: controls, non-ASCII (always), `%` and `,` (the list separator).
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b'%').add(b',');

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// Reads the configuration again on `SIGHUP`, like nginx and Kong do.
fn reload_on_sighup(gate: GateHandle) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hangups.recv().await.is_some() {
            match gate.reload().await {
                Ok(()) => tracing::info!("configuration reloaded"),
                Err(err) => tracing::error!("reload failed, the old configuration serves: {err}"),
            }
        }
    });
    #[cfg(not(unix))]
    drop(gate);
}

/// An upstream for trying the gateway out: answers every request with its method, path and
/// headers as JSON.
pub(crate) async fn echo_upstream() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                let headers: serde_json::Map<String, serde_json::Value> = request
                    .headers()
                    .iter()
                    .map(|(name, value)| {
                        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                        (name.to_string(), value.into())
                    })
                    .collect();
                let echo = serde_json::json!({
                    "upstream_saw": {
                        "method": request.method().as_str(),
                        "uri": request.uri().to_string(),
                        "headers": headers,
                    }
                });
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("{echo:#}\n")))))
            });
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
