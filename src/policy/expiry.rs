//! [`ExpiryCap`]: a maximum credential lifetime per scheme, checked on every request.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Decision, Policy, PolicyContext};
use crate::principal::Scheme;

/// Caps how long a credential may live: `expires_at - issued_at` (API keys: expiry minus
/// creation; JWTs: `exp - iat`). Because it runs on every request, tightening the cap takes effect
/// at once on credentials issued before.
///
/// A credential without an expiry is denied under a cap unless
/// [`allow_non_expiring`](Self::allow_non_expiring) is set. When the issue time is unknown, the
/// remaining lifetime (`expires_at - now`) is held to the cap instead. Schemes without a cap (and
/// Basic, whose passwords have no lifetime, unless given one explicitly) pass. An anonymous
/// request is indeterminate (see [`Decision`]): there is no credential to judge.
#[derive(Clone, Debug, Default)]
pub struct ExpiryCap {
    caps: BTreeMap<String, Duration>,
    default_cap: Option<Duration>,
    allow_non_expiring: bool,
}

impl ExpiryCap {
    /// A cap with no limits set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest lifetime for credentials of `scheme` (a [`Scheme`] or a scheme's name).
    pub fn max_lifetime(mut self, scheme: impl AsRef<str>, lifetime: Duration) -> Self {
        self.caps.insert(scheme.as_ref().to_owned(), lifetime);
        self
    }

    /// The longest lifetime for API keys and tokens of schemes without their own cap (not Basic).
    pub fn default_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_cap = Some(lifetime);
        self
    }

    /// Whether a credential with no expiry passes a cap. Defaults to `false`.
    pub fn allow_non_expiring(mut self, allow: bool) -> Self {
        self.allow_non_expiring = allow;
        self
    }

    fn cap_for(&self, scheme: Scheme) -> Option<Duration> {
        self.caps.get(scheme.as_str()).copied().or(match scheme {
            Scheme::BASIC => None,
            _ => self.default_cap,
        })
    }
}

impl Policy for ExpiryCap {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let Some(principal) = context.principal() else {
            return Decision::indeterminate("expiry_cap", "anonymous request");
        };
        let Some(cap) = self.cap_for(principal.scheme()) else {
            return Decision::Allow;
        };
        let Some(expires_at) = principal.expires_at() else {
            return if self.allow_non_expiring {
                Decision::Allow
            } else {
                Decision::deny("expiry_cap", "credential does not expire")
            };
        };
        let from = principal.issued_at().unwrap_or_else(|| context.now());
        let lifetime = (expires_at - from).to_std().unwrap_or(Duration::ZERO);
        if lifetime <= cap {
            Decision::Allow
        } else {
            Decision::deny(
                "expiry_cap",
                format!(
                    "credential lifetime {}s exceeds the cap of {}s",
                    lifetime.as_secs(),
                    cap.as_secs()
                ),
            )
        }
    }

    fn scheme_names(&self) -> Vec<&str> {
        self.caps.keys().map(String::as_str).collect()
    }
}
