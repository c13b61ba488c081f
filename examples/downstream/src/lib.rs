//! A service built on portcullis through its public API only: the same rules in front of an axum
//! router and an actix-web app, a policy of its own, a policy bound to a route and a guard in a
//! handler, and a responder that shapes refusals.

use std::sync::Arc;

use portcullis::actix::PolicyMiddleware;
use portcullis::basic::HashingConfig;
use portcullis::extract::Guard;
use portcullis::policy::{Decision, PolicyContext};
use portcullis::reject::{Challenge, ProblemJson, Refusal, RejectionResponder};
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::tower::PolicyLayer;
use portcullis::{
    ApiKeys, BasicAuthenticator, ConfigError, Gate, GateBuilder, Groups, NewApiKey, Policy,
    PolicyExt, Principal, Public, Rejection, Scheme, Schemes, SecretString,
};

/// Applications may only read (GET); users may do anything their route allows. A policy written
/// outside portcullis, judging the principal the Gate established.
#[derive(Debug)]
pub struct ReadOnlyForApplications;

impl Policy for ReadOnlyForApplications {
    fn evaluate(&self, context: &PolicyContext<'_>) -> Decision {
        let Some(principal) = context.principal() else {
            return Decision::indeterminate("read_only_for_applications", "no principal");
        };
        let reading = context.request().method() == http::Method::GET;
        if principal.kind() == portcullis::SubjectKind::Application && !reading {
            Decision::deny("read_only_for_applications", "applications only read")
        } else {
            Decision::Allow
        }
    }
}

/// The service's callers: a user `alice` in group `admin`, and an API key for application
/// `reporter`, returned so tests can use it.
pub struct Callers {
    /// The Gate in front of both apps.
    pub gate: Gate,
    /// The whole API key of application `reporter`.
    pub reporter_key: SecretString,
}

/// Builds the Gate: its users and keys, and the service's [`rules`].
pub async fn gate() -> Result<Callers, Box<dyn std::error::Error>> {
    let users = Arc::new(MemoryUserStore::new());
    let basic = Arc::new(
        BasicAuthenticator::builder(users)
            .realm("downstream")
            // Cheap argon2 for tests; a real service keeps the default cost.
            .hashing(
                HashingConfig::default()
                    .with_memory_kib(64)
                    .with_iterations(1),
            )
            .build()?,
    );
    basic
        .add_user("alice", &"correct horse".into(), ["admin"])
        .await?;
    let keys = ApiKeys::builder(
        Arc::new(MemoryApiKeyStore::new()),
        SecretString::new("a pepper of at least thirty-two bytes, for tests"),
    )
    .build()?;
    let issued = keys
        .create(
            NewApiKey::application("reporter")
                .with_expires_in(std::time::Duration::from_secs(3600)),
        )
        .await?;
    let gate = rules(
        Gate::builder()
            .shared_authenticator(basic)
            .authenticator(keys.authenticator()),
    )
    .build()
    .map_err(|e: ConfigError| e.to_string())?;
    Ok(Callers {
        gate,
        reporter_key: issued.key().clone(),
    })
}

/// The service's rules, on a builder that already has its authenticators: `/health` is public,
/// `/admin/**` needs group `admin` and no Basic password, everything else needs a caller, and
/// applications may only read. Refusals carry the service's own header. Its tests build the
/// same rules over the test kit's stores.
pub fn rules(builder: GateBuilder) -> GateBuilder {
    builder
        .route("/health", Public)
        .route(
            "/admin/**",
            Groups::any_of(["admin"]).and(Schemes::deny([Scheme::BASIC])),
        )
        .default_policy(ReadOnlyForApplications)
        .responder(with_service_header)
}

/// The default problem body, plus a header of the service's own.
fn with_service_header(rejection: &Rejection, challenges: &[Challenge]) -> http::Response<String> {
    let mut response = ProblemJson.respond(rejection, challenges);
    response
        .headers_mut()
        .insert("x-service", http::HeaderValue::from_static("downstream"));
    response
}

/// What `/me` answers: who is calling and how.
pub fn whoami(principal: &Principal) -> serde_json::Value {
    serde_json::json!({
        "subject": principal.subject(),
        "scheme": principal.scheme().as_str(),
        "groups": principal.groups(),
    })
}

/// The policy bound to `/reports/summary`, next to the route rather than in the Gate's table.
fn admins() -> Groups {
    Groups::any_of(["admin"])
}

/// A handler that demands a policy itself; a refusal is the Gate's, with the service's header.
async fn audit_log(guard: Guard) -> Result<String, Refusal> {
    guard.require(&admins())?;
    let who = guard.principal().map_or("-", Principal::subject);
    Ok(format!("audit log, read by {who}"))
}

/// The axum app behind the Gate.
pub fn axum_app(gate: Gate) -> axum::Router {
    axum_routes().layer(portcullis::GateLayer::new(gate))
}

/// The axum routes, without the Gate: [`axum_app`] puts it in front, handler tests a principal
/// on each request (`portcullis::testing`).
pub fn axum_routes() -> axum::Router {
    use axum::routing::{get, post};
    // `admins()` names a group, so it validates: the error is unreachable.
    let summary = PolicyLayer::new(admins()).expect("a non-empty group list is valid");
    let reports = axum::Router::new()
        .route("/reports/summary", get(|| async { "summary" }))
        .route_layer(summary);
    axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/me",
            get(|who: Principal| async move { axum::Json(whoami(&who)) }),
        )
        .route("/reports", post(|| async { "created" }))
        .route("/admin/users", get(|| async { "users" }))
        .route("/audit-log", get(audit_log))
        .merge(reports)
}

/// The actix-web routes; wrap the app in `portcullis::actix::GateMiddleware::new(gate)`.
pub fn actix_routes(config: &mut actix_web::web::ServiceConfig) {
    use actix_web::{HttpResponse, web};
    config
        .route("/health", web::get().to(|| async { "ok" }))
        .route(
            "/me",
            web::get().to(|who: Principal| async move { HttpResponse::Ok().json(whoami(&who)) }),
        )
        .route("/reports", web::post().to(|| async { "created" }))
        .route("/admin/users", web::get().to(|| async { "users" }))
        .route("/audit-log", web::get().to(audit_log))
        .service(
            web::resource("/reports/summary")
                // `admins()` names a group, so it validates: the error is unreachable.
                .wrap(PolicyMiddleware::new(admins()).expect("a non-empty group list is valid"))
                .route(web::get().to(|| async { "summary" })),
        );
}
