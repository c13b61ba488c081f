//! From verified claims to the principal a handler sees: provider claim shapes (Keycloak,
//! Cognito, Azure AD, client credentials), multi-tenant issuers, `JwtIssuer` round trips and its
//! lifetime cap, the configuration structs, and the whole path over HTTP through `GateLayer`.
#![cfg(feature = "jwt")]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::time::Duration;

use portcullis::config::Config;
use portcullis::jwt::{
    Algorithm, ClaimMapping, IssueError, JwtAuthenticator, JwtIssuer, KeySet, KeySource, SigningKey,
};
use portcullis::{Principal, Scheme, SubjectKind};
use serde_json::json;
use support::{TestKey, bearer, claims, jwks};

const ISS: &str = "https://sso.example.com/realms/main";

fn authenticator(keys: &[&TestKey], mapping: ClaimMapping) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .issuer(
            ISS,
            KeySource::Static(KeySet::from_jwks(&jwks(keys)).unwrap()),
        )
        .audience("api")
        .claims(mapping)
        .build()
        .unwrap()
}

#[tokio::test]
async fn provider_claim_shapes_map_to_the_principal() {
    let key = TestKey::es256("k");
    let keycloak = authenticator(
        &[&key],
        ClaimMapping::new().groups_claims(["realm_access.roles", "resource_access.api.roles"]),
    );
    let mut c = claims(ISS);
    c["realm_access"] = json!({"roles": ["staff", "offline_access"]});
    c["resource_access"] = json!({"api": {"roles": ["orders-admin"]}, "other": {"roles": ["x"]}});
    c["scope"] = json!("openid orders:read");
    c["jti"] = json!("b1f6c2");
    let p = keycloak.verify(&key.token(&c)).await.unwrap();
    assert_eq!(p.groups(), ["staff", "offline_access", "orders-admin"]);
    assert_eq!(p.scopes(), ["openid", "orders:read"]);
    assert_eq!((p.scheme(), p.kind()), (Scheme::JWT, SubjectKind::User));
    assert_eq!(p.credential_id(), Some("b1f6c2"));
    assert_eq!(
        p.expires_at().unwrap().timestamp(),
        c["exp"].as_i64().unwrap()
    );
    assert_eq!(
        p.issued_at().unwrap().timestamp(),
        c["iat"].as_i64().unwrap()
    );
    assert_eq!(
        p.claims().unwrap()["resource_access"]["other"]["roles"][0],
        "x"
    );

    let cognito = authenticator(&[&key], ClaimMapping::new().groups_claim("cognito:groups"));
    let mut c = claims(ISS);
    c["cognito:groups"] = json!(["admins"]);
    c["scp"] = json!(["User.Read", "Orders.Write"]);
    let p = cognito.verify(&key.token(&c)).await.unwrap();
    assert_eq!(p.groups(), ["admins"]);
    assert_eq!(p.scopes(), ["User.Read", "Orders.Write"]);

    // A client-credentials token: no user, the client is the subject.
    let plain = authenticator(&[&key], ClaimMapping::new().groups_claim("roles"));
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("sub");
    c["client_id"] = json!("billing-service");
    c["roles"] = json!("batch");
    let p = plain.verify(&key.token(&c)).await.unwrap();
    assert_eq!(
        (p.subject(), p.kind()),
        ("billing-service", SubjectKind::Application)
    );
    assert_eq!(p.groups(), ["batch"]);

    // Typed decoding: an array where a string belongs refuses the token.
    for (claim, value) in [
        ("sub", json!(["admin"])),
        ("roles", json!({"admin": true})),
        ("scope", json!(["admin"])),
    ] {
        let mut c = claims(ISS);
        c[claim] = value;
        assert!(plain.verify(&key.token(&c)).await.is_err(), "{claim}");
    }
}

