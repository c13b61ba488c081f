//! The rules of self-service, apart from HTTP: who may do what, which scopes and lifetimes a
//! caller may ask for, the CSRF check. The JSON API (`api.rs`) and the page (`page.rs`) both
//! call these helpers, so the two cannot drift apart.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};

use super::{Problem, SelfService, is_state_changing};
use crate::NewApiKey;
use crate::principal::{Principal, Scheme, SubjectKind};
use crate::secret::SecretString;
use crate::store::ApiKeyRecord;

/// The longest scope, in bytes, and the most scopes one request may list.
const MAX_SCOPE_LEN: usize = 256;
const MAX_SCOPES: usize = 256;
/// Key ids are base62 (see `key_format`); a little slack for custom stores, still bounded.
const MAX_ID_LEN: usize = 64;

/// What a caller asks to create: a name, an expiry and scopes (already parsed, not yet judged).
#[derive(Clone, Debug)]
pub(crate) struct TokenRequest {
    pub(crate) name: String,
    pub(crate) expiry: Expiry,
    pub(crate) scopes: Vec<String>,
}

/// When a token should expire, as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Not said: the default lifetime (capped for the caller).
    Default,
    /// `expires_in`: this long from now.
    In(Duration),
    /// `expires_at`: at this time.
    At(DateTime<Utc>),
}

/// A token just created or rotated: the whole token, shown once, and its record.
pub(crate) struct Issued {
    pub(crate) token: SecretString,
    pub(crate) record: ApiKeyRecord,
}

/// What a state-changing action was, for the audit event.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Action {
    Create,
    Rotate,
    Revoke,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Rotate => "rotate",
            Self::Revoke => "revoke",
        }
    }
}

impl SelfService {
    /// Refuses (403) a caller that may not use self-service at all: only local users, that is
    /// principals of kind user authenticated by Basic or by an API key (acting for its owner). A
    /// JWT's `sub` names a user of another system, which may share a local user's name.
    pub(crate) fn check_caller(&self, principal: &Principal) -> Result<(), Problem> {
        let scheme = principal.scheme();
        if principal.kind() != SubjectKind::User
            || (scheme != Scheme::BASIC && scheme != Scheme::API_KEY)
        {
            return Err(Problem::forbidden(format!(
                "self-served tokens belong to local users: a caller authenticated by `{scheme}` \
                 may not use them"
            )));
        }
        Ok(())
    }

    /// Refuses (403) a caller that may not create or rotate: [`check_caller`], and a caller
    /// authenticated by an API key unless `allow_key_principals`.
    pub(crate) fn check_minter(&self, principal: &Principal) -> Result<(), Problem> {
        self.check_caller(principal)?;
        if principal.scheme() == Scheme::API_KEY && !self.inner.allow_key_principals {
            return Err(Problem::forbidden(
                "a caller authenticated by an API key may not create or rotate tokens \
                 (allow_key_principals is off)",
            ));
        }
        Ok(())
    }

    /// The scopes `principal` may give a token: the allowlist, narrowed to the caller's own
    /// scopes. A Basic caller carries none (users have no scopes), so it gets the allowlist; an
    /// API-key caller gets only the allowlisted scopes its key has, so a key never mints more
    /// than itself.
    pub(crate) fn allowed_scopes(&self, principal: &Principal) -> Vec<String> {
        let allowlist = self.inner.scope_allowlist.iter();
        if principal.scheme() == Scheme::BASIC && principal.scopes().is_empty() {
            return allowlist.cloned().collect();
        }
        allowlist
            .filter(|s| principal.has_scope(s))
            .cloned()
            .collect()
    }

    /// The longest lifetime `principal` may give a token now: the configured maximum, and for
    /// a caller authenticated by an API key no later than that key's own expiry.
    pub(crate) fn lifetime_cap(&self, principal: &Principal) -> Duration {
        let cap = self.inner.max_lifetime;
        match principal.expires_at() {
            Some(at) if principal.scheme() == Scheme::API_KEY => {
                let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                cap.min(left)
            }
            _ => cap,
        }
    }

