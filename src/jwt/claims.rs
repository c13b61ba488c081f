//! Verified claims → [`Principal`]: subject, kind, scopes, groups, credential id and times.
//!
//! Every claim that shapes the principal is read as a typed value: `sub` must be a string, `scope`
//! a string, `scp` a string or an array of strings, a groups claim a string or an array of strings.
//! A claim of another type refuses the token rather than being ignored or coerced, so `"sub":
//! ["admin"]` or `"scope": {"admin": true}` never means something by accident.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::error::{TokenError, TokenErrorKind};
use crate::error::ConfigError;
use crate::principal::{Principal, Scheme, SubjectKind};

/// The most groups, or scopes, one token may carry.
const MAX_LIST_LEN: usize = 256;

/// A claim, by name or by a dotted path into nested objects: `groups`, `roles`,
/// `cognito:groups`, `realm_access.roles` (Keycloak), `resource_access.my-api.roles`.
///
/// A name that contains dots and exists as a top-level claim is taken whole first, so a namespaced
/// claim such as `https://example.com/roles` (Auth0) works too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimPath {
    path: String,
}

impl ClaimPath {
    /// A claim path. Checked when the authenticator is built: no empty segment.
    pub fn new(path: impl Into<String>) -> Self {
        Self { path: path.into() }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let whole_is_name = !self.path.is_empty() && !self.path.contains(['/', ':']);
        if self.path.is_empty() || (whole_is_name && self.path.split('.').any(str::is_empty)) {
            return Err(ConfigError::new(format!(
                "`{}` is not a claim path (names separated by single dots)",
                self.path
            ))
            .with_key(key));
        }
        Ok(())
    }

    fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(value) = claims.get(&self.path) {
            return Some(value);
        }
        let mut segments = self.path.split('.');
        let mut value = claims.get(segments.next()?)?;
        for segment in segments {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }
}

impl From<&str> for ClaimPath {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

impl From<String> for ClaimPath {
    fn from(path: String) -> Self {
        Self::new(path)
    }
}

/// Which claims become the principal's groups. Subject, kind and scopes follow fixed rules:
///
/// - **subject**: `sub`; without `sub`, `client_id` (RFC 9068 §2.2; for introspection also
///   `username`, RFC 7662 §2.2).
/// - **kind**: an application when the subject came from `client_id`, when `sub` equals
///   `client_id` (a client-credentials token, RFC 9068 §2.2), or when `gty` is
///   `client-credentials` (Auth0); otherwise a user.
/// - **scopes**: `scope`, space-delimited (RFC 8693 §4.2); and `scp`, an array or a
///   space-delimited string (Azure AD, Okta).
/// - **credential id**: `jti`. **issued at / expires at**: `iat` / `exp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimMapping {
    groups: Vec<ClaimPath>,
}

impl Default for ClaimMapping {
    /// Groups from the `groups` claim.
    fn default() -> Self {
        Self {
            groups: vec![ClaimPath::new("groups")],
        }
    }
}

impl ClaimMapping {
    /// The default mapping: groups from `groups`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups from these claims, merged in order (replacing the default `groups`). An absent claim
    /// adds nothing; a claim of the wrong type refuses the token.
    pub fn groups_claims<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<ClaimPath>,
    {
        self.groups = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Groups from this one claim (replacing the default `groups`).
    pub fn groups_claim(self, path: impl Into<ClaimPath>) -> Self {
        self.groups_claims([path.into()])
    }

    /// The claims groups are read from.
    pub fn groups(&self) -> &[ClaimPath] {
        &self.groups
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.groups.iter().try_for_each(|path| path.validate(key))
    }

    /// Builds the principal from verified claims, which it then carries.
    pub(crate) fn principal(
        &self,
        claims: Map<String, Value>,
        scheme: Scheme,
        times: Times,
    ) -> Result<Principal, TokenError> {
        let sub = string_claim(&claims, "sub")?;
        let client_id = string_claim(&claims, "client_id")?;
        let username = match scheme {
            Scheme::Introspection => string_claim(&claims, "username")?,
            _ => None,
        };
        let grant = string_claim(&claims, "gty")?;
        let (subject, from_client_id) = match (sub, username, client_id) {
            (Some(sub), _, _) => (sub, false),
            (None, Some(name), _) => (name, false),
            (None, None, Some(client)) => (client, true),
            (None, None, None) => {
                return Err(TokenError::new(
                    TokenErrorKind::MissingClaim,
                    "no `sub` or `client_id` to name the subject",
                ));
            }
        };
        if subject.is_empty() || subject.chars().any(char::is_control) {
            return Err(TokenError::malformed(
                "the subject is empty or has a control character",
            ));
        }
        let application =
            from_client_id || client_id == Some(subject) || grant == Some("client-credentials");
        let kind = if application {
            SubjectKind::Application
        } else {
            SubjectKind::User
        };

        let mut scopes: Vec<&str> = Vec::new();
        if let Some(scope) = string_claim(&claims, "scope")? {
            scopes.extend(scope.split(' ').filter(|s| !s.is_empty()));
        }
        if let Some(scp) = claims.get("scp") {
            add_names(&mut scopes, scp, "scp", true)?;
        }

        let mut groups: Vec<&str> = Vec::new();
        for path in &self.groups {
            if let Some(value) = path.lookup(&claims) {
                add_names(&mut groups, value, path.as_str(), false)?;
            }
        }
        if scopes.len() > MAX_LIST_LEN || groups.len() > MAX_LIST_LEN {
            return Err(TokenError::malformed(format!(
                "more than {MAX_LIST_LEN} scopes or groups"
            )));
        }
        dedup(&mut scopes);
        dedup(&mut groups);

        let mut principal = Principal::new(subject, kind, scheme)
            .with_scopes(scopes)
            .with_groups(groups);
        if let Some(jti) = string_claim(&claims, "jti")? {
            principal = principal.with_credential_id(jti);
        }
        if let Some(at) = times.issued_at {
            principal = principal.with_issued_at(at);
        }
        if let Some(at) = times.expires_at {
            principal = principal.with_expires_at(at);
        }
        Ok(principal.with_claims(claims))
    }
}

/// The credential times, already checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) issued_at: Option<DateTime<Utc>>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// A claim that must be a string when present.
pub(crate) fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::malformed(format!("`{name}` is not a string"))),
    }
}

