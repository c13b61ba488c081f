//! The HTTP client behind JWKS, discovery and introspection: a trait, [`HttpClient`], so a service
//! can bring its own, and a default, [`ReqwestClient`] (feature `jwks`).
//!
//! Whatever the client, every exchange is bounded here too: a timeout around the whole exchange
//! and a cap on the body, so a client that ignores [`FetchLimits`] still cannot hang a request or
//! fill memory.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
#[cfg(feature = "jwt")]
use http::header::{ACCEPT, HeaderValue};
#[cfg(feature = "jwt")]
use http::{Method, StatusCode};
use http::{Request, Response, Uri};
#[cfg(feature = "jwt")]
use serde_json::{Map, Value};

use super::error::{FetchError, FetchErrorKind};
use crate::error::ConfigError;
use crate::future::BoxFuture;
#[cfg(feature = "jwt")]
use crate::json;

/// Bounds on one HTTP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchLimits {
    /// The whole exchange (connect, send, read the body) must end within this.
    pub timeout: Duration,
    /// The most body bytes read; a longer body is a [`FetchErrorKind::TooLarge`] error.
    pub max_body: usize,
}

impl FetchLimits {
    /// At most `timeout` for the whole exchange and `max_body` bytes of body.
    pub fn new(timeout: Duration, max_body: usize) -> Self {
        Self { timeout, max_body }
    }
}

/// Sends HTTP requests for the bearer-token authenticators: `GET` for JWKS and discovery
/// documents, `POST` for introspection.
///
/// An implementation should stop reading a body at [`FetchLimits::max_body`] bytes, give up after
/// [`FetchLimits::timeout`], and not follow redirects. It is shared by every request, so it must
/// be cheap to call concurrently.
pub trait HttpClient: fmt::Debug + Send + Sync + 'static {
    /// Sends `request` and returns the response with its whole body.
    fn send(
        &self,
        request: Request<Bytes>,
        limits: FetchLimits,
    ) -> BoxFuture<'_, Result<Response<Bytes>, FetchError>>;
}

/// Sends `request` through `client`, enforcing `limits` whatever the client does.
pub(crate) async fn send(
    client: &dyn HttpClient,
    request: Request<Bytes>,
    limits: FetchLimits,
) -> Result<Response<Bytes>, FetchError> {
    let response = tokio::time::timeout(limits.timeout, client.send(request, limits))
        .await
        .map_err(|_| {
            FetchError::new(
                FetchErrorKind::Timeout,
                format!("no answer within {} ms", limits.timeout.as_millis()),
            )
        })??;
    if response.body().len() > limits.max_body {
        return Err(too_large(limits.max_body));
    }
    Ok(response)
}

#[cfg(feature = "jwt")]
/// `GET url` expecting 200 and one JSON object.
pub(crate) async fn get_json(
    client: &dyn HttpClient,
    url: &str,
    limits: FetchLimits,
) -> Result<Map<String, Value>, FetchError> {
    let uri = check_url(url)?;
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .body(Bytes::new())
        .map_err(|e| FetchError::new(FetchErrorKind::InvalidUrl, "bad request").with_source(e))?;
    let response = send(client, request, limits).await?;
    expect_ok(&response, url)?;
    json::parse_object(response.body()).map_err(|e| {
        FetchError::new(
            FetchErrorKind::InvalidResponse,
            format!("{url}: not a JSON object"),
        )
        .with_source(e)
    })
}

#[cfg(feature = "jwt")]
pub(crate) fn expect_ok(response: &Response<Bytes>, url: &str) -> Result<(), FetchError> {
    if response.status() == StatusCode::OK {
        Ok(())
    } else {
        Err(FetchError::new(
            FetchErrorKind::Status(response.status().as_u16()),
            format!("{url} answered {}", response.status()),
        ))
    }
}

pub(crate) fn too_large(max: usize) -> FetchError {
    FetchError::new(
        FetchErrorKind::TooLarge,
        format!("the response is larger than {max} bytes"),
    )
}

