//! `portcullis token verify`: checks a bearer token as the Gate would, and prints the principal
//! (exit 0) or why the token was refused (exit 1). With `--dpop-proof`, `--method` and `--url`,
//! checks a DPoP-bound token and its proof (RFC 9449) for that request, and names the check that
//! failed. With `--client-cert`, checks a certificate-bound token (RFC 8705,
//! `cnf["x5t#S256"]`) as sent over a mutual-TLS connection with that certificate. Problems with
//! the command itself, or keys that cannot be loaded, exit 2.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use portcullis::Principal;
use portcullis::jwt::dpop::{DpopError, DpopSettings};
use portcullis::jwt::{
    Algorithm, ClaimMapping, ClaimPath, JwtAuthenticator, KeySet, KeySource, TokenErrorKind,
    VerifyingKey,
};

/// `portcullis token …`
#[derive(Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Verifies a JWT: prints the principal as JSON and exits 0, or prints why the token is
    /// refused and exits 1.
    Verify(Box<VerifyArgs>),
}

#[derive(Args)]
#[command(group(
    ArgGroup::new("keys")
        .required(true)
        .args(["jwks", "discovery", "secret_file", "pem_file"])
))]
struct VerifyArgs {
    /// The issuer's keys: a JWKS file, or a JWKS URL (https, or http to a loopback address).
    #[arg(long, value_name = "FILE|URL")]
    jwks: Option<String>,
    /// Find the keys by OpenID Connect discovery from this issuer URL, which is also the expected
    /// issuer unless --issuer says otherwise.
    #[arg(long, value_name = "ISSUER_URL")]
    discovery: Option<String>,
    /// A file holding an HMAC secret (trailing line endings are ignored); see --algorithm.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// A PEM public key file; needs --algorithm.
    #[arg(long, value_name = "FILE")]
    pem_file: Option<PathBuf>,
    /// The algorithm of --secret-file (default HS256) or --pem-file.
    #[arg(long, value_name = "ALG")]
    algorithm: Option<Algorithm>,
    /// The expected issuer (`iss`).
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// An accepted audience (`aud`); repeat for several.
    #[arg(long = "audience", value_name = "AUD", required = true)]
    audiences: Vec<String>,
    /// The required header `typ`, e.g. at+jwt.
    #[arg(long, value_name = "TYP")]
    typ: Option<String>,
    /// A claim path the groups come from (default `groups`); repeat for several.
    #[arg(long = "groups-claim", value_name = "PATH")]
    groups_claims: Vec<String>,
    /// The DPoP proof (the request's `DPoP` header) sent with the token as
    /// `Authorization: DPoP <token>`; needs --method and --url. Every check but the server's
    /// nonce and replay cache.
    #[arg(long, value_name = "PROOF", requires_all = ["method", "url"])]
    dpop_proof: Option<String>,
    /// The request's method, which the proof's `htm` must name (case-sensitive).
    #[arg(long, value_name = "METHOD", requires = "dpop_proof")]
    method: Option<String>,
    /// The request's full URL as the service's public origin and the path the client sent
    /// (`https://api.example.com/orders`), which the proof's `htu` must name; query and
    /// fragment are ignored.
    #[arg(long, value_name = "URL", requires = "dpop_proof")]
    url: Option<String>,
    /// How old a proof may be, in seconds (default 60): raise it to check a proof captured
    /// earlier.
    #[arg(long, value_name = "SECONDS", requires = "dpop_proof")]
    dpop_max_age: Option<u64>,
    /// The client certificate (PEM, or DER) of the mutual-TLS connection the token is sent
    /// over: a certificate-bound token (`cnf["x5t#S256"]`, RFC 8705) is accepted only with the
    /// certificate it names.
    #[arg(long, value_name = "FILE", conflicts_with = "dpop_proof")]
    client_cert: Option<PathBuf>,
    /// The token, or `-` to read it from stdin (keeps it out of the shell history).
    #[arg(value_name = "TOKEN")]
    token: String,
}

/// Runs `portcullis token …`.
pub(crate) async fn run(args: TokenArgs) -> Result<ExitCode, String> {
    match args.command {
        TokenCommand::Verify(args) => verify(*args).await,
    }
}

