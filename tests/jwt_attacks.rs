//! The JWT attack suite: every token here must be refused, with the status RFC 6750 gives it.
//!
//! One Gate trusts four issuers: static RSA/ECDSA/EdDSA keys, a static HMAC secret (so HS256 is
//! an allowed algorithm and confusion attacks have something to aim at), a remote JWKS that also
//! publishes an `oct` key, and a remote JWKS with an RSA-1024 key. Tokens are signed by hand so
//! headers can say anything.
#![cfg(feature = "jwt")]

#[path = "jwt_fixtures/support.rs"]
mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use portcullis::jwt::{
    Algorithm, JwtAuthenticator, KeyErrorKind, KeySet, KeySource, TokenErrorKind, VerifyingKey,
};
use portcullis::{Gate, Scopes};
use serde_json::json;
use support::{IdpServer, TestKey, b64, bearer, call, claims, client, jwks, now};

const STATIC: &str = "https://static.example";
const HMAC: &str = "https://hmac.example";
const REMOTE: &str = "https://remote.example";
const WEAK: &str = "https://weak.example";
const SECRET: &[u8] = b"a static HS256 secret, 32+ bytes";
const OCT_SECRET: &[u8] = b"an oct key published in a JWKS!!";

struct Suite {
    gate: Gate,
    jwt: JwtAuthenticator,
    rsa: TestKey,
    ps: TestKey,
    ec: TestKey,
    ed: TestKey,
    hs: TestKey,
    remote: TestKey,
    remote_oct: TestKey,
    idp: IdpServer,
    weak_idp: IdpServer,
}

async fn suite() -> Suite {
    let rsa = TestKey::rsa(0, "rsa-1");
    let ps = TestKey::rsa(0, "rsa-ps").with_alg("PS256");
    let ec = TestKey::es256("ec-1");
    let ed = TestKey::ed25519("ed-1");
    let hs = TestKey::hs256("hs-1", SECRET);
    let remote = TestKey::rsa(1, "remote-rsa");
    let remote_oct = TestKey::hs256("remote-oct", OCT_SECRET);
    let p521 = json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"});
    let remote_jwks = json!({"keys": [remote.jwk(), remote_oct.jwk(), p521]}).to_string();
    let idp = IdpServer::start(remote_jwks).await;
    let weak_jwks: serde_json::Value =
        serde_json::from_str(include_str!("jwt_fixtures/rsa1024_jwks.json")).unwrap();
    let weak_good = TestKey::rsa(2, "weak-good");
    let mut weak_keys = weak_jwks["keys"].as_array().unwrap().clone();
    weak_keys.push(weak_good.jwk());
    let weak_idp = IdpServer::start(json!({ "keys": weak_keys }).to_string()).await;

    let static_keys = KeySet::from_jwks(&jwks(&[&rsa, &ps, &ec, &ed])).unwrap();
    let hmac_keys = KeySet::new().with(
        VerifyingKey::hmac(Algorithm::HS256, SECRET)
            .unwrap()
            .with_kid("hs-1"),
    );
    let jwt = JwtAuthenticator::builder()
        .issuer(STATIC, KeySource::Static(static_keys))
        .issuer(HMAC, KeySource::Static(hmac_keys))
        .issuer(REMOTE, KeySource::jwks_url(idp.jwks_url()))
        .issuer(WEAK, KeySource::jwks_url(weak_idp.jwks_url()))
        .audience("api")
        .require_typ("at+jwt")
        .max_lifetime(Some(Duration::from_secs(3600)))
        .http_client(client())
        .build()
        .unwrap();
    let gate = Gate::builder()
        .authenticator(jwt.clone())
        .route("/admin/**", Scopes::all_of(["admin"]))
        .build()
        .unwrap();
    Suite {
        gate,
        jwt,
        rsa,
        ps,
        ec,
        ed,
        hs,
        remote,
        remote_oct,
        idp,
        weak_idp,
    }
}

/// Asserts a 401 with `error="invalid_token"` and that the token is echoed nowhere.
async fn refused(suite: &Suite, token: &str, why: &str) {
    let answer = bearer(&suite.gate, token).await;
    assert_eq!(answer.status, 401, "{why}: {answer:?}");
    assert_eq!(
        answer.bearer_error().as_deref(),
        Some("invalid_token"),
        "{why}"
    );
    let probe = &token[..token.len().min(24)];
    assert!(
        !answer.challenge.contains(probe) && !answer.body.contains(probe),
        "{why}"
    );
}

