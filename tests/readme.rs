//! The README's Rust example is real code: the lines between the markers below are the README's
//! `rust` block, and they compile here with the imports and the function the README leaves out.
#![cfg(all(
    feature = "axum",
    feature = "sqlite",
    feature = "basic",
    feature = "api-key"
))]

use std::error::Error;

use axum::routing::get;
use axum::{Json, Router};
use portcullis::store::open_store;
use portcullis::{
    ApiKeys, BasicAuthenticator, Gate, GateLayer, Groups, PolicyExt as _, Principal, Public,
    Scheme, Schemes, SecretString, parse_duration,
};

/// Compiled, not run: it needs a pepper in the environment and writes `portcullis.db`.
#[allow(dead_code)]
async fn readme_example() -> Result<Router, Box<dyn Error>> {
    // README begin
    let stores = open_store("sqlite://portcullis.db").await?;
    let pepper = SecretString::new(std::env::var("PORTCULLIS_API_KEY_PEPPER")?);
    let keys = ApiKeys::builder(stores.api_keys, pepper)
        .max_lifetime(parse_duration("90d")?)
        .build()?;
    let basic = BasicAuthenticator::builder(stores.users).build()?;
    let admins_without_basic = Groups::any_of(["admin"]).and(Schemes::deny([Scheme::Basic]));
    let gate = Gate::builder()
        .authenticator(basic)
        .authenticator(keys.authenticator())
        .route("/health", Public)
        .route("/admin/**", admins_without_basic)
        .build()?; // anything else needs an authenticated caller
    let app = Router::new()
        .route("/me", get(|who: Principal| async move { Json(who) }))
        .layer(GateLayer::new(gate));
    // README end
    Ok(app)
}

#[test]
fn the_readme_example_is_the_code_compiled_here() {
    let source = include_str!("readme.rs");
    let begin = source.find("// README begin\n").expect("begin marker") + "// README begin\n".len();
    let end = source.find("    // README end").expect("end marker");
    let compiled: Vec<&str> = source[begin..end]
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect();

    let readme = include_str!("../README.md");
    let block = readme
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("README has a ```rust block");
    let shown: Vec<&str> = block.lines().collect();
    assert_eq!(
        shown, compiled,
        "README.md's rust block and tests/readme.rs differ"
    );
}
