//! [`IntrospectionAuthenticator`]: opaque bearer tokens checked by the issuer's token
//! introspection endpoint (RFC 7662), with a bounded cache.
//!
//! The cache is keyed by SHA-256 of the token, so it never holds a token. An entry lives for the
//! configured TTL or until the token's `exp`, whichever is sooner: a cached answer never outlives
//! the token. The TTL is also how long a token revoked at the issuer keeps working here.
//!
//! Every made-up token would cost the issuer one request: `active: false` answers are remembered
//! for the TTL in a table of their own (so a flood of them cannot evict the active ones), and at
//! most `max_concurrent` requests are in flight at once; a check that cannot start one within
//! `max_wait` is a 503.
//!
//! An endpoint answers `active: true` for every live token its authorization server issued:
//! tokens for other resource servers, refresh tokens. So an answer must also name this service
//! in `aud` (unless `dangerous_skip_audience_check`), carry an accepted `token_type` when it
//! carries one, and come from the configured `iss` when one is configured (issue #16).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::Instrument as _;

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::error::Category;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::bearer::{BearerLocator, is_jws_shaped};
use super::claims::{ClaimMapping, Claims, Verified};
use super::error::{TokenError, TokenErrorKind};
use super::http::{FetchLimits, HttpClient, check_url, send};
use super::mtls::{self, CertificateBindingMode};
use super::validation::{Rules, now_secs};
use crate::authenticator::{Authenticator, CredentialSource, Outcome};
use crate::cache::ExpiringMap;
use crate::error::ConfigError;
use crate::future::BoxFuture;
use crate::json;
#[cfg(feature = "api-key")]
use crate::key_format::KeyFormat;
use crate::principal::{Principal, Scheme};
use crate::reject::Challenge;
use crate::request::RequestView;
use crate::secret::SecretString;
use crate::telemetry;

/// How portcullis authenticates itself to the introspection endpoint (RFC 7662 §2.1).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (`client_secret_basic`, RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
    /// The client id and secret as form parameters (`client_secret_post`).
    Post {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
    /// A bearer token of the service's own.
    Bearer(SecretString),
}

impl ClientAuth {
    /// `client_secret_basic`.
    pub fn basic(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ClientAuth::Basic {
            client_id: client_id.into(),
            client_secret,
        }
    }

    /// `client_secret_post`.
    pub fn post(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ClientAuth::Post {
            client_id: client_id.into(),
            client_secret,
        }
    }
}

/// Authenticates requests carrying an opaque bearer token by asking the issuer's introspection
/// endpoint (RFC 7662).
///
/// It recognises bearer tokens that are neither JWT-shaped (no `.`) nor API-key-shaped (not
/// `<prefix>_…` of the configured [`KeyFormat`]), so it shares the `Authorization` header with a
/// [`JwtAuthenticator`](super::JwtAuthenticator) and API keys. `active: false` is a 401; an
/// endpoint that cannot be reached, refuses our client credentials or answers nonsense is a 503.
#[derive(Clone)]
pub struct IntrospectionAuthenticator {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    auth: ClientAuth,
    realm: String,
    issuer: Option<String>,
    rules: Rules,
    claims: ClaimMapping,
    client: Arc<dyn HttpClient>,
    limits: FetchLimits,
    cache: Cache<Principal>,
    /// Digests of tokens the endpoint called inactive, for the same TTL.
    inactive: Cache<()>,
    /// Permits for requests to the endpoint: at most `max_concurrent` in flight.
    in_flight: Semaphore,
    max_wait: Duration,
    #[cfg(feature = "api-key")]
    api_keys: Option<KeyFormat>,
    jwt_shaped: bool,
    max_token_size: usize,
    locator: BearerLocator,
    metrics: IntrospectionMetrics,
    /// Without the `jwt` feature (which verifies proofs), DPoP is off: `Authorization: DPoP` is
    /// not read, and a bound token is still refused as a bearer token.
    #[cfg(feature = "jwt")]
    dpop_mode: DpopMode,
    #[cfg(feature = "jwt")]
    dpop: super::dpop::DpopSettings,
    certificate: CertificateBindingMode,
}

