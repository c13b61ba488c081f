//! `portcullis user …` and `portcullis key …`: manage users and API keys in a store.
//!
//! The store comes from `--config FILE` (its `[store]`, `[basic]` and `[api_keys]` sections) or
//! from `--db URL` with the pepper in `PORTCULLIS_API_KEY_PEPPER` or `--pepper-file`. A new key
//! is printed alone on stdout so scripts can capture it; details go to stderr.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use portcullis::basic::{HashingConfig, HashingPool};
use portcullis::config::DEFAULT_PEPPER_ENV;
use portcullis::store::{ApiKeyStore, StoreOptions, UserRecord, UserStore, open_store_with};
use portcullis::{ApiKeys, NewApiKey, SecretString, SubjectKind};

use crate::duration::parse_duration;
use crate::sqlite_file::missing_sqlite_file;
use portcullis::config::Config;

/// Where the store is.
#[derive(Args, Clone, Debug)]
pub(crate) struct StoreArgs {
    /// Database URL: `sqlite://PATH`, `postgres://…` or `memory`.
    #[arg(long, env = "PORTCULLIS_DB", global = true)]
    db: Option<String>,
    /// A configuration file whose `[store]`, `[basic]` and `[api_keys]` sections to use.
    #[arg(long, env = "PORTCULLIS_CONFIG", global = true, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// File holding the API key pepper (else the `PORTCULLIS_API_KEY_PEPPER` variable).
    #[arg(long, global = true)]
    pepper_file: Option<PathBuf>,
    /// The longest lifetime a new key may have (with `--db`; a config file sets its own).
    #[arg(long, global = true, value_parser = duration)]
    max_lifetime: Option<Duration>,
    /// With `--db`: connect to a PostgreSQL server on another host without `sslmode=verify-full`.
    /// Insecure: anyone on the network path can read the hashes or answer as the database.
    #[arg(long, global = true)]
    dangerous_allow_unverified_tls: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Adds a user; the password is read from stdin (one line).
    Add {
        /// The login name.
        name: String,
        /// A group; repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The user is an application (machine-to-machine).
        #[arg(long)]
        application: bool,
    },
    /// Sets a user's password, read from stdin (one line).
    Passwd {
        /// The login name.
        name: String,
    },
    /// Disables a user (or enables one again with `--enable`).
    Disable {
        /// The login name.
        name: String,
        /// Enable instead.
        #[arg(long)]
        enable: bool,
    },
    /// Lists users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Creates a key and prints it (alone) on stdout.
    Create {
        /// The user (or, with --application, the application) the key acts as.
        #[arg(long)]
        owner: String,
        /// The owner is an application rather than a user.
        #[arg(long)]
        application: bool,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
        /// How long the key lives (e.g. 30d, 12h).
        #[arg(long, value_parser = duration)]
        expires_in: Option<Duration>,
        /// A scope; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A group; repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Lists keys (never their secrets).
    List {
        /// Only this owner's keys.
        #[arg(long)]
        owner: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a key at once.
    Revoke {
        /// The key id.
        id: String,
    },
    /// Replaces a key; the old one keeps working for the overlap. Prints the new key.
    Rotate {
        /// The key id.
        id: String,
        /// How long the old key keeps working.
        #[arg(long, default_value = "1h", value_parser = duration)]
        overlap: Duration,
    },
    /// Deletes a key's record.
    Delete {
        /// The key id.
        id: String,
    },
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

struct Admin {
    users: Arc<dyn UserStore>,
    api_keys: Arc<dyn ApiKeyStore>,
    pool: Option<HashingPool>,
    keys: Option<ApiKeys>,
    args: StoreArgs,
    /// The SQLite file this command created, removed again if the command fails.
    created: Option<PathBuf>,
}

/// Whether a command may create the database file: only one that adds data to it. Anything else
/// run against a missing (say, mistyped) path fails instead of leaving a new, empty database.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Creates {
    Yes,
    No,
}

impl StoreArgs {
    /// The configuration file given with `--config` (or `PORTCULLIS_CONFIG`), if any.
    pub(crate) fn config_file(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }
}

impl Admin {
    async fn open(args: StoreArgs, creates: Creates) -> Result<Self, String> {
        if let Some(path) = &args.config {
            let config = Config::from_file(path).map_err(|e| e.to_string())?;
            let services = config.build_services().await.map_err(|e| e.to_string())?;
            return Ok(Self {
                users: services.users,
                api_keys: services.api_key_store,
                pool: services.basic.map(|b| b.hashing_pool().clone()),
                keys: services.api_keys,
                args,
                created: None,
            });
        }
        let url = args
            .db
            .clone()
            .ok_or("no store: give --db URL, --config FILE or set PORTCULLIS_DB")?;
        let missing = missing_sqlite_file(&url);
        if let Some(path) = &missing
            && creates == Creates::No
        {
            return Err(format!(
                "no database at `{}` (only `user add` and `key create --application` create one)",
                path.display()
            ));
        }
        let options =
            StoreOptions::new().dangerous_allow_unverified_tls(args.dangerous_allow_unverified_tls);
        let stores = open_store_with(&url, &options)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            users: stores.users,
            api_keys: stores.api_keys,
            pool: None,
            keys: None,
            args,
            created: missing,
        })
    }