/// Adds the names in `value`: an array of strings, or one string (split on spaces when
/// `space_delimited`).
fn add_names<'a>(
    out: &mut Vec<&'a str>,
    value: &'a Value,
    claim: &str,
    space_delimited: bool,
) -> Result<(), TokenError> {
    let wrong =
        || TokenError::malformed(format!("`{claim}` is not a string or an array of strings"));
    match value {
        Value::String(s) if space_delimited => out.extend(s.split(' ').filter(|s| !s.is_empty())),
        Value::String(s) if !s.is_empty() => out.push(s),
        Value::String(_) => {}
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) if !s.is_empty() => out.push(s),
                    _ => return Err(wrong()),
                }
            }
        }
        _ => return Err(wrong()),
    }
    Ok(())
}

/// Removes repeats, keeping the first of each. Quadratic, which beats hashing for the handful of
/// names a token carries; lists are capped at `MAX_LIST_LEN` before this runs.
fn dedup(names: &mut Vec<&str>) {
    let mut kept = 0;
    for i in 0..names.len() {
        if !names[..kept].contains(&names[i]) {
            names[kept] = names[i];
            kept += 1;
        }
    }
    names.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn map(mapping: &ClaimMapping, json: &str) -> Result<Principal, TokenError> {
        mapping.principal(claims(json), Scheme::Jwt, Times::default())
    }

    #[test]
    fn keycloak_cognito_and_plain_groups() {
        let keycloak = ClaimMapping::new().groups_claim("realm_access.roles");
        let p = map(
            &keycloak,
            r#"{"sub":"u","realm_access":{"roles":["a","b","a"]}}"#,
        )
        .unwrap();
        assert_eq!(p.groups(), ["a", "b"]);
        let cognito = ClaimMapping::new().groups_claim("cognito:groups");
        let p = map(&cognito, r#"{"sub":"u","cognito:groups":["admins"]}"#).unwrap();
        assert_eq!(p.groups(), ["admins"]);
        let auth0 = ClaimMapping::new().groups_claim("https://example.com/roles");
        let p = map(&auth0, r#"{"sub":"u","https://example.com/roles":"ops"}"#).unwrap();
        assert_eq!(p.groups(), ["ops"]);
        let p = map(&ClaimMapping::new(), r#"{"sub":"u"}"#).unwrap();
        assert!(p.groups().is_empty());
    }

    #[test]
    fn wrong_types_refuse_the_token() {
        let m = ClaimMapping::new();
        for bad in [
            r#"{"sub":["admin"]}"#,
            r#"{"sub":"u","scope":["admin"]}"#,
            r#"{"sub":"u","scp":{"admin":true}}"#,
            r#"{"sub":"u","groups":[1]}"#,
            r#"{"sub":"u","groups":{"admin":true}}"#,
            r#"{"sub":"u","jti":7}"#,
            r#"{"client_id":42}"#,
            r#"{"sub":""}"#,
        ] {
            assert_eq!(
                map(&m, bad).unwrap_err().kind(),
                TokenErrorKind::Malformed,
                "{bad}"
            );
        }
        assert_eq!(
            map(&m, r#"{"iss":"x"}"#).unwrap_err().kind(),
            TokenErrorKind::MissingClaim
        );
    }

    #[test]
    fn subject_kind_and_scopes() {
        let m = ClaimMapping::new();
        let p = map(&m, r#"{"client_id":"svc","scope":"read  write"}"#).unwrap();
        assert_eq!((p.subject(), p.kind()), ("svc", SubjectKind::Application));
        assert_eq!(p.scopes(), ["read", "write"]);
        let p = map(&m, r#"{"sub":"svc","client_id":"svc","scp":["a","b"]}"#).unwrap();
        assert_eq!(p.kind(), SubjectKind::Application);
        assert_eq!(p.scopes(), ["a", "b"]);
        let p = map(
            &m,
            r#"{"sub":"alice","client_id":"web","scp":"x y","jti":"j1"}"#,
        )
        .unwrap();
        assert_eq!((p.subject(), p.kind()), ("alice", SubjectKind::User));
        assert_eq!(p.scopes(), ["x", "y"]);
        assert_eq!(p.credential_id(), Some("j1"));
        assert_eq!(p.claims().unwrap()["client_id"], "web");
        let p = map(&m, r#"{"sub":"x@clients","gty":"client-credentials"}"#).unwrap();
        assert_eq!(p.kind(), SubjectKind::Application);
    }

    #[test]
    fn paths_are_validated() {
        assert!(ClaimPath::new("realm_access.roles").validate("k").is_ok());
        assert!(
            ClaimPath::new("https://x.example/roles")
                .validate("k")
                .is_ok()
        );
        for bad in ["", "a..b", ".a", "a."] {
            assert!(ClaimPath::new(bad).validate("k").is_err(), "{bad}");
        }
    }
}
