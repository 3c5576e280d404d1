//! The runner end to end, as the README runs it (watchexec `--signal SIGHUP`, one
//! runner for the whole loop), with a headless Chromium on a scratch copy of the
//! workspace: an edit that does not compile shows rustc's error in every open tab
//! above the live page, while the last good app keeps serving (its API stores a
//! post; a tab opened meanwhile gets the page and the error), the fix brings every
//! tab to the new page (a feed tab keeps its half-typed message, its focus and its
//! selection: the new page is morphed in, not loaded), a burst of two saves updates every tab once onto the last,
//! and a panic in `main` shows its message and location.
//!
//! Needs chromium, chromedriver and watchexec on PATH: without them the test is
//! ignored (the build script's cfg), except under CI (`CI=true`), where it fails.
//! The runner is built from the copy ([`WatchedCopy`]). `cargo test -p
//! axum-autoreload-demo --test browser_runner -- --nocapture` prints the timings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dev_support::chromium::{read_tab_with, Browser, Options, TabState};
use dev_support::http;
use dev_support::scratch::{edit, Watch, WatchedCopy};
use serde::Deserialize;
use serde_json::json;

/// How long an edit may take to reach every tab: cargo rebuilds the crate.
const EDIT: Duration = Duration::from_secs(5 * 60);
/// Tabs open before the broken edit.
const TABS: usize = 3;
/// The demo's pages and its `main`, in the copy of the workspace.
const PAGES: &str = "demo/src/app/pages.rs";
const MAIN: &str = "demo/src/main.rs";
/// The starts of the lines of [`PAGES`] and [`MAIN`] that the test edits.
const TITLE: &str = "const TITLE: &str = ";
const MAIN_FN: &str = "async fn main() -> ExitCode {";
/// The demo's feed page, and what a person left in its message field.
const FEED: &str = "posts";
const DRAFT: &str = "half-typed, not sent";
const SELECTION: (i64, i64) = (5, 10);

/// Reads a [`Tab`]: [`TabState`], and the failure overlay's text (in its shadow
/// root), its editor links and how long the page took to load.
fn read() -> String {
    read_tab_with(
        r#"
        var overlay = document.getElementById("axum-autoreload-overlay");
        var root = overlay && overlay.shadowRoot;
        var links = root ? root.querySelectorAll("a[href]") : document.querySelectorAll("a[href]");
        var navigation = performance.getEntriesByType("navigation")[0];
    "#,
        r#"
            timing: document.documentElement.getAttribute("data-autoreload-timing"),
            overlay: root ? root.textContent : null,
            links: Array.prototype.map.call(links, function (a) { return a.getAttribute("href"); }),
            loadMs: navigation ? navigation.duration : -1,
            homeLink: (function () {
                var link = document.querySelector("header nav a");
                return link ? link.textContent : null;
            })(),
    "#,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tab {
    #[serde(flatten)]
    tab: TabState,
    timing: Option<String>,
    overlay: Option<String>,
    links: Vec<String>,
    load_ms: f64,
    /// The text of the link home in the header of every page but the home page:
    /// `← <the home page's title>`.
    home_link: Option<String>,
}

impl Tab {
    /// Shows `needles` in the failure overlay, above the page it had.
    fn shows_overlay_with(&self, needles: &[&str]) -> bool {
        self.tab.autoreload.as_deref() == Some("failed")
            && (self.overlay.as_deref())
                .is_some_and(|text| needles.iter().all(|needle| text.contains(needle)))
    }

    /// Live on a server that runs the app, with `title` (on the home page; the link
    /// home on the others), and no overlay.
    fn is_live_with(&self, title: &str) -> bool {
        let home = |link: &str| link.strip_prefix("← ") == Some(title);
        self.tab.is_live()
            && (self.tab.title == title || self.home_link.as_deref().is_some_and(home))
            && self.overlay.is_none()
    }
}

#[cfg_attr(
    any(missing_chromium, missing_watchexec),
    ignore = "needs chromium, chromedriver and watchexec on PATH"
)]
#[tokio::test]
async fn a_broken_build_shows_its_errors_in_every_tab_and_the_fix_reloads_them() {
    let options = Options {
        unthrottled_background_tabs: true,
        ..Options::default()
    };
    let runner = |root: &Path| vec![build_runner(root).into(), "run".into()];
    let (copy, browser) = WatchedCopy::with_browser(options, Watch::Signal, runner).await;
    browser
        .run(async |browser| scenario(browser, &copy).await)
        .await;
}

