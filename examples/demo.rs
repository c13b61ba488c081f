//! A small protected API: `cargo run --example demo`.
//!
//! Serves on `PORTCULLIS_DEMO_ADDR` (default `127.0.0.1:8080`) with a public route, a route for
//! any authenticated caller and an admin route. Users and API keys live in a SQLite file under
//! `PORTCULLIS_DEMO_DIR` (default `target/portcullis-demo`), created with its configuration file
//! on the first run. Each start sets fresh passwords, a fresh API key and a short-lived JWT, and
//! prints `curl` commands that use them. Edit the configuration and send `SIGHUP` to reload it live.
//!
//! `/api/**` takes API keys only: in `X-API-Key`, as a bearer token, or as the Basic password
//! (`curl -u demo:<key>`, as Jira and GitHub users send personal tokens); a password gets 403.
//!
//! `/metrics` (Prometheus text) and `/healthz` (200 when `Gate::readiness` is ready, else 503 with
//! the report as JSON) answer callers on this host only: an IP rule in the configuration. Behind
//! a proxy on the same host every peer is loopback, so set `[gate] trusted_proxies` there, or
//! serve them on a listener of their own (docs/operations.md).

use std::error::Error;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusBuilder;
use portcullis::config::{Config, Reloader};
use portcullis::jwt::{JwtIssuer, SigningKey};
use portcullis::self_service::SelfService;
use portcullis::{
    ApiKeys, BasicAuthenticator, Gate, GateHandle, GateLayer, NewApiKey, Principal, Scheme,
    SecretString, SubjectKind,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

/// The configuration written on the first run; `{DIR}` is replaced by the demo's directory.
const CONFIG: &str = r#"# The demo's configuration: edit it and send SIGHUP to the demo to reload.
[store]
url = "sqlite://{DIR}/demo.db"

[basic]
realm = "portcullis-demo"
# `curl -u demo:<API key>`: a key sent as the password is checked as that key (Jira style).
accept_api_keys = true
[basic.cache]
ttl = "60s"

[api_keys]
pepper_file = "pepper.txt"
max_lifetime = "90d"

# Personal API tokens at /tokens: demo creates and revokes their own (docs/self-service.md).
[self_service]
max_lifetime = "90d"
default_lifetime = "30d"
max_tokens_per_user = 10
scope_allowlist = ["read"]

[jwt]
audiences = ["portcullis-demo"]

[[jwt.issuers]]
issuer = "portcullis-demo"
secret_file = "jwt-hs256.key"
algorithm = "HS256"
# Plain bearer tokens here; DPoP-bound ones need [gate] public_origin (docs/security.md).
dpop = "disabled"

[policies.admins]
groups_any = ["admin"]

# The REST API: API keys however sent, never a password.
[policies.tokens]
schemes_deny = ["basic"]

# Metrics and readiness for this host only. Behind a proxy on this host every peer is loopback:
# set [gate] trusted_proxies then, or serve them on another listener (docs/operations.md).
[policies.loopback]
ip_allow = ["127.0.0.0/8", "::1"]

[[routes]]
path = "/health"
policy = "public"

[[routes]]
path = "/metrics"
policy = "loopback"

[[routes]]
path = "/healthz"
policy = "loopback"

[[routes]]
path = "/admin/**"
policy = "admins"

[[routes]]
path = "/api/**"
policy = "tokens"
"#;

/// Fresh credentials at every start: the store keeps only hashes, so old ones can't be shown.
/// The passwords of `demo` and `admin`, and a new API key of `demo`'s (its older keys revoked).
async fn fresh_credentials(
    basic: &BasicAuthenticator,
    keys: &ApiKeys,
) -> Result<(String, String, SecretString), Box<dyn Error>> {
    let demo_password = random_password();
    let admin_password = random_password();
    for (user, password, groups) in [
        ("demo", &demo_password, vec!["users"]),
        ("admin", &admin_password, vec!["users", "admin"]),
    ] {
        let secret = SecretString::new(password.as_str());
        if basic.store().find_user(user).await?.is_none() {
            basic.add_user(user, &secret, groups).await?;
        } else {
            let hash = basic.hashing_pool().hash(&secret).await?;
            basic.store().set_password_hash(user, hash).await?;
        }
    }
    for old in keys.list(Some("demo")).await? {
        if old.revoked_at.is_none() {
            keys.revoke(&old.id).await?;
        }
    }
    let issued = keys
        .create(
            NewApiKey::new("demo")
                .with_name("demo key")
                .with_scopes(["read"])
                .with_expires_in(Duration::from_secs(30 * 86_400)),
        )
        .await?;
    Ok((demo_password, admin_password, issued.key().clone()))
}

/// The token API: `[self_service]` (a configuration written by an older demo has none: the
/// defaults then), and the id of a token demo made earlier (their older ones were revoked at
/// start), for the revoke line.
async fn self_service(
    configured: Option<SelfService>,
    keys: &ApiKeys,
) -> Result<(SelfService, String), Box<dyn Error>> {
    let tokens = match configured {
        Some(tokens) => tokens,
        None => SelfService::builder(keys.clone()).build()?,
    };
    let old_token = keys
        .create_self_served(
            NewApiKey::new("demo")
                .with_name("old laptop")
                .with_expires_in(Duration::from_secs(7 * 86_400)),
            tokens.max_tokens_per_user(),
        )
        .await?;
    Ok((tokens, old_token.id().to_owned()))
}

/// demo lists their tokens, creates one at the cap, is refused one over it, revokes one.
fn print_token_lines(base: &str, demo_password: &str, tokens: &SelfService, old_token: &str) {
    let cap = tokens.max_lifetime().as_secs() / 86_400;
    println!(
        "curl -i -u demo:{demo_password} {base}/tokens   # 200 OK: demo's own API tokens, never their secrets"
    );
    println!(
        "curl -i -u demo:{demo_password} -H 'Content-Type: application/json' -d '{{\"name\":\"laptop\",\"expires_in\":\"{cap}d\",\"scopes\":[\"read\"]}}' {base}/tokens   # 201 Created: a token, shown once; {cap}d is the cap"
    );
    println!(
        "curl -i -u demo:{demo_password} -H 'Content-Type: application/json' -d '{{\"name\":\"forever\",\"expires_in\":\"{}d\"}}' {base}/tokens   # 422 Unprocessable Entity: over the cap",
        cap + 1
    );
    println!(
        "curl -i -u demo:{demo_password} -X DELETE {base}/tokens/{old_token}   # 204 No Content: token revoked"
    );
}

/// The same token with the first signature character changed.
fn tampered(token: &str) -> String {
    let signature_at = token.rfind('.').map_or(0, |dot| dot + 1);
    let flipped = if token[signature_at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    format!(
        "{}{flipped}{}",
        &token[..signature_at],
        &token[signature_at + 1..]
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,portcullis::audit=info".into()),
        )
        .init();
    // Before the Gate is built, so that the handles portcullis registers reach this recorder.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let addr: SocketAddr = std::env::var("PORTCULLIS_DEMO_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()?;
    let dir = std::env::var("PORTCULLIS_DEMO_DIR")
        .unwrap_or_else(|_| "target/portcullis-demo".to_owned());
    let config_file = first_run_files(Path::new(&dir))?;

    let services = Config::from_file(&config_file)?.build_services().await?;
    let basic = services
        .basic
        .ok_or("the demo config has a [basic] section")?;
    let keys = services
        .api_keys
        .ok_or("the demo config has an [api_keys] section")?;

    let (demo_password, admin_password, api_key) = fresh_credentials(&basic, &keys).await?;
    let api_key = api_key.expose_secret();
    let (tokens, old_token) = self_service(services.self_service, &keys).await?;

    // Short-lived bearer tokens, as a service would hand out after a Basic or API-key login.
    let jwt_secret = std::fs::read(Path::new(&dir).join("jwt-hs256.key"))?;
    let issuer = JwtIssuer::builder("portcullis-demo", SigningKey::hs256(&jwt_secret)?)
        .audience("portcullis-demo")
        .build()?;
    let demo_user = Principal::new("demo", SubjectKind::User, Scheme::JWT).with_groups(["users"]);
    let token = issuer.issue(&demo_user, Duration::from_secs(3600))?;
    let token = token.expose_secret();
    let tampered = tampered(token);

    let reloader = Reloader::for_handle(GateHandle::new(services.gate)).with_file(&config_file);
    let handle = reloader.handle();
    reload_on_sighup(reloader);

    let readiness = handle.clone();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let gate = readiness.gate();
                async move { healthz(gate).await }
            }),
        )
        .route("/me", get(me))
        .route("/admin/stats", get(admin_stats))
        .route("/api/reports", get(me))
        .nest("/tokens", tokens.router())
        .layer(GateLayer::new(handle));

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("portcullis demo listening on {base} (data in {dir})");
    println!("Try these (each line ends with the status it gets):");
    println!("curl -i {base}/health   # 200 OK: public");
    println!("curl -i -u demo:{demo_password} {base}/me   # 200 OK: your principal as JSON");
    println!("curl -i -H 'X-API-Key: {api_key}' {base}/me   # 200 OK: the same user, by API key");
    println!(
        "curl -i -H 'Authorization: Bearer {api_key}' {base}/me   # 200 OK: the key as a bearer token"
    );
    println!("curl -i -H 'Authorization: Bearer {token}' {base}/me   # 200 OK: a JWT, valid 1h");
    println!(
        "curl -i -u demo:{api_key} {base}/api/reports   # 200 OK: the key as the Basic password"
    );
    println!(
        "curl -i -u demo:{demo_password} {base}/api/reports   # 403 Forbidden: /api/** takes no passwords"
    );
    print_token_lines(&base, &demo_password, &tokens, &old_token);
    println!("curl -i -u admin:{admin_password} {base}/admin/stats   # 200 OK: admin only");
    println!("curl -i -u demo:{demo_password} {base}/admin/stats   # 403 Forbidden: not an admin");
    println!("curl -i -u demo:wrong-password {base}/me   # 401 Unauthorized: bad password");
    println!("curl -i -H 'X-API-Key: pc_notakey' {base}/me   # 401 Unauthorized: bad key");
    println!(
        "curl -i -H 'Authorization: Bearer {tampered}' {base}/me   # 401 Unauthorized: tampered JWT"
    );
    println!("curl -i {base}/me   # 401 Unauthorized: no credentials");
    println!(
        "curl -i {base}/healthz   # 200 OK: ready (else 503 and why, as JSON); from this host only"
    );
    println!(
        "curl -i {base}/metrics   # 200 OK: Prometheus metrics of the requests above; from this host only"
    );
    // Alphanumeric passwords need no escaping in a URL's user info.
    let page = base.replacen("http://", &format!("http://demo:{demo_password}@"), 1);
    println!("Open {page}/tokens/ui in a browser: demo's tokens as a page (create, copy, revoke).");
    println!(
        "Edit {config_file} and run `kill -HUP {}` to reload it.",
        std::process::id()
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// 200 when the Gate can decide requests (keys loaded, stores answering), else 503; the
/// readiness report as JSON either way.
async fn healthz(gate: Arc<Gate>) -> impl IntoResponse {
    let report = gate.readiness().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        report.to_json(),
    )
}

