//! The claims reader (duplicate-refusing, typed, borrowing) and the claim mapping
//! (`portcullis::__fuzz::jwt_claims`): subject, `scope`/`scp`, groups from up to three claim
//! paths (plain, namespaced, nested `a.b.c`), time claims as integers, floats, strings, huge
//! numbers.
//!
//! Input: a flags byte (bit 0: an introspection answer, bit 1: `max_lifetime` of 24 h), then
//! optionally the groups claim paths, comma-separated, ended by a `0xFF` byte (default:
//! `groups`), then the claims document.
//!
//! Checked against an independent reading with `serde_json::Value`:
//! - a document with a repeated member name at any depth, or that is not one JSON object, is
//!   refused;
//! - an accepted document's subject, kind, scopes and groups are exactly what the mapping rules
//!   give (first-seen order, no repeats, no empty names): a list is never cut short. When the
//!   names would number more than the documented cap (256), the document is refused;
//! - accepted time claims are in range, `exp` is not past (30 s leeway), and `expires_at` /
//!   `issued_at` are `exp` / `iat` rounded down;
//! - a refusal allocates at most `K`·len + `C` bytes.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::jwt_claims;
use portcullis::SubjectKind;
use serde_json::{Map, Value};

use common::{DOCUMENT_C as C, DOCUMENT_K as K};
/// The documented cap on scopes and on groups.
const MAX_NAMES: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let introspection = flags & 1 != 0;
    let max_lifetime = (flags & 2 != 0).then(|| Duration::from_secs(86_400));
    let (paths, json): (Vec<&str>, &[u8]) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => {
            let Ok(paths) = std::str::from_utf8(&rest[..at]) else {
                return;
            };
            (paths.split(',').take(3).collect(), &rest[at + 1..])
        }
        None => (vec!["groups"], rest),
    };

    let (result, peak) = common::peak(|| jwt_claims(json, &paths, introspection, max_lifetime));
    let principal = match result {
        Err(None) => return, // a claim path the configuration refuses
        Err(Some(_)) => {
            common::assert_refusal_bound("jwt_claims", peak, json.len(), K, C);
            return;
        }
        Ok(principal) => principal,
    };

    assert_eq!(
        common::has_duplicates(json),
        Some(false),
        "repeated member accepted"
    );
    let value: Value = serde_json::from_slice(json).expect("accepted claims are JSON");
    let claims = value.as_object().expect("accepted claims are an object");

    // The subject.
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    for name in [
        "sub",
        "client_id",
        "username",
        "gty",
        "scope",
        "jti",
        "iss",
        "token_type",
    ] {
        let v = claims.get(name).unwrap_or(&Value::Null);
        assert!(
            v.is_null() || v.is_string(),
            "{name} of the wrong type accepted"
        );
    }
    let sub = text("sub");
    let username = if introspection {
        text("username")
    } else {
        None
    };
    let client_id = text("client_id");
    let (subject, from_client_id) = match (sub, username, client_id) {
        (Some(s), _, _) => (s, false),
        (None, Some(u), _) => (u, false),
        (None, None, Some(c)) => (c, true),
        (None, None, None) => panic!("accepted without a subject"),
    };
    assert_eq!(principal.subject(), subject);
    assert!(!subject.is_empty() && !subject.chars().any(char::is_control));
    let application =
        from_client_id || client_id == Some(subject) || text("gty") == Some("client-credentials");
    assert_eq!(principal.kind() == SubjectKind::Application, application);

    // Scopes: `scope` split on spaces, then `scp` (a string split the same way, or an array).
    let mut scopes = Names::default();
    if let Some(scope) = text("scope") {
        scope.split(' ').for_each(|s| scopes.add(s));
    }
    match claims.get("scp") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => s.split(' ').for_each(|s| scopes.add(s)),
        Some(Value::Array(items)) => {
            assert!(
                items.len() <= MAX_NAMES,
                "an scp array over the cap accepted"
            );
            for item in items {
                let s = item.as_str().expect("scp members are strings");
                assert!(!s.is_empty(), "an empty scp member accepted");
                scopes.add(s);
            }
        }
        Some(_) => panic!("scp of the wrong type accepted"),
    }

    // Groups: each path whole as a top-level name first, else through nested objects.
    let mut groups = Names::default();
    for path in &paths {
        let Some(found) = lookup(claims, path) else {
            continue;
        };
        match found {
            Value::String(s) => groups.add(s),
            Value::Array(items) => {
                for item in items {
                    let s = item.as_str().expect("group members are strings");
                    assert!(!s.is_empty(), "an empty group name accepted");
                    groups.add(s);
                }
            }
            other => panic!("groups claim {path} of the wrong type accepted: {other}"),
        }
    }
    assert!(
        scopes.0.len() <= MAX_NAMES,
        "{} scopes accepted",
        scopes.0.len()
    );
    assert!(
        groups.0.len() <= MAX_NAMES,
        "{} groups accepted",
        groups.0.len()
    );
    // Refused, never truncated: the principal carries every name.
    assert_eq!(principal.scopes(), &scopes.0[..], "scopes");
    assert_eq!(principal.groups(), &groups.0[..], "groups of {paths:?}");

    // Times.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let number = |name: &str| {
        let v = claims.get(name).unwrap_or(&Value::Null);
        assert!(
            v.is_null() || v.is_number(),
            "{name} of the wrong type accepted"
        );
        v.as_f64()
    };
    let (exp, nbf, iat) = (number("exp"), number("nbf"), number("iat"));
    if let Some(exp) = exp {
        assert!(exp + 30.0 > now - 1.0, "an expired token accepted");
        assert!(exp.abs() < 1e15);
        assert_eq!(
            principal.expires_at().map(|t| t.timestamp()),
            Some(exp.floor() as i64)
        );
    } else {
        assert!(
            max_lifetime.is_none(),
            "no exp with a lifetime cap accepted"
        );
        assert_eq!(principal.expires_at(), None);
    }
    if let Some(nbf) = nbf {
        assert!(nbf <= now + 31.0, "nbf in the future accepted");
    }
    if let Some(iat) = iat {
        assert!(iat <= now + 31.0, "iat in the future accepted");
        assert!(iat.abs() < 1e15);
        assert_eq!(
            principal.issued_at().map(|t| t.timestamp()),
            Some(iat.floor() as i64)
        );
    }
    if let (Some(exp), Some(_)) = (exp, max_lifetime) {
        assert!(
            exp - iat.unwrap_or(now) <= 86_400.0 + 30.0 + 1.0,
            "lifetime over the cap"
        );
    }
});

/// A claim path's value: the top-level member of that whole name, else the path followed
/// through nested objects segment by segment.
fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut segments = path.split('.');
    let mut v = claims.get(segments.next()?)?;
    for s in segments {
        v = v.as_object()?.get(s)?;
    }
    Some(v)
}

#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn add(&mut self, name: &str) {
        if !name.is_empty() && !self.0.iter().any(|n| n == name) {
            self.0.push(name.to_owned());
        }
    }
}
