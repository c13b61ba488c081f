//! The simplest built-in policies.

use super::{Decision, Policy, PolicyContext};
use crate::error::ConfigError;
use crate::principal::SubjectKind;

/// The error for a rule given an empty list: whatever the rule's logic makes of it (an empty
/// all-of is true for everyone, an empty any-of for no one), it is never what was meant.
fn empty_list(what: &str) -> ConfigError {
    ConfigError::new(format!(
        "{what} is given an empty list, which would allow every caller or none; list at least \
         one, or remove the rule"
    ))
}

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

/// Allows a caller in any (or all) of a set of groups. Indeterminate for an anonymous request
/// (see [`Decision`]). An empty list is refused when the Gate is built.
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
            return Decision::indeterminate("groups", "anonymous request");
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

    fn validate(&self) -> Result<(), ConfigError> {
        if self.groups.is_empty() {
            return Err(empty_list(if self.all {
                "Groups::all_of"
            } else {
                "Groups::any_of"
            }));
        }
        Ok(())
    }
}

/// Allows only anonymous callers (a login or sign-up endpoint that a logged-in client should not use).
#[derive(Clone, Copy, Debug, Default)]
pub struct Anonymous;

impl Policy for Anonymous {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        match context.principal() {
            None => Decision::Allow,
            Some(_) => Decision::deny("anonymous", "caller is authenticated"),
        }
    }
}

/// Allows a caller whose credential grants all (or any) of a set of scopes. A denial names the
/// missing scopes, which a bearer client sees as `insufficient_scope` (RFC 6750 §3.1).
/// Indeterminate for an anonymous request (see [`Decision`]). An empty list is refused when the
/// Gate is built.
#[derive(Clone, Debug)]
pub struct Scopes {
    scopes: Vec<String>,
    all: bool,
}

impl Scopes {
    /// Allows a credential granting every one of `scopes`.
    pub fn all_of(scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
            all: true,
        }
    }

    /// Allows a credential granting at least one of `scopes`.
    pub fn any_of(scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
            all: false,
        }
    }
}

impl Policy for Scopes {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let Some(principal) = context.principal() else {
            return Decision::indeterminate("scopes", "anonymous request");
        };
        let missing: Vec<String> = self
            .scopes
            .iter()
            .filter(|s| !principal.has_scope(s))
            .cloned()
            .collect();
        let allowed = if self.all {
            missing.is_empty()
        } else {
            missing.len() < self.scopes.len()
        };
        if allowed {
            return Decision::Allow;
        }
        let how = if self.all { "all of" } else { "any of" };
        let mut decision = Decision::deny("scopes", format!("lacks {how} {:?}", self.scopes));
        if let Decision::Deny(denial) = &mut decision {
            denial.missing_scopes = if self.all {
                missing
            } else {
                self.scopes.clone()
            };
        }
        decision
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.scopes.is_empty() {
            return Err(empty_list(if self.all {
                "Scopes::all_of"
            } else {
                "Scopes::any_of"
            }));
        }
        Ok(())
    }
}

/// Allows only principals of one kind (users, or applications calling machine-to-machine).
/// Indeterminate for an anonymous request (see [`Decision`]).
#[derive(Clone, Copy, Debug)]
pub struct KindIs(pub SubjectKind);

impl Policy for KindIs {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        match context.principal() {
            Some(p) if p.kind() == self.0 => Decision::Allow,
            Some(p) => Decision::deny(
                "subject_kind",
                format!("{:?} is not {:?}", p.kind(), self.0),
            ),
            None => Decision::indeterminate("subject_kind", "anonymous request"),
        }
    }
}

/// Allows or denies by the scheme that authenticated the caller ("block Basic"). Indeterminate
/// for an anonymous request, which the Gate refuses (see [`Decision`]): to let anonymous callers
/// through as well, use `Any(Anonymous, Schemes)`. An empty list is refused when the Gate is
/// built.
///
/// Schemes are named by [`Scheme`](crate::Scheme) or by name (`Schemes::deny([Scheme::BASIC])`,
/// `Schemes::allow(["ldap"])`). A name that is neither built in nor the scheme of one of the
/// Gate's authenticators is refused when the Gate is built.
#[derive(Clone, Debug)]
pub struct Schemes {
    schemes: Vec<String>,
    allow: bool,
}

impl Schemes {
    /// Allows only principals authenticated by one of `schemes`.
    pub fn allow<I, S>(schemes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            schemes: schemes.into_iter().map(|s| s.as_ref().to_owned()).collect(),
            allow: true,
        }
    }

    /// Denies principals authenticated by any of `schemes`.
    pub fn deny<I, S>(schemes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            allow: false,
            ..Self::allow(schemes)
        }
    }
}

impl Policy for Schemes {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let Some(principal) = context.principal() else {
            return Decision::indeterminate("schemes", "anonymous request");
        };
        let scheme = principal.scheme().as_str();
        let listed = self.schemes.iter().any(|s| s == scheme);
        if listed == self.allow {
            Decision::Allow
        } else {
            Decision::deny(
                "schemes",
                format!("scheme {} is not allowed here", principal.scheme()),
            )
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.schemes.is_empty() {
            return Err(empty_list(if self.allow {
                "Schemes::allow"
            } else {
                "Schemes::deny"
            }));
        }
        Ok(())
    }

    fn scheme_names(&self) -> Vec<&str> {
        self.schemes.iter().map(String::as_str).collect()
    }
}
