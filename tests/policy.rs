//! Policies through the Gate: combinator truth tables, report-only, scopes, schemes, kinds and
//! expiry caps.
#![cfg(all(
    feature = "axum",
    feature = "basic",
    feature = "api-key",
    feature = "jwt"
))]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use http::StatusCode;
use portcullis::config::Config;
use portcullis::jwt::JwtIssuer;
use portcullis::jwt::SigningKey;
use portcullis::policy::{All, Anonymous, Any, Decision, ExpiryCap, KindIs, Not, PolicyContext};
use portcullis::reject::{Challenge, RejectionKind};
use portcullis::store::MemoryApiKeyStore;
use portcullis::{
    ApiKeys, Authenticated, Authenticator, BoxFuture, CredentialSource, Gate, GateHandle, Groups,
    NewApiKey, Outcome, Policy, PolicyExt, Principal, Public, Rejection, RequestView, Scheme,
    Schemes, Scopes, SubjectKind,
};

/// A policy with a fixed answer, for truth tables.
#[derive(Debug)]
struct Fixed(bool);

impl Policy for Fixed {
    fn evaluate(&self, _: &PolicyContext<'_>) -> Decision {
        if self.0 {
            Decision::Allow
        } else {
            Decision::deny("fixed", "fixed denial")
        }
    }
}

fn gate(policy: impl Policy) -> Gate {
    Gate::builder()
        .authenticator(common::HeaderAuthenticator)
        .route("/x", policy)
        .build()
        .expect("gate")
}

async fn check(gate: &Gate, headers: &[(&str, &str)]) -> Result<Option<Principal>, Rejection> {
    let mut request = http::Request::get("/x");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (parts, ()) = request.body(()).expect("request").into_parts();
    gate.check(&RequestView::from_parts(&parts)).await
}

async fn allowed(policy: impl Policy, headers: &[(&str, &str)]) -> bool {
    check(&gate(policy), headers).await.is_ok()
}

const ALICE: &[(&str, &str)] = &[("x-user", "alice")];

#[tokio::test]
async fn all_any_not_truth_tables() {
    for a in [false, true] {
        for b in [false, true] {
            assert_eq!(
                allowed(All::new().with(Fixed(a)).with(Fixed(b)), ALICE).await,
                a && b
            );
            assert_eq!(
                allowed(Any::new().with(Fixed(a)).with(Fixed(b)), ALICE).await,
                a || b
            );
            assert_eq!(allowed(Fixed(a).and(Fixed(b)), ALICE).await, a && b);
            assert_eq!(allowed(Fixed(a).or(Fixed(b)), ALICE).await, a || b);
        }
        assert_eq!(allowed(Not::new(Fixed(a)), ALICE).await, !a);
    }
    assert!(allowed(All::new(), ALICE).await, "empty All allows");
    assert!(!allowed(Any::new(), ALICE).await, "empty Any denies");
}

#[tokio::test]
async fn not_denies_with_a_short_reason_whatever_it_wraps() {
    let logs = common::logs::capture();
    // 10,000 separate ranges (every other /24), whose Debug would fill the rejection and the
    // audit line.
    let ranges: Vec<String> = (0..10_000u32)
        .map(|i| format!("10.{}.{}.0/24", i / 128, i % 128 * 2))
        .collect();
    let blocked = portcullis::policy::IpRanges::new().allow(
        portcullis::client_ip::IpSet::parse(ranges.iter().map(String::as_str)).expect("ranges"),
    );
    let gate = gate(Not::new(blocked));
    let rejection = check_from(&gate, "10.1.2.3:1", ALICE).await.unwrap_err();
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    assert_eq!(rejection.detail(), "not: the negated policy allowed");
    let response = gate.respond(&rejection);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response.headers().contains_key("www-authenticate"));
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("rule=\"not\""))
        .unwrap_or_else(|| panic!("no audit event for the denial in {log}"));
    assert!(!line.contains("10.0.0.0"), "{line}");
    assert!(line.len() < 1_000, "{} bytes: {line:.200}", line.len());
    // Outside the wrapped ranges, Not allows.
    assert!(check_from(&gate, "192.0.2.1:1", ALICE).await.is_ok());
}

#[tokio::test]
async fn first_denial_decides_and_names_its_rule() {
    let policy = All::new()
        .with(Fixed(true))
        .with(Groups::any_of(["ops"]))
        .with(Fixed(false));
    let rejection = check(&gate(policy), ALICE).await.unwrap_err();
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    assert!(
        rejection.detail().starts_with("groups:"),
        "{}",
        rejection.detail()
    );
}

