//! The shared Redis at 127.0.0.1:6379, for the lockout tests that count in it.

use std::net::TcpStream;
use std::time::Duration;

/// Where the tests find Redis.
pub(crate) const REDIS: &str = "redis://127.0.0.1:6379";

/// Whether the shared Redis answers; prints `SKIPPED` (or panics under
/// `PORTCULLIS_REQUIRE_SERVICES=1`) when it does not.
pub(crate) fn redis_up() -> bool {
    let up = TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().expect("address"),
        Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        let message = "no Redis at 127.0.0.1:6379";
        if std::env::var("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{message}, and PORTCULLIS_REQUIRE_SERVICES=1");
        }
        println!("SKIPPED: {message}");
    }
    up
}

/// Deletes every lockout key under `prefix`; returns how many there were.
pub(crate) async fn clean_up(prefix: &str) -> usize {
    let client = redis::Client::open(REDIS).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("portcullis:lockout:{prefix}:*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    for key in &keys {
        let _: u64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
    keys.len()
}
