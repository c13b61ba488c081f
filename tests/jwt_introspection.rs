//! Opaque bearer tokens checked by an RFC 7662 introspection endpoint on 127.0.0.1: client
//! authentication, `active: false`, the cache (bounded, never past `exp`), outages, sharing
//! the `Authorization` header with JWTs and API keys, and the limits on what an attacker's tokens
//! can cost: token and answer sizes, cache capacities, requests in flight.
#![cfg(all(feature = "api-key", feature = "jwt", feature = "introspection"))]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use portcullis::config::Config;
use portcullis::jwt::{
    ClientAuth, IntrospectionAuthenticator, JwtAuthenticator, KeySet, KeySource, TokenErrorKind,
};
use portcullis::store::MemoryApiKeyStore;
use portcullis::{ApiKeys, Gate, NewApiKey, Scheme, SecretString, SubjectKind};
use serde_json::{Value, json};
use support::{TestKey, bearer, call, claims, client, jwks, now};

const CLIENT_ID: &str = "orders api";
const CLIENT_SECRET: &str = "s3cr3t:&=+";

#[derive(Default)]
struct Endpoint {
    answers: Mutex<HashMap<String, Value>>,
    calls: AtomicUsize,
    down: AtomicBool,
    /// `basic` or `post`: how the client must authenticate.
    method: Mutex<&'static str>,
    /// How long each answer takes, in milliseconds.
    delay_ms: AtomicU64,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// Counts a request in flight for as long as it lives (a dropped request included).
struct InFlight<'a>(&'a Endpoint);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn introspect(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    endpoint.calls.fetch_add(1, Ordering::SeqCst);
    let now = endpoint.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(&endpoint);
    endpoint.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = endpoint.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if endpoint.down.load(Ordering::SeqCst) {
        return Err(StatusCode::BAD_GATEWAY);
    }
    let authenticated = match *endpoint.method.lock().unwrap() {
        "post" => {
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        }
        _ => {
            // RFC 6749 §2.3.1: form-encoded, then joined, then base64.
            let expected = format!("{}:{}", "orders%20api", "s3cr3t%3A%26%3D%2B");
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(expected)
            );
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(value.as_str())
        }
    };
    if !authenticated {
        return Err(StatusCode::UNAUTHORIZED);
    }
    if form.get("token_type_hint").map(String::as_str) != Some("access_token") {
        return Err(StatusCode::BAD_REQUEST);
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = endpoint
        .answers
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    Ok(Json(answer))
}

impl Endpoint {
    /// Makes the endpoint answer `value` for `token`.
    fn answer(&self, token: impl ToString, value: Value) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.to_string(), value);
    }
}

async fn start(method: &'static str) -> (Arc<Endpoint>, String) {
    let endpoint = Arc::new(Endpoint::default());
    *endpoint.method.lock().unwrap() = method;
    let app = Router::new()
        .route("/introspect", post(introspect))
        .with_state(Arc::clone(&endpoint));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, url)
}

fn authenticator(url: &str, auth: ClientAuth) -> IntrospectionAuthenticator {
    IntrospectionAuthenticator::builder(url, auth)
        .audiences(["api"])
        .http_client(client())
        .build()
        .unwrap()
}

fn basic() -> ClientAuth {
    ClientAuth::basic(CLIENT_ID, SecretString::new(CLIENT_SECRET))
}

fn active(sub: &str, exp_in: i64) -> Value {
    json!({
        "active": true, "sub": sub, "client_id": "web", "scope": "orders:read orders:write",
        "groups": ["staff"], "iss": "https://as.example", "aud": "api",
        "iat": now(), "exp": now() + exp_in, "jti": "t-1",
    })
}

