//! Authorization on the framework's own routes (issue #13), against axum's and actix-web's real
//! routers: route-bound policies (`tower::PolicyLayer` under `route_layer`,
//! `actix::PolicyMiddleware` on a resource), handler guards (`Guard::require`), and the
//! `Principal`, `Option<Principal>` and `Claims<T>` extractors.
//!
//! Invariants held here, in both frameworks:
//! - each request is authenticated once, however many policies judge it (authenticator calls
//!   are counted);
//! - a refusal after the Gate is the Gate's: same status and challenges, built by the Gate's own
//!   responder (a custom one shows in every kind of refusal), one audit event;
//! - without a Gate in front, every one of them refuses with 500 and never lets a request through.
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "basic",
    feature = "jwt"
))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt as _;
use portcullis::actix::{GateMiddleware, PolicyMiddleware};
use portcullis::basic::encode_basic;
use portcullis::extract::{Claims, GateContext, Guard};
use portcullis::jwt::{Algorithm, JwtIssuer, SigningKey};
use portcullis::reject::{Challenge, Refusal, add_standard_headers};
use portcullis::store::MemoryUserStore;
use portcullis::tower::PolicyLayer;
use portcullis::{
    Authenticator, BoxFuture, CredentialSource, Gate, GateLayer, Groups, Outcome, PolicyExt,
    Principal, Public, RequestView, Scheme, Scopes, SubjectKind,
};
use serde::Deserialize;
use tower::{Layer as _, ServiceExt as _};

use common::{REALM, basic_builder, logs};

const ISSUER: &str = "https://issuer.route-policies.test";
const BASIC: &str = r#"Basic realm="portcullis-tests", charset="UTF-8""#;
const BEARER: &str = r#"Bearer realm="portcullis-tests""#;
const BEARER_INVALID: &str = r#"Bearer realm="portcullis-tests", error="invalid_token", error_description="The access token is invalid or expired""#;
const BEARER_SCOPE: &str = r#"Bearer realm="portcullis-tests", error="insufficient_scope", error_description="The access token lacks a required scope", scope="reports:read""#;
const CUSTOM: &str = "refused by the service's own responder";

/// Counts the calls to an authenticator's `authenticate`.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Authenticator>,
    calls: Arc<AtomicUsize>,
}

impl Authenticator for Counting {
    fn scheme(&self) -> Scheme {
        self.inner.scheme()
    }
    fn challenge(&self) -> Challenge {
        self.inner.challenge()
    }
    fn sources(&self) -> Vec<CredentialSource> {
        self.inner.sources()
    }
    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.authenticate(request)
    }
}

/// A Gate with Basic (alice: admin, bob: staff) and JWT bearer tokens, counting authentications;
/// `/public/**` lets anonymous callers through, everything else needs a caller. With `custom`,
/// refusals carry [`CUSTOM`] as their body.
struct Fixture {
    gate: Gate,
    calls: Arc<AtomicUsize>,
    /// carol, groups `admin`, scope `reports:read`.
    admin_token: String,
    /// dave, no groups, scope `reports:write`.
    plain_token: String,
}

