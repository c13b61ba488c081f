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
//! - the Gate allowed it (route rules and policies from the file), and the upstream gets the
//!   request line the Gate decided on: the same method, and the same path bytes behind the
//!   upstream URL's prefix (`GET /orders/Bob` arrives as `GET /prefix/orders/Bob`);
//! - `x-portcullis-subject`, `-scheme`, `-groups`, `-scopes` and `-credential-id` describe the
//!   caller, and are absent for an anonymous caller on a public route: any `x-portcullis-*`
//!   header the client sent is removed first, and so is every header whose name holds a `_`
//!   (CGI, WSGI, Rack and PHP read `x_portcullis_subject` as `X-Portcullis-Subject`), so none can
//!   be forged;
//! - the credentials are not forwarded (Kong's `hide_credentials = true`): `Authorization`, the
//!   configured API-key header, and any query parameter a `dangerous_*` option reads keys or tokens
//!   from; the upstream never holds a secret it does not need;
//! - the path is one the upstream reads as the Gate did: a path it could read differently is
//!   refused with 400 first. Always: an encoded `/` or `\`, a `;`, dot segments, `//`, encoded
//!   dots, and a segment ending in `.` or whitespace, raw or encoded (IIS and Windows file
//!   serving drop them: `/admin./users`, `/admin%20/users`). With `[gateway] upstream_paths =
//!   "case-insensitive"` also: non-ASCII once decoded (whose case mapping readers disagree on),
//!   and a `:` or `~` in a segment (alternate data streams, 8.3 short names); and the rules are
//!   matched ignoring ASCII case, so `/ADMIN/users` meets the rule for `/admin/**`;
//! - no header tells it to serve another path or run another method (`X-Original-URL`,
//!   `X-Rewrite-URL`, `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` are removed),
//!   and a `_method` query parameter is refused with 400. A `_method` field in a form body is out
//!   of the gateway's reach (it does not read bodies): an upstream that honours one (Rails,
//!   Laravel, Symfony, Express's method-override) must turn that off, or have no rule that
//!   depends on the method;
//! - the forwarding headers are the gateway's: `X-Forwarded-For` ends with the address the
//!   gateway saw (entries left of it are the client's claims); `Forwarded: for=<that
//!   address>;proto=http`, `X-Real-IP`, `X-Forwarded-Proto: http` and `X-Forwarded-Port` (the
//!   port the gateway listens on) replace whatever the client sent; `X-Forwarded-Host`,
//!   `X-Forwarded-Prefix`, `X-Forwarded-Ssl`, `X-Forwarded-Scheme`, `X-Url-Scheme` and
//!   `Front-End-Https` are removed and not set (the gateway does not know the name clients used
//!   for it, and strips no prefix). `Host` is the upstream's.
//!
//! `[gateway] upstream_paths` describes the upstream: `"exact"` (the default) for one that routes
//! paths case-sensitively as sent (nginx, Go's `net/http`, axum, actix-web, Django, Flask, Rails,
//! Spring, Tomcat); `"case-insensitive"` for Express (its default `caseSensitive: false`),
//! ASP.NET Core, IIS, or anything serving files from a case-insensitive file system. Under it every
//! rule's pattern must be lowercase, and the Gate decides on the path's ASCII-lowercase spelling,
//! which those patterns match exactly when the path matches them ignoring case; the request is
//! forwarded as sent, so `/users/Bob` reaches the upstream as `/users/Bob`. The setting cannot
//! change on reload (restart, as for a new upstream URL). It describes the upstream only: an
//! in-process router (axum, actix-web) matches case-sensitively, and so does the Gate in front
//! of it.
//!
//! Values are percent-encoded UTF-8 (RFC 3986); lists are comma-separated. The upstream must only
//! be reachable through the gateway (bind it to localhost or a private network), or anyone can
//! send those headers to it directly.
//!
//! The gateway answers two paths itself, after the Gate, and never forwards them: `/metrics`
//! (Prometheus text, from the recorder `metrics-exporter-prometheus` installs) and `/healthz`
//! (200 when `Gate::readiness` is ready, else 503 with the report as JSON). `gateway.toml` lets
//! only loopback callers reach them (an `ip_allow` policy); behind a proxy on the same host every
//! peer is loopback, so set `[gate] trusted_proxies` there (docs/operations.md).

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

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
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use portcullis::config::{Config, Reloader, UpstreamPaths};
use portcullis::{ConfigError, GateHandle, GateLayer, PeerAddr, Principal, Rejection};
use tower::{ServiceBuilder, ServiceExt as _};

