//! What a DPoP (RFC 9449) request costs, against its floor.
//!
//! Group `dpop/<token alg>+<proof alg>` (ES256 + ES256, ES256 + EdDSA):
//! - `gate_check`: `Gate::check` of `GET /orders/42` with `Authorization: DPoP <token>` (a JWT
//!   bound to the proof key by `cnf.jkt`) and a fresh `DPoP` proof, through a `JwtAuthenticator`
//!   with a static key and the default DPoP settings around an in-memory replay cache: the
//!   token's checks, the proof's (parsing, `typ`, `alg`, its key built from its JWK, signature,
//!   `htm`, `htu` against the public origin, `iat`, `jti`, `ath`), the RFC 7638 thumbprint
//!   against `cnf.jkt`, the replay cache, the principal, the route's policy, the audit event;
//! - `bearer_gate_check`: the same Gate with an unbound token of the same issuer as `Bearer`,
//!   to show what DPoP adds to a JWT check;
//! - `floor`: what any DPoP check must do, written directly on aws-lc-rs: the token's signature
//!   with its key parsed once (the floor of `benches/jwt.rs`); the proof taken apart (base64url,
//!   its header's and claims' JSON), its key built from its JWK, its signature checked; the
//!   thumbprint and `ath` hashed and compared; the `(jkt, jti)` recorded in a
//!   `MemoryReplayCache` of its own. No claim of either JWT is checked.
//! - `signatures_only`: the two signature checks with both keys parsed once.
//!
//! Every proof has its own `jti` (a replay would be refused), so proofs are made before the
//! timed loop: by criterion's batched setup, and in advance for the interleaved ratio.
//!
//! After each group, the Gate check and the floor are also run alternately in small batches and
//! the median of their per-round ratios printed, as in `benches/jwt.rs`.
//!
//! Run with `cargo bench --bench dpop -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion};
use http::request::Parts;
use portcullis::jwt::dpop::{DpopSettings, MemoryReplayCache, ReplayCache};
use portcullis::jwt::{JwtAuthenticator, KeySet, KeySource};
use portcullis::{Gate, RequestView};
use serde::Deserialize;
use serde_json::{Value, json};

const ISS: &str = "https://sso.example.com";
const ORIGIN: &str = "https://api.example.com";
const PATH: &str = "/orders/42";
/// Room for every proof one run records; entries live 65 s (`max_age` + `max_future_skew`).
const REPLAY_CAPACITY: usize = 1_000_000;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(bytes)
}

/// A JWS with this header and these claims, signed by `sign`.
fn jws(header: &Value, claims: &Value, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// The proof key of one case: signs proofs, and knows its public JWK and thumbprint.
enum ProofKey {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl ProofKey {
    fn alg(&self) -> &'static str {
        match self {
            Self::Ec(_) => "ES256",
            Self::Ed(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            Self::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Self::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
            Self::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// A fresh proof for `GET {ORIGIN}{PATH}` with `token`.
    fn proof(&self, token: &str) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()});
        let claims = json!({
            "htm": "GET", "htu": format!("{ORIGIN}{PATH}"), "iat": now(), "jti": jti(),
            "ath": b64(digest(&SHA256, token.as_bytes())),
        });
        jws(&header, &claims, &|m| self.sign(m))
    }

    /// The key parsed once, for `signatures_only`.
    fn parsed(&self) -> ParsedPublicKey {
        match self {
            Self::Ec(pair) => {
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()).unwrap()
            }
            Self::Ed(pair) => ParsedPublicKey::new(&ED25519, pair.public_key().as_ref()).unwrap(),
        }
    }
}

/// The RFC 7638 thumbprint of an EC or OKP JWK.
fn thumbprint(jwk: &Jwk<'_>) -> String {
    let canonical = match jwk.y {
        Some(y) => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{y}"}}"#,
            jwk.crv, jwk.kty, jwk.x
        ),
        None => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
            jwk.crv, jwk.kty, jwk.x
        ),
    };
    b64(digest(&SHA256, canonical.as_bytes()))
}

#[derive(Deserialize)]
struct ProofHeader<'a> {
    #[serde(borrow)]
    jwk: Jwk<'a>,
}

#[derive(Deserialize)]
struct Jwk<'a> {
    kty: &'a str,
    crv: &'a str,
    x: &'a str,
    y: Option<&'a str>,
}

#[derive(Deserialize)]
struct ProofClaims<'a> {
    jti: &'a str,
    ath: &'a str,
}