/// `portcullis_introspection_calls_total{result}` and `_cache_hits_total`, registered once.
struct IntrospectionMetrics {
    active: telemetry::Counter,
    inactive: telemetry::Counter,
    error: telemetry::Counter,
    cache_hits: telemetry::Counter,
}

impl IntrospectionMetrics {
    fn new() -> Self {
        let calls =
            |result| telemetry::counter_with(telemetry::INTROSPECTION_CALLS, "result", result);
        Self {
            active: calls("active"),
            inactive: calls("inactive"),
            error: calls("error"),
            cache_hits: telemetry::counter(telemetry::INTROSPECTION_CACHE_HITS),
        }
    }
}

#[cfg(feature = "jwt")]
use super::dpop::DpopMode;

/// The `token_type`s (RFC 7662 §2.2) that may authenticate here, compared case-insensitively
/// (RFC 6749 §5.1 token types are). Only access tokens: a refresh token is for the token
/// endpoint, never a resource server. A `DPoP` token (RFC 9449) must carry `cnf.jkt`, and is
/// then accepted only with its proof; a DPoP-bound token sent as a plain bearer token is
/// refused, as RFC 9449 §7.1 asks.
const ACCEPTED_TOKEN_TYPES: &[&str] = &["Bearer", "DPoP"];

impl IntrospectionAuthenticator {
    /// Starts building an authenticator for `endpoint`, authenticating with `auth`.
    pub fn builder(
        endpoint: impl Into<String>,
        auth: ClientAuth,
    ) -> IntrospectionAuthenticatorBuilder {
        IntrospectionAuthenticatorBuilder::new(endpoint.into(), auth)
    }

    /// Introspects a token (or answers from the cache) and maps it to a principal, as a bearer
    /// token: one bound to a DPoP key (`cnf.jkt`) is refused, and so is an unbound one when the
    /// DPoP mode is `required`.
    ///
    /// A certificate-bound token (`cnf["x5t#S256"]`) is refused here, having no client
    /// certificate: check it with
    /// [`introspect_with_certificate`](Self::introspect_with_certificate).
    pub async fn introspect(&self, token: &str) -> Result<Principal, TokenError> {
        self.introspect_with_certificate(token, None).await
    }

    /// Introspects a token sent as a bearer token over a connection authenticated with the
    /// client certificate `certificate` (DER; `None` for none): a certificate-bound token is
    /// accepted only with the certificate it names (RFC 8705). For tools and tests.
    pub async fn introspect_with_certificate(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Principal, TokenError> {
        let principal = self.introspect_bound(token, certificate).await?;
        if principal.bound_jkt().is_some() {
            return Err(TokenError::new(
                TokenErrorKind::DpopBound,
                "a DPoP-bound token (`cnf.jkt`) was sent as a bearer token",
            ));
        }
        #[cfg(feature = "jwt")]
        if self.inner.dpop_mode == DpopMode::Required {
            return Err(TokenError::new(
                TokenErrorKind::DpopRequired,
                "tokens must be DPoP-bound and sent with a proof",
            ));
        }
        Ok(principal)
    }

    /// Introspects a token sent as `Authorization: DPoP` with its `proof`, for a request of
    /// `method` to `url`, as for a request but without the Gate's policies, the nonce and the
    /// replay cache. Says which check failed. For tools and tests.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub async fn introspect_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<Principal, super::dpop::DpopError> {
        use super::dpop::{self, DpopError, DpopErrorKind};
        let verified = dpop::verify_proof(
            proof,
            method,
            url,
            Some(token),
            &self.inner.dpop,
            std::time::SystemTime::now(),
        )?;
        if self.inner.dpop_mode == DpopMode::Disabled {
            return Err(DpopError::new(
                DpopErrorKind::NotAccepted,
                "DPoP is disabled",
            ));
        }
        let principal = self
            .introspect_bound(token, None)
            .await
            .map_err(DpopError::token)?;
        dpop::check_binding(principal.bound_jkt(), &verified)?;
        let jkt = verified.jkt().to_owned();
        Ok(principal.with_confirmation(crate::principal::Confirmation::Dpop { jkt }))
    }

