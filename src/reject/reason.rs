//! [`Reason`]: why a request was refused, as a stable string for logs, audit and metrics.

use std::fmt;

/// Why a request was refused, machine-readable: the `reason` field of the audit event and the
/// `reason` label of `portcullis_decisions_total`. The strings ([`as_str`](Self::as_str)) are
/// stable: a new cause is a new variant, an existing string never changes meaning.
///
/// A reason is for the operator, never for the client: the [`RejectionResponder`](super::RejectionResponder)
/// gets only a [`PublicRejection`](super::PublicRejection) (status, challenges, RFC 6750 error),
/// which has no reason, so a custom body cannot leak one.
///
/// Unknown user and wrong password share [`CredentialsInvalid`](Self::CredentialsInvalid), so
/// the reason does not tell an attacker (or a log reader) which user names exist;
/// [`KeyRevoked`](Self::KeyRevoked) and [`KeyExpired`](Self::KeyExpired) are given only after
/// the key's secret matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// `request_malformed`: a bad path, an unresolvable client IP, credentials in two places,
    /// a repeated or unparseable credential header (400).
    RequestMalformed,
    /// `credentials_missing`: no credential where the route needs one (401).
    CredentialsMissing,
    /// `credentials_invalid`: an unknown user, a wrong password, an unknown or wrong API key,
    /// a malformed key, or a credential a custom authenticator refused (401).
    CredentialsInvalid,
    /// `key_revoked`: an API key whose secret matched, but which is revoked (401).
    KeyRevoked,
    /// `key_expired`: an API key whose secret matched, but which has expired (401).
    KeyExpired,
    /// `token_malformed`: a bearer token that is not a well-formed JWT, is too large, or has an
    /// unsupported header or type (401).
    TokenMalformed,
    /// `token_expired`: `exp` is past, or the lifetime is longer than allowed (401).
    TokenExpired,
    /// `token_not_yet_valid`: `nbf` or `iat` is in the future (401).
    TokenNotYetValid,
    /// `token_signature`: the signature does not verify, or no key matches `kid` (401).
    TokenSignature,
    /// `token_algorithm`: `alg` is `none`, unknown or not allowed (401).
    TokenAlgorithm,
    /// `token_audience`: `aud` names no accepted audience (401).
    TokenAudience,
    /// `token_issuer`: `iss` is not a configured issuer (401).
    TokenIssuer,
    /// `token_claims`: a required claim is missing, or the claims a handler asked for do not
    /// parse (401).
    TokenClaims,
    /// `introspection_inactive`: the introspection endpoint says the token is not active, or
    /// not an access token (401).
    IntrospectionInactive,
    /// `dpop_proof_invalid`: a DPoP proof (RFC 9449) is missing its parts, malformed, not
    /// signed by the token's key, for another request, too old, replayed, or without the nonce
    /// the server asked for (401).
    DpopProofInvalid,
    /// `dpop_required`: a DPoP-bound token sent as a bearer token, or a token that is not bound
    /// where its issuer's DPoP mode is `required` (401).
    DpopRequired,
    /// `certificate_binding`: a certificate-bound token (RFC 8705, `cnf["x5t#S256"]`) without
    /// the client certificate it is bound to, or with another; an unbound token where the
    /// issuer's certificate binding is `required`; a bound token where it is `disabled` (401).
    CertificateBinding,
    /// `ip_denied`: the client IP is refused by an `ip_ranges` rule, or unknown to it (401/403).
    IpDenied,
    /// `group_denied`: the caller is not in the groups a `groups` rule needs (403).
    GroupDenied,
    /// `scope_insufficient`: the caller lacks a scope a `scopes` rule needs (403).
    ScopeInsufficient,
    /// `scheme_denied`: a `schemes` rule refuses the scheme the caller used (403).
    SchemeDenied,
    /// `credential_lifetime`: an `expiry_cap` rule refuses a credential that never expires or
    /// lives too long (403).
    CredentialLifetime,
    /// `policy_denied`: any other policy refusal (`not`, `any`, `kind`, `anonymous`, a custom
    /// policy), and a handler needing token claims from a credential without them (403).
    PolicyDenied,
    /// `locked_out`: too many failed attempts for this user (429).
    LockedOut,
    /// `hashing_busy`: the password hashing pool, or one user's share of it, is full, or a hash
    /// could not run (503).
    HashingBusy,
    /// `keys_unavailable`: the token's keys or the introspection endpoint cannot be reached
    /// and there is no last good answer (503).
    KeysUnavailable,
    /// `store_unavailable`: a user, API-key or lockout store failed (503).
    StoreUnavailable,
    /// `misconfigured`: no Gate in front of a route layer, guard or extractor, or a stored
    /// value the service cannot use (a malformed password hash) (500 or 401).
    Misconfigured,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: &'static [Reason] = &[
        Reason::RequestMalformed,
        Reason::CredentialsMissing,
        Reason::CredentialsInvalid,
        Reason::KeyRevoked,
        Reason::KeyExpired,
        Reason::TokenMalformed,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::TokenSignature,
        Reason::TokenAlgorithm,
        Reason::TokenAudience,
        Reason::TokenIssuer,
        Reason::TokenClaims,
        Reason::IntrospectionInactive,
        Reason::DpopProofInvalid,
        Reason::DpopRequired,
        Reason::CertificateBinding,
        Reason::IpDenied,
        Reason::GroupDenied,
        Reason::ScopeInsufficient,
        Reason::SchemeDenied,
        Reason::CredentialLifetime,
        Reason::PolicyDenied,
        Reason::LockedOut,
        Reason::HashingBusy,
        Reason::KeysUnavailable,
        Reason::StoreUnavailable,
        Reason::Misconfigured,
    ];

    /// The stable string: `snake_case`, as in the variant's documentation.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::RequestMalformed => "request_malformed",
            Reason::CredentialsMissing => "credentials_missing",
            Reason::CredentialsInvalid => "credentials_invalid",
            Reason::KeyRevoked => "key_revoked",
            Reason::KeyExpired => "key_expired",
            Reason::TokenMalformed => "token_malformed",
            Reason::TokenExpired => "token_expired",
            Reason::TokenNotYetValid => "token_not_yet_valid",
            Reason::TokenSignature => "token_signature",
            Reason::TokenAlgorithm => "token_algorithm",
            Reason::TokenAudience => "token_audience",
            Reason::TokenIssuer => "token_issuer",
            Reason::TokenClaims => "token_claims",
            Reason::IntrospectionInactive => "introspection_inactive",
            Reason::DpopProofInvalid => "dpop_proof_invalid",
            Reason::DpopRequired => "dpop_required",
            Reason::CertificateBinding => "certificate_binding",
            Reason::IpDenied => "ip_denied",
            Reason::GroupDenied => "group_denied",
            Reason::ScopeInsufficient => "scope_insufficient",
            Reason::SchemeDenied => "scheme_denied",
            Reason::CredentialLifetime => "credential_lifetime",
            Reason::PolicyDenied => "policy_denied",
            Reason::LockedOut => "locked_out",
            Reason::HashingBusy => "hashing_busy",
            Reason::KeysUnavailable => "keys_unavailable",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::Misconfigured => "misconfigured",
        }
    }

    /// The position in [`ALL`](Self::ALL), for tables indexed by reason.
    pub(crate) fn index(self) -> usize {
        // `ALL` lists every variant in declaration order (a unit test holds it).
        self as usize
    }

    /// The reason a policy denial gets from the built-in rule that decided (by its name).
    pub(crate) fn for_rule(rule: &str) -> Self {
        match rule {
            "authenticated" => Reason::CredentialsMissing,
            "ip_ranges" => Reason::IpDenied,
            "groups" => Reason::GroupDenied,
            "scopes" => Reason::ScopeInsufficient,
            "schemes" => Reason::SchemeDenied,
            "expiry_cap" => Reason::CredentialLifetime,
            _ => Reason::PolicyDenied,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_and_strings_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason:?}");
            let s = reason.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(reason.to_string(), s);
        }
    }
}
