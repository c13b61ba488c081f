//! API keys with axum: `cargo run --example axum_api_keys`.
//!
//! People sign in with Basic to manage their own keys; programs call the API with a key:
//!
//! | Route | Who | Does |
//! |-------|-----|------|
//! | `POST /keys` | Basic only | creates a key for the caller and shows it once |
//! | `GET /keys` | Basic only | lists the caller's keys (never a secret) |
//! | `DELETE /keys/{id}` | Basic only | revokes one of the caller's keys, at once |
//! | `GET /reports/{name}` | API keys with scope `reports:read` only | a report |
//!
//! "Basic only" is a policy: a stolen key cannot mint more keys. The keys live in memory here;
//! with `[store] url = "sqlite://keys.db"` in a config file ([`portcullis::config::Config`]) they survive
//! restarts, and `portcullis key create|list|revoke|rotate` manages them from a shell.
//!
//! The pepper (the server-side secret that keys are hashed with) comes from
//! `PORTCULLIS_API_KEY_PEPPER` when set, else is generated at start: then keys die with the
//! process. Serves on `ADDR` (default `127.0.0.1:3000`).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use portcullis::api_key::ApiKeyError;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{
    ApiKeys, Authenticated, BasicAuthenticator, Gate, GateLayer, NewApiKey, PolicyExt, Principal,
    Scheme, Schemes, Scopes, SecretString,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Deserialize;
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
    let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), pepper)
        .max_lifetime(MAX_KEY_LIFETIME)
        // How long a key revoked on another instance may still work there. Defaults to 5 s.
        .cache_ttl(Duration::from_secs(5))
        .build()?;

    let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
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
            "/keys/**",
            Authenticated.and(Schemes::allow([Scheme::BASIC])),
        )
        .route(
            "/reports/**",
            Schemes::allow([Scheme::API_KEY]).and(Scopes::all_of(["reports:read"])),
        )
        .build()?;

    // A first key, so the printed commands work as they are.
    let first = keys
        .create(
            NewApiKey::new("ada")
                .with_name("printed at start")
                .with_scopes(["reports:read"])
                .with_expires_in(Duration::from_secs(86_400))
                .with_created_by("axum_api_keys example"),
        )
        .await?;

    let app = Router::new()
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", delete(revoke_key))
        .route("/reports/{name}", get(report))
        .with_state(keys)
        .layer(GateLayer::new(gate));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let key = first.key().expose_secret();
    println!("axum_api_keys listening on {base}");
    println!("curl -i -H 'X-API-Key: {key}' {base}/reports/daily   # 200");
    println!("curl -i -H 'Authorization: Bearer {key}' {base}/reports/daily   # 200");
    println!("curl -i -u ada:{ada_password} {base}/reports/daily   # 403: keys only");
    println!("curl -i -H 'X-API-Key: {key}' {base}/keys   # 403: a key cannot manage keys");
    println!(
        "curl -i -u ada:{ada_password} -H 'content-type: application/json' \
         -d '{{\"name\":\"ci\",\"scopes\":[\"reports:read\"],\"days\":30}}' {base}/keys   # 201"
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

#[derive(Deserialize)]
struct CreateKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    days: u64,
}

/// Creates a key owned by the caller. The secret is in this answer and nowhere else: the store
/// keeps only a keyed hash of it.
async fn create_key(
    State(keys): State<ApiKeys>,
    principal: Principal,
    Json(request): Json<CreateKey>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let issued = keys
        .create(
            NewApiKey::new(principal.subject())
                .with_name(request.name)
                .with_scopes(request.scopes)
                .with_expires_in(Duration::from_secs(request.days.saturating_mul(86_400)))
                .with_created_by(principal.subject()),
        )
        .await
        .map_err(refusal)?;
    let record = issued.record();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": record.id,
            "key": issued.key().expose_secret(),
            "expires_at": record.expires_at,
        })),
    ))
}

/// The caller's keys: ids, names, scopes and times.
async fn list_keys(
    State(keys): State<ApiKeys>,
    principal: Principal,
) -> Result<Json<Value>, (StatusCode, String)> {
    let records = keys
        .list(Some(principal.subject()))
        .await
        .map_err(refusal)?;
    let listed: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "name": r.name, "scopes": r.scopes,
                "expires_at": r.expires_at, "revoked_at": r.revoked_at,
                "last_used_at": r.last_used_at,
            })
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// Revokes one of the caller's keys. This instance refuses it at once; others within their cache
/// TTL.
async fn revoke_key(
    State(keys): State<ApiKeys>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, (StatusCode, String)> {
    let record = keys.get(&id).await.map_err(refusal)?;
    if record.owner != principal.subject() {
        // Someone else's key: answer as if it did not exist.
        return Err(refusal(ApiKeyError::NotFound(id)));
    }
    keys.revoke(&id).await.map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn report(principal: Principal, Path(name): Path<String>) -> Json<Value> {
    Json(json!({
        "report": name,
        "for": principal.subject(),
        "key": principal.credential_id(),
    }))
}

fn refusal(error: ApiKeyError) -> (StatusCode, String) {
    let status = match error {
        ApiKeyError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiKeyError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, format!("{error}\n"))
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