    /// The answer for a token with the certificate binding (RFC 8705) applied.
    async fn introspect_bound(
        &self,
        token: &str,
        certificate: Option<&[u8]>,
    ) -> Result<Principal, TokenError> {
        let principal = self.introspect_token(token).await?;
        mtls::check(principal, self.inner.certificate, certificate)
    }

    /// The answer for a token, from the cache or the endpoint; no binding rule.
    async fn introspect_token(&self, token: &str) -> Result<Principal, TokenError> {
        let inner = &self.inner;
        if token.len() > inner.max_token_size {
            return Err(TokenError::new(
                TokenErrorKind::TooLarge,
                format!(
                    "token of {} bytes exceeds {}",
                    token.len(),
                    inner.max_token_size
                ),
            ));
        }
        if !is_b64token(token) {
            return Err(TokenError::malformed(
                "the token has characters a bearer token cannot have",
            ));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.cached(&digest) {
            return answer;
        }
        // A permit per request to the endpoint, so a flood of tokens cannot open connections
        // to it without bound; past `max_wait` the request is refused as an outage would be.
        let Ok(Ok(_permit)) = tokio::time::timeout(inner.max_wait, inner.in_flight.acquire()).await
        else {
            tracing::debug!(target: "portcullis::jwt", endpoint = %inner.endpoint, "introspection: too many requests in flight");
            return Err(TokenError::unavailable(
                "introspection: too many requests in flight",
                Duration::from_secs(1),
            ));
        };
        // The same token may have been answered while this one waited.
        if let Some(answer) = self.cached(&digest) {
            return answer;
        }
        let span = tracing::debug_span!(target: "portcullis::jwt", "portcullis.introspect");
        let answer = self.ask(token).instrument(span).await;
        match &answer {
            Ok(_) => inner.metrics.active.increment(1),
            Err(err) if err.kind() == TokenErrorKind::Unavailable => {
                inner.metrics.error.increment(1);
            }
            Err(_) => inner.metrics.inactive.increment(1),
        }
        let (principal, exp) = match answer {
            Ok(answer) => answer,
            Err(err) => {
                if err.kind() == TokenErrorKind::Inactive {
                    let until = Instant::now() + inner.inactive.ttl;
                    inner.inactive.insert(digest, (), until);
                }
                return Err(err);
            }
        };
        let mut until = Instant::now() + inner.cache.ttl;
        if let Some(exp) = exp {
            let left = (exp - now_secs()).max(0.0);
            until = until.min(Instant::now() + Duration::from_secs_f64(left.min(1e9)));
        }
        inner.cache.insert(digest, principal.clone(), until);
        Ok(principal)
    }

    /// The cached answer for a token digest: its principal, or the refusal of an inactive token.
    fn cached(&self, digest: &[u8; 32]) -> Option<Result<Principal, TokenError>> {
        let answer = match self.inner.cache.get(digest) {
            Some(principal) => Some(Ok(principal)),
            None => self.inner.inactive.get(digest).map(|()| Err(inactive())),
        };
        if answer.is_some() {
            self.inner.metrics.cache_hits.increment(1);
        }
        answer
    }

    async fn ask(&self, token: &str) -> Result<(Principal, Option<f64>), TokenError> {
        let inner = &self.inner;
        let unavailable = |why: String| {
            tracing::error!(target: "portcullis::jwt", endpoint = %inner.endpoint, "introspection: {why}");
            TokenError::unavailable(format!("introspection: {why}"), Duration::from_secs(5))
        };
        let request = self
            .request(token)
            .map_err(|e| unavailable(format!("cannot build the request: {e}")))?;
        let response = send(inner.client.as_ref(), request, inner.limits)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(unavailable(format!(
                "the endpoint answered {}",
                response.status()
            )));
        }
        self.read_answer(response.body())
    }

