//! The compact JWS parser every bearer token meets before any key or signature
//! (`portcullis::__fuzz::jws_compact`), on raw tokens and on tokens assembled from header and
//! payload JSON texts (so the JOSE dictionary reaches the header rules).
//!
//! Input: a mode byte, then either the token (mode even) or `header 0xFF payload 0xFF
//! signature` (mode odd), base64url-encoded here, with the mode's upper bits choosing a tweak
//! (padding, the standard alphabet, trailing bits, a space) and small or default limits.
//!
//! Checked, beyond "no panic":
//! - an accepted token has exactly three parts, each the canonical base64url of its bytes
//!   (independent decoder: `common::canonical_b64url`); the payload and signature returned are
//!   those bytes; the header is one JSON object with no repeated member name at any depth, a
//!   string `alg` equal to the one returned, no `crit`, `b64`, `zip` or `enc`, no `cty: JWT`;
//!   the `kid` is within the cap, not empty, without control characters; the size cap holds;
//! - every non-canonical spelling of an accepted token (a `=` after any part, a nonzero unused
//!   bit in a last character) is refused;
//! - a refusal allocates at most `K`·len + `C` bytes.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::jws_compact;

/// The documented bound on a refused token's allocations (docs/security.md).
const K: usize = 8;
const C: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        }
    } else {
        let mut parts = rest.splitn(3, |&b| b == 0xFF);
        let header = parts.next().unwrap_or_default();
        let payload = parts.next().unwrap_or_default();
        let signature = parts.next().unwrap_or(&b"sig"[..]);
        let mut segments = [
            common::b64url(header),
            common::b64url(payload),
            common::b64url(signature),
        ];
        let which = usize::from(mode >> 6) % 3;
        match (mode >> 1) & 7 {
            1 => segments[which].push('='),
            2 => segments[which] = segments[which].replace('-', "+").replace('_', "/"),
            3 => {
                flip_unused_bits(&mut segments[which]);
            }
            4 => segments[which].insert(0, ' '),
            _ => {}
        }
        segments.join(".")
    };
    let (max_size, max_kid) = if mode & 0x10 != 0 {
        (64, 4)
    } else {
        (8192, 256)
    };

    let (result, peak) = common::peak(|| jws_compact(&token, max_size, max_kid));
    let parts = match result {
        Err(_) => {
            common::assert_refusal_bound("jws_compact", peak, token.len(), K, C);
            return;
        }
        Ok(parts) => parts,
    };

    assert!(token.len() <= max_size);
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "accepted {token:?}");
    let decoded: Vec<Vec<u8>> = segments
        .iter()
        .map(|s| {
            common::canonical_b64url(s).unwrap_or_else(|| panic!("non-canonical {s:?} accepted"))
        })
        .collect();
    assert_eq!(parts.payload, decoded[1]);
    assert_eq!(parts.signature, decoded[2]);
    assert!(!parts.signature.is_empty());
    assert_eq!(
        parts.signing_input_len,
        segments[0].len() + 1 + segments[1].len()
    );

    assert_eq!(
        common::has_duplicates(&decoded[0]),
        Some(false),
        "a header with a repeated member name was accepted: {:?}",
        String::from_utf8_lossy(&decoded[0])
    );
    let header: serde_json::Value = serde_json::from_slice(&decoded[0]).expect("header is JSON");
    let header = header.as_object().expect("header is an object");
    assert_eq!(
        header.get("alg").and_then(|a| a.as_str()),
        Some(parts.alg.as_str())
    );
    for refused in ["crit", "b64", "zip", "enc"] {
        assert!(!header.contains_key(refused), "{refused} accepted");
    }
    // `cty` is a string or `null` (absent); a nested JWT is refused.
    match header.get("cty") {
        None | Some(serde_json::Value::Null) => {}
        Some(cty) => assert!(
            !cty.as_str()
                .expect("cty is a string")
                .eq_ignore_ascii_case("jwt")
        ),
    }
    assert_eq!(
        header.get("kid").and_then(|k| k.as_str()),
        parts.kid.as_deref()
    );
    assert_eq!(
        header.get("typ").and_then(|t| t.as_str()),
        parts.typ.as_deref()
    );
    if let Some(kid) = &parts.kid {
        assert!(kid.len() <= max_kid && !kid.is_empty() && !kid.chars().any(char::is_control));
    }

    // Every other spelling of the same bytes is refused.
    for i in 0..3 {
        let mut padded: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        padded[i].push('=');
        assert!(
            jws_compact(&padded.join("."), max_size, max_kid).is_err(),
            "padding accepted"
        );
        let mut flipped: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        if flip_unused_bits(&mut flipped[i]) {
            let spelled = flipped.join(".");
            assert!(
                jws_compact(&spelled, max_size, max_kid).is_err(),
                "trailing bits accepted: {spelled}"
            );
        }
    }
});

/// Sets an unused bit in the last character of `segment`, if it has unused bits; returns
/// whether it did.
fn flip_unused_bits(segment: &mut String) -> bool {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // The unused bits (4 or 2) are the low bits of the last character's value.
    if !matches!(segment.len() % 4, 2 | 3) {
        return false;
    }
    let Some(last) = segment.pop() else {
        return false;
    };
    let Some(v) = ALPHABET.iter().position(|&c| c as char == last) else {
        segment.push(last);
        return false;
    };
    segment.push(ALPHABET[v | 1] as char);
    v & 1 == 0
}
