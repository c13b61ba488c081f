//! Issue #19 items 2-4: every rejection's machine-readable reason (and that no responder can
//! read it), the metrics the Gate and its parts report through the `metrics` facade (counted
//! with `metrics-util`'s `DebuggingRecorder`), the `portcullis.check` span and its children, and
//! the level of the audit event for allowed requests.
#![cfg(all(
    feature = "metrics",
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection",
    feature = "axum"
))]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use portcullis::api_key::CHECKSUM_LEN;
use portcullis::jwt::{JwtIssuer, SigningKey};
use portcullis::reject::{Challenge, PublicRejection, Reason};
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{
    ApiKeys, Authenticator, BasicAuthenticator, BoxFuture, CredentialSource, Gate, Groups,
    NewApiKey, Outcome, Principal, Rejection, RequestView, Scheme, Schemes, Scopes, SubjectKind,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

const PEPPER: &str = "observability test pepper, at least thirty-two bytes";
const DECISIONS: &str = "portcullis_decisions_total";

/// argon2id at a cost far below a real one: these tests are about what is counted.
fn cheap_hashing() -> portcullis::basic::HashingConfig {
    portcullis::basic::HashingConfig::default()
        .with_memory_kib(64)
        .with_iterations(1)
}

/// API keys, Basic (users `alice`/`admin`) and a header-named custom scheme, with routes that
/// refuse by group, scope and scheme.
struct Fixture {
    gate: Gate,
    keys: ApiKeys,
    key: String,
}

async fn fixture(
    configure: impl FnOnce(portcullis::GateBuilder) -> portcullis::GateBuilder,
) -> Fixture {
    // The recording subscriber first, so no callsite caches "no interest" before it exists.
    seen();
    let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), PEPPER.into())
        .build()
        .expect("valid API key settings");
    let issued = keys
        .create(
            NewApiKey::new("svc")
                .with_owner_kind(SubjectKind::Application)
                .with_scopes(["read"])
                .with_expires_in(Duration::from_secs(86_400)),
        )
        .await
        .expect("key created");
    let basic = BasicAuthenticator::builder(Arc::new(MemoryUserStore::new()))
        .hashing(cheap_hashing())
        .build()
        .expect("valid Basic settings");
    basic
        .add_user("alice", &"correct horse".into(), ["staff"])
        .await
        .expect("user added");
    let builder = Gate::builder()
        .authenticator(keys.authenticator())
        .authenticator(basic)
        .authenticator(Custom)
        .route("/admin/**", Groups::any_of(["admin"]))
        .route("/write/**", Scopes::all_of(["write"]))
        .route("/no-basic/**", Schemes::deny([Scheme::BASIC]));
    Fixture {
        gate: configure(builder).build().expect("valid gate"),
        key: issued.key().expose_secret().to_owned(),
        keys,
    }
}

/// A scheme of the service's own: `x-custom: ok` authenticates, `x-custom: expired` is refused
/// with `token_expired`, showing a custom authenticator names its reason.
#[derive(Debug)]
struct Custom;

const CUSTOM: Scheme = Scheme::new("custom");

impl Authenticator for Custom {
    fn scheme(&self) -> Scheme {
        CUSTOM
    }
    fn challenge(&self) -> Challenge {
        Challenge::new("Custom")
    }
    fn sources(&self) -> Vec<CredentialSource> {
        vec![CredentialSource::header(http::HeaderName::from_static(
            "x-custom",
        ))]
    }
    fn authenticate<'a>(&'a self, request: &'a RequestView<'a>) -> BoxFuture<'a, Outcome> {
        let value = request.headers().get("x-custom").cloned();
        Box::pin(async move {
            match value.as_ref().map(|v| v.as_bytes()) {
                Some(b"ok") => Outcome::Authenticated(Principal::new(
                    "robot",
                    SubjectKind::Application,
                    CUSTOM,
                )),
                Some(_) => Outcome::Rejected(
                    Rejection::invalid_credentials(CUSTOM, "the custom token expired")
                        .with_reason(Reason::TokenExpired),
                ),
                None => Outcome::Abstain,
            }
        })
    }
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn check(
    gate: &Gate,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Option<Principal>, Rejection> {
    let mut request = http::Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (parts, ()) = request.body(()).expect("request").into_parts();
    gate.check(&RequestView::from_parts(&parts)).await
}

async fn reason(gate: &Gate, path: &str, headers: &[(&str, &str)]) -> Reason {
    check(gate, path, headers)
        .await
        .expect_err("refused")
        .reason()
}

/// Runs `test` on a current-thread runtime with `recorder` as this thread's recorder, so the
/// handles the code under test registers (at build or first use) record into it.
fn recorded<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Snapshotter {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(test());
    });
    snapshotter
}

