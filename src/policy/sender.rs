//! [`SenderConstrained`]: routes that accept only credentials bound to their holder's key.

use super::{Decision, Policy, PolicyContext};
use crate::principal::Confirmation;

/// Allows only a caller whose credential was bound to a key and proven with it on this request
/// ([`Principal::confirmation`](crate::Principal::confirmation) is set: a DPoP-bound token with
/// its proof, RFC 9449, or a certificate-bound token with its client certificate, RFC 8705). A bearer credential (a plain JWT, an API key, a password) is denied
/// (403), as a stolen one would be usable by anyone. Indeterminate for an anonymous request,
/// which the Gate refuses with 401 (see [`Decision`]).
///
/// Use it for the routes that move money or health data, while the rest of the API still takes
/// bearer tokens during a migration; to refuse unbound tokens everywhere, set the issuer's DPoP
/// mode to `required` instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct SenderConstrained;

impl Policy for SenderConstrained {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        match context.principal() {
            Some(principal) => match principal.confirmation() {
                Some(Confirmation::Dpop { .. } | Confirmation::Certificate { .. }) => {
                    Decision::Allow
                }
                None => Decision::deny(
                    "sender_constrained",
                    "the credential is not bound to a key proven on this request",
                ),
            },
            None => Decision::indeterminate("sender_constrained", "anonymous request"),
        }
    }
}
