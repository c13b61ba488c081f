//! The page's anti-forgery form tokens: an HMAC-SHA256 over the caller's subject and an expiry,
//! under a server key. The page's forms carry one in a hidden `csrf` field; a post passes only
//! with a token issued to the same subject, unexpired, under this key.
//!
//! They add to the origin check (`Sec-Fetch-Site`, `Origin`) rather than replace it: a browser
//! that sends neither header (an old one, or a proxy that strips them) still cannot be made to
//! post a form another site wrote, since that site cannot read a token off this one's page.
//! Stateless, so nothing is stored per session and any instance sharing the key accepts them.
//!
//! A token is `base64url(expiry ‖ tag)`: the expiry as 8 bytes (seconds since the epoch, big
//! endian) and the 32-byte tag, `HMAC-SHA256(key, LABEL ‖ expiry ‖ subject)`.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::SecretString;

/// How long a form token is accepted after the page that carries it was served.
pub(crate) const LIFETIME: Duration = Duration::from_secs(3600);

/// The shortest shared secret [`FormKey::from_secret`] accepts, in bytes.
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// Domain separation: a tag made here is no tag for anything else keyed the same.
const LABEL: &[u8] = b"portcullis self-service form token v1\0";
/// Derives the key from a shared secret, so that the secret itself is never the HMAC key.
const KEY_LABEL: &[u8] = b"portcullis self-service form key v1";

const EXPIRY_LEN: usize = 8;
const TAG_LEN: usize = 32;
/// The length of a token in base64url characters, without padding: ⌈40 × 4 / 3⌉ = 54.
const TOKEN_LEN: usize = ((EXPIRY_LEN + TAG_LEN) * 4).div_ceil(3);

/// The server key form tokens are made with. `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct FormKey {
    key: Zeroizing<[u8; 32]>,
}

