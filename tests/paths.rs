//! One request, one decision: the Gate decides on exactly the path the framework routes.
//!
//! Checked against the real routers, not a model of them: a property test runs the same
//! generated requests through axum's and actix-web's routers and through `Gate::explain`, with
//! each router template tagged with the Gate rule of the same shape; raw HTTP written to a TCP
//! socket probes axum, actix-web and hyper servers; nesting, HEAD and CORS are tested where
//! users meet them.

mod common;

use common::HeaderAuthenticator;

use std::sync::LazyLock;

use actix_web::{HttpResponse, web};
use axum::routing::{any as any_method, get};
use http::{HeaderMap, Method, Request, Uri};
use portcullis::actix::GateMiddleware;
use portcullis::config::Config;
use portcullis::reject::Challenge;
use portcullis::{Gate, GateLayer, Groups, Methods, Public, RequestView};
use proptest::prelude::*;
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------------------------
// The differential test

/// One handler: its tag, its templates in each router, and the Gate rule of the same shape.
struct Entry {
    tag: &'static str,
    axum: &'static [&'static str],
    actix: &'static [&'static str],
    get_only: bool,
    pattern: &'static str,
}

/// The route table both routers and the Gate are built from. A Gate prefix `/p/**` covers `/p`,
/// `/p/` and everything under, so each router registers all three shapes for it.
const TABLE: &[Entry] = &[
    Entry {
        tag: "root",
        axum: &["/"],
        actix: &["/"],
        get_only: true,
        pattern: "/",
    },
    Entry {
        tag: "health",
        axum: &["/health"],
        actix: &["/health"],
        get_only: true,
        pattern: "/health",
    },
    Entry {
        tag: "admin",
        axum: &["/admin", "/admin/", "/admin/{*rest}"],
        actix: &["/admin", "/admin/{rest:.*}"],
        get_only: false,
        pattern: "/admin/**",
    },
    Entry {
        tag: "public",
        axum: &["/public", "/public/", "/public/{*rest}"],
        actix: &["/public", "/public/{rest:.*}"],
        get_only: false,
        pattern: "/public/**",
    },
    Entry {
        tag: "reports",
        axum: &["/reports/{a}/{b}"],
        actix: &["/reports/{a}/{b}"],
        get_only: false,
        pattern: "/reports/*/*",
    },
    Entry {
        tag: "keys",
        axum: &["/users/{id}/keys"],
        actix: &["/users/{id}/keys"],
        get_only: false,
        pattern: "/users/*/keys",
    },
    Entry {
        tag: "slash",
        axum: &["/x/"],
        actix: &["/x/"],
        get_only: false,
        pattern: "/x/",
    },
];

/// The tag of the catch-all handler and of `POST /health`: the Gate's default rule.
const DEFAULT: &str = "default";

fn rule_name(tag: &str) -> String {
    match TABLE.iter().find(|e| e.tag == tag) {
        Some(e) if e.get_only => format!("GET {}", e.pattern),
        Some(e) => format!("* {}", e.pattern),
        None => DEFAULT.to_owned(),
    }
}

/// Every rule public, so `explain` always reaches the route step and names the rule.
fn differential_gate() -> Gate {
    let mut builder = Gate::builder()
        .authenticator(HeaderAuthenticator)
        .default_policy(Public);
    for e in TABLE {
        let methods = if e.get_only {
            Methods::Only(vec![Method::GET])
        } else {
            Methods::Any
        };
        builder = builder.route_for(methods, e.pattern, Public);
    }
    builder.build().expect("valid gate")
}

fn axum_router() -> axum::Router {
    let tagged = |tag: &'static str| move || async move { ([("x-tag", tag)], tag) };
    let mut router = axum::Router::new();
    for e in TABLE {
        for template in e.axum {
            router = if e.get_only {
                router.route(template, get(tagged(e.tag)).post(tagged(DEFAULT)))
            } else {
                router.route(template, any_method(tagged(e.tag)))
            };
        }
    }
    router.route("/{*rest}", any_method(tagged(DEFAULT)))
}