impl Fixture {
    async fn new(custom: bool) -> Fixture {
        let basic = Arc::new(
            basic_builder(Arc::new(MemoryUserStore::new()))
                .build()
                .expect("valid Basic settings"),
        );
        for (user, groups) in [("alice", ["admin"]), ("bob", ["staff"])] {
            basic
                .add_user(user, &"password".into(), groups)
                .await
                .expect("user added");
        }
        let issuer =
            JwtIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256).expect("key"))
                .audience("route-policies")
                .build()
                .expect("valid issuer");
        let jwt = issuer
            .authenticator_builder()
            .realm(REALM)
            .build()
            .expect("valid JWT authenticator");
        let token = |subject: &str, groups: &[&str], scopes: &[&str]| {
            let principal = Principal::new(subject, SubjectKind::User, Scheme::JWT)
                .with_groups(groups.iter().copied())
                .with_scopes(scopes.iter().copied());
            issuer
                .issue(&principal, Duration::from_secs(300))
                .expect("token issued")
                .expose_secret()
                .to_owned()
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let counting = |inner: Arc<dyn Authenticator>| Counting {
            inner,
            calls: Arc::clone(&calls),
        };
        let mut builder = Gate::builder()
            .authenticator(counting(basic))
            .authenticator(counting(Arc::new(jwt)))
            .route("/public/**", Public);
        if custom {
            builder = builder.responder(
                |rejection: &portcullis::reject::PublicRejection, challenges: &[Challenge]| {
                    let mut response = http::Response::new(CUSTOM.to_owned());
                    *response.status_mut() = rejection.status();
                    add_standard_headers(&mut response, rejection, challenges);
                    response
                },
            );
        }
        Fixture {
            gate: builder.build().expect("valid gate"),
            calls,
            admin_token: token("carol", &["admin"], &["reports:read"]),
            plain_token: token("dave", &[], &["reports:write"]),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The claims the issuer writes, as a handler wants them.
#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    scope: String,
}

/// A shape the issuer's claims do not have: `exp` is a number.
#[derive(Deserialize)]
#[expect(dead_code, reason = "never deserialized successfully")]
struct StringExpiry {
    exp: String,
}

// The same routes in both frameworks:
//   /admin, /public/admin          route-bound policy: group `admin`
//   /reports                       route-bound policy: scope `reports:read`
//   /guarded, /public/guarded      handler guard: group `admin`
//   /me, /public/me                `Principal`
//   /public/maybe                  `Option<Principal>`
//   /claims, /public/claims        `Claims<TokenClaims>`
//   /claims/mismatch               `Claims<StringExpiry>`

fn admins() -> Groups {
    Groups::any_of(["admin"])
}

fn reporters() -> Scopes {
    Scopes::all_of(["reports:read"])
}

async fn guarded(guard: Guard) -> Result<String, Refusal> {
    guard.require(&admins())?;
    let subject = guard.principal().map(Principal::subject).unwrap_or("-");
    Ok(format!("guarded for {subject}"))
}

async fn me(principal: Principal) -> String {
    format!("me: {}", principal.subject())
}

async fn maybe(principal: Option<Principal>) -> String {
    match principal {
        Some(principal) => format!("maybe: {}", principal.subject()),
        None => "maybe: anonymous".to_owned(),
    }
}

async fn claims(Claims(claims): Claims<TokenClaims>) -> String {
    format!("claims: {} {}", claims.sub, claims.scope)
}

async fn mismatch(_: Claims<StringExpiry>) -> String {
    "mismatch: deserialized".to_owned()
}

fn axum_app(gate: Option<&Gate>) -> Router {
    let admin = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route("/public/admin", get(|| async { "admin" }))
        .route_layer(PolicyLayer::new(admins()).expect("valid policy"));
    let reports = Router::new()
        .route("/reports", get(|| async { "reports" }))
        .route_layer(PolicyLayer::new(reporters()).expect("valid policy"));
    let app = Router::new()
        .route("/guarded", get(guarded))
        .route("/public/guarded", get(guarded))
        .route("/me", get(me))
        .route("/public/me", get(me))
        .route("/public/maybe", get(maybe))
        .route("/claims", get(claims))
        .route("/public/claims", get(claims))
        .route("/claims/mismatch", get(mismatch))
        .merge(admin)
        .merge(reports);
    match gate {
        Some(gate) => app.layer(GateLayer::new(gate.clone())),
        None => app,
    }
}

fn actix_app(
    gate: Option<Gate>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use actix_web::middleware::Condition;
    use actix_web::web;
    let admin = |path: &str| {
        web::resource(path.to_owned())
            .wrap(PolicyMiddleware::new(admins()).expect("valid policy"))
            .route(web::get().to(|| async { "admin" }))
    };
    // Without a Gate, a Gate middleware that does nothing stands in its place.
    let enabled = gate.is_some();
    let middleware = GateMiddleware::new(gate.unwrap_or_else(|| {
        Gate::builder()
            .route("/**", Public)
            .build()
            .expect("valid gate")
    }));
    actix_web::App::new()
        .wrap(Condition::new(enabled, middleware))
        .service(admin("/admin"))
        .service(admin("/public/admin"))
        .service(
            web::resource("/reports")
                .wrap(PolicyMiddleware::new(reporters()).expect("valid policy"))
                .route(web::get().to(|| async { "reports" })),
        )
        .route("/guarded", web::get().to(guarded))
        .route("/public/guarded", web::get().to(guarded))
        .route("/me", web::get().to(me))
        .route("/public/me", web::get().to(me))
        .route("/public/maybe", web::get().to(maybe))
        .route("/claims", web::get().to(claims))
        .route("/public/claims", web::get().to(claims))
        .route("/claims/mismatch", web::get().to(mismatch))
}

/// What came back: status, `WWW-Authenticate` values, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    challenges: Vec<String>,
    body: String,
}