type Labels = BTreeMap<String, String>;

/// Every counter and gauge: (name, labels) → value.
fn values(snapshotter: &Snapshotter) -> BTreeMap<(String, Labels), f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn decisions(values: &BTreeMap<(String, Labels), f64>) -> BTreeMap<(String, String, String), u64> {
    values
        .iter()
        .filter(|((name, _), _)| name == DECISIONS)
        .map(|((_, labels), n)| {
            (
                (
                    labels["scheme"].clone(),
                    labels["outcome"].clone(),
                    labels["reason"].clone(),
                ),
                *n as u64,
            )
        })
        .collect()
}

fn triple(scheme: &str, outcome: &str, reason: &str) -> (String, String, String) {
    (scheme.to_owned(), outcome.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn every_refusal_names_its_reason() {
    let f = fixture(|b| b).await;
    let key = f.key.as_str();
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Reason);
    let cases: Vec<Case<'_>> = vec![
        ("/x", vec![], Reason::CredentialsMissing),
        ("/a/../b", vec![], Reason::RequestMalformed),
        (
            "/x",
            vec![("x-api-key", key.to_owned()), ("x-custom", "ok".into())],
            Reason::RequestMalformed,
        ),
        (
            "/x",
            vec![("authorization", basic("alice", "wrong"))],
            Reason::CredentialsInvalid,
        ),
        (
            "/x",
            vec![("authorization", basic("nobody", "wrong"))],
            Reason::CredentialsInvalid,
        ),
        (
            "/x",
            vec![("x-api-key", "not a key".into())],
            Reason::CredentialsInvalid,
        ),
        (
            "/admin/x",
            vec![("authorization", basic("alice", "correct horse"))],
            Reason::GroupDenied,
        ),
        (
            "/write/x",
            vec![("x-api-key", key.to_owned())],
            Reason::ScopeInsufficient,
        ),
        (
            "/no-basic/x",
            vec![("authorization", basic("alice", "correct horse"))],
            Reason::SchemeDenied,
        ),
        (
            "/x",
            vec![("x-custom", "expired".into())],
            Reason::TokenExpired,
        ),
    ];
    for (path, headers, expected) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            reason(&f.gate, path, &headers).await,
            expected,
            "{path} {headers:?}"
        );
    }
}

#[tokio::test]
async fn key_revoked_and_key_expired_only_after_the_secret_matched() {
    let f = fixture(|b| b).await;
    let revoked = f
        .keys
        .create(NewApiKey::new("svc").with_expires_in(Duration::from_secs(3_600)))
        .await
        .expect("key");
    f.keys.revoke(revoked.id()).await.expect("revoked");
    let expired = f
        .keys
        .create(NewApiKey::new("svc").with_expires_in(Duration::from_secs(3_600)))
        .await
        .expect("key");
    f.keys
        .set_expires_at(
            expired.id(),
            Some(chrono::Utc::now() - chrono::TimeDelta::seconds(5)),
        )
        .await
        .expect("expiry moved");
    for (issued, when_matched) in [
        (&revoked, Reason::KeyRevoked),
        (&expired, Reason::KeyExpired),
    ] {
        let right = issued.key().expose_secret().to_owned();
        assert_eq!(
            reason(&f.gate, "/x", &[("x-api-key", &right)]).await,
            when_matched
        );
        // The same id with a wrong secret: no word of revocation or expiry.
        let wrong = wrong_secret(&right);
        let got = reason(&f.gate, "/x", &[("x-api-key", &wrong)]).await;
        assert_eq!(got, Reason::CredentialsInvalid, "{wrong}");
    }
}

/// The same id with another secret and a correct checksum: it parses, names the same id, and
/// only the keyed hash can refuse it.
fn wrong_secret(key: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = &key[..key.len() - CHECKSUM_LEN];
    let last = if body.ends_with('A') { "B" } else { "A" };
    let body = format!("{}{last}", &body[..body.len() - 1]);
    let mut crc = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{body}{}", String::from_utf8_lossy(&digits))
}

