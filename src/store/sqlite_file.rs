//! Which missing file a SQLite store URL names: configuration checks and the `portcullis` command
//! ask before opening a store, because opening a SQLite store creates its file.
//!
//! Not part of the API: the `portcullis` command compiles this same file into itself
//! (`#[path]`), so the library and the command agree on what counts as missing.

use std::path::PathBuf;

/// The file a `sqlite:` URL names, if it does not exist yet. `None` for other stores, for an
/// in-memory SQLite database, for a URL that does not parse (opening it reports why), and
/// without the `sqlite` feature.
#[cfg(feature = "sqlite")]
pub(crate) fn missing_sqlite_file(url: &str) -> Option<PathBuf> {
    use std::str::FromStr as _;

    let is_sqlite = url
        .get(.."sqlite:".len())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("sqlite:"));
    if !is_sqlite
        || url
            .split('?')
            .next()
            .is_some_and(|u| u.ends_with(":memory:"))
    {
        return None;
    }
    // Parsed as `SqliteStore::open` parses it, so both agree on the path.
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.exists()).then(|| path.to_owned())
}

/// Without the `sqlite` feature no URL opens a SQLite store, so none names a missing file.
#[cfg(not(feature = "sqlite"))]
pub(crate) fn missing_sqlite_file(_url: &str) -> Option<PathBuf> {
    None
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn only_a_sqlite_file_that_is_not_there_is_missing() {
        let dir = std::env::temp_dir();
        let absent = dir.join(format!("portcullis-absent-{}.db", std::process::id()));
        let url = format!("sqlite://{}", absent.display());
        assert_eq!(missing_sqlite_file(&url), Some(absent.clone()));
        assert_eq!(
            missing_sqlite_file(&format!("sqlite:{}?mode=rwc", absent.display())),
            Some(absent)
        );
        let present = std::env::current_exe().unwrap();
        assert_eq!(
            missing_sqlite_file(&format!("sqlite://{}", present.display())),
            None
        );
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:?cache=shared",
            "memory",
            "postgres://localhost/test",
        ] {
            assert_eq!(missing_sqlite_file(url), None, "{url}");
        }
    }
}
