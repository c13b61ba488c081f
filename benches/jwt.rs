//! What a JWT check costs, against the two floors it should be compared with.
//!
//! Group `jwt/<alg>` for HS256, RS256 (2048-bit), ES256 and EdDSA:
//! - `gate_check`: `Gate::check` of a request with `Authorization: Bearer <jwt>` through a
//!   `JwtAuthenticator` with a static key (strict parsing, key lookup, signature, claims, the
//!   principal with its claims, the route's policy, the audit event);
//! - `authenticator_verify`: `JwtAuthenticator::verify` alone, without the Gate around it;
//! - `jsonwebtoken_decode`: `jsonwebtoken::decode` with a `DecodingKey` made once (it still
//!   prepares the key on every call) and a `Validation` with issuer and audience;
//! - `raw_verify`: the signature check alone with a key parsed once (aws-lc-rs), the floor.
//!
//! After each group, the Gate check and the raw verify are also run alternately in small batches
//! and the median of their per-round ratios printed: the figure least moved by a shared machine.
//!
//! No `tracing` subscriber is installed, so audit events cost only their disabled callsite check.
//!
//! Run with `cargo bench --bench jwt -- --measurement-time 3`.

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use portcullis::jwt::{JwtAuthenticator, KeySet, KeySource};
use portcullis::{Gate, RequestView};
use serde_json::{Value, json};

const ISS: &str = "https://sso.example.com";
const SECRET: &[u8] = b"a benchmark HS256 secret, 32 B+!";

/// A signature check with a key parsed once: `(signing input, signature) -> valid`.
type RawVerify = Box<dyn Fn(&[u8], &[u8]) -> bool>;

/// One algorithm's fixtures.
struct Case {
    name: &'static str,
    token: String,
    jwk: Value,
    decoding: jsonwebtoken::DecodingKey,
    algorithm: jsonwebtoken::Algorithm,
    raw: RawVerify,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(alg: &str, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": alg, "kid": "k1", "typ": "at+jwt"});
    let claims = json!({
        "iss": ISS, "aud": "api", "sub": "alice", "iat": now, "exp": now + 3600,
        "jti": "0b1f9d7c", "scope": "orders:read orders:write", "groups": ["staff"],
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn cases() -> Vec<Case> {
    let rng = SystemRandom::new();
    let mut cases = Vec::new();

    let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
    let token = sign("HS256", &|m| {
        aws_lc_rs::hmac::sign(&hmac, m).as_ref().to_vec()
    });
    cases.push(Case {
        name: "HS256",
        token,
        jwk: json!({"kty": "oct", "k": b64(SECRET), "alg": "HS256"}),
        decoding: jsonwebtoken::DecodingKey::from_secret(SECRET).unwrap(),
        algorithm: jsonwebtoken::Algorithm::HS256,
        raw: Box::new(move |m, s| aws_lc_rs::hmac::verify(&hmac, m, s).is_ok()),
    });

    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let token = sign("RS256", &|m| {
        let mut out = vec![0; rsa.public_modulus_len()];
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut out)
            .unwrap();
        out
    });
    let (n, e) = (
        rsa.public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec(),
        rsa.public_key()
            .exponent()
            .big_endian_without_leading_zero()
            .to_vec(),
    );
    let parsed = RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    cases.push(Case {
        name: "RS256",
        token,
        jwk: json!({"kty": "RSA", "n": b64(&n), "e": b64(&e), "alg": "RS256"}),
        decoding: jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e),
        algorithm: jsonwebtoken::Algorithm::RS256,
        raw: Box::new(move |m, s| parsed.verify_sig(m, s).is_ok()),
    });

    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let token = sign("ES256", &|m| ec.sign(&rng, m).unwrap().as_ref().to_vec());
    let point = ec.public_key().as_ref().to_vec();
    let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap();
    cases.push(Case {
        name: "ES256",
        token,
        jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "ES256"}),
        decoding: jsonwebtoken::DecodingKey::from_ec_components(&x, &y).unwrap(),
        algorithm: jsonwebtoken::Algorithm::ES256,
        raw: Box::new(move |m, s| parsed.verify_sig(m, s).is_ok()),
    });

