//! [`JwtIssuer`]: short-lived access tokens for services that hand them out themselves, e.g.
//! after a Basic or API-key login, so later calls carry a cheap-to-check bearer token.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::algorithm::Algorithm;
use super::authenticator::{JwtAuthenticatorBuilder, crypto_backend_check};
use super::claims::ClaimMapping;
use super::compact::BASE64URL;
use super::error::{IssueError, KeyError, KeyErrorKind};
use super::jwks::KeySource;
use super::keys::{KeySet, VerifyingKey};
use crate::error::ConfigError;
use crate::principal::{Principal, SubjectKind};
use crate::secret::SecretString;

/// A signing key for [`JwtIssuer`]: ES256, EdDSA (Ed25519) or HS256.
///
/// `Debug` shows the algorithm and `kid` only.
pub struct SigningKey {
    algorithm: Algorithm,
    kid: Option<String>,
    encoding: EncodingKey,
    /// The verifying half; for HS256 the same secret.
    verifying: VerifyingKey,
    /// The public JWK, for asymmetric keys.
    public_jwk: Option<Map<String, Value>>,
}

impl SigningKey {
    /// A fresh random key: a P-256 or Ed25519 key pair, or a 256-bit HMAC secret. Tokens it signs
    /// stop verifying when the process restarts, which suits a demo or a single instance.
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        let failed = |what: &str| {
            KeyError::new(KeyErrorKind::Unsupported, format!("cannot generate {what}"))
        };
        match algorithm {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| failed("a P-256 key"))?;
                let pkcs8 = pair.to_pkcs8v1().map_err(|_| failed("a P-256 key"))?;
                Self::ec(pkcs8.as_ref(), pair.public_key().as_ref())
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(|_| failed("an Ed25519 key"))?;
                let pkcs8 = pair.to_pkcs8().map_err(|_| failed("an Ed25519 key"))?;
                Self::ed(pkcs8.as_ref(), pair.public_key().as_ref())
            }
            Algorithm::HS256 => {
                let mut secret = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut secret)
                    .map_err(|_| failed("a secret"))?;
                Self::hs256(&secret)
            }
            other => Err(KeyError::new(
                KeyErrorKind::Unsupported,
                format!("JwtIssuer signs with ES256, EdDSA or HS256, not {other}"),
            )),
        }
    }

    /// A PKCS#8 private key in PEM (`-----BEGIN PRIVATE KEY-----`) for ES256 or EdDSA.
    pub fn from_pkcs8_pem(algorithm: Algorithm, pem: &str) -> Result<Self, KeyError> {
        let malformed = |e: &dyn fmt::Display| {
            KeyError::new(
                KeyErrorKind::Malformed,
                format!("not a PKCS#8 {algorithm} private key: {e}"),
            )
        };
        match algorithm {
            Algorithm::ES256 => {
                let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| malformed(&e))?;
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.as_bytes())
                        .map_err(|e| malformed(&e))?;
                Self::ec(key.as_bytes(), pair.public_key().as_ref())
            }
            Algorithm::EdDSA => {
                let key = EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|e| malformed(&e))?;
                let pair = Ed25519KeyPair::from_pkcs8(key.as_bytes()).map_err(|e| malformed(&e))?;
                Self::ed(key.as_bytes(), pair.public_key().as_ref())
            }
            other => Err(KeyError::new(
                KeyErrorKind::Unsupported,
                format!("a PEM signing key is for ES256 or EdDSA, not {other}"),
            )),
        }
    }

    /// An HS256 secret of at least 32 bytes. The authenticator needs the same secret.
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        let verifying = VerifyingKey::hmac(Algorithm::HS256, secret)?;
        let encoding = EncodingKey::from_secret(secret).map_err(|e| {
            KeyError::new(KeyErrorKind::Malformed, format!("not an HMAC secret: {e}"))
        })?;
        Ok(Self {
            algorithm: Algorithm::HS256,
            kid: None,
            encoding,
            verifying,
            public_jwk: None,
        })
    }

    /// Sets the `kid` put in every token's header and in the public JWK.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        self.verifying = self.verifying.with_kid(kid.clone());
        if let Some(jwk) = &mut self.public_jwk {
            jwk.insert("kid".to_owned(), Value::String(kid.clone()));
        }
        self.kid = Some(kid);
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn ec(pkcs8: &[u8], public: &[u8]) -> Result<Self, KeyError> {
        let (x, y) = public
            .get(1..)
            .filter(|xy| xy.len() == 64)
            .map(|xy| xy.split_at(32))
            .ok_or_else(|| {
                KeyError::new(KeyErrorKind::Malformed, "not an uncompressed P-256 point")
            })?;
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "x": BASE64URL.encode(x), "y": BASE64URL.encode(y),
        });
        Ok(Self {
            algorithm: Algorithm::ES256,
            kid: None,
            encoding: EncodingKey::from_ec_der(pkcs8),
            verifying: VerifyingKey::from_der(Algorithm::ES256, public)?,
            public_jwk: jwk.as_object().cloned(),
        })
    }

    fn ed(pkcs8: &[u8], public: &[u8]) -> Result<Self, KeyError> {
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "x": BASE64URL.encode(public),
        });
        Ok(Self {
            algorithm: Algorithm::EdDSA,
            kid: None,
            encoding: EncodingKey::from_ed_der(pkcs8),
            verifying: VerifyingKey::from_der(Algorithm::EdDSA, public)?,
            public_jwk: jwk.as_object().cloned(),
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Issues short-lived JWT access tokens (RFC 9068 shape: `typ: at+jwt`, `iss`, `sub`, `aud`,
/// `iat`, `exp`, `jti`, `scope`, `client_id` for applications, and the principal's groups).
///
/// ```
/// use std::time::Duration;
/// use portcullis::{Gate, Principal, RequestView, Scheme, SubjectKind};
/// use portcullis::jwt::{Algorithm, JwtIssuer, SigningKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let issuer = JwtIssuer::builder("https://auth.example.com", SigningKey::generate(Algorithm::ES256)?)
///     .audience("orders-api")
///     .build()?;
/// let gate = Gate::builder().authenticator(issuer.authenticator_builder().build()?).build()?;
///
/// // After checking a password or an API key:
/// let alice = Principal::new("alice", SubjectKind::User, Scheme::BASIC).with_groups(["staff"]);
/// let token = issuer.issue(&alice, Duration::from_secs(600))?;
///
/// let request = http::Request::get("/orders")
///     .header("authorization", format!("Bearer {}", token.expose_secret()))
///     .body(())?;
/// let (parts, ()) = request.into_parts();
/// let principal = gate.check(&RequestView::from_parts(&parts)).await?.expect("authenticated");
/// assert_eq!(principal.subject(), "alice");
/// assert!(principal.in_group("staff"));
/// # Ok(())
/// # }
/// ```
pub struct JwtIssuer {
    issuer: String,
    audiences: Vec<String>,
    key: SigningKey,
    max_lifetime: Duration,
    typ: String,
    groups_claim: String,
}

impl JwtIssuer {
    /// Starts building an issuer named `issuer` (the `iss` of its tokens) signing with `key`.
    pub fn builder(issuer: impl Into<String>, key: SigningKey) -> JwtIssuerBuilder {
        JwtIssuerBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            key,
            max_lifetime: Duration::from_secs(3600),
            typ: "at+jwt".to_owned(),
            groups_claim: "groups".to_owned(),
        }
    }

    /// A token for `principal`, valid for `lifetime` (at most the cap) and never past the
    /// principal's own [`expires_at`](Principal::expires_at): a token issued on an API key that
    /// expires in five minutes expires with it, or revoking access by letting the key lapse
    /// would leave a token working for the rest of its lifetime. A principal whose credential
    /// has already expired is refused with [`IssueError::SourceExpired`]. The token is a secret:
    /// hand it over, do not log it.
    pub fn issue(
        &self,
        principal: &Principal,
        lifetime: Duration,
    ) -> Result<SecretString, IssueError> {
        if lifetime.is_zero() {
            return Err(IssueError::ZeroLifetime);
        }
        if lifetime > self.max_lifetime {
            return Err(IssueError::LifetimeExceedsCap {
                requested: lifetime,
                cap: self.max_lifetime,
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut exp = now + lifetime.as_secs().max(1);
        if let Some(source_exp) = principal.expires_at() {
            // Rounded down, so the token never outlives its source by a fraction of a second.
            let source_exp = u64::try_from(source_exp.timestamp()).unwrap_or(0);
            if source_exp <= now {
                return Err(IssueError::SourceExpired);
            }
            exp = exp.min(source_exp);
        }
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .map_err(|_| IssueError::Signing("no randomness for `jti`".to_owned()))?;
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), principal.subject().into());
        claims.insert(
            "aud".into(),
            match self.audiences.as_slice() {
                [one] => one.clone().into(),
                many => many.to_vec().into(),
            },
        );
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("jti".into(), BASE64URL.encode(jti).into());
        if principal.kind() == SubjectKind::Application {
            claims.insert("client_id".into(), principal.subject().into());
        }
        if !principal.scopes().is_empty() {
            claims.insert("scope".into(), principal.scopes().join(" ").into());
        }
        if !principal.groups().is_empty() {
            claims.insert(
                self.groups_claim.clone(),
                principal.groups().to_vec().into(),
            );
        }
        self.sign(&claims)
    }

    /// Signs exactly `claims` with this issuer's key, header `typ` and `kid`, checking nothing:
    /// the test kit's tokens with any claims (`testing::TestIssuer`). Never public, so a
    /// service's issuer cannot mint past its own caps.
    pub(crate) fn sign(&self, claims: &Map<String, Value>) -> Result<SecretString, IssueError> {
        let mut header = Header::new(self.key.algorithm.to_jsonwebtoken());
        header.typ = Some(self.typ.clone());
        header.kid = self.key.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key.encoding)
            .map(SecretString::new)
            .map_err(|e| IssueError::Signing(e.to_string()))
    }

    /// The audiences (`aud`) of issued tokens.
    #[cfg(feature = "test-util")]
    pub(crate) fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The claim groups are written to.
    #[cfg(feature = "test-util")]
    pub(crate) fn groups_claim(&self) -> &str {
        &self.groups_claim
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys that verify issued tokens (for HS256, the secret itself).
    pub fn key_set(&self) -> KeySet {
        KeySet::new().with(self.key.verifying.clone())
    }

    /// The public JWKS to publish for other services; empty for HS256.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .key
            .public_jwk
            .clone()
            .map(Value::Object)
            .into_iter()
            .collect();
        json!({ "keys": keys })
    }

    /// An authenticator builder that accepts exactly this issuer's tokens: its issuer and keys,
    /// its audiences, `typ`, groups claim and lifetime cap. Add settings, then `build`.
    pub fn authenticator_builder(&self) -> JwtAuthenticatorBuilder {
        super::JwtAuthenticator::builder()
            .issuer(self.issuer.clone(), KeySource::Static(self.key_set()))
            .audiences(self.audiences.clone())
            .algorithms([self.key.algorithm])
            .require_typ(self.typ.clone())
            .max_lifetime(Some(self.max_lifetime))
            .claims(ClaimMapping::new().groups_claim(self.groups_claim.as_str()))
    }
}

impl fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("key", &self.key)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtIssuer`].
#[must_use]
#[derive(Debug)]
pub struct JwtIssuerBuilder {
    issuer: String,
    audiences: Vec<String>,
    key: SigningKey,
    max_lifetime: Duration,
    typ: String,
    groups_claim: String,
}

impl JwtIssuerBuilder {
    /// Adds an audience (`aud`): the service, or services, the tokens are for. At least one.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The longest lifetime [`JwtIssuer::issue`] grants. Defaults to 1 hour.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// The header's `typ`. Defaults to `at+jwt` (RFC 9068).
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = typ.into();
        self
    }

    /// The claim groups are written to. Defaults to `groups`.
    pub fn groups_claim(mut self, claim: impl Into<String>) -> Self {
        self.groups_claim = claim.into();
        self
    }

    /// Checks the settings and builds the issuer.
    pub fn build(self) -> Result<JwtIssuer, ConfigError> {
        crypto_backend_check()?;
        if self.issuer.is_empty() {
            return Err(ConfigError::new("the issuer is empty").with_key("issuer"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(
                ConfigError::new("at least one non-empty audience is required")
                    .with_key("audience"),
            );
        }
        if self.max_lifetime.as_secs() == 0 {
            return Err(
                ConfigError::new("the maximum lifetime must be at least one second")
                    .with_key("max_lifetime"),
            );
        }
        if self.typ.is_empty() || self.groups_claim.is_empty() {
            return Err(ConfigError::new(
                "`typ` and the groups claim must not be empty",
            ));
        }
        Ok(JwtIssuer {
            issuer: self.issuer,
            audiences: self.audiences,
            key: self.key,
            max_lifetime: self.max_lifetime,
            typ: self.typ,
            groups_claim: self.groups_claim,
        })
    }
}
