//! What the SQL stores share: the migration bookkeeping, error mapping, and column encodings.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{StoreError, StoreErrorKind};
use crate::principal::SubjectKind;

/// The first key of PostgreSQL's per-owner advisory lock around `insert_self_served` (the
/// second is a hash of the owner): the bytes of `"pcss"`. Bound, unused, in SQLite.
pub(super) const SELF_SERVED_LOCK: i32 = i32::from_be_bytes(*b"pcss");

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
    StoreError::new(kind, format!("{backend}: {context}")).with_source(error)
}

/// Whether `error` is a unique-constraint violation (a taken name or id).
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `error` is a violation of the unique index on an owner's active self-served key
/// names (`api_keys_self_served_name`), rather than of a primary key. PostgreSQL names the
/// index; SQLite names the columns (`UNIQUE constraint failed: api_keys.owner, api_keys.name`).
pub(super) fn is_name_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation()
        && (db.constraint() == Some("api_keys_self_served_name")
            || db.message().contains("api_keys.name")))
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

/// The [`UserStore`](super::UserStore) and [`ApiKeyStore`](super::ApiKeyStore) implementations
/// of a SQL store, written once for both dialects.
///
/// Both dialects take `$1`, `$2`, … placeholders (sqlx numbers SQLite's `$N` parameters as
/// PostgreSQL does), `RETURNING`, `coalesce` and `CASE`, and read a JSON list column as text with
/// `CAST(… AS TEXT)`. What differs is passed in or defined beside the store, where the one
/// dialect says it:
///
/// - `jsonb`: what follows a placeholder bound to a `groups` or `scopes` column (`"::jsonb"` for
///   PostgreSQL, whose lists are JSONB; `""` for SQLite, whose lists are text);
/// - `watch`: an optional function that watches key changes
///   ([`ApiKeyStore::watch_changes`](super::ApiKeyStore::watch_changes));
/// - in the invoking module: `BACKEND` (the name errors start with), `BEGIN_WRITE` (the statement
///   that begins a write transaction), `MIGRATIONS` and `MIGRATIONS_TABLE` (the bookkeeping
///   table's DDL), `LOCK_OWNER` (the statement, if any, that serializes `insert_self_served`
///   per owner, bound to [`SELF_SERVED_LOCK`] and the owner), the column type `Time` with
///   `to_time` and `from_time`, and the store's
///   `record_uses` method (the batch of [`ApiKeyStore::touch_last_used`](super::ApiKeyStore::touch_last_used),
///   one statement in PostgreSQL, one per key in SQLite).
///
/// A macro rather than generic code over `sqlx::Database`: each expansion is checked against its
/// concrete driver, so no higher-ranked `Executor` bounds (and their `Send` inference failures)
/// are needed.
macro_rules! sql_store {
    ($store:ty, $db:ty, jsonb = $jsonb:literal $(, watch = $watch:path)?) => {
        impl $crate::store::UserStore for $store {
            fn find_user<'a>(
                &'a self,
                name: &'a str,
            ) -> $crate::BoxFuture<'a, Result<Option<$crate::store::UserRecord>, StoreError>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        $crate::store::sql::user_columns!(),
                        " FROM users WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| sql::db_error(BACKEND, format_args!("find user `{name}`"), e))?;
                    row.as_ref().map(user_from_row).transpose()
                })
            }

            fn create_user(
                &self,
                user: $crate::store::UserRecord,
            ) -> $crate::BoxFuture<'_, Result<(), StoreError>> {
                Box::pin(async move {
                    sqlx::query(concat!(
                        "INSERT INTO users (name, password_hash, kind, groups, disabled, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4",
                        $jsonb,
                        ", $5, $6, $7)"
                    ))
                    .bind(&user.name)
                    .bind(user.password_hash.expose_phc())
                    .bind(sql::kind_str(user.kind))
                    .bind(sql::encode_list(&user.groups))
                    .bind(user.disabled)
                    .bind(to_time(user.created_at))
                    .bind(to_time(user.updated_at))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if sql::is_unique_violation(&e) {
                            sql::user_taken(&user.name)
                        } else {
                            sql::db_error(BACKEND, format_args!("create user `{}`", user.name), e)
                        }
                    })?;
                    Ok(())
                })
            }

            fn set_password_hash<'a>(
                &'a self,
                name: &'a str,
                hash: $crate::store::PasswordHash,
            ) -> $crate::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE name = $3",
                    )
                    .bind(hash.expose_phc())
                    .bind(to_time(chrono::Utc::now()))
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        sql::db_error(BACKEND, format_args!("set the password of `{name}`"), e)
                    })?;
                    sql::found(done.rows_affected(), || sql::no_user(name))
                })
            }

            fn replace_password_hash<'a>(
                &'a self,
                name: &'a str,
                expected: &'a $crate::store::PasswordHash,
                hash: $crate::store::PasswordHash,
            ) -> $crate::BoxFuture<'a, Result<bool, StoreError>> {
                Box::pin(async move {
                    let err =
                        |e| sql::db_error(BACKEND, format_args!("upgrade the hash of `{name}`"), e);
                    // A rehash is not a password change, so `updated_at` stays.
                    let done = sqlx::query(
                        "UPDATE users SET password_hash = $1 WHERE name = $2 AND password_hash = $3",
                    )
                    .bind(hash.expose_phc())
                    .bind(name)
                    .bind(expected.expose_phc())
                    .execute(&self.pool)
                    .await
                    .map_err(err)?;
                    if done.rows_affected() > 0 {
                        return Ok(true);
                    }
                    let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(err)?;
                    match exists {
                        Some(_) => Ok(false),
                        None => Err(sql::no_user(name)),
                    }
                })
            }

            fn set_disabled<'a>(
                &'a self,
                name: &'a str,
                disabled: bool,
            ) -> $crate::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE users SET disabled = $1, updated_at = $2 WHERE name = $3",
                    )
                    .bind(disabled)
                    .bind(to_time(chrono::Utc::now()))
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| sql::db_error(BACKEND, format_args!("disable `{name}`"), e))?;
                    sql::found(done.rows_affected(), || sql::no_user(name))
                })
            }

            fn list_users(
                &self,
            ) -> $crate::BoxFuture<'_, Result<Vec<$crate::store::UserRecord>, StoreError>> {
                Box::pin(async move {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        $crate::store::sql::user_columns!(),
                        " FROM users ORDER BY name"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| sql::db_error(BACKEND, "list users", e))?;
                    rows.iter().map(user_from_row).collect()
                })
            }

            fn ping(&self) -> $crate::BoxFuture<'_, Result<(), StoreError>> {
                Box::pin(async move {
                    sqlx::query("SELECT 1 FROM users LIMIT 1")
                        .fetch_optional(&self.pool)
                        .await
                        .map(|_| ())
                        .map_err(|e| sql::db_error(BACKEND, "ping users", e))
                })
            }
        }

        impl $crate::store::ApiKeyStore for $store {
            fn ping(&self) -> $crate::BoxFuture<'_, Result<(), StoreError>> {
                Box::pin(async move {
                    sqlx::query("SELECT 1 FROM api_keys LIMIT 1")
                        .fetch_optional(&self.pool)
                        .await
                        .map(|_| ())
                        .map_err(|e| sql::db_error(BACKEND, "ping API keys", e))
                })
            }

            fn insert(
                &self,
                record: $crate::store::ApiKeyRecord,
            ) -> $crate::BoxFuture<'_, Result<(), StoreError>> {
                Box::pin(async move { insert_key(&self.pool, &record).await })
            }

            fn find<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::BoxFuture<'a, Result<Option<$crate::store::ApiKeyRecord>, StoreError>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        $crate::store::sql::key_columns!(),
                        " FROM api_keys WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| sql::db_error(BACKEND, format_args!("find API key `{id}`"), e))?;
                    row.as_ref().map(key_from_row).transpose()
                })
            }

            fn list<'a>(
                &'a self,
                owner: Option<&'a str>,
            ) -> $crate::BoxFuture<'a, Result<Vec<$crate::store::ApiKeyRecord>, StoreError>> {
                Box::pin(async move {
                    let query = match owner {
                        Some(owner) => sqlx::query(concat!(
                            "SELECT ",
                            $crate::store::sql::key_columns!(),
                            " FROM api_keys WHERE owner = $1 ORDER BY created_at, id"
                        ))
                        .bind(owner),
                        None => sqlx::query(concat!(
                            "SELECT ",
                            $crate::store::sql::key_columns!(),
                            " FROM api_keys ORDER BY created_at, id"
                        )),
                    };
                    let rows = query
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| sql::db_error(BACKEND, "list API keys", e))?;
                    rows.iter().map(key_from_row).collect()
                })
            }

            fn revoke<'a>(
                &'a self,
                id: &'a str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::BoxFuture<'a, Result<$crate::store::ApiKeyRecord, StoreError>> {
                Box::pin(async move {
                    // One statement: the first revocation time stays, and no read-then-write race.
                    let row = sqlx::query(concat!(
                        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 \
                         RETURNING ",
                        $crate::store::sql::key_columns!()
                    ))
                    .bind(to_time(at))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| {
                        sql::db_error(BACKEND, format_args!("revoke API key `{id}`"), e)
                    })?;
                    match row {
                        Some(row) => key_from_row(&row),
                        None => Err(sql::no_key(id)),
                    }
                })
            }

            fn set_expires_at<'a>(
                &'a self,
                id: &'a str,
                expires_at: Option<chrono::DateTime<chrono::Utc>>,
            ) -> $crate::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    let done = sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
                        .bind(expires_at.map(to_time))
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| {
                            sql::db_error(
                                BACKEND,
                                format_args!("set the expiry of API key `{id}`"),
                                e,
                            )
                        })?;
                    sql::found(done.rows_affected(), || sql::no_key(id))
                })
            }

            fn rotate<'a>(
                &'a self,
                old_id: &'a str,
                old_expires_by: chrono::DateTime<chrono::Utc>,
                new: $crate::store::ApiKeyRecord,
            ) -> $crate::BoxFuture<'a, Result<$crate::store::ApiKeyRecord, StoreError>> {
                Box::pin(async move {
                    let err =
                        |e| sql::db_error(BACKEND, format_args!("rotate API key `{old_id}`"), e);
                    // Any early return drops `tx`, which rolls back: the new key is never left
                    // behind.
                    let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(err)?;
                    // The old key is marked rotated before the new one is inserted: a
                    // self-served pair shares a name, which the unique index allows only once
                    // the old one no longer holds it.
                    // The conditions are checked on the locked row, so of two instances rotating
                    // one key at once, exactly one updates it. A NULL expiry becomes the bound.
                    let row = sqlx::query(concat!(
                        "UPDATE api_keys SET replaced_by = $1, expires_at = CASE WHEN expires_at \
                         IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END \
                         WHERE id = $3 AND revoked_at IS NULL AND replaced_by IS NULL RETURNING ",
                        $crate::store::sql::key_columns!()
                    ))
                    .bind(&new.id)
                    .bind(to_time(old_expires_by))
                    .bind(old_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err)?;
                    let Some(row) = row else {
                        let exists = sqlx::query("SELECT 1 FROM api_keys WHERE id = $1")
                            .bind(old_id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(err)?;
                        return Err(match exists {
                            Some(_) => sql::not_rotatable(old_id),
                            None => sql::no_key(old_id),
                        });
                    };
                    let old = key_from_row(&row)?;
                    insert_key(&mut *tx, &new).await?;
                    tx.commit().await.map_err(err)?;
                    Ok(old)
                })
            }

            fn insert_self_served(
                &self,
                record: $crate::store::ApiKeyRecord,
                max_active: usize,
            ) -> $crate::BoxFuture<'_, Result<(), StoreError>> {
                Box::pin(async move {
                    if !record.self_served {
                        return Err($crate::store::api_keys::not_self_served(&record.id));
                    }
                    let owner = record.owner.as_str();
                    let err = |e| {
                        sql::db_error(
                            BACKEND,
                            format_args!("insert a self-served API key of `{owner}`"),
                            e,
                        )
                    };
                    // Any early return drops `tx`, which rolls back: nothing is written.
                    let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(err)?;
                    if let Some(lock) = LOCK_OWNER {
                        sqlx::query(lock)
                            .bind(sql::SELF_SERVED_LOCK)
                            .bind(owner)
                            .execute(&mut *tx)
                            .await
                            .map_err(err)?;
                    }
                    // Expired keys free their names and places: revoked when they expired.
                    sqlx::query(
                        "UPDATE api_keys SET revoked_at = expires_at WHERE owner = $1 \
                         AND self_served AND revoked_at IS NULL AND replaced_by IS NULL \
                         AND expires_at <= $2",
                    )
                    .bind(owner)
                    .bind(to_time(chrono::Utc::now()))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                    let active: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM api_keys WHERE owner = $1 AND self_served \
                         AND revoked_at IS NULL AND replaced_by IS NULL",
                    )
                    .bind(owner)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err)?;
                    if usize::try_from(active).unwrap_or(usize::MAX) >= max_active {
                        return Err($crate::store::api_keys::limit_reached(owner, max_active));
                    }
                    // A taken name is the unique index's violation (`NameTaken`).
                    insert_key(&mut *tx, &record).await?;
                    tx.commit().await.map_err(err)
                })
            }

            fn delete<'a>(&'a self, id: &'a str) -> $crate::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| {
                            sql::db_error(BACKEND, format_args!("delete API key `{id}`"), e)
                        })?;
                    sql::found(done.rows_affected(), || sql::no_key(id))
                })
            }

            fn touch_last_used<'a>(
                &'a self,
                uses: &'a [(String, chrono::DateTime<chrono::Utc>)],
            ) -> $crate::BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    let latest = sql::latest_uses(uses);
                    if latest.is_empty() {
                        return Ok(());
                    }
                    self.record_uses(latest)
                        .await
                        .map_err(|e| sql::db_error(BACKEND, "record API key use", e))
                })
            }

            $(
                fn watch_changes(
                    &self,
                    sink: $crate::store::ChangeSink,
                ) -> Option<$crate::BoxFuture<'static, ()>> {
                    Some(Box::pin($watch(self, sink)))
                }
            )?
        }

        /// Applies the migrations the database lacks, inside the caller's transaction (which
        /// holds whatever lock keeps two processes from migrating at once).
        async fn apply_migrations(
            conn: &mut <$db as sqlx::Database>::Connection,
        ) -> Result<(), StoreError> {
            use sqlx::Executor as _;
            let err = |e| sql::db_error(BACKEND, "migrate the schema", e);
            conn.execute(MIGRATIONS_TABLE).await.map_err(err)?;
            let applied: Vec<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT version, checksum FROM portcullis_migrations")
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(err)?;
            for migration in sql::pending(BACKEND, MIGRATIONS, &applied)? {
                // A plain `&str` runs through the simple query protocol, so a migration may hold
                // several statements.
                conn.execute(migration.sql).await.map_err(err)?;
                sqlx::query(
                    "INSERT INTO portcullis_migrations (version, description, checksum, \
                     applied_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(migration.version)
                .bind(migration.description)
                .bind(migration.checksum())
                .bind(to_time(chrono::Utc::now()))
                .execute(&mut *conn)
                .await
                .map_err(err)?;
            }
            Ok(())
        }

        async fn insert_key<'e, E>(
            executor: E,
            record: &$crate::store::ApiKeyRecord,
        ) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(concat!(
                "INSERT INTO api_keys (",
                $crate::store::sql::key_columns!(bare),
                ") VALUES ($1, $2, $3, $4, $5",
                $jsonb,
                ", $6",
                $jsonb,
                ", $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(record.id.clone())
            .bind(record.owner.clone())
            .bind(sql::kind_str(record.owner_kind))
            .bind(record.name.clone())
            .bind(sql::encode_list(&record.scopes))
            .bind(sql::encode_list(&record.groups))
            .bind(to_time(record.created_at))
            .bind(record.created_by.clone())
            .bind(record.expires_at.map(to_time))
            .bind(record.revoked_at.map(to_time))
            .bind(record.last_used_at.map(to_time))
            .bind(record.replaces.clone())
            .bind(record.replaced_by.clone())
            .bind(record.digest.as_bytes().to_vec())
            .bind(record.self_served)
            .execute(executor)
            .await
            .map_err(|e| {
                if sql::is_name_violation(&e) {
                    $crate::store::api_keys::name_taken(&record.owner, &record.name)
                } else if sql::is_unique_violation(&e) {
                    sql::key_taken(&record.id)
                } else {
                    sql::db_error(BACKEND, format_args!("insert API key `{}`", record.id), e)
                }
            })?;
            Ok(())
        }

        fn user_from_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<$crate::store::UserRecord, StoreError> {
            let name: String = get(row, "name")?;
            let what = || format!("user `{name}`");
            Ok($crate::store::UserRecord {
                password_hash: $crate::store::PasswordHash::new(get::<String>(row, "password_hash")?),
                kind: sql::parse_kind(BACKEND, what(), &get::<String>(row, "kind")?)?,
                groups: sql::decode_list(BACKEND, what(), &get::<String>(row, "groups")?)?,
                disabled: get(row, "disabled")?,
                created_at: from_time(&what, get(row, "created_at")?)?,
                updated_at: from_time(&what, get(row, "updated_at")?)?,
                name,
            })
        }

        fn key_from_row(
            row: &<$db as sqlx::Database>::Row,
        ) -> Result<$crate::store::ApiKeyRecord, StoreError> {
            let id: String = get(row, "id")?;
            let what = || format!("API key `{id}`");
            let opt_time = |column| -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
                get::<Option<Time>>(row, column)?
                    .map(|t| from_time(&what, t))
                    .transpose()
            };
            let digest: Vec<u8> = get(row, "digest")?;
            Ok($crate::store::ApiKeyRecord {
                owner: get(row, "owner")?,
                owner_kind: sql::parse_kind(BACKEND, what(), &get::<String>(row, "owner_kind")?)?,
                name: get(row, "name")?,
                scopes: sql::decode_list(BACKEND, what(), &get::<String>(row, "scopes")?)?,
                groups: sql::decode_list(BACKEND, what(), &get::<String>(row, "groups")?)?,
                created_at: from_time(&what, get(row, "created_at")?)?,
                created_by: get(row, "created_by")?,
                expires_at: opt_time("expires_at")?,
                revoked_at: opt_time("revoked_at")?,
                last_used_at: opt_time("last_used_at")?,
                replaces: get(row, "replaces")?,
                replaced_by: get(row, "replaced_by")?,
                self_served: get(row, "self_served")?,
                digest: $crate::store::KeyDigest::from_slice(&digest).ok_or_else(|| {
                    sql::malformed(BACKEND, format_args!("{}: digest length", what()))
                })?,
                id,
            })
        }

        fn get<'r, T>(row: &'r <$db as sqlx::Database>::Row, column: &str) -> Result<T, StoreError>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            sqlx::Row::try_get(row, column)
                .map_err(|e| sql::db_error(BACKEND, format_args!("read column `{column}`"), e))
        }
    };
}
pub(super) use sql_store;

// JSON list columns are read as text and parsed here (so sqlx's `json` feature is not needed);
// the cast is a no-op in SQLite, whose lists are text already.
macro_rules! user_columns {
    () => {
        "name, password_hash, kind, CAST(groups AS TEXT) AS groups, disabled, created_at, \
         updated_at"
    };
}
pub(super) use user_columns;

macro_rules! key_columns {
    () => {
        "id, owner, owner_kind, name, CAST(scopes AS TEXT) AS scopes, \
         CAST(groups AS TEXT) AS groups, created_at, created_by, expires_at, revoked_at, \
         last_used_at, replaces, replaced_by, digest, self_served"
    };
    (bare) => {
        "id, owner, owner_kind, name, scopes, groups, created_at, created_by, expires_at, \
         revoked_at, last_used_at, replaces, replaced_by, digest, self_served"
    };
}
pub(super) use key_columns;

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
