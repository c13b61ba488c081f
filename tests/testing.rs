//! The test kit (`portcullis::testing`, feature `test-util`): each helper, and each way a test
//! built with it must still be refused (a wrong audience, an expired token, a guard that says
//! no, a wrong password).

#[path = "common/logs.rs"]
#[allow(dead_code, reason = "shared with other test files, each using a part")]
mod logs;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::FromRequest as _;
use actix_web::test as actix_test;
use axum::Router;
use axum::routing::get;
use http_body_util::BodyExt;
use portcullis::actix::GateMiddleware;
use portcullis::client_ip::IpSet;
use portcullis::extract::{Claims, Guard};
use portcullis::policy::IpRanges;
use portcullis::reject::Refusal;
use portcullis::store::UserStore;
use portcullis::testing::{
    self, Credentials, INSECURE_FAST_HASHING, JwksServer, Seed, ServerMode, TestIssuer,
};
use portcullis::{
    Gate, GateLayer, Groups, NewApiKey, Principal, Public, RequestView, Scheme, Scopes, SubjectKind,
};
use serde_json::json;
use tower::ServiceExt;

const ISS: &str = "https://idp.test";
const AUD: &str = "orders-api";

fn alice() -> Principal {
    Principal::new("alice", SubjectKind::User, Scheme::BASIC).with_groups(["staff"])
}

/// Status, `WWW-Authenticate` values and body of a request through `app`.
async fn call(app: &Router, request: http::Request<String>) -> (u16, Vec<String>, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        challenges,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// What a Gate with `authenticator` says to `Authorization: Bearer token` on `/orders`.
async fn check_bearer(gate: &Gate, token: &str) -> Result<Option<Principal>, u16> {
    let request = http::Request::get("/orders")
        .bearer(token)
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    gate.check(&RequestView::from_parts(&parts))
        .await
        .map_err(|rejection| gate.respond(&rejection).status().as_u16())
}

fn jwt_gate(issuer: &TestIssuer) -> Gate {
    Gate::builder()
        .authenticator(issuer.authenticator().unwrap())
        .build()
        .unwrap()
}

// --- TestIssuer -------------------------------------------------------------------------------

#[tokio::test]
async fn a_kit_token_with_custom_claims_is_accepted_by_a_real_authenticator() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let gate = jwt_gate(&issuer);
    let token = issuer
        .token("alice")
        .scope("orders:read orders:write")
        .groups(["staff"])
        .claim("tenant", json!({ "id": "acme", "tier": 2 }))
        .sign();
    let principal = check_bearer(&gate, &token).await.unwrap().unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.scheme(), Scheme::JWT);
    assert!(principal.has_scope("orders:write"));
    assert!(principal.in_group("staff"));
    assert_eq!(principal.claims().unwrap()["tenant"]["id"], "acme");
}

#[tokio::test]
async fn a_kit_token_for_another_audience_is_refused() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let gate = jwt_gate(&issuer);
    let token = issuer.token("alice").audience("billing-api").sign();
    assert_eq!(check_bearer(&gate, &token).await.unwrap_err(), 401);
}

#[tokio::test]
async fn expired_not_yet_valid_and_foreign_kit_tokens_are_refused() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let gate = jwt_gate(&issuer);
    for token in [
        issuer.token("alice").expires_in(-600).sign(),
        issuer.token("alice").not_before_in(600).sign(),
        issuer.token("alice").without("exp").sign(),
        issuer.token("alice").issuer("https://other.test").sign(),
        // Another key, same names: the signature does not verify.
        TestIssuer::new(ISS, AUD).unwrap().token("alice").sign(),
    ] {
        assert_eq!(check_bearer(&gate, &token).await.unwrap_err(), 401);
    }
}

#[tokio::test]
async fn sign_writes_exactly_the_claims_given() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let token = issuer.sign(&json!({ "sub": "bob", "custom": [1, 2] }));
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims, json!({ "sub": "bob", "custom": [1, 2] }));
    // Without `iss`, `aud` or `exp` a real authenticator refuses it.
    assert_eq!(
        check_bearer(&jwt_gate(&issuer), &token).await.unwrap_err(),
        401
    );
}

#[tokio::test]
async fn default_kit_claims_are_the_ones_that_pass() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let token = issuer.token("alice");
    let claims = token.claims().clone();
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["aud"], AUD);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, testing::DEFAULT_TOKEN_LIFETIME);
    assert!(claims["jti"].is_string());
    assert_ne!(issuer.token("alice").claims()["jti"], claims["jti"]);
}

