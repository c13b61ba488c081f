//! The `{prefix}/ui` page: the caller's tokens, a create form, revoke buttons, and a new token
//! shown once with a copy button. Server-rendered HTML on the same rules as the JSON API
//! ([`rules`](super::rules)).
//!
//! No cookies: the browser sends its Basic credentials by itself, which is why every form post
//! passes two checks, the origin check of the API (`Sec-Fetch-Site`, else `Origin`) and a form
//! token ([`form_token`](super::form_token)) bound to the caller's subject. No external assets:
//! one inline style and one inline script, allowed by their SHA-256 in the
//! `Content-Security-Policy`, which forbids everything else (`default-src 'none'`).
//!
//! The router is nested at a prefix this module does not know (the path it sees is relative),
//! so every URL in the page is relative: `ui` from `{prefix}/ui`, `../ui` from
//! `{prefix}/ui/revoke`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use super::rules::{self, Action, Expiry, Issued, TokenRequest};
use super::{Problem, SelfService};
use crate::principal::Principal;
use crate::store::ApiKeyRecord;

/// The page's only style sheet, inline; its hash is in [`CSP`].
pub(crate) const STYLE: &str = "\
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
main{max-width:62rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.1rem;margin:2rem 0 .5rem}
.who,.note{color:#5b6876}
.who{margin:0 0 1.5rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d5dbe1}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e3e7eb;vertical-align:middle}
th{background:#eef1f4;font-weight:600;font-size:.85rem}
td form{margin:0}
.scope{display:inline-block;background:#e6eef8;border-radius:3px;padding:0 .35rem;margin:0 .2rem 0 0;font-size:.85rem}
button{font:inherit;padding:.3rem .8rem;border:1px solid #8795a1;border-radius:4px;background:#fff;cursor:pointer}
button.revoke{color:#a3232b;border-color:#d9a3a7}
#create-submit{background:#1f6feb;border-color:#1f6feb;color:#fff;justify-self:start}
#create-form{background:#fff;border:1px solid #d5dbe1;padding:1rem;display:grid;gap:.75rem;max-width:32rem}
label{display:block;font-weight:600}
input[type=text],select{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}
fieldset{border:0;padding:0;margin:0}
legend{font-weight:600;padding:0;margin-bottom:.2rem}
fieldset label{font-weight:normal;display:inline-block;margin-right:1rem}
#new-token-box{background:#e9f7ef;border:1px solid #9fd3b0;padding:.5rem 1rem;margin:1rem 0}
#new-token{display:block;word-break:break-all;background:#fff;padding:.5rem;margin:.5rem 0;border:1px solid #c8e6d1}
#error{background:#fdecec;border:1px solid #e8a9ad;color:#8a1c23;padding:.6rem 1rem}
";

/// The page's only script, inline, on the page only with a new token: the copy button. Its
/// hash is in [`CSP`]; `navigator.clipboard` exists only in secure contexts (HTTPS, or
/// `localhost`), hence the fallback message.
pub(crate) const SCRIPT: &str = r#""use strict";
(function () {
  var copy = document.getElementById("copy");
  var status = document.getElementById("copy-status");
  if (!copy || !status) {
    return;
  }
  copy.addEventListener("click", function () {
    var failed = function () {
      status.textContent = "Copy failed: select the token and copy it by hand";
    };
    if (!navigator.clipboard) {
      failed();
      return;
    }
    var token = document.getElementById("new-token").textContent;
    navigator.clipboard.writeText(token).then(function () {
      status.textContent = "Copied";
    }, failed);
  });
})();
"#;

/// `Content-Security-Policy` of every page: nothing but the inline style and script above, forms
/// posted to this origin only, no `<base>`, no framing.
pub(crate) static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        sha256_base64(SCRIPT),
        sha256_base64(STYLE)
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| unreachable!("ASCII: a fixed text and base64"))
});

/// The expiry choices the create form offers, in seconds, before the caller's cap cuts them.
const EXPIRY_CHOICES: [u64; 4] = [7 * DAY, 30 * DAY, 90 * DAY, 365 * DAY];
const DAY: u64 = 86_400;

/// The most fields one form post may have: the scopes the allowlist may hold, and a few.
const MAX_FIELDS: usize = 300;

const URLENCODED: &str = "application/x-www-form-urlencoded";

/// Answers a request under `{prefix}/ui` (`path` relative to the prefix): `GET /ui` the page,
/// `POST /ui` create, `POST /ui/revoke` revoke.
pub(super) async fn handle(
    service: &SelfService,
    request: Request<Bytes>,
    principal: &Principal,
) -> Response<Bytes> {
    let (base, allow) = match request.uri().path() {
        "/ui" => (Base::Page, "GET, HEAD, POST"),
        "/ui/revoke" => (Base::Revoke, "POST"),
        // One segment below `ui/`, as `ui/revoke`: the back link is `../ui` from there too.
        _ => return refusal(Base::Revoke, &Problem::not_found()),
    };
    if let Err(problem) = service.check_caller(principal) {
        return refusal(base, &problem);
    }
    match (base, request.method().clone()) {
        (Base::Page, Method::GET | Method::HEAD) => {
            page(service, principal, StatusCode::OK, &View::default()).await
        }
        (Base::Page, Method::POST) => create(service, &request, principal).await,
        (Base::Revoke, Method::POST) => revoke(service, &request, principal).await,
        _ => {
            let problem = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("allowed here: {allow}"),
            );
            let mut response = refusal(base, &problem);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            response
        }
    }
}

