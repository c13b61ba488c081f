//! A timing check for HTTP Basic: can a caller tell "unknown user" from "wrong password" by how
//! long the Gate takes to refuse?
//!
//! Both are refused with the same 401, so the only signal left is time. portcullis verifies an
//! unknown user's password against a dummy argon2id hash of the same cost, so the two should take
//! as long as each other. This program measures it, dudect-style: the two classes of request are
//! interleaved in random order (so drift in machine load hits both alike), each is timed with
//! `Instant`, the slowest 5 % of each class are dropped (preemption, not the code), and Welch's t
//! statistic compares the means. `|t| < 4.5` is dudect's threshold for "no detectable difference".
//!
//! This is a check to run by hand, not a test: it takes tens of seconds and a busy machine can
//! move it. Run it in release mode:
//!
//! ```sh
//! cargo run --release --example basic_timing -- 200   # samples per class, default 200
//! ```
//!
//! `callgrind CLASS N [MEMORY_KIB]` runs N refusals of one class (`unknown-user`,
//! `wrong-password`, `weaker-hash`: a stored hash at half the memory, `malformed-hash`) at a
//! small argon2 cost (m = MEMORY_KIB, 64 by default, t = 1; argon2's work does not depend on the
//! data), for
//! `valgrind --tool=callgrind`: instruction counts instead of time (see `tests/limits.rs`). The
//! request's path runs inside the function `measured`; argon2 runs on a blocking thread, inside
//! the closure `HashingPool::run` hands it, so both are given to `--toggle-collect`.

use std::sync::Arc;
use std::time::Instant;

use portcullis::basic::{HashingConfig, HashingPool, encode_basic};
use portcullis::store::{MemoryUserStore, PasswordHash, UserRecord};
use portcullis::{BasicAuthenticator, Gate, RequestView};
use rand::seq::SliceRandom as _;

#[path = "timing/mod.rs"]
mod timing;

use timing::{Stats, THRESHOLD, measured, welch_t};

/// Untimed requests of each class first, so one-time costs (thread spawn, first allocation of
/// argon2's memory) do not land in either class.
const WARM_UP: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    UnknownUser,
    WrongPassword,
    /// A known user whose stored hash is cheaper than the pool's cost.
    WeakerHash,
    /// A known user whose stored hash is not a PHC string.
    MalformedHash,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    if args.first().map(String::as_str) == Some("callgrind") {
        let class = match args.get(1).map(String::as_str) {
            Some("unknown-user") => Class::UnknownUser,
            Some("wrong-password") => Class::WrongPassword,
            Some("weaker-hash") => Class::WeakerHash,
            Some("malformed-hash") => Class::MalformedHash,
            _ => {
                return Err("callgrind needs a class: unknown-user, wrong-password, \
                            weaker-hash or malformed-hash"
                    .into());
            }
        };
        let iterations: usize = args.get(2).map_or(Ok(20), |n| n.parse())?;
        let memory_kib: u32 = args.get(3).map_or(Ok(64), |n| n.parse())?;
        return callgrind(&runtime, class, iterations, memory_kib);
    }
    let samples: usize = match args.first() {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("samples per class must be a number, got `{arg}`"))?,
        None => 200,
    };
    if samples < 10 {
        return Err("use at least 10 samples per class".into());
    }
    // Default argon2id cost (m = 19456 KiB, t = 2, p = 1).
    runtime.block_on(timing(samples, HashingConfig::default()))
}

/// The Gate, and one request of each class.
struct Setup {
    gate: Gate,
    unknown: http::request::Parts,
    wrong: http::request::Parts,
    weaker: http::request::Parts,
    malformed: http::request::Parts,
}

async fn setup(hashing: HashingConfig) -> Result<Setup, Box<dyn std::error::Error>> {
    // Lockout is off only because this program fails hundreds of times on purpose; a service
    // keeps it on.
    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .hashing(hashing)
            .dangerous_disable_lockout()
            .build()?,
    );
    basic
        .add_user("alice", &"the right password".into(), ["staff"])
        .await?;
    // Half the pool's memory: as a hash made before the cost was raised.
    let weaker = HashingPool::new(hashing.with_memory_kib((hashing.memory_kib / 2).max(8)))?
        .hash(&"the right password".into())
        .await?;
    basic
        .store()
        .create_user(UserRecord::new("willy", weaker))
        .await?;
    basic
        .store()
        .create_user(UserRecord::new(
            "mally",
            PasswordHash::new("$argon2id$not-a-phc"),
        ))
        .await?;
    let gate = Gate::builder().shared_authenticator(basic).build()?;

    // Same password, and user names of the same length, so the requests differ only in whether
    // the user exists.
    let request = |user: &str| {
        http::Request::get("/me")
            .header("authorization", encode_basic(user, "a wrong password"))
            .body(())
            .map(|request| request.into_parts().0)
    };
    Ok(Setup {
        gate,
        unknown: request("zelda")?,
        wrong: request("alice")?,
        weaker: request("willy")?,
        malformed: request("mally")?,
    })
}

