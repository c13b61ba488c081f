//! Certificate-bound access tokens (RFC 8705, issue #23) through the Gate: the thumbprint check,
//! the modes, the refusals (status, challenge, reason), the certificate from the connection
//! (`ClientCertificate`, through the tower layer too) and from a `Client-Cert` proxy, the
//! `SenderConstrained` policy, introspection answers and the TOML keys.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::json;

use portcullis::client_ip::{IpSet, TrustedProxies};
use portcullis::config::Config;
use portcullis::extract::ClientCertificate;
use portcullis::jwt::mtls::{CertificateBindingMode, thumbprint};
use portcullis::jwt::{JwtAuthenticator, TokenErrorKind};
use portcullis::policy::{Confirmation, SenderConstrained};
use portcullis::reject::Reason;
use portcullis::testing::TestIssuer;
use portcullis::{Authenticated, Gate, Principal, Rejection, RequestView};

const ISSUER: &str = "https://issuer.test";
const CERT: &[u8] = b"0\x82\x01\x0a the client certificate's DER (stands in; only hashed)";
const OTHER: &[u8] = b"0\x82\x01\x0a another client certificate";

fn issuer() -> &'static TestIssuer {
    static ISSUER_: std::sync::OnceLock<TestIssuer> = std::sync::OnceLock::new();
    ISSUER_.get_or_init(|| TestIssuer::new(ISSUER, "api").unwrap())
}

fn bound_token(der: &[u8]) -> String {
    issuer()
        .token("alice")
        .claim("cnf", json!({"x5t#S256": thumbprint(der)}))
        .sign()
}

fn authenticator(mode: CertificateBindingMode) -> JwtAuthenticator {
    issuer()
        .authenticator_builder()
        .certificate_binding(mode)
        .build()
        .unwrap()
}

fn gate_with(mode: CertificateBindingMode, proxies: &[&str]) -> Gate {
    Gate::builder()
        .authenticator(authenticator(mode))
        .trusted_proxies(TrustedProxies::new(IpSet::parse(["10.0.0.0/8"]).unwrap()))
        .client_cert_proxies(IpSet::parse(proxies.iter().copied()).unwrap())
        .route("/bound/**", SenderConstrained)
        .route("/**", Authenticated)
        .build()
        .unwrap()
}

fn gate() -> Gate {
    gate_with(CertificateBindingMode::Allowed, &[])
}

struct Call<'a> {
    path: &'a str,
    token: Option<&'a str>,
    certificate: Option<&'a [u8]>,
    peer: &'a str,
    headers: Vec<(&'a str, String)>,
}

impl<'a> Call<'a> {
    fn new(token: &'a str) -> Self {
        Self {
            path: "/orders/1",
            token: Some(token),
            certificate: None,
            peer: "192.0.2.7:40000",
            headers: Vec::new(),
        }
    }

    fn certificate(mut self, der: &'a [u8]) -> Self {
        self.certificate = Some(der);
        self
    }

    fn path(mut self, path: &'a str) -> Self {
        self.path = path;
        self
    }

    fn peer(mut self, peer: &'a str) -> Self {
        self.peer = peer;
        self
    }

