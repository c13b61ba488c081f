//! # portcullis
//!
//! Authentication and authorization for REST APIs, embedded in your service: HTTP Basic with
//! argon2id ([`basic`]), API keys hashed at rest, revocable, rotated and capped in lifetime
//! ([`api_key`]), and OAuth2/OIDC bearer tokens checked against the issuer's keys or by
//! introspection ([`jwt`]), all behind one [`Authenticator`] trait; route rules and
//! [policies](policy) decide who may do what. Users and keys live in memory, SQLite or PostgreSQL
//! ([`store`]); everything can also be written in one TOML file ([`config`]).
//!
//! ## How a request is decided
//!
//! 1. A [`RequestView`] borrows the method, path, headers and peer address.
//! 2. The [`Gate`] refuses (400) a path that a router could read differently from it (dot
//!    segments, `//`, needless escapes: rules match the path as sent), resolves the client IP, and
//!    refuses a request carrying credentials of two schemes (400).
//! 3. Authenticators that recognise a credential are asked in order. Each [abstains, authenticates
//!    or rejects](Outcome); a rejected credential never falls through to a weaker scheme.
//! 4. The first [route rule](Route) matching method and path names a [`Policy`]; a denied anonymous
//!    request gets 401 with every scheme's challenge, a denied principal 403.
//! 5. A [`Rejection`] becomes a response in one place ([`reject`]): status, `WWW-Authenticate`,
//!    `Retry-After`, and an RFC 9457 problem body with no internal detail.
//! 6. Every decision is an audit event on target `portcullis::audit` ([`audit`]).
//!
//! ## Quick start
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::{BasicAuthenticator, Gate, Groups, MemoryUserStore, Public, RequestView};
//! use portcullis::basic::{encode_basic, HashingConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let basic = Arc::new(
//!     BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
//!         .realm("example")
//! #       .hashing(HashingConfig { memory_kib: 64, iterations: 1, ..Default::default() })
//!         .build()?,
//! );
//! basic.add_user("alice", &"s3cret".into(), ["admin"]).await?;
//!
//! let gate = Gate::builder()
//!     .shared_authenticator(basic)
//!     .route("/health", Public)
//!     .route("/admin/**", Groups::any_of(["admin"]))
//!     .build()?; // every other path needs an authenticated caller
//!
//! // With the `tower` feature: `Router::new()....layer(GateLayer::new(gate))`.
//! let request = http::Request::get("/admin/users")
//!     .header("authorization", encode_basic("alice", "s3cret"))
//!     .body(())?;
//! let (parts, ()) = request.into_parts();
//! let principal = gate.check(&RequestView::from_parts(&parts)).await?.expect("authenticated");
//! assert_eq!(principal.subject(), "alice");
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! Each authentication scheme is a feature, so a service compiles only the schemes it uses.
//!
//! | Name | Description | Default |
//! |------|-------------|---------|
//! | `basic` | [`basic`]: HTTP Basic against argon2id hashes ([`BasicAuthenticator`]), with brute-force [`lockout`] | yes |
//! | `api-key` | [`api_key`]: API keys, issued, rotated and revoked ([`ApiKeys`]) and checked ([`ApiKeyAuthenticator`]) | yes |
//! | `jwt` | [`jwt`]: JWT bearer tokens, checked ([`JwtAuthenticator`]) and issued ([`JwtIssuer`]); compiles aws-lc-rs (C) | yes |
//! | `introspection` | [`IntrospectionAuthenticator`]: opaque bearer tokens checked by RFC 7662 introspection. Does not imply `jwks`: without it, pass an [`HttpClient`](jwt::HttpClient) | yes |
//! | `tower` | [`GateLayer`], a tower `Layer` for axum, hyper and tonic | yes |
//! | `axum` | `Principal` as an axum extractor; peer address from `ConnectInfo`. Implies `tower` | yes |
//! | `actix` | [`actix::GateMiddleware`] for actix-web 4; `Principal` as an actix extractor | no |
//! | `sqlite` | [`store::SqliteStore`]: users and API keys in a SQLite file (compiles SQLite, C) | yes |
//! | `postgres` | [`store::PostgresStore`]: users and API keys in PostgreSQL | no |
//! | `jwks` | `jwt::ReqwestClient`: fetches JWKS, discovery documents and introspection answers. Implies `jwt` | no |
//! | `redis` | `lockout::RedisFailureStore`: lockout counters shared by many instances. Implies `basic` | no |
//! | `cli` | the `portcullis` admin command (users, keys, tokens, config check/explain). Implies `basic`, `api-key`, `jwt`, `introspection` and `jwks` | no |
//!
//! A Basic-only service compiles no C:
//! `portcullis = { version = "0.1", default-features = false, features = ["basic", "tower"] }`.
//! Each feature builds alone, and so do `basic,tower`, `api-key,sqlite,tower`, `jwt,jwks,axum`,
//! `introspection,tower` and `actix,sqlite,basic,api-key,jwt,introspection` (`.ci/features.sh`).
//! A configuration file with a section whose feature is left out (`[jwt]` without `jwt`) is
//! refused with its file, line and key, never ignored.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub mod api_key;
pub mod audit;
mod authenticator;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub mod basic;
mod client_ip;
pub mod config;
mod error;
mod gate;
mod handle;
mod ipset;
mod json;
#[cfg(any(feature = "jwt", feature = "introspection"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "jwt", feature = "introspection"))))]
pub mod jwt;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub mod lockout;
pub mod policy;
mod principal;
pub mod reject;
mod request;
mod route;
mod secret;
pub mod store;

