//! Password hashing with argon2id on a bounded pool, off the async executor.
//!
//! Each verification holds a permit of a semaphore for its whole run on a blocking thread, so at
//! most `max_concurrent` run at once and argon2's memory is bounded by `max_concurrent × m`. A
//! caller that cannot get a permit within `max_wait` gets [`HashError::Busy`] (a 503), rather
//! than joining an unbounded queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::error::ConfigError;
use crate::secret::{PasswordHash, SecretString};

/// argon2id cost and pool settings.
#[derive(Clone, Copy, Debug)]
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

/// Counters of the pool's work, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}

impl HashingPool {
    /// A pool with `config`. Computes one hash (the dummy used for unknown users), so it takes as
    /// long as one login.
    pub fn new(config: HashingConfig) -> Result<Self, ConfigError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| ConfigError::new(format!("argon2 parameters: {e}")))?;
        if config.max_concurrent == 0 {
            return Err(ConfigError::new(
                "hashing max_concurrent must be at least 1",
            ));
        }
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon2
            .hash_password(b"portcullis-dummy-password", &salt)
            .map_err(|e| ConfigError::new(format!("argon2 parameters: {e}")))?
            .to_string();
        Ok(Self {
            inner: Arc::new(PoolInner {
                argon2,
                params,
                permits: Arc::new(Semaphore::new(config.max_concurrent)),
                max_wait: config.max_wait,
                dummy,
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                completed: AtomicU64::new(0),
                busy: AtomicU64::new(0),
            }),
        })
    }

    /// Hashes a password at the configured cost.
    pub async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move |inner| inner.hash(password.expose_secret().as_bytes()))
            .await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when `stored` is `None`
    /// (an unknown user), which never matches but costs the same.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&PasswordHash>,
    ) -> Result<Verification, HashError> {
        let password = password.clone();
        let stored = stored.map(|h| h.expose_phc().to_owned());
        self.run(move |inner| {
            let known = stored.is_some();
            let phc = stored.as_deref().unwrap_or(&inner.dummy);
            let parsed = Phc::new(phc).map_err(|_| HashError::InvalidHash)?;
            let secret = password.expose_secret().as_bytes();
            let matched = known && inner.argon2.verify_password(secret, &parsed).is_ok();
            if !known {
                // The dummy must still be verified for its cost.
                let _ = inner.argon2.verify_password(secret, &parsed);
            }
            let upgraded = if matched && inner.is_weaker(&parsed) {
                Some(inner.hash(secret)?)
            } else {
                None
            };
            Ok(Verification { matched, upgraded })
        })
        .await?
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
        work: impl FnOnce(&PoolInner) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let inner = &self.inner;
        let acquire = inner.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout(inner.max_wait, acquire).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; treat it like a timeout if it ever is.
            Ok(Err(_)) | Err(_) => {
                inner.busy.fetch_add(1, Ordering::Relaxed);
                return Err(HashError::Busy);
            }
        };
        let pool = Arc::clone(inner);
        // The permit moves into the blocking task: if the request is dropped mid-hash, the slot
        // stays taken until argon2 finishes, so the memory bound holds.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = pool.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            pool.peak.fetch_max(now, Ordering::SeqCst);
            let result = work(&pool);
            pool.in_flight.fetch_sub(1, Ordering::SeqCst);
            pool.completed.fetch_add(1, Ordering::Relaxed);
            result
        });
        task.await.map_err(|_| HashError::Internal)
    }
}

impl PoolInner {
    fn hash(&self, password: &[u8]) -> Result<PasswordHash, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(password, &salt)
            .map(|h| PasswordHash::new(h.to_string()))
            .map_err(|_| HashError::Internal)
    }

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

    #[test]
    fn bad_parameters_are_config_errors() {
        let config = HashingConfig {
            memory_kib: 1,
            ..HashingConfig::default()
        };
        assert!(HashingPool::new(config).is_err());
    }
}
