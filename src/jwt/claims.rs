//! Verified claims → [`Principal`]: subject, kind, scopes, groups, credential id and times.
//!
//! Every claim that shapes the principal is read as a typed value: `sub` must be a string, `scope`
//! a string, `scp` a string or an array of strings, a groups claim a string or an array of strings.
//! A claim of another type refuses the token rather than being ignored or coerced, so `"sub":
//! ["admin"]` or `"scope": {"admin": true}` never means something by accident.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::{TokenError, TokenErrorKind};
use crate::error::ConfigError;
use crate::json::{Skip, Str, Strict, UniqueNames};
use crate::principal::{Principal, Scheme, SubjectKind};

/// The most groups, or scopes, one token may carry.
const MAX_LIST_LEN: usize = 256;

/// The claims `ClaimsVisitor` reads into fields of their own; a groups path cannot name them.
const READ_AS_REGISTERED: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "username",
    "gty",
    "scope",
    "scp",
    "active",
    "token_type",
];

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
        // The reader takes these into their own fields, so a groups path naming one (`scope`),
        // or leading into one (`active.roles`), would find nothing: no groups, silently, which
        // `Not(Groups)` would read as "not in the group".
        let first = self.path.split('.').next().unwrap_or_default();
        if let Some(name) = READ_AS_REGISTERED
            .iter()
            .find(|name| **name == self.path || **name == first)
        {
            return Err(ConfigError::new(format!(
                "`{}` cannot be a groups claim: `{name}` is read as a registered claim",
                self.path
            ))
            .with_key(key));
        }
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

    /// Whether this path leads into the top-level claim `name` (`realm_access.roles` into
    /// `realm_access`).
    fn descends_from(&self, name: &str) -> bool {
        self.path
            .split_once('.')
            .is_some_and(|(first, _)| first == name)
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

    /// Builds the principal from verified claims: `_verified` is the proof that they are, which
    /// only a passed signature check or an active introspection answer makes. The caller
    /// attaches the claims document.
    pub(crate) fn principal(
        &self,
        claims: &Claims<'_>,
        scheme: Scheme,
        times: Times,
        _verified: Verified,
    ) -> Result<Principal, TokenError> {
        let sub = claims.sub.as_deref();
        let client_id = claims.client_id.as_deref();
        let username = match scheme {
            Scheme::INTROSPECTION => claims.username.as_deref(),
            _ => None,
        };
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
        let application = from_client_id
            || client_id == Some(subject)
            || claims.gty.as_deref() == Some("client-credentials");
        let kind = if application {
            SubjectKind::Application
        } else {
            SubjectKind::User
        };

        let mut scopes = Names::default();
        if let Some(scope) = &claims.scope {
            scope.split(' ').for_each(|s| scopes.add(s));
        }
        match &claims.scp {
            None => {}
            Some(Listed::One(scp)) => scp.split(' ').for_each(|s| scopes.add(s)),
            Some(Listed::Many(items)) => add_items(&mut scopes, items, "scp")?,
        }

        let mut groups = Names::default();
        for path in &self.groups {
            let whole = claims
                .group_lists
                .iter()
                .find(|(name, _)| name == path.as_str());
            match whole {
                Some((_, Listed::One(name))) => groups.add(name),
                Some((_, Listed::Many(items))) => add_items(&mut groups, items, path.as_str())?,
                None => {
                    if let Some(value) = path.lookup(&claims.group_roots) {
                        add_value(&mut groups, value, path.as_str())?;
                    }
                }
            }
        }
        if scopes.0.len() > MAX_LIST_LEN || groups.0.len() > MAX_LIST_LEN {
            return Err(TokenError::malformed(format!(
                "more than {MAX_LIST_LEN} scopes or groups"
            )));
        }

        let mut principal = Principal::new(subject, kind, scheme);
        principal.set_names(groups.0, scopes.0);
        principal.set_credential(claims.jti.as_deref(), times.issued_at, times.expires_at);
        if let Some(cnf) = &claims.cnf {
            cnf.check()?;
            principal.set_bound_jkt(cnf.jkt.as_deref());
            principal.set_bound_x5t(cnf.x5t_s256.as_deref());
        }
        Ok(principal)
    }
}

/// Proof that a claims document may become a principal: its token's signature verified under a
/// trusted key, or the introspection endpoint answered `active: true` for it. Claim mapping
/// ([`ClaimMapping::principal`]) takes one, so no path maps claims nobody vouched for, as rustls's
/// `HandshakeSignatureValid` is the only way past its handshake checks. Only the checks below
/// make one (and fuzzing, through `__fuzz`, which cannot sign).
#[derive(Debug)]
#[must_use]
pub(crate) struct Verified(());

