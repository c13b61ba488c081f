//! The JWS compact serialization (RFC 7515 §7.1), parsed strictly: exactly three parts, base64url
//! without padding and with canonical trailing bits, a header and claims that are JSON objects
//! with unique member names. Nothing here trusts the token: it only takes it apart.

use std::borrow::Cow;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::algorithm::Algorithm;
use super::error::{TokenError, TokenErrorKind};
use crate::json::Skip;

/// base64url as RFC 7515 §2 defines it: the URL-safe alphabet, no padding, no whitespace, and
/// the unused bits of the last character zero, so one byte string has exactly one encoding.
pub(crate) const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// The largest signature accepted: RSA-8192.
const MAX_SIGNATURE_LEN: usize = 1024;

/// A token taken apart, not yet verified.
pub(crate) struct Compact<'t> {
    /// `<header>.<payload>`: the bytes the signature covers.
    pub(crate) signing_input: &'t str,
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) typ: Option<String>,
    /// The decoded payload: the claims document, checked by `Claims::parse`.
    pub(crate) payload: Vec<u8>,
    /// The signature, base64url, at most `MAX_SIGNATURE_LEN` bytes once decoded.
    signature: &'t str,
}

/// Room for the largest signature part the length check lets through (its base64url decodes to
/// at most `(MAX_SIGNATURE_LEN * 4 / 3 + 4) * 3 / 4` bytes), so decoding never allocates.
pub(crate) const SIGNATURE_BUF_LEN: usize = MAX_SIGNATURE_LEN + 8;

/// A decoded signature's buffer, on the stack instead of in its own allocation.
pub(crate) type SignatureBuf = [u8; SIGNATURE_BUF_LEN];

impl Compact<'_> {
    /// Decodes the signature into `buf`. Done after the key lookup, so the buffer is never part
    /// of a future waiting for a key set.
    pub(crate) fn signature<'b>(&self, buf: &'b mut SignatureBuf) -> Result<&'b [u8], TokenError> {
        let len = BASE64URL
            .decode_slice(self.signature, buf)
            .map_err(|_| not_base64url("signature"))?;
        Ok(&buf[..len])
    }
}

/// The header members that matter. `jwk`, `jku`, `x5u`, `x5c` and `x5t` are never read: keys
/// come from configuration only (RFC 8725 §3.10).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cty: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    enc: Present,
    #[serde(default)]
    zip: Present,
    #[serde(default)]
    b64: Present,
}

/// Whether a header member is there at all, whatever its value: `null` included, which an
/// `Option` would read as absent (`"zip": null` passed; found by the `jws_compact` fuzz target).
/// RFC 7515 gives none of these members a `null` form, so a `null` one is refused as any other.
#[derive(Default)]
pub(crate) struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

impl Present {
    pub(crate) fn is_some(&self) -> bool {
        self.0
    }
}

