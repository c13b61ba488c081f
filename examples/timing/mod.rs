//! What the two timing examples share: the dudect-style statistics and the function callgrind
//! counts. Included by `#[path]`, as examples cannot share a library of their own.

use std::hint::black_box;
use std::time::Duration;

use portcullis::{Gate, RequestView};

/// dudect's threshold: below it, two classes are indistinguishable at this sample size.
pub(crate) const THRESHOLD: f64 = 4.5;

/// The share of the slowest samples of each class dropped before comparing.
const TRIM: f64 = 0.05;

/// Mean, sample standard deviation (in seconds) and count.
pub(crate) struct Stats {
    pub(crate) mean: f64,
    pub(crate) std_dev: f64,
    pub(crate) n: usize,
}

impl Stats {
    /// Statistics of `times` after dropping the slowest [`TRIM`] share.
    pub(crate) fn of_trimmed(mut times: Vec<Duration>) -> Self {
        times.sort_unstable();
        let keep = times.len() - (times.len() as f64 * TRIM).floor() as usize;
        times.truncate(keep);
        let n = times.len();
        let secs = times.iter().map(Duration::as_secs_f64);
        let mean = secs.clone().sum::<f64>() / n as f64;
        let variance = secs.map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Self {
            mean,
            std_dev: variance.sqrt(),
            n,
        }
    }
}

/// Welch's t statistic for the difference of two means with unequal variances.
pub(crate) fn welch_t(a: &Stats, b: &Stats) -> f64 {
    let standard_error = (a.std_dev.powi(2) / a.n as f64 + b.std_dev.powi(2) / b.n as f64).sqrt();
    (a.mean - b.mean) / standard_error
}

/// The code callgrind counts on this thread: `iterations` checks of one request; returns how
/// many were refused. A plain function (an `async fn` is compiled into its caller's poll), never
/// inlined, so `--toggle-collect=<example>::timing::measured` finds it.
#[inline(never)]
pub(crate) fn measured(
    runtime: &tokio::runtime::Runtime,
    gate: &Gate,
    parts: &http::request::Parts,
    iterations: usize,
) -> usize {
    runtime.block_on(async {
        let mut refused = 0;
        for _ in 0..iterations {
            let view = RequestView::from_parts(black_box(parts));
            refused += usize::from(gate.check(&view).await.is_err());
        }
        refused
    })
}
