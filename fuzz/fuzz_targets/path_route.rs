//! `normalize_path` and `PathPattern` on any string: the first line is a pattern, the rest a
//! path. A normalised path starts with `/`, has no empty, `.` or `..` segment, no trailing
//! slash, grows only by re-escaping stray `%` signs, normalises to itself, and matches the exact pattern
//! made from it. Parsing and matching a pattern never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::{PathPattern, normalize_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, path) = text.split_once('\n').unwrap_or(("/**", text));
    let pattern = PathPattern::parse(pattern);
    let Ok(normalised) = normalize_path(path) else {
        return;
    };
    assert!(normalised.starts_with('/'), "{normalised:?}");
    // Decoding only shrinks; a stray `%` (not followed by two hex digits) is re-escaped as
    // `%25`, the one way a path grows: found by this target, which first asserted no growth.
    let strays = path.bytes().filter(|&b| b == b'%').count();
    assert!(
        normalised.len() <= path.len().max(1) + 2 * strays,
        "{path:?} grew"
    );
    if normalised != "/" {
        assert!(!normalised.ends_with('/'));
        for segment in normalised[1..].split('/') {
            assert!(!matches!(segment, "" | "." | ".."), "{normalised:?}");
        }
    }
    assert_eq!(
        normalize_path(&normalised).as_deref(),
        Ok(&*normalised),
        "normalising is idempotent"
    );
    if let Ok(pattern) = pattern {
        let _ = pattern.matches(&normalised);
    }
    if !normalised.contains('*') {
        let exact = PathPattern::parse(&normalised).expect("a normalised path is a pattern");
        assert!(exact.matches(&normalised));
        let prefix = PathPattern::parse(&format!("{}/**", normalised.trim_end_matches('/')))
            .expect("and a prefix pattern");
        assert!(prefix.matches(&normalised));
    }
});
