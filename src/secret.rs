//! Secret newtypes: redacted `Debug`, no `PartialEq`, constant-time comparison.
//!
//! A secret is reached only through [`SecretString::expose_secret`], so every place that reads one
//! is easy to find, and no `{:?}` in a log line can print it.

use std::fmt;

use subtle::ConstantTimeEq;

/// A string that must never be logged: a password, an API key, a token.
///
/// `Debug` prints `SecretString([redacted])`; there is no `Display` and no `PartialEq`. Compare
/// with [`SecretString::ct_eq`], which takes the same time wherever the inputs differ.
#[derive(Clone)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_boxed_str())
    }

    /// The secret itself. Name the reason at every call site.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with `other` (the length is not hidden).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), other)
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// An argon2id PHC string as stored for a user (`$argon2id$v=19$m=…`).
///
/// Not a secret in the way a password is, but it is offline-attackable, so it is kept out of logs too.
#[derive(Clone)]
pub struct PasswordHash(Box<str>);

impl PasswordHash {
    /// Wraps a PHC string. The format is checked when it is verified, not here.
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into().into_boxed_str())
    }

    /// The PHC string, for storing.
    pub fn expose_phc(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with another stored hash.
    pub fn ct_eq(&self, other: &PasswordHash) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "SecretString([redacted])");
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        assert_eq!(format!("{hash:?}"), "PasswordHash([redacted])");
    }

    #[test]
    fn comparison_is_exact() {
        let secret = SecretString::new("hunter2");
        assert!(secret.ct_eq(b"hunter2"));
        assert!(!secret.ct_eq(b"hunter3"));
        assert!(!secret.ct_eq(b"hunter"));
        assert!(!secret.ct_eq(b""));
    }
}