// --- JwksServer -------------------------------------------------------------------------------

#[cfg(feature = "jwks")]
fn discovery_gate(server: &JwksServer) -> Gate {
    use portcullis::jwt::{JwtAuthenticator, KeySource, ReqwestClient};
    let authenticator = JwtAuthenticator::builder()
        .issuer(server.issuer(), KeySource::Discovery)
        .audiences([AUD])
        .http_client(Arc::new(ReqwestClient::new().unwrap()))
        .build()
        .unwrap();
    Gate::builder()
        .authenticator(authenticator)
        .build()
        .unwrap()
}

#[cfg(feature = "jwks")]
#[tokio::test]
async fn the_kit_server_serves_discovery_and_keys_to_a_real_authenticator() {
    let (issuer, server) = TestIssuer::with_server(AUD).await.unwrap();
    assert!(server.issuer().starts_with("http://127.0.0.1:"));
    let gate = discovery_gate(&server);
    let principal = check_bearer(&gate, &issuer.token("alice").sign())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(server.discovery_fetches(), 1);
    assert_eq!(server.jwks_fetches(), 1);
    // A wrong audience is refused here too, with no further fetch.
    let token = issuer.token("alice").audience("billing-api").sign();
    assert_eq!(check_bearer(&gate, &token).await.unwrap_err(), 401);
    assert_eq!(server.jwks_fetches(), 1);
}

#[cfg(feature = "jwks")]
#[tokio::test]
async fn a_failing_kit_server_makes_bearer_checks_503_until_it_serves() {
    let (issuer, server) = TestIssuer::with_server(AUD).await.unwrap();
    server.set_mode(ServerMode::Fail);
    let gate = discovery_gate(&server);
    let token = issuer.token("alice").sign();
    assert_eq!(check_bearer(&gate, &token).await.unwrap_err(), 503);
    assert!(server.jwks_fetches() >= 1);
}

#[tokio::test]
async fn the_kit_server_answers_404_elsewhere_and_serves_what_it_is_given() {
    let server = JwksServer::start("not json").await.unwrap();
    let client = reqwest::Client::new();
    let jwks = client.get(server.jwks_url()).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    assert_eq!(jwks.text().await.unwrap(), "not json");
    server.set_jwks(r#"{"keys":[]}"#);
    let jwks = client.get(server.jwks_url()).send().await.unwrap();
    assert_eq!(jwks.text().await.unwrap(), r#"{"keys":[]}"#);
    let other = client.get(server.url("/token")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(server.other_requests(), 1);
    server.set_discovery_issuer("https://elsewhere.test");
    let document: serde_json::Value = client
        .get(server.url(testing::DISCOVERY_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["issuer"], "https://elsewhere.test");
    assert_eq!(document["jwks_uri"], server.jwks_url());
    assert_eq!(server.jwks_fetches(), 2);
    assert_eq!(server.discovery_fetches(), 1);
}

#[tokio::test]
async fn the_kit_server_stops_when_dropped() {
    let server = JwksServer::start("{}").await.unwrap();
    let addr = server.addr();
    let clone = server.clone();
    drop(server);
    // A clone keeps it serving.
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(clone);
    // The accept loop is aborted on drop and stops at its next poll.
    let mut refused = false;
    for _ in 0..200 {
        tokio::task::yield_now().await;
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused, "still accepting after the last clone was dropped");
}

// --- TestContext on axum ----------------------------------------------------------------------

async fn me(principal: Principal) -> String {
    principal.subject().to_owned()
}

async fn staff_only(guard: Guard) -> Result<String, Refusal> {
    guard.require(&Groups::any_of(["staff"]))?;
    Ok(format!("rule {}", guard.context().rule()))
}

async fn admins_only(guard: Guard) -> Result<&'static str, Refusal> {
    guard.require(&Groups::any_of(["admin"]))?;
    Ok("admin")
}

async fn maybe(principal: Option<Principal>) -> String {
    principal.map_or("anonymous".to_owned(), |p| p.subject().to_owned())
}

#[derive(serde::Deserialize)]
struct Tenant {
    tenant: String,
}

async fn tenant(Claims(claims): Claims<Tenant>) -> String {
    claims.tenant
}

fn handlers() -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/staff", get(staff_only))
        .route("/admin", get(admins_only))
        .route("/maybe", get(maybe))
        .route("/tenant", get(tenant))
}

fn get_request(path: &str) -> http::Request<String> {
    http::Request::get(path).body(String::new()).unwrap()
}

#[tokio::test]
async fn an_axum_handler_sees_the_principal_put_on_the_request() {
    let kit = testing::authenticated(alice());
    let app = handlers();
    assert_eq!(call(&app, kit.on(get_request("/me"))).await.0, 200);
    assert_eq!(call(&app, kit.on(get_request("/me"))).await.2, "alice");
    assert_eq!(call(&app, kit.on(get_request("/maybe"))).await.2, "alice");
    let (status, _, body) = call(&app, kit.on(get_request("/staff"))).await;
    assert_eq!((status, body.as_str()), (200, "rule default"));
    // The principal is in the extensions too, where the Gate's layer puts it.
    let request = kit.on(get_request("/me"));
    assert_eq!(
        request.extensions().get::<Principal>().unwrap().subject(),
        "alice"
    );
}

#[tokio::test]
async fn a_guard_refuses_a_kit_principal_its_policy_refuses_with_403() {
    let app = handlers();
    let (status, _, body) = call(
        &app,
        testing::authenticated(alice()).on(get_request("/admin")),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("\"status\":403"), "{body}");
}

#[tokio::test]
async fn an_anonymous_kit_context_gets_401_from_principal_and_none_from_option() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let gate = jwt_gate(&issuer);
    let kit = testing::anonymous().with_gate(gate);
    let app = handlers();
    let (status, challenges, _) = call(&app, kit.on(get_request("/me"))).await;
    assert_eq!(status, 401);
    // The Gate given builds the refusal: its Bearer challenge.
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].starts_with("Bearer"), "{challenges:?}");
    assert_eq!(
        call(&app, kit.on(get_request("/maybe"))).await.2,
        "anonymous"
    );
}

