//! Remote key sets against a real JWKS server on 127.0.0.1 that counts every fetch: rotation
//! without restart, the unknown-`kid` cooldown under a flood, stale-if-error, 503 before the
//! first successful fetch, discovery's exact issuer check, and the fetch limits.
#![cfg(feature = "jwt")]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::time::{Duration, Instant};

use portcullis::Gate;
use portcullis::jwt::{JwksCacheConfig, JwtAuthenticator, KeySource, TokenErrorKind};
use rand::Rng;
use serde_json::json;
use support::{IdpServer, Mode, TestKey, b64, bearer, claims, client, jwks};

const ISS: &str = "https://idp.example";

fn cache(cooldown_ms: u64, refresh_ms: u64, retry_ms: u64) -> JwksCacheConfig {
    JwksCacheConfig::default()
        .with_refresh_interval(Duration::from_millis(refresh_ms))
        .with_unknown_kid_cooldown(Duration::from_millis(cooldown_ms))
        .with_retry_interval(Duration::from_millis(retry_ms))
        .with_fetch_timeout(Duration::from_millis(500))
        .with_max_response_size(64 * 1024)
}

fn gate(idp: &IdpServer, config: JwksCacheConfig) -> (Gate, JwtAuthenticator) {
    let jwt = JwtAuthenticator::builder()
        .issuer(ISS, KeySource::jwks_url(idp.jwks_url()))
        .audience("api")
        .jwks_cache(config)
        .http_client(client())
        .build()
        .unwrap();
    (
        Gate::builder().authenticator(jwt.clone()).build().unwrap(),
        jwt,
    )
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}

