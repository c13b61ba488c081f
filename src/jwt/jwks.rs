//! Where an issuer's keys come from ([`KeySource`]) and the cache in front of a remote key set.
//!
//! The cache's rules, in the order a request meets them:
//!
//! - **Never loaded**: the first request fetches (one fetch however many requests wait for it).
//!   If it fails, requests get 503, not 401: an identity provider outage is not a bad token. A new
//!   attempt is made at most once per `retry_interval`.
//! - **Loaded**: keys are served from memory. When the set is older than `refresh_interval`, one
//!   request starts a refresh in the background and carries on with the current set.
//! - **Unknown `kid`**: the set is fetched again, at most once per `unknown_kid_cooldown` counted
//!   from the last fetch of any kind, so a flood of made-up `kid`s costs the identity provider one
//!   request per cooldown. Concurrent requests share that one fetch.
//! - **Fetch fails** once loaded: the last good set keeps serving (stale-if-error), and the failure
//!   is logged, for at most `max_stale` after the last successful fetch. Past that every token
//!   of the issuer is a 503: a key the provider removed (because it leaked) must stop working
//!   even if the provider can no longer be reached (issue #16).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::algorithm::Algorithm;
use super::error::{FetchError, FetchErrorKind, KeyErrorKind, TokenError, TokenErrorKind};
use super::http::{self, FetchLimits, HttpClient};
use super::keys::{KeySet, Lookup, Origin, VerifyingKey};
use crate::health::ComponentStatus;

/// Where an issuer's verification keys come from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KeySource {
    /// Keys from configuration: PEM, JWK, JWKS file or an HMAC secret. The only source HMAC keys
    /// may come from.
    Static(KeySet),
    /// A JWKS document at this URL (`https`, or `http` to a loopback address), fetched and cached.
    JwksUrl(String),
    /// OpenID Connect discovery: `<issuer>/.well-known/openid-configuration` names the JWKS URL.
    /// The document's `issuer` must equal the configured issuer exactly.
    Discovery,
}

impl KeySource {
    /// Static keys.
    pub fn keys(keys: KeySet) -> Self {
        KeySource::Static(keys)
    }

    /// A JWKS URL.
    pub fn jwks_url(url: impl Into<String>) -> Self {
        KeySource::JwksUrl(url.into())
    }

    /// OpenID Connect discovery from the issuer.
    pub fn discovery() -> Self {
        KeySource::Discovery
    }
}

/// How remote key sets are fetched and cached.
///
/// - **Never loaded**: the first request fetches (one fetch however many requests wait). If it
///   fails, requests get 503, not 401, and a new attempt is made at most once per
///   `retry_interval`.
/// - **Loaded**: keys are served from memory; once the set is older than `refresh_interval`, one
///   request starts a refresh in the background and carries on with the current set.
/// - **Unknown `kid`**: the set is fetched again, at most once per `unknown_kid_cooldown` counted
///   from the last fetch of any kind; concurrent requests share that fetch.
/// - **A fetch fails** once loaded: the last good set keeps serving (stale-if-error), until it
///   is `max_stale` older than its fetch; then the issuer's tokens get 503 until a fetch succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksCacheConfig {
    /// How old a key set may get before it is fetched again, in the background. Defaults to
    /// 5 minutes.
    pub refresh_interval: Duration,
    /// The least time between the last fetch and one caused by a token whose `kid` is unknown.
    /// Defaults to 30 seconds.
    pub unknown_kid_cooldown: Duration,
    /// After a failed fetch, how long before another is tried. Defaults to 5 seconds.
    pub retry_interval: Duration,
    /// The time one fetch may take, discovery document included. Defaults to 5 seconds.
    pub fetch_timeout: Duration,
    /// The largest JWKS or discovery document read, in bytes. Defaults to 256 KiB.
    pub max_response_size: usize,
    /// How long after the last successful fetch (discovery included) a key set may still
    /// serve while every refresh fails. Past it, the issuer's tokens are refused with 503 until
    /// a fetch succeeds: without a limit, a key the provider removed (say, because it leaked)
    /// would keep verifying for as long as the provider is unreachable, and an attacker who can
    /// block that traffic decides how long. Must be longer than `refresh_interval`. Defaults to
    /// 24 hours; [`dangerous_serve_stale_keys_forever`](Self::dangerous_serve_stale_keys_forever)
    /// removes the limit.
    pub max_stale: Duration,
}

