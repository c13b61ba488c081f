//! The [`Gate`]: authenticators, then the route's policy; the one object a service holds.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Response};
use tracing::Instrument;
use tracing::field::Empty;

use crate::audit::{AuditRecord, Explanation};
use crate::authenticator::{Authenticator, CredentialSource, Outcome};
use crate::client_ip::{IpSet, TrustedProxies};
use crate::error::ConfigError;
use crate::health::{ComponentStatus, Readiness, ReadinessCache};
use crate::policy::{Authenticated, Denial, Policy, PolicyContext};
use crate::principal::{Principal, Scheme};
use crate::reject::{Challenge, ProblemJson, Reason, Rejection, RejectionResponder};
use crate::request::RequestView;
use crate::route::{Methods, Route, check_path};
use crate::telemetry::GateMetrics;

/// The default for [`GateBuilder::max_path_bytes`]: what proxies accept by default (nginx's
/// request-line buffer is 8 KiB), and far beyond any route a service declares.
const DEFAULT_MAX_PATH_BYTES: usize = 8 * 1024;

/// The most authenticators one Gate takes: which ones to ask about a request is kept in a `u64`.
const MAX_AUTHENTICATORS: usize = 64;

/// The default for [`GateBuilder::readiness_cache`]: probes every second cost one check a second.
const DEFAULT_READINESS_CACHE: Duration = Duration::from_secs(1);

/// The default for [`GateBuilder::readiness_timeout`]: under Kubernetes' default probe timeout
/// (1 s), so a slow store shows as not ready with its reason instead of as a timed-out probe.
const DEFAULT_READINESS_TIMEOUT: Duration = Duration::from_millis(800);

/// How much longer than the timeout an authenticator's whole readiness check may take before
/// the Gate stops waiting for it (its own checks are bounded by the timeout; this bounds one
/// that is not).
const READINESS_GRACE: Duration = Duration::from_millis(100);

/// Authenticates and authorizes requests. Cheap to clone (one `Arc`).
///
/// For each request: refuse a path that a router could read differently from the Gate (400;
/// rules match the path as sent, see [`GateBuilder::route`]), resolve the client
/// IP, refuse a request that carries credentials in two sources (400; see
/// [`CredentialSource`](crate::CredentialSource)), ask the authenticators whose source it
/// carries in order (the first that authenticates or rejects decides), then
/// run the policy of the first route rule that matches. A denied anonymous request gets 401 with
/// every scheme's challenge; a denied principal gets 403.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    authenticators: Vec<Arc<dyn Authenticator>>,
    /// Every source an authenticator reads, once, with the authenticators reading it (a bit each).
    sources: Vec<(CredentialSource, u64)>,
    /// The authenticators that read no source of the request's, and so are always asked.
    always_asked: u64,
    challenges: Vec<Challenge>,
    routes: Vec<Route>,
    default_route: Route,
    responder: Box<dyn RejectionResponder>,
    trusted_proxies: TrustedProxies,
    client_cert_proxies: IpSet,
    max_path_bytes: usize,
    audit_allowed_level: tracing::Level,
    metrics: GateMetrics,
    public_origin: Option<String>,
    readiness: ReadinessCache,
    readiness_timeout: Duration,
}

impl Gate {
    /// Starts building a Gate.
    pub fn builder() -> GateBuilder {
        GateBuilder::default()
    }

    /// Checks a request: `Ok(Some(principal))` when authenticated and allowed, `Ok(None)` when an
    /// anonymous request is allowed, or the rejection to send. Emits one audit event.
    pub async fn check(&self, request: &RequestView<'_>) -> Result<Option<Principal>, Rejection> {
        let decided = self.run(request, &mut Trace::Off).await?;
        Ok(decided.principal)
    }

