//! The JSON endpoints: request bodies in, [`rules`](super::rules) applied, JSON out.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::rules::{self, Action, Expiry, Issued, TokenRequest};
use super::{Problem, SelfService};
use crate::principal::Principal;
use crate::store::ApiKeyRecord;

/// The audit `stage` of the token API's events.
pub(crate) const STAGE: &str = "self_service";

/// The longest JSON member name quoted back in an error.
const MAX_QUOTED_LEN: usize = 64;

/// `{prefix}`: list (GET) or create (POST).
pub(super) async fn collection(
    service: &SelfService,
    request: Request<Bytes>,
    principal: &Principal,
) -> Response<Bytes> {
    match *request.method() {
        Method::GET | Method::HEAD => match service.list_for(principal).await {
            Ok(records) => list_response(&records, false),
            Err(problem) => problem.response(),
        },
        Method::POST => {
            let result = async {
                service.check_minter(principal)?;
                service.check_csrf(principal, request.method(), request.headers())?;
                let body = json_body(request.headers(), request.body())?;
                let token = token_request(body)?;
                service.create_for(principal, token).await
            }
            .await;
            issued_response(principal, Action::Create, None, result)
        }
        _ => Problem::method_not_allowed("GET, POST"),
    }
}

/// `{prefix}/{id}`: revoke (DELETE).
pub(super) async fn item(
    service: &SelfService,
    request: Request<Bytes>,
    principal: &Principal,
    id: &str,
) -> Response<Bytes> {
    if request.method() != Method::DELETE {
        return Problem::method_not_allowed("DELETE");
    }
    let result = async {
        service.check_caller(principal)?;
        service.check_csrf(principal, request.method(), request.headers())?;
        service.revoke_for(principal, id).await
    }
    .await;
    revoked_response(principal, id, result)
}

/// `{prefix}/{id}/rotate`: rotate (POST), with an optional `overlap`.
pub(super) async fn rotate(
    service: &SelfService,
    request: Request<Bytes>,
    principal: &Principal,
    id: &str,
) -> Response<Bytes> {
    if request.method() != Method::POST {
        return Problem::method_not_allowed("POST");
    }
    let result = async {
        service.check_minter(principal)?;
        service.check_csrf(principal, request.method(), request.headers())?;
        let body = json_body(request.headers(), request.body())?;
        let overlap = overlap(body)?;
        service.rotate_for(principal, id, overlap).await
    }
    .await;
    issued_response(principal, Action::Rotate, Some(id), result)
}

/// Admin `{prefix}`: every token, or one owner's (`?owner=alice`), revoked and expired
/// included.
pub(super) async fn admin_collection(
    service: &SelfService,
    request: Request<Bytes>,
    _principal: &Principal,
) -> Response<Bytes> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Problem::method_not_allowed("GET");
    }
    let owner = match query_owner(request.uri().query()) {
        Ok(owner) => owner,
        Err(problem) => return problem.response(),
    };
    match service.api_keys().list(owner.as_deref()).await {
        Ok(records) => list_response(&records, true),
        Err(err) => Problem::from(err).response(),
    }
}

/// Admin `{prefix}/{id}`: revoke any token (DELETE).
pub(super) async fn admin_item(
    service: &SelfService,
    request: Request<Bytes>,
    principal: &Principal,
    id: &str,
) -> Response<Bytes> {
    if request.method() != Method::DELETE {
        return Problem::method_not_allowed("DELETE");
    }
    let result = async {
        service.check_csrf(principal, request.method(), request.headers())?;
        let record = service.api_keys().revoke(id).await?;
        rules::audit(principal, Action::Revoke, &record);
        Ok(record)
    }
    .await;
    revoked_response(principal, id, result)
}

fn issued_response(
    principal: &Principal,
    action: Action,
    id: Option<&str>,
    result: Result<Issued, Problem>,
) -> Response<Bytes> {
    match result {
        Ok(issued) => {
            let mut body =
                serde_json::to_value(TokenView::of(&issued.record, false)).unwrap_or_default();
            // The one place the whole token is written: this response, not cached.
            body["token"] = Value::String(issued.token.expose_secret().to_owned());
            json_response(StatusCode::CREATED, &body)
        }
        Err(problem) => {
            rules::audit_refusal(principal, action, id, &problem);
            problem.response()
        }
    }
}

