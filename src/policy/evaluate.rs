//! The contract every policy meets: [`Policy`], what it may look at ([`PolicyContext`]) and what
//! it answers ([`Decision`]).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::error::ConfigError;
use crate::principal::Principal;
use crate::request::RequestView;

/// Decides whether a caller may make a request.
pub trait Policy: fmt::Debug + Send + Sync + 'static {
    /// Allows, denies, or answers indeterminate (see [`Decision`]). Must not block or do I/O.
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision;

    /// Checks the policy's own settings, once, when a Gate is built
    /// ([`GateBuilder::build`](crate::GateBuilder::build)): an error is a [`ConfigError`] at
    /// start-up rather than a route that is open or closed by mistake (an empty list of groups
    /// would allow every caller, or none). Combinators check what they wrap. Defaults to `Ok`.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// The scheme names this policy judges by ([`Schemes`](crate::Schemes),
    /// [`ExpiryCap`](super::ExpiryCap)), so that the Gate can refuse, when it is built, a name
    /// that no authenticator of its checks (a typo would otherwise never match). Combinators
    /// list what they wrap. Defaults to none.
    fn scheme_names(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// Everything a policy may look at. Built only by the Gate, after authentication.
#[derive(Debug)]
pub struct PolicyContext<'a> {
    principal: Option<&'a Principal>,
    request: &'a RequestView<'a>,
    path: &'a str,
    /// Who runs the policy, for audit events: `gate`, `route` or `handler`.
    stage: &'static str,
    /// Read from the clock only if a policy asks: most never do.
    now: OnceCell<DateTime<Utc>>,
}

impl<'a> PolicyContext<'a> {
    pub(crate) fn new(
        principal: Option<&'a Principal>,
        request: &'a RequestView<'a>,
        path: &'a str,
    ) -> Self {
        Self {
            principal,
            request,
            path,
            stage: "gate",
            now: OnceCell::new(),
        }
    }

    /// Marks the context as run by a route-bound policy or a handler guard, not the Gate.
    pub(crate) fn at_stage(mut self, stage: &'static str) -> Self {
        self.stage = stage;
        self
    }

    /// Who runs the policy, for audit events.
    pub(crate) fn stage(&self) -> &'static str {
        self.stage
    }

    /// The authenticated caller, or `None` for an anonymous request.
    pub fn principal(&self) -> Option<&'a Principal> {
        self.principal
    }

    /// The request.
    pub fn request(&self) -> &'a RequestView<'a> {
        self.request
    }

    /// The path the route rules matched on: the request's, as the client sent it.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The resolved client IP.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.request.client_ip()
    }

    /// The time of the decision.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.get_or_init(Utc::now)
    }
}

/// A policy's answer: allow, deny, or indeterminate.
///
/// *Indeterminate* means the policy cannot judge the request on what it offers: a rule about a
/// principal ([`Groups`](crate::Groups), [`Scopes`](crate::Scopes), [`Schemes`](crate::Schemes), [`KindIs`](super::KindIs), [`ExpiryCap`](super::ExpiryCap)) on an anonymous
/// request, or [`IpRanges`](super::IpRanges) on a request whose client IP is unknown. The Gate refuses it like a
/// denial (401 with challenges for an anonymous caller, 403 for a principal), and, unlike a
/// denial, [`Not`](super::Not) does not turn it into an allow: negating "this anonymous caller is not in
/// `admins`" must not admit every anonymous caller.
///
/// The combinators pass it on (a three-valued logic; see [`All`](super::All) and [`Any`](super::Any)):
///
/// | | `All` | `Any` | `Not` |
/// |---|---|---|---|
/// | some branch denies | deny | (an allow wins) | allow for deny |
/// | else some branch indeterminate | indeterminate | indeterminate unless a branch allows | indeterminate |
/// | else | allow | deny | deny for allow |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused.
    Deny(Denial),
    /// The policy cannot decide on what the request offers (no principal, no client IP). Refused
    /// by the Gate, and not negated by [`Not`](super::Not). The [`Denial`] says which rule could not decide
    /// and why, for logs.
    Indeterminate(Denial),
}

impl Decision {
    /// A denial by `rule` for `reason` (the reason is for logs, not for the client).
    pub fn deny(rule: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Decision::Deny(Denial::new(rule, reason))
    }

    /// An indeterminate answer by `rule` for `reason`: the request lacks what the rule judges
    /// (a principal, a client IP).
    pub fn indeterminate(rule: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Decision::Indeterminate(Denial::new(rule, reason))
    }

    /// Whether this is [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// Whether this is [`Decision::Indeterminate`].
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, Decision::Indeterminate(_))
    }

    /// Why the request is refused: the denial, or what made the answer indeterminate. `None`
    /// for an allow.
    pub fn refusal(&self) -> Option<&Denial> {
        match self {
            Decision::Allow => None,
            Decision::Deny(denial) | Decision::Indeterminate(denial) => Some(denial),
        }
    }
}

/// Why a policy denied: the rule that decided and a reason for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Denial {
    /// The name of the rule that decided (`groups`, `authenticated`, …).
    pub rule: Cow<'static, str>,
    /// Why, for logs.
    pub reason: String,
    /// Scopes the caller lacks, when the denial is about scopes (gives a Bearer
    /// `insufficient_scope` challenge).
    pub missing_scopes: Vec<String>,
}

impl Denial {
    fn new(rule: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            rule: rule.into(),
            reason: reason.into(),
            missing_scopes: Vec::new(),
        }
    }
}
