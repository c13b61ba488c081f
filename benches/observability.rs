//! What observing the Gate costs, per warm API-key check (issue #19): the same check with no
//! metrics recorder and no subscriber, with a Prometheus recorder installed
//! (`metrics-exporter-prometheus`), with a `tracing` fmt subscriber at INFO (the audit event for
//! each allowed request is formatted and written, to a sink), and with that subscriber and
//! `audit_allowed_level = DEBUG` (allowed requests leave no line). All in one run, one after
//! the other, so the ratios compare like with like.
//!
//! Then the same four, interleaved: each round runs a batch of each, back to back, and the bench
//! prints the median time per check and the median of the per-round ratios to "none" (the
//! numbers docs/benchmarks.md reports).
//!
//! Run with `cargo bench --bench observability -- --warm-up-time 1 --measurement-time 4`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use http::request::Parts;
use metrics_exporter_prometheus::PrometheusBuilder;
use portcullis::store::MemoryApiKeyStore;
use portcullis::{ApiKeys, Gate, NewApiKey, RequestView, SecretString};

const PEPPER: &str = "bench-pepper-0123456789-abcdefghijklmnopqrstuvwxyz";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// A Gate with one API-key authenticator over a store holding one key, and the key's request;
/// one check made, so the cache is warm and every metric handle registered (with whatever
/// recorder is current).
fn warm_gate(rt: &tokio::runtime::Runtime, level: tracing::Level) -> (Gate, Parts) {
    rt.block_on(async {
        let keys = ApiKeys::builder(
            Arc::new(MemoryApiKeyStore::new()),
            SecretString::new(PEPPER),
        )
        .cache_ttl(Duration::from_secs(3600))
        .last_used_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("valid settings");
        let issued = keys
            .create(NewApiKey::new("svc").with_expires_in(Duration::from_secs(86_400)))
            .await
            .expect("created");
        let gate = Gate::builder()
            .authenticator(keys.authenticator())
            .audit_allowed_level(level)
            .build()
            .expect("valid gate");
        let (parts, ()) = http::Request::get("/x")
            .header("x-api-key", issued.key().expose_secret())
            .body(())
            .expect("valid request")
            .into_parts();
        for _ in 0..3 {
            let principal = gate.check(&RequestView::from_parts(&parts)).await;
            assert!(principal.expect("allowed").is_some());
        }
        (gate, parts)
    })
}

fn bench_check(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    gate: &Gate,
    parts: &Parts,
) {
    c.bench_function(name, |b| {
        b.to_async(rt).iter(|| async {
            let view = RequestView::from_parts(black_box(parts));
            black_box(gate.check(&view).await).expect("allowed")
        });
    });
}

fn fmt_subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish()
}

/// Checks in one timed batch of the interleaved comparison.
const BATCH: usize = 500;
/// Rounds of the interleaved comparison; odd, so the median is one of them.
const ROUNDS: usize = 101;

/// One way of running: a Gate (its metric handles registered with a recorder or none), its
/// request, and the subscriber to run it under, if any.
struct Variant {
    name: &'static str,
    gate: Gate,
    parts: Parts,
    subscriber: Option<tracing::Dispatch>,
}

impl Variant {
    fn batch(&self, rt: &tokio::runtime::Runtime) -> f64 {
        let _default = self
            .subscriber
            .as_ref()
            .map(tracing::dispatcher::set_default);
        let start = std::time::Instant::now();
        rt.block_on(async {
            for _ in 0..BATCH {
                let view = RequestView::from_parts(black_box(&self.parts));
                black_box(self.gate.check(&view).await).expect("allowed");
            }
        });
        start.elapsed().as_secs_f64()
    }
}

/// Each variant's time per check and its ratio to the first (no recorder, no subscriber): the
/// median over rounds in which every variant runs one batch, back to back. Criterion measures
/// one function for seconds, then the next, so on a shared machine a slow spell lands on one
/// side of a ratio; alternating in small batches puts it on all of them.
fn interleaved(rt: &tokio::runtime::Runtime, variants: &[Variant]) {
    for variant in variants {
        variant.batch(rt);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); variants.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        let took: Vec<f64> = variants.iter().map(|v| v.batch(rt)).collect();
        for (i, t) in took.iter().enumerate() {
            times[i].push(t / BATCH as f64);
            ratios[i].push(t / took[0]);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    for (i, variant) in variants.iter().enumerate() {
        println!(
            "{}: {:.0} ns per check, {:.3}x none (interleaved, median of {ROUNDS} rounds of {BATCH})",
            variant.name,
            median(&mut times[i]) * 1e9,
            median(&mut ratios[i]),
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let rt = runtime();

    let (plain, plain_parts) = warm_gate(&rt, tracing::Level::INFO);
    bench_check(&mut c, &rt, "observability/none", &plain, &plain_parts);

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // The handles register with the recorder current when the Gate first uses them: here.
    let (measured, parts) =
        metrics::with_local_recorder(&recorder, || warm_gate(&rt, tracing::Level::INFO));
    bench_check(&mut c, &rt, "observability/prometheus", &measured, &parts);
    let text = handle.render();
    assert!(
        text.lines()
            .any(|line| line.starts_with("portcullis_decisions_total{")
                && line.contains("outcome=\"allowed\"")),
        "{text}"
    );

    tracing::subscriber::with_default(fmt_subscriber(), || {
        let (logged, parts) = warm_gate(&rt, tracing::Level::INFO);
        bench_check(&mut c, &rt, "observability/fmt_info", &logged, &parts);
        let (quiet, parts) = warm_gate(&rt, tracing::Level::DEBUG);
        bench_check(
            &mut c,
            &rt,
            "observability/fmt_info_allowed_at_debug",
            &quiet,
            &parts,
        );
    });

    // Back to none, to see the drift over the run.
    bench_check(
        &mut c,
        &rt,
        "observability/none_again",
        &plain,
        &plain_parts,
    );

    let recorder = PrometheusBuilder::new().build_recorder();
    let (measured, measured_parts) =
        metrics::with_local_recorder(&recorder, || warm_gate(&rt, tracing::Level::INFO));
    let fmt = tracing::Dispatch::new(fmt_subscriber());
    let (logged, logged_parts) =
        tracing::dispatcher::with_default(&fmt, || warm_gate(&rt, tracing::Level::INFO));
    let (quiet, quiet_parts) =
        tracing::dispatcher::with_default(&fmt, || warm_gate(&rt, tracing::Level::DEBUG));
    interleaved(
        &rt,
        &[
            Variant {
                name: "none",
                gate: plain,
                parts: plain_parts,
                subscriber: None,
            },
            Variant {
                name: "prometheus",
                gate: measured,
                parts: measured_parts,
                subscriber: None,
            },
            Variant {
                name: "fmt_info",
                gate: logged,
                parts: logged_parts,
                subscriber: Some(fmt.clone()),
            },
            Variant {
                name: "fmt_info_allowed_at_debug",
                gate: quiet,
                parts: quiet_parts,
                subscriber: Some(fmt),
            },
        ],
    );
    c.final_summary();
}
