//! Who is calling: [`Principal`], the [`Scheme`] that proved it, and the [`SubjectKind`].

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The name of an authentication scheme: one of the built-in ones ([`BASIC`](Self::BASIC),
/// [`API_KEY`](Self::API_KEY), [`JWT`](Self::JWT), [`INTROSPECTION`](Self::INTROSPECTION)) or
/// one of a service's own [`Authenticator`](crate::Authenticator)s, made with
/// [`Scheme::new`].
///
/// The name is what the principal, the audit trail, [`Schemes`](crate::Schemes) policies and
/// `schemes_allow`/`schemes_deny` in a configuration file say. It is a `&'static str`, so the
/// names a service can see are the ones written in its code: a bounded set, fit for a metrics
/// label, never taken from a request.
///
/// A name is 1 to 32 bytes of lowercase ASCII letters, digits, `_` and `-`, starting with a
/// letter; [`GateBuilder::build`](crate::GateBuilder::build) refuses an authenticator whose
/// scheme breaks that rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scheme(&'static str);

impl Scheme {
    /// HTTP Basic (RFC 7617) with a password checked against an argon2id hash: `"basic"`.
    pub const BASIC: Scheme = Scheme("basic");
    /// An API key issued by portcullis: `"api_key"`.
    pub const API_KEY: Scheme = Scheme("api_key");
    /// A JWT bearer token checked against the issuer's keys: `"jwt"`.
    pub const JWT: Scheme = Scheme("jwt");
    /// An opaque bearer token checked by token introspection (RFC 7662): `"introspection"`.
    pub const INTROSPECTION: Scheme = Scheme("introspection");

    /// The built-in schemes.
    pub const BUILT_IN: [Scheme; 4] = [
        Scheme::BASIC,
        Scheme::API_KEY,
        Scheme::JWT,
        Scheme::INTROSPECTION,
    ];

    /// A scheme named `name`, for an authenticator of your own (`Scheme::new("ldap")`). The name
    /// is checked when the Gate is built (see [`Scheme`]).
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The built-in scheme named `name`, if there is one.
    pub fn built_in(name: &str) -> Option<Scheme> {
        Self::BUILT_IN.into_iter().find(|s| s.0 == name)
    }

    /// The scheme's name as used in config files, logs and the audit trail.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// Refuses a name outside the rule in the type's documentation.
    pub(crate) fn check(self) -> Result<(), ConfigError> {
        check_name(self.0)
    }
}

/// Whether `name` may name a scheme: 1 to 32 bytes of lowercase ASCII letters, digits, `_` and
/// `-`, starting with a letter (a metrics label, a TOML string and a log field without quoting).
pub(crate) fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "scheme name {name:?}: use 1 to 32 lowercase ASCII letters, digits, `_` or `-`, \
             starting with a letter"
        )))
    }
}

impl AsRef<str> for Scheme {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Scheme {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

/// Whether the principal is a person or a machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubjectKind {
    /// A person (or an account acting as one).
    #[default]
    User,
    /// An application calling machine-to-machine.
    Application,
}

/// The authenticated caller. Built by an authenticator, completed by the [`Gate`](crate::Gate),
/// and handed to handlers through request extensions.
///
/// It never holds a secret: only identifiers, group and scope names, and credential times.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    subject: String,
    kind: SubjectKind,
    scheme: Scheme,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<String>,
    groups: Vec<String>,
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation: Option<Confirmation>,
    /// The token's `cnf.jkt`: the key it is bound to, before any proof is checked.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    #[serde(skip)]
    bound_jkt: Option<Box<str>>,
    /// The token's `cnf["x5t#S256"]`: the client certificate it is bound to, before any
    /// certificate is compared.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    #[serde(skip)]
    bound_x5t: Option<Box<str>>,
    #[serde(skip)]
    claims: Option<Arc<Claims>>,
}

/// What the credential was bound to and proven with on this request (RFC 7800 `cnf`): a token
/// that only its holder's key can use. Read it with [`Principal::confirmation`]; the
/// [`SenderConstrained`](crate::policy::SenderConstrained) policy admits only principals that
/// have one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Confirmation {
    /// A DPoP-bound token (RFC 9449) whose proof, signed by the key with this thumbprint, was
    /// verified on this request.
    Dpop {
        /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: the token's `cnf.jkt`.
        jkt: String,
    },
    /// A certificate-bound token (RFC 8705) presented over a connection (or by a trusted proxy)
    /// with the client certificate whose SHA-256 thumbprint is this.
    Certificate {
        /// The base64url SHA-256 thumbprint of the client certificate's DER: the token's
        /// `cnf["x5t#S256"]`.
        #[serde(rename = "x5t#S256")]
        x5t_s256: String,
    },
}

type ClaimMap = serde_json::Map<String, serde_json::Value>;

/// A token's claims: the JSON document, parsed into a map the first time a handler asks. Most
/// requests never do, and the authenticator already read what it maps.
struct Claims {
    json: Vec<u8>,
    map: OnceLock<ClaimMap>,
}

impl Claims {
    fn map(&self) -> &ClaimMap {
        // The document passed the same strict parse before the principal was made; an empty map
        // is only a fallback that cannot be reached.
        self.map
            .get_or_init(|| crate::json::parse_object(&self.json).unwrap_or_default())
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map().fmt(f)
    }
}

