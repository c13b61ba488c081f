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
//!    refuses a request carrying credentials in two [sources](CredentialSource) (400).
//! 3. The authenticators reading a source the request carries are asked in order. Each [abstains,
//!    authenticates or rejects](Outcome); a rejected credential never falls through to a weaker
//!    scheme. An authenticator of your own is a [`Scheme`] of its own.
//! 4. The first [route rule](GateBuilder::route) matching method and path names a [`Policy`]; a denied anonymous
//!    request gets 401 with every scheme's challenge, a denied principal 403.
//! 5. A [`Rejection`] becomes a response in one place ([`reject`]): status, `WWW-Authenticate`,
//!    `Retry-After`, and an RFC 9457 problem body with no internal detail.
//! 6. Every decision is an audit event on target `portcullis::audit` ([`audit`]).
//! 7. The Gate leaves its context in the request's extensions ([`extract::GateContext`]): a
//!    policy bound to a framework route (`tower::PolicyLayer`, `actix::PolicyMiddleware`), a
//!    handler guard and the extractors judge the principal it established, without
//!    authenticating again, and refuse through the same responder.
//!
//! ## Quick start
//!
//! ```
//! use std::sync::Arc;
//!
//! use portcullis::basic::{HashingConfig, encode_basic};
//! use portcullis::store::MemoryUserStore;
//! use portcullis::{BasicAuthenticator, Gate, Groups, Public, RequestView};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let basic = Arc::new(
//!     BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
//!         .realm("example")
//! #       .hashing(HashingConfig::default().with_memory_kib(64).with_iterations(1))
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
//! ## Where things are
//!
//! The crate root holds what a service names in everyday code: the [`Gate`] and its
//! [builder](GateBuilder), [`GateHandle`] for swapping Gates while serving, the adapters' entry point ([`GateLayer`];
//! [`actix::GateMiddleware`]), the request and the caller ([`RequestView`], [`Principal`],
//! [`Scheme`]), the [`Authenticator`] trait, the built-in authenticators people start with
//! ([`BasicAuthenticator`], [`ApiKeys`]), the everyday [policies](Policy), [`Rejection`],
//! [`SecretString`] and [`ConfigError`]. Everything else lives in one public module, at one path:
//! [`basic`], [`api_key`], [`jwt`] (JWT and introspection), [`store`], [`lockout`], [`policy`],
//! [`client_ip`], [`reject`], [`config`] (TOML), [`audit`], the framework modules [`tower`]
//! and [`actix`], and [`extract`], what handlers take after the Gate (its context, a guard to
//! demand a policy, typed claims). With feature `test-util` (tests only), `testing` is the kit
//! for a service's own handler tests.
//!
//! ## Features
//!
//! Each authentication scheme is a feature, so a service compiles only the schemes it uses.
//!
//! | Name | Description | Default |
//! |------|-------------|---------|
//! | `basic` | [`basic`]: HTTP Basic against argon2id hashes ([`BasicAuthenticator`]), with brute-force [`lockout`] | yes |
//! | `api-key` | [`api_key`]: API keys, issued, rotated and revoked ([`ApiKeys`]) and checked ([`api_key::ApiKeyAuthenticator`]) | yes |
//! | `jwt` | [`jwt`]: JWT bearer tokens, checked ([`jwt::JwtAuthenticator`]) and issued ([`jwt::JwtIssuer`]); compiles aws-lc-rs (C) | yes |
//! | `introspection` | [`jwt::IntrospectionAuthenticator`]: opaque bearer tokens checked by RFC 7662 introspection. Does not imply `jwks`: without it, pass an [`HttpClient`](jwt::HttpClient) | yes |
//! | `metrics` | decisions, latency, hashing pool, JWKS, caches and lockouts through the `metrics` facade (no exporter; see docs/operations.md and [`audit::describe_metrics`]) | yes |
//! | `self-service` | [`self_service`]: personal API tokens users list, create, rotate and revoke themselves, a JSON API mountable at any prefix behind the Gate (axum router, actix-web scope). Implies `basic` and `api-key` | yes |
//! | `tower` | [`GateLayer`], a tower `Layer` for axum, hyper and tonic | yes |
//! | `axum` | `Principal`, `Guard` and `Claims<T>` as axum extractors; peer address from `ConnectInfo`. Implies `tower` | yes |
//! | `actix` | [`actix::GateMiddleware`] and [`actix::PolicyMiddleware`] for actix-web 4; `Principal`, `Guard` and `Claims<T>` as actix extractors | no |
//! | `sqlite` | [`store::SqliteStore`]: users and API keys in a SQLite file (compiles SQLite, C) | yes |
//! | `postgres` | [`store::PostgresStore`]: users and API keys in PostgreSQL | no |
//! | `jwks` | `jwt::ReqwestClient`: fetches JWKS, discovery documents and introspection answers. Implies `jwt` | no |
//! | `redis` | `lockout::RedisFailureStore`: lockout counters shared by many instances; with `jwt`, `jwt::dpop::RedisReplayCache`: DPoP proofs seen by any instance. Implies `basic` | no |
//! | `test-util` | [`testing`]: the test kit for a service's own tests (tokens with any claims, a JWKS server on 127.0.0.1, a principal on a test request, seeded memory stores, cheap argon2). For `[dev-dependencies]` only: a Gate built with it logs a WARN | no |
//! | `cli` | the `portcullis` admin command (users, keys, tokens, config check/explain). Implies `basic`, `api-key`, `jwt`, `introspection` and `jwks` | no |
//!
//! A Basic-only service compiles no C:
//! `portcullis = { version = "0.1", default-features = false, features = ["basic", "tower"] }`.
//! Each feature builds alone, and so do `basic,tower`, `api-key,sqlite,tower`, `jwt,jwks,axum`,
//! `introspection,tower` and `actix,sqlite,basic,api-key,jwt,introspection` (`.ci/features.sh`).
//! A configuration file with a section whose feature is left out (`[jwt]` without `jwt`) is
//! refused with its file, line and key, never ignored.