    fn header(mut self, name: &'a str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    async fn run(self, gate: &Gate) -> Result<Option<Principal>, Rejection> {
        let method = Method::GET;
        let uri: Uri = self.path.parse().unwrap();
        let mut headers = HeaderMap::new();
        if let Some(token) = self.token {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        for (name, value) in &self.headers {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let peer: SocketAddr = self.peer.parse().unwrap();
        let view = RequestView::new(&method, &uri, &headers)
            .with_peer(Some(peer))
            .with_client_certificate(self.certificate);
        gate.check(&view).await
    }
}

fn sf_binary(der: &[u8]) -> String {
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// Asserts a 401 with `Bearer error="invalid_token"` and `reason`.
fn assert_refused(gate: &Gate, result: Result<Option<Principal>, Rejection>, reason: Reason) {
    let rejection = result.expect_err("must be refused");
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED, "{rejection}");
    assert_eq!(rejection.reason(), reason, "{rejection}");
    let response = gate.respond(&rejection);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_bound_token_with_its_certificate_is_accepted_and_confirmed() {
    let gate = gate();
    let token = bound_token(CERT);
    let principal = Call::new(&token)
        .certificate(CERT)
        .run(&gate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(
        principal.confirmation(),
        Some(&Confirmation::Certificate {
            x5t_s256: thumbprint(CERT)
        })
    );
    let json = serde_json::to_value(&principal).unwrap();
    assert_eq!(
        json["confirmation"]["certificate"]["x5t#S256"],
        thumbprint(CERT)
    );
}

#[tokio::test]
async fn a_bound_token_without_its_certificate_is_refused() {
    let gate = gate();
    let token = bound_token(CERT);
    assert_refused(
        &gate,
        Call::new(&token).run(&gate).await,
        Reason::CertificateBinding,
    );
    assert_refused(
        &gate,
        Call::new(&token).certificate(OTHER).run(&gate).await,
        Reason::CertificateBinding,
    );
    let jwt = authenticator(CertificateBindingMode::Allowed);
    let err = jwt.verify(&token).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::CertificateMissing);
    let err = jwt
        .verify_with_certificate(&token, Some(OTHER))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::CertificateMismatch);
    assert!(
        jwt.verify_with_certificate(&token, Some(CERT))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn confirmations_portcullis_cannot_verify_are_refused_never_bearer() {
    let gate = gate();
    let hex: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, CERT)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cases = [
        json!({"x5t#S256": hex}),
        json!({"x5t#S256": format!("{}=", thumbprint(CERT))}),
        json!({"x5t#S256": 7}),
        json!({"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}}),
        json!({"x5t": "c29tZXRoaW5n", "kid": "k"}),
        json!({}),
    ];
    for cnf in cases {
        let token = issuer().token("alice").claim("cnf", cnf.clone()).sign();
        let result = Call::new(&token).certificate(CERT).run(&gate).await;
        let expected = if cnf["x5t#S256"].is_number() {
            Reason::TokenMalformed
        } else {
            Reason::TokenClaims
        };
        assert_refused(&gate, result, expected);
        let jwt = authenticator(CertificateBindingMode::Disabled);
        let err = jwt
            .verify_with_certificate(&token, Some(CERT))
            .await
            .unwrap_err();
        if expected == Reason::TokenClaims {
            assert_eq!(err.kind(), TokenErrorKind::UnsupportedConfirmation, "{cnf}");
        }
    }
}

#[tokio::test]
async fn disabled_mode_refuses_bound_tokens_and_takes_unbound_ones() {
    let gate = gate_with(CertificateBindingMode::Disabled, &[]);
    let token = bound_token(CERT);
    assert_refused(
        &gate,
        Call::new(&token).certificate(CERT).run(&gate).await,
        Reason::CertificateBinding,
    );
    let plain = issuer().token("bob").sign();
    let principal = Call::new(&plain)
        .certificate(CERT)
        .run(&gate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(principal.confirmation(), None);
    let err = authenticator(CertificateBindingMode::Disabled)
        .verify_with_certificate(&token, Some(CERT))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::CertificateBindingDisabled);
}

#[tokio::test]
async fn required_mode_takes_only_bound_tokens_with_their_certificate() {
    let gate = gate_with(CertificateBindingMode::Required, &[]);
    let plain = issuer().token("bob").sign();
    assert_refused(
        &gate,
        Call::new(&plain).certificate(CERT).run(&gate).await,
        Reason::CertificateBinding,
    );
    let token = bound_token(CERT);
    assert!(Call::new(&token).certificate(CERT).run(&gate).await.is_ok());
    assert_refused(
        &gate,
        Call::new(&token).run(&gate).await,
        Reason::CertificateBinding,
    );
}

#[tokio::test]
async fn per_issuer_modes_apply_to_their_issuer_only() {
    let other = TestIssuer::new("https://other.test", "api").unwrap();
    let jwt = issuer()
        .authenticator_builder()
        .issuer(
            "https://other.test",
            portcullis::jwt::KeySource::Static(other_keys(&other)),
        )
        .issuer_certificate_binding("https://other.test", CertificateBindingMode::Required)
        .build()
        .unwrap();
    let plain = issuer().token("bob").sign();
    assert!(jwt.verify(&plain).await.is_ok());
    let plain_other = other.token("bob").sign();
    let err = jwt.verify(&plain_other).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::CertificateRequired);
    let err = issuer()
        .authenticator_builder()
        .issuer_certificate_binding("https://nobody.test", CertificateBindingMode::Required)
        .build()
        .unwrap_err();
    assert!(err.message().contains("not a configured issuer"), "{err}");
}

fn other_keys(other: &TestIssuer) -> portcullis::jwt::KeySet {
    portcullis::jwt::KeySet::from_jwks(&other.jwks().to_string()).unwrap()
}

#[tokio::test]
async fn sender_constrained_takes_certificate_bound_tokens() {
    let gate = gate();
    let token = bound_token(CERT);
    let principal = Call::new(&token)
        .path("/bound/1")
        .certificate(CERT)
        .run(&gate)
        .await
        .unwrap();
    assert!(principal.is_some());
    let plain = issuer().token("bob").sign();
    let err = Call::new(&plain)
        .path("/bound/1")
        .certificate(CERT)
        .run(&gate)
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err.reason(), Reason::PolicyDenied, "{err}");
}

#[tokio::test]
async fn client_cert_is_read_only_from_client_cert_proxies() {
    let gate = gate_with(CertificateBindingMode::Allowed, &["10.1.2.3/32"]);
    let token = bound_token(CERT);
    let from_proxy = Call::new(&token)
        .peer("10.1.2.3:5000")
        .header("client-cert", sf_binary(CERT))
        .run(&gate)
        .await
        .unwrap()
        .unwrap();
    assert!(from_proxy.confirmation().is_some());
    // Another certificate asserted by the proxy: refused.
    assert_refused(
        &gate,
        Call::new(&token)
            .peer("10.1.2.3:5000")
            .header("client-cert", sf_binary(OTHER))
            .run(&gate)
            .await,
        Reason::CertificateBinding,
    );
    // A peer trusted for X-Forwarded-For only (10.0.0.0/8) is not believed about certificates.
    assert_refused(
        &gate,
        Call::new(&token)
            .peer("10.9.9.9:5000")
            .header("client-cert", sf_binary(CERT))
            .run(&gate)
            .await,
        Reason::CertificateBinding,
    );
    // Nor is a client.
    assert_refused(
        &gate,
        Call::new(&token)
            .header("client-cert", sf_binary(CERT))
            .run(&gate)
            .await,
        Reason::CertificateBinding,
    );
    // A proxy's own connection certificate is not the client's.
    assert_refused(
        &gate,
        Call::new(&token)
            .peer("10.1.2.3:5000")
            .certificate(CERT)
            .run(&gate)
            .await,
        Reason::CertificateBinding,
    );
}

#[tokio::test]
async fn a_repeated_or_malformed_client_cert_is_a_bad_request() {
    let proxied = gate_with(CertificateBindingMode::Allowed, &["10.1.2.3/32"]);
    let token = bound_token(CERT);
    let cases: [&[String]; 4] = [
        &[sf_binary(CERT), sf_binary(CERT)],
        &[base64::engine::general_purpose::STANDARD.encode(CERT)],
        &[format!("{}, {}", sf_binary(CERT), sf_binary(CERT))],
        &[":not base64!:".to_owned()],
    ];
    for values in cases {
        let mut call = Call::new(&token).peer("10.1.2.3:5000");
        for value in values {
            call = call.header("client-cert", value.clone());
        }
        let err = call.run(&proxied).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{values:?}: {err}");
        assert_eq!(err.reason(), Reason::RequestMalformed);
    }
    // Without client_cert_proxies the header is never read, however it looks.
    let plain_gate = gate();
    let result = Call::new(&token)
        .peer("10.1.2.3:5000")
        .header("client-cert", "junk".to_owned())
        .certificate(CERT)
        .run(&plain_gate)
        .await;
    assert!(result.is_ok());
}

#[cfg(feature = "tower")]
#[tokio::test]
async fn the_tower_layer_reads_the_client_certificate_extension() {
    use tower::{Service, ServiceExt};
    let layer = portcullis::GateLayer::new(gate());
    let mut service = tower::ServiceBuilder::new().layer(layer).service_fn(
        |request: http::Request<String>| async move {
            let principal = request.extensions().get::<Principal>().cloned();
            let body = principal.map_or("none".to_owned(), |p| p.subject().to_owned());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        },
    );
    let token = bound_token(CERT);
    for (certificate, status) in [(Some(CERT), 200), (Some(OTHER), 401), (None, 401)] {
        let mut request = http::Request::get("/orders/1")
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        if let Some(der) = certificate {
            request
                .extensions_mut()
                .insert(ClientCertificate(Bytes::from_static(der)));
        }
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status);
    }
}

#[cfg(feature = "introspection")]
mod introspection {
    use http::{Request, Response};

    use super::*;
    use portcullis::SecretString;
    use portcullis::jwt::{
        ClientAuth, FetchError, FetchLimits, HttpClient, IntrospectionAuthenticator,
    };

    /// Answers `bound` with `cnf["x5t#S256"]` of `CERT`, `plain` unbound, else inactive.
    #[derive(Debug)]
    struct Endpoint;

    impl HttpClient for Endpoint {
        fn send(
            &self,
            request: Request<Bytes>,
            _: FetchLimits,
        ) -> portcullis::BoxFuture<'_, Result<Response<Bytes>, FetchError>> {
            let body = String::from_utf8_lossy(request.body()).into_owned();
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 300;
            let answer = if body.contains("token=bound") {
                json!({"active": true, "sub": "bob", "aud": "api", "exp": exp,
                       "cnf": {"x5t#S256": thumbprint(CERT)}})
            } else if body.contains("token=plain") {
                json!({"active": true, "sub": "carol", "aud": "api", "exp": exp})
            } else {
                json!({"active": false})
            };
            let response = Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Bytes::from(answer.to_string()))
                .unwrap();
            Box::pin(std::future::ready(Ok(response)))
        }
    }

