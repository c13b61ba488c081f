//! A timing check for API keys: can a caller tell an unknown key id from a known id with the
//! wrong secret, or a secret wrong only in its last characters, by how long the Gate takes to
//! refuse?
//!
//! All three are refused with the same 401. portcullis computes the keyed hash of the presented
//! secret whether or not the id exists (against a dummy digest when it does not) and compares
//! digests in constant time, so the three should cost the same. This program measures it,
//! dudect-style: the three classes are interleaved in random order, each request is timed with
//! `Instant`, the slowest 5 % of each class are dropped, and Welch's t statistic compares each
//! pair of means. `|t| < 4.5` is dudect's threshold for "no detectable difference".
//!
//! ```sh
//! cargo run --release --example timing_api_key -- 20000             # samples per class
//! cargo run --release --example timing_api_key -- 20000 --uncached  # every lookup reads the store
//! ```
//!
//! With the lookup cache (the default setup), both ids are answered from memory. With
//! `--uncached` every request reads the store, and the store's own timing for "found" and "not
//! found" shows through; that tells a caller whether an id exists, which the id (a public,
//! random 71-bit identifier) does not need to hide, but never anything about a secret.
//!
//! `callgrind CLASS N [--uncached]` runs N refusals of one class inside the function `measured`,
//! for `valgrind --tool=callgrind --toggle-collect=*measured*`: instruction counts instead of
//! time (see `tests/limits.rs`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::api_key::{CHECKSUM_LEN, ID_LEN, KeyFormat, SECRET_LEN};
use portcullis::store::MemoryApiKeyStore;
use portcullis::{ApiKeys, Gate, NewApiKey, RequestView};
use rand::seq::SliceRandom as _;

#[path = "timing/mod.rs"]
mod timing;

use timing::{Stats, THRESHOLD, measured, welch_t};

/// Untimed requests of each class first: caches filled, code paths warm.
const WARM_UP: usize = 200;
/// base62, in value order, as the key format uses it.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A well-formed key whose id does not exist.
    UnknownId,
    /// A known id with an unrelated secret.
    WrongSecret,
    /// A known id with the right secret but for its last four characters.
    WrongSuffix,
}

const CLASSES: [Class; 3] = [Class::UnknownId, Class::WrongSecret, Class::WrongSuffix];

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::UnknownId => "unknown id",
            Class::WrongSecret => "wrong secret",
            Class::WrongSuffix => "wrong suffix",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        CLASSES
            .into_iter()
            .find(|c| c.name().replace(' ', "-") == name)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    if args.first().map(String::as_str) == Some("callgrind") {
        let class = args
            .get(1)
            .and_then(|name| Class::parse(name))
            .ok_or("callgrind needs a class: unknown-id, wrong-secret or wrong-suffix")?;
        let iterations: usize = args.get(2).map_or(Ok(100), |n| n.parse())?;
        let cached = !args.iter().any(|a| a == "--uncached");
        return callgrind(&runtime, class, iterations, cached);
    }
    let samples: usize = match args.first() {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("samples per class must be a number, got `{arg}`"))?,
        None => 20_000,
    };
    if samples < 100 {
        return Err("use at least 100 samples per class".into());
    }
    let cached = !args.iter().any(|a| a == "--uncached");
    runtime.block_on(timing(samples, cached))
}

/// The Gate, and one request of each class.
struct Setup {
    gate: Gate,
    _keys: ApiKeys,
    requests: Vec<(Class, http::request::Parts)>,
}