    let ed = Ed25519KeyPair::generate().unwrap();
    let token = sign("EdDSA", &|m| ed.sign(m).as_ref().to_vec());
    let public = ed.public_key().as_ref().to_vec();
    let parsed = ParsedPublicKey::new(&ED25519, &public).unwrap();
    cases.push(Case {
        name: "EdDSA",
        token,
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&public), "alg": "EdDSA"}),
        decoding: jsonwebtoken::DecodingKey::from_ed_components(&b64(&public)).unwrap(),
        algorithm: jsonwebtoken::Algorithm::EdDSA,
        raw: Box::new(move |m, s| parsed.verify_sig(m, s).is_ok()),
    });
    cases
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for case in cases() {
        let (jwt, gate) = gate_for(&case);
        let request = http::Request::get("/orders/42")
            .header("authorization", format!("Bearer {}", case.token))
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let view = RequestView::from_parts(&parts);
        let checked = runtime.block_on(gate.check(&view)).unwrap().unwrap();
        assert_eq!(checked.subject(), "alice");

        let mut validation = jsonwebtoken::Validation::new(case.algorithm);
        validation.set_audience(&["api"]);
        validation.set_issuer(&[ISS]);
        jsonwebtoken::decode::<Value>(&case.token, &case.decoding, &validation).unwrap();

        let (input, signature) = case.token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!((case.raw)(input.as_bytes(), &signature));

        let mut group = c.benchmark_group(format!("jwt/{}", case.name));
        group.bench_function("gate_check", |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(gate.check(black_box(&view)).await.unwrap());
            })
        });
        group.bench_function("authenticator_verify", |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(jwt.verify(black_box(&case.token)).await.unwrap());
            })
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                black_box(
                    jsonwebtoken::decode::<Value>(
                        black_box(&case.token),
                        &case.decoding,
                        &validation,
                    )
                    .unwrap(),
                )
            })
        });
        group.bench_function("raw_verify", |b| {
            b.iter(|| {
                assert!((case.raw)(
                    black_box(input.as_bytes()),
                    black_box(&signature)
                ))
            })
        });
        group.finish();

        if !interleave(case.name) {
            continue;
        }
        print_interleaved(&runtime, &gate, &view, &case, input, &signature);
    }
}

/// The authenticator for `case`'s key, and a Gate with it alone.
fn gate_for(case: &Case) -> (JwtAuthenticator, Gate) {
    let mut jwk = case.jwk.clone();
    jwk["kid"] = json!("k1");
    let keys = KeySet::from_jwks(&json!({ "keys": [jwk] }).to_string()).unwrap();
    let jwt = JwtAuthenticator::builder()
        .issuer(ISS, KeySource::Static(keys))
        .audience("api")
        .require_typ("at+jwt")
        .build()
        .unwrap();
    let gate = Gate::builder().authenticator(jwt.clone()).build().unwrap();
    (jwt, gate)
}

/// Prints `gate_check / raw_verify` for `case`, measured interleaved.
fn print_interleaved(
    runtime: &tokio::runtime::Runtime,
    gate: &Gate,
    view: &RequestView<'_>,
    case: &Case,
    input: &str,
    signature: &[u8],
) {
    let ratio = interleaved_ratio(
        || {
            runtime.block_on(async {
                for _ in 0..BATCH {
                    black_box(gate.check(black_box(view)).await.unwrap());
                }
            })
        },
        || {
            for _ in 0..BATCH {
                assert!((case.raw)(
                    black_box(input.as_bytes()),
                    black_box(signature)
                ));
            }
        },
    );
    println!(
        "jwt/{}: gate_check / raw_verify, interleaved = {ratio:.3} (median of {ROUNDS} rounds of {BATCH} each)",
        case.name
    );
}

/// Whether to run the interleaved ratio for `case`: not when profiling, and not for a case a
/// command-line filter leaves out (`cargo bench --bench jwt -- RS256`).
fn interleave(case: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .collect();
    !args.iter().any(|a| a == "--profile-time")
        && (filters.is_empty() || filters.iter().any(|f| f.contains(case)))
}

/// Checks per side in one round of [`interleaved_ratio`].
const BATCH: usize = 100;
/// Rounds in [`interleaved_ratio`]; odd, so the median is one of them.
const ROUNDS: usize = 101;

/// The median over rounds of (time of a batch of `ours`) / (time of a batch of `floor`), the two
/// batches run back to back. Criterion measures one function for seconds, then the next, so on a
/// shared machine a slow spell lands on one side of a ratio; alternating in small batches puts it
/// on both.
fn interleaved_ratio(ours: impl Fn(), floor: impl Fn()) -> f64 {
    ours();
    floor();
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = std::time::Instant::now();
            ours();
            let ours_took = start.elapsed();
            let start = std::time::Instant::now();
            floor();
            ours_took.as_secs_f64() / start.elapsed().as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ROUNDS / 2]
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
