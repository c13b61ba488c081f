//! Every adapter end to end on 127.0.0.1 with a real client, driven by one table of requests:
//! axum, actix-web and hyper over HTTP/1.1 with reqwest, tonic over HTTP/2 with a tonic client.
//!
//! Each row must give the same status (for tonic, the gRPC code), the same `WWW-Authenticate`
//! values (for tonic, in the status metadata) and the same principal everywhere. HTTP adapters
//! must also answer a refusal with exactly the body and content type `Gate::respond` builds for
//! the Gate's own decision on the same request; tonic with that decision's public detail as the
//! gRPC message.
//!
//! Needs `--features actix` (`cargo test --all-features`); the gateway test also needs `sqlite`.
#![cfg(all(
    feature = "actix",
    feature = "axum",
    feature = "sqlite",
    feature = "basic",
    feature = "api-key",
    feature = "jwt"
))]

#[path = "adapters/servers.rs"]
mod servers;
// The gateway example, served in-process: `serve` and `echo_upstream`; its `main` is unused here.
#[expect(dead_code, reason = "the example's `main` is not called here")]
#[path = "../examples/gateway.rs"]
mod gateway;
// Generated code: public items that this crate only partly uses.
#[allow(
    unreachable_pub,
    dead_code,
    missing_docs,
    clippy::allow_attributes_without_reason,
    clippy::too_many_lines,
    reason = "generated code, partly used"
)]
#[path = "../examples/proto/whoami.rs"]
mod whoami;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::basic::{HashingConfig, encode_basic};
use portcullis::jwt::{Algorithm, JwtIssuer, SigningKey};
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{
    ApiKeys, BasicAuthenticator, Gate, Groups, NewApiKey, Principal, Public, RequestView, Scheme,
    SecretString, SubjectKind,
};
use tonic::Code;

use whoami::WhoAmIRequest;
use whoami::identity_client::IdentityClient;

const REALM: &str = "adapters";
const BASIC: &str = r#"Basic realm="adapters", charset="UTF-8""#;
const API_KEY: &str = r#"ApiKey realm="adapters", header="X-API-Key""#;
const BEARER: &str = r#"Bearer realm="adapters""#;
const BEARER_INVALID: &str = r#"Bearer realm="adapters", error="invalid_token", error_description="The access token is invalid or expired""#;
const EVERY_SCHEME: &[&str] = &[BASIC, API_KEY, BEARER];

const ALICE_PASSWORD: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "tr0ub4dor&3";
const ISSUER: &str = "https://issuer.adapters.test";

/// The one table every adapter answers.
const TABLE: &[Row] = &[
    Row {
        name: "no credentials",
        route: Route::Me,
        credential: Credential::None,
        status: 401,
        grpc: Code::Unauthenticated,
        challenges: EVERY_SCHEME,
        principal: None,
    },
    Row {
        name: "bad Basic",
        route: Route::Me,
        credential: Credential::Basic("alice", "not her password"),
        status: 401,
        grpc: Code::Unauthenticated,
        challenges: EVERY_SCHEME,
        principal: None,
    },
    Row {
        name: "good Basic",
        route: Route::Admin,
        credential: Credential::Basic("alice", ALICE_PASSWORD),
        status: 200,
        grpc: Code::Ok,
        challenges: &[],
        principal: Some(("alice", "basic")),
    },
    Row {
        name: "good API key",
        route: Route::Me,
        credential: Credential::GoodKey,
        status: 200,
        grpc: Code::Ok,
        challenges: &[],
        principal: Some(("reporting", "api_key")),
    },
    Row {
        name: "revoked API key",
        route: Route::Me,
        credential: Credential::RevokedKey,
        status: 401,
        grpc: Code::Unauthenticated,
        challenges: EVERY_SCHEME,
        principal: None,
    },
    Row {
        name: "good JWT",
        route: Route::Me,
        credential: Credential::GoodJwt,
        status: 200,
        grpc: Code::Ok,
        challenges: &[],
        principal: Some(("carol", "jwt")),
    },
    Row {
        name: "bad JWT",
        route: Route::Me,
        credential: Credential::BadJwt,
        status: 401,
        grpc: Code::Unauthenticated,
        challenges: &[BASIC, API_KEY, BEARER_INVALID],
        principal: None,
    },
    Row {
        name: "denied by policy",
        route: Route::Admin,
        credential: Credential::Basic("bob", BOB_PASSWORD),
        status: 403,
        grpc: Code::PermissionDenied,
        challenges: &[],
        principal: None,
    },
    Row {
        name: "anonymous on a public route",
        route: Route::Public,
        credential: Credential::None,
        status: 200,
        grpc: Code::Ok,
        challenges: &[],
        principal: None,
    },
    Row {
        name: "signed in on a public route",
        route: Route::Public,
        credential: Credential::GoodJwt,
        status: 200,
        grpc: Code::Ok,
        challenges: &[],
        principal: Some(("carol", "jwt")),
    },
];

