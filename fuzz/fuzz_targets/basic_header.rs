//! `parse_basic` on any header value, with the default limits and with tiny ones. Whatever it
//! accepts is within the limits, has no control character and no `:` in the user name, and
//! comes back unchanged through `encode_basic`.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use portcullis::basic::{BasicLimits, encode_basic, parse_basic};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let tiny = BasicLimits::default().with_max_header_bytes(24).with_max_user_bytes(3).with_max_password_bytes(4);
    for limits in [BasicLimits::default(), tiny] {
        let Ok(Some(credentials)) = parse_basic(&value, &limits) else {
            continue;
        };
        let password = credentials.password.expose_secret();
        assert!(value.len() <= limits.max_header_bytes);
        assert!(credentials.user.len() <= limits.max_user_bytes);
        assert!(password.len() <= limits.max_password_bytes);
        assert!(!credentials.user.contains(':'));
        let mut text = credentials.user.chars().chain(password.chars());
        assert!(!text.any(char::is_control));

        let again = HeaderValue::from_str(&encode_basic(&credentials.user, password))
            .expect("an encoded credential is visible ASCII");
        let unlimited = limits.with_max_header_bytes(usize::MAX);
        let reparsed = parse_basic(&again, &unlimited)
            .expect("an encoded credential parses")
            .expect("and is Basic");
        assert_eq!(reparsed.user, credentials.user);
        assert_eq!(reparsed.password.expose_secret(), password);
    }
});
