//! The Gate's path check and `PathPattern` on any string: the first line is a pattern, the rest a
//! path. A path the check accepts starts with `/` (or is `*`), has no `.` or `..` segment, no
//! empty segment but a trailing one, no `\` or control character, and escapes only what no
//! reader decodes to something that changes routing; it matches the exact and prefix patterns
//! made from it. Parsing and matching never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::{PathPattern, check_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, path) = text.split_once('\n').unwrap_or(("/**", text));
    if let Some(pattern) = PathPattern::parse(pattern) {
        assert!(
            pattern
                .to_string()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~/*".contains(&b))
        );
        let _ = pattern.matches(path);
    }
    if check_path(path).is_err() {
        return;
    }
    if path == "*" {
        assert!(!PathPattern::parse("/**").unwrap().matches(path));
        return;
    }
    assert!(path.starts_with('/'), "{path:?}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        assert!(!matches!(*segment, "." | ".."), "{path:?}");
        assert!(!segment.is_empty() || i + 1 == segments.len(), "{path:?}");
    }
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        assert!(b != b'\\' && !b.is_ascii_control(), "{path:?}");
        if b == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("two hex digits");
            let decoded = u8::from_str_radix(hex, 16).expect("two hex digits");
            assert!(
                !(decoded.is_ascii_alphanumeric()
                    || b"-._~/\\%;".contains(&decoded)
                    || decoded.is_ascii_control()),
                "{path:?} escapes {decoded:#x}"
            );
        }
    }
    if path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
    {
        let exact = PathPattern::parse(path).expect("an accepted plain path is a pattern");
        assert!(exact.matches(path));
        let prefix = format!("{}/**", path.trim_end_matches('/'));
        let prefix = PathPattern::parse(&prefix).expect("and a prefix pattern");
        assert!(prefix.matches(path));
    }
});