#[tokio::test]
async fn axum_answers_the_table() {
    let fixture = Fixture::new().await;
    let base = servers::axum(fixture.gate.clone()).await;
    check_http("axum", &base, &fixture).await;
}

#[tokio::test]
async fn actix_answers_the_table() {
    let fixture = Fixture::new().await;
    let base = servers::actix(fixture.gate.clone()).await;
    check_http("actix", &base, &fixture).await;
}

#[tokio::test]
async fn hyper_answers_the_table() {
    let fixture = Fixture::new().await;
    let base = servers::hyper(fixture.gate.clone()).await;
    check_http("hyper", &base, &fixture).await;
}

#[tokio::test]
async fn tonic_answers_the_table() {
    let fixture = Fixture::new().await;
    let endpoint = servers::tonic(fixture.gate.clone()).await;
    let mut client = IdentityClient::connect(endpoint)
        .await
        .expect("tonic client connects");
    for row in TABLE {
        let expected = fixture.reference(row).await;
        let mut request = tonic::Request::new(WhoAmIRequest {});
        for (name, value) in fixture.headers(row.credential) {
            request
                .metadata_mut()
                .insert(name, value.parse().expect("ASCII credential"));
        }
        let result = match row.route {
            Route::Me => client.who_am_i(request).await,
            Route::Admin => client.admin(request).await,
            Route::Public => client.hello(request).await,
        };
        let context = format!("tonic, {}", row.name);
        match result {
            Ok(response) => {
                assert_eq!(Code::Ok, row.grpc, "{context}: allowed");
                let caller = response.into_inner();
                let principal = (!caller.subject.is_empty())
                    .then_some((caller.subject.as_str(), caller.scheme.as_str()));
                assert_eq!(principal, row.principal, "{context}: principal");
            }
            Err(status) => {
                assert_eq!(status.code(), row.grpc, "{context}: code ({status:?})");
                let challenges: Vec<&str> = status
                    .metadata()
                    .get_all("www-authenticate")
                    .iter()
                    .map(|v| v.to_str().expect("ASCII challenge"))
                    .collect();
                assert_eq!(challenges, row.challenges, "{context}: challenges");
                let rejection = expected.expect_err("the Gate refuses this row too");
                assert_eq!(status.message(), rejection.public_detail(), "{context}");
            }
        }
    }
}