async fn timing(samples: usize, hashing: HashingConfig) -> Result<(), Box<dyn std::error::Error>> {
    let Setup {
        gate,
        unknown,
        wrong,
        ..
    } = setup(hashing).await?;
    let mut schedule: Vec<Class> = [Class::UnknownUser, Class::WrongPassword]
        .into_iter()
        .flat_map(|class| std::iter::repeat_n(class, samples))
        .collect();
    schedule.shuffle(&mut rand::rng());

    println!(
        "timing {samples} \"unknown user\" and {samples} \"wrong password\" requests, interleaved"
    );
    for _ in 0..WARM_UP {
        for parts in [&unknown, &wrong] {
            let refused = gate.check(&RequestView::from_parts(parts)).await;
            if refused.is_ok() {
                return Err("a wrong credential was accepted".into());
            }
        }
    }
    let mut unknown_times = Vec::with_capacity(samples);
    let mut wrong_times = Vec::with_capacity(samples);
    for class in schedule {
        let (parts, times) = match class {
            Class::UnknownUser => (&unknown, &mut unknown_times),
            Class::WrongPassword => (&wrong, &mut wrong_times),
            Class::WeakerHash | Class::MalformedHash => unreachable!("not scheduled"),
        };
        let view = RequestView::from_parts(parts);
        let start = Instant::now();
        let outcome = gate.check(&view).await;
        let elapsed = start.elapsed();
        match outcome {
            Err(rejection) if rejection.status() == http::StatusCode::UNAUTHORIZED => {}
            Err(rejection) => {
                return Err(format!("expected 401, got {} ({class:?})", rejection.status()).into());
            }
            Ok(_) => return Err("a wrong credential was accepted".into()),
        }
        times.push(elapsed);
    }

    let unknown = Stats::of_trimmed(unknown_times);
    let wrong = Stats::of_trimmed(wrong_times);
    println!(
        "{:<16} {:>12} {:>12} {:>6}",
        "class", "mean", "std dev", "n"
    );
    for (name, stats) in [("unknown user", &unknown), ("wrong password", &wrong)] {
        println!(
            "{name:<16} {:>9.3} ms {:>9.3} ms {:>6}",
            stats.mean * 1e3,
            stats.std_dev * 1e3,
            stats.n
        );
    }
    let t = welch_t(&unknown, &wrong);
    println!("Welch |t| = {:.3}", t.abs());
    if t.abs() < THRESHOLD {
        println!(
            "verdict: no detectable difference (|t| < {THRESHOLD}) at this sample size: the two refusals take as long as each other"
        );
    } else {
        println!(
            "verdict: DETECTABLE difference (|t| >= {THRESHOLD}): the two refusals take different times; rerun on an idle machine, and investigate if it persists"
        );
    }
    Ok(())
}

fn callgrind(
    runtime: &tokio::runtime::Runtime,
    class: Class,
    iterations: usize,
    memory_kib: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    // A small cost (the test suite's) that still runs every step of argon2id; the dummy hash an
    // unknown user is checked against is made at the same cost.
    let hashing = HashingConfig::default()
        .with_memory_kib(memory_kib)
        .with_iterations(1)
        .with_max_concurrent(1);
    let setup = runtime.block_on(setup(hashing))?;
    let parts = match class {
        Class::UnknownUser => &setup.unknown,
        Class::WrongPassword => &setup.wrong,
        Class::WeakerHash => &setup.weaker,
        Class::MalformedHash => &setup.malformed,
    };
    // Outside `measured` first: code paths warm. (argon2 runs here too, as many times for
    // either class, so the blocking thread's count grows alike.)
    runtime.block_on(async {
        for _ in 0..3 {
            let _ = setup.gate.check(&RequestView::from_parts(parts)).await;
        }
    });
    let refused = measured(runtime, &setup.gate, parts, iterations);
    println!("{class:?}: {refused} of {iterations} refused");
    if refused != iterations {
        return Err("a wrong credential was not refused".into());
    }
    Ok(())
}
