//! API key checks through the whole Gate.
//!
//! Group `api_key_memory`: one key among 1,000,000 in the in-memory store, warm (positive cache)
//! and cold (cache off: a store lookup per request), next to the floor of the cryptography a
//! check must do (HMAC-SHA256 of the secret under the pepper, and a constant-time compare).
//! Group `api_key_sqlite` (and `api_key_postgres` when a server answers at `PORTCULLIS_TEST_PG`
//! or `postgres://postgres@127.0.0.1:5432/test`): warm and cold against a real database.
//!
//! Run with `cargo bench --bench api_key -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use hmac::{Hmac, Mac};
use http::request::Parts;
use portcullis::store::MemoryApiKeyStore;
use portcullis::store::{ApiKeyStore, open_store};
use portcullis::{ApiKeys, Gate, NewApiKey, RequestView, SecretString};
use sha2::Sha256;

const PEPPER: &str = "bench-pepper-0123456789-abcdefghijklmnopqrstuvwxyz";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

fn manager(store: Arc<dyn ApiKeyStore>, ttl: Duration) -> ApiKeys {
    ApiKeys::builder(store, SecretString::new(PEPPER))
        .cache_ttl(ttl)
        .last_used_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("valid settings")
}

fn request(key: &str) -> Parts {
    let (parts, ()) = http::Request::get("/x")
        .header("x-api-key", key)
        .body(())
        .expect("valid request")
        .into_parts();
    parts
}

/// Creates `count` keys in `store`; returns the last one.
/// Creates `count` keys; the last one's full text, and every id (to delete afterwards).
fn fill(
    rt: &tokio::runtime::Runtime,
    store: Arc<dyn ApiKeyStore>,
    count: usize,
) -> (String, Vec<String>) {
    let keys = manager(store, Duration::ZERO);
    rt.block_on(async {
        let mut last = String::new();
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let issued = keys
                .create(
                    NewApiKey::new(format!("owner{}", i % 1000))
                        .with_expires_in(Duration::from_secs(86_400)),
                )
                .await
                .expect("created");
            last = issued.key().expose_secret().to_owned();
            ids.push(issued.id().to_owned());
        }
        (last, ids)
    })
}

fn bench_store(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    store: Arc<dyn ApiKeyStore>,
    key: &str,
    floor: bool,
) {
    let parts = request(key);
    let view = RequestView::from_parts(&parts);
    let gate_with = |ttl| {
        Gate::builder()
            .authenticator(manager(Arc::clone(&store), ttl).authenticator())
            .build()
            .expect("valid gate")
    };
    let (warm, cold) = (
        gate_with(Duration::from_secs(3600)),
        gate_with(Duration::ZERO),
    );
    for gate in [&warm, &cold] {
        assert!(
            matches!(rt.block_on(gate.check(&view)), Ok(Some(_))),
            "the bench key is valid"
        );
    }
    let mut group = c.benchmark_group(group);
    if floor {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(PEPPER.as_bytes()).expect("any key length");
        let expected = [7u8; 32];
        group.bench_function("floor/hmac-sha256 + ct compare", |b| {
            b.iter(|| {
                let mut mac = mac.clone();
                mac.update(black_box(key.as_bytes()));
                let digest: [u8; 32] = mac.finalize().into_bytes().into();
                black_box(bool::from(subtle::ConstantTimeEq::ct_eq(
                    &digest[..],
                    &expected[..],
                )))
            })
        });
    }
    group.bench_function("gate/warm", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(warm.check(&view).await) })
    });
    group.bench_function("gate/cold", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(cold.check(&view).await) })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let rt = runtime();

    let memory: Arc<dyn ApiKeyStore> = Arc::new(MemoryApiKeyStore::new());
    let (key, _) = fill(&rt, Arc::clone(&memory), 1_000_000);
    bench_store(&mut criterion, &rt, "api_key_memory", memory, &key, true);

    let path = std::env::temp_dir().join(format!("portcullis-bench-{}.db", std::process::id()));
    let sqlite = rt
        .block_on(open_store(&format!("sqlite://{}", path.display())))
        .expect("sqlite opens")
        .api_keys;
    let (key, _) = fill(&rt, Arc::clone(&sqlite), 10_000);
    bench_store(&mut criterion, &rt, "api_key_sqlite", sqlite, &key, false);
    let _ = std::fs::remove_file(&path);

    let pg_url = std::env::var("PORTCULLIS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match rt.block_on(open_store(&pg_url)) {
        Ok(stores) => {
            let (key, ids) = fill(&rt, Arc::clone(&stores.api_keys), 10_000);
            bench_store(
                &mut criterion,
                &rt,
                "api_key_postgres",
                Arc::clone(&stores.api_keys),
                &key,
                false,
            );
            // The database outlives the run: leave it as it was.
            rt.block_on(async {
                for id in &ids {
                    let _ = stores.api_keys.delete(id).await;
                }
            });
        }
        Err(err) => println!("SKIPPED api_key_postgres: {err}"),
    }
    criterion.final_summary();
}
