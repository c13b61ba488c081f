//! Peak memory of password checks: how much a process holds after many argon2id verifications
//! on the bounded hashing pool, as the kernel counts it (`VmHWM`, the peak resident set).
//!
//! The pool runs at most `max_concurrent` verifications at once, so argon2's memory in use is
//! at most `max_concurrent × m`. What the process *keeps* also depends on the allocator: this
//! program shows both, for the default argon2id cost (m = 19456 KiB, t = 2, p = 1).
//!
//! ```sh
//! cargo run --release --example memory_peak -- 1200      # verifications, default 1200
//! cargo run --release --example memory_peak -- 1200 2    # ... with 2 at a time (default 1)
//! MALLOC_MMAP_THRESHOLD_=131072 cargo run --release --example memory_peak -- 1200
//! ```
//!
//! Linux only (it reads `/proc/self/status`).

use std::sync::Arc;
use std::time::Instant;

use portcullis::basic::{HashingConfig, HashingPool};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(1200), |a| a.parse())?;
    let parallel: usize = args.next().map_or(Ok(1), |a| a.parse())?;
    let config = HashingConfig::default()
        .with_max_concurrent(2)
        .with_max_wait(std::time::Duration::from_secs(60));
    let before = status_kib("VmRSS")?;
    let pool = Arc::new(HashingPool::new(config)?);
    let password = "a wrong password".into();
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let batch = parallel.min(count - done);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let pool = Arc::clone(&pool);
            let password = portcullis::SecretString::clone(&password);
            // An unknown user: verified against the pool's dummy hash, at full cost.
            tasks.spawn(async move { pool.verify(&password, None).await.map(|v| v.matched) });
        }
        while let Some(result) = tasks.join_next().await {
            assert!(!result??, "the dummy hash never matches");
        }
        done += batch;
    }
    let elapsed = started.elapsed();
    println!(
        "{count} verifications ({parallel} at a time, pool of {}) in {:.1} s",
        config.max_concurrent,
        elapsed.as_secs_f64()
    );
    println!(
        "m = {} KiB; max_concurrent x m = {:.1} MiB",
        config.memory_kib,
        (config.max_concurrent as f64 * f64::from(config.memory_kib)) / 1024.0
    );
    println!(
        "VmRSS before the pool {:.1} MiB; now {:.1} MiB; peak (VmHWM) {:.1} MiB",
        before as f64 / 1024.0,
        status_kib("VmRSS")? as f64 / 1024.0,
        status_kib("VmHWM")? as f64 / 1024.0
    );
    println!(
        "MALLOC_MMAP_THRESHOLD_ = {}",
        std::env::var("MALLOC_MMAP_THRESHOLD_").unwrap_or_else(|_| "(unset)".to_owned())
    );
    Ok(())
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    Ok(line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}
