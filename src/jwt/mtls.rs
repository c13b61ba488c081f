//! Certificate-bound access tokens (RFC 8705): tokens that only the holder of a client
//! certificate can use.
//!
//! A client that authenticates to its authorization server with a TLS client certificate gets a
//! token whose `cnf["x5t#S256"]` is the base64url SHA-256 thumbprint of that certificate's DER.
//! It then calls the API over mutual TLS with the same certificate. A stolen token is useless
//! without the certificate's private key: the TLS handshake proves possession of it.
//!
//! The check (RFC 8705 §3): the thumbprint of the request's client certificate, compared in
//! constant time with the token's `cnf["x5t#S256"]`. The certificate comes from the connection
//! (a [`ClientCertificate`](crate::extract::ClientCertificate) request extension that the
//! service's TLS acceptor inserts) or from the `Client-Cert` header (RFC 9440) of a proxy in
//! the Gate's [`client_cert_proxies`](crate::GateBuilder::client_cert_proxies); see
//! [`RequestView::client_certificate`](crate::RequestView::client_certificate).
//!
//! Each issuer (and the introspection endpoint) has a [`CertificateBindingMode`]:
//!
//! | Token | `allowed` (default) | `required` | `disabled` |
//! |-------|---------------------|------------|------------|
//! | `cnf["x5t#S256"]`, the request's certificate matches | accepted, [`Confirmation::Certificate`] | accepted | refused |
//! | `cnf["x5t#S256"]`, no certificate or another one | refused | refused | refused |
//! | no `cnf["x5t#S256"]` | accepted (bearer, or DPoP) | refused | accepted |
//!
//! Every refusal is a 401 with `Bearer error="invalid_token"` and the reason
//! `certificate_binding`. A token whose `cnf` holds no member portcullis can verify (only
//! `jwk`, `kid`, `x5t`, …), or an `x5t#S256` that is not a base64url SHA-256 digest (a hex
//! thumbprint), is refused whatever the mode (reason `token_claims`): it is bound to
//! something, so it is never treated as a bearer token. The
//! [`SenderConstrained`](crate::policy::SenderConstrained) policy admits a certificate-bound
//! token proven this way, as it admits a DPoP-bound one.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{TokenError, TokenErrorKind};
use crate::principal::{Confirmation, Principal};

/// Whether an issuer's (or the introspection endpoint's) tokens may or must be bound to the
/// client certificate (RFC 8705).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateBindingMode {
    /// A token with `cnf["x5t#S256"]` needs the client certificate it names; an unbound token
    /// is accepted. The default.
    #[default]
    Allowed,
    /// Only certificate-bound tokens, with their certificate: an unbound token is refused.
    Required,
    /// Certificates are not checked, so a token with `cnf["x5t#S256"]` is refused (never
    /// downgraded to a bearer token); unbound tokens are accepted.
    Disabled,
}

impl CertificateBindingMode {
    /// The name used in configuration: `allowed`, `required`, `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateBindingMode::Allowed => "allowed",
            CertificateBindingMode::Required => "required",
            CertificateBindingMode::Disabled => "disabled",
        }
    }
}

impl fmt::Display for CertificateBindingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`CertificateBindingMode`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown certificate binding mode {0:?} (known: allowed, required, disabled)")]
pub struct UnknownCertificateBindingMode(String);