fn actix_app() -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    fn tagged(tag: &'static str) -> actix_web::Route {
        web::route()
            .to(move || async move { HttpResponse::Ok().insert_header(("x-tag", tag)).body(tag) })
    }
    let mut app = actix_web::App::new();
    for e in TABLE {
        for template in e.actix {
            let resource = web::resource(*template);
            app = app.service(if e.get_only {
                resource
                    .route(tagged(e.tag).method(actix_web::http::Method::GET))
                    .route(tagged(DEFAULT).method(actix_web::http::Method::POST))
            } else {
                resource.route(tagged(e.tag))
            });
        }
    }
    app.service(web::resource("/{rest:.*}").route(tagged(DEFAULT)))
}

/// The rule `Gate::explain` matched, or `None` when the Gate refused the request before routing.
async fn gate_rule(gate: &Gate, method: &Method, uri: &Uri) -> Option<String> {
    let headers = HeaderMap::new();
    let explanation = gate.explain(&RequestView::new(method, uri, &headers)).await;
    let route = explanation
        .steps
        .iter()
        .find(|(stage, _)| *stage == "route")
        .map(|(_, detail)| {
            detail
                .strip_prefix("matched rule ")
                .expect("route step")
                .to_owned()
        });
    match &explanation.result {
        Err(rejection) => {
            assert!(
                route.is_none(),
                "only refused before routing: {explanation}"
            );
            assert_eq!(rejection.status(), 400, "{explanation}");
            None
        }
        Ok(_) => Some(route.expect("a route step")),
    }
}

/// Which handler axum runs for the request, if any.
async fn axum_runs(router: &axum::Router, method: &Method, uri: &Uri) -> Option<String> {
    let request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(axum::body::Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let tag = response.headers().get("x-tag")?.to_str().ok()?.to_owned();
    assert_eq!(response.status(), 200);
    Some(tag)
}

/// The invariant: whenever a router runs a handler, the Gate named that handler's rule, or
/// refused the request.
fn agrees(router: &str, path: &str, method: &str, ran: Option<&str>, gate: Option<&str>) {
    if let (Some(tag), Some(rule)) = (ran, gate) {
        assert_eq!(
            rule,
            rule_name(tag),
            "{router} ran `{tag}` for {method} {path:?}, the Gate decided by rule `{rule}`"
        );
    }
}

/// Runs `(method, path)` pairs through both routers and the Gate.
fn check_all(cases: &[(String, String)]) {
    static GATE: LazyLock<Gate> = LazyLock::new(differential_gate);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let router = axum_router();
    let mut checked = 0;
    let outcomes: Vec<(String, String, Option<String>)> = runtime.block_on(async {
        let mut outcomes = Vec::new();
        for (method, path) in cases {
            let Ok(uri) = path.parse::<Uri>() else {
                continue; // no HTTP server accepts it either
            };
            let method_1 = Method::from_bytes(method.as_bytes()).expect("method");
            let gate = gate_rule(&GATE, &method_1, &uri).await;
            let ran = axum_runs(&router, &method_1, &uri).await;
            agrees("axum", path, method, ran.as_deref(), gate.as_deref());
            outcomes.push((method.clone(), path.clone(), gate));
        }
        outcomes
    });
    actix_web::rt::System::new().block_on(async {
        let app = actix_web::test::init_service(actix_app()).await;
        for (method, path, gate) in &outcomes {
            if path.parse::<actix_web::http::Uri>().is_err() {
                continue;
            }
            let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
            let request = actix_web::test::TestRequest::default()
                .method(method.clone())
                .uri(path)
                .to_request();
            let response = actix_web::test::call_service(&app, request).await;
            let ran = response
                .headers()
                .get("x-tag")
                .and_then(|tag| tag.to_str().ok());
            let method = method.as_str();
            agrees("actix-web", path, method, ran, gate.as_deref());
            checked += 1;
        }
    });
    assert!(checked > 0 || cases.is_empty());
}

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        ".", "..", "%2e", "%2E", "%2e%2e", "%2E.", "", "%70", "%70ublic", "%2F", "%2f", "%5C", ";",
        ";x", "é", "%C3%A9", "%20", "%2B", "admin", "ADMIN", "Admin", "admin.", "health", "public",
        "reports", "users", "keys", "x", "a", "b",
    ])
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "HEAD", "get", "POST", "PURGE"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Each case is a batch, so the routers are built once per 16 requests.
    #[test]
    fn gate_and_routers_agree_on_every_spelling(
        batch in prop::collection::vec(
            (method(), prop::collection::vec(segment(), 0..5), any::<bool>()),
            16,
        ),
    ) {
        let cases: Vec<(String, String)> = batch
            .into_iter()
            .map(|(method, segments, trailing)| {
                let mut path = format!("/{}", segments.join("/"));
                if trailing && path != "/" {
                    path.push('/');
                }
                (method.to_owned(), path)
            })
            .collect();
        check_all(&cases);
    }
}

