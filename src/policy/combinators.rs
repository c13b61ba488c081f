//! Combinators: [`All`], [`Any`], [`Not`], and [`ReportOnly`] for trying a policy out.

use std::sync::Arc;

use super::{Decision, Policy, PolicyContext};
use crate::audit;

/// Allows when every policy allows; the first denial decides (so order cheap checks first).
/// An empty `All` allows.
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
        for policy in &self.0 {
            let decision = policy.evaluate(context);
            if !decision.is_allow() {
                return decision;
            }
        }
        Decision::Allow
    }
}

/// Allows when at least one policy allows. When all deny, the denial names each reason; when a
/// branch denies for missing scopes, those are kept. An empty `Any` denies (fail closed).
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
        for policy in &self.0 {
            match policy.evaluate(context) {
                Decision::Allow => return Decision::Allow,
                Decision::Deny(denial) => {
                    reasons.push(format!("{}: {}", denial.rule, denial.reason));
                    missing_scopes.extend(denial.missing_scopes);
                }
            }
        }
        let mut decision =
            Decision::deny("any", format!("no branch allowed [{}]", reasons.join("; ")));
        if let Decision::Deny(denial) = &mut decision {
            denial.missing_scopes = missing_scopes;
        }
        decision
    }
}

/// Allows exactly when the inner policy denies. Its denial reason is fixed: the inner policy's
/// `Debug` could be a list of 100,000 ranges, written into every rejection and audit line.
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
        }
    }
}

/// Runs a policy without enforcing it: a denial it would have made is logged as an audit event
/// with `report_only = true`, and the request is allowed. For rolling out a rule safely.
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
        if let Decision::Deny(denial) = self.0.evaluate(context) {
            let principal = context.principal();
            tracing::warn!(
                target: audit::TARGET,
                outcome = "deny",
                report_only = true,
                scheme = principal.map(|p| p.scheme().as_str()),
                subject = principal.map(|p| p.subject()),
                credential_id = principal.and_then(|p| p.credential_id()),
                client_ip = context.client_ip().map(tracing::field::display),
                method = context.request().method().as_str(),
                path = context.path(),
                rule = %denial.rule,
                reason = %denial.reason,
                "request would have been denied (report-only)"
            );
        }
        Decision::Allow
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
}

impl Policy for Arc<dyn Policy> {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        (**self).evaluate(context)
    }
}
