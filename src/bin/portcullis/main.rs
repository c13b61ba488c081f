//! `portcullis`: the admin command. Manages users and API keys in a store, validates and explains
//! configuration files, and hashes passwords. Errors are one line on stderr with a non-zero exit,
//! and nothing is half-written.

mod admin;
// The library's duration syntax, compiled in from the same file: it is not part of the API.
#[path = "../../duration.rs"]
mod duration;
// The store's check for a SQLite file that opening would create, compiled in likewise.
#[path = "../../store/sqlite_file.rs"]
mod sqlite_file;
// The library's one reader of secret files (pepper, HMAC key), compiled in likewise: the
// command reads a file as the same secret a service does.
#[path = "../../secret_file.rs"]
mod secret_file;
mod token;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::RequestView;
use portcullis::basic::{HashingConfig, HashingPool};
use portcullis::config::Config;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Administer portcullis credentials and configuration"
)]
struct Cli {
    #[command(flatten)]
    store: admin::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reads a password from stdin (one line) and prints its argon2id PHC hash, at the cost of
    /// `[basic.hashing]` in the `--config` file (else at the default cost).
    HashPassword,
    /// Users who log in with HTTP Basic.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// API keys: create, list, revoke, rotate, delete.
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Bearer tokens: verify a JWT as the Gate would.
    Token(token::TokenArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates a configuration file: exit 0, or the error with line, column and key and exit 1.
    /// Warns (exit 0) about each user whose stored hash is costlier than `[basic.hashing]`.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
    /// Builds the Gate from a file and prints what it decides for one request. The last line
    /// starts with `allow` or `deny`; the exit status is 0 for allow, 1 for deny (2 for errors).
    Explain {
        /// The TOML file.
        file: PathBuf,
        /// The request method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request path (with query, if any).
        #[arg(long)]
        path: String,
        /// The TCP peer address.
        #[arg(long)]
        peer: Option<IpAddr>,
        /// A request header, `Name: value`; repeatable.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    print_warnings();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match run(cli.store, cli.command).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Help and version print as clap prints them; any other mistake on the command line is one line
/// on stderr (what clap says before its usage notes) and exit status 2, like every other error.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;

    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let rendered = err.render().to_string();
    let first_paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    eprintln!("{}", first_paragraph.join(" "));
    ExitCode::from(2)
}

async fn run(store: admin::StoreArgs, command: Command) -> Result<ExitCode, String> {
    match command {
        Command::User(command) => admin::user(store, command)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Key(command) => admin::key(store, command).await.map(|()| ExitCode::SUCCESS),
        Command::Token(args) => token::run(args).await,
        Command::HashPassword => {
            let password = admin::read_password()?;
            // Read before hashing, so a bad file is reported at once; with `--config`, the
            // stored hash then costs what the Gate's own refusals cost (issue #15 item 4).
            let hashing = match store.config_file() {
                Some(path) => Config::from_file(path)
                    .map_err(|e| e.to_string())?
                    .hashing()
                    .unwrap_or_default(),
                None => HashingConfig::default(),
            };
            let pool = HashingPool::new(hashing).map_err(|e| e.to_string())?;
            let hash = pool.hash(&password).await.map_err(|e| e.to_string())?;
            println!("{}", hash.expose_phc());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => match Config::from_file(&file) {
            Ok(config) => {
                warn_costlier_hashes(&file, &config).await;
                println!("{}: ok", file.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprintln!("{err}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Config(ConfigCommand::Explain {
            file,
            method,
            path,
            peer,
            headers,
        }) => {
            let gate = Config::from_file(&file)
                .map_err(|e| e.to_string())?
                .build()
                .await
                .map_err(|e| e.to_string())?;
            let mut request = http::Request::builder()
                .method(method.as_str())
                .uri(path.as_str());
            for header in &headers {
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| format!("--header `{header}` is not `Name: value`"))?;
                request = request.header(name.trim(), value.trim());
            }
            let request = request
                .body(())
                .map_err(|e| format!("invalid request: {e}"))?;
            let (parts, ()) = request.into_parts();
            let view =
                RequestView::from_parts(&parts).with_peer(peer.map(|ip| SocketAddr::new(ip, 0)));
            let explanation = gate.explain(&view).await;
            println!("{explanation}");
            Ok(if explanation.result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Warns on stderr, one line per user, about each stored password hash costlier than the pool's
/// `[basic.hashing]` cost: a wrong password for that user takes longer to refuse than one for an
/// unknown user, which tells that the user exists (`docs/security.md`, issue #15 item 4). Weaker
/// hashes are padded to the pool's cost and need no warning. Never prints a hash. A warning, not
/// an error: the file is valid, so the exit status stays 0, also when the store cannot be read.
async fn warn_costlier_hashes(file: &std::path::Path, config: &Config) {
    let Some(hashing) = config.hashing() else {
        return;
    };
    let users = match config.users().await {
        Ok(users) => users,
        Err(err) => {
            eprintln!(
                "warning: {}: cannot list the users to compare their hash costs with \
                 [basic.hashing]: {err}",
                file.display()
            );
            return;
        }
    };
    if users.is_empty() {
        return;
    }
    let pool = match HashingPool::new(hashing) {
        Ok(pool) => pool,
        Err(err) => {
            eprintln!("warning: {}: {err}", file.display());
            return;
        }
    };
    let pool_cost = format!(
        "m={}, t={}, p={}",
        hashing.memory_kib, hashing.iterations, hashing.parallelism
    );
    for user in users
        .iter()
        .filter(|user| pool.costlier_than_pool(&user.password_hash))
    {
        eprintln!(
            "warning: {}: user {:?}: stored password hash costs {}, more than [basic.hashing] \
             ({pool_cost}): refusing a wrong password for this user takes longer than for an \
             unknown user, which tells that the user exists; hash the password again at the \
             pool's cost (`portcullis user passwd`, or `portcullis hash-password --config \
             FILE` for an inline user)",
            file.display(),
            user.name,
            stored_cost(&user.password_hash),
        );
    }
}

/// A stored hash's argon2 cost as `m=…, t=…, p=…`, never the hash itself.
fn stored_cost(hash: &portcullis::store::PasswordHash) -> String {
    argon2::PasswordHash::new(hash.expose_phc())
        .ok()
        .and_then(|parsed| argon2::Params::try_from(&parsed).ok())
        .map_or_else(
            || "an unknown cost".to_owned(),
            |params| {
                format!(
                    "m={}, t={}, p={}",
                    params.m_cost(),
                    params.t_cost(),
                    params.p_cost()
                )
            },
        )
}

/// Prints portcullis's own warnings (target `portcullis…`, level WARN and above) on stderr, one
/// line each: a configuration this command loads can be unsafe in ways that are not errors, such
/// as a secret file others can read. Nothing else is logged.
fn print_warnings() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let warnings = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("portcullis", tracing::Level::WARN),
        );
    let _ = tracing_subscriber::registry().with(warnings).try_init();
}
