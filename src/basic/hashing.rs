//! Password hashing with argon2id on a bounded pool, off the async executor.
//!
//! Each verification holds a permit of a semaphore for its whole run on a blocking thread, so at
//! most `max_concurrent` run at once and argon2's memory is bounded by `max_concurrent × m`. A
//! caller that cannot get a permit within `max_wait` gets [`HashError::Busy`] (a 503), rather
//! than joining an unbounded queue.
//!
//! argon2's working memory (`m` KiB per run) is allocated once per permit and reused, never
//! freed while the pool lives. Allocating it per run, as `Argon2::verify_password` does, lets
//! glibc keep each freed buffer in the arena of the thread that freed it: measured with the
//! default cost and two permits, a process held 421 MiB after 1,200 sequential verifications and
//! 669 MiB with two at a time, against 38 MiB of buffers in use at most (`docs/security.md`).
//! Reused buffers hold the process at `max_concurrent × m`, whatever the allocator does.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::error::ConfigError;
use crate::secret::{PasswordHash, SecretString};
use crate::telemetry;

/// argon2id cost and pool settings.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct HashingConfig {
    /// Memory cost in KiB. Defaults to 19456 (19 MiB, OWASP's minimum for argon2id).
    pub memory_kib: u32,
    /// Iterations. Defaults to 2.
    pub iterations: u32,
    /// Lanes. Defaults to 1.
    pub parallelism: u32,
    /// How many hashes may run at once. Defaults to the number of cores.
    pub max_concurrent: usize,
    /// How long a request may wait for a free slot before it gets 503. Defaults to 1 s.
    pub max_wait: Duration,
}

/// Chained setters, for building a value from [`Default`] in one expression (the struct is
/// `#[non_exhaustive]`, so it cannot be written as a literal outside this crate).
impl HashingConfig {
    /// Sets [`memory_kib`](Self::memory_kib).
    #[must_use]
    pub fn with_memory_kib(mut self, memory_kib: u32) -> Self {
        self.memory_kib = memory_kib;
        self
    }

    /// Sets [`iterations`](Self::iterations).
    #[must_use]
    pub fn with_iterations(mut self, iterations: u32) -> Self {
        self.iterations = iterations;
        self
    }

    /// Sets [`parallelism`](Self::parallelism).
    #[must_use]
    pub fn with_parallelism(mut self, parallelism: u32) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Sets [`max_concurrent`](Self::max_concurrent).
    #[must_use]
    pub fn with_max_concurrent(mut self, max_concurrent: usize) -> Self {
        self.max_concurrent = max_concurrent;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_wait: Duration::from_secs(1),
        }
    }
}

/// Why hashing or verifying did not give an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// No slot came free within `max_wait`.
    #[error("password hashing pool is busy")]
    Busy,
    /// The stored hash is not a PHC string this crate can verify.
    #[error("stored password hash is malformed")]
    InvalidHash,
    /// argon2 failed or its thread panicked.
    #[error("password hashing failed")]
    Internal,
}

/// Counters of the pool's work, for tests and services without a `metrics` recorder. With the
/// `metrics` feature the pool also reports `portcullis_hashing_in_use`,
/// `portcullis_hashing_queue_wait_seconds` and `portcullis_hashing_refusals_total` through the
/// facade (docs/operations.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Hashes running now.
    pub in_flight: usize,
    /// The most that ever ran at once.
    pub peak_in_flight: usize,
    /// Hashes and verifications completed.
    pub completed: u64,
    /// Requests refused because no slot came free in time.
    pub busy: u64,
}

/// The result of checking a password.
#[derive(Debug)]
#[non_exhaustive]
pub struct Verification {
    /// Whether the password matched.
    pub matched: bool,
    /// A new hash at the configured cost, when the password matched a weaker stored hash.
    pub upgraded: Option<PasswordHash>,
}

/// A bounded pool that hashes and verifies passwords with argon2id. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HashingPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    argon2: Argon2<'static>,
    params: Params,
    permits: Arc<Semaphore>,
    max_wait: Duration,
    /// Verified against when the user is unknown, so that costs what a wrong password costs.
    dummy: String,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    completed: AtomicU64,
    busy: AtomicU64,
    /// `portcullis_hashing_in_use`, `_queue_wait_seconds`, `_refusals_total`.
    in_use: telemetry::Gauge,
    queue_wait: telemetry::Histogram,
    refusals: telemetry::Counter,
    /// argon2's working memory, `params.block_count()` blocks each, for reuse. A run takes one
    /// (or allocates one when none is free) and puts it back; since every run holds a permit,
    /// there are never more buffers than permits.
    buffers: Buffers,
}

