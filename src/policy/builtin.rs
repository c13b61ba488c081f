//! The simplest built-in policies.

use super::{Decision, Policy, PolicyContext};

/// Allows every request, anonymous or not.
#[derive(Clone, Copy, Debug, Default)]
pub struct Public;

impl Policy for Public {
    fn evaluate(&self, _: &PolicyContext<'_>) -> Decision {
        Decision::Allow
    }
}

/// Allows any authenticated caller; denies anonymous requests (which then get a 401).
#[derive(Clone, Copy, Debug, Default)]
pub struct Authenticated;

impl Policy for Authenticated {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        match context.principal() {
            Some(_) => Decision::Allow,
            None => Decision::deny("authenticated", "anonymous request"),
        }
    }
}

/// Allows a caller in any (or all) of a set of groups.
#[derive(Clone, Debug)]
pub struct Groups {
    groups: Vec<String>,
    all: bool,
}

impl Groups {
    /// Allows a caller in at least one of `groups`.
    pub fn any_of(groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            groups: groups.into_iter().map(Into::into).collect(),
            all: false,
        }
    }

    /// Allows a caller in every one of `groups`.
    pub fn all_of(groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            groups: groups.into_iter().map(Into::into).collect(),
            all: true,
        }
    }
}

impl Policy for Groups {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let Some(principal) = context.principal() else {
            return Decision::deny("groups", "anonymous request");
        };
        let member = |g: &String| principal.in_group(g);
        let allowed = if self.all {
            self.groups.iter().all(member)
        } else {
            self.groups.iter().any(member)
        };
        if allowed {
            Decision::Allow
        } else {
            let how = if self.all { "all of" } else { "any of" };
            Decision::deny("groups", format!("not in {how} {:?}", self.groups))
        }
    }
}
