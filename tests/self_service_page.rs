//! The self-service page (`{prefix}/ui`, issue #21) over HTTP, behind the Gate: its headers, its
//! escaping, and every refusal of a form post (origin, form token, media type, the rules).
//! `tests/browser.rs` drives the same page in Chromium.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use portcullis::basic::encode_basic;
use portcullis::self_service::SelfService;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{ApiKeys, BasicAuthenticator, Gate, SecretString};
use reqwest::StatusCode;
use reqwest::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, ORIGIN,
    REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use sha2::{Digest as _, Sha256};

const PEPPER: &str = "self-service page test pepper, 32 bytes or more";
const DAY: Duration = Duration::from_secs(86_400);
const ORIGIN_URL: &str = "https://tokens.example.com";
const URLENCODED: &str = "application/x-www-form-urlencoded";
/// A scope with every character HTML gives a meaning to that a scope may hold.
const ODD_SCOPE: &str = "a<b>&'c";

/// The framework the app runs on.
enum Server {
    Axum,
    #[cfg(feature = "actix")]
    Actix,
}

/// `service` as an actix-web scope at `prefix` behind the Gate, with `/me`, on 127.0.0.1.
#[cfg(feature = "actix")]
fn serve_actix(prefix: &str, service: SelfService, gate: Gate) -> String {
    use actix_web::{HttpResponse, HttpServer, web};
    use portcullis::Principal;
    use portcullis::actix::GateMiddleware;

    async fn me(principal: Principal) -> HttpResponse {
        HttpResponse::Ok().json(principal)
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                actix_web::App::new()
                    .wrap(GateMiddleware::new(gate.clone()))
                    .service(service.actix_scope(&prefix))
                    .route("/me", web::get().to(me))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("actix listens")
            .run()
            .await
            .expect("actix serves");
        });
    });
    format!("http://{addr}")
}

/// The demo-like app: alice and bob (Basic), the token API and page at `prefix`, and `/me`.
struct App {
    base: String,
    prefix: String,
    client: reqwest::Client,
}

impl App {
    async fn start() -> App {
        Self::with("/tokens", None).await
    }

    async fn at(prefix: &str) -> App {
        Self::with(prefix, None).await
    }

    async fn with(prefix: &str, form_key: Option<&str>) -> App {
        Self::on(prefix, form_key, Server::Axum).await
    }

    async fn on(prefix: &str, form_key: Option<&str>, server: Server) -> App {
        let users = Arc::new(MemoryUserStore::new());
        let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), PEPPER.into())
            .max_lifetime(365 * DAY)
            .owners(users.clone())
            .build()
            .expect("keys");
        let mut service = SelfService::builder(keys.clone());
        if let Some(secret) = form_key {
            service = service.form_key(SecretString::new(secret));
        }
        let service = service
            .max_lifetime(90 * DAY)
            .max_tokens_per_user(3)
            .scope_allowlist(["reports:read", "reports:write", ODD_SCOPE])
            .public_origin(ORIGIN_URL)
            .build()
            .expect("self service");
        let basic: Arc<BasicAuthenticator> = Arc::new(
            common::basic_builder(Arc::clone(&users))
                .build()
                .expect("basic"),
        );
        for user in ["alice", "bob"] {
            basic
                .add_user(user, &format!("{user}-pw").into(), [] as [&str; 0])
                .await
                .expect("user");
        }
        let gate = Gate::builder()
            .shared_authenticator(basic)
            .authenticator(keys.authenticator())
            // `x-user` and `x-scheme` make a principal of any scheme (a JWT caller here).
            .authenticator(common::HeaderAuthenticator)
            .build()
            .expect("gate");
        let base = match server {
            Server::Axum => {
                common::serve_router(common::router().nest(prefix, service.router()), gate).await
            }
            #[cfg(feature = "actix")]
            Server::Actix => serve_actix(prefix, service, gate),
        };
        App {
            base,
            prefix: prefix.to_owned(),
            client: common::client(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.prefix)
    }

    async fn page(&self, user: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(self.url("/ui"))
            .header(AUTHORIZATION, basic(user))
            .send()
            .await
            .expect("GET page");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }

    /// A form token off `user`'s page.
    async fn csrf(&self, user: &str) -> String {
        let (status, _, html) = self.page(user).await;
        assert_eq!(status, StatusCode::OK);
        attribute_after(&html, "name=\"csrf\" value=\"")
    }

    /// Posts `fields` to `path` as `user`, as a same-origin form would.
    async fn post(&self, user: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_with(user, path, fields, &[("sec-fetch-site", "same-origin")])
            .await
    }

    async fn post_with(
        &self,
        user: &str,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(AUTHORIZATION, basic(user))
            .header(CONTENT_TYPE, URLENCODED)
            .body(urlencode(fields));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("POST")
    }

    /// Creates a token through the form; returns it and the page.
    async fn create(&self, user: &str, name: &str, extra: &[(&str, &str)]) -> (String, String) {
        let csrf = self.csrf(user).await;
        let mut fields = vec![("csrf", csrf.as_str()), ("name", name)];
        fields.extend_from_slice(extra);
        let response = self.post(user, "/ui", &fields).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let html = response.text().await.expect("body");
        let token = text_of(&html, "<code id=\"new-token\">", "</code>");
        (token, html)
    }

    /// `GET /me` with `token` as the API key.
    async fn me_with_key(&self, token: &str) -> StatusCode {
        self.client
            .get(format!("{}/me", self.base))
            .header("x-api-key", token)
            .send()
            .await
            .expect("GET /me")
            .status()
    }
}

