//! Authorization: a [`Policy`] looks at who is calling and what they ask for, and returns a
//! [`Decision`]. Policies are synchronous and pure; the Gate runs the one its route rule names.
//!
//! A policy can only be evaluated on a [`PolicyContext`], which only the Gate builds, after
//! authentication has run: no code path reaches a policy with an unchecked caller.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::principal::Principal;
use crate::request::RequestView;

mod builtin;
mod combinators;
mod expiry;
mod ip;

pub use builtin::{Anonymous, Authenticated, Groups, KindIs, Public, Schemes, Scopes};
pub use combinators::{All, Any, Not, PolicyExt, ReportOnly};
pub use expiry::ExpiryCap;
pub use ip::IpRanges;

/// Decides whether a caller may make a request.
pub trait Policy: fmt::Debug + Send + Sync + 'static {
    /// Allows or denies. Must not block or do I/O.
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision;
}

/// Everything a policy may look at. Built only by the Gate, after authentication.
#[derive(Debug)]
pub struct PolicyContext<'a> {
    principal: Option<&'a Principal>,
    request: &'a RequestView<'a>,
    path: &'a str,
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
            now: OnceCell::new(),
        }
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

/// A policy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused.
    Deny(Denial),
}

impl Decision {
    /// A denial by `rule` for `reason` (the reason is for logs, not for the client).
    pub fn deny(rule: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Decision::Deny(Denial {
            rule: rule.into(),
            reason: reason.into(),
            missing_scopes: Vec::new(),
        })
    }

    /// Whether this is [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Why a policy denied: the rule that decided and a reason for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The name of the rule that decided (`groups`, `authenticated`, …).
    pub rule: Cow<'static, str>,
    /// Why, for logs.
    pub reason: String,
    /// Scopes the caller lacks, when the denial is about scopes (gives a Bearer
    /// `insufficient_scope` challenge).
    pub missing_scopes: Vec<String>,
}
