//! Lists portcullis's public API from rustdoc's JSON output, one item per line.
//!
//! `cargo run --manifest-path tools/public-api/Cargo.toml` rewrites `public-api.txt`;
//! with `--check` it fails when the file is not current (CI). Rustdoc's JSON output is
//! unstable: `RUSTC_BOOTSTRAP=1` lets the stable toolchain write it, and the `public-api`
//! version pinned in `Cargo.toml` must read the format that toolchain writes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The most names the crate root may hold, modules included (docs/architecture.md).
const MAX_ROOT_NAMES: usize = 40;

/// Root modules not counted against `MAX_ROOT_NAMES`: the test kit, compiled only with feature
/// `test-util`, which services enable under `[dev-dependencies]`, so it is never part of the
/// API a service builds against; and `self_service`, an HTTP API of its own that a service
/// mounts (one type and its builder), not vocabulary its handlers name (docs/architecture.md).
const NOT_COUNTED: [&str; 2] = ["testing", "self_service"];

/// Public types that may be exhaustive: newtypes whose one public field is their whole meaning,
/// listed as closed on purpose in docs/architecture.md.
const CLOSED_ON_PURPOSE: [&str; 4] = [
    "portcullis::PeerAddr",
    "portcullis::extract::Claims",
    "portcullis::extract::ClientCertificate",
    "portcullis::policy::KindIs",
];