/// Free argon2 buffers. `Debug` shows how many, not 19 MiB of blocks.
#[derive(Default)]
struct Buffers(Mutex<Vec<Vec<Block>>>);

impl fmt::Debug for Buffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let free = self.0.lock().map_or(0, |list| list.len());
        write!(f, "Buffers {{ free: {free} }}")
    }
}

impl HashingConfig {
    /// The argon2 parameters, refusing settings no pool can run with: what
    /// [`HashingPool::new`] checks, and `config` before it builds anything.
    pub(crate) fn check(&self) -> Result<Params, ConfigError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| ConfigError::new(format!("argon2 parameters: {e}")))?;
        if self.max_concurrent == 0 {
            return Err(ConfigError::new(
                "hashing max_concurrent must be at least 1",
            ));
        }
        Ok(params)
    }
}

impl HashingPool {
    /// A pool with `config`. Computes one hash (the dummy used for unknown users), so it takes as
    /// long as one login.
    pub fn new(config: HashingConfig) -> Result<Self, ConfigError> {
        let params = config.check()?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut inner = PoolInner {
            argon2,
            params,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            max_wait: config.max_wait,
            dummy: String::new(),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            in_use: telemetry::gauge(telemetry::HASHING_IN_USE),
            queue_wait: telemetry::histogram(telemetry::HASHING_QUEUE_WAIT),
            refusals: telemetry::counter(telemetry::HASHING_REFUSALS),
            buffers: Buffers::default(),
        };
        let mut memory = inner.take_buffer();
        inner.dummy = inner
            .hash(b"portcullis-dummy-password", &mut memory)
            .map_err(|e| ConfigError::new(format!("argon2 parameters: {e}")))?
            .expose_phc()
            .to_owned();
        inner.put_buffer(memory);
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Hashes a password at the configured cost.
    pub async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move |inner, memory| inner.hash(password.expose_secret().as_bytes(), memory))
            .await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when `stored` is `None`
    /// (an unknown user), which never matches but costs the same.
    ///
    /// Every refusal costs at least one verification at the pool's cost, so its time does not
    /// tell an unknown user from a known one: a stored hash weaker than the pool (made before
    /// the cost was raised, or by a tool at another cost) is verified and then padded with
    /// argon2 work making up the difference, and a stored hash that cannot be verified at all
    /// (malformed, not argon2) costs a dummy verification, after which a malformed one is
    /// [`HashError::InvalidHash`]. A stored hash *costlier* than the pool takes its own, longer
    /// time: a residual, which `portcullis config check` warns about.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&PasswordHash>,
    ) -> Result<Verification, HashError> {
        let password = password.clone();
        let stored = stored.map(|h| h.expose_phc().to_owned());
        self.run(move |inner, memory| {
            let secret = password.expose_secret().as_bytes();
            let Some(phc) = stored.as_deref() else {
                // Unknown user: the dummy is verified like a stored hash, and never matches.
                inner.verify_dummy(secret, memory);
                return Ok(Verification {
                    matched: false,
                    upgraded: None,
                });
            };
            let Ok(parsed) = Phc::new(phc) else {
                inner.verify_dummy(secret, memory);
                return Err(HashError::InvalidHash);
            };
            let matched = match inner.verify(secret, &parsed, memory) {
                Some((matched, work)) => {
                    inner.pad(work, memory);
                    matched
                }
                None => {
                    inner.verify_dummy(secret, memory);
                    false
                }
            };
            let upgraded = if matched && inner.is_weaker(&parsed) {
                Some(inner.hash(secret, memory)?)
            } else {
                None
            };
            Ok(Verification { matched, upgraded })
        })
        .await?
    }

    /// Whether a stored hash takes more argon2 work to verify than the pool's cost: its refusals
    /// take longer than an unknown user's, which tells that the user exists (see
    /// [`verify`](Self::verify)). `false` for a hash that cannot be parsed.
    pub fn costlier_than_pool(&self, stored: &PasswordHash) -> bool {
        Phc::new(stored.expose_phc())
            .ok()
            .and_then(|parsed| Params::try_from(&parsed).ok())
            .is_some_and(|params| work_of(&params) > work_of(&self.inner.params))
    }

    /// Whether a stored hash is below the configured cost (or not argon2id) and would be
    /// upgraded at the next successful login.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        Phc::new(stored.expose_phc()).map_or(true, |parsed| self.inner.is_weaker(&parsed))
    }

    /// How long a caller may wait for a slot before giving up.
    pub fn max_wait(&self) -> Duration {
        self.inner.max_wait
    }

    /// The pool's counters.
    pub fn metrics(&self) -> PoolMetrics {
        let inner = &self.inner;
        PoolMetrics {
            in_flight: inner.in_flight.load(Ordering::Relaxed),
            peak_in_flight: inner.peak.load(Ordering::Relaxed),
            completed: inner.completed.load(Ordering::Relaxed),
            busy: inner.busy.load(Ordering::Relaxed),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PoolInner, &mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let inner = &self.inner;
        let waited = Instant::now();
        let acquire = inner.permits.clone().acquire_owned();
        let acquire = tokio::time::timeout(inner.max_wait, acquire)
            .instrument(tracing::debug_span!(target: "portcullis::basic", "portcullis.hash.wait"));
        let permit = match acquire.await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; treat it like a timeout if it ever is.
            Ok(Err(_)) | Err(_) => {
                inner.busy.fetch_add(1, Ordering::Relaxed);
                inner.refusals.increment(1);
                return Err(HashError::Busy);
            }
        };
        inner.queue_wait.record(waited.elapsed().as_secs_f64());
        let pool = Arc::clone(inner);
        // Created here, a child of the request's span; entered on the blocking thread.
        let span = tracing::debug_span!(target: "portcullis::basic", "portcullis.hash");
        // The permit moves into the blocking task: if the request is dropped mid-hash, the slot
        // stays taken until argon2 finishes, so the memory bound holds.
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            let now = pool.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            pool.in_use.increment(1.0);
            pool.peak.fetch_max(now, Ordering::SeqCst);
            let mut memory = pool.take_buffer();
            let result = work(&pool, &mut memory);
            pool.put_buffer(memory);
            pool.in_flight.fetch_sub(1, Ordering::SeqCst);
            pool.in_use.decrement(1.0);
            pool.completed.fetch_add(1, Ordering::Relaxed);
            result
        });
        task.await.map_err(|_| HashError::Internal)
    }
}

