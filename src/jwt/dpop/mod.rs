//! DPoP (RFC 9449): access tokens that only the holder of a key can use.
//!
//! A client that holds a key pair asks its authorization server for a token bound to the key
//! (the token's `cnf.jkt` is the key's RFC 7638 thumbprint), then sends every request with
//! `Authorization: DPoP <token>` and a `DPoP` header: a fresh JWT (the *proof*) signed with the
//! key, naming the method, the URI, the time, a unique `jti` and the token's hash. A stolen token
//! is useless without the key; a stolen proof is useless for another request, and once.
//!
//! [`JwtAuthenticator`](super::JwtAuthenticator) and
//! [`IntrospectionAuthenticator`](super::IntrospectionAuthenticator) check DPoP requests when
//! their [`DpopMode`] is not [`Disabled`](DpopMode::Disabled); [`DpopSettings`] holds the proof
//! rules and the [`ReplayCache`]; the Gate's
//! [`public_origin`](crate::GateBuilder::public_origin) gives the URI proofs must name. A
//! principal authenticated with a proof carries
//! [`Confirmation::Dpop`](crate::policy::Confirmation::Dpop), which the
//! [`SenderConstrained`](crate::policy::SenderConstrained) policy requires.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use portcullis::jwt::dpop::{DpopMode, DpopSettings};
//! use portcullis::jwt::{JwtAuthenticator, KeySource};
//! use portcullis::policy::SenderConstrained;
//! use portcullis::Gate;
//!
//! # fn main() -> Result<(), portcullis::ConfigError> {
//! let jwt = JwtAuthenticator::builder()
//!     .issuer("https://sso.example.com", KeySource::discovery())
//!     .audience("payments-api")
//!     .dpop(DpopSettings::new().max_age(Duration::from_secs(30)))
//!     .dpop_mode(DpopMode::Allowed)
//!     .build()?;
//! let gate = Gate::builder()
//!     .authenticator(jwt)
//!     .public_origin("https://api.example.com")
//!     .route("/transfers/**", SenderConstrained)
//!     .build()?;
//! # Ok(())
//! # }
//! ```
//!
//! The same in a configuration file: `[gate] public_origin`, `[jwt.dpop]`, an issuer's
//! `dpop = "allowed"` and a policy with `sender_constrained = true` (docs/configuration.md).
//!
//! ## The checks on a proof (RFC 9449 §4.3)
//!
//! Exactly one `DPoP` header, at most [`max_proof_bytes`](DpopSettings::max_proof_bytes);
//! a compact JWS with unique member names (no `crit`, no JWE); `typ` exactly `dpop+jwt`; `alg`
//! in [`algorithms`](DpopSettings::algorithms) (public-key algorithms only: never `none`, never
//! HMAC); `jwk` a public key fitting `alg` (RSA of 2048 to 8192 bits, P-256 for ES256, P-384 for
//! ES384, Ed25519 for EdDSA) with no private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`,
//! `k`); the signature under that key; `htm` equal to the method (case-sensitive); `htu` equal
//! to the public origin and the path the client sent, without query and fragment, after RFC 3986
//! syntax- and scheme-based normalisation (case of scheme and host, default port, percent-escape
//! case, unreserved escapes, dot segments); `iat` at most [`max_age`](DpopSettings::max_age) in
//! the past and [`max_future_skew`](DpopSettings::max_future_skew) in the future; `jti` present
//! and never seen with this key while the proof could be accepted; `ath` equal to
//! base64url(SHA-256(token)); with [`use_nonce`](DpopSettings::use_nonce), `nonce` one the
//! server issued. Then the token's `cnf.jkt` must be the proof key's thumbprint.
//!
//! A proof is parsed by a parser of its own: the access-token parser never reads a header's
//! `jwk`, and a token whose `typ` is `dpop+jwt` is refused as an access token.
//!
//! ## Statuses (RFC 9449 §7.1)
//!
//! | Case | Status | Challenge |
//! |------|--------|-----------|
//! | bad proof (every check above but the nonce), replayed `jti`, `cnf.jkt` not the proof key | 401 | `DPoP error="invalid_dpop_proof"` |
//! | no `DPoP` header, or two | 401 | `DPoP error="invalid_dpop_proof"` |
//! | bad token sent as `DPoP`; unbound token sent as `DPoP`; DPoP disabled for its issuer | 401 | `DPoP error="invalid_token"` |
//! | nonce missing, unknown or expired (with `use_nonce`) | 401 | `DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` header |
//! | bound token sent as `Bearer`; unbound token where DPoP is `required` | 401 | `Bearer error="invalid_token"` |
//! | `Bearer` token with a `DPoP` header; DPoP in two places | 400 | `error="invalid_request"` |
//! | replay cache full of live entries; Redis unreachable | 503 | none |
//!
//! Every 401 carries the challenge of every enabled scheme: in `allowed` mode, `Bearer` and
//! `DPoP algs="…"`.

