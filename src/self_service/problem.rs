//! The token API's errors: `application/problem+json` (RFC 9457) naming the field at fault.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde_json::json;

use crate::api_key::ApiKeyError;
use crate::error::StoreErrorKind;

/// A refusal of the token API: status, a detail for people, and the fields (or request headers)
/// at fault. Never holds a secret: details name rules and fields, not submitted values.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    pub(crate) detail: Cow<'static, str>,
    pub(crate) errors: Vec<(Cow<'static, str>, Cow<'static, str>)>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// `status` because of `field` (a JSON member, a query parameter or a header).
    pub(crate) fn field(
        status: StatusCode,
        field: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        let detail = detail.into();
        Self {
            status,
            detail: detail.clone(),
            errors: vec![(field.into(), detail)],
        }
    }

    /// 422: a rule refuses `field`.
    pub(crate) fn invalid(
        field: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::field(StatusCode::UNPROCESSABLE_ENTITY, field, detail)
    }

    /// 403: the caller may not do this.
    pub(crate) fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404, the same body for an unknown id and another user's.
    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no such token")
    }

    pub(crate) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is longer than {} bytes",
                super::MAX_BODY_LEN
            ),
        )
    }

    pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Bytes> {
        let mut response = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("allowed here: {allow}"),
        )
        .response();
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
        response
    }

    /// The response: problem+json, never cached.
    pub(crate) fn response(&self) -> Response<Bytes> {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = self
                .errors
                .iter()
                .map(|(field, detail)| json!({ "field": field, "detail": detail }))
                .collect();
        }
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<ApiKeyError> for Problem {
    /// Store failures are 503 (an outage is not the caller's fault) and their message goes to
    /// the log only; rule failures say which rule.
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::NotFound(_) => Self::not_found(),
            ApiKeyError::LifetimeExceedsCap { .. } | ApiKeyError::ExpiryRequired => {
                Self::invalid("expires_in", error.to_string())
            }
            ApiKeyError::Revoked(_)
            | ApiKeyError::Expired(_)
            | ApiKeyError::AlreadyRotated { .. } => {
                Self::new(StatusCode::CONFLICT, error.to_string())
            }
            ApiKeyError::NameTaken => Self::field(
                StatusCode::CONFLICT,
                "name",
                "an active token of yours already has this name",
            ),
            // 409 rather than 429: waiting does not help, revoking a token does.
            ApiKeyError::TooManyKeys { limit } => Self::new(
                StatusCode::CONFLICT,
                format!("you have {limit} active tokens, the most allowed: revoke one first"),
            ),
            ApiKeyError::Invalid(detail) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail),
            ApiKeyError::Store(err) if err.kind() == StoreErrorKind::Conflict => {
                tracing::warn!(error = %err, "token API: store conflict");
                Self::new(
                    StatusCode::CONFLICT,
                    "the token changed meanwhile; try again",
                )
            }
            other => {
                tracing::error!(error = %other, "token API: the key store failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the token store is unavailable",
                )
            }
        }
    }
}