impl PoolInner {
    /// Hashes `password` at the configured cost with a new salt, in `memory`.
    fn hash(&self, password: &[u8], memory: &mut [Block]) -> Result<PasswordHash, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|_| HashError::Internal)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.argon2
            .hash_password_into_with_memory(password, raw_salt, &mut out, memory)
            .map_err(|_| HashError::Internal)?;
        let phc = Phc {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|_| HashError::Internal)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|_| HashError::Internal)?),
        };
        Ok(PasswordHash::new(phc.to_string()))
    }

    /// Whether `password` matches the PHC hash `parsed`: what `Argon2::verify_password` does,
    /// but in `memory` instead of a fresh allocation. Any argon2 variant and version the PHC
    /// string names is verified with its own parameters; a hash that is not argon2, or has no
    /// salt or output, is `None`: it was not verified, and cost nothing. Otherwise whether it
    /// matched and the argon2 work it took ([`work_of`]).
    fn verify(
        &self,
        password: &[u8],
        parsed: &Phc<'_>,
        memory: &mut [Block],
    ) -> Option<(bool, u64)> {
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return None;
        };
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(version)) => version,
            Some(Err(_)) => return None,
        };
        let params = Params::try_from(parsed).ok()?;
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut salt_bytes).ok()?;
        let expected = expected.as_bytes();
        // PHC outputs are at most 64 bytes (`Output::MAX_LENGTH`).
        let mut out = [0u8; 64];
        let out = out.get_mut(..expected.len())?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let computed = if params.block_count() <= memory.len() {
            argon2.hash_password_into_with_memory(password, raw_salt, out, &mut *memory)
        } else {
            // Stored at a higher cost than the pool's (the cost was lowered since): rare, and
            // an attacker cannot choose it, so it gets memory of its own.
            argon2.hash_password_into(password, raw_salt, out)
        };
        let matched = computed.is_ok() && bool::from(out.ct_eq(expected));
        Some((matched, work_of(&params)))
    }

    /// Verifies against the dummy hash: one verification at the pool's cost, for a refusal that
    /// has nothing (else) to verify.
    fn verify_dummy(&self, password: &[u8], memory: &mut [Block]) {
        if let Ok(parsed) = Phc::new(&self.dummy) {
            std::hint::black_box(self.verify(password, &parsed, memory));
        }
    }

    /// Runs argon2id for the work a verification of `done` fell short of the pool's cost, so a
    /// weaker stored hash is refused in the time an unknown user is. Passes of at most the
    /// pool's memory, in the pool's buffer, less the fixed cost of a run
    /// ([`RUN_OVERHEAD_BLOCKS`]); what is left below argon2's granularity (4 blocks a pass) is a
    /// share of about 4 / `m` of the pool's cost.
    fn pad(&self, done: u64, memory: &mut [Block]) {
        let pool_blocks = u64::try_from(self.params.block_count()).unwrap_or(u64::MAX);
        let missing = work_of(&self.params)
            .saturating_sub(done)
            .saturating_sub(RUN_OVERHEAD_BLOCKS);
        let passes = missing.div_ceil(pool_blocks.max(1)).max(1);
        // argon2 takes a multiple of 4 blocks per lane (its sync points), and at least 8.
        let blocks = (missing / passes) / 4 * 4;
        if blocks < 8 {
            return;
        }
        let (Ok(m), Ok(t)) = (u32::try_from(blocks), u32::try_from(passes)) else {
            return;
        };
        let Ok(params) = Params::new(m, t, 1, None) else {
            return;
        };
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let padded = argon2.hash_password_into_with_memory(
            b"pad",
            b"portcullis-padding",
            &mut out,
            &mut *memory,
        );
        std::hint::black_box((padded.is_ok(), out));
    }

    /// A free buffer of argon2 memory, or a new one if all are in use.
    fn take_buffer(&self) -> Vec<Block> {
        let free = self.lock_buffers().pop();
        free.unwrap_or_else(|| vec![Block::default(); self.params.block_count()])
    }

    fn put_buffer(&self, memory: Vec<Block>) {
        self.lock_buffers().push(memory);
    }

    fn lock_buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        // The list only holds whole buffers: a panic elsewhere cannot leave it half-changed.
        self.buffers.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a stored hash is below the pool's cost in any parameter (or not argon2id): it is
    /// upgraded at the next successful login.
    fn is_weaker(&self, parsed: &Phc<'_>) -> bool {
        let Ok(params) = Params::try_from(parsed) else {
            return true;
        };
        parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() < self.params.m_cost()
            || params.t_cost() < self.params.t_cost()
            || params.p_cost() < self.params.p_cost()
    }
}

