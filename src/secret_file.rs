//! Secrets read from files (an API-key pepper, an HMAC key, a client secret or token): one rule
//! for every file the library or the `portcullis` command reads a secret from.
//!
//! Not part of the API: the `portcullis` command compiles this same file into itself
//! (`#[path]`), so the command and a service read the same file as the same secret.

use std::path::Path;

/// The audit target of the warning (`crate::audit::TARGET`, spelled out so the command, which
/// compiles this file alone, can use it too).
pub(crate) const AUDIT_TARGET: &str = "portcullis::audit";

/// Reads the secret in the file at `path`: its text without the line endings at its end.
///
/// **The newline rule.** Every `\n` and `\r` at the end of the file is dropped (editors, `echo`
/// and heredocs add them, and a pepper that changed with them would change every key digest);
/// everything else is the secret, white space at the start, inside or before the line endings
/// included. A file with nothing else is an error (`InvalidData`), as is one that is not UTF-8.
///
/// Warns first (see [`warn_if_readable_by_others`]) when others may read the file. `what` names
/// the file in that warning.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> std::io::Result<String> {
    warn_if_readable_by_others(path, what);
    let mut text = std::fs::read_to_string(path)?;
    let keep = text.trim_end_matches(['\r', '\n']).len();
    // Truncated in place, not copied, so the caller's copy is the only one; the cut line endings
    // are not secret.
    text.truncate(keep);
    if text.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} holds no secret", path.display()),
        ));
    }
    Ok(text)
}

/// Logs a warning (`WARN`, target `portcullis::audit`, `event = "secret_file_readable"`) when
/// the file at `path` can be read by its group or by everyone: anyone else on the machine (or in
/// the container image's other processes) could then read the secret. Unix only; a file that
/// cannot be inspected is left to the read that follows.
fn warn_if_readable_by_others(path: &Path, what: &str) {
    if let Some(mode) = readable_by_others(path) {
        tracing::warn!(
            target: AUDIT_TARGET,
            event = "secret_file_readable",
            file = %path.display(),
            mode = %format_args!("{mode:04o}"),
            "the {what} file {} is readable by group or others (mode {mode:04o}): make it 0400 or \
             0600 (in Kubernetes, `defaultMode: 0400` on the secret volume)",
            path.display()
        );
    }
}

/// The permission bits of `path` if its group or everyone may read it.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, content: &[u8]) -> std::io::Result<String> {
        let dir =
            std::env::temp_dir().join(format!("portcullis-secret-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let read = read_secret_file(&path, "test");
        let _ = std::fs::remove_file(&path);
        read
    }

    #[test]
    fn trailing_line_endings_go_and_everything_else_stays() {
        for (content, secret) in [
            (&b"s3cret"[..], "s3cret"),
            (b"s3cret\n", "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret\n\n\r\n", "s3cret"),
            (b" s3 cret \n", " s3 cret "),
            (b"line one\nline two\n", "line one\nline two"),
            (b"\ts3cret\t", "\ts3cret\t"),
        ] {
            let name = format!("secret-{}", secret.len());
            assert_eq!(read(&name, content).unwrap(), secret, "{content:?}");
        }
    }

    #[test]
    fn an_empty_or_unreadable_file_is_an_error() {
        for content in [&b""[..], b"\n", b"\r\n\n"] {
            let err = read("empty", content).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{content:?}");
            assert!(err.to_string().contains("holds no secret"), "{err}");
        }
        assert_eq!(
            read("not-utf8", b"\xff\xfe\n").unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        let missing = std::env::temp_dir().join("portcullis-no-such-secret-file");
        assert_eq!(
            read_secret_file(&missing, "test").unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
