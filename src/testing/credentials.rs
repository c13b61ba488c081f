//! Credentials on a test request: HTTP Basic, an API key, a bearer token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The header [`Credentials::api_key`] sets: the API-key authenticator's default
/// (`api_key::DEFAULT_HEADER`).
const API_KEY_HEADER: &str = "x-api-key";

/// Puts a credential on a request being built: `http::request::Builder` (axum, hyper, tower)
/// and, with feature `actix`, actix-web's `TestRequest`. Each sets its header, replacing one
/// already there.
///
/// ```
/// use portcullis::testing::Credentials;
///
/// let request = http::Request::get("/orders").bearer("a-token").body(()).unwrap();
/// assert_eq!(request.headers()["authorization"], "Bearer a-token");
/// ```
pub trait Credentials: Sized {
    /// Sets `name: value`.
    #[must_use]
    fn credential_header(self, name: &str, value: &str) -> Self;

    /// `Authorization: Basic` with `user` and `password` (RFC 7617, UTF-8).
    #[must_use]
    fn basic_auth(self, user: &str, password: &str) -> Self {
        let encoded = STANDARD.encode(format!("{user}:{password}"));
        self.credential_header("authorization", &format!("Basic {encoded}"))
    }

    /// `X-API-Key: key`, the API-key authenticator's default header; a service reading another
    /// header sets it with
    /// [`credential_header`](Self::credential_header).
    #[must_use]
    fn api_key(self, key: &str) -> Self {
        self.credential_header(API_KEY_HEADER, key)
    }

    /// `Authorization: Bearer token` (RFC 6750).
    #[must_use]
    fn bearer(self, token: &str) -> Self {
        self.credential_header("authorization", &format!("Bearer {token}"))
    }
}

impl Credentials for http::request::Builder {
    fn credential_header(mut self, name: &str, value: &str) -> Self {
        // A bad name or value is the builder's own error, reported by `body()`.
        if let Some(headers) = self.headers_mut() {
            match (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.insert(name, value);
                    return self;
                }
                _ => return self.header(name, value),
            }
        }
        self
    }
}

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
impl Credentials for actix_web::test::TestRequest {
    fn credential_header(self, name: &str, value: &str) -> Self {
        self.insert_header((name.to_owned(), value.to_owned()))
    }
}
