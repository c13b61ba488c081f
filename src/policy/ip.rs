//! [`IpRanges`]: allow and deny lists of CIDR ranges for the resolved client IP.

use super::{Decision, Policy, PolicyContext};
use crate::error::ConfigError;
use crate::ipset::IpSet;

/// Allows clients inside the allow list (when one is set) and outside the deny list; deny wins.
/// Lookups are binary searches over merged ranges ([`IpSet`]), so 100,000 ranges cost tens of ns.
///
/// The client IP is the one the Gate resolved (behind trusted proxies, the forwarded address). A
/// request whose client IP is unknown (the server gave no peer address) is indeterminate (see
/// [`Decision`]), which the Gate refuses and [`Not`](super::Not) does not turn into an allow:
/// fail closed. An empty allow or deny list is refused when the Gate is built.
#[derive(Clone, Debug, Default)]
pub struct IpRanges {
    allow: Option<IpSet>,
    deny: IpSet,
    /// Which list was given empty, reported by `validate`.
    empty: Option<&'static str>,
}

impl IpRanges {
    /// No lists yet: allows every known client IP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only clients inside `ranges` are allowed.
    pub fn allow(mut self, ranges: IpSet) -> Self {
        if ranges.is_empty() {
            self.empty = Some("IpRanges::allow");
        }
        self.allow = Some(ranges);
        self
    }

    /// Clients inside `ranges` are denied, even when also allowed.
    pub fn deny(mut self, ranges: IpSet) -> Self {
        if ranges.is_empty() {
            self.empty = Some("IpRanges::deny");
        }
        self.deny = ranges;
        self
    }
}

impl Policy for IpRanges {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let Some(ip) = context.client_ip() else {
            return Decision::indeterminate("ip_ranges", "client IP unknown");
        };
        if self.deny.contains(ip) {
            return Decision::deny("ip_ranges", format!("{ip} is in the deny list"));
        }
        match &self.allow {
            Some(allow) if !allow.contains(ip) => {
                Decision::deny("ip_ranges", format!("{ip} is not in the allow list"))
            }
            _ => Decision::Allow,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self.empty {
            Some(list) => Err(ConfigError::new(format!(
                "{list} is given an empty list; list at least one range, or leave it out"
            ))),
            None => Ok(()),
        }
    }
}