#[tokio::test]
async fn without_the_kit_a_handler_refuses_with_500() {
    assert_eq!(call(&handlers(), get_request("/me")).await.0, 500);
}

#[tokio::test]
async fn the_kit_context_names_the_rule_the_given_gate_matches() {
    let gate = Gate::builder()
        .route("/health", Public)
        .route("/staff", Groups::any_of(["staff"]))
        .build()
        .unwrap();
    let kit = testing::authenticated(alice()).with_gate(gate);
    let (status, _, body) = call(&handlers(), kit.on(get_request("/staff"))).await;
    assert_eq!((status, body.as_str()), (200, "rule * /staff"));
}

#[tokio::test]
async fn the_kit_client_ip_is_judged_by_ip_rules() {
    let office = IpRanges::new().allow(IpSet::parse(["10.0.0.0/8"]).unwrap());
    let inside: IpAddr = "10.1.2.3".parse().unwrap();
    let outside: IpAddr = "192.0.2.1".parse().unwrap();
    let judge = |ip: Option<IpAddr>| {
        let mut kit = testing::authenticated(alice());
        if let Some(ip) = ip {
            kit = kit.with_client_ip(ip);
        }
        let request = get_request("/");
        let (parts, _) = request.into_parts();
        let view = RequestView::from_parts(&parts);
        kit.context(&view)
            .require(&office, &view)
            .map_err(|r| r.response().status().as_u16())
    };
    assert_eq!(judge(Some(inside)), Ok(()));
    assert_eq!(judge(Some(outside)), Err(403));
    // No client IP: the rule cannot judge, and refuses.
    assert_eq!(judge(None), Err(403));
    // The request's peer is the client IP when none is given.
    let mut request = get_request("/");
    request
        .extensions_mut()
        .insert(portcullis::PeerAddr("10.9.9.9:4000".parse().unwrap()));
    let request = testing::authenticated(alice()).on(request);
    let context = request
        .extensions()
        .get::<portcullis::extract::GateContext>()
        .unwrap();
    assert_eq!(context.client_ip(), Some("10.9.9.9".parse().unwrap()));
}

#[tokio::test]
async fn claims_of_a_kit_token_reach_the_claims_extractor() {
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let gate = jwt_gate(&issuer);
    let token = issuer.token("alice").claim("tenant", "acme").sign();
    let principal = check_bearer(&gate, &token).await.unwrap().unwrap();
    let app = handlers();
    let kit = testing::authenticated(principal).with_gate(gate);
    assert_eq!(call(&app, kit.on(get_request("/tenant"))).await.2, "acme");
    // A Basic principal has no token claims: 403.
    let basic = testing::authenticated(alice());
    assert_eq!(call(&app, basic.on(get_request("/tenant"))).await.0, 403);
}

// --- TestContext on actix-web -----------------------------------------------------------------

