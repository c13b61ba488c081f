//! The test kit (feature `test-util`): handler tests and a service's own CI, without a network
//! or full-cost argon2. Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! portcullis = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! A [`Gate`](crate::Gate) built while the kit is compiled in logs a WARN (target `portcullis`)
//! once per build, so a service that ships with it by mistake says so in its log.
//!
//! - [`authenticated`] / [`anonymous`]: a principal and the Gate's context
//!   ([`GateContext`](crate::extract::GateContext)) on an `http::Request` or an actix-web
//!   `TestRequest`, so extractors, guards and route-bound policies work in handler tests with
//!   no Gate in front ([`TestContext`]).
//! - [`Credentials`]: Basic, API-key and bearer credentials on a request being built.
//! - [`Seed`]: memory stores seeded with users and API keys in one call, the plaintext keys
//!   returned.
//! - [`INSECURE_FAST_HASHING`]: the cheapest argon2id parameters, for test users.
//! - `TestIssuer` (feature `jwt`): tokens with any claims, for a `JwtAuthenticator` with static
//!   keys; [`JwksServer`]: its JWKS and discovery document on 127.0.0.1.
//!
//! The guide, with a downstream test for axum and one for actix-web (both run as tests of this
//! crate), is `docs/testing.md`; it follows when those frameworks' features are on.
#![cfg_attr(
    all(
        feature = "axum",
        feature = "actix",
        feature = "basic",
        feature = "api-key",
        feature = "jwt"
    ),
    doc = "",
    doc = include_str!("../../docs/testing.md")
)]

mod context;
mod credentials;
#[cfg(feature = "jwt")]
mod issuer;
mod server;
mod stores;

pub use context::{TestContext, anonymous, authenticated};
pub use credentials::Credentials;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use issuer::{DEFAULT_TOKEN_LIFETIME, TestIssuer, TestToken};
pub use server::{DISCOVERY_PATH, JWKS_PATH, JwksServer, ServerMode};
#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use stores::DEFAULT_KEY_LIFETIME;
pub use stores::{Seed, Seeded};

/// The cheapest argon2id parameters argon2 accepts (8 KiB, one pass, one lane, against the
/// default 19 MiB and two passes: about 5,000 times less memory × passes), for tests only: a
/// password hashed with them falls to a laptop in no time. Only code can set it:
/// no TOML key names it, so a configuration file cannot choose it (a file writes the cost
/// itself, `[basic.hashing]`).
///
/// ```
/// use std::sync::Arc;
/// use portcullis::BasicAuthenticator;
/// use portcullis::store::MemoryUserStore;
/// use portcullis::testing::INSECURE_FAST_HASHING;
///
/// let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
///     .hashing(INSECURE_FAST_HASHING)
///     .build()?;
/// # Ok::<(), portcullis::ConfigError>(())
/// ```
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub const INSECURE_FAST_HASHING: crate::basic::HashingConfig = crate::basic::HashingConfig {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
    max_concurrent: 8,
    max_wait: std::time::Duration::from_secs(5),
};
