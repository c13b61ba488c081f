//! Route rules: `(methods, path pattern) → policy`, first match wins, matched on the path exactly
//! as the client sent it.
//!
//! The Gate never cleans a path up: axum routes the raw path, actix-web routes it after decoding
//! most escapes, and an upstream behind a proxy may do either, so any path the Gate rewrote could
//! be routed to another handler than the one its rule names. Instead, [`check_path`] refuses (400)
//! every path that two readers could route differently, and what is left is matched byte for
//! byte. Patterns hold only characters that no reader decodes, so a pattern names the same paths
//! for all of them.

use std::fmt;
use std::sync::Arc;

use http::Method;

use crate::error::ConfigError;
use crate::policy::Policy;

/// A path pattern: exact (`/me`), prefix (`/admin/**`, which also matches `/admin` and
/// `/admin/`), or with single-segment wildcards (`/users/*/keys`; `*` matches one non-empty
/// segment). A trailing slash is significant: `/me` does not match `/me/`.
///
/// Patterns hold only unreserved characters (RFC 3986 §2.3: letters, digits, `-._~`), `/` and
/// `*`, and no empty, `.` or `..` segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathPattern {
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
    pub(crate) fn parse(pattern: &str) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError::new(format!("route pattern `{pattern}`: {why}"));
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(bad("must start with `/`".into()));
        };
        if let Some((at, c)) = pattern
            .char_indices()
            .find(|&(_, c)| !(is_unreserved_char(c) || c == '/' || c == '*'))
        {
            return Err(bad(format!(
                "`{}` at byte {at}: patterns hold only letters, digits, `-._~`, `/` and `*`",
                c.escape_default()
            )));
        }
        let (body, prefix) = match rest.strip_suffix("/**") {
            Some(body) => (body, true),
            None if rest == "**" => ("", true),
            None => (rest, false),
        };
        let mut segments = Vec::new();
        if rest != "**" {
            let count = body.split('/').count();
            for (i, segment) in body.split('/').enumerate() {
                let last = i + 1 == count;
                segments.push(match segment {
                    // A trailing slash is an empty last segment, as in a request path.
                    "" if last && !prefix => Segment::Literal(String::new()),
                    "" => return Err(bad("has an empty segment (`//`)".into())),
                    "." | ".." => {
                        return Err(bad(format!("has a `{segment}` segment")));
                    }
                    "*" => Segment::Any,
                    s if s.contains('*') => {
                        return Err(bad(
                            "`*` and `**` must stand alone, `**` only at the end".into()
                        ));
                    }
                    s => Segment::Literal(s.to_owned()),
                });
            }
        }
        Ok(Self {
            source: pattern.to_owned(),
            segments,
            prefix,
        })
    }

    /// Whether the pattern matches `path`, byte for byte. The Gate only matches paths that
    /// [`check_path`] accepted; any other string is simply compared.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut path = rest.split('/');
        for segment in &self.segments {
            match (segment, path.next()) {
                (_, None) => return false,
                (Segment::Any, Some(seg)) if !seg.is_empty() => {}
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

/// Why a request path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AmbiguousPath(&'static str);

impl fmt::Display for AmbiguousPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Refuses a request path that two readers (the Gate, axum, actix-web, an upstream server) could
/// route differently: a `.` or `..` segment; an empty segment (`//`; a trailing slash is fine); a
/// `%XX` escape of an unreserved character, `/`, `\`, `%`, `;` or a control byte; a malformed
/// `%`; a raw `\` or control byte. `*` (the target of `OPTIONS *`) is accepted and matches no
/// pattern. Linear in the path's length, allocates nothing.
pub(crate) fn check_path(path: &str) -> Result<(), AmbiguousPath> {
    if path == "*" {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(AmbiguousPath("path does not start with `/`"));
    };
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(AmbiguousPath("path contains `\\`")),
            b if b.is_ascii_control() => {
                return Err(AmbiguousPath("path contains a control character"));
            }
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(AmbiguousPath(
                        "path has a `%` not followed by two hex digits",
                    ))?;
                if is_unreserved(decoded)
                    || matches!(decoded, b'/' | b'\\' | b'%' | b';')
                    || decoded.is_ascii_control()
                {
                    return Err(AmbiguousPath(
                        "path escapes a character that must be sent as itself or not at all",
                    ));
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        match segment {
            "" if segments.peek().is_some() => {
                return Err(AmbiguousPath("path has an empty segment (`//`)"));
            }
            "." | ".." => return Err(AmbiguousPath("path has a `.` or `..` segment")),
            _ => {}
        }
    }
    Ok(())
}

/// RFC 3986 §2.3 unreserved characters: the ones every reader treats the same escaped or not.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_unreserved_char(c: char) -> bool {
    c.is_ascii() && is_unreserved(c as u8)
}

/// Which methods a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Methods {
    /// Every method.
    Any,
    /// Only these. `HEAD` is decided as the `GET` the server runs for it, so a rule for `GET`
    /// covers `HEAD`, and a list naming `HEAD` without `GET` is refused when the rule is built.
    Only(Vec<Method>),
}