#[tokio::test]
async fn anonymous_denial_is_401_principal_denial_is_403() {
    let g = gate(Authenticated);
    let anonymous = check(&g, &[]).await.unwrap_err();
    assert_eq!(anonymous.kind(), RejectionKind::MissingCredentials);
    let g = gate(Fixed(false));
    assert_eq!(
        check(&g, ALICE).await.unwrap_err().status(),
        StatusCode::FORBIDDEN
    );
    assert!(allowed(Public, &[]).await);
    assert!(allowed(Anonymous, &[]).await);
    assert!(!allowed(Anonymous, ALICE).await);
}

#[tokio::test]
async fn groups_any_and_all() {
    let headers = &[("x-user", "a"), ("x-groups", "dev,ops")];
    assert!(allowed(Groups::any_of(["ops", "admin"]), headers).await);
    assert!(!allowed(Groups::all_of(["ops", "admin"]), headers).await);
    assert!(allowed(Groups::all_of(["ops", "dev"]), headers).await);
    assert!(!allowed(Groups::any_of(["ops"]), &[]).await);
}

#[tokio::test]
async fn missing_scopes_give_insufficient_scope() {
    let headers = &[("x-user", "a"), ("x-scopes", "read")];
    assert!(allowed(Scopes::all_of(["read"]), headers).await);
    assert!(allowed(Scopes::any_of(["read", "write"]), headers).await);
    let g = gate(Scopes::all_of(["read", "write"]));
    let rejection = check(&g, headers).await.unwrap_err();
    assert_eq!(rejection.kind(), RejectionKind::InsufficientScope);
    assert_eq!(rejection.scopes(), ["write"]);
    let response = g.respond(&rejection);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn scheme_and_kind_rules() {
    let basic = &[("x-user", "a"), ("x-scheme", "basic")];
    let jwt = &[("x-user", "a"), ("x-scheme", "jwt")];
    assert!(!allowed(Schemes::deny([Scheme::BASIC]), basic).await);
    assert!(allowed(Schemes::deny([Scheme::BASIC]), jwt).await);
    assert!(allowed(Schemes::allow([Scheme::JWT]), jwt).await);
    assert!(!allowed(Schemes::allow([Scheme::JWT]), basic).await);
    let app = &[("x-user", "svc"), ("x-kind", "application")];
    assert!(allowed(KindIs(SubjectKind::Application), app).await);
    assert!(!allowed(KindIs(SubjectKind::User), app).await);
    assert!(!allowed(KindIs(SubjectKind::User), &[]).await);
}

#[tokio::test]
async fn tightening_an_expiry_cap_rejects_existing_long_lived_credentials() {
    let now = Utc::now();
    let issued = (now - chrono::Duration::days(1)).to_rfc3339();
    let expires = (now + chrono::Duration::days(89)).to_rfc3339();
    let key = [
        ("x-user", "a"),
        ("x-issued", issued.as_str()),
        ("x-expires", expires.as_str()),
    ];
    let jwt = [
        ("x-user", "a"),
        ("x-scheme", "jwt"),
        ("x-issued", issued.as_str()),
        ("x-expires", expires.as_str()),
    ];
    let day = Duration::from_secs(86_400);
    let loose = ExpiryCap::new().default_max_lifetime(90 * day);
    assert!(allowed(loose.clone(), &key).await);
    assert!(allowed(loose, &jwt).await);
    let tight = ExpiryCap::new().default_max_lifetime(30 * day);
    assert!(
        !allowed(tight.clone(), &key).await,
        "90-day key over a 30-day cap"
    );
    assert!(
        !allowed(tight, &jwt).await,
        "90-day token over a 30-day cap"
    );
    let per_scheme = ExpiryCap::new().max_lifetime(Scheme::API_KEY, 30 * day);
    assert!(
        allowed(per_scheme.clone(), &jwt).await,
        "cap only for API keys"
    );
    assert!(!allowed(per_scheme, &key).await);
}

/// The same cap with real credentials: an API key created while no cap applied (its manager has
/// none) and an HS256 token, both accepted under a loose cap, are refused once the running Gate
/// is swapped for one with a tight cap, without reissuing anything.
#[tokio::test]
async fn tightening_an_expiry_cap_rejects_a_real_api_key_and_jwt() {
    const DAY: Duration = Duration::from_secs(86_400);
    const HOUR: Duration = Duration::from_secs(3600);
    let keys = ApiKeys::builder(
        Arc::new(MemoryApiKeyStore::new()),
        "policy test pepper, thirty-two bytes or more".into(),
    )
    .build()
    .expect("key manager");
    assert_eq!(keys.max_lifetime(), None, "created while no cap applies");
    let issued = keys
        .create(NewApiKey::application("billing").with_expires_in(90 * DAY))
        .await
        .expect("90-day key");
    let issuer = JwtIssuer::builder(
        "https://issuer.test",
        SigningKey::hs256(b"policy test HMAC secret, 32 bytes+").expect("HS256 key"),
    )
    .audience("api")
    .max_lifetime(2 * HOUR)
    .build()
    .expect("issuer");
    let token = issuer
        .issue(
            &Principal::new("alice", SubjectKind::User, Scheme::JWT),
            2 * HOUR,
        )
        .expect("2-hour token");
    let gate_with = |cap: ExpiryCap| {
        Gate::builder()
            .authenticator(keys.authenticator())
            .authenticator(issuer.authenticator_builder().build().expect("JWT"))
            .route("/x", cap)
            .build()
            .expect("gate")
    };
    let key_header = [("x-api-key", issued.key().expose_secret())];
    let bearer = format!("Bearer {}", token.expose_secret());
    let jwt_header = [("authorization", bearer.as_str())];

    let loose = ExpiryCap::new()
        .max_lifetime(Scheme::API_KEY, 365 * DAY)
        .max_lifetime(Scheme::JWT, DAY);
    let handle = GateHandle::new(gate_with(loose));
    let key_caller = check(&handle.gate(), &key_header)
        .await
        .expect("key allowed");
    assert_eq!(key_caller.expect("principal").subject(), "billing");
    let jwt_caller = check(&handle.gate(), &jwt_header)
        .await
        .expect("JWT allowed");
    assert_eq!(jwt_caller.expect("principal").scheme(), Scheme::JWT);

    let tight = ExpiryCap::new()
        .max_lifetime(Scheme::API_KEY, 30 * DAY)
        .max_lifetime(Scheme::JWT, HOUR);
    handle.replace(gate_with(tight));
    let gate = handle.gate();
    for (headers, reason) in [
        (
            &key_header,
            "expiry_cap: credential lifetime 7776000s exceeds the cap of 2592000s",
        ),
        (
            &jwt_header,
            "expiry_cap: credential lifetime 7200s exceeds the cap of 3600s",
        ),
    ] {
        let rejection = check(&gate, headers).await.unwrap_err();
        assert_eq!(rejection.kind(), RejectionKind::Forbidden);
        assert_eq!(rejection.detail(), reason);
        let response = gate.respond(&rejection);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            !response.headers().contains_key("www-authenticate"),
            "a valid credential is not challenged again"
        );
    }
}

