//! Interop with a real OpenID provider: node `oidc-provider` (pinned in
//! `scripts/oidc-provider/package.json`) on 127.0.0.1 issues a client-credentials JWT access
//! token over HTTP; portcullis finds the keys through discovery and accepts it. And its token
//! introspection endpoint: a user's refresh token, which that endpoint calls active, does not
//! authenticate a request. And DPoP (RFC 9449): a token the provider binds to the client's key
//! (JWT and introspected) is accepted with a fresh proof by that key, and refused without one.
//!
//! Needs Node.js and npm; installs the provider's dependencies on first run. Without them the
//! test prints `SKIPPED:` and passes, unless `PORTCULLIS_REQUIRE_SERVICES=1` (CI), where it fails.
#![cfg(all(feature = "jwt", feature = "introspection"))]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use portcullis::jwt::{
    ClientAuth, IntrospectionAuthenticator, JwtAuthenticator, KeySource, TokenErrorKind,
};
use portcullis::{Gate, Scheme, Scopes, SecretString, SubjectKind};
use serde_json::Value;

const CLIENT_ID: &str = "portcullis-interop";
const CLIENT_SECRET: &str = "interop-secret-for-tests-only";
const RESOURCE: &str = "urn:portcullis:api";

/// Skips with a notice, or fails when services are required.
fn unavailable(why: &str) {
    if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("oidc-provider interop cannot run: {why} (PORTCULLIS_REQUIRE_SERVICES=1)");
    }
    println!("SKIPPED: oidc-provider interop: {why}");
}

fn runs(program: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("`{program}` cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

/// The provider process, stopped when dropped.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_provider(dir: &Path) -> Result<(Provider, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg(port.to_string())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("node cannot start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let provider = Provider(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(issuer) = line.strip_prefix("ready ") {
                let _ = tx.send(issuer.to_owned());
            }
        }
    });
    let issuer = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the provider did not start within 30 s".to_owned())?;
    Ok((provider, issuer))
}

