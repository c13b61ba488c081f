//! portcullis next to the peer crates, as tower layers, in the same run on the same machine.
//!
//! Group `jwt_peers/<alg>` for RS256 (2048-bit) and ES256, with keys from one JWKS served on
//! 127.0.0.1 by this process and tokens signed here (iss, aud, sub, iat, exp, scope, typ at+jwt):
//! - `portcullis_layer`: `GateLayer` over a `JwtAuthenticator` whose keys come from the JWKS URL
//!   (loaded before timing), issuer, audience and `typ` required;
//! - `jwt_authorizer_layer`: jwt-authorizer 0.15's layer over the same JWKS URL, issuer and
//!   audience required, claims as its default `RegisteredClaims`;
//! - `jwt_authorizer_raw_decode`: the `jsonwebtoken` 9 decode under it, with a `DecodingKey` made
//!   once and a `Validation` with issuer and audience: what its layer adds is the rest.
//!
//! Group `basic_peers`: portcullis Basic through `GateLayer` with its verified cache warm (default
//! lockout on, so the fast path is the one a real service runs), next to tower-http's
//! `ValidateRequestHeaderLayer::basic`. Not like for like: tower-http compares the header with a
//! plaintext `Basic <base64>` value (with `==`, not in constant time) and stores the password in
//! memory, so it is a floor no password store can reach, not a peer to beat.
//!
//! Both layers of a pair wrap the same trivial inner service (200, empty body) and are driven with
//! `ServiceExt::oneshot` on a clone of the service and a request rebuilt from the same prepared
//! `Parts`; that setup is outside the timing for both alike (`iter_batched`). No `tracing`
//! subscriber is installed, so neither side's logging costs more than its disabled callsite.
//!
//! Run with `cargo bench --manifest-path benches/peers/Cargo.toml --bench jwt_peers --
//! --warm-up-time 1 --measurement-time 3`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use criterion::{BatchSize, Criterion};
use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use jwt_authorizer::{IntoLayer as _, JwtAuthorizer, RegisteredClaims, Validation};
use portcullis::basic::encode_basic;
use portcullis::jwt::{JwtAuthenticator, KeySource};
use portcullis::store::MemoryUserStore;
use portcullis::{BasicAuthenticator, Gate, GateLayer};
use portcullis_peers::{
    AUDIENCE, BASIC_PASSWORD, BASIC_USER, ISSUER, Signer, TYP, jwks, spawn_jwks_server, tamper,
};
use tower::{Layer, Service, ServiceExt as _};

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    bench_jwt(&mut criterion, &runtime);
    bench_basic(&mut criterion, &runtime);
    criterion.final_summary();
}

fn bench_jwt(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let signers = [Signer::rs256("rsa-1"), Signer::es256("ec-1")];
    let url = spawn_jwks_server(jwks(&signers));

    let portcullis = runtime.block_on(async {
        let jwt = JwtAuthenticator::builder()
            .issuer(ISSUER, KeySource::jwks_url(&url))
            .audience(AUDIENCE)
            .require_typ(TYP)
            .build()
            .expect("a valid JWT configuration");
        jwt.refresh_keys().await.expect("the JWKS loads");
        let gate = Gate::builder()
            .authenticator(jwt)
            .build()
            .expect("no routes to get wrong");
        GateLayer::new(gate).layer(inner())
    });
    let peer = runtime.block_on(async {
        let validation = Validation::new().iss(&[ISSUER]).aud(&[AUDIENCE]);
        let authorizer = JwtAuthorizer::<RegisteredClaims>::from_jwks_url(&url)
            .validation(validation)
            .build()
            .await
            .expect("a valid jwt-authorizer configuration");
        authorizer.into_layer().layer(inner())
    });

    for signer in &signers {
        let token = signer.token();
        let good = parts(&format!("Bearer {token}"));
        let bad = parts(&format!("Bearer {}", tamper(&token)));
        // Each side must let the good token through and refuse the bad one, or the numbers below
        // could be a rejection path. The first call also loads jwt-authorizer's keys.
        runtime.block_on(async {
            for (name, parts, status) in [
                ("good", &good, StatusCode::OK),
                ("bad signature", &bad, StatusCode::UNAUTHORIZED),
            ] {
                let answer = status_of(portcullis.clone(), parts).await;
                assert_eq!(answer, status, "portcullis, {} {name}", signer.alg());
                let answer = status_of(peer.clone(), parts).await;
                assert_eq!(answer, status, "jwt-authorizer, {} {name}", signer.alg());
            }
        });

        let algorithm = match signer.alg() {
            "RS256" => jsonwebtoken::Algorithm::RS256,
            _ => jsonwebtoken::Algorithm::ES256,
        };
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(signer.jwk().clone()).expect("a JWK jsonwebtoken reads");
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("a usable JWK");
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        jsonwebtoken::decode::<RegisteredClaims>(&token, &key, &validation)
            .expect("the raw decode accepts the token");

        let mut group = c.benchmark_group(format!("jwt_peers/{}", signer.alg()));
        bench_oneshot(&mut group, runtime, "portcullis_layer", &portcullis, &good);
        bench_oneshot(&mut group, runtime, "jwt_authorizer_layer", &peer, &good);
        group.bench_function("jwt_authorizer_raw_decode", |b| {
            b.iter(|| {
                black_box(jsonwebtoken::decode::<RegisteredClaims>(
                    black_box(&token),
                    &key,
                    &validation,
                ))
            })
        });
        group.finish();
    }
}