    /// The principal and `exp` of an endpoint's `200` answer, or why it refuses the token (or
    /// is an outage). Everything in `body` is the endpoint's word.
    pub(crate) fn read_answer(&self, body: &[u8]) -> Result<(Principal, Option<f64>), TokenError> {
        let inner = &self.inner;
        let unavailable = |why: String| {
            tracing::error!(target: "portcullis::jwt", endpoint = %inner.endpoint, "introspection: {why}");
            TokenError::unavailable(format!("introspection: {why}"), Duration::from_secs(5))
        };
        let answer = match Claims::parse(body, &inner.claims) {
            Ok(answer) => answer,
            // A claim of the wrong type in a JSON object is about the token; anything else (not
            // JSON, not an object, a repeated name) is the endpoint failing us.
            Err(e) if e.classify() == Category::Data && json::parse_object(body).is_ok() => {
                return Err(TokenError::malformed(format!("introspection: {e}")));
            }
            Err(e) => return Err(unavailable(format!("the answer is not a JSON object: {e}"))),
        };
        let verified = match answer.active {
            Some(Some(false)) => return Err(inactive()),
            Some(Some(true)) => Verified::active(&answer),
            _ => None,
        };
        let Some(verified) = verified else {
            return Err(unavailable("the answer has no boolean `active`".to_owned()));
        };
        // Before the audience: a refresh token of this very service is refused for what it is.
        if let Some(token_type) = &answer.token_type
            && !ACCEPTED_TOKEN_TYPES
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(token_type))
        {
            return Err(TokenError::new(
                TokenErrorKind::InvalidTokenType,
                format!(
                    "the introspected token's token_type is {:?}, not an access token",
                    token_type.chars().take(64).collect::<String>()
                ),
            ));
        }
        if answer
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop"))
            && answer.cnf.as_ref().is_none_or(|cnf| cnf.jkt.is_none())
        {
            return Err(TokenError::new(
                TokenErrorKind::InvalidTokenType,
                "the introspected token's token_type is DPoP but it has no `cnf.jkt`",
            ));
        }
        if let Some(expected) = &inner.issuer
            && answer.iss.as_deref() != Some(expected.as_str())
        {
            return Err(TokenError::new(
                TokenErrorKind::InvalidIssuer,
                "the introspected token is not from the expected issuer",
            ));
        }
        let times = inner.rules.check_claims(&answer)?;
        let exp = answer.exp;
        let mut principal =
            inner
                .claims
                .principal(&answer, Scheme::INTROSPECTION, times, verified)?;
        principal.set_claims_json(body.to_vec());
        Ok((principal, exp))
    }

    fn request(&self, token: &str) -> Result<Request<Bytes>, http::Error> {
        // Every plaintext copy of the token and the client secret made here is wiped when it is
        // dropped (`Zeroizing`, strings joined at their final capacity so no growth leaves a copy
        // behind). The body and header values handed to the HTTP client are its own copies and
        // are not wiped.
        let inner = &self.inner;
        let token = Zeroizing::new(form(token));
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(inner.endpoint.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        let mut body_parts = vec!["token=", token.as_str(), "&token_type_hint=access_token"];
        let (client_id, secret);
        match &inner.auth {
            ClientAuth::Basic {
                client_id,
                client_secret,
            } => {
                // RFC 6749 §2.3.1: both are form-encoded before they are joined and encoded.
                let secret = Zeroizing::new(form(client_secret.expose_secret()));
                let pair = joined(&[&form(client_id), ":", &secret]);
                let encoded =
                    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*pair));
                let value = joined(&["Basic ", &encoded]);
                request = request.header(AUTHORIZATION, value.as_str());
            }
            ClientAuth::Post {
                client_id: id,
                client_secret,
            } => {
                client_id = form(id);
                secret = Zeroizing::new(form(client_secret.expose_secret()));
                body_parts.extend(["&client_id=", &client_id, "&client_secret=", &secret]);
            }
            ClientAuth::Bearer(own) => {
                let value = joined(&["Bearer ", own.expose_secret()]);
                request = request.header(AUTHORIZATION, value.as_str());
            }
        }
        let body = joined(&body_parts);
        request.body(Bytes::copy_from_slice(body.as_bytes()))
    }

    fn accepts(&self, token: &str) -> bool {
        (self.inner.jwt_shaped || !is_jws_shaped(token)) && !self.is_api_key_shaped(token)
    }

    /// Whether `token` is left to the API-key authenticator.
    #[cfg(feature = "api-key")]
    fn is_api_key_shaped(&self, token: &str) -> bool {
        self.inner
            .api_keys
            .as_ref()
            .is_some_and(|format| format.looks_like_key(token))
    }

    /// Without the `api-key` feature there is no API-key authenticator to leave keys to.
    #[cfg(not(feature = "api-key"))]
    fn is_api_key_shaped(&self, _token: &str) -> bool {
        false
    }
}