impl Verified {
    /// Verifies `signature` over `signing_input` with `key`: the proof when it holds.
    #[cfg(feature = "jwt")]
    pub(super) fn signature(
        key: &super::keys::VerifyingKey,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Option<Self> {
        key.verify(signing_input, signature).then_some(Self(()))
    }

    /// An introspection answer (from the configured endpoint, over the authenticated call) that
    /// says `active: true`: the proof when it does.
    #[cfg(feature = "introspection")]
    pub(super) fn active(answer: &Claims<'_>) -> Option<Self> {
        (answer.active == Some(Some(true))).then_some(Self(()))
    }

    /// For fuzz targets (and this module's tests), which map made-up claims without a key.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn for_fuzzing() -> Self {
        Self(())
    }
}

/// The claims portcullis reads, as typed values borrowed from the claims document. Every other
/// member is checked (valid JSON, no repeated member names at any depth) and skipped, so a large
/// token costs no allocation for the claims nobody maps; [`Principal::claims`] parses the whole
/// document when a handler asks for it.
///
/// A mapped claim of the wrong type (`"sub": ["admin"]`, `"exp": "1700000000"`, `"aud": 7`)
/// fails the parse. `null` counts as absent, except as a groups claim, where it is neither a
/// string nor an array of strings and refuses the token (found by the `jwt_differential` fuzz
/// target; fail-closed, so kept).
#[derive(Default)]
pub(crate) struct Claims<'a> {
    pub(crate) iss: Option<Cow<'a, str>>,
    pub(crate) sub: Option<Cow<'a, str>>,
    pub(crate) aud: Option<Listed<'a>>,
    pub(crate) exp: Option<f64>,
    pub(crate) nbf: Option<f64>,
    pub(crate) iat: Option<f64>,
    pub(crate) jti: Option<Cow<'a, str>>,
    pub(crate) client_id: Option<Cow<'a, str>>,
    pub(crate) username: Option<Cow<'a, str>>,
    pub(crate) gty: Option<Cow<'a, str>>,
    pub(crate) scope: Option<Cow<'a, str>>,
    pub(crate) scp: Option<Listed<'a>>,
    /// Introspection's answer (RFC 7662 §2.2); `Some(None)` when it is not a boolean, which is
    /// the endpoint's fault rather than the token's.
    pub(crate) active: Option<Option<bool>>,
    /// Introspection's `token_type` (RFC 7662 §2.2): `Bearer` for an access token; a refresh
    /// token, if the endpoint names it, says so here.
    pub(crate) token_type: Option<Cow<'a, str>>,
    /// The confirmation members (`cnf`, RFC 7800) portcullis reads: `jkt` (RFC 9449 §6) and
    /// `x5t#S256` (RFC 8705 §3.1).
    pub(crate) cnf: Option<Confirmations>,
    /// Groups claims named by a whole path (`groups`, `cognito:groups`), typed.
    pub(crate) group_lists: Vec<(Cow<'a, str>, Listed<'a>)>,
    /// The top-level members a dotted groups path leads into, parsed whole.
    pub(crate) group_roots: Map<String, Value>,
}

/// A claim that is a string or an array of strings (`aud`, `scp`).
pub(crate) enum Listed<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl<'a> Claims<'a> {
    /// Parses a claims document (a token's payload, an introspection answer): one JSON object.
    pub(crate) fn parse(
        json: &'a [u8],
        mapping: &ClaimMapping,
    ) -> Result<Claims<'a>, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let claims = deserializer.deserialize_map(ClaimsVisitor { mapping })?;
        deserializer.end()?;
        Ok(claims)
    }

    /// Whether a registered claim is present (and not `null`).
    pub(crate) fn has(&self, name: &str) -> bool {
        match name {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => self.aud.is_some(),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            _ => false,
        }
    }
}