#[tokio::test]
async fn active_tokens_authenticate_and_are_cached() {
    let (endpoint, url) = start("basic").await;
    endpoint.answer("opaque-alice", active("alice", 300));
    let gate = Gate::builder()
        .authenticator(authenticator(&url, basic()))
        .build()
        .unwrap();
    for _ in 0..3 {
        let answer = bearer(&gate, "opaque-alice").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let p = answer.principal.unwrap();
        assert_eq!(
            (p.subject(), p.scheme(), p.kind()),
            ("alice", Scheme::INTROSPECTION, SubjectKind::User)
        );
        assert_eq!(p.scopes(), ["orders:read", "orders:write"]);
        assert_eq!(p.groups(), ["staff"]);
        assert_eq!(p.credential_id(), Some("t-1"));
    }
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_wrongly_typed_claim_refuses_the_token_and_a_broken_answer_is_an_outage() {
    let (endpoint, url) = start("basic").await;
    let mut typed = active("alice", 300);
    typed["sub"] = json!(["admin"]);
    let mut no_active = active("alice", 300);
    no_active["active"] = json!("true");
    for (token, answer) in [
        ("sub-array", typed),
        ("active-string", no_active),
        ("array", json!([{"active": true, "sub": "alice"}])),
    ] {
        endpoint.answer(token, answer);
    }
    let introspection = authenticator(&url, basic());
    let gate = gate_of(&introspection);
    let answer = bearer(&gate, "sub-array").await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.bearer_error().as_deref(), Some("invalid_token"));
    assert_eq!(
        introspection
            .introspect("sub-array")
            .await
            .unwrap_err()
            .kind(),
        TokenErrorKind::Malformed
    );
    // `active` must be a boolean and the answer an object: anything else is the endpoint
    // failing, not the caller.
    for token in ["active-string", "array"] {
        let answer = bearer(&gate, token).await;
        assert_eq!(answer.status, 503, "{token}: {answer:?}");
    }
}

#[tokio::test]
async fn inactive_and_unknown_tokens_are_refused() {
    let (endpoint, url) = start("basic").await;
    endpoint.answer("revoked", json!({"active": false, "sub": "x"}));
    let mut expired = active("bob", 300);
    expired["exp"] = json!(now() - 120);
    endpoint.answer("expired", expired);
    let jwt = authenticator(&url, basic());
    let gate = Gate::builder().authenticator(jwt.clone()).build().unwrap();
    for token in ["revoked", "never-issued"] {
        let answer = bearer(&gate, token).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.bearer_error().as_deref(), Some("invalid_token"));
        assert!(!answer.body.contains(token) && !answer.challenge.contains(token));
        assert_eq!(
            jwt.introspect(token).await.unwrap_err().kind(),
            TokenErrorKind::Inactive
        );
    }
    assert_eq!(
        jwt.introspect("expired").await.unwrap_err().kind(),
        TokenErrorKind::Expired
    );
    // A token with characters no bearer token has never reaches the endpoint.
    let calls = endpoint.calls.load(Ordering::SeqCst);
    assert_eq!(
        jwt.introspect("a\"b").await.unwrap_err().kind(),
        TokenErrorKind::Malformed
    );
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), calls);
}

