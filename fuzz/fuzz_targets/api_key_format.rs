//! `KeyFormat::parse` (and `looks_like_key`) on any string, for the default prefix and a custom
//! one. A key that parses has a key's shape, the format's exact length, and an id and a secret of
//! the documented lengths taken from the key itself.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::api_key::{ID_LEN, KeyFormat, SECRET_LEN};

fn formats() -> &'static [KeyFormat; 2] {
    static FORMATS: OnceLock<[KeyFormat; 2]> = OnceLock::new();
    FORMATS.get_or_init(|| {
        [
            KeyFormat::default(),
            KeyFormat::new("acme2").expect("a valid prefix"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in formats() {
        let looks = format.looks_like_key(text);
        let Ok(parsed) = format.parse(text) else {
            continue;
        };
        assert!(looks, "a key that parses has a key's shape");
        assert_eq!(text.len(), format.key_len());
        assert_eq!(parsed.id().len(), ID_LEN);
        assert_eq!(parsed.secret().expose_secret().len(), SECRET_LEN);
        let after_prefix = &text[format.prefix().len() + 1..];
        assert!(after_prefix.starts_with(parsed.id()));
        assert!(after_prefix[ID_LEN + 1..].starts_with(parsed.secret().expose_secret()));
    }
});
