//! Secret newtypes: redacted `Debug`, no `PartialEq`, constant-time comparison, wiped on drop.
//!
//! A secret is reached only through [`SecretString::expose_secret`], so every place that reads one
//! is easy to find, and no `{:?}` in a log line can print it.
//!
//! Wiping covers the bytes these types own (with `zeroize`, which the optimiser cannot remove).
//! It does not reach copies made elsewhere: by the caller before wrapping, by the HTTP stack
//! (headers, bodies), by a library a secret is handed to (argon2, HMAC, TLS), or by the OS (swap).

use std::fmt;
#[cfg(feature = "api-key")]
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A string that must never be logged: a password, an API key, a token.
///
/// `Debug` prints `SecretString([redacted])`; there is no `Display` and no `PartialEq`. Compare
/// with [`SecretString::ct_eq`], which takes the same time wherever the inputs differ.
/// Its bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret. A `String` is taken as it is (no copy); a `&str` is copied, and the
    /// caller's copy stays the caller's to wipe.
    pub fn new(secret: impl Into<String>) -> Self {
        // Kept as a `String`: shrinking it into a `Box<str>` could move it and leave the old
        // buffer unwiped.
        Self(secret.into())
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

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
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
/// Its bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string. The format is checked when it is verified, not here.
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
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

impl Drop for PasswordHash {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// Reads a secret file (a pepper, an HMAC key, a client secret or token) into a `SecretString`,
/// by the one rule every secret file follows (see [`crate::secret_file::read_secret_file`]: the
/// trailing line endings go, and an empty secret is an error). Warns first if the file is
/// readable by its group or by everyone. `what` names the file in the warning.
#[cfg(feature = "api-key")]
pub(crate) fn read_secret_file(path: &Path, what: &str) -> std::io::Result<SecretString> {
    crate::secret_file::read_secret_file(path, what).map(SecretString)
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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

    /// A pepper, HMAC key or client-secret file others can read is reported at WARN on the
    /// audit target, with its mode; one only its owner can read is not.
    #[cfg(all(unix, feature = "api-key"))]
    #[test]
    fn secret_files_readable_by_others_are_warned_about() {
        use std::os::unix::fs::PermissionsExt as _;
        // The shared reader spells the audit target out (the command compiles it alone).
        assert_eq!(crate::secret_file::AUDIT_TARGET, crate::audit::TARGET);
        let logs = crate::audit::CapturedLogs::start();

        let dir = std::env::temp_dir().join(format!("portcullis-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shared = dir.join("shared-pepper");
        let private = dir.join("private-pepper");
        for (path, mode) in [(&shared, 0o644), (&private, 0o600)] {
            std::fs::write(path, "pepper pepper pepper pepper pepper\n").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let secret = read_secret_file(&shared, "API key pepper").unwrap();
        assert_eq!(secret.expose_secret(), "pepper pepper pepper pepper pepper");
        read_secret_file(&private, "API key pepper").unwrap();
        let logs = logs.text();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(logs.lines().count(), 1, "{logs}");
        assert!(logs.contains("WARN"), "{logs}");
        assert!(logs.contains("portcullis::audit"), "{logs}");
        assert!(logs.contains("secret_file_readable"), "{logs}");
        assert!(
            logs.contains("shared-pepper") && logs.contains("0644"),
            "{logs}"
        );
        assert!(!logs.contains("pepper pepper"), "never the secret: {logs}");
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
