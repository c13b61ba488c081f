//! Users and API keys in one SQLite file (feature `sqlite`): [`SqliteStore`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Executor, Row, Sqlite};

use super::sql::{self, Migration};
use super::{ApiKeyRecord, ApiKeyStore, KeyDigest, UserRecord, UserStore};
use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::secret::PasswordHash;

/// Users and API keys in a SQLite file.
///
/// [`open`](Self::open) creates the file if it is missing and brings its schema up to date. The
/// database runs in WAL mode with `synchronous = FULL`, so every write is on disk (not only in the
/// operating system's cache) when its future completes; a writer waiting for another one's lock
/// waits up to 5 seconds, then fails with
/// [`Unavailable`](StoreErrorKind::Unavailable).
///
/// One value is both a [`UserStore`] and an [`ApiKeyStore`]. Cloning it is cheap and shares the
/// connection pool; [`open_store`](super::open_store) hands out both views at once.
///
/// What is stored: argon2id PHC strings for passwords and the 32-byte keyed hash of each API key's
/// secret, never a password or a key. Times are kept to the microsecond (as in PostgreSQL).
///
/// ```no_run
/// use portcullis::store::{SqliteStore, UserStore};
///
/// # async fn run() -> Result<(), portcullis::store::StoreError> {
/// let store = SqliteStore::open("sqlite://portcullis.db").await?;
/// for user in store.list_users().await? {
///     println!("{}", user.name);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    location: Arc<str>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `path_or_url`, and applies the schema
    /// migrations it lacks.
    ///
    /// Takes a file path (`data/auth.db`), a URL (`sqlite://data/auth.db`,
    /// `sqlite:///var/lib/app/auth.db`, with sqlx's query parameters if needed), or
    /// `sqlite::memory:` (or `:memory:`) for a private in-memory database that lives as long as
    /// the store.
    ///
    /// # Errors
    ///
    /// `Invalid` for a malformed URL or a database whose schema is newer than this version of
    /// portcullis; `Unavailable` if the file cannot be opened or created (a missing directory, no
    /// permission) or stays locked by another writer.
    pub async fn open(path_or_url: &str) -> Result<Self, StoreError> {
        let in_memory = is_memory(path_or_url);
        let options = if path_or_url == ":memory:" {
            SqliteConnectOptions::from_str("sqlite::memory:")
        } else if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url)
        } else {
            Ok(SqliteConnectOptions::new().filename(path_or_url))
        }
        .map_err(|e| sql::db_error(BACKEND, "parse the database URL", e))?;
        let location: Arc<str> = if in_memory {
            ":memory:".into()
        } else {
            options.get_filename().display().to_string().into()
        };
        if !in_memory {
            create_private(options.get_filename()).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!("{BACKEND}: create `{location}`: {e}"),
                )
            })?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: in WAL mode, NORMAL would let the last commits vanish on power loss.
            // https://www.sqlite.org/pragma.html#pragma_synchronous
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let pool = if in_memory {
            // An in-memory database lives as long as a connection to it: keep exactly one.
            pool.max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.max_connections(MAX_CONNECTIONS)
        };
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| sql::db_error(BACKEND, format_args!("open `{location}`"), e))?;
        let store = Self { pool, location };
        store.migrate().await?;
        Ok(store)
    }

    /// Closes every connection, waiting for the ones in use to be returned. Later calls fail with
    /// `Unavailable`. Dropping the last clone closes the pool too, without waiting.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the database file, empty and readable by its owner only (0600 on Unix), if it does
/// not exist yet. SQLite would create it with the process umask, usually world-readable, and the
/// file holds the password hashes and key digests. SQLite gives its `-wal` and `-shm` files the
/// main file's permissions. An existing file is left as it is; an empty file is a valid empty
/// database to SQLite.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let err = |e| sql::db_error(BACKEND, "migrate the schema", e);
        // IMMEDIATE takes the write lock before reading what is applied, so two processes opening
        // a new file at once apply each migration once, one after the other.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        (&mut *tx)
            .execute(
                "CREATE TABLE IF NOT EXISTS portcullis_migrations (
                version     INTEGER NOT NULL PRIMARY KEY,
                description TEXT    NOT NULL,
                checksum    BLOB    NOT NULL,
                applied_at  INTEGER NOT NULL
            ) STRICT",
            )
            .await
            .map_err(err)?;
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM portcullis_migrations")
                .fetch_all(&mut *tx)
                .await
                .map_err(err)?;
        for migration in sql::pending(BACKEND, MIGRATIONS, &applied)? {
            // A plain `&str` runs through the simple query protocol, so a migration may hold
            // several statements.
            (&mut *tx).execute(migration.sql).await.map_err(err)?;
            sqlx::query(
                "INSERT INTO portcullis_migrations (version, description, checksum, applied_at)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(migration.version)
            .bind(migration.description)
            .bind(migration.checksum())
            .bind(micros(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl UserStore for SqliteStore {
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE name = ?"
            ))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| sql::db_error(BACKEND, format_args!("find user `{name}`"), e))?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO users (name, password_hash, kind, groups, disabled, created_at, \
                 updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&user.name)
            .bind(user.password_hash.expose_phc())
            .bind(sql::kind_str(user.kind))
            .bind(sql::encode_list(&user.groups))
            .bind(user.disabled)
            .bind(micros(user.created_at))
            .bind(micros(user.updated_at))
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
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done =
                sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?")
                    .bind(hash.expose_phc())
                    .bind(micros(Utc::now()))
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
        expected: &'a PasswordHash,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let err = |e| sql::db_error(BACKEND, format_args!("upgrade the hash of `{name}`"), e);
            // A rehash is not a password change, so `updated_at` stays.
            let done = sqlx::query(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
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
            let exists = sqlx::query("SELECT 1 FROM users WHERE name = ?")
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
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?")
                .bind(disabled)
                .bind(micros(Utc::now()))
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(|e| sql::db_error(BACKEND, format_args!("disable `{name}`"), e))?;
            sql::found(done.rows_affected(), || sql::no_user(name))
        })
    }

    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users ORDER BY name"
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| sql::db_error(BACKEND, "list users", e))?;
            rows.iter().map(user_from_row).collect()
        })
    }
}