    /// Checks a request like [`check`](Self::check) and returns, on success, what the Gate
    /// established, for the context the adapters put in the request's extensions.
    #[cfg_attr(
        not(any(feature = "tower", feature = "actix")),
        expect(dead_code, reason = "only the adapters put a context in extensions")
    )]
    pub(crate) async fn decide(&self, request: &RequestView<'_>) -> Result<Decided, Rejection> {
        self.run(request, &mut Trace::Off).await
    }

    /// Checks a request like [`check`](Self::check) (audit event included) and returns the trace
    /// of what each stage, authenticator and rule decided. For debugging, tests and
    /// `portcullis config explain`.
    pub async fn explain(&self, request: &RequestView<'_>) -> Explanation {
        let mut trace = Trace::On(Vec::new());
        let result = self
            .run(request, &mut trace)
            .await
            .map(|decided| decided.principal);
        let Trace::On(steps) = trace else {
            unreachable!("the trace was created on")
        };
        Explanation { steps, result }
    }

    /// Decides in a `portcullis.check` span (DEBUG: `scheme`, `rule`, `decision`, `reason`),
    /// and counts the decision and its time.
    async fn run(
        &self,
        request: &RequestView<'_>,
        trace: &mut Trace,
    ) -> Result<Decided, Rejection> {
        let span = tracing::debug_span!(
            target: "portcullis::gate",
            "portcullis.check",
            scheme = Empty,
            rule = Empty,
            decision = Empty,
            reason = Empty,
        );
        let started = Instant::now();
        let result = self
            .decide_in(request, trace)
            .instrument(span.clone())
            .await;
        let (scheme, reason) = match &result {
            Ok(decided) => (decided.principal.as_ref().map(Principal::scheme), None),
            Err(rejection) => (rejection.scheme(), Some(rejection.reason())),
        };
        self.inner.metrics.record(scheme, reason, started.elapsed());
        if !span.is_disabled() {
            span.record("scheme", scheme.map_or("none", |s| s.as_str()));
            span.record(
                "decision",
                if reason.is_some() {
                    "refused"
                } else {
                    "allowed"
                },
            );
            span.record("reason", reason.map_or("none", Reason::as_str));
        }
        result
    }

    async fn decide_in(
        &self,
        request: &RequestView<'_>,
        trace: &mut Trace,
    ) -> Result<Decided, Rejection> {
        let method = request.method().as_str();
        let path = request.path();
        let client_ip = self.admit(request, trace)?;
        let proxied = self.proxied_certificate(request).inspect_err(|rejection| {
            trace.step("client_cert", || format!("refused: {}", rejection.detail()));
            self.audit(method, path, client_ip, "-")
                .rejected(None, rejection, None);
        })?;
        let mut request = request
            .with_client_ip(client_ip)
            .with_public_origin(self.inner.public_origin.as_deref());
        if let Some(certificate) = &proxied {
            request = request.with_client_certificate(certificate.as_deref());
        }
        let (route_index, route) = self.route_for(request.method(), path);
        let audit = self.audit(method, path, client_ip, route.name());
        tracing::Span::current().record("rule", route.name());

        let principal = match self.authenticate(&request, trace).await {
            Ok(principal) => principal,
            Err(rejection) => {
                audit.rejected(None, &rejection, None);
                return Err(rejection);
            }
        };

        trace.step("route", || format!("matched rule {}", route.name()));
        let context = PolicyContext::new(principal.as_ref(), &request, path);
        let decision = route.policy.evaluate(&context);
        // Indeterminate (the rule could not judge: no principal, no client IP) is refused like a
        // denial; only `Not` treats the two apart.
        let Some(denial) = decision.refusal() else {
            trace.step("policy", || "allow".to_owned());
            audit.allowed(principal.as_ref());
            return Ok(Decided {
                principal,
                client_ip,
                route: route_index,
            });
        };
        let rejection = refusal(principal.as_ref(), denial);
        trace.step("policy", || {
            let how = if decision.is_indeterminate() {
                "indeterminate"
            } else {
                "deny"
            };
            format!("{how} by {}", rejection.detail())
        });
        audit.rejected(principal.as_ref(), &rejection, Some(&denial.rule));
        Err(rejection)
    }

    /// The client certificate a proxy in `client_cert_proxies` asserts in `Client-Cert`:
    /// `None` when the peer is not one (the connection's certificate stands), `Some(None)` when
    /// it is and sent none.
    fn proxied_certificate(
        &self,
        request: &RequestView<'_>,
    ) -> Result<Option<Option<Vec<u8>>>, Rejection> {
        let proxies = &self.inner.client_cert_proxies;
        if proxies.is_empty() {
            return Ok(None);
        }
        match request.peer() {
            Some(peer) if proxies.contains(peer.ip()) => {
                crate::request::client_cert_header(request.headers())
                    .map(Some)
                    .map_err(|why| Rejection::invalid_request(format!("Client-Cert: {why}")))
            }
            _ => Ok(None),
        }
    }

    /// The checks before any credential is read: the path's length and spelling, then the client
    /// IP, which it returns. A refusal is audited here.
    fn admit(
        &self,
        request: &RequestView<'_>,
        trace: &mut Trace,
    ) -> Result<Option<IpAddr>, Rejection> {
        let method = request.method().as_str();
        if request.path().len() > self.inner.max_path_bytes {
            // Refused before anything else reads it, and not quoted whole in the audit log.
            let rejection = Rejection::invalid_request(format!(
                "path is longer than {} bytes",
                self.inner.max_path_bytes
            ));
            trace.step("path", || {
                format!("refused: {} bytes", request.path().len())
            });
            self.audit(method, path_start(request.path()), None, "-")
                .rejected(None, &rejection, None);
            return Err(rejection);
        }
        let path = request.path();
        if let Err(why) = check_path(path) {
            let rejection = Rejection::invalid_request(why.to_string());
            trace.step("path", || format!("{path:?} refused: {why}"));
            self.audit(method, path, None, "-")
                .rejected(None, &rejection, None);
            return Err(rejection);
        }
        trace.step("path", || format!("{path:?} matched as sent"));
        let peer_ip = request.peer().map(|peer| peer.ip());
        let client_ip = match self
            .inner
            .trusted_proxies
            .resolve(peer_ip, request.headers())
        {
            Ok(ip) => ip,
            Err(err) => {
                let rejection = Rejection::invalid_request(format!("client IP: {err}"));
                trace.step("client_ip", || format!("refused: {err}"));
                self.audit(method, path, peer_ip, "-")
                    .rejected(None, &rejection, None);
                return Err(rejection);
            }
        };
        trace.step("client_ip", || {
            format!(
                "peer {} resolved to {}",
                display_ip(peer_ip),
                display_ip(client_ip)
            )
        });
        Ok(client_ip)
    }

    /// Whether the Gate can decide requests now, per component: for a readiness probe
    /// (`/healthz`), not for each request.
    ///
    /// Each authenticator reports what it needs ([`Authenticator::readiness`]): a JWT issuer's
    /// key set must be loaded and within its `max_stale` (static keys always are; a set never
    /// loaded or past it is fetched now, within the timeout and the retry interval), the user and
    /// API-key stores must answer a cheap query, and the Redis lockout store a `PING`, each
    /// within [`readiness_timeout`](GateBuilder::readiness_timeout). It is not ready only when
    /// keys never loaded or are past `max_stale`, or a store the Gate reads is down: requests
    /// are then refused with 503 anyway. A failing key refresh while the keys are within
    /// `max_stale` is [`Degraded`](crate::audit::Health::Degraded), which counts as ready, so a
    /// shared identity provider's hiccup does not take every instance out of rotation at once.
    /// Introspection is not checked: each token is asked about at the endpoint, and an outage
    /// there is a 503 per request, not a reason to stop serving API keys and passwords.
    ///
    /// The report is kept for [`readiness_cache`](GateBuilder::readiness_cache), and probes
    /// that arrive while a check runs wait for it and share its report, so many probes cost
    /// one check.
    pub async fn readiness(&self) -> Readiness {
        self.inner.readiness.get(|| self.check_readiness()).await
    }

    async fn check_readiness(&self) -> Readiness {
        let timeout = self.inner.readiness_timeout;
        // One task per authenticator, so the checks run at once and the whole report takes
        // about one timeout at worst.
        let checks: Vec<_> = self
            .inner
            .authenticators
            .iter()
            .map(|authenticator| {
                let authenticator = Arc::clone(authenticator);
                tokio::spawn(async move {
                    let check = authenticator.readiness(timeout);
                    match tokio::time::timeout(timeout + READINESS_GRACE, check).await {
                        Ok(components) => components,
                        Err(_) => vec![ComponentStatus::not_ready(
                            authenticator.scheme().as_str(),
                            format!("no answer within {}ms", timeout.as_millis()),
                        )],
                    }
                })
            })
            .collect();
        let mut components = Vec::new();
        for (check, authenticator) in checks.into_iter().zip(&self.inner.authenticators) {
            match check.await {
                Ok(found) => components.extend(found),
                Err(_) => components.push(ComponentStatus::not_ready(
                    authenticator.scheme().as_str(),
                    "the readiness check failed (panicked)",
                )),
            }
        }
        Readiness::new(components)
    }

    /// The response for a rejection: status, challenges, `Retry-After`, body.
    pub fn respond(&self, rejection: &Rejection) -> Response<String> {
        let challenges = rejection.challenges(&self.inner.challenges);
        self.inner
            .responder
            .respond(&rejection.public(), &challenges)
    }

    /// The base challenge of every enabled scheme, one per scheme name, in order.
    pub fn challenges(&self) -> &[Challenge] {
        &self.inner.challenges
    }

    async fn authenticate(
        &self,
        request: &RequestView<'_>,
        trace: &mut Trace,
    ) -> Result<Option<Principal>, Rejection> {
        // Which authenticators to ask, one bit each (`build` caps their number), so the common
        // case allocates nothing: those reading a source the request carries, and those reading
        // none. Two sources carried is two credentials: refused before any expensive work.
        let authenticators = &self.inner.authenticators;
        let mut asked = self.inner.always_asked;
        let mut carried: Option<(&CredentialSource, u64)> = None;
        for (source, readers) in &self.inner.sources {
            if !source.is_in(request) {
                continue;
            }
            if let Some((first, first_readers)) = carried {
                trace.step("authenticate", || {
                    format!("refused: credentials in {first} and in {source}")
                });
                let rejection = Rejection::invalid_request("credentials in more than one place");
                // One scheme reading both (a bearer token in the header and the query, RFC 6750
                // §2) owns the refusal, so its challenge says `invalid_request`.
                let both = first_readers & readers;
                return Err(match authenticators.get(both.trailing_zeros() as usize) {
                    Some(reader) if both != 0 => rejection.for_scheme(reader.scheme()),
                    _ => rejection,
                });
            }
            carried = Some((source, *readers));
            asked |= readers;
        }
        let asked = authenticators
            .iter()
            .enumerate()
            .filter(|(i, _)| asked & (1 << i) != 0)
            .map(|(_, authenticator)| authenticator);
        for authenticator in asked {
            let scheme = authenticator.scheme();
            match authenticator.authenticate(request).await {
                Outcome::Abstain => trace.step("authenticate", || format!("{scheme}: abstained")),
                Outcome::Authenticated(mut principal) => {
                    trace.step("authenticate", || {
                        format!("{scheme}: authenticated {:?}", principal.subject())
                    });
                    principal.set_client_ip(request.client_ip());
                    return Ok(Some(principal));
                }
                Outcome::Rejected(rejection) => {
                    trace.step("authenticate", || {
                        format!("{scheme}: rejected ({})", rejection.detail())
                    });
                    return Err(rejection);
                }
            }
        }
        trace.step("authenticate", || "no credentials: anonymous".to_owned());
        Ok(None)
    }

    /// The first rule matching, with its index (`None` for the default rule).
    pub(crate) fn route_for(&self, method: &Method, path: &str) -> (Option<usize>, &Route) {
        match self
            .inner
            .routes
            .iter()
            .position(|route| route.matches(method, path))
        {
            Some(index) => (Some(index), &self.inner.routes[index]),
            None => (None, &self.inner.default_route),
        }
    }

    /// The name of rule `index` as [`route_for`](Self::route_for) gave it.
    pub(crate) fn route_name(&self, index: Option<usize>) -> &str {
        index
            .and_then(|index| self.inner.routes.get(index))
            .unwrap_or(&self.inner.default_route)
            .name()
    }

    /// The level of the audit event for an allowed request.
    pub(crate) fn audit_allowed_level(&self) -> tracing::Level {
        self.inner.audit_allowed_level
    }

    fn audit<'a>(
        &self,
        method: &'a str,
        path: &'a str,
        client_ip: Option<IpAddr>,
        route: &'a str,
    ) -> AuditRecord<'a> {
        AuditRecord {
            allowed_level: self.inner.audit_allowed_level,
            stage: "gate",
            method,
            path,
            client_ip,
            route,
        }
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("authenticators", &self.inner.authenticators)
            .field("routes", &self.inner.routes)
            .field("default_route", &self.inner.default_route)
            .field("trusted_proxies", &self.inner.trusted_proxies)
            .field("client_cert_proxies", &self.inner.client_cert_proxies)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gate`]. Errors in route patterns are collected and reported by [`build`](Self::build).
#[must_use]
pub struct GateBuilder {
    authenticators: Vec<Arc<dyn Authenticator>>,
    routes: Vec<Route>,
    default_policy: Arc<dyn Policy>,
    responder: Box<dyn RejectionResponder>,
    trusted_proxies: TrustedProxies,
    client_cert_proxies: IpSet,
    max_path_bytes: usize,
    audit_allowed_level: tracing::Level,
    public_origin: Option<String>,
    readiness_cache: Duration,
    readiness_timeout: Duration,
    errors: Vec<ConfigError>,
}

impl Default for GateBuilder {
    fn default() -> Self {
        Self {
            authenticators: Vec::new(),
            routes: Vec::new(),
            default_policy: Arc::new(Authenticated),
            responder: Box::new(ProblemJson),
            trusted_proxies: TrustedProxies::none(),
            client_cert_proxies: IpSet::default(),
            max_path_bytes: DEFAULT_MAX_PATH_BYTES,
            audit_allowed_level: tracing::Level::INFO,
            public_origin: None,
            readiness_cache: DEFAULT_READINESS_CACHE,
            readiness_timeout: DEFAULT_READINESS_TIMEOUT,
            errors: Vec::new(),
        }
    }
}

impl GateBuilder {
    /// Adds an authenticator. They are asked in the order added.
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticators.push(Arc::new(authenticator));
        self
    }

    /// Adds a shared authenticator (for one also used elsewhere, e.g. to manage users).
    pub fn shared_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authenticators.push(authenticator);
        self
    }

    /// Adds a rule for every method on paths matching `pattern`. Rules are tried in the order
    /// added; the first match decides.
    pub fn route(self, pattern: &str, policy: impl Policy) -> Self {
        self.route_for(Methods::Any, pattern, policy)
    }

    /// Adds a rule for some methods on paths matching `pattern`.
    pub fn route_for(mut self, methods: Methods, pattern: &str, policy: impl Policy) -> Self {
        match Route::new(methods, pattern, policy) {
            Ok(route) => self.routes.push(route),
            Err(err) => self.errors.push(err),
        }
        self
    }

    /// Adds a rule built elsewhere (from configuration).
    pub(crate) fn rule(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// The proxies whose forwarding headers are believed. Defaults to none: the client IP is the
    /// connection's peer.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The proxies (TCP peers) whose `Client-Cert` header (RFC 9440: the client certificate's
    /// DER as a structured-field byte sequence, `:base64:`) gives the client certificate of a
    /// mutual-TLS connection they terminated, for certificate-bound tokens (RFC 8705). From such
    /// a peer, the header is the request's certificate (none when absent; the peer's own
    /// connection certificate is not used); a malformed or repeated header is a 400. From any
    /// other peer the header is ignored and the connection's
    /// [`ClientCertificate`](crate::extract::ClientCertificate) is used. Separate from
    /// [`trusted_proxies`](Self::trusted_proxies): a proxy believed about the client IP is not
    /// thereby believed about certificates. Defaults to none.
    pub fn client_cert_proxies(mut self, proxies: IpSet) -> Self {
        self.client_cert_proxies = proxies;
        self
    }

    /// Refuses (400) a request whose path is longer than `bytes`, before anything else reads it, so
    /// a hostile path costs nothing and never fills an audit line. Defaults to 8 KiB.
    pub fn max_path_bytes(mut self, bytes: usize) -> Self {
        self.max_path_bytes = bytes;
        self
    }

    /// The origin clients reach this service at, `scheme://host[:port]` with no path
    /// (`https://api.example.com`): the URI a DPoP proof's `htu` must name is this origin and
    /// the path the client sent (RFC 9449 §4.3), never the `Host` header, which a client
    /// chooses. Compared after RFC 3986 normalisation (case of scheme and host, default port).
    /// Defaults to none: DPoP requests are then refused (401 `invalid_dpop_proof`), no `DPoP`
    /// challenge is offered, and the Gate logs a warning at build when an authenticator accepts
    /// DPoP.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }

    /// How long a [`Gate::readiness`] report is reused, so that probes (from several load
    /// balancers, every second) do not each query the stores. Defaults to 1 second; zero checks
    /// on every probe (concurrent probes still share one check).
    pub fn readiness_cache(mut self, ttl: Duration) -> Self {
        self.readiness_cache = ttl;
        self
    }

    /// How long each component of a [`Gate::readiness`] check may take (a store query, a Redis
    /// `PING`, loading a key set) before it counts as not ready. Defaults to 800 ms, under
    /// Kubernetes' default probe timeout of 1 second; zero is refused by
    /// [`build`](Self::build).
    pub fn readiness_timeout(mut self, timeout: Duration) -> Self {
        self.readiness_timeout = timeout;
        self
    }

    /// The policy for requests no rule matches. Defaults to [`Authenticated`]: a path you forgot
    /// to list is closed, not open.
    pub fn default_policy(mut self, policy: impl Policy) -> Self {
        self.default_policy = Arc::new(policy);
        self
    }

    /// The level of the audit event for an allowed request (target `portcullis::audit`).
    /// Refusals stay at INFO whatever this says. `DEBUG` keeps a busy service's log to its
    /// refusals while a subscriber at INFO runs. Defaults to INFO.
    pub fn audit_allowed_level(mut self, level: tracing::Level) -> Self {
        self.audit_allowed_level = level;
        self
    }

    /// Replaces how rejections become responses. Defaults to [`ProblemJson`]. The responder gets
    /// a rejection's [`PublicRejection`](crate::reject::PublicRejection), never its reason.
    pub fn responder(mut self, responder: impl RejectionResponder) -> Self {
        self.responder = Box::new(responder);
        self
    }

    /// Builds the Gate, or reports the first configuration error: a bad route pattern, or a
    /// policy whose [`validate`](Policy::validate) fails (an empty list of groups, scopes,
    /// schemes or IP ranges).
    pub fn build(mut self) -> Result<Gate, ConfigError> {
        if let Some(err) = std::mem::take(&mut self.errors).into_iter().next() {
            return Err(err);
        }
        for route in &self.routes {
            route.policy.validate().map_err(|err| {
                ConfigError::new(format!("route {}: {}", route.name(), err.message()))
            })?;
        }
        self.default_policy
            .validate()
            .map_err(|err| ConfigError::new(format!("default policy: {}", err.message())))?;
        if self.readiness_timeout.is_zero() {
            return Err(ConfigError::new(
                "readiness_timeout must be above zero, or every component would be reported down",
            ));
        }
        if self.authenticators.len() > MAX_AUTHENTICATORS {
            return Err(ConfigError::new(format!(
                "{} authenticators; a Gate takes at most {MAX_AUTHENTICATORS}",
                self.authenticators.len()
            )));
        }
        let (sources, always_asked) = self.check_schemes()?;
        let public_origin = match &self.public_origin {
            Some(origin) => Some(
                crate::request::normalize_origin(origin)
                    .map_err(|why| ConfigError::new(why).with_key("public_origin"))?,
            ),
            None => {
                if sources.iter().any(|(s, _)| s.is_authorization("dpop")) {
                    tracing::warn!(
                        target: "portcullis::audit",
                        "an authenticator accepts DPoP but the Gate has no public_origin: every \
                         DPoP request will be refused"
                    );
                }
                None
            }
        };
        let mut challenges: Vec<Challenge> = Vec::new();
        for challenge in self.authenticators.iter().flat_map(|a| a.challenges()) {
            // DPoP is offered only by a Gate that knows its public origin: without it, no proof
            // can be checked (and DPoP requests are refused).
            if public_origin.is_none() && challenge.scheme().eq_ignore_ascii_case("dpop") {
                continue;
            }
            if !challenges
                .iter()
                .any(|c| c.scheme().eq_ignore_ascii_case(challenge.scheme()))
            {
                challenges.push(challenge);
            }
        }
        let metrics = GateMetrics::new(self.authenticators.iter().map(|a| a.scheme()));
        let default_route = Route {
            methods: Methods::Any,
            pattern: crate::route::PathPattern::parse("/**")?,
            policy: self.default_policy,
            name: "default".to_owned(),
        };
        #[cfg(feature = "test-util")]
        tracing::warn!(
            target: "portcullis",
            "portcullis is compiled with feature `test-util` (the test kit, `portcullis::testing`): \
             enable it only under [dev-dependencies], never in a service's build"
        );
        Ok(Gate {
            inner: Arc::new(Inner {
                authenticators: self.authenticators,
                sources,
                always_asked,
                challenges,
                routes: self.routes,
                default_route,
                responder: self.responder,
                trusted_proxies: self.trusted_proxies,
                client_cert_proxies: self.client_cert_proxies,
                max_path_bytes: self.max_path_bytes,
                audit_allowed_level: self.audit_allowed_level,
                metrics,
                public_origin,
                readiness: ReadinessCache::new(self.readiness_cache),
                readiness_timeout: self.readiness_timeout,
            }),
        })
    }
}