fn actix_handlers(config: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    config
        .route("/me", web::get().to(me))
        .route("/staff", web::get().to(staff_only))
        .route("/admin", web::get().to(admins_only));
}

#[actix_web::test]
async fn an_actix_handler_sees_the_principal_and_its_guard_refuses_with_403() {
    let app = actix_test::init_service(actix_web::App::new().configure(actix_handlers)).await;
    let kit = testing::authenticated(alice());
    let response = actix_test::call_service(
        &app,
        kit.on_actix(actix_test::TestRequest::get().uri("/me")),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(actix_test::read_body(response).await, "alice");
    let staff = kit.on_actix(actix_test::TestRequest::get().uri("/staff"));
    assert_eq!(
        actix_test::call_service(&app, staff)
            .await
            .status()
            .as_u16(),
        200
    );
    let admin = kit.on_actix(actix_test::TestRequest::get().uri("/admin"));
    assert_eq!(
        actix_test::call_service(&app, admin)
            .await
            .status()
            .as_u16(),
        403
    );
    // Without the kit: 500, no Gate in front.
    let bare = actix_test::TestRequest::get().uri("/me").to_request();
    assert_eq!(
        actix_test::call_service(&app, bare).await.status().as_u16(),
        500
    );
}

#[actix_web::test]
async fn an_actix_extractor_reads_the_kit_principal_from_an_http_request() {
    let request =
        testing::authenticated(alice()).on_actix_http(actix_test::TestRequest::get().uri("/me"));
    let principal = Principal::extract(&request).await.unwrap();
    assert_eq!(principal.subject(), "alice");
    let anonymous = testing::anonymous().on_actix_http(actix_test::TestRequest::get());
    assert_eq!(
        Principal::extract(&anonymous)
            .await
            .unwrap_err()
            .response()
            .status()
            .as_u16(),
        401
    );
}

// --- Credentials and Seed ---------------------------------------------------------------------

async fn seeded_gate() -> (Gate, testing::Seeded, TestIssuer) {
    let seeded = Seed::new()
        .user("alice", "correct horse", ["staff"])
        .user("bob", "battery staple", Vec::<String>::new())
        .api_key(NewApiKey::application("reporter").with_scopes(["reports:read"]))
        .api_key(NewApiKey::new("alice").with_expires_in(std::time::Duration::from_secs(60)))
        .build()
        .await
        .unwrap();
    let issuer = TestIssuer::new(ISS, AUD).unwrap();
    let gate = Gate::builder()
        .shared_authenticator(seeded.basic())
        .authenticator(seeded.api_keys().authenticator())
        .authenticator(issuer.authenticator().unwrap())
        .route("/reports", Scopes::all_of(["reports:read"]))
        .build()
        .unwrap();
    (gate, seeded, issuer)
}

#[tokio::test]
async fn seeded_stores_and_credentials_authenticate_through_a_real_gate() {
    let (gate, seeded, issuer) = seeded_gate().await;
    let app = Router::new()
        .route("/me", get(me))
        .route("/reports", get(me))
        .layer(GateLayer::new(gate));
    let with = |builder: http::request::Builder| builder.body(String::new()).unwrap();
    let ok = |path: &str| http::Request::get(path);
    let reporter = seeded.key(0).key().expose_secret();
    let cases = [
        (
            with(ok("/me").basic_auth("alice", "correct horse")),
            200,
            "alice",
        ),
        (with(ok("/me").basic_auth("alice", "wrong")), 401, ""),
        (
            with(ok("/me").basic_auth("nobody", "correct horse")),
            401,
            "",
        ),
        (with(ok("/reports").api_key(reporter)), 200, "reporter"),
        (
            with(ok("/reports").api_key(seeded.key(1).key().expose_secret())),
            403,
            "",
        ),
        (with(ok("/me").api_key("pc_notakey")), 401, ""),
        (
            with(ok("/me").bearer(&issuer.token("carol").sign())),
            200,
            "carol",
        ),
        (with(ok("/me").bearer("not.a.token")), 401, ""),
        (with(ok("/me")), 401, ""),
    ];
    for (request, status, body) in cases {
        let (got, _, text) = call(&app, request).await;
        assert_eq!(got, status, "{text}");
        if status == 200 {
            assert_eq!(text, body);
        }
    }
}

#[actix_web::test]
async fn credentials_on_an_actix_test_request_pass_the_actix_middleware() {
    let (gate, seeded, issuer) = seeded_gate().await;
    let app = actix_test::init_service(
        actix_web::App::new()
            .wrap(GateMiddleware::new(gate))
            .configure(actix_handlers),
    )
    .await;
    let get = || actix_test::TestRequest::get().uri("/me");
    let key = seeded.key(0).key().expose_secret().to_owned();
    for (request, status) in [
        (get().basic_auth("bob", "battery staple"), 200),
        (get().basic_auth("bob", "wrong"), 401),
        (get().api_key(&key), 200),
        (get().bearer(&issuer.token("carol").sign()), 200),
        (
            get().bearer(&issuer.token("carol").expires_in(-600).sign()),
            401,
        ),
    ] {
        let response = actix_test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status().as_u16(), status);
    }
}

