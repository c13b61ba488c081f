//! The service's handlers tested with portcullis's test kit (`portcullis::testing`, feature
//! `test-util` in dev-dependencies): a principal put on the request with no Gate in front, and
//! the whole app behind the service's rules with seeded credentials and test tokens. No network
//! (static token keys, no key fetch) and no full-cost argon2 (every hash at the kit's cost,
//! counted).

use std::sync::Arc;

use actix_web::test as actix_test;
use http_body_util::BodyExt;
use portcullis::actix::GateMiddleware;
use portcullis::store::UserStore;
use portcullis::testing::{self, Credentials, Seed, TestIssuer};
use portcullis::{Gate, NewApiKey, Principal, Scheme, SubjectKind};
use portcullis_downstream::{actix_routes, axum_app, axum_routes, rules};
use tower::ServiceExt;

/// Method, path, credential (`basic` and alice's password, `key`, or `bearer` and a token),
/// expected status.
type Case<'a> = (&'a str, &'a str, Option<(&'a str, String)>, u16);

fn alice_admin() -> Principal {
    Principal::new("alice", SubjectKind::User, Scheme::BASIC).with_groups(["admin"])
}

fn bob() -> Principal {
    Principal::new("bob", SubjectKind::User, Scheme::BASIC).with_groups(["staff"])
}

async fn axum_call(app: &axum::Router, request: http::Request<String>) -> (u16, String, bool) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let service_header = response.headers().contains_key("x-service");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8(body.to_vec()).unwrap(),
        service_header,
    )
}

fn get(path: &str) -> http::Request<String> {
    http::Request::get(path).body(String::new()).unwrap()
}

/// The service's Gate (its `rules`), for the kit's refusals: its responder adds `x-service`.
fn service_gate() -> Gate {
    rules(Gate::builder()).build().unwrap()
}

#[tokio::test]
async fn axum_handlers_with_a_kit_principal() {
    let app = axum_routes();
    let admin = testing::authenticated(alice_admin()).with_gate(service_gate());
    let (status, body, _) = axum_call(&app, admin.on(get("/me"))).await;
    assert_eq!(status, 200);
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["groups"], serde_json::json!(["admin"]));
    assert_eq!(axum_call(&app, admin.on(get("/audit-log"))).await.0, 200);
    assert_eq!(
        axum_call(&app, admin.on(get("/reports/summary"))).await.0,
        200
    );

    // The handler's guard and the route-bound policy refuse bob, with the service's responder.
    let staff = testing::authenticated(bob()).with_gate(service_gate());
    for path in ["/audit-log", "/reports/summary"] {
        let (status, _, service_header) = axum_call(&app, staff.on(get(path))).await;
        assert_eq!((status, service_header), (403, true), "{path}");
    }
    // `/me` needs a principal: 401 for an anonymous caller.
    let anonymous = testing::anonymous().with_gate(service_gate());
    assert_eq!(axum_call(&app, anonymous.on(get("/me"))).await.0, 401);
}

#[actix_web::test]
async fn actix_handlers_with_a_kit_principal() {
    let app = actix_test::init_service(actix_web::App::new().configure(actix_routes)).await;
    let admin = testing::authenticated(alice_admin()).with_gate(service_gate());
    let me = admin.on_actix(actix_test::TestRequest::get().uri("/me"));
    let response = actix_test::call_service(&app, me).await;
    assert_eq!(response.status().as_u16(), 200);
    let me: serde_json::Value =
        serde_json::from_slice(&actix_test::read_body(response).await).unwrap();
    assert_eq!(me["subject"], "alice");
    let staff = testing::authenticated(bob()).with_gate(service_gate());
    for path in ["/audit-log", "/reports/summary"] {
        let allowed = admin.on_actix(actix_test::TestRequest::get().uri(path));
        assert_eq!(
            actix_test::call_service(&app, allowed)
                .await
                .status()
                .as_u16(),
            200
        );
        let refused = staff.on_actix(actix_test::TestRequest::get().uri(path));
        let response = actix_test::call_service(&app, refused).await;
        assert_eq!(response.status().as_u16(), 403, "{path}");
        assert!(response.headers().contains_key("x-service"));
    }
}

