//! The proof parser and checks (RFC 9449 §4.3), apart from the access-token parser: this one
//! reads the header's `jwk`, which an access token's never does.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::Engine;
use serde::Deserialize;

use super::super::algorithm::Algorithm;
use super::super::compact::{BASE64URL, Present, SIGNATURE_BUF_LEN};
use super::super::error::{TokenError, TokenErrorKind};
use super::super::keys::{ProofJwk, proof_key};
use super::{DpopSettings, MAX_JTI_LEN, htu};
use crate::json::Skip;
use crate::principal::Scheme;
use crate::reject::Rejection;

/// A proof that passed every check of [`verify_proof`].
#[derive(Clone, Debug)]
pub struct VerifiedProof {
    jkt: String,
    jti: String,
    iat: f64,
    algorithm: Algorithm,
}

impl VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: what a bound token's
    /// `cnf.jkt` must be.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The proof's `iat`, in seconds since the epoch.
    pub fn issued_at(&self) -> f64 {
        self.iat
    }

    /// The algorithm the proof is signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Which check of a DPoP request failed; reach it through [`DpopError::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopErrorKind {
    /// `Authorization: DPoP` without a `DPoP` header.
    MissingProof,
    /// More than one `DPoP` header.
    RepeatedProof,
    /// The proof is longer than `max_proof_bytes`.
    TooLarge,
    /// Not a compact JWS with JSON header and claims (unique members, no JWE, no `crit`), or a
    /// claim of the wrong type.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    InvalidType,
    /// `alg` is `none`, HMAC, unknown or not allowed.
    UnsupportedAlgorithm,
    /// `jwk` is missing, not a public key fitting `alg` (RSA under 2048 bits, another curve),
    /// or carries a private member.
    InvalidKey,
    /// The signature does not verify under `jwk`.
    InvalidSignature,
    /// `htm` is not the request's method.
    MethodMismatch,
    /// `htu` is not the request's URI (public origin and path).
    UriMismatch,
    /// `iat` is missing or older than `max_age`.
    Stale,
    /// `iat` is further in the future than `max_future_skew`.
    IssuedInFuture,
    /// `jti` is missing, empty or longer than 256 bytes.
    InvalidJti,
    /// `ath` is missing or is not the hash of the access token.
    AccessTokenHashMismatch,
    /// The proof carries no nonce, or one this service did not issue or that expired: the
    /// client must retry with the `DPoP-Nonce` sent back.
    UseNonce,
    /// This proof (key and `jti`) was already used.
    Replayed,
    /// The token's `cnf.jkt` is not the thumbprint of the proof's key.
    KeyMismatch,
    /// A token without `cnf.jkt` was sent as `DPoP`.
    UnboundToken,
    /// A token with `cnf.jkt` was sent as `Bearer`.
    BoundTokenAsBearer,
    /// An unbound token was sent as `Bearer` where DPoP is `required`.
    BindingRequired,
    /// DPoP is disabled for the token's issuer.
    NotAccepted,
    /// The access token itself is refused; see [`DpopError::token_error`].
    InvalidToken,
    /// No `public_origin` is configured, so no `htu` can be checked.
    NoPublicOrigin,
    /// The replay cache is full of live entries or unreachable, or the token's keys or
    /// introspection endpoint are (503).
    Unavailable,
}

/// A refused DPoP request: which check failed, and a reason for logs (never the token or the
/// proof).
#[derive(Clone, Debug)]
pub struct DpopError {
    kind: DpopErrorKind,
    reason: Cow<'static, str>,
    token: Option<TokenError>,
    nonce: Option<String>,
}

