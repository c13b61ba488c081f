//! The server `benches/load.sh` loads: axum 0.7 on 127.0.0.1 with one tokio thread, one trivial
//! 200 handler per authentication scheme.
//!
//! | Route | Guarded by |
//! |-------|------------|
//! | `/none` | nothing: the baseline |
//! | `/api-key` | portcullis API keys over the in-memory store (`X-API-Key`) |
//! | `/basic` | portcullis Basic, argon2id at the default cost, verified cache on, lockout on |
//! | `/hs256`, `/rs256`, `/es256` | portcullis `JwtAuthenticator`, static keys |
//! | `/peer-rs256` | jwt-authorizer 0.15, RS256, keys fetched from this server's `/jwks.json` |
//!
//! Each portcullis route has a Gate of its own with one authenticator. No peer address reaches
//! the Gate (its axum support reads axum 0.8's `ConnectInfo`; this is axum 0.7), so no IP rule
//! runs: what is measured is the scheme.
//!
//! Usage: `load_server PORT CREDENTIALS.json`. It checks every route (200 with its credential,
//! 401 without or with a forged one), writes per route the header a client must send to
//! `CREDENTIALS.json`, one route per line, then prints `ready` and serves until killed.

use std::error::Error;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use jwt_authorizer::{IntoLayer as _, JwtAuthorizer, RegisteredClaims, Validation};
use portcullis::basic::encode_basic;
use portcullis::jwt::{JwtAuthenticator, KeySet, KeySource};
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{ApiKeys, BasicAuthenticator, Gate, GateLayer, NewApiKey};
use portcullis_peers::{
    AUDIENCE, BASIC_PASSWORD, BASIC_USER, ISSUER, JWKS_PATH, Signer, TYP, jwks, jwks_router, tamper,
};
use serde_json::json;

/// The HS256 secret of `/hs256` (32 bytes, the least RFC 7518 §3.2 allows).
const HS256_SECRET: &[u8] = b"a load-test HS256 secret, 32 B!!";

/// What a client sends to one route.
struct Credential {
    route: &'static str,
    /// Empty for `/none`.
    header: &'static str,
    value: String,
    /// A value of the right shape that must be refused; `None` where no cheap one exists.
    forged: Option<String>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(credentials_file), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: load_server PORT CREDENTIALS.json".into());
    };
    let port: u16 = port.parse()?;
    // One thread serves every connection, so req/s is what one core does. argon2 still runs on
    // tokio's blocking pool, but only for the first Basic request: the rest are cache hits.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(port, &credentials_file))
}

async fn run(port: u16, credentials_file: &str) -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (app, credentials) = app(&base).await?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    check(&base, &credentials).await?;
    let lines: Vec<String> = credentials
        .iter()
        .map(|c| json!({"route": c.route, "header": c.header, "value": c.value}).to_string())
        .collect();
    // One route per line, so the shell script can read it without a JSON parser.
    std::fs::write(
        credentials_file,
        format!("{{\"routes\": [\n{}\n]}}\n", lines.join(",\n")),
    )?;
    println!("ready");
    std::io::stdout().flush()?;
    server.await??;
    Ok(())
}

