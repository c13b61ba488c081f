//! The claim checks after the signature: times (with leeway), audience, required claims, `typ`,
//! lifetime. RFC 7519 §4.1, RFC 8725 §3, RFC 9068 §4.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::claims::{Claims, Listed, Times};
use super::error::{TokenError, TokenErrorKind};
#[cfg(feature = "jwt")]
use crate::error::ConfigError;
use chrono::{DateTime, Utc};

/// The registered claims that can be required.
pub const KNOWN_REQUIRED_CLAIMS: [&str; 7] = ["exp", "iss", "aud", "sub", "iat", "nbf", "jti"];

/// The checks a verified token's claims must pass.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    /// Empty only when audience checking was dangerously turned off.
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: Duration,
    pub(crate) required: Vec<&'static str>,
    #[cfg(feature = "jwt")]
    /// Normalised: lowercase, without `application/`.
    pub(crate) typ: Option<String>,
    pub(crate) max_lifetime: Option<Duration>,
}

impl Rules {
    #[cfg(feature = "jwt")]
    pub(crate) fn required_claims<I, S>(
        names: I,
        key: &str,
    ) -> Result<Vec<&'static str>, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut required = Vec::new();
        for name in names {
            let name = name.as_ref();
            let known = KNOWN_REQUIRED_CLAIMS
                .into_iter()
                .find(|known| *known == name)
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "unknown required claim `{name}` (known: {})",
                        KNOWN_REQUIRED_CLAIMS.join(", ")
                    ))
                    .with_key(key)
                })?;
            if !required.contains(&known) {
                required.push(known);
            }
        }
        Ok(required)
    }

    #[cfg(feature = "jwt")]
    pub(crate) fn requires(&self, claim: &str) -> bool {
        self.required.contains(&claim)
    }

    #[cfg(feature = "jwt")]
    /// RFC 8725 §3.11: explicit typing, compared as a media type (case-insensitive, the
    /// `application/` prefix optional; RFC 7515 §4.1.9).
    pub(crate) fn check_typ(&self, typ: Option<&str>) -> Result<(), TokenError> {
        let Some(required) = &self.typ else {
            return Ok(());
        };
        match typ {
            Some(found) if typ_matches(found, required) => Ok(()),
            Some(found) => Err(TokenError::new(
                TokenErrorKind::InvalidType,
                format!(
                    "`typ` is {:?}, {required:?} is required",
                    found.chars().take(64).collect::<String>()
                ),
            )),
            None => Err(TokenError::new(
                TokenErrorKind::InvalidType,
                format!("no `typ`, {required:?} is required"),
            )),
        }
    }

    /// Checks presence, times and audience; returns the credential times.
    pub(crate) fn check_claims(&self, claims: &Claims<'_>) -> Result<Times, TokenError> {
        for name in &self.required {
            if !claims.has(name) {
                return Err(TokenError::new(
                    TokenErrorKind::MissingClaim,
                    format!("the required claim `{name}` is missing"),
                ));
            }
        }
        let now = now_secs();
        let leeway = self.leeway.as_secs_f64();
        let (exp, nbf, iat) = (claims.exp, claims.nbf, claims.iat);
        if let Some(exp) = exp {
            // RFC 7519 §4.1.4: the current time must be before `exp`.
            if now >= exp + leeway {
                return Err(TokenError::new(
                    TokenErrorKind::Expired,
                    "the token has expired",
                ));
            }
        }
        if nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(TokenError::new(
                TokenErrorKind::NotYetValid,
                "the token is not valid yet (`nbf`)",
            ));
        }
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err(TokenError::new(
                TokenErrorKind::IssuedInFuture,
                "the token was issued in the future (`iat`)",
            ));
        }
        if let Some(max) = self.max_lifetime {
            let Some(exp) = exp else {
                return Err(TokenError::new(
                    TokenErrorKind::MissingClaim,
                    "no `exp`, and a maximum token lifetime is set",
                ));
            };
            let lifetime = exp - iat.unwrap_or(now);
            if lifetime > max.as_secs_f64() + leeway {
                return Err(TokenError::new(
                    TokenErrorKind::LifetimeTooLong,
                    format!(
                        "a lifetime of {lifetime:.0}s exceeds the maximum of {}s",
                        max.as_secs()
                    ),
                ));
            }
        }
        if !self.audiences.is_empty() {
            self.check_audience(claims.aud.as_ref())?;
        }
        Ok(Times {
            issued_at: iat.map(to_datetime).transpose()?,
            expires_at: exp.map(to_datetime).transpose()?,
        })
    }

    /// RFC 7519 §4.1.3: `aud` is a string or an array of strings, one of which must be ours.
    fn check_audience(&self, aud: Option<&Listed<'_>>) -> Result<(), TokenError> {
        let ours = |s: &str| self.audiences.iter().any(|a| a == s);
        let accepted = match aud {
            None => {
                return Err(TokenError::new(
                    TokenErrorKind::InvalidAudience,
                    "the token has no `aud`",
                ));
            }
            Some(Listed::One(s)) => ours(s),
            Some(Listed::Many(items)) => items.iter().any(|s| ours(s)),
        };
        if accepted {
            Ok(())
        } else {
            Err(TokenError::new(
                TokenErrorKind::InvalidAudience,
                "`aud` names none of the accepted audiences",
            ))
        }
    }
}