#[tokio::test]
async fn token_reasons_name_the_check_that_failed() {
    let secret = b"a shared secret of at least thirty-two bytes!!";
    let issuer = |audience: &str, secret: &[u8]| {
        JwtIssuer::builder(
            "https://issuer.test",
            SigningKey::hs256(secret).expect("key"),
        )
        .audience(audience)
        .build()
        .expect("issuer")
    };
    let accepted = issuer("api", secret);
    let gate = Gate::builder()
        .authenticator(accepted.authenticator_builder().build().expect("jwt"))
        .build()
        .expect("gate");
    let principal = Principal::new("alice", SubjectKind::User, Scheme::JWT);
    let token = |issuer: &JwtIssuer| {
        format!(
            "Bearer {}",
            issuer
                .issue(&principal, Duration::from_secs(60))
                .expect("token")
                .expose_secret()
        )
    };
    let other_audience = token(&issuer("elsewhere", secret));
    let other_key = token(&issuer(
        "api",
        b"another secret of at least thirty-two bytes!!",
    ));
    let good = token(&accepted);
    assert!(
        check(&gate, "/x", &[("authorization", &good)])
            .await
            .is_ok()
    );
    assert_eq!(
        reason(&gate, "/x", &[("authorization", &other_audience)]).await,
        Reason::TokenAudience
    );
    assert_eq!(
        reason(&gate, "/x", &[("authorization", &other_key)]).await,
        Reason::TokenSignature
    );
    assert_eq!(
        reason(&gate, "/x", &[("authorization", "Bearer a.b.c")]).await,
        Reason::TokenMalformed
    );
}

#[tokio::test]
async fn a_custom_responder_sees_no_reason_and_no_detail() {
    let f = fixture(|b| {
        // Everything the responder is given, printed into the body: still no reason.
        b.responder(|rejection: &PublicRejection, challenges: &[Challenge]| {
            let mut response = http::Response::new(format!("{rejection:?} {challenges:?}"));
            *response.status_mut() = rejection.status();
            response
        })
    })
    .await;
    let revoked = f
        .keys
        .create(NewApiKey::new("svc").with_expires_in(Duration::from_secs(3_600)))
        .await
        .expect("key");
    f.keys.revoke(revoked.id()).await.expect("revoked");
    let cases = [
        (
            "/x",
            ("x-api-key", revoked.key().expose_secret().to_owned()),
            "key_revoked",
        ),
        (
            "/x",
            ("authorization", basic("nobody", "pw")),
            "credentials_invalid",
        ),
        (
            "/admin/x",
            ("authorization", basic("alice", "correct horse")),
            "group_denied",
        ),
    ];
    for (path, (name, value), why) in cases {
        let rejection = check(&f.gate, path, &[(name, &value)])
            .await
            .expect_err("refused");
        assert_eq!(rejection.reason().as_str(), why);
        let response = f.gate.respond(&rejection);
        let body = response.body();
        assert!(!body.contains(why), "{body}");
        assert!(!body.contains(rejection.detail()), "{body}");
        for word in ["revoked", "unknown", "nobody", "groups", "Reason", "detail"] {
            assert!(!body.contains(word), "{word} in {body}");
        }
        // The public class is all there: status and the scheme whose challenge carries it.
        assert_eq!(response.status(), rejection.status());
    }
}