#[tokio::test]
async fn non_expiring_credentials_need_explicit_consent() {
    let cap = ExpiryCap::new().default_max_lifetime(Duration::from_secs(3600));
    assert!(!allowed(cap.clone(), ALICE).await);
    assert!(allowed(cap.allow_non_expiring(true), ALICE).await);
    // Basic has no lifetime and no cap unless one is named for it.
    let basic = &[("x-user", "a"), ("x-scheme", "basic")];
    let cap = ExpiryCap::new().default_max_lifetime(Duration::from_secs(3600));
    assert!(allowed(cap, basic).await);
}

#[tokio::test]
async fn report_only_logs_the_denial_and_allows() {
    let logs = common::logs::capture();
    let policy = Groups::any_of(["admin"]).report_only();
    let principal = check(&gate(policy), ALICE).await.expect("allowed");
    assert_eq!(principal.expect("principal").subject(), "alice");
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("report_only=true"))
        .unwrap_or_else(|| panic!("no report-only event in {log}"));
    assert!(line.contains("portcullis::audit"), "{line}");
    assert!(line.contains("rule=groups"), "{line}");
    assert!(
        line.contains("subject=\"alice\"") || line.contains("subject=alice"),
        "{line}"
    );
}

/// `report_only = true` in the configuration file: the same audit event, and the request is
/// allowed, while the same rule without it refuses.
#[tokio::test]
async fn report_only_from_the_config_file_logs_the_denial_and_allows() {
    let logs = common::logs::capture();
    let gate = Config::from_str(
        r#"
[policies.office_trial]
ip_allow = ["192.0.2.0/24"]
report_only = true

[policies.office]
ip_allow = ["192.0.2.0/24"]

[[routes]]
path = "/x"
policy = "office_trial"

[[routes]]
path = "/y"
policy = "office"
"#,
    )
    .expect("valid config")
    .build()
    .await
    .expect("gate");
    let request = |path: &str| {
        http::Request::get(path)
            .body(())
            .expect("request")
            .into_parts()
            .0
    };
    let peer = Some("198.51.100.7:1".parse().expect("peer"));

    let parts = request("/x");
    let view = RequestView::from_parts(&parts).with_peer(peer);
    assert!(matches!(gate.check(&view).await, Ok(None)), "allowed");
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("report_only=true"))
        .unwrap_or_else(|| panic!("no report-only event in {log}"));
    assert!(line.contains("portcullis::audit"), "{line}");
    assert!(line.contains("rule=ip_ranges"), "{line}");
    assert!(
        line.contains("reason=\"ip_denied\" detail=198.51.100.7 is not in the allow list"),
        "{line}"
    );
    assert!(line.contains("client_ip=198.51.100.7"), "{line}");
    assert!(line.contains("path=\"/x\""), "{line}");

    // The same rule enforced: refused, and no report-only event for it.
    logs.clear();
    let parts = request("/y");
    let view = RequestView::from_parts(&parts).with_peer(peer);
    let rejection = gate.check(&view).await.unwrap_err();
    assert_eq!(
        rejection.detail(),
        "ip_ranges: 198.51.100.7 is not in the allow list"
    );
    let response = gate.respond(&rejection);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !response.headers().contains_key("www-authenticate"),
        "no scheme is configured, so none is offered"
    );
    let log = logs.text();
    assert!(!log.contains("report_only=true"), "{log}");
    assert!(log.contains("rule=\"ip_ranges\""), "{log}");
}

