//! [`GateContext`]: what the Gate established about a request it let through, which the adapters
//! put in the request's extensions for route-bound policies, handler guards and extractors.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::Response;

use crate::audit::AuditRecord;
use crate::gate::{Gate, refusal};
use crate::policy::{Policy, PolicyContext};
use crate::principal::Principal;
use crate::reject::{Challenge, Refusal, Rejection};
use crate::request::RequestView;

/// The audit `stage` of a route-bound policy (`tower::PolicyLayer`, `actix::PolicyMiddleware`).
#[cfg(any(feature = "tower", feature = "actix"))]
pub(crate) const ROUTE: &str = "route";
/// The audit `stage` of a handler guard or extractor.
pub(crate) const HANDLER: &str = "handler";

/// What the [`Gate`] established about a request it let through: the principal (or none, for an
/// anonymous caller), the client IP it resolved, the route rule that matched, and the Gate's
/// challenges and responder. The tower layer and the actix middleware put it in the request's
/// extensions; route-bound policies, [`Guard`](crate::extract::Guard), the
/// [`Principal`] extractors and [`Claims`](crate::extract::Claims) read it.
///
/// Only the Gate builds one (there is no public constructor), so finding it in a request's
/// extensions proves the Gate decided on that request. Where it is missing (no Gate in front),
/// everything that needs it refuses with 500 and an audit event; nothing judges such a request
/// as anonymous. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct GateContext {
    inner: Arc<Inner>,
}

struct Inner {
    gate: Gate,
    principal: Option<Principal>,
    client_ip: Option<IpAddr>,
    route: Option<usize>,
}