mod adapters;

#[cfg(feature = "actix")]
pub use adapters::actix;
#[cfg(feature = "axum")]
pub use adapters::axum::MissingPrincipal;
#[cfg(feature = "tower")]
pub use adapters::tower::GateBody;
#[cfg(feature = "tower")]
pub use adapters::tower::{GateLayer, GateService};
#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use api_key::{ApiKeyAuthenticator, ApiKeyError, ApiKeys, IssuedKey, NewApiKey};
pub use authenticator::{Authenticator, BoxFuture, Outcome};
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub use basic::BasicAuthenticator;
pub use client_ip::{ClientIpError, ForwardedHeader, TrustedProxies};
pub use config::{Config, parse_duration};
pub use error::{ConfigError, Location, StoreError, StoreErrorKind};
pub use gate::{Explanation, Gate, GateBuilder};
pub use handle::GateHandle;
pub use ipset::IpSet;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use jwt::{IntrospectionAuthenticator, IntrospectionSettings};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use jwt::{JwtAuthenticator, JwtIssuer, JwtSettings};
pub use policy::{
    All, Anonymous, Any, Authenticated, Decision, ExpiryCap, Groups, IpRanges, KindIs, Not, Policy,
    PolicyContext, PolicyExt, Public, ReportOnly, Schemes, Scopes,
};
pub use principal::{Principal, Scheme, SubjectKind, UnknownScheme};
pub use reject::{Challenge, ProblemJson, Rejection, RejectionKind, RejectionResponder};
pub use request::{PeerAddr, RequestView};
pub use route::{Methods, PathPattern, Route};
pub use secret::{PasswordHash, SecretString, constant_time_eq};
pub use store::{ApiKeyRecord, ApiKeyStore, MemoryApiKeyStore};
pub use store::{MemoryUserStore, UserRecord, UserStore};

/// What the fuzz targets (`fuzz/`) reach inside the crate; not part of the API. cargo-fuzz builds
/// with `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod __fuzz {
    /// Whether the Gate accepts `path` for matching (`Ok`) or refuses it (400).
    pub fn check_path(path: &str) -> Result<(), String> {
        crate::route::check_path(path).map_err(|why| why.to_string())
    }
}
