//! HTTP Basic with axum: `cargo run --example axum_basic`.
//!
//! Shows the three ways a handler meets the caller, and per-route layers:
//!
//! - `GET /` takes an `Option<Principal>`: anyone may call, signed in or not;
//! - `GET /me` takes a `Principal`: the Gate only lets authenticated callers through;
//! - `GET /admin/users` sits behind a second Gate, layered on the admin routes only, whose default
//!   policy asks for the `admin` group.
//!
//! Both Gates share one `BasicAuthenticator`, so they see the same users, lockout counters and
//! verified-credential cache. Users' passwords are generated at start and printed once. Serves on
//! `ADDR` (default `127.0.0.1:3000`).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use portcullis::store::MemoryUserStore;
use portcullis::{BasicAuthenticator, Gate, GateLayer, Groups, Principal, Public};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Every decision is an event on target `portcullis::audit`.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;

    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .realm("axum-basic")
            // A correct password is checked with argon2id once a minute, not on every request.
            .verified_cache(Duration::from_secs(60), 10_000)
            .build()?,
    );
    let ada_password = random_password();
    let bob_password = random_password();
    basic
        .add_user("ada", &ada_password.as_str().into(), ["staff", "admin"])
        .await?;
    basic
        .add_user("bob", &bob_password.as_str().into(), ["staff"])
        .await?;

    // The main API: `/` is open; every other route needs an authenticated caller (the default).
    let api_gate = Gate::builder()
        .shared_authenticator(basic.clone())
        .route("/", Public)
        .build()?;
    // The admin routes have their own Gate: its default policy is the `admin` group.
    let admin_gate = Gate::builder()
        .shared_authenticator(basic.clone())
        .default_policy(Groups::any_of(["admin"]))
        .build()?;

    // `route_layer` runs the Gate only for routes that matched, so an unknown path is a plain 404
    // and each request passes exactly one Gate.
    let api = Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route_layer(GateLayer::new(api_gate));
    let admin = Router::new()
        .route("/admin/users", get(admin_users))
        .route_layer(GateLayer::new(admin_gate));
    let app = api.merge(admin);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("axum_basic listening on {base}");
    println!("curl -i {base}/                                   # 200: hello, stranger");
    println!("curl -i -u bob:{bob_password} {base}/       # 200: hello, bob");
    println!("curl -i -u bob:{bob_password} {base}/me     # 200: bob's principal");
    println!("curl -i {base}/me                                 # 401 with a Basic challenge");
    println!("curl -i -u ada:{ada_password} {base}/admin/users  # 200: ada is an admin");
    println!("curl -i -u bob:{bob_password} {base}/admin/users  # 403: bob is not");
    // With connect info, the Gate sees the peer address (audit events, IP policies, lockout).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// Anyone: the principal is there when the caller sent valid credentials.
async fn home(principal: Option<Principal>) -> String {
    match principal {
        Some(principal) => format!("hello, {}\n", principal.subject()),
        None => "hello, stranger\n".to_owned(),
    }
}

/// Authenticated callers only: the Gate refused everyone else before this runs.
async fn me(principal: Principal) -> Json<Principal> {
    Json(principal)
}

/// Admins only, by the admin Gate's default policy.
async fn admin_users(principal: Principal) -> Json<Value> {
    Json(json!({ "requested_by": principal.subject(), "users": ["ada", "bob"] }))
}

fn random_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}