impl Principal {
    /// A principal with no groups, scopes, credential id or credential times.
    pub fn new(subject: impl Into<String>, kind: SubjectKind, scheme: Scheme) -> Self {
        Self {
            subject: subject.into(),
            kind,
            scheme,
            credential_id: None,
            groups: Vec::new(),
            scopes: Vec::new(),
            issued_at: None,
            expires_at: None,
            client_ip: None,
            confirmation: None,
            #[cfg(any(feature = "jwt", feature = "introspection"))]
            bound_jkt: None,
            #[cfg(any(feature = "jwt", feature = "introspection"))]
            bound_x5t: None,
            claims: None,
        }
    }

    /// Sets the id of the credential that authenticated it (API key id, JWT `jti`).
    pub fn with_credential_id(mut self, id: impl Into<String>) -> Self {
        self.credential_id = Some(id.into());
        self
    }

    /// Sets the groups (roles) the subject belongs to.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the OAuth2 scopes the credential grants.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets when the credential was issued.
    pub fn with_issued_at(mut self, at: DateTime<Utc>) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Sets when the credential expires.
    pub fn with_expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Attaches the verified claims of a token.
    pub fn with_claims(mut self, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        self.claims = Some(Arc::new(Claims {
            json: Vec::new(),
            map: OnceLock::from(claims),
        }));
        self
    }

    /// Attaches a claims document that already passed [`crate::jwt`]'s strict parse.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn set_claims_json(&mut self, json: Vec<u8>) {
        self.claims = Some(Arc::new(Claims {
            json,
            map: OnceLock::new(),
        }));
    }

    /// Sets the groups and scopes in place (see [`set_credential`](Self::set_credential)).
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn set_names(&mut self, groups: Vec<String>, scopes: Vec<String>) {
        self.groups = groups;
        self.scopes = scopes;
    }

    /// Sets the credential's id and times in place: for authenticators on the hot path, where
    /// each `with_*` call would move the whole principal.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn set_credential(
        &mut self,
        id: Option<&str>,
        issued_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        self.credential_id = id.map(str::to_owned);
        self.issued_at = issued_at;
        self.expires_at = expires_at;
    }

    /// Records the key the credential was bound to and proven with on this request.
    pub fn with_confirmation(mut self, confirmation: Confirmation) -> Self {
        self.confirmation = Some(confirmation);
        self
    }

    /// How the credential was bound to its holder and proven on this request (a DPoP proof, a
    /// client certificate; a token bound to both shows its DPoP key), or `None` for a bearer credential that anyone holding it could use.
    pub fn confirmation(&self) -> Option<&Confirmation> {
        self.confirmation.as_ref()
    }

    /// Records the key the token is bound to (its `cnf.jkt`).
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn set_bound_jkt(&mut self, jkt: Option<&str>) {
        self.bound_jkt = jkt.map(Box::from);
    }

    /// The key the token is bound to (its `cnf.jkt`), proven or not.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn bound_jkt(&self) -> Option<&str> {
        self.bound_jkt.as_deref()
    }

    /// Records the certificate thumbprint the token is bound to (its `cnf["x5t#S256"]`).
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn set_bound_x5t(&mut self, x5t: Option<&str>) {
        self.bound_x5t = x5t.map(Box::from);
    }

    /// The certificate thumbprint the token is bound to (its `cnf["x5t#S256"]`), proven or not.
    #[cfg(any(feature = "jwt", feature = "introspection"))]
    pub(crate) fn bound_x5t(&self) -> Option<&str> {
        self.bound_x5t.as_deref()
    }

    pub(crate) fn set_client_ip(&mut self, ip: Option<IpAddr>) {
        self.client_ip = ip;
    }

    /// The subject: a user name, an application id, a token's `sub`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Whether the subject is a user or an application.
    pub fn kind(&self) -> SubjectKind {
        self.kind
    }

    /// The scheme that authenticated this principal.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The id of the credential used (API key id, JWT `jti`), when it has one.
    pub fn credential_id(&self) -> Option<&str> {
        self.credential_id.as_deref()
    }

    /// The subject's groups.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Whether the subject is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The scopes granted by the credential.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the credential grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// When the credential was issued, if known.
    pub fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.issued_at
    }

    /// When the credential expires, if it does.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The client IP the Gate resolved for the request (after trusted proxies).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The verified claims, for principals authenticated by a token.
    pub fn claims(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.claims.as_deref().map(Claims::map)
    }

    /// The verified claims as a `T`: `None` for a principal without token claims (Basic, API
    /// key), `Some(Err)` for claims that do not deserialize into `T`. serde's message may quote
    /// claim values: log it, do not send it to the client.
    ///
    /// In axum and actix-web handlers, [`extract::Claims`](crate::extract::Claims) does this and
    /// refuses as the Gate does.
    pub fn claims_as<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Option<Result<T, serde_json::Error>> {
        let claims = self.claims.as_deref()?;
        Some(if claims.json.is_empty() {
            // Claims attached as a map (`with_claims`): no document to read from.
            T::deserialize(&serde_json::Value::Object(claims.map().clone()))
        } else {
            serde_json::from_slice(&claims.json)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_round_trip() {
        for scheme in Scheme::BUILT_IN {
            assert_eq!(Scheme::built_in(scheme.as_str()), Some(scheme));
            assert!(scheme.check().is_ok());
        }
        assert_eq!(Scheme::built_in("ldap"), None);
        assert_eq!(Scheme::new("ldap").as_str(), "ldap");
    }

    #[test]
    fn scheme_names_are_label_safe() {
        for good in [
            "ldap",
            "hmac-v2",
            "a",
            "x_1",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "LDAP",
            "1ldap",
            "-x",
            "with space",
            "é",
            "a\"b",
            &"a".repeat(33),
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.to_string().contains("scheme name"), "{bad}: {err}");
        }
    }
}