async fn refused_as(suite: &Suite, token: &str, kind: TokenErrorKind, why: &str) {
    refused(suite, token, why).await;
    let err = suite.jwt.verify(token).await.expect_err(why);
    assert_eq!(err.kind(), kind, "{why}: {err}");
}

#[tokio::test]
async fn every_supported_algorithm_is_accepted() {
    let s = suite().await;
    for (key, iss) in [
        (&s.rsa, STATIC),
        (&s.ps, STATIC),
        (&s.ec, STATIC),
        (&s.ed, STATIC),
        (&s.hs, HMAC),
        (&s.remote, REMOTE),
    ] {
        let answer = bearer(&s.gate, &key.token(&claims(iss))).await;
        assert_eq!(answer.status, 200, "{}: {answer:?}", key.alg);
        assert_eq!(answer.principal.unwrap().subject(), "alice");
    }
}

#[tokio::test]
async fn alg_none_is_refused_in_every_form() {
    let s = suite().await;
    let valid_sig = |input: &str| b64(s.rsa.signature(input.as_bytes()));
    for iss in [STATIC, HMAC, REMOTE] {
        for alg in ["none", "None", "NONE", "nOnE"] {
            for header in [
                json!({"alg": alg}),
                json!({"alg": alg, "typ": "at+jwt"}),
                json!({"alg": alg, "typ": "at+jwt", "kid": "rsa-1"}),
            ] {
                let input = format!(
                    "{}.{}",
                    b64(header.to_string()),
                    b64(claims(iss).to_string())
                );
                for signature in [String::new(), b64("x"), valid_sig(&input)] {
                    let token = format!("{input}.{signature}");
                    refused(&s, &token, &format!("alg {alg} for {iss}")).await;
                }
            }
        }
    }
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    let s = suite().await;
    let pem = s.rsa.public_pem();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    for (iss, kid) in [
        (STATIC, Some("rsa-1")),
        (REMOTE, Some("remote-rsa")),
        (STATIC, None),
    ] {
        for secret in [
            pem.as_bytes(),
            &der[..],
            s.rsa.jwk()["n"].as_str().unwrap().as_bytes(),
        ] {
            let forger = TestKey::hs256(kid.unwrap_or("x"), secret);
            let mut header = json!({"alg": "HS256", "typ": "at+jwt"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let token = forger.sign_raw(&header.to_string(), &claims(iss).to_string());
            refused(
                &s,
                &token,
                &format!("HS256 with the public key, {iss} {kid:?}"),
            )
            .await;
        }
    }
    // A PS256 token for a key published for RS256: the key's algorithm decides.
    let wrong = TestKey::rsa(0, "rsa-1").with_alg("PS256");
    refused_as(
        &s,
        &wrong.token(&claims(STATIC)),
        TokenErrorKind::UnsupportedAlgorithm,
        "PS256 with an RS256 key",
    )
    .await;
}

#[tokio::test]
async fn embedded_jwk_is_never_used() {
    let s = suite().await;
    let attacker = TestKey::es256("attacker");
    for kid in ["attacker", "ec-1"] {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "jwk": attacker.jwk()});
        let token = attacker.sign_raw(&header.to_string(), &claims(STATIC).to_string());
        refused(&s, &token, &format!("embedded jwk, kid {kid}")).await;
    }
}

#[tokio::test]
async fn jku_x5u_and_x5c_are_never_fetched() {
    let s = suite().await;
    let attacker = TestKey::es256("evil");
    for iss in [STATIC, REMOTE] {
        let header = json!({
            "alg": "ES256", "typ": "at+jwt", "kid": "evil",
            "jku": s.idp.url("/evil/jwks"),
            "x5u": s.idp.url("/evil/cert.pem"),
            "x5c": ["MIIBfake"],
        });
        let token = attacker.sign_raw(&header.to_string(), &claims(iss).to_string());
        refused(&s, &token, "jku/x5u/x5c").await;
    }
    assert_eq!(s.idp.other_hits(), 0, "a header URL was fetched");
}

