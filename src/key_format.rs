//! The key format: `<prefix>_<id>_<secret><checksum>`.
//!
//! ```text
//! pc_3kTMd9Q2xLbR_Vq8…43 chars…Zt4AbC9x
//! │  │            │                 └ checksum: CRC32 of everything before it, base62, 6 chars
//! │  │            └ secret: 43 base62 chars from a CSPRNG (43 · log2 62 ≈ 256.03 bits)
//! │  └ public id: 12 base62 chars (≈ 71 bits), the lookup key in the store
//! └ prefix: 1 to 16 lowercase ASCII letters or digits; `pc` unless configured
//! ```
//!
//! The prefix lets secret scanners (GitHub, GitLab, trufflehog) recognise a leaked key, and lets
//! the authenticator tell a key from a JWT in the same `Bearer` header: a key never contains a
//! `.`. The checksum lets a scanner or the Gate refuse a mistyped or random key with no store
//! lookup (a key made up with a valid checksum still costs one). CRC32 detects every burst error of up to 32 bits, so it catches every single-character
//! substitution, which is what a typo is. It is not a MAC: it only filters noise, and an attacker
//! can compute it; the secret is what authenticates.
//!
//! Every part has a fixed length and the id and secret never contain `_`, so parsing is positional
//! and does not depend on what the prefix contains.
//!
//! It sits beneath the schemes (public as `api_key::KeyFormat`): the API-key scheme issues and
//! parses keys in it, and introspection leaves tokens of its shape to the API-key authenticator,
//! without either scheme importing the other.

use std::fmt;

use rand::Rng;

use crate::error::ConfigError;
use crate::secret::SecretString;

/// The prefix keys carry unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "pc";
/// The longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 16;
/// Length of the public id, in base62 characters.
pub const ID_LEN: usize = 12;
/// Length of the secret, in base62 characters: 43 · log2(62) ≈ 256.03 bits.
pub const SECRET_LEN: usize = 43;
/// Length of the checksum, in base62 characters: 62⁶ > 2³², so any CRC32 fits.
pub const CHECKSUM_LEN: usize = 6;

/// The base62 alphabet, in value order.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// How keys look for one deployment: which prefix they carry. Generates and parses keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFormat {
    prefix: String,
}

impl Default for KeyFormat {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl KeyFormat {
    /// A format with `prefix`: 1 to 16 lowercase ASCII letters or digits.
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        let valid_chars = prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN || !valid_chars {
            return Err(ConfigError::new(format!(
                "API key prefix `{prefix}` must be 1 to {MAX_PREFIX_LEN} lowercase ASCII letters \
                 or digits"
            ))
            .with_key("api_keys.prefix"));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix, without the `_` that follows it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The length of every key of this format.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
    }

    /// Whether `token` has the shape of a key of this format: it starts with `<prefix>_` and has
    /// no `.` (a JWT has two). Cheap and without validation; a token with this shape that does not
    /// [`parse`](Self::parse) is a bad API key, not someone else's credential.
    pub fn looks_like_key(&self, token: &str) -> bool {
        token.len() > self.prefix.len()
            && token.starts_with(self.prefix.as_str())
            && token.as_bytes()[self.prefix.len()] == b'_'
            && !token.contains('.')
    }

    /// Generates a new key from the thread-local CSPRNG (ChaCha, seeded and periodically
    /// reseeded from the operating system).
    pub fn generate(&self) -> GeneratedKey {
        let mut rng = rand::rng();
        let mut random_base62 = |len: usize| -> String {
            // `random_range` samples uniformly (rejection sampling), so no character is likelier.
            (0..len)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect()
        };
        let id = random_base62(ID_LEN);
        let secret = random_base62(SECRET_LEN);
        let mut key = String::with_capacity(self.key_len());
        key.push_str(&self.prefix);
        key.push('_');
        key.push_str(&id);
        key.push('_');
        key.push_str(&secret);
        let checksum = checksum(key.as_bytes());
        key.push_str(&checksum);
        GeneratedKey {
            key: SecretString::new(key),
            id,
            secret: SecretString::new(secret),
        }
    }

