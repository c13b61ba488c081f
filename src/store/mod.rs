//! Credential stores. They hold only hashes (argon2id PHC strings for passwords), never a secret.
//!
//! Every method is async and fallible: a store that cannot answer gives a
//! [`StoreError`] of kind `Unavailable`, which requests see as 503, never as a 401.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use crate::error::{StoreError, StoreErrorKind};
use crate::future::BoxFuture;
use crate::principal::SubjectKind;
pub use crate::secret::PasswordHash;

mod api_keys;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
// Only the `[basic]` configuration check asks in the library; the command compiles it in itself.
#[cfg(feature = "basic")]
mod sqlite_file;

pub use api_keys::{
    ApiKeyRecord, ApiKeyStore, ChangeSink, KeyChange, KeyDigest, MemoryApiKeyStore,
};
pub use memory::MemoryUserStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
#[cfg(feature = "basic")]
pub(crate) use sqlite_file::missing_sqlite_file;

/// A user (or application) that can log in with a password.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UserRecord {
    /// The login name.
    pub name: String,
    /// The argon2id PHC string of the password.
    pub password_hash: PasswordHash,
    /// A person or an application.
    pub kind: SubjectKind,
    /// Groups (roles) for authorization.
    pub groups: Vec<String>,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the password or the disabled flag last changed.
    pub updated_at: DateTime<Utc>,
}

impl UserRecord {
    /// A new, enabled user created now.
    pub fn new(name: impl Into<String>, password_hash: PasswordHash) -> Self {
        let now = Utc::now();
        Self {
            name: name.into(),
            password_hash,
            kind: SubjectKind::User,
            groups: Vec::new(),
            disabled: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// Sets the groups.
    pub fn with_groups(mut self, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the kind.
    pub fn with_kind(mut self, kind: SubjectKind) -> Self {
        self.kind = kind;
        self
    }
}

/// Where users and their password hashes live.
///
/// **Names.** Basic authentication passes every name it receives through
/// [`canonical_name`](Self::canonical_name) first, and uses only the result: for the lockout
/// counters, the one-check-at-a-time turn per user, the verified cache and
/// [`find_user`](Self::find_user). A store that matches names loosely (case-insensitively, with
/// Unicode normalisation, …) must say so in `canonical_name`, or each spelling of a name gets
/// its own lockout counter and an attacker gets fresh guesses per spelling.
pub trait UserStore: fmt::Debug + Send + Sync + 'static {
    /// The one spelling of `name` that every equivalent spelling maps to: two names
    /// [`find_user`](Self::find_user) treats as the same user must give the same canonical
    /// name. Applied to every name, known or not, in the same way (so it tells nothing about
    /// which users exist); it must not do I/O. Defaults to `name` unchanged, which is right for
    /// a store that compares names exactly (the built-in ones do).
    fn canonical_name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(name)
    }

    /// The user named `name`, if any. Basic calls it with the canonical name
    /// ([`canonical_name`](Self::canonical_name)); it must find exactly the users whose names
    /// are equivalent to it, by the store's own comparison, and no others.
    fn find_user<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, StoreError>>;

    /// Adds a user; `Conflict` if the name is taken. Durable when it returns.
    fn create_user(&self, user: UserRecord) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Sets a user's password hash; `NotFound` if there is no such user.
    fn set_password_hash<'a>(
        &'a self,
        name: &'a str,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Replaces the hash only if it is still `expected` (used to upgrade a hash after login
    /// without overwriting a password changed meanwhile). Returns whether it replaced it.
    fn replace_password_hash<'a>(
        &'a self,
        name: &'a str,
        expected: &'a PasswordHash,
        hash: PasswordHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Enables or disables a user; `NotFound` if there is no such user.
    fn set_disabled<'a>(
        &'a self,
        name: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every user, by name.
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>, StoreError>>;

    /// A cheap query proving the store answers (one row at most read from the users table),
    /// for [`Gate::readiness`](crate::Gate::readiness); `Unavailable` when it does not. The
    /// default answers `Ok` at once: a store of your own is then not checked.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A user store and an API key store, as [`open_store`] returns them.
///
/// For the SQL backends both are views of one store (one connection pool, one database).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Stores {
    /// Users and their password hashes.
    pub users: Arc<dyn UserStore>,
    /// API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
}

impl Stores {
    /// Empty in-memory stores: [`MemoryUserStore`] and [`MemoryApiKeyStore`].
    pub fn memory() -> Self {
        Self {
            users: Arc::new(MemoryUserStore::new()),
            api_keys: Arc::new(MemoryApiKeyStore::new()),
        }
    }