#[tokio::test]
async fn a_cached_answer_never_outlives_the_token() {
    let (endpoint, url) = start("basic").await;
    endpoint.answer("short", active("carol", 2));
    let jwt = IntrospectionAuthenticator::builder(&url, basic())
        .audiences(["api"])
        .cache(Duration::from_secs(60), 100)
        .leeway(Duration::ZERO)
        .http_client(client())
        .build()
        .unwrap();
    assert!(jwt.introspect("short").await.is_ok());
    assert!(jwt.introspect("short").await.is_ok());
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
    // The provider would still say active (it is lying); the cache must not be the one to say so.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = jwt.introspect("short").await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Expired);
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn client_authentication_basic_and_post() {
    let (endpoint, url) = start("post").await;
    endpoint.answer("t", active("dave", 300));
    let post = authenticator(
        &url,
        ClientAuth::post(CLIENT_ID, SecretString::new(CLIENT_SECRET)),
    );
    assert!(post.introspect("t").await.is_ok());
    // Wrong credentials: the endpoint refuses us, which is our outage (503), not the caller's.
    let wrong = authenticator(&url, ClientAuth::post(CLIENT_ID, SecretString::new("nope")));
    let gate = Gate::builder().authenticator(wrong).build().unwrap();
    assert_eq!(bearer(&gate, "t").await.status, 503);
    *endpoint.method.lock().unwrap() = "basic";
    assert!(authenticator(&url, basic()).introspect("t").await.is_ok());
    // The secret never shows in Debug.
    assert!(!format!("{:?}", authenticator(&url, basic())).contains("s3cr3t"));
}

#[tokio::test]
async fn an_endpoint_outage_is_503() {
    let (endpoint, url) = start("basic").await;
    endpoint.down.store(true, Ordering::SeqCst);
    let gate = Gate::builder()
        .authenticator(authenticator(&url, basic()))
        .build()
        .unwrap();
    let answer = bearer(&gate, "whatever").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.retry_after.is_some());
    // Nothing listening at all.
    let gone = authenticator("http://127.0.0.1:9/introspect", basic());
    assert_eq!(
        gone.introspect("x").await.unwrap_err().kind(),
        TokenErrorKind::Unavailable
    );
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let (endpoint, url) = start("basic").await;
    endpoint.answer("t", active("erin", 300));
    let strict = |issuer: &str, audience: &str| {
        IntrospectionAuthenticator::builder(&url, basic())
            .issuer(issuer)
            .audiences([audience])
            .http_client(client())
            .build()
            .unwrap()
    };
    assert!(
        strict("https://as.example", "api")
            .introspect("t")
            .await
            .is_ok()
    );
    let err = strict("https://other.example", "api")
        .introspect("t")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::InvalidIssuer);
    let err = strict("https://as.example", "billing")
        .introspect("t")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::InvalidAudience);
}

/// Issue #16 item 1: `active: true` is not enough. The review's PoC (a refresh token issued to
/// another resource server, with `admin`) and its variations are 401 `invalid_token`.
#[tokio::test]
async fn tokens_for_other_services_and_refresh_tokens_are_refused() {
    let (endpoint, url) = start("basic").await;
    let with = |changes: Value| {
        let mut answer = active("mallory", 300);
        for (name, value) in changes.as_object().unwrap() {
            answer[name] = value.clone();
        }
        answer
    };
    endpoint.answer(
        "poc",
        json!({"active": true, "aud": "billing-api", "token_type": "refresh_token", "scope": "admin"}),
    );
    endpoint.answer("refresh", with(json!({"token_type": "refresh_token"})));
    endpoint.answer("dpop", with(json!({"token_type": "DPoP"})));
    endpoint.answer("typed", with(json!({"token_type": 7})));
    endpoint.answer(
        "billing",
        with(json!({"aud": "billing-api", "token_type": "Bearer"})),
    );
    endpoint.answer("no-aud", with(json!({"aud": null})));
    endpoint.answer("no-iss", with(json!({"iss": null})));
    endpoint.answer("bearer", with(json!({"token_type": "bearer"})));
    endpoint.answer("BEARER", with(json!({"token_type": "BEARER"})));
    let introspection = IntrospectionAuthenticator::builder(&url, basic())
        .issuer("https://as.example")
        .audiences(["api"])
        .http_client(client())
        .build()
        .unwrap();
    let gate = gate_of(&introspection);
    for (token, kind) in [
        ("poc", TokenErrorKind::InvalidTokenType),
        ("refresh", TokenErrorKind::InvalidTokenType),
        ("dpop", TokenErrorKind::InvalidTokenType),
        ("typed", TokenErrorKind::Malformed),
        ("billing", TokenErrorKind::InvalidAudience),
        ("no-aud", TokenErrorKind::InvalidAudience),
        ("no-iss", TokenErrorKind::InvalidIssuer),
    ] {
        let answer = bearer(&gate, token).await;
        assert_invalid_token(&answer);
        assert!(answer.principal.is_none(), "{token}");
        assert_eq!(
            introspection.introspect(token).await.unwrap_err().kind(),
            kind,
            "{token}"
        );
    }
    // `token_type` is compared case-insensitively, and may be absent (RFC 7662: optional).
    endpoint.answer("opaque", active("mallory", 300));
    for token in ["bearer", "BEARER", "opaque"] {
        assert_eq!(bearer(&gate, token).await.status, 200, "{token}");
    }

    // Audiences are required; the old behaviour only under its dangerous name, where a token
    // for another service passes, but a refresh token still does not.
    let err = IntrospectionAuthenticator::builder(&url, basic())
        .http_client(client())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("audiences"));
    let anything = IntrospectionAuthenticator::builder(&url, basic())
        .dangerous_skip_audience_check()
        .http_client(client())
        .build()
        .unwrap();
    assert!(anything.introspect("billing").await.is_ok());
    assert_eq!(
        anything.introspect("poc").await.unwrap_err().kind(),
        TokenErrorKind::InvalidTokenType
    );
}