/// Chained setters, for building a value from [`Default`] in one expression (the struct is
/// `#[non_exhaustive]`, so it cannot be written as a literal outside this crate).
impl JwksCacheConfig {
    /// Sets [`refresh_interval`](Self::refresh_interval).
    #[must_use]
    pub fn with_refresh_interval(mut self, refresh_interval: Duration) -> Self {
        self.refresh_interval = refresh_interval;
        self
    }

    /// Sets [`unknown_kid_cooldown`](Self::unknown_kid_cooldown).
    #[must_use]
    pub fn with_unknown_kid_cooldown(mut self, unknown_kid_cooldown: Duration) -> Self {
        self.unknown_kid_cooldown = unknown_kid_cooldown;
        self
    }

    /// Sets [`retry_interval`](Self::retry_interval).
    #[must_use]
    pub fn with_retry_interval(mut self, retry_interval: Duration) -> Self {
        self.retry_interval = retry_interval;
        self
    }

    /// Sets [`fetch_timeout`](Self::fetch_timeout).
    #[must_use]
    pub fn with_fetch_timeout(mut self, fetch_timeout: Duration) -> Self {
        self.fetch_timeout = fetch_timeout;
        self
    }

    /// Sets [`max_response_size`](Self::max_response_size).
    #[must_use]
    pub fn with_max_response_size(mut self, max_response_size: usize) -> Self {
        self.max_response_size = max_response_size;
        self
    }

    /// Sets [`max_stale`](Self::max_stale).
    #[must_use]
    pub fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }
}

impl JwksCacheConfig {
    /// Serves the last good key set for as long as fetches fail, with no limit (the behaviour
    /// before `max_stale` existed). Dangerous: a key the provider has removed keeps verifying
    /// for as long as the provider cannot be reached.
    pub fn dangerous_serve_stale_keys_forever(mut self) -> Self {
        self.max_stale = Duration::MAX;
        self
    }
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(300),
            unknown_kid_cooldown: Duration::from_secs(30),
            retry_interval: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(5),
            max_response_size: 256 * 1024,
            max_stale: DEFAULT_MAX_STALE,
        }
    }
}

/// The default [`JwksCacheConfig::max_stale`]: a day, long enough to ride out a provider's bad
/// night, short enough that a removed key does not work for ever.
pub(crate) const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);

/// A remote key set and its cache.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    issuer: String,
    location: Location,
    client: Arc<dyn HttpClient>,
    config: JwksCacheConfig,
    current: ArcSwapOption<Loaded>,
    /// Held for the length of a fetch: single flight.
    fetch_lock: Arc<tokio::sync::Mutex<()>>,
    /// Bumped when a fetch ends, so requests that waited for it do not fetch again.
    generation: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
enum Location {
    Jwks(String),
    Discovery,
}

#[derive(Debug)]
struct Loaded {
    keys: KeySet,
    /// When the fetch that brought these keys succeeded: what `max_stale` is measured from.
    at: Instant,
}

impl Loaded {
    fn too_stale(&self, now: Instant, max_stale: Duration) -> bool {
        now.saturating_duration_since(self.at) >= max_stale
    }
}

#[derive(Debug, Default)]
struct State {
    last_attempt: Option<Instant>,
    /// The `jwks_uri` discovery gave; forgotten when fetching it fails, so the next attempt asks
    /// discovery again.
    discovered: Option<String>,
    fetches: u64,
    /// When the failures since the last successful fetch began; `None` after a success.
    failing_since: Option<Instant>,
}

impl RemoteKeys {
    /// Keys from `jwks_url`, or from discovery when it is `None`.
    pub(crate) fn new(
        issuer: &str,
        jwks_url: Option<&str>,
        client: Arc<dyn HttpClient>,
        config: JwksCacheConfig,
    ) -> Self {
        let location = match jwks_url {
            Some(url) => Location::Jwks(url.to_owned()),
            None => Location::Discovery,
        };
        Self {
            issuer: issuer.to_owned(),
            location,
            client,
            config,
            current: ArcSwapOption::empty(),
            fetch_lock: Arc::new(tokio::sync::Mutex::new(())),
            generation: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        }
    }