#[tokio::test]
async fn kid_path_traversal_and_injection_are_refused() {
    let s = suite().await;
    let long = "k".repeat(300);
    for kid in [
        "../../../../../../dev/null",
        "/etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "' OR '1'='1",
        "x\"; DROP TABLE keys; --",
        "$(reboot)",
        "rsa-1\u{0}",
        "rsa-1\n",
        "",
        long.as_str(),
    ] {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
        for iss in [STATIC, REMOTE] {
            let token = s
                .rsa
                .sign_raw(&header.to_string(), &claims(iss).to_string());
            refused(&s, &token, &format!("kid {kid:?}")).await;
        }
    }
}

#[tokio::test]
async fn ecdsa_all_zero_signature_is_refused() {
    let s = suite().await;
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims(STATIC).to_string()));
    refused_as(
        &s,
        &format!("{input}.{}", b64([0u8; 64])),
        TokenErrorKind::InvalidSignature,
        "r = s = 0",
    )
    .await;
    refused(&s, &format!("{input}.{}", b64([0u8; 1])), "one zero byte").await;
}

#[tokio::test]
async fn stripped_and_tampered_signatures_are_refused() {
    let s = suite().await;
    let token = s.rsa.token(&claims(STATIC));
    let (input, _) = token.rsplit_once('.').unwrap();
    refused(&s, &format!("{input}."), "empty signature").await;
    refused(&s, input, "two parts").await;
    let mut evil = claims(STATIC);
    evil["sub"] = json!("admin");
    let (header, _) = input.split_once('.').unwrap();
    let (_, signature) = token.rsplit_once('.').unwrap();
    let swapped = format!("{header}.{}.{signature}", b64(evil.to_string()));
    refused_as(
        &s,
        &swapped,
        TokenErrorKind::InvalidSignature,
        "claims swapped",
    )
    .await;
}

#[tokio::test]
async fn time_claims_are_enforced() {
    let s = suite().await;
    let with = |name: &str, value: i64| {
        let mut c = claims(STATIC);
        c[name] = json!(value);
        s.rsa.token(&c)
    };
    refused_as(
        &s,
        &with("exp", now() - 120),
        TokenErrorKind::Expired,
        "expired",
    )
    .await;
    refused_as(
        &s,
        &with("nbf", now() + 120),
        TokenErrorKind::NotYetValid,
        "nbf future",
    )
    .await;
    refused_as(
        &s,
        &with("iat", now() + 120),
        TokenErrorKind::IssuedInFuture,
        "iat future",
    )
    .await;
    refused_as(
        &s,
        &with("exp", now() + 7200),
        TokenErrorKind::LifetimeTooLong,
        "lifetime 2h over a 1h cap",
    )
    .await;
    let mut no_exp = claims(STATIC);
    no_exp.as_object_mut().unwrap().remove("exp");
    refused_as(
        &s,
        &s.rsa.token(&no_exp),
        TokenErrorKind::MissingClaim,
        "no exp",
    )
    .await;
    let mut string_exp = claims(STATIC);
    string_exp["exp"] = json!((now() + 60).to_string());
    refused_as(
        &s,
        &s.rsa.token(&string_exp),
        TokenErrorKind::Malformed,
        "exp as a string",
    )
    .await;
    // Within the 30 s leeway.
    assert_eq!(bearer(&s.gate, &with("exp", now() - 10)).await.status, 200);
    assert_eq!(bearer(&s.gate, &with("nbf", now() + 10)).await.status, 200);
}

#[tokio::test]
async fn audience_and_issuer_are_enforced() {
    let s = suite().await;
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(STATIC);
        f(&mut c);
        s.rsa.token(&c)
    };
    let cases: [(&str, String, TokenErrorKind); 8] = [
        (
            "wrong aud",
            edit(&|c| c["aud"] = json!("other-api")),
            TokenErrorKind::InvalidAudience,
        ),
        (
            "aud list without us",
            edit(&|c| c["aud"] = json!(["a", "b"])),
            TokenErrorKind::InvalidAudience,
        ),
        (
            "missing aud",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            TokenErrorKind::MissingClaim,
        ),
        (
            "aud of the wrong type",
            edit(&|c| c["aud"] = json!({"api": true})),
            TokenErrorKind::Malformed,
        ),
        (
            "wrong iss",
            edit(&|c| c["iss"] = json!("https://evil.example")),
            TokenErrorKind::InvalidIssuer,
        ),
        (
            "missing iss",
            edit(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
            TokenErrorKind::MissingClaim,
        ),
        (
            "iss as an array",
            edit(&|c| c["iss"] = json!([STATIC])),
            TokenErrorKind::Malformed,
        ),
        (
            "iss with a trailing slash",
            edit(&|c| c["iss"] = json!(format!("{STATIC}/"))),
            TokenErrorKind::InvalidIssuer,
        ),
    ];
    for (why, token, kind) in cases {
        refused_as(&s, &token, kind, why).await;
    }
    // An audience list that includes us is fine.
    assert_eq!(
        bearer(&s.gate, &edit(&|c| c["aud"] = json!(["x", "api"])))
            .await
            .status,
        200
    );
    // A token of one issuer signed with another issuer's key.
    refused_as(
        &s,
        &s.rsa.token(&claims(HMAC)),
        TokenErrorKind::UnknownKey,
        "cross-tenant",
    )
    .await;
}

