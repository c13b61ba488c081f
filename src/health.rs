//! Readiness: whether a Gate can decide requests now, component by component
//! ([`Gate::readiness`](crate::Gate::readiness)). The types are public in [`audit`](crate::audit),
//! beside the Gate's other report about itself, [`Explanation`](crate::audit::Explanation): the
//! crate root is full (docs/architecture.md, "The public API").
//!
//! A readiness probe takes an instance out of a load balancer's rotation when it fails, so it
//! fails only for what this instance cannot do without: keys that never loaded or are past
//! their `max_stale`, or a store the Gate reads that does not answer. A shared identity
//! provider's hiccup (a failed refresh while the keys are still within `max_stale`) is
//! [`Health::Degraded`], which counts as ready: failing every instance at once for it would turn
//! one provider's bad minute into a full outage.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::StoreError;

/// What [`Gate::readiness`](crate::Gate::readiness) found: ready or not, and why, per component.
///
/// Serializes to JSON as `{"ready": bool, "components": [{"name", "status", "reason"}]}`, the
/// body a `/healthz` endpoint answers 503 with. No reason holds a secret (no store URL, no
/// password, no token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Readiness {
    /// Whether every component is [`Ready`](Health::Ready) or [`Degraded`](Health::Degraded).
    pub ready: bool,
    /// Each component checked, in the order of the Gate's authenticators.
    pub components: Vec<ComponentStatus>,
}

impl Readiness {
    /// The report for `components`: ready when none is [`Health::NotReady`].
    pub fn new(components: Vec<ComponentStatus>) -> Self {
        let ready = components.iter().all(|c| c.status.is_ready());
        Self { ready, components }
    }

    /// Whether the Gate can decide requests now.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The report as JSON, for a `/healthz` body.
    pub fn to_json(&self) -> String {
        // A struct of strings and booleans always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"ready\":{}}}", self.ready))
    }
}

/// One component of a [`Readiness`] report: an issuer's key set, a store, the lockout counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ComponentStatus {
    /// What was checked, starting with the scheme: `jwt/keys/<issuer>`, `basic/users`,
    /// `basic/lockout`, `api_key/keys`.
    pub name: String,
    /// What the check found.
    pub status: Health,
    /// Why, in a few words, for people. Never a secret.
    pub reason: String,
}

impl ComponentStatus {
    /// A component that works.
    pub fn ready(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(name, Health::Ready, reason)
    }

    /// A component that works for now, with a problem worth looking at (a failing key refresh
    /// while the keys are still within `max_stale`). Counts as ready.
    pub fn degraded(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(name, Health::Degraded, reason)
    }

    /// A component the Gate cannot decide requests without, and which does not work.
    pub fn not_ready(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(name, Health::NotReady, reason)
    }

    /// A component with `status`.
    pub fn new(name: impl Into<String>, status: Health, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            reason: reason.into(),
        }
    }
}

/// How a component is doing. Serialized as `ready`, `degraded`, `not_ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// It works.
    Ready,
    /// It works, with a problem that does not stop the Gate deciding requests. Counts as ready.
    Degraded,
    /// It does not work, and requests that need it are refused (503).
    NotReady,
}

impl Health {
    /// Whether this status counts as ready ([`Ready`](Self::Ready) or
    /// [`Degraded`](Self::Degraded)).
    pub fn is_ready(self) -> bool {
        !matches!(self, Health::NotReady)
    }
}

/// The status of a store after a cheap query (`ping`), within `timeout`. The reason is the
/// store's error message, which names the backend and never the URL or a password.
#[cfg_attr(
    not(any(feature = "basic", feature = "api-key")),
    expect(dead_code, reason = "only the schemes with stores ping one")
)]
pub(crate) async fn ping(
    name: &str,
    timeout: Duration,
    ping: impl Future<Output = Result<(), StoreError>>,
) -> ComponentStatus {
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => ComponentStatus::ready(name, "reachable"),
        Ok(Err(err)) => ComponentStatus::not_ready(name, format!("unreachable: {err}")),
        Err(_) => {
            ComponentStatus::not_ready(name, format!("no answer within {}ms", timeout.as_millis()))
        }
    }
}

/// The last report, kept for a short while so that probes do not hammer the stores; probes
/// arriving while a check runs wait for it and share its report.
#[derive(Debug)]
pub(crate) struct ReadinessCache {
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
}

impl ReadinessCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached report if younger than the TTL, else the one `check` makes (one at a time:
    /// the lock is held while it runs, so concurrent probes share it).
    pub(crate) async fn get<F>(&self, check: impl FnOnce() -> F) -> Readiness
    where
        F: Future<Output = Readiness>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return report.clone();
        }
        let report = check().await;
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::StoreErrorKind;

    #[test]
    fn degraded_counts_as_ready_and_not_ready_does_not() {
        let report = Readiness::new(vec![
            ComponentStatus::ready("a", "ok"),
            ComponentStatus::degraded("b", "refresh failing"),
        ]);
        assert!(report.is_ready());
        let report = Readiness::new(vec![
            ComponentStatus::ready("a", "ok"),
            ComponentStatus::not_ready("c", "down"),
        ]);
        assert!(!report.is_ready());
        assert!(Readiness::new(Vec::new()).is_ready());
        assert_eq!(
            report.to_json(),
            r#"{"ready":false,"components":[{"name":"a","status":"ready","reason":"ok"},{"name":"c","status":"not_ready","reason":"down"}]}"#
        );
    }

    #[tokio::test]
    async fn ping_reports_errors_and_timeouts() {
        let ok = ping("s", Duration::from_secs(1), async { Ok(()) }).await;
        assert_eq!(ok.status, Health::Ready);
        let down = ping("s", Duration::from_secs(1), async {
            Err(StoreError::new(StoreErrorKind::Unavailable, "sqlite: ping"))
        })
        .await;
        assert_eq!(down.status, Health::NotReady);
        assert_eq!(down.reason, "unreachable: sqlite: ping");
        let slow = ping("s", Duration::from_millis(10), std::future::pending()).await;
        assert_eq!(slow.status, Health::NotReady);
        assert_eq!(slow.reason, "no answer within 10ms");
    }

    #[tokio::test]
    async fn concurrent_probes_share_one_check_and_the_cache_expires() {
        let cache = Arc::new(ReadinessCache::new(Duration::from_secs(3600)));
        let checks = Arc::new(AtomicUsize::new(0));
        let mut probes = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (cache, checks) = (Arc::clone(&cache), Arc::clone(&checks));
            probes.spawn(async move {
                cache
                    .get(|| async {
                        checks.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Readiness::new(Vec::new())
                    })
                    .await
            });
        }
        while let Some(report) = probes.join_next().await {
            assert!(report.unwrap().is_ready());
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1);

        let uncached = ReadinessCache::new(Duration::ZERO);
        for _ in 0..3 {
            uncached
                .get(|| async {
                    checks.fetch_add(1, Ordering::SeqCst);
                    Readiness::new(Vec::new())
                })
                .await;
        }
        assert_eq!(checks.load(Ordering::SeqCst), 4);
    }
}