mod htu;
mod nonce;
mod proof;
mod replay;
mod request;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::algorithm::Algorithm;
use crate::error::ConfigError;

pub(crate) use proof::check_binding;
pub use proof::{DpopError, DpopErrorKind, VerifiedProof, verify_proof};
pub(crate) use replay::readiness as replay_readiness;
pub use replay::{MemoryReplayCache, ReplayCache};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use replay::{RedisReplayCache, RedisReplayCacheBuilder};
pub(crate) use request::{challenge, check, check_bearer, find, source};

/// How long after its `iat` a proof is accepted unless configured otherwise: 60 s.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// How far in the future a proof's `iat` may be unless configured otherwise: 5 s.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(5);
/// The largest proof accepted unless configured otherwise: 8 KiB (an RSA-8192 proof is 3.6 KiB).
pub const DEFAULT_MAX_PROOF_BYTES: usize = 8 * 1024;
/// How many proofs the in-memory replay cache remembers at most unless configured otherwise.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// How long a server nonce is accepted unless configured otherwise: 5 minutes.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// The proof algorithms accepted unless configured otherwise.
pub const DEFAULT_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::EdDSA,
];
/// The longest `jti` accepted in a proof, in bytes.
pub const MAX_JTI_LEN: usize = 256;

/// Whether an issuer's (or the introspection endpoint's) tokens may or must be DPoP-bound.
///
/// Whatever the mode, a token carrying `cnf.jkt` is never accepted as a bearer token: it is
/// bound, and only its proof makes it usable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopMode {
    /// `Authorization: DPoP` is accepted with a proof; a token with `cnf.jkt` needs its proof; an
    /// unbound token is accepted as `Bearer`. The default.
    #[default]
    Allowed,
    /// Only DPoP-bound tokens with their proof: an unbound token is refused, as `Bearer` or as
    /// `DPoP`.
    Required,
    /// `Authorization: DPoP` is not recognised (unless another issuer of the authenticator
    /// allows it, in which case it is refused for this one, `invalid_token`); a token with
    /// `cnf.jkt` is still refused, never downgraded to a bearer token.
    Disabled,
}

impl DpopMode {
    /// The name used in configuration: `allowed`, `required`, `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
            DpopMode::Disabled => "disabled",
        }
    }
}

