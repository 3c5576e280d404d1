//! End to end through the runner (`axum-autoreload run`), with a real `watchexec
//! --socket` and a real headless Chromium on a copy of the workspace: an edit that
//! does not compile shows rustc's error in every open tab above the old page, a tab
//! opened while the build is broken gets the error page, the fix reloads every tab
//! onto the new page, and a panic in `main` shows its message and location.
//!
//! Needs chromium, chromedriver and watchexec on PATH. Without them the test is
//! skipped, except under CI (`CI=true`), where it fails. The runner and the demo are
//! built from the copy into `target/e2e`, shared with `tests/browser.rs`.
//!
//! `cargo test -p axum-autoreload-demo --test browser_runner -- --nocapture` prints
//! the timings.

#[path = "browser/support.rs"]
mod support;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::Value;

use support::{Browser, Options, Proc, CHROMEDRIVER, CHROMIUM, WATCHEXEC};

/// How long the first build may take: in CI it compiles every dependency.
const FIRST_BUILD: Duration = Duration::from_secs(15 * 60);
/// How long an edit may take to reach every tab: cargo rebuilds the crate.
const EDIT: Duration = Duration::from_secs(5 * 60);
/// Tabs open before the broken edit.
const TABS: usize = 3;
/// The demo's pages and its `main`, in the copy of the workspace.
const PAGES: &str = "demo/src/app/pages.rs";
const MAIN: &str = "demo/src/main.rs";
/// The line of [`PAGES`] that the test edits.
const TITLE_PREFIX: &str = "const TITLE: &str = ";

/// What the test reads from a tab: the state the client script shows, the text of
/// the failure overlay (in its shadow root), its editor links and the page itself.
const READ: &str = r#"
    var overlay = document.getElementById("axum-autoreload-overlay");
    var root = overlay && overlay.shadowRoot;
    var links = root ? root.querySelectorAll("a[href]") : document.querySelectorAll("a[href]");
    var navigation = performance.getEntriesByType("navigation")[0];
    return {
        state: document.documentElement.getAttribute("data-autoreload"),
        timing: document.documentElement.getAttribute("data-autoreload-timing"),
        overlay: root ? root.textContent : null,
        links: Array.prototype.map.call(links, function (a) { return a.getAttribute("href"); }),
        title: document.title,
        body: document.body ? document.body.innerText : "",
        url: location.href,
        ready: document.readyState,
        loadMs: navigation ? navigation.duration : -1,
    };
"#;

#[derive(Debug, Clone)]
struct Tab {
    state: Option<String>,
    timing: Option<String>,
    overlay: Option<String>,
    links: Vec<String>,
    title: String,
    body: String,
    url: String,
    ready: String,
    load_ms: f64,
}

