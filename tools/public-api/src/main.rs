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
    let at_root = root_names(&listing);
    println!(
        "{} names at the crate root: {}",
        at_root.len(),
        at_root.join(", ")
    );
    if at_root.len() > MAX_ROOT_NAMES {
        eprintln!("more than {MAX_ROOT_NAMES} names at the crate root (docs/architecture.md)");
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
