//! The DPoP (RFC 9449) attack corpus, through a real axum app behind the Gate on 127.0.0.1: every
//! forged, replayed or misplaced proof is refused with the status and `WWW-Authenticate`
//! challenge `docs/security.md` lists, and the check that refused it is named by
//! `JwtAuthenticator::verify_dpop` (the same checks without the server's state: nonce and
//! replay), so a refusal for the wrong reason fails the test.
//!
//! Proofs are made by hand (`jwt_fixtures/support.rs`), so any header or claim can be forged; the
//! RFC 7638 thumbprint a token's `cnf.jkt` carries is computed there too, independently of the
//! library, and checked against the RFC's own example here.
#![cfg(all(feature = "jwt", feature = "axum", feature = "basic"))]

mod common;
#[path = "jwt_fixtures/support.rs"]
mod support;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::routing::get;
use portcullis::jwt::dpop::{
    DpopErrorKind, DpopSettings, MemoryReplayCache, ReplayCache, verify_proof,
};
use portcullis::jwt::{JwtAuthenticator, KeySet, KeySource};
use portcullis::policy::SenderConstrained;
use portcullis::{Gate, Principal};
use serde_json::{Value, json};
use support::{TestKey, ath, bound_claims, claims, jwks, now, thumbprint};

/// The issuer of the test tokens.
const ISS: &str = "https://idp.example";
/// The Gate's public origin: what a proof's `htu` names, whatever address the test server has.
const ORIGIN: &str = "https://api.example.com";
/// The proof algorithms the Gate accepts by default, as its challenge lists them.
const ALGS: &str = r#"algs="ES256 ES384 RS256 PS256 PS384 EdDSA""#;

/// The app behind a Gate with DPoP in its default (`allowed`) mode.
struct App {
    base: String,
    client: reqwest::Client,
    issuer: TestKey,
    jwt: JwtAuthenticator,
}

/// What the app answered.
#[derive(Debug)]
struct Reply {
    status: u16,
    challenges: Vec<String>,
    retry_after: Option<String>,
    dpop_nonce: Option<String>,
    body: String,
}

impl Reply {
    /// The challenge of `scheme` (`"DPoP"`, `"Bearer"`), if the answer carries one.
    fn challenge(&self, scheme: &str) -> Option<&str> {
        self.challenges
            .iter()
            .map(String::as_str)
            .find(|c| c.starts_with(&format!("{scheme} ")) || *c == scheme)
    }

    /// The `error` parameter of `scheme`'s challenge.
    fn error(&self, scheme: &str) -> Option<String> {
        let challenge = self.challenge(scheme)?;
        let start = challenge.find("error=\"")? + "error=\"".len();
        let end = challenge[start..].find('"')? + start;
        Some(challenge[start..end].to_owned())
    }

    /// Asserts a 401 whose DPoP challenge says `error` and lists the algorithms.
    fn assert_dpop_401(&self, error: &str, case: &str) {
        assert_eq!(self.status, 401, "{case}: {self:?}");
        assert_eq!(
            self.error("DPoP").as_deref(),
            Some(error),
            "{case}: {self:?}"
        );
        let challenge = self.challenge("DPoP").unwrap();
        assert!(challenge.contains(ALGS), "{case}: {challenge}");
    }
}

/// The framework the app runs on.
#[derive(Clone, Copy, Debug)]
enum Server {
    Axum,
    #[cfg(feature = "actix")]
    Actix,
}

impl App {
    async fn start(settings: DpopSettings) -> App {
        App::start_on(settings, Server::Axum).await
    }