#[tokio::test]
async fn keys_rotate_without_restart() {
    let old = TestKey::rsa(0, "2024-old");
    let new = TestKey::es256("2025-new");
    let idp = IdpServer::start(jwks(&[&old])).await;
    let (gate, _) = gate(&idp, cache(200, 800, 50));
    assert_eq!(bearer(&gate, &old.token(&claims(ISS))).await.status, 200);
    assert_eq!(idp.jwks_fetches(), 1);

    // The provider publishes the new key; a token with its kid makes the cache look again (once
    // the cooldown since the last fetch has passed).
    idp.set_jwks(jwks(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(bearer(&gate, &new.token(&claims(ISS))).await.status, 200);
    assert_eq!(idp.jwks_fetches(), 2);
    assert_eq!(bearer(&gate, &old.token(&claims(ISS))).await.status, 200);

    // The old key is withdrawn; the periodic refresh drops it.
    idp.set_jwks(jwks(&[&new]));
    tokio::time::sleep(Duration::from_millis(850)).await;
    assert_eq!(bearer(&gate, &new.token(&claims(ISS))).await.status, 200);
    let old_token = old.token(&claims(ISS));
    assert!(
        eventually(Duration::from_secs(3), async || bearer(&gate, &old_token)
            .await
            .status
            == 401)
        .await,
        "the withdrawn key still verifies"
    );
    assert!(idp.jwks_fetches() >= 3);
}

/// 10,000 tokens with random unknown `kid`s, twice: all at once right after a fetch (within one
/// cooldown: no fetch), and paced over one cooldown from half a cooldown after a fetch (spanning
/// one cooldown boundary: exactly one fetch). Each flood prints its figures (`--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_flood_fetches_at_most_once_per_cooldown() {
    const TOKENS: usize = 10_000;
    const BATCHES: usize = 100;
    let key = TestKey::rsa(0, "real");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let cooldown = Duration::from_secs(5);
    // 10,000 requests in flight on two threads (debug build) can delay the one fetch.
    let config = cache(5000, 600_000, 50).with_fetch_timeout(Duration::from_secs(10));
    let (gate, jwt) = gate(&idp, config);
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);
    assert_eq!(idp.jwks_fetches(), 1);
    let payload = b64(claims(ISS).to_string());
    let token = move || {
        let kid: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(16)
            .map(char::from)
            .collect();
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}).to_string();
        format!("{}.{payload}.{}", b64(header), b64("not a signature"))
    };
    // Sends the tokens in `BATCHES` batches, `pause` apart; every one must be refused as an
    // invalid token. Returns when the last answer came.
    let flood = async |pause: Duration| {
        let mut tasks = tokio::task::JoinSet::new();
        for batch in 0..BATCHES {
            if batch > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            for _ in 0..TOKENS / BATCHES {
                let (gate, token) = (gate.clone(), token());
                tasks.spawn(async move { bearer(&gate, &token).await });
            }
        }
        while let Some(answer) = tasks.join_next().await {
            let answer = answer.unwrap();
            assert_eq!(answer.status, 401, "{answer:?}");
            assert_eq!(answer.bearer_error().as_deref(), Some("invalid_token"));
        }
        Instant::now()
    };
    // The most fetches the cooldown allows between a fetch that started after `since` and `end`:
    // one per whole cooldown.
    let allowed = |since: Instant, end: Instant| {
        (end.duration_since(since).as_millis() / cooldown.as_millis()) as usize
    };

    // 1. All at once, right after a fetch: within one cooldown.
    let since = Instant::now();
    jwt.refresh_keys().await.unwrap();
    let before = idp.jwks_fetches();
    let started = Instant::now();
    let end = flood(Duration::ZERO).await;
    let fetched = idp.jwks_fetches() - before;
    eprintln!(
        "JWKS flood within one cooldown ({cooldown:?}): {TOKENS} random kids in {:?}, \
         {fetched} fetches (at most {} allowed)",
        end - started,
        allowed(since, end)
    );
    assert!(fetched <= allowed(since, end), "{fetched} fetches");

    // 2. Paced over one cooldown, from half a cooldown after a fetch: across one boundary.
    let since = Instant::now();
    jwt.refresh_keys().await.unwrap();
    let fetched_at = Instant::now();
    let before = idp.jwks_fetches();
    tokio::time::sleep(cooldown / 2).await;
    let started = Instant::now();
    let end = flood(cooldown / BATCHES as u32).await;
    let fetched = idp.jwks_fetches() - before;
    eprintln!(
        "JWKS flood across a cooldown boundary: {TOKENS} random kids over {:?} \
         (from {:?} to {:?} after the last fetch), {fetched} fetches (at most {} allowed)",
        end - started,
        started - fetched_at,
        end - fetched_at,
        allowed(since, end)
    );
    assert!(fetched <= allowed(since, end), "{fetched} fetches");
    // The tokens kept coming past the boundary: the first one after it fetched.
    assert!(fetched >= 1, "no fetch after the cooldown ended");

    // The real key kept working throughout.
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_fetch() {
    let key = TestKey::es256("k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let (gate, _) = gate(&idp, cache(30_000, 600_000, 5_000));
    let token = key.token(&claims(ISS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (gate, token) = (gate.clone(), token.clone());
        tasks.spawn(async move { bearer(&gate, &token).await.status });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn the_last_good_keys_serve_while_the_jwks_fails() {
    let key = TestKey::ed25519("k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let (gate, _) = gate(&idp, cache(100, 200, 50));
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);

    idp.set_mode(Mode::Fail);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Stale: a refresh is attempted in the background and fails; the keys keep serving.
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);
    assert!(eventually(Duration::from_secs(2), async || idp.jwks_fetches() >= 2).await);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);
    }
    // An unknown kid while the provider is down is still a bad token, not an outage.
    let stranger = TestKey::es256("k2");
    assert_eq!(
        bearer(&gate, &stranger.token(&claims(ISS))).await.status,
        401
    );

    idp.set_mode(Mode::Serve);
    idp.set_jwks(jwks(&[&stranger]));
    let token = stranger.token(&claims(ISS));
    assert!(
        eventually(Duration::from_secs(2), async || bearer(&gate, &token)
            .await
            .status
            == 200)
        .await
    );
}

/// Issue #16 item 4: stale-if-error has a limit. Past `max_stale` after the last successful
/// fetch, the last good keys stop verifying (503), so a key the provider removed does not keep
/// working for as long as the provider is unreachable; the first good fetch ends it.
#[tokio::test]
async fn past_max_stale_the_last_good_keys_stop_serving() {
    let key = TestKey::es256("k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let max_stale = Duration::from_millis(700);
    let (gate, jwt) = gate(&idp, cache(100, 100, 50).with_max_stale(max_stale));
    let token = key.token(&claims(ISS));
    assert_eq!(bearer(&gate, &token).await.status, 200);
    let loaded = Instant::now();
    idp.set_mode(Mode::Fail);
    // Within max_stale: background refreshes fail, the keys keep serving.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(bearer(&gate, &token).await.status, 200);
    assert!(eventually(Duration::from_secs(2), async || idp.jwks_fetches() >= 2).await);
    // Past it: an outage (503 with Retry-After, no challenge), not a valid token.
    tokio::time::sleep(max_stale.saturating_sub(loaded.elapsed()) + Duration::from_millis(50))
        .await;
    let answer = bearer(&gate, &token).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.retry_after.is_some(), "{answer:?}");
    assert!(answer.challenge.is_empty(), "{answer:?}");
    assert_eq!(
        jwt.verify(&token).await.unwrap_err().kind(),
        TokenErrorKind::Unavailable
    );
    // The provider answers again: the next fetch (after the retry interval) ends the outage.
    idp.set_mode(Mode::Serve);
    assert!(
        eventually(Duration::from_secs(2), async || bearer(&gate, &token)
            .await
            .status
            == 200)
        .await
    );
}

/// The same through discovery, set with the builder method: a discovery document that still
/// answers does not count as a successful fetch while the JWKS it names fails.
#[tokio::test]
async fn max_stale_counts_from_the_last_full_fetch_through_discovery() {
    let key = TestKey::rsa(1, "d1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let issuer = idp.issuer();
    let jwt = JwtAuthenticator::builder()
        .issuer(issuer.clone(), KeySource::discovery())
        .audience("api")
        .jwks_cache(cache(100, 100, 50))
        .jwks_max_stale(Duration::from_millis(600))
        .http_client(client())
        .build()
        .unwrap();
    let gate = Gate::builder().authenticator(jwt.clone()).build().unwrap();
    let token = key.token(&claims(&issuer));
    assert_eq!(bearer(&gate, &token).await.status, 200);
    idp.set_mode(Mode::Fail);
    let mut last = 200;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = bearer(&gate, &token).await.status;
    }
    assert_eq!(last, 503);
    // A failed JWKS fetch forgets the discovered URL, so discovery was asked again, and
    // answered, while the keys went stale.
    assert!(idp.discovery_fetches() >= 2, "{}", idp.discovery_fetches());
    // max_stale must outlast the refresh interval.
    let err = JwtAuthenticator::builder()
        .issuer(issuer, KeySource::discovery())
        .audience("api")
        .jwks_max_stale(Duration::from_secs(60))
        .http_client(client())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("jwks.max_stale"));
}

