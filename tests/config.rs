//! TOML configuration: the shipped example builds, each class of mistake is reported with line,
//! column and key, and a hot reload under load never shows a half-applied configuration.
#![cfg(all(
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection"
))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::StatusCode;
use portcullis::config::{Config, Reloader};
use portcullis::{ConfigError, Gate, RequestView};

fn error(text: &str) -> ConfigError {
    Config::from_str(text).expect_err("config should be refused")
}

fn assert_error(text: &str, line: usize, key: &str, message: &str) {
    let err = error(text);
    let location = err
        .location()
        .unwrap_or_else(|| panic!("no location in {err}"));
    assert_eq!(location.line, line, "{err}");
    assert_eq!(err.key(), Some(key), "{err}");
    assert!(err.message().contains(message), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("{line}:")), "{shown}");
    assert!(shown.contains(key), "{shown}");
}

#[tokio::test]
async fn shipped_example_is_valid_and_builds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/portcullis.toml");
    let config = Config::from_file(path).expect("example config is valid");
    config.build().await.expect("example config builds");
}

#[test]
fn invalid_cidr_names_line_and_key() {
    assert_error(
        "[gate]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
        2,
        "gate.trusted_proxies[1]",
        "10.0.0.0/33",
    );
    assert_error(
        "[policies.p]\nip_allow = [\"not-an-ip\"]\n",
        2,
        "policies.p.ip_allow[0]",
        "not-an-ip",
    );
}

/// A scheme name that is not built in is kept until the Gate is built (an authenticator added
/// with `Config::authenticator` may check it), then refused with its line and key.
async fn assert_build_error(text: &str, line: usize, key: &str, message: &str) {
    let config = Config::from_str(text).expect("the names are well-formed");
    let err = config
        .build()
        .await
        .expect_err("no authenticator checks the name");
    assert_eq!(err.location().map(|l| l.line), Some(line), "{err}");
    assert_eq!(err.key(), Some(key), "{err}");
    assert!(err.message().contains(message), "{err}");
}

#[tokio::test]
async fn unknown_scheme_names_line_and_key() {
    assert_build_error(
        "[policies.p]\n\nschemes_deny = [\"basic\", \"digest\"]\n",
        3,
        "policies.p.schemes_deny[1]",
        "unknown scheme `digest`",
    )
    .await;
    // A name that could not name any scheme is refused at once.
    assert_error(
        "[policies.p]\nschemes_allow = [\"Digest Auth\"]\n",
        2,
        "policies.p.schemes_allow[0]",
        "scheme name",
    );
}

#[test]
fn route_with_unknown_policy_names_line_and_key() {
    let text = "[policies.admins]\ngroups_any = [\"admin\"]\n\n[[routes]]\npath = \"/a\"\npolicy = \"public\"\n\n[[routes]]\npath = \"/b\"\npolicy = \"admin\"\n";
    assert_error(text, 10, "routes[1].policy", "unknown policy `admin`");
    assert!(error(text).message().contains("defined: admins"));
}

#[tokio::test]
async fn unparseable_cap_names_line_and_key() {
    assert_error(
        "[policies.p]\nmax_lifetime = { api_key = \"ninety days\" }\n",
        2,
        "policies.p.max_lifetime.api_key",
        "not a duration",
    );
    assert_build_error(
        "[policies.p]\nmax_lifetime = { digest = \"1d\" }\n",
        2,
        "policies.p.max_lifetime.digest",
        "unknown scheme",
    )
    .await;
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let err = error("[gate]\ndefault_policy = \"public\"\ntrusted_proxy = []\n");
    assert_eq!(err.location().map(|l| l.line), Some(3), "{err}");
    assert!(err.message().contains("trusted_proxy"), "{err}");
    let err = error("[gate]\nmax_forwarded_entries = \"many\"\n");
    assert_eq!(err.key(), Some("gate.max_forwarded_entries"), "{err}");
    assert_eq!(err.location().map(|l| l.line), Some(2), "{err}");
    let err = error("[policies.p]\nkind = \"robot\"\n");
    assert_eq!(err.key(), Some("policies.p.kind"), "{err}");
}

#[test]
fn unknown_forwarded_header_names_line_and_key() {
    assert_error(
        "[gate]\ntrusted_proxies = [\"10.0.0.0/8\"]\nforwarded_header = \"x-real-ip\"\n",
        3,
        "gate.forwarded_header",
        "unknown forwarding header `x-real-ip` (use \"x-forwarded-for\" or \"forwarded\")",
    );
    // Names are exact: the header's spelling on the wire is not a config value.
    assert_error(
        "[gate]\nforwarded_header = \"X-Forwarded-For\"\n",
        2,
        "gate.forwarded_header",
        "unknown forwarding header",
    );
    let err = error("[gate]\nforwarded_header = [\"forwarded\"]\n");
    assert_eq!(err.key(), Some("gate.forwarded_header"), "{err}");
    assert_eq!(err.location().map(|l| l.line), Some(2), "{err}");
}

/// Behind a trusted proxy, a request carrying both headers: the one chosen names the client
/// (allowed only from the office range), the other is the client's forgery.
async fn via_proxy(
    gate: &Gate,
    xff: &str,
    forwarded: &str,
) -> (String, StatusCode, Option<String>) {
    let (parts, ()) = http::Request::get("/x")
        .header("x-forwarded-for", xff)
        .header("forwarded", forwarded)
        .body(())
        .expect("request")
        .into_parts();
    let peer = "10.0.0.1:443".parse().expect("peer");
    let request = RequestView::from_parts(&parts).with_peer(Some(peer));
    let trace = gate.explain(&request).await.to_string();
    let (status, challenge) = match gate.check(&request).await {
        Ok(_) => (StatusCode::OK, None),
        Err(rejection) => {
            let response = gate.respond(&rejection);
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii").to_owned());
            (response.status(), challenge)
        }
    };
    (trace, status, challenge)
}

#[tokio::test]
async fn forwarded_header_chooses_the_only_header_read() {
    let config = |choice: &str| {
        format!(
            "[gate]\ntrusted_proxies = [\"10.0.0.0/8\"]\n{choice}default_policy = \"office\"\n\n[policies.office]\nip_allow = [\"192.0.2.0/24\"]\n"
        )
    };
    let build = |text: String| async move {
        Config::from_str(&text)
            .expect("valid")
            .build()
            .await
            .expect("builds")
    };
    for choice in ["", "forwarded_header = \"x-forwarded-for\"\n"] {
        let gate = build(config(choice)).await;
        // The client forges an office address in Forwarded; the proxy appended what it saw.
        let (trace, status, challenge) = via_proxy(&gate, "198.51.100.7", "for=192.0.2.10").await;
        assert!(trace.contains("resolved to 198.51.100.7"), "{trace}");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{trace}");
        assert_eq!(challenge, None, "no authenticator, no challenge");
        let (trace, status, _) = via_proxy(&gate, "192.0.2.10", "for=198.51.100.7").await;
        assert!(trace.contains("resolved to 192.0.2.10"), "{trace}");
        assert_eq!(status, StatusCode::OK, "{trace}");
    }
    let gate = build(config("forwarded_header = \"forwarded\"\n")).await;
    let (trace, status, challenge) = via_proxy(&gate, "192.0.2.10", "for=198.51.100.7").await;
    assert!(trace.contains("resolved to 198.51.100.7"), "{trace}");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{trace}");
    assert_eq!(challenge, None, "no authenticator, no challenge");
    let (trace, status, _) = via_proxy(&gate, "198.51.100.7", "for=\"192.0.2.10:4711\"").await;
    assert!(trace.contains("resolved to 192.0.2.10"), "{trace}");
    assert_eq!(status, StatusCode::OK, "{trace}");
}

