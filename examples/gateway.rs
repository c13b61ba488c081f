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
//! - the credentials are not forwarded (Kong's `hide_credentials = true`): `Authorization`, the
//!   configured API-key header, and any query parameter a `dangerous_*` option reads keys or tokens
//!   from; the upstream never holds a secret it does not need;
//! - the path is the one the Gate decided on: a path the upstream could read differently (an
//!   encoded `/` or `\`, a `;`, dot segments, `//`, encoded dots) is refused with 400 first;
//! - `X-Forwarded-For` ends with the address the gateway saw.
//!
//! Values are percent-encoded UTF-8 (RFC 3986); lists are comma-separated. The upstream must only
//! be reachable through the gateway (bind it to localhost or a private network), or anyone can
//! send those headers to it directly.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

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
use portcullis::{Config, ConfigError, GateHandle, GateLayer, PeerAddr, Principal, Rejection};
use tower::{ServiceBuilder, ServiceExt as _};

/// The headers the gateway sets for the upstream; incoming ones are removed.
const PRINCIPAL_PREFIX: &str = "x-portcullis-";

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
        None => format!("http://{}", echo_upstream().await?.0).parse()?,
    };
    if upstream.scheme_str() != Some("http") || upstream.authority().is_none() {
        return Err(format!("the upstream must be an http://host:port URL, not {upstream}").into());
    }
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()?;

    // Errors name the file, line and key.
    let gateway = Gateway::from_config_file(&config).await?;
    reload_on_sighup(gateway.clone());

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
    serve(listener, gateway, upstream).await?;
    Ok(())
}

/// The Gate and the credential names to hide from the upstream, both from one configuration
/// file and reloaded together.
#[derive(Clone)]
pub(crate) struct Gateway {
    gate: GateHandle,
    hidden: Arc<RwLock<Hidden>>,
    config: Arc<PathBuf>,
}

/// Where callers' credentials can be: the upstream gets none of them.
#[derive(Default)]
struct Hidden {
    headers: Vec<HeaderName>,
    query_params: Vec<String>,
}

impl Gateway {
    /// Reads and builds the configuration file.
    pub(crate) async fn from_config_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let config = Config::from_file(path.as_ref())?;
        let gateway = Self {
            gate: GateHandle::from_config(&config).await?,
            hidden: Arc::default(),
            config: Arc::new(path.as_ref().to_owned()),
        };
        gateway.hide(&config);
        Ok(gateway)
    }

    /// Reads the configuration file again; on any error the old one keeps serving.
    pub(crate) async fn reload(&self) -> Result<(), ConfigError> {
        let config = Config::from_file(self.config.as_path())?;
        // Before the new Gate serves, so that its credentials are hidden from its first request.
        self.hide(&config);
        self.gate.reload_config(&config).await
    }

    /// Adds the configuration's credential names to those removed before forwarding. Names are
    /// never dropped: a request the old configuration authenticated may still be on its way to
    /// the upstream with a credential under an old name.
    fn hide(&self, config: &Config) {
        let mut hidden = self.hidden.write().unwrap_or_else(|e| e.into_inner());
        for name in config.credential_headers() {
            // The Gate was built, so the name is valid.
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes())
                && !hidden.headers.contains(&name)
            {
                hidden.headers.push(name);
            }
        }
        for param in config.credential_query_params() {
            if !hidden.query_params.iter().any(|p| p == param) {
                hidden.query_params.push(param.to_owned());
            }
        }
    }
}

/// Serves the gateway on `listener`: every request with a path in normal form passes the Gate;
/// allowed ones go on to `upstream` (an `http://host:port[/prefix]` URL).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
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
            hidden: Arc::clone(&gateway.hidden),
        };
        // hyper does not tell services who is calling: hand the Gate the peer address.
        let gated = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .layer(GateLayer::new(gateway.gate.clone()))
            .service_fn(move |request| proxy.clone().forward(request));
        let gate = gateway.gate.clone();
        let service = tower::service_fn(move |request: Request<Incoming>| {
            let gated = gated.clone();
            let gate = gate.gate();
            async move {
                if let Err(reason) = check_path(request.uri().path()) {
                    tracing::info!(path = request.uri().path(), "refused: {reason}");
                    let refusal = gate.respond(&Rejection::invalid_request(reason));
                    return Ok(refusal.map(|body| {
                        Full::new(Bytes::from(body))
                            .map_err(|never| match never {})
                            .boxed()
                    }));
                }
                let response = gated.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| body.boxed()))
            }
        });
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

