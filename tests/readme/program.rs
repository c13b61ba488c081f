use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use portcullis::store::open_store;
use portcullis::tower::PolicyLayer;
use portcullis::{
    ApiKeys, BasicAuthenticator, Gate, GateLayer, Groups, PolicyExt, Principal, Public, Scheme,
    Schemes, Scopes, SecretString,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stores = open_store("sqlite://portcullis.db").await?;
    let pepper = SecretString::new(std::env::var("PORTCULLIS_API_KEY_PEPPER")?);
    let keys = ApiKeys::builder(stores.api_keys, pepper)
        .max_lifetime(Duration::from_secs(90 * 24 * 60 * 60))
        .build()?;
    let basic = BasicAuthenticator::builder(stores.users).build()?;
    let admins_without_basic = Groups::any_of(["admin"]).and(Schemes::deny([Scheme::BASIC]));
    let gate = Gate::builder()
        .authenticator(basic)
        .authenticator(keys.authenticator())
        .route("/health", Public)
        .route("/admin/**", admins_without_basic)
        .build()?; // anything else needs an authenticated caller
    let app = Router::new()
        .route("/reports", get(|| async { "quarterly numbers" }))
        .route_layer(PolicyLayer::new(Scopes::all_of(["reports:read"]))?) // this route only
        .route("/me", get(|who: Principal| async move { Json(who) }))
        .layer(GateLayer::new(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
