//! Verification keys: [`VerifyingKey`] (one key, one algorithm, parsed once) and [`KeySet`] (an
//! issuer's keys, looked up by `kid` and algorithm).
//!
//! A key is parsed into the backend's native form when it is loaded (aws-lc-rs `ParsedPublicKey`,
//! or an HMAC key), so a request pays for the signature check and nothing else; decoding a key per
//! token, as `jsonwebtoken::decode` does, costs about 2.5 µs per RS256 check.
//!
//! What is refused at load time: RSA under 2048 bits (and over 8192), HMAC secrets shorter than
//! their hash (RFC 7518 §3.2), keys whose declared `alg` does not fit their type or curve, keys
//! marked for encryption only, and shared secrets (`oct`) from a remote JWKS: anyone who can read
//! a published JWKS would hold the secret.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use aws_lc_rs::{hmac, rsa};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::algorithm::{Algorithm, Family};
use super::compact::{BASE64URL, Present};
use super::error::{KeyError, KeyErrorKind};
use crate::json;

/// The smallest RSA modulus accepted, in bits (RFC 8725 §3.5 via NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits: bigger keys only make verification slower.
pub const MAX_RSA_BITS: usize = 8192;
/// The most keys read from one JWKS; the rest are ignored.
pub const MAX_JWKS_KEYS: usize = 100;

/// One verification key with the one algorithm it verifies, parsed once.
///
/// `Debug` shows the `kid` and algorithm only: an HMAC key is a secret.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    inner: Material,
}

#[derive(Clone)]
enum Material {
    /// Boxed: an HMAC key holds precomputed state of more than 1 KiB.
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

/// Where a JWK came from: shared secrets are only taken from local configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Local,
    Remote,
}

impl VerifyingKey {
    /// A public key in PEM (`PUBLIC KEY`, or `RSA PUBLIC KEY` for RSA) for `algorithm`, which
    /// must be an RSA, ECDSA or EdDSA one.
    pub fn from_pem(algorithm: Algorithm, pem: &str) -> Result<Self, KeyError> {
        let pem = pem.as_bytes();
        let malformed = |e: jsonwebtoken::errors::Error| {
            KeyError::new(
                KeyErrorKind::Malformed,
                format!("not a {algorithm} public key in PEM: {e}"),
            )
        };
        let decoded = match algorithm.family() {
            Family::Hmac => {
                return Err(KeyError::new(
                    KeyErrorKind::AlgorithmMismatch,
                    format!("{algorithm} takes a shared secret, not a PEM key"),
                ));
            }
            Family::Rsa => jsonwebtoken::DecodingKey::from_rsa_pem(pem).map_err(malformed)?,
            Family::Ec => jsonwebtoken::DecodingKey::from_ec_pem(pem).map_err(malformed)?,
            Family::Ed => jsonwebtoken::DecodingKey::from_ed_pem(pem).map_err(malformed)?,
        };
        let der = decoded.try_get_as_bytes().map_err(malformed)?;
        Self::from_der(algorithm, der)
    }

