//! Users and API keys in one SQLite file (feature `sqlite`): [`SqliteStore`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{self, Migration};
#[cfg(doc)]
use super::{ApiKeyStore, UserStore};
use crate::error::{StoreError, StoreErrorKind};

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
        // BEGIN_WRITE takes the write lock before reading what is applied, so two processes
        // opening a new file at once apply each migration once, one after the other.
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(err)?;
        apply_migrations(&mut tx).await?;
        tx.commit().await.map_err(err)
    }

    /// The batch of `touch_last_used`: one transaction, so a batch costs one commit (and one
    /// fsync), not one per key.
    async fn record_uses(&self, latest: Vec<(&str, DateTime<Utc>)>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        for (id, at) in latest {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(to_time(at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

sql::sql_store!(SqliteStore, Sqlite, jsonb = "");

const BACKEND: &str = "sqlite";

/// IMMEDIATE takes the write lock at once, so a transaction never has to upgrade a read lock
/// (which SQLite refuses at once instead of waiting) and writers run one after the other.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How long a writer waits for another writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a free connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool. SQLite runs one writer at a time; readers run beside it in WAL mode.
const MAX_CONNECTIONS: u32 = 8;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS portcullis_migrations (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    checksum    BLOB    NOT NULL,
    applied_at  INTEGER NOT NULL
) STRICT";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users and API keys",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "self-served API keys",
        sql: include_str!("../../migrations/sqlite/0002_self_served_keys.sql"),
    },
];

/// What serializes `insert_self_served` for one owner beyond `BEGIN_WRITE`: nothing, since
/// `BEGIN IMMEDIATE` already holds the database's one write lock.
const LOCK_OWNER: Option<&str> = None;

/// Whether `path_or_url` names an in-memory database (query parameters allowed after a URL).
fn is_memory(path_or_url: &str) -> bool {
    path_or_url == ":memory:"
        || ["sqlite::memory:", "sqlite://:memory:"]
            .iter()
            .any(|url| path_or_url.split('?').next() == Some(url))
}

/// Times are stored as microseconds since the Unix epoch: integers sort and compare exactly,
/// which text timestamps of varying precision do not.
type Time = i64;

fn to_time(at: DateTime<Utc>) -> Time {
    at.timestamp_micros()
}

fn from_time(what: &dyn Fn() -> String, micros: Time) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| sql::malformed(BACKEND, format_args!("{}: time out of range", what())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PasswordHash, UserRecord, UserStore};

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
