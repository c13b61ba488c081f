//! Errors of the bearer-token module: why a token was refused ([`TokenError`]), why a key was
//! not loaded ([`KeyError`]), why an HTTP fetch failed ([`FetchError`]) and why a token could not
//! be issued ([`IssueError`]).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::principal::Scheme;
use crate::reject::{Reason, Rejection};

/// Why a bearer token was refused; reach the kind through [`TokenError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// Not a well-formed compact JWS: wrong number of parts, bad base64url, bad or duplicated
    /// JSON, a claim of the wrong type.
    Malformed,
    /// Longer than the configured maximum.
    TooLarge,
    /// `alg` is `none`, unknown, or not allowed.
    UnsupportedAlgorithm,
    /// The header asks for something not supported: encryption (JWE), `crit` extensions,
    /// compression, a nested JWT.
    UnsupportedHeader,
    /// No key of the issuer matches the token's `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// `exp` is further from `iat` than the configured maximum lifetime.
    LifetimeTooLong,
    /// A required claim is absent.
    MissingClaim,
    /// `iss` is not a configured issuer.
    InvalidIssuer,
    /// `aud` names none of the accepted audiences.
    InvalidAudience,
    /// `typ` is not the required type.
    InvalidType,
    /// The introspection endpoint says the token is not active.
    Inactive,
    /// The introspection endpoint names a `token_type` that is not an access token usable as
    /// a bearer token here (a refresh token, say).
    InvalidTokenType,
    /// The token is DPoP-bound (`cnf.jkt`, RFC 9449) and was sent as a bearer token, without
    /// its proof.
    DpopBound,
    /// The token is not DPoP-bound, and its issuer's DPoP mode is `required`.
    DpopRequired,
    /// The token is certificate-bound (`cnf["x5t#S256"]`, RFC 8705) and the request has no
    /// client certificate.
    CertificateMissing,
    /// The token is certificate-bound and the request's client certificate is another one.
    CertificateMismatch,
    /// The token is not certificate-bound, and its issuer's certificate binding is `required`.
    CertificateRequired,
    /// The token is certificate-bound, and its issuer's certificate binding is `disabled`: it
    /// cannot be checked, so it is refused, never downgraded to a bearer token.
    CertificateBindingDisabled,
    /// The token's `cnf` holds no confirmation member portcullis can verify (`jkt`,
    /// `x5t#S256`), or an `x5t#S256` that is not a base64url SHA-256 thumbprint (a hex one).
    UnsupportedConfirmation,
    /// The keys or the introspection endpoint cannot be reached, and there is no last good
    /// answer: an outage, not a bad token (503).
    Unavailable,
}

/// A refused token. The message is for logs: it names the check that failed and never contains
/// the token.
#[derive(Clone, Debug)]
pub struct TokenError {
    kind: TokenErrorKind,
    reason: Cow<'static, str>,
    retry_after: Option<Duration>,
}