#[actix_web::test]
async fn the_service_rules_with_kit_credentials_no_network_and_cheap_argon2() {
    let seeded = Seed::new()
        .user("alice", "correct horse", ["admin"])
        .api_key(NewApiKey::application("reporter"))
        .build()
        .await
        .unwrap();
    let issuer = TestIssuer::new("https://idp.test", "downstream").unwrap();
    let jwt = Arc::new(issuer.authenticator().unwrap());
    let gate = rules(
        Gate::builder()
            .shared_authenticator(seeded.basic())
            .authenticator(seeded.api_keys().authenticator())
            .shared_authenticator(Arc::clone(&jwt) as _),
    )
    .build()
    .unwrap();
    let key = seeded.key(0).key().expose_secret().to_owned();
    let admin_token = issuer.token("carol").groups(["admin"]).sign();
    let expired = issuer.token("carol").expires_in(-600).sign();
    let foreign = issuer.token("carol").audience("billing").sign();
    // (request, expected status) for both frameworks.
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/me", Some(("basic", "correct horse".into())), 200),
        ("GET", "/me", Some(("basic", "wrong".into())), 401),
        // `/admin/**` refuses Basic even for an admin.
        (
            "GET",
            "/admin/users",
            Some(("basic", "correct horse".into())),
            403,
        ),
        ("GET", "/me", Some(("key", key.clone())), 200),
        ("POST", "/reports", Some(("key", key.clone())), 403),
        (
            "GET",
            "/admin/users",
            Some(("bearer", admin_token.clone())),
            200,
        ),
        ("GET", "/me", Some(("bearer", expired.clone())), 401),
        ("GET", "/me", Some(("bearer", foreign.clone())), 401),
        ("GET", "/me", None, 401),
        ("GET", "/health", None, 200),
    ];
    let app = axum_app(gate.clone());
    let actix = actix_test::init_service(
        actix_web::App::new()
            .wrap(GateMiddleware::new(gate))
            .configure(actix_routes),
    )
    .await;
    let mut basic_checks = 0;
    for (method, path, credential, status) in &cases {
        let mut axum_request = http::Request::builder().method(*method).uri(*path);
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut actix_request = actix_test::TestRequest::default().method(method).uri(path);
        match credential {
            Some(("basic", password)) => {
                basic_checks += 2;
                axum_request = axum_request.basic_auth("alice", password);
                actix_request = actix_request.basic_auth("alice", password);
            }
            Some(("key", key)) => {
                axum_request = axum_request.api_key(key);
                actix_request = actix_request.api_key(key);
            }
            Some((_, token)) => {
                axum_request = axum_request.bearer(token);
                actix_request = actix_request.bearer(token);
            }
            None => {}
        }
        let request = axum_request.body(String::new()).unwrap();
        assert_eq!(axum_call(&app, request).await.0, *status, "axum {path}");
        let response = actix_test::call_service(&actix, actix_request.to_request()).await;
        assert_eq!(response.status().as_u16(), *status, "actix {path}");
    }

    // No network: the token keys were given, never fetched.
    assert_eq!(jwt.key_fetches(), 0);
    // No full-cost argon2: the one pool that hashed, at the kit's cost, one hash per seeded
    // user and one per Basic check.
    let stored = seeded.users().find_user("alice").await.unwrap().unwrap();
    assert!(
        stored
            .password_hash
            .expose_phc()
            .starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
        "{}",
        stored.password_hash.expose_phc()
    );
    let pool = seeded.basic();
    assert!(!pool.hashing_pool().needs_rehash(&stored.password_hash));
    assert_eq!(pool.hashing_pool().metrics().completed, 1 + basic_checks);
}
