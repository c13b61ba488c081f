//! A small protected API: `cargo run --example demo`.
//!
//! Serves on `PORTCULLIS_DEMO_ADDR` (default `127.0.0.1:8080`) with a public route, a route for
//! any authenticated caller and an admin route, and prints `curl` commands to call it. The users'
//! passwords are generated at start and printed once.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use portcullis::{BasicAuthenticator, Gate, GateLayer, Groups, MemoryUserStore, Principal, Public};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    let addr: SocketAddr = std::env::var("PORTCULLIS_DEMO_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()?;

    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .realm("portcullis-demo")
            .verified_cache(Duration::from_secs(60), 10_000)
            .build()?,
    );
    let demo_password = random_password();
    let admin_password = random_password();
    basic
        .add_user("demo", &demo_password.as_str().into(), ["users"])
        .await?;
    basic
        .add_user("admin", &admin_password.as_str().into(), ["users", "admin"])
        .await?;

    let gate = Gate::builder()
        .shared_authenticator(basic)
        .route("/health", Public)
        .route("/admin/**", Groups::any_of(["admin"]))
        .build()?; // every other route needs an authenticated caller

    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/me", get(me))
        .route("/admin/stats", get(admin_stats))
        .layer(GateLayer::new(gate));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("portcullis demo listening on {base}");
    println!("Try these (each line ends with the status it gets):");
    println!("curl -i {base}/health   # 200 OK: public");
    println!("curl -i -u demo:{demo_password} {base}/me   # 200 OK: your principal as JSON");
    println!("curl -i -u admin:{admin_password} {base}/admin/stats   # 200 OK: admin only");
    println!("curl -i -u demo:{demo_password} {base}/admin/stats   # 403 Forbidden: not an admin");
    println!("curl -i -u demo:wrong-password {base}/me   # 401 Unauthorized: bad password");
    println!("curl -i {base}/me   # 401 Unauthorized: no credentials");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

async fn me(principal: Principal) -> Json<Principal> {
    Json(principal)
}

async fn admin_stats(principal: Principal) -> Json<Value> {
    Json(json!({ "admin": principal.subject(), "users": 2 }))
}

fn random_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}
