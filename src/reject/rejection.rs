//! [`Rejection`]: why a request was not let through.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

use super::{Challenge, RejectionKind};
use crate::principal::Scheme;

/// Why a request was not let through. Carries the status, the scheme whose credential failed (for
/// its challenge) and a reason for logs. The reason is never sent to the client.
#[derive(Clone, Debug)]
pub struct Rejection {
    kind: RejectionKind,
    scheme: Option<Scheme>,
    reason: Cow<'static, str>,
    retry_after: Option<Duration>,
    /// A boxed slice (two words, not three): it keeps a `Rejection` within 128 bytes.
    scopes: Box<[String]>,
    attempted_subject: Option<Box<str>>,
    attempted_credential_id: Option<Box<str>>,
    /// The error for the `DPoP` challenge (RFC 9449 §7.1), when the refusal is about a DPoP
    /// request; the Bearer challenge then carries none.
    /// Boxed: most rejections have none, and a `Rejection` travels in every `Result`.
    dpop: Option<Box<DpopError>>,
}

/// A DPoP refusal's challenge error and the nonce to send with it.
#[derive(Clone, Debug)]
struct DpopError {
    error: &'static str,
    nonce: Option<Box<str>>,
}

impl Rejection {
    fn new(kind: RejectionKind, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            scheme: None,
            reason: reason.into(),
            retry_after: None,
            scopes: Box::default(),
            attempted_subject: None,
            attempted_credential_id: None,
            dpop: None,
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

    /// The service is not set up to decide (500): no Gate in front of a route layer, guard or
    /// extractor.
    pub(crate) fn misconfigured(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(RejectionKind::Misconfigured, reason)
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

    #[cfg(feature = "jwt")]
    /// Marks a refusal of a DPoP request (RFC 9449 §7.1): its `DPoP` challenge carries `error`
    /// (`invalid_dpop_proof`, `invalid_token` or `use_dpop_nonce`), the Bearer challenge none.
    pub(crate) fn with_dpop_error(mut self, error: &'static str) -> Self {
        self.dpop = Some(Box::new(DpopError { error, nonce: None }));
        self
    }

    #[cfg(feature = "jwt")]
    /// Adds the nonce the client must put in its next proof, sent as the `DPoP-Nonce` header
    /// (RFC 9449 §8).
    pub(crate) fn with_dpop_nonce(mut self, nonce: String) -> Self {
        let error = self.dpop.take().map_or("use_dpop_nonce", |d| d.error);
        self.dpop = Some(Box::new(DpopError {
            error,
            nonce: Some(nonce.into_boxed_str()),
        }));
        self
    }

    /// The `error` of the `DPoP` challenge when this refuses a DPoP request
    /// (`invalid_dpop_proof`, `invalid_token`, `use_dpop_nonce`; RFC 9449 §7.1).
    pub fn dpop_error(&self) -> Option<&str> {
        self.dpop.as_ref().map(|d| d.error)
    }

    /// The nonce sent in the `DPoP-Nonce` header (RFC 9449 §8), when the server asks for one.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop.as_ref().and_then(|d| d.nonce.as_deref())
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
            RejectionKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
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
            RejectionKind::Misconfigured => "The service cannot authorize this request.",
        }
    }

    /// The `WWW-Authenticate` challenges for this rejection, given every enabled scheme's base
    /// challenge (one per scheme name, in order).
    ///
    /// 401 carries them all; a Bearer challenge gains `error` (RFC 6750 §3) only when the
    /// rejection is about a bearer credential that was sent. 403 for a missing scope carries the
    /// Bearer challenge with `error="insufficient_scope"`. Other statuses carry none.
    pub fn challenges(&self, enabled: &[Challenge]) -> Vec<Challenge> {
        if let Some(dpop) = &self.dpop {
            return self.dpop_challenges(enabled, dpop.error);
        }
        let bearer_error = match (self.kind, self.scheme) {
            (RejectionKind::InvalidCredentials, Some(Scheme::JWT | Scheme::INTROSPECTION)) => {
                Some(("invalid_token", "The access token is invalid or expired"))
            }
            (RejectionKind::InvalidRequest, Some(Scheme::JWT | Scheme::INTROSPECTION)) => Some((
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

impl Rejection {
    /// A DPoP refusal's challenges: on 401, every scheme's, the `DPoP` one with the error
    /// (RFC 9449 §7.1); on 400, the `DPoP` one with the error alone; none otherwise.
    fn dpop_challenges(&self, enabled: &[Challenge], error: &'static str) -> Vec<Challenge> {
        let description = match error {
            "invalid_dpop_proof" => "The DPoP proof is invalid",
            "use_dpop_nonce" => "A DPoP nonce from the server is required",
            "invalid_request" => "The request carries a malformed DPoP credential",
            _ => "The access token is invalid or expired",
        };
        let with_error = |challenge: &Challenge| {
            if challenge.is_dpop() {
                challenge
                    .clone()
                    .param("error", error)
                    .param("error_description", description)
            } else {
                challenge.clone()
            }
        };
        match self.kind {
            RejectionKind::MissingCredentials | RejectionKind::InvalidCredentials => {
                enabled.iter().map(with_error).collect()
            }
            RejectionKind::InvalidRequest => enabled
                .iter()
                .filter(|c| c.is_dpop())
                .map(with_error)
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
