//! An OpenID Connect discovery document, as the key fetcher reads it before it trusts a JWKS URL
//! (`portcullis::__fuzz::discovery`).
//!
//! Input: a byte choosing the configured issuer, then the document.
//!
//! Checked: an accepted document is one JSON object without repeated member names, its
//! `issuer` is exactly the configured one (OpenID Connect Discovery 1.0 §4.3) and its `jwks_uri`
//! is the URL returned, `https` (or `http` to a loopback host) without credentials; a refusal
//! allocates at most `K`·len + `C` bytes.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::discovery;

use common::{DOCUMENT_C as C, DOCUMENT_K as K};

const ISSUERS: [&str; 4] = [
    "https://idp.example",
    "https://idp.example/",
    "https://idp.example/realms/api",
    "http://localhost:8080",
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let issuer = ISSUERS[usize::from(which) % ISSUERS.len()];
    let (result, peak) = common::peak(|| discovery(body, issuer));
    let uri = match result {
        Err(_) => {
            common::assert_refusal_bound("discovery", peak, body.len(), K, C);
            return;
        }
        Ok(uri) => uri,
    };
    assert_eq!(
        common::has_duplicates(body),
        Some(false),
        "repeated member accepted"
    );
    let document: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    assert_eq!(
        document["issuer"].as_str(),
        Some(issuer),
        "another issuer's document accepted"
    );
    assert_eq!(document["jwks_uri"].as_str(), Some(uri.as_str()));
    let parsed: http::Uri = uri.parse().expect("the jwks_uri is a URI");
    let authority = parsed.authority().expect("the jwks_uri has a host");
    assert!(
        !authority.as_str().contains('@'),
        "credentials accepted in {uri}"
    );
    match parsed.scheme_str() {
        Some("https") => {}
        Some("http") => {
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            assert!(loopback, "plain http to {host} accepted");
        }
        other => panic!("scheme {other:?} accepted"),
    }
});