#[tokio::test]
async fn each_tenant_is_checked_with_its_own_keys() {
    let (a, b) = (TestKey::es256("shared-kid"), TestKey::ed25519("shared-kid"));
    let jwt = JwtAuthenticator::builder()
        .issuer(
            "https://a.example",
            KeySource::Static(KeySet::from_jwks(&jwks(&[&a])).unwrap()),
        )
        .issuer(
            "https://b.example",
            KeySource::Static(KeySet::from_jwks(&jwks(&[&b])).unwrap()),
        )
        .audience("api")
        .build()
        .unwrap();
    assert!(
        jwt.verify(&a.token(&claims("https://a.example")))
            .await
            .is_ok()
    );
    assert!(
        jwt.verify(&b.token(&claims("https://b.example")))
            .await
            .is_ok()
    );
    // Tenant B's key cannot vouch for tenant A, even with the same kid.
    let forged = TestKey::ed25519("shared-kid");
    assert!(
        jwt.verify(&b.token(&claims("https://a.example")))
            .await
            .is_err()
    );
    assert!(
        jwt.verify(&forged.token(&claims("https://b.example")))
            .await
            .is_err()
    );
    assert_eq!(jwt.issuers().count(), 2);
}

#[tokio::test]
async fn the_issuer_round_trips_with_every_algorithm() {
    let alice = Principal::new("alice", SubjectKind::User, Scheme::BASIC)
        .with_groups(["staff"])
        .with_scopes(["orders:read"]);
    let ci = Principal::new("ci-bot", SubjectKind::Application, Scheme::API_KEY);
    for key in [
        SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("es"),
        SigningKey::generate(Algorithm::EdDSA).unwrap(),
        SigningKey::hs256(b"a demo secret of at least 32 bytes")
            .unwrap()
            .with_kid("hs"),
    ] {
        let alg = key.algorithm();
        let issuer = JwtIssuer::builder("https://portcullis.local", key)
            .audience("api")
            .max_lifetime(Duration::from_secs(900))
            .build()
            .unwrap();
        let jwt = issuer.authenticator_builder().build().unwrap();
        let token = issuer.issue(&alice, Duration::from_secs(300)).unwrap();
        let p = jwt.verify(token.expose_secret()).await.unwrap();
        assert_eq!(
            (p.subject(), p.kind()),
            ("alice", SubjectKind::User),
            "{alg}"
        );
        assert_eq!(
            (p.groups(), p.scopes()),
            (&["staff".to_owned()][..], &["orders:read".to_owned()][..])
        );
        let lifetime = p.expires_at().unwrap() - p.issued_at().unwrap();
        assert_eq!(lifetime.num_seconds(), 300);
        assert!(p.credential_id().is_some_and(|jti| jti.len() >= 20));
        let p = jwt
            .verify(
                issuer
                    .issue(&ci, Duration::from_secs(60))
                    .unwrap()
                    .expose_secret(),
            )
            .await
            .unwrap();
        assert_eq!(p.kind(), SubjectKind::Application, "{alg}");
        assert!(matches!(
            issuer.issue(&alice, Duration::from_secs(901)),
            Err(IssueError::LifetimeExceedsCap { .. })
        ));
        assert_eq!(
            issuer.jwks()["keys"].as_array().unwrap().len(),
            usize::from(alg != Algorithm::HS256)
        );
        // The published JWKS verifies the tokens for other services.
        if alg != Algorithm::HS256 {
            let other = JwtAuthenticator::builder()
                .issuer(
                    issuer.issuer(),
                    KeySource::Static(KeySet::from_jwks(&issuer.jwks().to_string()).unwrap()),
                )
                .audience("api")
                .build()
                .unwrap();
            assert!(other.verify(token.expose_secret()).await.is_ok(), "{alg}");
        }
        assert!(!format!("{issuer:?}").contains(token.expose_secret()));
    }
    assert!(SigningKey::generate(Algorithm::RS256).is_err());
    assert!(SigningKey::hs256(b"short").is_err());
}