    /// A public key in DER for `algorithm`: SubjectPublicKeyInfo, or for RSA also a PKCS#1
    /// `RSAPublicKey`, for ECDSA an uncompressed SEC1 point, for EdDSA the raw 32 bytes.
    pub fn from_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let inner = match algorithm.family() {
            Family::Hmac => {
                return Err(KeyError::new(
                    KeyErrorKind::AlgorithmMismatch,
                    format!("{algorithm} takes a shared secret, not a public key"),
                ));
            }
            Family::Rsa => {
                let key = rsa::PublicKey::from_der(der).map_err(|e| {
                    KeyError::new(
                        KeyErrorKind::Malformed,
                        format!("not an RSA public key: {e}"),
                    )
                })?;
                return rsa_key(
                    algorithm,
                    key.modulus().big_endian_without_leading_zero(),
                    key.exponent().big_endian_without_leading_zero(),
                );
            }
            Family::Ec | Family::Ed => parsed(algorithm, der)?,
        };
        Ok(Self {
            kid: None,
            algorithm,
            inner: Material::Public(inner),
        })
    }

    /// A shared secret for an HMAC `algorithm`. The secret must be at least as long as the hash
    /// (32 bytes for HS256, 48 for HS384, 64 for HS512; RFC 7518 §3.2).
    pub fn hmac(algorithm: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        let (hmac_alg, min_len) = match algorithm {
            Algorithm::HS256 => (hmac::HMAC_SHA256, 32),
            Algorithm::HS384 => (hmac::HMAC_SHA384, 48),
            Algorithm::HS512 => (hmac::HMAC_SHA512, 64),
            other => {
                return Err(KeyError::new(
                    KeyErrorKind::AlgorithmMismatch,
                    format!("{other} is not an HMAC algorithm"),
                ));
            }
        };
        if secret.len() < min_len {
            return Err(KeyError::new(
                KeyErrorKind::TooWeak,
                format!(
                    "an {algorithm} secret must be at least {min_len} bytes, this one has {}",
                    secret.len()
                ),
            ));
        }
        Ok(Self {
            kid: None,
            algorithm,
            inner: Material::Hmac(Box::new(hmac::Key::new(hmac_alg, secret))),
        })
    }

    /// One key in JWK form (RFC 7517), from local configuration: `oct` keys are accepted here.
    ///
    /// The algorithm is the JWK's `alg`; without one it is RS256 for RSA, ES256 or ES384 by curve,
    /// EdDSA for Ed25519 and HS256 for `oct`. Give `alg` in the JWK for any other.
    pub fn from_jwk(jwk: &str) -> Result<Self, KeyError> {
        let value = json::parse_object(jwk.as_bytes())
            .map_err(|e| KeyError::new(KeyErrorKind::Malformed, format!("not a JWK: {e}")))?;
        Self::from_jwk_value(Value::Object(value), Origin::Local)
    }

    /// Sets the key id that tokens name in their `kid` header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` is this key's signature of `message`. HMAC tags are compared in
    /// constant time.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            Material::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Material::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }

    pub(crate) fn from_jwk_value(value: Value, origin: Origin) -> Result<Self, KeyError> {
        let jwk: RawJwk = serde_json::from_value(value).map_err(|e| {
            KeyError::new(KeyErrorKind::Malformed, format!("not a usable JWK: {e}"))
        })?;
        let named = jwk.kid.as_deref().map_or(String::new(), |kid| {
            format!(" `{}`", kid.chars().take(64).collect::<String>())
        });
        jwk.into_key(origin)
            .map_err(|e| KeyError::new(e.kind(), format!("JWK{named}: {e}")))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// An issuer's verification keys.
///
/// A token's key is found by `kid` and algorithm: the key with the token's `kid` must be for the
/// token's `alg` (otherwise the token is refused, never checked with another algorithm). A token
/// without `kid`, or with a `kid` no key has, is checked with the one key without `kid` for its
/// algorithm, when there is exactly one.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

/// What a lookup found.
pub(crate) enum Lookup {
    Found(Arc<VerifyingKey>),
    /// A key has the token's `kid` but is for another algorithm.
    WrongAlgorithm(Algorithm),
    /// No key fits; a remote key set may have learned it since.
    Unknown,
    /// No `kid` and several keys fit.
    Ambiguous,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key.
    pub fn with(mut self, key: VerifyingKey) -> Self {
        self.push(key);
        self
    }

    /// Adds a key.
    pub fn push(&mut self, key: VerifyingKey) {
        self.keys.push(Arc::new(key));
    }

    /// A JWK Set (RFC 7517 §5) from local configuration (`oct` keys accepted). Keys that cannot be
    /// used (an unsupported type or curve, a weak RSA key) are skipped with a warning; it is an
    /// error if none is left.
    pub fn from_jwks(jwks: &str) -> Result<Self, KeyError> {
        let (set, skipped) = Self::parse_jwks(jwks.as_bytes(), Origin::Local)?;
        for reason in skipped {
            tracing::warn!(target: "portcullis::jwt", "JWKS key skipped: {reason}");
        }
        Ok(set)
    }

    /// Parses a JWKS, returning the usable keys and why the others were skipped.
    pub(crate) fn parse_jwks(
        bytes: &[u8],
        origin: Origin,
    ) -> Result<(Self, Vec<KeyError>), KeyError> {
        let mut document = json::parse_object(bytes)
            .map_err(|e| KeyError::new(KeyErrorKind::Malformed, format!("not a JWKS: {e}")))?;
        let Some(Value::Array(entries)) = document.remove("keys") else {
            return Err(KeyError::new(
                KeyErrorKind::Malformed,
                "not a JWKS: no `keys` array",
            ));
        };
        let mut set = KeySet::new();
        let mut skipped = Vec::new();
        for entry in entries.into_iter().take(MAX_JWKS_KEYS) {
            match VerifyingKey::from_jwk_value(entry, origin) {
                Ok(key) => {
                    let duplicate = set.keys.iter().any(|k| {
                        k.kid.is_some() && k.kid == key.kid && k.algorithm == key.algorithm
                    });
                    if duplicate {
                        skipped.push(KeyError::new(
                            KeyErrorKind::Malformed,
                            format!("a second key with kid {:?} and the same algorithm", key.kid),
                        ));
                    } else {
                        set.push(key);
                    }
                }
                Err(err) => skipped.push(err),
            }
        }
        if set.is_empty() {
            let why = skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(KeyError::new(
                KeyErrorKind::Unsupported,
                format!("the JWKS has no usable key ({why})"),
            ));
        }
        Ok((set, skipped))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().map(|k| k.as_ref())
    }

    /// The key for a token's `kid` and `alg`. A linear scan: key sets are small, and comparing a
    /// few strings is cheaper than hashing one.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        if let Some(kid) = kid {
            let mut kid_seen = None;
            for key in &self.keys {
                if key.kid.as_deref() == Some(kid) {
                    if key.algorithm == alg {
                        return Lookup::Found(Arc::clone(key));
                    }
                    kid_seen = Some(key.algorithm);
                }
            }
            if let Some(algorithm) = kid_seen {
                return Lookup::WrongAlgorithm(algorithm);
            }
        }
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.algorithm == alg && (kid.is_none() || k.kid.is_none()));
        match (candidates.next(), candidates.next()) {
            (Some(key), None) => Lookup::Found(Arc::clone(key)),
            (None, _) => Lookup::Unknown,
            (Some(_), Some(_)) => Lookup::Ambiguous,
        }
    }
}