impl GateContext {
    /// Runs `gate` on `request`: the context of a request it lets through, or its rejection.
    /// The only way to build one.
    #[cfg(any(feature = "tower", feature = "actix"))]
    pub(crate) async fn decide(gate: &Gate, request: &RequestView<'_>) -> Result<Self, Rejection> {
        let decided = gate.decide(request).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                gate: gate.clone(),
                principal: decided.principal,
                client_ip: decided.client_ip,
                route: decided.route,
            }),
        })
    }

    /// The context the test kit puts on a request (`testing::TestContext`): `principal` as if
    /// `gate` had authenticated it, the rule `gate` matches for `request`, and the client IP
    /// given or the request's peer. Compiled only with feature `test-util`, which makes the Gate
    /// warn when built.
    #[cfg(feature = "test-util")]
    pub(crate) fn for_test(
        gate: &Gate,
        principal: Option<Principal>,
        client_ip: Option<IpAddr>,
        request: &RequestView<'_>,
    ) -> Self {
        let (route, _) = gate.route_for(request.method(), request.path());
        Self {
            inner: Arc::new(Inner {
                gate: gate.clone(),
                principal,
                client_ip: client_ip.or_else(|| request.peer().map(|peer| peer.ip())),
                route,
            }),
        }
    }

    /// The authenticated caller, or `None` when the Gate let an anonymous request through.
    pub fn principal(&self) -> Option<&Principal> {
        self.inner.principal.as_ref()
    }

    /// The client IP the Gate resolved (after trusted proxies), when the server gave a peer.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.inner.client_ip
    }

    /// The name of the Gate's route rule that matched (`default` when none did).
    pub fn rule(&self) -> &str {
        self.inner.gate.route_name(self.inner.route)
    }

    /// The base challenge of every scheme the Gate offers.
    pub fn challenges(&self) -> &[Challenge] {
        self.inner.gate.challenges()
    }

    /// The response the Gate's responder builds for `rejection` ([`Gate::respond`]).
    pub fn respond(&self, rejection: &Rejection) -> Response<String> {
        self.inner.gate.respond(rejection)
    }

    /// Judges `request` (this context's request) with `policy`, as the Gate judges its route
    /// rules: on the principal the Gate established, never authenticating again. A refusal is
    /// 401 with every challenge for an anonymous caller, 403 for a principal (Bearer
    /// `insufficient_scope` for missing scopes), built by the Gate's responder and audited once
    /// with `stage = "handler"`. A policy whose [`validate`](Policy::validate) fails is refused
    /// with 500: a guard that cannot judge does not allow.
    ///
    /// In axum and actix-web handlers, [`Guard::require`](crate::extract::Guard::require) does
    /// this with the request it was extracted from.
    pub fn require(&self, policy: &dyn Policy, request: &RequestView<'_>) -> Result<(), Refusal> {
        if let Err(err) = policy.validate() {
            let rejection = Rejection::misconfigured(format!("guard policy: {}", err.message()));
            return Err(self.refuse(request, HANDLER, rejection, None));
        }
        self.judge(policy, request, HANDLER)
    }

    /// Runs `policy` on the principal the Gate established and refuses as the Gate does.
    pub(crate) fn judge(
        &self,
        policy: &dyn Policy,
        request: &RequestView<'_>,
        stage: &'static str,
    ) -> Result<(), Refusal> {
        let request = request.with_client_ip(self.client_ip());
        let context =
            PolicyContext::new(self.principal(), &request, request.path()).at_stage(stage);
        let decision = policy.evaluate(&context);
        let Some(denial) = decision.refusal() else {
            return Ok(());
        };
        let rejection = refusal(self.principal(), denial);
        Err(self.refuse(&request, stage, rejection, Some(&denial.rule)))
    }

    /// The principal, or 401 with every challenge for an anonymous caller (a handler that needs
    /// one on a route the Gate opens to anonymous callers).
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn principal_or_refuse(
        &self,
        request: &RequestView<'_>,
    ) -> Result<&Principal, Refusal> {
        self.principal().ok_or_else(|| {
            let rejection = Rejection::missing_credentials("the handler needs a principal");
            self.refuse(request, HANDLER, rejection, None)
        })
    }

    /// The principal's token claims as `T`: 401 for an anonymous caller, 403 for a principal
    /// without token claims (Basic, API key), 401 `invalid_token` for claims that do not
    /// deserialize into `T`. serde's message quotes claim values, so it goes to the audit event
    /// only, never into the rejection a responder sees.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn claims<T: serde::de::DeserializeOwned>(
        &self,
        request: &RequestView<'_>,
    ) -> Result<T, Refusal> {
        let principal = self.principal_or_refuse(request)?;
        match principal.claims_as::<T>() {
            Some(Ok(claims)) => Ok(claims),
            None => {
                let rejection = Rejection::forbidden("the credential carries no token claims");
                Err(self.refuse(request, HANDLER, rejection, None))
            }
            Some(Err(err)) => {
                const REASON: &str = "the token's claims do not have the shape the handler needs";
                let rejection = Rejection::invalid_credentials(principal.scheme(), REASON);
                let audited =
                    Rejection::invalid_credentials(principal.scheme(), format!("{REASON}: {err}"));
                self.audit(&request.with_client_ip(self.client_ip()), HANDLER)
                    .rejected(Some(principal), &audited, None);
                let response = self.respond(&rejection);
                Err(Refusal::new(rejection, response))
            }
        }
    }

    /// Audits `rejection` at `stage` and builds its response with the Gate's responder.
    pub(crate) fn refuse(
        &self,
        request: &RequestView<'_>,
        stage: &'static str,
        rejection: Rejection,
        rule: Option<&str>,
    ) -> Refusal {
        self.audit(&request.with_client_ip(self.client_ip()), stage)
            .rejected(self.principal(), &rejection, rule);
        let response = self.respond(&rejection);
        Refusal::new(rejection, response)
    }

    fn audit<'a>(&'a self, request: &'a RequestView<'a>, stage: &'static str) -> AuditRecord<'a> {
        AuditRecord {
            stage,
            method: request.method().as_str(),
            path: request.path(),
            client_ip: self.client_ip(),
            route: self.rule(),
        }
    }
}

impl fmt::Debug for GateContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateContext")
            .field("principal", &self.inner.principal)
            .field("client_ip", &self.inner.client_ip)
            .field("rule", &self.rule())
            .finish_non_exhaustive()
    }
}

/// The refusal when a route layer, guard or extractor finds no [`GateContext`]: 500 with the
/// default problem body (there is no Gate, so no responder to ask), audited at `stage`.
#[cfg(any(feature = "tower", feature = "actix"))]
pub(crate) fn no_context(request: &RequestView<'_>, stage: &'static str, what: &str) -> Refusal {
    let rejection = Rejection::misconfigured(format!(
        "{what} found no Gate context: no Gate in front of this route"
    ));
    AuditRecord {
        stage,
        method: request.method().as_str(),
        path: request.path(),
        client_ip: None,
        route: "-",
    }
    .rejected(None, &rejection, None);
    let response =
        crate::reject::RejectionResponder::respond(&crate::reject::ProblemJson, &rejection, &[]);
    Refusal::new(rejection, response)
}
