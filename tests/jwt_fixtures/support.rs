//! Shared by the `tests/jwt_*.rs` files (as a `#[path]` module): test keys and a raw JWS signer
//! (so a test can write any header, duplicates and padding included), the test kit's JWKS and
//! discovery server on 127.0.0.1 that counts fetches, an `HttpClient` over reqwest, and Gate
//! helpers.
// Each test file uses a different part of this module, and `pub` is how a `#[path]` module
// shares items with the file that includes it.
#![allow(
    dead_code,
    unreachable_pub,
    unused_imports,
    reason = "shared by several test files, each using a part"
)]

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::HeaderMap;
use portcullis::jwt::{FetchError, FetchErrorKind, FetchLimits, HttpClient};
use portcullis::{BoxFuture, Gate, RequestView};
use serde_json::{Value, json};

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Claims that pass every check for `iss` and audience `api`: alice, valid for 5 minutes.
pub fn claims(iss: &str) -> Value {
    json!({ "iss": iss, "aud": "api", "sub": "alice", "iat": now(), "exp": now() + 300 })
}

/// RSA-2048 key generation takes a moment; a test binary makes at most three.
fn rsa_pair(slot: usize) -> &'static RsaKeyPair {
    static PAIRS: [OnceLock<RsaKeyPair>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    PAIRS[slot].get_or_init(|| RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generated"))
}

/// A private key for signing test tokens, with its `kid` and algorithm.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    material: Material,
}

enum Material {
    Rsa(&'static RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(Vec<u8>),
}

impl TestKey {
    /// RS256 with RSA key number `slot` (0, 1 or 2).
    pub fn rsa(slot: usize, kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            alg: "RS256",
            material: Material::Rsa(rsa_pair(slot)),
        }
    }

    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        Self {
            kid: kid.to_owned(),
            alg: "ES256",
            material: Material::Ec(pair),
        }
    }

    pub fn ed25519(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            alg: "EdDSA",
            material: Material::Ed(Ed25519KeyPair::generate().expect("Ed25519 key")),
        }
    }

    pub fn hs256(kid: &str, secret: &[u8]) -> Self {
        Self {
            kid: kid.to_owned(),
            alg: "HS256",
            material: Material::Hmac(secret.to_vec()),
        }
    }

    /// The same key for another algorithm of its family (PS256 for an RSA key).
    pub fn with_alg(mut self, alg: &'static str) -> Self {
        self.alg = alg;
        self
    }

    /// A token with header `{alg, kid, typ: at+jwt}` and these claims.
    pub fn token(&self, claims: &Value) -> String {
        let header = json!({ "alg": self.alg, "kid": self.kid, "typ": "at+jwt" });
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// A token with exactly these header and claims texts.
    pub fn sign_raw(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self.signature(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Rsa(pair) => {
                let encoding: &'static dyn signature::RsaEncoding = match self.alg {
                    "PS256" => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, message, &mut out)
                    .expect("RSA signs");
                out
            }
            Material::Ec(pair) => pair
                .sign(&rng, message)
                .expect("ECDSA signs")
                .as_ref()
                .to_vec(),
            Material::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Material::Hmac(secret) => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
            }
        }
    }

    /// The public JWK (for HMAC, the `oct` secret).
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            Material::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Material::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]) })
            }
            Material::Ed(pair) => {
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) })
            }
            Material::Hmac(secret) => json!({ "kty": "oct", "k": b64(secret) }),
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The public key as SubjectPublicKeyInfo PEM (RSA only).
    pub fn public_pem(&self) -> String {
        let Material::Rsa(pair) = &self.material else {
            panic!("public_pem is for RSA keys")
        };
        let der = pair.public_key().as_der().expect("SPKI DER");
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }
}

pub fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

/// The identity provider is the test kit's `JwksServer` (feature `test-util`); tests name it
/// `IdpServer`, and `start` panics rather than return an error.
#[cfg(feature = "test-util")]
pub use portcullis::testing::ServerMode as Mode;