async fn scenario(browser: &mut Browser, copy: &WatchedCopy) {
    let old_title = browser.open_live(&copy.url, TABS, EDIT).await[0]
        .title
        .clone();

    // An edit that does not compile: every tab shows the error above its page.
    let pages = copy.root.join(PAGES);
    let line = replace_line(&pages, TITLE, "e2e_undefined_title;");
    let location = format!("{PAGES}:{line}:");
    let edited = Instant::now();
    let tabs = wait_all(browser, "every tab to show the build error", |tab| {
        tab.shows_overlay_with(&["E0425", "e2e_undefined_title", &location])
    })
    .await;
    eprintln!(
        "edit to error overlay in {TABS} tabs: {} ms (the failed build: {:?} ms)",
        edited.elapsed().as_millis(),
        build_ms(copy, "build failed")
    );
    for (i, tab) in tabs.iter().enumerate() {
        assert_eq!(
            tab.tab.title, old_title,
            "tab {i}: the old page stays underneath"
        );
        let editor_link = format!("pages.rs:{line}:");
        assert!(
            (tab.links.iter())
                .any(|href| href.starts_with("vscode://file/") && href.contains(&editor_link)),
            "tab {i}: an editor link to {location}: {:?}",
            tab.links
        );
        assert!(
            (tab.links.iter()).any(|href| href.ends_with("error_codes/E0425.html")),
            "tab {i}: the error code links to its explanation: {:?}",
            tab.links
        );
    }

    // The last good app still serves: its JSON API stores a post, its page shows it.
    let addr = copy.url.trim_start_matches("http://").trim_end_matches('/');
    let addr: std::net::SocketAddr = addr.parse().expect("the copy's address");
    let json = "Host: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\n";
    let body = r#"{"username":"e2e","message":"posted during a broken build"}"#;
    let posted = http::send(addr, "POST /posts", json, body).await;
    assert_eq!(posted.status, 201, "the post is stored: {}", posted.text());
    let feed = http::get_with(addr, "/posts", "Host: localhost\r\nAccept: text/html\r\n").await;
    let feed = feed.expect("GET /posts");
    assert_eq!(feed.status, 200, "{}", feed.text());
    assert!(
        feed.text().contains("posted during a broken build"),
        "{}",
        feed.text()
    );

    // A tab opened while the build is broken gets the live page and the error.
    browser.open_tabs(&copy.url, 1).await;
    let new_tab = browser
        .wait_all_as(
            &read(),
            "the new tab to show the page and the error",
            EDIT,
            |i, tab: &Tab| i < TABS || tab.shows_overlay_with(&["E0425", "e2e_undefined_title"]),
        )
        .await
        .remove(TABS);
    assert_eq!(
        new_tab.tab.title, old_title,
        "the live page under the error: {new_tab:?}"
    );
    let load_ms = new_tab.load_ms;
    eprintln!("a new tab loaded the page with the error in {load_ms:.0} ms");

    // A feed tab with a half-typed message, focused and partly selected.
    let feed = browser.tabs.len();
    browser.open_tabs(&format!("{}{FEED}", copy.url), 1).await;
    browser
        .wait_all_as(
            &read(),
            "the feed tab to show the error",
            EDIT,
            |i, tab: &Tab| i != feed || tab.shows_overlay_with(&["E0425"]),
        )
        .await;
    browser.type_into(feed, "message", DRAFT, SELECTION).await;

    // The fix: every tab, the one opened on the error page too, gets the new page.
    let fixed_title = "Fixed by the runner test";
    replace_line(&pages, TITLE, &format!("\"{fixed_title}\";"));
    let fixed = Instant::now();
    let tabs = wait_all(browser, "every tab to show the fixed page", |tab| {
        tab.is_live_with(fixed_title)
    })
    .await;
    eprintln!(
        "fix to new page in {} tabs: {} ms (the build: {:?} ms)",
        tabs.len(),
        fixed.elapsed().as_millis(),
        build_ms(copy, "build finished")
    );
    for (i, tab) in tabs.iter().enumerate() {
        assert!(
            tab.tab.url.starts_with(&copy.url),
            "tab {i} is no browser error page: {tab:?}"
        );
    }
    const READ_FEED: &str = r#"
        var field = document.getElementById("message");
        var active = document.activeElement;
        return [window.e2eMark === true, field.value, active && active.id,
            field.selectionStart, field.selectionEnd];
    "#;
    assert_eq!(
        browser.exec(feed, READ_FEED, Vec::new()).await,
        json!([true, DRAFT, "message", SELECTION.0, SELECTION.1]),
        "the feed tab keeps the page itself (no navigation), its draft, focus and selection"
    );
    // What the loop cost, measured: the build and restart from the runner, the
    // reload from the tab.
    let tabs = wait_all(browser, "every tab to show what the loop cost", |tab| {
        tab.timing.as_deref().is_some_and(is_timing_line)
    })
    .await;
    eprintln!("timing line of tab 0: {:?}", tabs[0].timing);

    // A burst: a second save while the first one builds. The first build is
    // cancelled; every tab ends on the second edit, updated once.
    let updates = |tabs: &[Tab]| -> Vec<u64> {
        (tabs.iter())
            .map(|tab| {
                tab.tab
                    .reloads
                    .as_deref()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    };
    let before = updates(&tabs);
    replace_line(&pages, TITLE, "\"Burst one\";");
    wait_all(browser, "every tab to show the build", |tab| {
        tab.tab.autoreload.as_deref() == Some("building")
    })
    .await;
    replace_line(&pages, TITLE, "\"Burst two\";");
    let tabs = wait_all(browser, "every tab on the last edit", |tab| {
        tab.is_live_with("Burst two")
    })
    .await;
    let after = updates(&tabs);
    let once: Vec<u64> = before.iter().map(|n| n + 1).collect();
    assert_eq!(after, once, "one update per tab for the burst");
    let log = copy.watchexec.log_text();
    assert!(
        log.contains("changed again: building anew"),
        "the first build was cancelled"
    );

    // A panic in main, before serving: the tabs show its message and location.
    let main = copy.root.join(MAIN);
    let main_line = replace_line(&main, MAIN_FN, " panic!(\"e2e panic in main\");");
    let panic_location = format!("{MAIN}:{main_line}:");
    wait_all(browser, "every tab to show the panic", |tab| {
        tab.shows_overlay_with(&["e2e panic in main", &panic_location])
    })
    .await;
    replace_line(&main, MAIN_FN, "");
    wait_all(browser, "every tab to be back after the panic", |tab| {
        tab.is_live_with("Burst two")
    })
    .await;
}

/// [`Browser::wait_all_as`] with [`read`], at most [`EDIT`].
async fn wait_all(browser: &Browser, what: &str, done: impl Fn(&Tab) -> bool) -> Vec<Tab> {
    browser
        .wait_all_as(&read(), what, EDIT, |_, tab| done(tab))
        .await
}

/// Builds the runner from the copy, as `cargo install --path cli` would.
fn build_runner(root: &Path) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", "axum-autoreload-cli"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", WatchedCopy::target_dir())
        .status()
        .expect("running cargo build for the runner");
    assert!(
        status.success(),
        "cargo build -p axum-autoreload-cli: {status}"
    );
    WatchedCopy::target_dir().join("debug/axum-autoreload")
}

