//! A scheme of the service's own, end to end (issue #18): an authenticator reading a ticket from
//! two headers of its own is the scheme `ticket` in the principal, the audit event and `Schemes`
//! policies, written in code or in TOML (checked against the authenticators when the Gate is
//! built); a request carrying a ticket and a Basic password is refused as two credentials.
#![cfg(all(feature = "axum", feature = "basic"))]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use http::{HeaderName, StatusCode};
use portcullis::config::{Config, Reloader};
use portcullis::reject::Challenge;
use portcullis::store::MemoryUserStore;
use portcullis::{
    Authenticator, BoxFuture, CredentialSource, Gate, Outcome, Principal, RequestView, Scheme,
    Schemes, SecretString, SubjectKind,
};

const TICKET: Scheme = Scheme::new("ticket");
const ID: HeaderName = HeaderName::from_static("x-ticket-id");
const SECRET: HeaderName = HeaderName::from_static("x-ticket-secret");
const ALICE_PASSWORD: &str = "correct horse battery staple";

/// Tickets: `X-Ticket-Id` names the ticket and `X-Ticket-Secret` proves it, one credential in
/// two headers. Ticket `t1` with secret `open-sesame` is the application `reporter`.
#[derive(Debug)]
struct Tickets;

impl Authenticator for Tickets {
    fn scheme(&self) -> Scheme {
        TICKET
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("Ticket").param("realm", "tickets")
    }

    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::header(ID).and_header(SECRET)]
    }

    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        let outcome = match (header(ID), header(SECRET)) {
            (Some("t1"), Some("open-sesame")) => Outcome::Authenticated(
                Principal::new("reporter", SubjectKind::Application, TICKET)
                    .with_credential_id("t1"),
            ),
            _ => Outcome::Rejected(portcullis::Rejection::invalid_credentials(
                TICKET,
                "unknown ticket",
            )),
        };
        Box::pin(async move { outcome })
    }
}

async fn basic() -> Arc<portcullis::BasicAuthenticator> {
    let basic = common::basic_builder(Arc::new(MemoryUserStore::new()))
        .build()
        .expect("basic builds");
    basic
        .add_user("alice", &SecretString::from(ALICE_PASSWORD), ["staff"])
        .await
        .expect("alice is added");
    Arc::new(basic)
}

/// `/me` for anyone authenticated, `/tickets` for tickets only, `/no-tickets` for anything else.
async fn gate() -> Gate {
    Gate::builder()
        .shared_authenticator(basic().await)
        .authenticator(Tickets)
        .route("/tickets", Schemes::allow([TICKET]))
        .route("/no-tickets", Schemes::deny(["ticket"]))
        .build()
        .expect("the gate builds")
}

async fn serve(gate: Gate) -> String {
    let scheme = |principal: Principal| async move { principal.scheme().to_string() };
    let router = Router::new()
        .route("/me", get(scheme))
        .route("/tickets", get(scheme))
        .route("/no-tickets", get(scheme));
    common::serve_router(router, gate).await
}

fn ticket(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("x-ticket-id", "t1")
        .header("x-ticket-secret", "open-sesame")
}

