//! The self-service page in a real browser: headless Chromium driven over WebDriver
//! (`tests/common/browser.rs`). Without chromedriver these tests print `SKIPPED` and pass, unless
//! `PORTCULLIS_REQUIRE_SERVICES=1` (CI, whose `.ci/run` installs Debian's `chromium` and
//! `chromium-driver`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use common::browser::{Browser, WAIT_TIMEOUT};
use fantoccini::Locator;
use portcullis::self_service::SelfService;
use portcullis::store::{MemoryApiKeyStore, MemoryUserStore};
use portcullis::{ApiKeys, Gate, Principal};
use reqwest::StatusCode;
use serde_json::json;

/// What the page tests rely on: headless Chromium sends the credentials of a
/// `http://user:password@host/` URL as Basic, after the 401 challenge, both for the page and for
/// the forms the page posts (the browser keeps them for the origin). So the tests open the page
/// with credentials in the URL and need no DevTools header.
#[tokio::test]
async fn url_credentials_reach_the_page_and_its_form_posts() {
    let Some(browser) = Browser::start("credentials").await else {
        return;
    };
    let store = Arc::new(MemoryUserStore::new());
    let basic = Arc::new(
        common::basic_builder(Arc::clone(&store))
            .build()
            .expect("basic"),
    );
    basic
        .add_user("demo", &"pw-123".into(), [] as [&str; 0])
        .await
        .expect("user added");
    let router = Router::new()
        .route(
            "/form",
            get(|principal: Principal| async move {
                Html(format!(
                    r#"<p id="who">{}</p><form method="post" action="posted"><input name="x" value="1"><button id="go">Go</button></form>"#,
                    principal.subject()
                ))
            }),
        )
        .route(
            "/posted",
            post(|principal: Principal| async move {
                Html(format!(r#"<p id="posted">{}</p>"#, principal.subject()))
            }),
        );
    let base = common::serve_router(router, common::gate_with(basic)).await;
    let authority = base.trim_start_matches("http://");

    let client = &browser.client;
    client
        .goto(&format!("http://demo:pw-123@{authority}/form"))
        .await
        .expect("page opens");
    let who = client
        .wait()
        .at_most(WAIT_TIMEOUT)
        .for_element(Locator::Id("who"))
        .await
        .expect("the page, not a 401")
        .text()
        .await
        .expect("text");
    assert_eq!(who, "demo");

    client
        .find(Locator::Id("go"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let posted = client
        .wait()
        .at_most(WAIT_TIMEOUT)
        .for_element(Locator::Id("posted"))
        .await
        .expect("the form's answer, not a 401")
        .text()
        .await
        .expect("text");
    assert_eq!(posted, "demo");
}

/// Issue #21's browser test: open the page with the demo user's credentials in the URL, create
/// tokens with the form, read the new one off the page, call the API with it (200), copy it
/// with the copy button under the CSP, revoke it with its row's button, and see the API refuse
/// it (401). `PORTCULLIS_SCREENSHOT=docs/self-service.png` saves the page as the docs show it.
#[tokio::test]
async fn a_user_creates_copies_and_revokes_a_token_in_the_page() {
    let Some(browser) = Browser::start("self-service").await else {
        return;
    };
    let app = DemoApp::start().await;
    let client = &browser.client;
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(WAIT_TIMEOUT),
            Some(WAIT_TIMEOUT),
            Some(Duration::ZERO),
        ))
        .await
        .expect("timeouts");
    let page = format!("http://demo:{DEMO_PASSWORD}@{}/tokens/ui", app.authority);
    client.goto(&page).await.expect("page opens");
    wait_for(client, "#create-form").await;
    // The inline style applies: its hash is in the policy.
    let submit = client
        .find(Locator::Css("#create-submit"))
        .await
        .expect("create button");
    let background = submit.css_value("background-color").await.expect("css");
    assert!(
        ["rgb(31, 111, 235)", "rgba(31, 111, 235, 1)"].contains(&background.as_str()),
        "the page's style applies: {background}"
    );

    // Two tokens, the second the one this test follows.
    create(&browser, "laptop", "30d", &["reports:read"]).await;
    let token = create(
        &browser,
        "ci runner",
        "7d",
        &["reports:read", "reports:write"],
    )
    .await;
    assert_eq!(app.me_with_key(&token).await, StatusCode::OK);

    copy_under_the_csp(&browser, &app, &token).await;

    if let Some(path) = std::env::var_os("PORTCULLIS_SCREENSHOT") {
        // The token in the picture is this run's, revoked below and in a memory store.
        // Tall enough for the new token, the list and the create form.
        client
            .set_window_size(1000, 1040)
            .await
            .expect("window size");
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).expect("screenshot written");
    }

    // Revoke it with its row's button: 303 back to the page, which lists one token.
    revoke(&browser, "ci runner").await;
    assert_eq!(
        client.current_url().await.expect("url").path(),
        "/tokens/ui"
    );
    assert!(text(client, "#new-token").await.is_none(), "shown once");
    let rows = client
        .find_all(Locator::Css("tr[data-token-id]"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "the laptop token is left");
    assert_eq!(app.me_with_key(&token).await, StatusCode::UNAUTHORIZED);
}

/// Clicks `#copy` with clipboard access granted to the page's origin: the hashed inline script
/// runs (it alone sets `#copy-status`), the clipboard then holds `token`, and Chromium logged no
/// Content-Security-Policy violation.
async fn copy_under_the_csp(browser: &Browser, app: &DemoApp, token: &str) {
    let client = &browser.client;
    browser
        .cdp(
            "Browser.grantPermissions",
            json!({
                "origin": format!("http://{}", app.authority),
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            }),
        )
        .await;
    client
        .find(Locator::Id("copy"))
        .await
        .expect("copy button")
        .click()
        .await
        .expect("click copy");
    browser
        .wait_until("#copy-status to say Copied", || async {
            text(client, "#copy-status").await.as_deref() == Some("Copied")
        })
        .await;
    let copied = client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             navigator.clipboard.readText().then(done, (e) => done('error: ' + e));",
            vec![],
        )
        .await
        .expect("clipboard read");
    assert_eq!(
        copied.as_str(),
        Some(token),
        "the clipboard holds the token"
    );
    let violations: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Content-Security-Policy"))
        .collect();
    assert!(violations.is_empty(), "CSP violations: {violations:?}");
}

/// Clicks the revoke button in the row of the token named `name`, and waits for the page the
/// 303 leads back to, without that row.
async fn revoke(browser: &Browser, name: &str) {
    let client = &browser.client;
    let row = client
        .find(Locator::XPath(&format!(
            "//tr[td[@class='name' and text()='{name}']]"
        )))
        .await
        .expect("the new token's row");
    let id = row
        .attr("data-token-id")
        .await
        .expect("attribute")
        .expect("a token id");
    row.find(Locator::Css("button.revoke"))
        .await
        .expect("revoke button")
        .click()
        .await
        .expect("click revoke");
    let row_selector = format!("tr[data-token-id='{id}']");
    browser
        .wait_until("the revoked token's row to go", || async {
            client
                .find_all(Locator::Css(&row_selector))
                .await
                .is_ok_and(|rows| rows.is_empty())
                && client.find(Locator::Id("create-form")).await.is_ok()
        })
        .await;
}

const DEMO_PASSWORD: &str = "demo-password";

/// The demo's shape in-process: the Gate with a Basic user `demo` and API keys, the token API
/// and page at `/tokens`, and `/me`.
struct DemoApp {
    /// `127.0.0.1:PORT`.
    authority: String,
    client: reqwest::Client,
}

impl DemoApp {
    async fn start() -> DemoApp {
        let users = Arc::new(MemoryUserStore::new());
        let keys = ApiKeys::builder(
            Arc::new(MemoryApiKeyStore::new()),
            "browser test pepper, at least 32 bytes long".into(),
        )
        .max_lifetime(Duration::from_secs(365 * 86_400))
        .owners(users.clone())
        .build()
        .expect("keys");
        let service = SelfService::builder(keys.clone())
            .max_lifetime(Duration::from_secs(90 * 86_400))
            .scope_allowlist(["reports:read", "reports:write"])
            .build()
            .expect("self service");
        let basic = Arc::new(common::basic_builder(users).build().expect("basic"));
        basic
            .add_user("demo", &DEMO_PASSWORD.into(), [] as [&str; 0])
            .await
            .expect("user added");
        let gate = Gate::builder()
            .shared_authenticator(basic)
            .authenticator(keys.authenticator())
            .build()
            .expect("gate");
        let router = common::router().nest("/tokens", service.router());
        let base = common::serve_router(router, gate).await;
        DemoApp {
            authority: base.trim_start_matches("http://").to_owned(),
            client: common::client(),
        }
    }

    /// `GET /me` with `token` as the API key.
    async fn me_with_key(&self, token: &str) -> StatusCode {
        self.client
            .get(format!("http://{}/me", self.authority))
            .header("x-api-key", token)
            .send()
            .await
            .expect("GET /me")
            .status()
    }
}

/// Fills and submits the create form; returns the token the page then shows.
async fn create(browser: &Browser, name: &str, expires_in: &str, scopes: &[&str]) -> String {
    let client = &browser.client;
    let form = wait_for(client, "#create-form").await;
    form.find(Locator::Css("input[name='name']"))
        .await
        .expect("name field")
        .send_keys(name)
        .await
        .expect("type name");
    form.find(Locator::Css("select[name='expires_in']"))
        .await
        .expect("expiry")
        .select_by_value(expires_in)
        .await
        .expect("choose expiry");
    for scope in scopes {
        form.find(Locator::Css(&format!(
            "input[name='scope'][value='{scope}']"
        )))
        .await
        .expect("scope box")
        .click()
        .await
        .expect("tick scope");
    }
    client
        .find(Locator::Id("create-submit"))
        .await
        .expect("create button")
        .click()
        .await
        .expect("submit");
    // The page before may show another new token: wait for this one's name, or a refusal.
    browser
        .wait_until(&format!("the page showing token {name:?}"), || async {
            text(client, "#new-token-box strong").await.as_deref() == Some(name)
                || text(client, "#error").await.is_some()
        })
        .await;
    let error = text(client, "#error").await;
    assert!(error.is_none(), "refused: {error:?}");
    text(client, "#new-token").await.expect("the new token")
}

/// The element `css` selects, waited for.
async fn wait_for(client: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT_TIMEOUT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// The text of the element `css` selects, if there is one.
async fn text(client: &fantoccini::Client, css: &str) -> Option<String> {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.ok(),
        Err(_) => None,
    }
}
