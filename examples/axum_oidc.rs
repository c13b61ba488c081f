//! OAuth2 / OpenID Connect access tokens with axum, against any provider's discovery document:
//! `cargo run --example axum_oidc --features jwks`.
//!
//! ```text
//! OIDC_ISSUER=https://sso.example.com/realms/main \
//! OIDC_AUDIENCE=orders-api \
//! cargo run --example axum_oidc --features jwks
//! ```
//!
//! - `OIDC_ISSUER`: the issuer URL, exactly as the provider writes it in its tokens' `iss` (the
//!   keys are found through `<issuer>/.well-known/openid-configuration`, whose `issuer` must be
//!   the same string). Keycloak: `https://HOST/realms/REALM`; Auth0: `https://TENANT.auth0.com/`
//!   (with the slash); Google: `https://accounts.google.com`; Entra ID:
//!   `https://login.microsoftonline.com/TENANT/v2.0`.
//! - `OIDC_AUDIENCE`: the `aud` this API's tokens carry (the API's identifier or client id).
//! - `OIDC_GROUPS_CLAIM` (optional): where the groups are, as a dotted path, e.g.
//!   `realm_access.roles` for Keycloak. Defaults to `groups`.
//! - `ADDR` (optional): defaults to `127.0.0.1:3000`.
//!
//! The keys are fetched on the first request and cached; a token with a `kid` the cache does
//! not know refreshes them (rate-limited), and while the provider cannot be reached the last good
//! keys keep serving. Before any key was ever loaded, requests get 503, not 401.
//!
//! Routes: `GET /` for anyone, `GET /me` for any valid token, `GET /orders` for tokens with the
//! `orders:read` scope (else 403 with `error="insufficient_scope"`).

use std::error::Error;
use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use portcullis::jwt::{ClaimMapping, JwtAuthenticator, KeySource};
use portcullis::{Gate, GateLayer, Principal, Public, Scopes};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis=info".into()),
        )
        .init();
    let issuer = required_env("OIDC_ISSUER")?;
    let audience = required_env("OIDC_AUDIENCE")?;
    let groups_claim = std::env::var("OIDC_GROUPS_CLAIM").unwrap_or_else(|_| "groups".to_owned());
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;

    // With the `jwks` feature the authenticator fetches discovery and JWKS documents with its own
    // HTTPS client; `.http_client(...)` brings another.
    let jwt = JwtAuthenticator::builder()
        .issuer(issuer.as_str(), KeySource::discovery())
        .audience(audience.as_str())
        .claims(ClaimMapping::new().groups_claim(groups_claim.as_str()))
        .realm("axum-oidc")
        .build()?;
    // Fetch the keys now: a wrong issuer URL shows at start, not on the first request.
    if let Err(err) = jwt.refresh_keys().await {
        eprintln!(
            "warning: cannot load {issuer}'s keys yet ({err}); requests get 503 until it works"
        );
    }

    let gate = Gate::builder()
        .authenticator(jwt)
        .route("/", Public)
        .route("/orders/**", Scopes::all_of(["orders:read"]))
        .build()?; // `/me` and every other route: any valid token

    let app = Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/orders", get(orders))
        .layer(GateLayer::new(gate));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("axum_oidc listening on {base}, trusting {issuer} for audience {audience}");
    println!("Get an access token from your provider, then:");
    println!(
        "curl -i -H \"Authorization: Bearer $TOKEN\" {base}/me       # 200: the token's principal"
    );
    println!(
        "curl -i -H \"Authorization: Bearer $TOKEN\" {base}/orders   # 200 with scope orders:read, else 403"
    );
    println!(
        "curl -i {base}/me                                          # 401 with a Bearer challenge"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

async fn home(principal: Option<Principal>) -> String {
    match principal {
        Some(principal) => format!("hello, {}\n", principal.subject()),
        None => "hello, stranger: send a bearer token\n".to_owned(),
    }
}

/// The principal, and the token's verified claims (they are only there for JWTs).
async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "principal": principal,
        "claims": principal.claims(),
    }))
}

async fn orders(principal: Principal) -> Json<Value> {
    Json(json!({ "orders": [], "for": principal.subject() }))
}

fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the example's documentation)"))
}