    /// Both views of one store that keeps users and keys, such as a SQL store.
    pub fn shared<S: UserStore + ApiKeyStore>(store: Arc<S>) -> Self {
        Self {
            users: store.clone(),
            api_keys: store,
        }
    }
}

/// Opens the stores a URL names, creating and migrating the database if needed:
///
/// | URL | Store | Feature |
/// |-----|-------|---------|
/// | `memory` | [`MemoryUserStore`] and [`MemoryApiKeyStore`]; nothing survives the process | |
/// | `sqlite://PATH`, `sqlite:PATH` | `SqliteStore` on the file `PATH`, created if missing | `sqlite` |
/// | `sqlite::memory:` | `SqliteStore` on a private in-memory database | `sqlite` |
/// | `postgres://…`, `postgresql://…` | `PostgresStore` | `postgres` |
///
/// # Errors
///
/// `Invalid` for an unknown scheme or one whose feature is not compiled in (see
/// [`check_store_url`]), and the errors of `SqliteStore::open` and `PostgresStore::connect`:
/// `Unavailable` when the database cannot be reached. Messages never quote the URL, which may
/// hold a password.
///
/// A PostgreSQL server on another host must be reached with `sslmode=verify-full`; see
/// [`StoreOptions::dangerous_allow_unverified_tls`] and [`open_store_with`].
pub async fn open_store(url: &str) -> Result<Stores, StoreError> {
    open_store_with(url, &StoreOptions::default()).await
}

/// [`open_store`] with options.
///
/// # Errors
///
/// As [`open_store`].
pub async fn open_store_with(url: &str, options: &StoreOptions) -> Result<Stores, StoreError> {
    #[cfg(not(feature = "postgres"))]
    let _ = options;
    match backend(url)? {
        Backend::Memory => Ok(Stores::memory()),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => Ok(Stores::shared(Arc::new(SqliteStore::open(url).await?))),
        #[cfg(feature = "postgres")]
        Backend::Postgres => Ok(Stores::shared(Arc::new(
            PostgresStore::connect_with(url, options).await?,
        ))),
    }
}

/// How [`open_store_with`] and `PostgresStore::connect_with` open a store.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Connects to a PostgreSQL server on another host with a `sslmode` weaker than
    /// `verify-full` (`disable`, `allow`, `prefer`, the default, `require`, `verify-ca`).
    ///
    /// Insecure: with any of these, whoever sits on the network path can read the password
    /// hashes and API key digests, and answer the users query themselves to log in as anyone
    /// (`prefer` and `allow` fall back to plaintext; `require` and `verify-ca` check no host
    /// name). Unix sockets and loopback addresses are never refused. Defaults to `false`.
    pub dangerous_allow_unverified_tls: bool,
}

impl StoreOptions {
    /// The defaults: see each field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`dangerous_allow_unverified_tls`](Self::dangerous_allow_unverified_tls).
    #[must_use]
    pub fn dangerous_allow_unverified_tls(mut self, allow: bool) -> Self {
        self.dangerous_allow_unverified_tls = allow;
        self
    }
}

/// Checks that [`open_store`] knows `url`'s scheme and that its feature is compiled in, without
/// connecting to anything.
///
/// # Errors
///
/// `Invalid`, with a message naming the scheme (never the whole URL, which may hold a password).
pub fn check_store_url(url: &str) -> Result<(), StoreError> {
    backend(url).map(|_| ())
}

enum Backend {
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

fn backend(url: &str) -> Result<Backend, StoreError> {
    if url == "memory" {
        return Ok(Backend::Memory);
    }
    let Some((scheme, _)) = url.split_once(':') else {
        return Err(StoreError::new(
            StoreErrorKind::Invalid,
            "not a store URL: expected `memory`, `sqlite://PATH`, `sqlite::memory:` or \
             `postgres://...`",
        ));
    };
    #[cfg(not(all(feature = "sqlite", feature = "postgres")))]
    let missing = |feature: &str| {
        StoreError::new(
            StoreErrorKind::Invalid,
            format!(
                "store URL scheme `{scheme}` needs portcullis built with the `{feature}` feature"
            ),
        )
    };
    match scheme.to_ascii_lowercase().as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Backend::Sqlite),
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => Err(missing("sqlite")),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(missing("postgres")),
        _ => Err(StoreError::new(
            StoreErrorKind::Invalid,
            format!(
                "unknown store URL scheme `{scheme}`: expected `memory`, `sqlite://PATH`, \
                 `sqlite::memory:` or `postgres://...`"
            ),
        )),
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn unknown_schemes_are_invalid_and_never_quote_the_url() {
        for url in [
            "mysql://u:hunter2@db/x",
            "redis://h",
            "/var/lib/auth.db",
            "",
        ] {
            let err = check_store_url(url).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Invalid, "{url}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        assert!(check_store_url("memory").is_ok());
    }

    #[test]
    fn schemes_follow_the_compiled_features() {
        for (url, feature, compiled) in [
            ("sqlite://auth.db", "sqlite", cfg!(feature = "sqlite")),
            ("sqlite::memory:", "sqlite", cfg!(feature = "sqlite")),
            (
                "postgres://u:hunter2@h/db",
                "postgres",
                cfg!(feature = "postgres"),
            ),
            ("postgresql://h/db", "postgres", cfg!(feature = "postgres")),
        ] {
            match check_store_url(url) {
                Ok(()) => assert!(compiled, "{url}"),
                Err(err) => {
                    assert!(!compiled, "{url}: {err}");
                    assert_eq!(err.kind(), StoreErrorKind::Invalid);
                    assert!(err.to_string().contains(feature), "{err}");
                    assert!(!err.to_string().contains("hunter2"), "{err}");
                }
            }
        }
    }

    #[tokio::test]
    async fn memory_opens_empty_stores() {
        let stores = open_store("memory").await.unwrap();
        assert!(stores.users.list_users().await.unwrap().is_empty());
        assert!(stores.api_keys.list(None).await.unwrap().is_empty());
    }
}
