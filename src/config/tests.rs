use std::time::Duration;

use super::*;
use crate::duration::parse_duration;

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    for bad in ["", "10", "s", "10y", "1.5h", "-3s", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn relative_sqlite_paths_are_relative_to_the_file() {
    let dir = Some(Path::new("/etc/app"));
    assert_eq!(
        store_url("sqlite://keys.db", dir),
        "sqlite:///etc/app/keys.db"
    );
    assert_eq!(
        store_url("sqlite:keys.db", dir),
        "sqlite:///etc/app/keys.db"
    );
    for kept in [
        "sqlite:///var/lib/keys.db",
        "sqlite::memory:",
        "memory",
        "postgres://db/auth",
    ] {
        assert_eq!(store_url(kept, dir), kept);
    }
    assert_eq!(store_url("sqlite://keys.db", None), "sqlite://keys.db");
}

#[test]
fn debug_never_shows_the_store_url() {
    let config = Config::from_str("[store]\nurl = \"postgres://app:hunter2@db.internal/auth\"\n");
    // Without feature `postgres` the URL is refused, and the message must not show it either.
    let shown = match config {
        Ok(config) => format!("{config:?}"),
        Err(e) => e.to_string(),
    };
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("db.internal"), "{shown}");
}

#[cfg(feature = "basic")]
#[test]
fn debug_never_shows_an_inline_password_hash() {
    let phc = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQxMjM0NTY$\
               2J0kUHMsUy8ZbaKKqZHzcsvvVqQJ1G9TlTxKSOB1PvE";
    let config = Config::from_str(&format!(
        "[basic]\n[[basic.users]]\nname = \"alice\"\npassword_hash = \"{phc}\"\n"
    ))
    .expect("config");
    let shown = format!("{config:?}");
    assert!(shown.contains("alice"), "{shown}");
    assert!(!shown.contains("c29tZXNhbHQxMjM0NTY"), "{shown}");
    assert!(!shown.contains("argon2id"), "{shown}");
}

#[cfg(all(feature = "api-key", feature = "jwt"))]
#[test]
fn credential_locations_follow_the_configuration() {
    let none = Config::from_str("").expect("empty config");
    assert_eq!(none.credential_headers(), ["authorization"]);
    assert!(none.credential_query_params().is_empty());

    let defaults = Config::from_str("[api_keys]\n").expect("config");
    assert_eq!(
        defaults.credential_headers(),
        ["authorization", "X-API-Key"]
    );
    assert!(defaults.credential_query_params().is_empty());

    let kong_like = Config::from_str(concat!(
        "[api_keys]\nheader = \"apikey\"\ndangerous_query_param = \"apikey\"\n",
        "[jwt]\naudiences = [\"api\"]\ndangerous_allow_query_token = true\n",
        "[[jwt.issuers]]\nissuer = \"https://issuer.test\"\nsecret_file = \"unused.key\"\n",
    ))
    .expect("config");
    assert_eq!(kong_like.credential_headers(), ["authorization", "apikey"]);
    assert_eq!(
        kong_like.credential_query_params(),
        ["apikey", "access_token"]
    );
}

/// A section for a scheme this build leaves out is refused where it is written, never
/// silently ignored (which would, for `[basic]`, leave every route it guards to the others).
#[cfg(not(all(
    feature = "basic",
    feature = "api-key",
    feature = "jwt",
    feature = "introspection"
)))]
#[test]
fn a_compiled_out_section_is_refused_where_it_is_written() {
    let sections = [
        (cfg!(feature = "basic"), "basic", "basic", "realm = \"x\"\n"),
        (
            cfg!(feature = "api-key"),
            "api_keys",
            "api-key",
            "prefix = \"pc\"\n",
        ),
        (
            cfg!(feature = "jwt"),
            "jwt",
            "jwt",
            "audiences = [\"api\"]\n",
        ),
        (
            cfg!(feature = "introspection"),
            "introspection",
            "introspection",
            "endpoint = \"https://issuer.test/introspect\"\n",
        ),
    ];
    for (_, section, feature, body) in sections.iter().filter(|(on, ..)| !on) {
        let text = format!("[gate]\ndefault_policy = \"public\"\n\n[{section}]\n{body}");
        let error = Config::from_str(&text).expect_err(section);
        assert_eq!(error.key(), Some(*section), "{error}");
        let location = error.location().expect("located");
        assert_eq!((location.line, location.column), (4, 2), "{error}");
        assert!(
            error.message().contains(&format!(
                "`[{section}]` needs portcullis's `{feature}` feature"
            )),
            "{error}"
        );
        // From a file, the error names it too.
        let path = std::env::temp_dir().join(format!(
            "portcullis-compiled-out-{section}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, &text).expect("write the config");
        let error = Config::from_file(&path).expect_err(section);
        std::fs::remove_file(&path).expect("remove the config");
        let location = error.location().expect("located");
        assert_eq!(location.file.as_deref(), Some(path.as_path()), "{error}");
        assert_eq!((location.line, location.column), (4, 2), "{error}");
    }
}

#[cfg(all(feature = "basic", not(feature = "redis")))]
#[test]
fn a_redis_lockout_store_without_the_feature_is_refused() {
    let error = Config::from_str("[basic]\n[basic.lockout]\nstore = \"redis://127.0.0.1\"\n")
        .expect_err("redis is compiled out");
    assert_eq!(error.key(), Some("basic.lockout.store"), "{error}");
    assert_eq!(error.location().map(|l| l.line), Some(3), "{error}");
    assert!(error.message().contains("`redis` feature"), "{error}");
}
