//! Fixtures shared by the peer benchmark (`benches/jwt_peers.rs`) and the load server
//! (`src/bin/load_server.rs`): signing keys with their public JWKs, tokens both portcullis and
//! jwt-authorizer accept, and a JWKS endpoint on 127.0.0.1.
//!
//! Tokens are signed here with aws-lc-rs, not by either side under test, so neither side checks
//! tokens it made itself.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The issuer every token names and both sides require (`iss`).
pub const ISSUER: &str = "https://sso.example.com";
/// The audience every token names and both sides require (`aud`).
pub const AUDIENCE: &str = "api";
/// The `typ` header of every token (RFC 9068 access tokens).
pub const TYP: &str = "at+jwt";
/// The path the JWKS is served at.
pub const JWKS_PATH: &str = "/jwks.json";
/// The Basic user of the Basic fixtures.
pub const BASIC_USER: &str = "alice";
/// The Basic user's password.
pub const BASIC_PASSWORD: &str = "correct horse battery staple";

/// Signs a JWS signing input.
type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// A signing key, its algorithm, its `kid` and its public (or, for HS256, secret) JWK.
pub struct Signer {
    alg: &'static str,
    kid: &'static str,
    jwk: Value,
    sign: SignFn,
}

impl Signer {
    /// A fresh RSA 2048-bit key for RS256.
    pub fn rs256(kid: &'static str) -> Self {
        // Generation fails only if the platform RNG does: nothing to bench then.
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        let rng = SystemRandom::new();
        let sign = move |message: &[u8]| {
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                .expect("RSA signing with a valid key");
            signature
        };
        Self {
            alg: "RS256",
            kid,
            jwk,
            sign: Box::new(sign),
        }
    }

    /// A fresh P-256 key for ES256.
    pub fn es256(kid: &'static str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation");
        // An uncompressed SEC1 point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        let rng = SystemRandom::new();
        let sign = move |message: &[u8]| {
            pair.sign(&rng, message)
                .expect("ECDSA signing with a valid key")
                .as_ref()
                .to_vec()
        };
        Self {
            alg: "ES256",
            kid,
            jwk,
            sign: Box::new(sign),
        }
    }

    /// An HS256 key with `secret` (at least 32 bytes). Its JWK holds the secret: local
    /// configuration only, never served.
    pub fn hs256(kid: &'static str, secret: &[u8]) -> Self {
        let jwk = json!({"kty": "oct", "alg": "HS256", "kid": kid, "k": b64(secret)});
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let sign = move |message: &[u8]| aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec();
        Self {
            alg: "HS256",
            kid,
            jwk,
            sign: Box::new(sign),
        }
    }

    /// The JWS algorithm name (`RS256`, `ES256`, `HS256`).
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The key's JWK, with `kid` and `alg`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// A token for `alice` from [`ISSUER`] to [`AUDIENCE`], valid for an hour from now.
    pub fn token(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let header = json!({"alg": self.alg, "kid": self.kid, "typ": TYP});
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600,
            "jti": "0b1f9d7c", "scope": "orders:read orders:write",
        });
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = (self.sign)(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }
}

/// A JWK Set of the given keys.
pub fn jwks<'a>(signers: impl IntoIterator<Item = &'a Signer>) -> Value {
    let keys: Vec<Value> = signers.into_iter().map(|s| s.jwk.clone()).collect();
    json!({ "keys": keys })
}

/// `token` with the first character of its signature changed: well formed, signature wrong.
///
/// The first base64url character carries the top six bits of the signature's first byte, so
/// changing it always changes the decoded signature (the last one may only touch padding bits).
pub fn tamper(token: &str) -> String {
    let at = token.rfind('.').map_or(0, |dot| dot + 1);
    let replacement = if token[at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    format!("{}{replacement}{}", &token[..at], &token[at + 1..])
}

/// The routes that serve `jwks` at [`JWKS_PATH`].
pub fn jwks_router(jwks: Value) -> Router {
    let body = jwks.to_string();
    Router::new().route(
        JWKS_PATH,
        get(move || {
            let body = body.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    )
}

/// Serves `jwks` on 127.0.0.1 from a thread of its own, so it answers whatever runtime the
/// caller blocks; returns the JWKS URL. The server lives as long as the process.
pub fn spawn_jwks_server(jwks: Value) -> String {
    let (sender, receiver) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free loopback port");
            let addr = listener
                .local_addr()
                .expect("a bound listener has an address");
            sender.send(addr).expect("the caller waits for the address");
            axum::serve(listener, jwks_router(jwks))
                .await
                .expect("the JWKS server runs until the process ends");
        });
    });
    let addr = receiver.recv().expect("the JWKS server thread starts");
    format!("http://{addr}{JWKS_PATH}")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