async fn check_from(
    gate: &Gate,
    peer: &str,
    headers: &[(&str, &str)],
) -> Result<Option<Principal>, Rejection> {
    let mut request = http::Request::get("/x");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (parts, ()) = request.body(()).expect("request").into_parts();
    let peer: std::net::SocketAddr = peer.parse().expect("peer");
    gate.check(&RequestView::from_parts(&parts).with_peer(Some(peer)))
        .await
}

fn ip_gate(proxies: &[&str]) -> Gate {
    let ranges = portcullis::policy::IpRanges::new()
        .allow(
            portcullis::client_ip::IpSet::parse(["192.0.2.0/24", "2001:db8::/32"]).expect("allow"),
        )
        .deny(portcullis::client_ip::IpSet::parse(["192.0.2.66"]).expect("deny"));
    Gate::builder()
        .authenticator(common::HeaderAuthenticator)
        .trusted_proxies(portcullis::client_ip::TrustedProxies::new(
            portcullis::client_ip::IpSet::parse(proxies.iter().copied()).expect("proxies"),
        ))
        .route("/x", ranges)
        .build()
        .expect("gate")
}

#[tokio::test]
async fn ip_ranges_use_the_resolved_client_ip() {
    let gate = ip_gate(&["10.0.0.0/8"]);
    // Direct clients: the peer decides; forged headers from an untrusted peer are ignored.
    assert!(check_from(&gate, "192.0.2.10:1", ALICE).await.is_ok());
    assert!(
        check_from(&gate, "[::ffff:192.0.2.10]:1", ALICE)
            .await
            .is_ok(),
        "mapped v4"
    );
    assert!(check_from(&gate, "[2001:db8::5]:1", ALICE).await.is_ok());
    let forged = [("x-user", "a"), ("x-forwarded-for", "192.0.2.10")];
    assert_eq!(
        check_from(&gate, "198.51.100.1:1", &forged)
            .await
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );
    // Deny wins over allow.
    assert!(check_from(&gate, "192.0.2.66:1", ALICE).await.is_err());
    // Behind a trusted proxy, the forwarded address decides.
    let via_proxy = [
        ("x-user", "a"),
        ("x-forwarded-for", "203.0.113.1, 192.0.2.10"),
    ];
    let principal = check_from(&gate, "10.0.0.1:1", &via_proxy)
        .await
        .expect("allowed");
    assert_eq!(
        principal.expect("principal").client_ip(),
        Some("192.0.2.10".parse().expect("ip"))
    );
    let outside = [
        ("x-user", "a"),
        ("x-forwarded-for", "192.0.2.10, 198.51.100.7"),
    ];
    assert!(
        check_from(&gate, "10.0.0.1:1", &outside).await.is_err(),
        "never the leftmost"
    );
    let garbage = [
        ("x-user", "a"),
        ("x-forwarded-for", "192.0.2.10, not-an-ip"),
    ];
    let rejection = check_from(&gate, "10.0.0.1:1", &garbage).await.unwrap_err();
    assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
    // Anonymous callers from allowed addresses pass an IP-only policy; unknown client IPs do not.
    assert!(check_from(&gate, "192.0.2.10:1", &[]).await.is_ok());
    assert!(check(&gate, ALICE).await.is_err(), "no peer: fail closed");
}