/// Issue #16 item 5: a token never outlives the credential it was issued on.
#[tokio::test]
async fn an_issued_token_never_outlives_its_source() {
    let issuer = JwtIssuer::builder(
        "https://portcullis.local",
        SigningKey::generate(Algorithm::ES256).unwrap(),
    )
    .audience("api")
    .build()
    .unwrap();
    let jwt = issuer.authenticator_builder().build().unwrap();
    let source_exp = chrono::Utc::now() + chrono::Duration::seconds(120);
    let key_login = Principal::new("ci-bot", SubjectKind::Application, Scheme::API_KEY)
        .with_expires_at(source_exp);
    let token = issuer.issue(&key_login, Duration::from_secs(3600)).unwrap();
    let p = jwt.verify(token.expose_secret()).await.unwrap();
    assert_eq!(p.expires_at().unwrap().timestamp(), source_exp.timestamp());
    // A lifetime shorter than what is left of the source is kept.
    let token = issuer.issue(&key_login, Duration::from_secs(60)).unwrap();
    let p = jwt.verify(token.expose_secret()).await.unwrap();
    let lifetime = p.expires_at().unwrap() - p.issued_at().unwrap();
    assert_eq!(lifetime.num_seconds(), 60);
    // A source already expired is refused, not given a fresh hour.
    let lapsed = key_login.with_expires_at(chrono::Utc::now() - chrono::Duration::seconds(1));
    assert!(matches!(
        issuer.issue(&lapsed, Duration::from_secs(60)),
        Err(IssueError::SourceExpired)
    ));
}

/// Writes a PEM key, a JWKS and an HMAC secret into `dir`.
fn key_files(dir: &std::path::Path) -> (TestKey, TestKey, &'static [u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let rsa = TestKey::rsa(0, "pem-key");
    let ec = TestKey::es256("jwks-key");
    let hs_secret = b"a secret file of thirty-two bytes";
    std::fs::write(dir.join("key.pem"), rsa.public_pem()).unwrap();
    std::fs::write(dir.join("keys.json"), jwks(&[&ec])).unwrap();
    std::fs::write(dir.join("secret"), [&hs_secret[..], b"\n"].concat()).unwrap();
    (rsa, ec, hs_secret)
}

/// A `[jwt]` section with a key of every static kind.
fn jwt_section(dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[gate]
default_policy = "authenticated"
[jwt]
audiences = ["api"]
typ = "at+jwt"
leeway = "5s"
max_lifetime = "1h"
groups_claims = ["roles"]
{extra}
[[jwt.issuers]]
issuer = "https://pem.example"
pem_file = "{dir}/key.pem"
algorithm = "RS256"
kid = "pem-key"
[[jwt.issuers]]
issuer = "https://jwks.example"
jwks_file = "{dir}/keys.json"
[[jwt.issuers]]
issuer = "https://hs.example"
secret_file = "{dir}/secret"
"#,
        dir = dir.display()
    )
}

