//! Transport security of the stores: PostgreSQL with `sslmode=verify-full`, Redis over
//! `rediss://`, against the local servers `.ci/services.sh` sets up with a test CA.
//!
//! The certificates are found in `PORTCULLIS_TEST_TLS_DIR`, else `/tmp/portcullis-ci-tls`:
//! `ca.crt` (signed the server certificate, which names only `localhost`), `wrong-ca.crt`
//! (signed nothing). PostgreSQL serves that certificate on 127.0.0.1:5432; a TLS-only Redis
//! listens on 127.0.0.1:6380. When the files or a server are missing, the tests print
//! `SKIPPED: …` and pass, unless `PORTCULLIS_REQUIRE_SERVICES=1` (set by CI), when they fail.

#![cfg(any(feature = "postgres", feature = "redis"))]

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// The directory with the test CA, if `.ci/services.sh` made one.
fn tls_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PORTCULLIS_TEST_TLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/portcullis-ci-tls"));
    if dir.join("ca.crt").is_file() && dir.join("wrong-ca.crt").is_file() {
        Some(dir)
    } else {
        skip(&format!(
            "no test CA in {} (run .ci/services.sh)",
            dir.display()
        ));
        None
    }
}

fn port_open(port: u16) -> bool {
    let address = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

fn skip(message: &str) {
    if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message}, and PORTCULLIS_REQUIRE_SERVICES=1");
    }
    println!("SKIPPED: {message}");
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use portcullis::Gate;
    use portcullis::store::StoreErrorKind;
    use portcullis::store::{PostgresStore, StoreOptions, UserStore};

    fn url(host: &str, ca: &std::path::Path) -> String {
        format!(
            "postgres://postgres@{host}:5432/test?sslmode=verify-full&sslrootcert={}",
            ca.display()
        )
    }

    fn setup() -> Option<PathBuf> {
        let dir = tls_dir()?;
        if !port_open(5432) {
            skip("no PostgreSQL at 127.0.0.1:5432");
            return None;
        }
        Some(dir)
    }

    /// With the CA that signed it, `verify-full` to the name on the certificate connects.
    #[tokio::test]
    async fn verify_full_with_the_right_ca_connects() {
        let Some(dir) = setup() else { return };
        let store = PostgresStore::connect(&url("localhost", &dir.join("ca.crt")))
            .await
            .unwrap_or_else(|e| panic!("verify-full as localhost: {e}"));
        store.list_users().await.expect("a query over TLS");
        store.close().await;
    }

    /// Another CA: refused. The server is the same one the test above reaches.
    #[tokio::test]
    async fn verify_full_with_another_ca_is_refused() {
        let Some(dir) = setup() else { return };
        let err = PostgresStore::connect(&url("localhost", &dir.join("wrong-ca.crt")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
        println!("refused: {err}");
    }

    /// The right CA but a name the certificate does not carry (it names `localhost` only, not
    /// `127.0.0.1`): refused.
    #[tokio::test]
    async fn verify_full_to_a_name_not_on_the_certificate_is_refused() {
        let Some(dir) = setup() else { return };
        let err = PostgresStore::connect(&url("127.0.0.1", &dir.join("ca.crt")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("not valid for name"), "{err}");
    }

    /// From a configuration file: a server on another host without `verify-full` is a
    /// configuration error naming `store.url`, before anything is sent; the `dangerous_` key lets
    /// it through to connecting (which fails here: the name does not resolve).
    #[tokio::test]
    async fn config_refuses_an_unverified_remote_database() {
        let remote = "postgres://u:hunter2@portcullis-no-such-host.invalid:5432/auth";
        let err = Gate::from_config_str(&format!("[store]\nurl = \"{remote}\"\n"))
            .await
            .unwrap_err();
        assert_eq!(err.key(), Some("store.url"), "{err}");
        assert!(err.message().contains("verify-full"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Gate::from_config_str(&format!(
            "[store]\nurl = \"{remote}?sslmode=require\"\ndangerous_allow_unverified_tls = true\n"
        ))
        .await
        .unwrap_err();
        assert!(!err.message().contains("verify-full"), "{err}");
        let err = PostgresStore::connect_with(
            remote,
            &StoreOptions::new().dangerous_allow_unverified_tls(true),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use portcullis::lockout::{FailureStore, RedisFailureStore};
    use portcullis::store::StoreErrorKind;

    const TLS_URL: &str = "rediss://localhost:6380";

    fn setup() -> Option<PathBuf> {
        let dir = tls_dir()?;
        if !port_open(6380) {
            skip("no TLS Redis at 127.0.0.1:6380 (run .ci/services.sh)");
            return None;
        }
        Some(dir)
    }

    fn prefix(test: &str) -> String {
        format!("tls-{test}-{}", std::process::id())
    }

    /// With the CA file that signed the server's certificate, counters work over TLS.
    #[tokio::test]
    async fn rediss_with_the_right_ca_counts() {
        let Some(dir) = setup() else { return };
        let store = RedisFailureStore::builder(TLS_URL)
            .ca_file(dir.join("ca.crt"))
            .key_prefix(prefix("right"))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let window = Duration::from_secs(60);
        assert_eq!(store.record_failure("user:a", window).await.unwrap(), 1);
        assert_eq!(store.record_failure("user:a", window).await.unwrap(), 2);
        assert_eq!(store.failures("user:a").await.unwrap().unwrap().count, 2);
        store.clear("user:a").await.unwrap();
    }

    /// Another CA, or the system roots (which do not hold the test CA): refused, so the store
    /// fails closed (503).
    #[tokio::test]
    async fn rediss_with_another_ca_is_refused() {
        let Some(dir) = setup() else { return };
        for store in [
            RedisFailureStore::builder(TLS_URL).ca_file(dir.join("wrong-ca.crt")),
            RedisFailureStore::builder(TLS_URL),
        ] {
            let store = store
                .key_prefix(prefix("wrong"))
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let err = store.failures("user:a").await.unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
            println!("refused: {err}");
        }
    }

    /// The right CA, but a name the certificate does not carry: refused.
    #[tokio::test]
    async fn rediss_to_a_name_not_on_the_certificate_is_refused() {
        let Some(dir) = setup() else { return };
        let store = RedisFailureStore::builder("rediss://127.0.0.1:6380")
            .ca_file(dir.join("ca.crt"))
            .key_prefix(prefix("name"))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let err = store.failures("user:a").await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    }

    /// `#insecure` is refused unless allowed by its `dangerous_` name; allowed, it connects
    /// without checking anything (which is the danger).
    #[tokio::test]
    async fn insecure_is_refused_unless_allowed() {
        let err = RedisFailureStore::builder("rediss://localhost:6380/#insecure")
            .build()
            .unwrap_err();
        assert!(err.message().contains("#insecure"), "{err}");
        let Some(_) = setup() else { return };
        let store = RedisFailureStore::builder("rediss://127.0.0.1:6380/#insecure")
            .dangerous_allow_insecure_tls()
            .key_prefix(prefix("insecure"))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        assert_eq!(store.failures("user:a").await.unwrap(), None);
    }

    /// The same from a configuration file: `redis_ca_file` relative to the file's directory.
    #[tokio::test]
    async fn config_takes_a_ca_file() {
        let Some(dir) = setup() else { return };
        let config = |extra: &str| {
            format!(
                "[basic]\n[basic.lockout]\nstore = \"{TLS_URL}/#insecure\"\n{extra}\n[store]\nurl = \"memory\"\n"
            )
        };
        let err = portcullis::config::Config::from_str(&config("")).unwrap_err();
        assert_eq!(err.key(), Some("basic.lockout.store"), "{err}");
        portcullis::config::Config::from_str(&config("dangerous_allow_insecure_tls = true"))
            .expect("allowed by name");
        let file = dir.join(format!("portcullis-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            format!(
                "[basic]\n[basic.lockout]\nstore = \"{TLS_URL}\"\nredis_ca_file = \"ca.crt\"\n"
            ),
        )
        .unwrap();
        let loaded = portcullis::config::Config::from_file(&file);
        let _ = std::fs::remove_file(&file);
        loaded.expect("redis_ca_file relative to the file");
        let err = portcullis::config::Config::from_str(
            "[basic]\n[basic.lockout]\nstore = \"redis://localhost:6379\"\nredis_ca_file = \"/nonexistent.pem\"\n",
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("basic.lockout.redis_ca_file"), "{err}");
    }
}