    async fn start_on(settings: DpopSettings, server: Server) -> App {
        let issuer = TestKey::es256("issuer-key");
        let keys = KeySet::from_jwks(&jwks(&[&issuer])).unwrap();
        let jwt = JwtAuthenticator::builder()
            .issuer(ISS, KeySource::Static(keys))
            .audience("api")
            .require_typ("at+jwt")
            .dpop(settings)
            .build()
            .unwrap();
        let gate = Gate::builder()
            .authenticator(jwt.clone())
            .public_origin(ORIGIN)
            .route("/bound", SenderConstrained)
            .build()
            .unwrap();
        let base = match server {
            Server::Axum => {
                let router = common::router()
                    .route("/principal", get(|p: Principal| async move { Json(p) }))
                    .route("/bound", get(|| async { "bound" }))
                    .route("/orders", get(|| async { "orders" }));
                common::serve_router(router, gate).await
            }
            #[cfg(feature = "actix")]
            Server::Actix => actix(gate),
        };
        App {
            base,
            client: common::client(),
            issuer,
            jwt,
        }
    }

    /// A token for alice bound to `key`.
    fn bound_token(&self, key: &TestKey) -> String {
        self.issuer.token(&bound_claims(ISS, key))
    }

    /// A token for alice bound to no key.
    fn unbound_token(&self) -> String {
        self.issuer.token(&claims(ISS))
    }

    /// Sends `method path` with `headers` (a name may repeat).
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        let challenges = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .flat_map(|v| split_challenges(v.to_str().unwrap()))
            .collect();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let dpop_nonce = response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Reply {
            status,
            challenges,
            retry_after,
            dpop_nonce,
            body,
        }
    }

    /// `GET path` with `Authorization: DPoP token` and `DPoP: proof`.
    async fn dpop(&self, path: &str, token: &str, proof: &str) -> Reply {
        self.send(
            "GET",
            path,
            &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
        )
        .await
    }
}