/// What the Gate established about a request it let through.
#[cfg_attr(
    not(any(feature = "tower", feature = "actix")),
    expect(
        dead_code,
        reason = "only the adapters' context reads the client IP and the rule"
    )
)]
pub(crate) struct Decided {
    pub(crate) principal: Option<Principal>,
    pub(crate) client_ip: Option<IpAddr>,
    /// The index of the rule that matched; `None` for the default rule.
    pub(crate) route: Option<usize>,
}

/// What a policy's refusal becomes: 401 (every challenge) for an anonymous caller, 403 for a
/// principal, `insufficient_scope` when the denial names missing scopes. The one mapping the
/// Gate and route-bound policies and guards share, so a refusal reads the same wherever it is
/// made. The reason, for logs, names the rule.
///
/// The [`Reason`] comes from the built-in rule that decided (`ip_denied` for `ip_ranges`,
/// `group_denied`, `scope_insufficient`, `scheme_denied`, `credential_lifetime`;
/// `credentials_missing` for `authenticated`), `policy_denied` for any other rule.
pub(crate) fn refusal(principal: Option<&Principal>, denial: &Denial) -> Rejection {
    let detail = format!("{}: {}", denial.rule, denial.reason);
    let reason = if denial.missing_scopes.is_empty() {
        Reason::for_rule(&denial.rule)
    } else {
        Reason::ScopeInsufficient
    };
    let Some(principal) = principal else {
        return Rejection::missing_credentials(detail).with_reason(reason);
    };
    let rejection = if denial.missing_scopes.is_empty() {
        Rejection::forbidden(detail)
    } else {
        Rejection::insufficient_scope(denial.missing_scopes.clone(), detail)
    };
    // The scheme is the principal's, for the audit trail and metrics; a 403's challenges do not
    // depend on it, so it changes nothing the client sees.
    rejection.for_scheme(principal.scheme()).with_reason(reason)
}