#[test]
fn decision_counts_match_the_requests_made() {
    let snapshotter = recorded(|| async {
        let f = fixture(|b| b).await;
        let key = f.key.clone();
        for _ in 0..3 {
            check(&f.gate, "/x", &[("x-api-key", &key)])
                .await
                .expect("allowed");
        }
        for _ in 0..2 {
            check(&f.gate, "/x", &[]).await.expect_err("anonymous");
        }
        check(&f.gate, "/x", &[("authorization", &basic("alice", "nope"))])
            .await
            .expect_err("wrong password");
        check(&f.gate, "/write/x", &[("x-api-key", &key)])
            .await
            .expect_err("scope");
        check(&f.gate, "/x", &[("x-custom", "ok")])
            .await
            .expect("allowed");
        check(&f.gate, "/x", &[("x-custom", "expired")])
            .await
            .expect_err("expired");
    });
    let values = values(&snapshotter);
    let expected: BTreeMap<_, _> = [
        (triple("api_key", "allowed", "none"), 3),
        (triple("none", "refused", "credentials_missing"), 2),
        (triple("basic", "refused", "credentials_invalid"), 1),
        (triple("api_key", "refused", "scope_insufficient"), 1),
        (triple("custom", "allowed", "none"), 1),
        (triple("custom", "refused", "token_expired"), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(decisions(&values), expected);
    // One latency sample per decision, by scheme.
    let latency: f64 = values
        .iter()
        .filter(|((name, _), _)| name == "portcullis_check_duration_seconds")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(latency, 9.0);
    // The API-key cache: four lookups, the first a miss (the one while the store's change
    // watch starts may miss too), the rest hits.
    let get = |name: &str| values.get(&(name.to_owned(), Labels::new())).copied();
    let misses = get("portcullis_api_key_cache_misses_total").unwrap_or(0.0);
    let hits = get("portcullis_api_key_cache_hits_total").unwrap_or(0.0);
    assert_eq!(misses + hits, 4.0);
    assert!((1.0..=2.0).contains(&misses), "{misses} misses");
    // The pool ran argon2 twice (`add_user`, then the wrong password), and nothing is hashing
    // now.
    assert_eq!(get("portcullis_hashing_in_use"), Some(0.0));
    assert_eq!(get("portcullis_hashing_queue_wait_seconds"), Some(2.0));
}

#[test]
fn label_cardinality_is_constant_over_ten_thousand_random_requests() {
    let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
    let series = Arc::clone(&seen);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let count = |s: &Snapshotter| s.snapshot().into_vec().len();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let f = fixture(|b| b).await;
                let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for i in 0..10_000u32 {
                    let path = format!(
                        "/p{:x}/{}",
                        next(),
                        ["x", "admin/y", "write/z"][i as usize % 3]
                    );
                    let user = format!("user-{:x}", next());
                    let auth = basic(&user, "pw");
                    let header = match i % 4 {
                        0 => ("authorization", auth.as_str()),
                        1 => ("x-api-key", f.key.as_str()),
                        2 => ("x-custom", "ok"),
                        _ => ("x-api-key", user.as_str()),
                    };
                    let _ = check(&f.gate, &path, &[header]).await;
                    if i == 999 || i == 9_999 {
                        series.lock().unwrap().push(count(&snapshotter));
                    }
                }
            });
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], seen[1], "series after 1,000 and 10,000 requests");
    // Every label value is a scheme, an outcome or a reason: never a path, a user or a key.
    let mut allowed: BTreeSet<&str> = ["none", "other", "basic", "api_key", "jwt", "introspection"]
        .into_iter()
        .chain(["custom", "allowed", "refused"])
        .collect();
    allowed.extend(Reason::ALL.iter().map(|r| r.as_str()));
    for (key, _, _, _) in snapshotter.snapshot().into_vec() {
        for label in key.key().labels() {
            assert!(
                allowed.contains(label.value()),
                "{} {}={}",
                key.key().name(),
                label.key(),
                label.value()
            );
        }
    }
}

// --- spans and audit levels, through one global subscriber that records what it sees ---

#[derive(Clone, Debug)]
struct SpanSeen {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    thread: std::thread::ThreadId,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
struct EventSeen {
    level: tracing::Level,
    target: String,
    thread: std::thread::ThreadId,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Seen {
    spans: Vec<SpanSeen>,
    events: Vec<EventSeen>,
}

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Recorder);
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        Mutex::default()
    })
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

struct Recorder;

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id().into_u64());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        seen().lock().unwrap().spans.push(SpanSeen {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            thread: std::thread::current().id(),
            fields,
        });
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = seen().lock().unwrap();
        if let Some(span) = seen.spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        seen().lock().unwrap().events.push(EventSeen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            thread: std::thread::current().id(),
            fields,
        });
    }
}

/// The spans under the `portcullis.check` spans this thread opened after `from`, with the
/// name of each one's parent.
fn spans_since(from: usize) -> Vec<(SpanSeen, Option<&'static str>)> {
    let seen = seen().lock().unwrap();
    let me = std::thread::current().id();
    let spans = &seen.spans[from..];
    let mut mine: BTreeSet<u64> = spans
        .iter()
        .filter(|s| s.thread == me && s.name == "portcullis.check")
        .map(|s| s.id)
        .collect();
    let mut out = Vec::new();
    for span in spans {
        let parent = span
            .parent
            .and_then(|p| spans.iter().rev().find(|s| s.id == p));
        let is_mine = (span.thread == me && span.name == "portcullis.check")
            || span.parent.is_some_and(|p| mine.contains(&p));
        if is_mine {
            mine.insert(span.id);
            out.push((span.clone(), parent.map(|p| p.name)));
        }
    }
    out
}