async fn setup(cached: bool) -> Result<Setup, Box<dyn std::error::Error>> {
    let keys = ApiKeys::builder(
        Arc::new(MemoryApiKeyStore::new()),
        "a timing-check pepper of at least 32 bytes".into(),
    )
    // Cached: both ids stay in the lookup cache for the whole run. Uncached: none does.
    .cache_ttl(if cached {
        Duration::from_secs(24 * 3600)
    } else {
        Duration::ZERO
    })
    .build()?;
    let gate = Gate::builder()
        .authenticator(keys.authenticator())
        .build()?;
    let issued = keys
        .create(NewApiKey::new("alice").with_expires_in(Duration::from_secs(3600)))
        .await?;
    let key = issued.key().expose_secret();
    let prefix = &key[..key.len() - (ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN) - 1];
    let id = issued.id();
    let secret = &key[key.len() - SECRET_LEN - CHECKSUM_LEN..key.len() - CHECKSUM_LEN];

    let unknown = KeyFormat::default().generate();
    let other = KeyFormat::default().generate();
    let other_secret = other.secret().expose_secret();
    let mut near = secret[..SECRET_LEN - 4].to_owned();
    near.push_str(if secret.ends_with("zzzz") {
        "yyyy"
    } else {
        "zzzz"
    });
    let request = |key: &str| -> Result<http::request::Parts, http::Error> {
        Ok(http::Request::get("/reports")
            .header("x-api-key", key)
            .body(())?
            .into_parts()
            .0)
    };
    let requests = vec![
        (Class::UnknownId, request(unknown.key().expose_secret())?),
        (
            Class::WrongSecret,
            request(&assemble(prefix, id, other_secret))?,
        ),
        (Class::WrongSuffix, request(&assemble(prefix, id, &near))?),
    ];
    // Every class must be refused with 401, and fill the caches before anything is measured.
    for _ in 0..WARM_UP {
        for (class, parts) in &requests {
            match gate.check(&RequestView::from_parts(parts)).await {
                Err(rejection) if rejection.status() == http::StatusCode::UNAUTHORIZED => {}
                other => {
                    return Err(format!("{class:?} was not refused with 401: {other:?}").into());
                }
            }
        }
    }
    Ok(Setup {
        gate,
        _keys: keys,
        requests,
    })
}

/// `<prefix>_<id>_<secret><checksum>`, with the checksum the format documents (CRC32 of all
/// before it, in 6 base62 digits), so the key passes the format check and reaches the lookup.
fn assemble(prefix: &str, id: &str, secret: &str) -> String {
    let body = format!("{prefix}_{id}_{secret}");
    let mut value = u64::from(crc32fast::hash(body.as_bytes()));
    let mut checksum = [b'0'; CHECKSUM_LEN];
    for digit in checksum.iter_mut().rev() {
        *digit = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    body + std::str::from_utf8(&checksum).expect("base62 is ASCII")
}

async fn timing(samples: usize, cached: bool) -> Result<(), Box<dyn std::error::Error>> {
    let Setup { gate, requests, .. } = setup(cached).await?;
    let mut schedule: Vec<usize> = (0..requests.len())
        .flat_map(|class| std::iter::repeat_n(class, samples))
        .collect();
    schedule.shuffle(&mut rand::rng());
    println!(
        "timing {samples} refusals of each class, interleaved ({})",
        if cached {
            "lookups from the cache"
        } else {
            "every lookup reads the store"
        }
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); requests.len()];
    for index in schedule {
        let view = RequestView::from_parts(&requests[index].1);
        let start = Instant::now();
        let outcome = gate.check(&view).await;
        let elapsed = start.elapsed();
        black_box(outcome.is_err());
        times[index].push(elapsed);
    }
    let stats: Vec<Stats> = times.into_iter().map(Stats::of_trimmed).collect();
    println!(
        "{:<14} {:>12} {:>12} {:>7}",
        "class", "mean", "std dev", "n"
    );
    for ((class, _), stats) in requests.iter().zip(&stats) {
        println!(
            "{:<14} {:>9.3} µs {:>9.3} µs {:>7}",
            class.name(),
            stats.mean * 1e6,
            stats.std_dev * 1e6,
            stats.n
        );
    }
    let mut worst: f64 = 0.0;
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        let t = welch_t(&stats[a], &stats[b]).abs();
        worst = worst.max(t);
        println!(
            "{} vs {}: Welch |t| = {t:.3}",
            requests[a].0.name(),
            requests[b].0.name()
        );
    }
    if worst < THRESHOLD {
        println!("verdict: no detectable difference (every |t| < {THRESHOLD}) at this sample size");
    } else {
        println!(
            "verdict: DETECTABLE difference (some |t| >= {THRESHOLD}); rerun on an idle machine, \
             and investigate if it persists"
        );
    }
    Ok(())
}

fn callgrind(
    runtime: &tokio::runtime::Runtime,
    class: Class,
    iterations: usize,
    cached: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let setup = runtime.block_on(setup(cached))?;
    let parts = &setup
        .requests
        .iter()
        .find(|(c, _)| *c == class)
        .ok_or("no such class")?
        .1;
    let refused = measured(runtime, &setup.gate, parts, iterations);
    println!("{}: {refused} of {iterations} refused", class.name());
    Ok(())
}
