//! The one place where failures become HTTP: [`Rejection`] knows its status, the challenges it
//! carries and a public description; a [`RejectionResponder`] turns it into a response
//! ([`ProblemJson`], RFC 9457, unless the caller brings its own).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::principal::Scheme;

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
}

/// Why a request was not let through. Carries the status, the scheme whose credential failed (for
/// its challenge) and a reason for logs. The reason is never sent to the client.
#[derive(Clone, Debug)]
pub struct Rejection {
    kind: RejectionKind,
    scheme: Option<Scheme>,
    reason: Cow<'static, str>,
    retry_after: Option<Duration>,
    scopes: Vec<String>,
    attempted_subject: Option<Box<str>>,
    attempted_credential_id: Option<Box<str>>,
}

impl Rejection {
    fn new(kind: RejectionKind, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            scheme: None,
            reason: reason.into(),
            retry_after: None,
            scopes: Vec::new(),
            attempted_subject: None,
            attempted_credential_id: None,
        }
    }

    /// A malformed request (400). `reason` is for logs only.
    pub fn invalid_request(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(RejectionKind::InvalidRequest, reason)
    }

    /// No credentials where some are needed (401).
    pub fn missing_credentials(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(RejectionKind::MissingCredentials, reason)
    }

    /// A bad credential of `scheme` (401).
    pub fn invalid_credentials(scheme: Scheme, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(RejectionKind::InvalidCredentials, reason).for_scheme(scheme)
    }

    /// A policy denial (403).
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(RejectionKind::Forbidden, reason)
    }

    /// A bearer token without the `scopes` the route needs (403, RFC 6750 §3.1).
    pub fn insufficient_scope(
        scopes: impl IntoIterator<Item = impl Into<String>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut rejection = Self::new(RejectionKind::InsufficientScope, reason);
        rejection.scopes = scopes.into_iter().map(Into::into).collect();
        rejection
    }

    /// Locked out after repeated failures (429); `retry_after` is rounded up to whole seconds.
    pub fn locked_out(retry_after: Duration) -> Self {
        let mut rejection = Self::new(
            RejectionKind::LockedOut,
            "locked out after repeated failures",
        );
        rejection.retry_after = Some(retry_after);
        rejection
    }

    /// A dependency cannot answer (503).
    pub fn unavailable(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(RejectionKind::Unavailable, reason)
    }

    /// Marks which scheme's credential this is about, so its challenge can carry the error.
    pub fn for_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = Some(scheme);
        self
    }

    /// Suggests when to retry (sent as `Retry-After` on 429 and 503).
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Records who the refused credential claimed to be (a user name, a key id), for the audit
    /// trail: it is what brute-force monitoring watches. Never a secret.
    pub fn with_attempted_subject(mut self, subject: impl Into<String>) -> Self {
        self.attempted_subject = Some(subject.into().into_boxed_str());
        self
    }

    /// Who the refused credential claimed to be, when known.
    pub fn attempted_subject(&self) -> Option<&str> {
        self.attempted_subject.as_deref()
    }

    /// Records the public id of the refused credential (an API key's id), for the audit trail:
    /// a runbook searches for it to find use of a leaked key after its revocation. Never a
    /// secret; only an id that has the shape of one.
    pub fn with_attempted_credential_id(mut self, id: impl Into<String>) -> Self {
        self.attempted_credential_id = Some(id.into().into_boxed_str());
        self
    }

    /// The public id of the refused credential, when known.
    pub fn attempted_credential_id(&self) -> Option<&str> {
        self.attempted_credential_id.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The scheme whose credential failed, if any.
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The reason, for logs and the audit trail. Not for clients.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// How long to wait before retrying, for 429 and 503.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The scopes an `insufficient_scope` rejection asks for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::InvalidRequest => StatusCode::BAD_REQUEST,
            RejectionKind::MissingCredentials | RejectionKind::InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            RejectionKind::Forbidden | RejectionKind::InsufficientScope => StatusCode::FORBIDDEN,
            RejectionKind::LockedOut => StatusCode::TOO_MANY_REQUESTS,
            RejectionKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short description that is safe to show a client: it depends only on the kind.
    pub fn public_detail(&self) -> &'static str {
        match self.kind {
            RejectionKind::InvalidRequest => {
                "The request's credentials are malformed or ambiguous."
            }
            RejectionKind::MissingCredentials => "Authentication is required.",
            RejectionKind::InvalidCredentials => "The credentials are not valid.",
            RejectionKind::Forbidden => "The credentials do not allow this request.",
            RejectionKind::InsufficientScope => "The token does not grant the scope required.",
            RejectionKind::LockedOut => "Too many failed attempts; try again later.",
            RejectionKind::Unavailable => {
                "Authentication is temporarily unavailable; try again later."
            }
        }
    }

    /// The `WWW-Authenticate` challenges for this rejection, given every enabled scheme's base
    /// challenge (one per scheme name, in order).
    ///
    /// 401 carries them all; a Bearer challenge gains `error` (RFC 6750 §3) only when the
    /// rejection is about a bearer credential that was sent. 403 for a missing scope carries the
    /// Bearer challenge with `error="insufficient_scope"`. Other statuses carry none.
    pub fn challenges(&self, enabled: &[Challenge]) -> Vec<Challenge> {
        let bearer_error = match (self.kind, self.scheme) {
            (RejectionKind::InvalidCredentials, Some(Scheme::Jwt | Scheme::Introspection)) => {
                Some(("invalid_token", "The access token is invalid or expired"))
            }
            (RejectionKind::InvalidRequest, Some(Scheme::Jwt | Scheme::Introspection)) => Some((
                "invalid_request",
                "The request carries a malformed bearer token",
            )),
            (RejectionKind::InsufficientScope, _) => Some((
                "insufficient_scope",
                "The access token lacks a required scope",
            )),
            _ => None,
        };
        let with_bearer_error = |challenge: &Challenge| {
            let mut challenge = challenge.clone();
            if let (true, Some((error, description))) = (challenge.is_bearer(), bearer_error) {
                challenge = challenge
                    .param("error", error)
                    .param("error_description", description);
                if !self.scopes.is_empty() {
                    challenge = challenge.param("scope", self.scopes.join(" "));
                }
            }
            challenge
        };
        match self.kind {
            RejectionKind::MissingCredentials | RejectionKind::InvalidCredentials => {
                enabled.iter().map(with_bearer_error).collect()
            }
            RejectionKind::InsufficientScope | RejectionKind::InvalidRequest => enabled
                .iter()
                .filter(|c| c.is_bearer() && bearer_error.is_some())
                .map(with_bearer_error)
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.public_detail(), self.reason)
    }
}

impl std::error::Error for Rejection {}

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

/// Adds the `WWW-Authenticate` and `Retry-After` headers a rejection needs to any response.
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
    if let Some(after) = rejection.retry_after() {
        // Round up: "Retry-After: 0" would invite an immediate retry that is still refused.
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let r = Rejection::invalid_credentials(Scheme::Jwt, "bad signature");
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
