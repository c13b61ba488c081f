//! [`JwksServer`]: an identity provider's key endpoints on 127.0.0.1, for tests.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use crate::error::ConfigError;

/// The JWKS path, under the server's URL.
pub const JWKS_PATH: &str = "/jwks";
/// The OpenID discovery document's path (OpenID Connect Discovery 1.0 §4).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The largest request head the server reads; a longer one is dropped unanswered.
const MAX_HEAD: usize = 16 * 1024;
/// How long a [`ServerMode::Hang`] request waits before its 504.
const HANG: Duration = Duration::from_secs(30);

/// What [`JwksServer`] does with a JWKS request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMode {
    /// Answers 200 with the key set. The default.
    #[default]
    Serve,
    /// Answers 500: the identity provider is down.
    Fail,
    /// Answers nothing for 30 seconds, then 504: a fetch timeout.
    Hang,
}

/// An identity provider on an ephemeral port of 127.0.0.1: `GET /jwks` answers the key set
/// given, `GET /.well-known/openid-configuration` a discovery document whose `issuer` is the
/// server's URL ([`issuer`](Self::issuer)) and whose `jwks_uri` is its JWKS URL; any other path
/// is 404. It counts each kind of request, and can fail or hang ([`ServerMode`]).
///
/// Plain HTTP/1.1, one request per connection, no dependency beyond tokio. It stops when the
/// last clone is dropped. It needs a tokio runtime (`#[tokio::test]`).
#[derive(Clone)]
pub struct JwksServer {
    addr: SocketAddr,
    state: Arc<State>,
    _stop: Arc<StopOnDrop>,
}

struct State {
    base: String,
    jwks: Mutex<String>,
    mode: Mutex<ServerMode>,
    discovery_issuer: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    other_hits: AtomicUsize,
}

/// Aborts the accept loop, whose `JoinSet` then aborts every open connection.
struct StopOnDrop(AbortHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl JwksServer {
    /// Starts serving `jwks` (the body of `GET /jwks`, served as given, so a test can publish
    /// a malformed set too).
    pub async fn start(jwks: impl Into<String>) -> Result<Self, ConfigError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ConfigError::new(format!("test JWKS server: bind 127.0.0.1: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ConfigError::new(format!("test JWKS server: local address: {e}")))?;
        let state = Arc::new(State {
            base: format!("http://{addr}"),
            jwks: Mutex::new(jwks.into()),
            mode: Mutex::new(ServerMode::Serve),
            discovery_issuer: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            state,
            _stop: Arc::new(StopOnDrop(task.abort_handle())),
        })
    }

    /// The server's URL, `http://127.0.0.1:<port>`: the issuer its discovery document names.
    pub fn issuer(&self) -> String {
        self.state.base.clone()
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        self.url(JWKS_PATH)
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.base)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `jwks` from now on (a key rotation).
    pub fn set_jwks(&self, jwks: impl Into<String>) {
        *lock(&self.state.jwks) = jwks.into();
    }

    /// Sets what JWKS requests get; discovery is always answered.
    pub fn set_mode(&self, mode: ServerMode) {
        *lock(&self.state.mode) = mode;
    }

    /// Makes the discovery document name `issuer` instead of the server's URL.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *lock(&self.state.discovery_issuer) = Some(issuer.to_owned());
    }

    /// JWKS requests so far.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Discovery requests so far.
    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    /// Requests for any other path (or method) so far.
    pub fn other_requests(&self) -> usize {
        self.state.other_hits.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for JwksServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksServer")
            .field("addr", &self.addr)
            .field("mode", &*lock(&self.state.mode))
            .finish_non_exhaustive()
    }
}

/// A poisoned lock only means a test panicked while holding it; the value is whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(answer(stream, Arc::clone(&state)));
            }
            // Out of file descriptors and the like: wait rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let method = words.next().unwrap_or_default();
    let path = words
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    let (status, body) = match (method, path) {
        ("GET", JWKS_PATH) => {
            state.jwks_hits.fetch_add(1, Ordering::SeqCst);
            let mode = *lock(&state.mode);
            match mode {
                ServerMode::Serve => ("200 OK", lock(&state.jwks).clone()),
                ServerMode::Fail => ("500 Internal Server Error", String::new()),
                ServerMode::Hang => {
                    tokio::time::sleep(HANG).await;
                    ("504 Gateway Timeout", String::new())
                }
            }
        }
        ("GET", DISCOVERY_PATH) => {
            state.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let issuer = lock(&state.discovery_issuer)
                .clone()
                .unwrap_or_else(|| state.base.clone());
            let document = serde_json::json!({
                "issuer": issuer,
                "jwks_uri": format!("{}{JWKS_PATH}", state.base),
                "token_endpoint": format!("{}/token", state.base),
            });
            ("200 OK", document.to_string())
        }
        _ => {
            state.other_hits.fetch_add(1, Ordering::SeqCst);
            ("404 Not Found", String::new())
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    // The client may have gone (a timeout test): nothing to do about a failed write.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
