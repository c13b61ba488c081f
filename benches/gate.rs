//! The Gate's own overhead, with an authenticator that accepts at once.
//!
//! Group `gate`: `Gate::check` for an authenticated request, an anonymous request to a public
//! route and a request refused for its path (`/a/./b/../me`, a 400), next to the floor of calling the
//! authenticator directly. Group `tower`: a request through `GateLayer` next to the bare inner
//! service. Group `gate_parts`: pieces of the check on their own, to see where its time goes.
//! Group `policy`: a typical rule set (IP ranges + groups + scopes + expiry cap) through the Gate,
//! next to the same Gate with a `Public` route, so the difference is the rule set's cost.
//!
//! No `tracing` subscriber is installed, so audit events cost only their disabled callsite check.
//!
//! Run with `cargo bench --bench gate -- --warm-up-time 1 --measurement-time 3`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion};
use http::HeaderName;
use http::request::Parts;
use portcullis::client_ip::IpSet;
use portcullis::policy::{All, ExpiryCap, IpRanges};
use portcullis::reject::Challenge;
use portcullis::{
    Authenticator, BoxFuture, CredentialSource, Gate, GateLayer, Groups, Outcome, Principal,
    Public, RequestView, Scheme, Scopes, SubjectKind,
};
use tower::{Layer as _, ServiceExt as _};

/// Accepts any request carrying `x-test: 1`, with no I/O and no crypto: what is left to measure
/// is the Gate itself.
#[derive(Debug)]
struct AcceptAtOnce;

impl Authenticator for AcceptAtOnce {
    fn scheme(&self) -> Scheme {
        Scheme::API_KEY
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("ApiKey")
    }

    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::header(HeaderName::from_static("x-test"))]
    }

    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        let accepted = request
            .headers()
            .get("x-test")
            .is_some_and(|value| value == "1");
        Box::pin(async move {
            if accepted {
                Outcome::Authenticated(Principal::new("bench", SubjectKind::User, Scheme::API_KEY))
            } else {
                Outcome::Abstain
            }
        })
    }
}

fn gate(authenticator: Arc<AcceptAtOnce>) -> Gate {
    Gate::builder()
        .shared_authenticator(authenticator)
        .route("/public", Public)
        .route("/admin/**", Groups::any_of(["admin"]))
        .route("/users/*/keys", Groups::any_of(["admin"]))
        .build()
        .expect("the bench's routes are valid")
}

fn parts(path: &str, authenticated: bool) -> Parts {
    let mut request = http::Request::get(path);
    if authenticated {
        request = request.header("x-test", "1");
    }
    let (parts, ()) = request
        .body(())
        .expect("the bench's request is valid")
        .into_parts();
    parts
}

/// Accepts `x-test: 1` as a principal with groups, scopes and a 30-day credential, so every rule
/// of the typical set has something to look at.
#[derive(Debug)]
struct AcceptWithClaims;

impl Authenticator for AcceptWithClaims {
    fn scheme(&self) -> Scheme {
        Scheme::API_KEY
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("ApiKey")
    }

    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::header(HeaderName::from_static("x-test"))]
    }

    fn authenticate<'a>(&'a self, _request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        let now = chrono::Utc::now();
        Box::pin(async move {
            Outcome::Authenticated(
                Principal::new("bench", SubjectKind::User, Scheme::API_KEY)
                    .with_groups(["staff", "reports"])
                    .with_scopes(["read", "write"])
                    .with_issued_at(now - chrono::Duration::days(1))
                    .with_expires_at(now + chrono::Duration::days(29)),
            )
        })
    }
}

