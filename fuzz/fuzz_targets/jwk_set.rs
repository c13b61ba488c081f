//! Key sets and single keys: `KeySet::parse_jwks` as a remote JWKS and as configuration
//! (`portcullis::__fuzz::jwk_set`), and `VerifyingKey::from_jwk` (public API): RSA of every
//! size, EC points, OKP, `oct`, `use` and `key_ops`.
//!
//! Input: a mode byte (even: a JWKS, read both as remote and as local; odd: one JWK), then the
//! document.
//!
//! Checked:
//! - a document with a repeated member name at any depth is refused;
//! - a JWKS gives at most `MAX_JWKS_KEYS` keys, never two with the same `kid` and algorithm,
//!   and read as remote exactly the local keys without the shared secrets (`oct` never comes
//!   from the network); kept and skipped keys add up to the entries read;
//! - an accepted single JWK, read independently, has `use` `sig` or none, `key_ops` with
//!   `verify` or none, an algorithm that fits its type and curve (the documented default when
//!   `alg` is absent), RSA between 2048 and 8192 bits, EC coordinates of the curve's size,
//!   a 32-byte Ed25519 key, an HMAC secret at least as long as its hash;
//! - a refusal allocates at most `K`·len + `C` bytes (Rust allocations; aws-lc's own are not
//!   counted).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::jwk_set;
use portcullis::jwt::{Algorithm, MAX_JWKS_KEYS, VerifyingKey};
use serde_json::Value;

use common::{DOCUMENT_C as C, DOCUMENT_K as K};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        jwks(body);
    } else {
        single(body);
    }
});

fn jwks(body: &[u8]) {
    let (remote, peak) = common::peak(|| jwk_set(body, true));
    if remote.is_err() {
        common::assert_refusal_bound("jwk_set (remote)", peak, body.len(), K, C);
    }
    let (local, peak) = common::peak(|| jwk_set(body, false));
    let (keys, skipped) = match local {
        Err(_) => {
            common::assert_refusal_bound("jwk_set (local)", peak, body.len(), K, C);
            assert!(
                remote.is_err(),
                "a JWKS refused locally was accepted remotely"
            );
            return;
        }
        Ok(local) => local,
    };
    assert_eq!(
        common::has_duplicates(body),
        Some(false),
        "repeated member accepted"
    );
    let document: Value = serde_json::from_slice(body).expect("JSON");
    let entries = document["keys"].as_array().expect("a keys array").len();
    assert!(!keys.is_empty() && keys.len() <= MAX_JWKS_KEYS);
    assert_eq!(keys.len() + skipped, entries.min(MAX_JWKS_KEYS));
    for (i, (kid, alg)) in keys.iter().enumerate() {
        if kid.is_some() {
            assert!(
                !keys[..i].iter().any(|(k, a)| k == kid && a == alg),
                "two keys with kid {kid:?} for {alg}"
            );
        }
    }
    let without_secrets: Vec<_> = keys
        .iter()
        .filter(|(_, alg)| !is_hmac(*alg))
        .cloned()
        .collect();
    match remote {
        Ok((remote_keys, _)) => assert_eq!(remote_keys, without_secrets, "remote vs local keys"),
        Err(_) => assert!(
            without_secrets.is_empty(),
            "remote refused a set with public keys"
        ),
    }
}

fn single(body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let (result, peak) = common::peak(|| VerifyingKey::from_jwk(text));
    let key = match result {
        Err(_) => {
            common::assert_refusal_bound("from_jwk", peak, body.len(), K, C);
            return;
        }
        Ok(key) => key,
    };
    assert_eq!(
        common::has_duplicates(body),
        Some(false),
        "repeated member accepted"
    );
    let jwk: Value = serde_json::from_slice(body).expect("JSON");
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| {
        common::canonical_b64url(field(name).unwrap_or_else(|| panic!("no {name}")))
            .unwrap_or_else(|| panic!("{name} is not canonical base64url"))
    };
    if let Some(u) = jwk.get("use").filter(|u| !u.is_null()) {
        assert_eq!(u.as_str(), Some("sig"), "a key for use {u} accepted");
    }
    if let Some(ops) = jwk.get("key_ops").filter(|o| !o.is_null()) {
        let ops = ops.as_array().expect("key_ops is an array");
        assert!(
            ops.iter().any(|op| op.as_str() == Some("verify")),
            "key_ops without verify"
        );
    }
    assert_eq!(key.kid(), field("kid"), "the key's kid is the JWK's");
    let declared = field("alg");
    let alg = key.algorithm();
    if let Some(declared) = declared {
        assert_eq!(alg.as_str(), declared);
    }
    match field("kty").expect("kty") {
        "RSA" => {
            assert!(declared.is_some() || alg == Algorithm::RS256);
            assert!(alg.as_str().starts_with("RS") || alg.as_str().starts_with("PS"));
            let n = bytes("n");
            let n: Vec<u8> = n.iter().copied().skip_while(|&b| b == 0).collect();
            let bits = (n.len() * 8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
            assert!(
                (2048..=8192).contains(&bits),
                "an RSA key of {bits} bits accepted"
            );
        }
        "EC" => {
            let (expected, len) = match field("crv") {
                Some("P-256") => (Algorithm::ES256, 32),
                Some("P-384") => (Algorithm::ES384, 48),
                other => panic!("EC curve {other:?} accepted"),
            };
            assert_eq!(alg, expected);
            assert_eq!((bytes("x").len(), bytes("y").len()), (len, len));
        }
        "OKP" => {
            assert_eq!(field("crv"), Some("Ed25519"));
            assert_eq!(alg, Algorithm::EdDSA);
            assert_eq!(bytes("x").len(), 32);
        }
        "oct" => {
            let min = match alg {
                Algorithm::HS256 => 32,
                Algorithm::HS384 => 48,
                Algorithm::HS512 => 64,
                other => panic!("an oct key for {other} accepted"),
            };
            assert!(declared.is_some() || alg == Algorithm::HS256);
            assert!(bytes("k").len() >= min, "a short HMAC secret accepted");
        }
        other => panic!("kty {other} accepted"),
    }
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}
