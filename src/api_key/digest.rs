//! The keyed hash stored for a key's secret: HMAC-SHA256 under the server's pepper.
//!
//! Why HMAC-SHA256, and not argon2 as for passwords: a key's secret has 256 bits of entropy, so
//! there is nothing for a slow hash to protect against guessing, and a slow hash on every request
//! would cost more than the request. HMAC-SHA256 is standard (RFC 2104, FIPS 198-1 with FIPS
//! 180-4), available in every language an auditor or a migration script might use, and costs the
//! same for every input. The pepper (a server-side secret that is not in the database) makes a
//! stolen database useless on its own: without the pepper an attacker can neither check a guess
//! nor mint a record that verifies.
//!
//! The hashed message binds the key's id as well as its secret, so a digest copied onto another
//! record does not verify there.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::ConfigError;
use crate::secret::SecretString;
use crate::store::KeyDigest;

/// The shortest pepper accepted, in bytes: the HMAC-SHA256 output size.
pub const MIN_PEPPER_LEN: usize = 32;

/// Versioned so that a future change of construction can be told apart from this one.
const DOMAIN: &[u8] = b"portcullis api key v1\0";

pub(crate) struct KeyHasher {
    /// HMAC keyed with the pepper, cloned per use: keying once saves two SHA-256 blocks a request.
    keyed: Hmac<Sha256>,
    /// What an unknown id is compared against, so it costs one hash and one comparison too.
    dummy: KeyDigest,
}

impl KeyHasher {
    pub(crate) fn new(pepper: &SecretString) -> Result<Self, ConfigError> {
        // Read to key the HMAC; never stored elsewhere, logged or compared.
        let pepper = pepper.expose_secret().as_bytes();
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(ConfigError::new(format!(
                "the API key pepper must be at least {MIN_PEPPER_LEN} bytes (it is {}); generate \
                 one with `openssl rand -base64 32`",
                pepper.len()
            ))
            .with_key("api_keys.pepper"));
        }
        if pepper.iter().all(|&b| b == pepper[0]) {
            return Err(ConfigError::new("the API key pepper is one byte repeated")
                .with_key("api_keys.pepper"));
        }
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(pepper)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let mut dummy = [0u8; KeyDigest::LEN];
        rand::rng().fill_bytes(&mut dummy);
        Ok(Self {
            keyed,
            dummy: KeyDigest::from_bytes(dummy),
        })
    }

    /// HMAC-SHA256(pepper, domain ‖ id ‖ 0 ‖ secret).
    pub(crate) fn digest(&self, id: &str, secret: &SecretString) -> KeyDigest {
        let mut mac = self.keyed.clone();
        mac.update(DOMAIN);
        mac.update(id.as_bytes());
        mac.update(&[0]);
        // Read to hash it; the secret goes nowhere else.
        mac.update(secret.expose_secret().as_bytes());
        KeyDigest::from_bytes(mac.finalize().into_bytes().into())
    }

    /// Whether `secret` is the one `stored` was made from. With no stored digest (unknown id) it
    /// does the same work against a dummy and returns `false`.
    pub(crate) fn verify(
        &self,
        id: &str,
        secret: &SecretString,
        stored: Option<&KeyDigest>,
    ) -> bool {
        let digest = self.digest(id, secret);
        let matched = digest.ct_eq(stored.unwrap_or(&self.dummy));
        matched && stored.is_some()
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHasher([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> SecretString {
        SecretString::new("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn short_or_constant_peppers_are_refused() {
        let err = KeyHasher::new(&SecretString::new("short")).unwrap_err();
        assert!(err.message().contains("at least 32 bytes"), "{err}");
        assert_eq!(err.key(), Some("api_keys.pepper"));
        assert!(KeyHasher::new(&SecretString::new("a".repeat(40))).is_err());
        assert!(KeyHasher::new(&pepper()).is_ok());
    }

    #[test]
    fn digest_is_hmac_sha256_of_the_documented_message() {
        let hasher = KeyHasher::new(&pepper()).unwrap();
        let secret = SecretString::new("s3cret");
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(pepper().expose_secret().as_bytes()).unwrap();
        mac.update(b"portcullis api key v1\0id1\0s3cret");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(hasher.digest("id1", &secret).as_bytes(), &expected);
    }

    #[test]
    fn verify_binds_pepper_id_and_secret() {
        let hasher = KeyHasher::new(&pepper()).unwrap();
        let secret = SecretString::new("s3cret");
        let stored = hasher.digest("id1", &secret);
        assert!(hasher.verify("id1", &secret, Some(&stored)));
        assert!(!hasher.verify("id2", &secret, Some(&stored)));
        assert!(!hasher.verify("id1", &SecretString::new("s3creT"), Some(&stored)));
        assert!(!hasher.verify("id1", &secret, None));
        let other =
            KeyHasher::new(&SecretString::new("another pepper, also 32 bytes long")).unwrap();
        assert!(!other.verify("id1", &secret, Some(&stored)));
        assert_eq!(format!("{hasher:?}"), "KeyHasher([redacted])");
    }
}