#[tokio::test]
async fn explain_traces_every_stage() {
    let gate = ip_gate(&["10.0.0.0/8"]);
    let (parts, ()) = http::Request::get("/x")
        .header("x-user", "alice")
        .header("x-forwarded-for", "192.0.2.66")
        .body(())
        .expect("request")
        .into_parts();
    let peer = "10.0.0.1:1".parse().expect("peer");
    let explanation = gate
        .explain(&RequestView::from_parts(&parts).with_peer(Some(peer)))
        .await;
    let stages: Vec<&str> = explanation.steps.iter().map(|(stage, _)| *stage).collect();
    assert_eq!(
        stages,
        ["path", "client_ip", "authenticate", "route", "policy"]
    );
    let text = explanation.to_string();
    assert!(text.contains("\"/x\" matched as sent"), "{text}");
    assert!(text.contains("resolved to 192.0.2.66"), "{text}");
    assert!(text.contains("authenticated \"alice\""), "{text}");
    assert!(text.contains("deny by ip_ranges"), "{text}");
    assert!(
        text.lines().last().expect("last").starts_with("deny: 403"),
        "{text}"
    );
}

#[tokio::test]
async fn a_gate_takes_at_most_64_authenticators() {
    let mut builder = Gate::builder();
    for _ in 0..64 {
        builder = builder.authenticator(common::HeaderAuthenticator);
    }
    let gate = builder.build().expect("64 authenticators are accepted");
    let principal = check(&gate, &[("x-user", "alice")]).await.unwrap();
    assert_eq!(principal.unwrap().subject(), "alice");
    let mut builder = Gate::builder();
    for _ in 0..65 {
        builder = builder.authenticator(common::HeaderAuthenticator);
    }
    let err = builder.build().unwrap_err();
    assert!(err.to_string().contains("at most 64"), "{err}");
}

/// A bearer-token stand-in with a fixed verdict that counts how often it is asked.
#[derive(Debug)]
struct Scripted {
    scheme: Scheme,
    accepts: bool,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Authenticator for Scripted {
    fn scheme(&self) -> Scheme {
        self.scheme
    }
    fn challenge(&self) -> Challenge {
        Challenge::new("Bearer").param("realm", "api")
    }
    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::authorization("Bearer")]
    }
    fn authenticate<'a>(&'a self, _: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let outcome = if self.accepts {
            Outcome::Authenticated(Principal::new("mallory", SubjectKind::User, self.scheme))
        } else {
            Outcome::Rejected(Rejection::invalid_credentials(
                self.scheme,
                "signature does not verify",
            ))
        };
        Box::pin(async move { outcome })
    }
}

#[tokio::test]
async fn a_rejected_credential_never_falls_through_to_the_next_authenticator() {
    let (first_calls, second_calls) = (Arc::default(), Arc::default());
    // JWT and introspection read the same bearer token, so both recognise the request.
    let gate = Gate::builder()
        .authenticator(Scripted {
            scheme: Scheme::JWT,
            accepts: false,
            calls: Arc::clone(&first_calls),
        })
        .authenticator(Scripted {
            scheme: Scheme::INTROSPECTION,
            accepts: true,
            calls: Arc::clone(&second_calls),
        })
        .route("/x", Authenticated)
        .build()
        .expect("gate");
    let rejection = check(&gate, &[("authorization", "Bearer forged")])
        .await
        .expect_err("the first authenticator's rejection decides");
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rejection.kind(), RejectionKind::InvalidCredentials);
    assert_eq!(rejection.detail(), "signature does not verify");
    let response = gate.respond(&rejection);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = response
        .headers()
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="api", error="invalid_token", error_description="The access token is invalid or expired""#
        ]
    );
    let calls =
        |c: &Arc<std::sync::atomic::AtomicUsize>| c.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(calls(&first_calls), 1);
    assert_eq!(
        calls(&second_calls),
        0,
        "the second authenticator was never asked"
    );
}

