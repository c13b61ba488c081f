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
use portcullis::store::{ApiKeyStore, UserRecord, UserStore, open_store};
use portcullis::{ApiKeys, Config, NewApiKey, SecretString, SubjectKind, parse_duration};

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
}

impl Admin {
    async fn open(args: StoreArgs) -> Result<Self, String> {
        if let Some(path) = &args.config {
            let config = Config::from_file(path).map_err(|e| e.to_string())?;
            let services = config.build_services().await.map_err(|e| e.to_string())?;
            return Ok(Self {
                users: services.users,
                api_keys: services.api_key_store,
                pool: services.basic.map(|b| b.hashing_pool().clone()),
                keys: services.api_keys,
                args,
            });
        }
        let url = args
            .db
            .clone()
            .ok_or("no store: give --db URL, --config FILE or set PORTCULLIS_DB")?;
        let stores = open_store(&url).await.map_err(|e| e.to_string())?;
        Ok(Self {
            users: stores.users,
            api_keys: stores.api_keys,
            pool: None,
            keys: None,
            args,
        })
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

    fn keys(&mut self) -> Result<ApiKeys, String> {
        if let Some(keys) = &self.keys {
            return Ok(keys.clone());
        }
        let pepper = match &self.args.pepper_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => std::env::var(DEFAULT_PEPPER_ENV)
                .map_err(|_| format!("set {DEFAULT_PEPPER_ENV} or give --pepper-file"))?,
        };
        let mut builder = ApiKeys::builder(Arc::clone(&self.api_keys), SecretString::new(pepper));
        if let Some(cap) = self.args.max_lifetime {
            builder = builder.max_lifetime(cap);
        }
        let keys = builder.build().map_err(|e| e.to_string())?;
        self.keys = Some(keys.clone());
        Ok(keys)
    }
}

fn read_password() -> Result<SecretString, String> {
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
    let mut admin = Admin::open(args).await?;
    match command {
        UserCommand::Add {
            name,
            groups,
            application,
        } => {
            let password = read_password()?;
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
    }
    Ok(())
}

pub(crate) async fn key(args: StoreArgs, command: KeyCommand) -> Result<(), String> {
    let mut admin = Admin::open(args).await?;
    let keys = admin.keys()?;
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
                        if record.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        }
        KeyCommand::Revoke { id } => {
            keys.revoke(&id).await.map_err(|e| e.to_string())?;
            eprintln!("key {id} revoked");
        }
        KeyCommand::Rotate { id, overlap } => {
            let issued = keys.rotate(&id, overlap).await.map_err(|e| e.to_string())?;
            eprintln!("key {id} keeps working for {}s", overlap.as_secs());
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

fn describe(record: &portcullis::ApiKeyRecord) {
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
