//! The same requests through the axum app and the actix-web app: the same status, challenges and
//! service header from both, decided by one Gate.

use actix_web::test as actix_test;
use http_body_util::BodyExt;
use portcullis::actix::GateMiddleware;
use portcullis::basic::encode_basic;
use portcullis_downstream::{actix_routes, axum_app, gate};
use tower::ServiceExt;

/// What a response came back with.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    challenges: Vec<String>,
    service_header: bool,
    body: String,
}

enum Credential<'a> {
    None,
    Basic(&'a str, &'a str),
    ApiKey(&'a str),
}

fn request(method: &str, path: &str, credential: &Credential<'_>) -> http::Request<String> {
    let mut builder = http::Request::builder().method(method).uri(path);
    match credential {
        Credential::None => {}
        Credential::Basic(user, password) => {
            builder = builder.header("authorization", encode_basic(user, password));
        }
        Credential::ApiKey(key) => builder = builder.header("x-api-key", *key),
    }
    builder.body(String::new()).unwrap()
}

async fn through_axum(app: &axum::Router, request: http::Request<String>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenges: headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect(),
        service_header: headers.contains_key("x-service"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn through_actix(gate: &portcullis::Gate, request: http::Request<String>) -> Answer {
    let app = actix_test::init_service(
        actix_web::App::new()
            .wrap(GateMiddleware::new(gate.clone()))
            .configure(actix_routes),
    )
    .await;
    let mut actix_request = actix_test::TestRequest::default()
        .method(request.method().as_str().parse().unwrap())
        .uri(&request.uri().to_string());
    for (name, value) in request.headers() {
        actix_request = actix_request.insert_header((name.as_str(), value.to_str().unwrap()));
    }
    let response = actix_test::call_service(&app, actix_request.to_request()).await;
    let status = response.status().as_u16();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let service_header = response.headers().contains_key("x-service");
    let body = actix_test::read_body(response).await;
    Answer {
        status,
        challenges,
        service_header,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[actix_web::test]
async fn axum_and_actix_answer_alike() {
    let callers = gate().await.unwrap();
    let key = callers.reporter_key.expose_secret().to_owned();
    let app = axum_app(callers.gate.clone());
    let cases: Vec<(&str, &str, Credential<'_>, u16)> = vec![
        ("GET", "/health", Credential::None, 200),
        ("GET", "/me", Credential::None, 401),
        (
            "GET",
            "/me",
            Credential::Basic("alice", "correct horse"),
            200,
        ),
        ("GET", "/me", Credential::Basic("alice", "wrong"), 401),
        ("GET", "/me", Credential::ApiKey(&key), 200),
        // Applications only read: the service's own policy.
        ("POST", "/reports", Credential::ApiKey(&key), 403),
        (
            "POST",
            "/reports",
            Credential::Basic("alice", "correct horse"),
            200,
        ),
        // Admins, but not with a password.
        (
            "GET",
            "/admin/users",
            Credential::Basic("alice", "correct horse"),
            403,
        ),
        ("GET", "/admin/users", Credential::ApiKey(&key), 403),
        ("GET", "/admin/users", Credential::None, 401),
        // A policy bound to the route and a guard in the handler: admins only, refused with
        // the service's own responder.
        (
            "GET",
            "/reports/summary",
            Credential::Basic("alice", "correct horse"),
            200,
        ),
        ("GET", "/reports/summary", Credential::ApiKey(&key), 403),
        (
            "GET",
            "/audit-log",
            Credential::Basic("alice", "correct horse"),
            200,
        ),
        ("GET", "/audit-log", Credential::ApiKey(&key), 403),
        // A path two readers could read differently is refused before anything else.
        ("GET", "/health/../admin/users", Credential::None, 400),
    ];
    for (method, path, credential, status) in &cases {
        let axum = through_axum(&app, request(method, path, credential)).await;
        let actix = through_actix(&callers.gate, request(method, path, credential)).await;
        assert_eq!(axum.status, *status, "axum {method} {path}: {axum:?}");
        assert_eq!(actix, axum, "{method} {path}");
        if *status >= 400 {
            assert!(
                axum.service_header,
                "{method} {path}: the service's responder"
            );
        }
        if *status == 401 {
            assert!(
                axum.challenges.iter().any(|c| c.starts_with("Basic ")),
                "{method} {path}: {:?}",
                axum.challenges
            );
            assert!(
                axum.challenges.iter().any(|c| c.starts_with("ApiKey ")),
                "{method} {path}: {:?}",
                axum.challenges
            );
        }
    }
}

#[actix_web::test]
async fn handlers_see_the_principal_the_gate_established() {
    let callers = gate().await.unwrap();
    let app = axum_app(callers.gate.clone());
    let credential = Credential::Basic("alice", "correct horse");
    let axum = through_axum(&app, request("GET", "/me", &credential)).await;
    let me: serde_json::Value = serde_json::from_str(&axum.body).unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["scheme"], "basic");
    assert_eq!(me["groups"], serde_json::json!(["admin"]));
    let key = callers.reporter_key.expose_secret().to_owned();
    let actix = through_actix(
        &callers.gate,
        request("GET", "/me", &Credential::ApiKey(&key)),
    )
    .await;
    let me: serde_json::Value = serde_json::from_str(&actix.body).unwrap();
    assert_eq!(me["subject"], "reporter");
    assert_eq!(me["scheme"], "api_key");
}