    /// Removes the database file this command created (with SQLite's side files), so a failed
    /// command leaves nothing behind. Only while it is still empty: another command may have
    /// created the same file at the same moment, and written to it since.
    async fn discard_created(self) {
        let Some(path) = self.created else { return };
        let users = self.users.list_users().await.map(|users| users.is_empty());
        let keys = self.api_keys.list(None).await.map(|keys| keys.is_empty());
        if !(matches!(users, Ok(true)) && matches!(keys, Ok(true))) {
            return;
        }
        // Let go of the connections first; removal is best effort, like any cleanup on error.
        drop((self.users, self.api_keys, self.keys));
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }

    fn pool(&mut self) -> Result<HashingPool, String> {
        if self.pool.is_none() {
            self.pool =
                Some(HashingPool::new(HashingConfig::default()).map_err(|e| e.to_string())?);
        }
        self.pool
            .clone()
            .ok_or_else(|| "no hashing pool".to_owned())
    }

    /// The key manager: the config file's, or one over the store with `pepper`.
    fn keys(&mut self, pepper: Result<SecretString, String>) -> Result<ApiKeys, String> {
        if let Some(keys) = &self.keys {
            return Ok(keys.clone());
        }
        let mut builder = ApiKeys::builder(Arc::clone(&self.api_keys), pepper?);
        if let Some(cap) = self.args.max_lifetime {
            builder = builder.max_lifetime(cap);
        }
        let keys = builder.build().map_err(|e| e.to_string())?;
        self.keys = Some(keys.clone());
        Ok(keys)
    }
}

/// The pepper from `--pepper-file` or the environment.
fn read_pepper(args: &StoreArgs) -> Result<SecretString, String> {
    let pepper = match &args.pepper_file {
        Some(path) => crate::secret_file::read_secret_file(path, "pepper")
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => std::env::var(DEFAULT_PEPPER_ENV)
            .map_err(|_| format!("set {DEFAULT_PEPPER_ENV} or give --pepper-file"))?,
    };
    Ok(SecretString::new(pepper))
}

/// One line from stdin, without its line ending; an empty one is refused.
pub(crate) fn read_password() -> Result<SecretString, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("empty password on stdin".to_owned());
    }
    Ok(SecretString::new(password))
}

pub(crate) async fn user(args: StoreArgs, command: UserCommand) -> Result<(), String> {
    // Read before opening the store, so an empty password writes nothing.
    let (password, creates) = match &command {
        UserCommand::Add { .. } => (Some(read_password()?), Creates::Yes),
        _ => (None, Creates::No),
    };
    let mut admin = Admin::open(args, creates).await?;
    let result = user_in(&mut admin, command, password).await;
    if result.is_err() {
        admin.discard_created().await;
    }
    result
}

async fn user_in(
    admin: &mut Admin,
    command: UserCommand,
    password: Option<SecretString>,
) -> Result<(), String> {
    match command {
        UserCommand::Add {
            name,
            groups,
            application,
        } => {
            let password = password.ok_or("no password read")?;
            let hash = admin
                .pool()?
                .hash(&password)
                .await
                .map_err(|e| e.to_string())?;
            let kind = if application {
                SubjectKind::Application
            } else {
                SubjectKind::User
            };
            let user = UserRecord::new(&name, hash)
                .with_groups(groups)
                .with_kind(kind);
            admin
                .users
                .create_user(user)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("user {name} added");
        }
        UserCommand::Passwd { name } => {
            if admin
                .users
                .find_user(&name)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!("no user named `{name}`"));
            }
            let password = read_password()?;
            let hash = admin
                .pool()?
                .hash(&password)
                .await
                .map_err(|e| e.to_string())?;
            admin
                .users
                .set_password_hash(&name, hash)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("password of {name} changed");
        }
        UserCommand::Disable { name, enable } => {
            admin
                .users
                .set_disabled(&name, !enable)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "user {name} {}",
                if enable { "enabled" } else { "disabled" }
            );
        }
        UserCommand::List { json } => {
            let users = admin.users.list_users().await.map_err(|e| e.to_string())?;
            print_users(&users, json);
        }
    }
    Ok(())
}