/// Parses `url` and checks it may be fetched: `https`, or `http` to a loopback address (a local
/// identity provider in development or tests). Keys fetched over plain HTTP from elsewhere could
/// be replaced by anyone on the path.
pub(crate) fn check_url(url: &str) -> Result<Uri, FetchError> {
    let invalid =
        |why: &str| FetchError::new(FetchErrorKind::InvalidUrl, format!("`{url}`: {why}"));
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("credentials in a URL are not accepted"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(authority.host()) => Ok(uri),
        Some("http") => Err(invalid("must be https (http only to a loopback address)")),
        _ => Err(invalid("must be an https URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The default HTTP client, or why there is none.
pub(crate) fn default_http_client() -> Result<Arc<dyn HttpClient>, ConfigError> {
    #[cfg(feature = "jwks")]
    {
        Ok(Arc::new(ReqwestClient::new()?))
    }
    #[cfg(not(feature = "jwks"))]
    {
        Err(ConfigError::new(
            "a JWKS URL, discovery or introspection needs an HTTP client: enable the `jwks` \
             feature or pass one with `http_client`",
        ))
    }
}

#[cfg(feature = "jwks")]
pub use default_client::ReqwestClient;

#[cfg(feature = "jwks")]
mod default_client {
    use super::*;
    use crate::error::ConfigError;

    /// The default [`HttpClient`]: reqwest with rustls (aws-lc-rs) and the platform's root
    /// certificates, no redirects, no cookies, a 5 s connect timeout. Feature `jwks`.
    ///
    /// reqwest's types stay out of the API, so a reqwest upgrade is not a breaking change here.
    /// A service that needs a proxy or extra root certificates implements [`HttpClient`] over
    /// its own client.
    #[derive(Clone, Debug)]
    pub struct ReqwestClient {
        client: reqwest_rustls::Client,
    }

    impl ReqwestClient {
        /// A client with the defaults above.
        pub fn new() -> Result<Self, ConfigError> {
            let client = reqwest_rustls::Client::builder()
                // A redirect could move a key fetch to another host; an identity provider that
                // moved its JWKS should be reconfigured, not followed.
                .redirect(reqwest_rustls::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ConfigError::new(format!("cannot build the HTTP client: {e}")))?;
            Ok(Self { client })
        }
    }

    impl HttpClient for ReqwestClient {
        fn send(
            &self,
            request: Request<Bytes>,
            limits: FetchLimits,
        ) -> BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
            Box::pin(async move {
                let request = reqwest_rustls::Request::try_from(request).map_err(|e| {
                    FetchError::new(FetchErrorKind::InvalidUrl, "not a valid request")
                        .with_source(e)
                })?;
                let exchange = async {
                    let mut response = self.client.execute(request).await.map_err(|e| {
                        let kind = if e.is_timeout() {
                            FetchErrorKind::Timeout
                        } else {
                            FetchErrorKind::Connect
                        };
                        FetchError::new(kind, "request failed").with_source(e)
                    })?;
                    if response
                        .content_length()
                        .is_some_and(|len| len > limits.max_body as u64)
                    {
                        return Err(too_large(limits.max_body));
                    }
                    let mut body = Vec::new();
                    while let Some(chunk) = response.chunk().await.map_err(|e| {
                        FetchError::new(FetchErrorKind::Connect, "reading the body failed")
                            .with_source(e)
                    })? {
                        if body.len() + chunk.len() > limits.max_body {
                            return Err(too_large(limits.max_body));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    let mut built = Response::new(Bytes::from(body));
                    *built.status_mut() = response.status();
                    *built.headers_mut() = response.headers().clone();
                    Ok(built)
                };
                tokio::time::timeout(limits.timeout, exchange)
                    .await
                    .map_err(|_| {
                        FetchError::new(
                            FetchErrorKind::Timeout,
                            format!("no answer within {} ms", limits.timeout.as_millis()),
                        )
                    })?
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_url("https://idp.example.com/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        for bad in [
            "http://idp.example.com/jwks",
            "ftp://idp.example.com/jwks",
            "https://user:pass@idp.example.com/",
            "/relative",
            "not a url",
        ] {
            assert_eq!(
                check_url(bad).unwrap_err().kind(),
                FetchErrorKind::InvalidUrl,
                "{bad}"
            );
        }
    }
}
