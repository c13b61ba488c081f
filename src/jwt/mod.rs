//! OAuth2 / OpenID Connect bearer tokens: JWT access tokens checked against the issuer's keys
//! ([`JwtAuthenticator`]), opaque tokens checked by introspection ([`IntrospectionAuthenticator`]),
//! and short-lived tokens issued by the service itself ([`JwtIssuer`]).
//!
//! ## How a JWT is checked
//!
//! The token is taken apart strictly first ([RFC 7515 §7.1]: three unpadded base64url parts, JSON
//! objects without duplicate members, no JWE, no `crit`, at most 8 KiB). Its `iss` picks the
//! issuer, and the issuer's [`KeySource`] the key: the one with the token's `kid`, which must be
//! for the token's `alg`. The algorithm therefore comes from the key; the header's `jwk`, `jku`,
//! `x5u` and `x5c` are never read; `none` is never an algorithm. After the signature come the
//! claims: `exp`, `nbf` and `iat` with a 30 s leeway, a lifetime cap, the audience, the required
//! claims, the `typ`. [`ClaimMapping`] then makes the [`Principal`](crate::Principal), which
//! carries the verified claims.
//!
//! Remote keys (a JWKS URL or OIDC discovery) are cached; [`JwksCacheConfig`] describes refresh,
//! the unknown-`kid` cooldown and stale-if-error, which lasts at most `max_stale` (24 h). A key
//! set that was never loaded, or is older than `max_stale`, answers 503, not 401.
//!
//! ## How an opaque token is checked
//!
//! The endpoint's answer must say `active: true`; its `token_type`, when present, must be
//! `Bearer` (a refresh token is refused); its `aud` must name one of the configured audiences
//! (required unless `dangerous_skip_audience_check`); its `iss` must be the configured issuer,
//! when one is; then `exp`, `nbf` and `iat` as for a JWT.
//!
//! **Why verification does not call `jsonwebtoken::decode`**: `decode` parses the key again for
//! every token, accepts `iss` as an array, and keeps the last of duplicate claims. Keys here are
//! parsed once into aws-lc-rs (the backend `jsonwebtoken` is built with here) and checked with
//! it directly; `jsonwebtoken` reads PEM keys and signs for [`JwtIssuer`].
//!
//! ## Errors (RFC 6750 §3)
//!
//! | Situation | Status | `WWW-Authenticate: Bearer` |
//! |-----------|--------|----------------------------|
//! | no token | 401 | `realm` only |
//! | bad, expired or unknown token | 401 | `error="invalid_token"` |
//! | token in two places, repeated header | 400 | `error="invalid_request"` |
//! | a scope the route needs is missing | 403 | `error="insufficient_scope", scope="…"` |
//! | keys never loaded or past `max_stale`, introspection down or at `max_concurrent` | 503 | none, `Retry-After` |
//!
//! Error descriptions are fixed strings; the token never appears in a response or a log.
//!
//! DPoP-bound tokens (`Authorization: DPoP` with a proof, RFC 9449) and their statuses are
//! described in the `dpop` module (feature `jwt`); a bound token sent as `Bearer` is a 401 `invalid_token`.
//!
//! ## Example: an identity provider's tokens
//!
//! ```no_run
//! use portcullis::jwt::{ClaimMapping, JwtAuthenticator, KeySource};
//! use portcullis::{Gate, Scopes};
//!
//! # fn main() -> Result<(), portcullis::ConfigError> {
//! let jwt = JwtAuthenticator::builder()
//!     .issuer("https://sso.example.com/realms/main", KeySource::discovery())
//!     .audience("orders-api")
//!     .require_typ("at+jwt")
//!     .claims(ClaimMapping::new().groups_claim("realm_access.roles"))
//!     .build()?;
//! let gate = Gate::builder()
//!     .authenticator(jwt)
//!     .route("/orders/**", Scopes::all_of(["orders:read"]))
//!     .build()?;
//! # Ok(())
//! # }
//! ```
//!
//! [RFC 7515 §7.1]: https://www.rfc-editor.org/rfc/rfc7515#section-7.1

// `jwt` and `introspection` each compile this module; the pieces of one only are gated.
#[cfg(feature = "jwt")]
mod algorithm;
#[cfg(feature = "jwt")]
mod authenticator;
mod bearer;
mod claims;
#[cfg(feature = "jwt")]
mod compact;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod dpop;
mod error;
#[cfg(fuzzing)]
pub(crate) mod fuzz;
mod http;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "jwt")]
mod issuer;
#[cfg(feature = "jwt")]
mod jwks;
#[cfg(feature = "jwt")]
mod keys;
pub mod mtls;
mod validation;

use std::time::Duration;

/// The largest token accepted unless configured otherwise: 8 KiB.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
/// The clock skew allowed on `exp`, `nbf` and `iat` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use algorithm::{Algorithm, UnknownAlgorithm};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use authenticator::{
    DEFAULT_MAX_KID_LEN, DEFAULT_MAX_LIFETIME, DEFAULT_REQUIRED_CLAIMS, JwtAuthenticator,
    JwtAuthenticatorBuilder,
};
pub use claims::{ClaimMapping, ClaimPath};
pub use error::{FetchError, FetchErrorKind, TokenError, TokenErrorKind};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use error::{IssueError, KeyError, KeyErrorKind};
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use http::ReqwestClient;
pub use http::{FetchLimits, HttpClient};
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use introspection::{
    ClientAuth, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, IntrospectionAuthenticator,
    IntrospectionAuthenticatorBuilder,
};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use issuer::{JwtIssuer, JwtIssuerBuilder, SigningKey};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use jwks::{JwksCacheConfig, KeySource};
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use keys::{KeySet, MAX_JWKS_KEYS, MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey};
pub use validation::KNOWN_REQUIRED_CLAIMS;
