//! A DPoP request as the authenticators see it: finding `Authorization: DPoP` and its proof,
//! and the order of the checks both authenticators share.

use std::future::Future;
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;

use super::proof::{DpopError, DpopErrorKind, check_binding, parse_proof};
use super::{DpopMode, DpopSettings, htu};
use crate::authenticator::CredentialSource;
use crate::error::StoreErrorKind;
use crate::jwt::error::{TokenError, TokenErrorKind};
use crate::jwt::validation::now_secs;
use crate::principal::{Confirmation, Principal};
use crate::reject::{Challenge, Rejection};
use crate::request::{RequestView, split_authorization};

/// The proof header (RFC 9449 §4.1).
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The source a DPoP credential is read from: `Authorization: DPoP` and the `DPoP` header, one
/// credential together (a `DPoP` header beside a `Bearer` token is then two: 400).
pub(crate) fn source() -> CredentialSource {
    CredentialSource::authorization("DPoP").and_header(DPOP)
}

/// The `DPoP` challenge (RFC 9449 §7.1).
pub(crate) fn challenge(settings: &DpopSettings) -> Challenge {
    Challenge::new("DPoP").param("algs", settings.algs_param())
}

/// A token sent as `Authorization: DPoP`, and its proof (or why there is none usable).
pub(crate) struct DpopCredential<'r> {
    pub(crate) token: &'r str,
    pub(crate) proof: Result<&'r str, DpopError>,
}

/// The token of `Authorization: DPoP <token>`, when the request carries one `accept` takes.
pub(crate) fn find<'r>(
    request: &RequestView<'r>,
    accept: impl Fn(&str) -> bool,
) -> Result<Option<DpopCredential<'r>>, Rejection> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let (Some(value), rest) = (values.next(), values.next()) else {
        return Ok(None);
    };
    let Some(token) = std::str::from_utf8(value.as_bytes())
        .ok()
        .filter(|v| v.is_ascii())
        .and_then(|v| match split_authorization(v) {
            (scheme, Some(token)) if scheme.eq_ignore_ascii_case("dpop") => Some(token.trim()),
            _ => None,
        })
        .filter(|token| !token.is_empty() && accept(token))
    else {
        return Ok(None);
    };
    if rest.is_some() {
        return Err(
            Rejection::invalid_request("the Authorization header is repeated")
                .with_dpop_error("invalid_request"),
        );
    }
    let mut proofs = request.headers().get_all(DPOP).iter();
    let proof = match (proofs.next(), proofs.next()) {
        (None, _) => Err(DpopError::new(
            DpopErrorKind::MissingProof,
            "Authorization: DPoP without a DPoP header",
        )),
        (Some(_), Some(_)) => Err(DpopError::new(
            DpopErrorKind::RepeatedProof,
            "more than one DPoP header",
        )),
        (Some(proof), None) => proof
            .to_str()
            .map(str::trim)
            .map_err(|_| DpopError::new(DpopErrorKind::Malformed, "the DPoP header is not ASCII")),
    };
    Ok(Some(DpopCredential { token, proof }))
}

/// Checks a DPoP request: the proof (cheap checks, then key and signature), then the token
/// (`verify`, which may do I/O), the issuer's mode, the binding, and last the replay cache, so
/// that only proofs whose signature and token verified are ever recorded.
pub(crate) async fn check<F>(
    request: &RequestView<'_>,
    credential: DpopCredential<'_>,
    settings: &DpopSettings,
    verify: F,
) -> Result<Principal, DpopError>
where
    F: Future<Output = Result<(Principal, DpopMode), TokenError>>,
{
    let origin = request.public_origin().ok_or_else(|| {
        DpopError::new(
            DpopErrorKind::NoPublicOrigin,
            "no public_origin is configured, so no proof's htu can be checked",
        )
    })?;
    let proof = parse_proof(credential.proof?, settings)?;
    let now = now_secs();
    let path = request.path();
    let verified = proof.check(
        request.method().as_str(),
        |given| htu::matches(given, origin, path),
        Some(credential.token),
        settings,
        now,
    )?;
    let (principal, mode) = verify.await.map_err(DpopError::token)?;
    if mode == DpopMode::Disabled {
        return Err(DpopError::new(
            DpopErrorKind::NotAccepted,
            "DPoP is disabled for the token's issuer",
        ));
    }
    check_binding(principal.bound_jkt(), &verified)?;
    let ttl = Duration::from_secs_f64(
        (verified.issued_at() + settings.max_age.as_secs_f64() - now).max(0.0),
    ) + Duration::from_secs(1);
    match settings
        .replay
        .check_and_record(verified.jkt(), verified.jti(), ttl)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Err(DpopError::new(
                DpopErrorKind::Replayed,
                "the proof (key and jti) was already used",
            ));
        }
        Err(err) => {
            let why = match err.kind() {
                StoreErrorKind::CapacityExceeded => "full",
                _ => "unavailable",
            };
            return Err(DpopError::new(
                DpopErrorKind::Unavailable,
                format!("DPoP replay cache {why}: {err}"),
            ));
        }
    }
    let jkt = verified.jkt().to_owned();
    Ok(principal.with_confirmation(Confirmation::Dpop { jkt }))
}

/// A token sent as `Bearer`: refused when it is bound (`cnf.jkt`, whatever the mode: never
/// downgraded) or when its issuer requires DPoP.
pub(crate) fn check_bearer(principal: Principal, mode: DpopMode) -> Result<Principal, TokenError> {
    if principal.bound_jkt().is_some() {
        return Err(TokenError::new(
            TokenErrorKind::DpopBound,
            "a DPoP-bound token (`cnf.jkt`) was sent as a bearer token",
        ));
    }
    if mode == DpopMode::Required {
        return Err(TokenError::new(
            TokenErrorKind::DpopRequired,
            "the issuer's tokens must be DPoP-bound and sent with a proof",
        ));
    }
    Ok(principal)
}