/// The headers the gateway sets for the upstream; incoming ones are removed.
const PRINCIPAL_PREFIX: &str = "x-portcullis-";

/// Headers that make upstreams serve another path or run another method than the request line
/// says (IIS URL Rewrite and Symfony read `X-Original-URL` and `X-Rewrite-URL`; ASP.NET,
/// Express's method-override, Laravel, OData read the method overrides): the Gate decided on the
/// request line, so they never reach the upstream.
const OVERRIDES: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// What a client could claim about the request's origin. The gateway is the edge, so a client's
/// claim is removed; it sets the ones it knows itself (see [`prepare_headers`]). `X-Forwarded-For`
/// is not here: the gateway appends to it, and its last entry is the address the gateway saw.
const CLIENT_FORWARDING: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-forwarded-port",
    // Read as the scheme by Rack, Werkzeug and IIS-era frameworks.
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-url-scheme",
    "front-end-https",
];

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
    println!(
        "curl -i {base}/healthz   # 200: ready (503 and why, as JSON, when not); this host only"
    );
    println!("curl -i {base}/metrics   # 200: Prometheus metrics; this host only");
    serve(listener, gateway, upstream).await?;
    Ok(())
}

/// The Gate and what the gateway reads besides it, all from one configuration file and reloaded
/// together.
#[derive(Clone)]
pub(crate) struct Gateway {
    gate: Reloader,
    hidden: Arc<RwLock<Hidden>>,
    upstream_paths: UpstreamPaths,
    config: Arc<PathBuf>,
    metrics: PrometheusHandle,
}

/// The process's Prometheus recorder, installed on first use: before the first Gate is built,
/// so that the handles portcullis registers reach it.
pub(crate) fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|err| {
                    // Another recorder was installed first: this one renders nothing.
                    tracing::warn!("/metrics stays empty: {err}");
                    PrometheusBuilder::new().build_recorder().handle()
                })
        })
        .clone()
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
        let metrics = prometheus();
        let config = Config::from_file(path.as_ref())?;
        let gateway = Self {
            metrics,
            gate: Reloader::from_config(&config).await?,
            hidden: Arc::default(),
            upstream_paths: config.upstream_paths(),
            config: Arc::new(path.as_ref().to_owned()),
        };
        gateway.hide(&config);
        Ok(gateway)
    }

    /// Reads the configuration file again; on any error the old one keeps serving.
    pub(crate) async fn reload(&self) -> Result<(), ConfigError> {
        let config = Config::from_file(self.config.as_path())?;
        if config.upstream_paths() != self.upstream_paths {
            // It describes the upstream, which is given at start and does not change either.
            return Err(ConfigError::new(
                "gateway.upstream_paths cannot change on reload: restart the gateway",
            ));
        }
        // Before the new Gate serves, so that its credentials are hidden from its first request.
        self.hide(&config);
        self.gate.reload_config(&config).await
    }

    /// Adds the configuration's credential names to those removed before forwarding. None is
    /// ever dropped: a request the old configuration authenticated may still be on its way to
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

