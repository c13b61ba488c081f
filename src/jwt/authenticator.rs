//! [`JwtAuthenticator`]: verifies JWT bearer tokens against the configured issuers' keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::algorithm::Algorithm;
use super::bearer::{BearerLocator, is_jws_shaped};
use super::claims::{ClaimMapping, Claims, Verified};
use super::compact;
use super::dpop::{self, DpopError, DpopMode, DpopSettings};
use super::error::{FetchError, TokenError, TokenErrorKind};
use super::http::{HttpClient, default_http_client};
use super::jwks::{JwksCacheConfig, KeySource, RemoteKeys, resolve};
use super::keys::KeySet;
use super::mtls::{self, CertificateBindingMode};
use super::validation::{Rules, normalize_typ};
use super::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_SIZE};
use crate::authenticator::{Authenticator, CredentialSource, Outcome};
use crate::error::ConfigError;
use crate::future::BoxFuture;
use crate::health::ComponentStatus;
use crate::principal::{Principal, Scheme};
use crate::reject::Challenge;
use crate::request::RequestView;

/// The longest `kid` accepted unless configured otherwise.
pub const DEFAULT_MAX_KID_LEN: usize = 256;
/// The longest token lifetime (`exp - iat`) accepted unless configured otherwise.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The claims required unless configured otherwise.
pub const DEFAULT_REQUIRED_CLAIMS: [&str; 3] = ["exp", "iss", "aud"];

/// Authenticates requests carrying a JWT in `Authorization: Bearer` (RFC 6750, RFC 9068).
///
/// It recognises only bearer tokens with the compact JWS shape (they contain a `.`), so API keys
/// and opaque tokens in the same header go to their own authenticators. For a token it
/// recognises:
///
/// 1. the shape: at most `max_token_size` bytes, three base64url parts, a header and claims that
///    are JSON objects with no duplicate member, no JWE, no `crit`, no nested JWT;
/// 2. the header: `alg` among the allowed algorithms, `typ` as required, `kid` within its length
///    cap; `jwk`, `jku`, `x5u` and `x5c` are ignored;
/// 3. the issuer: `iss` (a string) must be a configured issuer, which names the key source;
/// 4. the key: the issuer's key with the token's `kid`, which must be for the token's `alg`;
/// 5. the signature, with that key, parsed once when loaded;
/// 6. the claims: required claims present, `exp`/`nbf`/`iat` with leeway, the lifetime cap, `aud`;
/// 7. the principal: see [`ClaimMapping`].
///
/// Any failure is a 401 with `error="invalid_token"`; keys that were never loaded are a 503; a
/// token in two places is a 400.
#[derive(Clone)]
pub struct JwtAuthenticator {
    inner: Arc<Inner>,
}

struct Inner {
    realm: String,
    issuers: Vec<IssuerEntry>,
    algorithms: Vec<Algorithm>,
    rules: Rules,
    claims: ClaimMapping,
    max_token_size: usize,
    max_kid_len: usize,
    locator: BearerLocator,
    dpop: DpopSettings,
    /// Whether some issuer's DPoP mode is not `disabled`: `Authorization: DPoP` is read.
    dpop_read: bool,
    /// Whether every issuer's DPoP mode is `required`: no token is accepted as `Bearer`.
    dpop_only: bool,
}

struct IssuerEntry {
    issuer: String,
    keys: Keys,
    dpop: DpopMode,
    certificate: CertificateBindingMode,
}

enum Keys {
    Static(KeySet),
    Remote(Arc<RemoteKeys>),
}

impl JwtAuthenticator {
    /// Starts building an authenticator.
    pub fn builder() -> JwtAuthenticatorBuilder {
        JwtAuthenticatorBuilder::default()
    }