#[tokio::test]
async fn seeded_users_are_hashed_with_the_fast_parameters_and_keys_expire() {
    let (_, seeded, _) = seeded_gate().await;
    let alice = seeded.users().find_user("alice").await.unwrap().unwrap();
    let phc = alice.password_hash.expose_phc();
    assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
    assert!(alice.groups.iter().any(|g| g == "staff"));
    assert_eq!(seeded.keys().len(), 2);
    let reporter = seeded.key(0).record();
    assert_eq!(reporter.owner, "reporter");
    let lifetime = reporter.expires_at.unwrap() - reporter.created_at;
    assert_eq!(
        lifetime.num_seconds(),
        testing::DEFAULT_KEY_LIFETIME.as_secs() as i64
    );
    let alice_key = seeded.key(1).record();
    assert_eq!(
        (alice_key.expires_at.unwrap() - alice_key.created_at).num_seconds(),
        60
    );
    // Every argon2 hash the seeded authenticator computed ran at the kit's cost.
    assert!(
        !seeded
            .basic()
            .hashing_pool()
            .needs_rehash(&alice.password_hash)
    );
}

#[tokio::test]
async fn a_seed_with_a_duplicate_user_fails_and_says_who() {
    let err = Seed::new()
        .user("alice", "one", ["a"])
        .user("alice", "two", ["b"])
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("alice"), "{err}");
}

#[test]
fn insecure_fast_hashing_is_the_cheapest_argon2id() {
    assert_eq!(INSECURE_FAST_HASHING.memory_kib, 8);
    assert_eq!(INSECURE_FAST_HASHING.iterations, 1);
    assert_eq!(INSECURE_FAST_HASHING.parallelism, 1);
}

#[test]
fn a_configuration_file_cannot_name_the_fast_hashing() {
    let text = "[basic]\nhashing = \"INSECURE_FAST_HASHING\"\n";
    assert!(portcullis::config::Config::from_str(text).is_err());
}

// --- The WARN ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_gate_built_with_the_kit_compiled_in_warns_once_per_build() {
    let logs = logs::capture();
    let _gate = Gate::builder().build().unwrap();
    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("test-util")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("WARN"), "{text}");
    let _again = Gate::builder().build().unwrap();
    assert_eq!(
        logs.text()
            .lines()
            .filter(|l| l.contains("test-util"))
            .count(),
        2
    );
}

#[test]
fn credentials_set_the_headers_the_authenticators_read() {
    let basic = http::Request::get("/")
        .basic_auth("alice", "pä:ss")
        .body(())
        .unwrap();
    assert_eq!(
        basic.headers()["authorization"],
        portcullis::basic::encode_basic("alice", "pä:ss").as_str()
    );
    let key = http::Request::get("/").api_key("pc_k").body(()).unwrap();
    assert_eq!(key.headers()[portcullis::api_key::DEFAULT_HEADER], "pc_k");
    let custom = http::Request::get("/")
        .credential_header("x-token", "t")
        .body(())
        .unwrap();
    assert_eq!(custom.headers()["x-token"], "t");
    // Each replaces the header: one `Authorization`, the last one set.
    let both = http::Request::get("/")
        .basic_auth("a", "b")
        .bearer("t")
        .body(())
        .unwrap();
    assert_eq!(both.headers().get_all("authorization").iter().count(), 1);
    assert_eq!(both.headers()["authorization"], "Bearer t");
    // A value no header can hold is the builder's error, not a panic.
    assert!(
        http::Request::get("/")
            .bearer("bad\nvalue")
            .body(())
            .is_err()
    );
    // actix-web's TestRequest.
    let actix = actix_test::TestRequest::get()
        .api_key("pc_k")
        .bearer("t")
        .to_http_request();
    assert_eq!(actix.headers().get("x-api-key").unwrap(), "pc_k");
    assert_eq!(actix.headers().get("authorization").unwrap(), "Bearer t");
}