struct ClaimsVisitor<'m> {
    mapping: &'m ClaimMapping,
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = Claims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Claims<'de>, A::Error> {
        fn string<'de, A: MapAccess<'de>>(
            access: &mut A,
            name: &str,
        ) -> Result<Option<Cow<'de, str>>, A::Error> {
            typed::<A, Option<Str<'de>>>(access, name).map(|s| s.map(|Str(s)| s))
        }

        fn typed<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
            access: &mut A,
            name: &str,
        ) -> Result<T, A::Error> {
            access
                .next_value()
                .map_err(|e| de::Error::custom(format_args!("`{name}`: {e}")))
        }

        let mut claims = Claims::default();
        // Registered claims are told apart by a bit each; only other member names are listed.
        let mut seen = 0u16;
        let mut others = UniqueNames::default();
        while let Some(Str(name)) = access.next_key()? {
            // Reads a registered claim into its field, refusing a second one of the same name.
            macro_rules! once {
                ($field:ident, $bit:expr, $read:expr) => {{
                    if seen & (1 << $bit) != 0 {
                        return Err(de::Error::custom(format_args!(
                            "duplicate member name {:?}",
                            stringify!($field)
                        )));
                    }
                    seen |= 1 << $bit;
                    claims.$field = $read;
                }};
            }
            match name.as_ref() {
                "iss" => once!(iss, 0, string(&mut access, "iss")?),
                "sub" => once!(sub, 1, string(&mut access, "sub")?),
                "aud" => once!(aud, 2, typed(&mut access, "aud")?),
                "exp" => once!(exp, 3, typed(&mut access, "exp")?),
                "nbf" => once!(nbf, 4, typed(&mut access, "nbf")?),
                "iat" => once!(iat, 5, typed(&mut access, "iat")?),
                "jti" => once!(jti, 6, string(&mut access, "jti")?),
                "client_id" => once!(client_id, 7, string(&mut access, "client_id")?),
                "username" => once!(username, 8, string(&mut access, "username")?),
                "gty" => once!(gty, 9, string(&mut access, "gty")?),
                "scope" => once!(scope, 10, string(&mut access, "scope")?),
                "scp" => once!(scp, 11, typed(&mut access, "scp")?),
                "active" => once!(active, 12, {
                    let Strict(value) = access.next_value()?;
                    Some(value.as_bool())
                }),
                "token_type" => once!(token_type, 13, string(&mut access, "token_type")?),
                "cnf" => once!(cnf, 14, {
                    // Checked whole (an object, no repeated member); `jkt` and `x5t#S256` are read.
                    let Strict(value) = access.next_value()?;
                    match value {
                        Value::Null => None,
                        Value::Object(members) => Some(Confirmations::read(members)?),
                        _ => return Err(de::Error::custom("`cnf` is not an object")),
                    }
                }),
                other => {
                    let paths = &self.mapping.groups;
                    if paths.iter().any(|path| path.descends_from(other)) {
                        let Strict(value) = access.next_value()?;
                        claims.group_roots.insert(other.to_owned(), value);
                    } else if paths.iter().any(|path| path.as_str() == other) {
                        // The common case (`groups`, `roles`, `cognito:groups`): typed, borrowed.
                        let list = typed(&mut access, other)?;
                        claims.group_lists.push((name.clone(), list));
                    } else {
                        access.next_value::<Skip>()?;
                    }
                    others.push(name);
                }
            }
        }
        others.check()?;
        Ok(claims)
    }
}

impl<'de> Deserialize<'de> for Listed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListedVisitor;

        impl<'de> Visitor<'de> for ListedVisitor {
            type Value = Listed<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Listed<'de>, E> {
                Ok(Listed::One(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Listed<'de>, E> {
                Ok(Listed::One(Cow::Owned(v.to_owned())))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(Str(item)) = seq.next_element()? {
                    if items.len() == MAX_LIST_LEN {
                        return Err(de::Error::custom(format_args!(
                            "more than {MAX_LIST_LEN} members"
                        )));
                    }
                    items.push(item);
                }
                Ok(Listed::Many(items))
            }
        }

        deserializer.deserialize_any(ListedVisitor)
    }
}

/// The credential times, already checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) issued_at: Option<DateTime<Utc>>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// Names in first-seen order without repeats or empty names. Lists are capped at
/// `MAX_LIST_LEN`, so the linear search beats hashing for the handful of names a token carries.
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn add(&mut self, name: &str) {
        if !name.is_empty() && self.0.len() <= MAX_LIST_LEN && !self.0.iter().any(|n| n == name) {
            self.0.push(name.to_owned());
        }
    }
}

/// Adds an array's members: each must be a non-empty string.
fn add_items(out: &mut Names, items: &[Cow<'_, str>], claim: &str) -> Result<(), TokenError> {
    for item in items {
        if item.is_empty() {
            return Err(wrong_names(claim));
        }
        out.add(item);
    }
    Ok(())
}

/// Adds the names in a groups claim: an array of non-empty strings, or one string.
fn add_value(out: &mut Names, value: &Value, claim: &str) -> Result<(), TokenError> {
    match value {
        Value::String(s) => out.add(s),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) if !s.is_empty() => out.add(s),
                    _ => return Err(wrong_names(claim)),
                }
            }
        }
        _ => return Err(wrong_names(claim)),
    }
    Ok(())
}