    /// Splits a presented key into its id and secret, checking prefix, lengths, alphabet and
    /// checksum. Needs no store.
    pub fn parse(&self, key: &str) -> Result<ParsedKey, KeyFormatError> {
        let rest = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .ok_or(KeyFormatError::WrongPrefix)?;
        // Checked on bytes. The length alone does not make the slicing below safe (two-byte
        // characters can add up to the right length), so anything but ASCII is refused first:
        // found by fuzzing (`fuzz/fuzz_targets/api_key_format.rs`), a panic before.
        if rest.len() != ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN {
            return Err(KeyFormatError::WrongLength);
        }
        if !rest.is_ascii() {
            return Err(KeyFormatError::BadAlphabet);
        }
        let bytes = rest.as_bytes();
        if bytes[ID_LEN] != b'_' {
            return Err(KeyFormatError::Malformed);
        }
        let id = &rest[..ID_LEN];
        let secret = &rest[ID_LEN + 1..ID_LEN + 1 + SECRET_LEN];
        let sent_checksum = &rest[ID_LEN + 1 + SECRET_LEN..];
        if ![id, secret, sent_checksum]
            .iter()
            .all(|part| part.bytes().all(is_base62))
        {
            return Err(KeyFormatError::BadAlphabet);
        }
        let checked = &key[..key.len() - CHECKSUM_LEN];
        // The checksum is public, so an ordinary comparison is fine. Comparing the encodings (not
        // decoded numbers) also refuses a non-canonical checksum, such as one above u32::MAX.
        if checksum(checked.as_bytes()) != sent_checksum {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(ParsedKey {
            id: id.to_owned(),
            secret: SecretString::new(secret),
        })
    }
}

/// A freshly generated key: the whole key to hand out once, and its parts.
pub struct GeneratedKey {
    key: SecretString,
    id: String,
    secret: SecretString,
}

impl GeneratedKey {
    /// The whole key, as the client presents it.
    pub fn key(&self) -> &SecretString {
        &self.key
    }