fn basic(user: &str) -> String {
    encode_basic(user, &format!("{user}-pw"))
}

fn urlencode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The text between `start` and the next `end`.
fn text_of(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let to = html[from..].find(end).expect("end") + from;
    html[from..to].to_owned()
}

/// The attribute value that follows `marker` (which ends with its opening quote).
fn attribute_after(html: &str, marker: &str) -> String {
    text_of(html, marker, "\"")
}

/// The ids in the page's token rows.
fn row_ids(html: &str) -> Vec<String> {
    html.split("<tr data-token-id=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("quote")].to_owned())
        .collect()
}

fn csp_hash(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The policy that the page's own `<style>` and `<script>`, hashed here again, need.
fn expected_csp(html: &str) -> String {
    let style = text_of(html, "<style>", "</style>");
    let script = text_of(html, "<script>", "</script>");
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'",
        csp_hash(&script),
        csp_hash(&style)
    )
}

fn assert_page_headers(headers: &reqwest::header::HeaderMap) {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header(CONTENT_TYPE), Some("text/html; charset=utf-8"));
    assert_eq!(header(X_CONTENT_TYPE_OPTIONS), Some("nosniff"));
    assert_eq!(header(REFERRER_POLICY), Some("no-referrer"));
    assert_eq!(header(CACHE_CONTROL), Some("no-store"));
    assert!(headers.get(SET_COOKIE).is_none(), "no cookies");
}

