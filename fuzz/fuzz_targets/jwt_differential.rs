//! Differential oracle: portcullis's `JwtAuthenticator` (static keys, public API) against
//! `jsonwebtoken` with the same keys and equivalent validation, on tokens whose header and
//! payload the fuzzer writes and this target signs (HS256, ES256, RS256), then may tamper with.
//!
//! Equivalent validation: issuer `https://issuer.example`, audience `api`, required `exp`, `iss`
//! and `aud`, 30 s leeway on `exp` and `nbf`, algorithms HS256, ES256 and RS256, and the key
//! chosen as portcullis chooses it (the one for the header's `alg`; a `kid` must name that key).
//! Half the inputs also require `typ: at+jwt` from portcullis.
//!
//! Every token portcullis accepts, `jsonwebtoken` accepts too, unless a predicate of the written
//! list of deliberately laxer rules (`LAXER`) holds; every token only `jsonwebtoken` accepts
//! meets a predicate of the written list of stricter rules (`STRICTER`). Both lists are in
//! docs/security.md ("Differential oracle"). Any other difference panics.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use libfuzzer_sys::fuzz_target;
use portcullis::jwt::{Algorithm, JwtAuthenticator, KeySet, KeySource, VerifyingKey};
use serde_json::{Map, Value};

const ISSUER: &str = "https://issuer.example";
const HS_SECRET: &[u8] = b"portcullis fuzz differential HS256 secret, 48 bytes";

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Signer {
    Hs,
    Es,
    Rs,
}

#[derive(Arbitrary, Debug)]
struct Input {
    signer: Signer,
    require_typ: bool,
    header: HeaderSpec,
    /// Start from claims that pass every check (iss, aud, sub, iat now, exp in 5 min).
    valid_base: bool,
    payload: PayloadSpec,
    tamper: Tamper,
}

