//! `portcullis`: the admin command. Manages users and API keys in a store, validates and explains
//! configuration files, and hashes passwords. Errors are one line on stderr with a non-zero exit,
//! and nothing is half-written.

mod admin;
mod token;

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::basic::{HashingConfig, HashingPool};
use portcullis::{Config, RequestView, SecretString};

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
    /// Reads a password from stdin (one line) and prints its argon2id PHC hash.
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
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("empty password on stdin".to_owned());
            }
            let pool = HashingPool::new(HashingConfig::default()).map_err(|e| e.to_string())?;
            let hash = pool
                .hash(&SecretString::new(password))
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", hash.expose_phc());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => match Config::from_file(&file) {
            Ok(_) => {
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

/// Reads a secret file given on the command line, warning on stderr (before reading) when its
/// group or everyone may read it.
pub(crate) fn read_secret_file(path: &std::path::Path, what: &str) -> Result<String, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o044 != 0 {
                eprintln!(
                    "warning: the {what} file {} is readable by group or others (mode {mode:04o}): \
                     make it 0400 or 0600",
                    path.display()
                );
            }
        }
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