impl Methods {
    /// Refuses `HEAD` without `GET`: servers answer `HEAD` with the `GET` handler, so such a rule
    /// would decide requests that run a handler it does not name.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match self {
            Methods::Only(list) if list.contains(&Method::HEAD) && !list.contains(&Method::GET) => {
                Err(ConfigError::new(
                    "a rule naming HEAD must also name GET: HEAD runs the GET handler and is \
                     decided as GET",
                ))
            }
            _ => Ok(()),
        }
    }

    fn matches(&self, method: &Method) -> bool {
        match self {
            Methods::Any => true,
            Methods::Only(list) => {
                let method = if *method == Method::HEAD {
                    &Method::GET
                } else {
                    method
                };
                list.contains(method)
            }
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
pub(crate) struct Route {
    pub(crate) methods: Methods,
    pub(crate) pattern: PathPattern,
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) name: String,
}

impl Route {
    /// A rule for `methods` on paths matching `pattern`, decided by `policy`.
    /// Fails on a malformed pattern, or a method list naming `HEAD` without `GET`.
    pub(crate) fn new(
        methods: Methods,
        pattern: &str,
        policy: impl Policy,
    ) -> Result<Self, ConfigError> {
        methods.check()?;
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
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn matches(&self, method: &Method, path: &str) -> bool {
        self.methods.matches(method) && self.pattern.matches(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_long_segment_list_does_not_match_a_shorter_pattern() {
        let pattern = PathPattern::parse("/users/*/keys").unwrap();
        let many = "/users/x/keys".to_owned() + &"/k".repeat(4000);
        assert!(!pattern.matches(&many));
        assert!(pattern.matches("/users/x/keys"));
    }

    #[test]
    fn paths_two_readers_could_route_differently_are_refused() {
        for path in [
            "/admin/../health",
            "/admin/%2e%2e/health",
            "/admin/%2E%2E/health",
            "/admin/./../health",
            "/admin/users/x/../../../health",
            "/admin/.",
            "/./admin",
            "/..",
            "//admin",
            "/admin//users",
            "/%70ublic/x",
            "/adm%69n",
            "/a%2Fb",
            "/a%2fb",
            "/a%5Cb",
            "/a\\b",
            "/a%25b",
            "/a%3Bb",
            "/a%3bb",
            "/a%7E",
            "/a%2D",
            "/a%5F",
            "/a%00b",
            "/a%0A",
            "/a%7F",
            "/a%",
            "/a%4",
            "/a%zz",
            "/a%%41",
            "/a\tb",
            "admin",
            "",
        ] {
            assert!(check_path(path).is_err(), "{path:?} accepted");
        }
        for path in [
            "/",
            "*",
            "/admin",
            "/admin/",
            "/a%20b",
            "/a%2Bb",
            "/caf%C3%A9",
            "/café",
            "/a;b",
            "/a.b/c..d/.e/f.",
            "/~user",
            "/a%3Ab%40c",
        ] {
            assert_eq!(check_path(path), Ok(()), "{path:?} refused");
        }
    }

    #[test]
    fn patterns_match_as_documented() {
        let prefix = PathPattern::parse("/admin/**").unwrap();
        assert!(prefix.matches("/admin"));
        assert!(prefix.matches("/admin/"));
        assert!(prefix.matches("/admin/users/1"));
        assert!(!prefix.matches("/administrator"));
        assert!(!prefix.matches("/Admin"));
        let wild = PathPattern::parse("/users/*/keys").unwrap();
        assert!(wild.matches("/users/42/keys"));
        assert!(!wild.matches("/users/keys"));
        assert!(!wild.matches("/users/1/2/keys"));
        assert!(!wild.matches("/users/42/keys/"));
        let exact = PathPattern::parse("/me").unwrap();
        assert!(exact.matches("/me"));
        assert!(!exact.matches("/me/"), "a trailing slash is significant");
        let slash = PathPattern::parse("/me/").unwrap();
        assert!(slash.matches("/me/"));
        assert!(!slash.matches("/me"));
        let last = PathPattern::parse("/users/*").unwrap();
        assert!(!last.matches("/users/"), "`*` matches a non-empty segment");
        let root = PathPattern::parse("/").unwrap();
        assert!(root.matches("/"));
        assert!(!root.matches("/x"));
        let all = PathPattern::parse("/**").unwrap();
        assert!(all.matches("/"));
        assert!(all.matches("/anything/at/all/"));
        assert!(
            !all.matches("*"),
            "`OPTIONS *` matches no pattern, only the default rule"
        );
    }

    #[test]
    fn patterns_hold_only_what_no_reader_decodes() {
        for bad in [
            "admin", "/a/**/b", "/a*", "/a**", "//**", "/a//b", "/a/../b", "/a/./b", "/%61dmin",
            "/a;b", "/a b", "/a\\b", "/café", "/a:b", "/{id}",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        let err = PathPattern::parse("/%61dmin").unwrap_err();
        assert!(err.message().contains("`%` at byte 1"), "{err}");
    }

    #[test]
    fn head_is_decided_as_get() {
        let get = Methods::Only(vec![Method::GET]);
        assert!(get.matches(&Method::HEAD));
        assert!(!get.matches(&Method::POST));
        let head = Methods::Only(vec![Method::HEAD]);
        assert!(head.check().is_err(), "HEAD without GET");
        assert!(
            Methods::Only(vec![Method::HEAD, Method::GET])
                .check()
                .is_ok()
        );
        assert!(Route::new(head, "/**", crate::Public).is_err());
        let lowercase = Method::from_bytes(b"get").unwrap();
        assert!(
            !get.matches(&lowercase),
            "`get` is another method than `GET`"
        );
    }

    /// A naive model of a pattern: compare segment lists.
    fn model_matches(pattern: &str, path: &str) -> bool {
        let path: Vec<&str> = path[1..].split('/').collect();
        let (body, prefix) = match pattern.strip_suffix("/**") {
            Some(body) => (body, true),
            None if pattern == "/**" => ("", true),
            None => (pattern, false),
        };
        let pattern: Vec<&str> = if prefix && body.is_empty() {
            Vec::new()
        } else {
            body[1..].split('/').collect()
        };
        if path.len() < pattern.len() || (!prefix && path.len() != pattern.len()) {
            return false;
        }
        pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| if *p == "*" { !s.is_empty() } else { p == s })
    }

    fn segment() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "b", "A", "%61", "x.y", "~", "%20", "%2B", "é", ";", "*x",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        // Matching agrees with the naive model for every accepted path, whatever the pattern.
        #[test]
        fn matching_agrees_with_a_naive_model(
            path in prop::collection::vec(segment(), 0..5),
            trailing in any::<bool>(),
            pattern in prop::collection::vec(
                prop::sample::select(vec!["a", "b", "A", "*", "x.y", "~"]), 0..5),
            tail in prop::sample::select(vec!["", "/", "/**"]),
        ) {
            let path = format!("/{}{}", path.join("/"), if trailing { "/" } else { "" });
            let pattern = format!("/{}{tail}", pattern.join("/"));
            let pattern = pattern.replace("//", "/");
            prop_assume!(check_path(&path).is_ok());
            let Ok(parsed) = PathPattern::parse(&pattern) else {
                return Err(TestCaseError::reject("not a pattern"));
            };
            prop_assert_eq!(parsed.matches(&path), model_matches(&pattern, &path),
                "{} vs {}", pattern, path);
        }

        // Any path that the check accepts and no reader could decode further is matched by its
        // own exact pattern, and by the prefix pattern of each of its prefixes.
        #[test]
        fn a_path_matches_its_own_patterns(
            segments in prop::collection::vec("[a-zA-Z0-9~_-][a-zA-Z0-9._~-]{0,6}", 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let path = format!("/{}", segments.join("/"));
            prop_assume!(check_path(&path).is_ok());
            prop_assert!(PathPattern::parse(&path).unwrap().matches(&path));
            let prefix = &segments[..cut.index(segments.len() + 1)];
            let source = format!("/{}/**", prefix.join("/")).replace("//", "/");
            prop_assert!(PathPattern::parse(&source).unwrap().matches(&path), "{}", source);
        }

        // Inserting any ambiguous element anywhere makes the path refused.
        #[test]
        fn an_ambiguous_element_anywhere_is_refused(
            segments in prop::collection::vec("[a-z]{1,6}", 1..5),
            at in any::<prop::sample::Index>(),
            bad in prop::sample::select(vec![
                "/../", "/./", "//", "/%2e%2e/", "/%2E./", "%41", "%2f", "%5C", "\\", "%25",
                "%3B", "%-", "%0", "%g0", "%00", "\u{7f}",
            ]),
        ) {
            let mut path = format!("/{}", segments.join("/"));
            let mut i = 1 + at.index(path.len());
            while !path.is_char_boundary(i) {
                i -= 1;
            }
            path.insert_str(i, bad);
            prop_assert!(check_path(&path).is_err(), "{:?} accepted", path);
        }
    }
}