impl Tab {
    fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            state: text("state"),
            timing: text("timing"),
            overlay: text("overlay"),
            links: value
                .get("links")
                .and_then(Value::as_array)
                .map(|links| {
                    links
                        .iter()
                        .filter_map(|l| l.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            title: text("title").unwrap_or_default(),
            body: text("body").unwrap_or_default(),
            url: text("url").unwrap_or_default(),
            ready: text("ready").unwrap_or_default(),
            load_ms: value.get("loadMs").and_then(Value::as_f64).unwrap_or(-1.0),
        }
    }

    /// Shows `needles` in the failure overlay, above the page it had.
    fn shows_overlay_with(&self, needles: &[&str]) -> bool {
        self.state.as_deref() == Some("failed")
            && self
                .overlay
                .as_deref()
                .is_some_and(|text| needles.iter().all(|needle| text.contains(needle)))
    }

    /// Live on a server that runs the app, with `title`, and no overlay.
    fn is_live_with(&self, title: &str) -> bool {
        self.state.as_deref() == Some("live")
            && self.ready == "complete"
            && self.title == title
            && self.overlay.is_none()
    }
}

#[tokio::test]
async fn a_broken_build_shows_its_errors_in_every_tab_and_the_fix_reloads_them() {
    let Some([chromium, chromedriver, watchexec]) =
        support::find_or_skip([CHROMIUM, CHROMEDRIVER, WATCHEXEC])
    else {
        return;
    };
    let workspace = std::fs::canonicalize(support::WORKSPACE).expect("the workspace");
    let work = support::temp_dir("axum-autoreload-runner-e2e-");
    let app = work.path().join("app");
    std::fs::create_dir(&app).expect("creating the directory for the copy");
    support::copy_crate(&workspace, &app);
    let target_dir = workspace.join("target/e2e");
    let runner = build_runner(&app, &target_dir);

    let port = support::free_port();
    let mut command = Command::new(&watchexec);
    command
        .args(["--socket", &format!("127.0.0.1:{port}")])
        .args(["--restart", "--stop-signal", "SIGINT"])
        .args(["-w", "src", "-w", "demo/src"])
        .arg("--")
        .arg(&runner)
        .arg("run")
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUST_LOG", "info");
    let mut watchexec = Proc::spawn(
        "watchexec",
        command,
        work.path().join("watchexec.log"),
        Duration::from_secs(10),
    );
    let started = Instant::now();
    support::wait_for_first_page(port, FIRST_BUILD, || {
        assert!(watchexec.exited().is_none(), "watchexec exited");
    })
    .await;
    eprintln!(
        "first page after {} ms (includes building the copy)",
        started.elapsed().as_millis()
    );

    let mut browser = Browser::start(
        &chromium,
        &chromedriver,
        work.path(),
        Options::default()
            .page_load(Duration::from_secs(60))
            .unthrottled_background_tabs(),
    )
    .await;
    let mut run = Run {
        browser: &mut browser,
        url: format!("http://127.0.0.1:{port}/"),
        app,
        log: watchexec.log().to_owned(),
    };
    let outcome = AssertUnwindSafe(run.scenario()).catch_unwind().await;
    browser.close(outcome).await;
    drop(watchexec);
}

/// Builds the runner from the copy, as `cargo install --path cli` would.
fn build_runner(app: &Path, target_dir: &Path) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "-p", "axum-autoreload-cli"])
        .current_dir(app)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("running cargo build for the runner");
    assert!(
        status.success(),
        "cargo build -p axum-autoreload-cli: {status}"
    );
    target_dir.join("debug/axum-autoreload")
}

struct Run<'a> {
    browser: &'a mut Browser,
    url: String,
    app: PathBuf,
    log: PathBuf,
}