/// The members of a JWK that matter.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

impl RawJwk {
    fn into_key(self, origin: Origin) -> Result<VerifyingKey, KeyError> {
        self.check_use()?;
        let declared = match &self.alg {
            None => None,
            Some(name) => Some(
                name.parse::<Algorithm>()
                    .map_err(|e| KeyError::new(KeyErrorKind::Unsupported, e.to_string()))?,
            ),
        };
        let key = match self.kty.as_str() {
            "RSA" => {
                let algorithm = self.fits(declared.unwrap_or(Algorithm::RS256), Family::Rsa)?;
                let n = member("n", &self.n)?;
                let e = member("e", &self.e)?;
                rsa_key(algorithm, strip_zeros(&n), strip_zeros(&e))?
            }
            "EC" => self.ec_key(declared)?,
            "OKP" => self.okp_key(declared)?,
            "oct" => {
                if origin == Origin::Remote {
                    return Err(KeyError::new(
                        KeyErrorKind::NotAllowed,
                        "a shared secret (`oct`) in a remote JWKS is never used",
                    ));
                }
                let algorithm = self.fits(declared.unwrap_or(Algorithm::HS256), Family::Hmac)?;
                VerifyingKey::hmac(algorithm, &member("k", &self.k)?)?
            }
            other => {
                return Err(KeyError::new(
                    KeyErrorKind::Unsupported,
                    format!(
                        "key type {:?} is not supported",
                        other.chars().take(16).collect::<String>()
                    ),
                ));
            }
        };
        Ok(match self.kid {
            Some(kid) => key.with_kid(kid),
            None => key,
        })
    }

