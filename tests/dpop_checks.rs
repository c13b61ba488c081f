//! DPoP (RFC 9449, issue #22) through the Gate and through `verify_proof`: every check, positive
//! and negative, the modes, the statuses and challenges, the replay cache (memory and Redis),
//! nonces, introspection answers with `cnf.jkt`, and the TOML keys.

#![cfg(all(feature = "jwt", feature = "introspection"))]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use portcullis::jwt::dpop::*;
use portcullis::jwt::{
    Algorithm, JwtAuthenticator, KeySet, KeySource, TokenErrorKind, VerifyingKey,
};
use portcullis::policy::{Confirmation, SenderConstrained};
use portcullis::{Gate, Principal, Rejection, RequestView};

const BASE64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

const ISSUER: &str = "https://issuer.test";
const ORIGIN: &str = "https://api.example.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

/// A key that signs proofs (or tokens), with its public JWK.
enum Key {
    Ec(EcdsaKeyPair, &'static str),
    Rsa(Arc<RsaKeyPair>),
    Ed(Ed25519KeyPair),
}

impl Key {
    fn p256() -> Self {
        Key::Ec(
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            "ES256",
        )
    }

    fn p384() -> Self {
        Key::Ec(
            EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
            "ES384",
        )
    }

    fn rsa() -> Self {
        static RSA: OnceLock<Arc<RsaKeyPair>> = OnceLock::new();
        Key::Rsa(Arc::clone(RSA.get_or_init(|| {
            Arc::new(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
        })))
    }

    fn ed() -> Self {
        Key::Ed(Ed25519KeyPair::generate().unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Ec(_, alg) => alg,
            Key::Rsa(_) => "RS256",
            Key::Ed(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Key::Ec(pair, alg) => {
                let point = pair.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if *alg == "ES256" { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=len]), "y": b64(&point[1 + len..])})
            }
            Key::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Key::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Key::Ec(pair, _) => pair
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
            Key::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .unwrap();
                sig
            }
            Key::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// RFC 7638 thumbprint, computed here independently of the crate's code.
    fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = match jwk["kty"].as_str().unwrap() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["crv"].as_str().unwrap(),
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            ),
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                jwk["e"].as_str().unwrap(),
                jwk["n"].as_str().unwrap()
            ),
            _ => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                jwk["x"].as_str().unwrap()
            ),
        };
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

fn jws(key: &Key, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// An access token; bound to `jkt` when given.
fn token(jkt: Option<&str>) -> String {
    let mut claims = json!({
        "iss": ISSUER, "aud": "api", "sub": "alice", "exp": now() + 300, "iat": now(),
        "jti": "token-1",
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let issuer = Key::Ec(
        // Re-wrapping the shared pair: sign through a borrowed key.
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &issuer_pkcs8()).unwrap(),
        "ES256",
    );
    jws(&issuer, &json!({"alg": "ES256", "typ": "at+jwt"}), &claims)
}

fn issuer_pkcs8() -> Vec<u8> {
    static PKCS8: OnceLock<(Vec<u8>, VerifyingKey)> = OnceLock::new();
    PKCS8
        .get_or_init(|| {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
            let key = VerifyingKey::from_der(Algorithm::ES256, pair.public_key().as_ref()).unwrap();
            (doc.as_ref().to_vec(), key)
        })
        .0
        .clone()
}

fn issuer_verifying_key() -> VerifyingKey {
    issuer_pkcs8();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &issuer_pkcs8()).unwrap();
    VerifyingKey::from_der(Algorithm::ES256, pair.public_key().as_ref()).unwrap()
}

/// A proof's parts, valid by default, each changeable by a test.
struct ProofSpec {
    header: Value,
    claims: Value,
}

impl ProofSpec {
    fn new(key: &Key, method: &str, htu: &str, token: Option<&str>) -> Self {
        let mut claims = json!({
            "htm": method, "htu": htu, "iat": now(), "jti": random_jti(),
        });
        if let Some(token) = token {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            claims["ath"] = json!(b64(hash.as_ref()));
        }
        Self {
            header: json!({"typ": "dpop+jwt", "alg": key.alg(), "jwk": key.jwk()}),
            claims,
        }
    }

    fn sign(&self, key: &Key) -> String {
        jws(key, &self.header, &self.claims)
    }
}

fn random_jti() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(&bytes)
}

fn authenticator(settings: DpopSettings, mode: DpopMode) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .issuer(
            ISSUER,
            KeySource::Static(KeySet::new().with(issuer_verifying_key())),
        )
        .audience("api")
        .dpop(settings)
        .dpop_mode(mode)
        .build()
        .unwrap()
}

fn gate_with(settings: DpopSettings, mode: DpopMode) -> Gate {
    Gate::builder()
        .authenticator(authenticator(settings, mode))
        .public_origin(ORIGIN)
        .route("/bound/**", SenderConstrained)
        .build()
        .unwrap()
}

fn gate() -> Gate {
    gate_with(DpopSettings::default(), DpopMode::Allowed)
}

/// Runs a request through the Gate.
async fn run(
    gate: &Gate,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Option<Principal>, Rejection> {
    let method: Method = method.parse().unwrap();
    let uri: Uri = path.parse().unwrap();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    gate.check(&RequestView::new(&method, &uri, &map)).await
}

async fn dpop_request(
    gate: &Gate,
    token: &str,
    proof: &str,
) -> Result<Option<Principal>, Rejection> {
    run(
        gate,
        "GET",
        "/orders/7",
        &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
    )
    .await
}

/// The `WWW-Authenticate` values the Gate sends for `rejection`.
fn challenges(gate: &Gate, rejection: &Rejection) -> Vec<String> {
    gate.respond(rejection)
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Asserts a 401 whose DPoP challenge carries `error`.
fn assert_dpop_error(gate: &Gate, result: Result<Option<Principal>, Rejection>, error: &str) {
    let rejection = result.expect_err("must be refused");
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED, "{rejection}");
    assert_eq!(rejection.dpop_error(), Some(error), "{rejection}");
    let sent = challenges(gate, &rejection);
    assert!(
        sent.iter()
            .any(|c| c.starts_with("DPoP ") && c.contains(&format!("error=\"{error}\""))),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .all(|c| !c.starts_with("Bearer") || !c.contains("error=")),
        "the Bearer challenge carries no error: {sent:?}"
    );
}

const HTU: &str = "https://api.example.com/orders/7";

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_and_confirmed() {
    let gate = gate();
    for key in [Key::p256(), Key::p384(), Key::rsa(), Key::ed()] {
        let token = token(Some(&key.jkt()));
        let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
        let principal = dpop_request(&gate, &token, &proof)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.alg()))
            .unwrap();
        assert_eq!(principal.subject(), "alice");
        assert_eq!(
            principal.confirmation(),
            Some(&Confirmation::Dpop { jkt: key.jkt() })
        );
    }
}

