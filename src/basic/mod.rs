//! HTTP Basic (RFC 7617) against argon2id password hashes.
//!
//! Order of work for a request: parse the header (malformed → 400), refuse a locked-out user or
//! IP (429, no hashing), read the user record (store down → 503), answer from the verified cache
//! if enabled and fresh, otherwise take the user's turn, count the attempt with the lockout
//! (before hashing, so instances sharing the counters agree), and verify on the bounded
//! [`HashingPool`] (busy → 503, and the attempt is taken back). An unknown
//! user is verified against a dummy hash so it costs what a wrong password costs; so is a
//! malformed stored hash, and a stored hash weaker than the pool's cost is padded up to it
//! ([`HashingPool::verify`]). A match on a hash weaker than the configured cost stores an
//! upgraded hash.
//!
//! With [`accept_api_keys`](BasicAuthenticatorBuilder::accept_api_keys), a password shaped like an
//! API key leaves this order right after parsing: it is checked by the [`ApiKeyVerifier`] as that
//! key (no lockout, no user lookup, no argon2) and must belong to the user named.

pub(crate) mod authenticator;
mod cache;
mod hashing;
mod header;
mod turns;

pub use crate::authenticator::ApiKeyVerifier;
pub use authenticator::{AddUserError, BasicAuthenticatorBuilder};
pub use hashing::{HashError, HashingConfig, HashingPool, PoolMetrics, Verification};
pub use header::{BasicCredentials, BasicLimits, encode_basic, parse_basic};

// `BasicAuthenticator` is re-exported at the crate root, its one public path.
pub(crate) use authenticator::BasicAuthenticator;