#[tokio::test]
async fn keys_never_loaded_answer_503_until_the_jwks_recovers() {
    let key = TestKey::es256("k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    idp.set_mode(Mode::Fail);
    let (gate, jwt) = gate(&idp, cache(100, 60_000, 300));
    let token = key.token(&claims(ISS));
    let answer = bearer(&gate, &token).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.retry_after.is_some(), "{answer:?}");
    assert!(
        answer.challenge.is_empty(),
        "an outage is not an invalid token: {answer:?}"
    );
    assert_eq!(
        jwt.verify(&token).await.unwrap_err().kind(),
        TokenErrorKind::Unavailable
    );
    // Within the retry interval: no new fetch, still 503.
    assert_eq!(bearer(&gate, &token).await.status, 503);
    assert_eq!(idp.jwks_fetches(), 1);

    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(bearer(&gate, &token).await.status, 200);
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_hanging_jwks_times_out_into_503() {
    let key = TestKey::es256("k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    idp.set_mode(Mode::Hang);
    let (gate, _) = gate(&idp, cache(100, 60_000, 300));
    let started = Instant::now();
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_oversized_or_useless_jwks_is_refused() {
    let key = TestKey::es256("k1");
    let mut big = json!({"keys": [key.jwk()]});
    big["padding"] = json!("x".repeat(100 * 1024));
    let idp = IdpServer::start(big.to_string()).await;
    let (gate, _) = gate(&idp, cache(100, 60_000, 50));
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 503);

    let useless = json!({"keys": [
        {"kty": "RSA", "kid": "no-n", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": "AA", "y": "AA"},
    ]});
    idp.set_jwks(useless.to_string());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 503);

    // One broken key does not spoil the set.
    let mut keys = useless["keys"].as_array().unwrap().clone();
    keys.push(key.jwk());
    idp.set_jwks(json!({ "keys": keys }).to_string());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(bearer(&gate, &key.token(&claims(ISS))).await.status, 200);
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer_exactly() {
    let key = TestKey::rsa(1, "d1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let issuer = idp.issuer();
    let jwt = JwtAuthenticator::builder()
        .issuer(issuer.clone(), KeySource::discovery())
        .audience("api")
        .http_client(client())
        .build()
        .unwrap();
    jwt.refresh_keys().await.expect("discovery works");
    let principal = jwt.verify(&key.token(&claims(&issuer))).await.unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));

    // A document naming another issuer (here: the same with a trailing slash) is refused, and
    // its jwks_uri is never fetched.
    let other = IdpServer::start(jwks(&[&key])).await;
    other.set_discovery_issuer(&format!("{}/", other.issuer()));
    let jwt = JwtAuthenticator::builder()
        .issuer(other.issuer(), KeySource::discovery())
        .audience("api")
        .http_client(client())
        .build()
        .unwrap();
    let err = jwt.refresh_keys().await.unwrap_err();
    assert!(err.to_string().contains("not"), "{err}");
    let verdict = jwt.verify(&key.token(&claims(&other.issuer()))).await;
    assert_eq!(verdict.unwrap_err().kind(), TokenErrorKind::Unavailable);
    assert_eq!(other.jwks_fetches(), 0);

    // Discovery needs an https issuer (or http on loopback).
    let err = JwtAuthenticator::builder()
        .issuer("http://sso.example.com", KeySource::discovery())
        .audience("api")
        .http_client(client())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("issuers[0].issuer"));
}

/// The default client (feature `jwks`): the same server, its limits enforced by reqwest.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn the_default_client_fetches_and_enforces_its_limits() {
    use portcullis::jwt::{FetchErrorKind, FetchLimits, HttpClient, ReqwestClient};
    let key = TestKey::es256("k1");
    let idp = IdpServer::start(jwks(&[&key])).await;
    let jwt = JwtAuthenticator::builder()
        .issuer(idp.issuer(), KeySource::discovery())
        .audience("api")
        .build()
        .unwrap();
    assert_eq!(
        jwt.verify(&key.token(&claims(&idp.issuer())))
            .await
            .unwrap()
            .subject(),
        "alice"
    );

    let client = ReqwestClient::new().unwrap();
    let get = |url: String| http::Request::get(url).body(bytes::Bytes::new()).unwrap();
    let small = FetchLimits::new(Duration::from_secs(2), 16);
    let err = client.send(get(idp.jwks_url()), small).await.unwrap_err();
    assert_eq!(err.kind(), FetchErrorKind::TooLarge);
    idp.set_mode(Mode::Hang);
    let quick = FetchLimits::new(Duration::from_millis(200), 1 << 16);
    let err = client.send(get(idp.jwks_url()), quick).await.unwrap_err();
    assert_eq!(err.kind(), FetchErrorKind::Timeout);
}