/// Where the answering URL sits, for the relative URLs of the page it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    /// `{prefix}/ui`.
    Page,
    /// `{prefix}/ui/revoke`.
    Revoke,
}

impl Base {
    /// The relative URL of `{prefix}/ui` from here.
    fn page_url(self) -> &'static str {
        match self {
            Self::Page => "ui",
            Self::Revoke => "../ui",
        }
    }

    /// The relative URL of `{prefix}/ui/revoke` from here.
    fn revoke_url(self) -> &'static str {
        match self {
            Self::Page => "ui/revoke",
            Self::Revoke => "revoke",
        }
    }
}

/// What the page shows besides the list and the form.
#[derive(Default)]
struct View<'a> {
    error: Option<&'a Problem>,
    issued: Option<&'a Issued>,
    /// The name a refused create asked for, to fill the form again.
    name: &'a str,
}

/// `POST {prefix}/ui`: create a token from the form, then the page with it (shown once) or with
/// the reason it was refused.
async fn create(
    service: &SelfService,
    request: &Request<Bytes>,
    principal: &Principal,
) -> Response<Bytes> {
    let form = match checked_form(service, request, principal) {
        Ok(form) => form,
        Err(problem) => {
            rules::audit_refusal(principal, Action::Create, None, &problem);
            return refusal(Base::Page, &problem);
        }
    };
    // To fill the form again after a refusal.
    let name = form.single("name").ok().flatten().unwrap_or_default();
    let result = async {
        form.only(&["csrf", "name", "expires_in", "scope"])?;
        let name = form.single("name")?.unwrap_or_default();
        let expiry = match form.single("expires_in")? {
            None | Some("") => Expiry::Default,
            Some(text) => Expiry::In(crate::duration::parse_duration(text).map_err(|_| {
                Problem::invalid("expires_in", "expires_in must be a duration such as 30d")
            })?),
        };
        let token = TokenRequest {
            name: name.to_owned(),
            expiry,
            scopes: form.all("scope").map(str::to_owned).collect(),
        };
        service.create_for(principal, token).await
    }
    .await;
    match result {
        Ok(issued) => {
            let view = View {
                issued: Some(&issued),
                ..View::default()
            };
            page(service, principal, StatusCode::CREATED, &view).await
        }
        Err(problem) => {
            rules::audit_refusal(principal, Action::Create, None, &problem);
            let view = View {
                error: Some(&problem),
                name,
                ..View::default()
            };
            page(service, principal, problem.status, &view).await
        }
    }
}