    fn gate(mode: CertificateBindingMode) -> Gate {
        let introspection = IntrospectionAuthenticator::builder(
            "https://as.example.com/introspect",
            ClientAuth::basic("rs", SecretString::new("secret".to_owned())),
        )
        .audiences(["api"])
        .http_client(Arc::new(Endpoint))
        .certificate_binding(mode)
        .build()
        .unwrap();
        Gate::builder()
            .authenticator(introspection)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn an_introspected_bound_token_needs_its_certificate() {
        let allowed = gate(CertificateBindingMode::Allowed);
        let principal = Call::new("bound")
            .certificate(CERT)
            .run(&allowed)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            principal.confirmation(),
            Some(Confirmation::Certificate { .. })
        ));
        for certificate in [None, Some(OTHER)] {
            let mut call = Call::new("bound");
            call.certificate = certificate;
            assert_refused(
                &allowed,
                call.run(&allowed).await,
                Reason::CertificateBinding,
            );
        }
        assert!(Call::new("plain").run(&allowed).await.is_ok());
        let required = gate(CertificateBindingMode::Required);
        assert_refused(
            &required,
            Call::new("plain").certificate(CERT).run(&required).await,
            Reason::CertificateBinding,
        );
        let disabled = gate(CertificateBindingMode::Disabled);
        assert_refused(
            &disabled,
            Call::new("bound").certificate(CERT).run(&disabled).await,
            Reason::CertificateBinding,
        );
    }
}

