//! An introspection endpoint's `200` answer (RFC 7662 §2.2), as the introspection authenticator
//! reads it (`portcullis::__fuzz::introspection_answer`): the endpoint is on the network, so
//! its answer is attacker-written whenever the endpoint or the path to it is.
//!
//! Input: a byte choosing one of two authenticators (audience `api` with issuer
//! `https://idp.example` pinned and groups from `groups`; audience `api`, no issuer, groups from
//! `realm_access.roles` and `groups`), then the answer.
//!
//! Checked: an answer that is not one JSON object, or has a repeated member name at any depth,
//! is an outage (`Unavailable`), never a principal or a 401; an accepted answer has `active:
//! true`, a `token_type` of `Bearer` (any case) or none, an `aud` naming `api`, the pinned
//! `iss`, an `exp` not past, and its subject from `sub`, `username` or `client_id`;
//! `Inactive` only for `active: false`; a refusal allocates at most `K`·len + `C` bytes.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response};
use libfuzzer_sys::fuzz_target;
use portcullis::__fuzz::introspection_answer;
use portcullis::jwt::{
    ClaimMapping, ClientAuth, FetchError, FetchLimits, HttpClient, IntrospectionAuthenticator,
    TokenErrorKind,
};
use portcullis::{BoxFuture, Scheme, SecretString};
use serde_json::Value;

use common::{DOCUMENT_C as C, DOCUMENT_K as K};

/// Never called: the target hands the answer to the reader directly.
#[derive(Debug)]
struct NoNetwork;

impl HttpClient for NoNetwork {
    fn send(
        &self,
        _: Request<Bytes>,
        _: FetchLimits,
    ) -> BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
        unreachable!("the fuzz target never sends a request")
    }
}

fn authenticators() -> &'static [IntrospectionAuthenticator; 2] {
    static AUTHS: OnceLock<[IntrospectionAuthenticator; 2]> = OnceLock::new();
    AUTHS.get_or_init(|| {
        let build = |pinned: bool, mapping: ClaimMapping| {
            let mut builder = IntrospectionAuthenticator::builder(
                "https://idp.example/introspect",
                ClientAuth::basic("rs", SecretString::new("secret")),
            )
            .audiences(["api"])
            .claims(mapping)
            .http_client(std::sync::Arc::new(NoNetwork));
            if pinned {
                builder = builder.issuer("https://idp.example");
            }
            builder.build().expect("authenticator")
        };
        [
            build(true, ClaimMapping::new()),
            build(
                false,
                ClaimMapping::new().groups_claims(["realm_access.roles", "groups"]),
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let pinned = which & 1 == 0;
    let authenticator = &authenticators()[usize::from(!pinned)];
    let (result, peak) = common::peak(|| introspection_answer(authenticator, body));

    let dups = common::has_duplicates(body);
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let object = value.as_ref().and_then(Value::as_object);
    if dups != Some(false) || object.is_none() {
        match &result {
            Err((TokenErrorKind::Unavailable, _)) => {}
            other => panic!("a broken answer was not an outage: {other:?}"),
        }
    }
    let (principal, exp) = match result {
        Err((kind, _)) => {
            common::assert_refusal_bound("introspection_answer", peak, body.len(), K, C);
            if kind == TokenErrorKind::Inactive {
                assert_eq!(
                    object.and_then(|o| o.get("active")),
                    Some(&Value::Bool(false))
                );
            }
            return;
        }
        Ok(answer) => answer,
    };
    let answer = object.expect("accepted answers are objects");
    assert_eq!(
        answer.get("active"),
        Some(&Value::Bool(true)),
        "active is not true"
    );
    match answer.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => assert!(t.eq_ignore_ascii_case("bearer"), "token_type {t}"),
        Some(other) => panic!("token_type {other} accepted"),
    }
    let aud_ok = match answer.get("aud") {
        Some(Value::String(a)) => a == "api",
        Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some("api")),
        _ => false,
    };
    assert!(aud_ok, "an answer for another audience accepted");
    if pinned {
        assert_eq!(
            answer.get("iss").and_then(Value::as_str),
            Some("https://idp.example")
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert_eq!(exp, answer.get("exp").and_then(Value::as_f64));
    if let Some(exp) = exp {
        assert!(exp + 30.0 > now - 1.0, "an expired answer accepted");
    }
    let text = |name: &str| answer.get(name).and_then(Value::as_str);
    let subject = text("sub").or(text("username")).or(text("client_id"));
    assert_eq!(Some(principal.subject()), subject);
    assert_eq!(principal.scheme(), Scheme::INTROSPECTION);
});