/// The spellings from the review, and their neighbours, through both routers.
#[test]
fn gate_and_routers_agree_on_the_known_bypasses() {
    let cases: Vec<(String, String)> = PROBES
        .iter()
        .chain(
            [
                "/", "/health/", "/public", "/public/", "/admin", "/x/", "/x",
            ]
            .iter(),
        )
        .flat_map(|path| ["GET", "HEAD", "get", "POST"].map(|m| (m.to_owned(), (*path).to_owned())))
        .collect();
    check_all(&cases);
}

// ---------------------------------------------------------------------------------------------
// Raw sockets

/// Paths a client could send to reach a protected handler by another spelling.
const PROBES: &[&str] = &[
    "/admin/../health",
    "/admin/%2e%2e/health",
    "/admin/%2E%2E/health",
    "/admin/%2e./health",
    "/admin/.%2E/health",
    "/admin/./../health",
    "/admin/users/x/../../../health",
    "/admin/..",
    "/admin/.",
    "/reports/../health",
    "/reports/..%2f/health",
    "/reports/x/..",
    "/%70ublic/x",
    "/%70ublic",
    "/p%75blic/x",
    "/public/..",
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public%2F../admin",
    "/public%2f..%2fadmin",
    "/public/..%5Cadmin",
    "/public\\..\\admin",
    "/public/%5c../admin",
    "//public/../admin",
    "/public//../admin",
    "/./public/x",
    "/health/.",
    "/health/",
    "/health;x",
    "/health%3Bx",
    "/hea%6Cth",
    "/%68ealth",
    "/health%00",
    "/health%",
    "/health%2",
    "/health%%32e",
    "/health%252e",
];

/// The Gate every raw-socket server runs: `/health` and `/public/**` public, all else closed.
fn probe_gate() -> Gate {
    Gate::builder()
        .authenticator(HeaderAuthenticator)
        .route_for(Methods::Only(vec![Method::GET]), "/health", Public)
        .route("/public/**", Public)
        .build()
        .expect("valid gate")
}

/// Handlers anonymous callers may reach through `probe_gate`.
const OPEN: &[&str] = &["health", "public"];

async fn axum_server(gate: Gate) -> String {
    let tagged = |tag: &'static str| move || async move { ([("x-tag", tag)], tag) };
    let app = axum::Router::new()
        .route("/health", get(tagged("health")))
        .route("/public", get(tagged("public")))
        .route("/public/", get(tagged("public")))
        .route("/public/{*rest}", get(tagged("public")))
        .route("/admin/{*rest}", any_method(tagged("admin")))
        .route("/reports/{a}/{b}", any_method(tagged("reports")))
        .route("/{*rest}", any_method(tagged("protected")))
        .layer(GateLayer::new(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

fn actix_server(gate: Gate) -> String {
    fn tagged(tag: &'static str) -> actix_web::Route {
        web::route()
            .to(move || async move { HttpResponse::Ok().insert_header(("x-tag", tag)).body(tag) })
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .wrap(GateMiddleware::new(gate.clone()))
                    .service(web::resource("/health").route(tagged("health")))
                    .service(web::resource("/public").route(tagged("public")))
                    .service(web::resource("/public/{rest:.*}").route(tagged("public")))
                    .service(web::resource("/admin/{rest:.*}").route(tagged("admin")))
                    .service(web::resource("/reports/{a}/{b}").route(tagged("reports")))
                    .service(web::resource("/{rest:.*}").route(tagged("protected")))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listen")
            .run()
            .await
            .expect("serve");
        });
    });
    addr
}