/// Takes a compact JWS apart, refusing anything that is not one.
pub(crate) fn parse(
    token: &str,
    max_token_size: usize,
    max_kid_len: usize,
) -> Result<Compact<'_>, TokenError> {
    if token.len() > max_token_size {
        return Err(TokenError::new(
            TokenErrorKind::TooLarge,
            format!("token of {} bytes exceeds {max_token_size}", token.len()),
        ));
    }
    let (header, payload, signature) = split(token)?;
    if signature.is_empty() {
        return Err(TokenError::malformed("the signature is empty"));
    }
    // One buffer for the header, then the payload: sized for the larger of the two.
    let mut buf = Vec::with_capacity(header.len().max(payload.len()) / 4 * 3 + 3);
    decode_into(header, "header", &mut buf)?;
    // Refused before serde sees it: serde's "invalid type" error quotes a top-level string in
    // full, Debug-escaped (a DEL byte becomes six characters), so the error alone would hold
    // several times the token (found by the `jws_compact` fuzz target's allocation bound).
    if buf.iter().find(|b| !b" \t\r\n".contains(b)) != Some(&b'{') {
        return Err(TokenError::malformed("the header is not a JSON object"));
    }
    // `RawHeader` alone would pass members it does not name, repeats included
    // (`{"alg":"ES256","x5u":"a","x5u":"b"}`, or one inside `jwk`): the header is held to the
    // rule every other JSON document is, no repeated member name at any depth (`json.rs`).
    serde_json::from_slice::<Skip>(&buf)
        .map_err(|e| TokenError::malformed(format!("header: {e}")))?;
    let raw: RawHeader<'_> =
        serde_json::from_slice(&buf).map_err(|e| TokenError::malformed(format!("header: {e}")))?;
    refuse_extensions(&raw)?;
    let alg = match raw.alg.as_deref() {
        None => return Err(TokenError::malformed("the header has no `alg`")),
        Some(name) => name
            .parse::<Algorithm>()
            .map_err(|e| TokenError::new(TokenErrorKind::UnsupportedAlgorithm, e.to_string()))?,
    };
    let kid = match raw.kid {
        None => None,
        Some(kid) => {
            if kid.len() > max_kid_len {
                return Err(TokenError::malformed(format!(
                    "`kid` of {} bytes exceeds {max_kid_len}",
                    kid.len()
                )));
            }
            if kid.is_empty() || kid.chars().any(char::is_control) {
                return Err(TokenError::malformed(
                    "`kid` is empty or has a control character",
                ));
            }
            Some(kid.into_owned())
        }
    };
    let typ = raw.typ.map(Cow::into_owned);
    buf.clear();
    decode_into(payload, "payload", &mut buf)?;
    if signature.len() > MAX_SIGNATURE_LEN * 4 / 3 + 4 {
        return Err(TokenError::malformed("the signature is too long"));
    }
    Ok(Compact {
        signing_input: &token[..header.len() + 1 + payload.len()],
        alg,
        kid,
        typ,
        payload: buf,
        signature,
    })
}

/// The three parts of a compact JWS; five parts are a JWE, refused for what it is.
fn split(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.splitn(6, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::malformed(
            "not a compact JWS (fewer than three parts)",
        ));
    };
    match parts.count() {
        0 => {}
        2 => {
            return Err(TokenError::new(
                TokenErrorKind::UnsupportedHeader,
                "an encrypted token (JWE) is not accepted",
            ));
        }
        _ => {
            return Err(TokenError::malformed(
                "not a compact JWS (more than three parts)",
            ));
        }
    }
    Ok((header, payload, signature))
}

/// Refuses what the header may ask for that portcullis does not do: decryption, critical
/// extensions, compression, nesting.
fn refuse_extensions(raw: &RawHeader<'_>) -> Result<(), TokenError> {
    if raw.enc.is_some() {
        return Err(TokenError::new(
            TokenErrorKind::UnsupportedHeader,
            "an encrypted token (JWE) is not accepted",
        ));
    }
    // RFC 7515 §4.1.11: a recipient must refuse a `crit` extension it does not understand, and
    // portcullis understands none (so `b64: false`, RFC 7797, is refused too).
    if raw.crit.is_some() || raw.b64.is_some() {
        return Err(TokenError::new(
            TokenErrorKind::UnsupportedHeader,
            "the header has critical extensions (`crit` or `b64`)",
        ));
    }
    if raw.zip.is_some() {
        return Err(TokenError::new(
            TokenErrorKind::UnsupportedHeader,
            "compressed payloads (`zip`) are not accepted",
        ));
    }
    if raw
        .cty
        .as_deref()
        .is_some_and(|cty| cty.eq_ignore_ascii_case("jwt"))
    {
        return Err(TokenError::new(
            TokenErrorKind::UnsupportedHeader,
            "a nested JWT (`cty: JWT`) is not accepted",
        ));
    }
    Ok(())
}

/// Decodes `part` into `buf` (appending), reusing its allocation.
fn decode_into(part: &str, what: &'static str, buf: &mut Vec<u8>) -> Result<(), TokenError> {
    BASE64URL
        .decode_vec(part, buf)
        .map_err(|_| not_base64url(what))
}

