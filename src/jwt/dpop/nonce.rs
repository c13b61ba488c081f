//! Server nonces (RFC 9449 §8), stateless: a nonce is the time it was made and an HMAC of that
//! time under the settings' key, so any instance holding the key can check it and none stores
//! one.

use std::time::Duration;

use aws_lc_rs::{hmac, rand};
use base64::Engine;

use super::super::compact::BASE64URL;

/// The bytes of the tag kept in a nonce: 128 bits.
const TAG_LEN: usize = 16;

/// A random 32-byte key, or `None` when the system has no randomness to give (then the settings'
/// check refuses to build).
pub(crate) fn random_secret() -> Option<Vec<u8>> {
    let mut secret = vec![0u8; 32];
    rand::fill(&mut secret).ok()?;
    Some(secret)
}

/// Makes and checks nonces.
pub(crate) struct Nonces {
    key: Option<hmac::Key>,
    lifetime: Duration,
}

impl Nonces {
    /// Stands for "nonces on" until the settings are checked and the key is made.
    pub(crate) fn placeholder() -> Self {
        Self {
            key: None,
            lifetime: Duration::ZERO,
        }
    }

    pub(crate) fn new(secret: &[u8], lifetime: Duration) -> Self {
        Self {
            key: Some(hmac::Key::new(hmac::HMAC_SHA256, secret)),
            lifetime,
        }
    }

    /// A nonce made at `now` (seconds since the epoch).
    pub(crate) fn issue(&self, now: u64) -> String {
        let mut raw = [0u8; 8 + TAG_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        if let Some(key) = &self.key {
            let tag = hmac::sign(key, &raw[..8]);
            raw[8..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        }
        BASE64URL.encode(raw)
    }

    /// Whether `nonce` was made by this key no longer than the lifetime before `now` (and not
    /// more than 5 s after it, for instances whose clocks disagree a little).
    pub(crate) fn accepts(&self, nonce: &str, now: u64) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let mut raw = [0u8; 8 + TAG_LEN + 3];
        let Ok(len) = BASE64URL.decode_slice(nonce, &mut raw) else {
            return false;
        };
        if len != 8 + TAG_LEN {
            return false;
        }
        let mut made = [0u8; 8];
        made.copy_from_slice(&raw[..8]);
        let made = u64::from_be_bytes(made);
        let tag = hmac::sign(key, &raw[..8]);
        let genuine: bool =
            subtle::ConstantTimeEq::ct_eq(&tag.as_ref()[..TAG_LEN], &raw[8..8 + TAG_LEN]).into();
        genuine && made <= now + 5 && now.saturating_sub(made) <= self.lifetime.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_within_its_lifetime_by_its_key_only() {
        let nonces = Nonces::new(&[7; 32], Duration::from_secs(300));
        let nonce = nonces.issue(1_000_000);
        assert!(nonces.accepts(&nonce, 1_000_000));
        assert!(nonces.accepts(&nonce, 1_000_300));
        assert!(!nonces.accepts(&nonce, 1_000_301), "expired");
        assert!(!nonces.accepts(&nonce, 999_990), "from the future");
        let other = Nonces::new(&[8; 32], Duration::from_secs(300));
        assert!(!other.accepts(&nonce, 1_000_000), "another key");
        let mut forged = nonce.into_bytes();
        forged[3] ^= 1;
        assert!(!nonces.accepts(std::str::from_utf8(&forged).unwrap(), 1_000_000));
        assert!(!nonces.accepts("", 1_000_000));
        assert!(!nonces.accepts("not base64!", 1_000_000));
    }
}
