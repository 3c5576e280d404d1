//! Template edits without a rebuild, in a real headless Chromium: the app of
//! `examples/templates.rs` (minijinja, minijinja-autoreload and
//! `axum_autoreload::watch_templates`) served in this process from a copy of
//! `demo/templates/`, two tabs open. An edit of `index.html` reaches every tab with
//! no restart (the same server) and no navigation (the typed text stays). Prints
//! the time from the write to each tab showing the new title, on the tab's clock.
//!
//! Needs chromium and chromedriver on PATH: without them the test is ignored (the
//! build script's cfg), except under CI (`CI=true`), where it fails.

#[path = "../../tests/demo/support.rs"]
mod demo;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/templates.rs"]
mod templates;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum_autoreload::AutoReload;
use dev_support::chromium::{read_tab_with, summary_ms, Browser, Options, TabState};
use serde::Deserialize;
use serde_json::json;

const TABS: usize = 2;
const WAIT: Duration = Duration::from_secs(10);
const TYPED: &str = "typed before the edit";
const NEW_TITLE: &str = "Templates, edited";

/// Reads a [`Tab`]: [`TabState`], the mark the test left (gone after a
/// navigation), the text field's value and when the title changed.
fn read() -> String {
    read_tab_with(
        r#"
        var field = document.getElementById("draft");
    "#,
        r#"
            marked: window.e2eMark === true,
            draft: field ? field.value : null,
            titleChangedAt: window.e2eTitleChangedAt || null,
    "#,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tab {
    #[serde(flatten)]
    tab: TabState,
    marked: bool,
    draft: Option<String>,
    title_changed_at: Option<f64>,
}

/// Types into the field, leaves the mark, and notes (ms since the epoch) when
/// the title first changes.
const PREPARE: &str = r#"
    document.getElementById("draft").value = arguments[0];
    window.e2eMark = true;
    var title = document.title;
    new MutationObserver(function () {
        if (!window.e2eTitleChangedAt && document.title !== title) {
            window.e2eTitleChangedAt = performance.timeOrigin + performance.now();
        }
    }).observe(document.head, { childList: true, subtree: true, characterData: true });
"#;

#[cfg_attr(missing_chromium, ignore = "needs chromium and chromedriver on PATH")]
#[tokio::test]
async fn a_template_edit_reaches_every_tab_without_a_restart() {
    let options = Options {
        unthrottled_background_tabs: true,
        ..Options::default()
    };
    let browser = Browser::launch(options).await;
    let dir = dev_support::temp::temp_dir("axum-autoreload-templates-");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/index.html");
    let index = dir.path().join("index.html");
    std::fs::copy(source, &index).expect("copying index.html");
    let reload = AutoReload::builder().enabled(true).build();
    let app = templates::app(dir.path(), &reload).expect("watching the templates");
    let addr = demo::serve_here(app, reload.clone()).await;
    let url = format!("http://{addr}/");
    browser
        .run(async |browser| {
            let tabs = browser.open_live(&url, TABS, WAIT).await;
            let old_title = tabs[0].title.clone();
            for i in 0..TABS {
                browser.exec(i, PREPARE, vec![json!(TYPED)]).await;
            }
            let page = std::fs::read_to_string(&index).expect("reading index.html");
            let title = |t: &str| format!("<title>{t}</title>");
            let edited = page.replacen(&title(&old_title), &title(NEW_TITLE), 1);
            assert_ne!(edited, page, "index.html has the title {old_title:?}");
            let written = epoch_ms();
            std::fs::write(&index, edited).expect("editing index.html");
            let tabs: Vec<Tab> = browser
                .wait_all_as(
                    &read(),
                    "every tab to show the edit",
                    WAIT,
                    |_, tab: &Tab| tab.tab.is_live() && tab.tab.title == NEW_TITLE,
                )
                .await;
            let instance = reload.instance_id().as_str();
            for (i, tab) in tabs.iter().enumerate() {
                assert_eq!(
                    tab.tab.instance.as_deref(),
                    Some(instance),
                    "tab {i}: the same server, no restart: {tab:?}"
                );
                assert!(tab.marked, "tab {i} navigated: {tab:?}");
                assert_eq!(tab.draft.as_deref(), Some(TYPED), "tab {i}: {tab:?}");
                assert_eq!(tab.tab.reloads.as_deref(), Some("1"), "tab {i}: {tab:?}");
            }
            let took: Vec<f64> = tabs
                .iter()
                .filter_map(|tab| tab.title_changed_at)
                .map(|at| at - written)
                .collect();
            assert_eq!(took.len(), TABS, "every tab noted the change: {tabs:?}");
            eprintln!(
                "template write to the tab showing it: {}",
                summary_ms(&took)
            );
        })
        .await;
}

fn epoch_ms() -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
