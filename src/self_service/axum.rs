//! The token API as an axum [`Router`] (feature `axum`).

use ::axum::Router;
use ::axum::body::Body;
use ::axum::extract::{Request, State};
use ::axum::response::Response;
use ::axum::routing::any;

use super::{MAX_BODY_LEN, Problem, SelfService, SelfServiceAdmin};
use crate::policy::Policy;

impl SelfService {
    /// The token API as an axum router, to nest behind the Gate's layer:
    /// `Router::new().nest("/tokens", service.router()).layer(GateLayer::new(gate))`. The Gate
    /// decides on the path the client sent (`/tokens/...`); the router answers the rest.
    pub fn router(&self) -> Router {
        router(Target::User(self.clone()))
    }

    /// The admin API ([`SelfService::admin`]) as an axum router, for callers `policy` allows.
    pub fn admin_router(&self, policy: impl Policy) -> Router {
        self.admin(policy).router()
    }
}

impl SelfServiceAdmin {
    /// The admin API as an axum router (see [`SelfService::router`]).
    pub fn router(&self) -> Router {
        router(Target::Admin(self.clone()))
    }
}

#[derive(Clone)]
enum Target {
    User(SelfService),
    Admin(SelfServiceAdmin),
}

fn router(target: Target) -> Router {
    Router::new()
        .route("/", any(serve))
        .route("/{*rest}", any(serve))
        .with_state(target)
}

async fn serve(State(target): State<Target>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Read at most one byte past the limit: enough to know the body is too long.
    let Ok(body) = ::axum::body::to_bytes(body, MAX_BODY_LEN).await else {
        return Problem::too_large().response().map(Body::from);
    };
    let request = http::Request::from_parts(parts, body);
    let response = match target {
        Target::User(service) => service.handle(request).await,
        Target::Admin(admin) => admin.handle(request).await,
    };
    response.map(Body::from)
}
