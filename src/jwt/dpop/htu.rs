//! The `htu` comparison (RFC 9449 §4.3 check 9): the proof's URI against the public origin and
//! the path the client sent, both without query and fragment, after RFC 3986 syntax-based
//! (§6.2.2: case, percent-encoding, dot segments) and scheme-based (§6.2.3: default port, empty
//! path) normalisation.

use crate::request::normalize_origin;

/// Whether the proof's `htu` names `origin` (already normalised) followed by `path`.
pub(crate) fn matches(htu: &str, origin: &str, path: &str) -> bool {
    let Some(htu) = normalize(htu) else {
        return false;
    };
    let path = normalize_path(path);
    htu.len() == origin.len() + path.len() && htu.starts_with(origin) && htu.ends_with(&path)
}

/// `htu` normalised, without query and fragment; `None` when it is not an absolute `http(s)`
/// URI without user information.
pub(crate) fn normalize(uri: &str) -> Option<String> {
    let uri = uri.split(['#', '?']).next().unwrap_or(uri);
    let (scheme, rest) = uri.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let origin = normalize_origin(&format!("{scheme}://{authority}")).ok()?;
    let mut normalized = origin;
    normalized.push_str(&normalize_path(path));
    Some(normalized)
}

/// A path normalised: percent-escapes in uppercase, escapes of unreserved characters decoded,
/// dot segments removed (RFC 3986 §5.2.4), empty as `/`.
pub(crate) fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len() + 1);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            let value = hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]);
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                decoded.push(value as char);
            } else {
                decoded.push('%');
                decoded.push(bytes[i + 1].to_ascii_uppercase() as char);
                decoded.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
        } else {
            // The path is a `&str`, so a non-ASCII byte starts a whole character.
            let c = path[i..].chars().next().unwrap_or('\u{fffd}');
            decoded.push(c);
            i += c.len_utf8();
        }
    }
    let resolved = remove_dot_segments(&decoded);
    if resolved.is_empty() {
        "/".to_owned()
    } else {
        resolved
    }
}

/// RFC 3986 §5.2.4, for an absolute path (or an empty one).
fn remove_dot_segments(path: &str) -> String {
    if !path.split('/').any(|s| s == "." || s == "..") {
        return path.to_owned();
    }
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    output.push("");
                }
            }
            ".." => {
                output.pop();
                if i == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in output {
        out.push('/');
        out.push_str(segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_per_rfc_3986() {
        for (given, expected) in [
            ("https://API.Example.com/a/b", "https://api.example.com/a/b"),
            ("HTTPS://api.example.com:443/a", "https://api.example.com/a"),
            ("http://api.example.com:80", "http://api.example.com/"),
            (
                "https://api.example.com:8443/a",
                "https://api.example.com:8443/a",
            ),
            (
                "https://api.example.com/a?x=1#f",
                "https://api.example.com/a",
            ),
            ("https://api.example.com/a#f?x", "https://api.example.com/a"),
            (
                "https://api.example.com/%7euser/%c3%a9",
                "https://api.example.com/~user/%C3%A9",
            ),
            (
                "https://api.example.com/a/./b/../c",
                "https://api.example.com/a/c",
            ),
            ("https://[::1]:443/x", "https://[::1]/x"),
        ] {
            assert_eq!(normalize(given).as_deref(), Some(expected), "{given}");
        }
        for bad in [
            "/relative",
            "ftp://api.example.com/",
            "https://user@api.example.com/",
            "https:///path",
            "https://api.example.com:99999/",
            "https://api.example.com:x/",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn htu_must_name_the_origin_and_the_path() {
        let origin = "https://api.example.com";
        assert!(matches(
            "https://api.example.com/orders/7",
            origin,
            "/orders/7"
        ));
        assert!(matches(
            "https://API.example.com:443/orders/7?page=2",
            origin,
            "/orders/7"
        ));
        assert!(matches("https://api.example.com/%7Ea", origin, "/~a"));
        assert!(
            !matches("https://api.example.com/orders/8", origin, "/orders/7"),
            "path"
        );
        assert!(
            !matches("https://evil.example.com/orders/7", origin, "/orders/7"),
            "host"
        );
        assert!(
            !matches("http://api.example.com/orders/7", origin, "/orders/7"),
            "scheme"
        );
        assert!(
            !matches("https://api.example.com:8443/orders/7", origin, "/orders/7"),
            "port"
        );
        assert!(
            !matches("https://api.example.com/Orders/7", origin, "/orders/7"),
            "path case"
        );
        assert!(
            !matches("https://api.example.com/orders/7/", origin, "/orders/7"),
            "slash"
        );
        assert!(!matches("https://api.example.com", origin, "/orders"));
        assert!(matches("https://api.example.com", origin, "/"));
    }
}