fn wrong_names(claim: &str) -> TokenError {
    TokenError::malformed(format!("`{claim}` is not a string or an array of strings"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(mapping: &ClaimMapping, json: &str) -> Result<Principal, TokenError> {
        let claims = Claims::parse(json.as_bytes(), mapping)
            .map_err(|e| TokenError::malformed(e.to_string()))?;
        let mut principal = mapping.principal(
            &claims,
            Scheme::JWT,
            Times::default(),
            Verified::for_fuzzing(),
        )?;
        principal.set_claims_json(json.as_bytes().to_vec());
        Ok(principal)
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
    fn claims_are_one_object_without_repeated_names() {
        let m = ClaimMapping::new().groups_claim("realm_access.roles");
        for bad in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"sub":null,"sub":"admin"}"#,
            r#"{"sub":"a","groups":["x"],"groups":["admin"]}"#,
            r#"{"sub":"a","realm_access.roles":["x"],"realm_access.roles":[]}"#,
            r#"{"sub":"a","s\u0075b":"b"}"#,
            r#"{"sub":"a","x":1,"x":2}"#,
            r#"{"sub":"a","x":{"y":1,"y":2}}"#,
            r#"{"sub":"a","realm_access":{"roles":["r"],"roles":[]}}"#,
            r#"{"sub":"a","aud":"x","aud":"y"}"#,
            r#""a.b.c""#,
            "not json",
            r#"{"sub":"a"} {}"#,
        ] {
            assert!(Claims::parse(bad.as_bytes(), &m).is_err(), "{bad}");
        }
        let good = r#"{"sub":"a","x":{"y":[1,{"z":null}]},"realm_access":{"roles":["r"]}}"#;
        let p = map(&m, good).unwrap();
        assert_eq!(p.groups(), ["r"]);
        // A top-level claim named like the whole dotted path wins over the nested one.
        let whole = r#"{"sub":"a","realm_access":{"roles":["r"]},"realm_access.roles":"w"}"#;
        assert_eq!(map(&m, whole).unwrap().groups(), ["w"]);
        // The whole document stays available to handlers.
        assert_eq!(p.claims().unwrap()["x"]["y"][1]["z"], Value::Null);
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
    /// Found by the `jwt_claims` fuzz target: a groups path naming a claim the reader keeps for
    /// itself gave no groups at all (seed `fuzz/seeds/jwt_claims/crash-*`).
    #[test]
    fn a_groups_path_naming_a_registered_claim_is_refused() {
        for path in [
            "scope",
            "scp",
            "sub",
            "aud",
            "active",
            "active.roles",
            "token_type",
        ] {
            let mapping = ClaimMapping::new().groups_claim(path);
            let err = mapping.validate("jwt.groups_claims").unwrap_err();
            assert!(
                err.to_string().contains("registered claim"),
                "{path}: {err}"
            );
        }
        for path in [
            "groups",
            "roles",
            "realm_access.roles",
            "cognito:groups",
            "scopes",
        ] {
            assert!(
                ClaimMapping::new().groups_claim(path).validate("k").is_ok(),
                "{path}"
            );
        }
    }
}

/// A token's `cnf` (RFC 7800): the members portcullis can verify, and whether there were others.
#[derive(Debug, Default)]
pub(crate) struct Confirmations {
    /// `jkt`: the DPoP key's thumbprint (RFC 9449 §6).
    pub(crate) jkt: Option<String>,
    /// `x5t#S256`: the client certificate's SHA-256 thumbprint, base64url (RFC 8705 §3.1).
    pub(crate) x5t_s256: Option<String>,
    /// Whether `cnf` holds members portcullis cannot verify (`jwk`, `kid`, `x5t`, …).
    pub(crate) others: bool,
}

impl Confirmations {
    /// Refuses a `cnf` with no member portcullis can verify (a token bound to something it
    /// cannot check is never accepted as a bearer token), and an `x5t#S256` that is not a
    /// base64url SHA-256 digest (43 characters, no padding; not hex).
    fn check(&self) -> Result<(), TokenError> {
        if self.jkt.is_none() && self.x5t_s256.is_none() {
            return Err(TokenError::new(
                TokenErrorKind::UnsupportedConfirmation,
                if self.others {
                    "the token's `cnf` holds only confirmation members portcullis cannot verify"
                } else {
                    "the token's `cnf` is empty"
                },
            ));
        }
        if let Some(x5t) = &self.x5t_s256
            && !crate::jwt::mtls::is_thumbprint(x5t)
        {
            return Err(TokenError::new(
                TokenErrorKind::UnsupportedConfirmation,
                "the token's `cnf.x5t#S256` is not a base64url SHA-256 thumbprint (43 characters)",
            ));
        }
        Ok(())
    }

    fn read<E: de::Error>(mut members: Map<String, Value>) -> Result<Self, E> {
        let mut string = |name: &str| match members.remove(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(E::custom(format!("`cnf.{name}` is not a string"))),
        };
        let jkt = string("jkt")?;
        let x5t_s256 = string("x5t#S256")?;
        Ok(Self {
            jkt,
            x5t_s256,
            others: !members.is_empty(),
        })
    }
}