fn not_base64url(what: &'static str) -> TokenError {
    TokenError::malformed(format!("the {what} is not unpadded base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        BASE64URL.encode(s)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    /// Why a token is refused, taking it apart and decoding its signature.
    fn kind(token: &str) -> TokenErrorKind {
        let parsed =
            parse(token, 8192, 64).and_then(|c| c.signature(&mut [0; SIGNATURE_BUF_LEN]).map(drop));
        match parsed {
            Ok(()) => panic!("accepted {token}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn a_well_formed_token_comes_apart() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"sub":"a"}"#,
        );
        let c = parse(&t, 8192, 64).unwrap();
        assert_eq!(c.alg, Algorithm::ES256);
        assert_eq!(c.kid.as_deref(), Some("k1"));
        assert_eq!(c.typ.as_deref(), Some("at+jwt"));
        assert_eq!(c.payload, br#"{"sub":"a"}"#);
        assert_eq!(c.signature(&mut [0; SIGNATURE_BUF_LEN]).unwrap(), b"sig");
        assert_eq!(
            t.strip_prefix(c.signing_input).unwrap().len(),
            1 + b64("sig").len()
        );
    }

    #[test]
    fn base64_tricks_are_refused() {
        let t = token(r#"{"alg":"ES256"}"#, r#"{"sub":"a"}"#);
        let (h, rest) = t.split_once('.').unwrap();
        // Padding, the standard alphabet, whitespace.
        assert_eq!(kind(&format!("{h}=.{rest}")), TokenErrorKind::Malformed);
        let std_alphabet = h.replace('-', "+").replace('_', "/");
        if std_alphabet != h {
            assert_eq!(
                kind(&format!("{std_alphabet}.{rest}")),
                TokenErrorKind::Malformed
            );
        }
        assert_eq!(kind(&format!("{h} .{rest}")), TokenErrorKind::Malformed);
        // "sig" is 3 bytes = 4 chars; a 2-byte signature "si" ends in a char with unused bits.
        let two = BASE64URL.encode("si");
        let mut bytes = two.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'k' { b'l' } else { b'k' };
        let tweaked = String::from_utf8(bytes).unwrap();
        let (hp, _) = t.rsplit_once('.').unwrap();
        assert_eq!(kind(&format!("{hp}.{tweaked}")), TokenErrorKind::Malformed);
    }

    #[test]
    fn the_longest_signature_decodes() {
        let t = token(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#);
        let (hp, _) = t.rsplit_once('.').unwrap();
        let sig = vec![7u8; MAX_SIGNATURE_LEN];
        let t = format!("{hp}.{}", BASE64URL.encode(&sig));
        let c = parse(&t, 8192, 64).unwrap();
        assert_eq!(c.signature(&mut [0; SIGNATURE_BUF_LEN]).unwrap(), &sig[..]);
        let longer = vec![7u8; MAX_SIGNATURE_LEN + 2];
        let longer = format!("{hp}.{}", BASE64URL.encode(&longer));
        let c = parse(&longer, 8192, 64).unwrap();
        assert!(c.signature(&mut [0; SIGNATURE_BUF_LEN]).is_ok());
        let too_long = "A".repeat(MAX_SIGNATURE_LEN * 4 / 3 + 5);
        assert_eq!(kind(&format!("{hp}.{too_long}")), TokenErrorKind::Malformed);
    }

    #[test]
    fn a_header_that_is_not_an_object_is_refused_without_quoting_it() {
        let long = format!("\"{}\"", "\u{7f}".repeat(2000));
        for header in [long.as_str(), "[]", "7", "true", "null", " \"a\""] {
            let t = token(header, r#"{"sub":"a"}"#);
            let Err(e) = parse(&t, 8192, 64) else {
                panic!("{header:?} accepted");
            };
            assert_eq!(e.kind(), TokenErrorKind::Malformed);
            assert_eq!(
                e.to_string().len(),
                "the header is not a JSON object".len(),
                "{e}"
            );
        }
        assert!(parse(&token(" \n{\"alg\":\"ES256\"}", r#"{"sub":"a"}"#), 8192, 64).is_ok());
    }

    #[test]
    fn structure_is_checked() {
        assert_eq!(kind("a.b"), TokenErrorKind::Malformed);
        assert_eq!(kind("a.b.c.d"), TokenErrorKind::Malformed);
        assert_eq!(kind("a.b.c.d.e"), TokenErrorKind::UnsupportedHeader);
        let t = token(r#"{"alg":"ES256"}"#, r#"{"sub":"a"}"#);
        let (hp, _) = t.rsplit_once('.').unwrap();
        assert_eq!(kind(&format!("{hp}.")), TokenErrorKind::Malformed);
        assert_eq!(kind(&"a".repeat(9000)), TokenErrorKind::TooLarge);
    }

    #[test]
    fn header_checks() {
        let claims = r#"{"sub":"a"}"#;
        for (header, expected) in [
            (r#"{"alg":"none"}"#, TokenErrorKind::UnsupportedAlgorithm),
            (r#"{"alg":"ES256","alg":"none"}"#, TokenErrorKind::Malformed),
            (
                r#"{"alg":"ES256","crit":["exp"]}"#,
                TokenErrorKind::UnsupportedHeader,
            ),
            (
                r#"{"alg":"ES256","b64":false}"#,
                TokenErrorKind::UnsupportedHeader,
            ),
            (
                r#"{"alg":"ES256","zip":"DEF"}"#,
                TokenErrorKind::UnsupportedHeader,
            ),
            (
                r#"{"alg":"ES256","cty":"JWT"}"#,
                TokenErrorKind::UnsupportedHeader,
            ),
            (
                r#"{"alg":"ES256","enc":"A256GCM"}"#,
                TokenErrorKind::UnsupportedHeader,
            ),
            (r#"{"alg":"ES256","kid":7}"#, TokenErrorKind::Malformed),
            (r#"{"alg":"ES256","kid":"a\nb"}"#, TokenErrorKind::Malformed),
            (r#"{"alg":["ES256"]}"#, TokenErrorKind::Malformed),
            (r#"{"kid":"k"}"#, TokenErrorKind::Malformed),
        ] {
            assert_eq!(kind(&token(header, claims)), expected, "{header}");
        }
        let long_kid = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, "k".repeat(65));
        assert_eq!(kind(&token(&long_kid, claims)), TokenErrorKind::Malformed);
    }

    /// Found by the `jws_compact` fuzz target: members `RawHeader` does not name were not
    /// checked for repeats (seed `fuzz/seeds/jws_compact/crash-*`).
    #[test]
    fn a_header_with_a_repeated_member_is_refused_at_every_depth() {
        let claims = r#"{"sub":"a"}"#;
        for header in [
            r#"{"alg":"ES256","x5u":"https://a.example","x5u":"https://b.example"}"#,
            r#"{"alg":"ES256","jwk":{"kty":"EC","kty":"RSA"}}"#,
            r#"{"alg":"ES256","x":[{"a":1,"a":2}]}"#,
            r#"{"alg":"ES256","x5c":["a"],"x5\u0063":["b"]}"#,
        ] {
            assert_eq!(
                kind(&token(header, claims)),
                TokenErrorKind::Malformed,
                "{header}"
            );
        }
        // Distinct names at every depth are fine.
        let fine = token(
            r#"{"alg":"ES256","jwk":{"kty":"EC","x":{"kty":1}}}"#,
            claims,
        );
        assert!(parse(&fine, 8192, 64).is_ok());
    }

    /// Found by the `jws_compact` fuzz target: `"zip": null` read as no `zip` (seed
    /// `fuzz/seeds/jws_compact/crash-78939da0…`).
    #[test]
    fn extension_members_are_refused_even_when_null() {
        for member in ["crit", "b64", "zip", "enc"] {
            let header = format!(r#"{{"alg":"ES256","{member}":null}}"#);
            assert_eq!(
                kind(&token(&header, r#"{"sub":"a"}"#)),
                TokenErrorKind::UnsupportedHeader,
                "{header}"
            );
        }
    }
}