mod toml {
    use super::*;

    fn text(jwks: &std::path::Path, mode: &str, proxies: &str) -> String {
        format!(
            r#"[gate]
client_cert_proxies = [{proxies}]

[jwt]
audiences = ["api"]

[[jwt.issuers]]
issuer = "{ISSUER}"
jwks_file = "{}"
certificate_binding = "{mode}"

[policies.bound]
sender_constrained = true

[[routes]]
path = "/bound/**"
policy = "bound"
"#,
            jwks.display()
        )
    }

    fn jwks_file(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "portcullis-cert-{name}-{}.json",
            std::process::id()
        ));
        std::fs::write(&path, issuer().jwks().to_string()).unwrap();
        path
    }

    #[tokio::test]
    async fn a_file_sets_up_certificate_binding_and_client_cert_proxies() {
        let jwks = jwks_file("file");
        let gate = Config::from_str(&text(&jwks, "required", "\"10.1.2.3\""))
            .unwrap()
            .build()
            .await
            .unwrap();
        let token = bound_token(CERT);
        let principal = Call::new(&token)
            .path("/bound/1")
            .peer("10.1.2.3:5000")
            .header("client-cert", sf_binary(CERT))
            .run(&gate)
            .await
            .unwrap();
        assert!(principal.is_some());
        let plain = issuer().token("bob").sign();
        assert_refused(
            &gate,
            Call::new(&plain).path("/bound/1").run(&gate).await,
            Reason::CertificateBinding,
        );
        std::fs::remove_file(jwks).ok();
    }

    #[test]
    fn bad_values_are_errors_at_their_key() {
        let jwks = std::path::Path::new("/nonexistent/jwks.json");
        let err = Config::from_str(&text(jwks, "sometimes", "")).unwrap_err();
        assert!(
            err.to_string().contains("certificate binding mode"),
            "{err}"
        );
        assert!(err.location().is_some(), "{err}");
        let err = Config::from_str(&text(jwks, "allowed", "\"not-an-ip\"")).unwrap_err();
        assert_eq!(err.key(), Some("gate.client_cert_proxies[0]"), "{err}");
        let section = "[introspection]\nendpoint = \"https://as.example.com/introspect\"\n\
                       auth_method = \"bearer\"\nclient_token_env = \"T\"\n\
                       audiences = [\"api\"]\ncertificate_binding = \"required\"\n";
        assert!(Config::from_str(section).is_ok());
    }
}