#[tokio::test]
async fn sender_constrained_routes_take_only_proven_tokens() {
    let gate = gate();
    let key = Key::p256();
    let bound = token(Some(&key.jkt()));
    let htu = "https://api.example.com/bound/x";
    let proof = ProofSpec::new(&key, "GET", htu, Some(&bound)).sign(&key);
    let ok = run(
        &gate,
        "GET",
        "/bound/x",
        &[
            ("authorization", &format!("DPoP {bound}")),
            ("dpop", &proof),
        ],
    )
    .await;
    assert!(ok.unwrap().is_some());
    let bearer = token(None);
    let err = run(
        &gate,
        "GET",
        "/bound/x",
        &[("authorization", &format!("Bearer {bearer}"))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    let anonymous = run(&gate, "GET", "/bound/x", &[]).await.unwrap_err();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let gate = gate();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    dpop_request(&gate, &token, &proof).await.unwrap();
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &token, &proof).await,
        "invalid_dpop_proof",
    );
}

/// Each change to a valid proof, and the check that refuses it.
#[tokio::test]
#[expect(clippy::too_many_lines, reason = "one line per case")]
async fn every_proof_check_refuses_its_case() {
    let gate = gate();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    type Change = Box<dyn Fn(&mut ProofSpec)>;
    let cases: Vec<(&str, Change, DpopErrorKind)> = vec![
        (
            "htm lowercase",
            Box::new(|p| p.claims["htm"] = json!("get")),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "htm POST",
            Box::new(|p| p.claims["htm"] = json!("POST")),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "no htm",
            Box::new(|p| {
                p.claims.as_object_mut().unwrap().remove("htm");
            }),
            DpopErrorKind::MethodMismatch,
        ),
        (
            "htu path",
            Box::new(|p| p.claims["htu"] = json!("https://api.example.com/orders/8")),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu host",
            Box::new(|p| p.claims["htu"] = json!("https://evil.example.com/orders/7")),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu scheme",
            Box::new(|p| p.claims["htu"] = json!("http://api.example.com/orders/7")),
            DpopErrorKind::UriMismatch,
        ),
        (
            "htu port",
            Box::new(|p| p.claims["htu"] = json!("https://api.example.com:8443/orders/7")),
            DpopErrorKind::UriMismatch,
        ),
        (
            "no htu",
            Box::new(|p| {
                p.claims.as_object_mut().unwrap().remove("htu");
            }),
            DpopErrorKind::UriMismatch,
        ),
        (
            "stale iat",
            Box::new(|p| p.claims["iat"] = json!(now() - 61)),
            DpopErrorKind::Stale,
        ),
        (
            "no iat",
            Box::new(|p| {
                p.claims.as_object_mut().unwrap().remove("iat");
            }),
            DpopErrorKind::Stale,
        ),
        (
            "future iat",
            Box::new(|p| p.claims["iat"] = json!(now() + 30)),
            DpopErrorKind::IssuedInFuture,
        ),
        (
            "no jti",
            Box::new(|p| {
                p.claims.as_object_mut().unwrap().remove("jti");
            }),
            DpopErrorKind::InvalidJti,
        ),
        (
            "empty jti",
            Box::new(|p| p.claims["jti"] = json!("")),
            DpopErrorKind::InvalidJti,
        ),
        (
            "long jti",
            Box::new(|p| p.claims["jti"] = json!("j".repeat(257))),
            DpopErrorKind::InvalidJti,
        ),
        (
            "no ath",
            Box::new(|p| {
                p.claims.as_object_mut().unwrap().remove("ath");
            }),
            DpopErrorKind::AccessTokenHashMismatch,
        ),
        (
            "wrong ath",
            Box::new(|p| p.claims["ath"] = json!(b64(&[0; 32]))),
            DpopErrorKind::AccessTokenHashMismatch,
        ),
        (
            "no typ",
            Box::new(|p| {
                p.header.as_object_mut().unwrap().remove("typ");
            }),
            DpopErrorKind::InvalidType,
        ),
        (
            "typ JWT",
            Box::new(|p| p.header["typ"] = json!("JWT")),
            DpopErrorKind::InvalidType,
        ),
        (
            "alg none",
            Box::new(|p| p.header["alg"] = json!("none")),
            DpopErrorKind::UnsupportedAlgorithm,
        ),
        (
            "alg HS256",
            Box::new(|p| p.header["alg"] = json!("HS256")),
            DpopErrorKind::UnsupportedAlgorithm,
        ),
        (
            "alg of another key",
            Box::new(|p| p.header["alg"] = json!("RS256")),
            DpopErrorKind::InvalidKey,
        ),
        (
            "no jwk",
            Box::new(|p| {
                p.header.as_object_mut().unwrap().remove("jwk");
            }),
            DpopErrorKind::InvalidKey,
        ),
        (
            "private d",
            Box::new(|p| p.header["jwk"]["d"] = json!(b64(&[1; 32]))),
            DpopErrorKind::InvalidKey,
        ),
        (
            "oct key",
            Box::new(|p| p.header["jwk"] = json!({"kty": "oct", "k": b64(&[1; 32])})),
            DpopErrorKind::InvalidKey,
        ),
        (
            "crit",
            Box::new(|p| p.header["crit"] = json!(["x"])),
            DpopErrorKind::Malformed,
        ),
        (
            "iat a string",
            Box::new(|p| p.claims["iat"] = json!(now().to_string())),
            DpopErrorKind::Malformed,
        ),
    ];
    for (name, change, kind) in cases {
        let mut spec = ProofSpec::new(&key, "GET", HTU, Some(&token));
        change(&mut spec);
        let proof = spec.sign(&key);
        let err = verify_proof(
            &proof,
            "GET",
            HTU,
            Some(&token),
            &DpopSettings::default(),
            SystemTime::now(),
        )
        .expect_err(name);
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert_dpop_error(
            &gate,
            dpop_request(&gate, &token, &proof).await,
            "invalid_dpop_proof",
        );
    }
}