impl TokenError {
    pub(crate) fn new(kind: TokenErrorKind, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub(crate) fn malformed(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(TokenErrorKind::Malformed, reason)
    }

    pub(crate) fn unavailable(reason: impl Into<Cow<'static, str>>, retry: Duration) -> Self {
        let mut error = Self::new(TokenErrorKind::Unavailable, reason);
        error.retry_after = Some(retry);
        error
    }

    /// What was wrong.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }

    /// The reason, for logs.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The rejection to send: 503 with `Retry-After` for [`TokenErrorKind::Unavailable`], else
    /// 401 with `error="invalid_token"` in the Bearer challenge (RFC 6750 §3.1). Its
    /// [`Reason`] follows the kind ([`reason_code`](Self::reason_code)).
    pub fn into_rejection(self, scheme: Scheme) -> Rejection {
        let reason = self.reason_code();
        match self.kind {
            TokenErrorKind::Unavailable => {
                // The scheme, for the audit trail and metrics; a 503 carries no challenge.
                let rejection = Rejection::unavailable(self.reason)
                    .for_scheme(scheme)
                    .with_reason(reason);
                match self.retry_after {
                    Some(after) => rejection.with_retry_after(after),
                    None => rejection,
                }
            }
            _ => Rejection::invalid_credentials(scheme, self.reason).with_reason(reason),
        }
    }

    /// The machine-readable reason the rejection carries: `token_malformed`, `token_algorithm`,
    /// `token_signature`, `token_expired`, `token_not_yet_valid`, `token_claims`,
    /// `token_issuer`, `token_audience`, `introspection_inactive` or `keys_unavailable`.
    pub fn reason_code(&self) -> Reason {
        match self.kind {
            TokenErrorKind::Malformed
            | TokenErrorKind::TooLarge
            | TokenErrorKind::UnsupportedHeader
            | TokenErrorKind::InvalidType => Reason::TokenMalformed,
            TokenErrorKind::UnsupportedAlgorithm => Reason::TokenAlgorithm,
            TokenErrorKind::UnknownKey | TokenErrorKind::InvalidSignature => Reason::TokenSignature,
            TokenErrorKind::Expired | TokenErrorKind::LifetimeTooLong => Reason::TokenExpired,
            TokenErrorKind::NotYetValid | TokenErrorKind::IssuedInFuture => {
                Reason::TokenNotYetValid
            }
            TokenErrorKind::MissingClaim => Reason::TokenClaims,
            TokenErrorKind::InvalidIssuer => Reason::TokenIssuer,
            TokenErrorKind::InvalidAudience => Reason::TokenAudience,
            TokenErrorKind::Inactive | TokenErrorKind::InvalidTokenType => {
                Reason::IntrospectionInactive
            }
            TokenErrorKind::DpopBound | TokenErrorKind::DpopRequired => Reason::DpopRequired,
            TokenErrorKind::CertificateMissing
            | TokenErrorKind::CertificateMismatch
            | TokenErrorKind::CertificateRequired
            | TokenErrorKind::CertificateBindingDisabled => Reason::CertificateBinding,
            TokenErrorKind::UnsupportedConfirmation => Reason::TokenClaims,
            TokenErrorKind::Unavailable => Reason::KeysUnavailable,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for TokenError {}

#[cfg(feature = "jwt")]
/// Why a key could not be used; reach the kind through [`KeyError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyErrorKind {
    /// The PEM, DER, JWK or JWKS does not parse.
    Malformed,
    /// A key type, curve or algorithm portcullis does not verify with.
    Unsupported,
    /// A key too weak to trust: RSA under 2048 bits, an HMAC secret shorter than its hash.
    TooWeak,
    /// The key does not fit the algorithm it is declared for.
    AlgorithmMismatch,
    /// A key that may not come from this source: a shared secret (`oct`) from a remote JWKS.
    NotAllowed,
}

#[cfg(feature = "jwt")]
/// A key that could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    kind: KeyErrorKind,
    message: String,
}

#[cfg(feature = "jwt")]
impl KeyError {
    pub(crate) fn new(kind: KeyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> KeyErrorKind {
        self.kind
    }
}

#[cfg(feature = "jwt")]
impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(feature = "jwt")]
impl std::error::Error for KeyError {}

/// What went wrong with an HTTP fetch; reach it through [`FetchError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// No complete answer within the timeout.
    Timeout,
    /// The response body is larger than the limit.
    TooLarge,
    /// The server answered with a status other than 200.
    Status(u16),
    /// The connection failed (DNS, TCP, TLS).
    Connect,
    /// The answer is not what was asked for: bad JSON, a discovery document for another issuer,
    /// no usable key.
    InvalidResponse,
    /// The URL is not acceptable (not `https`, and not `http` on a loopback address).
    InvalidUrl,
}

/// A failed fetch of a JWKS, discovery document or introspection answer. The message is for
/// operators; it never holds a token or a client secret.
///
/// Like every error type in this crate, its `Display` says everything, the underlying error's
/// message included, and [`source`](std::error::Error::source) is `None` (see
/// [`with_source`](Self::with_source)).
#[derive(Debug)]
pub struct FetchError {
    kind: FetchErrorKind,
    message: String,
}

impl FetchError {
    /// A fetch error of `kind`.
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Adds the underlying error's message to this one's (`{message}: {source}`). The error
    /// itself is not kept, so [`source`](std::error::Error::source) stays `None` and `Debug`
    /// never prints what a foreign error's `Debug` would.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error) -> Self {
        use std::fmt::Write as _;
        let _ = write!(self.message, ": {source}");
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> FetchErrorKind {
        self.kind
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FetchError {}

#[cfg(feature = "jwt")]
/// Why [`JwtIssuer::issue`](super::JwtIssuer::issue) refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The requested lifetime is longer than the issuer's cap.
    #[error(
        "the requested token lifetime of {}s exceeds the maximum of {}s",
        .requested.as_secs(),
        .cap.as_secs()
    )]
    LifetimeExceedsCap {
        /// The lifetime asked for.
        requested: Duration,
        /// The configured maximum.
        cap: Duration,
    },
    /// The lifetime is zero.
    #[error("the token lifetime must be positive")]
    ZeroLifetime,
    /// The principal's own credential has expired (or expires within the second), so there is
    /// nothing left to hand a token out for: a token must not outlive what it was issued on.
    #[error("the principal's credential has expired")]
    SourceExpired,
    /// Signing failed (a key the backend refuses).
    #[error("signing failed: {0}")]
    Signing(String),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The crate's one error convention: `Display` says everything, `source()` is `None`.
    #[test]
    fn fetch_errors_show_the_cause_and_have_no_source() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = FetchError::new(FetchErrorKind::Connect, "request failed").with_source(cause);
        assert_eq!(error.to_string(), "request failed: refused");
        assert!(error.source().is_none());
    }

    #[test]
    fn every_token_error_kind_has_a_reason_and_unavailable_is_503() {
        use crate::reject::{Reason, RejectionKind};
        let cases = [
            (TokenErrorKind::Malformed, Reason::TokenMalformed),
            (TokenErrorKind::TooLarge, Reason::TokenMalformed),
            (TokenErrorKind::UnsupportedAlgorithm, Reason::TokenAlgorithm),
            (TokenErrorKind::UnsupportedHeader, Reason::TokenMalformed),
            (TokenErrorKind::UnknownKey, Reason::TokenSignature),
            (TokenErrorKind::InvalidSignature, Reason::TokenSignature),
            (TokenErrorKind::Expired, Reason::TokenExpired),
            (TokenErrorKind::NotYetValid, Reason::TokenNotYetValid),
            (TokenErrorKind::IssuedInFuture, Reason::TokenNotYetValid),
            (TokenErrorKind::LifetimeTooLong, Reason::TokenExpired),
            (TokenErrorKind::MissingClaim, Reason::TokenClaims),
            (TokenErrorKind::InvalidIssuer, Reason::TokenIssuer),
            (TokenErrorKind::InvalidAudience, Reason::TokenAudience),
            (TokenErrorKind::InvalidType, Reason::TokenMalformed),
            (TokenErrorKind::Inactive, Reason::IntrospectionInactive),
            (
                TokenErrorKind::InvalidTokenType,
                Reason::IntrospectionInactive,
            ),
            (TokenErrorKind::DpopBound, Reason::DpopRequired),
            (TokenErrorKind::DpopRequired, Reason::DpopRequired),
            (
                TokenErrorKind::CertificateMissing,
                Reason::CertificateBinding,
            ),
            (
                TokenErrorKind::CertificateMismatch,
                Reason::CertificateBinding,
            ),
            (
                TokenErrorKind::CertificateRequired,
                Reason::CertificateBinding,
            ),
            (
                TokenErrorKind::CertificateBindingDisabled,
                Reason::CertificateBinding,
            ),
            (TokenErrorKind::UnsupportedConfirmation, Reason::TokenClaims),
            (TokenErrorKind::Unavailable, Reason::KeysUnavailable),
        ];
        for (kind, reason) in cases {
            let rejection = TokenError::new(kind, "why").into_rejection(Scheme::JWT);
            assert_eq!(rejection.reason(), reason, "{kind:?}");
            assert_eq!(rejection.detail(), "why");
            let expected = if kind == TokenErrorKind::Unavailable {
                RejectionKind::Unavailable
            } else {
                RejectionKind::InvalidCredentials
            };
            assert_eq!(rejection.kind(), expected, "{kind:?}");
        }
    }
}
