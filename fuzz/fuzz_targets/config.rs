//! `Config::from_str` on any text: it returns a configuration or an error with a usable location,
//! and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match portcullis::config::Config::from_str(text) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(err) => {
            let _ = err.to_string();
            if let Some(location) = err.location() {
                assert!(location.line >= 1 && location.column >= 1, "{err}");
                assert!(location.line <= text.lines().count().max(1) + 1, "{err}");
            }
        }
    }
});