#[test]
fn syntax_errors_have_line_and_column() {
    let err = error("[gate]\ndefault_policy = \"public\n");
    let location = err.location().expect("location");
    assert_eq!(location.line, 2, "{err}");
    assert!(location.column > 1, "{err}");
}

#[test]
fn other_semantic_mistakes_are_refused() {
    assert_error(
        "[[routes]]\npath = \"admin\"\npolicy = \"public\"\n",
        2,
        "routes[0].path",
        "must start with",
    );
    assert_error(
        "[[routes]]\npath = \"/a\"\nmethods = [\"GE T\"]\npolicy = \"public\"\n",
        3,
        "routes[0].methods[0]",
        "not an HTTP method",
    );
    assert_error(
        "[policies.a]\nall = [\"b\"]\n[policies.b]\nall = [\"a\"]\n",
        4,
        "policies.b.all[0]",
        "refers to itself",
    );
    let err = error("[policies.empty]\n");
    assert_eq!(err.key(), Some("policies.empty"), "{err}");
    assert_error(
        "[basic]\n[[basic.users]]\nname = \"a\"\npassword_hash = \"plaintext\"\n",
        4,
        "basic.users[0].password_hash",
        "not a PHC string",
    );
    let err = error("[basic.hashing]\nmemory_kib = 1\n");
    assert_eq!(err.key(), Some("basic.hashing"), "{err}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("portcullis-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[routes]]\npath = \"/x\"\npolicy = \"nope\"\n").expect("write");
    let err = Config::from_file(&path).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:", path.display())),
        "{err}"
    );
    let missing = Config::from_file(dir.join("missing.toml")).expect_err("refused");
    assert!(missing.to_string().contains("missing.toml"), "{missing}");
}

async fn anonymous_status(gate: &Gate) -> (StatusCode, Option<String>) {
    let (parts, ()) = http::Request::get("/x")
        .body(())
        .expect("request")
        .into_parts();
    match gate.check(&RequestView::from_parts(&parts)).await {
        Ok(_) => (StatusCode::OK, None),
        Err(rejection) => {
            let response = gate.respond(&rejection);
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("ascii").to_owned());
            (response.status(), challenge)
        }
    }
}