/// The credential a request carries.
#[derive(Clone, Copy)]
enum Caller<'a> {
    Anonymous,
    Basic(&'a str),
    Bearer(&'a str),
}

impl Caller<'_> {
    fn authorization(self) -> Option<String> {
        match self {
            Caller::Anonymous => None,
            Caller::Basic(user) => Some(encode_basic(user, "password")),
            Caller::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }
}

async fn axum_call(gate: Option<&Gate>, path: &str, caller: Caller<'_>) -> Answer {
    let mut request = Request::get(path);
    if let Some(value) = caller.authorization() {
        request = request.header("authorization", value);
    }
    let response = axum_app(gate)
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect();
    let body = response.into_body().collect().await.expect("body");
    Answer {
        status,
        challenges,
        body: String::from_utf8(body.to_bytes().to_vec()).expect("UTF-8"),
    }
}

async fn actix_call(gate: Option<&Gate>, path: &str, caller: Caller<'_>) -> Answer {
    let app = actix_web::test::init_service(actix_app(gate.cloned())).await;
    let mut request = actix_web::test::TestRequest::get().uri(path);
    if let Some(value) = caller.authorization() {
        request = request.insert_header(("authorization", value));
    }
    let response = actix_web::test::call_service(&app, request.to_request()).await;
    let status = response.status().as_u16();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect();
    let body = actix_web::test::read_body(response).await;
    Answer {
        status,
        challenges,
        body: String::from_utf8(body.to_vec()).expect("UTF-8"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Framework {
    Axum,
    Actix,
}

const FRAMEWORKS: [Framework; 2] = [Framework::Axum, Framework::Actix];

async fn call(framework: Framework, gate: Option<&Gate>, path: &str, caller: Caller<'_>) -> Answer {
    match framework {
        Framework::Axum => axum_call(gate, path, caller).await,
        Framework::Actix => actix_call(gate, path, caller).await,
    }
}

/// Runs `test` on a current-thread runtime inside an actix system (actix's test server needs
/// one; axum runs on it too), so audit events are captured on this thread.
fn run<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    actix_web::rt::System::new().block_on(test());
}

/// One row: a request, what it must get, in both frameworks, authenticating once.
async fn expect(
    fixture: &Fixture,
    path: &str,
    caller: Caller<'_>,
    status: u16,
    challenges: &[&str],
    body: &str,
) {
    for framework in FRAMEWORKS {
        let before = fixture.calls();
        let answer = call(framework, Some(&fixture.gate), path, caller).await;
        let context = format!("{framework:?} {path}: {answer:?}");
        assert_eq!(answer.status, status, "{context}");
        assert_eq!(answer.challenges, challenges, "{context}");
        if status == 200 {
            assert_eq!(answer.body, body, "{context}");
        }
        let authenticated = usize::from(!matches!(caller, Caller::Anonymous));
        assert_eq!(
            fixture.calls() - before,
            authenticated,
            "one authentication per request: {context}"
        );
    }
}

#[test]
fn route_bound_policies_allow_and_refuse_as_the_gate_does() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        let (admin, plain) = (&fixture.admin_token, &fixture.plain_token);
        expect(
            &fixture,
            "/admin",
            Caller::Basic("alice"),
            200,
            &[],
            "admin",
        )
        .await;
        expect(&fixture, "/admin", Caller::Bearer(admin), 200, &[], "admin").await;
        expect(&fixture, "/admin", Caller::Basic("bob"), 403, &[], "").await;
        expect(&fixture, "/admin", Caller::Bearer(plain), 403, &[], "").await;
        // The Gate lets anonymous callers into /public/**; the route's own policy does not.
        let every = &[BASIC, BEARER];
        expect(&fixture, "/public/admin", Caller::Anonymous, 401, every, "").await;
        // Scopes: RFC 6750 insufficient_scope with the scope, as the Gate answers.
        expect(
            &fixture,
            "/reports",
            Caller::Bearer(admin),
            200,
            &[],
            "reports",
        )
        .await;
        let scope = &[BEARER_SCOPE];
        expect(&fixture, "/reports", Caller::Bearer(plain), 403, scope, "").await;
        expect(&fixture, "/reports", Caller::Basic("alice"), 403, scope, "").await;
    });
}