    /// Refuses a key published for something other than verifying signatures.
    fn check_use(&self) -> Result<(), KeyError> {
        if let Some(use_) = &self.use_
            && use_ != "sig"
        {
            return Err(KeyError::new(
                KeyErrorKind::Unsupported,
                format!("a key for `use: {use_}`, not `sig`"),
            ));
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|op| op == "verify")
        {
            return Err(KeyError::new(
                KeyErrorKind::Unsupported,
                "`key_ops` does not include `verify`",
            ));
        }
        Ok(())
    }

    /// `algorithm`, when it is of this key's `family`.
    fn fits(&self, algorithm: Algorithm, family: Family) -> Result<Algorithm, KeyError> {
        if algorithm.family() == family {
            Ok(algorithm)
        } else {
            Err(KeyError::new(
                KeyErrorKind::AlgorithmMismatch,
                format!("`alg: {algorithm}` does not fit a `{}` key", self.kty),
            ))
        }
    }

    /// A P-256 or P-384 key, its curve deciding the algorithm.
    fn ec_key(&self, declared: Option<Algorithm>) -> Result<VerifyingKey, KeyError> {
        let (curve_alg, len) = match self.crv.as_deref() {
            Some("P-256") => (Algorithm::ES256, 32),
            Some("P-384") => (Algorithm::ES384, 48),
            other => {
                return Err(KeyError::new(
                    KeyErrorKind::Unsupported,
                    format!("EC curve {other:?} is not supported"),
                ));
            }
        };
        let algorithm = declared.unwrap_or(curve_alg);
        if algorithm != curve_alg {
            return Err(KeyError::new(
                KeyErrorKind::AlgorithmMismatch,
                format!("`alg: {algorithm}` does not fit curve {:?}", self.crv),
            ));
        }
        let x = member("x", &self.x)?;
        let y = member("y", &self.y)?;
        if x.len() != len || y.len() != len {
            return Err(KeyError::new(
                KeyErrorKind::Malformed,
                "EC coordinates of the wrong length",
            ));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        VerifyingKey::from_der(algorithm, &point)
    }

    /// An Ed25519 key.
    fn okp_key(&self, declared: Option<Algorithm>) -> Result<VerifyingKey, KeyError> {
        if self.crv.as_deref() != Some("Ed25519") {
            return Err(KeyError::new(
                KeyErrorKind::Unsupported,
                format!("OKP curve {:?} is not supported", self.crv),
            ));
        }
        let algorithm = self.fits(declared.unwrap_or(Algorithm::EdDSA), Family::Ed)?;
        let x = member("x", &self.x)?;
        if x.len() != 32 {
            return Err(KeyError::new(
                KeyErrorKind::Malformed,
                "an Ed25519 key is 32 bytes",
            ));
        }
        VerifyingKey::from_der(algorithm, &x)
    }
}

/// A required base64url member of a JWK (`n`, `x`, `k`), decoded.
fn member(field: &'static str, value: &Option<String>) -> Result<Vec<u8>, KeyError> {
    let text = value
        .as_deref()
        .ok_or_else(|| KeyError::new(KeyErrorKind::Malformed, format!("no `{field}`")))?;
    BASE64URL.decode(text).map_err(|_| {
        KeyError::new(
            KeyErrorKind::Malformed,
            format!("`{field}` is not unpadded base64url"),
        )
    })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn rsa_key(algorithm: Algorithm, n: &[u8], e: &[u8]) -> Result<VerifyingKey, KeyError> {
    let bits = n.first().map_or(0, |&top| {
        (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    });
    if bits < MIN_RSA_BITS {
        return Err(KeyError::new(
            KeyErrorKind::TooWeak,
            format!("an RSA key of {bits} bits is refused (at least {MIN_RSA_BITS})"),
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError::new(
            KeyErrorKind::Unsupported,
            format!("an RSA key of {bits} bits is refused (at most {MAX_RSA_BITS})"),
        ));
    }
    let params: &'static signature::RsaParameters = match algorithm {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        other => {
            return Err(KeyError::new(
                KeyErrorKind::AlgorithmMismatch,
                format!("{other} is not an RSA algorithm"),
            ));
        }
    };
    let parsed = RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(params)
        .map_err(|err| {
            KeyError::new(
                KeyErrorKind::Malformed,
                format!("not a valid RSA public key: {err}"),
            )
        })?;
    Ok(VerifyingKey {
        kid: None,
        algorithm,
        inner: Material::Public(parsed),
    })
}

fn parsed(algorithm: Algorithm, der: &[u8]) -> Result<ParsedPublicKey, KeyError> {
    let verification: &'static dyn signature::VerificationAlgorithm = match algorithm {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        other => {
            return Err(KeyError::new(
                KeyErrorKind::AlgorithmMismatch,
                format!("{other} is not an ECDSA or EdDSA algorithm"),
            ));
        }
    };
    ParsedPublicKey::new(verification, der).map_err(|e| {
        KeyError::new(
            KeyErrorKind::Malformed,
            format!("not a valid {algorithm} public key: {e}"),
        )
    })
}