impl ApiKeyStore for SqliteStore {
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { insert_key(&self.pool, &record).await })
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                key_columns!(),
                " FROM api_keys WHERE id = ?"
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
    ) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let query = match owner {
                Some(owner) => sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM api_keys WHERE owner = ? ORDER BY created_at, id"
                ))
                .bind(owner),
                None => sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
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
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
        Box::pin(async move {
            // One statement: the first revocation time stays, and no read-then-write race.
            let row = sqlx::query(concat!(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING ",
                key_columns!()
            ))
            .bind(micros(at))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| sql::db_error(BACKEND, format_args!("revoke API key `{id}`"), e))?;
            match row {
                Some(row) => key_from_row(&row),
                None => Err(sql::no_key(id)),
            }
        })
    }

    fn set_expires_at<'a>(
        &'a self,
        id: &'a str,
        expires_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE api_keys SET expires_at = ? WHERE id = ?")
                .bind(expires_at.map(micros))
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    sql::db_error(BACKEND, format_args!("set the expiry of API key `{id}`"), e)
                })?;
            sql::found(done.rows_affected(), || sql::no_key(id))
        })
    }

    fn rotate<'a>(
        &'a self,
        old_id: &'a str,
        old_expires_by: DateTime<Utc>,
        new: ApiKeyRecord,
    ) -> BoxFuture<'a, Result<ApiKeyRecord, StoreError>> {
        Box::pin(async move {
            let err = |e| sql::db_error(BACKEND, format_args!("rotate API key `{old_id}`"), e);
            // IMMEDIATE: take the write lock first, so the transaction never has to upgrade a
            // read lock (which SQLite refuses at once instead of waiting) and rotations of one key
            // run one after the other. Any early return drops `tx`, which rolls back.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
            insert_key(&mut *tx, &new).await?;
            let by = micros(old_expires_by);
            let row = sqlx::query(concat!(
                "UPDATE api_keys SET replaced_by = ?, expires_at = CASE WHEN expires_at IS NULL \
                 OR expires_at > ? THEN ? ELSE expires_at END \
                 WHERE id = ? AND revoked_at IS NULL AND replaced_by IS NULL RETURNING ",
                key_columns!()
            ))
            .bind(&new.id)
            .bind(by)
            .bind(by)
            .bind(old_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
            let Some(row) = row else {
                let exists = sqlx::query("SELECT 1 FROM api_keys WHERE id = ?")
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
            tx.commit().await.map_err(err)?;
            Ok(old)
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM api_keys WHERE id = ?")
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| sql::db_error(BACKEND, format_args!("delete API key `{id}`"), e))?;
            sql::found(done.rows_affected(), || sql::no_key(id))
        })
    }

    fn touch_last_used<'a>(
        &'a self,
        uses: &'a [(String, DateTime<Utc>)],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let latest = sql::latest_uses(uses);
            if latest.is_empty() {
                return Ok(());
            }
            let err = |e| sql::db_error(BACKEND, "record API key use", e);
            // One transaction, so a batch costs one commit (and one fsync), not one per key.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
            for (id, at) in latest {
                let at = micros(at);
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = ? \
                     WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                )
                .bind(at)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
    }
}

const BACKEND: &str = "sqlite";

/// How long a writer waits for another writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a free connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool. SQLite runs one writer at a time; readers run beside it in WAL mode.
const MAX_CONNECTIONS: u32 = 8;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "users and API keys",
    sql: include_str!("../../migrations/sqlite/0001_init.sql"),
}];

macro_rules! user_columns {
    () => {
        "name, password_hash, kind, groups, disabled, created_at, updated_at"
    };
}
use user_columns;

macro_rules! key_columns {
    () => {
        "id, owner, owner_kind, name, scopes, groups, created_at, created_by, expires_at, \
         revoked_at, last_used_at, replaces, replaced_by, digest"
    };
}
use key_columns;