impl Authenticator for IntrospectionAuthenticator {
    fn scheme(&self) -> Scheme {
        Scheme::INTROSPECTION
    }

    fn challenge(&self) -> Challenge {
        #[cfg(feature = "jwt")]
        if self.inner.dpop_mode == DpopMode::Required {
            return super::dpop::challenge(&self.inner.dpop);
        }
        Challenge::new("Bearer").param("realm", self.inner.realm.clone())
    }

    fn challenges(&self) -> Vec<Challenge> {
        #[cfg(feature = "jwt")]
        if self.inner.dpop_mode == DpopMode::Allowed {
            return vec![self.challenge(), super::dpop::challenge(&self.inner.dpop)];
        }
        vec![self.challenge()]
    }

    /// The DPoP replay cache, when DPoP is on (the endpoint itself is asked per token).
    #[cfg(feature = "jwt")]
    fn readiness(&self, timeout: Duration) -> BoxFuture<'_, Vec<crate::health::ComponentStatus>> {
        Box::pin(async move {
            if self.inner.dpop_mode == DpopMode::Disabled {
                return Vec::new();
            }
            let replay = &*self.inner.dpop.replay;
            let name = "introspection/dpop/replay".to_owned();
            super::dpop::replay_readiness(replay, name, timeout)
                .await
                .into_iter()
                .collect()
        })
    }

    fn sources(&self) -> Vec<CredentialSource> {
        #[cfg(feature = "jwt")]
        if self.inner.dpop_mode != DpopMode::Disabled {
            let mut sources = self.inner.locator.sources();
            sources.push(super::dpop::source());
            return sources;
        }
        self.inner.locator.sources()
    }

    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            #[cfg(feature = "jwt")]
            if self.inner.dpop_mode != DpopMode::Disabled {
                use super::dpop;
                match dpop::find(request, |t| self.accepts(t)) {
                    Ok(Some(credential)) => {
                        let mode = self.inner.dpop_mode;
                        let token = credential.token;
                        let certificate = request.client_certificate();
                        let verify = async move {
                            self.introspect_bound(token, certificate)
                                .await
                                .map(|p| (p, mode))
                        };
                        return match dpop::check(request, credential, &self.inner.dpop, verify)
                            .await
                        {
                            Ok(principal) => Outcome::Authenticated(principal),
                            Err(err) => {
                                Outcome::Rejected(err.into_rejection(Scheme::INTROSPECTION))
                            }
                        };
                    }
                    Ok(None) => {}
                    Err(rejection) => {
                        return Outcome::Rejected(rejection.for_scheme(Scheme::INTROSPECTION));
                    }
                }
            }
            let token = match self.inner.locator.find(request, |t| self.accepts(t)) {
                Ok(Some(token)) => token,
                Ok(None) => return Outcome::Abstain,
                Err(rejection) => return Outcome::Rejected(rejection),
            };
            match self
                .introspect_with_certificate(&token, request.client_certificate())
                .await
            {
                Ok(principal) => Outcome::Authenticated(principal),
                Err(err) => Outcome::Rejected(err.into_rejection(Scheme::INTROSPECTION)),
            }
        })
    }
}