/// Splits one `WWW-Authenticate` value into its challenges (a new one starts at a scheme name
/// after a comma: `Bearer realm="api", DPoP algs="ES256"`).
fn split_challenges(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => {
                let rest = value[i + 1..].trim_start();
                let word: String = rest
                    .chars()
                    .take_while(|c| *c != ' ' && *c != '=')
                    .collect();
                let is_scheme = !word.is_empty() && rest[word.len()..].starts_with(' ');
                if is_scheme {
                    out.push(value[start..i].trim().to_owned());
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    out.push(value[start..].trim().to_owned());
    out
}

/// The proof settings of the Gate, for `verify_proof`.
fn settings() -> DpopSettings {
    DpopSettings::new()
}

/// The check [`JwtAuthenticator::verify_dpop`] names for `proof` on `GET {ORIGIN}/me` with
/// `token`.
async fn refused_by(jwt: &JwtAuthenticator, proof: &str, token: &str) -> DpopErrorKind {
    jwt.verify_dpop(token, proof, "GET", &format!("{ORIGIN}/me"))
        .await
        .expect_err("the proof is refused")
        .kind()
}

#[test]
fn the_thumbprint_of_the_rfc_7638_example() {
    // RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 and its thumbprint.
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    });
    assert_eq!(
        thumbprint(&jwk),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // RFC 9449 §4.2 (the example of `ath`).
    assert_eq!(
        ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

/// The library's thumbprint (the `jkt` of a verified proof) is the test's, for every key type.
#[test]
fn the_library_thumbprint_is_rfc_7638() {
    for key in [
        TestKey::es256("e"),
        TestKey::ed25519("d"),
        TestKey::rsa(0, "r"),
    ] {
        let proof = key.proof("GET", &format!("{ORIGIN}/me")).sign(&key);
        let verified = verify_proof(
            &proof,
            "GET",
            &format!("{ORIGIN}/me"),
            None,
            &settings(),
            SystemTime::now(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", key.alg));
        assert_eq!(verified.jkt(), key.jkt(), "{}", key.alg);
    }
}

#[tokio::test]
async fn a_fresh_proof_for_a_bound_token_is_accepted() {
    let app = App::start(settings()).await;
    for key in [
        TestKey::es256("client"),
        TestKey::ed25519("client"),
        TestKey::rsa(0, "client"),
        TestKey::rsa(0, "client").with_alg("PS256"),
    ] {
        let token = app.bound_token(&key);
        let proof = key
            .proof("GET", &format!("{ORIGIN}/principal"))
            .for_token(&token)
            .sign(&key);
        let reply = app.dpop("/principal", &token, &proof).await;
        assert_eq!(reply.status, 200, "{}: {reply:?}", key.alg);
        let principal: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(principal["subject"], "alice");
        assert_eq!(
            principal["confirmation"]["dpop"]["jkt"],
            json!(key.jkt()),
            "{}",
            reply.body
        );
    }

    // htu is compared after RFC 3986 normalisation: scheme and host case, the default port;
    // the request's query is not part of it.
    let key = TestKey::es256("client");
    let token = app.bound_token(&key);
    for (htu, path) in [
        ("HTTPS://API.Example.COM:443/me", "/me"),
        ("https://api.example.com/me", "/me?page=2"),
        ("https://api.example.com/me?page=1#top", "/me"),
    ] {
        let proof = key.proof("GET", htu).for_token(&token).sign(&key);
        let reply = app.dpop(path, &token, &proof).await;
        assert_eq!(reply.status, 200, "{htu} for {path}: {reply:?}");
    }

    // The SenderConstrained route: the bound principal passes; an unbound bearer token is a 403.
    let proof = key
        .proof("GET", &format!("{ORIGIN}/bound"))
        .for_token(&token)
        .sign(&key);
    assert_eq!(app.dpop("/bound", &token, &proof).await.status, 200);
    let bearer = app.unbound_token();
    let reply = app
        .send(
            "GET",
            "/bound",
            &[("authorization", &format!("Bearer {bearer}"))],
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        app.send(
            "GET",
            "/me",
            &[("authorization", &format!("Bearer {bearer}"))]
        )
        .await
        .status,
        200
    );
}

/// A proof made by another library: jsonwebtoken's `Header::jwk`, from the key's PKCS#8.
#[tokio::test]
async fn a_proof_made_with_jsonwebtoken_is_accepted() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let app = App::start(settings()).await;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256)
        .unwrap();
    let public = serde_json::to_value(&jwk).unwrap();
    let mut token_claims = claims(ISS);
    token_claims["cnf"] = json!({ "jkt": thumbprint(&public) });
    let token = app.issuer.token(&token_claims);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("dpop+jwt".to_owned());
    header.jwk = Some(jwk);
    let proof = jsonwebtoken::encode(
        &header,
        &json!({
            "htm": "GET", "htu": format!("{ORIGIN}/me"), "iat": now(),
            "jti": support::random_jti(), "ath": ath(&token),
        }),
        &encoding,
    )
    .unwrap();
    let reply = app.dpop("/me", &token, &proof).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// Every forged proof: a 401 with `DPoP error="invalid_dpop_proof"`, for the check named.
#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of attacks, a few lines each"
)]
async fn forged_proofs_are_refused() {
    let app = App::start(settings()).await;
    let key = TestKey::es256("client");
    let other = TestKey::es256("other");
    let ed = TestKey::ed25519("ed");
    let hmac = TestKey::hs256("hmac", b"a DPoP proof HMAC secret, 32 B+!");
    let token = app.bound_token(&key);
    let me = format!("{ORIGIN}/me");
    let good = || key.proof("GET", &me).for_token(&token);
    let weak: Value = serde_json::from_str(include_str!("jwt_fixtures/rsa1024_jwks.json")).unwrap();
    let mut weak_jwk = weak["keys"][0].clone();
    for name in ["kid", "alg", "use"] {
        weak_jwk.as_object_mut().unwrap().remove(name);
    }

    let cases: Vec<(&str, String, DpopErrorKind)> = vec![
        (
            "htm another method",
            good().claim("htm", json!("POST")).sign(&key),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "htm in lower case",
            good().claim("htm", json!("get")).sign(&key),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "htm missing",
            good().claim("htm", Value::Null).sign(&key),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "htu another path",
            good()
                .claim("htu", json!(format!("{ORIGIN}/admin")))
                .sign(&key),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu another host",
            good()
                .claim("htu", json!("https://evil.example.com/me"))
                .sign(&key),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu another scheme",
            good()
                .claim("htu", json!("http://api.example.com/me"))
                .sign(&key),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu another port",
            good()
                .claim("htu", json!("https://api.example.com:8443/me"))
                .sign(&key),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu missing",
            good().claim("htu", Value::Null).sign(&key),
            DpopErrorKind::UriMismatch,
        ),
        (
            "iat stale (2 minutes old; max_age 60 s)",
            good().claim("iat", json!(now() - 120)).sign(&key),
            DpopErrorKind::Stale,
        ),
        (
            "iat in the future (1 minute; skew 5 s)",
            good().claim("iat", json!(now() + 60)).sign(&key),
            DpopErrorKind::IssuedInFuture,
        ),
        (
            "ath missing",
            good().claim("ath", Value::Null).sign(&key),
            DpopErrorKind::AccessTokenHashMismatch,
        ),
        (
            "ath of another token",
            good().claim("ath", json!(ath("another token"))).sign(&key),
            DpopErrorKind::AccessTokenHashMismatch,
        ),
        (
            "jwk not the key cnf.jkt names",
            other.proof("GET", &me).for_token(&token).sign(&other),
            DpopErrorKind::KeyMismatch,
        ),
        (
            "HMAC proof (HS256, an oct jwk)",
            hmac.proof("GET", &me).for_token(&token).sign(&hmac),
            DpopErrorKind::UnsupportedAlgorithm,
        ),
        (
            "alg none, no signature",
            good().header("alg", json!("none")).with_signature(b""),
            DpopErrorKind::Malformed,
        ),
        (
            "alg none, some signature bytes",
            good().header("alg", json!("none")).with_signature(b"sig"),
            DpopErrorKind::UnsupportedAlgorithm,
        ),
        (
            "alg RS256 with a P-256 key",
            good().header("alg", json!("RS256")).sign(&key),
            DpopErrorKind::InvalidKey,
        ),
        (
            "jwk with its private key (d)",
            good().header("jwk", key.private_jwk()).sign(&key),
            DpopErrorKind::InvalidKey,
        ),
        (
            "typ missing",
            good().header("typ", Value::Null).sign(&key),
            DpopErrorKind::InvalidType,
        ),
        (
            "typ JWT",
            good().header("typ", json!("JWT")).sign(&key),
            DpopErrorKind::InvalidType,
        ),
        (
            "typ at+jwt (an access token as a proof)",
            good().header("typ", json!("at+jwt")).sign(&key),
            DpopErrorKind::InvalidType,
        ),
        // aws-lc-rs cannot sign with RSA-1024, so this proof's signature is 128 arbitrary bytes:
        // the key is refused before any signature is checked, and `InvalidKey` (not
        // `InvalidSignature`) proves it.
        (
            "RSA-1024 proof key",
            good()
                .header("alg", json!("RS256"))
                .header("jwk", weak_jwk)
                .with_signature(&[0x5a; 128]),
            DpopErrorKind::InvalidKey,
        ),
        (
            "alg ES384 with a P-256 key",
            good().header("alg", json!("ES384")).sign(&key),
            DpopErrorKind::InvalidKey,
        ),
        (
            "alg EdDSA with a P-256 key",
            good().header("alg", json!("EdDSA")).sign(&key),
            DpopErrorKind::InvalidKey,
        ),
        (
            "alg ES256 with an Ed25519 key",
            ed.proof("GET", &me)
                .for_token(&token)
                .header("alg", json!("ES256"))
                .sign(&ed),
            DpopErrorKind::InvalidKey,
        ),
        (
            "jwk missing",
            good().header("jwk", Value::Null).sign(&key),
            DpopErrorKind::InvalidKey,
        ),
        (
            "signed by another key than its jwk",
            good().sign(&other),
            DpopErrorKind::InvalidSignature,
        ),
        (
            "jti missing",
            good().claim("jti", Value::Null).sign(&key),
            DpopErrorKind::InvalidJti,
        ),
        (
            "not a JWS",
            "not-a-proof".to_owned(),
            DpopErrorKind::Malformed,
        ),
    ];
    for (case, proof, kind) in cases {
        assert_eq!(refused_by(&app.jwt, &proof, &token).await, kind, "{case}");
        let reply = app.dpop("/me", &token, &proof).await;
        reply.assert_dpop_401("invalid_dpop_proof", case);
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let app = App::start(settings()).await;
    let key = TestKey::es256("client");
    let token = app.bound_token(&key);
    let proof = key
        .proof("GET", &format!("{ORIGIN}/me"))
        .for_token(&token)
        .sign(&key);
    assert_eq!(app.dpop("/me", &token, &proof).await.status, 200);
    app.dpop("/me", &token, &proof)
        .await
        .assert_dpop_401("invalid_dpop_proof", "replayed proof");
    // The same jti with a new signature, and on another path, is still a replay.
    let again = key
        .proof("GET", &format!("{ORIGIN}/orders"))
        .for_token(&token)
        .claim(
            "jti",
            json!(serde_json::from_str::<Value>(&proof_claims(&proof)).unwrap()["jti"]),
        )
        .sign(&key);
    app.dpop("/orders", &token, &again)
        .await
        .assert_dpop_401("invalid_dpop_proof", "jti seen before");
}

/// The claims of a compact proof, as JSON text.
fn proof_claims(proof: &str) -> String {
    use base64::Engine;
    let payload = proof.split('.').nth(1).unwrap();
    String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Where the proof is, or the token is sent: missing and repeated headers, DPoP next to
/// Bearer, a bound token as Bearer, an unbound token as DPoP.
#[tokio::test]
async fn misplaced_tokens_and_proofs_are_refused() {
    let app = App::start(settings()).await;
    let key = TestKey::es256("client");
    let token = app.bound_token(&key);
    let unbound = app.unbound_token();
    let me = format!("{ORIGIN}/me");
    let proof = || key.proof("GET", &me).for_token(&token).sign(&key);
    let dpop_auth = format!("DPoP {token}");

    // No DPoP header.
    let reply = app
        .send("GET", "/me", &[("authorization", &dpop_auth)])
        .await;
    reply.assert_dpop_401("invalid_dpop_proof", "no DPoP header");

    // Two DPoP headers, each a valid proof.
    let (first, second) = (proof(), proof());
    let reply = app
        .send(
            "GET",
            "/me",
            &[
                ("authorization", &dpop_auth),
                ("dpop", &first),
                ("dpop", &second),
            ],
        )
        .await;
    reply.assert_dpop_401("invalid_dpop_proof", "two DPoP headers");
    // Neither was recorded as used: each still works alone.
    assert_eq!(app.dpop("/me", &token, &first).await.status, 200);

    // A Bearer token with a DPoP header: 400 invalid_request.
    let unbound_proof = key.proof("GET", &me).for_token(&unbound).sign(&key);
    let reply = app
        .send(
            "GET",
            "/me",
            &[
                ("authorization", &format!("Bearer {unbound}")),
                ("dpop", &unbound_proof),
            ],
        )
        .await;
    assert_eq!(reply.status, 400, "Bearer + DPoP header: {reply:?}");
    assert_eq!(reply.error("Bearer").as_deref(), Some("invalid_request"));

    // Two Authorization headers, one of them DPoP: 400 invalid_request.
    let reply = app
        .send(
            "GET",
            "/me",
            &[
                ("authorization", &dpop_auth),
                ("authorization", &dpop_auth),
                ("dpop", &proof()),
            ],
        )
        .await;
    assert_eq!(reply.status, 400, "two Authorization headers: {reply:?}");
    assert_eq!(reply.error("DPoP").as_deref(), Some("invalid_request"));

    // A bound token as Bearer: 401 Bearer invalid_token, in the default (allowed) mode.
    let reply = app
        .send(
            "GET",
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 401, "bound token as Bearer: {reply:?}");
    assert_eq!(reply.error("Bearer").as_deref(), Some("invalid_token"));

    // An unbound token as DPoP, with a proof that is right in every other way.
    let reply = app.dpop("/me", &unbound, &unbound_proof).await;
    reply.assert_dpop_401("invalid_token", "unbound token as DPoP");

    // A bad token as DPoP (expired), with a good proof.
    let mut expired = bound_claims(ISS, &key);
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    let expired = app.issuer.token(&expired);
    let proof_for_expired = key.proof("GET", &me).for_token(&expired).sign(&key);
    app.dpop("/me", &expired, &proof_for_expired)
        .await
        .assert_dpop_401("invalid_token", "expired token as DPoP");

    // The authenticator says the same thing, for the CLI.
    let err = app
        .jwt
        .verify_dpop(&unbound, &unbound_proof, "GET", &me)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::UnboundToken);
}

/// No credential at all, in the default (`allowed`) mode: both challenges, neither with an
/// error.
#[tokio::test]
async fn an_anonymous_401_offers_bearer_and_dpop() {
    let app = App::start(settings()).await;
    let reply = app.send("GET", "/me", &[]).await;
    assert_eq!(reply.status, 401);
    assert!(reply.challenge("Bearer").is_some(), "{reply:?}");
    assert!(reply.challenge("DPoP").unwrap().contains(ALGS), "{reply:?}");
    assert_eq!(reply.error("DPoP"), None);
    assert_eq!(reply.error("Bearer"), None);
}

/// With server nonces on, a proof without one (or with a made-up one) gets 401
/// `use_dpop_nonce` and a `DPoP-Nonce` header; a proof carrying that nonce is accepted.
#[tokio::test]
async fn server_nonces() {
    let app = App::start(settings().use_nonce(true)).await;
    let key = TestKey::es256("client");
    let token = app.bound_token(&key);
    let me = format!("{ORIGIN}/me");
    let proof = key.proof("GET", &me).for_token(&token);

    let reply = app.dpop("/me", &token, &proof.clone().sign(&key)).await;
    reply.assert_dpop_401("use_dpop_nonce", "no nonce");
    let nonce = reply.dpop_nonce.clone().expect("a DPoP-Nonce header");

    let made_up = key
        .proof("GET", &me)
        .for_token(&token)
        .claim("nonce", json!("made-up"))
        .sign(&key);
    let reply = app.dpop("/me", &token, &made_up).await;
    reply.assert_dpop_401("use_dpop_nonce", "made-up nonce");
    assert!(reply.dpop_nonce.is_some());

    let with_nonce = key
        .proof("GET", &me)
        .for_token(&token)
        .claim("nonce", json!(nonce))
        .sign(&key);
    let reply = app.dpop("/me", &token, &with_nonce).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// A memory replay cache full of live entries answers 503, and evicts none of them.
#[tokio::test]
async fn a_full_replay_cache_answers_503() {
    let cache = Arc::new(MemoryReplayCache::new(2));
    let shared: Arc<dyn ReplayCache> = cache.clone();
    let app = App::start(settings().replay_cache(shared)).await;
    let key = TestKey::es256("client");
    let token = app.bound_token(&key);
    let proof = || {
        key.proof("GET", &format!("{ORIGIN}/me"))
            .for_token(&token)
            .sign(&key)
    };
    let first = proof();
    assert_eq!(app.dpop("/me", &token, &first).await.status, 200);
    assert_eq!(app.dpop("/me", &token, &proof()).await.status, 200);
    assert_eq!(cache.len(), 2);
    let reply = app.dpop("/me", &token, &proof()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(
        reply.challenge("DPoP").is_none(),
        "an outage is no bad credential"
    );
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    // The first proof is still remembered: its replay is refused, not accepted.
    app.dpop("/me", &token, &first)
        .await
        .assert_dpop_401("invalid_dpop_proof", "replay into a full cache");
}

/// Two Gates sharing one Redis (`[jwt.dpop] replay_store`): a proof one accepted, the other
/// refuses.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_proof_replayed_to_another_gate_sharing_redis_is_refused() {
    if !common::redis_lockout::redis_up() {
        return;
    }
    let issuer = TestKey::es256("issuer-key");
    let idp = support::IdpServer::start(jwks(&[&issuer])).await;
    let prefix = format!("dpopx-{}-{}", std::process::id(), now());
    let config = format!(
        r#"
[gate]
public_origin = "{ORIGIN}"

[jwt]
audiences = ["api"]
typ = "at+jwt"

[[jwt.issuers]]
issuer = "{ISS}"
jwks_url = "{jwks}"

[jwt.dpop]
replay_store = "{redis}"
redis_key_prefix = "{prefix}"
"#,
        jwks = idp.jwks_url(),
        redis = common::redis_lockout::REDIS,
    );
    let mut bases = Vec::new();
    for _ in 0..2 {
        let gate = portcullis::config::Config::from_str(&config)
            .unwrap()
            .with_http_client(support::client())
            .build()
            .await
            .unwrap();
        bases.push(common::serve_router(common::router(), gate).await);
    }
    let client = common::client();
    let key = TestKey::es256("client");
    let token = issuer.token(&bound_claims(ISS, &key));
    let send = |base: &String, proof: &str| {
        client
            .get(format!("{base}/me"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof.to_owned())
            .send()
    };
    let proof = key
        .proof("GET", &format!("{ORIGIN}/me"))
        .for_token(&token)
        .sign(&key);
    assert_eq!(send(&bases[0], &proof).await.unwrap().status(), 200);
    let replayed = send(&bases[1], &proof).await.unwrap();
    assert_eq!(replayed.status(), 401);
    let challenge = replayed
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );
    // A fresh proof works at the second Gate.
    let fresh = key
        .proof("GET", &format!("{ORIGIN}/me"))
        .for_token(&token)
        .sign(&key);
    assert_eq!(send(&bases[1], &fresh).await.unwrap().status(), 200);
}

/// The app on actix-web behind `GateMiddleware`: `/principal` answers the principal as JSON.
#[cfg(feature = "actix")]
fn actix(gate: Gate) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use portcullis::actix::GateMiddleware;

    async fn principal(principal: Principal) -> HttpResponse {
        HttpResponse::Ok().json(principal)
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .wrap(GateMiddleware::new(gate.clone()))
                    .route("/principal", web::get().to(principal))
                    .route("/me", web::get().to(principal))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("actix listens")
            .run()
            .await
            .expect("actix serves");
        });
    });
    format!("http://{addr}")
}