    /// The CSRF check for a request authenticated by a credential the browser sends by itself
    /// (Basic, including an API key sent as the Basic password): a state-changing request must come from this service's own pages.
    /// `Sec-Fetch-Site` (Fetch Metadata), when present, must be `same-origin`; without it,
    /// `Origin`, when present, must be the configured public origin (`null`, an opaque origin,
    /// is refused); with neither, the client is not a browser (curl) and is allowed. Refusals
    /// are 403 naming the header. Other schemes' credentials are not ambient, so not checked.
    pub(crate) fn check_csrf(
        &self,
        principal: &Principal,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(), Problem> {
        if !is_state_changing(method) || !(principal.scheme() == Scheme::BASIC || ambient(headers))
        {
            return Ok(());
        }
        let forbidden = |header: &'static str, detail: &'static str| {
            Err(Problem::field(StatusCode::FORBIDDEN, header, detail))
        };
        let mut site = headers.get_all("sec-fetch-site").iter();
        if let Some(value) = site.next() {
            if site.next().is_some() || value.as_bytes() != b"same-origin" {
                return forbidden(
                    "Sec-Fetch-Site",
                    "a state-changing request from a browser must come from this origin \
                     (Sec-Fetch-Site: same-origin)",
                );
            }
            return Ok(());
        }
        let mut origins = headers.get_all(http::header::ORIGIN).iter();
        if let Some(value) = origins.next() {
            let expected = self.inner.public_origin.as_deref();
            let matches = origins.next().is_none()
                && value
                    .to_str()
                    .ok()
                    .and_then(|origin| crate::request::normalize_origin(origin).ok())
                    .as_deref()
                    == expected
                && expected.is_some();
            if !matches {
                return forbidden(
                    "Origin",
                    "a state-changing request from a browser must come from this service's \
                     public origin",
                );
            }
        }
        Ok(())
    }

    /// The caller's active tokens (neither revoked nor expired), oldest first.
    pub(crate) async fn list_for(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ApiKeyRecord>, Problem> {
        self.check_caller(principal)?;
        let now = Utc::now();
        let records = self.inner.keys.list(Some(principal.subject())).await?;
        Ok(records
            .into_iter()
            .filter(|r| r.owner_kind == SubjectKind::User && is_active(r, now))
            .collect())
    }

    /// Creates a token for the caller, after every rule: who may, the name, the lifetime, the
    /// scopes; the per-user limit and the name's uniqueness are checked by the store, in the
    /// same transaction as the insert. Audited.
    pub(crate) async fn create_for(
        &self,
        principal: &Principal,
        request: TokenRequest,
    ) -> Result<Issued, Problem> {
        self.check_minter(principal)?;
        self.check_name(&request.name)?;
        let lifetime = self.lifetime_for(principal, request.expiry)?;
        let scopes = self.check_scopes(principal, request.scopes)?;
        let new = NewApiKey::new(principal.subject())
            .with_name(request.name)
            .with_scopes(scopes)
            .with_expires_in(lifetime)
            .with_created_by(principal.subject());
        let issued = self
            .inner
            .keys
            .create_self_served(new, self.inner.max_tokens_per_user)
            .await?;
        let (token, record) = issued.into_parts();
        audit(principal, Action::Create, &record);
        Ok(Issued { token, record })
    }

    /// Revokes one of the caller's tokens. Another user's id is [`Problem::not_found`], the same
    /// as an unknown one, so ids cannot be probed. Audited.
    pub(crate) async fn revoke_for(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<ApiKeyRecord, Problem> {
        self.check_caller(principal)?;
        self.owned(principal, id).await?;
        let record = self.inner.keys.revoke(id).await?;
        audit(principal, Action::Revoke, &record);
        Ok(record)
    }

    /// Rotates one of the caller's tokens: the successor gets the old one's name and scopes
    /// (which must still be within what the caller may grant) and its lifetime, capped for the
    /// caller; the old one works on for `overlap`, at most until it expires. Audited.
    pub(crate) async fn rotate_for(
        &self,
        principal: &Principal,
        id: &str,
        overlap: Duration,
    ) -> Result<Issued, Problem> {
        self.check_minter(principal)?;
        let old = self.owned(principal, id).await?;
        let allowed = self.allowed_scopes(principal);
        if let Some(scope) = old.scopes.iter().find(|s| !allowed.contains(s)) {
            return Err(Problem::forbidden(format!(
                "the token has scope `{scope}`, which this caller may not grant"
            )));
        }
        if !old.self_served {
            // Rotation renews a key's lifetime; an administrator's key is theirs to renew.
            return Err(Problem::forbidden(
                "only self-served tokens are rotated here: an administrator issued this one",
            ));
        }
        let issued = self.inner.keys.rotate(id, overlap).await?;
        let (token, mut record) = issued.into_parts();
        // `ApiKeys::rotate` keeps the old lifetime within the API keys' cap; the caller's cap
        // may be lower (a smaller self-service maximum, or an API-key caller's own expiry).
        let cap_at = Utc::now()
            + chrono::Duration::from_std(self.lifetime_cap(principal))
                .unwrap_or(chrono::Duration::MAX);
        if record.expires_at.is_none_or(|at| at > cap_at) {
            self.inner
                .keys
                .set_expires_at(&record.id, Some(cap_at))
                .await?;
            record.expires_at = Some(cap_at);
        }
        audit(principal, Action::Rotate, &record);
        Ok(Issued { token, record })
    }

    /// The record of `id` if the caller owns it, else 404 (unknown and foreign alike).
    async fn owned(&self, principal: &Principal, id: &str) -> Result<ApiKeyRecord, Problem> {
        let record = self.inner.keys.get(id).await?;
        if record.owner != principal.subject() || record.owner_kind != SubjectKind::User {
            return Err(Problem::not_found());
        }
        Ok(record)
    }

    fn check_name(&self, name: &str) -> Result<(), Problem> {
        if name.trim().is_empty() {
            return Err(Problem::invalid("name", "the name is empty"));
        }
        if name.chars().count() > self.inner.max_name_len {
            return Err(Problem::invalid(
                "name",
                format!(
                    "the name is longer than {} characters",
                    self.inner.max_name_len
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Problem::invalid(
                "name",
                "the name contains a control character",
            ));
        }
        Ok(())
    }

    /// The lifetime asked for, judged against the caller's cap.
    fn lifetime_for(&self, principal: &Principal, expiry: Expiry) -> Result<Duration, Problem> {
        let cap = self.lifetime_cap(principal);
        let (field, lifetime) = match expiry {
            Expiry::Default => ("expires_in", self.inner.default_lifetime.min(cap)),
            Expiry::In(lifetime) => ("expires_in", lifetime),
            Expiry::At(at) => {
                let lifetime = (at - Utc::now()).to_std().map_err(|_| {
                    Problem::invalid("expires_at", "expires_at is not in the future")
                })?;
                ("expires_at", lifetime)
            }
        };
        if lifetime.is_zero() {
            return Err(Problem::invalid(field, "the lifetime is zero"));
        }
        if lifetime > cap {
            return Err(Problem::invalid(
                field,
                format!(
                    "the lifetime asked for is longer than the {}s this caller may give a token",
                    cap.as_secs()
                ),
            ));
        }
        Ok(lifetime)
    }

    /// The scopes asked for, each allowed for the caller, without repeats.
    fn check_scopes(
        &self,
        principal: &Principal,
        mut scopes: Vec<String>,
    ) -> Result<Vec<String>, Problem> {
        if scopes.len() > MAX_SCOPES {
            return Err(Problem::invalid(
                "scopes",
                format!("more than {MAX_SCOPES} scopes"),
            ));
        }
        let allowed = self.allowed_scopes(principal);
        for scope in &scopes {
            if !valid_scope(scope) {
                return Err(Problem::invalid(
                    "scopes",
                    "a scope is 1 to 256 visible ASCII characters",
                ));
            }
            if !allowed.contains(scope) {
                return Err(Problem::invalid(
                    "scopes",
                    format!("scope `{scope}` may not be given by this caller"),
                ));
            }
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

/// Whether the request carries `Authorization: Basic`, which a browser replays by itself once
/// the user has typed it (an API key as the Basic password too, whose principal's scheme is
/// `api_key`).
fn ambient(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .any(|value| {
            value
                .as_bytes()
                .get(..6)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
        })
}

/// Whether `record` works now: not revoked, not expired.
pub(crate) fn is_active(record: &ApiKeyRecord, now: DateTime<Utc>) -> bool {
    record.revoked_at.is_none() && record.expires_at.is_none_or(|at| now < at)
}

/// A scope as a token may carry it: 1 to 256 visible ASCII characters (RFC 6749 §3.3's
/// `scope-token`, without `"` and `\`).
pub(crate) fn valid_scope(scope: &str) -> bool {
    (1..=MAX_SCOPE_LEN).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// A key id as a path segment: 1 to 64 ASCII letters, digits, `_` or `-`. Anything else is
/// 404 without a store lookup.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The audit event of a create, rotate or revoke: who (scheme, subject, credential), what, on
/// which token. Never the token.
pub(crate) fn audit(principal: &Principal, action: Action, record: &ApiKeyRecord) {
    tracing::info!(
        target: crate::audit::TARGET,
        stage = super::api::STAGE,
        outcome = "allow",
        action = action.as_str(),
        scheme = principal.scheme().as_str(),
        subject = principal.subject(),
        credential_id = principal.credential_id(),
        client_ip = principal.client_ip().map(tracing::field::display),
        key_id = %record.id,
        owner = %record.owner,
        replaces = record.replaces.as_deref(),
        expires_at = ?record.expires_at,
        "self-service token {}",
        action.as_str()
    );
}

/// The audit event of a refused create, rotate or revoke.
pub(crate) fn audit_refusal(
    principal: &Principal,
    action: Action,
    id: Option<&str>,
    problem: &Problem,
) {
    tracing::info!(
        target: crate::audit::TARGET,
        stage = super::api::STAGE,
        outcome = "reject",
        action = action.as_str(),
        status = problem.status.as_u16(),
        scheme = principal.scheme().as_str(),
        subject = principal.subject(),
        credential_id = principal.credential_id(),
        client_ip = principal.client_ip().map(tracing::field::display),
        key_id = id,
        detail = %problem.detail,
        "self-service token {} refused",
        action.as_str()
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::{HeaderMap, HeaderValue, Method, StatusCode};

    use crate::api_key::ApiKeys;
    use crate::principal::{Principal, Scheme, SubjectKind};
    use crate::self_service::SelfService;
    use crate::store::{MemoryApiKeyStore, MemoryUserStore};

    fn service(origin: Option<&str>) -> SelfService {
        let keys = ApiKeys::builder(
            Arc::new(MemoryApiKeyStore::new()),
            "a pepper of at least thirty-two bytes, for tests".into(),
        )
        .owners(Arc::new(MemoryUserStore::new()))
        .build()
        .unwrap();
        let builder = SelfService::builder(keys);
        match origin {
            Some(origin) => builder.public_origin(origin),
            None => builder,
        }
        .build()
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn refused_header(result: Result<(), super::Problem>) -> Option<String> {
        let problem = result.err()?;
        assert_eq!(problem.status, StatusCode::FORBIDDEN);
        Some(problem.errors[0].0.to_string())
    }

    #[test]
    fn csrf_refusals() {
        let user = Principal::new("alice", SubjectKind::User, Scheme::BASIC);
        let with_origin = service(Some("https://app.example"));
        let check = |service: &SelfService, method: Method, pairs| {
            refused_header(service.check_csrf(&user, &method, &headers(pairs)))
        };
        // Without a configured origin, any Origin is refused; without headers, curl passes.
        let without = service(None);
        assert_eq!(
            check(&without, Method::POST, &[("origin", "https://app.example")]).as_deref(),
            Some("Origin")
        );
        assert_eq!(check(&without, Method::POST, &[]), None);
        // Two Sec-Fetch-Site values are refused, even if one says same-origin.
        assert_eq!(
            check(
                &with_origin,
                Method::DELETE,
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("sec-fetch-site", "cross-site")
                ]
            )
            .as_deref(),
            Some("Sec-Fetch-Site")
        );
        assert_eq!(
            check(
                &with_origin,
                Method::POST,
                &[("origin", "https://app.example.evil")]
            )
            .as_deref(),
            Some("Origin")
        );
        assert_eq!(
            check(
                &with_origin,
                Method::POST,
                &[("origin", "https://app.example")]
            ),
            None
        );
        // Reads change nothing: not checked.
        assert_eq!(
            check(
                &with_origin,
                Method::GET,
                &[("sec-fetch-site", "cross-site")]
            ),
            None
        );
    }

    #[test]
    fn csrf_skips_keys_in_their_own_header_but_not_in_basic() {
        let service = service(Some("https://app.example"));
        let key = Principal::new("alice", SubjectKind::User, Scheme::API_KEY);
        let cross = [("sec-fetch-site", "cross-site")];
        assert!(
            service
                .check_csrf(&key, &Method::POST, &headers(&cross))
                .is_ok()
        );
        let basic = [
            ("sec-fetch-site", "cross-site"),
            ("authorization", "basic YTpi"),
        ];
        assert!(
            service
                .check_csrf(&key, &Method::POST, &headers(&basic))
                .is_err()
        );
    }

    #[test]
    fn callers_scopes_narrow_the_allowlist() {
        let keys = ApiKeys::builder(
            Arc::new(MemoryApiKeyStore::new()),
            "a pepper of at least thirty-two bytes, for tests".into(),
        )
        .owners(Arc::new(MemoryUserStore::new()))
        .build()
        .unwrap();
        let service = SelfService::builder(keys)
            .scope_allowlist(["a", "b"])
            .build()
            .unwrap();
        let basic = Principal::new("alice", SubjectKind::User, Scheme::BASIC);
        assert_eq!(service.allowed_scopes(&basic), ["a", "b"]);
        let key =
            Principal::new("alice", SubjectKind::User, Scheme::API_KEY).with_scopes(["b", "c"]);
        assert_eq!(service.allowed_scopes(&key), ["b"]);
        let bare_key = Principal::new("alice", SubjectKind::User, Scheme::API_KEY);
        assert!(service.allowed_scopes(&bare_key).is_empty());
        let jwt = Principal::new("alice", SubjectKind::User, Scheme::JWT);
        assert!(service.check_caller(&jwt).is_err());
        let app = Principal::new("ci", SubjectKind::Application, Scheme::BASIC);
        assert!(service.check_caller(&app).is_err());
    }
}