#![cfg_attr(docsrs, feature(doc_cfg))]

// The public API: every public item has one path. The root holds the types a service names in
// everyday code; everything else lives in its public module. The rule and its exceptions are in
// docs/architecture.md ("The public API"); `public-api.txt` lists the whole API and CI checks it.

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub mod api_key;
pub mod audit;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub mod basic;
pub mod client_ip;
pub mod config;
#[cfg(any(feature = "jwt", feature = "introspection"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "jwt", feature = "introspection"))))]
pub mod jwt;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub mod lockout;
pub mod policy;
pub mod reject;
#[cfg(feature = "self-service")]
#[cfg_attr(docsrs, doc(cfg(feature = "self-service")))]
pub mod self_service;
pub mod store;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

/// actix-web 4: [`GateMiddleware`](actix::GateMiddleware) runs the Gate in front of an `App` or a
/// scope; [`PolicyMiddleware`](actix::PolicyMiddleware) adds a policy to a resource or scope;
/// handlers take [`Principal`] (or `Option<Principal>`), [`Guard`](extract::Guard) and
/// [`Claims`](extract::Claims) as arguments.
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix {
    pub use crate::adapters::actix::{
        GateMiddleware, GateMiddlewareService, PolicyMiddleware, PolicyMiddlewareService,
    };
}

/// The tower service behind [`GateLayer`] (axum, hyper, tonic) and its response body, and the
/// route-bound policy layer for axum's `route_layer` ([`PolicyLayer`](tower::PolicyLayer)).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower {
    pub use crate::adapters::tower::{GateBody, GateService, PolicyLayer, PolicyService};
}

