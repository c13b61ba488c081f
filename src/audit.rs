//! The audit trail: one `tracing` event per decision, target `portcullis::audit`.
//!
//! Fields: `stage` (`gate`: the Gate's decision; `route`: a route-bound policy,
//! `tower::PolicyLayer` or `actix::PolicyMiddleware`; `handler`: a
//! guard or an extractor in a handler), `outcome` (`allow`, `deny`, `reject`), `status`, `scheme`, `subject` (or
//! `attempted_subject`: who a refused credential claimed to be), `credential_id` (or
//! `attempted_credential_id`: the public id of a refused API key, e.g. a revoked one),
//! `client_ip`, `method`, `path` (as sent), `route`, `rule`, `reason`, `report_only`. Never a
//! secret, a token or a password: only what a [`Principal`] or a [`Rejection`] already holds.
//!
//! Beside the trail, what the Gate reports about itself: [`Explanation`] (how it decided one
//! request, from [`Gate::explain`](crate::Gate::explain)) and [`Readiness`] (whether it can
//! decide requests now, per component, from [`Gate::readiness`](crate::Gate::readiness)).

use std::fmt;
use std::net::IpAddr;

pub use crate::health::{ComponentStatus, Health, Readiness};
use crate::principal::{Principal, SubjectKind};
use crate::reject::Rejection;

/// The target every audit event is emitted under.
pub const TARGET: &str = "portcullis::audit";

/// What [`Gate::explain`](crate::Gate::explain) found: each step, then the result [`Gate::check`](crate::Gate::check) would give.
#[derive(Debug)]
#[non_exhaustive]
pub struct Explanation {
    /// `(stage, what happened)`, in order: `path`, `client_ip`, `authenticate` (one per
    /// authenticator asked), `route`, `policy`.
    pub steps: Vec<(&'static str, String)>,
    /// The decision.
    pub result: Result<Option<Principal>, Rejection>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (stage, detail) in &self.steps {
            writeln!(f, "{stage}: {detail}")?;
        }
        match &self.result {
            Ok(Some(principal)) => write!(
                f,
                "allow: {} {:?} via {}",
                match principal.kind() {
                    SubjectKind::User => "user",
                    SubjectKind::Application => "application",
                },
                principal.subject(),
                principal.scheme()
            ),
            Ok(None) => write!(f, "allow: anonymous"),
            Err(rejection) => write!(
                f,
                "deny: {} {} ({})",
                rejection.status().as_u16(),
                rejection.status().canonical_reason().unwrap_or(""),
                rejection.reason()
            ),
        }
    }
}

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

/// What `tracing` writes on this thread while it lives, for unit tests that assert on events
/// (a thread-local default subscriber: run the code under test on this thread).
#[cfg(test)]
pub(crate) struct CapturedLogs {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[cfg(test)]
impl CapturedLogs {
    /// Starts capturing this thread's events.
    pub(crate) fn start() -> Self {
        let buffer = std::sync::Arc::default();
        let writer = LogWriter(std::sync::Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

#[cfg(test)]
#[derive(Clone)]
struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