fn revoked_response(
    principal: &Principal,
    id: &str,
    result: Result<ApiKeyRecord, Problem>,
) -> Response<Bytes> {
    match result {
        Ok(_) => {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(problem) => {
            rules::audit_refusal(principal, Action::Revoke, Some(id), &problem);
            problem.response()
        }
    }
}

fn list_response(records: &[ApiKeyRecord], with_owner: bool) -> Response<Bytes> {
    let tokens: Vec<_> = records
        .iter()
        .map(|r| TokenView::of(r, with_owner))
        .collect();
    json_response(StatusCode::OK, &serde_json::json!({ "tokens": tokens }))
}

fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A token as the API shows it: metadata, never the secret or its digest.
#[derive(Serialize)]
pub(crate) struct TokenView<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    name: &'a str,
    scopes: &'a [String],
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    rotated_from: Option<&'a str>,
    rotated_to: Option<&'a str>,
    self_served: bool,
}

impl<'a> TokenView<'a> {
    pub(crate) fn of(record: &'a ApiKeyRecord, with_owner: bool) -> Self {
        Self {
            id: &record.id,
            owner: with_owner.then_some(record.owner.as_str()),
            name: &record.name,
            scopes: &record.scopes,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
            rotated_from: record.replaces.as_deref(),
            rotated_to: record.replaced_by.as_deref(),
            self_served: record.self_served,
        }
    }
}

/// The body as one JSON object: `Content-Type: application/json` (415 otherwise: a cross-site
/// form can send `text/plain` without a preflight, never `application/json`), syntax (400 with
/// line and column), no repeated member. An empty body is `{}`.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Problem> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json || headers.get_all(CONTENT_TYPE).iter().count() != 1 {
        return Err(Problem::field(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    crate::json::parse_object(body).map_err(|err| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "malformed JSON at line {} column {}: {}",
                err.line(),
                err.column(),
                category(&err)
            ),
        )
    })
}

/// serde_json's message without the input it may quote.
fn category(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "not a JSON object, or a repeated member",
        serde_json::error::Category::Io => "unreadable",
    }
}

/// A create request's members: `name` (required), `expires_in` or `expires_at` (at most one),
/// `scopes` (default none). Another member is 400, naming it.
fn token_request(mut body: Map<String, Value>) -> Result<TokenRequest, Problem> {
    let name = match body.remove("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(wrong_type("name", "a string")),
        None => return Err(Problem::invalid("name", "a name is required")),
    };
    let expires_in = optional_string(&mut body, "expires_in")?;
    let expires_at = optional_string(&mut body, "expires_at")?;
    let expiry = match (expires_in, expires_at) {
        (Some(_), Some(_)) => {
            return Err(Problem::invalid(
                "expires_at",
                "give expires_in or expires_at, not both",
            ));
        }
        (Some(text), None) => Expiry::In(
            crate::duration::parse_duration(&text)
                .map_err(|_| wrong_type("expires_in", "a duration such as 30d, 12h or 1h30m"))?,
        ),
        (None, Some(text)) => Expiry::At(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|_| wrong_type("expires_at", "an RFC 3339 time"))?
                .with_timezone(&Utc),
        ),
        (None, None) => Expiry::Default,
    };
    let scopes = match body.remove("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(scope) => Ok(scope),
                _ => Err(wrong_type("scopes", "an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(wrong_type("scopes", "an array of strings")),
    };
    no_other_member(&body)?;
    Ok(TokenRequest {
        name,
        expiry,
        scopes,
    })
}

/// A rotate request's `overlap` (default zero: the old token stops at once).
fn overlap(mut body: Map<String, Value>) -> Result<Duration, Problem> {
    let overlap = match optional_string(&mut body, "overlap")? {
        Some(text) => crate::duration::parse_duration(&text)
            .map_err(|_| wrong_type("overlap", "a duration such as 1h or 30m"))?,
        None => Duration::ZERO,
    };
    no_other_member(&body)?;
    Ok(overlap)
}

fn optional_string(
    body: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, Problem> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(wrong_type(field, "a string")),
    }
}

fn no_other_member(body: &Map<String, Value>) -> Result<(), Problem> {
    match body.keys().next() {
        None => Ok(()),
        Some(member) => {
            let quoted: String = member.chars().take(MAX_QUOTED_LEN).collect();
            Err(Problem::field(
                StatusCode::BAD_REQUEST,
                Cow::Owned(quoted),
                "unknown member",
            ))
        }
    }
}

fn wrong_type(field: &'static str, what: &'static str) -> Problem {
    Problem::field(
        StatusCode::BAD_REQUEST,
        field,
        format!("{field} must be {what}"),
    )
}

/// `owner` from an admin list's query string, percent-decoded.
fn query_owner(query: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut owner = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "owner" {
            continue;
        }
        if owner.is_some() {
            return Err(Problem::field(
                StatusCode::BAD_REQUEST,
                "owner",
                "owner is given twice",
            ));
        }
        let value = value.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&value)
            .decode_utf8()
            .map_err(|_| Problem::field(StatusCode::BAD_REQUEST, "owner", "owner is not UTF-8"))?;
        owner = Some(decoded.into_owned());
    }
    Ok(owner)
}