impl fmt::Debug for IntrospectionAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionAuthenticator")
            .field("endpoint", &self.inner.endpoint)
            .field("auth", &self.inner.auth)
            .field("realm", &self.inner.realm)
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IntrospectionAuthenticator`].
#[must_use]
#[derive(Debug)]
pub struct IntrospectionAuthenticatorBuilder {
    endpoint: String,
    auth: ClientAuth,
    realm: String,
    issuer: Option<String>,
    audiences: Vec<String>,
    skip_audience: bool,
    leeway: Duration,
    cache_ttl: Duration,
    cache_capacity: usize,
    inactive_cache_capacity: usize,
    max_concurrent: usize,
    max_wait: Duration,
    timeout: Duration,
    max_response_size: usize,
    claims: ClaimMapping,
    http_client: Option<Arc<dyn HttpClient>>,
    #[cfg(feature = "api-key")]
    api_keys: Option<KeyFormat>,
    jwt_shaped: bool,
    max_token_size: usize,
    allow_query: bool,
    #[cfg(feature = "jwt")]
    dpop_mode: DpopMode,
    #[cfg(feature = "jwt")]
    dpop: super::dpop::DpopSettings,
    certificate: CertificateBindingMode,
}

/// How long an introspection answer is reused unless configured otherwise
/// ([`IntrospectionAuthenticatorBuilder::cache`]): also how long a revoked token keeps working.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// How many active, and apart from them inactive, answers are cached unless configured otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

impl IntrospectionAuthenticatorBuilder {
    fn new(endpoint: String, auth: ClientAuth) -> Self {
        Self {
            endpoint,
            auth,
            realm: "api".to_owned(),
            issuer: None,
            audiences: Vec::new(),
            skip_audience: false,
            leeway: super::DEFAULT_LEEWAY,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            inactive_cache_capacity: DEFAULT_CACHE_CAPACITY,
            max_concurrent: 32,
            max_wait: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_response_size: 64 * 1024,
            claims: ClaimMapping::default(),
            http_client: None,
            #[cfg(feature = "api-key")]
            api_keys: Some(KeyFormat::default()),
            jwt_shaped: false,
            max_token_size: super::DEFAULT_MAX_TOKEN_SIZE,
            allow_query: false,
            #[cfg(feature = "jwt")]
            dpop_mode: DpopMode::default(),
            #[cfg(feature = "jwt")]
            dpop: super::dpop::DpopSettings::default(),
            certificate: CertificateBindingMode::default(),
        }
    }

    /// The realm in the `Bearer` challenge. Defaults to `api`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Requires the answer's `iss` to be `issuer`, as the JWT authenticator requires of a
    /// token's `iss`. Set it when the endpoint may answer for tokens of more than one issuer (a
    /// multi-tenant or federating authorization server, several realms behind one gateway), or
    /// when an `aud` value such as `api` could be issued by another issuer as well: `aud` says
    /// whom a token is for, `iss` says who vouches for it. It also turns an endpoint URL pointed
    /// at the wrong environment into refusals rather than accepted tokens. An answer without
    /// `iss` is then refused. Defaults to no check.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires the answer's `aud` to name one of `audiences`. Required (the build fails
    /// without it) unless [`dangerous_skip_audience_check`](Self::dangerous_skip_audience_check):
    /// the endpoint answers `active: true` for a live token issued to any resource server, and
    /// for refresh tokens, which carry no `aud`. Defaults to none.
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts an answer whatever its `aud` (the behaviour before audiences were required).
    /// Dangerous: a token the authorization server issued to another service, or a refresh
    /// token without a `token_type`, authenticates here. Defaults to off.
    pub fn dangerous_skip_audience_check(mut self) -> Self {
        self.skip_audience = true;
        self
    }

    /// The clock skew allowed on `exp`, `nbf` and `iat`. Defaults to 30 seconds.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long an answer is reused (never past the token's `exp`), and how many are kept. A
    /// revoked token keeps working for up to `ttl`; `Duration::ZERO` asks every time. Defaults to
    /// 60 seconds and 10,000 entries.
    pub fn cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.cache_ttl = ttl;
        self.cache_capacity = capacity;
        self
    }

    /// How many `active: false` answers are remembered, each for the cache TTL, so a token
    /// repeated by a flood costs one request. They are kept apart from active answers, which a
    /// flood of made-up tokens therefore cannot evict. 0 remembers none. Defaults to 10,000.
    pub fn inactive_cache_capacity(mut self, capacity: usize) -> Self {
        self.inactive_cache_capacity = capacity;
        self
    }

    /// The most requests to the endpoint in flight at once. Defaults to 32.
    pub fn max_concurrent(mut self, requests: usize) -> Self {
        self.max_concurrent = requests;
        self
    }

    /// How long a check waits for one of the `max_concurrent` slots before it is refused with
    /// 503. Defaults to 1 second.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The time one introspection call may take. Defaults to 5 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer read, in bytes. Defaults to 64 KiB.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// How the answer becomes the principal (the answer's members are read as claims).
    /// Defaults to [`ClaimMapping::default`].
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.claims = mapping;
        self
    }

    /// The HTTP client. Defaults to `ReqwestClient` with the `jwks`
    /// feature; required without it.
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The API-key format whose keys are left to the API-key authenticator. Defaults to
    /// [`KeyFormat::default`] (prefix `pc`); `None` introspects every non-JWT bearer token.
    /// Without the `api-key` feature every non-JWT bearer token is introspected.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn api_key_format(mut self, format: Option<KeyFormat>) -> Self {
        self.api_keys = format;
        self
    }

    /// Also introspects JWT-shaped tokens (for a service with no [`JwtAuthenticator`] that wants
    /// the issuer's word on every token, revocation included). Defaults to off.
    ///
    /// [`JwtAuthenticator`]: super::JwtAuthenticator
    pub fn introspect_jwt_shaped(mut self, enabled: bool) -> Self {
        self.jwt_shaped = enabled;
        self
    }

    /// The largest token accepted, in bytes. Defaults to 8 KiB.
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// Also reads a token from the `access_token` query parameter. Dangerous, as for
    /// [`JwtAuthenticatorBuilder::dangerous_allow_query_token`](super::JwtAuthenticatorBuilder::dangerous_allow_query_token).
    pub fn dangerous_allow_query_token(mut self) -> Self {
        self.allow_query = true;
        self
    }

    /// Whether tokens may (`allowed`, the default) or must (`required`) be DPoP-bound and sent
    /// with a proof (RFC 9449), or DPoP is off (`disabled`). Whatever the mode, an answer with
    /// `cnf.jkt` is never accepted as a bearer token.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn dpop_mode(mut self, mode: DpopMode) -> Self {
        self.dpop_mode = mode;
        self
    }

    /// The rules for DPoP proofs and where seen proofs are remembered. Defaults to
    /// [`DpopSettings::default`](super::dpop::DpopSettings::default).
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn dpop(mut self, settings: super::dpop::DpopSettings) -> Self {
        self.dpop = settings;
        self
    }

    /// Whether tokens may (`allowed`, the default) or must (`required`) be bound to the client
    /// certificate (RFC 8705, `cnf["x5t#S256"]` in the answer; see [`mtls`](super::mtls)), or
    /// certificates are not checked (`disabled`, and an answer with `cnf["x5t#S256"]` is then
    /// refused).
    pub fn certificate_binding(mut self, mode: CertificateBindingMode) -> Self {
        self.certificate = mode;
        self
    }

    /// Checks every setting and builds the authenticator.
    pub fn build(self) -> Result<IntrospectionAuthenticator, ConfigError> {
        self.check()?;
        let client = match self.http_client {
            Some(client) => client,
            None => super::http::default_http_client()?,
        };
        Ok(IntrospectionAuthenticator {
            inner: Arc::new(Inner {
                endpoint: self.endpoint,
                auth: self.auth,
                realm: self.realm,
                issuer: self.issuer,
                rules: Rules {
                    audiences: self.audiences,
                    leeway: self.leeway,
                    required: Vec::new(),
                    #[cfg(feature = "jwt")]
                    typ: None,
                    max_lifetime: None,
                },
                claims: self.claims,
                client,
                limits: FetchLimits {
                    timeout: self.timeout,
                    max_body: self.max_response_size,
                },
                cache: Cache::new(self.cache_ttl, self.cache_capacity),
                inactive: Cache::new(self.cache_ttl, self.inactive_cache_capacity),
                in_flight: Semaphore::new(self.max_concurrent),
                max_wait: self.max_wait,
                #[cfg(feature = "api-key")]
                api_keys: self.api_keys,
                jwt_shaped: self.jwt_shaped,
                max_token_size: self.max_token_size,
                locator: BearerLocator {
                    scheme: Scheme::INTROSPECTION,
                    allow_query: self.allow_query,
                },
                metrics: IntrospectionMetrics::new(),
                #[cfg(feature = "jwt")]
                dpop_mode: self.dpop_mode,
                #[cfg(feature = "jwt")]
                dpop: self.dpop.checked("dpop")?,
                certificate: self.certificate,
            }),
        })
    }

    /// Every setting, checked before anything is built (and by `config`, before any file is
    /// read, with a stand-in credential).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check_url(&self.endpoint)
            .map_err(|e| ConfigError::new(e.to_string()).with_key("endpoint"))?;
        let client_id_ok = match &self.auth {
            ClientAuth::Basic {
                client_id,
                client_secret,
            }
            | ClientAuth::Post {
                client_id,
                client_secret,
            } => !client_id.is_empty() && !client_secret.expose_secret().is_empty(),
            ClientAuth::Bearer(token) => !token.expose_secret().is_empty(),
        };
        if !client_id_ok {
            return Err(ConfigError::new("the client credentials are empty").with_key("client_id"));
        }
        if let ClientAuth::Bearer(token) = &self.auth
            && http::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).is_err()
        {
            return Err(
                ConfigError::new("the client token cannot be sent in a header")
                    .with_key("client_token"),
            );
        }
        if self.realm.chars().any(char::is_control) {
            return Err(
                ConfigError::new("the realm contains a control character").with_key("realm")
            );
        }
        for (size, key) in [
            (self.max_token_size, "max_token_size"),
            (self.max_response_size, "max_response_size"),
        ] {
            if size == 0 {
                return Err(ConfigError::new("size limits must be positive").with_key(key));
            }
        }
        if self.max_concurrent == 0 || self.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(format!(
                "max_concurrent must be positive and at most {}",
                Semaphore::MAX_PERMITS
            ))
            .with_key("max_concurrent"));
        }
        if self.audiences.iter().any(String::is_empty)
            || (self.audiences.is_empty() && !self.skip_audience)
        {
            return Err(ConfigError::new(
                "at least one non-empty audience is required (the endpoint also answers for \
                 tokens minted for other services, and for refresh tokens)",
            )
            .with_key("audiences"));
        }
        self.claims.validate("groups_claims")?;
        Ok(())
    }
}

fn inactive() -> TokenError {
    TokenError::new(
        TokenErrorKind::Inactive,
        "the introspection endpoint says the token is not active",
    )
}

/// `b64token` (RFC 6750 §2.1): the characters a bearer token may have.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `application/x-www-form-urlencoded`, keeping only the unreserved characters.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn form(value: &str) -> String {
    // At most three bytes out per byte in: allocated once, so a secret leaves no copy behind in
    // a buffer outgrown on the way.
    let mut encoded = String::with_capacity(value.len() * 3);
    encoded.extend(utf8_percent_encode(value, FORM));
    encoded
}

/// `parts` joined into one string allocated at its final size, wiped when dropped.
fn joined(parts: &[&str]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        text.push_str(part);
    }
    text
}

/// Answers by token digest, each until its own deadline; the oldest leaves first when full.
struct Cache<T> {
    ttl: Duration,
    map: Mutex<ExpiringMap<[u8; 32], T>>,
}

impl<T: Clone> Cache<T> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            map: Mutex::new(ExpiringMap::new(capacity)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<[u8; 32], T>> {
        // A poisoned lock means a panic mid-insert; at worst an entry is missing: a miss.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, digest: &[u8; 32]) -> Option<T> {
        self.lock().get(digest, Instant::now()).cloned()
    }

    fn insert(&self, digest: [u8; 32], value: T, until: Instant) {
        self.lock().insert(digest, value, Instant::now(), until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::SubjectKind;

    fn principal() -> Principal {
        Principal::new("s", SubjectKind::User, Scheme::INTROSPECTION)
    }

    #[test]
    fn cache_is_bounded_and_entries_expire() {
        let cache = Cache::new(Duration::from_secs(60), 3);
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..10u8 {
            cache.insert([i; 32], principal(), later);
        }
        assert_eq!(cache.lock().len(), 3);
        assert!(cache.get(&[0; 32]).is_none());
        assert!(cache.get(&[9; 32]).is_some());
        cache.insert(
            [20; 32],
            principal(),
            Instant::now() + Duration::from_millis(1),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(&[20; 32]).is_none());
    }

    #[test]
    fn b64token_and_form_encoding() {
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("==="));
        assert_eq!(form("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