/// The provider running, with its issuer URL; `None` (after `unavailable`) when it cannot run.
async fn provider() -> Option<(Provider, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oidc-provider");
    if let Err(why) =
        runs("node", &["--version"], &dir).and_then(|()| runs("npm", &["--version"], &dir))
    {
        unavailable(&why);
        return None;
    }
    if !dir.join("node_modules/oidc-provider").exists() {
        let installed = runs("npm", &["ci", "--no-audit", "--no-fund"], &dir)
            .or_else(|_| runs("npm", &["install", "--no-audit", "--no-fund"], &dir));
        if let Err(why) = installed {
            unavailable(&why);
            return None;
        }
    }
    match tokio::task::spawn_blocking(move || start_provider(&dir)).await {
        Ok(Ok(started)) => Some(started),
        Ok(Err(why)) => {
            unavailable(&why);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A form POST to the provider with HTTP Basic client authentication; the JSON answer.
async fn post_form(url: &str, client: (&str, &str), form: &str) -> Value {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1));
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("the provider answers");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{url}: {answer}");
    answer
}

#[tokio::test]
async fn an_oidc_provider_token_verifies_through_discovery() {
    let Some((provider, issuer)) = provider().await else {
        return;
    };

    // A client-credentials token for the resource, over HTTP.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=orders%3Aread&resource=urn%3Aportcullis%3Aapi")
        .send()
        .await
        .expect("token endpoint answers");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    let token = answer["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    assert_eq!(token.matches('.').count(), 2, "a JWT access token");

    #[cfg(feature = "jwks")]
    let builder = JwtAuthenticator::builder();
    #[cfg(not(feature = "jwks"))]
    let builder = JwtAuthenticator::builder().http_client(support::client());
    let jwt = builder
        .issuer(issuer.clone(), KeySource::discovery())
        .audience(RESOURCE)
        .require_typ("at+jwt")
        .build()
        .expect("valid settings");
    let principal = jwt
        .verify(&token)
        .await
        .expect("the provider's token verifies");
    assert_eq!(principal.subject(), CLIENT_ID);
    assert_eq!(principal.kind(), SubjectKind::Application);
    assert_eq!(principal.scheme(), Scheme::JWT);
    assert_eq!(principal.scopes(), ["orders:read"]);
    assert!(principal.credential_id().is_some());
    let lifetime = principal.expires_at().unwrap() - principal.issued_at().unwrap();
    assert_eq!(lifetime.num_seconds(), 300);

    // Through the Gate, with a scope rule.
    let gate = Gate::builder()
        .authenticator(jwt)
        .route("/orders/**", Scopes::all_of(["orders:read"]))
        .route("/admin/**", Scopes::all_of(["orders:write"]))
        .build()
        .unwrap();
    let ok = support::call(
        &gate,
        "/orders/1",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(ok.status, 200);
    let denied = support::call(
        &gate,
        "/admin/x",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.bearer_error().as_deref(), Some("insufficient_scope"));
    drop(provider);
}

/// Issue #16 item 1, against the real provider: a user's refresh token (obtained through CIBA,
/// which the test provider approves at once) is `active: true` at the introspection endpoint,
/// and must not authenticate a request to the resource server. oidc-provider leaves
/// `token_type` out of a refresh token's answer, so what refuses it is the required audience:
/// a refresh token has no `aud`.
#[tokio::test]
async fn the_providers_refresh_token_does_not_authenticate_through_introspection() {
    let Some((provider, issuer)) = provider().await else {
        return;
    };
    let user_app = ("portcullis-user-app", "user-app-secret-for-tests-only");
    let started = post_form(
        &format!("{issuer}/backchannel"),
        user_app,
        "scope=openid%20offline_access&login_hint=alice",
    )
    .await;
    let auth_req_id = started["auth_req_id"].as_str().expect("auth_req_id");
    let tokens = post_form(
        &format!("{issuer}/token"),
        user_app,
        &format!("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={auth_req_id}"),
    )
    .await;
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");

    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .expect("discovery answers")
        .json()
        .await
        .expect("JSON");
    let endpoint = discovery["introspection_endpoint"]
        .as_str()
        .expect("an introspection endpoint");
    let resource_server = || {
        ClientAuth::basic(
            "portcullis-resource-server",
            SecretString::new("resource-server-secret-for-tests-only"),
        )
    };
    #[cfg(feature = "jwks")]
    let builder = IntrospectionAuthenticator::builder(endpoint, resource_server());
    #[cfg(not(feature = "jwks"))]
    let builder = IntrospectionAuthenticator::builder(endpoint, resource_server())
        .http_client(support::client());
    let introspection = builder
        .issuer(issuer.clone())
        .audiences([RESOURCE])
        .build()
        .expect("valid settings");
    let gate = Gate::builder()
        .authenticator(introspection.clone())
        .build()
        .unwrap();
    let answer = support::bearer(&gate, refresh).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.bearer_error().as_deref(), Some("invalid_token"));
    assert!(answer.principal.is_none());
    assert_eq!(
        introspection.introspect(refresh).await.unwrap_err().kind(),
        TokenErrorKind::InvalidAudience
    );

    // The endpoint does call it active: without the audience check (the old behaviour, now
    // only under its dangerous name) the refresh token is alice.
    #[cfg(feature = "jwks")]
    let builder = IntrospectionAuthenticator::builder(endpoint, resource_server());
    #[cfg(not(feature = "jwks"))]
    let builder = IntrospectionAuthenticator::builder(endpoint, resource_server())
        .http_client(support::client());
    let unchecked = builder
        .dangerous_skip_audience_check()
        .build()
        .expect("valid settings");
    let principal = unchecked.introspect(refresh).await.expect("active");
    assert_eq!(principal.subject(), "alice");
    drop(provider);
}

/// The resource of the provider whose tokens are opaque (and so can be introspected).
const OPAQUE_RESOURCE: &str = "urn:portcullis:opaque";
/// The public origin of the resource server the DPoP tests stand for.
const ORIGIN: &str = "https://api.example.com";

/// A client-credentials token for `resource`, requested with a DPoP proof by `key` (RFC 9449
/// §5): the provider's answer.
async fn dpop_token(issuer: &str, key: &support::TestKey, resource: &str) -> Value {
    let token_url = format!("{issuer}/token");
    let proof = key.proof("POST", &token_url).sign(key);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let response = reqwest::Client::new()
        .post(&token_url)
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", proof)
        .body(format!(
            "grant_type=client_credentials&scope=orders%3Aread&resource={}",
            resource.replace(':', "%3A")
        ))
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "DPoP", "{answer}");
    answer
}

/// `GET path` through `gate` as `Authorization: DPoP token` with `proof` (none: no header).
async fn dpop_call(gate: &Gate, path: &str, token: &str, proof: Option<&str>) -> support::Answer {
    let authorization = format!("DPoP {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    if let Some(proof) = proof {
        headers.push(("dpop", proof));
    }
    support::call(gate, path, &headers).await
}

/// The `jkt` the principal's confirmation names, if any.
fn confirmed_jkt(answer: &support::Answer) -> Option<String> {
    let principal = serde_json::to_value(answer.principal.as_ref()?).expect("JSON");
    principal["confirmation"]["dpop"]["jkt"]
        .as_str()
        .map(str::to_owned)
}

/// Issue #22 item 6: the provider (DPoP on) issues a client-credentials JWT bound to the client's
/// key; a Gate built from a TOML file that names only the issuer (discovery), the audience and
/// the public origin accepts it with a fresh proof, and refuses it replayed, as Bearer, or with
/// a proof by another key.
#[tokio::test]
async fn the_providers_dpop_bound_token_is_accepted_with_a_fresh_proof() {
    let Some((provider, issuer)) = provider().await else {
        return;
    };
    let key = support::TestKey::es256("client-dpop");
    let answer = dpop_token(&issuer, &key, RESOURCE).await;
    let token = answer["access_token"].as_str().expect("a token").to_owned();
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims");
    assert_eq!(claims["cnf"]["jkt"].as_str(), Some(key.jkt().as_str()));

    let config = format!(
        r#"
[gate]
public_origin = "{ORIGIN}"

[jwt]
audiences = ["{RESOURCE}"]
typ = "at+jwt"

[[jwt.issuers]]
issuer = "{issuer}"
discovery = true
"#
    );
    let config = portcullis::config::Config::from_str(&config).expect("valid config");
    #[cfg(not(feature = "jwks"))]
    let config = config.with_http_client(support::client());
    let gate = config.build().await.expect("the Gate builds");

    let url = format!("{ORIGIN}/orders/1");
    let proof = key.proof("GET", &url).for_token(&token).sign(&key);
    let ok = dpop_call(&gate, "/orders/1", &token, Some(&proof)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let principal = ok.principal.as_ref().expect("a principal");
    assert_eq!(principal.subject(), CLIENT_ID);
    assert_eq!(principal.scopes(), ["orders:read"]);
    assert_eq!(confirmed_jkt(&ok), Some(key.jkt()));

    let replayed = dpop_call(&gate, "/orders/1", &token, Some(&proof)).await;
    assert_eq!(replayed.status, 401, "{replayed:?}");
    assert_eq!(
        replayed.bearer_error().as_deref(),
        Some("invalid_dpop_proof")
    );

    let as_bearer = support::call(
        &gate,
        "/orders/1",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(as_bearer.status, 401, "{as_bearer:?}");
    assert_eq!(as_bearer.bearer_error().as_deref(), Some("invalid_token"));

    let thief = support::TestKey::es256("thief");
    let stolen = thief.proof("GET", &url).for_token(&token).sign(&thief);
    let refused = dpop_call(&gate, "/orders/1", &token, Some(&stolen)).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(
        refused.bearer_error().as_deref(),
        Some("invalid_dpop_proof")
    );
    drop(provider);
}

/// Issue #22 item 6: the provider's introspection answer for a DPoP-bound opaque token carries
/// `cnf.jkt` (and `token_type: DPoP`); the introspection authenticator accepts the token with a
/// proof by that key and refuses it without one.
#[tokio::test]
async fn an_introspected_dpop_bound_token_needs_its_proof() {
    let Some((provider, issuer)) = provider().await else {
        return;
    };
    let key = support::TestKey::es256("client-dpop");
    let answer = dpop_token(&issuer, &key, OPAQUE_RESOURCE).await;
    let token = answer["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(token.matches('.').count(), 0, "an opaque token");

    let endpoint = format!("{issuer}/token/introspection");
    let said = post_form(
        &endpoint,
        (
            "portcullis-resource-server",
            "resource-server-secret-for-tests-only",
        ),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(said["active"], true, "{said}");
    assert_eq!(
        said["cnf"]["jkt"].as_str(),
        Some(key.jkt().as_str()),
        "{said}"
    );

    let auth = ClientAuth::basic(
        "portcullis-resource-server",
        SecretString::new("resource-server-secret-for-tests-only"),
    );
    #[cfg(feature = "jwks")]
    let builder = IntrospectionAuthenticator::builder(&endpoint, auth);
    #[cfg(not(feature = "jwks"))]
    let builder =
        IntrospectionAuthenticator::builder(&endpoint, auth).http_client(support::client());
    let introspection = builder
        .issuer(issuer.clone())
        .audiences([OPAQUE_RESOURCE])
        .build()
        .expect("valid settings");
    let gate = Gate::builder()
        .authenticator(introspection.clone())
        .public_origin(ORIGIN)
        .build()
        .unwrap();

    let url = format!("{ORIGIN}/orders");
    let proof = key.proof("GET", &url).for_token(&token).sign(&key);
    let ok = dpop_call(&gate, "/orders", &token, Some(&proof)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.principal.as_ref().unwrap().subject(), CLIENT_ID);
    assert_eq!(confirmed_jkt(&ok), Some(key.jkt()));

    // Without a proof: as DPoP, and as Bearer.
    let no_proof = dpop_call(&gate, "/orders", &token, None).await;
    assert_eq!(no_proof.status, 401, "{no_proof:?}");
    assert_eq!(
        no_proof.bearer_error().as_deref(),
        Some("invalid_dpop_proof")
    );
    let as_bearer = support::bearer(&gate, &token).await;
    assert_eq!(as_bearer.status, 401, "{as_bearer:?}");
    assert_eq!(as_bearer.bearer_error().as_deref(), Some("invalid_token"));
    assert_eq!(
        introspection.introspect(&token).await.unwrap_err().kind(),
        TokenErrorKind::DpopBound
    );

    // With a proof by another key.
    let thief = support::TestKey::es256("thief");
    let stolen = thief.proof("GET", &url).for_token(&token).sign(&thief);
    let refused = dpop_call(&gate, "/orders", &token, Some(&stolen)).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(
        refused.bearer_error().as_deref(),
        Some("invalid_dpop_proof")
    );
    drop(provider);
}