fn main() -> ExitCode {
    let check = std::env::args().any(|arg| arg == "--check");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A directory of its own: `RUSTC_BOOTSTRAP` changes the fingerprint of build scripts that
    // watch it (aws-lc-sys), which would otherwise rebuild them in the main target directory.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("public-api");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "rustdoc",
            "--lib",
            "--all-features",
            "--quiet",
            "--target-dir",
        ])
        .arg(&target)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .status()
        .expect("cargo runs");
    if !status.success() {
        eprintln!("cargo rustdoc failed: {status}");
        return ExitCode::FAILURE;
    }
    let json = target.join("doc/portcullis.json");
    let api = match public_api::Builder::from_rustdoc_json(&json)
        // Only what portcullis declares: no blanket or auto-trait impls, which change with
        // dependencies, not with this crate.
        .omit_blanket_impls(true)
        .omit_auto_trait_impls(true)
        .build()
    {
        Ok(api) => api,
        Err(error) => {
            eprintln!("reading {}: {error}", json.display());
            return ExitCode::FAILURE;
        }
    };
    let listing = format!("{api}\n");
    let mut at_root = root_names(&listing);
    at_root.retain(|name| !NOT_COUNTED.contains(name));
    println!(
        "{} names at the crate root: {}",
        at_root.len(),
        at_root.join(", ")
    );
    if at_root.len() > MAX_ROOT_NAMES {
        eprintln!("more than {MAX_ROOT_NAMES} names at the crate root (docs/architecture.md)");
        return ExitCode::FAILURE;
    }
    let closed = exhaustive_types(&listing);
    if !closed.is_empty() {
        eprintln!(
            "not #[non_exhaustive] and not closed on purpose (docs/architecture.md): {}",
            closed.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let file = root.join("public-api.txt");
    if check {
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if committed == listing {
            println!("public-api.txt is current ({} items)", api.items().count());
            return ExitCode::SUCCESS;
        }
        let new = target.join("public-api.new.txt");
        std::fs::write(&new, &listing).ok();
        eprintln!(
            "public-api.txt is not current: the public API changed. Diff:\n  \
             diff public-api.txt {}\nand rewrite it with \
             `cargo run --manifest-path tools/public-api/Cargo.toml`",
            new.display()
        );
        return ExitCode::FAILURE;
    }
    std::fs::write(&file, listing).expect("public-api.txt is writable");
    println!("wrote public-api.txt ({} items)", api.items().count());
    ExitCode::SUCCESS
}

/// The items declared at the crate root (`portcullis::Name`), modules included, from the listing's
/// lines such as `#[non_exhaustive] pub enum portcullis::Scheme`.
fn root_names(listing: &str) -> Vec<&str> {
    let mut names: Vec<&str> = listing
        .lines()
        .map(|line| line.trim_start_matches(|c| c != 'p').trim_start())
        .filter_map(|line| {
            let rest = [
                "pub struct ",
                "pub enum ",
                "pub trait ",
                "pub mod ",
                "pub type ",
            ]
            .iter()
            .find_map(|kind| line.strip_prefix(kind))?;
            let path = rest.split([' ', '<', '(']).next()?.trim_end_matches(':');
            let name = path.strip_prefix("portcullis::")?;
            (!name.is_empty() && !name.contains("::")).then_some(name)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Public enums, and public structs with a public field, that are not `#[non_exhaustive]` and not
/// [`CLOSED_ON_PURPOSE`]: a new variant or field in them would break users.
fn exhaustive_types(listing: &str) -> Vec<String> {
    let path_of = |rest: &str| {
        let path = rest.split([' ', '<', '(']).next()?;
        Some(path.trim_end_matches(':').to_owned())
    };
    let mut growable = std::collections::BTreeSet::new();
    let mut structs = std::collections::BTreeMap::new();
    let mut found = Vec::new();
    for line in listing.lines() {
        let non_exhaustive = line.starts_with("#[non_exhaustive] ");
        let line = line.trim_start_matches("#[non_exhaustive] ");
        if let Some(path) = line.strip_prefix("pub enum ").and_then(path_of) {
            if !non_exhaustive {
                found.push(path);
            }
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            let Some(path) = path_of(rest) else { continue };
            if non_exhaustive {
                growable.insert(path.clone());
            }
            // A tuple struct with a public field: `pub struct portcullis::PeerAddr(pub …)`.
            structs.insert(path, rest.contains("(pub "));
        }
    }
    // Named fields: `pub portcullis::basic::HashingConfig::memory_kib: u32`.
    for line in listing.lines() {
        let Some(field) = line.strip_prefix("pub portcullis::") else {
            continue;
        };
        let Some((path, _type)) = field.split_once(": ") else {
            continue;
        };
        let path = format!("portcullis::{path}");
        if let Some((owner, _field)) = path.rsplit_once("::") {
            if let Some(has_field) = structs.get_mut(owner) {
                *has_field = true;
            }
        }
    }
    found.extend(
        structs
            .into_iter()
            .filter(|(path, has_public_field)| *has_public_field && !growable.contains(path))
            .map(|(path, _)| path),
    );
    found.retain(|path| !CLOSED_ON_PURPOSE.contains(&path.as_str()));
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
pub mod portcullis
pub mod portcullis::basic
#[non_exhaustive] pub struct portcullis::basic::HashingConfig
pub portcullis::basic::HashingConfig::memory_kib: u32
pub struct portcullis::basic::Open
pub portcullis::basic::Open::field: u32
pub struct portcullis::basic::Opaque
pub fn portcullis::basic::Opaque::new() -> Self
pub enum portcullis::basic::Shut
#[non_exhaustive] pub enum portcullis::Scheme
pub struct portcullis::PeerAddr(pub core::net::socket_addr::SocketAddr)
pub struct portcullis::Newtype(pub u8)
pub trait portcullis::Policy: core::fmt::Debug
pub type portcullis::BoxFuture<'a, T> = core::pin::Pin<T>
pub type portcullis::GateLayer::Service = portcullis::tower::GateService<S>
";

    #[test]
    fn root_names_are_the_items_directly_under_the_crate() {
        assert_eq!(
            root_names(LISTING),
            [
                "BoxFuture",
                "Newtype",
                "PeerAddr",
                "Policy",
                "Scheme",
                "basic"
            ]
        );
    }

    #[test]
    fn exhaustive_types_are_found_unless_closed_on_purpose() {
        assert_eq!(
            exhaustive_types(LISTING),
            [
                "portcullis::Newtype",
                "portcullis::basic::Open",
                "portcullis::basic::Shut"
            ]
        );
    }
}