/// Serves the gateway on `listener`: every request whose path and query the upstream reads as
/// the Gate does passes the Gate; allowed ones go on to `upstream` (an
/// `http://host:port[/prefix]` URL).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Gateway,
    upstream: Uri,
) -> std::io::Result<()> {
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    let local = listener.local_addr()?;
    loop {
        let (stream, peer) = listener.accept().await?;
        let proxy = Proxy {
            client: client.clone(),
            upstream: upstream.clone(),
            peer,
            local,
            hidden: Arc::clone(&gateway.hidden),
            own: Own {
                metrics: gateway.metrics.clone(),
                gate: gateway.gate.handle(),
            },
        };
        // hyper does not tell services who is calling: hand the Gate the peer address.
        let gated = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .layer(GateLayer::new(gateway.gate.handle()))
            .service_fn(move |request| proxy.clone().forward(request));
        let gate = gateway.gate.handle();
        let upstream_paths = gateway.upstream_paths;
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            let gated = gated.clone();
            let gate = gate.gate();
            let checked = check_request(request.uri(), upstream_paths);
            async move {
                if let Err(reason) = checked {
                    tracing::info!(path = request.uri().path(), "refused: {reason}");
                    let refusal = gate.respond(&Rejection::invalid_request(reason));
                    return Ok(refusal.map(|body| {
                        Full::new(Bytes::from(body))
                            .map_err(|never| match never {})
                            .boxed()
                    }));
                }
                // The Gate decides on the path as the upstream will read it, and the request goes
                // on as sent: `Proxy::forward` checks that the decided path reaches it unchanged.
                let checked = Checked {
                    decided: decided_path(request.uri().path(), upstream_paths),
                    sent: request.uri().clone(),
                };
                if checked.decided != checked.sent.path() {
                    *request.uri_mut() = with_path(&checked.sent, &checked.decided);
                }
                request.extensions_mut().insert(checked);
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

/// The request target as the client sent it (what is forwarded), and the path the Gate decided
/// on: the same, or with a case-insensitive upstream, its ASCII-lowercase spelling.
#[derive(Clone)]
struct Checked {
    decided: String,
    sent: Uri,
}

/// Refuses a request the upstream could read differently from the Gate: by its path
/// ([`check_path`]) or by a `_method` query parameter ([`overrides_method`]).
fn check_request(target: &Uri, upstream_paths: UpstreamPaths) -> Result<(), &'static str> {
    check_path(target.path(), upstream_paths)?;
    if target.query().is_some_and(overrides_method) {
        return Err("a `_method` query parameter: the Gate decided on the request's method");
    }
    Ok(())
}

/// Refuses a path the upstream could read differently from the Gate.
///
/// The Gate matches the path as sent and already refuses dot segments, `//`, malformed escapes and
/// escapes of unreserved characters, `/`, `\`, `%` and `;`. Upstreams read more into a path than
/// an in-process router does, so the gateway also refuses:
///
/// - a raw `;`: Tomcat and Spring drop `;` parameters, so `/admin;x/users` is served as
///   `/admin/users`;
/// - a segment ending in `.` or whitespace, raw or encoded: IIS, ASP.NET on Windows and anything
///   serving files from Windows strip them (`/admin./users`, `/admin%20/users`);
/// - with `upstream_paths = "case-insensitive"`, a segment holding non-ASCII once decoded (Unicode
///   case mapping turns some into ASCII: `ı` uppercases to `I`, the Kelvin sign `K` lowercases to
///   `k`), or a `:` or `~` (NTFS streams, `/admin::$DATA`, and 8.3 short names, `/ADMINI~1`).
///
/// The rest of these checks repeat the Gate's, so the gateway stays safe under a Gate configured
/// by hand.
fn check_path(path: &str, upstream_paths: UpstreamPaths) -> Result<(), &'static str> {
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
    if segments.is_empty() {
        return Ok(());
    }
    for segment in segments.split('/') {
        if matches!(segment, "" | "." | "..") {
            return Err("an empty, `.` or `..` segment in the path");
        }
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
        let last = String::from_utf8_lossy(&decoded).chars().next_back();
        if last.is_some_and(|c| c == '.' || c.is_whitespace()) {
            return Err("a path segment ending in `.` or whitespace");
        }
        if upstream_paths == UpstreamPaths::CaseInsensitive {
            if !decoded.is_ascii() {
                return Err("non-ASCII in the path, which the upstream may fold onto ASCII");
            }
            if decoded.iter().any(|b| matches!(b, b':' | b'~')) {
                return Err("a `:` or `~` in the path, which the upstream may read as a file name");
            }
        }
    }
    Ok(())
}

/// The path the Gate decides on. A case-insensitive upstream serves `/ADMIN/users` as
/// `/admin/users`, so the Gate decides on the ASCII-lowercase spelling, which its lowercase
/// patterns match exactly when the path matches them ignoring case; the upstream still gets the
/// path as sent (`/users/Bob` stays `Bob`). Non-ASCII, whose case mapping differs between
/// readers, was refused before ([`check_path`]).
fn decided_path(path: &str, upstream_paths: UpstreamPaths) -> String {
    match upstream_paths {
        UpstreamPaths::CaseInsensitive => path.to_ascii_lowercase(),
        _ => path.to_owned(),
    }
}

/// `uri` with its path replaced by `path`, the query kept.
fn with_path(uri: &Uri, path: &str) -> Uri {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = PathAndQuery::try_from(path_and_query).ok();
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// Whether a query string carries a `_method` parameter, with which Express's method-override,
/// Laravel, Symfony and Rails-era frameworks run another method than the Gate decided on. Names
/// are compared as PHP reads them (percent-decoded, `+` and `.` and space read as `_`, `[…]`
/// dropped) and ignoring case; `;` separates parameters too, as in older Rack and Python.
fn overrides_method(query: &str) -> bool {
    query.split(['&', ';']).any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        let name = name.replace('+', " ");
        let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy();
        let name = name.split('[').next().unwrap_or_default();
        let name: String = name
            .chars()
            .map(|c| if matches!(c, ' ' | '.') { '_' } else { c })
            .collect();
        name.eq_ignore_ascii_case("_method")
    })
}