/// The same refusals through actix-web: the adapter hands the Gate both headers as the client
/// sent them, and the answers are the same.
#[cfg(feature = "actix")]
#[tokio::test]
async fn through_actix_the_same_answers() {
    let app = App::start_on(settings(), Server::Actix).await;
    let key = TestKey::es256("client");
    let token = app.bound_token(&key);
    let url = format!("{ORIGIN}/principal");
    let proof = || key.proof("GET", &url).for_token(&token).sign(&key);

    let first = proof();
    let reply = app.dpop("/principal", &token, &first).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let principal: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(principal["confirmation"]["dpop"]["jkt"], json!(key.jkt()));

    app.dpop("/principal", &token, &first)
        .await
        .assert_dpop_401("invalid_dpop_proof", "replayed, actix");
    let forged = key.proof("POST", &url).for_token(&token).sign(&key);
    app.dpop("/principal", &token, &forged)
        .await
        .assert_dpop_401("invalid_dpop_proof", "wrong htm, actix");
    let (one, two) = (proof(), proof());
    let auth = format!("DPoP {token}");
    let reply = app
        .send(
            "GET",
            "/principal",
            &[("authorization", &auth), ("dpop", &one), ("dpop", &two)],
        )
        .await;
    reply.assert_dpop_401("invalid_dpop_proof", "two DPoP headers, actix");
    let reply = app
        .send(
            "GET",
            "/principal",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.error("Bearer").as_deref(), Some("invalid_token"));
    let reply = app
        .send(
            "GET",
            "/principal",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("dpop", &one),
            ],
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
}