fn bench_basic(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let portcullis = runtime.block_on(async {
        let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
            .verified_cache(Duration::from_secs(300), 10_000)
            .build()
            .expect("default hashing is valid");
        basic
            .add_user(BASIC_USER, &BASIC_PASSWORD.into(), ["staff"])
            .await
            .expect("the store is empty");
        let gate = Gate::builder()
            .authenticator(basic)
            .build()
            .expect("no routes to get wrong");
        GateLayer::new(gate).layer(inner())
    });
    // Deprecated since tower-http 0.6.7 ("too basic to be useful in real applications"), and
    // still what a search for Basic in tower-http finds.
    #[expect(deprecated, reason = "the peer is measured as users meet it")]
    let peer =
        tower_http::validate_request::ValidateRequestHeaderLayer::basic(BASIC_USER, BASIC_PASSWORD)
            .layer(inner());

    let good = parts(&encode_basic(BASIC_USER, BASIC_PASSWORD));
    let bad = parts(&encode_basic(BASIC_USER, "incorrect horse battery staple"));
    // The first good request runs argon2 and fills the cache; every timed one is a hit. The bad
    // password goes second, so a lockout count cannot stand between the fill and the hits.
    runtime.block_on(async {
        for (name, parts, status) in [
            ("good", &good, StatusCode::OK),
            ("wrong password", &bad, StatusCode::UNAUTHORIZED),
            ("good again", &good, StatusCode::OK),
        ] {
            let answer = status_of(portcullis.clone(), parts).await;
            assert_eq!(answer, status, "portcullis Basic, {name}");
            let answer = status_of(peer.clone(), parts).await;
            assert_eq!(answer, status, "tower-http Basic, {name}");
        }
    });

    let mut group = c.benchmark_group("basic_peers");
    bench_oneshot(
        &mut group,
        runtime,
        "portcullis_layer_cache_warm",
        &portcullis,
        &good,
    );
    bench_oneshot(
        &mut group,
        runtime,
        "tower_http_validate_basic",
        &peer,
        &good,
    );
    group.finish();
}

/// Times `service.clone().oneshot(request)`, the request rebuilt from `parts` outside the timing.
fn bench_oneshot<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    service: &S,
    parts: &Parts,
) where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone,
{
    group.bench_function(name, |b| {
        b.to_async(runtime).iter_batched(
            || (service.clone(), request(parts)),
            |(service, request)| async move { black_box(service.oneshot(request).await) },
            BatchSize::SmallInput,
        );
    });
}

/// The service both layers wrap: 200 with an empty body, nothing else.
fn inner() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_request: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::empty()))
    })
}

/// `GET /orders/42` with `authorization`, taken apart so each iteration can rebuild it.
fn parts(authorization: &str) -> Parts {
    let (parts, _) = Request::get("/orders/42")
        .header(AUTHORIZATION, authorization)
        .body(())
        .expect("the bench's request is valid")
        .into_parts();
    parts
}

fn request(parts: &Parts) -> Request<Body> {
    Request::from_parts(parts.clone(), Body::empty())
}

async fn status_of<S, B>(service: S, parts: &Parts) -> StatusCode
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    let Ok(response) = service.oneshot(request(parts)).await;
    response.status()
}
