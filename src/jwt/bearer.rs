//! Finding the bearer token in a request (RFC 6750 §2): the `Authorization: Bearer` header, and,
//! only when a service opts in, the `access_token` query parameter. A token in both is a 400
//! (`invalid_request`, RFC 6750 §2: a client must not use more than one method).
//!
//! The form-body method (§2.2) is not supported: the Gate never reads bodies.

use std::borrow::Cow;

use http::header::AUTHORIZATION;

use crate::authenticator::CredentialSource;
use crate::principal::Scheme;
use crate::reject::Rejection;
use crate::request::{RequestView, split_authorization};

/// The query parameter of RFC 6750 §2.3.
const QUERY_PARAM: &str = "access_token";

/// Where an authenticator looks for its tokens, and which tokens are its own.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BearerLocator {
    pub(crate) scheme: Scheme,
    pub(crate) allow_query: bool,
}

impl BearerLocator {
    /// Where the tokens are read: the header, and the query parameter when allowed.
    pub(crate) fn sources(&self) -> Vec<CredentialSource> {
        let mut sources = vec![CredentialSource::authorization("Bearer")];
        if self.allow_query {
            sources.push(CredentialSource::query(QUERY_PARAM));
        }
        sources
    }

    /// The one token the request carries for this authenticator, or why it is ambiguous.
    pub(crate) fn find<'r>(
        &self,
        request: &RequestView<'r>,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Option<Cow<'r, str>>, Rejection> {
        let ambiguous =
            |why: &'static str| Err(Rejection::invalid_request(why).for_scheme(self.scheme));
        let mut ours = header_tokens(request).filter(|token| accept(token));
        let header = ours.next();
        if header.is_some() && request.headers().get_all(AUTHORIZATION).iter().count() > 1 {
            return ambiguous("the Authorization header is repeated");
        }
        let mut query = request.query().map(query_values).into_iter().flatten();
        let from_query = query.next();
        match (header, from_query) {
            (Some(_), Some(_)) => ambiguous("a bearer token in the header and the query string"),
            (Some(token), None) => Ok(Some(Cow::Borrowed(token))),
            (None, Some(token)) if self.allow_query => {
                if query.next().is_some() {
                    return ambiguous("the access_token query parameter is repeated");
                }
                Ok(accept(&token).then_some(token))
            }
            (None, _) => Ok(None),
        }
    }
}

/// The tokens of `Authorization: Bearer <token>` headers (scheme compared case-insensitively).
fn header_tokens<'r>(request: &RequestView<'r>) -> impl Iterator<Item = &'r str> {
    request
        .headers()
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|value| {
            // ASCII only, as `HeaderValue::to_str` requires, but checked a word at a time: a
            // bearer token is read here twice per request and an RSA-signed one is 600+ bytes.
            let value = value.as_bytes();
            let value = std::str::from_utf8(value)
                .ok()
                .filter(|_| value.is_ascii())?;
            let (scheme, token) = split_authorization(value);
            let token = token?.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
        })
}

/// The values of `access_token` in a query string, percent-decoded.
fn query_values(query: &str) -> impl Iterator<Item = Cow<'_, str>> {
    query.split('&').filter_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == QUERY_PARAM)
            .then(|| percent_encoding::percent_decode_str(value).decode_utf8_lossy())
    })
}

/// A JWS compact token has two dots; an API key and an opaque token usually have none.
pub(crate) fn is_jws_shaped(token: &str) -> bool {
    token.contains('.')
}