    /// Verifies a token and maps it to a principal, as for a request (without the Gate's
    /// policies). For tools and tests; the Gate calls [`Authenticator::authenticate`].
    ///
    /// A DPoP-bound token (`cnf.jkt`) is refused here, as it is when sent as `Bearer`, and so
    /// is an unbound one whose issuer requires DPoP: check those with
    /// [`verify_dpop`](Self::verify_dpop).
    ///
    /// A certificate-bound token (`cnf["x5t#S256"]`, RFC 8705) is refused here, having no
    /// client certificate: check it with [`verify_with_certificate`](Self::verify_with_certificate).
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_with_certificate(token, None).await
    }

    /// Verifies a token sent as a bearer token over a connection authenticated with the client
    /// certificate `certificate` (DER; `None` for none), as for a request (without the Gate's
    /// policies): a certificate-bound token (`cnf["x5t#S256"]`) is accepted only with the
    /// certificate it names, and its principal then has
    /// [`Confirmation::Certificate`](crate::policy::Confirmation::Certificate). For tools and
    /// tests.
    pub async fn verify_with_certificate(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Principal, TokenError> {
        let (principal, mode) = self.verify_bound(token, certificate).await?;
        dpop::check_bearer(principal, mode)
    }

    /// The token's checks with its issuer's certificate binding (RFC 8705) applied; the DPoP
    /// mode is returned for the caller's rule.
    async fn verify_bound(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<(Principal, DpopMode), TokenError> {
        let (principal, issuer) = self.verify_token(token).await?;
        let principal = mtls::check(principal, issuer.certificate, certificate)?;
        Ok((principal, issuer.dpop))
    }

    /// Verifies a token sent as `Authorization: DPoP` with its `proof`, for a request of
    /// `method` to `url` (the full URI; query and fragment are ignored), as for a request but
    /// without the Gate's policies, the nonce and the replay cache (the server's state). Says
    /// which check failed ([`DpopError::kind`]). For tools and tests.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<Principal, DpopError> {
        let verified = dpop::verify_proof(
            proof,
            method,
            url,
            Some(token),
            &self.inner.dpop,
            std::time::SystemTime::now(),
        )?;
        let (principal, mode) = self
            .verify_bound(token, None)
            .await
            .map_err(DpopError::token)?;
        if mode == DpopMode::Disabled {
            return Err(DpopError::new(
                dpop::DpopErrorKind::NotAccepted,
                "DPoP is disabled for the token's issuer",
            ));
        }
        dpop::check_binding(principal.bound_jkt(), &verified)?;
        let jkt = verified.jkt().to_owned();
        Ok(principal.with_confirmation(crate::principal::Confirmation::Dpop { jkt }))
    }

    /// The token's checks, signature and claims, with its issuer; no binding rule.
    async fn verify_token(&self, token: &str) -> Result<(Principal, &IssuerEntry), TokenError> {
        let inner = &self.inner;
        let token = compact::parse(token, inner.max_token_size, inner.max_kid_len)?;
        if !inner.algorithms.contains(&token.alg) {
            return Err(TokenError::new(
                TokenErrorKind::UnsupportedAlgorithm,
                format!("{} is not an allowed algorithm", token.alg),
            ));
        }
        // A DPoP proof is never an access token (RFC 9449 §4.2: its own `typ`).
        if token
            .typ
            .as_deref()
            .is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt"))
        {
            return Err(TokenError::new(
                TokenErrorKind::InvalidType,
                "a DPoP proof (`typ: dpop+jwt`) is not an access token",
            ));
        }
        inner.rules.check_typ(token.typ.as_deref())?;
        let claims = Claims::parse(&token.payload, &inner.claims)
            .map_err(|e| TokenError::malformed(format!("claims: {e}")))?;
        let issuer = self.issuer_of(&claims)?;
        let kid = token.kid.as_deref();
        let key = match &issuer.keys {
            Keys::Static(set) => resolve(set.find(kid, token.alg), kid, token.alg)?,
            Keys::Remote(remote) => remote.find(kid, token.alg).await?,
        };
        let mut signature = [0; compact::SIGNATURE_BUF_LEN];
        let signature = token.signature(&mut signature)?;
        let verified = Verified::signature(&key, token.signing_input.as_bytes(), signature)
            .ok_or_else(|| {
                TokenError::new(
                    TokenErrorKind::InvalidSignature,
                    "the signature does not verify",
                )
            })?;
        let times = inner.rules.check_claims(&claims)?;
        let mut principal = inner
            .claims
            .principal(&claims, Scheme::JWT, times, verified)?;
        principal.set_claims_json(token.payload);
        Ok((principal, issuer))
    }

    /// Fetches every remote key set now: call it at start-up to fail fast, or to load keys before
    /// the first request. Returns the first failure; the others are logged.
    pub async fn refresh_keys(&self) -> Result<(), FetchError> {
        let mut first = None;
        for issuer in &self.inner.issuers {
            if let Keys::Remote(remote) = &issuer.keys
                && let Err(err) = remote.refresh().await
            {
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// How many key-set fetches were attempted, over all issuers (for metrics and tests).
    pub fn key_fetches(&self) -> u64 {
        self.inner
            .issuers
            .iter()
            .map(|issuer| match &issuer.keys {
                Keys::Remote(remote) => remote.fetches(),
                Keys::Static(_) => 0,
            })
            .sum()
    }

    /// The accepted issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner.issuers.iter().map(|i| i.issuer.as_str())
    }

    fn issuer_of(&self, claims: &Claims<'_>) -> Result<&IssuerEntry, TokenError> {
        let issuers = &self.inner.issuers;
        match &claims.iss {
            Some(iss) => issuers.iter().find(|i| i.issuer == *iss).ok_or_else(|| {
                TokenError::new(
                    TokenErrorKind::InvalidIssuer,
                    format!(
                        "issuer {:?} is not accepted",
                        iss.chars().take(128).collect::<String>()
                    ),
                )
            }),
            None if self.inner.rules.requires("iss") || issuers.len() != 1 => Err(TokenError::new(
                TokenErrorKind::MissingClaim,
                "the token has no `iss`",
            )),
            None => Ok(&issuers[0]),
        }
    }

    fn accepts(token: &str) -> bool {
        is_jws_shaped(token)
    }
}

impl Authenticator for JwtAuthenticator {
    fn scheme(&self) -> Scheme {
        Scheme::JWT
    }

    fn challenge(&self) -> Challenge {
        if self.inner.dpop_only {
            dpop::challenge(&self.inner.dpop)
        } else {
            Challenge::new("Bearer").param("realm", self.inner.realm.clone())
        }
    }

    fn challenges(&self) -> Vec<Challenge> {
        let mut challenges = vec![self.challenge()];
        if self.inner.dpop_read && !self.inner.dpop_only {
            challenges.push(dpop::challenge(&self.inner.dpop));
        }
        challenges
    }

    fn sources(&self) -> Vec<CredentialSource> {
        let mut sources = self.inner.locator.sources();
        if self.inner.dpop_read {
            sources.push(dpop::source());
        }
        sources
    }

    /// One component per issuer (`jwt/keys/<issuer>`): static keys are always ready; a remote
    /// set must be loaded and within `max_stale` (a failing refresh before it is degraded). Sets
    /// that are not loaded are fetched at once, each waited for up to `timeout`.
    fn readiness(&self, timeout: Duration) -> BoxFuture<'_, Vec<ComponentStatus>> {
        Box::pin(async move {
            // Every remote set at once, so the report takes one timeout however many issuers.
            let checks: Vec<_> = self
                .inner
                .issuers
                .iter()
                .map(|issuer| {
                    let name = format!("jwt/keys/{}", issuer.issuer);
                    match &issuer.keys {
                        Keys::Static(set) => Err(ComponentStatus::ready(
                            name,
                            format!("{} static keys", set.len()),
                        )),
                        Keys::Remote(remote) => {
                            let remote = Arc::clone(remote);
                            Ok(tokio::spawn(async move {
                                remote.readiness(&name, timeout).await
                            }))
                        }
                    }
                })
                .collect();
            let mut found = Vec::with_capacity(checks.len());
            for (check, issuer) in checks.into_iter().zip(&self.inner.issuers) {
                found.push(match check {
                    Err(done) => done,
                    Ok(running) => running.await.unwrap_or_else(|_| {
                        ComponentStatus::not_ready(
                            format!("jwt/keys/{}", issuer.issuer),
                            "the check failed (panicked)",
                        )
                    }),
                });
            }
            if self.inner.dpop_read {
                let replay = &*self.inner.dpop.replay;
                let name = "jwt/dpop/replay".to_owned();
                found.extend(dpop::replay_readiness(replay, name, timeout).await);
            }
            found
        })
    }

    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            if self.inner.dpop_read {
                match dpop::find(request, Self::accepts) {
                    Ok(Some(credential)) => {
                        let verify =
                            self.verify_bound(credential.token, request.client_certificate());
                        return match dpop::check(request, credential, &self.inner.dpop, verify)
                            .await
                        {
                            Ok(principal) => Outcome::Authenticated(principal),
                            Err(err) => Outcome::Rejected(err.into_rejection(Scheme::JWT)),
                        };
                    }
                    Ok(None) => {}
                    Err(rejection) => return Outcome::Rejected(rejection.for_scheme(Scheme::JWT)),
                }
            }
            let token = match self.inner.locator.find(request, Self::accepts) {
                Ok(Some(token)) => token,
                Ok(None) => return Outcome::Abstain,
                Err(rejection) => return Outcome::Rejected(rejection),
            };
            match self
                .verify_with_certificate(&token, request.client_certificate())
                .await
            {
                Ok(principal) => Outcome::Authenticated(principal),
                Err(err) => Outcome::Rejected(err.into_rejection(Scheme::JWT)),
            }
        })
    }
}