/// Forwards requests the Gate allowed to the upstream.
#[derive(Clone)]
struct Proxy {
    client: Client<HttpConnector, Incoming>,
    upstream: Uri,
    peer: SocketAddr,
    local: SocketAddr,
    hidden: Arc<RwLock<Hidden>>,
    own: Own,
}

/// What the gateway answers itself, after the Gate: `/metrics` and `/healthz`.
#[derive(Clone)]
struct Own {
    metrics: PrometheusHandle,
    gate: GateHandle,
}

impl Own {
    /// The answer for a path the gateway serves itself, or `None` to forward it.
    async fn answer(&self, path: &str) -> Option<Response<ProxyBody>> {
        let (status, content_type, body) = match path {
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            ),
            "/healthz" => {
                let report = self.gate.gate().readiness().await;
                let status = if report.is_ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, "application/json", report.to_json())
            }
            _ => return None,
        };
        let mut response = Response::new(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        Some(response)
    }
}

impl Proxy {
    async fn forward(self, request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (mut parts, body) = request.into_parts();
        let principal = parts.extensions.remove::<Principal>();
        // The Gate decided on this path: forward the request it stands for, nothing else.
        match parts.extensions.remove::<Checked>() {
            // Its own paths, as the Gate decided on them: answered here, never forwarded.
            Some(checked) if checked.decided == parts.uri.path() => {
                if let Some(response) = self.own.answer(&checked.decided).await {
                    return Ok(response);
                }
                parts.uri = checked.sent;
            }
            _ => {
                tracing::error!(path = parts.uri.path(), "the path changed after the check");
                return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
            }
        }
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
                self.local,
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
/// principal headers, no header with `_` in its name, no overrides of the path or method, no
/// client claims about the request's origin; then the forwarding headers the gateway knows, from
/// `peer` (who called) and `local` (where the gateway was called), and the principal's.
fn prepare_headers(
    headers: &mut HeaderMap,
    credentials: &[HeaderName],
    principal: Option<&Principal>,
    peer: SocketAddr,
    local: SocketAddr,
) {
    remove_hop_by_hop(headers);
    headers.remove(HOST);
    for name in credentials {
        headers.remove(name);
    }
    // CGI, WSGI, Rack and PHP read `x_portcullis_subject` as `X-Portcullis-Subject` (and
    // `x_forwarded_for` as `X-Forwarded-For`): drop every name with `_`, as nginx does by default
    // (`underscores_in_headers off`). Puma CVE-2024-45614 is this class.
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(PRINCIPAL_PREFIX) || name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    for name in OVERRIDES.iter().chain(CLIENT_FORWARDING) {
        headers.remove(*name);
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
    // The rest describe this hop only. The gateway listens on plain HTTP. It does not know the
    // name clients used for it (`Host` is theirs to choose), so it sets no `X-Forwarded-Host`;
    // it strips no prefix, so no `X-Forwarded-Prefix`.
    let node = match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("\"[{ip}]\""), // RFC 7239 §6
    };
    for (name, value) in [
        ("forwarded", format!("for={node};proto=http")),
        ("x-real-ip", peer_ip),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-forwarded-port", local.port().to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
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