pub(crate) async fn key(args: StoreArgs, command: KeyCommand) -> Result<(), String> {
    // Read before the store is opened, so a missing pepper writes nothing. A configuration file
    // with an `[api_keys]` section brings its own, so there a missing one matters only later.
    let pepper = read_pepper(&args);
    if args.config.is_none()
        && let Err(err) = &pepper
    {
        return Err(err.clone());
    }
    // A key for a user needs that user, so only an application's key can start a new database.
    let creates = match &command {
        KeyCommand::Create {
            application: true, ..
        } => Creates::Yes,
        _ => Creates::No,
    };
    let mut admin = Admin::open(args, creates).await?;
    let result = key_in(&mut admin, command, pepper).await;
    if result.is_err() {
        admin.discard_created().await;
    }
    result
}

async fn key_in(
    admin: &mut Admin,
    command: KeyCommand,
    pepper: Result<SecretString, String>,
) -> Result<(), String> {
    let keys = admin.keys(pepper)?;
    match command {
        KeyCommand::Create {
            owner,
            application,
            name,
            expires_in,
            scopes,
            groups,
        } => {
            let mut new = if application {
                NewApiKey::application(&owner)
            } else {
                let user = admin
                    .users
                    .find_user(&owner)
                    .await
                    .map_err(|e| e.to_string())?;
                if user.is_none() {
                    return Err(format!(
                        "unknown owner `{owner}` (add the user first, or pass --application)"
                    ));
                }
                NewApiKey::new(&owner)
            };
            new = new
                .with_name(name)
                .with_scopes(scopes)
                .with_groups(groups)
                .with_created_by(whoami());
            if let Some(lifetime) = expires_in {
                new = new.with_expires_in(lifetime);
            }
            let issued = keys.create(new).await.map_err(|e| e.to_string())?;
            describe(issued.record());
            println!("{}", issued.key().expose_secret());
        }
        KeyCommand::List { owner, json } => {
            let list = keys
                .list(owner.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            print_keys(&list, json)?;
        }
        KeyCommand::Revoke { id } => {
            keys.revoke(&id).await.map_err(|e| e.to_string())?;
            eprintln!("key {id} revoked");
        }
        KeyCommand::Rotate { id, overlap } => {
            let issued = keys.rotate(&id, overlap).await.map_err(|e| e.to_string())?;
            // The old key's own expiry may come before the overlap ends: say when it really does.
            match keys.get(&id).await.map(|old| old.expires_at) {
                Ok(Some(end)) if end > chrono::Utc::now() => {
                    eprintln!("key {id} keeps working until {}", end.to_rfc3339());
                }
                Ok(Some(_)) => eprintln!("key {id} no longer works"),
                // Rotation always sets an end. A failed read must not hide the new key below.
                Ok(None) | Err(_) => eprintln!("key {id} replaced (could not read its end)"),
            }
            describe(issued.record());
            println!("{}", issued.key().expose_secret());
        }
        KeyCommand::Delete { id } => {
            keys.delete(&id).await.map_err(|e| e.to_string())?;
            eprintln!("key {id} deleted");
        }
    }
    keys.flush().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// `user list`: one line per user, or a JSON array.
fn print_users(users: &[UserRecord], json: bool) {
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "name": u.name, "kind": u.kind, "groups": u.groups,
                    "disabled": u.disabled, "created_at": u.created_at,
                    "updated_at": u.updated_at,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for u in users {
            let state = if u.disabled { "disabled" } else { "enabled" };
            println!(
                "{}\t{:?}\t{}\t{}",
                u.name,
                u.kind,
                u.groups.join(","),
                state
            );
        }
    }
}

/// `key list`: one line per key, or a JSON array.
fn print_keys(list: &[portcullis::store::ApiKeyRecord], json: bool) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string(&list).map_err(|e| e.to_string())?
        );
    } else {
        for record in list {
            println!(
                "{}\t{}\t{}\texpires {}\t{}",
                record.id,
                record.owner,
                record.name,
                record
                    .expires_at
                    .map_or("never".to_owned(), |t| t.to_rfc3339()),
                match (record.revoked_at.is_some(), record.self_served) {
                    (true, false) => "revoked",
                    (false, false) => "active",
                    (true, true) => "revoked, self-served",
                    (false, true) => "active, self-served",
                }
            );
        }
    }
    Ok(())
}

fn describe(record: &portcullis::store::ApiKeyRecord) {
    eprintln!(
        "key id {} for {} ({:?}), expires {}",
        record.id,
        record.owner,
        record.owner_kind,
        record
            .expires_at
            .map_or("never".to_owned(), |t| t.to_rfc3339())
    );
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".to_owned())
}
