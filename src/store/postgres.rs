//! Users and API keys in PostgreSQL (feature `postgres`): [`PostgresStore`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow, PgSslMode,
};
use sqlx::{Connection, Executor, Postgres, Row};

use super::sql::{self, Migration};
use super::{
    ApiKeyRecord, ApiKeyStore, ChangeSink, KeyChange, KeyDigest, StoreOptions, UserRecord,
    UserStore,
};
use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::secret::PasswordHash;

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

impl UserStore for PostgresStore {
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE name = $1"
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
                 updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
            )
            .bind(&user.name)
            .bind(user.password_hash.expose_phc())
            .bind(sql::kind_str(user.kind))
            .bind(sql::encode_list(&user.groups))
            .bind(user.disabled)
            .bind(user.created_at)
            .bind(user.updated_at)
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
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE name = $3")
                    .bind(hash.expose_phc())
                    .bind(Utc::now())
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
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done =
                sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE name = $3")
                    .bind(disabled)
                    .bind(Utc::now())
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

impl ApiKeyStore for PostgresStore {
    fn insert(&self, record: ApiKeyRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { insert_key(&self.pool, &record).await })
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                key_columns!(),
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
    ) -> BoxFuture<'a, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let query = match owner {
                Some(owner) => sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM api_keys WHERE owner = $1 ORDER BY created_at, id"
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
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 \
                 RETURNING ",
                key_columns!()
            ))
            .bind(at)
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
            let done = sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
                .bind(expires_at)
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
            // Any early return drops `tx`, which rolls back: the new key is never left behind.
            let mut tx = self.pool.begin().await.map_err(err)?;
            insert_key(&mut *tx, &new).await?;
            // The conditions are re-checked on the locked row, so of two instances rotating one
            // key at once, exactly one updates it. `least` ignores a NULL expiry.
            let row = sqlx::query(concat!(
                "UPDATE api_keys SET replaced_by = $1, expires_at = least(expires_at, $2) \
                 WHERE id = $3 AND revoked_at IS NULL AND replaced_by IS NULL RETURNING ",
                key_columns!()
            ))
            .bind(&new.id)
            .bind(old_expires_by)
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
            tx.commit().await.map_err(err)?;
            Ok(old)
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| sql::db_error(BACKEND, format_args!("delete API key `{id}`"), e))?;
            sql::found(done.rows_affected(), || sql::no_key(id))
        })
    }

    fn watch_changes(&self, sink: ChangeSink) -> Option<BoxFuture<'static, ()>> {
        Some(Box::pin(watch(
            self.pool.clone(),
            self.target.clone(),
            sink,
        )))
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
            let (ids, times): (Vec<&str>, Vec<DateTime<Utc>>) = latest.into_iter().unzip();
            // The whole batch in one statement (so one transaction and one round trip).
            sqlx::query(
                "UPDATE api_keys AS k SET last_used_at = u.at \
                 FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) \
                 WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
            )
            .bind(ids)
            .bind(times)
            .execute(&self.pool)
            .await
            .map_err(|e| sql::db_error(BACKEND, "record API key use", e))?;
            Ok(())
        })
    }
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
    (&mut *tx)
        .execute(
            "CREATE TABLE IF NOT EXISTS portcullis_migrations (
            version     BIGINT      NOT NULL PRIMARY KEY,
            description TEXT        NOT NULL,
            checksum    BYTEA       NOT NULL,
            applied_at  TIMESTAMPTZ NOT NULL
        )",
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
             VALUES ($1, $2, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.description)
        .bind(migration.checksum())
        .bind(Utc::now())
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

const BACKEND: &str = "postgres";

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
];

/// The channel the `api_keys` trigger notifies, with the key id as payload.
const KEY_CHANNEL: &str = "portcullis_api_keys";

/// The first and the longest wait before listening again after the connection is lost.
const WATCH_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

// JSONB columns are read as text and parsed here, so the `json` feature of sqlx is not needed.
macro_rules! user_columns {
    () => {
        "name, password_hash, kind, groups::text AS groups, disabled, created_at, updated_at"
    };
}
use user_columns;

macro_rules! key_columns {
    () => {
        "id, owner, owner_kind, name, scopes::text AS scopes, groups::text AS groups, \
         created_at, created_by, expires_at, revoked_at, last_used_at, replaces, replaced_by, \
         digest"
    };
}
use key_columns;

async fn insert_key<'e, E>(executor: E, record: &ApiKeyRecord) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Postgres>,
{
    sqlx::query(
        "INSERT INTO api_keys (id, owner, owner_kind, name, scopes, groups, created_at, \
         created_by, expires_at, revoked_at, last_used_at, replaces, replaced_by, digest) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(record.id.clone())
    .bind(record.owner.clone())
    .bind(sql::kind_str(record.owner_kind))
    .bind(record.name.clone())
    .bind(sql::encode_list(&record.scopes))
    .bind(sql::encode_list(&record.groups))
    .bind(record.created_at)
    .bind(record.created_by.clone())
    .bind(record.expires_at)
    .bind(record.revoked_at)
    .bind(record.last_used_at)
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

fn user_from_row(row: &PgRow) -> Result<UserRecord, StoreError> {
    let name: String = get(row, "name")?;
    let what = || format!("user `{name}`");
    Ok(UserRecord {
        password_hash: PasswordHash::new(get::<String>(row, "password_hash")?),
        kind: sql::parse_kind(BACKEND, what(), &get::<String>(row, "kind")?)?,
        groups: sql::decode_list(BACKEND, what(), &get::<String>(row, "groups")?)?,
        disabled: get(row, "disabled")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        name,
    })
}

fn key_from_row(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    let id: String = get(row, "id")?;
    let what = || format!("API key `{id}`");
    let digest: Vec<u8> = get(row, "digest")?;
    Ok(ApiKeyRecord {
        owner: get(row, "owner")?,
        owner_kind: sql::parse_kind(BACKEND, what(), &get::<String>(row, "owner_kind")?)?,
        name: get(row, "name")?,
        scopes: sql::decode_list(BACKEND, what(), &get::<String>(row, "scopes")?)?,
        groups: sql::decode_list(BACKEND, what(), &get::<String>(row, "groups")?)?,
        created_at: get(row, "created_at")?,
        created_by: get(row, "created_by")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
        last_used_at: get(row, "last_used_at")?,
        replaces: get(row, "replaces")?,
        replaced_by: get(row, "replaced_by")?,
        digest: KeyDigest::from_slice(&digest)
            .ok_or_else(|| sql::malformed(BACKEND, format_args!("{}: digest length", what())))?,
        id,
    })
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column)
        .map_err(|e| sql::db_error(BACKEND, format_args!("read column `{column}`"), e))
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