impl DpopError {
    pub(crate) fn new(kind: DpopErrorKind, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            reason: reason.into(),
            token: None,
            nonce: None,
        }
    }

    /// The access token was refused.
    pub(crate) fn token(error: TokenError) -> Self {
        let kind = if error.kind() == TokenErrorKind::Unavailable {
            DpopErrorKind::Unavailable
        } else {
            DpopErrorKind::InvalidToken
        };
        Self {
            kind,
            reason: Cow::Owned(format!("access token: {error}")),
            token: Some(error),
            nonce: None,
        }
    }

    pub(crate) fn with_nonce(mut self, nonce: String) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Which check failed.
    pub fn kind(&self) -> DpopErrorKind {
        self.kind
    }

    /// The reason, for logs.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Why the access token was refused, when that is what failed.
    pub fn token_error(&self) -> Option<&TokenError> {
        self.token.as_ref()
    }

    /// The `error` the response carries (RFC 9449 §7.1, RFC 6750 §3.1): `invalid_dpop_proof`,
    /// `use_dpop_nonce` or `invalid_token`; `None` for a 503.
    pub fn error_code(&self) -> Option<&'static str> {
        use DpopErrorKind as K;
        match self.kind {
            K::Unavailable => None,
            K::UseNonce => Some("use_dpop_nonce"),
            K::InvalidToken
            | K::UnboundToken
            | K::NotAccepted
            | K::BoundTokenAsBearer
            | K::BindingRequired => Some("invalid_token"),
            _ => Some("invalid_dpop_proof"),
        }
    }

    /// The rejection to send for `scheme`'s authenticator.
    pub(crate) fn into_rejection(self, scheme: Scheme) -> Rejection {
        use DpopErrorKind as K;
        match self.kind {
            K::Unavailable => match self.token {
                Some(token) => token.into_rejection(scheme),
                None => Rejection::unavailable(self.reason)
                    .with_retry_after(std::time::Duration::from_secs(1)),
            },
            // Sent as `Bearer`: the Bearer challenge carries the error.
            K::BoundTokenAsBearer | K::BindingRequired => {
                Rejection::invalid_credentials(scheme, self.reason)
            }
            _ => {
                let code = self.error_code().unwrap_or("invalid_dpop_proof");
                let rejection =
                    Rejection::invalid_credentials(scheme, self.reason).with_dpop_error(code);
                match self.nonce {
                    Some(nonce) => rejection.with_dpop_nonce(nonce),
                    None => rejection,
                }
            }
        }
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for DpopError {}

/// Checks one DPoP proof against a request, as a resource server would (RFC 9449 §4.3), apart
/// from what is the server's state: the nonce and the replay of the `jti` are not checked. For
/// tools (`portcullis token verify --dpop-proof`) and tests; the authenticators do all of it.
///
/// `url` is the request's full URI (`https://api.example.com/orders?page=2`; query and
/// fragment are ignored); `access_token`, when given, must be the token whose hash is `ath`.
pub fn verify_proof(
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    settings: &DpopSettings,
    now: SystemTime,
) -> Result<VerifiedProof, DpopError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let expected = htu::normalize(url).ok_or_else(|| {
        DpopError::new(
            DpopErrorKind::UriMismatch,
            "the request URL is not an absolute http(s) URL",
        )
    })?;
    let parsed = parse_proof(proof, settings)?;
    // The nonce is the server's state, as is the replay cache: neither is checked here.
    let mut settings = settings.clone();
    settings.nonces = None;
    parsed.check(
        method,
        |htu| htu::normalize(htu).as_deref() == Some(expected.as_str()),
        access_token,
        &settings,
        now,
    )
}

/// A proof taken apart and its cheap checks passed; [`ParsedProof::check`] does the rest.
pub(crate) struct ParsedProof<'p> {
    signing_input: &'p str,
    signature: &'p str,
    header: Vec<u8>,
    payload: Vec<u8>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    jwk: Option<ProofJwk<'a>>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    b64: Present,
    #[serde(default)]
    zip: Present,
    #[serde(default)]
    enc: Present,
}

#[derive(Deserialize)]
struct ProofClaims<'a> {
    #[serde(borrow)]
    htm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    htu: Option<Cow<'a, str>>,
    iat: Option<f64>,
    #[serde(borrow)]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ath: Option<Cow<'a, str>>,
    #[serde(borrow)]
    nonce: Option<Cow<'a, str>>,
}

fn malformed(reason: impl Into<Cow<'static, str>>) -> DpopError {
    DpopError::new(DpopErrorKind::Malformed, reason)
}

