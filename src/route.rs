//! Route rules: `(methods, path pattern) → policy`, first match wins, matched on the normalised
//! path so that `/admin/../x`, `//admin` and `%2e%2e` cannot step around a rule.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::ConfigError;
use crate::policy::Policy;

/// A path pattern: exact (`/me`), prefix (`/admin/**`, which also matches `/admin`), or with
/// single-segment wildcards (`/users/*/keys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
    prefix: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Any,
}

impl PathPattern {
    /// Parses a pattern. It must start with `/`; `**` may only be the last segment.
    pub fn parse(pattern: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::new(format!("route pattern `{pattern}`: {why}"));
        if !pattern.starts_with('/') {
            return Err(bad("must start with `/`"));
        }
        let (body, prefix) = match pattern.strip_suffix("/**") {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let normalised = normalize_path(if body.is_empty() { "/" } else { body })
            .map_err(|_| bad("is not a valid path"))?;
        let mut segments = Vec::new();
        for segment in normalised.split('/').filter(|s| !s.is_empty()) {
            segments.push(match segment {
                "*" => Segment::Any,
                s if s.contains('*') => {
                    return Err(bad("`*` and `**` must stand alone, `**` only at the end"));
                }
                s => Segment::Literal(s.to_owned()),
            });
        }
        Ok(Self {
            source: pattern.to_owned(),
            segments,
            prefix,
        })
    }

    /// Whether the pattern matches a path already normalised by [`normalize_path`].
    pub fn matches(&self, normalised_path: &str) -> bool {
        let mut path = normalised_path.split('/').filter(|s| !s.is_empty());
        for segment in &self.segments {
            match (segment, path.next()) {
                (_, None) => return false,
                (Segment::Any, Some(_)) => {}
                (Segment::Literal(lit), Some(seg)) if lit == seg => {}
                _ => return false,
            }
        }
        self.prefix || path.next().is_none()
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Why a path could not be normalised.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidPath(&'static str);

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Normalises a request path for matching: percent-decodes each segment (except an encoded `/`,
/// which stays `%2F` so a segment never splits in two), drops empty and `.` segments, resolves `..`
/// (never above the root), and drops a trailing slash.
///
/// Fails on a path that does not start with `/`, or that decodes to invalid UTF-8 or a control
/// character: such a path is a 400, not a guess.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, InvalidPath> {
    if path == "*" {
        // `OPTIONS *` (RFC 9110 §9.3.7) addresses the server, not a resource.
        return Ok(Cow::Borrowed("/"));
    }
    if !path.starts_with('/') {
        return Err(InvalidPath("path does not start with `/`"));
    }
    if is_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let segment = decode_segment(raw)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(segment),
        }
    }
    let mut normalised = String::with_capacity(path.len());
    for segment in &out {
        normalised.push('/');
        normalised.push_str(segment);
    }
    if normalised.is_empty() {
        normalised.push('/');
    }
    Ok(Cow::Owned(normalised))
}

/// Whether a path is already in normal form (most are), so normalising need not allocate.
fn is_normal(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    !path.bytes().any(|b| b == b'%' || b.is_ascii_control())
        && path[1..]
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

fn decode_segment(raw: &str) -> Result<String, InvalidPath> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| InvalidPath("path decodes to invalid UTF-8"))?;
    if decoded.chars().any(char::is_control) {
        return Err(InvalidPath("path contains a control character"));
    }
    // Re-escape what would change the segment structure or be confused with an escape.
    Ok(decoded.replace('%', "%25").replace('/', "%2F"))
}

/// Which methods a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Methods {
    /// Every method.
    Any,
    /// Only these. A rule for `GET` also covers `HEAD`, since servers answer `HEAD` with the `GET`
    /// handler: otherwise `HEAD` would step around the rule.
    Only(Vec<Method>),
}

