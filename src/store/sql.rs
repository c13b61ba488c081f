//! What the SQL stores share: the migration bookkeeping, error mapping, and column encodings.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{StoreError, StoreErrorKind};
use crate::principal::SubjectKind;

/// One schema migration, embedded in the crate.
#[derive(Debug)]
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) description: &'static str,
    pub(super) sql: &'static str,
}

impl Migration {
    /// SHA-256 of the SQL text, recorded when the migration is applied so a database migrated by
    /// a build whose migration text differed is noticed instead of silently trusted.
    pub(super) fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

/// The migrations of `shipped` not yet in `applied` (`(version, checksum)` rows of the
/// `portcullis_migrations` table), in order.
///
/// portcullis records migrations in its own table rather than sqlx's `_sqlx_migrations`: the
/// database may be the host service's own, and a service running its own sqlx migrations there
/// would see ours as unknown versions, while we would take its version 1 for ours and skip our
/// schema.
///
/// `Invalid` if the database holds a version this build does not ship (a newer portcullis
/// migrated it) or a migration whose text differs from ours.
pub(super) fn pending<'m>(
    backend: &'static str,
    shipped: &'m [Migration],
    applied: &[(i64, Vec<u8>)],
) -> Result<Vec<&'m Migration>, StoreError> {
    let applied: BTreeMap<i64, &[u8]> = applied.iter().map(|(v, c)| (*v, c.as_slice())).collect();
    for (&version, checksum) in &applied {
        match shipped.iter().find(|m| m.version == version) {
            None => {
                return Err(StoreError::new(
                    StoreErrorKind::Invalid,
                    format!(
                        "{backend}: the database has schema version {version}, which this \
                         version of portcullis does not know; upgrade portcullis"
                    ),
                ));
            }
            Some(m) if m.checksum() != *checksum => {
                return Err(StoreError::new(
                    StoreErrorKind::Invalid,
                    format!(
                        "{backend}: schema migration {version} ({}) applied to the database \
                         differs from the one this version of portcullis ships",
                        m.description
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(shipped
        .iter()
        .filter(|m| !applied.contains_key(&m.version))
        .collect())
}

/// Maps a sqlx error to a [`StoreError`] whose message reads `{backend}: {context}: {reason}`.
///
/// Unique violations are `Conflict`; other constraint violations `Invalid`; a missing row
/// `NotFound`; a bad URL or option `Invalid`; everything else (I/O, timeouts, a full pool, a
/// busy or locked database, a server shutting down) `Unavailable`, which requests see as 503.
pub(super) fn db_error(
    backend: &'static str,
    context: impl fmt::Display,
    error: sqlx::Error,
) -> StoreError {
    use sqlx::error::ErrorKind;
    if let sqlx::Error::Database(db) = &error {
        let kind = match db.kind() {
            ErrorKind::UniqueViolation => StoreErrorKind::Conflict,
            ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => StoreErrorKind::Invalid,
            _ => StoreErrorKind::Unavailable,
        };
        let code = db.code().map(|c| format!(" ({c})")).unwrap_or_default();
        // The server's message only, and the database error is not kept as the source: a
        // PostgreSQL error's detail can quote the failing row, digest and password hash included,
        // and `Debug` of the source would print it.
        return StoreError::new(
            kind,
            format!("{backend}: {context}: {}{code}", db.message()),
        );
    }
    let kind = match &error {
        sqlx::Error::RowNotFound => StoreErrorKind::NotFound,
        sqlx::Error::Configuration(_) | sqlx::Error::InvalidArgument(_) => StoreErrorKind::Invalid,
        _ => StoreErrorKind::Unavailable,
    };
    StoreError::new(kind, format!("{backend}: {context}: {error}")).with_source(error)
}

/// Whether `error` is a unique-constraint violation (a taken name or id).
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `Ok` if an update touched a row, else the `NotFound` error `missing` builds.
pub(super) fn found(rows: u64, missing: impl FnOnce() -> StoreError) -> Result<(), StoreError> {
    if rows == 0 { Err(missing()) } else { Ok(()) }
}

// The messages below match the in-memory stores'.

pub(super) fn no_user(name: &str) -> StoreError {
    StoreError::new(StoreErrorKind::NotFound, format!("no user named `{name}`"))
}

pub(super) fn no_key(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("no API key with id `{id}`"),
    )
}

pub(super) fn user_taken(name: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!("user `{name}` already exists"),
    )
}

pub(super) fn key_taken(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!("API key id `{id}` is taken"),
    )
}

pub(super) fn not_rotatable(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!("API key `{id}` is revoked or already rotated"),
    )
}

/// A row the store cannot make sense of (corruption, or a write that bypassed portcullis).
pub(super) fn malformed(backend: &'static str, what: impl fmt::Display) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("{backend}: malformed row: {what}"),
    )
}