#[test]
fn the_gate_still_decides_first() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        // No credential on a route the Gate protects: the Gate's 401, the route layer never runs.
        expect(
            &fixture,
            "/admin",
            Caller::Anonymous,
            401,
            &[BASIC, BEARER],
            "",
        )
        .await;
        let bad = Caller::Basic("mallory");
        expect(&fixture, "/admin", bad, 401, &[BASIC, BEARER], "").await;
    });
}

#[test]
fn handler_guards_allow_and_refuse_as_the_gate_does() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        let ok = "guarded for alice";
        expect(&fixture, "/guarded", Caller::Basic("alice"), 200, &[], ok).await;
        let ok = "guarded for carol";
        let admin = Caller::Bearer(&fixture.admin_token);
        expect(&fixture, "/guarded", admin, 200, &[], ok).await;
        expect(&fixture, "/guarded", Caller::Basic("bob"), 403, &[], "").await;
        let every = &[BASIC, BEARER];
        expect(
            &fixture,
            "/public/guarded",
            Caller::Anonymous,
            401,
            every,
            "",
        )
        .await;
    });
}

#[test]
fn principal_extractors_read_the_gates_context() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        expect(
            &fixture,
            "/me",
            Caller::Basic("alice"),
            200,
            &[],
            "me: alice",
        )
        .await;
        // A route the Gate opens to anonymous callers: `Principal` answers 401 with every
        // challenge (it had none before), `Option<Principal>` gets `None`.
        let every = &[BASIC, BEARER];
        expect(&fixture, "/public/me", Caller::Anonymous, 401, every, "").await;
        let anonymous = "maybe: anonymous";
        expect(
            &fixture,
            "/public/maybe",
            Caller::Anonymous,
            200,
            &[],
            anonymous,
        )
        .await;
        let alice = "maybe: alice";
        expect(
            &fixture,
            "/public/maybe",
            Caller::Basic("alice"),
            200,
            &[],
            alice,
        )
        .await;
    });
}

#[test]
fn typed_claims_deserialize_or_refuse() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        let admin = Caller::Bearer(&fixture.admin_token);
        let ok = "claims: carol reports:read";
        expect(&fixture, "/claims", admin, 200, &[], ok).await;
        // No token claims: Basic is a principal, but has nothing to deserialize.
        expect(&fixture, "/claims", Caller::Basic("alice"), 403, &[], "").await;
        let every = &[BASIC, BEARER];
        expect(
            &fixture,
            "/public/claims",
            Caller::Anonymous,
            401,
            every,
            "",
        )
        .await;
        // Claims of another shape: 401 invalid_token, serde's message in the audit event only.
        let logs = logs::capture();
        let invalid = &[BASIC, BEARER_INVALID];
        expect(&fixture, "/claims/mismatch", admin, 401, invalid, "").await;
        let text = logs.text();
        let refusals: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("stage=\"handler\""))
            .collect();
        assert_eq!(refusals.len(), 2, "one audit event per framework: {text}");
        for line in refusals {
            assert!(line.contains("invalid type: integer"), "{line}");
            assert!(line.contains("status=401"), "{line}");
        }
        for framework in FRAMEWORKS {
            let answer = call(framework, Some(&fixture.gate), "/claims/mismatch", admin).await;
            assert!(
                !answer.body.contains("integer"),
                "{framework:?}: {answer:?}"
            );
            assert!(!answer.body.contains("exp"), "{framework:?}: {answer:?}");
        }
    });
}