impl FromStr for CertificateBindingMode {
    type Err = UnknownCertificateBindingMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allowed" => Ok(CertificateBindingMode::Allowed),
            "required" => Ok(CertificateBindingMode::Required),
            "disabled" => Ok(CertificateBindingMode::Disabled),
            other => Err(UnknownCertificateBindingMode(
                other.chars().take(32).collect(),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for CertificateBindingMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The RFC 8705 §3.1 thumbprint of a certificate: base64url (no padding) of the SHA-256 digest
/// of its DER encoding, as a token's `cnf["x5t#S256"]` holds it.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Whether `value` is a base64url SHA-256 digest without padding: 43 characters that decode to
/// 32 bytes. A hex thumbprint (64 characters) is not one.
pub(crate) fn is_thumbprint(value: &str) -> bool {
    value.len() == 43
        && URL_SAFE_NO_PAD
            .decode(value)
            .is_ok_and(|digest| digest.len() == 32)
}

/// Applies the certificate binding to a verified token's principal: a bound token needs the
/// request's `certificate` (DER) to have its thumbprint; an unbound one is refused when the
/// mode is `required`. A principal already confirmed (a DPoP proof) keeps that confirmation.
pub(crate) fn check(
    principal: Principal,
    mode: CertificateBindingMode,
    certificate: Option<&[u8]>,
) -> Result<Principal, TokenError> {
    let Some(bound) = principal.bound_x5t() else {
        if mode == CertificateBindingMode::Required {
            return Err(TokenError::new(
                TokenErrorKind::CertificateRequired,
                "the issuer's tokens must be bound to the client certificate (`cnf[\"x5t#S256\"]`)",
            ));
        }
        return Ok(principal);
    };
    if mode == CertificateBindingMode::Disabled {
        return Err(TokenError::new(
            TokenErrorKind::CertificateBindingDisabled,
            "a certificate-bound token (`cnf[\"x5t#S256\"]`) where certificate binding is disabled",
        ));
    }
    let Some(certificate) = certificate else {
        return Err(TokenError::new(
            TokenErrorKind::CertificateMissing,
            "a certificate-bound token (`cnf[\"x5t#S256\"]`) without a client certificate",
        ));
    };
    let presented = thumbprint(certificate);
    if !bool::from(presented.as_bytes().ct_eq(bound.as_bytes())) {
        return Err(TokenError::new(
            TokenErrorKind::CertificateMismatch,
            "the client certificate is not the one the token is bound to (`cnf[\"x5t#S256\"]`)",
        ));
    }
    if principal.confirmation().is_some() {
        return Ok(principal);
    }
    Ok(principal.with_confirmation(Confirmation::Certificate {
        x5t_s256: presented,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Scheme, SubjectKind};

    fn bound(x5t: Option<&str>) -> Principal {
        let mut principal = Principal::new("alice", SubjectKind::User, Scheme::JWT);
        principal.set_bound_x5t(x5t);
        principal
    }

    #[test]
    fn thumbprint_is_base64url_sha256_of_the_der() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        assert_eq!(
            thumbprint(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert!(is_thumbprint(&thumbprint(b"abc")));
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(!is_thumbprint(hex));
        assert!(!is_thumbprint(
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="
        ));
        assert!(!is_thumbprint(
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"
        ));
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in [
            CertificateBindingMode::Allowed,
            CertificateBindingMode::Required,
            CertificateBindingMode::Disabled,
        ] {
            assert_eq!(mode.as_str().parse::<CertificateBindingMode>(), Ok(mode));
        }
        assert!("Required".parse::<CertificateBindingMode>().is_err());
    }

    #[test]
    fn a_bound_token_needs_its_certificate() {
        let cert = b"certificate DER".as_slice();
        let x5t = thumbprint(cert);
        let ok = check(
            bound(Some(&x5t)),
            CertificateBindingMode::Allowed,
            Some(cert),
        )
        .unwrap();
        assert_eq!(
            ok.confirmation(),
            Some(&Confirmation::Certificate {
                x5t_s256: x5t.clone()
            })
        );
        let ok = check(
            bound(Some(&x5t)),
            CertificateBindingMode::Required,
            Some(cert),
        )
        .unwrap();
        assert!(ok.confirmation().is_some());
        let kind = |mode, cert| check(bound(Some(&x5t)), mode, cert).unwrap_err().kind();
        assert_eq!(
            kind(CertificateBindingMode::Allowed, None),
            TokenErrorKind::CertificateMissing
        );
        assert_eq!(
            kind(CertificateBindingMode::Allowed, Some(b"another".as_slice())),
            TokenErrorKind::CertificateMismatch
        );
        assert_eq!(
            kind(CertificateBindingMode::Disabled, Some(cert)),
            TokenErrorKind::CertificateBindingDisabled
        );
    }

    #[test]
    fn an_unbound_token_is_refused_only_where_binding_is_required() {
        let cert = Some(b"certificate DER".as_slice());
        for mode in [
            CertificateBindingMode::Allowed,
            CertificateBindingMode::Disabled,
        ] {
            let principal = check(bound(None), mode, cert).unwrap();
            assert_eq!(principal.confirmation(), None);
        }
        let err = check(bound(None), CertificateBindingMode::Required, cert).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::CertificateRequired);
    }

    #[test]
    fn a_dpop_confirmation_is_kept() {
        let cert = b"certificate DER".as_slice();
        let jkt = Confirmation::Dpop { jkt: "k".into() };
        let principal = bound(Some(&thumbprint(cert))).with_confirmation(jkt.clone());
        let principal = check(principal, CertificateBindingMode::Allowed, Some(cert)).unwrap();
        assert_eq!(principal.confirmation(), Some(&jkt));
    }
}