/// The public-key members of a DPoP proof's `jwk` header (RFC 9449 §4.2), borrowed, with the
/// private members noted only to refuse them.
#[derive(Deserialize)]
pub(crate) struct ProofJwk<'a> {
    #[serde(borrow)]
    kty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    crv: Option<Cow<'a, str>>,
    #[serde(borrow)]
    x: Option<Cow<'a, str>>,
    #[serde(borrow)]
    y: Option<Cow<'a, str>>,
    #[serde(borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(default)]
    d: Present,
    #[serde(default)]
    p: Present,
    #[serde(default)]
    q: Present,
    #[serde(default)]
    dp: Present,
    #[serde(default)]
    dq: Present,
    #[serde(default)]
    qi: Present,
    #[serde(default)]
    oth: Present,
    #[serde(default)]
    k: Present,
}

/// The key of a DPoP proof, for `algorithm`, with its RFC 7638 SHA-256 thumbprint (base64url).
/// The same rules as a JWKS key: RSA of 2048 to 8192 bits, P-256 for ES256, P-384 for ES384,
/// Ed25519 for EdDSA; and no private member, nor a shared secret.
pub(crate) fn proof_key(
    algorithm: Algorithm,
    jwk: &ProofJwk<'_>,
) -> Result<(VerifyingKey, String), KeyError> {
    let private = [
        &jwk.d, &jwk.p, &jwk.q, &jwk.dp, &jwk.dq, &jwk.qi, &jwk.oth, &jwk.k,
    ];
    if private.iter().any(|member| member.is_some()) {
        return Err(KeyError::new(
            KeyErrorKind::NotAllowed,
            "the key carries private members",
        ));
    }
    let (key, canonical) = match (jwk.kty.as_deref(), algorithm.family()) {
        (Some("RSA"), Family::Rsa) => proof_rsa(algorithm, jwk)?,
        (Some("EC"), Family::Ec) => proof_ec(algorithm, jwk)?,
        (Some("OKP"), Family::Ed) => proof_okp(algorithm, jwk)?,
        (Some("oct"), _) => {
            return Err(KeyError::new(
                KeyErrorKind::NotAllowed,
                "a shared secret (`oct`) proves nothing",
            ));
        }
        _ => {
            return Err(KeyError::new(
                KeyErrorKind::AlgorithmMismatch,
                format!("the key type does not fit {algorithm}"),
            ));
        }
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Ok((key, BASE64URL.encode(digest.as_ref())))
}

/// A required member of a proof's JWK, and its bytes.
fn proof_member<'j>(
    member: &'j Option<Cow<'_, str>>,
    name: &'static str,
) -> Result<(&'j str, Vec<u8>), KeyError> {
    let text = member
        .as_deref()
        .ok_or_else(|| KeyError::new(KeyErrorKind::Malformed, format!("no `{name}`")))?;
    let bytes = BASE64URL.decode(text).map_err(|_| {
        KeyError::new(
            KeyErrorKind::Malformed,
            format!("`{name}` is not unpadded base64url"),
        )
    })?;
    Ok((text, bytes))
}