#[cfg(feature = "test-util")]
#[derive(Clone, Debug)]
pub struct IdpServer(portcullis::testing::JwksServer);

#[cfg(feature = "test-util")]
impl IdpServer {
    pub async fn start(jwks: String) -> Self {
        Self(
            portcullis::testing::JwksServer::start(jwks)
                .await
                .expect("JWKS server on 127.0.0.1"),
        )
    }

    pub fn other_hits(&self) -> usize {
        self.0.other_requests()
    }
}

#[cfg(feature = "test-util")]
impl std::ops::Deref for IdpServer {
    type Target = portcullis::testing::JwksServer;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// An `HttpClient` over reqwest 0.12 (plain HTTP), so these tests run without the `jwks` feature.
#[derive(Debug, Clone)]
pub struct TestClient(reqwest::Client);

impl HttpClient for TestClient {
    fn send(
        &self,
        request: http::Request<Bytes>,
        limits: FetchLimits,
    ) -> BoxFuture<'_, Result<http::Response<Bytes>, FetchError>> {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| FetchError::new(FetchErrorKind::InvalidUrl, e.to_string()))?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|e| FetchError::new(FetchErrorKind::Connect, e.to_string()))?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| FetchError::new(FetchErrorKind::Connect, e.to_string()))?;
            if body.len() > limits.max_body {
                return Err(FetchError::new(FetchErrorKind::TooLarge, "too large"));
            }
            let mut out = http::Response::new(body);
            *out.status_mut() = http::StatusCode::from_u16(status.as_u16()).expect("status");
            Ok(out)
        })
    }
}

pub fn client() -> Arc<dyn HttpClient> {
    Arc::new(TestClient(reqwest::Client::new()))
}

/// What the Gate answered, as a client would see it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The `WWW-Authenticate` values, joined with ` | `.
    pub challenge: String,
    pub body: String,
    pub retry_after: Option<String>,
    pub principal: Option<portcullis::Principal>,
}

impl Answer {
    pub fn bearer_error(&self) -> Option<String> {
        let start = self.challenge.find("error=\"")? + "error=\"".len();
        let end = self.challenge[start..].find('"')? + start;
        Some(self.challenge[start..end].to_owned())
    }
}

/// Runs a `GET uri` with `headers` through the Gate.
pub async fn call(gate: &Gate, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = http::Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (parts, ()) = request.body(()).expect("valid request").into_parts();
    match gate.check(&RequestView::from_parts(&parts)).await {
        Ok(principal) => Answer {
            status: 200,
            challenge: String::new(),
            body: String::new(),
            retry_after: None,
            principal,
        },
        Err(rejection) => {
            let response = gate.respond(&rejection);
            let challenge = header_values(response.headers());
            Answer {
                status: response.status().as_u16(),
                challenge,
                body: response.body().clone(),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap_or("?").to_owned()),
                principal: None,
            }
        }
    }
}

pub async fn bearer(gate: &Gate, token: &str) -> Answer {
    call(
        gate,
        "/orders",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
}

fn header_values(headers: &HeaderMap) -> String {
    headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

// DPoP (RFC 9449) proofs, made here with the test's own keys so that every member of a proof can
// be forged, and the RFC 7638 thumbprint computed here too, independently of the library.

/// SHA-256, base64url without padding.
fn sha256_b64(bytes: impl AsRef<[u8]>) -> String {
    b64(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        bytes.as_ref(),
    ))
}

/// The RFC 7638 thumbprint of a JWK: SHA-256 over its required members in lexicographic order,
/// as JSON without whitespace (§3.2), base64url.
pub fn thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("oct") => &["k", "kty"],
        other => panic!("no RFC 7638 members for kty {other:?}"),
    };
    let canonical: Vec<String> = members
        .iter()
        .map(|name| {
            let value = jwk[*name].as_str().expect("a string member");
            format!("{}:{}", json!(name), json!(value))
        })
        .collect();
    sha256_b64(format!("{{{}}}", canonical.join(",")))
}