/// The router and each route's credential.
async fn app(base: &str) -> Result<(Router, Vec<Credential>), Box<dyn Error>> {
    let ok = || get(|| async { StatusCode::OK });
    let mut credentials = vec![Credential {
        route: "/none",
        header: "",
        value: String::new(),
        forged: None,
    }];

    let keys = ApiKeys::builder(
        Arc::new(MemoryApiKeyStore::new()),
        "a load-test pepper of at least thirty-two bytes".into(),
    )
    .build()?;
    let issued = keys
        .create(NewApiKey::new("loader").with_expires_in(Duration::from_secs(86_400)))
        .await?;
    let key = issued.key().expose_secret().to_owned();
    credentials.push(Credential {
        route: "/api-key",
        header: "X-API-Key",
        forged: Some(tamper_last(&key)),
        value: key,
    });
    let api_key_gate = Gate::builder()
        .authenticator(keys.authenticator())
        .build()?;

    let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
        .verified_cache(Duration::from_secs(300), 10_000)
        .build()?;
    basic
        .add_user(BASIC_USER, &BASIC_PASSWORD.into(), ["staff"])
        .await?;
    credentials.push(Credential {
        route: "/basic",
        header: "Authorization",
        value: encode_basic(BASIC_USER, BASIC_PASSWORD),
        // A wrong password would run argon2 and count towards lockout before the load starts.
        forged: None,
    });
    let basic_gate = Gate::builder().authenticator(basic).build()?;

    let hs256 = Signer::hs256("hs-1", HS256_SECRET);
    let rs256 = Signer::rs256("rsa-1");
    let es256 = Signer::es256("ec-1");
    let mut router = Router::new()
        .route("/none", ok())
        .route("/api-key", ok().layer(GateLayer::new(api_key_gate)))
        .route("/basic", ok().layer(GateLayer::new(basic_gate)));
    for (route, signer) in [("/hs256", &hs256), ("/rs256", &rs256), ("/es256", &es256)] {
        let keys = KeySet::from_jwks(&jwks([signer]).to_string())?;
        let jwt = JwtAuthenticator::builder()
            .issuer(ISSUER, KeySource::Static(keys))
            .audience(AUDIENCE)
            .require_typ(TYP)
            .build()?;
        let gate = Gate::builder().authenticator(jwt).build()?;
        router = router.route(route, ok().layer(GateLayer::new(gate)));
        credentials.push(bearer(route, signer));
    }

    // The peer fetches its keys from this server, on its first request (the readiness check).
    let peer = JwtAuthorizer::<RegisteredClaims>::from_jwks_url(&format!("{base}{JWKS_PATH}"))
        .validation(Validation::new().iss(&[ISSUER]).aud(&[AUDIENCE]))
        .build()
        .await?;
    router = router.route("/peer-rs256", ok().layer(peer.into_layer()));
    credentials.push(bearer("/peer-rs256", &rs256));

    Ok((router.merge(jwks_router(jwks([&rs256]))), credentials))
}

fn bearer(route: &'static str, signer: &Signer) -> Credential {
    let token = signer.token();
    Credential {
        route,
        header: "Authorization",
        value: format!("Bearer {token}"),
        forged: Some(format!("Bearer {}", tamper(&token))),
    }
}

/// `key` with its last character changed (the checksum or secret no longer matches).
fn tamper_last(key: &str) -> String {
    let mut forged = key.to_owned();
    let last = forged
        .pop()
        .map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    forged.push(last);
    forged
}

/// Every route answers 200 with its credential and 401 without it or with a forged one; a
/// route that does not would make the load test measure the wrong path.
async fn check(base: &str, credentials: &[Credential]) -> Result<(), Box<dyn Error>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    for credential in credentials {
        let url = format!("{base}{}", credential.route);
        let mut cases = vec![(Some(credential.value.as_str()), StatusCode::OK)];
        if !credential.header.is_empty() {
            cases.push((None, StatusCode::UNAUTHORIZED));
        }
        if let Some(forged) = &credential.forged {
            cases.push((Some(forged.as_str()), StatusCode::UNAUTHORIZED));
        }
        for (value, expected) in cases {
            let mut request = client.get(&url);
            if let Some(value) = value.filter(|_| !credential.header.is_empty()) {
                request = request.header(credential.header, value);
            }
            let status = request.send().await?.status();
            if status != expected {
                let sent = match value {
                    None => "no credential",
                    Some(v) if v == credential.value => "its credential",
                    Some(_) => "a forged credential",
                };
                return Err(format!(
                    "{} answered {status} with {sent}, expected {expected}",
                    credential.route
                )
                .into());
            }
        }
    }
    Ok(())
}
