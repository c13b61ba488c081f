//! API keys: the key format, issuing and lifecycle ([`ApiKeys`]), and the
//! [`ApiKeyAuthenticator`].
//!
//! A key looks like `pc_3kTMd9Q2xLbR_<43 base62 chars><6-char checksum>` ([`KeyFormat`]): a
//! prefix for secret scanners, a public id for lookup, a 256-bit secret, and a CRC32 so a typo is
//! refused without a store lookup. The store keeps only HMAC-SHA256 of the secret under a
//! server-side pepper ([`ApiKeys::builder`]), so the whole key exists only in the [`IssuedKey`]
//! returned once at creation.
//!
//! Order of work for a request: find the key (header, `Bearer`, or an opted-in query parameter;
//! two places → 400), parse it (bad shape or checksum → 401, no lookup), look the id up (cache,
//! then store; store down → 503), compute the keyed hash and compare in constant time (an unknown
//! id is compared against a dummy, so it costs the same), then check revocation and expiry (each
//! its own reason in the audit log), and for a self-served key its owner (read from
//! [`ApiKeysBuilder::owners`] with the key, cached with it: disabled or missing → 401; the
//! owner's groups are the principal's). Success records the use in memory; `last_used_at` is
//! written in batches.
//!
//! **Why HMAC-SHA256** for the stored hash, not argon2 as for passwords: the secret has 256 bits of
//! entropy, so a slow hash protects nothing and would cost more than the request. HMAC-SHA256 is
//! standard (RFC 2104, FIPS 198-1), costs the same for every input, and the pepper, kept out of
//! the database, makes a stolen database useless on its own.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use portcullis::{ApiKeys, Gate, NewApiKey, RequestView};
//! use portcullis::store::MemoryApiKeyStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = ApiKeys::builder(
//!     Arc::new(MemoryApiKeyStore::new()),
//!     "a server-side pepper of at least 32 bytes".into(),
//! )
//! .max_lifetime(Duration::from_secs(90 * 86_400))
//! .build()?;
//! let gate = Gate::builder().authenticator(keys.authenticator()).build()?;
//!
//! let issued = keys
//!     .create(NewApiKey::new("alice").with_expires_in(Duration::from_secs(30 * 86_400)))
//!     .await?;
//! // Shown once: hand `issued.key()` to its owner now.
//! let request = http::Request::get("/reports")
//!     .header("x-api-key", issued.key().expose_secret())
//!     .body(())?;
//! let (parts, ()) = request.into_parts();
//! let principal = gate.check(&RequestView::from_parts(&parts)).await?.expect("authenticated");
//! assert_eq!(principal.subject(), "alice");
//! assert_eq!(principal.credential_id(), Some(issued.id()));
//!
//! keys.revoke(issued.id()).await?; // refused from now on, on this instance
//! assert!(gate.check(&RequestView::from_parts(&parts)).await.is_err());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

mod authenticator;
mod cache;
mod digest;
// `ApiKeys` and `NewApiKey` are re-exported at the crate root, their one public path.
pub(crate) mod manager;
pub(crate) mod new_key;

pub use crate::key_format::{
    CHECKSUM_LEN, DEFAULT_PREFIX, GeneratedKey, ID_LEN, KeyFormat, KeyFormatError, MAX_PREFIX_LEN,
    ParsedKey, SECRET_LEN,
};
pub use authenticator::{ApiKeyAuthenticator, ApiKeyAuthenticatorBuilder, DEFAULT_HEADER};
pub use digest::MIN_PEPPER_LEN;
pub use manager::ApiKeysBuilder;

pub(crate) use manager::ApiKeys;
pub(crate) use new_key::NewApiKey;

use crate::store::ApiKeyRecord;

use crate::error::StoreError;
use crate::secret::SecretString;

/// The longest owner, name, scope or group accepted, in bytes.
const MAX_FIELD_LEN: usize = 256;
/// The most scopes, or groups, one key may carry.
const MAX_LIST_LEN: usize = 256;

/// A key just created or rotated: the whole key, to show its owner once, and its record.
///
/// Not `Clone`, and `Debug` redacts the key: keep it no longer than it takes to hand it over.
#[derive(Debug)]
pub struct IssuedKey {
    key: SecretString,
    record: ApiKeyRecord,
}

impl IssuedKey {
    /// The whole key, as the client will present it.
    pub fn key(&self) -> &SecretString {
        &self.key
    }

    /// The key's public id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The stored record.
    pub fn record(&self) -> &ApiKeyRecord {
        &self.record
    }

    /// The whole key and the record.
    pub fn into_parts(self) -> (SecretString, ApiKeyRecord) {
        (self.key, self.record)
    }
}

/// Why a key operation failed.
///
/// `Display` includes the store's message; [`source`](std::error::Error::source) is `None`, as
/// for every error type in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The store failed or refused.
    #[error("API key store: {0}")]
    Store(StoreError),
    /// No expiry was given, and non-expiring keys are not allowed.
    #[error("an expiry is required: non-expiring API keys are not allowed")]
    ExpiryRequired,
    /// The requested lifetime is longer than the configured maximum.
    #[error(
        "the requested lifetime of {} exceeds the maximum API key lifetime of {} (max_lifetime)",
        HumanDuration(*.requested),
        HumanDuration(*.cap)
    )]
    LifetimeExceedsCap {
        /// The lifetime asked for.
        requested: Duration,
        /// The configured maximum.
        cap: Duration,
    },
    /// There is no key with this id.
    #[error("no API key with id `{0}`")]
    NotFound(String),
    /// The key is revoked.
    #[error("API key `{0}` is revoked")]
    Revoked(String),
    /// The key has expired.
    #[error("API key `{0}` has expired; create a new one")]
    Expired(String),
    /// The key was already rotated; rotate its successor instead.
    #[error("API key `{id}` was already rotated to `{replaced_by}`")]
    AlreadyRotated {
        /// The key asked for.
        id: String,
        /// Its successor.
        replaced_by: String,
    },
    /// The request is not acceptable (an empty owner, a scope with a space; for a self-served
    /// key, groups or an application owner).
    #[error("invalid API key request: {0}")]
    Invalid(String),
    /// An active self-served key of this owner already has this name
    /// ([`ApiKeys::create_self_served`]); revoking it, or its expiry, frees the name.
    #[error("an active self-served API key of this owner already has this name")]
    NameTaken,
    /// The owner already has as many active self-served keys as allowed
    /// ([`ApiKeys::create_self_served`]).
    #[error("too many API keys: at most {limit} active self-served keys per owner")]
    TooManyKeys {
        /// The most active self-served keys an owner may have.
        limit: usize,
    },
}

/// A duration in the units an operator would write: `90d`, `1d12h`, `30m`, `45s`.
struct HumanDuration(Duration);

// Written out rather than `#[from]`, which would also make the store error the `source` that
// `Display` already shows.
impl From<StoreError> for ApiKeyError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        if secs == 0 {
            return write!(f, "{}ms", self.0.as_millis());
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