/// The `ath` of a proof for `token`: base64url(SHA-256(token)) (RFC 9449 §4.2).
pub fn ath(token: &str) -> String {
    sha256_b64(token)
}

/// A fresh random `jti`.
pub fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    b64(bytes)
}

/// Claims that pass every check for `iss` and audience `api`, bound to `key` (`cnf.jkt`).
pub fn bound_claims(iss: &str, key: &TestKey) -> Value {
    let mut claims = claims(iss);
    claims["cnf"] = json!({ "jkt": key.jkt() });
    claims
}

impl TestKey {
    /// The public JWK as a DPoP proof carries it: the key's own members, no `kid`, `alg` or `use`
    /// (for HMAC, the `oct` secret).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.jwk();
        let object = jwk.as_object_mut().expect("an object");
        for name in ["kid", "alg", "use"] {
            object.remove(name);
        }
        jwk
    }

    /// The public JWK with the private key's members added (`d`), for the proof that carries
    /// its private key. EC and Ed25519 keys only.
    pub fn private_jwk(&self) -> Value {
        use aws_lc_rs::encoding::AsBigEndian;
        let d = match &self.material {
            Material::Ec(pair) => {
                let d: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
                    pair.private_key().as_be_bytes().expect("EC private scalar");
                b64(d.as_ref())
            }
            Material::Ed(pair) => {
                let seed: aws_lc_rs::encoding::Curve25519SeedBin<'_> = pair
                    .seed()
                    .expect("Ed25519 seed")
                    .as_be_bytes()
                    .expect("seed bytes");
                b64(seed.as_ref())
            }
            _ => panic!("private_jwk is for EC and Ed25519 keys"),
        };
        let mut jwk = self.public_jwk();
        jwk["d"] = json!(d);
        jwk
    }

    /// The RFC 7638 thumbprint of this key, as a token's `cnf.jkt` names it.
    pub fn jkt(&self) -> String {
        thumbprint(&self.public_jwk())
    }

    /// A proof for `htm` and `htu` that passes every check: `typ: dpop+jwt`, this key's `alg`,
    /// its public JWK, `iat` now and a fresh `jti`; no `ath` (see [`Proof::for_token`]).
    pub fn proof(&self, htm: &str, htu: &str) -> Proof {
        Proof {
            header: json!({ "typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk() }),
            claims: json!({ "htm": htm, "htu": htu, "iat": now(), "jti": random_jti() }),
        }
    }
}

/// A DPoP proof before it is signed: its header and claims, each open to a forgery.
#[derive(Clone, Debug)]
pub struct Proof {
    pub header: Value,
    pub claims: Value,
}

impl Proof {
    /// Adds the `ath` of `token`.
    pub fn for_token(mut self, token: &str) -> Self {
        self.claims["ath"] = json!(ath(token));
        self
    }

    /// Sets (or, with `Value::Null`, removes) a header member.
    pub fn header(mut self, name: &str, value: Value) -> Self {
        set_or_remove(&mut self.header, name, value);
        self
    }

    /// Sets (or, with `Value::Null`, removes) a claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        set_or_remove(&mut self.claims, name, value);
        self
    }

    /// The compact proof, signed by `key` (which need not be the key its header names).
    pub fn sign(&self, key: &TestKey) -> String {
        key.sign_raw(&self.header.to_string(), &self.claims.to_string())
    }

    /// The compact proof with `signature` as its signature bytes: for refusals that must happen
    /// before any signature is checked (a key the library cannot sign with, such as RSA-1024).
    pub fn with_signature(&self, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(self.header.to_string()),
            b64(self.claims.to_string()),
            b64(signature)
        )
    }
}

fn set_or_remove(object: &mut Value, name: &str, value: Value) {
    let object = object.as_object_mut().expect("an object");
    if value.is_null() {
        object.remove(name);
    } else {
        object.insert(name.to_owned(), value);
    }
}
