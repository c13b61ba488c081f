//! Who is calling: [`Principal`], the [`Scheme`] that proved it, and the [`SubjectKind`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// An authentication scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scheme {
    /// HTTP Basic (RFC 7617) with a password checked against an argon2id hash.
    Basic,
    /// An API key issued by portcullis.
    ApiKey,
    /// A JWT bearer token checked against the issuer's keys.
    Jwt,
    /// An opaque bearer token checked by token introspection (RFC 7662).
    Introspection,
}

impl Scheme {
    /// The scheme's name as used in config files, logs and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Basic => "basic",
            Scheme::ApiKey => "api_key",
            Scheme::Jwt => "jwt",
            Scheme::Introspection => "introspection",
        }
    }

    /// Schemes that read the same kind of credential (a bearer token) and so may all recognise one
    /// request without it carrying two credentials.
    pub(crate) fn credential_family(self) -> u8 {
        match self {
            Scheme::Basic => 0,
            Scheme::ApiKey => 1,
            Scheme::Jwt | Scheme::Introspection => 2,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "basic" => Ok(Scheme::Basic),
            "api_key" => Ok(Scheme::ApiKey),
            "jwt" => Ok(Scheme::Jwt),
            "introspection" => Ok(Scheme::Introspection),
            other => Err(ConfigError::new(format!(
                "unknown scheme `{other}` (expected basic, api_key, jwt or introspection)"
            ))),
        }
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
    #[serde(skip)]
    claims: Option<Arc<Claims>>,
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
    fn scheme_names_round_trip() {
        for scheme in [
            Scheme::Basic,
            Scheme::ApiKey,
            Scheme::Jwt,
            Scheme::Introspection,
        ] {
            assert_eq!(scheme.as_str().parse::<Scheme>().ok(), Some(scheme));
        }
        let err = "digest".parse::<Scheme>().unwrap_err();
        assert!(err.to_string().contains("`digest`"));
    }
}