/// Takes a proof apart: size, three base64url parts, header and claims JSON with unique
/// members. [`ParsedProof::check`] does every other check.
pub(crate) fn parse_proof<'p>(
    proof: &'p str,
    settings: &DpopSettings,
) -> Result<ParsedProof<'p>, DpopError> {
    if proof.len() > settings.max_proof_bytes {
        return Err(DpopError::new(
            DpopErrorKind::TooLarge,
            format!(
                "proof of {} bytes exceeds {}",
                proof.len(),
                settings.max_proof_bytes
            ),
        ));
    }
    let mut parts = proof.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("the proof is not a compact JWS of three parts"));
    };
    if signature.is_empty() || signature.len() > SIGNATURE_BUF_LEN * 4 / 3 {
        return Err(malformed("the proof's signature is empty or too long"));
    }
    let header_bytes = BASE64URL
        .decode(header)
        .map_err(|_| malformed("the proof's header is not unpadded base64url"))?;
    serde_json::from_slice::<Skip>(&header_bytes)
        .map_err(|e| malformed(format!("proof header: {e}")))?;
    let payload_bytes = BASE64URL
        .decode(payload)
        .map_err(|_| malformed("the proof's claims are not unpadded base64url"))?;
    serde_json::from_slice::<Skip>(&payload_bytes)
        .map_err(|e| malformed(format!("proof claims: {e}")))?;
    Ok(ParsedProof {
        signing_input: &proof[..header.len() + 1 + payload.len()],
        signature,
        header: header_bytes,
        payload: payload_bytes,
    })
}

impl ParsedProof<'_> {
    /// The claims, the key, the signature and (with `settings.nonces`, given `check_nonce`) the
    /// nonce; `htu_matches` says whether the proof's `htu` names the request.
    pub(crate) fn check(
        &self,
        method: &str,
        htu_matches: impl FnOnce(&str) -> bool,
        access_token: Option<&str>,
        settings: &DpopSettings,
        now: f64,
    ) -> Result<VerifiedProof, DpopError> {
        // The header is parsed once, here: `typ` and `alg` first, its `jwk` after the claims.
        let header: Header<'_> = serde_json::from_slice(&self.header)
            .map_err(|e| malformed(format!("proof header: {e}")))?;
        let alg = check_header(&header, settings)?;
        let claims: ProofClaims<'_> = serde_json::from_slice(&self.payload)
            .map_err(|e| malformed(format!("proof claims: {e}")))?;
        let (iat, jti) = check_claims(&claims, method, htu_matches, access_token, settings, now)?;
        let jwk = header
            .jwk
            .ok_or_else(|| DpopError::new(DpopErrorKind::InvalidKey, "no `jwk`"))?;
        let (key, jkt) = proof_key(alg, &jwk)
            .map_err(|e| DpopError::new(DpopErrorKind::InvalidKey, format!("`jwk`: {e}")))?;
        let mut buf = [0u8; SIGNATURE_BUF_LEN];
        let len = BASE64URL
            .decode_slice(self.signature, &mut buf)
            .map_err(|_| malformed("the proof's signature is not unpadded base64url"))?;
        if !key.verify(self.signing_input.as_bytes(), &buf[..len]) {
            return Err(DpopError::new(
                DpopErrorKind::InvalidSignature,
                "the proof's signature does not verify under its `jwk`",
            ));
        }
        if let Some(nonces) = &settings.nonces {
            let now_secs = now.max(0.0) as u64;
            let fresh = || nonces.issue(now_secs);
            match &claims.nonce {
                Some(nonce) if nonces.accepts(nonce, now_secs) => {}
                Some(_) => {
                    return Err(DpopError::new(
                        DpopErrorKind::UseNonce,
                        "the proof's nonce is unknown or expired",
                    )
                    .with_nonce(fresh()));
                }
                None => {
                    return Err(
                        DpopError::new(DpopErrorKind::UseNonce, "the proof has no nonce")
                            .with_nonce(fresh()),
                    );
                }
            }
        }
        Ok(VerifiedProof {
            jkt,
            jti: jti.to_owned(),
            iat,
            algorithm: alg,
        })
    }
}

