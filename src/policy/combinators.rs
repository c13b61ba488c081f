//! Combinators: [`All`], [`Any`], [`Not`], and [`ReportOnly`] for trying a policy out.

use std::sync::Arc;

use super::{Decision, Policy, PolicyContext};
use crate::audit;
use crate::error::ConfigError;

/// Allows when every policy allows. A denial decides (the first one; so order cheap checks
/// first); otherwise, when some policy answers indeterminate, so does `All` (with the first such
/// answer); otherwise it allows. So a deny outranks an indeterminate: `All(Groups, IpRanges)`
/// with a client outside the ranges is denied whatever the groups. An empty `All` allows.
#[derive(Debug, Default)]
pub struct All(Vec<Box<dyn Policy>>);

impl All {
    /// An empty conjunction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy at the end.
    pub fn with(mut self, policy: impl Policy) -> Self {
        self.0.push(Box::new(policy));
        self
    }
}

impl From<Vec<Box<dyn Policy>>> for All {
    fn from(policies: Vec<Box<dyn Policy>>) -> Self {
        Self(policies)
    }
}

impl Policy for All {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let mut indeterminate = None;
        for policy in &self.0 {
            match policy.evaluate(context) {
                Decision::Allow => {}
                // Kept, but the rest still run: a later deny outranks it.
                undecided @ Decision::Indeterminate(_) => {
                    indeterminate.get_or_insert(undecided);
                }
                deny => return deny,
            }
        }
        indeterminate.unwrap_or(Decision::Allow)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.0.iter().try_for_each(|policy| policy.validate())
    }

    fn scheme_names(&self) -> Vec<&str> {
        self.0
            .iter()
            .flat_map(|policy| policy.scheme_names())
            .collect()
    }
}

/// Allows when at least one policy allows. Otherwise, when some policy answers indeterminate, so
/// does `Any`; when all deny, it denies. Either refusal names each branch's reason, and keeps the
/// scopes a branch found missing. An empty `Any` denies (fail closed).
#[derive(Debug, Default)]
pub struct Any(Vec<Box<dyn Policy>>);

impl Any {
    /// An empty disjunction (which denies until a policy is added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy at the end.
    pub fn with(mut self, policy: impl Policy) -> Self {
        self.0.push(Box::new(policy));
        self
    }
}

impl From<Vec<Box<dyn Policy>>> for Any {
    fn from(policies: Vec<Box<dyn Policy>>) -> Self {
        Self(policies)
    }
}

impl Policy for Any {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let mut reasons = Vec::new();
        let mut missing_scopes = Vec::new();
        let mut indeterminate = false;
        for policy in &self.0 {
            let decision = policy.evaluate(context);
            let Some(refusal) = decision.refusal() else {
                return Decision::Allow;
            };
            indeterminate |= decision.is_indeterminate();
            reasons.push(format!("{}: {}", refusal.rule, refusal.reason));
            missing_scopes.extend(refusal.missing_scopes.iter().cloned());
        }
        let reason = format!("no branch allowed [{}]", reasons.join("; "));
        let mut decision = if indeterminate {
            Decision::indeterminate("any", reason)
        } else {
            Decision::deny("any", reason)
        };
        if let Decision::Deny(denial) | Decision::Indeterminate(denial) = &mut decision {
            denial.missing_scopes = missing_scopes;
        }
        decision
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.0.iter().try_for_each(|policy| policy.validate())
    }

    fn scheme_names(&self) -> Vec<&str> {
        self.0
            .iter()
            .flat_map(|policy| policy.scheme_names())
            .collect()
    }
}

/// Allows exactly when the inner policy denies, denies when it allows, and stays indeterminate
/// when it is: `Not(Groups(["banned"]))` does not admit an anonymous caller, nor
/// `Not(IpRanges)` a request whose client IP is unknown. ([`Authenticated`](super::Authenticated)
/// denies an anonymous request, so `Not(Authenticated)` admits anonymous callers.)
///
/// Its denial reason is fixed: the inner policy's `Debug` could be a list of 100,000 ranges,
/// written into every rejection and audit line.
#[derive(Debug)]
pub struct Not(Box<dyn Policy>);

impl Not {
    /// The negation of `policy`.
    pub fn new(policy: impl Policy) -> Self {
        Self(Box::new(policy))
    }
}

impl Policy for Not {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        match self.0.evaluate(context) {
            Decision::Allow => Decision::deny("not", "the negated policy allowed"),
            Decision::Deny(_) => Decision::Allow,
            // Negating "cannot tell" is still "cannot tell": this is what keeps `Not` closed.
            undecided => undecided,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.0.validate()
    }

    fn scheme_names(&self) -> Vec<&str> {
        self.0.scheme_names()
    }
}

/// Runs a policy without enforcing it: a denial (or indeterminate answer) it would have made is
/// logged as an audit event with `report_only = true`, and the request is allowed. For rolling
/// out a rule safely.
#[derive(Debug)]
pub struct ReportOnly<P>(P);

impl<P: Policy> ReportOnly<P> {
    /// `policy` in report-only mode.
    pub fn new(policy: P) -> Self {
        Self(policy)
    }
}

impl<P: Policy> Policy for ReportOnly<P> {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let decision = self.0.evaluate(context);
        if let Some(denial) = decision.refusal() {
            let principal = context.principal();
            tracing::warn!(
                target: audit::TARGET,
                stage = context.stage(),
                outcome = "deny",
                indeterminate = decision.is_indeterminate(),
                report_only = true,
                scheme = principal.map(|p| p.scheme().as_str()),
                subject = principal.map(|p| p.subject()),
                credential_id = principal.and_then(|p| p.credential_id()),
                client_ip = context.client_ip().map(tracing::field::display),
                method = context.request().method().as_str(),
                path = context.path(),
                rule = %denial.rule,
                reason = crate::reject::Reason::for_rule(&denial.rule).as_str(),
                detail = %denial.reason,
                "request would have been denied (report-only)"
            );
        }
        Decision::Allow
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.0.validate()
    }

    fn scheme_names(&self) -> Vec<&str> {
        self.0.scheme_names()
    }
}

/// Method-style composition for any policy.
pub trait PolicyExt: Policy + Sized {
    /// `self` and then `other`: both must allow.
    fn and(self, other: impl Policy) -> All {
        All::new().with(self).with(other)
    }

    /// `self` or `other`: either may allow.
    fn or(self, other: impl Policy) -> Any {
        Any::new().with(self).with(other)
    }

    /// This policy in report-only mode.
    fn report_only(self) -> ReportOnly<Self> {
        ReportOnly::new(self)
    }
}

impl<P: Policy> PolicyExt for P {}

impl Policy for Box<dyn Policy> {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        (**self).evaluate(context)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        (**self).validate()
    }

    fn scheme_names(&self) -> Vec<&str> {
        (**self).scheme_names()
    }
}

impl Policy for Arc<dyn Policy> {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        (**self).evaluate(context)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        (**self).validate()
    }

    fn scheme_names(&self) -> Vec<&str> {
        (**self).scheme_names()
    }
}