/// An RSA proof key and its RFC 7638 members, in order.
fn proof_rsa(algorithm: Algorithm, jwk: &ProofJwk<'_>) -> Result<(VerifyingKey, String), KeyError> {
    let (n, n_bytes) = proof_member(&jwk.n, "n")?;
    let (e, e_bytes) = proof_member(&jwk.e, "e")?;
    let key = rsa_key(algorithm, strip_zeros(&n_bytes), strip_zeros(&e_bytes))?;
    Ok((key, format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)))
}

/// A P-256 or P-384 proof key, its curve fitting `algorithm`.
fn proof_ec(algorithm: Algorithm, jwk: &ProofJwk<'_>) -> Result<(VerifyingKey, String), KeyError> {
    let (crv, len) = match (jwk.crv.as_deref(), algorithm) {
        (Some("P-256"), Algorithm::ES256) => ("P-256", 32),
        (Some("P-384"), Algorithm::ES384) => ("P-384", 48),
        _ => {
            return Err(KeyError::new(
                KeyErrorKind::AlgorithmMismatch,
                format!("the curve does not fit {algorithm}"),
            ));
        }
    };
    let (x, x_bytes) = proof_member(&jwk.x, "x")?;
    let (y, y_bytes) = proof_member(&jwk.y, "y")?;
    if x_bytes.len() != len || y_bytes.len() != len {
        return Err(KeyError::new(
            KeyErrorKind::Malformed,
            "EC coordinates of the wrong length",
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x_bytes);
    point.extend_from_slice(&y_bytes);
    let key = VerifyingKey::from_der(algorithm, &point)?;
    Ok((
        key,
        format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#),
    ))
}

/// An Ed25519 proof key.
fn proof_okp(algorithm: Algorithm, jwk: &ProofJwk<'_>) -> Result<(VerifyingKey, String), KeyError> {
    if jwk.crv.as_deref() != Some("Ed25519") {
        return Err(KeyError::new(
            KeyErrorKind::Unsupported,
            "only the Ed25519 curve is supported for OKP keys",
        ));
    }
    let (x, x_bytes) = proof_member(&jwk.x, "x")?;
    if x_bytes.len() != 32 {
        return Err(KeyError::new(
            KeyErrorKind::Malformed,
            "an Ed25519 key is 32 bytes",
        ));
    }
    let key = VerifyingKey::from_der(algorithm, &x_bytes)?;
    Ok((key, format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint; private members and shared secrets refused.
    #[test]
    fn proof_keys_have_the_rfc_7638_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk =
            format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","alg":"RS256","kid":"2011-04-29"}}"#);
        let parsed: ProofJwk<'_> = serde_json::from_str(&jwk).unwrap();
        let (_, jkt) = proof_key(Algorithm::RS256, &parsed).unwrap();
        assert_eq!(jkt, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        let private = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB","d":null}}"#);
        let parsed: ProofJwk<'_> = serde_json::from_str(&private).unwrap();
        let err = proof_key(Algorithm::RS256, &parsed).unwrap_err();
        assert_eq!(err.kind(), KeyErrorKind::NotAllowed);
        let secret: ProofJwk<'_> = serde_json::from_str(r#"{"kty":"oct","k":"AAAA"}"#).unwrap();
        assert!(proof_key(Algorithm::ES256, &secret).is_err());
    }
}
