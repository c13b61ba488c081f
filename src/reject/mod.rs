//! The one place where failures become HTTP: [`Rejection`] knows its status, the challenges it
//! carries and a public description; a [`RejectionResponder`] turns it into a response
//! ([`ProblemJson`], RFC 9457, unless the caller brings its own).

use std::borrow::Cow;
use std::fmt;

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

// `Rejection` is re-exported at the crate root, its one public path.
pub(crate) mod rejection;

pub(crate) use rejection::Rejection;

mod refusal;

/// The header a server's DPoP nonce travels in (RFC 9449 §8).
const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// What went wrong, as a growable list; reach it through [`Rejection::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The request is malformed: a bad credential header, credentials for two schemes, an
    /// oversized header. 400.
    InvalidRequest,
    /// No credential was sent and the route needs one. 401 with every enabled scheme's challenge.
    MissingCredentials,
    /// A credential was sent and is not valid. 401.
    InvalidCredentials,
    /// The caller is known but a policy denies the request. 403.
    Forbidden,
    /// The bearer token lacks a scope the route needs. 403 with `error="insufficient_scope"`.
    InsufficientScope,
    /// Too many failed attempts; try again later. 429 with `Retry-After`.
    LockedOut,
    /// A store, key source or the hashing pool cannot answer: an outage, not a bad credential. 503.
    Unavailable,
    /// The service is not set up to decide: a route layer, handler guard or extractor found no
    /// Gate in front of it. 500; the request is refused, never judged as anonymous.
    Misconfigured,
}

/// One `WWW-Authenticate` challenge: a scheme name and its auth-params (RFC 9110 §11.6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    scheme: Cow<'static, str>,
    params: Vec<(Cow<'static, str>, String)>,
}

impl Challenge {
    /// A challenge for `scheme` (`Basic`, `Bearer`, `ApiKey`) with no parameters.
    pub fn new(scheme: impl Into<Cow<'static, str>>) -> Self {
        Self {
            scheme: scheme.into(),
            params: Vec::new(),
        }
    }

    /// Adds an auth-param; the value is sent as a quoted-string.
    pub fn param(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// The scheme name.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The value of parameter `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    fn is_dpop(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("dpop")
    }

    /// The header value; `None` only if a parameter holds a character no header may carry.
    pub fn to_header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.to_string()).ok()
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}=\"")?;
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// Turns a rejection into the response the client gets. Implemented for closures
/// `Fn(&Rejection, &[Challenge]) -> Response<String>`, so a service can shape its own errors.
///
/// `challenges` are the ones this rejection must carry ([`Rejection::challenges`]); a replacement
/// should send them and keep the status, or clients cannot authenticate.
pub trait RejectionResponder: Send + Sync + 'static {
    /// Builds the response.
    fn respond(&self, rejection: &Rejection, challenges: &[Challenge]) -> Response<String>;
}

impl<F> RejectionResponder for F
where
    F: Fn(&Rejection, &[Challenge]) -> Response<String> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection, challenges: &[Challenge]) -> Response<String> {
        self(rejection, challenges)
    }
}

/// The default responder: `application/problem+json` (RFC 9457) with the status, a title and the
/// kind's public detail; never the internal reason.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProblemJson;

impl RejectionResponder for ProblemJson {
    fn respond(&self, rejection: &Rejection, challenges: &[Challenge]) -> Response<String> {
        let status = rejection.status();
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": rejection.public_detail(),
        });
        let mut response = Response::new(body.to_string());
        *response.status_mut() = status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        add_standard_headers(&mut response, rejection, challenges);
        response
    }
}

/// Adds the `WWW-Authenticate`, `DPoP-Nonce` and `Retry-After` headers a rejection needs to any
/// response.
pub fn add_standard_headers<B>(
    response: &mut Response<B>,
    rejection: &Rejection,
    challenges: &[Challenge],
) {
    let headers = response.headers_mut();
    for challenge in challenges {
        if let Some(value) = challenge.to_header_value() {
            headers.append(WWW_AUTHENTICATE, value);
        }
    }
    if let Some(nonce) = rejection.dpop_nonce()
        && let Ok(value) = HeaderValue::from_str(nonce)
    {
        headers.insert(DPOP_NONCE, value);
    }
    if let Some(after) = rejection.retry_after() {
        // Round up: "Retry-After: 0" would invite an immediate retry that is still refused.
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
}

/// A refusal after the Gate (route layers, handler guards, extractors), ready to send: the
/// rejection and the response the Gate's own responder built for it.
pub use refusal::Refusal;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::principal::Scheme;

    fn enabled() -> Vec<Challenge> {
        vec![
            Challenge::new("Basic")
                .param("realm", "api")
                .param("charset", "UTF-8"),
            Challenge::new("Bearer").param("realm", "api"),
        ]
    }

    #[test]
    fn challenge_quotes_and_escapes() {
        let c = Challenge::new("Basic").param("realm", r#"a "b" \c"#);
        assert_eq!(c.to_string(), r#"Basic realm="a \"b\" \\c""#);
    }

    #[test]
    fn missing_credentials_lists_every_scheme_without_error() {
        let r = Rejection::missing_credentials("anonymous");
        let c = r.challenges(&enabled());
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].to_string(), r#"Bearer realm="api""#);
    }

    #[test]
    fn bad_token_adds_invalid_token_to_bearer_only() {
        let r = Rejection::invalid_credentials(Scheme::JWT, "bad signature");
        let c = r.challenges(&enabled());
        assert_eq!(c[0].get("error"), None);
        assert_eq!(c[1].get("error"), Some("invalid_token"));
        // The internal reason is never in a challenge.
        assert!(!c[1].to_string().contains("signature"));
    }

    #[test]
    fn insufficient_scope_is_403_with_scope() {
        let r = Rejection::insufficient_scope(["read", "write"], "missing write");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let c = r.challenges(&enabled());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].get("error"), Some("insufficient_scope"));
        assert_eq!(c[0].get("scope"), Some("read write"));
    }

    #[test]
    fn problem_json_has_no_internal_detail() {
        let r = Rejection::locked_out(Duration::from_millis(1500));
        let resp = ProblemJson.respond(&r, &[]);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "2");
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_str(resp.body()).unwrap();
        assert_eq!(body["status"], 429);
        assert!(!resp.body().contains("repeated failures"));
    }
}