    /// The key for a token's `kid` and `alg`, fetching the key set if the rules above allow.
    pub(crate) async fn find(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyingKey>, TokenError> {
        let now = Instant::now();
        let seen = self.generation.load(Ordering::Acquire);
        let gap = {
            let current = self.current.load();
            match current.as_ref() {
                // Too old to trust: treated as never loaded (fetch if the retry interval allows,
                // else 503), never as a set to look the key up in.
                Some(loaded) if loaded.too_stale(now, self.config.max_stale) => {
                    self.config.retry_interval
                }
                Some(loaded) => {
                    if now.saturating_duration_since(loaded.at) >= self.config.refresh_interval {
                        self.refresh_in_background(now);
                    }
                    match loaded.keys.find(kid, alg) {
                        Lookup::Unknown => self.config.unknown_kid_cooldown,
                        other => return resolve(other, kid, alg),
                    }
                }
                None => self.config.retry_interval,
            }
        };
        // A fetch in flight (for another token, or a background refresh) may bring this key:
        // wait for it rather than refuse now.
        let in_flight = self.fetch_lock.try_lock().is_err();
        if in_flight || self.may_fetch(now, gap) {
            let _guard = self.fetch_lock.lock().await;
            // Whoever held the lock may have fetched already; one fetch serves every waiter.
            if self.generation.load(Ordering::Acquire) == seen
                && self.may_fetch(Instant::now(), gap)
            {
                let _ = self.fetch().await;
            }
        }
        let now = Instant::now();
        match self.current.load().as_ref() {
            Some(loaded) if loaded.too_stale(now, self.config.max_stale) => {
                Err(TokenError::unavailable(
                    format!(
                        "the keys of issuer {:?} are older than max_stale ({}s) and cannot be \
                         refreshed",
                        self.issuer,
                        self.config.max_stale.as_secs()
                    ),
                    self.retry_in(now),
                ))
            }
            Some(loaded) => resolve(loaded.keys.find(kid, alg), kid, alg),
            None => Err(TokenError::unavailable(
                format!("the keys of issuer {:?} have not been loaded", self.issuer),
                self.retry_in(now),
            )),
        }
    }

    /// Fetches the key set now (single flight), for start-up and tests.
    pub(crate) async fn refresh(&self) -> Result<(), FetchError> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch().await
    }

    /// Whether the keys can verify tokens now, for [`Gate::readiness`](crate::Gate::readiness):
    /// ready when loaded and fresh, degraded when refreshing fails but the set is within
    /// `max_stale`, not ready when never loaded or past it. A set never loaded (or past
    /// `max_stale`) is fetched now if the retry interval allows, and waited for up to `timeout`,
    /// so a probe at start-up loads the keys instead of waiting for the first token.
    pub(crate) async fn readiness(
        self: &Arc<Self>,
        name: &str,
        timeout: Duration,
    ) -> ComponentStatus {
        let now = Instant::now();
        if let Some(status) = self.loaded_status(name, now) {
            return status;
        }
        self.refresh_in_background(now);
        // The fetch holds the lock until it ends (whoever started it): taking the lock waits
        // for it.
        let _ = tokio::time::timeout(timeout, self.fetch_lock.lock()).await;
        let now = Instant::now();
        if let Some(status) = self.loaded_status(name, now) {
            return status;
        }
        let why = if self.fetch_lock.try_lock().is_err() {
            format!("the fetch did not finish within {}ms", timeout.as_millis())
        } else if self.state().failing_since.is_some() {
            "fetching them fails".to_owned()
        } else {
            "not fetched yet".to_owned()
        };
        match self.current.load().as_ref() {
            Some(loaded) => ComponentStatus::not_ready(
                name,
                format!(
                    "keys older than max_stale ({}s, loaded {}s ago) and {why}",
                    self.config.max_stale.as_secs(),
                    now.saturating_duration_since(loaded.at).as_secs()
                ),
            ),
            None => ComponentStatus::not_ready(name, format!("keys never loaded: {why}")),
        }
    }

