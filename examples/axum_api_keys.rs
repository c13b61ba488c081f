//! API keys with axum: `cargo run --example axum_api_keys`.
//!
//! People sign in with Basic to manage their own keys, through the self-service token API
//! ([`portcullis::self_service`]) mounted at `/keys`; programs call the API with a key:
//!
//! | Route | Who | Does |
//! |-------|-----|------|
//! | `POST /keys` | Basic only | creates a key for the caller, within the cap and the scope allowlist, and shows it once |
//! | `GET /keys` | Basic, or one of the caller's keys | lists the caller's keys (never a secret) |
//! | `DELETE /keys/{id}` | Basic, or one of the caller's keys | revokes one of the caller's keys, at once |
//! | `POST /keys/{id}/rotate` | Basic only | replaces a key, the old one working on for `overlap` |
//! | `GET /reports/{name}` | API keys with scope `reports:read` only | a report |
//!
//! A stolen key cannot mint more keys, nor grant itself a scope outside the allowlist; its
//! owner's groups are read at every authentication (cached 5 s), so disabling the owner stops
//! their keys. The keys live in memory here; with `[store] url = "sqlite://keys.db"` and a
//! `[self_service]` section in a config file ([`portcullis::config::Config`]) they survive
//! restarts, and `portcullis key create|list|revoke|rotate` manages them from a shell.
//!
//! The pepper (the server-side secret that keys are hashed with) comes from
//! `PORTCULLIS_API_KEY_PEPPER` when set, else is generated at start: then keys die with the
//! process. Serves on `ADDR` (default `127.0.0.1:3000`).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use portcullis::self_service::SelfService;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{
    ApiKeys, BasicAuthenticator, Gate, GateLayer, NewApiKey, PolicyExt, Principal, Scheme, Schemes,
    Scopes, SecretString,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

/// The longest lifetime a key may be created with.
const MAX_KEY_LIFETIME: Duration = Duration::from_secs(90 * 86_400);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;

    let pepper: SecretString = std::env::var("PORTCULLIS_API_KEY_PEPPER")
        .unwrap_or_else(|_| random_text(48))
        .into();
    let users = Arc::new(MemoryUserStore::new());
    let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), pepper)
        .max_lifetime(MAX_KEY_LIFETIME)
        // How long a key revoked, or an owner disabled, on another instance may still work
        // there. Defaults to 5 s.
        .cache_ttl(Duration::from_secs(5))
        // Self-served keys carry no groups: their owner's are read from here.
        .owners(users.clone())
        .build()?;
    let tokens = SelfService::builder(keys.clone())
        .max_lifetime(MAX_KEY_LIFETIME)
        .default_lifetime(Duration::from_secs(30 * 86_400))
        .max_tokens_per_user(10)
        .scope_allowlist(["reports:read"])
        .build()?;

    let basic = BasicAuthenticator::builder(users)
        .realm("axum-api-keys")
        .build()?;
    let ada_password = random_text(20);
    basic
        .add_user("ada", &ada_password.as_str().into(), ["analysts"])
        .await?;

    let gate = Gate::builder()
        .authenticator(keys.authenticator())
        .authenticator(basic)
        .route(
            "/reports/**",
            Schemes::allow([Scheme::API_KEY]).and(Scopes::all_of(["reports:read"])),
        )
        .build()?;

    // A first key, so the printed commands work as they are.
    let first = keys
        .create_self_served(
            NewApiKey::new("ada")
                .with_name("printed at start")
                .with_scopes(["reports:read"])
                .with_expires_in(Duration::from_secs(86_400)),
            tokens.max_tokens_per_user(),
        )
        .await?;

    let app = Router::new()
        .nest("/keys", tokens.router())
        .route("/reports/{name}", get(report))
        .layer(GateLayer::new(gate));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let key = first.key().expose_secret();
    println!("axum_api_keys listening on {base}");
    println!("curl -i -H 'X-API-Key: {key}' {base}/reports/daily   # 200");
    println!("curl -i -H 'Authorization: Bearer {key}' {base}/reports/daily   # 200");
    println!("curl -i -u ada:{ada_password} {base}/reports/daily   # 403: keys only");
    println!(
        "curl -i -H 'X-API-Key: {key}' -H 'content-type: application/json' -d '{{\"name\":\"more\"}}' {base}/keys   # 403: a key cannot mint keys"
    );
    println!(
        "curl -i -u ada:{ada_password} -H 'content-type: application/json' \
         -d '{{\"name\":\"ci\",\"scopes\":[\"reports:read\"],\"expires_in\":\"30d\"}}' {base}/keys   # 201"
    );
    println!(
        "curl -i -u ada:{ada_password} -H 'content-type: application/json' \
         -d '{{\"name\":\"root\",\"scopes\":[\"admin\"]}}' {base}/keys   # 422: not in the allowlist"
    );
    println!("curl -i -u ada:{ada_password} {base}/keys   # 200: ada's keys");
    println!(
        "curl -i -u ada:{ada_password} -X DELETE {base}/keys/{}   # 204, then the key gets 401",
        first.id()
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

async fn report(principal: Principal, Path(name): Path<String>) -> Json<Value> {
    Json(json!({
        "report": name,
        "for": principal.subject(),
        "key": principal.credential_id(),
    }))
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
