//! Errors outside the request path: bad setup ([`ConfigError`]) and store failures ([`StoreError`]).

use std::fmt;

/// A setup mistake, reported when the Gate or an authenticator is built, never at request time.
///
/// Errors from a configuration file name the file, line, column and key at fault:
/// `portcullis.toml:12:8: routes[1].policy: unknown policy \`admins\``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
    key: Option<String>,
    location: Option<Location>,
}

/// Where in a configuration file an error is: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The file, when the configuration came from one.
    pub file: Option<std::path::PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl ConfigError {
    /// A configuration error with a message that names the setting at fault.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            key: None,
            location: None,
        }
    }

    /// Names the key at fault (`routes[1].policy`).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The key as a file names it: a builder names its own setting (`max_kid_len`), and
    /// configuration puts it in the section that builder reads (`jwt.max_kid_len`).
    #[cfg(any(feature = "jwt", feature = "introspection", feature = "self-service"))]
    pub(crate) fn in_section(mut self, section: &str) -> Self {
        self.key = self.key.map(|key| format!("{section}.{key}"));
        self
    }

    /// Sets where in the file the error is.
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// The message, without file, line or key.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The key at fault, when known.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Where the error is, when it came from a file or string.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            if let Some(file) = &location.file {
                write!(f, "{}:", file.display())?;
            }
            write!(f, "{}:{}: ", location.line, location.column)?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

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
    /// A self-served API key's name is already used by an active self-served key of the same
    /// owner ([`ApiKeyStore::insert_self_served`](crate::store::ApiKeyStore::insert_self_served)).
    NameTaken,
    /// The owner already has as many active self-served API keys as allowed
    /// ([`ApiKeyStore::insert_self_served`](crate::store::ApiKeyStore::insert_self_served)).
    LimitReached,
    /// The store does not implement this operation (a custom store that predates it).
    Unsupported,
}

/// A store failure. The message is for operators; it never holds a secret.
///
/// Like every error type in this crate, its `Display` says everything, the underlying error's
/// message included, and [`source`](std::error::Error::source) is `None` (see
/// [`with_source`](Self::with_source)).
#[derive(Debug, thiserror::Error)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// A store error of `kind`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Adds the underlying error's message to this one's (`{message}: {source}`). The error
    /// itself is not kept, so [`source`](std::error::Error::source) stays `None` and `Debug`
    /// never prints what a foreign error's `Debug` would (a database error's can quote the row).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error) -> Self {
        use std::fmt::Write as _;
        let _ = write!(self.message, ": {source}");
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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The crate's one error convention: `Display` says everything, `source()` is `None`.
    #[test]
    fn display_holds_the_cause_and_source_is_none() {
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "pool timed out");
        let error = StoreError::new(StoreErrorKind::Unavailable, "sqlite: find user `a`")
            .with_source(cause);
        assert_eq!(error.to_string(), "sqlite: find user `a`: pool timed out");
        assert!(error.source().is_none());
    }
}