async fn me(principal: Principal) -> Json<Principal> {
    Json(principal)
}

async fn admin_stats(principal: Principal) -> Json<Value> {
    Json(json!({ "admin": principal.subject(), "users": 2 }))
}

/// Creates the directory, a random pepper and HMAC key (mode 0600) and the configuration file if
/// they are missing.
fn first_run_files(dir: &Path) -> Result<String, Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    for secret in ["pepper.txt", "jwt-hs256.key"] {
        let path = dir.join(secret);
        if !path.exists() {
            // Readable by this user only: portcullis warns about secret files others can read.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path)?;
            std::io::Write::write_all(
                &mut file,
                (random_password() + &random_password()).as_bytes(),
            )?;
        }
    }
    let config = dir.join("portcullis-demo.toml");
    if !config.exists() {
        std::fs::write(&config, CONFIG.replace("{DIR}", &dir.display().to_string()))?;
    }
    Ok(config.display().to_string())
}

#[cfg(unix)]
fn reload_on_sighup(reloader: Reloader) {
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            match reloader.reload().await {
                Ok(()) => println!("configuration reloaded"),
                Err(err) => println!("reload failed, keeping the old configuration: {err}"),
            }
        }
    });
}

#[cfg(not(unix))]
fn reload_on_sighup(_: Reloader) {}

fn random_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}