/// What handlers take after the Gate: the [`GateContext`](extract::GateContext) the Gate puts in
/// every request it lets through (and what servers put in before it: the mutual-TLS
/// [`ClientCertificate`](extract::ClientCertificate)), a [`Guard`](extract::Guard) to demand a policy inside a
/// handler, and [`Claims`](extract::Claims) for typed token claims (the last two are axum and
/// actix-web extractors). Their refusals ([`reject::Refusal`]) are built by the Gate's own
/// responder, as the route-bound policies' are ([`tower::PolicyLayer`],
/// `actix::PolicyMiddleware`).
pub mod extract {
    #[cfg(any(feature = "axum", feature = "actix"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "axum", feature = "actix"))))]
    pub use crate::adapters::extract::{Claims, Guard};
    pub use crate::context::GateContext;
    pub use crate::request::ClientCertificate;
}

mod adapters;
mod authenticator;
#[cfg(any(feature = "api-key", feature = "introspection"))]
mod cache;
mod context;
mod duration;
mod error;
mod future;
mod gate;
mod handle;
mod health;
mod ipset;
mod json;
#[cfg(feature = "api-key")]
mod key_format;
mod principal;
#[cfg(feature = "redis")]
mod redis;
mod request;
mod route;
mod secret;
#[cfg(any(feature = "api-key", feature = "jwt", feature = "introspection"))]
mod secret_file;
mod telemetry;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use adapters::tower::GateLayer;
#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use api_key::{manager::ApiKeys, new_key::NewApiKey};
pub use authenticator::{Authenticator, CredentialSource, Outcome};
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub use basic::authenticator::BasicAuthenticator;
pub use error::ConfigError;
pub use future::BoxFuture;
pub use gate::{Gate, GateBuilder};
pub use handle::GateHandle;
pub use policy::builtin::{Authenticated, Groups, Public, Schemes, Scopes};
pub use policy::combinators::PolicyExt;
pub use policy::evaluate::Policy;
pub use principal::{Principal, Scheme, SubjectKind};
pub use reject::rejection::Rejection;
pub use request::{PeerAddr, RequestView};
pub use route::Methods;
pub use secret::SecretString;

/// What the fuzz targets (`fuzz/`) reach inside the crate; not part of the API. cargo-fuzz builds
/// with `--cfg fuzzing`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod __fuzz {
    use std::fmt;
    use std::net::IpAddr;

    use http::HeaderMap;

    use crate::client_ip::{ClientIpError, TrustedProxies};

    /// The JOSE parsers, key sets and provider answers (`jwt/fuzz.rs`).
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub use crate::jwt::fuzz::*;

    /// Whether the Gate accepts `path` for matching (`Ok`) or refuses it (400).
    pub fn check_path(path: &str) -> Result<(), String> {
        crate::route::check_path(path).map_err(|why| why.to_string())
    }

    /// A route rule's path pattern.
    pub struct PathPattern(crate::route::PathPattern);

    impl PathPattern {
        /// The pattern, or `None` where a Gate would refuse it.
        pub fn parse(pattern: &str) -> Option<Self> {
            crate::route::PathPattern::parse(pattern).ok().map(Self)
        }

        /// Whether `path` matches.
        pub fn matches(&self, path: &str) -> bool {
            self.0.matches(path)
        }
    }

    impl fmt::Display for PathPattern {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt(f)
        }
    }

    /// Why a client IP could not be resolved.
    #[derive(Debug, PartialEq, Eq)]
    pub enum ClientIpRefusal {
        /// The header has more entries than `max`.
        TooManyEntries {
            /// The cap.
            max: usize,
        },
        /// An entry the walk reached is not an address.
        Unparseable,
    }

    /// [`TrustedProxies`]'s resolution of the client IP.
    pub fn resolve_client_ip(
        proxies: &TrustedProxies,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<Option<IpAddr>, ClientIpRefusal> {
        proxies.resolve(peer, headers).map_err(|error| match error {
            ClientIpError::TooManyEntries { max, .. } => ClientIpRefusal::TooManyEntries { max },
            _ => ClientIpRefusal::Unparseable,
        })
    }
}