#[cfg(feature = "jwt")]
pub(crate) fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

#[cfg(feature = "jwt")]
/// Whether `normalize_typ(found) == required`, without allocating: `found` lowercased (ASCII
/// only, as `normalize_typ` does) and stripped of an `application/` prefix, compared byte for
/// byte with `required`.
fn typ_matches(found: &str, required: &str) -> bool {
    const PREFIX: &str = "application/";
    let rest = match found.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => &found[PREFIX.len()..],
        _ => found,
    };
    rest.len() == required.len()
        && rest
            .bytes()
            .zip(required.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b)
}

fn to_datetime(secs: f64) -> Result<DateTime<Utc>, TokenError> {
    DateTime::from_timestamp(secs.floor() as i64, 0)
        .filter(|_| secs.abs() < 1e15)
        .ok_or_else(|| TokenError::malformed("a time claim is out of range"))
}

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(all(test, feature = "jwt"))]
mod tests {
    use super::*;
    use crate::jwt::claims::ClaimMapping;

    fn rules() -> Rules {
        Rules {
            audiences: vec!["api".to_owned()],
            leeway: Duration::from_secs(30),
            required: vec!["exp", "iss", "aud"],
            typ: Some("at+jwt".to_owned()),
            max_lifetime: Some(Duration::from_secs(3600)),
        }
    }

    fn check(json: String) -> Result<Times, TokenErrorKind> {
        let claims = Claims::parse(json.as_bytes(), &ClaimMapping::default())
            .map_err(|_| TokenErrorKind::Malformed)?;
        rules().check_claims(&claims).map_err(|e| e.kind())
    }

    #[test]
    fn times_and_audience() {
        let now = now_secs() as i64;
        let ok = |extra: &str| format!(r#"{{"iss":"i","aud":"api","exp":{}{extra}}}"#, now + 60);
        assert!(check(ok("")).is_ok());
        assert!(check(ok(&format!(r#","iat":{now}"#))).is_ok());
        assert_eq!(
            check(format!(r#"{{"iss":"i","aud":"api","exp":{}}}"#, now - 31)),
            Err(TokenErrorKind::Expired)
        );
        // Within the leeway.
        assert!(check(format!(r#"{{"iss":"i","aud":"api","exp":{}}}"#, now - 20)).is_ok());
        assert_eq!(
            check(ok(&format!(r#","nbf":{}"#, now + 60))),
            Err(TokenErrorKind::NotYetValid)
        );
        assert_eq!(
            check(ok(&format!(r#","iat":{}"#, now + 60))),
            Err(TokenErrorKind::IssuedInFuture)
        );
        assert_eq!(
            check(format!(
                r#"{{"iss":"i","aud":"api","iat":{now},"exp":{}}}"#,
                now + 7200
            )),
            Err(TokenErrorKind::LifetimeTooLong)
        );
        assert_eq!(check(ok(r#","exp2":1"#)).map(|_| ()), Ok(()));
        assert_eq!(
            check(format!(r#"{{"iss":"i","aud":"api","exp":"{}"}}"#, now + 60)),
            Err(TokenErrorKind::Malformed)
        );
        assert_eq!(
            check(format!(
                r#"{{"iss":"i","aud":["x","api"],"exp":{}.5}}"#,
                now + 60
            ))
            .map(|_| ()),
            Ok(())
        );
        assert_eq!(
            check(format!(r#"{{"iss":"i","aud":["x"],"exp":{}}}"#, now + 60)),
            Err(TokenErrorKind::InvalidAudience)
        );
        assert_eq!(
            check(format!(r#"{{"iss":"i","aud":[1],"exp":{}}}"#, now + 60)),
            Err(TokenErrorKind::Malformed)
        );
        assert_eq!(
            check(format!(r#"{{"iss":"i","exp":{}}}"#, now + 60)),
            Err(TokenErrorKind::MissingClaim)
        );
    }

    #[test]
    fn typ_compares_as_a_media_type() {
        let r = rules();
        assert!(r.check_typ(Some("at+jwt")).is_ok());
        assert!(r.check_typ(Some("application/AT+JWT")).is_ok());
        assert!(r.check_typ(Some("JWT")).is_err());
        assert!(r.check_typ(None).is_err());
        for found in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "APPLICATION/At+Jwt",
            "application/",
            "application/application/at+jwt",
            "applicatioN/jwt",
            "jwt",
            "",
            "é/at+jwt",
            "applicationé",
        ] {
            for required in ["at+jwt", "jwt", "AT+JWT", "", "application/at+jwt"] {
                assert_eq!(
                    typ_matches(found, required),
                    normalize_typ(found) == required,
                    "{found:?} vs {required:?}"
                );
            }
        }
    }
}
