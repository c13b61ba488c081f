//! Parsing `Authorization: Basic …` (RFC 7617).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderValue;
use zeroize::Zeroizing;

use crate::request::split_authorization;
use crate::secret::SecretString;

/// Standard alphabet; padding may be present or not, since clients differ and it carries nothing.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Size limits on what a client may send.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct BasicLimits {
    /// The longest `Authorization` value accepted, in bytes. Defaults to 4096.
    pub max_header_bytes: usize,
    /// The longest user name, in bytes. Defaults to 256.
    pub max_user_bytes: usize,
    /// The longest password, in bytes; it bounds the work hashing does. Defaults to 1024.
    pub max_password_bytes: usize,
}

/// Chained setters, for building a value from [`Default`] in one expression (the struct is
/// `#[non_exhaustive]`, so it cannot be written as a literal outside this crate).
impl BasicLimits {
    /// Sets [`max_header_bytes`](Self::max_header_bytes).
    #[must_use]
    pub fn with_max_header_bytes(mut self, max_header_bytes: usize) -> Self {
        self.max_header_bytes = max_header_bytes;
        self
    }

    /// Sets [`max_user_bytes`](Self::max_user_bytes).
    #[must_use]
    pub fn with_max_user_bytes(mut self, max_user_bytes: usize) -> Self {
        self.max_user_bytes = max_user_bytes;
        self
    }

    /// Sets [`max_password_bytes`](Self::max_password_bytes).
    #[must_use]
    pub fn with_max_password_bytes(mut self, max_password_bytes: usize) -> Self {
        self.max_password_bytes = max_password_bytes;
        self
    }
}

impl Default for BasicLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 4096,
            max_user_bytes: 256,
            max_password_bytes: 1024,
        }
    }
}

/// A user name and password from a Basic header.
#[derive(Debug)]
#[non_exhaustive]
pub struct BasicCredentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: SecretString,
}

/// Whether a header value names the Basic scheme (case-insensitively, RFC 9110 §11.1).
pub(crate) fn is_basic(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 5
        && bytes[..5].eq_ignore_ascii_case(b"basic")
        && bytes.get(5).is_none_or(|b| *b == b' ')
}

/// Parses a Basic credential. `Ok(None)` when the value is of another scheme; `Err` with a reason
/// (for logs) when it is Basic but malformed.
pub fn parse_basic(
    value: &HeaderValue,
    limits: &BasicLimits,
) -> Result<Option<BasicCredentials>, &'static str> {
    if !is_basic(value) {
        return Ok(None);
    }
    if value.len() > limits.max_header_bytes {
        return Err("Basic header is too long");
    }
    let text = value
        .to_str()
        .map_err(|_| "Basic header has non-ASCII bytes")?;
    let token = match split_authorization(text) {
        (_, Some(token)) if !token.is_empty() => token.trim_end_matches(' '),
        _ => return Err("Basic header has no credentials"),
    };
    // The decoded `user:password` is wiped when dropped, on every path; the password is copied
    // once more, into the `SecretString` (wiped on drop too). The header value itself belongs to
    // the request and is not wiped.
    let mut decoded = Zeroizing::new(Vec::with_capacity(token.len() / 4 * 3 + 3));
    BASE64
        .decode_vec(token, &mut decoded)
        .map_err(|_| "Basic credentials are not base64")?;
    let decoded = std::str::from_utf8(&decoded).map_err(|_| "Basic credentials are not UTF-8")?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or("Basic credentials have no `:`")?;
    if user.chars().chain(password.chars()).any(char::is_control) {
        return Err("Basic credentials contain a control character");
    }
    if user.len() > limits.max_user_bytes {
        return Err("Basic user name is too long");
    }
    if password.len() > limits.max_password_bytes {
        return Err("Basic password is too long");
    }
    Ok(Some(BasicCredentials {
        user: user.to_owned(),
        password: SecretString::new(password),
    }))
}

/// Encodes a user and password as a Basic header value (for clients and tests).
pub fn encode_basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(value: &str) -> Result<Option<BasicCredentials>, &'static str> {
        parse_basic(
            &HeaderValue::from_str(value).unwrap(),
            &BasicLimits::default(),
        )
    }

    fn b64(raw: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    #[test]
    fn accepts_any_case_and_splits_at_first_colon() {
        let creds = parse(&format!("bAsIc {}", b64(b"alice:pa:ss")))
            .unwrap()
            .unwrap();
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.password.expose_secret(), "pa:ss");
        let unpadded = b64(b"alice:x").trim_end_matches('=').to_owned();
        assert!(parse(&format!("Basic {unpadded}")).unwrap().is_some());
    }

    #[test]
    fn other_schemes_are_not_ours() {
        assert!(parse("Bearer abc").unwrap().is_none());
        assert!(parse("Basically abc").unwrap().is_none());
    }

    #[test]
    fn malformed_credentials_are_errors() {
        assert!(parse("Basic").is_err());
        assert!(parse("Basic ").is_err());
        assert!(parse("Basic !!!!").is_err());
        assert!(parse(&format!("Basic {}", b64(b"no-colon"))).is_err());
        assert!(parse(&format!("Basic {}", b64(b"bad\xffutf8:x"))).is_err());
        assert!(parse(&format!("Basic {}", b64(b"ctl\x01:x"))).is_err());
        assert!(parse(&format!("Basic {}", b64(b"u:p\x7f"))).is_err());
        let long = "x".repeat(2000);
        assert!(parse(&format!("Basic {}", b64(format!("u:{long}").as_bytes()))).is_err());
        let huge = "A".repeat(5000);
        assert!(parse(&format!("Basic {huge}")).is_err());
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(
            user in "[^:\\p{Cc}]{0,40}",
            password in "[^\\p{Cc}]{0,80}",
        ) {
            let header = HeaderValue::from_str(&encode_basic(&user, &password)).unwrap();
            let creds = parse_basic(&header, &BasicLimits::default()).unwrap().unwrap();
            prop_assert_eq!(creds.user, user);
            prop_assert_eq!(creds.password.expose_secret(), password.as_str());
        }

        #[test]
        fn arbitrary_values_never_panic(value in "[ -~]{0,200}") {
            if let Ok(header) = HeaderValue::from_str(&value) {
                let _ = parse_basic(&header, &BasicLimits::default());
            }
        }
    }
}