impl fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("JwtAuthenticator")
            .field("realm", &inner.realm)
            .field(
                "issuers",
                &inner.issuers.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
            )
            .field("algorithms", &inner.algorithms)
            .field("audiences", &inner.rules.audiences)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtAuthenticator`]. Every setting is checked by [`build`](Self::build).
#[must_use]
pub struct JwtAuthenticatorBuilder {
    realm: String,
    issuers: Vec<(String, KeySource)>,
    audiences: Vec<String>,
    skip_audience: bool,
    algorithms: Option<Vec<Algorithm>>,
    leeway: Duration,
    required_claims: Vec<String>,
    typ: Option<String>,
    max_token_size: usize,
    max_kid_len: usize,
    max_lifetime: Option<Duration>,
    claims: ClaimMapping,
    http_client: Option<Arc<dyn HttpClient>>,
    jwks: JwksCacheConfig,
    allow_query: bool,
    dpop: DpopSettings,
    dpop_mode: DpopMode,
    issuer_dpop_modes: Vec<(String, DpopMode)>,
    certificate_binding: CertificateBindingMode,
    issuer_certificate_bindings: Vec<(String, CertificateBindingMode)>,
}

impl Default for JwtAuthenticatorBuilder {
    fn default() -> Self {
        Self {
            realm: "api".to_owned(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            skip_audience: false,
            algorithms: None,
            leeway: DEFAULT_LEEWAY,
            required_claims: DEFAULT_REQUIRED_CLAIMS.map(str::to_owned).to_vec(),
            typ: None,
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
            max_kid_len: DEFAULT_MAX_KID_LEN,
            max_lifetime: Some(DEFAULT_MAX_LIFETIME),
            claims: ClaimMapping::default(),
            http_client: None,
            jwks: JwksCacheConfig::default(),
            allow_query: false,
            dpop: DpopSettings::default(),
            dpop_mode: DpopMode::default(),
            issuer_dpop_modes: Vec::new(),
            certificate_binding: CertificateBindingMode::default(),
            issuer_certificate_bindings: Vec::new(),
        }
    }
}

impl JwtAuthenticatorBuilder {
    /// Trusts `issuer` (compared exactly with `iss`) with keys from `source`. Call it once per
    /// issuer; several make a multi-tenant authenticator, each issuer with its own keys.
    pub fn issuer(mut self, issuer: impl Into<String>, source: KeySource) -> Self {
        self.issuers.push((issuer.into(), source));
        self
    }

    /// Accepts tokens whose `aud` names `audience`. At least one is required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens whose `aud` names any of `audiences`.
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Accepts tokens for any audience. Dangerous: a token the issuer minted for another service
    /// is then accepted here (RFC 8725 §3.9). Defaults to off.
    pub fn dangerous_skip_audience_check(mut self) -> Self {
        self.skip_audience = true;
        self
    }

    /// The algorithms accepted. Defaults to every public-key algorithm (RS*, PS*, ES256, ES384,
    /// EdDSA) plus the algorithms of configured HMAC secrets. HS* may only be listed when some
    /// issuer has a static secret.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat`. Defaults to 30 seconds.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The claims a token must carry, from `exp`, `iss`, `aud`, `sub`, `iat`, `nbf`, `jti`.
    /// Defaults to `exp`, `iss`, `aud`. Dropping `exp` accepts tokens that never expire (set
    /// [`max_lifetime`](Self::max_lifetime) to `None` too); dropping `iss` needs a single issuer.
    pub fn required_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_claims = claims.into_iter().map(Into::into).collect();
        self
    }

    /// Requires the header's `typ`, e.g. `at+jwt` for RFC 9068 access tokens (compared
    /// case-insensitively, `application/` optional). Defaults to none: any `typ`, or none.
    /// Requiring it stops an ID token or another JWT of the issuer being used as an access token.
    pub fn require_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// The largest token accepted, in bytes. Defaults to 8 KiB.
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// The longest `kid` accepted, in bytes. Defaults to 256.
    pub fn max_kid_len(mut self, bytes: usize) -> Self {
        self.max_kid_len = bytes;
        self
    }

    /// The longest lifetime (`exp` minus `iat`, or minus now without `iat`) accepted; `None`
    /// accepts any. Defaults to 24 hours.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// How claims become the principal. Defaults to [`ClaimMapping::default`].
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.claims = mapping;
        self
    }

    /// The HTTP client for JWKS URLs and discovery. Defaults to
    /// `ReqwestClient` with the `jwks` feature; without it, remote key
    /// sources need one.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }

    /// How remote key sets are fetched and cached. Defaults to [`JwksCacheConfig::default`].
    pub fn jwks_cache(mut self, config: JwksCacheConfig) -> Self {
        self.jwks = config;
        self
    }

    /// How long after the last successful fetch a remote key set may serve while fetches fail;
    /// past it, the issuer's tokens get 503. Sets [`JwksCacheConfig::max_stale`]; must be longer
    /// than its `refresh_interval`. Defaults to 24 hours.
    pub fn jwks_max_stale(mut self, max_stale: Duration) -> Self {
        self.jwks.max_stale = max_stale;
        self
    }

    /// Serves the last good remote key set for as long as fetches fail, without limit.
    /// Dangerous: a key the provider removed keeps verifying while the provider is unreachable.
    /// See [`JwksCacheConfig::dangerous_serve_stale_keys_forever`].
    pub fn dangerous_serve_stale_keys_forever(mut self) -> Self {
        self.jwks = self.jwks.dangerous_serve_stale_keys_forever();
        self
    }

    /// The realm in the `Bearer` challenge. Defaults to `api`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Also reads a token from the `access_token` query parameter (RFC 6750 §2.3). Dangerous: URLs
    /// end up in logs, browser history and `Referer` headers. Defaults to off; a token there and
    /// in the header is a 400 either way.
    pub fn dangerous_allow_query_token(mut self) -> Self {
        self.allow_query = true;
        self
    }

    /// The rules for DPoP proofs (RFC 9449) and where seen proofs are remembered. Defaults to
    /// [`DpopSettings::default`]: 60 s `max_age`, 5 s future skew, an in-memory replay cache.
    pub fn dpop(mut self, settings: DpopSettings) -> Self {
        self.dpop = settings;
        self
    }

    /// The DPoP mode of every issuer not given its own with
    /// [`issuer_dpop_mode`](Self::issuer_dpop_mode). Defaults to [`DpopMode::Allowed`].
    pub fn dpop_mode(mut self, mode: DpopMode) -> Self {
        self.dpop_mode = mode;
        self
    }

    /// The DPoP mode of `issuer`'s tokens, which must be an issuer added with
    /// [`issuer`](Self::issuer). Defaults to [`dpop_mode`](Self::dpop_mode)'s.
    pub fn issuer_dpop_mode(mut self, issuer: impl Into<String>, mode: DpopMode) -> Self {
        self.issuer_dpop_modes.push((issuer.into(), mode));
        self
    }

    /// The certificate binding (RFC 8705, [`mtls`](super::mtls)) of every issuer not given its
    /// own with [`issuer_certificate_binding`](Self::issuer_certificate_binding). Defaults to
    /// [`CertificateBindingMode::Allowed`].
    pub fn certificate_binding(mut self, mode: CertificateBindingMode) -> Self {
        self.certificate_binding = mode;
        self
    }

    /// The certificate binding of `issuer`'s tokens, which must be an issuer added with
    /// [`issuer`](Self::issuer). Defaults to [`certificate_binding`](Self::certificate_binding)'s.
    pub fn issuer_certificate_binding(
        mut self,
        issuer: impl Into<String>,
        mode: CertificateBindingMode,
    ) -> Self {
        self.issuer_certificate_bindings.push((issuer.into(), mode));
        self
    }

    /// Checks every setting and builds the authenticator.
    pub fn build(self) -> Result<JwtAuthenticator, ConfigError> {
        crypto_backend_check()?;
        let static_algorithms: Vec<(usize, Algorithm)> = self
            .issuers
            .iter()
            .enumerate()
            .filter_map(|(i, (_, source))| match source {
                KeySource::Static(set) => Some(set.iter().map(move |k| (i, k.algorithm()))),
                _ => None,
            })
            .flatten()
            .collect();
        let Checked {
            required,
            typ,
            algorithms,
        } = self.check(&static_algorithms)?;
        let issuers = self.issuer_entries()?;
        let dpop = self.dpop.clone().checked("dpop")?;
        let dpop_read = issuers.iter().any(|i| i.dpop != DpopMode::Disabled);
        let dpop_only = issuers.iter().all(|i| i.dpop == DpopMode::Required);
        Ok(JwtAuthenticator {
            inner: Arc::new(Inner {
                realm: self.realm,
                issuers,
                algorithms,
                rules: Rules {
                    audiences: if self.skip_audience {
                        Vec::new()
                    } else {
                        self.audiences
                    },
                    leeway: self.leeway,
                    required,
                    typ,
                    max_lifetime: self.max_lifetime,
                },
                claims: self.claims,
                max_token_size: self.max_token_size,
                max_kid_len: self.max_kid_len,
                locator: BearerLocator {
                    scheme: Scheme::JWT,
                    allow_query: self.allow_query,
                },
                dpop,
                dpop_read,
                dpop_only,
            }),
        })
    }

    /// Every rule of the settings, given the algorithms of the static keys (issuer index,
    /// algorithm): what [`build`](Self::build) checks before it makes anything, and what `config`
    /// checks before any key file is read (with the algorithms the file declares).
    pub(crate) fn check(
        &self,
        static_algorithms: &[(usize, Algorithm)],
    ) -> Result<Checked, ConfigError> {
        self.check_issuers()?;
        self.check_dpop_modes()?;
        self.check_certificate_bindings()?;
        let required = self.check_settings()?;
        let typ = match &self.typ {
            Some(typ) if typ.trim().is_empty() => {
                return Err(ConfigError::new("the required `typ` is empty").with_key(key("typ")));
            }
            Some(typ) => Some(normalize_typ(typ.trim())),
            None => None,
        };
        let algorithms = self.allowed_algorithms(static_algorithms)?;
        self.check_urls()?;
        Ok(Checked {
            required,
            typ,
            algorithms,
        })
    }

    /// The URLs keys are fetched from: `https`, or `http` to a loopback address.
    fn check_urls(&self) -> Result<(), ConfigError> {
        for (i, (issuer, source)) in self.issuers.iter().enumerate() {
            let at = |field: &str| key(&format!("issuers[{i}].{field}"));
            match source {
                KeySource::JwksUrl(url) => {
                    super::http::check_url(url)
                        .map_err(|e| ConfigError::new(e.to_string()).with_key(at("jwks_url")))?;
                }
                KeySource::Discovery => {
                    super::http::check_url(issuer).map_err(|e| {
                        ConfigError::new(format!("discovery needs an https issuer URL: {e}"))
                            .with_key(at("issuer"))
                    })?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Every issuer given a DPoP mode is a configured one, given one mode.
    fn check_dpop_modes(&self) -> Result<(), ConfigError> {
        for (i, (issuer, _)) in self.issuer_dpop_modes.iter().enumerate() {
            if !self.issuers.iter().any(|(known, _)| known == issuer) {
                return Err(ConfigError::new(format!(
                    "a DPoP mode is given for `{issuer}`, which is not a configured issuer"
                ))
                .with_key(key("issuers")));
            }
            if self.issuer_dpop_modes[..i]
                .iter()
                .any(|(other, _)| other == issuer)
            {
                return Err(ConfigError::new(format!(
                    "issuer `{issuer}` is given a DPoP mode twice"
                ))
                .with_key(key("issuers")));
            }
        }
        Ok(())
    }

    /// Every issuer given a certificate binding is a configured one, given one mode.
    fn check_certificate_bindings(&self) -> Result<(), ConfigError> {
        for (i, (issuer, _)) in self.issuer_certificate_bindings.iter().enumerate() {
            if !self.issuers.iter().any(|(known, _)| known == issuer) {
                return Err(ConfigError::new(format!(
                    "a certificate binding is given for `{issuer}`, which is not a configured issuer"
                ))
                .with_key(key("issuers")));
            }
            if self.issuer_certificate_bindings[..i]
                .iter()
                .any(|(other, _)| other == issuer)
            {
                return Err(ConfigError::new(format!(
                    "issuer `{issuer}` is given a certificate binding twice"
                ))
                .with_key(key("issuers")));
            }
        }
        Ok(())
    }

    /// At least one issuer, none empty or listed twice.
    fn check_issuers(&self) -> Result<(), ConfigError> {
        if self.issuers.is_empty() {
            return Err(
                ConfigError::new("at least one issuer is required").with_key(key("issuers"))
            );
        }
        for (i, (issuer, _)) in self.issuers.iter().enumerate() {
            if issuer.is_empty() {
                return Err(ConfigError::new("the issuer is empty")
                    .with_key(key(&format!("issuers[{i}].issuer"))));
            }
            if self.issuers[..i].iter().any(|(other, _)| other == issuer) {
                return Err(
                    ConfigError::new(format!("issuer `{issuer}` is listed twice"))
                        .with_key(key(&format!("issuers[{i}].issuer"))),
                );
            }
        }
        Ok(())
    }

    /// The settings that do not depend on the key sources; the required claims, checked.
    fn check_settings(&self) -> Result<Vec<&'static str>, ConfigError> {
        if self.jwks.max_stale <= self.jwks.refresh_interval {
            return Err(ConfigError::new(
                "max_stale must be longer than refresh_interval, or keys would go stale between \
                 two refreshes",
            )
            .with_key(key("jwks.max_stale")));
        }
        if self.audiences.is_empty() && !self.skip_audience {
            return Err(ConfigError::new(
                "at least one audience is required (tokens minted for other services must not \
                 be accepted here)",
            )
            .with_key(key("audiences")));
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::new("an audience is empty").with_key(key("audiences")));
        }
        let required = Rules::required_claims(&self.required_claims, &key("required_claims"))?;
        if !required.contains(&"iss") && self.issuers.len() > 1 {
            return Err(ConfigError::new(
                "`iss` must be required when several issuers are configured",
            )
            .with_key(key("required_claims")));
        }
        for (size, name) in [
            (self.max_token_size, "max_token_size"),
            (self.max_kid_len, "max_kid_len"),
        ] {
            if size == 0 {
                return Err(ConfigError::new("size limits must be positive").with_key(key(name)));
            }
        }
        if self.realm.chars().any(char::is_control) {
            return Err(
                ConfigError::new("the realm contains a control character").with_key(key("realm"))
            );
        }
        self.claims.validate(&key("groups_claims"))?;
        let jwks = &self.jwks;
        if jwks.fetch_timeout.is_zero()
            || jwks.max_response_size == 0
            || jwks.refresh_interval.is_zero()
        {
            return Err(ConfigError::new(
                "the JWKS refresh interval, fetch timeout and response size must be positive",
            )
            .with_key(key("jwks")));
        }
        Ok(required)
    }

    /// The allowed algorithms: those given, which must fit the static keys, or every public-key
    /// algorithm and those of the static keys.
    fn allowed_algorithms(
        &self,
        static_algorithms: &[(usize, Algorithm)],
    ) -> Result<Vec<Algorithm>, ConfigError> {
        Ok(match self.algorithms.clone() {
            Some(list) => {
                if list.is_empty() {
                    return Err(
                        ConfigError::new("no algorithm is allowed").with_key(key("algorithms"))
                    );
                }
                for alg in list.iter().filter(|a| a.is_hmac()) {
                    if !static_algorithms.iter().any(|(_, a)| a == alg) {
                        return Err(ConfigError::new(format!(
                            "{alg} is allowed but no issuer has a static {alg} secret; HMAC keys \
                             are never taken from a JWKS URL"
                        ))
                        .with_key(key("algorithms")));
                    }
                }
                for (i, alg) in static_algorithms {
                    if !list.contains(alg) {
                        return Err(ConfigError::new(format!(
                            "this key is for {alg}, which is not in the allowed algorithms"
                        ))
                        .with_key(key(&format!("issuers[{i}].algorithm"))));
                    }
                }
                list
            }
            None => {
                let mut list = Algorithm::ASYMMETRIC.to_vec();
                for (_, alg) in static_algorithms {
                    if !list.contains(alg) {
                        list.push(*alg);
                    }
                }
                list
            }
        })
    }

    /// Each issuer with its keys; remote ones share one HTTP client.
    fn issuer_entries(&self) -> Result<Vec<IssuerEntry>, ConfigError> {
        let mut client = self.http_client.clone();
        let mut issuers = Vec::with_capacity(self.issuers.len());
        for (i, (issuer, source)) in self.issuers.iter().enumerate() {
            let at = |field: &str| key(&format!("issuers[{i}].{field}"));
            let keys = match &source {
                KeySource::Static(set) => {
                    if set.is_empty() {
                        return Err(
                            ConfigError::new("the static key set is empty").with_key(at("keys"))
                        );
                    }
                    Keys::Static(set.clone())
                }
                KeySource::JwksUrl(url) => {
                    let client = shared_client(&mut client)?;
                    Keys::Remote(Arc::new(RemoteKeys::new(
                        issuer,
                        Some(url),
                        client,
                        self.jwks,
                    )))
                }
                KeySource::Discovery => {
                    let client = shared_client(&mut client)?;
                    Keys::Remote(Arc::new(RemoteKeys::new(issuer, None, client, self.jwks)))
                }
            };
            let dpop = self
                .issuer_dpop_modes
                .iter()
                .find(|(named, _)| named == issuer)
                .map_or(self.dpop_mode, |(_, mode)| *mode);
            let certificate = self
                .issuer_certificate_bindings
                .iter()
                .find(|(named, _)| named == issuer)
                .map_or(self.certificate_binding, |(_, mode)| *mode);
            issuers.push(IssuerEntry {
                issuer: issuer.clone(),
                keys,
                dpop,
                certificate,
            });
        }
        Ok(issuers)
    }
}

/// What [`JwtAuthenticatorBuilder::check`] derives from the settings it checked.
pub(crate) struct Checked {
    required: Vec<&'static str>,
    typ: Option<String>,
    algorithms: Vec<Algorithm>,
}

/// The key of a builder setting in its errors: the setting's own name (`max_kid_len`,
/// `issuers[0].issuer`); configuration places it in the `[jwt]` section.
fn key(field: &str) -> String {
    field.to_owned()
}

impl fmt::Debug for JwtAuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticatorBuilder")
            .field("realm", &self.realm)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// The client given, or the default one, made once and shared by every remote source.
fn shared_client(
    client: &mut Option<Arc<dyn HttpClient>>,
) -> Result<Arc<dyn HttpClient>, ConfigError> {
    match client {
        Some(client) => Ok(Arc::clone(client)),
        None => {
            let made = default_http_client()?;
            *client = Some(Arc::clone(&made));
            Ok(made)
        }
    }
}

/// `jsonwebtoken` picks its crypto backend from its cargo features; with both (or neither)
/// enabled and no provider installed, its first `encode` or `decode` panics. That is a build
/// mistake, so it is reported here, at start-up.
pub(crate) fn crypto_backend_check() -> Result<(), ConfigError> {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        return Err(ConfigError::new(
            "jsonwebtoken has no single crypto backend: exactly one of its `aws_lc_rs` and \
             `rust_crypto` features must be enabled in the dependency graph (portcullis uses \
             `aws_lc_rs`; find what enables `rust_crypto` with `cargo tree -e features -i \
             jsonwebtoken`), or install one with `CryptoProvider::install_default`",
        ));
    }
    Ok(())
}