/// A list of names as the JSON array stored in a `groups` or `scopes` column.
pub(super) fn encode_list(list: &[String]) -> String {
    // Serializing strings into a `String` cannot fail: serde_json only fails on I/O errors,
    // non-string map keys and failing `Serialize` impls, none of which a `[String]` has.
    serde_json::to_string(list).expect("a list of strings serializes to JSON")
}

/// A `groups` or `scopes` column back into a list; `what` names the row for the error.
pub(super) fn decode_list(
    backend: &'static str,
    what: impl fmt::Display,
    json: &str,
) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json)
        .map_err(|_| malformed(backend, format_args!("{what}: not a JSON list")))
}

/// How a [`SubjectKind`] is spelled in a `kind` or `owner_kind` column (as in JSON).
pub(super) fn kind_str(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::User => "user",
        SubjectKind::Application => "application",
    }
}

/// A `kind` or `owner_kind` column back into a [`SubjectKind`].
pub(super) fn parse_kind(
    backend: &'static str,
    what: impl fmt::Display,
    kind: &str,
) -> Result<SubjectKind, StoreError> {
    match kind {
        "user" => Ok(SubjectKind::User),
        "application" => Ok(SubjectKind::Application),
        _ => Err(malformed(backend, format_args!("{what}: unknown kind"))),
    }
}

/// The latest use of each key in `uses`, one entry per id, sorted by id.
///
/// Sorting gives concurrent flushes from several instances the same row-lock order, so two
/// batches touching the same keys cannot deadlock in PostgreSQL.
pub(super) fn latest_uses(uses: &[(String, DateTime<Utc>)]) -> Vec<(&str, DateTime<Utc>)> {
    let mut latest: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for (id, at) in uses {
        latest
            .entry(id.as_str())
            .and_modify(|t| *t = (*t).max(*at))
            .or_insert(*at);
    }
    latest.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &[Migration] = &[
        Migration {
            version: 1,
            description: "init",
            sql: "CREATE TABLE a (x INTEGER);",
        },
        Migration {
            version: 2,
            description: "more",
            sql: "CREATE TABLE b (x INTEGER);",
        },
    ];

    #[test]
    fn pending_migrations_skip_applied_ones_and_refuse_strangers() {
        let all = pending("test", SHIPPED, &[]).unwrap();
        assert_eq!(all.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2]);
        let rest = pending("test", SHIPPED, &[(1, SHIPPED[0].checksum())]).unwrap();
        assert_eq!(rest.iter().map(|m| m.version).collect::<Vec<_>>(), [2]);

        let newer = pending("test", SHIPPED, &[(3, vec![0; 32])]).unwrap_err();
        assert_eq!(newer.kind(), StoreErrorKind::Invalid);
        assert!(newer.to_string().contains("schema version 3"), "{newer}");
        let changed = pending("test", SHIPPED, &[(1, vec![0; 32])]).unwrap_err();
        assert_eq!(changed.kind(), StoreErrorKind::Invalid);
    }

    #[test]
    fn lists_and_kinds_round_trip() {
        let list = vec!["a".to_owned(), "b \"c\"".to_owned()];
        assert_eq!(decode_list("test", "x", &encode_list(&list)).unwrap(), list);
        assert!(decode_list("test", "x", "{").is_err());
        for kind in [SubjectKind::User, SubjectKind::Application] {
            assert_eq!(parse_kind("test", "x", kind_str(kind)).unwrap(), kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind_str(kind))
            );
        }
        assert!(parse_kind("test", "x", "robot").is_err());
    }

    #[test]
    fn latest_uses_keeps_one_latest_time_per_id_in_id_order() {
        let now = Utc::now();
        let earlier = now - chrono::TimeDelta::seconds(5);
        let uses = vec![
            ("b".to_owned(), earlier),
            ("a".to_owned(), earlier),
            ("b".to_owned(), now),
        ];
        assert_eq!(latest_uses(&uses), [("a", earlier), ("b", now)]);
    }

    #[test]
    fn row_not_found_is_not_found_and_pool_timeouts_are_unavailable() {
        assert_eq!(
            db_error("test", "x", sqlx::Error::RowNotFound).kind(),
            StoreErrorKind::NotFound
        );
        let timeout = db_error("test", "find user `a`", sqlx::Error::PoolTimedOut);
        assert_eq!(timeout.kind(), StoreErrorKind::Unavailable);
        assert!(
            timeout.to_string().starts_with("test: find user `a`: "),
            "{timeout}"
        );
    }
}