    /// The public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret part, which the store keeps only as a keyed hash.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// The whole key, the id and the secret.
    pub fn into_parts(self) -> (SecretString, String, SecretString) {
        (self.key, self.id, self.secret)
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A presented key that has the right shape and checksum; not yet checked against the store.
pub struct ParsedKey {
    id: String,
    secret: SecretString,
}

impl ParsedKey {
    /// The public id, for the store lookup.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret part.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

impl fmt::Debug for ParsedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Why a presented key is not a well-formed key of this format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFormatError {
    /// It does not start with `<prefix>_`.
    #[error("API key does not start with the expected prefix")]
    WrongPrefix,
    /// It is too short or too long.
    #[error("API key has the wrong length")]
    WrongLength,
    /// The `_` between id and secret is missing.
    #[error("API key is malformed")]
    Malformed,
    /// A character outside base62 where only base62 may be.
    #[error("API key contains a character outside base62")]
    BadAlphabet,
    /// The checksum does not match: a typo, a truncated copy, or a made-up key.
    #[error("API key checksum does not match")]
    BadChecksum,
}

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// CRC32 (IEEE) of `data`, as 6 base62 characters.
pub(crate) fn checksum(data: &[u8]) -> String {
    encode_base62_fixed(u64::from(crc32fast::hash(data)), CHECKSUM_LEN)
}

/// `value` in base62, most significant digit first, left-padded with `0` to `width`.
/// `value` must be below 62^width (the caller's invariant; CRC32 < 62⁶).
fn encode_base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    debug_assert_eq!(value, 0, "value does not fit in {width} base62 digits");
    // Every byte comes from ALPHABET, which is ASCII.
    digits.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_base62(s: &str) -> u64 {
        s.bytes().fold(0, |acc, b| {
            let digit = ALPHABET.iter().position(|&a| a == b).expect("base62") as u64;
            acc * 62 + digit
        })
    }

    #[test]
    fn base62_round_trips_at_the_edges() {
        for value in [0, 1, 61, 62, 3843, 3844, u64::from(u32::MAX)] {
            let encoded = encode_base62_fixed(value, CHECKSUM_LEN);
            assert_eq!(encoded.len(), CHECKSUM_LEN);
            assert_eq!(decode_base62(&encoded), value);
        }
        assert_eq!(encode_base62_fixed(61, 2), "0z");
        assert_eq!(encode_base62_fixed(62, 2), "10");
    }

    /// Fuzzing found this: multi-byte characters that add up to a key's length made `parse`
    /// slice inside a character and panic.
    #[test]
    fn non_ascii_of_the_right_length_is_refused_not_a_panic() {
        let format = KeyFormat::new("acme2").unwrap();
        let key = "acme2_Fi5VvfXvDbx|_c4Yy\u{629}iCFi5VvfXvDbp7_c4Yy2ViC9qiMyfrVWdCYy\u{629}JTYK/";
        assert_eq!(key.len(), format.key_len());
        assert_eq!(format.parse(key).err(), Some(KeyFormatError::BadAlphabet));
        let good = format.generate();
        let good = good.key().expose_secret();
        // Two ASCII characters, the last of the secret and the first of the checksum, become
        // one two-byte character: same length, and the secret's end falls inside it.
        let at = format.prefix().len() + 1 + ID_LEN + 1 + SECRET_LEN - 1;
        let shifted = format!("{}\u{e9}{}", &good[..at], &good[at + 2..]);
        assert_eq!(shifted.len(), good.len());
        assert_eq!(
            format.parse(&shifted).err(),
            Some(KeyFormatError::BadAlphabet)
        );
    }

    #[test]
    fn checksum_matches_the_crc32_check_value() {
        // The standard CRC32 check value: crc32("123456789") = 0xCBF43926.
        assert_eq!(decode_base62(&checksum(b"123456789")), 0xCBF4_3926);
    }

    #[test]
    fn prefix_is_validated() {
        assert!(KeyFormat::new("pc").is_ok());
        assert!(KeyFormat::new("acme2").is_ok());
        assert!(KeyFormat::new(&"a".repeat(MAX_PREFIX_LEN)).is_ok());
        for bad in [
            "",
            "PC",
            "p_c",
            "p-c",
            "pç",
            &"a".repeat(MAX_PREFIX_LEN + 1),
        ] {
            let err = KeyFormat::new(bad).unwrap_err();
            assert!(err.message().contains("lowercase"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn generated_key_has_the_documented_layout() {
        let format = KeyFormat::new("acme").unwrap();
        let generated = format.generate();
        let key = generated.key().expose_secret();
        assert_eq!(key.len(), format.key_len());
        assert_eq!(key.len(), 4 + 1 + 12 + 1 + 43 + 6);
        assert!(key.starts_with("acme_"));
        assert_eq!(&key[5..17], generated.id());
        assert_eq!(&key[18..61], generated.secret().expose_secret());
        assert!(format.looks_like_key(key));
        assert!(!format!("{generated:?}").contains(generated.secret().expose_secret()));
    }

    #[test]
    fn keys_are_not_repeated() {
        let format = KeyFormat::default();
        let a = format.generate();
        let b = format.generate();
        assert_ne!(a.id(), b.id());
        assert_ne!(a.secret().expose_secret(), b.secret().expose_secret());
    }

    #[test]
    fn parse_names_what_is_wrong() {
        let format = KeyFormat::default();
        let key = format.generate().key().expose_secret().to_owned();
        let other = KeyFormat::new("xy").unwrap();
        assert_eq!(other.parse(&key).unwrap_err(), KeyFormatError::WrongPrefix);
        assert_eq!(
            format.parse(&key[..key.len() - 1]).unwrap_err(),
            KeyFormatError::WrongLength
        );
        assert_eq!(
            format.parse(&format!("{key}0")).unwrap_err(),
            KeyFormatError::WrongLength
        );
        let mut moved = key.clone().into_bytes();
        moved.swap(3 + ID_LEN, 3 + ID_LEN - 1);
        assert_eq!(
            format
                .parse(std::str::from_utf8(&moved).unwrap())
                .unwrap_err(),
            KeyFormatError::Malformed
        );
        let mut bad = key.clone();
        bad.replace_range(5..6, "-");
        assert_eq!(format.parse(&bad).unwrap_err(), KeyFormatError::BadAlphabet);
        let mut typo = key.clone();
        let c = if &key[5..6] == "a" { "b" } else { "a" };
        typo.replace_range(5..6, c);
        assert_eq!(
            format.parse(&typo).unwrap_err(),
            KeyFormatError::BadChecksum
        );
    }

    #[test]
    fn a_jwt_does_not_look_like_a_key() {
        let format = KeyFormat::default();
        assert!(!format.looks_like_key("eyJhbGciOi.eyJzdWIi.c2ln"));
        assert!(!format.looks_like_key("pc_abc.def.ghi"));
        assert!(!format.looks_like_key("pcx_abc"));
        assert!(!format.looks_like_key("pc"));
        assert!(format.looks_like_key("pc_anything"));
    }

    fn any_prefix() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,16}"
    }

    proptest! {
        #[test]
        fn generated_keys_parse_back(prefix in any_prefix()) {
            let format = KeyFormat::new(&prefix).unwrap();
            let generated = format.generate();
            let parsed = format.parse(generated.key().expose_secret()).unwrap();
            prop_assert_eq!(parsed.id(), generated.id());
            prop_assert_eq!(
                parsed.secret().expose_secret(),
                generated.secret().expose_secret()
            );
        }

        #[test]
        fn any_single_substitution_fails_to_parse(
            prefix in any_prefix(),
            position in any::<prop::sample::Index>(),
            replacement in prop_oneof![
                // Mostly the key's own alphabet, which only the checksum can catch...
                4 => prop::sample::select(
                    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
                        .iter()
                        .map(|&b| char::from(b))
                        .collect::<Vec<_>>()
                ),
                // ...then anything at all, multi-byte characters included.
                1 => any::<char>(),
            ],
        ) {
            let format = KeyFormat::new(&prefix).unwrap();
            let key = format.generate().key().expose_secret().to_owned();
            let at = position.index(key.len());
            let original = char::from(key.as_bytes()[at]);
            prop_assume!(replacement != original);
            let mut changed = key.clone();
            changed.replace_range(at..=at, replacement.encode_utf8(&mut [0; 4]));
            prop_assert!(
                format.parse(&changed).is_err(),
                "{changed:?} (position {at}, {original:?} -> {replacement:?}) parsed"
            );
        }

        #[test]
        fn every_substitution_at_every_position_fails(prefix in any_prefix()) {
            // Exhaustive over the alphabet for one key per case: a CRC32 guarantee, checked.
            let format = KeyFormat::new(&prefix).unwrap();
            let key = format.generate().key().expose_secret().to_owned();
            let mut changed = key.clone().into_bytes();
            for at in 0..key.len() {
                for &c in ALPHABET.iter().chain(b"_.-") {
                    if c == key.as_bytes()[at] {
                        continue;
                    }
                    changed[at] = c;
                    let text = std::str::from_utf8(&changed).unwrap();
                    prop_assert!(format.parse(text).is_err(), "{text:?} parsed");
                }
                changed[at] = key.as_bytes()[at];
            }
        }
    }
}
