//! HTTP Basic through the Gate, next to what it cannot go below.
//!
//! Group `basic_cold`: a correct password checked with argon2id at the default OWASP cost
//! (m = 19456 KiB, t = 2, p = 1) through `Gate::check`, next to the floor of one
//! `argon2::Argon2::verify_password` on the same PHC string on the calling thread. The Gate runs
//! argon2 on tokio's blocking pool behind a semaphore, so the difference is that hand-off plus the
//! Gate and header parsing. Lockout is off so that the wrong-password case never locks.
//!
//! Group `basic_warm`: the same request with the verified cache warm, so no argon2 runs, next to
//! the floor of decoding the header and computing the HMAC-SHA256 the cache is keyed by; with and
//! without the default (in-memory) lockout, which a real service keeps on.
//!
//! Group `basic_parts`: pieces of the warm path on their own, to see where its time goes.
//!
//! Run with `cargo bench --bench basic -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use argon2::{Argon2, PasswordVerifier as _};
use criterion::Criterion;
use hmac::{Hmac, Mac as _};
use http::header::AUTHORIZATION;
use http::request::Parts;
use portcullis::basic::{BasicAuthenticatorBuilder, encode_basic, parse_basic};
use portcullis::store::MemoryUserStore;
use portcullis::{BasicAuthenticator, Gate, RequestView};
use sha2::Sha256;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// A Gate over one Basic authenticator with user `alice`, and the authenticator itself.
fn gate(
    runtime: &tokio::runtime::Runtime,
    configure: impl FnOnce(BasicAuthenticatorBuilder) -> BasicAuthenticatorBuilder,
) -> (Gate, Arc<BasicAuthenticator>) {
    let builder = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()));
    let basic = Arc::new(
        configure(builder)
            .build()
            .expect("default hashing is valid"),
    );
    runtime
        .block_on(basic.add_user(USER, &PASSWORD.into(), ["staff"]))
        .expect("the store is empty");
    let gate = Gate::builder()
        .shared_authenticator(basic.clone())
        .build()
        .expect("no routes to get wrong");
    (gate, basic)
}

fn parts(user: &str, password: &str) -> Parts {
    let (parts, ()) = http::Request::get("/me")
        .header(AUTHORIZATION, encode_basic(user, password))
        .body(())
        .expect("the bench's request is valid")
        .into_parts();
    parts
}

fn bench_cold(c: &mut Criterion) {
    let runtime = runtime();
    let (gate, basic) = gate(
        &runtime,
        BasicAuthenticatorBuilder::dangerous_disable_lockout,
    );
    let phc = runtime
        .block_on(basic.store().find_user(USER))
        .expect("the memory store does not fail")
        .expect("alice was added")
        .password_hash
        .expose_phc()
        .to_owned();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let right = parts(USER, PASSWORD);
    let wrong = parts(USER, "incorrect horse battery staple");
    runtime.block_on(async {
        assert!(gate.check(&RequestView::from_parts(&right)).await.is_ok());
        assert!(gate.check(&RequestView::from_parts(&wrong)).await.is_err());
    });

    let mut group = c.benchmark_group("basic_cold");
    group.sample_size(10);
    group.bench_function("floor/argon2 verify_password", |b| {
        let argon2 = Argon2::default();
        b.iter(|| {
            // Parsed every time, as the pool does.
            let parsed = argon2::PasswordHash::new(black_box(&phc)).expect("a valid PHC string");
            black_box(argon2.verify_password(PASSWORD.as_bytes(), &parsed))
        });
    });
    for (name, parts) in [
        ("gate/right password", &right),
        ("gate/wrong password", &wrong),
    ] {
        group.bench_function(name, |b| {
            let view = RequestView::from_parts(parts);
            b.to_async(&runtime)
                .iter(|| async { black_box(gate.check(black_box(&view)).await) });
        });
    }
    group.finish();
}

fn bench_warm(c: &mut Criterion) {
    let runtime = runtime();
    let cache = |builder: BasicAuthenticatorBuilder| {
        builder.verified_cache(Duration::from_secs(300), 10_000)
    };
    let (no_lockout, _) = gate(&runtime, |b| cache(b).dangerous_disable_lockout());
    let (with_lockout, _) = gate(&runtime, cache);
    let request = parts(USER, PASSWORD);
    // One login each fills the cache; every iteration after it is a hit.
    runtime.block_on(async {
        for gate in [&no_lockout, &with_lockout] {
            let principal = gate.check(&RequestView::from_parts(&request)).await;
            assert_eq!(
                principal.expect("ok").expect("authenticated").subject(),
                USER
            );
        }
    });

    let mut group = c.benchmark_group("basic_warm");
    group.bench_function("floor/parse_basic + HMAC-SHA256", |b| {
        let header = &request.headers[AUTHORIZATION];
        let key = [7u8; 32];
        b.iter(|| {
            let credentials = parse_basic(black_box(header), &Default::default())
                .expect("well formed")
                .expect("a Basic header");
            let mut mac = <Hmac<Sha256>>::new_from_slice(&key).expect("HMAC takes any key length");
            mac.update(&(credentials.user.len() as u64).to_be_bytes());
            mac.update(credentials.user.as_bytes());
            mac.update(credentials.password.expose_secret().as_bytes());
            black_box(mac.finalize())
        });
    });
    for (name, gate) in [
        ("gate/cache hit, lockout off", &no_lockout),
        ("gate/cache hit, lockout on", &with_lockout),
    ] {
        group.bench_function(name, |b| {
            let view = RequestView::from_parts(&request);
            b.to_async(&runtime)
                .iter(|| async { black_box(gate.check(black_box(&view)).await) });
        });
    }
    group.finish();
}

/// Pieces of the warm path on their own, to see where its time goes.
fn bench_parts(c: &mut Criterion) {
    let runtime = runtime();
    let (_, basic) = gate(
        &runtime,
        BasicAuthenticatorBuilder::dangerous_disable_lockout,
    );
    let request = parts(USER, PASSWORD);
    let header = &request.headers[AUTHORIZATION];
    let key = [7u8; 32];
    let keyed = <Hmac<Sha256>>::new_from_slice(&key).expect("HMAC takes any key length");
    let fingerprint = |mut mac: Hmac<Sha256>| {
        mac.update(&(USER.len() as u64).to_be_bytes());
        mac.update(USER.as_bytes());
        mac.update(PASSWORD.as_bytes());
        mac.finalize()
    };

    let mut group = c.benchmark_group("basic_parts");
    group.bench_function("parse_basic", |b| {
        b.iter(|| black_box(parse_basic(black_box(header), &Default::default())));
    });
    group.bench_function("HMAC-SHA256, keyed per call", |b| {
        b.iter(|| {
            let mac = <Hmac<Sha256>>::new_from_slice(black_box(&key)).expect("any key length");
            black_box(fingerprint(mac))
        });
    });
    group.bench_function("HMAC-SHA256, pre-keyed state cloned", |b| {
        b.iter(|| black_box(fingerprint(black_box(&keyed).clone())));
    });
    group.bench_function("MemoryUserStore::find_user", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(basic.store().find_user(black_box(USER)).await) });
    });
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out because the macro's
// generated `pub fn` cannot carry docs and the crate warns on missing docs.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_cold(&mut criterion);
    bench_warm(&mut criterion);
    bench_parts(&mut criterion);
    criterion.final_summary();
}