/// Whether `path_or_url` names an in-memory database (query parameters allowed after a URL).
fn is_memory(path_or_url: &str) -> bool {
    path_or_url == ":memory:"
        || ["sqlite::memory:", "sqlite://:memory:"]
            .iter()
            .any(|url| path_or_url.split('?').next() == Some(url))
}

async fn insert_key<'e, E>(executor: E, record: &ApiKeyRecord) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Sqlite>,
{
    sqlx::query(concat!(
        "INSERT INTO api_keys (",
        key_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(record.id.clone())
    .bind(record.owner.clone())
    .bind(sql::kind_str(record.owner_kind))
    .bind(record.name.clone())
    .bind(sql::encode_list(&record.scopes))
    .bind(sql::encode_list(&record.groups))
    .bind(micros(record.created_at))
    .bind(record.created_by.clone())
    .bind(record.expires_at.map(micros))
    .bind(record.revoked_at.map(micros))
    .bind(record.last_used_at.map(micros))
    .bind(record.replaces.clone())
    .bind(record.replaced_by.clone())
    .bind(record.digest.as_bytes().to_vec())
    .execute(executor)
    .await
    .map_err(|e| {
        if sql::is_unique_violation(&e) {
            sql::key_taken(&record.id)
        } else {
            sql::db_error(BACKEND, format_args!("insert API key `{}`", record.id), e)
        }
    })?;
    Ok(())
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let name: String = get(row, "name")?;
    let what = || format!("user `{name}`");
    Ok(UserRecord {
        password_hash: PasswordHash::new(get::<String>(row, "password_hash")?),
        kind: sql::parse_kind(BACKEND, what(), &get::<String>(row, "kind")?)?,
        groups: sql::decode_list(BACKEND, what(), &get::<String>(row, "groups")?)?,
        disabled: get(row, "disabled")?,
        created_at: time(&what, get(row, "created_at")?)?,
        updated_at: time(&what, get(row, "updated_at")?)?,
        name,
    })
}

fn key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let id: String = get(row, "id")?;
    let what = || format!("API key `{id}`");
    let opt_time = |column| -> Result<Option<DateTime<Utc>>, StoreError> {
        get::<Option<i64>>(row, column)?
            .map(|t| time(&what, t))
            .transpose()
    };
    let digest: Vec<u8> = get(row, "digest")?;
    Ok(ApiKeyRecord {
        owner: get(row, "owner")?,
        owner_kind: sql::parse_kind(BACKEND, what(), &get::<String>(row, "owner_kind")?)?,
        name: get(row, "name")?,
        scopes: sql::decode_list(BACKEND, what(), &get::<String>(row, "scopes")?)?,
        groups: sql::decode_list(BACKEND, what(), &get::<String>(row, "groups")?)?,
        created_at: time(&what, get(row, "created_at")?)?,
        created_by: get(row, "created_by")?,
        expires_at: opt_time("expires_at")?,
        revoked_at: opt_time("revoked_at")?,
        last_used_at: opt_time("last_used_at")?,
        replaces: get(row, "replaces")?,
        replaced_by: get(row, "replaced_by")?,
        digest: KeyDigest::from_slice(&digest)
            .ok_or_else(|| sql::malformed(BACKEND, format_args!("{}: digest length", what())))?,
        id,
    })
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column)
        .map_err(|e| sql::db_error(BACKEND, format_args!("read column `{column}`"), e))
}

/// Times are stored as microseconds since the Unix epoch: integers sort and compare exactly,
/// which text timestamps of varying precision do not.
fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(what: &dyn Fn() -> String, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| sql::malformed(BACKEND, format_args!("{}: time out of range", what())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send + 'static>(_: T) {}

    /// The settings durability rests on are in force on every connection.
    #[tokio::test]
    async fn connections_use_wal_and_full_sync() {
        let path = std::env::temp_dir().join(format!(
            "portcullis-pragmas-{}-{}.db",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = store.pool.acquire().await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!((mode.as_str(), sync, busy), ("wal", 2, 5000));
            held.push(conn); // so the next round gets another connection
        }
        drop(held);
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// The database file, and the WAL and shared-memory files SQLite makes beside it, are the
    /// owner's only, whatever the umask: they hold the password hashes and key digests.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!(
            "portcullis-mode-{}-{}.db",
            std::process::id(),
            Utc::now().timestamp_micros()
        ));
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store
            .create_user(UserRecord::new("alice", PasswordHash::new("$argon2id$x")))
            .await
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}: {mode:o}");
        }
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// A service can open the store from a spawned task (sqlx futures have tripped rustc's
    /// `Send` inference before).
    #[test]
    fn opening_can_be_spawned() {
        assert_send(async {
            let path = String::from("auth.db");
            SqliteStore::open(&path).await
        });
        assert_send(async {
            let url = String::from("sqlite://auth.db");
            super::super::open_store(&url).await
        });
    }
}