impl Methods {
    fn matches(&self, method: &Method) -> bool {
        match self {
            Methods::Any => true,
            Methods::Only(list) => list
                .iter()
                .any(|m| m == method || (*m == Method::GET && *method == Method::HEAD)),
        }
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Methods::Any => f.write_str("*"),
            Methods::Only(list) => {
                let names: Vec<&str> = list.iter().map(Method::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// One route rule.
#[derive(Clone, Debug)]
pub struct Route {
    pub(crate) methods: Methods,
    pub(crate) pattern: PathPattern,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) name: String,
}

impl Route {
    /// A rule for `methods` on paths matching `pattern`, decided by `policy`.
    pub fn new(methods: Methods, pattern: &str, policy: impl Policy) -> Result<Self, ConfigError> {
        let pattern = PathPattern::parse(pattern)?;
        let name = format!("{methods} {pattern}");
        Ok(Self {
            methods,
            pattern,
            policy: Arc::new(policy),
            name,
        })
    }

    /// `METHODS PATTERN`, as used in audit events.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn matches(&self, method: &Method, normalised_path: &str) -> bool {
        self.methods.matches(method) && self.pattern.matches(normalised_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalisation_closes_bypasses() {
        for (raw, want) in [
            ("/admin/../public", "/public"),
            ("/public/../admin", "/admin"),
            ("//admin", "/admin"),
            ("/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin/", "/admin"),
            ("/./admin/.", "/admin"),
            ("/adm%69n", "/admin"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%2fb/../c", "/c"),
            ("/", "/"),
            ("/../..", "/"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        assert!(normalize_path("/%ff").is_err());
        assert!(normalize_path("/a%00b").is_err());
        assert!(normalize_path("admin").is_err());
    }

    #[test]
    fn patterns_match_as_documented() {
        let prefix = PathPattern::parse("/admin/**").unwrap();
        assert!(prefix.matches("/admin"));
        assert!(prefix.matches("/admin/users/1"));
        assert!(!prefix.matches("/administrator"));
        let wild = PathPattern::parse("/users/*/keys").unwrap();
        assert!(wild.matches("/users/42/keys"));
        assert!(!wild.matches("/users/keys"));
        assert!(!wild.matches("/users/1/2/keys"));
        let all = PathPattern::parse("/**").unwrap();
        assert!(all.matches("/"));
        assert!(all.matches("/anything/at/all"));
        assert!(PathPattern::parse("/a/**/b").is_err());
        assert!(PathPattern::parse("/a*").is_err());
        assert!(PathPattern::parse("admin").is_err());
    }

    #[test]
    fn get_rules_cover_head() {
        let m = Methods::Only(vec![Method::GET]);
        assert!(m.matches(&Method::HEAD));
        assert!(!m.matches(&Method::POST));
    }

    fn encode_variant(segment: &str, mask: u32) -> String {
        segment
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if mask & (1 << (i % 32)) != 0 {
                    format!("%{:02X}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    /// `segments` written another way: doubled slashes and `.` before each segment, characters
    /// percent-encoded as `mask` says, a detour through `..` at the end, maybe a trailing slash.
    fn written(segments: &[String], mask: u32, detour: &str, trailing: bool) -> String {
        let mut written = String::new();
        for s in segments {
            written.push_str("//./");
            written.push_str(&encode_variant(s, mask));
        }
        written.push_str(&format!("/{detour}/%2e%2E"));
        if trailing {
            written.push('/');
        }
        written
    }

    /// The segments of a pattern for `segments`: those `wild` selects become `*`.
    fn with_wildcards(segments: &[String], wild: u32) -> Vec<String> {
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if wild & (1 << (i % 32)) != 0 {
                    "*".to_owned()
                } else {
                    s.clone()
                }
            })
            .collect()
    }

    proptest! {
        // A pattern never misses its own path written another way: percent-encoded characters,
        // doubled slashes, `.` segments, a detour through `..`, a trailing slash.
        #[test]
        fn pattern_matches_its_path_however_written(
            segments in prop::collection::vec("[a-z0-9_.-]{1,8}", 1..5),
            mask in any::<u32>(),
            detour in "[a-z]{1,6}",
            trailing in any::<bool>(),
        ) {
            prop_assume!(segments.iter().all(|s| s != "." && s != ".."));
            let path = format!("/{}", segments.join("/"));
            let pattern = PathPattern::parse(&path).unwrap();
            let written = written(&segments, mask, detour.as_str(), trailing);
            let normalised = normalize_path(&written).unwrap();
            prop_assert!(pattern.matches(&normalised), "{} vs {}", path, written);
        }

        // The same for `/prefix/**` (with any path under the prefix, or the prefix itself) and
        // for patterns with `*` segments.
        #[test]
        fn prefix_and_wildcard_patterns_match_their_paths_however_written(
            segments in prop::collection::vec("[a-z0-9_.-]{1,8}", 1..6),
            prefix_len in any::<prop::sample::Index>(),
            wild in any::<u32>(),
            mask in any::<u32>(),
            detour in "[a-z]{1,6}",
            trailing in any::<bool>(),
        ) {
            prop_assume!(segments.iter().all(|s| s != "." && s != ".."));
            let written = written(&segments, mask, detour.as_str(), trailing);
            let normalised = normalize_path(&written).unwrap();

            let prefix = &segments[..prefix_len.index(segments.len() + 1)];
            for source in [
                format!("/{}/**", prefix.join("/")),
                format!("/{}/**", with_wildcards(prefix, wild).join("/")),
            ] {
                let pattern = PathPattern::parse(&source).unwrap();
                prop_assert!(pattern.matches(&normalised), "{} vs {}", source, written);
            }
            let source = format!("/{}", with_wildcards(&segments, wild).join("/"));
            let pattern = PathPattern::parse(&source).unwrap();
            prop_assert!(pattern.matches(&normalised), "{} vs {}", source, written);
        }

        // And the other way: a path that climbs out of a prefix with `..`, however the dots are
        // written, is not under it.
        #[test]
        fn dot_segments_never_reach_under_a_prefix_from_outside(
            prefix in prop::collection::vec("[a-z]{1,8}", 1..4),
            outside in "[a-z]{1,8}",
            dots in prop::sample::select(vec!["..", "%2e%2e", "%2E.", ".%2e", "%2e%2E"]),
            mask in any::<u32>(),
        ) {
            prop_assume!(outside != prefix[prefix.len() - 1]);
            let pattern = PathPattern::parse(&format!("/{}/**", prefix.join("/"))).unwrap();
            // `/a/b` + `/../c` is `/a/c`: a sibling of the last prefix segment.
            let mut written = String::new();
            for s in &prefix {
                written.push('/');
                written.push_str(&encode_variant(s, mask));
            }
            written.push_str(&format!("/{dots}/{outside}/x"));
            let normalised = normalize_path(&written).unwrap();
            prop_assert!(!pattern.matches(&normalised), "{} matched {}", written, normalised);
        }
    }
}
