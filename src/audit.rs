//! The audit trail: one `tracing` event per decision, target `portcullis::audit`.
//!
//! Fields: `stage` (`gate`: the Gate's decision; `route`: a route-bound policy,
//! `tower::PolicyLayer` or `actix::PolicyMiddleware`; `handler`: a
//! guard or an extractor in a handler), `outcome` (`allow`, `deny`, `reject`), `status`, `scheme`, `subject` (or
//! `attempted_subject`: who a refused credential claimed to be), `credential_id` (or
//! `attempted_credential_id`: the public id of a refused API key, e.g. a revoked one),
//! `client_ip`, `method`, `path` (as sent), `route`, `rule`, `reason`, `report_only`. Never a
//! secret, a token or a password: only what a [`Principal`] or a [`Rejection`] already holds.

use std::net::IpAddr;

use crate::principal::Principal;
use crate::reject::Rejection;

/// The target every audit event is emitted under.
pub const TARGET: &str = "portcullis::audit";

pub(crate) struct AuditRecord<'a> {
    pub(crate) stage: &'static str,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) route: &'a str,
}

impl AuditRecord<'_> {
    pub(crate) fn allowed(&self, principal: Option<&Principal>) {
        tracing::info!(
            target: TARGET,
            stage = self.stage,
            outcome = "allow",
            status = 200u16,
            scheme = principal.map(|p| p.scheme().as_str()),
            subject = principal.map(Principal::subject),
            credential_id = principal.and_then(Principal::credential_id),
            client_ip = self.client_ip.map(tracing::field::display),
            method = self.method,
            path = self.path,
            route = self.route,
            "request allowed"
        );
    }

    pub(crate) fn rejected(
        &self,
        principal: Option<&Principal>,
        rejection: &Rejection,
        rule: Option<&str>,
    ) {
        let outcome = if rule.is_some() { "deny" } else { "reject" };
        let scheme = principal
            .map(Principal::scheme)
            .or(rejection.scheme())
            .map(|s| s.as_str());
        tracing::info!(
            target: TARGET,
            stage = self.stage,
            outcome,
            status = rejection.status().as_u16(),
            scheme,
            subject = principal.map(Principal::subject),
            attempted_subject = rejection.attempted_subject(),
            credential_id = principal.and_then(Principal::credential_id),
            attempted_credential_id = rejection.attempted_credential_id(),
            client_ip = self.client_ip.map(tracing::field::display),
            method = self.method,
            path = self.path,
            route = self.route,
            rule,
            reason = rejection.reason(),
            "request refused"
        );
    }
}