#[derive(Arbitrary, Debug)]
enum HeaderSpec {
    Built {
        alg: AlgSpec,
        kid: KidSpec,
        typ: Option<Json>,
        extra: Vec<(Name, Json)>,
    },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum AlgSpec {
    Signer,
    HS256,
    ES256,
    RS256,
    Other(Json),
}

#[derive(Arbitrary, Debug)]
enum KidSpec {
    None,
    Signer,
    Other(Json),
}

#[derive(Arbitrary, Debug)]
enum PayloadSpec {
    Members(Vec<(Name, Json)>),
    Raw(String),
}

/// A member name: the ones either library reads, or any.
#[derive(Arbitrary, Debug)]
enum Name {
    Iss,
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    ClientId,
    Username,
    Gty,
    Scope,
    Scp,
    Groups,
    Active,
    TokenType,
    Typ,
    Kid,
    Alg,
    Crit,
    B64,
    Cty,
    Jwk,
    X5c,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Issuer,
    Audience,
    /// Now plus this many seconds, as an integer, a float, or a string.
    Now(i32),
    NowFloat(i32, u16),
    NowString(i32),
    Array(Vec<Json>),
    Object(Vec<(Name, Json)>),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Tamper {
    None,
    /// Flip a bit of the signature.
    FlipSignature(u16, u8),
    /// Sign with another key than the header names.
    SignWith(Signer),
    /// Replace the signature part with this text.
    SignaturePart(String),
    /// Append `.text`.
    Append(String),
    /// Drop the last signature byte.
    Truncate,
}

struct Keys {
    es: EcdsaKeyPair,
    rs: RsaKeyPair,
    portcullis: [JwtAuthenticator; 2],
    jwt_es: jsonwebtoken::DecodingKey,
    jwt_rs: jsonwebtoken::DecodingKey,
    jwt_hs: jsonwebtoken::DecodingKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let es = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        let rs = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
        let point = es.public_key().as_ref().to_vec();
        let (x, y) = (common::b64url(&point[1..33]), common::b64url(&point[33..]));
        let n = common::b64url(rs.public_key().modulus().big_endian_without_leading_zero());
        let e = common::b64url(rs.public_key().exponent().big_endian_without_leading_zero());
        let set = KeySet::new()
            .with(
                VerifyingKey::hmac(Algorithm::HS256, HS_SECRET)
                    .expect("hs")
                    .with_kid("hs"),
            )
            .with(
                VerifyingKey::from_der(Algorithm::ES256, &point)
                    .expect("es")
                    .with_kid("es"),
            )
            .with(
                VerifyingKey::from_jwk(&format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}"}}"#))
                    .expect("rs")
                    .with_kid("rs"),
            );
        let build = |typ: bool| {
            let mut builder = JwtAuthenticator::builder()
                .issuer(ISSUER, KeySource::keys(set.clone()))
                .audience("api")
                .algorithms([Algorithm::HS256, Algorithm::ES256, Algorithm::RS256]);
            if typ {
                builder = builder.require_typ("at+jwt");
            }
            builder.build().expect("authenticator")
        };
        Keys {
            jwt_es: jsonwebtoken::DecodingKey::from_ec_components(&x, &y).expect("es"),
            jwt_rs: jsonwebtoken::DecodingKey::from_rsa_components(&n, &e).expect("rs"),
            jwt_hs: jsonwebtoken::DecodingKey::from_secret(HS_SECRET).expect("hs"),
            es,
            rs,
            portcullis: [build(false), build(true)],
        }
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fuzz_target!(|input: Input| {
    let keys = keys();
    let now = now();

    let header = match &input.header {
        HeaderSpec::Raw(raw) => raw.clone(),
        HeaderSpec::Built {
            alg,
            kid,
            typ,
            extra,
        } => {
            let mut members = Vec::new();
            let alg = match alg {
                AlgSpec::Signer => format!("\"{}\"", alg_name(input.signer)),
                AlgSpec::HS256 => "\"HS256\"".to_owned(),
                AlgSpec::ES256 => "\"ES256\"".to_owned(),
                AlgSpec::RS256 => "\"RS256\"".to_owned(),
                AlgSpec::Other(json) => json_text(json, now),
            };
            members.push(format!("\"alg\":{alg}"));
            match kid {
                KidSpec::None => {}
                KidSpec::Signer => members.push(format!("\"kid\":\"{}\"", kid_of(input.signer))),
                KidSpec::Other(json) => members.push(format!("\"kid\":{}", json_text(json, now))),
            }
            if let Some(typ) = typ {
                members.push(format!("\"typ\":{}", json_text(typ, now)));
            }
            for (name, value) in extra {
                members.push(format!("{}:{}", name_text(name), json_text(value, now)));
            }
            format!("{{{}}}", members.join(","))
        }
    };
    let payload = match &input.payload {
        PayloadSpec::Raw(raw) => raw.clone(),
        PayloadSpec::Members(extra) => {
            let mut members = Vec::new();
            if input.valid_base {
                members.push(format!(
                    "\"iss\":\"{ISSUER}\",\"aud\":\"api\",\"sub\":\"alice\""
                ));
                members.push(format!("\"iat\":{now},\"exp\":{}", now + 300));
            }
            for (name, value) in extra {
                members.push(format!("{}:{}", name_text(name), json_text(value, now)));
            }
            format!("{{{}}}", members.join(","))
        }
    };

    let signing_input = format!(
        "{}.{}",
        common::b64url(header.as_bytes()),
        common::b64url(payload.as_bytes())
    );
    let signer = match input.tamper {
        Tamper::SignWith(other) => other,
        _ => input.signer,
    };
    let mut signature = sign(keys, signer, signing_input.as_bytes());
    let mut tail = String::new();
    match &input.tamper {
        Tamper::FlipSignature(at, bit) => {
            let i = usize::from(*at) % signature.len();
            signature[i] ^= 1 << (bit % 8);
        }
        Tamper::Truncate => {
            signature.pop();
        }
        Tamper::Append(text) => tail = format!(".{text}"),
        _ => {}
    }
    let signature = match &input.tamper {
        Tamper::SignaturePart(text) => text.clone(),
        _ => common::b64url(&signature),
    };
    let token = format!("{signing_input}.{signature}{tail}");

    let portcullis = &keys.portcullis[usize::from(input.require_typ)];
    let ours = now_or_never(portcullis.verify(&token));
    let theirs = jsonwebtoken_verify(keys, &token);

    match (&ours, &theirs) {
        (Ok(principal), Ok(claims)) => {
            if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
                assert_eq!(principal.subject(), sub);
            }
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(why)) => {
            let view = View::new(&token, now, input.require_typ);
            assert!(
                LAXER.iter().any(|(_, rule)| rule(&view)),
                "only portcullis accepts {token}\nheader {header}\npayload {payload}\n\
                 jsonwebtoken: {why}"
            );
        }
        (Err(why), Ok(_)) => {
            let view = View::new(&token, now, input.require_typ);
            assert!(
                STRICTER.iter().any(|(_, rule)| rule(&view)),
                "only jsonwebtoken accepts {token}\nheader {header}\npayload {payload}\n\
                 portcullis: {why}"
            );
        }
    }
});

/// jsonwebtoken, configured as portcullis is.
fn jsonwebtoken_verify(keys: &Keys, token: &str) -> Result<Map<String, Value>, String> {
    use jsonwebtoken::Algorithm as A;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let (key, kid) = match header.alg {
        A::HS256 => (&keys.jwt_hs, "hs"),
        A::ES256 => (&keys.jwt_es, "es"),
        A::RS256 => (&keys.jwt_rs, "rs"),
        other => return Err(format!("no key for {other:?}")),
    };
    if header.kid.as_deref().is_some_and(|k| k != kid) {
        return Err("the kid names another key".into());
    }
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.leeway = 30;
    validation.validate_nbf = true;
    validation.set_audience(&["api"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .map_err(|e| e.to_string())
        .map(|data| match data.claims {
            Value::Object(map) => map,
            _ => Map::new(),
        })
}

/// What the predicates look at: the token's parts read independently.
struct View {
    len: usize,
    signature_len: usize,
    now: f64,
    require_typ: bool,
    header_raw: Vec<u8>,
    payload_raw: Vec<u8>,
    header: Option<Value>,
    payload: Option<Value>,
}

impl View {
    fn new(token: &str, now: i64, require_typ: bool) -> Self {
        let parts: Vec<&str> = token.split('.').collect();
        let part = |i: usize| {
            parts
                .get(i)
                .and_then(|p| common::canonical_b64url(p))
                .unwrap_or_default()
        };
        let (header_raw, payload_raw) = (part(0), part(1));
        Self {
            len: token.len(),
            signature_len: part(2).len(),
            now: now as f64,
            require_typ,
            header: serde_json::from_slice(&header_raw).ok(),
            payload: serde_json::from_slice(&payload_raw).ok(),
            header_raw,
            payload_raw,
        }
    }

    fn header(&self, name: &str) -> Option<&Value> {
        self.header
            .as_ref()?
            .as_object()?
            .get(name)
            .filter(|v| !v.is_null())
    }

    /// Whether the header has this member at all, `null` included.
    fn header_present(&self, name: &str) -> bool {
        self.header
            .as_ref()
            .and_then(Value::as_object)
            .is_some_and(|h| h.contains_key(name))
    }

    fn claim(&self, name: &str) -> Option<&Value> {
        self.payload
            .as_ref()?
            .as_object()?
            .get(name)
            .filter(|v| !v.is_null())
    }

    fn number(&self, name: &str) -> Option<f64> {
        self.claim(name).and_then(Value::as_f64)
    }
}

type Rule = fn(&View) -> bool;

/// Where portcullis refuses what jsonwebtoken accepts, on purpose (docs/security.md).
const STRICTER: &[(&str, Rule)] = &[
    (
        "size caps: a token over 8 KiB, a signature over 1024 bytes",
        |v| v.len > 8192 || v.signature_len > 1024,
    ),
    (
        "a repeated member name at any depth, header or payload",
        |v| {
            common::has_duplicates(&v.header_raw) == Some(true)
                || common::has_duplicates(&v.payload_raw) == Some(true)
        },
    ),
    (
        "`crit`, `b64`, `zip` or `enc` in the header (any value, `null` included), or `cty: JWT`",
        |v| {
            ["crit", "b64", "zip", "enc"]
                .iter()
                .any(|n| v.header_present(n))
                || v.header("cty")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
        },
    ),
    (
        "a `kid` over 256 bytes, empty, or with a control character",
        |v| {
            v.header("kid")
                .and_then(Value::as_str)
                .is_some_and(|k| k.len() > 256 || k.is_empty() || k.chars().any(char::is_control))
        },
    ),
    ("`typ` required (`at+jwt`) and missing or different", |v| {
        v.require_typ
            && !v.header("typ").and_then(Value::as_str).is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                t.strip_prefix("application/").unwrap_or(&t) == "at+jwt"
            })
    }),
    (
        "the payload is not a JSON object (jsonwebtoken also reads an array by position)",
        |v| !v.payload.as_ref().is_some_and(Value::is_object),
    ),
    (
        "`iss` that is not a string (jsonwebtoken takes an array naming the issuer)",
        |v| v.claim("iss").is_some_and(|i| !i.is_string()),
    ),
    (
        "a claim portcullis maps, of the wrong type (a `groups` claim `null` included)",
        |v| {
            let not_string = |n: &str| v.claim(n).is_some_and(|x| !x.is_string());
            let not_list = |n: &str| {
                v.claim(n).is_some_and(|x| match x {
                    Value::String(_) => false,
                    Value::Array(items) => {
                        items.len() > 256 || items.iter().any(|i| !i.is_string())
                    }
                    _ => true,
                })
            };
            [
                "sub",
                "jti",
                "client_id",
                "username",
                "gty",
                "scope",
                "token_type",
            ]
            .iter()
            .any(|n| not_string(n))
                || ["aud", "scp", "groups"].iter().any(|n| not_list(n))
                || v.payload
                    .as_ref()
                    .and_then(Value::as_object)
                    .and_then(|p| p.get("groups"))
                    .is_some_and(Value::is_null)
                || ["exp", "nbf", "iat"]
                    .iter()
                    .any(|n| v.claim(n).is_some_and(|x| !x.is_number()))
        },
    ),
    (
        "no subject: neither `sub` nor `client_id`, or empty, or with a control character",
        |v| {
            let subject = v
                .claim("sub")
                .or(v.claim("client_id"))
                .and_then(Value::as_str);
            !subject.is_some_and(|s| !s.is_empty() && !s.chars().any(char::is_control))
        },
    ),
    ("`iat` in the future (beyond the leeway)", |v| {
        v.number("iat").is_some_and(|iat| iat > v.now + 30.0)
    }),
    ("a lifetime over `max_lifetime` (24 h)", |v| {
        v.number("exp")
            .is_some_and(|exp| exp - v.number("iat").unwrap_or(v.now) > 86_400.0 + 30.0)
    }),
    ("a time claim out of range (|t| ≥ 10^15 s)", |v| {
        ["exp", "iat"]
            .iter()
            .any(|n| v.number(n).is_some_and(|t| t.abs() >= 1e15))
    }),
    (
        "more than 256 scopes or groups, or an empty name in a list",
        |v| {
            let mut scopes: Vec<&str> = Vec::new();
            if let Some(s) = v.claim("scope").and_then(Value::as_str) {
                scopes.extend(s.split(' ').filter(|s| !s.is_empty()));
            }
            let mut empty = false;
            let mut groups: Vec<&str> = Vec::new();
            for (name, out) in [("scp", &mut scopes), ("groups", &mut groups)] {
                match v.claim(name) {
                    Some(Value::String(s)) if name == "scp" => {
                        out.extend(s.split(' ').filter(|s| !s.is_empty()))
                    }
                    Some(Value::String(s)) => out.push(s),
                    Some(Value::Array(items)) => {
                        for s in items.iter().filter_map(Value::as_str) {
                            empty |= s.is_empty();
                            out.push(s);
                        }
                    }
                    _ => {}
                }
            }
            scopes.sort_unstable();
            scopes.dedup();
            groups.sort_unstable();
            groups.dedup();
            empty || scopes.len() > 256 || groups.len() > 256
        },
    ),
    (
        "within 2 s of a time boundary (fractional vs whole seconds, rounding)",
        near_boundary,
    ),
];

/// Where portcullis accepts what jsonwebtoken refuses, on purpose (docs/security.md).
const LAXER: &[(&str, Rule)] = &[
    (
        "header members portcullis never reads (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, `x5t#S256`, \
      `url`, `nonce`), whatever their value: jsonwebtoken types them",
        |v| {
            [
                "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "url", "nonce",
            ]
            .iter()
            .any(|n| v.header(n).is_some())
        },
    ),
    (
        "an `nbf` that is not a u64 (negative, or a float of 2^64 or more) or is `null`: \
      portcullis compares any JSON number, a negative `nbf` is simply in the past, and `null` \
      is absent, as for every claim",
        |v| {
            v.number("nbf")
                .is_some_and(|nbf| nbf < 0.0 || nbf >= u64::MAX as f64)
                || v.claim("nbf")
                    .is_some_and(|n| n.is_i64() && n.as_i64() < Some(0))
                || v.payload
                    .as_ref()
                    .and_then(Value::as_object)
                    .and_then(|p| p.get("nbf"))
                    .is_some_and(Value::is_null)
        },
    ),
    (
        "within 2 s of a time boundary (fractional vs whole seconds, rounding)",
        near_boundary,
    ),
];

fn near_boundary(v: &View) -> bool {
    let near = |t: f64, edge: f64| (t - edge).abs() <= 2.0;
    v.number("exp").is_some_and(|exp| {
        near(exp, v.now - 30.0) || near(exp - v.number("iat").unwrap_or(v.now), 86_430.0)
    }) || v.number("nbf").is_some_and(|t| near(t, v.now + 30.0))
        || v.number("iat").is_some_and(|t| near(t, v.now + 30.0))
}

fn sign(keys: &Keys, signer: Signer, message: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match signer {
        Signer::Hs => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, HS_SECRET);
            aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
        }
        Signer::Es => keys
            .es
            .sign(&rng, message)
            .expect("ECDSA signs")
            .as_ref()
            .to_vec(),
        Signer::Rs => {
            let mut out = vec![0; keys.rs.public_modulus_len()];
            keys.rs
                .sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                .expect("RSA signs");
            out
        }
    }
}