#[tokio::test]
async fn a_jwt_section_builds_every_static_source() {
    let dir = std::env::temp_dir().join(format!("portcullis-jwt-settings-{}", std::process::id()));
    let (rsa, ec, hs_secret) = key_files(&dir);
    let gate = Config::from_str(&jwt_section(&dir, ""))
        .unwrap()
        .build()
        .await
        .unwrap();
    let hs = TestKey::hs256("any", hs_secret);
    for (key, iss) in [
        (&rsa, "https://pem.example"),
        (&ec, "https://jwks.example"),
        (&hs, "https://hs.example"),
    ] {
        let mut c = claims(iss);
        c["roles"] = json!(["r"]);
        let answer = bearer(&gate, &key.token(&c)).await;
        let p = answer.principal.clone();
        let p = p.unwrap_or_else(|| panic!("{iss}: {answer:?}"));
        assert_eq!(p.groups(), ["r"]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Mistakes in a `[jwt]` section, found by the section's own checks or by
/// `JwtAuthenticatorBuilder::build`, name their key and where it is written.
#[tokio::test]
async fn a_jwt_section_names_bad_keys() {
    let dir = std::env::temp_dir().join(format!("portcullis-jwt-bad-{}", std::process::id()));
    key_files(&dir);
    let error = |text: String| async move {
        match Config::from_str(&text) {
            Err(e) => e,
            Ok(config) => config.build().await.expect_err("refused"),
        }
    };
    let section = jwt_section(&dir, "");
    let err = error(section.replace("algorithm = \"RS256\"\n", "")).await;
    assert_eq!(err.key(), Some("jwt.issuers[0].algorithm"), "{err}");
    let err = error(section.replace("keys.json", "missing.json")).await;
    assert_eq!(err.key(), Some("jwt.issuers[1].jwks_file"), "{err}");
    assert_eq!(err.location().map(|l| l.line), Some(18), "{err}");
    let err = error(section.replace("audiences = [\"api\"]", "")).await;
    assert_eq!(err.key(), Some("jwt.audiences"), "{err}");
    let err = error(jwt_section(&dir, "required_claims = [\"exp\", \"nonce\"]")).await;
    assert_eq!(err.key(), Some("jwt.required_claims"), "{err}");
    assert_eq!(err.location().map(|l| l.line), Some(10), "{err}");
    let err = error(jwt_section(&dir, "algorithms = [\"ES256\"]")).await;
    assert!(err.key().unwrap().starts_with("jwt.issuers["), "{err}");
    let remote = "[[jwt.issuers]]\nissuer = \"https://remote.example\"\n\
                  jwks_url = \"http://remote.example/jwks\"\n";
    let err = error(format!("{section}{remote}")).await;
    assert_eq!(err.key(), Some("jwt.issuers[3].jwks_url"), "{err}");
    let err = error(section.replace("jwks_file =", "jwks =")).await;
    assert!(err.message().contains("unknown field"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Over HTTP through `GateLayer` and the axum `Principal` extractor (features `tower`, `axum`).
#[cfg(feature = "axum")]
mod over_http {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::routing::get;
    use portcullis::jwt::ClaimMapping;
    use portcullis::{Gate, GateLayer, Groups, Principal, Scopes};
    use serde_json::json;

    use super::support::{TestKey, bearer, claims, now};
    use super::{ISS, authenticator};

    async fn whoami(principal: Principal) -> axum::Json<serde_json::Value> {
        axum::Json(json!({
            "subject": principal.subject(),
            "groups": principal.groups(),
            "tenant": principal.claims().and_then(|c| c.get("tenant")).cloned(),
        }))
    }

    #[tokio::test]
    async fn verified_claims_reach_the_handler_over_http() {
        let key = TestKey::rsa(0, "k");
        let jwt = authenticator(&[&key], ClaimMapping::new());
        let gate = Gate::builder()
            .authenticator(jwt)
            .route("/admin/**", Groups::any_of(["admins"]))
            .route("/reports", Scopes::all_of(["reports:read"]))
            .build()
            .unwrap();
        assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);
        let app = Router::new()
            .route("/whoami", get(whoami))
            .route("/admin/panel", get(whoami))
            .route("/reports", get(whoami))
            .layer(GateLayer::new(gate));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let http = reqwest::Client::new();
        let mut c = claims(ISS);
        c["tenant"] = json!("acme");
        c["groups"] = json!(["admins"]);
        let token = key.token(&c);
        let get = |path: &str, token: Option<&str>| {
            let mut request = http.get(format!("http://{addr}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let response = get("/whoami", Some(&token)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"subject": "alice", "groups": ["admins"], "tenant": "acme"})
        );
        assert_eq!(
            get("/admin/panel", Some(&token)).await.unwrap().status(),
            200
        );

        let response = get("/reports", Some(&token)).await.unwrap();
        assert_eq!(response.status(), 403);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains(r#"error="insufficient_scope""#)
                && challenge.contains(r#"scope="reports:read""#),
            "{challenge}"
        );

        let response = get("/whoami", None).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="api""#
        );

        let mut expired = claims(ISS);
        expired["exp"] = json!(now() - 3600);
        expired["iat"] = json!(now() - 4000);
        let stale = key.token(&expired);
        let response = get("/whoami", Some(&stale)).await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        let body = response.text().await.unwrap();
        assert!(!challenge.contains(&stale[..30]) && !body.contains(&stale[..30]));
    }
}