/// The page after a create (which carries the script): the headers are exact, and the policy's
/// hashes are those of the style and the script the page embeds.
#[tokio::test]
async fn headers_are_exact_and_the_policy_hashes_the_embedded_style_and_script() {
    let app = App::start().await;
    let csrf = app.csrf("alice").await;
    let response = app
        .post("alice", "/ui", &[("csrf", &csrf), ("name", "laptop")])
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert_page_headers(&headers);
    assert_eq!(
        headers[CONTENT_SECURITY_POLICY].to_str().unwrap(),
        expected_csp(&html)
    );
    // One style, one script, nothing loaded from anywhere, no inline handlers.
    assert_eq!(html.matches("<style>").count(), 1);
    assert_eq!(html.matches("<script").count(), 1);
    for external in [
        "src=",
        "href=\"http",
        "<link",
        " style=",
        " onclick",
        "@import",
    ] {
        assert!(!html.contains(external), "{external} in the page");
    }

    // The plain page has the same policy and headers.
    let (status, plain_headers, plain) = app.page("alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_page_headers(&plain_headers);
    assert_eq!(
        plain_headers[CONTENT_SECURITY_POLICY],
        headers[CONTENT_SECURITY_POLICY]
    );
    assert!(
        !plain.contains("<script"),
        "the script only with a new token"
    );
}

#[tokio::test]
async fn a_token_made_with_the_form_is_shown_once_works_and_is_revoked_with_its_button() {
    form_flow(App::start().await).await;
}

/// The same flow through the actix-web scope: the page, its form post and its redirect.
#[cfg(feature = "actix")]
#[tokio::test]
async fn through_actix_the_page_creates_shows_once_and_revokes() {
    let app = App::on("/tokens", None, Server::Actix).await;
    let (_, headers, _) = app.page("alice").await;
    assert_page_headers(&headers);
    let response = app
        .post_with(
            "alice",
            "/ui",
            &[("name", "x")],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    form_flow(app).await;
}

/// Creates a token with the form, sees it shown once and working, revokes it with its row's
/// button and sees it refused.
async fn form_flow(app: App) {
    let (token, html) = app
        .create(
            "alice",
            "ci runner",
            &[("expires_in", "7d"), ("scope", "reports:read")],
        )
        .await;
    assert!(html.contains("id=\"copy\""), "copy button");
    assert!(html.contains("<span id=\"copy-status\""));
    assert_eq!(app.me_with_key(&token).await, StatusCode::OK);

    let (_, _, html) = app.page("alice").await;
    assert!(!html.contains(&token), "the token is shown once");
    assert!(!html.contains("id=\"new-token\""));
    let ids = row_ids(&html);
    assert_eq!(ids.len(), 1);
    assert!(html.contains("<td class=\"name\">ci runner</td>"));
    assert!(html.contains("<span class=\"scope\">reports:read</span>"));
    // The revoke form of the row: POST ui/revoke with its id and a form token.
    let row = text_of(
        &html,
        &format!("<tr data-token-id=\"{}\">", ids[0]),
        "</tr>",
    );
    assert!(row.contains("<form method=\"post\" action=\"ui/revoke\">"));
    assert!(row.contains(&format!("name=\"id\" value=\"{}\"", ids[0])));
    assert!(row.contains("<button class=\"revoke\" type=\"submit\">"));
    // Bob sees none of it.
    let (_, _, bobs) = app.page("bob").await;
    assert!(row_ids(&bobs).is_empty());

    let csrf = attribute_after(&row, "name=\"csrf\" value=\"");
    let response = app
        .post("alice", "/ui/revoke", &[("id", &ids[0]), ("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "../ui");
    assert_eq!(app.me_with_key(&token).await, StatusCode::UNAUTHORIZED);
    let (_, _, html) = app.page("alice").await;
    assert!(row_ids(&html).is_empty());
}

/// Relative URLs: at any prefix, the form actions and the redirect resolve back under it.
#[tokio::test]
async fn urls_are_relative_and_resolve_under_any_prefix() {
    let app = App::at("/deep/er/tokens").await;
    let page_url = url::Url::parse(&app.url("/ui")).unwrap();
    let (_, _, html) = app.page("alice").await;
    let action = attribute_after(&html, "<form id=\"create-form\" method=\"post\" action=\"");
    assert_eq!(page_url.join(&action).unwrap(), page_url);
    let (_, _) = app.create("alice", "one", &[]).await;
    let (_, _, html) = app.page("alice").await;
    let revoke = attribute_after(&html, "<form method=\"post\" action=\"");
    let revoke_url = page_url.join(&revoke).unwrap();
    assert_eq!(revoke_url.path(), "/deep/er/tokens/ui/revoke");
    let id = row_ids(&html).remove(0);
    let csrf = app.csrf("alice").await;
    let response = app
        .post("alice", "/ui/revoke", &[("id", &id), ("csrf", &csrf)])
        .await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(revoke_url.join(&location).unwrap(), page_url);
}

#[tokio::test]
async fn names_and_scopes_are_escaped() {
    let app = App::start().await;
    let name = r#"<script>alert("x")</script> & 'quoted'"#;
    let (_, html) = app.create("alice", name, &[("scope", ODD_SCOPE)]).await;
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;";
    assert!(html.contains(&format!("<td class=\"name\">{escaped}</td>")));
    assert!(html.contains("<span class=\"scope\">a&lt;b&gt;&amp;&#39;c</span>"));
    assert!(html.contains("value=\"a&lt;b&gt;&amp;&#39;c\""), "checkbox");
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains(ODD_SCOPE));

    // A refused name comes back into the form escaped too.
    let csrf = app.csrf("alice").await;
    let long = format!("\"><script>x</script>{}", "n".repeat(100));
    let response = app
        .post("alice", "/ui", &[("csrf", &csrf), ("name", &long)])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;nnn"));
    assert!(html.contains("<p id=\"error\" role=\"alert\">name: "));
    assert_eq!(html.matches("<script").count(), 0);
}

/// Every way a post can lack a good form token: refused with 403 and nothing created.
#[tokio::test]
async fn posts_without_a_valid_form_token_for_the_caller_are_refused() {
    let app = App::start().await;
    let bobs = app.csrf("bob").await;
    let alices = app.csrf("alice").await;
    let mut tampered = alices.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (case, csrf) in [
        ("missing", None),
        ("empty", Some("")),
        ("garbage", Some("not-a-token")),
        ("tampered", Some(tampered.as_str())),
        ("another user's", Some(bobs.as_str())),
        ("truncated", Some(&alices[..20])),
    ] {
        let mut fields = vec![("name", "x")];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let response = app.post("alice", "/ui", &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_page_headers(response.headers());
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<p id=\"error\" role=\"alert\">csrf: "),
            "{case}: {html}"
        );
        assert!(
            !html.contains("id=\"create-form\""),
            "{case}: a refusal, not the page"
        );
    }
    // A token issued by another process (another random key) is another key's.
    let other = App::start().await;
    let foreign = other.csrf("alice").await;
    let response = app
        .post("alice", "/ui", &[("csrf", &foreign), ("name", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let response = app
        .post("alice", "/ui/revoke", &[("id", "abc"), ("csrf", &bobs)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, _, html) = app.page("alice").await;
    assert!(row_ids(&html).is_empty(), "nothing created");
}

/// The origin check of the API holds for the forms too, even with a good form token.
#[tokio::test]
async fn cross_site_posts_are_refused_even_with_a_form_token() {
    let app = App::start().await;
    for (case, headers) in [
        ("same-site", vec![("sec-fetch-site", "same-site")]),
        ("cross-site", vec![("sec-fetch-site", "cross-site")]),
        ("none", vec![("sec-fetch-site", "none")]),
        ("Origin: null", vec![("origin", "null")]),
        ("another Origin", vec![("origin", "https://evil.example")]),
    ] {
        let csrf = app.csrf("alice").await;
        let response = app
            .post_with("alice", "/ui", &[("csrf", &csrf), ("name", "x")], &headers)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<p id=\"error\""), "{case}");
        assert!(!html.contains("id=\"new-token\""), "{case}");
    }
    // The public origin without Fetch Metadata (an older browser) passes.
    let csrf = app.csrf("alice").await;
    let response = app
        .post_with(
            "alice",
            "/ui",
            &[("csrf", &csrf), ("name", "x")],
            &[(ORIGIN.as_str(), ORIGIN_URL)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_cross_site_text_plain_body_is_refused() {
    let app = App::start().await;
    let csrf = app.csrf("alice").await;
    let response = app
        .client
        .post(app.url("/ui"))
        .header(AUTHORIZATION, basic("alice"))
        .header(CONTENT_TYPE, "text/plain")
        .body(format!("csrf={csrf}&name=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let html = response.text().await.unwrap();
    assert!(html.contains("Content-Type: "));
}

/// The select offers 7, 30 and 90 days (the cap); a longer choice posted by hand is refused.
#[tokio::test]
async fn expiry_choices_stop_at_the_cap_and_more_is_refused() {
    let app = App::start().await;
    let (_, _, html) = app.page("alice").await;
    let select = text_of(
        &html,
        "<select id=\"expires_in\" name=\"expires_in\">",
        "</select>",
    );
    let values: Vec<String> = select
        .split("<option value=\"")
        .skip(1)
        .map(|o| o[..o.find('"').unwrap()].to_owned())
        .collect();
    assert_eq!(values, ["7d", "30d", "90d"]);
    assert!(select.contains("<option value=\"30d\" selected>30 days</option>"));
    assert!(select.contains(">90 days (maximum)</option>"));

    for over in ["91d", "365d", "13w"] {
        let csrf = app.csrf("alice").await;
        let response = app
            .post(
                "alice",
                "/ui",
                &[("csrf", &csrf), ("name", over), ("expires_in", over)],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{over}"
        );
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<p id=\"error\" role=\"alert\">expires_in: "),
            "{html}"
        );
        assert!(!html.contains("id=\"new-token\""));
    }
    let csrf = app.csrf("alice").await;
    let response = app
        .post(
            "alice",
            "/ui",
            &[("csrf", &csrf), ("name", "x"), ("expires_in", "soon")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, _, html) = app.page("alice").await;
    assert!(row_ids(&html).is_empty(), "nothing created");
}

#[tokio::test]
async fn scope_escalation_unknown_fields_and_repeats_are_refused() {
    let app = App::start().await;
    for (case, extra, status) in [
        ("scope outside the allowlist", vec![("scope", "admin")], 422),
        ("unknown field", vec![("owner", "bob")], 400),
        ("repeated name", vec![("name", "again")], 400),
    ] {
        let csrf = app.csrf("alice").await;
        let mut fields = vec![("csrf", csrf.as_str()), ("name", "x")];
        fields.extend(extra);
        let response = app.post("alice", "/ui", &fields).await;
        assert_eq!(response.status().as_u16(), status, "{case}");
        assert!(response.text().await.unwrap().contains("<p id=\"error\""));
    }
    let (_, _, html) = app.page("alice").await;
    assert!(row_ids(&html).is_empty(), "nothing created");
}

/// Another user's id, an unknown one and a malformed one answer alike, and revoke nothing.
#[tokio::test]
async fn revoking_another_users_token_is_not_found() {
    let app = App::start().await;
    let (bobs_token, _) = app.create("bob", "bob's", &[]).await;
    let (_, _, html) = app.page("bob").await;
    let bobs_id = row_ids(&html).remove(0);
    for id in [bobs_id.as_str(), "unknownid", "../../x"] {
        let csrf = app.csrf("alice").await;
        let response = app
            .post("alice", "/ui/revoke", &[("id", id), ("csrf", &csrf)])
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<p id=\"error\" role=\"alert\">no such token</p>"));
        assert!(
            html.contains("<a href=\"../ui\">"),
            "back link relative to ui/revoke"
        );
    }
    assert_eq!(app.me_with_key(&bobs_token).await, StatusCode::OK);
}

/// A caller authenticated by an API key sees its owner's tokens but no create form, and a
/// create posted by hand is refused (allow_key_principals is off).
#[tokio::test]
async fn a_token_principal_cannot_create_through_the_page() {
    let app = App::start().await;
    let (token, _) = app.create("alice", "laptop", &[]).await;
    let response = app
        .client
        .get(app.url("/ui"))
        .header("x-api-key", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert_eq!(row_ids(&html).len(), 1);
    assert!(!html.contains("id=\"create-form\""));
    let csrf = attribute_after(&html, "name=\"csrf\" value=\"");
    let response = app
        .client
        .post(app.url("/ui"))
        .header("x-api-key", &token)
        .header(CONTENT_TYPE, URLENCODED)
        .body(urlencode(&[("csrf", &csrf), ("name", "more")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("<p id=\"error\""));
}

#[tokio::test]
async fn other_methods_and_paths_are_refused() {
    let app = App::start().await;
    let response = app
        .client
        .put(app.url("/ui"))
        .header(AUTHORIZATION, basic("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD, POST");
    let response = app
        .client
        .get(app.url("/ui/revoke"))
        .header(AUTHORIZATION, basic("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let response = app
        .client
        .get(app.url("/ui/other"))
        .header(AUTHORIZATION, basic("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<a href=\"../ui\">")
    );
    // Anonymous: the Gate's 401 with the Basic challenge, so a browser asks.
    let response = app.client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenges = common::challenges(response.headers());
    assert!(
        challenges.iter().any(|c| c == common::BASIC_CHALLENGE),
        "{challenges:?}"
    );
}

/// A form key shared by two instances: a page served by one posts to the other (and with
/// random keys it does not); a short secret is a configuration error, and `Debug` hides it.
#[tokio::test]
async fn a_shared_form_key_works_across_instances() {
    const SHARED: &str = "a form key every instance shares, 32 bytes or more";
    let one = App::with("/tokens", Some(SHARED)).await;
    let two = App::with("/tokens", Some(SHARED)).await;
    let csrf = one.csrf("alice").await;
    let response = two
        .post("alice", "/ui", &[("csrf", &csrf), ("name", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let users = Arc::new(MemoryUserStore::new());
    let keys = ApiKeys::builder(Arc::new(MemoryApiKeyStore::new()), PEPPER.into())
        .owners(users)
        .build()
        .unwrap();
    let short = SelfService::builder(keys.clone())
        .form_key(SecretString::new("too short"))
        .build()
        .unwrap_err();
    assert!(short.to_string().contains("form_key"), "{short}");
    let debug = format!(
        "{:?}",
        SelfService::builder(keys).form_key(SecretString::new(SHARED))
    );
    assert!(!debug.contains("form key every"), "{debug}");
}

/// `[self_service] form_key_file`: two instances configured with the same file accept each
/// other's forms; a short or missing file is an error naming the key.
#[tokio::test]
async fn form_key_file_is_shared_by_instances_configured_alike() {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-form-key-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pepper.txt"), PEPPER).unwrap();
    std::fs::write(
        dir.join("form.key"),
        "a form key every instance shares, 32+ bytes\n",
    )
    .unwrap();
    std::fs::write(dir.join("short.key"), "short\n").unwrap();
    let config = |key_file: &str| {
        let path = dir.join(format!("{key_file}.toml"));
        std::fs::write(
            &path,
            format!(
                "[store]\nurl = \"memory\"\n\n[api_keys]\npepper_file = \"pepper.txt\"\n\n\
                 [basic]\nrealm = \"t\"\n\n[basic.hashing]\nmemory_kib = 64\niterations = 1\ndangerous_weak_hashing = true\n\n\
                 [self_service]\nform_key_file = \"{key_file}\"\n"
            ),
        )
        .unwrap();
        portcullis::config::Config::from_file(path).expect("valid configuration")
    };
    let serve = |services: portcullis::config::Services| async move {
        let basic = services.basic.expect("[basic]");
        basic
            .add_user("alice", &"alice-pw".into(), [] as [&str; 0])
            .await
            .unwrap();
        let tokens = services.self_service.expect("[self_service]");
        let router = common::router().nest("/tokens", tokens.router());
        App {
            base: common::serve_router(router, services.gate).await,
            prefix: "/tokens".to_owned(),
            client: common::client(),
        }
    };
    let one = serve(config("form.key").build_services().await.unwrap()).await;
    let two = serve(config("form.key").build_services().await.unwrap()).await;
    let csrf = one.csrf("alice").await;
    let response = two
        .post("alice", "/ui", &[("csrf", &csrf), ("name", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    for file in ["short.key", "missing.key"] {
        let Err(err) = config(file).build_services().await else {
            panic!("{file} accepted");
        };
        assert_eq!(err.key(), Some("self_service.form_key_file"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JWT caller named like a local user sees no page and creates nothing, even with that
/// user's form token: a JWT's `sub` names a user of another system.
#[tokio::test]
async fn a_jwt_principal_is_refused_by_the_page() {
    let app = App::start().await;
    let jwt = |request: reqwest::RequestBuilder| {
        request.header("x-user", "alice").header("x-scheme", "jwt")
    };
    let response = jwt(app.client.get(app.url("/ui"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_page_headers(response.headers());
    let html = response.text().await.unwrap();
    assert!(html.contains("<p id=\"error\" role=\"alert\">"), "{html}");
    assert!(html.contains("`jwt`"), "{html}");
    assert!(!html.contains("id=\"create-form\""));

    let csrf = app.csrf("alice").await;
    let response = jwt(app.client.post(app.url("/ui")))
        .header(CONTENT_TYPE, URLENCODED)
        .header("sec-fetch-site", "same-origin")
        .body(urlencode(&[("csrf", &csrf), ("name", "x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, _, html) = app.page("alice").await;
    assert!(row_ids(&html).is_empty(), "nothing created");
}