/// What one argon2 run costs besides filling its blocks, in blocks' worth: the initial hash H0,
/// the first two blocks of each lane and the final tag (BLAKE2b-long hashes of 1 KiB), the
/// address blocks of data-independent addressing. Set from callgrind counts (tests/limits.rs,
/// pool m = 256 KiB, t = 1, a stored hash at m = 128): 64 left the padded refusal 3.7 % short,
/// about 11 blocks. Subtracted from a pad, since the pad is a run of its own; at the default
/// cost (38,912 blocks) it is 0.1 %.
const RUN_OVERHEAD_BLOCKS: u64 = 52;

/// The argon2 work of one run with `params`: blocks filled, over all passes. What a run's time
/// is proportional to, whatever the lanes.
fn work_of(params: &Params) -> u64 {
    let blocks = u64::try_from(params.block_count()).unwrap_or(u64::MAX);
    blocks.saturating_mul(u64::from(params.t_cost()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashingConfig {
        HashingConfig {
            memory_kib: 64,
            iterations: 1,
            ..HashingConfig::default()
        }
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let pool = HashingPool::new(cheap()).unwrap();
        let hash = pool.hash(&"s3cret".into()).await.unwrap();
        assert!(
            hash.expose_phc()
                .starts_with("$argon2id$v=19$m=64,t=1,p=1$")
        );
        assert!(
            pool.verify(&"s3cret".into(), Some(&hash))
                .await
                .unwrap()
                .matched
        );
        assert!(
            !pool
                .verify(&"s3creT".into(), Some(&hash))
                .await
                .unwrap()
                .matched
        );
        assert!(!pool.verify(&"s3cret".into(), None).await.unwrap().matched);
    }

    #[tokio::test]
    async fn weaker_hash_is_upgraded_on_match_only() {
        let old = HashingPool::new(cheap()).unwrap();
        let hash = old.hash(&"pw".into()).await.unwrap();
        let new = HashingPool::new(HashingConfig {
            memory_kib: 128,
            ..cheap()
        })
        .unwrap();
        assert!(new.needs_rehash(&hash));
        let wrong = new.verify(&"nope".into(), Some(&hash)).await.unwrap();
        assert!(wrong.upgraded.is_none());
        let right = new.verify(&"pw".into(), Some(&hash)).await.unwrap();
        let upgraded = right.upgraded.unwrap();
        assert!(upgraded.expose_phc().contains("m=128"));
        assert!(!new.needs_rehash(&upgraded));
    }

    #[tokio::test]
    async fn malformed_stored_hash_is_an_error() {
        let pool = HashingPool::new(cheap()).unwrap();
        let err = pool
            .verify(&"pw".into(), Some(&PasswordHash::new("not-a-phc")))
            .await
            .unwrap_err();
        assert!(matches!(err, HashError::InvalidHash));
    }

    /// Hashes made in reused memory are ordinary PHC strings, and hashes made elsewhere (other
    /// variants, versions, costs, output lengths) verify in reused memory as `verify_password`
    /// would verify them.
    #[tokio::test]
    async fn reused_memory_agrees_with_argon2() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

        let pool = HashingPool::new(cheap()).unwrap();
        let ours = pool.hash(&"s3cret".into()).await.unwrap();
        let parsed = Phc::new(ours.expose_phc()).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"s3cret", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"s3creT", &parsed)
                .is_err()
        );

        let salt = SaltString::generate(&mut OsRng);
        for (algorithm, version, m, output) in [
            (Algorithm::Argon2id, Version::V0x13, 64, 32),
            (Algorithm::Argon2i, Version::V0x13, 64, 32),
            (Algorithm::Argon2d, Version::V0x10, 32, 16),
            (Algorithm::Argon2id, Version::V0x13, 48, 64),
            // Costlier than the pool: verified in memory of its own.
            (Algorithm::Argon2id, Version::V0x13, 256, 32),
        ] {
            let params = Params::new(m, 1, 1, Some(output)).unwrap();
            let theirs = Argon2::new(algorithm, version, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            let stored = PasswordHash::new(theirs.clone());
            // Several times over the same buffers: what a previous run left there never matters.
            for _ in 0..3 {
                let right = pool.verify(&"pw".into(), Some(&stored)).await.unwrap();
                assert!(right.matched, "{theirs}");
                let wrong = pool.verify(&"pW".into(), Some(&stored)).await.unwrap();
                assert!(!wrong.matched, "{theirs}");
            }
        }
    }

    #[tokio::test]
    async fn a_phc_string_without_output_never_matches() {
        let pool = HashingPool::new(cheap()).unwrap();
        for phc in [
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQxMjM0NTY",
            "$scrypt$ln=1,r=8,p=1$c29tZXNhbHQxMjM0NTY$c29tZXNhbHQxMjM0NTY",
        ] {
            let stored = PasswordHash::new(phc);
            let result = pool.verify(&"pw".into(), Some(&stored)).await.unwrap();
            assert!(!result.matched, "{phc}");
        }
    }

    #[tokio::test]
    async fn buffers_never_outnumber_permits() {
        let pool = HashingPool::new(HashingConfig {
            max_concurrent: 3,
            max_wait: Duration::from_secs(30),
            ..cheap()
        })
        .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let pool = pool.clone();
            tasks.spawn(async move { pool.verify(&"pw".into(), None).await.unwrap() });
        }
        while let Some(result) = tasks.join_next().await {
            assert!(!result.unwrap().matched);
        }
        let free = pool.inner.lock_buffers();
        assert!((1..=3).contains(&free.len()), "{} buffers", free.len());
        let blocks = pool.inner.params.block_count();
        assert!(free.iter().all(|b| b.len() == blocks));
    }

    #[test]
    fn bad_parameters_are_config_errors() {
        let config = HashingConfig {
            memory_kib: 1,
            ..HashingConfig::default()
        };
        assert!(HashingPool::new(config).is_err());
    }
}