impl fmt::Display for DpopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`DpopMode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown DPoP mode {0:?} (known: allowed, required, disabled)")]
pub struct UnknownDpopMode(String);

impl FromStr for DpopMode {
    type Err = UnknownDpopMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allowed" => Ok(DpopMode::Allowed),
            "required" => Ok(DpopMode::Required),
            "disabled" => Ok(DpopMode::Disabled),
            other => Err(UnknownDpopMode(other.chars().take(32).collect())),
        }
    }
}

impl<'de> Deserialize<'de> for DpopMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The rules DPoP proofs are checked by, and where seen proofs are remembered. Build it from
/// [`Default`] with the chained setters; every setting is checked when the authenticator is
/// built.
#[derive(Clone)]
#[must_use]
pub struct DpopSettings {
    pub(crate) max_age: Duration,
    pub(crate) max_future_skew: Duration,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) replay: Arc<dyn ReplayCache>,
    pub(crate) max_proof_bytes: usize,
    pub(crate) nonces: Option<Arc<nonce::Nonces>>,
    pub(crate) nonce_lifetime: Duration,
    nonce_secret: Option<Arc<[u8]>>,
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            replay: Arc::new(MemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY)),
            max_proof_bytes: DEFAULT_MAX_PROOF_BYTES,
            nonces: None,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            nonce_secret: None,
        }
    }
}

impl DpopSettings {
    /// Settings with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long after its `iat` a proof is accepted; also how long its `jti` is remembered.
    /// Defaults to 60 s.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How far in the future a proof's `iat` may be (clock skew). Defaults to 5 s.
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.max_future_skew = skew;
        self
    }

    /// The algorithms a proof may be signed with: public-key ones only (an HMAC or `none` proof
    /// proves nothing). Defaults to [`DEFAULT_ALGORITHMS`].
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Where seen proofs are remembered. Defaults to a [`MemoryReplayCache`] of
    /// [`DEFAULT_REPLAY_CAPACITY`] entries, private to this process: several instances of a
    /// service need a shared one ([`RedisReplayCache`], feature `redis`), or a proof replayed to
    /// another instance is accepted there.
    pub fn replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay = cache;
        self
    }

    /// The largest `DPoP` header accepted, in bytes. Defaults to 8 KiB.
    pub fn max_proof_bytes(mut self, bytes: usize) -> Self {
        self.max_proof_bytes = bytes;
        self
    }

    /// Requires a server nonce in every proof (RFC 9449 §8): a proof without one, or with one
    /// this service did not issue within [`nonce_lifetime`](Self::nonce_lifetime), gets 401
    /// `use_dpop_nonce` with a fresh `DPoP-Nonce` header, and the client retries with it. Limits
    /// proofs made in advance (by malware on the client) to the nonce's lifetime. Defaults to
    /// off.
    pub fn use_nonce(mut self, enabled: bool) -> Self {
        self.nonces = enabled.then(|| Arc::new(nonce::Nonces::placeholder()));
        // The key is made here, once, so that every authenticator given (a clone of) these
        // settings accepts the nonces the others issue.
        if enabled && self.nonce_secret.is_none() {
            self.nonce_secret = nonce::random_secret().map(Arc::from);
        }
        self
    }

    /// How long a nonce stays valid. Defaults to 5 minutes.
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// The key nonces are made with (at least 32 bytes). Instances behind one load balancer need
    /// the same key, so that a nonce one issued is accepted by the others. Defaults to a random
    /// key per process.
    pub fn nonce_secret(mut self, secret: &[u8]) -> Self {
        self.nonce_secret = Some(Arc::from(secret));
        self
    }

    /// Checks every setting; makes the nonce key. `key` prefixes the names in errors.
    pub(crate) fn checked(mut self, key: &str) -> Result<Self, ConfigError> {
        let at = |name: &str| {
            if key.is_empty() {
                name.to_owned()
            } else {
                format!("{key}.{name}")
            }
        };
        if self.max_age.is_zero() {
            return Err(ConfigError::new("max_age must be above zero").with_key(at("max_age")));
        }
        if self.max_proof_bytes == 0 {
            return Err(ConfigError::new("max_proof_bytes must be above zero")
                .with_key(at("max_proof_bytes")));
        }
        if self.algorithms.is_empty() {
            return Err(
                ConfigError::new("no proof algorithm is allowed").with_key(at("algorithms"))
            );
        }
        if let Some(alg) = self.algorithms.iter().find(|a| a.is_hmac()) {
            return Err(ConfigError::new(format!(
                "{alg} is a shared-secret algorithm: a DPoP proof must be signed with a private key"
            ))
            .with_key(at("algorithms")));
        }
        if self.nonces.is_some() {
            if self.nonce_lifetime.is_zero() {
                return Err(ConfigError::new("nonce_lifetime must be above zero")
                    .with_key(at("nonce_lifetime")));
            }
            let made = match &self.nonce_secret {
                Some(secret) if secret.len() < 32 => {
                    return Err(
                        ConfigError::new("the nonce secret must be at least 32 bytes")
                            .with_key(at("nonce_secret_file")),
                    );
                }
                Some(secret) => nonce::Nonces::new(secret, self.nonce_lifetime),
                None => return Err(ConfigError::new("no randomness for the DPoP nonce key")),
            };
            self.nonces = Some(Arc::new(made));
        }
        Ok(self)
    }

    /// The `DPoP` challenge's `algs` (RFC 9449 §7.1).
    pub(crate) fn algs_param(&self) -> String {
        let mut algs = String::new();
        for (i, alg) in self.algorithms.iter().enumerate() {
            if i > 0 {
                algs.push(' ');
            }
            algs.push_str(alg.as_str());
        }
        algs
    }
}

impl fmt::Debug for DpopSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopSettings")
            .field("max_age", &self.max_age)
            .field("max_future_skew", &self.max_future_skew)
            .field("algorithms", &self.algorithms)
            .field("replay", &self.replay)
            .field("max_proof_bytes", &self.max_proof_bytes)
            .field("use_nonce", &self.nonces.is_some())
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish_non_exhaustive()
    }
}