impl Run<'_> {
    async fn scenario(&mut self) {
        for _ in 0..TABS {
            self.browser
                .open_tab(&self.url)
                .await
                .expect("opening a tab");
        }
        let old_title = self
            .wait_all("every tab live", EDIT, |tab| {
                tab.state.as_deref() == Some("live")
            })
            .await[0]
            .title
            .clone();

        // An edit that does not compile: every tab shows the error above its page.
        let pages = self.app.join(PAGES);
        let line = replace_line(
            &pages,
            TITLE_PREFIX,
            "const TITLE: &str = e2e_undefined_title;",
        );
        let location = format!("{PAGES}:{line}:");
        let edited = Instant::now();
        let tabs = self
            .wait_all("every tab to show the build error", EDIT, |tab| {
                tab.shows_overlay_with(&["E0425", "e2e_undefined_title", &location])
            })
            .await;
        let shown = edited.elapsed();
        let failed_build = self.build_ms("build failed");
        eprintln!(
            "edit to error overlay in {TABS} tabs: {} ms (the failed build: {failed_build:?} ms)",
            shown.as_millis()
        );
        for (i, tab) in tabs.iter().enumerate() {
            assert_eq!(
                tab.title, old_title,
                "tab {i}: the old page stays underneath"
            );
            assert!(
                tab.links
                    .iter()
                    .any(|href| href.starts_with("vscode://file/")
                        && href.contains(&format!("pages.rs:{line}:"))),
                "tab {i}: an editor link to {location}: {:?}",
                tab.links
            );
            assert!(
                tab.links
                    .iter()
                    .any(|href| href.ends_with("error_codes/E0425.html")),
                "tab {i}: the error code links to its explanation: {:?}",
                tab.links
            );
        }

        // A tab opened while the build is broken gets the error page.
        self.browser
            .open_tab(&self.url)
            .await
            .expect("opening a tab");
        let new_tab = self.read(TABS).await.expect("reading the new tab");
        assert!(
            new_tab.body.contains("E0425") && new_tab.body.contains("e2e_undefined_title"),
            "the error page: {new_tab:?}"
        );
        assert!(
            new_tab.load_ms >= 0.0 && new_tab.load_ms < 1000.0,
            "the error page loads in under 1 s: {} ms",
            new_tab.load_ms
        );
        eprintln!(
            "a new tab loaded the error page in {:.0} ms",
            new_tab.load_ms
        );

        // The fix: every tab, the one opened on the error page too, gets the new page.
        let fixed_title = "Fixed by the runner test";
        replace_line(
            &pages,
            TITLE_PREFIX,
            &format!("const TITLE: &str = \"{fixed_title}\";"),
        );
        let fixed = Instant::now();
        let tabs = self
            .wait_all("every tab to show the fixed page", EDIT, |tab| {
                tab.is_live_with(fixed_title)
            })
            .await;
        eprintln!(
            "fix to new page in {} tabs: {} ms (the build: {:?} ms)",
            tabs.len(),
            fixed.elapsed().as_millis(),
            self.build_ms("build finished")
        );
        for (i, tab) in tabs.iter().enumerate() {
            assert!(
                tab.url.starts_with(&self.url),
                "tab {i} is no browser error page: {tab:?}"
            );
        }
        // What the loop cost, measured: the build and restart from the runner, the
        // reload from the tab.
        let tabs = self
            .wait_all("every tab to show what the loop cost", EDIT, |tab| {
                tab.timing.as_deref().is_some_and(is_timing_line)
            })
            .await;
        eprintln!("timing line of tab 0: {:?}", tabs[0].timing);

        // A panic in main, before serving: the tabs show its message and location.
        let main = self.app.join(MAIN);
        let main_line = replace_line(
            &main,
            "async fn main()",
            "async fn main() -> ExitCode { panic!(\"e2e panic in main\");",
        );
        let panic_location = format!("{MAIN}:{main_line}:");
        self.wait_all("every tab to show the panic", EDIT, |tab| {
            tab.shows_overlay_with(&["e2e panic in main", &panic_location])
        })
        .await;
        replace_line(&main, "async fn main()", "async fn main() -> ExitCode {");
        self.wait_all("every tab to be back after the panic", EDIT, |tab| {
            tab.is_live_with(fixed_title)
        })
        .await;
    }

    async fn read(&self, i: usize) -> Result<Tab, fantoccini::error::CmdError> {
        self.browser
            .client
            .switch_to_window(self.browser.tabs[i].clone())
            .await?;
        let value = self.browser.client.execute(READ, vec![]).await?;
        Ok(Tab::from_json(&value))
    }

    /// Polls every tab until `done` holds for all of them; panics with `what` and
    /// the last states after `timeout`.
    async fn wait_all(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Tab) -> bool,
    ) -> Vec<Tab> {
        let started = Instant::now();
        loop {
            let mut tabs = Vec::new();
            for i in 0..self.browser.tabs.len() {
                if let Ok(tab) = self.read(i).await {
                    tabs.push(tab);
                }
            }
            if tabs.len() == self.browser.tabs.len() && tabs.iter().all(&done) {
                return tabs;
            }
            assert!(
                started.elapsed() < timeout,
                "waiting for {what}: {tabs:#?}\n{}",
                support::log_tail(&self.log, 60)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last `<what> in N ms` the runner logged, if any.
    fn build_ms(&self, what: &str) -> Option<u64> {
        let log = std::fs::read_to_string(&self.log).ok()?;
        log.lines().rev().find_map(|line| {
            let rest = &line[line.find(what)? + what.len()..];
            let ms = rest.trim_start().strip_prefix("in ")?;
            ms.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
    }
}

/// `rebuilt 0.62 s · restart 12 ms · reload 85 ms`, with any numbers.
fn is_timing_line(line: &str) -> bool {
    let parts: Vec<&str> = line.split(" \u{b7} ").collect();
    let number = |text: Option<&str>, unit: &str| {
        text.and_then(|t| t.strip_suffix(unit))
            .is_some_and(|n| n.parse::<f64>().is_ok())
    };
    parts.len() == 3
        && number(parts[0].strip_prefix("rebuilt "), " s")
        && number(parts[1].strip_prefix("restart "), " ms")
        && number(parts[2].strip_prefix("reload "), " ms")
}

/// Replaces the line of `file` that starts with `prefix` (after indentation) by
/// `line`, as an editor's atomic save does, and returns its number (from 1).
fn replace_line(file: &Path, prefix: &str, line: &str) -> usize {
    let source = std::fs::read_to_string(file).expect("reading the file to edit");
    let number = source
        .lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {}", file.display()));
    let edited: Vec<&str> = source
        .lines()
        .enumerate()
        .map(|(i, l)| if i == number { line } else { l })
        .collect();
    let staged = file.with_extension("edited");
    std::fs::write(&staged, edited.join("\n") + "\n").expect("writing the edit");
    std::fs::rename(&staged, file).expect("moving the edit into place");
    number + 1
}