/// hyper has no router: the service routes on the raw path as a hand-written one would.
async fn hyper_server(gate: Gate) -> String {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;

    async fn handler(
        request: Request<hyper::body::Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
        let path = request.uri().path();
        let tag = if path == "/health" {
            "health"
        } else if path == "/public" || path.starts_with("/public/") {
            "public"
        } else {
            "protected"
        };
        Ok(http::Response::builder()
            .header("x-tag", tag)
            .body(Full::new(Bytes::from(tag)))
            .expect("response"))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = tower::ServiceBuilder::new()
                .layer(GateLayer::new(gate.clone()))
                .service_fn(handler);
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

/// `METHOD target` written byte for byte on a new connection: status and `x-tag`.
async fn raw(addr: &str, method: &str, target: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let tag = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-tag")
            .then(|| value.trim().to_owned())
    });
    (status, tag)
}

/// Every probe, and each with HEAD and a trailing slash, anonymously: a protected handler never
/// answers, and the spellings the Gate refuses get its 400 (a server that refuses first, with
/// its own 400 or 404, is fine too).
async fn probe(server: &str, addr: &str) {
    let mut refused = 0;
    for path in PROBES {
        for method in ["GET", "HEAD", "POST"] {
            for target in [path.to_string(), format!("{path}/")] {
                let (status, tag) = raw(addr, method, &target).await;
                if let Some(tag) = &tag {
                    assert!(
                        OPEN.contains(&tag.as_str()),
                        "{server}: anonymous {method} {target} ran `{tag}` ({status})"
                    );
                }
                assert_ne!(status, 0, "{server}: {method} {target}: no answer");
                if status == 400 {
                    refused += 1;
                }
            }
        }
    }
    assert!(refused > PROBES.len(), "{server}: only {refused} refused");
    // And what should pass does.
    for (method, path, tag) in [
        ("GET", "/health", "health"),
        ("HEAD", "/health", "health"),
        ("GET", "/public/x", "public"),
        ("GET", "/public/caf%C3%A9%20x", "public"),
    ] {
        assert_eq!(
            raw(addr, method, path).await,
            (200, Some(tag.to_owned())),
            "{server}: {method} {path}"
        );
    }
    for (method, path) in [
        ("GET", "/admin/x"),
        ("HEAD", "/admin/x"),
        ("GET", "/health/"),
        ("POST", "/health"),
        ("GET", "/reports/a/b"),
        ("GET", "/Public/x"),
    ] {
        assert_eq!(
            raw(addr, method, path).await,
            (401, None),
            "{server}: {method} {path}"
        );
    }
}

#[tokio::test]
async fn raw_probes_reach_no_protected_axum_handler() {
    let addr = axum_server(probe_gate()).await;
    probe("axum", &addr).await;
}

#[tokio::test]
async fn raw_probes_reach_no_protected_actix_handler() {
    let addr = actix_server(probe_gate());
    probe("actix-web", &addr).await;
}

#[tokio::test]
async fn raw_probes_reach_no_protected_hyper_handler() {
    let addr = hyper_server(probe_gate()).await;
    probe("hyper", &addr).await;
}

// ---------------------------------------------------------------------------------------------
// Nesting: rules name the path the client sent

fn admin_gate() -> Gate {
    Gate::builder()
        .authenticator(HeaderAuthenticator)
        .route("/api/admin/**", Groups::any_of(["admin"]))
        .build()
        .expect("valid gate")
}

fn inner_router() -> axum::Router {
    axum::Router::new()
        .route("/admin/users", get(|| async { "admin" }))
        .route("/orders", get(|| async { "orders" }))
}

async fn status(router: &axum::Router, path: &str, user: &str, groups: &str) -> u16 {
    let request = Request::get(path)
        .header("x-user", user)
        .header("x-groups", groups)
        .body(axum::body::Body::empty())
        .expect("request");
    router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
        .as_u16()
}