/// `POST {prefix}/ui/revoke`: revoke one of the caller's tokens, then 303 to the page.
async fn revoke(
    service: &SelfService,
    request: &Request<Bytes>,
    principal: &Principal,
) -> Response<Bytes> {
    let mut id = None;
    let result = async {
        let form = checked_form(service, request, principal)?;
        form.only(&["csrf", "id"])?;
        let requested = form
            .single("id")?
            .ok_or_else(|| Problem::field(StatusCode::BAD_REQUEST, "id", "no token id"))?;
        id = Some(requested.to_owned());
        if !rules::valid_id(requested) {
            return Err(Problem::not_found());
        }
        service.revoke_for(principal, requested).await
    }
    .await;
    match result {
        Ok(_) => {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::SEE_OTHER;
            let headers = response.headers_mut();
            // Relative to `{prefix}/ui/revoke`: the prefix is the router's, unknown here.
            headers.insert(header::LOCATION, HeaderValue::from_static("../ui"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(problem) => {
            rules::audit_refusal(principal, Action::Revoke, id.as_deref(), &problem);
            refusal(Base::Revoke, &problem)
        }
    }
}

/// A form post's fields, after the checks every post passes: the origin check, the media type,
/// and a form token issued to this caller.
fn checked_form(
    service: &SelfService,
    request: &Request<Bytes>,
    principal: &Principal,
) -> Result<Form, Problem> {
    service.check_csrf(principal, request.method(), request.headers())?;
    let form = Form::parse(request.headers(), request.body())?;
    let token = form.single("csrf")?.ok_or_else(|| {
        Problem::field(
            StatusCode::FORBIDDEN,
            "csrf",
            "the form token is missing: post the form from the page",
        )
    })?;
    if !service
        .inner
        .form_key
        .verify(token, principal.subject(), Utc::now())
    {
        return Err(Problem::field(
            StatusCode::FORBIDDEN,
            "csrf",
            "the form token is invalid or has expired: reload the page and try again",
        ));
    }
    Ok(form)
}

/// The page: the caller's tokens, the create form, and what `view` adds.
async fn page(
    service: &SelfService,
    principal: &Principal,
    status: StatusCode,
    view: &View<'_>,
) -> Response<Bytes> {
    let tokens = match service.list_for(principal).await {
        Ok(tokens) => tokens,
        Err(problem) => return refusal(Base::Page, &problem),
    };
    let now = Utc::now();
    let csrf = service.inner.form_key.issue(principal.subject(), now);
    let mut html = head("API tokens");
    let _ = write!(
        html,
        "<main>\n<h1>API tokens</h1>\n<p class=\"who\">Signed in as <strong>{}</strong></p>\n",
        escape(principal.subject())
    );
    if let Some(problem) = view.error {
        error(&mut html, problem);
    }
    if let Some(issued) = view.issued {
        new_token(&mut html, issued);
    }
    token_table(&mut html, &tokens, &csrf);
    create_form(&mut html, service, principal, &tokens, &csrf, view.name);
    html.push_str("</main>\n");
    if view.issued.is_some() {
        let _ = writeln!(html, "<script>{SCRIPT}</script>");
    }
    html.push_str("</body>\n</html>\n");
    html_response(status, html)
}

/// A refusal as a small page: the reason, and a link back to the page.
fn refusal(base: Base, problem: &Problem) -> Response<Bytes> {
    let title = problem.status.canonical_reason().unwrap_or("Error");
    let mut html = head(title);
    let _ = write!(html, "<main>\n<h1>{}</h1>\n", escape(title));
    error(&mut html, problem);
    let _ = write!(
        html,
        "<p><a href=\"{}\">Back to your tokens</a></p>\n</main>\n</body>\n</html>\n",
        base.page_url()
    );
    html_response(problem.status, html)
}

fn head(title: &str) -> String {
    let mut html = String::with_capacity(8 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    html
}

fn error(html: &mut String, problem: &Problem) {
    let field = problem
        .errors
        .first()
        .map(|(field, _)| format!("{}: ", escape(field)))
        .unwrap_or_default();
    let _ = writeln!(
        html,
        "<p id=\"error\" role=\"alert\">{field}{}</p>",
        escape(&problem.detail)
    );
}

fn new_token(html: &mut String, issued: &Issued) {
    let _ = write!(
        html,
        "<section id=\"new-token-box\">\n<p>Your new token <strong>{}</strong>. Copy it now: \
         it is shown only this once.</p>\n<code id=\"new-token\">{}</code>\n\
         <button id=\"copy\" type=\"button\">Copy</button> \
         <span id=\"copy-status\" role=\"status\"></span>\n</section>\n",
        escape(&issued.record.name),
        // The one place the page writes a whole token: this answer, never cached.
        escape(issued.token.expose_secret())
    );
}

fn token_table(html: &mut String, tokens: &[ApiKeyRecord], csrf: &str) {
    html.push_str("<h2>Your tokens</h2>\n");
    if tokens.is_empty() {
        html.push_str("<p class=\"note\" id=\"no-tokens\">You have no tokens.</p>\n");
        return;
    }
    html.push_str(
        "<table id=\"tokens\">\n<thead><tr><th>Name</th><th>Scopes</th><th>Created</th>\
         <th>Expires</th><th>Last used</th><th></th></tr></thead>\n<tbody>\n",
    );
    for token in tokens {
        let id = escape(&token.id);
        let scopes: String = token
            .scopes
            .iter()
            .map(|s| format!("<span class=\"scope\">{}</span>", escape(s)))
            .collect();
        let _ = writeln!(
            html,
            "<tr data-token-id=\"{id}\"><td class=\"name\">{}</td><td>{scopes}</td>\
             <td>{}</td><td>{}</td><td>{}</td>\
             <td><form method=\"post\" action=\"{}\">\
             <input type=\"hidden\" name=\"id\" value=\"{id}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button class=\"revoke\" type=\"submit\">Revoke</button></form></td></tr>",
            escape(&token.name),
            time(Some(token.created_at), ""),
            time(token.expires_at, "never"),
            time(token.last_used_at, "never"),
            Base::Page.revoke_url(),
            escape(csrf),
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

fn create_form(
    html: &mut String,
    service: &SelfService,
    principal: &Principal,
    tokens: &[ApiKeyRecord],
    csrf: &str,
    name: &str,
) {
    html.push_str("<h2>New token</h2>\n");
    if let Err(problem) = service.check_minter(principal) {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(&problem.detail));
        return;
    }
    let choices = expiry_choices(service.lifetime_cap(principal), service.default_lifetime());
    // The last choice is the cap.
    let Some(&(cap, _)) = choices.last() else {
        html.push_str("<p class=\"note\">No lifetime is left to give a token.</p>\n");
        return;
    };
    if tokens.len() >= service.max_tokens_per_user() {
        let _ = writeln!(
            html,
            "<p class=\"note\">You hold the most tokens allowed ({}): revoke one to create \
             another.</p>",
            service.max_tokens_per_user()
        );
    }
    let _ = write!(
        html,
        "<form id=\"create-form\" method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <div><label for=\"name\">Name</label>\
         <input type=\"text\" id=\"name\" name=\"name\" required maxlength=\"{}\" \
         value=\"{}\" autocomplete=\"off\"></div>\n\
         <div><label for=\"expires_in\">Expires in</label>\
         <select id=\"expires_in\" name=\"expires_in\">",
        Base::Page.page_url(),
        escape(csrf),
        service.max_name_len(),
        escape(name),
    );
    for &(lifetime, selected) in &choices {
        let _ = write!(
            html,
            "<option value=\"{}\"{}>{}{}</option>",
            duration_value(lifetime),
            if selected { " selected" } else { "" },
            duration_label(lifetime),
            if lifetime == cap { " (maximum)" } else { "" },
        );
    }
    html.push_str("</select></div>\n");
    let scopes = service.allowed_scopes(principal);
    if !scopes.is_empty() {
        html.push_str("<fieldset><legend>Scopes</legend>");
        for scope in &scopes {
            let scope = escape(scope);
            let _ = write!(
                html,
                "<label><input type=\"checkbox\" name=\"scope\" value=\"{scope}\"> {scope}</label>"
            );
        }
        html.push_str("</fieldset>\n");
    }
    html.push_str("<button id=\"create-submit\" type=\"submit\">Create token</button>\n</form>\n");
}

/// The lifetimes the form offers, each with whether it is preselected: the usual choices under
/// `cap`, the default (capped), and `cap` itself, in whole minutes (a cap of less than a minute
/// offers nothing). The caller's cap shrinks as an API-key caller's own key ages, so it is
/// rounded down: a choice posted a little later still fits.
fn expiry_choices(cap: Duration, default: Duration) -> Vec<(Duration, bool)> {
    let cap = Duration::from_secs(cap.as_secs() / 60 * 60);
    if cap.is_zero() {
        return Vec::new();
    }
    let default = default.min(cap);
    let mut lifetimes: Vec<Duration> = EXPIRY_CHOICES
        .iter()
        .map(|&secs| Duration::from_secs(secs))
        .filter(|&d| d < cap)
        .chain([default, cap])
        .collect();
    lifetimes.sort_unstable();
    lifetimes.dedup();
    lifetimes.into_iter().map(|d| (d, d == default)).collect()
}

/// A lifetime as the duration syntax reads it (`30d`, `12h`, `90m`, `45s`).
fn duration_value(lifetime: Duration) -> String {
    let secs = lifetime.as_secs();
    match secs {
        _ if secs.is_multiple_of(DAY) => format!("{}d", secs / DAY),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// A lifetime for people: `7 days`, `1 year`, `5 hours`.
fn duration_label(lifetime: Duration) -> String {
    let secs = lifetime.as_secs();
    let (n, unit) = match secs {
        _ if secs.is_multiple_of(365 * DAY) => (secs / (365 * DAY), "year"),
        _ if secs.is_multiple_of(DAY) => (secs / DAY, "day"),
        _ if secs.is_multiple_of(3600) => (secs / 3600, "hour"),
        _ if secs.is_multiple_of(60) => (secs / 60, "minute"),
        _ => (secs, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A time as a `<time>` element, to the minute, in UTC; `none` when absent.
fn time(at: Option<DateTime<Utc>>, none: &str) -> String {
    match at {
        Some(at) => format!(
            "<time datetime=\"{}\">{}</time>",
            at.format("%Y-%m-%dT%H:%M:%SZ"),
            at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => none.to_owned(),
    }
}

fn html_response(status: StatusCode, html: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The page after a create holds a token; none of the pages is worth caching.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Text for HTML, in element content and in double- or single-quoted attributes alike.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// The base64 SHA-256 of `text`, as a CSP hash source names it.
fn sha256_base64(text: &str) -> String {
    STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// A form post's fields, decoded (`application/x-www-form-urlencoded`).
#[derive(Debug)]
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// The fields of `body`: 415 unless sent as `application/x-www-form-urlencoded`, 400 when
    /// not UTF-8 once decoded or with more than [`MAX_FIELDS`] fields. The body is already
    /// bounded ([`MAX_BODY_LEN`](super::MAX_BODY_LEN)).
    fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, Problem> {
        let mut types = headers.get_all(header::CONTENT_TYPE).iter();
        let is_form = types
            .next()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case(URLENCODED));
        if !is_form || types.next().is_some() {
            return Err(Problem::field(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type",
                "a form is posted as application/x-www-form-urlencoded",
            ));
        }
        let unreadable = || {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "the form is not UTF-8 once decoded",
            )
        };
        let body = std::str::from_utf8(body).map_err(|_| unreadable())?;
        let mut fields = Vec::new();
        for pair in body.split('&').filter(|pair| !pair.is_empty()) {
            if fields.len() == MAX_FIELDS {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("the form has more than {MAX_FIELDS} fields"),
                ));
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| -> Result<String, Problem> {
                let text = text.replace('+', " ");
                percent_encoding::percent_decode_str(&text)
                    .decode_utf8()
                    .map(Cow::into_owned)
                    .map_err(|_| unreadable())
            };
            fields.push((decode(name)?, decode(value)?));
        }
        Ok(Self { fields })
    }

    /// The one value of `name`, if given; 400 when it is given twice.
    fn single(&self, name: &'static str) -> Result<Option<&str>, Problem> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(Problem::field(
                StatusCode::BAD_REQUEST,
                name,
                format!("{name} is given more than once"),
            ));
        }
        Ok(first)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.fields
            .iter()
            .filter(move |(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// 400 naming the first field not in `known`.
    fn only(&self, known: &[&str]) -> Result<(), Problem> {
        match self
            .fields
            .iter()
            .find(|(f, _)| !known.contains(&f.as_str()))
        {
            None => Ok(()),
            Some((field, _)) => Err(Problem::field(
                StatusCode::BAD_REQUEST,
                Cow::Owned(field.chars().take(64).collect::<String>()),
                "unknown field",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(super::DAY);

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn expiry_choices_stop_at_the_cap() {
        let values = |cap, default| -> Vec<(String, bool)> {
            expiry_choices(cap, default)
                .into_iter()
                .map(|(d, selected)| (duration_value(d), selected))
                .collect()
        };
        let v = |s: &str, selected| (s.to_owned(), selected);
        assert_eq!(
            values(90 * DAY, 30 * DAY),
            [v("7d", false), v("30d", true), v("90d", false)]
        );
        assert_eq!(
            values(45 * DAY, 14 * DAY),
            [
                v("7d", false),
                v("14d", true),
                v("30d", false),
                v("45d", false)
            ]
        );
        assert_eq!(
            values(730 * DAY, 30 * DAY),
            [
                v("7d", false),
                v("30d", true),
                v("90d", false),
                v("365d", false),
                v("730d", false)
            ]
        );
        // An API-key caller whose key ends in 5 days, 3 hours and a few seconds.
        assert_eq!(
            values(5 * DAY + Duration::from_secs(3 * 3600 + 7), 30 * DAY),
            [v("123h", true)]
        );
        assert!(values(Duration::from_secs(59), DAY).is_empty());
    }

    #[test]
    fn durations_read_back_as_the_duration_syntax() {
        for secs in [60, 3600, 5400, 86_400, 7 * 86_400, 365 * 86_400, 61] {
            let lifetime = Duration::from_secs(secs);
            assert_eq!(
                crate::duration::parse_duration(&duration_value(lifetime)),
                Ok(lifetime)
            );
        }
        assert_eq!(duration_label(Duration::from_secs(365 * 86_400)), "1 year");
        assert_eq!(duration_label(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(duration_label(Duration::from_secs(3600)), "1 hour");
    }

    #[test]
    fn forms_decode_and_refuse_what_they_cannot() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        let form = Form::parse(
            &headers,
            &Bytes::from_static(b"name=my+laptop%21&scope=a&scope=b%3Ac&empty=&bare"),
        )
        .unwrap();
        assert_eq!(form.single("name").unwrap(), Some("my laptop!"));
        assert_eq!(form.all("scope").collect::<Vec<_>>(), ["a", "b:c"]);
        assert_eq!(form.single("empty").unwrap(), Some(""));
        assert_eq!(form.single("bare").unwrap(), Some(""));
        assert_eq!(form.single("missing").unwrap(), None);
        assert_eq!(
            form.single("scope").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            form.only(&["name", "scope", "empty"]).unwrap_err().errors[0].0,
            "bare"
        );

        let bad = Form::parse(&headers, &Bytes::from_static(b"name=%FF")).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let many = "a=1&".repeat(MAX_FIELDS + 1);
        let bad = Form::parse(&headers, &Bytes::from(many)).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let bad = Form::parse(&headers, &Bytes::from_static(b"name=x")).unwrap_err();
        assert_eq!(bad.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.remove(header::CONTENT_TYPE);
        let bad = Form::parse(&headers, &Bytes::from_static(b"name=x")).unwrap_err();
        assert_eq!(bad.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn the_policy_hashes_the_embedded_style_and_script() {
        let csp = CSP.to_str().unwrap();
        assert!(csp.contains(&format!("'sha256-{}'", sha256_base64(STYLE))));
        assert!(csp.contains(&format!("'sha256-{}'", sha256_base64(SCRIPT))));
    }
}