/// One case: the token, its issuer's key parsed once, the proof key, the Gates.
struct Case {
    name: String,
    token: String,
    bearer_token: String,
    token_key: ParsedPublicKey,
    token_input_len: usize,
    token_signature: Vec<u8>,
    jkt: String,
    proof_key: ProofKey,
    gate: Gate,
    floor_cache: MemoryReplayCache,
}

fn case(proof_key: ProofKey) -> Case {
    let issuer = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = issuer.public_key().as_ref().to_vec();
    let issuer_jwk = json!({
        "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]),
        "alg": "ES256", "kid": "k1",
    });
    let jkt = {
        let jwk = proof_key.jwk();
        thumbprint(&Jwk {
            kty: jwk["kty"].as_str().unwrap(),
            crv: jwk["crv"].as_str().unwrap(),
            x: jwk["x"].as_str().unwrap(),
            y: jwk["y"].as_str(),
        })
    };
    let sign_token = |bound: bool| {
        let mut claims = json!({
            "iss": ISS, "aud": "api", "sub": "alice", "iat": now(), "exp": now() + 3600,
            "jti": "0b1f9d7c", "scope": "orders:read orders:write", "groups": ["staff"],
        });
        if bound {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        let header = json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"});
        jws(&header, &claims, &|m| {
            issuer
                .sign(&SystemRandom::new(), m)
                .unwrap()
                .as_ref()
                .to_vec()
        })
    };
    let token = sign_token(true);
    let bearer_token = sign_token(false);
    let (input, signature) = token.rsplit_once('.').unwrap();
    let keys = KeySet::from_jwks(&json!({ "keys": [issuer_jwk] }).to_string()).unwrap();
    let cache: Arc<dyn ReplayCache> = Arc::new(MemoryReplayCache::new(REPLAY_CAPACITY));
    let jwt = JwtAuthenticator::builder()
        .issuer(ISS, KeySource::Static(keys))
        .audience("api")
        .require_typ("at+jwt")
        .dpop(DpopSettings::new().replay_cache(cache))
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(jwt)
        .public_origin(ORIGIN)
        .build()
        .unwrap();
    Case {
        name: format!("ES256+{}", proof_key.alg()),
        token_input_len: input.len(),
        token_signature: URL_SAFE_NO_PAD.decode(signature).unwrap(),
        token_key: ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap(),
        token: token.clone(),
        bearer_token,
        jkt,
        proof_key,
        gate,
        floor_cache: MemoryReplayCache::new(REPLAY_CAPACITY),
    }
}

impl Case {
    /// The request's parts, with `proof`.
    fn request(&self, proof: &str) -> Parts {
        http::Request::get(PATH)
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", proof)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn fresh_request(&self) -> (Parts, String) {
        let proof = self.proof_key.proof(&self.token);
        (self.request(&proof), proof)
    }

    async fn gate_check(&self, parts: &Parts) {
        let principal = self
            .gate
            .check(&RequestView::from_parts(parts))
            .await
            .unwrap();
        black_box(principal);
    }

    /// The floor for one request: see the module's documentation.
    async fn floor(&self, proof: &str) {
        let input = &self.token.as_bytes()[..self.token_input_len];
        assert!(
            self.token_key
                .verify_sig(input, &self.token_signature)
                .is_ok()
        );

        let (proof_input, signature) = proof.rsplit_once('.').unwrap();
        let (header, claims) = proof_input.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.decode(header).unwrap();
        let header: ProofHeader<'_> = serde_json::from_slice(&header).unwrap();
        let claims = URL_SAFE_NO_PAD.decode(claims).unwrap();
        let claims: ProofClaims<'_> = serde_json::from_slice(&claims).unwrap();
        let jwk = &header.jwk;
        let x = URL_SAFE_NO_PAD.decode(jwk.x).unwrap();
        let key = match jwk.y {
            Some(y) => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&URL_SAFE_NO_PAD.decode(y).unwrap());
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap()
            }
            None => ParsedPublicKey::new(&ED25519, &x).unwrap(),
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!(key.verify_sig(proof_input.as_bytes(), &signature).is_ok());
        assert_eq!(thumbprint(jwk), self.jkt);
        assert_eq!(claims.ath, b64(digest(&SHA256, self.token.as_bytes())));
        let first = self
            .floor_cache
            .check_and_record(&self.jkt, claims.jti, Duration::from_secs(65))
            .await
            .unwrap();
        assert!(first);
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = [
        case(ProofKey::Ec(
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        )),
        case(ProofKey::Ed(Ed25519KeyPair::generate().unwrap())),
    ];
    for case in &cases {
        // Both sides accept before anything is timed.
        let (parts, proof) = case.fresh_request();
        runtime.block_on(case.gate_check(&parts));
        runtime.block_on(case.floor(&proof));
        let bearer = http::Request::get(PATH)
            .header("authorization", format!("Bearer {}", case.bearer_token))
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let bearer_view = RequestView::from_parts(&bearer);
        assert!(runtime.block_on(case.gate.check(&bearer_view)).is_ok());
        let proof_key = case.proof_key.parsed();
        let (proof_input, proof_signature) = proof.rsplit_once('.').unwrap();
        let proof_signature = URL_SAFE_NO_PAD.decode(proof_signature).unwrap();
        let token_input = &case.token.as_bytes()[..case.token_input_len];

        let mut group = c.benchmark_group(format!("dpop/{}", case.name));
        group.bench_function("gate_check", |b| {
            b.to_async(&runtime).iter_batched(
                || case.fresh_request().0,
                |parts| async move { case.gate_check(&parts).await },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("bearer_gate_check", |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(case.gate.check(black_box(&bearer_view)).await.unwrap());
            })
        });
        group.bench_function("floor", |b| {
            b.to_async(&runtime).iter_batched(
                || case.proof_key.proof(&case.token),
                |proof| async move { case.floor(&proof).await },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("signatures_only", |b| {
            b.iter(|| {
                assert!(
                    case.token_key
                        .verify_sig(black_box(token_input), &case.token_signature)
                        .is_ok()
                );
                assert!(
                    proof_key
                        .verify_sig(black_box(proof_input.as_bytes()), &proof_signature)
                        .is_ok()
                );
            })
        });
        group.finish();

        if interleave(&case.name) {
            print_interleaved(&runtime, case);
        }
    }
}

/// Prints `gate_check / floor` for `case`, measured interleaved on proofs made in advance (the
/// Gate and the floor have replay caches of their own, so each proof serves both once).
fn print_interleaved(runtime: &tokio::runtime::Runtime, case: &Case) {
    let requests: Vec<(Parts, String)> = (0..(ROUNDS + 1) * BATCH)
        .map(|_| case.fresh_request())
        .collect();
    let mut batches = requests.chunks(BATCH);
    let first = batches.next().unwrap();
    let batches: Vec<&[(Parts, String)]> = batches.collect();
    let ratio = interleaved_ratio(
        first,
        &batches,
        |batch| {
            runtime.block_on(async {
                for (parts, _) in batch {
                    case.gate_check(parts).await;
                }
            })
        },
        |batch| {
            runtime.block_on(async {
                for (_, proof) in batch {
                    case.floor(proof).await;
                }
            })
        },
    );
    println!(
        "dpop/{}: gate_check / floor, interleaved = {ratio:.3} (median of {ROUNDS} rounds of {BATCH} each)",
        case.name
    );
}

/// Whether to run the interleaved ratio for `case`: not when profiling, and not for a case a
/// command-line filter leaves out.
fn interleave(case: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .collect();
    !args
        .iter()
        .any(|a| a == "--profile-time" || a == "--list" || a == "--test")
        && (filters.is_empty() || filters.iter().any(|f| f.contains(case)))
}

/// Requests per side in one round of [`interleaved_ratio`].
const BATCH: usize = 100;
/// Rounds in [`interleaved_ratio`]; odd, so the median is one of them.
const ROUNDS: usize = 101;

type Batch<'a> = &'a [(Parts, String)];

/// The median over rounds of (time of a batch of `ours`) / (time of a batch of `floor`), the two
/// run back to back on the same fresh proofs; `warm` runs once on both sides first.
fn interleaved_ratio(
    warm: Batch<'_>,
    batches: &[Batch<'_>],
    ours: impl Fn(Batch<'_>),
    floor: impl Fn(Batch<'_>),
) -> f64 {
    ours(warm);
    floor(warm);
    let mut ratios: Vec<f64> = batches
        .iter()
        .map(|batch| {
            let start = std::time::Instant::now();
            ours(batch);
            let ours_took = start.elapsed();
            let start = std::time::Instant::now();
            floor(batch);
            ours_took.as_secs_f64() / start.elapsed().as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
