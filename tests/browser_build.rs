//! A live app's build, as the runner reports it, in a real headless Chromium: an
//! app served by `axum_autoreload::serve` in this process, on a socket the test
//! holds, calls `AutoReload::building`, `report` and `clear` with tabs open. Every
//! tab shows the "building…" badge, then the report above its page, then neither,
//! and stays live all along: no navigation, the typed text still there. A tab
//! opened in each state shows it too (the shared worker replays it). Then the app
//! is swapped for the next one on the same socket, as the runner does when the fix
//! lands: the report goes with the swap, and the next app's page is morphed into
//! every tab, once, with no navigation.
//!
//! Needs chromium and chromedriver on PATH: without them the test is ignored (the
//! build script's cfg), except under CI (`CI=true`), where it fails.

#[path = "demo/support.rs"]
mod demo;

use std::net::TcpListener as StdListener;
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use axum_autoreload::AutoReload;
use demo::SwappedApp;
use dev_support::chromium::{read_tab_with, Browser, TabState};
use serde::Deserialize;
use serde_json::json;

/// Tabs open before the build starts; one more opens in each state.
const TABS: usize = 2;
/// Bound on what takes milliseconds when it works.
const WAIT: Duration = Duration::from_secs(10);
const TITLE: &str = "a live app";
const TYPED: &str = "typed before the build";
const REPORT: &str = "error[E0425]: cannot find value `e2e_undefined` in this scope";
const BUILDING_TEXT: &str = "building\u{2026}";

/// Reads a [`Tab`]: [`TabState`], the overlay's text (in its shadow root), the
/// text field's value, and whether the mark the test left on the page's window is
/// still there (gone after a navigation).
fn read() -> String {
    read_tab_with(
        r#"
        var overlay = document.getElementById("axum-autoreload-overlay");
        var field = document.getElementById("draft");
    "#,
        r#"
            overlay: overlay && overlay.shadowRoot ? overlay.shadowRoot.textContent : null,
            draft: field ? field.value : null,
            marked: window.e2eMark === true,
    "#,
    )
}

#[derive(Debug, Deserialize)]
struct Tab {
    #[serde(flatten)]
    tab: TabState,
    overlay: Option<String>,
    draft: Option<String>,
    marked: bool,
}

impl Tab {
    /// Loaded, on `TITLE`, in state `state`, with `badge` and the report shown
    /// or not.
    fn is(&self, state: &str, badge: Option<&str>, report: bool) -> bool {
        self.tab.ready_state == "complete"
            && self.tab.title == TITLE
            && self.tab.autoreload.as_deref() == Some(state)
            && self.tab.badge.as_deref() == badge
            && self
                .overlay
                .as_deref()
                .is_some_and(|text| text.contains(REPORT))
                == report
            && (report || self.overlay.is_none())
    }
}

/// The page: a title, a text field.
async fn page() -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{TITLE}</title>\
         </head><body><h1>{TITLE}</h1><input id=\"draft\" type=\"text\"></body></html>"
    ))
}

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn building_report_and_clear_reach_every_tab_and_the_page_stays_live() {
    demo::with_swapped_app(app, scenario).await;
}

/// The app: the page at `/`.
fn app(_: &AutoReload) -> Router {
    Router::new().route("/", get(page))
}

async fn scenario(browser: &mut Browser, url: &str, socket: &StdListener, app: SwappedApp) {
    browser.open_live(url, TABS, WAIT).await;
    for i in 0..TABS {
        let leave = "document.getElementById('draft').value = arguments[0]; window.e2eMark = true;";
        browser.exec(i, leave, vec![json!(TYPED)]).await;
    }
    let stayed = |tabs: &[Tab], when: &str| {
        for (i, tab) in tabs.iter().enumerate().take(TABS) {
            assert!(tab.marked, "tab {i} navigated {when}: {tab:?}");
            assert_eq!(tab.draft.as_deref(), Some(TYPED), "tab {i} {when}: {tab:?}");
            assert_eq!(tab.tab.reloads, None, "tab {i} reloaded {when}: {tab:?}");
        }
    };

    let heard = app.reload.building();
    assert_eq!(
        heard, 1,
        "one stream, the shared worker's, hears `building`"
    );
    let what = "every tab to show the building badge";
    let tabs = wait_all(browser, what, |tab| {
        tab.is("building", Some(BUILDING_TEXT), false)
    })
    .await;
    stayed(&tabs, "while building");
    browser.open_tabs(url, 1).await;
    let what = "the tab opened while building to show the badge";
    wait_all(browser, what, |tab| {
        tab.is("building", Some(BUILDING_TEXT), false)
    })
    .await;

    app.reload.report(&format!("<pre>{REPORT}</pre>"));
    let what = "every tab to show the report";
    let tabs = wait_all(browser, what, |tab| tab.is("failed", None, true)).await;
    stayed(&tabs, "with the report shown");
    browser.open_tabs(url, 1).await;
    let what = "the tab opened after the report to show it";
    wait_all(browser, what, |tab| tab.is("failed", None, true)).await;

    app.reload.clear();
    let what = "every tab to drop the report";
    let tabs = wait_all(browser, what, |tab| tab.is("live", None, false)).await;
    stayed(&tabs, "after clear");
    browser.open_tabs(url, 1).await;
    let what = "the tab opened after clear to show neither";
    wait_all(browser, what, |tab| tab.is("live", None, false)).await;

    // The build fails again, then the fix lands: the runner swaps the app, and the
    // report goes with the old one.
    app.reload.building();
    app.reload.report(&format!("<pre>{REPORT}</pre>"));
    wait_all(browser, "every tab to show the report again", |tab| {
        tab.is("failed", None, true)
    })
    .await;
    let old = app.reload.instance_id().to_string();
    let next = app.swap(socket, self::app).await;
    let new = next.reload.instance_id().to_string();
    let what = "every tab to be live on the next app, without the report";
    let tabs = wait_all(browser, what, |tab| {
        tab.is("live", None, false) && tab.tab.instance.as_deref() == Some(new.as_str())
    })
    .await;
    assert_ne!(old, new, "the next app has an instance id of its own");
    // The next app's page is morphed in: no navigation, the typed text kept.
    for (i, tab) in tabs.iter().enumerate().take(TABS) {
        assert!(tab.marked, "tab {i} navigated onto the next app: {tab:?}");
        assert_eq!(tab.draft.as_deref(), Some(TYPED), "tab {i}: {tab:?}");
        assert_eq!(
            tab.tab.reloads.as_deref(),
            Some("1"),
            "tab {i} updated once: {tab:?}"
        );
    }
}

/// [`Browser::wait_all_as`] with [`read`], at most [`WAIT`].
async fn wait_all(browser: &Browser, what: &str, done: impl Fn(&Tab) -> bool) -> Vec<Tab> {
    browser
        .wait_all_as(&read(), what, WAIT, |_, tab| done(tab))
        .await
}