    /// The status of a loaded set within `max_stale`; `None` when there is none. Starts a
    /// background refresh when the set is due one, as a request would.
    fn loaded_status(self: &Arc<Self>, name: &str, now: Instant) -> Option<ComponentStatus> {
        let current = self.current.load();
        let loaded = current.as_ref()?;
        if loaded.too_stale(now, self.config.max_stale) {
            return None;
        }
        let age = now.saturating_duration_since(loaded.at);
        if age >= self.config.refresh_interval {
            self.refresh_in_background(now);
        }
        let keys = loaded.keys.len();
        Some(match self.state().failing_since {
            Some(since) if since >= loaded.at => ComponentStatus::degraded(
                name,
                format!(
                    "{keys} keys loaded {}s ago; refreshing them fails (for {}s), they serve {}",
                    age.as_secs(),
                    now.saturating_duration_since(since).as_secs(),
                    if self.config.max_stale == Duration::MAX {
                        "for as long as fetches fail (dangerous_serve_stale_keys_forever)"
                            .to_owned()
                    } else {
                        format!("until max_stale ({}s)", self.config.max_stale.as_secs())
                    }
                ),
            ),
            _ => ComponentStatus::ready(name, format!("{keys} keys loaded {}s ago", age.as_secs())),
        })
    }

    /// How many fetches were attempted.
    pub(crate) fn fetches(&self) -> u64 {
        self.state().fetches
    }

    fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        if !self.may_fetch(now, self.config.retry_interval) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(guard) = Arc::clone(&self.fetch_lock).try_lock_owned() else {
            return; // a fetch is already running
        };
        let this = Arc::clone(self);
        handle.spawn(async move {
            let _guard = guard;
            let _ = this.fetch().await;
        });
    }

    fn may_fetch(&self, now: Instant, gap: Duration) -> bool {
        self.state()
            .last_attempt
            .is_none_or(|at| now.saturating_duration_since(at) >= gap)
    }

    fn retry_in(&self, now: Instant) -> Duration {
        let elapsed = self
            .state()
            .last_attempt
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.config
            .retry_interval
            .saturating_sub(elapsed)
            .max(Duration::from_secs(1))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic while updating two timestamps; they are still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One fetch; the caller holds `fetch_lock`.
    async fn fetch(&self) -> Result<(), FetchError> {
        {
            let mut state = self.state();
            state.last_attempt = Some(Instant::now());
            state.fetches += 1;
        }
        let result = self.load().await;
        match &result {
            Ok(keys) => {
                self.state().failing_since = None;
                tracing::debug!(
                    target: "portcullis::jwt",
                    issuer = %self.issuer,
                    keys = keys.len(),
                    "key set loaded"
                );
                self.current.store(Some(Arc::new(Loaded {
                    keys: keys.clone(),
                    at: Instant::now(),
                })));
            }
            Err(err) => {
                {
                    let mut state = self.state();
                    if matches!(self.location, Location::Discovery) {
                        state.discovered = None;
                    }
                    state.failing_since.get_or_insert_with(Instant::now);
                }
                let current = self.current.load();
                if current
                    .as_ref()
                    .is_some_and(|loaded| loaded.too_stale(Instant::now(), self.config.max_stale))
                {
                    tracing::error!(
                        target: "portcullis::jwt",
                        issuer = %self.issuer,
                        "fetching keys failed and the last good key set is older than max_stale: \
                         refusing the issuer's tokens (503): {err}"
                    );
                } else if current.is_some() {
                    tracing::warn!(
                        target: "portcullis::jwt",
                        issuer = %self.issuer,
                        "fetching keys failed, serving the last good key set: {err}"
                    );
                } else {
                    tracing::error!(
                        target: "portcullis::jwt",
                        issuer = %self.issuer,
                        "fetching keys failed and none were ever loaded: {err}"
                    );
                }
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        result.map(|_| ())
    }

    async fn load(&self) -> Result<KeySet, FetchError> {
        let limits = FetchLimits {
            timeout: self.config.fetch_timeout,
            max_body: self.config.max_response_size,
        };
        let url = match &self.location {
            Location::Jwks(url) => url.clone(),
            Location::Discovery => {
                let known = self.state().discovered.clone();
                match known {
                    Some(url) => url,
                    None => {
                        let url = discover(self.client.as_ref(), &self.issuer, limits).await?;
                        self.state().discovered = Some(url.clone());
                        url
                    }
                }
            }
        };
        let uri = http::check_url(&url)?;
        let request = ::http::Request::get(uri)
            .header(
                ::http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .body(bytes::Bytes::new())
            .map_err(|e| {
                FetchError::new(FetchErrorKind::InvalidUrl, "bad request").with_source(e)
            })?;
        let response = http::send(self.client.as_ref(), request, limits).await?;
        http::expect_ok(&response, &url)?;
        let (keys, skipped) = KeySet::parse_jwks(response.body(), Origin::Remote)
            .map_err(|e| FetchError::new(FetchErrorKind::InvalidResponse, format!("{url}: {e}")))?;
        for reason in skipped {
            // Encryption keys and unknown key types are normal in a provider's JWKS (Keycloak
            // publishes an RSA-OAEP key); a weak key or a shared secret deserves attention.
            if matches!(
                reason.kind(),
                KeyErrorKind::TooWeak | KeyErrorKind::NotAllowed
            ) {
                tracing::warn!(
                    target: "portcullis::jwt",
                    issuer = %self.issuer,
                    "JWKS key refused: {reason}"
                );
            } else {
                tracing::debug!(
                    target: "portcullis::jwt",
                    issuer = %self.issuer,
                    "JWKS key skipped: {reason}"
                );
            }
        }
        Ok(keys)
    }
}

/// The `jwks_uri` from the issuer's discovery document, whose `issuer` must be exactly ours
/// (OpenID Connect Discovery 1.0 §4.3): otherwise a document at one URL could vouch for keys of
/// another issuer.
async fn discover(
    client: &dyn HttpClient,
    issuer: &str,
    limits: FetchLimits,
) -> Result<String, FetchError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document = http::get_json(client, &url, limits).await?;
    jwks_uri_of(&document, issuer, &url)
}

/// The `jwks_uri` of a discovery document fetched from `url`, checked against `issuer`.
pub(crate) fn jwks_uri_of(
    document: &serde_json::Map<String, serde_json::Value>,
    issuer: &str,
    url: &str,
) -> Result<String, FetchError> {
    let invalid =
        |why: String| FetchError::new(FetchErrorKind::InvalidResponse, format!("{url}: {why}"));
    match document.get("issuer") {
        Some(serde_json::Value::String(found)) if found == issuer => {}
        Some(serde_json::Value::String(found)) => {
            return Err(invalid(format!(
                "the document is for issuer {found:?}, not {issuer:?}"
            )));
        }
        _ => return Err(invalid("no `issuer` string".to_owned())),
    }
    match document.get("jwks_uri") {
        Some(serde_json::Value::String(uri)) => {
            http::check_url(uri)?;
            Ok(uri.clone())
        }
        _ => Err(invalid("no `jwks_uri` string".to_owned())),
    }
}

/// Turns a lookup into the key or the reason for refusing.
pub(crate) fn resolve(
    lookup: Lookup,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Arc<VerifyingKey>, TokenError> {
    match lookup {
        Lookup::Found(key) => Ok(key),
        Lookup::WrongAlgorithm(expected) => Err(TokenError::new(
            TokenErrorKind::UnsupportedAlgorithm,
            format!("the key {kid:?} is for {expected}, the token says {alg}"),
        )),
        Lookup::Ambiguous => Err(TokenError::new(
            TokenErrorKind::UnknownKey,
            format!("the token has no `kid` and several {alg} keys could fit"),
        )),
        Lookup::Unknown => Err(TokenError::new(
            TokenErrorKind::UnknownKey,
            match kid {
                Some(kid) => format!(
                    "no {alg} key with kid {:?}",
                    kid.chars().take(64).collect::<String>()
                ),
                None => format!("no {alg} key"),
            },
        )),
    }
}