/// A refused gRPC call is "Trailers-Only": HTTP 200, `content-type: application/grpc`, the
/// status in the headers, no body, and the challenges kept. Seen on the wire with a plain HTTP/2
/// client, since a tonic client hides the framing.
#[tokio::test]
async fn a_refused_grpc_call_is_a_trailers_only_response() {
    let fixture = Fixture::new().await;
    let endpoint = servers::tonic(fixture.gate.clone()).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    let request = http::Request::post(format!("{endpoint}/whoami.Identity/WhoAmI"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Empty::new())
        .expect("valid request");
    let response = client.request(request).await.expect("HTTP/2 exchange");
    assert_eq!(response.status(), http::StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "16");
    assert_eq!(headers["grpc-message"], "Authentication is required.");
    assert!(headers.get("content-length").is_none());
    let challenges: Vec<_> = headers.get_all("www-authenticate").iter().collect();
    assert_eq!(challenges, EVERY_SCHEME);
    let body = response.into_body().collect().await.expect("body");
    assert!(body.trailers().is_none(), "no trailers frame after headers");
    assert!(body.to_bytes().is_empty(), "no message");
}

/// The same Gate answers a plain HTTP request to a gRPC server with the problem body.
#[tokio::test]
async fn a_non_grpc_request_to_a_tonic_server_gets_the_problem_body() {
    let fixture = Fixture::new().await;
    let endpoint = servers::tonic(fixture.gate.clone()).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    let request = http::Request::get(format!("{endpoint}/whoami.Identity/WhoAmI"))
        .body(Empty::new())
        .expect("valid request");
    let response = client.request(request).await.expect("HTTP/2 exchange");
    assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let expected = fixture
        .gate
        .respond(&portcullis::Rejection::missing_credentials("anonymous"));
    let body = response.into_body().collect().await.expect("body");
    assert_eq!(body.to_bytes(), expected.body().as_bytes());
}

/// The gateway example in front of an upstream that echoes what it receives: the upstream sees
/// the principal's headers, never a forged one, never the credentials.
#[tokio::test]
async fn the_gateway_forwards_the_principal_and_nothing_forged() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let (base, _) = start_gateway(config).await;
    let client = reqwest::Client::new();
    let alice = encode_basic("alice", "correct horse battery staple");

    let response = client
        .get(format!("{base}/orders?page=2"))
        .header("authorization", &alice)
        .header("x-portcullis-subject", "root")
        .header("X-Portcullis-Groups", "admin")
        .header("x-portcullis-anything", "forged")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("echo JSON");
    let seen = &seen["upstream_saw"];
    assert_eq!(seen["uri"], "/api/orders?page=2");
    let headers = seen["headers"].as_object().expect("headers");
    let portcullis_headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-portcullis-"))
        .map(|(name, value)| (name.as_str(), value.as_str().expect("string")))
        .collect();
    assert_eq!(
        portcullis_headers,
        [
            ("x-portcullis-groups", "admin,staff"),
            ("x-portcullis-scheme", "basic"),
            ("x-portcullis-subject", "alice"),
        ]
    );
    assert!(headers.get("authorization").is_none(), "credentials hidden");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");

    // Anonymous on the public route: no principal headers at all, forged ones removed.
    let response = client
        .get(format!("{base}/health"))
        .header("x-portcullis-subject", "root")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("echo JSON");
    let headers = seen["upstream_saw"]["headers"]
        .as_object()
        .expect("headers");
    assert!(
        headers
            .keys()
            .all(|name| !name.starts_with("x-portcullis-")),
        "{headers:?}"
    );

    // Refusals never reach the upstream.
    let response = client
        .get(format!("{base}/orders"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 401);
    let response = client
        .get(format!("{base}/admin/users"))
        .header("authorization", encode_basic("bob", "tr0ub4dor&3"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 403);
}

/// Issue #19: the gateway answers `/metrics` (Prometheus text) and `/healthz` (readiness as
/// JSON) itself, never forwarding them, and only to loopback callers: the shipped file's IP rule,
/// checked on the Gate it builds, refuses any other peer (401).
#[tokio::test]
async fn the_gateway_serves_metrics_and_healthz_to_this_host_only() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let (base, answered) = start_gateway(config).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let report: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(report["ready"], true, "{report}");
    let names: Vec<&str> = report["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["basic/users", "basic/lockout", "api_key/keys"],
        "{report}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0, "never forwarded");

    let gate = portcullis::config::Config::from_file(config)
        .expect("config")
        .build_services()
        .await
        .expect("builds")
        .gate;
    for path in ["/metrics", "/healthz"] {
        for (peer, allowed) in [
            ("127.0.0.1:4000", true),
            ("[::1]:4000", true),
            ("10.1.2.3:4000", false),
            ("192.0.2.7:4000", false),
            ("[2001:db8::7]:4000", false),
        ] {
            let (parts, ()) = http::Request::get(path)
                .extension(portcullis::PeerAddr(peer.parse().expect("address")))
                .body(())
                .expect("request")
                .into_parts();
            match gate
                .check(&portcullis::RequestView::from_parts(&parts))
                .await
            {
                Ok(principal) => {
                    assert!(allowed, "{path} from {peer}");
                    assert!(principal.is_none());
                }
                Err(rejection) => {
                    assert!(!allowed, "{path} from {peer}: {rejection:?}");
                    assert_eq!(gate.respond(&rejection).status(), 401);
                }
            }
        }
    }
}

/// docs/operations.md's warning: behind a proxy on the same host every peer is loopback, so the
/// loopback rule lets anyone through the proxy reach `/metrics`, until the proxy is listed in
/// `trusted_proxies` and the client's own address is judged.
#[tokio::test]
async fn behind_a_same_host_proxy_the_loopback_rule_needs_trusted_proxies() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let shipped = std::fs::read_to_string(format!("{examples}/gateway.toml")).expect("config");
    // The rules only (no credentials), as the proxy sees them.
    let rules = "[policies.loopback]\nip_allow = [\"127.0.0.0/8\", \"::1\"]\n\n\
                 [[routes]]\npath = \"/metrics\"\npolicy = \"loopback\"\n";
    assert!(shipped.contains("ip_allow = [\"127.0.0.0/8\", \"::1\"]"));
    // A client at 203.0.113.9, through a proxy on this host.
    let (parts, ()) = http::Request::get("/metrics")
        .header("x-forwarded-for", "203.0.113.9")
        .extension(portcullis::PeerAddr(
            "127.0.0.1:4000".parse().expect("address"),
        ))
        .body(())
        .expect("request")
        .into_parts();
    let request = portcullis::RequestView::from_parts(&parts);

    let untrusted =
        portcullis::config::Config::from_str(&format!("[gate]\ntrusted_proxies = []\n{rules}"))
            .expect("config")
            .build()
            .await
            .expect("builds");
    assert!(
        untrusted.check(&request).await.is_ok(),
        "the peer is loopback"
    );

    let trusted = portcullis::config::Config::from_str(&format!(
        "[gate]\ntrusted_proxies = [\"127.0.0.1\"]\n{rules}"
    ))
    .expect("config")
    .build()
    .await
    .expect("builds");
    let refused = trusted
        .check(&request)
        .await
        .expect_err("judged as 203.0.113.9");
    assert_eq!(trusted.respond(&refused).status(), 401);
}

/// The gateway's `/healthz` is 503, with the report, while a JWKS it is configured with has
/// never loaded (nothing listens at its URL). The file is a copy of the shipped one (with a
/// case-insensitive upstream, which changes nothing here) and a `[jwt]` section.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn the_gateway_healthz_is_503_while_a_jwks_has_never_loaded() {
    let config = case_insensitive_config("gateway-jwks");
    let text = std::fs::read_to_string(&config).expect("config")
        + "\n[jwt]\naudiences = [\"api\"]\n\n[[jwt.issuers]]\nissuer = \"https://idp.example\"\n\
           jwks_url = \"http://127.0.0.1:1/jwks\"\n";
    std::fs::write(&config, text).expect("config");
    let (base, answered) = start_gateway(&config).await;
    let response = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("request sent");
    assert_eq!(response.status(), 503);
    let report: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(report["ready"], false, "{report}");
    let keys = report["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "jwt/keys/https://idp.example")
        .expect("the issuer's keys");
    assert_eq!(keys["status"], "not_ready", "{report}");
    assert_eq!(answered.load(Ordering::SeqCst), 0, "never forwarded");
}

/// The gateway example configured by `config`, in front of an echo upstream at `/api`: its base
/// URL and how many requests the upstream has answered.
async fn start_gateway(config: impl AsRef<std::path::Path>) -> (String, Arc<AtomicUsize>) {
    let (upstream, answered) = gateway::echo_upstream().await.expect("echo upstream");
    let gateway = gateway::Gateway::from_config_file(config)
        .await
        .expect("valid configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let upstream = format!("http://{upstream}/api").parse().expect("URL");
    tokio::spawn(gateway::serve(listener, gateway, upstream));
    (base, answered)
}

/// The Gate matches routes on the path as sent, where `%2F` and `;x` are part of a segment;
/// upstreams that decode `%2F` or drop `;` parameters would serve these as `/admin/users`. Bob
/// (not an admin, but allowed by the default rule) sends each trick raw, on its own connection
/// (reqwest would clean the path up first): each is a 400 problem (from the Gate or the gateway)
/// and never reaches the upstream, while a plain path still goes through.
#[tokio::test]
async fn the_gateway_refuses_paths_the_upstream_could_read_differently() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let (base, answered) = start_gateway(config).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let bob = encode_basic("bob", BOB_PASSWORD);
    let tricks = [
        "/admin%2Fusers",
        "/admin%2fusers",
        "/admin%5Cusers",
        "/admin%5cusers",
        "/admin\\users",
        "/admin;x/users",
        "/admin/users;jsessionid=1",
        "/x/../admin/users",
        "/./admin/users",
        "//admin/users",
        "/x//admin/users",
        "/x/%2e%2e/admin/users",
        "/x/%2E%2E/admin/users",
        "/admin%252Fusers",
        "/admin%2",
    ];
    for path in tricks {
        let (status, content_type, _) = raw_get(&addr, path, &bob).await;
        assert_eq!(status, 400, "{path}: status");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{path}: refused by the gateway, not by the HTTP parser"
        );
    }
    assert_eq!(
        answered.load(Ordering::SeqCst),
        0,
        "no trick reached the upstream"
    );

    // Paths in normal form pass, percent-escapes of ordinary characters and a trailing slash too.
    for path in ["/orders", "/orders/", "/caf%C3%A9%20menu?q=a%2Fb;c"] {
        let (status, _, body) = raw_get(&addr, path, &bob).await;
        assert_eq!(status, 200, "{path}: status");
        let seen: serde_json::Value = serde_json::from_str(&body).expect("echo JSON");
        assert_eq!(seen["upstream_saw"]["uri"], format!("/api{path}"), "{path}");
    }
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    // Bob on the real admin path is still the Gate's business.
    let (status, _, _) = raw_get(&addr, "/admin/users", &bob).await;
    assert_eq!(status, 403);
}