/// Config A lets anyone reach /x and names realm "A"; config B closes /x and names realm "B".
/// Under load, the file is rewritten and [`Reloader::reload`] reads it again, alternately A and
/// B (and [`Reloader::reload_config`] with the other one in between). A half-applied swap would
/// show a 401 challenging for realm "A". Each reload must be seen to take effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_is_atomic() {
    let config = |realm: &str, policy: &str| {
        format!(
            "[basic]\nrealm = \"{realm}\"\n[basic.hashing]\nmemory_kib = 64\niterations = 1\ndangerous_weak_hashing = true\n\n[[routes]]\npath = \"/x\"\npolicy = \"{policy}\"\n"
        )
    };
    let (text_a, text_b) = (config("A", "public"), config("B", "authenticated"));
    let parsed_a = Config::from_str(&text_a).expect("A");
    let dir = std::env::temp_dir().join(format!("portcullis-hot-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gate.toml");
    std::fs::write(&path, &text_a).expect("write");
    let reloader = Reloader::from_file(&path).await.expect("loads");
    let handle = reloader.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (handle, stop, seen) = (handle.clone(), stop.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let gate = handle.gate();
                match anonymous_status(&gate).await {
                    (StatusCode::OK, None) => seen[0].fetch_add(1, Ordering::Relaxed),
                    (StatusCode::UNAUTHORIZED, Some(challenge)) => {
                        assert_eq!(challenge, r#"Basic realm="B", charset="UTF-8""#);
                        seen[1].fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("half-applied configuration: {other:?}"),
                };
                tokio::task::yield_now().await;
            }
        }));
    }
    let total = |seen: &[AtomicUsize; 2]| {
        seen.iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    let mut reloads = 0;
    for i in 0..100 {
        if i % 2 == 0 {
            std::fs::write(&path, &text_b).expect("write B");
            reloader.reload().await.expect("reload B from the file");
            assert_eq!(
                anonymous_status(&handle.gate()).await.0,
                StatusCode::UNAUTHORIZED
            );
        } else if i % 4 == 1 {
            reloader.reload_config(&parsed_a).await.expect("reload A");
            assert_eq!(anonymous_status(&handle.gate()).await.0, StatusCode::OK);
        } else {
            std::fs::write(&path, &text_a).expect("write A");
            reloader.reload().await.expect("reload A from the file");
            assert_eq!(anonymous_status(&handle.gate()).await.0, StatusCode::OK);
        }
        reloads += 1;
        // Let some requests run on this configuration before the next swap.
        let before = total(&seen);
        while total(&seen) < before + 2 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(reloads, 100);
    assert!(seen[0].load(Ordering::Relaxed) > 0 && seen[1].load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn failed_reload_keeps_the_old_configuration() {
    let dir = std::env::temp_dir().join(format!("portcullis-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gate.toml");
    std::fs::write(&path, "[[routes]]\npath = \"/x\"\npolicy = \"public\"\n").expect("write");
    let reloader = Reloader::from_file(&path).await.expect("loads");
    let handle = reloader.handle();
    assert_eq!(anonymous_status(&handle.gate()).await.0, StatusCode::OK);
    std::fs::write(&path, "[[routes]]\npath = \"/x\"\npolicy = \"missing\"\n").expect("write");
    let err = reloader.reload().await.expect_err("bad reload refused");
    assert!(err.to_string().contains("routes[0].policy"), "{err}");
    assert_eq!(
        anonymous_status(&handle.gate()).await.0,
        StatusCode::OK,
        "old config kept"
    );
    std::fs::write(
        &path,
        "[[routes]]\npath = \"/x\"\npolicy = \"authenticated\"\n",
    )
    .expect("write");
    reloader.reload().await.expect("good reload");
    assert_eq!(
        anonymous_status(&handle.gate()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A reload builds a new Gate but keeps the in-memory lockout counters while they stay in
/// memory with the same capacity: a reload must not hand a password guesser a fresh allowance.
#[tokio::test]
async fn reload_keeps_memory_lockout_counters() {
    use portcullis::basic::{HashingConfig, HashingPool};
    let pool = HashingPool::new(
        HashingConfig::default()
            .with_memory_kib(64)
            .with_iterations(1),
    )
    .expect("pool");
    let hash = pool
        .hash(&portcullis::SecretString::new(PASSWORD))
        .await
        .expect("hash");
    let dir =
        std::env::temp_dir().join(format!("portcullis-reload-lockout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gate.toml");
    let write = |realm: &str, capacity: usize| {
        std::fs::write(
            &path,
            format!(
                "[basic]\nrealm = \"{realm}\"\n[basic.hashing]\nmemory_kib = 64\niterations = 1\ndangerous_weak_hashing = true\n[basic.lockout]\nuser_threshold = 2\nbase_delay = \"60s\"\nmemory_capacity = {capacity}\n\n[[basic.users]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
                hash.expose_phc()
            ),
        )
        .expect("write");
    };
    write("A", 1000);
    let reloader = Reloader::from_file(&path).await.expect("loads");
    let handle = reloader.handle();
    for _ in 0..2 {
        let wrong = answer(&handle.gate(), basic_get("/x", "alice", "wrong")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            wrong.challenge.as_deref(),
            Some(r#"Basic realm="A", charset="UTF-8""#)
        );
    }

    // A new configuration (realm B) is served, and alice is still locked out.
    write("B", 1000);
    reloader.reload().await.expect("reload");
    let locked = answer(&handle.gate(), basic_get("/x", "alice", PASSWORD)).await;
    assert_eq!(
        (locked.status, locked.challenge),
        (StatusCode::TOO_MANY_REQUESTS, None)
    );
    let wait: u64 = locked
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let wrong = answer(&handle.gate(), basic_get("/x", "alice", "wrong")).await;
    assert_eq!(wrong.status, StatusCode::TOO_MANY_REQUESTS);

    // Other counters (another capacity) start empty: alice gets in.
    write("B", 2000);
    reloader.reload().await.expect("reload");
    let fresh = answer(&handle.gate(), basic_get("/x", "alice", PASSWORD)).await;
    assert_eq!(
        (fresh.status, fresh.subject.as_deref()),
        (StatusCode::OK, Some("alice"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn api_keys_section_builds_a_manager_and_authenticator() {
    let pepper = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/example-pepper.txt");
    let text = format!(
        "[api_keys]\npepper_file = \"{pepper}\"\nheader = \"X-Key\"\nmax_lifetime = \"30d\"\n\n[[routes]]\npath = \"/x\"\npolicy = \"authenticated\"\n"
    );
    let services = Config::from_str(&text)
        .expect("valid")
        .build_services()
        .await
        .expect("builds");
    let keys = services.api_keys.expect("api key manager");
    let issued = keys
        .create(
            portcullis::NewApiKey::new("svc").with_expires_in(std::time::Duration::from_secs(3600)),
        )
        .await
        .expect("created");
    let too_long = portcullis::NewApiKey::new("svc")
        .with_expires_in(std::time::Duration::from_secs(31 * 86_400));
    assert!(
        keys.create(too_long).await.is_err(),
        "cap from the file applies"
    );
    let (parts, ()) = http::Request::get("/x")
        .header("x-key", issued.key().expose_secret())
        .body(())
        .expect("request")
        .into_parts();
    let principal = services
        .gate
        .check(&RequestView::from_parts(&parts))
        .await
        .expect("allowed")
        .expect("principal");
    assert_eq!(principal.subject(), "svc");
    assert_eq!(principal.credential_id(), Some(issued.id()));
}

/// A self-served key's owner is read from the `[store]`'s users, wired in by the configuration:
/// its principal gets the owner's groups, and a disabled owner's key is refused.
#[tokio::test]
async fn api_keys_read_self_served_owners_from_the_store() {
    use portcullis::store::{PasswordHash, UserRecord};
    let pepper = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/example-pepper.txt");
    let text = format!(
        "[store]\nurl = \"sqlite::memory:\"\n\n[api_keys]\npepper_file = \"{pepper}\"\n\
         cache_ttl = \"0s\"\n\n[[routes]]\npath = \"/x\"\npolicy = \"authenticated\"\n"
    );
    let services = Config::from_str(&text)
        .expect("valid")
        .build_services()
        .await
        .expect("builds");
    services
        .users
        .create_user(
            UserRecord::new("alice", PasswordHash::new("$argon2id$x")).with_groups(["ops"]),
        )
        .await
        .expect("alice");
    let keys = services.api_keys.expect("api key manager");
    let issued = keys
        .create_self_served(
            portcullis::NewApiKey::new("alice")
                .with_expires_in(std::time::Duration::from_secs(3600)),
            5,
        )
        .await
        .expect("created");
    let (parts, ()) = http::Request::get("/x")
        .header("x-api-key", issued.key().expose_secret())
        .body(())
        .expect("request")
        .into_parts();
    let view = RequestView::from_parts(&parts);
    let check = || services.gate.check(&view);
    let principal = check().await.expect("allowed").expect("principal");
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.groups(), ["ops"]);
    services
        .users
        .set_disabled("alice", true)
        .await
        .expect("disabled");
    let refused = check().await.expect_err("a disabled owner's key");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.detail().contains("owner is disabled"),
        "{}",
        refused.detail()
    );
}

#[tokio::test]
async fn api_keys_mistakes_are_located() {
    assert_error(
        "[api_keys]\nprefix = \"Bad-Prefix\"\n",
        2,
        "api_keys.prefix",
        "",
    );
    assert_error(
        "[api_keys]\nmax_lifetime = \"forever\"\n",
        2,
        "api_keys.max_lifetime",
        "not a duration",
    );
    assert_error("[store]\nurl = \"mysql://db\"\n", 2, "store.url", "mysql");
    let err = Config::from_str("[api_keys]\npepper_env = \"PORTCULLIS_TEST_UNSET_PEPPER\"\n")
        .expect("valid")
        .build()
        .await
        .expect_err("no pepper");
    assert_eq!(err.key(), Some("api_keys.pepper_env"), "{err}");
    assert!(
        err.message().contains("PORTCULLIS_TEST_UNSET_PEPPER"),
        "{err}"
    );
}

#[tokio::test]
async fn jwt_section_builds_a_jwt_authenticator_with_files_relative_to_the_config() {
    use portcullis::jwt::{JwtIssuer, SigningKey};
    let dir = std::env::temp_dir().join(format!("portcullis-jwt-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let secret = b"config-test-hs256-secret-0123456789abcdef";
    std::fs::write(dir.join("hs256.key"), secret).expect("write secret");
    let path = dir.join("gate.toml");
    std::fs::write(
        &path,
        "[jwt]\naudiences = [\"orders\"]\n\n[[jwt.issuers]]\nissuer = \"billing\"\nsecret_file = \"hs256.key\"\nalgorithm = \"HS256\"\n\n[[routes]]\npath = \"/x\"\npolicy = \"authenticated\"\n",
    )
    .expect("write config");
    let gate = Gate::from_config_file(&path).await.expect("builds");
    let issuer = JwtIssuer::builder("billing", SigningKey::hs256(secret).expect("key"))
        .audience("orders")
        .build()
        .expect("issuer");
    let principal = portcullis::Principal::new(
        "alice",
        portcullis::SubjectKind::User,
        portcullis::Scheme::JWT,
    );
    let token = issuer
        .issue(&principal, std::time::Duration::from_secs(60))
        .expect("token");
    let (parts, ()) = http::Request::get("/x")
        .header("authorization", format!("Bearer {}", token.expose_secret()))
        .body(())
        .expect("request")
        .into_parts();
    let who = gate
        .check(&RequestView::from_parts(&parts))
        .await
        .expect("allowed")
        .expect("principal");
    assert_eq!(who.subject(), "alice");
    assert_eq!(who.scheme(), portcullis::Scheme::JWT);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the Gate answers to `request`: the status, the `WWW-Authenticate` and `Retry-After`
/// headers, and the subject when it lets the request through.
struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    retry_after: Option<String>,
    subject: Option<String>,
}

async fn answer(gate: &Gate, request: http::Request<()>) -> Answer {
    let (parts, ()) = request.into_parts();
    let header = |response: &http::Response<String>, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    match gate.check(&RequestView::from_parts(&parts)).await {
        Ok(principal) => Answer {
            status: StatusCode::OK,
            challenge: None,
            retry_after: None,
            subject: principal.map(|p| p.subject().to_owned()),
        },
        Err(rejection) => {
            let response = gate.respond(&rejection);
            Answer {
                status: response.status(),
                challenge: header(&response, "www-authenticate"),
                retry_after: header(&response, "retry-after"),
                subject: None,
            }
        }
    }
}

fn basic_get(path: &str, user: &str, password: &str) -> http::Request<()> {
    http::Request::get(path)
        .header(
            "authorization",
            portcullis::basic::encode_basic(user, password),
        )
        .body(())
        .expect("request")
}

const PASSWORD: &str = "correct horse battery staple";

/// Builds `text` (which must configure `[basic]` with a memory store) and adds alice with the
/// configured (cheap) hashing.
async fn basic_gate(text: &str) -> Gate {
    let services = Config::from_str(text)
        .expect("valid")
        .build_services()
        .await
        .expect("builds");
    services
        .basic
        .expect("basic authenticator")
        .add_user("alice", &portcullis::SecretString::new(PASSWORD), ["staff"])
        .await
        .expect("alice added");
    services.gate
}

const CHEAP_BASIC: &str = "[basic]\nrealm = \"t\"\n[basic.hashing]\nmemory_kib = 64\niterations = 1\ndangerous_weak_hashing = true\n";
const BASIC_CHALLENGE: &str = r#"Basic realm="t", charset="UTF-8""#;

/// A policy under a built-in name would never run: every reference to the name means the
/// built-in. `[policies.public]` with rules must not leave a route open while looking closed.
#[test]
fn built_in_policy_names_cannot_be_redefined() {
    for name in ["public", "authenticated", "anonymous"] {
        let text = format!(
            "[gate]\ndefault_policy = \"{name}\"\n\n[policies.{name}]\ngroups_any = [\"admin\"]\n"
        );
        assert_error(
            &text,
            4,
            &format!("policies.{name}"),
            &format!("`{name}` is a built-in policy"),
        );
    }
    // Inline-table form: the key is located on its own line too.
    assert_error(
        "[policies]\nstaff = { groups_any = [\"staff\"] }\npublic = { ip_allow = [\"10.0.0.0/8\"] }\n",
        3,
        "policies.public",
        "built-in",
    );
}

/// A `[jwt]` section with `extra` settings and one issuer with `issuer`'s key source.
fn jwt_section(extra: &str, issuer: &str) -> String {
    format!(
        "[jwt]\naudiences = [\"a\"]\n{extra}\n[[jwt.issuers]]\nissuer = \"billing\"\n{issuer}\n"
    )
}

/// A secret file that does not exist: mistakes are caught before anything is read.
const MISSING_SECRET: &str = "secret_file = \"missing.key\"";

#[test]
fn jwt_mistakes_are_located_before_any_file_is_read() {
    let jwt = jwt_section;
    // The secret file does not exist: these are caught before anything is read.
    let secret = MISSING_SECRET;
    assert_error(
        &jwt("max_lifetime = \"ninety days\"", secret),
        3,
        "jwt.max_lifetime",
        "not a duration",
    );
    assert_error(
        &jwt("leeway = \"30 s\"", secret),
        3,
        "jwt.leeway",
        "not a duration",
    );
    assert_error(
        &jwt("algorithms = [\"HS256\", \"XS256\"]", secret),
        3,
        "jwt.algorithms[1]",
        "XS256",
    );
    assert_error(
        &jwt("algorithms = [\"RS256\"]", secret),
        4,
        "jwt.issuers[0].algorithm",
        "not in the allowed algorithms",
    );
    assert_error(
        &jwt(
            "",
            "discovery = true\njwks_url = \"https://sso.example.com/jwks\"",
        ),
        4,
        "jwt.issuers[0]",
        "exactly one key source",
    );
    assert_error(
        &jwt(
            "",
            "jwks_url = \"https://sso.example.com/jwks\"\nalgorithm = \"RS256\"",
        ),
        7,
        "jwt.issuers[0].algorithm",
        "go with pem_file or secret_file",
    );
}

/// As above, for a key source's own settings.
#[test]
fn jwt_key_source_mistakes_are_located_before_any_file_is_read() {
    let jwt = jwt_section;
    let secret = MISSING_SECRET;
    // Not written at all: located at the issuer it belongs in.
    assert_error(
        &jwt("", "pem_file = \"missing.pem\""),
        4,
        "jwt.issuers[0].algorithm",
        "needs `algorithm`",
    );
    assert_error(
        &jwt("", "pem_file = \"missing.pem\"\nalgorithm = \"HS256\""),
        7,
        "jwt.issuers[0].algorithm",
        "secret_file, not pem_file",
    );
    assert_error(
        &jwt("", "jwks_url = \"http://sso.example.com/jwks\""),
        6,
        "jwt.issuers[0].jwks_url",
        "",
    );
    assert_error(
        &jwt("[jwt.jwks]\nretry_interval = \"soon\"", secret),
        4,
        "jwt.jwks.retry_interval",
        "not a duration",
    );
    assert_error(
        "[jwt]\naudiences = [\"a\"]\n",
        1,
        "jwt.issuers",
        "at least one issuer",
    );
    assert_error(
        &jwt("required_claims = [\"exp\", \"nonce\"]", secret),
        3,
        "jwt.required_claims",
        "unknown required claim `nonce`",
    );
    // A valid section still passes, and `none` is a lifetime.
    Config::from_str(&jwt("max_lifetime = \"none\"\nleeway = \"10s\"", secret)).expect("valid");
}

#[test]
fn introspection_mistakes_are_located_before_any_file_is_read() {
    let section = |extra: &str| {
        format!("[introspection]\nendpoint = \"https://sso.example.com/introspect\"\n{extra}\n")
    };
    let client = "client_id = \"api\"\nclient_secret_file = \"missing.secret\"";
    assert_error(
        &section(&format!("{client}\ntimeout = \"5 seconds\"")),
        5,
        "introspection.timeout",
        "not a duration",
    );
    assert_error(
        &section(&format!("{client}\ncache_ttl = \"1y\"")),
        5,
        "introspection.cache_ttl",
        "not a duration",
    );
    assert_error(
        "[introspection]\nendpoint = \"http://sso.example.com/introspect\"\nclient_id = \"api\"\nclient_secret_file = \"s\"\n",
        2,
        "introspection.endpoint",
        "",
    );
    assert_error(
        &section("client_secret_file = \"missing.secret\""),
        1,
        "introspection.client_id",
        "required unless `auth_method = \"bearer\"`",
    );
    assert_error(
        &section("auth_method = \"bearer\""),
        3,
        "introspection.auth_method",
        "client_token_file or client_token_env",
    );
    assert_error(
        &section(&format!("auth_method = \"bearer\"\n{client}")),
        3,
        "introspection.auth_method",
        "not a client id and secret",
    );
    assert_error(
        &section(&format!("{client}\nclient_token_env = \"TOKEN\"")),
        1,
        "introspection.auth_method",
        "bearer",
    );
    assert_error(
        &section(&format!(
            "{client}\napi_key_prefix = \"pc\"\nintrospect_api_key_shaped = true"
        )),
        6,
        "introspection.introspect_api_key_shaped",
        "not both",
    );
    assert_error(
        &section(&format!("{client}\napi_key_prefix = \"Not-A-Prefix\"")),
        5,
        "introspection.api_key_prefix",
        "",
    );
    // Audiences are required (issue #16): the endpoint also answers for other services' tokens.
    assert_error(
        &section("auth_method = \"bearer\"\nclient_token_env = \"TOKEN\""),
        1,
        "introspection.audiences",
        "at least one non-empty audience",
    );
    Config::from_str(&section(
        "auth_method = \"bearer\"\nclient_token_env = \"TOKEN\"\naudiences = [\"api\"]",
    ))
    .expect("valid");
}

/// Checks on a whole table are placed at the table's header.
#[test]
fn table_level_mistakes_are_located() {
    assert_error(
        "[gate]\ndefault_policy = \"public\"\n\n[policies.empty]\n",
        4,
        "policies.empty",
        "at least one rule",
    );
    assert_error(
        "[basic]\nrealm = \"r\"\n[basic.hashing]\nmemory_kib = 1\n",
        3,
        "basic.hashing",
        "argon2",
    );
    assert_error(
        "[store]\nurl = \"memory\"\n[api_keys]\npepper_env = \"P\"\npepper_file = \"p.txt\"\n",
        3,
        "api_keys",
        "not both",
    );
}

#[tokio::test]
async fn gate_max_path_bytes_is_read_from_the_file() {
    let gate = Gate::from_config_str("[gate]\nmax_path_bytes = 16\ndefault_policy = \"public\"\n")
        .await
        .expect("builds");
    let get = |path: &str| http::Request::get(path).body(()).expect("request");
    let at_limit = answer(&gate, get(&format!("/{}", "a".repeat(15)))).await;
    assert_eq!((at_limit.status, at_limit.subject), (StatusCode::OK, None));
    let over = answer(&gate, get(&format!("/{}", "a".repeat(16)))).await;
    assert_eq!(
        (over.status, over.challenge),
        (StatusCode::BAD_REQUEST, None)
    );
    assert_error(
        "[gate]\nmax_path_bytes = 0\n",
        2,
        "gate.max_path_bytes",
        "must be positive",
    );
    assert_error(
        "[gate]\nmax_path_bytes = -1\n",
        2,
        "gate.max_path_bytes",
        "",
    );
}

#[tokio::test]
async fn basic_limits_are_read_from_the_file() {
    let gate = basic_gate(&format!(
        "{CHEAP_BASIC}[basic.limits]\nmax_password_bytes = 8\nmax_user_bytes = 5\n"
    ))
    .await;
    // At the limits: parsed and checked, a wrong password is a 401 with the Basic challenge.
    let at_limit = answer(&gate, basic_get("/x", "alice", "12345678")).await;
    assert_eq!(at_limit.status, StatusCode::UNAUTHORIZED);
    assert_eq!(at_limit.challenge.as_deref(), Some(BASIC_CHALLENGE));
    // Over them: malformed, 400 without a challenge, before any hashing.
    let long_password = answer(&gate, basic_get("/x", "alice", "123456789")).await;
    assert_eq!(
        (long_password.status, long_password.challenge),
        (StatusCode::BAD_REQUEST, None)
    );
    let long_user = answer(&gate, basic_get("/x", "alice2", "pw")).await;
    assert_eq!(long_user.status, StatusCode::BAD_REQUEST);
    // The limit is the file's, not the default: the real password (28 bytes) is now too long.
    let real = answer(&gate, basic_get("/x", "alice", PASSWORD)).await;
    assert_eq!(real.status, StatusCode::BAD_REQUEST);

    assert_error(
        "[basic.limits]\nmax_header_bytes = 4096\nmax_user_bytes = 0\n",
        3,
        "basic.limits.max_user_bytes",
        "must be positive",
    );
    let err = error("[basic.limits]\nmax_passwd_bytes = 10\n");
    assert_eq!(err.location().map(|l| l.line), Some(2), "{err}");
    assert!(err.message().contains("max_passwd_bytes"), "{err}");
}

#[tokio::test]
async fn lockout_memory_capacity_is_read_from_the_file() {
    let text = |capacity: &str| {
        format!(
            "{CHEAP_BASIC}[basic.lockout]\nuser_threshold = 2\nbase_delay = \"60s\"\nstore = \"memory\"\n{capacity}\n"
        )
    };
    // One counter fits, and it locks alice: a failure for another user cannot be counted, so
    // it fails closed (503) instead of going uncounted.
    let gate = basic_gate(&text("memory_capacity = 1")).await;
    for _ in 0..2 {
        let first = answer(&gate, basic_get("/x", "alice", "wrong")).await;
        assert_eq!(first.status, StatusCode::UNAUTHORIZED);
        assert_eq!(first.challenge.as_deref(), Some(BASIC_CHALLENGE));
    }
    let second = answer(&gate, basic_get("/x", "bob", "wrong")).await;
    assert_eq!(
        (second.status, second.challenge),
        (StatusCode::SERVICE_UNAVAILABLE, None)
    );
    // With the default capacity the same failure is an ordinary 401.
    let gate = basic_gate(&text("")).await;
    for _ in 0..2 {
        answer(&gate, basic_get("/x", "alice", "wrong")).await;
    }
    let second = answer(&gate, basic_get("/x", "bob", "wrong")).await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
    assert_eq!(second.challenge.as_deref(), Some(BASIC_CHALLENGE));
    // And the file's threshold and delay apply: alice is locked out for a minute.
    let locked = answer(&gate, basic_get("/x", "alice", PASSWORD)).await;
    assert_eq!(
        (
            locked.status,
            locked.challenge,
            locked.retry_after.as_deref()
        ),
        (StatusCode::TOO_MANY_REQUESTS, None, Some("60"))
    );

    assert_error(
        &text("memory_capacity = 0"),
        11,
        "basic.lockout.memory_capacity",
        "positive",
    );
    assert_error(
        "[basic.lockout]\nstore = \"memcached://x\"\n",
        2,
        "basic.lockout.store",
        "expected `memory` or a Redis URL",
    );
    // Redis settings with the memory store would be silently ignored: refused.
    for (key, value) in [
        ("redis_prefix", "\"p\""),
        ("redis_timeout", "\"1s\""),
        ("redis_retry_after", "\"1s\""),
        ("dangerous_fail_open", "true"),
    ] {
        assert_error(
            &format!("[basic.lockout]\nuser_threshold = 3\n{key} = {value}\n"),
            3,
            &format!("basic.lockout.{key}"),
            "only for a Redis `store`",
        );
    }
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_lockout_needs_the_redis_feature() {
    assert_error(
        "[basic.lockout]\nstore = \"redis://127.0.0.1:6379\"\n",
        2,
        "basic.lockout.store",
        "needs portcullis's `redis` feature",
    );
}

/// A setting a builder refuses (not the file's own checks) is reported at the file's key, line
/// and column: the Redis store's builder names the setting in its own terms
/// (`RedisSetting::CaFile`), and config maps it to `basic.lockout.redis_ca_file`.
#[cfg(feature = "redis")]
#[test]
fn a_lockout_builder_refusal_is_reported_at_its_key() {
    let text = "[basic]\n[basic.lockout]\nstore = \"redis://127.0.0.1:6379\"\n\
                redis_ca_file = \"ca.pem\"\n";
    assert_error(
        text,
        4,
        "basic.lockout.redis_ca_file",
        "a CA file needs a `rediss://` (TLS) URL",
    );
    let location = error(text).location().cloned().expect("located");
    assert_eq!((location.line, location.column), (4, 17));
}

/// The same for the introspection builder, whose check is the only one of its sizes.
#[cfg(feature = "introspection")]
#[test]
fn an_introspection_builder_refusal_is_reported_at_its_key() {
    let text = "[introspection]\nendpoint = \"https://idp.test/introspect\"\n\
                client_id = \"api\"\nclient_secret_file = \"secret.txt\"\n\
                audiences = [\"api\"]\nmax_response_size = 0\n";
    assert_error(
        text,
        6,
        "introspection.max_response_size",
        "must be positive",
    );
    let location = error(text).location().cloned().expect("located");
    assert_eq!((location.line, location.column), (6, 21));
}

#[cfg(feature = "redis")]
#[test]
fn redis_lockout_mistakes_are_located() {
    let redis = "[basic.lockout]\nstore = \"redis://127.0.0.1:6379\"\n";
    assert_error(
        &format!("{redis}redis_timeout = \"0s\"\n"),
        3,
        "basic.lockout.redis_timeout",
        "above zero",
    );
    assert_error(
        &format!("{redis}redis_retry_after = \"later\"\n"),
        3,
        "basic.lockout.redis_retry_after",
        "not a duration",
    );
    assert_error(
        &format!("{redis}memory_capacity = 10\n"),
        3,
        "basic.lockout.memory_capacity",
        "only for `store = \"memory\"`",
    );
    assert_error(
        "[basic.lockout]\nstore = \"redis://[::1\"\n",
        2,
        "basic.lockout.store",
        "not a usable Redis URL",
    );
    // The URL may hold a password: never in messages or Debug.
    let config = Config::from_str(
        "[basic.lockout]\nstore = \"redis://user:hunter2@127.0.0.1:6379\"\nredis_prefix = \"p\"\n",
    )
    .expect("valid");
    assert!(!format!("{config:?}").contains("hunter2"));
}

/// Lockout counters in the local Redis, configured from the file: two wrong passwords with
/// `user_threshold = 2`, then 429 even for the right one.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_lockout_from_the_file_locks_out() {
    if !common::redis_lockout::redis_up() {
        return;
    }
    let prefix = format!(
        "test-config-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
    );
    let gate = basic_gate(&format!(
        "{CHEAP_BASIC}[basic.lockout]\nstore = \"redis://127.0.0.1:6379\"\nredis_prefix = \"{prefix}\"\nredis_timeout = \"2s\"\nuser_threshold = 2\nbase_delay = \"60s\"\n"
    ))
    .await;
    for attempt in 0..2 {
        let wrong = answer(&gate, basic_get("/x", "alice", "wrong")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(wrong.challenge.as_deref(), Some(BASIC_CHALLENGE));
    }
    let locked = answer(&gate, basic_get("/x", "alice", PASSWORD)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.challenge, None);
    let retry: u64 = locked
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");

    // The counter lives in Redis, under the configured prefix.
    assert!(
        common::redis_lockout::clean_up(&prefix).await > 0,
        "no counter under the prefix"
    );
}

#[test]
fn lockout_thresholds_below_two_are_refused() {
    assert_error(
        "[basic]\n\n[basic.lockout]\nip_threshold = 1\n",
        4,
        "basic.lockout.ip_threshold",
        "at least 2",
    );
}

#[test]
fn introspection_call_limits_are_checked() {
    let base = "[introspection]\nendpoint = \"https://idp.test/introspect\"\n\
                client_id = \"api\"\nclient_secret_file = \"secret.txt\"\n";
    assert_error(
        &format!("{base}max_concurrent = 0\n"),
        5,
        "introspection.max_concurrent",
        "positive",
    );
    assert_error(
        &format!("{base}max_wait = \"soon\"\n"),
        5,
        "introspection.max_wait",
        "",
    );
}

#[test]
fn lockout_settings_and_disabled_lockout_contradict() {
    assert_error(
        "[basic]\ndangerous_disable_lockout = true\n\n[basic.lockout]\nuser_threshold = 3\n",
        4,
        "basic.lockout",
        "dangerous_disable_lockout",
    );
}

#[tokio::test]
async fn api_keys_negative_cache_capacity_is_a_key() {
    let pepper = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/example-pepper.txt");
    Gate::from_config_str(&format!(
        "[api_keys]\npepper_file = \"{pepper}\"\nnegative_cache_capacity = 0\n\
         watch_store_changes = false\n"
    ))
    .await
    .expect("builds");
    assert_error(
        "[api_keys]\nnegative_cache_capacity = \"lots\"\n",
        2,
        "api_keys.negative_cache_capacity",
        "",
    );
    assert_error(
        "[api_keys]\nwatch_store_changes = \"yes\"\n",
        2,
        "api_keys.watch_store_changes",
        "",
    );
}

/// A one-route introspection endpoint on 127.0.0.1 that answers every token as active for
/// subject `svc`, and records the `Authorization` header it was called with.
#[cfg(feature = "jwks")]
async fn introspection_endpoint() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/introspect",
        listener.local_addr().expect("address")
    );
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                loop {
                    let n = socket.read(&mut buffer).await.expect("read");
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().expect("length"))
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            let authorization = text[..end]
                                .lines()
                                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                                .map(|l| l["authorization:".len()..].trim().to_owned())
                                .unwrap_or_default();
                            record.lock().expect("lock").push(authorization);
                            break;
                        }
                    }
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs();
                let body = format!(
                    r#"{{"active":true,"sub":"svc","aud":"api","iat":{now},"exp":{}}}"#,
                    now + 300
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.expect("write");
            });
        }
    });
    (url, seen)
}

/// `auth_method = "bearer"` sends the service's own token from its file, and
/// `introspect_api_key_shaped` sends key-shaped tokens to the endpoint instead of leaving them.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn introspection_bearer_client_auth_and_api_key_shaped_tokens() {
    let (url, seen) = introspection_endpoint().await;
    let dir = std::env::temp_dir().join(format!("portcullis-bearer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token_file = dir.join("client.token");
    std::fs::write(&token_file, "service-token-123\n").expect("write token");
    let config = |extra: &str| {
        format!(
            "[introspection]\nendpoint = \"{url}\"\nauth_method = \"bearer\"\nclient_token_file = \"{}\"\nrealm = \"intro\"\naudiences = [\"api\"]\n{extra}\n",
            token_file.display()
        )
    };
    let bearer = |token: &str| {
        http::Request::get("/x")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .expect("request")
    };

    let gate = Gate::from_config_str(&config("")).await.expect("builds");
    let opaque = answer(&gate, bearer("opaque-token")).await;
    assert_eq!(opaque.status, StatusCode::OK);
    assert_eq!(opaque.subject.as_deref(), Some("svc"));
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        ["Bearer service-token-123"]
    );
    // A key-shaped token is left to an API-key authenticator (there is none): anonymous, 401.
    let key_shaped = answer(&gate, bearer("pc_abc123")).await;
    assert_eq!(key_shaped.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        key_shaped.challenge.as_deref(),
        Some(r#"Bearer realm="intro""#)
    );
    assert_eq!(seen.lock().expect("lock").len(), 1, "not introspected");

    let gate = Gate::from_config_str(&config("introspect_api_key_shaped = true"))
        .await
        .expect("builds");
    let key_shaped = answer(&gate, bearer("pc_abc123")).await;
    assert_eq!(key_shaped.status, StatusCode::OK);
    assert_eq!(key_shaped.subject.as_deref(), Some("svc"));
    assert_eq!(seen.lock().expect("lock").len(), 2, "introspected");

    // From an unset environment variable: a build error naming the key.
    let missing = Gate::from_config_str(&format!(
        "[introspection]\nendpoint = \"{url}\"\nauth_method = \"bearer\"\nclient_token_env = \"PORTCULLIS_TEST_UNSET_TOKEN\"\naudiences = [\"api\"]\n"
    ))
    .await
    .expect_err("no token");
    assert_eq!(missing.key(), Some("introspection.client_token_env"));
    assert!(!format!("{missing}").contains("service-token-123"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue #16 item 1: `[introspection]` leaves keys of the `[api_keys] prefix` to the API-key
/// authenticator, as it leaves `pc_` keys; before, both claimed a custom-prefix key in
/// `Authorization: Bearer`, and every such request was a 400.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn introspection_leaves_keys_of_the_configured_prefix_to_api_keys() {
    let (url, seen) = introspection_endpoint().await;
    let dir = std::env::temp_dir().join(format!("portcullis-prefix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token_file = dir.join("client.token");
    std::fs::write(&token_file, "service-token-456\n").expect("write token");
    let pepper = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/example-pepper.txt");
    let config = Config::from_str(&format!(
        "[api_keys]\npepper_file = \"{pepper}\"\nprefix = \"acme\"\n\n\
         [introspection]\nendpoint = \"{url}\"\nauth_method = \"bearer\"\n\
         client_token_file = \"{}\"\naudiences = [\"api\"]\n",
        token_file.display()
    ))
    .expect("valid");
    let services = config.build_services().await.expect("builds");
    let keys = services.api_keys.as_ref().expect("api keys");
    let issued = keys
        .create(
            portcullis::NewApiKey::new("ci").with_expires_in(std::time::Duration::from_secs(3600)),
        )
        .await
        .expect("key issued");
    let key = issued.key().expose_secret();
    assert!(key.starts_with("acme_"), "custom prefix");
    let bearer = |token: &str| {
        http::Request::get("/x")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .expect("request")
    };
    let by_key = answer(&services.gate, bearer(key)).await;
    assert_eq!(by_key.status, StatusCode::OK);
    assert_eq!(by_key.subject.as_deref(), Some("ci"));
    assert!(seen.lock().expect("lock").is_empty(), "never introspected");
    // An opaque token still goes to the endpoint.
    let opaque = answer(&services.gate, bearer("opaque-token")).await;
    assert_eq!(opaque.subject.as_deref(), Some("svc"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every key docs/configuration.md documents appears in examples/portcullis.toml, in the same
/// table, set or commented out: the two cannot drift apart.
#[test]
fn every_documented_key_is_in_the_example() {
    let docs = include_str!("../docs/configuration.md");
    let example = include_str!("../examples/portcullis.toml");

    // Documented: `| `key` |` rows, under the last `[table]` or `[[table]]` named in a heading
    // or at the start of a paragraph.
    let mut documented = Vec::new();
    let mut table = String::new();
    for line in docs.lines() {
        let named = line
            .trim_start_matches(['#', ' '])
            .strip_prefix("`[")
            .and_then(|rest| rest.split_once(']').map(|(name, _)| name));
        if let Some(name) = named {
            table = name.trim_start_matches('[').replace("NAME", "*");
        } else if let Some(row) = line.strip_prefix("| `") {
            let cell = row.split(" |").next().unwrap_or_default();
            for key in cell.split(" / ") {
                documented.push((table.clone(), key.trim_matches('`').to_owned()));
            }
        }
    }
    assert!(documented.len() > 100, "docs parsed: {documented:?}");

    // In the example: `key = …` lines, set or commented out, and sub-table headers.
    let mut present = std::collections::BTreeSet::new();
    let mut section = String::new();
    for line in example.lines() {
        let line = line.trim_start_matches(['#', ' ']);
        if line.starts_with('[') {
            section = line
                .trim_matches(|c| c == '[' || c == ']')
                .split(']')
                .next()
                .unwrap_or_default()
                .to_owned();
            if let Some((parent, child)) = section.rsplit_once('.') {
                present.insert((parent.to_owned(), child.to_owned()));
            }
            continue;
        }
        if let Some((key, _)) = line.split_once(" = ")
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            present.insert((section.clone(), key.to_owned()));
        }
    }
    let missing: Vec<_> = documented
        .iter()
        .filter(|(table, key)| {
            !present.iter().any(|(section, found)| {
                found == key
                    && match table.strip_suffix(".*") {
                        Some(prefix) => section.starts_with(&format!("{prefix}.")),
                        None => section == table,
                    }
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not in examples/portcullis.toml: {missing:?}"
    );
}

/// Issue #15: an empty list in a policy allowed everyone (`groups_all = []`) or no one. Each is
/// refused with its line, column and key.
#[test]
fn empty_policy_lists_are_refused_with_line_and_column() {
    for field in [
        "groups_any",
        "groups_all",
        "scopes_any",
        "scopes_all",
        "schemes_allow",
        "schemes_deny",
        "ip_allow",
        "ip_deny",
    ] {
        let text = format!("[policies.p]\nauthenticated = true\n{field} = []\n");
        assert_error(&text, 3, &format!("policies.p.{field}"), "empty list");
        let location = error(&text).location().cloned().expect("location");
        assert_eq!(location.column, field.len() + 4, "{field}");
    }
}

/// `[basic.hashing]` at `memory_kib = m`, `iterations = t`, the cost on lines 4 and 5.
fn hashing_text(m: u32, t: u32, extra: &str) -> String {
    format!("[basic]\nrealm = \"r\"\n[basic.hashing]\nmemory_kib = {m}\niterations = {t}\n{extra}")
}

/// A file cannot choose an argon2id cost below OWASP's minimums (m=47104 t=1, m=19456 t=2,
/// m=12288 t=3, m=9216 t=4, m=7168 t>=5): the error names the key to raise, its line, and the
/// dangerous key that would allow it.
#[test]
fn hashing_below_the_owasp_floor_is_refused_with_line_and_key() {
    // (memory_kib, iterations, what the error names, or None when accepted)
    // The line and key a refusal names.
    type Refused = Option<(usize, &'static str)>;
    let cases: [(u32, u32, Refused); 14] = [
        (19_455, 2, Some((5, "basic.hashing.iterations"))),
        (19_456, 2, None),
        (47_103, 1, Some((5, "basic.hashing.iterations"))),
        (47_104, 1, None),
        (12_287, 3, Some((5, "basic.hashing.iterations"))),
        (12_288, 3, None),
        (9_215, 4, Some((5, "basic.hashing.iterations"))),
        (9_216, 4, None),
        (7_167, 5, Some((4, "basic.hashing.memory_kib"))),
        (7_168, 5, None),
        (7_167, 9, Some((4, "basic.hashing.memory_kib"))),
        (7_168, 9, None),
        (64, 1, Some((4, "basic.hashing.memory_kib"))),
        (1_048_576, 1, None),
    ];
    for (m, t, refused) in cases {
        let text = hashing_text(m, t, "");
        match refused {
            None => {
                let config = Config::from_str(&text)
                    .unwrap_or_else(|e| panic!("m={m} t={t} should be accepted: {e}"));
                let hashing = config.hashing().expect("[basic]");
                assert_eq!((hashing.memory_kib, hashing.iterations), (m, t));
            }
            Some((line, key)) => {
                assert_error(&text, line, key, "dangerous_weak_hashing = true");
                let err = error(&text);
                assert!(err.message().contains("OWASP"), "{err}");
                assert!(
                    err.message().contains(&format!("m={m} KiB, t={t}")),
                    "{err}"
                );
            }
        }
    }
    // Only one key given: the other keeps its default (19456 KiB, 2 passes) and the error
    // names the key that is in the file.
    assert_error(
        "[basic]\n[basic.hashing]\nmemory_kib = 8000\n",
        3,
        "basic.hashing.memory_kib",
        "dangerous_weak_hashing = true",
    );
    assert_error(
        "[basic]\n[basic.hashing]\n\niterations = 1\n",
        4,
        "basic.hashing.iterations",
        "needs t>=2",
    );
    // The floor holds with the other [basic.hashing] keys too, and `false` is the default.
    assert_error(
        &hashing_text(
            1024,
            1,
            "max_concurrent = 2\ndangerous_weak_hashing = false\n",
        ),
        4,
        "basic.hashing.memory_kib",
        "below OWASP's minimum",
    );
}

/// `dangerous_weak_hashing = true` allows any cost argon2 accepts (not one it refuses), and
/// building with it logs a warning.
#[tokio::test]
async fn dangerous_weak_hashing_allows_a_cheap_cost_and_warns() {
    let text = hashing_text(64, 1, "dangerous_weak_hashing = true\n");
    let config = Config::from_str(&text).expect("allowed by the dangerous key");
    let hashing = config.hashing().expect("[basic]");
    assert_eq!((hashing.memory_kib, hashing.iterations), (64, 1));

    let logs = common::logs::capture();
    config.build_services().await.expect("builds");
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("dangerous_weak_hashing"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("memory_kib=64"), "{text}");
    drop(logs);

    // What argon2 itself refuses stays refused.
    let err = error(&hashing_text(1, 1, "dangerous_weak_hashing = true\n"));
    assert_eq!(err.key(), Some("basic.hashing"), "{err}");
    // Not a boolean: refused by its key.
    let err = error(&hashing_text(64, 1, "dangerous_weak_hashing = \"yes\"\n"));
    assert!(err.to_string().contains("dangerous_weak_hashing"), "{err}");
}

/// Without `[basic.hashing]` the default cost (19456 KiB, 2 passes, OWASP's) is accepted, and
/// building with it logs no weak-hashing warning.
#[tokio::test]
async fn default_hashing_meets_the_floor() {
    let config = Config::from_str("[basic]\nrealm = \"r\"\n").expect("default accepted");
    let hashing = config.hashing().expect("[basic]");
    assert_eq!((hashing.memory_kib, hashing.iterations), (19_456, 2));
    let config = Config::from_str("[basic]\n[basic.hashing]\nmax_concurrent = 2\n")
        .expect("defaults filled in");
    let logs = common::logs::capture();
    config.build_services().await.expect("builds");
    assert!(
        !logs.text().contains("dangerous_weak_hashing"),
        "{}",
        logs.text()
    );
}