impl FormKey {
    /// A fresh random key: tokens are good for this process only (pages served by another
    /// instance behind the same load balancer are refused there).
    pub(crate) fn random() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        Self { key }
    }

    /// The key derived from a secret shared by every instance, so that a page served by one is
    /// posted to any. `None` when the secret is shorter than [`MIN_SECRET_LEN`] bytes.
    pub(crate) fn from_secret(secret: &SecretString) -> Option<Self> {
        let secret = secret.expose_secret().as_bytes();
        if secret.len() < MIN_SECRET_LEN {
            return None;
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
        mac.update(KEY_LABEL);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Some(Self { key })
    }

    /// A token for `subject`, good until [`LIFETIME`] after `now`.
    pub(crate) fn issue(&self, subject: &str, now: DateTime<Utc>) -> String {
        let lifetime = i64::try_from(LIFETIME.as_secs()).unwrap_or(i64::MAX);
        // Before 1970 (a broken clock) the expiry is 0: every check refuses it.
        let expiry = u64::try_from(now.timestamp().saturating_add(lifetime)).unwrap_or(0);
        let mut token = [0u8; EXPIRY_LEN + TAG_LEN];
        token[..EXPIRY_LEN].copy_from_slice(&expiry.to_be_bytes());
        token[EXPIRY_LEN..].copy_from_slice(&self.mac(expiry, subject).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Whether `token` was issued under this key to `subject` and has not expired at `now`. The
    /// tag is compared in constant time; anything malformed is refused before any HMAC work.
    pub(crate) fn verify(&self, token: &str, subject: &str, now: DateTime<Utc>) -> bool {
        if token.len() != TOKEN_LEN {
            return false;
        }
        let mut raw = [0u8; EXPIRY_LEN + TAG_LEN];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
            Ok(len) if len == raw.len() => {}
            _ => return false,
        }
        let (expiry, tag) = raw.split_at(EXPIRY_LEN);
        let expiry = u64::from_be_bytes(expiry.try_into().unwrap_or([0; EXPIRY_LEN]));
        if self.mac(expiry, subject).verify_slice(tag).is_err() {
            return false;
        }
        // Issued by this key, so the expiry is one `issue` wrote: at most LIFETIME ahead.
        u64::try_from(now.timestamp()).is_ok_and(|now| now < expiry)
    }

    fn mac(&self, expiry: u64, subject: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(LABEL);
        mac.update(&expiry.to_be_bytes());
        // The subject last, after fixed-length fields: no two (expiry, subject) pairs give the
        // same input.
        mac.update(subject.as_bytes());
        mac
    }
}

impl fmt::Debug for FormKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FormKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn accepts_its_own_token_for_the_subject_until_it_expires() {
        let key = FormKey::random();
        let token = key.issue("alice", now());
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(key.verify(&token, "alice", now()));
        assert!(key.verify(&token, "alice", now() + TimeDelta::seconds(3599)));
        assert!(!key.verify(&token, "alice", now() + TimeDelta::seconds(3600)));
        assert!(!key.verify(&token, "alice", now() + TimeDelta::days(400)));
    }

    #[test]
    fn refuses_another_subject() {
        let key = FormKey::random();
        let token = key.issue("alice", now());
        assert!(!key.verify(&token, "bob", now()));
        assert!(!key.verify(&token, "alice ", now()));
        assert!(!key.verify(&token, "", now()));
    }

    #[test]
    fn refuses_another_key() {
        let token = FormKey::random().issue("alice", now());
        assert!(!FormKey::random().verify(&token, "alice", now()));
    }

    #[test]
    fn refuses_a_tampered_token() {
        let key = FormKey::random();
        let token = key.issue("alice", now());
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&raw);
            assert!(!key.verify(&tampered, "alice", now()), "byte {i} flipped");
            raw[i] ^= 1;
        }
        // A later expiry with the old tag: the expiry is under the tag.
        let mut later = raw.clone();
        later[..EXPIRY_LEN].copy_from_slice(&u64::MAX.to_be_bytes());
        let later = URL_SAFE_NO_PAD.encode(&later);
        assert!(!key.verify(&later, "alice", now() + TimeDelta::days(1)));
    }

    #[test]
    fn refuses_truncated_padded_and_garbage_tokens() {
        let key = FormKey::random();
        let token = key.issue("alice", now());
        for bad in [
            "",
            &token[..token.len() - 1],
            &token[..TOKEN_LEN / 2],
            &format!("{token}A"),
            &format!("{token}="),
            &"A".repeat(TOKEN_LEN),
            &"!".repeat(TOKEN_LEN),
            &"é".repeat(TOKEN_LEN / 2),
            &token.replace(|c: char| c.is_ascii_alphanumeric(), "+"),
            &"A".repeat(100_000),
        ] {
            assert!(!key.verify(bad, "alice", now()), "{bad:?}");
        }
        // Standard base64's alphabet is not base64url's.
        let standard = token.replace('-', "+").replace('_', "/");
        if standard != token {
            assert!(!key.verify(&standard, "alice", now()));
        }
    }

    #[test]
    fn a_shared_secret_gives_the_same_key_everywhere() {
        let secret = SecretString::new("a form key shared by every instance, 32+ bytes");
        let one = FormKey::from_secret(&secret).unwrap();
        let two = FormKey::from_secret(&secret).unwrap();
        let token = one.issue("alice", now());
        assert!(two.verify(&token, "alice", now()));
        let other = FormKey::from_secret(&SecretString::new(
            "another form key shared by every instance, 32+",
        ))
        .unwrap();
        assert!(!other.verify(&token, "alice", now()));
        // The secret is not the HMAC key itself.
        assert_ne!(one.key[..], secret.expose_secret().as_bytes()[..32]);
    }

    #[test]
    fn a_short_secret_is_refused_and_debug_hides_the_key() {
        assert!(FormKey::from_secret(&SecretString::new("short")).is_none());
        assert!(FormKey::from_secret(&SecretString::new("x".repeat(MIN_SECRET_LEN - 1))).is_none());
        assert_eq!(format!("{:?}", FormKey::random()), "FormKey([redacted])");
    }

    #[test]
    fn a_clock_before_1970_never_verifies() {
        let key = FormKey::random();
        let past = DateTime::from_timestamp(-10_000, 0).unwrap();
        let token = key.issue("alice", past);
        assert!(!key.verify(&token, "alice", past));
    }
}