/// The last `<what> in N ms` the runner logged, if any.
fn build_ms(copy: &WatchedCopy, what: &str) -> Option<u64> {
    copy.watchexec.log_text().lines().rev().find_map(|line| {
        let rest = &line[line.find(what)? + what.len()..];
        let ms = rest.trim_start().strip_prefix("in ")?;
        ms.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    })
}

/// `rebuilt 0.62 s · swap 41 ms · reload 85 ms`, with any numbers (a long swap
/// reads `swap 2.05 s (shutdown 2.00 s: …)`).
fn is_timing_line(line: &str) -> bool {
    let parts: Vec<&str> = line.split(" \u{b7} ").collect();
    let number = |text: Option<&str>, unit: &str| {
        text.and_then(|t| t.strip_suffix(unit))
            .is_some_and(|n| n.parse::<f64>().is_ok())
    };
    let swap = parts.get(1).and_then(|part| part.strip_prefix("swap "));
    let swap = swap.map(|swap| swap.split(" (").next().unwrap_or(swap));
    parts.len() == 3
        && number(parts[0].strip_prefix("rebuilt "), " s")
        && (number(swap, " ms") || number(swap, " s"))
        && number(parts[2].strip_prefix("reload "), " ms")
}

/// Replaces the line of `file` that starts with `prefix` (after indentation) by
/// `prefix` and `rest`, and returns its number (from 1).
fn replace_line(file: &Path, prefix: &str, rest: &str) -> usize {
    let source = std::fs::read_to_string(file).expect("reading the file to edit");
    let (number, old) = (source.lines().enumerate())
        .find(|(_, old)| old.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {}", file.display()));
    edit(file, old, &format!("{prefix}{rest}"));
    number + 1
}