#[test]
fn principal_claims_as_has_three_outcomes() {
    let principal = Principal::new("erin", SubjectKind::User, Scheme::JWT);
    assert!(principal.claims_as::<serde_json::Value>().is_none());
    let mut map = serde_json::Map::new();
    map.insert("sub".into(), "erin".into());
    map.insert("scope".into(), "a b".into());
    let principal = principal.with_claims(map);
    let claims: TokenClaims = principal.claims_as().expect("claims").expect("shape");
    assert_eq!(
        (claims.sub.as_str(), claims.scope.as_str()),
        ("erin", "a b")
    );
    let err = principal
        .claims_as::<StringExpiry>()
        .expect("claims")
        .err()
        .expect("no `exp`");
    assert!(err.to_string().contains("missing field `exp`"), "{err}");
}

#[test]
fn a_route_refusal_is_one_audit_event_at_stage_route() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        for framework in FRAMEWORKS {
            let logs = logs::capture();
            let answer = call(
                framework,
                Some(&fixture.gate),
                "/admin",
                Caller::Basic("bob"),
            )
            .await;
            assert_eq!(answer.status, 403);
            let text = logs.text();
            let events: Vec<&str> = text.lines().filter(|l| l.contains("stage=")).collect();
            assert_eq!(
                events.len(),
                2,
                "{framework:?}: the Gate's and the route's: {text}"
            );
            assert!(
                events[0].contains("stage=\"gate\"") && events[0].contains("outcome=\"allow\"")
            );
            let route = events[1];
            for field in [
                "stage=\"route\"",
                "outcome=\"deny\"",
                "status=403",
                "subject=\"bob\"",
                "rule=\"groups\"",
                "path=\"/admin\"",
                "route=\"default\"",
            ] {
                assert!(route.contains(field), "{framework:?}: {field} in {route}");
            }
        }
    });
}

#[test]
fn a_custom_responder_shapes_route_layer_refusals() {
    custom_responder_on("/admin", Caller::Basic("bob"), 403);
}

#[test]
fn a_custom_responder_shapes_guard_refusals() {
    custom_responder_on("/guarded", Caller::Basic("bob"), 403);
}

#[test]
fn a_custom_responder_shapes_principal_extractor_refusals() {
    custom_responder_on("/public/me", Caller::Anonymous, 401);
}

#[test]
fn a_custom_responder_shapes_claims_refusals() {
    custom_responder_on("/claims", Caller::Basic("alice"), 403);
}

fn custom_responder_on(path: &'static str, caller: Caller<'static>, status: u16) {
    run(|| async move {
        let fixture = Fixture::new(true).await;
        for framework in FRAMEWORKS {
            let answer = call(framework, Some(&fixture.gate), path, caller).await;
            assert_eq!(answer.status, status, "{framework:?}: {answer:?}");
            assert_eq!(answer.body, CUSTOM, "{framework:?}: {answer:?}");
        }
        // The mismatched claims too, with the invalid_token challenge kept.
        let admin = Caller::Bearer(&fixture.admin_token);
        for framework in FRAMEWORKS {
            let answer = call(framework, Some(&fixture.gate), "/claims/mismatch", admin).await;
            assert_eq!(answer.status, 401, "{framework:?}: {answer:?}");
            assert_eq!(answer.body, CUSTOM, "{framework:?}: {answer:?}");
            assert_eq!(answer.challenges, [BASIC, BEARER_INVALID]);
        }
    });
}

#[test]
fn without_a_gate_everything_refuses_with_500() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        let admin = Caller::Bearer(&fixture.admin_token);
        let paths = [
            "/admin",
            "/public/admin",
            "/reports",
            "/guarded",
            "/public/guarded",
            "/me",
            "/public/maybe",
            "/claims",
        ];
        for framework in FRAMEWORKS {
            for path in paths {
                for caller in [Caller::Anonymous, Caller::Basic("alice"), admin] {
                    let logs = logs::capture();
                    let answer = call(framework, None, path, caller).await;
                    let context = format!("{framework:?} {path}: {answer:?}");
                    // `Option<Principal>` in actix-web turns any refusal into `None` (actix's
                    // blanket impl); the handler then answers for an anonymous caller.
                    if matches!(framework, Framework::Actix) && path == "/public/maybe" {
                        assert_eq!(answer.body, "maybe: anonymous", "{context}");
                        continue;
                    }
                    assert_eq!(answer.status, 500, "{context}");
                    assert!(answer.challenges.is_empty(), "{context}");
                    let text = logs.text();
                    let events: Vec<&str> = text.lines().filter(|l| l.contains("stage=")).collect();
                    assert_eq!(events.len(), 1, "{context}: {text}");
                    assert!(events[0].contains("status=500"), "{context}: {text}");
                    assert!(events[0].contains("no Gate"), "{context}: {text}");
                }
            }
        }
        assert_eq!(fixture.calls(), 0, "nothing authenticated without a Gate");
    });
}