/// A token bound to a DPoP key and a certificate needs both.
mod dpop_and_certificate {
    use aws_lc_rs::digest::{SHA256, digest};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::Value;

    use super::*;

    const ORIGIN: &str = "https://api.example.com";

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    struct Holder(EcdsaKeyPair);

    impl Holder {
        fn new() -> Self {
            Self(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
        }

        fn xy(&self) -> (String, String) {
            let point = self.0.public_key().as_ref();
            (b64(&point[1..33]), b64(&point[33..65]))
        }

        /// RFC 7638: SHA-256 of the required members in lexicographic order.
        fn jkt(&self) -> String {
            let (x, y) = self.xy();
            let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
            b64(digest(&SHA256, canonical.as_bytes()).as_ref())
        }

        fn proof(&self, htu: &str, token: &str) -> String {
            let (x, y) = self.xy();
            let header = json!({"typ": "dpop+jwt", "alg": "ES256",
                                "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y}});
            let iat = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let mut jti = [0u8; 16];
            aws_lc_rs::rand::fill(&mut jti).unwrap();
            let claims: Value = json!({"jti": b64(&jti), "htm": "GET", "htu": htu, "iat": iat,
                                       "ath": b64(digest(&SHA256, token.as_bytes()).as_ref())});
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", b64(signature.as_ref()))
        }
    }

    #[tokio::test]
    async fn a_token_bound_to_both_needs_the_proof_and_the_certificate() {
        let gate = Gate::builder()
            .authenticator(authenticator(CertificateBindingMode::Allowed))
            .public_origin(ORIGIN)
            .build()
            .unwrap();
        let holder = Holder::new();
        let token = issuer()
            .token("alice")
            .claim(
                "cnf",
                json!({"jkt": holder.jkt(), "x5t#S256": thumbprint(CERT)}),
            )
            .sign();
        let htu = format!("{ORIGIN}/orders/1");
        let dpop = |certificate: Option<&'static [u8]>| {
            let mut call = Call::new("unused").header("dpop", holder.proof(&htu, &token));
            call.token = None;
            call.certificate = certificate;
            call.header("authorization", format!("DPoP {token}"))
        };
        let principal = dpop(Some(CERT)).run(&gate).await.unwrap().unwrap();
        assert_eq!(
            principal.confirmation(),
            Some(&Confirmation::Dpop { jkt: holder.jkt() })
        );
        for certificate in [None, Some(OTHER)] {
            let rejection = dpop(certificate).run(&gate).await.unwrap_err();
            assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED, "{rejection}");
            assert_eq!(rejection.dpop_error(), Some("invalid_token"), "{rejection}");
        }
        // As a bearer token with the certificate: refused, it is DPoP-bound.
        let rejection = Call::new(&token)
            .certificate(CERT)
            .run(&gate)
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED, "{rejection}");
    }
}
