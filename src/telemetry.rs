//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): the
//! names, and handles registered once (when a Gate, pool or key source is built, or at the
//! first use of a label set), never per request. Without the feature the handles do nothing.
//!
//! Label values are bounded: a scheme name, a reason, an outcome, an issuer from configuration;
//! never a subject, a key id or a path. `docs/operations.md` lists every metric.
#![allow(
    dead_code,
    reason = "each scheme's feature uses a part; a build without it leaves that part unused"
)]

use std::sync::OnceLock;
use std::time::Duration;

#[cfg(feature = "metrics")]
pub(crate) use metrics::{Counter, Gauge, Histogram};

use crate::principal::Scheme;
use crate::reject::Reason;

/// Decisions of the Gate: `scheme`, `outcome` (`allowed`, `refused`), `reason`.
pub(crate) const DECISIONS: &str = "portcullis_decisions_total";
/// Time the Gate took to decide, in seconds: `scheme`.
pub(crate) const CHECK_DURATION: &str = "portcullis_check_duration_seconds";
/// Password hashes running now.
pub(crate) const HASHING_IN_USE: &str = "portcullis_hashing_in_use";
/// Time a hash waited for a slot in the pool, in seconds.
pub(crate) const HASHING_QUEUE_WAIT: &str = "portcullis_hashing_queue_wait_seconds";
/// Hashes refused because no slot came free in time.
pub(crate) const HASHING_REFUSALS: &str = "portcullis_hashing_refusals_total";
/// Key-set fetches attempted: `issuer`.
pub(crate) const JWKS_FETCHES: &str = "portcullis_jwks_fetches_total";
/// Key-set fetches that failed: `issuer`.
pub(crate) const JWKS_FETCH_FAILURES: &str = "portcullis_jwks_fetch_failures_total";
/// Age of the key set in use, in seconds: `issuer`.
pub(crate) const JWKS_KEY_SET_AGE: &str = "portcullis_jwks_key_set_age_seconds";
/// Calls to the introspection endpoint: `result` (`active`, `inactive`, `error`).
pub(crate) const INTROSPECTION_CALLS: &str = "portcullis_introspection_calls_total";
/// Introspection answers served from the cache.
pub(crate) const INTROSPECTION_CACHE_HITS: &str = "portcullis_introspection_cache_hits_total";
/// API-key checks answered by the cache.
pub(crate) const API_KEY_CACHE_HITS: &str = "portcullis_api_key_cache_hits_total";
/// API-key checks that went to the store.
pub(crate) const API_KEY_CACHE_MISSES: &str = "portcullis_api_key_cache_misses_total";
/// Login attempts refused because the user (or the user from this IP) is locked out.
pub(crate) const LOCKOUTS: &str = "portcullis_lockouts_total";

/// No-op handles when the `metrics` feature is off.
#[cfg(not(feature = "metrics"))]
mod noop {
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Counter;
    impl Counter {
        pub(crate) fn increment(&self, _: u64) {}
    }
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Gauge;
    impl Gauge {
        pub(crate) fn set(&self, _: f64) {}
        pub(crate) fn increment(&self, _: f64) {}
        pub(crate) fn decrement(&self, _: f64) {}
    }
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Histogram;
    impl Histogram {
        pub(crate) fn record(&self, _: f64) {}
    }
}
#[cfg(not(feature = "metrics"))]
pub(crate) use noop::{Counter, Gauge, Histogram};

/// A counter with no labels, registered now with the recorder installed now.
pub(crate) fn counter(name: &'static str) -> Counter {
    #[cfg(feature = "metrics")]
    return metrics::counter!(name);
    #[cfg(not(feature = "metrics"))]
    {
        let _ = name;
        Counter
    }
}

/// A counter with one label.
pub(crate) fn counter_with(name: &'static str, label: &'static str, value: &str) -> Counter {
    #[cfg(feature = "metrics")]
    return metrics::counter!(name, label => value.to_owned());
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (name, label, value);
        Counter
    }
}

/// A gauge with no labels.
pub(crate) fn gauge(name: &'static str) -> Gauge {
    #[cfg(feature = "metrics")]
    return metrics::gauge!(name);
    #[cfg(not(feature = "metrics"))]
    {
        let _ = name;
        Gauge
    }
}

/// A gauge with one label.
pub(crate) fn gauge_with(name: &'static str, label: &'static str, value: &str) -> Gauge {
    #[cfg(feature = "metrics")]
    return metrics::gauge!(name, label => value.to_owned());
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (name, label, value);
        Gauge
    }
}

/// A histogram with no labels.
pub(crate) fn histogram(name: &'static str) -> Histogram {
    #[cfg(feature = "metrics")]
    return metrics::histogram!(name);
    #[cfg(not(feature = "metrics"))]
    {
        let _ = name;
        Histogram
    }
}