fn alg_name(signer: Signer) -> &'static str {
    match signer {
        Signer::Hs => "HS256",
        Signer::Es => "ES256",
        Signer::Rs => "RS256",
    }
}

fn kid_of(signer: Signer) -> &'static str {
    match signer {
        Signer::Hs => "hs",
        Signer::Es => "es",
        Signer::Rs => "rs",
    }
}

fn name_text(name: &Name) -> String {
    let plain = match name {
        Name::Iss => "iss",
        Name::Sub => "sub",
        Name::Aud => "aud",
        Name::Exp => "exp",
        Name::Nbf => "nbf",
        Name::Iat => "iat",
        Name::Jti => "jti",
        Name::ClientId => "client_id",
        Name::Username => "username",
        Name::Gty => "gty",
        Name::Scope => "scope",
        Name::Scp => "scp",
        Name::Groups => "groups",
        Name::Active => "active",
        Name::TokenType => "token_type",
        Name::Typ => "typ",
        Name::Kid => "kid",
        Name::Alg => "alg",
        Name::Crit => "crit",
        Name::B64 => "b64",
        Name::Cty => "cty",
        Name::Jwk => "jwk",
        Name::X5c => "x5c",
        Name::Other(s) => return serde_json::to_string(s).expect("a string serializes"),
    };
    format!("\"{plain}\"")
}

fn json_text(json: &Json, now: i64) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Int(i) => i.to_string(),
        Json::Float(f) => serde_json::Number::from_f64(*f).map_or("0".into(), |n| n.to_string()),
        Json::Str(s) => serde_json::to_string(s).expect("a string serializes"),
        Json::Issuer => format!("\"{ISSUER}\""),
        Json::Audience => "\"api\"".into(),
        Json::Now(d) => (now + i64::from(*d)).to_string(),
        Json::NowFloat(d, frac) => format!("{}.{frac}", now + i64::from(*d)),
        Json::NowString(d) => format!("\"{}\"", now + i64::from(*d)),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(|j| json_text(j, now)).collect();
            format!("[{}]", items.join(","))
        }
        Json::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|(n, j)| format!("{}:{}", name_text(n), json_text(j, now)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Json::Raw(raw) => raw.clone(),
    }
}

/// Static keys never wait: the verification future is ready at its first poll.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a static-key verification waited"),
    }
}