/// Refuses a path the upstream could read differently from the Gate.
///
/// The Gate matches the path as sent and already refuses dot segments, `//`, malformed escapes and
/// escapes of unreserved characters, `/`, `\`, `%` and `;`. Upstreams read more into a path than
/// an in-process router does (Tomcat and Spring drop `;` parameters, so `/admin;x/users` is
/// served as `/admin/users`), so the gateway also refuses a raw `;`; the rest of these checks
/// repeat the Gate's, so the gateway stays safe under a Gate configured by hand.
fn check_path(path: &str) -> Result<(), &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("the path does not start with `/`");
    };
    if path.contains(';') {
        return Err("a `;` in the path");
    }
    if path.contains('\\') {
        return Err("a backslash in the path");
    }
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            None => return Err("a `%` that is not an escape"),
            Some(b'/' | b'\\' | b'.' | b';' | b'%') => {
                return Err("an encoded `/`, `\\`, `.`, `;` or `%` in the path");
            }
            Some(_) => {}
        }
    }
    // A trailing slash is fine (the Gate matches it as sent); `//`, `.` and `..` are not.
    let segments = rest.strip_suffix('/').unwrap_or(rest);
    if !segments.is_empty() && segments.split('/').any(|s| matches!(s, "" | "." | "..")) {
        return Err("an empty, `.` or `..` segment in the path");
    }
    Ok(())
}

/// Forwards requests the Gate allowed to the upstream.
#[derive(Clone)]
struct Proxy {
    client: Client<HttpConnector, Incoming>,
    upstream: Uri,
    peer: SocketAddr,
    hidden: Arc<RwLock<Hidden>>,
}

impl Proxy {
    async fn forward(self, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (mut parts, body) = request.into_parts();
        let principal = parts.extensions.remove::<Principal>();
        {
            let hidden = self.hidden.read().unwrap_or_else(|e| e.into_inner());
            parts.uri = match self.upstream_uri(&parts.uri, &hidden.query_params) {
                Ok(uri) => uri,
                Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "bad request target")),
            };
            prepare_headers(
                &mut parts.headers,
                &hidden.headers,
                principal.as_ref(),
                self.peer,
            );
        }
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
    /// and query without the credential parameters `hidden`.
    fn upstream_uri(&self, target: &Uri, hidden: &[String]) -> Result<Uri, http::Error> {
        let base = self.upstream.path().trim_end_matches('/');
        let path = target.path();
        let query = target.query().map(|query| without_params(query, hidden));
        let path_and_query: PathAndQuery = match query.as_deref() {
            None | Some("") => format!("{base}{path}").parse()?,
            Some(query) => format!("{base}{path}?{query}").parse()?,
        };
        let mut parts = self.upstream.clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        Ok(Uri::from_parts(parts)?)
    }
}

/// A query string without the parameters named in `hidden`, compared after percent-decoding the
/// name so that an upstream decoding it differently cannot find one.
fn without_params(query: &str, hidden: &[String]) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            !hidden.iter().any(|h| *h == name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Makes the request's headers fit for the upstream: no hop-by-hop headers, no credentials
/// (`credentials`, from the configuration), no `Host` (the client sets the upstream's), no forged
/// principal headers; then the principal's.
fn prepare_headers(
    headers: &mut HeaderMap,
    credentials: &[HeaderName],
    principal: Option<&Principal>,
    peer: SocketAddr,
) {
    remove_hop_by_hop(headers);
    headers.remove(HOST);
    for name in credentials {
        headers.remove(name);
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
fn reload_on_sighup(gateway: Gateway) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hangups.recv().await.is_some() {
            match gateway.reload().await {
                Ok(()) => tracing::info!("configuration reloaded"),
                Err(err) => tracing::error!("reload failed, the old configuration serves: {err}"),
            }
        }
    });
    #[cfg(not(unix))]
    drop(gateway);
}

/// An upstream for trying the gateway out: answers every request with its method, path and
/// headers as JSON. Also returns how many requests it has answered.
pub(crate) async fn echo_upstream() -> std::io::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let answered = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&answered);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                count.fetch_add(1, Ordering::SeqCst);
                async move {
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
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "{echo:#}\n"
                    )))))
                }
            });
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, answered))
}
