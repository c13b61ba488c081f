//! [`TestIssuer`]: tokens with any claims for a [`JwtAuthenticator`] with its static keys.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Map, Value};

use super::server::JwksServer;
use crate::error::ConfigError;
use crate::jwt::{Algorithm, JwtAuthenticator, JwtAuthenticatorBuilder, JwtIssuer, SigningKey};

/// How long a [`TestIssuer`] token is valid unless told otherwise: 5 minutes.
pub const DEFAULT_TOKEN_LIFETIME: i64 = 300;

/// Mints tokens with any claims (custom ones, any `exp`, `nbf`, `aud` or `scope`, for negative
/// tests too), signed with a fresh ES256 key, for the [`JwtAuthenticator`] it builds with that
/// key (static, no network) or for one reading its JWKS from [`serve`](Self::serve).
///
/// It wraps a [`JwtIssuer`], whose [`issue`](JwtIssuer::issue) checks lifetimes; this one
/// checks nothing and signs what the test wrote.
///
/// ```
/// use portcullis::Gate;
/// use portcullis::testing::TestIssuer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let issuer = TestIssuer::new("https://idp.test", "orders-api")?;
/// let authenticator = issuer.authenticator()?;
/// let token = issuer.token("alice").scope("orders:read").claim("tenant", "acme").sign();
/// let expired = issuer.token("alice").expires_in(-60).sign();
/// # let _ = (authenticator, token, expired);
/// # Ok(())
/// # }
/// ```
pub struct TestIssuer {
    issuer: JwtIssuer,
}

impl TestIssuer {
    /// An issuer named `issuer` (the `iss`) minting tokens for `audience`, with a fresh ES256
    /// key, `typ: at+jwt`, groups in claim `groups` and a 1-hour lifetime cap on the
    /// authenticator it builds.
    pub fn new(issuer: &str, audience: &str) -> Result<Self, ConfigError> {
        let key = SigningKey::generate(Algorithm::ES256)
            .map_err(|e| ConfigError::new(e.to_string()))?
            .with_kid("test-key");
        let issuer = JwtIssuer::builder(issuer, key).audience(audience).build()?;
        Ok(Self { issuer })
    }

    /// Wraps a [`JwtIssuer`] of your own (another algorithm, `typ`, groups claim, audiences).
    pub fn from_issuer(issuer: JwtIssuer) -> Self {
        Self { issuer }
    }

    /// The [`JwtIssuer`] inside, for its [`issue`](JwtIssuer::issue).
    pub fn issuer(&self) -> &JwtIssuer {
        &self.issuer
    }

    /// A token for `subject` with the claims that pass every check: `iss`, `sub`, `aud`, `iat`
    /// now, `exp` in [`DEFAULT_TOKEN_LIFETIME`] seconds, a random `jti`. Change or remove any
    /// of them, add others, then [`sign`](TestToken::sign).
    pub fn token(&self, subject: &str) -> TestToken<'_> {
        let now = now();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.issuer().into());
        claims.insert("sub".into(), subject.into());
        claims.insert(
            "aud".into(),
            match self.issuer.audiences() {
                [one] => one.clone().into(),
                many => many.to_vec().into(),
            },
        );
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + DEFAULT_TOKEN_LIFETIME).into());
        claims.insert("jti".into(), random_jti().into());
        TestToken {
            issuer: self,
            claims,
        }
    }

    /// A token with exactly `claims` (a JSON object; anything else signs `{}`).
    pub fn sign(&self, claims: &Value) -> String {
        let claims = claims.as_object().cloned().unwrap_or_default();
        self.sign_map(&claims)
    }

    fn sign_map(&self, claims: &Map<String, Value>) -> String {
        // ES256 and EdDSA keys generated or parsed at build time, HS256 secrets of any length
        // and any JSON object encode: signing cannot fail.
        self.issuer
            .sign(claims)
            .map(|token| token.expose_secret().to_owned())
            .expect("a test token signs")
    }

    /// An authenticator builder accepting this issuer's tokens, with its keys given statically
    /// (no network). Add settings, then `build`.
    pub fn authenticator_builder(&self) -> JwtAuthenticatorBuilder {
        self.issuer.authenticator_builder()
    }

    /// The authenticator accepting this issuer's tokens, keys given statically (no network).
    pub fn authenticator(&self) -> Result<JwtAuthenticator, ConfigError> {
        self.authenticator_builder().build()
    }

    /// The public JWKS of its key.
    pub fn jwks(&self) -> Value {
        self.issuer.jwks()
    }

    /// A server on 127.0.0.1 publishing this issuer's JWKS at [`JwksServer::jwks_url`], for
    /// an authenticator with `KeySource::JwksUrl`. Its discovery document names the server's
    /// URL as issuer, not this one's: for discovery, use [`with_server`](Self::with_server).
    pub async fn serve(&self) -> Result<JwksServer, ConfigError> {
        JwksServer::start(self.jwks().to_string()).await
    }

    /// A server on 127.0.0.1 and an issuer named after its URL (the `iss` of its tokens) minting
    /// tokens for `audience`, whose keys the server publishes: an authenticator finds them by
    /// OpenID discovery (`KeySource::Discovery`) or at the JWKS URL.
    pub async fn with_server(audience: &str) -> Result<(Self, JwksServer), ConfigError> {
        let server = JwksServer::start(r#"{"keys":[]}"#).await?;
        let issuer = Self::new(&server.issuer(), audience)?;
        server.set_jwks(issuer.jwks().to_string());
        Ok((issuer, server))
    }
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// A token being written by [`TestIssuer::token`]: every setter replaces the claim.
#[must_use]
pub struct TestToken<'a> {
    issuer: &'a TestIssuer,
    claims: Map<String, Value>,
}

impl TestToken<'_> {
    /// Sets claim `name` to `value`, any JSON.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes claim `name` (e.g. `exp`, for a token that never expires).
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets `iss`.
    pub fn issuer(self, issuer: &str) -> Self {
        self.claim("iss", issuer)
    }

    /// Sets `aud` to one audience.
    pub fn audience(self, audience: &str) -> Self {
        self.claim("aud", audience)
    }

    /// Sets `scope` (space-separated, RFC 8693).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// Sets the issuer's groups claim (`groups` unless its [`JwtIssuer`] says otherwise).
    pub fn groups<I, S>(self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = self.issuer.issuer.groups_claim().to_owned();
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|g| Value::String(g.into()))
            .collect();
        self.claim(&name, groups)
    }

    /// Sets `exp` to `seconds` from now; negative for a token that has expired.
    pub fn expires_in(self, seconds: i64) -> Self {
        self.claim("exp", now() + seconds)
    }

    /// Sets `nbf` to `seconds` from now; positive for a token not valid yet.
    pub fn not_before_in(self, seconds: i64) -> Self {
        self.claim("nbf", now() + seconds)
    }

    /// Sets `iat` to `seconds` from now.
    pub fn issued_in(self, seconds: i64) -> Self {
        self.claim("iat", now() + seconds)
    }

    /// The claims as they stand.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Signs the token.
    pub fn sign(self) -> String {
        self.issuer.sign_map(&self.claims)
    }
}

impl fmt::Debug for TestToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestToken")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn random_jti() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