fn bench_policy(c: &mut Criterion) {
    let rt = runtime();
    let typical = All::new()
        .with(IpRanges::new().allow(
            IpSet::parse(["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]).expect("valid ranges"),
        ))
        .with(Groups::any_of(["staff", "admin"]))
        .with(Scopes::all_of(["read"]))
        .with(ExpiryCap::new().default_max_lifetime(Duration::from_secs(90 * 86_400)));
    let with_rules = Gate::builder()
        .authenticator(AcceptWithClaims)
        .route("/x", typical)
        .build()
        .expect("valid");
    let without = Gate::builder()
        .authenticator(AcceptWithClaims)
        .route("/x", Public)
        .build()
        .expect("valid");
    let request = parts("/x", true);
    let peer = Some("10.1.2.3:4000".parse().expect("peer"));
    let view = RequestView::from_parts(&request).with_peer(peer);
    for gate in [&with_rules, &without] {
        let result = rt.block_on(gate.check(&view));
        assert!(
            matches!(result, Ok(Some(_))),
            "the bench request must be allowed"
        );
    }
    let mut group = c.benchmark_group("policy");
    group.bench_function("floor/gate with Public", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(without.check(&view).await) })
    });
    group.bench_function("gate with ip+groups+scopes+expiry", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(with_rules.check(&view).await) })
    });
    group.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

fn bench_gate(c: &mut Criterion) {
    let runtime = runtime();
    let authenticator = Arc::new(AcceptAtOnce);
    let gate = gate(Arc::clone(&authenticator));
    let me = parts("/me", true);
    let public = parts("/public", false);
    let dotted = parts("/a/./b/../me", true);

    // Each case must take the path it is named for, or the numbers mean nothing.
    runtime.block_on(async {
        let principal = gate.check(&RequestView::from_parts(&me)).await;
        assert_eq!(
            principal
                .expect("allowed")
                .expect("authenticated")
                .subject(),
            "bench"
        );
        let anonymous = gate.check(&RequestView::from_parts(&public)).await;
        assert!(anonymous.expect("allowed").is_none());
        let dotted = gate.check(&RequestView::from_parts(&dotted)).await;
        assert_eq!(dotted.expect_err("refused").status(), 400);
    });

    let mut group = c.benchmark_group("gate");
    group.bench_function("floor/authenticator.authenticate", |b| {
        let view = RequestView::from_parts(&me);
        b.to_async(&runtime)
            .iter(|| async { black_box(authenticator.authenticate(black_box(&view)).await) });
    });
    for (name, parts) in [
        ("check/authenticated /me", &me),
        ("check/anonymous /public", &public),
        ("check/refused /a/./b/../me", &dotted),
    ] {
        group.bench_function(name, |b| {
            let view = RequestView::from_parts(parts);
            b.to_async(&runtime)
                .iter(|| async { black_box(gate.check(black_box(&view)).await) });
        });
    }
    group.finish();
}

fn bench_tower(c: &mut Criterion) {
    let runtime = runtime();
    let gate = gate(Arc::new(AcceptAtOnce));
    let inner = tower::service_fn(|_request: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(String::new()))
    });
    let guarded = GateLayer::new(gate).layer(inner);
    let request = || {
        http::Request::get("/me")
            .header("x-test", "1")
            .body(())
            .expect("the bench's request is valid")
    };

    runtime.block_on(async {
        let response = guarded.clone().oneshot(request()).await;
        assert_eq!(response.expect("infallible").status(), http::StatusCode::OK);
    });

    // Building the request is setup, outside the timing, in both cases alike.
    let mut group = c.benchmark_group("tower");
    group.bench_function("floor/service_fn oneshot", |b| {
        b.to_async(&runtime).iter_batched(
            || (inner, request()),
            |(service, request)| async move { black_box(service.oneshot(request).await) },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("gate_layer oneshot /me", |b| {
        b.to_async(&runtime).iter_batched(
            || (guarded.clone(), request()),
            |(service, request)| async move { black_box(service.oneshot(request).await) },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// Pieces of `Gate::check`, to see where its time goes.
fn bench_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("gate_parts");
    group.bench_function("chrono::Utc::now", |b| b.iter(chrono::Utc::now));
    group.finish();
}

// What `criterion_group!` and `criterion_main!` expand to, written out because the macro's
// generated `pub fn` cannot carry docs and the crate warns on missing docs.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_gate(&mut criterion);
    bench_tower(&mut criterion);
    bench_parts(&mut criterion);
    bench_policy(&mut criterion);
    criterion.final_summary();
}
