//! actix-web 4: `cargo run --example actix --features actix`.
//!
//! The same app as `axum_basic`, with API keys as well: `GateMiddleware` wraps the app, handlers
//! take a `Principal` (authenticated routes) or an `Option<Principal>` (open routes), and a
//! refused request gets the same status, `WWW-Authenticate` challenges and problem body as with
//! the tower layer. To give one scope its own Gate, wrap the scope instead:
//! `web::scope("/admin").wrap(GateMiddleware::new(admin_gate))`.
//!
//! Passwords and a key are generated at start and printed once. Serves on `ADDR` (default
//! `127.0.0.1:3000`).

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, Responder, get, web};
use portcullis::actix::GateMiddleware;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{ApiKeys, BasicAuthenticator, Gate, Groups, NewApiKey, Principal, Public};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let basic = Arc::new(
        BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .realm("actix-example")
            .verified_cache(Duration::from_secs(60), 10_000)
            .build()?,
    );
    let ada_password = random_text(20);
    let bob_password = random_text(20);
    basic
        .add_user("ada", &ada_password.as_str().into(), ["staff", "admin"])
        .await?;
    basic
        .add_user("bob", &bob_password.as_str().into(), ["staff"])
        .await?;

    let keys =
        ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), random_text(48).into()).build()?;
    let key = keys
        .create(
            NewApiKey::application("nightly-export").with_expires_in(Duration::from_secs(86_400)),
        )
        .await?;

    let gate = Gate::builder()
        .shared_authenticator(basic)
        .authenticator(keys.authenticator())
        .route("/", Public)
        .route("/admin/**", Groups::any_of(["admin"]))
        .build()?; // every other route: any authenticated caller

    let listener = std::net::TcpListener::bind(&addr)?;
    let base = format!("http://{}", listener.local_addr()?);
    let key = key.key().expose_secret();
    println!("actix example listening on {base}");
    println!("curl -i {base}/                                    # 200: hello, stranger");
    println!("curl -i -u bob:{bob_password} {base}/me      # 200: bob's principal");
    println!("curl -i -H 'X-API-Key: {key}' {base}/me   # 200: the application's principal");
    println!(
        "curl -i {base}/me                                  # 401 with Basic and ApiKey challenges"
    );
    println!("curl -i -u ada:{ada_password} {base}/admin/stats   # 200: ada is an admin");
    println!("curl -i -u bob:{bob_password} {base}/admin/stats   # 403: bob is not");

    HttpServer::new(move || {
        App::new()
            // The Gate is cheap to clone: one `Arc`. Pass a `config::Reloader`'s handle to reload live.
            .wrap(GateMiddleware::new(gate.clone()))
            .service(home)
            .service(me)
            .service(admin_stats)
    })
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}

/// Anyone: the principal is there when the caller sent valid credentials.
#[get("/")]
async fn home(principal: Option<Principal>) -> impl Responder {
    match principal {
        Some(principal) => format!("hello, {}\n", principal.subject()),
        None => "hello, stranger\n".to_owned(),
    }
}

/// Authenticated callers only: the Gate refused everyone else before this runs.
#[get("/me")]
async fn me(principal: Principal) -> impl Responder {
    web::Json(principal)
}

/// Admins only, by the `/admin/**` rule.
#[get("/admin/stats")]
async fn admin_stats(principal: Principal) -> impl Responder {
    web::Json(json!({ "requested_by": principal.subject(), "users": 2 }))
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
