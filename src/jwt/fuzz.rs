//! What the fuzz targets reach inside `jwt` (re-exported by `crate::__fuzz`, compiled only with
//! `--cfg fuzzing`): thin wrappers that return public or plain types, so the internal ones stay
//! private.

use std::time::Duration;

#[cfg(feature = "jwt")]
use super::algorithm::Algorithm;
use super::claims::{ClaimMapping, Claims, Verified};
#[cfg(feature = "jwt")]
use super::error::KeyErrorKind;
use super::error::TokenErrorKind;
#[cfg(feature = "introspection")]
use super::introspection::IntrospectionAuthenticator;
use super::validation::Rules;
use crate::principal::{Principal, Scheme};

/// A compact JWS taken apart by the parser every bearer token meets first.
#[cfg(feature = "jwt")]
#[derive(Debug)]
pub struct CompactParts {
    /// The header's `alg`.
    pub alg: Algorithm,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The header's `typ`.
    pub typ: Option<String>,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// The decoded signature.
    pub signature: Vec<u8>,
    /// The length of `<header>.<payload>`, the bytes the signature covers.
    pub signing_input_len: usize,
}

/// `compact::parse` and the signature's decoding, as a token meets them; the error is the kind
/// with its message.
#[cfg(feature = "jwt")]
pub fn jws_compact(
    token: &str,
    max_token_size: usize,
    max_kid_len: usize,
) -> Result<CompactParts, (TokenErrorKind, String)> {
    let compact = super::compact::parse(token, max_token_size, max_kid_len)
        .map_err(|e| (e.kind(), e.to_string()))?;
    let mut buf = [0; super::compact::SIGNATURE_BUF_LEN];
    let signature = compact
        .signature(&mut buf)
        .map_err(|e| (e.kind(), e.to_string()))?
        .to_vec();
    Ok(CompactParts {
        alg: compact.alg,
        kid: compact.kid,
        typ: compact.typ,
        payload: compact.payload,
        signature,
        signing_input_len: compact.signing_input.len(),
    })
}

/// A claims document read as a token's payload (or, with `introspection`, an introspection
/// answer's claims), checked with the default rules (leeway 30 s, no required claims, no
/// audience check, `max_lifetime` when given) and mapped to a principal with groups from
/// `groups`. A claim path the configuration would refuse is `Err(None)`.
pub fn jwt_claims(
    json: &[u8],
    groups: &[&str],
    introspection: bool,
    max_lifetime: Option<Duration>,
) -> Result<Principal, Option<(TokenErrorKind, String)>> {
    let mapping = ClaimMapping::new().groups_claims(groups.iter().copied());
    mapping.validate("groups_claims").map_err(|_| None)?;
    let claims = Claims::parse(json, &mapping)
        .map_err(|e| Some((TokenErrorKind::Malformed, e.to_string())))?;
    let rules = Rules {
        audiences: Vec::new(),
        leeway: super::DEFAULT_LEEWAY,
        required: Vec::new(),
        #[cfg(feature = "jwt")]
        typ: None,
        max_lifetime,
    };
    let fail = |e: super::error::TokenError| Some((e.kind(), e.to_string()));
    let times = rules.check_claims(&claims).map_err(fail)?;
    let scheme = if introspection {
        Scheme::INTROSPECTION
    } else {
        Scheme::JWT
    };
    mapping
        .principal(&claims, scheme, times, Verified::for_fuzzing())
        .map_err(fail)
}

/// Each usable key's `kid` and algorithm, and how many entries were skipped.
#[cfg(feature = "jwt")]
pub type JwkSetSummary = (Vec<(Option<String>, Algorithm)>, usize);

/// A key set (JWKS) as `KeySet::parse_jwks` reads it, from configuration or (`remote`) from
/// the network: each usable key's `kid` and algorithm, and how many entries were skipped.
#[cfg(feature = "jwt")]
pub fn jwk_set(bytes: &[u8], remote: bool) -> Result<JwkSetSummary, KeyErrorKind> {
    let origin = if remote {
        super::keys::Origin::Remote
    } else {
        super::keys::Origin::Local
    };
    let (set, skipped) = super::keys::KeySet::parse_jwks(bytes, origin).map_err(|e| e.kind())?;
    let keys = set
        .iter()
        .map(|key| (key.kid().map(str::to_owned), key.algorithm()))
        .collect();
    Ok((keys, skipped.len()))
}

/// The `jwks_uri` a discovery document gives for `issuer`, as the key fetcher reads it.
#[cfg(feature = "jwt")]
pub fn discovery(body: &[u8], issuer: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document = crate::json::parse_object(body).map_err(|e| e.to_string())?;
    super::jwks::jwks_uri_of(&document, issuer, &url).map_err(|e| e.to_string())
}

/// What `authenticator` makes of an introspection endpoint's `200` answer: the principal and
/// `exp`, or why the token is refused (`Unavailable` when the endpoint failed us).
#[cfg(feature = "introspection")]
pub fn introspection_answer(
    authenticator: &IntrospectionAuthenticator,
    body: &[u8],
) -> Result<(Principal, Option<f64>), (TokenErrorKind, String)> {
    authenticator
        .read_answer(body)
        .map_err(|e| (e.kind(), e.to_string()))
}