/// Issue #15: `Not` failed open. `Not(Groups)` admitted anonymous callers and `Not(IpRanges)` a
/// request whose client IP is unknown; both are indeterminate now, which the Gate refuses: 401
/// with challenges for an anonymous caller, 403 for a principal.
#[tokio::test]
async fn not_of_an_indeterminate_rule_is_refused() {
    let g = gate(Not::new(Groups::any_of(["banned"])));
    let anonymous = check(&g, &[]).await.unwrap_err();
    assert_eq!(anonymous.kind(), RejectionKind::MissingCredentials);
    let response = g.respond(&anonymous);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    assert!(allowed(Not::new(Groups::any_of(["banned"])), ALICE).await);
    let banned = &[("x-user", "mallory"), ("x-groups", "banned")];
    assert!(!allowed(Not::new(Groups::any_of(["banned"])), banned).await);

    // No peer address: the client IP is unknown.
    let blocked = portcullis::client_ip::IpSet::parse(["203.0.113.0/24"]).expect("ranges");
    let g = gate(Not::new(
        portcullis::policy::IpRanges::new().allow(blocked.clone()),
    ));
    let rejection = check(&g, ALICE).await.unwrap_err();
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        check(&g, &[]).await.unwrap_err().status(),
        StatusCode::UNAUTHORIZED
    );
    // With a known address outside the ranges, the negation allows.
    assert!(check_from(&g, "192.0.2.1:1", ALICE).await.is_ok());

    // `Not(Authenticated)` still admits anonymous callers (a login endpoint).
    assert!(allowed(Not::new(Authenticated), &[]).await);
    assert!(!allowed(Not::new(Authenticated), ALICE).await);
}

/// Rules about a principal no longer let anonymous requests through on their own.
#[tokio::test]
async fn principal_rules_refuse_anonymous_requests() {
    assert!(!allowed(Schemes::deny([Scheme::BASIC]), &[]).await);
    assert!(
        !allowed(
            ExpiryCap::new().default_max_lifetime(Duration::from_secs(60)),
            &[]
        )
        .await
    );
    // Anonymous callers are let through by saying so.
    assert!(allowed(Anonymous.or(Schemes::deny([Scheme::BASIC])), &[]).await);
    // A deny outranks an indeterminate in `All`; an allow outranks it in `Any`.
    let g = gate(Groups::any_of(["ops"]).and(Fixed(false)));
    assert_eq!(
        check(&g, &[]).await.unwrap_err().detail(),
        "fixed: fixed denial"
    );
    assert!(allowed(Groups::any_of(["ops"]).or(Fixed(true)), &[]).await);
}

/// Issue #15: empty lists opened routes (`Groups::all_of([])` allows every principal). Built in
/// code, they are refused by `GateBuilder::build`.
#[test]
fn empty_lists_are_refused_when_the_gate_is_built() {
    let none: [&str; 0] = [];
    let policies: Vec<(Box<dyn Policy>, &str)> = vec![
        (Box::new(Groups::all_of(none)), "Groups::all_of"),
        (Box::new(Groups::any_of(none)), "Groups::any_of"),
        (Box::new(Scopes::all_of(none)), "Scopes::all_of"),
        (Box::new(Scopes::any_of(none)), "Scopes::any_of"),
        (
            Box::new(Schemes::allow([] as [Scheme; 0])),
            "Schemes::allow",
        ),
        (Box::new(Schemes::deny([] as [Scheme; 0])), "Schemes::deny"),
        (
            Box::new(
                portcullis::policy::IpRanges::new()
                    .allow(portcullis::client_ip::IpSet::parse(none).unwrap()),
            ),
            "IpRanges::allow",
        ),
        (
            Box::new(
                portcullis::policy::IpRanges::new()
                    .deny(portcullis::client_ip::IpSet::parse(none).unwrap()),
            ),
            "IpRanges::deny",
        ),
    ];
    for (policy, name) in policies {
        // Nested inside combinators too.
        let nested = Authenticated.and(Not::new(Any::from(vec![policy])));
        let err = Gate::builder()
            .authenticator(common::HeaderAuthenticator)
            .route("/x", nested)
            .build()
            .expect_err(name);
        assert!(err.message().contains(name), "{err}");
        assert!(err.message().contains("empty list"), "{err}");
    }
    let err = Gate::builder()
        .default_policy(Groups::all_of(none))
        .build()
        .expect_err("default policy");
    assert!(err.message().contains("default policy"), "{err}");
}