#[tokio::test]
async fn typ_is_enforced() {
    let s = suite().await;
    for typ in [Some("JWT"), Some("id_token+jwt"), None] {
        let mut header = json!({"alg": "RS256", "kid": "rsa-1"});
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        let token = s
            .rsa
            .sign_raw(&header.to_string(), &claims(STATIC).to_string());
        refused_as(
            &s,
            &token,
            TokenErrorKind::InvalidType,
            &format!("typ {typ:?}"),
        )
        .await;
    }
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "application/AT+JWT"});
    let token = s
        .rsa
        .sign_raw(&header.to_string(), &claims(STATIC).to_string());
    assert_eq!(bearer(&s.gate, &token).await.status, 200);
}

#[tokio::test]
async fn duplicate_members_are_refused() {
    let s = suite().await;
    let (exp, iat) = (now() + 300, now());
    let header = r#"{"alg":"RS256","kid":"rsa-1","typ":"at+jwt"}"#;
    let base = format!(r#""iss":"{STATIC}","aud":"api","iat":{iat},"exp":{exp}"#);
    for (why, h, c) in [
        (
            "sub twice",
            header.to_owned(),
            format!(r#"{{{base},"sub":"alice","sub":"admin"}}"#),
        ),
        (
            "iss twice",
            header.to_owned(),
            format!(r#"{{"iss":"https://evil.example",{base},"sub":"a"}}"#),
        ),
        (
            "nested duplicate",
            header.to_owned(),
            format!(r#"{{{base},"sub":"a","realm_access":{{"roles":["u"],"roles":["admin"]}}}}"#),
        ),
        (
            "escaped duplicate",
            header.to_owned(),
            format!(r#"{{{base},"sub":"alice","s\u0075b":"admin"}}"#),
        ),
        (
            "alg twice",
            r#"{"alg":"none","alg":"RS256","kid":"rsa-1","typ":"at+jwt"}"#.to_owned(),
            format!(r#"{{{base},"sub":"a"}}"#),
        ),
        (
            "kid twice",
            r#"{"alg":"RS256","kid":"x","kid":"rsa-1","typ":"at+jwt"}"#.to_owned(),
            format!(r#"{{{base},"sub":"a"}}"#),
        ),
    ] {
        refused_as(&s, &s.rsa.sign_raw(&h, &c), TokenErrorKind::Malformed, why).await;
    }
}

#[tokio::test]
async fn nested_jwt_and_jwe_are_refused() {
    let s = suite().await;
    let inner = s.rsa.token(&claims(STATIC));
    let nested = s.rsa.sign_raw(
        &json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt", "cty": "JWT"}).to_string(),
        &json!(inner).to_string(),
    );
    refused_as(&s, &nested, TokenErrorKind::UnsupportedHeader, "cty JWT").await;
    let bare = s.rsa.sign_raw(
        &json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}).to_string(),
        &json!(inner).to_string(),
    );
    refused_as(&s, &bare, TokenErrorKind::Malformed, "a JWT as the payload").await;
    let jwe_header = b64(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"rsa-1"}"#);
    let jwe = format!(
        "{jwe_header}.{}.{}.{}.{}",
        b64("k"),
        b64("iv"),
        b64("ct"),
        b64("tag")
    );
    refused_as(&s, &jwe, TokenErrorKind::UnsupportedHeader, "five-part JWE").await;
    let three = s.rsa.sign_raw(
        r#"{"alg":"RS256","enc":"A256GCM","kid":"rsa-1","typ":"at+jwt"}"#,
        &claims(STATIC).to_string(),
    );
    refused_as(
        &s,
        &three,
        TokenErrorKind::UnsupportedHeader,
        "enc in a JWS header",
    )
    .await;
    for crit in [
        r#""crit":["exp"]"#,
        r#""b64":false,"crit":["b64"]"#,
        r#""zip":"DEF""#,
    ] {
        let h = format!(r#"{{"alg":"RS256","kid":"rsa-1","typ":"at+jwt",{crit}}}"#);
        let token = s.rsa.sign_raw(&h, &claims(STATIC).to_string());
        refused_as(&s, &token, TokenErrorKind::UnsupportedHeader, crit).await;
    }
}

#[tokio::test]
async fn a_one_mebibyte_token_is_refused_quickly() {
    let s = suite().await;
    let mut big = claims(STATIC);
    big["pad"] = json!("x".repeat(1 << 20));
    let token = s.rsa.token(&big);
    assert!(token.len() > 1 << 20);
    let started = Instant::now();
    refused_as(&s, &token, TokenErrorKind::TooLarge, "1 MiB").await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let dots = format!(
        "{}.{}.{}",
        "A".repeat(1 << 19),
        "A".repeat(1 << 19),
        "A".repeat(10)
    );
    refused_as(&s, &dots, TokenErrorKind::TooLarge, "1 MiB of base64").await;
}

#[tokio::test]
async fn base64_padding_and_alphabet_tricks_are_refused() {
    let s = suite().await;
    // Pick a token whose parts contain `-` or `_`, so the standard alphabet differs.
    let token = (0..64)
        .map(|i| {
            let mut c = claims(STATIC);
            c["n"] = json!(i);
            s.rsa.token(&c)
        })
        .find(|t| t.contains(['-', '_']))
        .expect("some token has - or _");
    assert_eq!(bearer(&s.gate, &token).await.status, 200);
    let parts: Vec<&str> = token.split('.').collect();
    let padded = |p: &str| format!("{p}{}", "=".repeat(((4 - p.len() % 4) % 4).max(1)));
    let cases = [
        (
            "padded header",
            format!("{}.{}.{}", padded(parts[0]), parts[1], parts[2]),
        ),
        (
            "padded payload",
            format!("{}.{}.{}", parts[0], padded(parts[1]), parts[2]),
        ),
        (
            "padded signature",
            format!("{}.{}.{}", parts[0], parts[1], padded(parts[2])),
        ),
        (
            "standard alphabet",
            token.replace('-', "+").replace('_', "/"),
        ),
        (
            "whitespace",
            format!("{}.{} .{}", parts[0], parts[1], parts[2]),
        ),
        (
            "non-ASCII",
            format!("{}.{}.{}é", parts[0], parts[1], parts[2]),
        ),
        (
            "percent-encoded",
            format!("{}%2E{}.{}", parts[0], parts[1], parts[2]),
        ),
    ];
    for (why, token) in cases {
        let answer = bearer(&s.gate, &token).await;
        assert!(answer.status == 401, "{why}: {answer:?}");
        assert!(s.jwt.verify(&token).await.is_err(), "{why}");
    }
    // The 256-byte RSA signature ends in two characters carrying one byte: the last one has
    // four unused bits, which must be zero.
    let sig = parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(index | 1).unwrap();
    assert_ne!(last, tweaked, "the unused bits were zero");
    let non_canonical = format!(
        "{}.{}.{}{tweaked}",
        parts[0],
        parts[1],
        &sig[..sig.len() - 1]
    );
    refused_as(
        &s,
        &non_canonical,
        TokenErrorKind::Malformed,
        "non-canonical trailing bits",
    )
    .await;
}

#[tokio::test]
async fn an_rsa_1024_key_is_refused() {
    let s = suite().await;
    let jwks = include_str!("jwt_fixtures/rsa1024_jwks.json");
    let token = include_str!("jwt_fixtures/rsa1024_token.txt").trim();
    // The fixture token really is signed by the fixture key.
    let key = &serde_json::from_str::<serde_json::Value>(jwks).unwrap()["keys"][0];
    let decode = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let (input, signature) = token.rsplit_once('.').unwrap();
    aws_lc_rs::signature::RsaPublicKeyComponents {
        n: decode(&key["n"]),
        e: decode(&key["e"]),
    }
    .verify(
        &aws_lc_rs::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        input.as_bytes(),
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap(),
    )
    .expect("the fixture is consistent");
    // Remote: the weak key is skipped, the good one in the same JWKS still loads.
    let lifetime_free = JwtAuthenticator::builder()
        .issuer(WEAK, KeySource::jwks_url(s.weak_idp.jwks_url()))
        .audience("api")
        .max_lifetime(None)
        .http_client(client())
        .build()
        .unwrap();
    assert_eq!(
        lifetime_free.verify(token).await.unwrap_err().kind(),
        TokenErrorKind::UnknownKey
    );
    refused_as(
        &s,
        token,
        TokenErrorKind::UnknownKey,
        "RSA-1024 from a remote JWKS",
    )
    .await;
    // Static: a configuration error.
    let err = KeySet::from_jwks(jwks).unwrap_err();
    assert!(err.to_string().contains("1024 bits"), "{err}");
    let one = serde_json::to_string(key).unwrap();
    assert_eq!(
        VerifyingKey::from_jwk(&one).unwrap_err().kind(),
        KeyErrorKind::TooWeak
    );
}

#[tokio::test]
async fn an_oct_key_in_a_remote_jwks_is_dropped() {
    let s = suite().await;
    // The remote JWKS also holds an unsupported P-521 key; the RSA key still works.
    assert_eq!(
        bearer(&s.gate, &s.remote.token(&claims(REMOTE)))
            .await
            .status,
        200
    );
    refused_as(
        &s,
        &s.remote_oct.token(&claims(REMOTE)),
        TokenErrorKind::UnknownKey,
        "HS256 with an oct key from a JWKS URL",
    )
    .await;
    // HS256 cannot even be allowed without a static secret.
    let err = JwtAuthenticator::builder()
        .issuer(REMOTE, KeySource::jwks_url(s.idp.jwks_url()))
        .audience("api")
        .algorithms([Algorithm::RS256, Algorithm::HS256])
        .http_client(client())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("HS256"), "{err}");
}

#[tokio::test]
async fn a_token_in_two_places_is_a_bad_request() {
    let s = suite().await;
    let token = s.rsa.token(&claims(STATIC));
    let authorization = format!("Bearer {token}");
    let answer = call(
        &s.gate,
        &format!("/orders?access_token={token}"),
        &[("authorization", &authorization)],
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.bearer_error().as_deref(), Some("invalid_request"));
    let answer = call(
        &s.gate,
        "/orders",
        &[
            ("authorization", &authorization),
            ("authorization", &authorization),
        ],
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(!answer.body.contains(&token[..24]) && !answer.challenge.contains(&token[..24]));
}

#[tokio::test]
async fn bearer_challenges_follow_rfc_6750() {
    let s = suite().await;
    let none = call(&s.gate, "/orders", &[]).await;
    assert_eq!(
        (none.status, none.challenge.as_str()),
        (401, r#"Bearer realm="api""#)
    );
    let bad = bearer(&s.gate, "eyJhbGciOiJub25lIn0.e30.").await;
    assert_eq!(bad.status, 401);
    assert!(
        bad.challenge
            .starts_with(r#"Bearer realm="api", error="invalid_token""#),
        "{bad:?}"
    );
    let no_scope = call(
        &s.gate,
        "/admin/users",
        &[(
            "authorization",
            &format!("Bearer {}", s.rsa.token(&claims(STATIC))),
        )],
    )
    .await;
    assert_eq!(no_scope.status, 403);
    assert_eq!(
        no_scope.bearer_error().as_deref(),
        Some("insufficient_scope")
    );
    assert!(
        no_scope.challenge.contains(r#"scope="admin""#),
        "{no_scope:?}"
    );
    let mut admin = claims(STATIC);
    admin["scope"] = json!("read admin");
    let ok = call(
        &s.gate,
        "/admin/users",
        &[("authorization", &format!("Bearer {}", s.rsa.token(&admin)))],
    )
    .await;
    assert_eq!(ok.status, 200);
    // An API key in the Bearer header is not this authenticator's: anonymous here.
    let key = bearer(
        &s.gate,
        "pc_3kTMd9Q2xLbR_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ0a1b2c",
    )
    .await;
    assert_eq!(
        (key.status, key.challenge.as_str()),
        (401, r#"Bearer realm="api""#)
    );
}
