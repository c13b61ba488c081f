//! Authorization: a [`Policy`] looks at who is calling and what they ask for, and returns a
//! [`Decision`]. Policies are synchronous and pure; the Gate runs the one its route rule names.
//!
//! A policy can only be evaluated on a [`PolicyContext`], which only the Gate builds, after
//! authentication has run: no code path reaches a policy with an unchecked caller.

// The everyday policies and the `Policy` trait are re-exported at the crate root, their one
// public path; the modules are `pub(crate)` so the root can reach them.
pub(crate) mod builtin;
pub(crate) mod combinators;
pub(crate) mod evaluate;
mod expiry;
mod ip;
mod sender;

/// What a principal's credential was bound to: read by [`SenderConstrained`] and handlers
/// ([`Principal::confirmation`](crate::Principal::confirmation)).
pub use crate::principal::Confirmation;
pub use builtin::{Anonymous, KindIs};
pub use combinators::{All, Any, Not, ReportOnly};
pub use evaluate::{Decision, Denial, PolicyContext};
pub use expiry::ExpiryCap;
pub use ip::IpRanges;
pub use sender::SenderConstrained;

pub(crate) use builtin::{Authenticated, Groups, Public, Schemes, Scopes};
pub(crate) use evaluate::Policy;

#[cfg(test)]
mod tests;
