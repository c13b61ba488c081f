//! The self-service page in a real browser: headless Chromium driven over WebDriver
//! (`tests/common/browser.rs`). Without chromedriver these tests print `SKIPPED` and pass, unless
//! `PORTCULLIS_REQUIRE_SERVICES=1` (CI, whose `.ci/run` installs Debian's `chromium` and
//! `chromium-driver`).

mod common;

use std::sync::Arc;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use common::browser::{Browser, WAIT_TIMEOUT};
use fantoccini::Locator;
use portcullis::Principal;
use portcullis::store::MemoryUserStore;

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
