//! TOML configuration: the shipped example builds, each class of mistake is reported with line,
//! column and key, and a hot reload under load never shows a half-applied configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::StatusCode;
use portcullis::{Config, ConfigError, Gate, GateHandle, RequestView};

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

#[test]
fn unknown_scheme_names_line_and_key() {
    assert_error(
        "[policies.p]\n\nschemes_deny = [\"basic\", \"digest\"]\n",
        3,
        "policies.p.schemes_deny[1]",
        "unknown scheme `digest`",
    );
}

#[test]
fn route_with_unknown_policy_names_line_and_key() {
    let text = "[policies.admins]\ngroups_any = [\"admin\"]\n\n[[routes]]\npath = \"/a\"\npolicy = \"public\"\n\n[[routes]]\npath = \"/b\"\npolicy = \"admin\"\n";
    assert_error(text, 10, "routes[1].policy", "unknown policy `admin`");
    assert!(error(text).message().contains("defined: admins"));
}

#[test]
fn unparseable_cap_names_line_and_key() {
    assert_error(
        "[policies.p]\nmax_lifetime = { api_key = \"ninety days\" }\n",
        2,
        "policies.p.max_lifetime.api_key",
        "not a duration",
    );
    assert_error(
        "[policies.p]\nmax_lifetime = { digest = \"1d\" }\n",
        2,
        "policies.p.max_lifetime.digest",
        "unknown scheme",
    );
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
/// A half-applied swap would show a 401 challenging for realm "A".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_is_atomic() {
    let config = |realm: &str, policy: &str| {
        format!(
            "[basic]\nrealm = \"{realm}\"\n[basic.hashing]\nmemory_kib = 64\niterations = 1\n\n[[routes]]\npath = \"/x\"\npolicy = \"{policy}\"\n"
        )
    };
    let a = Config::from_str(&config("A", "public")).expect("A");
    let b = Config::from_str(&config("B", "authenticated")).expect("B");
    let (gate_a, gate_b) = (a.build().await.expect("A"), b.build().await.expect("B"));
    let handle = GateHandle::new(gate_a.clone());
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
    for i in 0..1000 {
        handle.replace(if i % 2 == 0 {
            gate_b.clone()
        } else {
            gate_a.clone()
        });
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
    assert!(seen[0].load(Ordering::Relaxed) > 0 && seen[1].load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn failed_reload_keeps_the_old_configuration() {
    let dir = std::env::temp_dir().join(format!("portcullis-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gate.toml");
    std::fs::write(&path, "[[routes]]\npath = \"/x\"\npolicy = \"public\"\n").expect("write");
    let handle = GateHandle::from_config_file(&path).await.expect("loads");
    assert_eq!(anonymous_status(&handle.gate()).await.0, StatusCode::OK);
    std::fs::write(&path, "[[routes]]\npath = \"/x\"\npolicy = \"missing\"\n").expect("write");
    let err = handle.reload().await.expect_err("bad reload refused");
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
    handle.reload().await.expect("good reload");
    assert_eq!(
        anonymous_status(&handle.gate()).await.0,
        StatusCode::UNAUTHORIZED
    );
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
        portcullis::Scheme::Jwt,
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
    assert_eq!(who.scheme(), portcullis::Scheme::Jwt);
    let _ = std::fs::remove_dir_all(&dir);
}