#[tokio::test]
async fn the_signature_and_the_binding_are_checked() {
    let gate = gate();
    let key = Key::p256();
    let other = Key::p256();
    let token = token(Some(&key.jkt()));
    // Signed by another key than its `jwk`.
    let forged = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&other);
    let err = verify_proof(
        &forged,
        "GET",
        HTU,
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::InvalidSignature);
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &token, &forged).await,
        "invalid_dpop_proof",
    );
    // A valid proof of another key than the token's `cnf.jkt`.
    let wrong_key = ProofSpec::new(&other, "GET", HTU, Some(&token)).sign(&other);
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &token, &wrong_key).await,
        "invalid_dpop_proof",
    );
    let err = authenticator(DpopSettings::default(), DpopMode::Allowed)
        .verify_dpop(&token, &wrong_key, "GET", HTU)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::KeyMismatch);
}

#[tokio::test]
async fn weak_and_mismatched_keys_are_refused() {
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    // RSA-1024: refused on the key, before any signature is checked.
    let mut n = vec![0xc5u8; 128];
    n[127] |= 1;
    let mut spec = ProofSpec::new(&key, "GET", HTU, Some(&token));
    spec.header["alg"] = json!("RS256");
    spec.header["jwk"] = json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"});
    let err = verify_proof(
        &spec.sign(&key),
        "GET",
        HTU,
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::InvalidKey, "{err}");
    assert!(err.reason().contains("1024"), "{err}");
    // A P-384 key claiming ES256.
    let p384 = Key::p384();
    let mut spec = ProofSpec::new(&p384, "GET", HTU, Some(&token));
    spec.header["alg"] = json!("ES256");
    let err = verify_proof(
        &spec.sign(&p384),
        "GET",
        HTU,
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::InvalidKey, "{err}");
    // An algorithm left out of the allowlist.
    let settings = DpopSettings::default().algorithms([Algorithm::EdDSA]);
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let err = verify_proof(
        &proof,
        "GET",
        HTU,
        Some(&token),
        &settings,
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn htu_is_compared_after_normalisation_and_without_the_query() {
    let gate = gate();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    for htu in [
        "https://API.EXAMPLE.COM/orders/7",
        "https://api.example.com:443/orders/7",
        "HTTPS://api.example.com/orders/7?x=1",
        "https://api.example.com/orders/7#frag",
    ] {
        let proof = ProofSpec::new(&key, "GET", htu, Some(&token)).sign(&key);
        let result = run(
            &gate,
            "GET",
            "/orders/7?page=2",
            &[
                ("authorization", &format!("DPoP {token}")),
                ("dpop", &proof),
            ],
        )
        .await;
        assert!(result.is_ok(), "{htu}: {result:?}");
    }
}

#[tokio::test]
async fn iat_within_the_window_is_accepted() {
    let gate = gate();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    for iat in [now() - 55, now() + 3] {
        let mut spec = ProofSpec::new(&key, "GET", HTU, Some(&token));
        spec.claims["iat"] = json!(iat);
        assert!(dpop_request(&gate, &token, &spec.sign(&key)).await.is_ok());
    }
}

#[tokio::test]
async fn missing_repeated_and_oversized_proofs_are_refused() {
    let gate = gate();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let auth = format!("DPoP {token}");
    let missing = run(&gate, "GET", "/orders/7", &[("authorization", &auth)]).await;
    assert_dpop_error(&gate, missing, "invalid_dpop_proof");
    let one = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let two = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let repeated = run(
        &gate,
        "GET",
        "/orders/7",
        &[("authorization", &auth), ("dpop", &one), ("dpop", &two)],
    )
    .await;
    assert_dpop_error(&gate, repeated, "invalid_dpop_proof");
    let small = gate_with(
        DpopSettings::default().max_proof_bytes(100),
        DpopMode::Allowed,
    );
    let err = authenticator(
        DpopSettings::default().max_proof_bytes(100),
        DpopMode::Allowed,
    )
    .verify_dpop(&token, &one, "GET", HTU)
    .await
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::TooLarge);
    assert_dpop_error(
        &small,
        dpop_request(&small, &token, &one).await,
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn bound_tokens_are_never_bearer_tokens() {
    let key = Key::p256();
    let bound = token(Some(&key.jkt()));
    for mode in [DpopMode::Allowed, DpopMode::Required, DpopMode::Disabled] {
        let gate = gate_with(DpopSettings::default(), mode);
        let err = run(
            &gate,
            "GET",
            "/orders/7",
            &[("authorization", &format!("Bearer {bound}"))],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{mode}");
        assert_eq!(err.dpop_error(), None);
        let sent = challenges(&gate, &err);
        if mode == DpopMode::Required {
            assert!(sent.iter().all(|c| c.starts_with("DPoP ")), "{sent:?}");
        } else {
            assert!(
                sent.iter()
                    .any(|c| c.starts_with("Bearer ") && c.contains("error=\"invalid_token\"")),
                "{mode}: {sent:?}"
            );
        }
    }
    let err = authenticator(DpopSettings::default(), DpopMode::Allowed)
        .verify(&bound)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::DpopBound);
}

#[tokio::test]
async fn an_unbound_token_sent_as_dpop_is_refused() {
    let gate = gate();
    let key = Key::p256();
    let unbound = token(None);
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&unbound)).sign(&key);
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &unbound, &proof).await,
        "invalid_token",
    );
    // As Bearer it is accepted in `allowed` mode.
    let ok = run(
        &gate,
        "GET",
        "/orders/7",
        &[("authorization", &format!("Bearer {unbound}"))],
    )
    .await;
    assert!(ok.unwrap().unwrap().confirmation().is_none());
}