#[tokio::test]
async fn check_span_with_children_for_store_lookup_and_hashing() {
    let from = seen().lock().unwrap().spans.len();
    let f = fixture(|b| b).await;
    check(
        &f.gate,
        "/admin/x",
        &[("authorization", &basic("alice", "correct horse"))],
    )
    .await
    .expect_err("not in admin");
    let spans = spans_since(from);
    let decided = spans
        .iter()
        .find(|(s, _)| s.name == "portcullis.check")
        .expect("a check span");
    assert_eq!(decided.0.fields["scheme"], "basic");
    assert_eq!(decided.0.fields["rule"], "* /admin/**");
    assert_eq!(decided.0.fields["decision"], "refused");
    assert_eq!(decided.0.fields["reason"], "group_denied");
    let child = |name: &str| {
        spans
            .iter()
            .find(|(s, _)| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
    };
    let store = child("portcullis.store");
    assert_eq!(store.1, Some("portcullis.check"));
    assert_eq!(store.0.fields["op"], "find_user");
    assert_eq!(child("portcullis.hash.wait").1, Some("portcullis.check"));
    // The hash runs on a blocking thread, still under the request's span.
    assert_eq!(child("portcullis.hash").1, Some("portcullis.check"));
    // API keys: the store is asked on the first lookup only.
    let from = seen().lock().unwrap().spans.len();
    let key = f.key.clone();
    check(&f.gate, "/x", &[("x-api-key", &key)])
        .await
        .expect("allowed");
    let spans = spans_since(from);
    let names: Vec<_> = spans.iter().map(|(s, _)| s.name).collect();
    assert_eq!(names, ["portcullis.check", "portcullis.store"]);
    assert_eq!(spans[0].0.fields["decision"], "allowed");
    assert_eq!(spans[1].0.fields["op"], "find_key");
}

fn audit_events_since(from: usize) -> Vec<EventSeen> {
    let me = std::thread::current().id();
    seen().lock().unwrap().events[from..]
        .iter()
        .filter(|e| e.thread == me && e.target == "portcullis::audit")
        .cloned()
        .collect()
}

#[tokio::test]
async fn audit_allowed_level_lowers_allows_and_keeps_refusals_at_info() {
    for (level, expected) in [
        (None, tracing::Level::INFO),
        (Some(tracing::Level::DEBUG), tracing::Level::DEBUG),
        (Some(tracing::Level::TRACE), tracing::Level::TRACE),
    ] {
        let from = seen().lock().unwrap().events.len();
        let f = fixture(|b| match level {
            Some(level) => b.audit_allowed_level(level),
            None => b,
        })
        .await;
        check(&f.gate, "/x", &[("x-custom", "ok")])
            .await
            .expect("allowed");
        check(&f.gate, "/x", &[]).await.expect_err("refused");
        let events = audit_events_since(from);
        assert_eq!(events.len(), 2, "{events:#?}");
        assert_eq!(events[0].level, expected);
        assert_eq!(events[0].fields["outcome"], "allow");
        assert_eq!(events[1].level, tracing::Level::INFO);
        assert_eq!(events[1].fields["reason"], "credentials_missing");
        assert!(events[1].fields.contains_key("detail"));
    }
}

#[tokio::test]
async fn audit_allowed_level_from_toml_and_a_bad_level_names_line_and_key() {
    let from = seen().lock().unwrap().events.len();
    let gate = Gate::from_config_str(
        "[gate]\ndefault_policy = \"public\"\naudit_allowed_level = \"debug\"\n",
    )
    .await
    .expect("builds");
    check(&gate, "/x", &[]).await.expect("public");
    let events = audit_events_since(from);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].level, tracing::Level::DEBUG);

    let err = portcullis::config::Config::from_str("[gate]\n\naudit_allowed_level = \"loud\"\n")
        .expect_err("refused");
    assert_eq!(err.location().map(|l| l.line), Some(3), "{err}");
    assert_eq!(err.key(), Some("gate.audit_allowed_level"), "{err}");
    assert!(err.message().contains("\"loud\" is not a level"), "{err}");

    let dir = std::env::temp_dir().join(format!("portcullis-obs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("bad-level.toml");
    std::fs::write(&path, "[gate]\naudit_allowed_level = 3\n").expect("write");
    let err = Gate::from_config_file(&path).await.expect_err("refused");
    let shown = err.to_string();
    assert!(shown.contains("bad-level.toml"), "{shown}");
    assert!(shown.contains("audit_allowed_level"), "{shown}");
    std::fs::remove_dir_all(&dir).ok();
}

#[path = "jwt_fixtures/support.rs"]
mod support;

#[test]
fn jwks_fetches_failures_and_key_set_age_by_issuer() {
    const ISS: &str = "https://idp.example";
    let snapshotter = recorded(|| async {
        let key = support::TestKey::ed25519("k1");
        let idp = support::IdpServer::start(support::jwks(&[&key])).await;
        let jwt = portcullis::jwt::JwtAuthenticator::builder()
            .issuer(ISS, portcullis::jwt::KeySource::jwks_url(idp.jwks_url()))
            .audience("api")
            .http_client(support::client())
            .build()
            .expect("jwt");
        let gate = Gate::builder()
            .authenticator(jwt.clone())
            .build()
            .expect("gate");
        let claims = support::claims(ISS);
        assert_eq!(
            support::bearer(&gate, &key.token(&claims)).await.status,
            200
        );
        idp.set_mode(support::Mode::Fail);
        jwt.refresh_keys().await.expect_err("the provider is down");
        // The last good keys still serve.
        assert_eq!(
            support::bearer(&gate, &key.token(&claims)).await.status,
            200
        );
        assert_eq!(jwt.key_fetches(), 2);
    });
    let values = values(&snapshotter);
    let by_issuer = |name: &str| {
        let labels: Labels = [("issuer".to_owned(), ISS.to_owned())]
            .into_iter()
            .collect();
        values.get(&(name.to_owned(), labels)).copied()
    };
    assert_eq!(by_issuer("portcullis_jwks_fetches_total"), Some(2.0));
    assert_eq!(by_issuer("portcullis_jwks_fetch_failures_total"), Some(1.0));
    let age = by_issuer("portcullis_jwks_key_set_age_seconds").expect("an age");
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(
        decisions(&values),
        [(triple("jwt", "allowed", "none"), 2)]
            .into_iter()
            .collect()
    );
}

/// An introspection endpoint on 127.0.0.1: `good` is active, `down` is a 502, anything else
/// inactive.
async fn introspection_endpoint() -> String {
    use axum::routing::post;
    async fn answer(
        axum::Form(form): axum::Form<BTreeMap<String, String>>,
    ) -> Result<axum::Json<serde_json::Value>, http::StatusCode> {
        match form.get("token").map(String::as_str) {
            Some("good") => Ok(axum::Json(serde_json::json!({
                "active": true, "sub": "alice", "aud": "api", "token_type": "Bearer",
                "exp": support::now() + 300,
            }))),
            Some("down") => Err(http::StatusCode::BAD_GATEWAY),
            _ => Ok(axum::Json(serde_json::json!({ "active": false }))),
        }
    }
    let app = axum::Router::new().route("/introspect", post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/introspect", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

#[test]
fn introspection_calls_by_result_and_cache_hits() {
    let snapshotter = recorded(|| async {
        let url = introspection_endpoint().await;
        let introspection = portcullis::jwt::IntrospectionAuthenticator::builder(
            &url,
            portcullis::jwt::ClientAuth::basic("client", portcullis::SecretString::new("secret")),
        )
        .audiences(["api"])
        .cache(Duration::from_secs(60), 100)
        .http_client(support::client())
        .build()
        .expect("introspection");
        let gate = Gate::builder()
            .authenticator(introspection)
            .build()
            .expect("gate");
        for (token, status) in [("good", 200), ("good", 200), ("nope", 401), ("nope", 401)] {
            assert_eq!(
                support::bearer(&gate, token).await.status,
                status,
                "{token}"
            );
        }
        assert_eq!(support::bearer(&gate, "down").await.status, 503);
    });
    let values = values(&snapshotter);
    let calls = |result: &str| {
        let labels: Labels = [("result".to_owned(), result.to_owned())]
            .into_iter()
            .collect();
        values
            .get(&("portcullis_introspection_calls_total".to_owned(), labels))
            .copied()
    };
    assert_eq!(calls("active"), Some(1.0));
    assert_eq!(calls("inactive"), Some(1.0));
    assert_eq!(calls("error"), Some(1.0));
    assert_eq!(
        values
            .get(&(
                "portcullis_introspection_cache_hits_total".to_owned(),
                Labels::new()
            ))
            .copied(),
        Some(2.0)
    );
    assert_eq!(
        decisions(&values),
        [
            (triple("introspection", "allowed", "none"), 2),
            (
                triple("introspection", "refused", "introspection_inactive"),
                2
            ),
            (triple("introspection", "refused", "keys_unavailable"), 1),
        ]
        .into_iter()
        .collect()
    );
}