#[tokio::test]
async fn a_custom_scheme_is_named_in_the_principal_policies_and_audit() {
    let logs = common::logs::capture();
    let base = serve(gate().await).await;
    let client = common::client();

    let response = ticket(client.get(format!("{base}/me")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ticket");
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("portcullis::audit") && l.contains("outcome=\"allow\""))
        .unwrap_or_else(|| panic!("no audit event for the ticket in {log}"));
    assert!(line.contains("scheme=\"ticket\""), "{line}");
    assert!(line.contains("credential_id=\"t1\""), "{line}");

    // Schemes::allow([TICKET]) lets the ticket in and keeps Basic out; Schemes::deny(["ticket"])
    // the other way round.
    let response = ticket(client.get(format!("{base}/tickets")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(format!("{base}/tickets"))
        .basic_auth("alice", Some(ALICE_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    logs.clear();
    let response = ticket(client.get(format!("{base}/no-tickets")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let log = logs.text();
    assert!(
        log.lines()
            .any(|l| l.contains("rule=\"schemes\"") && l.contains("scheme=\"ticket\"")),
        "{log}"
    );
    let response = client
        .get(format!("{base}/no-tickets"))
        .basic_auth("alice", Some(ALICE_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "basic");

    // A bad ticket is the ticket scheme's 401, with every scheme's challenge.
    let response = client
        .get(format!("{base}/me"))
        .header("x-ticket-id", "t1")
        .header("x-ticket-secret", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenges = common::challenges(response.headers());
    assert!(
        challenges.iter().any(|c| c.starts_with("Ticket")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic")),
        "{challenges:?}"
    );
}

#[tokio::test]
async fn two_credentials_by_source_are_refused_but_one_spanning_two_headers_is_not() {
    let base = serve(gate().await).await;
    let client = common::client();
    // The ticket's two headers are one credential: already accepted above; one of them alone is
    // still this credential (and a bad one), not anonymous.
    let response = client
        .get(format!("{base}/me"))
        .header("x-ticket-id", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // A ticket and a Basic password: two credentials, refused before either is checked.
    for request in [
        ticket(client.get(format!("{base}/me"))),
        client
            .get(format!("{base}/me"))
            .header("x-ticket-secret", "x"),
    ] {
        let response = request
            .basic_auth("alice", Some(ALICE_PASSWORD))
            .send()
            .await
            .unwrap();
        common::expect_problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn gate_build_checks_scheme_names() {
    // A policy naming a scheme no authenticator checks (a typo) is refused, naming the route.
    let err = Gate::builder()
        .authenticator(Tickets)
        .route("/t", Schemes::allow(["tickets"]))
        .build()
        .unwrap_err();
    assert!(err.message().contains("`tickets`"), "{err}");
    assert!(err.message().contains("route * /t"), "{err}");
    // Built-in names are always known: denying Basic where it is not configured is harmless.
    assert!(
        Gate::builder()
            .authenticator(Tickets)
            .route("/t", Schemes::deny([Scheme::BASIC]))
            .build()
            .is_ok()
    );
    // A scheme's name must be fit for a label.
    #[derive(Debug)]
    struct BadName;
    impl Authenticator for BadName {
        fn scheme(&self) -> Scheme {
            Scheme::new("My Tickets")
        }
        fn challenge(&self) -> Challenge {
            Challenge::new("Ticket")
        }
        fn sources(&self) -> Vec<CredentialSource> {
            Vec::new()
        }
        fn authenticate<'a>(&'a self, _: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
            Box::pin(async { Outcome::Abstain })
        }
    }
    let err = Gate::builder().authenticator(BadName).build().unwrap_err();
    assert!(err.message().contains("scheme name"), "{err}");
}

const TOML: &str = r#"
[policies.tickets_only]
schemes_allow = ["ticket"]

[policies.no_tickets]
schemes_deny = ["ticket"]

[[routes]]
path = "/tickets"
policy = "tickets_only"

[[routes]]
path = "/no-tickets"
policy = "no_tickets"
"#;

#[tokio::test]
async fn toml_names_a_custom_scheme_once_its_authenticator_is_added() {
    // Without the authenticator the name is unknown: refused at build, with key and line.
    let err = Config::from_str(TOML)
        .expect("well-formed")
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        err.key(),
        Some("policies.tickets_only.schemes_allow[0]"),
        "{err}"
    );
    assert_eq!(err.location().map(|l| l.line), Some(3), "{err}");
    assert!(err.message().contains("unknown scheme `ticket`"), "{err}");

    let gate = Config::from_str(TOML)
        .expect("well-formed")
        .authenticator(Tickets)
        .build()
        .await
        .expect("the ticket scheme is registered");
    let base = serve(gate).await;
    let client = common::client();
    let response = ticket(client.get(format!("{base}/tickets")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ticket");
    let response = ticket(client.get(format!("{base}/no-tickets")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// A reload reads only the file: the authenticator added in code must survive it, or a file
/// naming its scheme could no longer be built (and its callers would lose their scheme).
#[tokio::test]
async fn a_reload_keeps_the_authenticators_added_in_code() {
    let path = std::env::temp_dir().join(format!(
        "portcullis-custom-scheme-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, TOML).unwrap();
    let config = Config::from_file(&path).unwrap().authenticator(Tickets);
    let reloader = Reloader::from_config(&config)
        .await
        .unwrap()
        .with_file(&path);
    let check = |path: &'static str| {
        let gate = reloader.handle().gate();
        async move {
            let request = http::Request::get(path)
                .header("x-ticket-id", "t1")
                .header("x-ticket-secret", "open-sesame")
                .body(())
                .unwrap();
            let (parts, ()) = request.into_parts();
            gate.check(&RequestView::from_parts(&parts)).await
        }
    };
    let principal = check("/tickets").await.unwrap().expect("a principal");
    assert_eq!(principal.scheme(), TICKET);

    // The file changes: /tickets is now closed to tickets too.
    std::fs::write(
        &path,
        TOML.replacen("policy = \"tickets_only\"", "policy = \"no_tickets\"", 1),
    )
    .unwrap();
    reloader
        .reload()
        .await
        .expect("the reloaded file still names a registered scheme");
    let rejection = check("/tickets").await.unwrap_err();
    assert_eq!(
        rejection.status(),
        StatusCode::FORBIDDEN,
        "the new file serves"
    );
    let principal = check("/me")
        .await
        .unwrap()
        .expect("tickets still authenticate");
    assert_eq!(principal.scheme(), TICKET);
    std::fs::remove_file(&path).ok();
}