/// Each path, sent raw by the holder of `authorization`, is a 400 problem: refused by the Gate
/// or the gateway, not by the HTTP parser.
async fn assert_refused(addr: &str, authorization: &str, paths: &[&str]) {
    for path in paths {
        let (status, content_type, _) = raw_get(addr, path, authorization).await;
        assert_eq!(status, 400, "{path}: status");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{path}: refused by the Gate or the gateway, not by the HTTP parser"
        );
    }
}

/// `GET path` sent byte for byte on a new connection: status, content type and body.
async fn raw_get(addr: &str, path: &str, authorization: &str) -> (u16, Option<String>, String) {
    raw_get_with(addr, path, &[("authorization", authorization)]).await
}

/// `GET target` with `headers`, sent byte for byte on a new connection (no client cleans the
/// target or the header names up): status, content type and body.
async fn raw_get_with(
    addr: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request =
        format!("GET {target} HTTP/1.1\r\nhost: {addr}\r\n{headers}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let content_type = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_owned());
    (status, content_type, body.to_owned())
}

/// Segments that IIS, ASP.NET and Windows file serving read without their trailing dots and
/// whitespace (`/admin./users` is `/admin/users` there) are refused with 400 under the shipped
/// configuration, raw or encoded, whatever the upstream. Everything accepted is forwarded as the
/// very bytes the Gate decided on, behind the upstream's prefix (#14 item 1).
#[tokio::test]
async fn the_gateway_refuses_segments_the_upstream_trims_and_forwards_what_the_gate_decided_on() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let (base, answered) = start_gateway(config).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let bob = encode_basic("bob", BOB_PASSWORD);
    assert_refused(
        &addr,
        &bob,
        &[
            "/admin./users",
            "/admin../users",
            "/admin%20/users",
            "/admin.%20/users",
            "/admin%0B/users",
            "/admin%C2%A0/users",
            "/admin%E3%80%80/users",
            "/admin/users.",
            "/admin/users%20",
        ],
    )
    .await;
    assert_eq!(
        answered.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // An exact upstream serves `/ADMIN/users` as itself, not as `/admin/users`: it goes through
    // as sent, like every accepted path, and the upstream gets the bytes the Gate decided on.
    for (target, forwarded) in [
        ("/ADMIN/users", "/api/ADMIN/users"),
        ("/orders/Bob", "/api/orders/Bob"),
        ("/orders/v1.2/a%20b", "/api/orders/v1.2/a%20b"),
        ("/caf%C3%A9?q=a%2Fb", "/api/caf%C3%A9?q=a%2Fb"),
        ("http://elsewhere.example/orders?x=1", "/api/orders?x=1"),
    ] {
        let (status, _, body) = raw_get(&addr, target, &bob).await;
        assert_eq!(status, 200, "{target}: status");
        let seen: serde_json::Value = serde_json::from_str(&body).expect("echo JSON");
        assert_eq!(seen["upstream_saw"]["uri"], forwarded, "{target}");
    }
}

/// The shipped configuration with `[gateway] upstream_paths = "case-insensitive"`, in a
/// directory of its own: its path.
fn case_insensitive_config(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    std::fs::copy(
        format!("{examples}/example-pepper.txt"),
        dir.join("example-pepper.txt"),
    )
    .expect("pepper");
    let shipped = std::fs::read_to_string(format!("{examples}/gateway.toml")).expect("config");
    let exact = "\nupstream_paths = \"exact\"\n";
    assert!(
        shipped.contains(exact),
        "the shipped file sets upstream_paths"
    );
    let config = dir.join("gateway.toml");
    let text = shipped.replace(exact, "\nupstream_paths = \"case-insensitive\"\n");
    std::fs::write(&config, text).expect("config");
    config
}

/// Express, ASP.NET Core and IIS serve `/ADMIN/users` as `/admin/users`. With
/// `upstream_paths = "case-insensitive"` rules match ignoring ASCII case, so every spelling of
/// the admin path meets the admin rule, and each request is forwarded as sent; the spellings such
/// upstreams read as another name are refused: non-ASCII (folded onto ASCII), `:` (NTFS
/// streams), `~` (8.3 short names) (#14 item 1).
#[tokio::test]
async fn with_a_case_insensitive_upstream_every_spelling_meets_the_rule_the_upstream_reads() {
    let config = case_insensitive_config("gateway-ci");
    let (base, answered) = start_gateway(&config).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let bob = encode_basic("bob", BOB_PASSWORD);
    let alice = encode_basic("alice", ALICE_PASSWORD);
    assert_refused(
        &addr,
        &bob,
        &[
            "/admin./users",
            "/adm%C4%B1n/users",
            "/%E2%84%AAeys",
            "/caf%C3%A9",
            "/ADMINI~1/users",
            "/admin::$DATA/users",
            "/admin%3A%3A$DATA/users",
        ],
    )
    .await;
    assert_eq!(
        answered.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // Every spelling of the admin path meets the admin rule, as the upstream reads them all as
    // one path; each is forwarded as sent.
    for target in ["/ADMIN/users", "/Admin/users", "/aDmIn", "/admin/USERS"] {
        let (status, _, _) = raw_get(&addr, target, &bob).await;
        assert_eq!(status, 403, "{target}: decided by the admin rule");
    }
    for (authorization, target) in [
        (&bob, "/orders/Bob"),
        (&alice, "/admin/USERS"),
        (&alice, "/ADMIN/users?Q=A"),
        (&bob, "/HEALTH"),
    ] {
        let (status, _, body) = raw_get(&addr, target, authorization).await;
        assert_eq!(status, 200, "{target}");
        let seen: serde_json::Value = serde_json::from_str(&body).expect("echo JSON");
        assert_eq!(seen["upstream_saw"]["uri"], format!("/api{target}"));
    }
    let _ = std::fs::remove_dir_all(config.parent().expect("dir"));

    // Under this setting a rule spelled with capitals could never meet the paths it is for.
    let err = portcullis::config::Config::from_str(
        "[gateway]\nupstream_paths = \"case-insensitive\"\n\n[[routes]]\npath = \"/Admin/**\"\npolicy = \"authenticated\"\n",
    )
    .expect_err("an uppercase pattern");
    assert_eq!(err.key(), Some("routes[0].path"), "{err}");
    let err = portcullis::config::Config::from_str("[gateway]\nupstream_paths = \"nocase\"\n")
        .expect_err("an unknown value");
    assert_eq!(err.key(), Some("gateway.upstream_paths"), "{err}");
}

/// CGI, WSGI, Rack and PHP read `x_portcullis_subject` as `X-Portcullis-Subject`: every header
/// whose name holds `_` is dropped, forged principal headers and all (#14 item 2).
#[tokio::test]
async fn the_gateway_drops_headers_with_underscores() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let (base, _) = start_gateway(config).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let alice = encode_basic("alice", ALICE_PASSWORD);
    let forged = [
        ("x_portcullis_subject", "root"),
        ("X_Portcullis_Groups", "admin"),
        ("x-portcullis_scheme", "none"),
        ("x_forwarded_for", "10.9.8.7"),
        ("x_api_key", "pc_forged"),
    ];
    for (target, authorization) in [("/orders", Some(alice.as_str())), ("/health", None)] {
        let mut headers = forged.to_vec();
        headers.extend(authorization.map(|a| ("authorization", a)));
        let (status, _, body) = raw_get_with(&addr, target, &headers).await;
        assert_eq!(status, 200, "{target}");
        let seen: serde_json::Value = serde_json::from_str(&body).expect("echo JSON");
        let headers = seen["upstream_saw"]["headers"]
            .as_object()
            .expect("headers");
        assert!(
            headers.keys().all(|name| !name.contains('_')),
            "{target}: {headers:?}"
        );
        let subject = headers.get("x-portcullis-subject").and_then(|v| v.as_str());
        assert_eq!(subject, authorization.map(|_| "alice"), "{target}");
        assert!(
            !body.contains("root") && !body.contains("10.9.8.7"),
            "{body}"
        );
    }
}

/// Headers that make an upstream serve another path or method, or believe another origin, are
/// removed, and the gateway sets the forwarding headers it knows; a `_method` query parameter is
/// refused (#14 item 3).
#[tokio::test]
async fn the_gateway_strips_overrides_and_sets_the_forwarding_headers_it_knows() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.toml");
    let (base, answered) = start_gateway(config).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let bob = encode_basic("bob", BOB_PASSWORD);
    let (status, _, body) = raw_get_with(
        &addr,
        "/orders",
        &[
            ("authorization", &bob),
            ("X-Original-URL", "/admin/users"),
            ("X-Rewrite-URL", "/admin/users"),
            ("X-HTTP-Method-Override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("X-Method-Override", "DELETE"),
            ("Forwarded", "for=192.0.2.1;host=evil.example;proto=https"),
            ("X-Real-IP", "192.0.2.1"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Prefix", "/admin"),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Ssl", "on"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).expect("echo JSON");
    let seen = &seen["upstream_saw"];
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["uri"], "/api/orders");
    let headers = seen["headers"].as_object().expect("headers");
    for name in [
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-forwarded-host",
        "x-forwarded-prefix",
        "x-forwarded-ssl",
    ] {
        assert!(headers.get(name).is_none(), "{name} forwarded: {headers:?}");
    }
    assert_eq!(headers["forwarded"], "for=127.0.0.1;proto=http");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-port"], port.as_str());
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(answered.load(Ordering::SeqCst), 1);

    for target in [
        "/orders?_method=DELETE",
        "/orders?page=2&_method=DELETE",
        "/orders?%5Fmethod=DELETE",
        "/orders?_METHOD=delete",
        "/orders?.method=DELETE",
        "/orders?+method=DELETE",
        "/orders?_method[]=DELETE",
        "/orders?page=2;_method=DELETE",
        "/health?_method=DELETE",
    ] {
        let (status, content_type, _) =
            raw_get_with(&addr, target, &[("authorization", &bob)]).await;
        assert_eq!(status, 400, "{target}: status");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{target}"
        );
    }
    assert_eq!(
        answered.load(Ordering::SeqCst),
        1,
        "no override reached the upstream"
    );
    for target in ["/orders?method=DELETE", "/orders?my_method=x&q=_method"] {
        let (status, _, _) = raw_get_with(&addr, target, &[("authorization", &bob)]).await;
        assert_eq!(status, 200, "{target}");
    }
}

/// With the API-key header renamed (`apikey`, as Kong users have it) and the dangerous query
/// parameter on, the upstream sees neither the header nor the parameter, only the principal.
#[tokio::test]
async fn the_gateway_hides_the_configured_api_key_header_and_query_parameter() {
    let dir = std::env::temp_dir().join(format!("portcullis-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _ = std::fs::remove_file(dir.join("keys.db"));
    std::fs::write(dir.join("pepper.txt"), "a pepper for the gateway test only").expect("pepper");
    let config_path = dir.join("gateway.toml");
    // The store URL is read relative to the working directory, not to the file: give a full path.
    let config = format!(
        "[store]\nurl = \"sqlite://{}\"\n{}",
        dir.join("keys.db").display(),
        concat!(
            "[api_keys]\npepper_file = \"pepper.txt\"\nheader = \"apikey\"\n",
            "dangerous_query_param = \"apikey\"\n",
        ),
    );
    std::fs::write(&config_path, config).expect("config");
    let services = portcullis::config::Config::from_file(&config_path)
        .expect("config")
        .build_services()
        .await
        .expect("services");
    let issued = services
        .api_keys
        .expect("[api_keys]")
        .create(NewApiKey::new("carol").with_expires_in(Duration::from_secs(3600)))
        .await
        .expect("key");
    let key = issued.key().expose_secret().to_owned();
    let (base, answered) = start_gateway(&config_path).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{base}/orders?page=2"))
        .header("ApiKey", &key)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("echo JSON");
    let seen = &seen["upstream_saw"];
    assert_eq!(seen["uri"], "/api/orders?page=2");
    assert_eq!(seen["headers"]["x-portcullis-subject"], "carol");
    assert!(seen["headers"].get("apikey").is_none(), "{seen}");
    assert!(
        !seen.to_string().contains(&key),
        "the key reached the upstream: {seen}"
    );

    let response = client
        .get(format!("{base}/orders?page=2&apikey={key}&sort=asc"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("echo JSON");
    let seen = &seen["upstream_saw"];
    assert_eq!(seen["uri"], "/api/orders?page=2&sort=asc");
    assert_eq!(seen["headers"]["x-portcullis-subject"], "carol");
    assert!(
        !seen.to_string().contains(&key),
        "the key reached the upstream: {seen}"
    );

    let response = client
        .get(format!("{base}/orders?apikey={key}"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let seen: serde_json::Value = response.json().await.expect("echo JSON");
    assert_eq!(seen["upstream_saw"]["uri"], "/api/orders");
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asks an HTTP server every row of the table with reqwest.
async fn check_http(adapter: &str, base: &str, fixture: &Fixture) {
    let client = reqwest::Client::new();
    for row in TABLE {
        let context = format!("{adapter}, {}", row.name);
        let expected = fixture.reference(row).await;
        let mut request = client.get(format!("{base}{}", row.route.http_path()));
        for (name, value) in fixture.headers(row.credential) {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status().as_u16(), row.status, "{context}: status");
        let challenges: Vec<String> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().expect("ASCII challenge").to_owned())
            .collect();
        assert_eq!(challenges, row.challenges, "{context}: challenges");
        let content_type = response.headers().get("content-type").cloned();
        let body = response.text().await.expect("body");
        match expected {
            Ok(_) => {
                let caller: serde_json::Value =
                    serde_json::from_str(&body).expect("handler answers JSON");
                let principal = caller["subject"]
                    .as_str()
                    .map(|subject| (subject, caller["scheme"].as_str().unwrap_or_default()));
                assert_eq!(principal, row.principal, "{context}: principal");
            }
            Err(rejection) => {
                let reference = fixture.gate.respond(&rejection);
                assert_eq!(
                    content_type.as_ref(),
                    reference.headers().get("content-type"),
                    "{context}: content type"
                );
                assert_eq!(&body, reference.body(), "{context}: body");
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Route {
    /// Any authenticated caller (the Gate's default policy).
    Me,
    /// The `admin` group only.
    Admin,
    /// Anyone.
    Public,
}

impl Route {
    fn http_path(self) -> &'static str {
        match self {
            Route::Me => "/me",
            Route::Admin => "/admin",
            Route::Public => "/public",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Credential {
    None,
    Basic(&'static str, &'static str),
    GoodKey,
    RevokedKey,
    GoodJwt,
    /// Right issuer and claims, signed with another key.
    BadJwt,
}

struct Row {
    name: &'static str,
    route: Route,
    credential: Credential,
    status: u16,
    grpc: Code,
    challenges: &'static [&'static str],
    /// `(subject, scheme)` the handler sees, for allowed rows.
    principal: Option<(&'static str, &'static str)>,
}

/// One Gate with Basic, API keys and JWTs, its credentials, and routes for both HTTP and gRPC.
struct Fixture {
    gate: Gate,
    good_key: SecretString,
    revoked_key: SecretString,
    good_jwt: SecretString,
    bad_jwt: SecretString,
}

impl Fixture {
    async fn new() -> Fixture {
        let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .realm(REALM)
            .hashing(
                HashingConfig::default()
                    .with_memory_kib(64)
                    .with_iterations(1),
            )
            .build()
            .expect("valid Basic settings");
        basic
            .add_user("alice", &ALICE_PASSWORD.into(), ["admin"])
            .await
            .expect("alice added");
        basic
            .add_user("bob", &BOB_PASSWORD.into(), ["staff"])
            .await
            .expect("bob added");

        let keys = ApiKeys::builder(
            Arc::new(MemoryApiKeyStore::new()),
            "adapter tests' pepper, thirty-two bytes or more".into(),
        )
        .build()
        .expect("valid API key settings");
        let issue_key = || {
            keys.create(
                NewApiKey::application("reporting").with_expires_in(Duration::from_secs(3600)),
            )
        };
        let good_key = issue_key().await.expect("key issued");
        let revoked_key = issue_key().await.expect("key issued");
        keys.revoke(revoked_key.id()).await.expect("key revoked");
        let key_authenticator = keys
            .authenticator_builder()
            .realm(REALM)
            .build()
            .expect("valid API key authenticator");

        let issuer = |key| {
            JwtIssuer::builder(ISSUER, key)
                .audience("adapters")
                .build()
                .expect("valid issuer")
        };
        let trusted = issuer(SigningKey::generate(Algorithm::ES256).expect("key generated"));
        let impostor = issuer(SigningKey::generate(Algorithm::ES256).expect("key generated"));
        let carol = Principal::new("carol", SubjectKind::User, Scheme::JWT).with_groups(["staff"]);
        let lifetime = Duration::from_secs(300);
        let jwt = trusted
            .authenticator_builder()
            .realm(REALM)
            .build()
            .expect("valid JWT authenticator");

        let gate = Gate::builder()
            .authenticator(basic)
            .authenticator(key_authenticator)
            .authenticator(jwt)
            .route("/public", Public)
            .route("/whoami.Identity/Hello", Public)
            .route("/admin", Groups::any_of(["admin"]))
            .route("/whoami.Identity/Admin", Groups::any_of(["admin"]))
            .build()
            .expect("valid gate");
        Fixture {
            gate,
            good_key: good_key.key().clone(),
            revoked_key: revoked_key.key().clone(),
            good_jwt: trusted.issue(&carol, lifetime).expect("token issued"),
            bad_jwt: impostor.issue(&carol, lifetime).expect("token issued"),
        }
    }

    /// The headers that carry `credential`.
    fn headers(&self, credential: Credential) -> Vec<(&'static str, String)> {
        let bearer = |token: &SecretString| format!("Bearer {}", token.expose_secret());
        match credential {
            Credential::None => vec![],
            Credential::Basic(user, password) => {
                vec![("authorization", encode_basic(user, password))]
            }
            Credential::GoodKey => vec![("x-api-key", self.good_key.expose_secret().to_owned())],
            Credential::RevokedKey => {
                vec![("x-api-key", self.revoked_key.expose_secret().to_owned())]
            }
            Credential::GoodJwt => vec![("authorization", bearer(&self.good_jwt))],
            Credential::BadJwt => vec![("authorization", bearer(&self.bad_jwt))],
        }
    }

    /// What the Gate itself decides for `row`'s HTTP request, without any adapter. (The decision
    /// for the gRPC path is the same: the same rules name both.)
    async fn reference(&self, row: &Row) -> Result<Option<Principal>, portcullis::Rejection> {
        let mut request = http::Request::get(row.route.http_path());
        for (name, value) in self.headers(row.credential) {
            request = request.header(name, value);
        }
        let (parts, ()) = request.body(()).expect("valid request").into_parts();
        self.gate.check(&RequestView::from_parts(&parts)).await
    }
}