#[tokio::test]
async fn required_mode_takes_only_bound_tokens() {
    let gate = gate_with(DpopSettings::default(), DpopMode::Required);
    let unbound = token(None);
    let err = run(
        &gate,
        "GET",
        "/orders/7",
        &[("authorization", &format!("Bearer {unbound}"))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    let anonymous = run(&gate, "GET", "/orders/7", &[]).await.unwrap_err();
    let sent = challenges(&gate, &anonymous);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("DPoP algs=\""), "{sent:?}");
    let key = Key::p256();
    let bound = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&bound)).sign(&key);
    assert!(dpop_request(&gate, &bound, &proof).await.is_ok());
}

#[tokio::test]
async fn disabled_mode_does_not_recognise_dpop() {
    let gate = gate_with(DpopSettings::default(), DpopMode::Disabled);
    let key = Key::p256();
    let bound = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&bound)).sign(&key);
    // Not recognised: the request is anonymous, and the route needs a principal.
    let err = dpop_request(&gate, &bound, &proof).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        err.kind(),
        portcullis::reject::RejectionKind::MissingCredentials
    );
    let sent = challenges(&gate, &err);
    assert!(sent.iter().all(|c| !c.starts_with("DPoP")), "{sent:?}");
}

#[tokio::test]
async fn a_disabled_issuer_beside_an_allowed_one_refuses_dpop_as_invalid_token() {
    let jwt = JwtAuthenticator::builder()
        .issuer(
            ISSUER,
            KeySource::Static(KeySet::new().with(issuer_verifying_key())),
        )
        .issuer(
            "https://other.test",
            KeySource::Static(KeySet::new().with(issuer_verifying_key())),
        )
        .audience("api")
        .issuer_dpop_mode(ISSUER, DpopMode::Disabled)
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(jwt)
        .public_origin(ORIGIN)
        .build()
        .unwrap();
    let key = Key::p256();
    let bound = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&bound)).sign(&key);
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &bound, &proof).await,
        "invalid_token",
    );
}

#[tokio::test]
async fn an_anonymous_401_offers_bearer_and_dpop() {
    let gate = gate();
    let err = run(&gate, "GET", "/orders/7", &[]).await.unwrap_err();
    let sent = challenges(&gate, &err);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].starts_with("Bearer realm="), "{sent:?}");
    assert_eq!(
        sent[1], "DPoP algs=\"ES256 ES384 RS256 PS256 PS384 EdDSA\"",
        "{sent:?}"
    );
}

#[tokio::test]
async fn bearer_with_a_dpop_header_is_a_bad_request() {
    let gate = gate();
    let key = Key::p256();
    let unbound = token(None);
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&unbound)).sign(&key);
    let err = run(
        &gate,
        "GET",
        "/orders/7",
        &[
            ("authorization", &format!("Bearer {unbound}")),
            ("dpop", &proof),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_proof_is_not_an_access_token() {
    let gate = gate();
    let key = Key::p256();
    let proof = ProofSpec::new(&key, "GET", HTU, None).sign(&key);
    let err = run(
        &gate,
        "GET",
        "/orders/7",
        &[("authorization", &format!("Bearer {proof}"))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_refused_as_dpop_says_invalid_token() {
    let gate = gate();
    let key = Key::p256();
    let good = token(Some(&key.jkt()));
    // Tampered claims: the signature fails.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64(json!({"iss": ISSUER, "aud": "api", "sub": "mallory", "exp": now() + 300, "cnf": {"jkt": key.jkt()}}).to_string().as_bytes());
    let tampered = parts.join(".");
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&tampered)).sign(&key);
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &tampered, &proof).await,
        "invalid_token",
    );
    // Nothing was recorded: the valid token's proof with the same jti is still accepted.
}

#[tokio::test]
async fn nothing_is_recorded_before_the_token_verifies() {
    let cache = Arc::new(MemoryReplayCache::new(10));
    let gate = gate_with(
        DpopSettings::default().replay_cache(cache.clone()),
        DpopMode::Allowed,
    );
    let key = Key::p256();
    let unbound = token(None);
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&unbound)).sign(&key);
    assert!(dpop_request(&gate, &unbound, &proof).await.is_err());
    let forged = ProofSpec::new(&key, "GET", HTU, Some(&unbound)).sign(&Key::p256());
    assert!(dpop_request(&gate, &unbound, &forged).await.is_err());
    assert!(cache.is_empty());
}

