//! Users and API keys in PostgreSQL (feature `postgres`): [`PostgresStore`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgSslMode,
};
use sqlx::{Connection, Postgres};

use super::sql::{self, Migration};
#[cfg(doc)]
use super::{ApiKeyStore, UserStore};
use super::{ChangeSink, KeyChange, StoreOptions};
use crate::error::{StoreError, StoreErrorKind};

/// Users and API keys in a PostgreSQL database.
///
/// [`connect`](Self::connect) opens a connection pool and brings the schema up to date (tables
/// `users`, `api_keys` and `portcullis_migrations`, in the first schema of the connection's
/// `search_path`; add `?options[search_path]=auth` to the URL to keep them apart). Each write is
/// one committed statement or transaction, so it is durable when its future completes, as far as
/// the server's `synchronous_commit` makes it so (on by default).
///
/// Instances sharing the database see each other's writes at once. A trigger on `api_keys`
/// notifies (`LISTEN`/`NOTIFY`, channel `portcullis_api_keys`) whenever a key is revoked, rotated,
/// re-dated or deleted, by any instance, the CLI or plain SQL, and each [`ApiKeys`] on this store
/// listens and drops its cached copy at once ([`watch_changes`](ApiKeyStore::watch_changes)).
/// The API key cache TTL stays the bound while that connection is down.
///
/// [`ApiKeys`]: crate::ApiKeys
///
/// One value is both a [`UserStore`] and an [`ApiKeyStore`]. Cloning it is cheap and shares the
/// pool; [`open_store`](super::open_store) hands out both views at once.
///
/// What is stored: argon2id PHC strings for passwords and the 32-byte keyed hash of each API key's
/// secret, never a password or a key.
///
/// ```no_run
/// use portcullis::store::{ApiKeyStore, PostgresStore};
///
/// # async fn run() -> Result<(), portcullis::store::StoreError> {
/// let store = PostgresStore::connect(
///     "postgres://portcullis@db.internal/auth?sslmode=verify-full&sslrootcert=/etc/portcullis/db-ca.pem",
/// )
/// .await?;
/// for key in store.list(Some("alice")).await? {
///     println!("{} {}", key.id, key.name);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// `host:port/database`, for `Debug`; never the user or password.
    target: String,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database?…`, as libpq and
    /// sqlx take it) and applies the schema migrations it lacks.
    ///
    /// # Errors
    ///
    /// `Invalid` for a malformed URL or a database whose schema is newer than this version of
    /// portcullis; `Unavailable` if the server cannot be reached or refuses the login.
    ///
    /// A server on another host must be reached with `sslmode=verify-full` (add
    /// `&sslrootcert=/path/to/ca.pem` for a private CA): anything weaker is refused with
    /// `Invalid` before connecting. The check runs on the options as sqlx resolves them, so
    /// `PGSSLMODE`, `PGHOST` and `?host=` count. See [`StoreOptions`] to allow it anyway.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &StoreOptions::default()).await
    }

    /// [`connect`](Self::connect) with options.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, store_options: &StoreOptions) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| sql::db_error(BACKEND, "parse the database URL", e))?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        check_tls(&options, store_options.dangerous_allow_unverified_tls)?;
        // One plain connection first, for the migrations: it fails at once when the server is
        // down or refuses the login, where a pool would retry until its acquire timeout.
        let mut conn = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!("{BACKEND}: connect to {target}: timed out"),
                )
            })?
            .map_err(|e| sql::db_error(BACKEND, format_args!("connect to {target}"), e))?;
        migrate(&mut conn).await?;
        // The server answered a moment ago; the pool connects on first use.
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self { pool, target })
    }

    /// Closes every connection, waiting for the ones in use to be returned. Later calls fail with
    /// `Unavailable`. Dropping the last clone closes the pool too, without waiting.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The batch of `touch_last_used`, in one statement (so one transaction and one round trip).
    async fn record_uses(&self, latest: Vec<(&str, DateTime<Utc>)>) -> Result<(), sqlx::Error> {
        let (ids, times): (Vec<&str>, Vec<DateTime<Utc>>) = latest.into_iter().unzip();
        sqlx::query(
            "UPDATE api_keys AS k SET last_used_at = u.at \
             FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) \
             WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

sql::sql_store!(
    PostgresStore,
    Postgres,
    jsonb = "::jsonb",
    watch = watch_changes
);

/// The task of [`ApiKeyStore::watch_changes`].
fn watch_changes(store: &PostgresStore, sink: ChangeSink) -> impl Future<Output = ()> + 'static {
    watch(store.pool.clone(), store.target.clone(), sink)
}

/// Reports every key change the trigger notifies, listening again (with back-off) whenever the
/// connection is lost. Each time it starts listening it reports [`KeyChange::Unknown`]: whatever
/// changed while nobody listened is not known, so caches start over.
async fn watch(pool: PgPool, target: String, sink: ChangeSink) {
    let mut retry = WATCH_RETRY.0;
    loop {
        match listen(&pool).await {
            Ok(mut listener) => {
                retry = WATCH_RETRY.0;
                sink(KeyChange::Unknown);
                // `try_recv` answers `None` when the connection drops; listening again is left
                // to the outer loop, so `Unknown` is reported only once LISTEN is back.
                loop {
                    match listener.try_recv().await {
                        Ok(Some(note)) => sink(KeyChange::Key(note.payload())),
                        Ok(None) => {
                            tracing::warn!(
                                database = %target,
                                "lost the connection that listens for API key changes; \
                                 other instances' changes reach this one within the cache TTL \
                                 until it is back"
                            );
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(database = %target, error = %e, "listening for API key changes failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(database = %target, error = %e, "cannot listen for API key changes");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(WATCH_RETRY.1);
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, StoreError> {
    let err = |e| sql::db_error(BACKEND, "listen for API key changes", e);
    let connect = async {
        let mut listener = PgListener::connect_with(pool).await.map_err(err)?;
        listener.listen(KEY_CHANNEL).await.map_err(err)?;
        Ok(listener)
    };
    tokio::time::timeout(ACQUIRE_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!("{BACKEND}: listen for API key changes: timed out"),
            ))
        })
}

/// Applies the migrations the database lacks, all in one transaction.
async fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    let err = |e| sql::db_error(BACKEND, "migrate the schema", e);
    let mut tx = conn.begin().await.map_err(err)?;
    // Instances starting together migrate one after the other; the lock ends with the
    // transaction.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    apply_migrations(&mut tx).await?;
    tx.commit().await.map_err(err)
}

const BACKEND: &str = "postgres";

const BEGIN_WRITE: &str = "BEGIN";

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS portcullis_migrations (
    version     BIGINT      NOT NULL PRIMARY KEY,
    description TEXT        NOT NULL,
    checksum    BYTEA       NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL
)";

type Time = DateTime<Utc>;

fn to_time(at: DateTime<Utc>) -> Time {
    at
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "the SQLite store's `from_time` can fail"
)]
fn from_time(_what: &dyn Fn() -> String, at: Time) -> Result<DateTime<Utc>, StoreError> {
    Ok(at)
}

/// How long a call waits for a free connection (or a new one) before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 10;

/// The advisory lock key held while migrating: the bytes of `"pcullis1"`.
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"pcullis1");

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users and API keys",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "notify API key changes",
        sql: include_str!("../../migrations/postgres/0002_notify_key_changes.sql"),
    },
    Migration {
        version: 3,
        description: "self-served API keys",
        sql: include_str!("../../migrations/postgres/0003_self_served_keys.sql"),
    },
];

/// Serializes `insert_self_served` for one owner (bound to `sql::SELF_SERVED_LOCK` and the owner),
/// so two creates cannot both count below the limit: a transaction-scoped advisory lock, in the
/// two-key space (apart from [`MIGRATION_LOCK`]'s), on a hash of the owner's name. Two owners
/// whose names hash alike only wait for each other.
const LOCK_OWNER: Option<&str> = Some("SELECT pg_advisory_xact_lock($1, hashtext($2))");

/// The channel the `api_keys` trigger notifies, with the key id as payload.
const KEY_CHANNEL: &str = "portcullis_api_keys";

/// The first and the longest wait before listening again after the connection is lost.
const WATCH_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Refuses a connection an on-path attacker could read or answer: one to another host with a
/// `sslmode` weaker than `verify-full`, unless `allow_unverified`.
///
/// Decided on the parsed options, where `PGSSLMODE`, `PGHOST` and `?host=` have already had their
/// say, not on the URL text. A Unix socket and a loopback host never leave the machine, so they
/// are exempt; `localhost` is taken as loopback (it resolves through `/etc/hosts`, which only
/// root changes).
pub(crate) fn check_tls(
    options: &PgConnectOptions,
    allow_unverified: bool,
) -> Result<(), StoreError> {
    let mode = options.get_ssl_mode();
    if allow_unverified || matches!(mode, PgSslMode::VerifyFull) {
        return Ok(());
    }
    // sqlx takes a socket when one is set or the host is a directory (see `fetch_socket`).
    let host = options.get_host();
    if options.get_socket().is_some() || host.starts_with('/') || is_loopback(host) {
        return Ok(());
    }
    let mode = match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    };
    Err(StoreError::new(
        StoreErrorKind::Invalid,
        format!(
            "{BACKEND}: refusing sslmode={mode} to {host}:{}: it does not verify the server, so \
             anyone on the network path can read the hashes or answer as the database; use \
             sslmode=verify-full (with sslrootcert=CA-FILE for a private CA), or set \
             `[store] dangerous_allow_unverified_tls = true`",
            options.get_port()
        ),
    ))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send + 'static>(_: T) {}

    fn options(url: &str) -> PgConnectOptions {
        PgConnectOptions::from_str(url).unwrap()
    }

    /// The decision is made on parsed options (what `PGSSLMODE` and `?host=` leave), not on the
    /// URL text.
    #[test]
    fn unverified_tls_to_another_host_is_refused() {
        // sqlx's default is `prefer`: plaintext if the server declines, no certificate check.
        let prefer = options("postgres://u:hunter2@db.internal/auth")
            .ssl_mode(PgSslMode::Prefer)
            .host("db.internal");
        let err = check_tls(&prefer, false).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Invalid);
        assert!(err.to_string().contains("sslmode=prefer"), "{err}");
        assert!(err.to_string().contains("verify-full"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        for mode in [
            PgSslMode::Disable,
            PgSslMode::Allow,
            PgSslMode::Require,
            PgSslMode::VerifyCa,
        ] {
            let weak = prefer.clone().ssl_mode(mode);
            assert!(check_tls(&weak, false).is_err(), "{mode:?}");
            assert!(check_tls(&weak, true).is_ok(), "{mode:?} allowed");
        }
        let full = prefer.clone().ssl_mode(PgSslMode::VerifyFull);
        assert!(check_tls(&full, false).is_ok());
        // An IP address that is not loopback is another host too.
        let ip = options("postgres://u@10.0.0.5/auth").ssl_mode(PgSslMode::Prefer);
        assert!(check_tls(&ip, false).is_err());
        // `?host=` overrides the URL's host; the check follows it.
        let moved = options("postgres://u@127.0.0.1/auth?host=db.internal&sslmode=require");
        assert_eq!(moved.get_host(), "db.internal");
        assert!(check_tls(&moved, false).is_err());
        let moved = options("postgres://u@db.internal/auth?host=db2.internal&sslmode=verify-full");
        assert!(check_tls(&moved, false).is_ok());
    }

    #[test]
    fn sockets_and_loopback_are_exempt() {
        for url in [
            "postgres://u@127.0.0.1/auth",
            "postgres://u@127.0.0.2:5433/auth?sslmode=disable",
            "postgres://u@[::1]/auth",
            "postgres://u@localhost/auth",
            "postgres://u@LOCALHOST/auth?sslmode=prefer",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/auth?sslmode=disable",
            "postgres://u@db.internal/auth?host=/var/run/postgresql&sslmode=disable",
        ] {
            let parsed = options(url);
            assert!(check_tls(&parsed, false).is_ok(), "{url}");
        }
        let socket = options("postgres://u@db.internal/auth")
            .ssl_mode(PgSslMode::Prefer)
            .socket("/run/postgresql");
        assert!(check_tls(&socket, false).is_ok());
    }

    /// `connect` refuses before any network I/O: the host does not even resolve.
    #[tokio::test]
    async fn connect_refuses_prefer_to_another_host() {
        let err = PostgresStore::connect(
            "postgres://u:hunter2@portcullis-no-such-host.invalid/auth?sslmode=prefer",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
        let err = super::super::open_store(
            "postgres://u:hunter2@portcullis-no-such-host.invalid/auth?sslmode=require",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Invalid, "{err}");
        // Allowed, it gets as far as connecting (and fails there).
        let err = PostgresStore::connect_with(
            "postgres://u:hunter2@portcullis-no-such-host.invalid/auth?sslmode=prefer",
            &StoreOptions::new().dangerous_allow_unverified_tls(true),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    }

    /// A service can connect from a spawned task (sqlx futures have tripped rustc's `Send`
    /// inference before).
    #[test]
    fn connecting_can_be_spawned() {
        assert_send(async {
            let url = String::from("postgres://localhost/test");
            PostgresStore::connect(&url).await
        });
        assert_send(async {
            let url = String::from("postgres://localhost/test");
            super::super::open_store(&url).await
        });
    }
}