async fn verify(args: VerifyArgs) -> Result<ExitCode, String> {
    let token = if args.token == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
        text.trim().to_owned()
    } else {
        args.token.trim().to_owned()
    };
    if token.is_empty() {
        return Err("the token is empty".to_owned());
    }
    let issuer = args
        .issuer
        .clone()
        .or_else(|| args.discovery.clone())
        .ok_or("--issuer is required (except with --discovery)")?;
    let source = key_source(&args)?;
    let remote = !matches!(source, KeySource::Static(_));
    let mut builder = JwtAuthenticator::builder()
        .issuer(issuer, source)
        .audiences(args.audiences.iter().cloned());
    if let Some(typ) = &args.typ {
        builder = builder.require_typ(typ.clone());
    }
    if !args.groups_claims.is_empty() {
        builder = builder.claims(
            ClaimMapping::new()
                .groups_claims(args.groups_claims.iter().map(|p| ClaimPath::new(p.clone()))),
        );
    }
    if let Some(seconds) = args.dpop_max_age {
        builder = builder.dpop(DpopSettings::new().max_age(Duration::from_secs(seconds)));
    }
    let jwt = builder.build().map_err(|e| e.to_string())?;
    if remote {
        jwt.refresh_keys()
            .await
            .map_err(|e| format!("cannot load the keys: {e}"))?;
    }
    let certificate = match &args.client_cert {
        Some(path) => Some(certificate_der(path)?),
        None => None,
    };
    let verified = match (&args.dpop_proof, &args.method, &args.url) {
        (Some(proof), Some(method), Some(url)) => jwt
            .verify_dpop(&token, proof.trim(), method, url)
            .await
            .map_err(|err| dpop_refusal(&err)),
        _ => jwt
            .verify_with_certificate(&token, certificate.as_deref())
            .await
            .map_err(|err| {
            let hint = match err.kind() {
                TokenErrorKind::DpopBound => {
                    " (the token is DPoP-bound: give its proof with --dpop-proof, --method and --url)"
                }
                TokenErrorKind::CertificateMissing => {
                    " (the token is certificate-bound: give the client certificate with --client-cert)"
                }
                _ => "",
            };
            format!("rejected ({:?}): {err}{hint}", err.kind())
        }),
    };
    match verified {
        Ok(principal) => {
            println!("{}", principal_json(&principal)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            eprintln!("{refusal}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The principal as pretty JSON, with the token's claims.
fn principal_json(principal: &Principal) -> Result<String, String> {
    let mut json = serde_json::to_value(principal).map_err(|e| e.to_string())?;
    if let (Some(object), Some(claims)) = (json.as_object_mut(), principal.claims()) {
        object.insert(
            "claims".to_owned(),
            serde_json::Value::Object(claims.clone()),
        );
    }
    serde_json::to_string_pretty(&json).map_err(|e| e.to_string())
}

/// Which DPoP check failed, and the error a resource server would answer with.
fn dpop_refusal(err: &DpopError) -> String {
    let check = match err.token_error() {
        Some(token) => format!("{:?}: {:?}", err.kind(), token.kind()),
        None => format!("{:?}", err.kind()),
    };
    let answer = err.error_code().map_or_else(
        || "a 503".to_owned(),
        |code| format!("a 401 with error=\"{code}\""),
    );
    format!("rejected ({check}): {err}; a resource server answers {answer}")
}

/// The DER of a certificate file: the first `CERTIFICATE` block of a PEM file, or the file
/// itself when it is DER (starts with an ASN.1 SEQUENCE).
fn certificate_der(path: &Path) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let body = text
        .split_once("-----BEGIN CERTIFICATE-----")
        .and_then(|(_, rest)| rest.split_once("-----END CERTIFICATE-----"))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("{}: no PEM CERTIFICATE block", path.display()))?;
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("{}: bad base64 in the certificate: {e}", path.display()))
}

fn key_source(args: &VerifyArgs) -> Result<KeySource, String> {
    if let Some(jwks) = &args.jwks {
        if jwks.starts_with("https://") || jwks.starts_with("http://") {
            return Ok(KeySource::jwks_url(jwks.clone()));
        }
        let text = read(Path::new(jwks))?;
        return KeySet::from_jwks(&text)
            .map(KeySource::Static)
            .map_err(|e| format!("{jwks}: {e}"));
    }
    if args.discovery.is_some() {
        return Ok(KeySource::discovery());
    }
    if let Some(path) = &args.secret_file {
        let secret = crate::secret_file::read_secret_file(path, "HMAC key")
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let algorithm = args.algorithm.unwrap_or(Algorithm::HS256);
        let key = VerifyingKey::hmac(algorithm, secret.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(KeySource::Static(KeySet::new().with(key)));
    }
    if let Some(path) = &args.pem_file {
        let algorithm = args.algorithm.ok_or("--pem-file needs --algorithm")?;
        let key = VerifyingKey::from_pem(algorithm, &read(path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(KeySource::Static(KeySet::new().with(key)));
    }
    Err("give one of --jwks, --discovery, --secret-file, --pem-file".to_owned())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