/// The Gate's handles: one decision counter per (scheme, outcome, reason) and one latency
/// histogram per scheme, each registered at its first use and kept, so a request costs an index
/// and an atomic add. Schemes are the Gate's authenticators' (and the built-in ones, which a
/// principal may carry: a key sent as a Basic password is `api_key`); anything else counts as
/// `other`, and no credential as `none`.
#[derive(Debug)]
pub(crate) struct GateMetrics {
    schemes: Vec<&'static str>,
    /// `schemes.len() * (Reason::ALL.len() + 1)`: the last slot of each scheme is "allowed".
    decisions: Box<[OnceLock<Counter>]>,
    latency: Box<[OnceLock<Histogram>]>,
}

const OUTCOMES: usize = Reason::ALL.len() + 1;

impl GateMetrics {
    pub(crate) fn new(authenticators: impl IntoIterator<Item = Scheme>) -> Self {
        let mut schemes = vec!["none", "other"];
        let builtin = [
            Scheme::BASIC,
            Scheme::API_KEY,
            Scheme::JWT,
            Scheme::INTROSPECTION,
        ];
        for scheme in builtin.into_iter().chain(authenticators) {
            if !schemes.contains(&scheme.as_str()) {
                schemes.push(scheme.as_str());
            }
        }
        let decisions = (0..schemes.len() * OUTCOMES)
            .map(|_| OnceLock::new())
            .collect();
        let latency = (0..schemes.len()).map(|_| OnceLock::new()).collect();
        Self {
            schemes,
            decisions,
            latency,
        }
    }

    fn scheme_index(&self, scheme: Option<Scheme>) -> usize {
        match scheme {
            None => 0,
            Some(scheme) => self
                .schemes
                .iter()
                .position(|s| *s == scheme.as_str())
                .unwrap_or(1),
        }
    }

    /// Counts one decision (`reason` `None` for an allowed request) and records its latency.
    pub(crate) fn record(&self, scheme: Option<Scheme>, reason: Option<Reason>, took: Duration) {
        let s = self.scheme_index(scheme);
        let slot = reason.map_or(OUTCOMES - 1, Reason::index);
        let name = self.schemes[s];
        self.decisions[s * OUTCOMES + slot]
            .get_or_init(|| decision_counter(name, reason))
            .increment(1);
        self.latency[s]
            .get_or_init(|| latency_histogram(name))
            .record(took.as_secs_f64());
    }
}

#[cfg(feature = "metrics")]
fn decision_counter(scheme: &'static str, reason: Option<Reason>) -> Counter {
    let (outcome, reason) = match reason {
        Some(reason) => ("refused", reason.as_str()),
        None => ("allowed", "none"),
    };
    metrics::counter!(DECISIONS, "scheme" => scheme, "outcome" => outcome, "reason" => reason)
}

#[cfg(not(feature = "metrics"))]
fn decision_counter(_: &'static str, _: Option<Reason>) -> Counter {
    Counter
}

#[cfg(feature = "metrics")]
fn latency_histogram(scheme: &'static str) -> Histogram {
    metrics::histogram!(CHECK_DURATION, "scheme" => scheme)
}

#[cfg(not(feature = "metrics"))]
fn latency_histogram(_: &'static str) -> Histogram {
    Histogram
}

/// Describes every metric (unit and help text) to the recorder installed now; exporters that
/// print help (Prometheus) show it. Optional: call once after installing the recorder.
#[cfg(feature = "metrics")]
pub(crate) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        DECISIONS,
        "Decisions of the Gate by scheme, outcome and reason"
    );
    describe_histogram!(
        CHECK_DURATION,
        Unit::Seconds,
        "Time the Gate took to decide"
    );
    describe_gauge!(HASHING_IN_USE, "Password hashes running now");
    describe_histogram!(HASHING_QUEUE_WAIT, Unit::Seconds, "Wait for a hashing slot");
    describe_counter!(
        HASHING_REFUSALS,
        "Hashes refused: no slot came free in time"
    );
    describe_counter!(JWKS_FETCHES, "Key-set fetches attempted");
    describe_counter!(JWKS_FETCH_FAILURES, "Key-set fetches that failed");
    describe_gauge!(JWKS_KEY_SET_AGE, Unit::Seconds, "Age of the key set in use");
    describe_counter!(INTROSPECTION_CALLS, "Calls to the introspection endpoint");
    describe_counter!(
        INTROSPECTION_CACHE_HITS,
        "Introspection answers from the cache"
    );
    describe_counter!(API_KEY_CACHE_HITS, "API-key checks answered by the cache");
    describe_counter!(
        API_KEY_CACHE_MISSES,
        "API-key checks that went to the store"
    );
    describe_counter!(
        LOCKOUTS,
        "Login attempts refused by the brute-force lockout"
    );
}