async fn assert_admin_rule_holds(app: &axum::Router, how: &str) {
    assert_eq!(
        status(app, "/api/admin/users", "bob", "").await,
        403,
        "{how}"
    );
    assert_eq!(
        status(app, "/api/admin/users", "alice", "admin").await,
        200,
        "{how}"
    );
    assert_eq!(status(app, "/api/orders", "bob", "").await, 200, "{how}");
}

#[tokio::test]
async fn a_gate_layer_inside_nest_decides_on_the_path_the_client_sent() {
    let nested =
        axum::Router::new().nest("/api", inner_router().layer(GateLayer::new(admin_gate())));
    assert_admin_rule_holds(&nested, "GateLayer inside nest").await;

    let service = inner_router().layer(GateLayer::new(admin_gate()));
    let nested_service = axum::Router::new().nest_service("/api", service);
    assert_admin_rule_holds(&nested_service, "GateLayer inside nest_service").await;

    let outside = axum::Router::new()
        .nest("/api", inner_router())
        .layer(GateLayer::new(admin_gate()));
    assert_admin_rule_holds(&outside, "GateLayer around the outer router").await;
}

#[actix_web::test]
async fn actix_middleware_on_a_scope_decides_on_the_full_path() {
    let app = actix_web::test::init_service(
        actix_web::App::new().service(
            web::scope("/api")
                .wrap(GateMiddleware::new(admin_gate()))
                .route("/admin/users", web::get().to(|| async { "admin" }))
                .route("/orders", web::get().to(|| async { "orders" })),
        ),
    )
    .await;
    for (path, user, groups, want) in [
        ("/api/admin/users", "bob", "", 403),
        ("/api/admin/users", "alice", "admin", 200),
        ("/api/orders", "bob", "", 200),
    ] {
        let request = actix_web::test::TestRequest::get()
            .uri(path)
            .insert_header(("x-user", user))
            .insert_header(("x-groups", groups))
            .to_request();
        let response = actix_web::test::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), want, "{path} as {user}");
    }
}

// ---------------------------------------------------------------------------------------------
// HEAD and OPTIONS

#[test]
fn a_rule_naming_head_without_get_is_refused() {
    let err = Gate::builder()
        .route_for(Methods::Only(vec![Method::HEAD]), "/**", Public)
        .build()
        .expect_err("HEAD without GET");
    assert!(err.message().contains("HEAD"), "{err}");
    assert!(
        Gate::builder()
            .route_for(
                Methods::Only(vec![Method::HEAD, Method::GET]),
                "/**",
                Public
            )
            .build()
            .is_ok()
    );

    let err =
        Config::from_str("[[routes]]\npath = \"/**\"\nmethods = [\"head\"]\npolicy = \"public\"\n")
            .expect_err("HEAD without GET in TOML");
    let location = err.location().expect("located");
    assert_eq!((location.line, location.column), (3, 12), "{err}");
    assert_eq!(err.key(), Some("routes[0].methods"), "{err}");
}

#[test]
fn route_patterns_with_characters_a_reader_decodes_are_refused() {
    for pattern in [
        "/%61dmin/**",
        "/admin;x",
        "/a b",
        "/admin/../x",
        "//admin",
        "/café",
    ] {
        assert!(
            Gate::builder().route(pattern, Public).build().is_err(),
            "{pattern}"
        );
    }
    let err = Config::from_str("[[routes]]\npath = \"/%61dmin/**\"\npolicy = \"public\"\n")
        .expect_err("encoded pattern");
    let location = err.location().expect("located");
    assert_eq!(location.line, 2, "{err}");
    assert_eq!(err.key(), Some("routes[0].path"), "{err}");
    assert!(err.message().contains("`%`"), "{err}");
}

