//! [`Refusal`]: a rejection after the Gate, with the response already built.

use std::fmt;

use http::Response;

use super::Rejection;

/// A request refused after the Gate let it through: by a route-bound policy, a handler guard
/// ([`Guard::require`](crate::extract::Guard::require)) or an extractor
/// ([`Principal`](crate::Principal), [`Claims`](crate::extract::Claims)). It carries the response
/// the Gate's own responder built, so a refusal in a handler looks exactly like one at the Gate:
/// same status, same challenges, same body. Return it from an axum or actix-web handler
/// (`Result<_, Refusal>`, or `?`).
///
/// Only portcullis builds one. Without a Gate in front there is no responder to ask: the refusal
/// is then a 500 ([`RejectionKind::Misconfigured`](super::RejectionKind::Misconfigured)) with the
/// default problem body.
pub struct Refusal {
    // Boxed: handlers return it in a `Result`, whose every `Ok` would otherwise carry its size.
    inner: Box<Inner>,
}

struct Inner {
    rejection: Rejection,
    response: Response<String>,
}

impl Refusal {
    pub(crate) fn new(rejection: Rejection, response: Response<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                rejection,
                response,
            }),
        }
    }

    /// Why the request was refused. Its reason is for logs, never for the client.
    pub fn rejection(&self) -> &Rejection {
        &self.inner.rejection
    }

    /// The response to send.
    pub fn response(&self) -> &Response<String> {
        &self.inner.response
    }

    /// The rejection and the response, by value.
    #[cfg_attr(
        not(any(feature = "tower", feature = "self-service")),
        expect(
            dead_code,
            reason = "the tower layers and the token API take the response apart"
        )
    )]
    pub(crate) fn split(self) -> (Rejection, Response<String>) {
        let Inner {
            rejection,
            response,
        } = *self.inner;
        (rejection, response)
    }
}

impl From<Refusal> for Response<String> {
    fn from(refusal: Refusal) -> Self {
        refusal.inner.response
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("rejection", &self.inner.rejection)
            .field("status", &self.inner.response.status())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.rejection.fmt(f)
    }
}

impl std::error::Error for Refusal {}