impl GateBuilder {
    /// Checks every authenticator's scheme name and every scheme a policy names (a name no
    /// authenticator checks is a typo, unless it is a built-in one: denying Basic where it is
    /// not configured is harmless), and gathers the credential sources with their readers.
    fn check_schemes(&self) -> Result<(Vec<(CredentialSource, u64)>, u64), ConfigError> {
        let mut sources: Vec<(CredentialSource, u64)> = Vec::new();
        let mut always_asked = 0u64;
        for (i, authenticator) in self.authenticators.iter().enumerate() {
            authenticator.scheme().check()?;
            let read = authenticator.sources();
            if read.is_empty() {
                always_asked |= 1 << i;
            }
            for source in read {
                match sources.iter_mut().find(|(s, _)| *s == source) {
                    Some((_, readers)) => *readers |= 1 << i,
                    None => sources.push((source, 1 << i)),
                }
            }
        }
        let known = |name: &str| {
            Scheme::built_in(name).is_some()
                || self
                    .authenticators
                    .iter()
                    .any(|a| a.scheme().as_str() == name)
        };
        let policies = self
            .routes
            .iter()
            .map(|route| (format!("route {}", route.name()), &route.policy))
            .chain([("default policy".to_owned(), &self.default_policy)]);
        for (route, policy) in policies {
            if let Some(name) = policy.scheme_names().into_iter().find(|n| !known(n)) {
                return Err(ConfigError::new(format!(
                    "{route}: scheme `{name}` is not built in and no authenticator of this Gate \
                     checks it"
                )));
            }
        }
        Ok((sources, always_asked))
    }