/// The same rules from an `[introspection]` section: an audience is required unless skipped.
#[tokio::test]
async fn an_introspection_section_needs_an_audience() {
    let (_endpoint, url) = start("basic").await;
    let section = |extra: &str| {
        Config::from_str(&format!(
            "[introspection]\nendpoint = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_file = \"s\"\n{extra}"
        ))
    };
    let error = section("").unwrap_err();
    assert_eq!(error.key(), Some("introspection.audiences"), "{error}");
    assert_eq!(error.location().map(|l| l.line), Some(1), "{error}");
    assert!(section("dangerous_skip_audience_check = true").is_ok());
    assert!(section("audiences = [\"api\"]\nissuer = \"https://as.example\"").is_ok());
}

#[tokio::test]
async fn jwts_opaque_tokens_and_api_keys_share_the_header() {
    let (endpoint, url) = start("basic").await;
    endpoint.answer("opaque-frank", active("frank", 300));
    let key = TestKey::es256("k");
    let jwt = JwtAuthenticator::builder()
        .issuer(
            "https://as.example",
            KeySource::Static(KeySet::from_jwks(&jwks(&[&key])).unwrap()),
        )
        .audience("api")
        .build()
        .unwrap();
    let keys = ApiKeys::builder(
        Arc::new(MemoryApiKeyStore::new()),
        "integration-test pepper, at least thirty-two bytes".into(),
    )
    .build()
    .unwrap();
    let issued = keys
        .create(NewApiKey::new("grace").with_expires_in(Duration::from_secs(3600)))
        .await
        .unwrap();
    let gate = Gate::builder()
        .authenticator(jwt)
        .authenticator(authenticator(&url, basic()))
        .authenticator(keys.authenticator())
        .build()
        .unwrap();
    let p = bearer(&gate, &key.token(&claims("https://as.example")))
        .await
        .principal
        .unwrap();
    assert_eq!((p.subject(), p.scheme()), ("alice", Scheme::JWT));
    let p = bearer(&gate, "opaque-frank").await.principal.unwrap();
    assert_eq!((p.subject(), p.scheme()), ("frank", Scheme::INTROSPECTION));
    let p = bearer(&gate, issued.key().expose_secret())
        .await
        .principal
        .unwrap();
    assert_eq!((p.subject(), p.scheme()), ("grace", Scheme::API_KEY));
    // An API key is never sent to the introspection endpoint.
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
    // One token in the header and one in the query: 400 invalid_request.
    let answer = call(
        &gate,
        "/orders?access_token=opaque-frank",
        &[("authorization", "Bearer opaque-frank")],
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.bearer_error().as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn a_configuration_section_builds_an_introspection_authenticator() {
    let (endpoint, url) = start("post").await;
    endpoint.answer("t", active("heidi", 300));
    let dir = std::env::temp_dir().join(format!("portcullis-introspection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), format!("{CLIENT_SECRET}\n")).unwrap();
    let text = |endpoint: &str| {
        format!(
            r#"
            [gate]
            default_policy = "authenticated"
            [introspection]
            endpoint = "{endpoint}"
            client_id = "{CLIENT_ID}"
            client_secret_file = "{}"
            auth_method = "client_secret_post"
            audiences = ["api"]
            cache_ttl = "10s"
            groups_claims = ["groups"]
            "#,
            dir.join("secret").display()
        )
    };
    let gate = Config::from_str(&text(&url))
        .unwrap()
        .with_http_client(client())
        .build()
        .await
        .unwrap();
    let principal = bearer(&gate, "t").await.principal.unwrap();
    assert_eq!(principal.subject(), "heidi");
    let error = Config::from_str(&text("http://as.example/introspect")).unwrap_err();
    assert_eq!(error.key(), Some("introspection.endpoint"), "{error}");
    assert_eq!(error.location().map(|l| l.line), Some(5), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------------------------
// Limits: what each token an attacker makes up can cost

/// A Gate with `introspection` as its only authenticator.
fn gate_of(introspection: &IntrospectionAuthenticator) -> Gate {
    Gate::builder()
        .authenticator(introspection.clone())
        .build()
        .unwrap()
}

fn calls(endpoint: &Endpoint) -> usize {
    endpoint.calls.load(Ordering::SeqCst)
}

/// A 401 for a bad token: `Bearer` challenge with the realm and `error="invalid_token"`.
fn assert_invalid_token(answer: &support::Answer) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(
        answer.challenge.starts_with("Bearer realm=\"api\""),
        "{answer:?}"
    );
    assert_eq!(answer.bearer_error().as_deref(), Some("invalid_token"));
}

/// A 503 for an outage: `Retry-After`, and no challenge (the token is not at fault).
fn assert_outage(answer: &support::Answer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.retry_after.is_some(), "{answer:?}");
    assert!(answer.challenge.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn a_token_over_the_size_limit_is_refused_without_a_call() {
    let (endpoint, url) = start("basic").await;
    let at_limit = "a".repeat(64);
    let over = "a".repeat(65);
    for token in [&at_limit, &over] {
        endpoint.answer(token, active("ivan", 300));
    }
    let introspection = IntrospectionAuthenticator::builder(&url, basic())
        .audiences(["api"])
        .max_token_size(64)
        .http_client(client())
        .build()
        .unwrap();
    let gate = gate_of(&introspection);
    assert_invalid_token(&bearer(&gate, &over).await);
    assert_eq!(
        introspection.introspect(&over).await.unwrap_err().kind(),
        TokenErrorKind::TooLarge
    );
    assert_eq!(calls(&endpoint), 0, "an oversized token is never sent");
    assert_eq!(bearer(&gate, &at_limit).await.status, 200);
    assert_eq!(calls(&endpoint), 1);
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_an_outage() {
    let (endpoint, url) = start("basic").await;
    let mut padded = active("judy", 300);
    padded["padding"] = json!("x".repeat(2048));
    endpoint.answer("padded", padded);
    let small = IntrospectionAuthenticator::builder(&url, basic())
        .audiences(["api"])
        .max_response_size(1024)
        .http_client(client())
        .build()
        .unwrap();
    let gate = Gate::builder().authenticator(small).build().unwrap();
    assert_outage(&bearer(&gate, "padded").await);
    // The same answer under the default limit (64 KiB) is read.
    let roomy = Gate::builder()
        .authenticator(authenticator(&url, basic()))
        .build()
        .unwrap();
    assert_eq!(bearer(&roomy, "padded").await.status, 200);
}

#[tokio::test]
async fn the_cache_holds_at_most_its_capacity() {
    let (endpoint, url) = start("basic").await;
    let tokens: Vec<String> = (0..5).map(|i| format!("opaque-{i}")).collect();
    for token in &tokens {
        endpoint.answer(token, active("kim", 300));
    }
    let introspection = IntrospectionAuthenticator::builder(&url, basic())
        .audiences(["api"])
        .cache(Duration::from_secs(60), 3)
        .http_client(client())
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(introspection)
        .build()
        .unwrap();
    for token in &tokens {
        assert_eq!(bearer(&gate, token).await.status, 200);
    }
    assert_eq!(calls(&endpoint), 5);
    // The newest three are answered from the cache...
    for token in &tokens[2..] {
        assert_eq!(bearer(&gate, token).await.status, 200);
    }
    assert_eq!(calls(&endpoint), 5);
    // ...and the two oldest were evicted: asked again.
    for token in &tokens[..2] {
        assert_eq!(bearer(&gate, token).await.status, 200);
    }
    assert_eq!(calls(&endpoint), 7);
}

#[tokio::test]
async fn inactive_answers_are_cached_apart_and_cannot_evict_active_ones() {
    let (endpoint, url) = start("basic").await;
    endpoint.answer("opaque-liz", active("liz", 300));
    let introspection = IntrospectionAuthenticator::builder(&url, basic())
        .audiences(["api"])
        .cache(Duration::from_secs(60), 2)
        .inactive_cache_capacity(3)
        .http_client(client())
        .build()
        .unwrap();
    let gate = gate_of(&introspection);
    assert_eq!(bearer(&gate, "opaque-liz").await.status, 200);
    // 100 made-up tokens: each asked once and refused.
    let made_up: Vec<String> = (0..100).map(|i| format!("made-up-{i}")).collect();
    for token in &made_up {
        assert_invalid_token(&bearer(&gate, token).await);
    }
    assert_eq!(calls(&endpoint), 101);
    // The newest three are refused from the cache, still as inactive tokens...
    for token in &made_up[97..] {
        assert_invalid_token(&bearer(&gate, token).await);
        assert_eq!(
            introspection.introspect(token).await.unwrap_err().kind(),
            TokenErrorKind::Inactive
        );
    }
    assert_eq!(calls(&endpoint), 101);
    // ...an older one was evicted: asked again...
    assert_invalid_token(&bearer(&gate, &made_up[0]).await);
    assert_eq!(calls(&endpoint), 102);
    // ...and the flood did not push the active token out of its cache.
    assert_eq!(bearer(&gate, "opaque-liz").await.status, 200);
    assert_eq!(calls(&endpoint), 102);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_bounded_and_the_excess_is_refused_with_503() {
    let (endpoint, url) = start("basic").await;
    endpoint.delay_ms.store(400, Ordering::SeqCst);
    let max_wait = Duration::from_millis(100);
    let introspection = IntrospectionAuthenticator::builder(&url, basic())
        .audiences(["api"])
        .max_concurrent(2)
        .max_wait(max_wait)
        .http_client(client())
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(introspection)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let gate = gate.clone();
        tasks.spawn(async move {
            let answer = bearer(&gate, &format!("flood-{i}")).await;
            (answer, started.elapsed())
        });
    }
    let mut refused = 0;
    let mut asked = 0;
    while let Some(result) = tasks.join_next().await {
        let (answer, after) = result.unwrap();
        if answer.status == 503 {
            assert_outage(&answer);
            // Refused after waiting `max_wait`, not after the endpoint's 400 ms.
            assert!(after < Duration::from_millis(390), "503 after {after:?}");
            refused += 1;
        } else {
            assert_invalid_token(&answer);
            asked += 1;
        }
    }
    assert_eq!((asked, refused), (2, 18));
    assert_eq!(endpoint.peak_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(calls(&endpoint), 2);
    // The slots are free again.
    endpoint.delay_ms.store(0, Ordering::SeqCst);
    assert_invalid_token(&bearer(&gate, "after-the-flood").await);
}

#[test]
fn max_concurrent_must_be_positive() {
    let err = IntrospectionAuthenticator::builder("http://127.0.0.1:9/introspect", basic())
        .audiences(["api"])
        .max_concurrent(0)
        .http_client(client())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("max_concurrent"));
}