#[tokio::test]
async fn head_is_decided_as_the_get_it_runs_as() {
    // A public HEAD probe rule cannot be written; HEAD and GET together can.
    let gate = Gate::builder()
        .authenticator(HeaderAuthenticator)
        .route_for(
            Methods::Only(vec![Method::GET, Method::HEAD]),
            "/status",
            Public,
        )
        .route_for(Methods::Only(vec![Method::POST]), "/**", Public)
        .build()
        .expect("valid gate");
    let app = axum::Router::new()
        .route("/status", get(|| async { "up" }))
        .route(
            "/admin",
            get(|| async { "admin" }).post(|| async { "posted" }),
        )
        .layer(GateLayer::new(gate));
    let anonymous = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let status = |request: Request<axum::body::Body>| async {
        app.clone()
            .oneshot(request)
            .await
            .expect("infallible")
            .status()
            .as_u16()
    };
    assert_eq!(status(anonymous(Method::HEAD, "/admin")).await, 401);
    assert_eq!(status(anonymous(Method::GET, "/admin")).await, 401);
    assert_eq!(status(anonymous(Method::POST, "/admin")).await, 200);
    assert_eq!(status(anonymous(Method::HEAD, "/status")).await, 200);
}

/// tower-http's `CorsLayer` outside the `GateLayer` answers preflights itself, and the real
/// request is still authenticated. Inside it (the usual mistake) the Gate sees the preflight,
/// which carries no credentials, and refuses it with 401.
#[tokio::test]
async fn cors_outside_the_gate_answers_preflights_and_the_request_is_still_checked() {
    use tower_http::cors::{Any, CorsLayer};
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers([http::header::AUTHORIZATION]);
    let routes = || axum::Router::new().route("/me", get(|| async { "me" }));
    let gate = || {
        Gate::builder()
            .authenticator(HeaderAuthenticator)
            .build()
            .expect("valid gate")
    };
    let preflight = || {
        Request::options("/me")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let get_me = |user: Option<&str>| {
        let mut request = Request::get("/me").header("origin", "https://app.example");
        if let Some(user) = user {
            request = request.header("x-user", user);
        }
        request.body(axum::body::Body::empty()).expect("request")
    };

    let right = routes().layer(GateLayer::new(gate())).layer(cors.clone());
    let response = right
        .clone()
        .oneshot(preflight())
        .await
        .expect("infallible");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "*",
        "the preflight is answered by CORS"
    );
    let response = right
        .clone()
        .oneshot(get_me(None))
        .await
        .expect("infallible");
    assert_eq!(
        response.status(),
        401,
        "the real request is still authenticated"
    );
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let response = right
        .oneshot(get_me(Some("alice")))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 200);

    let wrong = routes().layer(cors).layer(GateLayer::new(gate()));
    let response = wrong.oneshot(preflight()).await.expect("infallible");
    assert_eq!(
        response.status(),
        401,
        "inside the Gate, preflights are refused"
    );
}

// ---------------------------------------------------------------------------------------------
// How a refused path is answered

#[tokio::test]
async fn a_refused_path_is_a_400_from_the_responder_and_audited() {
    let logs = common::logs::capture();

    let problem = axum::Router::new()
        .route("/{*rest}", get(|| async { "ran" }))
        .layer(GateLayer::new(probe_gate()));
    let custom_gate = Gate::builder()
        .authenticator(HeaderAuthenticator)
        .responder(
            |rejection: &portcullis::reject::PublicRejection, _: &[Challenge]| {
                http::Response::builder()
                    .status(rejection.status())
                    .body(format!("custom {}", rejection.status().as_u16()))
                    .expect("response")
            },
        )
        .build()
        .expect("valid gate");
    let custom = axum::Router::new()
        .route("/{*rest}", get(|| async { "ran" }))
        .layer(GateLayer::new(custom_gate));
    let paths = ["/admin/../health", "/%70ublic/x", "//admin", "/a%2Fb"];
    for path in paths {
        let request = || {
            Request::get(path)
                .header("x-user", "alice")
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let response = problem
            .clone()
            .oneshot(request())
            .await
            .expect("infallible");
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let response = custom.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(response.status(), 400, "{path}");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"custom 400", "{path}");
    }
    let output = logs.text();
    let refused: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("portcullis::audit") && line.contains("status=400"))
        .collect();
    assert_eq!(
        refused.len(),
        2 * paths.len(),
        "one event per refusal:\n{output}"
    );
    assert!(refused[0].contains("/admin/../health"), "{}", refused[0]);
}