/// The header's checks: no extension asked for, `typ`, `alg` in the allowlist. Returns `alg`.
fn check_header(parsed: &Header<'_>, settings: &DpopSettings) -> Result<Algorithm, DpopError> {
    if parsed.crit.is_some() || parsed.b64.is_some() || parsed.zip.is_some() || parsed.enc.is_some()
    {
        return Err(malformed(
            "the proof's header asks for `crit`, `b64`, `zip` or `enc`",
        ));
    }
    match parsed.typ.as_ref().map(|t| t.as_ref()) {
        Some(typ) if typ.eq_ignore_ascii_case("dpop+jwt") => {}
        other => {
            return Err(DpopError::new(
                DpopErrorKind::InvalidType,
                format!(
                    "`typ` is {:?}, not dpop+jwt",
                    other.map(|t| t.chars().take(32).collect::<String>())
                ),
            ));
        }
    }
    let alg = parsed
        .alg
        .as_ref()
        .and_then(|name| name.parse::<Algorithm>().ok())
        .filter(|alg| !alg.is_hmac() && settings.algorithms.contains(alg))
        .ok_or_else(|| {
            DpopError::new(
                DpopErrorKind::UnsupportedAlgorithm,
                format!(
                    "`alg` {:?} is not an allowed proof algorithm",
                    parsed
                        .alg
                        .as_ref()
                        .map(|a| a.chars().take(16).collect::<String>())
                ),
            )
        })?;
    Ok(alg)
}

/// The claims' checks: `htm`, `htu`, `iat`, `jti`, `ath`. Returns `iat` and `jti`.
fn check_claims<'c>(
    claims: &'c ProofClaims<'_>,
    method: &str,
    htu_matches: impl FnOnce(&str) -> bool,
    access_token: Option<&str>,
    settings: &DpopSettings,
    now: f64,
) -> Result<(f64, &'c str), DpopError> {
    let Some(htm) = &claims.htm else {
        return Err(DpopError::new(DpopErrorKind::MethodMismatch, "no `htm`"));
    };
    // Case-sensitive (RFC 9110 §9.1: method names are).
    if htm != method {
        return Err(DpopError::new(
            DpopErrorKind::MethodMismatch,
            format!(
                "`htm` {:?} is not {method}",
                htm.chars().take(16).collect::<String>()
            ),
        ));
    }
    let Some(proof_htu) = &claims.htu else {
        return Err(DpopError::new(DpopErrorKind::UriMismatch, "no `htu`"));
    };
    if !htu_matches(proof_htu) {
        return Err(DpopError::new(
            DpopErrorKind::UriMismatch,
            "`htu` does not name this request's URI",
        ));
    }
    let iat = claims
        .iat
        .filter(|iat| iat.is_finite())
        .ok_or_else(|| DpopError::new(DpopErrorKind::Stale, "no `iat`"))?;
    if now - iat > settings.max_age.as_secs_f64() {
        return Err(DpopError::new(
            DpopErrorKind::Stale,
            format!("the proof is {:.0} s old", now - iat),
        ));
    }
    if iat - now > settings.max_future_skew.as_secs_f64() {
        return Err(DpopError::new(
            DpopErrorKind::IssuedInFuture,
            format!("the proof's `iat` is {:.0} s in the future", iat - now),
        ));
    }
    let jti = match &claims.jti {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
        _ => {
            return Err(DpopError::new(
                DpopErrorKind::InvalidJti,
                "`jti` is missing, empty or longer than 256 bytes",
            ));
        }
    };
    if let Some(token) = access_token {
        let hash = digest::digest(&digest::SHA256, token.as_bytes());
        let mut expected = [0u8; 43];
        let written = BASE64URL
            .encode_slice(hash.as_ref(), &mut expected)
            .unwrap_or(0);
        if claims.ath.as_ref().map(|a| a.as_bytes()) != Some(&expected[..written]) {
            return Err(DpopError::new(
                DpopErrorKind::AccessTokenHashMismatch,
                "`ath` is missing or not the access token's hash",
            ));
        }
    }
    Ok((iat, jti))
}

/// The token's binding against the proof: `cnf.jkt` must be the proof key's thumbprint.
pub(crate) fn check_binding(
    token_jkt: Option<&str>,
    proof: &VerifiedProof,
) -> Result<(), DpopError> {
    match token_jkt {
        None => Err(DpopError::new(
            DpopErrorKind::UnboundToken,
            "a token without `cnf.jkt` was sent as DPoP",
        )),
        Some(jkt) if jkt.as_bytes() == proof.jkt.as_bytes() => Ok(()),
        Some(_) => Err(DpopError::new(
            DpopErrorKind::KeyMismatch,
            "the token's `cnf.jkt` is not the proof key's thumbprint",
        )),
    }
}
