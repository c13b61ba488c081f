//! Errors outside the request path: bad setup ([`ConfigError`]) and store failures ([`StoreError`]).

use std::fmt;

/// A setup mistake, reported when the Gate or an authenticator is built, never at request time.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// A configuration error with a message that names the setting at fault.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// What kind of store failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or did not answer in time. Requests get 503.
    Unavailable,
    /// The record does not exist.
    NotFound,
    /// The record already exists, or changed under a conditional update.
    Conflict,
    /// The input is not acceptable (a name too long, a bad value).
    Invalid,
    /// The store is full (a bounded in-memory table under attack). Requests get 503.
    CapacityExceeded,
}

/// A store failure. The message is for operators; it never holds a secret.
#[derive(Debug, thiserror::Error)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A store error of `kind`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