#[test]
fn unknown_paths_get_the_gates_401_under_layer_and_404_under_route_layer() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        let unknown = "/no/such/route";
        // `.layer`: the Gate sees every request. Anonymous: its 401; authenticated: the 404.
        expect(
            &fixture,
            unknown,
            Caller::Anonymous,
            401,
            &[BASIC, BEARER],
            "",
        )
        .await;
        expect(&fixture, unknown, Caller::Basic("alice"), 404, &[], "").await;
        // `.route_layer`: only matched routes pass the Gate; an unknown path is a plain 404,
        // and nothing is authenticated.
        let app = Router::new()
            .route("/me", get(me))
            .route_layer(GateLayer::new(fixture.gate.clone()));
        for (path, status) in [(unknown, 404), ("/me", 401)] {
            let request = Request::get(path)
                .header("authorization", encode_basic("mallory", "password"))
                .body(Body::empty())
                .expect("request");
            let before = fixture.calls();
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status().as_u16(), status, "{path}");
            let expected_calls = usize::from(status == 401);
            assert_eq!(fixture.calls() - before, expected_calls, "{path}");
        }
    });
}

#[test]
fn a_report_only_route_policy_allows_and_logs_at_stage_route() {
    run(|| async {
        let fixture = Fixture::new(false).await;
        let layer = PolicyLayer::new(admins().report_only()).expect("valid policy");
        let app = Router::new()
            .route("/admin", get(|| async { "admin" }))
            .route_layer(layer)
            .layer(GateLayer::new(fixture.gate.clone()));
        let logs = logs::capture();
        let request = Request::get("/admin")
            .header("authorization", encode_basic("bob", "password"))
            .body(Body::empty())
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status().as_u16(), 200);
        let text = logs.text();
        let would = text
            .lines()
            .find(|line| line.contains("report_only=true"))
            .unwrap_or_else(|| panic!("a report-only event: {text}"));
        assert!(would.contains("stage=\"route\""), "{would}");
    });
}

/// hyper and tonic have no extractors: a handler reads the context from the extensions.
#[test]
fn a_plain_tower_service_reads_the_context_and_requires_a_policy() {
    run(|| async {
        let fixture = Fixture::new(true).await;
        let handler = tower::service_fn(|request: Request<Body>| async move {
            let (parts, _) = request.into_parts();
            let context = parts
                .extensions
                .get::<GateContext>()
                .expect("the Gate ran")
                .clone();
            assert_eq!(context.rule(), "default");
            assert_eq!(context.challenges().len(), 2);
            let view = RequestView::from_parts(&parts);
            let response = match context.require(&admins(), &view) {
                Ok(()) => {
                    http::Response::new(format!("ok {}", context.principal().unwrap().subject()))
                }
                Err(refusal) => http::Response::from(refusal),
            };
            Ok::<_, std::convert::Infallible>(response)
        });
        let service = GateLayer::new(fixture.gate.clone()).layer(handler);
        for (user, status, body) in [("alice", 200, "ok alice"), ("bob", 403, CUSTOM)] {
            let request = Request::get("/anything")
                .header("authorization", encode_basic(user, "password"))
                .body(Body::empty())
                .expect("request");
            let response = service.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status().as_u16(), status, "{user}");
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(bytes, body.as_bytes(), "{user}");
        }
    });
}

#[test]
fn route_policies_are_validated_when_built() {
    let empty: [&str; 0] = [];
    assert!(PolicyLayer::new(Groups::any_of(empty)).is_err());
    assert!(PolicyMiddleware::new(Scopes::all_of(empty)).is_err());
}
