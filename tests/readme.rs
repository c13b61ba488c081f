//! The README's Rust example is a whole program, `use` lines included: `tests/readme/program.rs`
//! is that block, compiled here as a module, and the test checks the README shows it unchanged.
#![cfg(all(
    feature = "axum",
    feature = "sqlite",
    feature = "basic",
    feature = "api-key"
))]

/// Compiled, not run: it needs a pepper in the environment, writes `portcullis.db` and serves
/// until stopped.
#[expect(
    dead_code,
    reason = "compiled to prove the README's program builds; never run"
)]
mod program {
    include!("readme/program.rs");
}

#[test]
fn the_readme_example_is_the_program_compiled_here() {
    let readme = include_str!("../README.md");
    let block = readme
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("README has a ```rust block");
    assert_eq!(
        block,
        include_str!("readme/program.rs"),
        "README.md's rust block and tests/readme/program.rs differ"
    );
}