    /// The schemes of the authenticators added so far, for configuration to check its names.
    pub(crate) fn schemes(&self) -> impl Iterator<Item = Scheme> + '_ {
        self.authenticators.iter().map(|a| a.scheme())
    }
}

enum Trace {
    Off,
    On(Vec<(&'static str, String)>),
}

impl Trace {
    /// Records a step; `detail` is only formatted when tracing, so `check` pays nothing.
    fn step(&mut self, stage: &'static str, detail: impl FnOnce() -> String) {
        if let Trace::On(steps) = self {
            steps.push((stage, detail()));
        }
    }
}

/// The first 64 bytes of a path (cut at a character boundary), for the audit of one too long.
fn path_start(path: &str) -> &str {
    let mut end = path.len().min(64);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

fn display_ip(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, Method, Uri};

    use super::*;
    use crate::audit::CapturedLogs;
    use crate::future::BoxFuture;

    /// Reads `Authorization: DPoP` and offers Bearer and DPoP, as the bearer authenticators do;
    /// authenticates with the public origin it was handed as the subject.
    #[derive(Debug)]
    struct DpopReader;

    impl Authenticator for DpopReader {
        fn scheme(&self) -> Scheme {
            Scheme::new("dpop_reader")
        }

        fn challenge(&self) -> Challenge {
            Challenge::new("Bearer")
        }

        fn challenges(&self) -> Vec<Challenge> {
            vec![Challenge::new("Bearer"), Challenge::new("DPoP")]
        }

        fn sources(&self) -> Vec<CredentialSource> {
            vec![CredentialSource::authorization("DPoP")]
        }

        fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
            let origin = request.public_origin().unwrap_or("none").to_owned();
            Box::pin(async move {
                Outcome::Authenticated(Principal::new(
                    origin,
                    crate::principal::SubjectKind::User,
                    self.scheme(),
                ))
            })
        }
    }

    #[tokio::test]
    async fn the_public_origin_is_normalised_and_handed_to_authenticators() {
        let gate = Gate::builder()
            .authenticator(DpopReader)
            .public_origin("HTTPS://API.Example.com:443/")
            .build()
            .unwrap();
        let names: Vec<_> = gate.challenges().iter().map(Challenge::scheme).collect();
        assert_eq!(names, ["Bearer", "DPoP"]);
        let (method, uri, mut headers) = (Method::GET, Uri::from_static("/x"), HeaderMap::new());
        headers.insert("authorization", "DPoP t".parse().unwrap());
        let principal = gate
            .check(&RequestView::new(&method, &uri, &headers))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(principal.subject(), "https://api.example.com");
        let kept = Gate::builder()
            .authenticator(DpopReader)
            .public_origin("http://127.0.0.1:8080")
            .build()
            .unwrap();
        let principal = kept
            .check(&RequestView::new(&method, &uri, &headers))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(principal.subject(), "http://127.0.0.1:8080");
    }

    #[test]
    fn without_a_public_origin_dpop_is_not_offered_and_a_warning_is_logged() {
        let captured = CapturedLogs::start();
        let gate = Gate::builder().authenticator(DpopReader).build().unwrap();
        let names: Vec<_> = gate.challenges().iter().map(Challenge::scheme).collect();
        assert_eq!(names, ["Bearer"]);
        let logs = captured.text();
        assert!(
            logs.contains("WARN") && logs.contains("public_origin"),
            "{logs}"
        );
    }
}