#[tokio::test]
async fn a_full_replay_cache_answers_503() {
    let settings = DpopSettings::default().replay_cache(Arc::new(MemoryReplayCache::new(2)));
    let gate = gate_with(settings, DpopMode::Allowed);
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    for _ in 0..2 {
        let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
        dpop_request(&gate, &token, &proof).await.unwrap();
    }
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let err = dpop_request(&gate, &token, &proof).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(challenges(&gate, &err).is_empty());
    let response = gate.respond(&err);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn nonces_are_asked_for_then_accepted() {
    let settings = DpopSettings::default().use_nonce(true);
    let gate = gate_with(settings, DpopMode::Allowed);
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let err = dpop_request(&gate, &token, &proof).await.unwrap_err();
    let nonce = err.dpop_nonce().expect("a nonce").to_owned();
    let response = gate.respond(&err);
    assert_eq!(response.headers()["dpop-nonce"], nonce.as_str());
    assert_dpop_error(&gate, Err(err), "use_dpop_nonce");
    let mut spec = ProofSpec::new(&key, "GET", HTU, Some(&token));
    spec.claims["nonce"] = json!("made-up");
    assert_dpop_error(
        &gate,
        dpop_request(&gate, &token, &spec.sign(&key)).await,
        "use_dpop_nonce",
    );
    spec.claims["nonce"] = json!(nonce);
    assert!(dpop_request(&gate, &token, &spec.sign(&key)).await.is_ok());
}

#[tokio::test]
async fn without_a_public_origin_dpop_requests_are_refused() {
    let gate = Gate::builder()
        .authenticator(authenticator(DpopSettings::default(), DpopMode::Allowed))
        .build()
        .unwrap();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let err = dpop_request(&gate, &token, &proof).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(err.dpop_error(), Some("invalid_dpop_proof"));
    // DPoP is not offered: only the Bearer challenge, without an error.
    let sent = challenges(&gate, &err);
    assert_eq!(sent, ["Bearer realm=\"api\""], "{sent:?}");
    let anonymous = run(&gate, "GET", "/orders/7", &[]).await.unwrap_err();
    assert_eq!(challenges(&gate, &anonymous), ["Bearer realm=\"api\""]);
}

#[test]
fn bad_settings_and_origins_are_config_errors() {
    let build = |settings: DpopSettings| {
        JwtAuthenticator::builder()
            .issuer(
                ISSUER,
                KeySource::Static(KeySet::new().with(issuer_verifying_key())),
            )
            .audience("api")
            .dpop(settings)
            .build()
            .map(|_| ())
    };
    let err = build(DpopSettings::default().algorithms([Algorithm::HS256])).unwrap_err();
    assert_eq!(err.key(), Some("dpop.algorithms"));
    assert!(build(DpopSettings::default().algorithms([])).is_err());
    assert!(build(DpopSettings::default().max_age(Duration::ZERO)).is_err());
    let err = build(
        DpopSettings::default()
            .use_nonce(true)
            .nonce_secret(b"short"),
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("dpop.nonce_secret_file"));
    let err = JwtAuthenticator::builder()
        .issuer(
            ISSUER,
            KeySource::Static(KeySet::new().with(issuer_verifying_key())),
        )
        .audience("api")
        .issuer_dpop_mode("https://unknown.test", DpopMode::Required)
        .build()
        .unwrap_err();
    assert!(err.message().contains("unknown.test"), "{err}");
    for bad in [
        "api.example.com",
        "ftp://x",
        "https://x/path",
        "https://u@x",
        "https://x:port",
    ] {
        let err = Gate::builder().public_origin(bad).build().unwrap_err();
        assert_eq!(err.key(), Some("public_origin"), "{bad}");
    }
    assert_eq!("required".parse::<DpopMode>().unwrap(), DpopMode::Required);
    assert!("Required".parse::<DpopMode>().is_err());
}

#[tokio::test]
async fn verify_proof_checks_a_url_without_a_gate() {
    let key = Key::ed();
    let token = token(Some(&key.jkt()));
    let proof =
        ProofSpec::new(&key, "POST", "https://api.example.com/pay", Some(&token)).sign(&key);
    let verified = verify_proof(
        &proof,
        "POST",
        "https://api.example.com/pay?x=1",
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(verified.jkt(), key.jkt());
    assert_eq!(verified.algorithm(), Algorithm::EdDSA);
    // Without a token, `ath` is not checked.
    assert!(
        verify_proof(
            &proof,
            "POST",
            "https://api.example.com/pay",
            None,
            &DpopSettings::default(),
            SystemTime::now()
        )
        .is_ok()
    );
    let principal = authenticator(DpopSettings::default(), DpopMode::Allowed)
        .verify_dpop(&token, &proof, "POST", "https://api.example.com/pay")
        .await
        .unwrap();
    assert!(principal.confirmation().is_some());
}

#[cfg(feature = "redis")]
mod redis_replay {
    use super::*;

    /// Whether the shared Redis answers; `SKIPPED` (or a panic under
    /// `PORTCULLIS_REQUIRE_SERVICES=1`) when it does not.
    fn redis_up() -> bool {
        let up = std::net::TcpStream::connect_timeout(
            &"127.0.0.1:6379".parse().unwrap(),
            Duration::from_secs(1),
        )
        .is_ok();
        if !up {
            assert_ne!(
                std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref(),
                Ok("1"),
                "no Redis at 127.0.0.1:6379"
            );
            println!("SKIPPED: no Redis at 127.0.0.1:6379");
        }
        up
    }

    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Two Gates (two instances) sharing one Redis: a proof accepted by one is a replay at the
    /// other, and the entry expires with the proof's acceptance span.
    #[tokio::test]
    async fn a_replay_is_caught_across_two_gates_sharing_redis() {
        if !redis_up() {
            return;
        }
        let prefix = random_jti();
        let gate = |_| {
            let cache = RedisReplayCache::builder("redis://127.0.0.1:6379")
                .key_prefix(prefix.clone())
                .build()
                .unwrap();
            gate_with(
                DpopSettings::default().replay_cache(Arc::new(cache)),
                DpopMode::Allowed,
            )
        };
        let (one, two) = (gate(1), gate(2));
        let key = Key::p256();
        let token = token(Some(&key.jkt()));
        let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
        dpop_request(&one, &token, &proof).await.unwrap();
        assert_dpop_error(
            &two,
            dpop_request(&two, &token, &proof).await,
            "invalid_dpop_proof",
        );
        assert_dpop_error(
            &one,
            dpop_request(&one, &token, &proof).await,
            "invalid_dpop_proof",
        );

        let client = ::redis::Client::open("redis://127.0.0.1:6379").unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("portcullis:dpop:{prefix}:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&keys[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        // Until `iat + max_age` (60 s) and a second's margin.
        assert!((55_000..=61_000).contains(&ttl), "{ttl}");
        let _: u64 = ::redis::cmd("DEL")
            .arg(&keys[0])
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_redis_answers_503_unless_dangerously_allowed() {
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let key = Key::p256();
        let token = token(Some(&key.jkt()));

        let closed = RedisReplayCache::builder(&url).build().unwrap();
        let gate = gate_with(
            DpopSettings::default().replay_cache(Arc::new(closed)),
            DpopMode::Allowed,
        );
        let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
        let err = dpop_request(&gate, &token, &proof).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(gate.respond(&err).headers()["retry-after"], "1");

        let open = RedisReplayCache::builder(&url)
            .dangerous_accept_when_unreachable()
            .build()
            .unwrap();
        let gate = gate_with(
            DpopSettings::default().replay_cache(Arc::new(open)),
            DpopMode::Allowed,
        );
        assert!(dpop_request(&gate, &token, &proof).await.is_ok());
    }

    /// The replay cache is part of the Gate's readiness: an unreachable Redis is not ready,
    /// or degraded with the `dangerous_` setting; the memory cache has nothing to check.
    #[tokio::test]
    async fn readiness_reports_the_replay_cache() {
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let status = |gate: &Gate, report: &portcullis::audit::Readiness| {
            let _ = gate;
            report
                .components
                .iter()
                .find(|c| c.name == "jwt/dpop/replay")
                .map(|c| c.status)
        };
        let down = gate_with(
            DpopSettings::default()
                .replay_cache(Arc::new(RedisReplayCache::builder(&url).build().unwrap())),
            DpopMode::Allowed,
        );
        let report = down.readiness().await;
        assert_eq!(
            status(&down, &report),
            Some(portcullis::audit::Health::NotReady),
            "{}",
            report.to_json()
        );
        assert!(!report.is_ready());
        let open = gate_with(
            DpopSettings::default().replay_cache(Arc::new(
                RedisReplayCache::builder(&url)
                    .dangerous_accept_when_unreachable()
                    .build()
                    .unwrap(),
            )),
            DpopMode::Allowed,
        );
        let report = open.readiness().await;
        assert_eq!(
            status(&open, &report),
            Some(portcullis::audit::Health::Degraded)
        );
        let memory = gate();
        let report = memory.readiness().await;
        // In-process: nothing to check, no component.
        assert_eq!(status(&memory, &report), None);
        assert!(report.is_ready());
    }

    #[test]
    fn bad_redis_settings_are_config_errors() {
        assert!(RedisReplayCache::builder("not a url").build().is_err());
        let err = RedisReplayCache::builder("redis://127.0.0.1:6379")
            .key_prefix("a\nb")
            .build()
            .unwrap_err();
        assert_eq!(err.key(), Some("key_prefix"));
        let insecure = RedisReplayCache::builder("rediss://127.0.0.1:6380/#insecure").build();
        assert!(insecure.is_err());
        let cache = RedisReplayCache::builder("redis://u:hunter2@127.0.0.1:6379")
            .build()
            .unwrap();
        assert!(!format!("{cache:?}").contains("hunter2"));
    }
}

mod config {
    use super::*;
    use portcullis::config::Config;

    /// A JWKS file holding the issuer's key; its path.
    pub(super) fn jwks_file() -> std::path::PathBuf {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &issuer_pkcs8()).unwrap();
        let point = pair.public_key().as_ref();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        }]});
        let path = std::env::temp_dir().join(format!("portcullis-dpop-{}.json", random_jti()));
        std::fs::write(&path, jwks.to_string()).unwrap();
        path
    }

    fn toml(jwks: &std::path::Path, gate: &str, dpop: &str) -> String {
        format!(
            r#"{gate}

[jwt]
audiences = ["api"]

[[jwt.issuers]]
issuer = "{ISSUER}"
jwks_file = "{}"
dpop = "required"
{dpop}

[policies.bound]
sender_constrained = true

[[routes]]
path = "/bound/**"
policy = "bound"
"#,
            jwks.display()
        )
    }

    #[tokio::test]
    async fn a_file_sets_up_dpop() {
        let jwks = jwks_file();
        let text = toml(
            &jwks,
            "[gate]\npublic_origin = \"https://API.example.com:443\"",
            "[jwt.dpop]\nmax_age = \"30s\"\nreplay_capacity = 1\nalgorithms = [\"ES256\"]",
        );
        let gate = Config::from_str(&text).unwrap().build().await.unwrap();
        let key = Key::p256();
        let bound = token(Some(&key.jkt()));
        let htu = "https://api.example.com/bound/1";
        let proof = ProofSpec::new(&key, "GET", htu, Some(&bound)).sign(&key);
        let auth = format!("DPoP {bound}");
        let principal = run(
            &gate,
            "GET",
            "/bound/1",
            &[("authorization", &auth), ("dpop", &proof)],
        )
        .await
        .unwrap()
        .unwrap();
        assert!(principal.confirmation().is_some());
        // `required`: an unbound bearer token is refused.
        let unbound = token(None);
        let err = run(
            &gate,
            "GET",
            "/bound/1",
            &[("authorization", &format!("Bearer {unbound}"))],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        // `max_age = "30s"` from the file.
        let mut stale = ProofSpec::new(&key, "GET", htu, Some(&bound));
        stale.claims["iat"] = json!(now() - 40);
        let err = run(
            &gate,
            "GET",
            "/bound/1",
            &[("authorization", &auth), ("dpop", &stale.sign(&key))],
        )
        .await
        .unwrap_err();
        assert_eq!(err.dpop_error(), Some("invalid_dpop_proof"));
        // `replay_capacity = 1`: the one live entry fills it.
        let another = ProofSpec::new(&key, "GET", htu, Some(&bound)).sign(&key);
        let err = run(
            &gate,
            "GET",
            "/bound/1",
            &[("authorization", &auth), ("dpop", &another)],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        std::fs::remove_file(jwks).ok();
    }

    #[test]
    fn dpop_without_a_public_origin_is_refused_where_it_is_written() {
        let jwks = std::path::Path::new("/nonexistent/jwks.json");
        let err = Config::from_str(&toml(jwks, "", "[jwt.dpop]\nmax_age = \"30s\"")).unwrap_err();
        assert_eq!(err.key(), Some("jwt.dpop"), "{err}");
        assert!(err.message().contains("public_origin"), "{err}");
        assert!(err.location().is_some(), "{err}");
        // An issuer's `dpop = "required"` alone needs it too.
        let err = Config::from_str(&toml(jwks, "", "")).unwrap_err();
        assert_eq!(err.key(), Some("jwt.issuers[0].dpop"), "{err}");
    }

    #[test]
    fn introspection_dpop_needs_a_public_origin_too() {
        let section = "[introspection]\nendpoint = \"https://as.example.com/introspect\"\n\
                       auth_method = \"bearer\"\nclient_token_env = \"T\"\n\
                       audiences = [\"api\"]\ndpop = \"required\"\n";
        let err = Config::from_str(section).unwrap_err();
        assert_eq!(err.key(), Some("introspection.dpop"), "{err}");
        assert!(err.location().is_some(), "{err}");
        let with_origin = format!("[gate]\npublic_origin = \"https://api.example.com\"\n{section}");
        assert!(Config::from_str(&with_origin).is_ok());
        let disabled = section.replace("\"required\"", "\"disabled\"");
        assert!(Config::from_str(&disabled).is_ok());
    }

    #[test]
    fn bad_dpop_keys_are_refused_with_their_key() {
        let jwks = std::path::Path::new("/nonexistent/jwks.json");
        let gate = "[gate]\npublic_origin = \"https://api.example.com\"";
        for (dpop, key) in [
            (
                "[jwt.dpop]\nalgorithms = [\"HS256\"]",
                "jwt.dpop.algorithms",
            ),
            ("[jwt.dpop]\nmax_age = \"0s\"", "jwt.dpop.max_age"),
            (
                "[jwt.dpop]\nreplay_store = \"memcached://x\"",
                "jwt.dpop.replay_store",
            ),
            (
                "[jwt.dpop]\nreplay_capacity = 0",
                "jwt.dpop.replay_capacity",
            ),
            (
                "[jwt.dpop]\nredis_key_prefix = \"a\"",
                "jwt.dpop.redis_key_prefix",
            ),
            (
                "[jwt.dpop]\nnonce_secret_file = \"k\"",
                "jwt.dpop.nonce_secret_file",
            ),
        ] {
            let err = Config::from_str(&toml(jwks, gate, dpop)).unwrap_err();
            assert_eq!(err.key(), Some(key), "{dpop}: {err}");
            assert!(err.location().is_some(), "{dpop}: {err}");
        }
        let with_path = "[gate]\npublic_origin = \"https://api.example.com/v1\"";
        let err = Config::from_str(&toml(jwks, with_path, "")).unwrap_err();
        assert_eq!(err.key(), Some("gate.public_origin"), "{err}");
        assert!(err.location().is_some(), "{err}");
        let bad_mode = toml(jwks, gate, "").replace("dpop = \"required\"", "dpop = \"sometimes\"");
        let err = Config::from_str(&bad_mode).unwrap_err();
        assert!(err.message().contains("sometimes"), "{err}");
        assert!(err.location().is_some(), "{err}");
        let typo = toml(jwks, gate, "[jwt.dpop]\nmax_agee = \"5s\"");
        assert!(Config::from_str(&typo).is_err());
    }
}

mod introspection {
    use bytes::Bytes;
    use http::{Request, Response};

    use super::*;
    use portcullis::SecretString;
    use portcullis::jwt::{
        ClientAuth, FetchError, FetchLimits, HttpClient, IntrospectionAuthenticator,
    };

    /// An introspection endpoint answering from a table: `bound` is bound to `jkt`, `plain` is
    /// not, anything else is inactive.
    #[derive(Debug)]
    pub(super) struct Endpoint {
        pub(super) jkt: String,
    }

    impl HttpClient for Endpoint {
        fn send(
            &self,
            request: Request<Bytes>,
            _: FetchLimits,
        ) -> portcullis::BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
            let body = String::from_utf8_lossy(request.body()).into_owned();
            let answer = if body.contains("token=bound") {
                json!({"active": true, "sub": "bob", "aud": "api", "exp": now() + 300,
                       "token_type": "DPoP", "cnf": {"jkt": self.jkt}})
            } else if body.contains("token=plain") {
                json!({"active": true, "sub": "carol", "aud": "api", "exp": now() + 300})
            } else if body.contains("token=fakedpop") {
                json!({"active": true, "sub": "dave", "aud": "api", "exp": now() + 300,
                       "token_type": "DPoP"})
            } else {
                json!({"active": false})
            };
            let response = Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Bytes::from(answer.to_string()))
                .unwrap();
            Box::pin(std::future::ready(Ok(response)))
        }
    }

    fn gate(jkt: &str, mode: DpopMode) -> Gate {
        let introspection = IntrospectionAuthenticator::builder(
            "https://as.example.com/introspect",
            ClientAuth::basic("rs", SecretString::new("secret".to_owned())),
        )
        .audiences(["api"])
        .http_client(Arc::new(Endpoint {
            jkt: jkt.to_owned(),
        }))
        .dpop_mode(mode)
        .build()
        .unwrap();
        Gate::builder()
            .authenticator(introspection)
            .public_origin(ORIGIN)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn an_introspected_bound_token_needs_its_proof() {
        let key = Key::p256();
        let gate = gate(&key.jkt(), DpopMode::Allowed);
        let proof = ProofSpec::new(&key, "GET", HTU, Some("bound")).sign(&key);
        let principal = dpop_request(&gate, "bound", &proof).await.unwrap().unwrap();
        assert_eq!(principal.subject(), "bob");
        assert_eq!(
            principal.confirmation(),
            Some(&Confirmation::Dpop { jkt: key.jkt() })
        );
        // Replayed.
        assert_dpop_error(
            &gate,
            dpop_request(&gate, "bound", &proof).await,
            "invalid_dpop_proof",
        );
        // Another key's proof.
        let other = Key::p256();
        let wrong = ProofSpec::new(&other, "GET", HTU, Some("bound")).sign(&other);
        assert_dpop_error(
            &gate,
            dpop_request(&gate, "bound", &wrong).await,
            "invalid_dpop_proof",
        );
        // As Bearer.
        let err = run(
            &gate,
            "GET",
            "/orders/7",
            &[("authorization", "Bearer bound")],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(err.dpop_error(), None);
        // An unbound token sent as DPoP.
        let proof = ProofSpec::new(&key, "GET", HTU, Some("plain")).sign(&key);
        assert_dpop_error(
            &gate,
            dpop_request(&gate, "plain", &proof).await,
            "invalid_token",
        );
        // A `token_type: DPoP` answer without `cnf.jkt` is refused.
        let proof = ProofSpec::new(&key, "GET", HTU, Some("fakedpop")).sign(&key);
        assert_dpop_error(
            &gate,
            dpop_request(&gate, "fakedpop", &proof).await,
            "invalid_token",
        );
        // An unbound token as Bearer is fine in `allowed` mode.
        assert!(
            run(
                &gate,
                "GET",
                "/orders/7",
                &[("authorization", "Bearer plain")]
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn introspection_modes() {
        let key = Key::p256();
        let required = gate(&key.jkt(), DpopMode::Required);
        let err = run(
            &required,
            "GET",
            "/orders/7",
            &[("authorization", "Bearer plain")],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        let disabled = gate(&key.jkt(), DpopMode::Disabled);
        let err = run(
            &disabled,
            "GET",
            "/orders/7",
            &[("authorization", "Bearer bound")],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.status(),
            StatusCode::UNAUTHORIZED,
            "a bound token is never a bearer token"
        );
        let proof = ProofSpec::new(&key, "GET", HTU, Some("bound")).sign(&key);
        let err = dpop_request(&disabled, "bound", &proof).await.unwrap_err();
        assert_eq!(
            err.kind(),
            portcullis::reject::RejectionKind::MissingCredentials
        );
    }
}

#[tokio::test]
async fn a_repeated_authorization_header_is_a_bad_request() {
    let gate = gate();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let auth = format!("DPoP {token}");
    let err = run(
        &gate,
        "GET",
        "/orders/7",
        &[
            ("authorization", &auth),
            ("authorization", &auth),
            ("dpop", &proof),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let sent = challenges(&gate, &err);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("DPoP ") && sent[0].contains("error=\"invalid_request\""),
        "{sent:?}"
    );
}

#[tokio::test]
async fn ps256_proofs_are_accepted() {
    let Key::Rsa(pair) = Key::rsa() else {
        unreachable!()
    };
    let rsa = Key::Rsa(pair.clone());
    let token = token(Some(&rsa.jkt()));
    let mut spec = ProofSpec::new(&rsa, "GET", HTU, Some(&token));
    spec.header["alg"] = json!("PS256");
    let input = format!(
        "{}.{}",
        b64(spec.header.to_string().as_bytes()),
        b64(spec.claims.to_string().as_bytes())
    );
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PSS_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let proof = format!("{input}.{}", b64(&sig));
    let verified = verify_proof(
        &proof,
        "GET",
        HTU,
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(verified.algorithm(), Algorithm::PS256);
}

#[tokio::test]
async fn repeated_members_and_bad_encodings_are_malformed() {
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    // A repeated member name, in the claims or in the header's `jwk`, is malformed.
    let spec = ProofSpec::new(&key, "GET", HTU, Some(&token));
    let claims = spec.claims.to_string();
    let repeated = format!("{},\"htm\":\"GET\"}}", &claims[..claims.len() - 1]);
    let input = format!(
        "{}.{}",
        b64(spec.header.to_string().as_bytes()),
        b64(repeated.as_bytes())
    );
    let proof = format!("{input}.{}", b64(&key.sign(input.as_bytes())));
    let err = verify_proof(
        &proof,
        "GET",
        HTU,
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::Malformed, "{err}");
    let header = spec.header.to_string();
    let jwk_repeated = header.replacen("\"kty\":\"EC\"", "\"kty\":\"EC\",\"kty\":\"EC\"", 1);
    assert_ne!(header, jwk_repeated);
    let input = format!(
        "{}.{}",
        b64(jwk_repeated.as_bytes()),
        b64(claims.as_bytes())
    );
    let proof = format!("{input}.{}", b64(&key.sign(input.as_bytes())));
    let err = verify_proof(
        &proof,
        "GET",
        HTU,
        Some(&token),
        &DpopSettings::default(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::Malformed, "{err}");
    // Not base64url, and four parts.
    for bad in ["a.b.c", "a.b.c.d", "not a proof"] {
        let err = verify_proof(
            bad,
            "GET",
            HTU,
            Some(&token),
            &DpopSettings::default(),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), DpopErrorKind::Malformed, "{bad}: {err}");
    }
}

/// The token's keys cannot be loaded: an outage, 503, not a bad proof; nothing is recorded.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn unavailable_keys_answer_503_to_a_dpop_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = Arc::new(MemoryReplayCache::new(10));
    let jwt = JwtAuthenticator::builder()
        .issuer(
            ISSUER,
            KeySource::jwks_url(format!("http://127.0.0.1:{port}/jwks")),
        )
        .audience("api")
        .dpop(DpopSettings::default().replay_cache(cache.clone()))
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(jwt)
        .public_origin(ORIGIN)
        .build()
        .unwrap();
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let err = dpop_request(&gate, &token, &proof).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert!(cache.is_empty());
}

/// Settings given to two authenticators share one nonce key: a nonce one issues, the other
/// accepts.
#[tokio::test]
async fn clones_of_the_settings_share_the_nonce_key() {
    let settings = DpopSettings::default().use_nonce(true);
    let first = gate_with(settings.clone(), DpopMode::Allowed);
    let second = gate_with(settings, DpopMode::Allowed);
    let key = Key::p256();
    let token = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&token)).sign(&key);
    let err = dpop_request(&first, &token, &proof).await.unwrap_err();
    let nonce = err.dpop_nonce().unwrap().to_owned();
    let mut spec = ProofSpec::new(&key, "GET", HTU, Some(&token));
    spec.claims["nonce"] = json!(nonce);
    assert!(
        dpop_request(&second, &token, &spec.sign(&key))
            .await
            .is_ok()
    );
}

/// `[jwt.dpop]` serves `[introspection]` too, with the same replay cache.
#[tokio::test]
async fn jwt_and_introspection_share_the_rules_and_the_replay_cache_of_a_file() {
    let jwks = config::jwks_file();
    let key = Key::p256();
    let text = format!(
        r#"[gate]
public_origin = "https://api.example.com"

[jwt]
audiences = ["api"]

[[jwt.issuers]]
issuer = "{ISSUER}"
jwks_file = "{}"

[jwt.dpop]
replay_capacity = 1

[introspection]
endpoint = "https://as.example.com/introspect"
auth_method = "bearer"
client_token_env = "PATH"
audiences = ["api"]
"#,
        jwks.display()
    );
    let gate = portcullis::config::Config::from_str(&text)
        .unwrap()
        .with_http_client(Arc::new(introspection::Endpoint { jkt: key.jkt() }))
        .build()
        .await
        .unwrap();
    let jwt = token(Some(&key.jkt()));
    let proof = ProofSpec::new(&key, "GET", HTU, Some(&jwt)).sign(&key);
    assert!(dpop_request(&gate, &jwt, &proof).await.is_ok());
    // The one slot is taken by the JWT's proof: the introspected token's proof finds it full.
    let proof = ProofSpec::new(&key, "GET", HTU, Some("bound")).sign(&key);
    let err = dpop_request(&gate, "bound", &proof).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err}");
    std::fs::remove_file(jwks).ok();
}
