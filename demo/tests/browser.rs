//! End to end, with a real `watchexec --socket` and a real headless Chromium: ten
//! tabs on the demo app all reload exactly once after an edit of the source, and
//! once more after SIGUSR1.
//!
//! Needs chromium, chromedriver and watchexec on PATH. Without them the test is
//! skipped, except under CI (`CI=true`), where it fails. The demo is built from a
//! copy of this crate into `target/e2e`, which is kept between runs so that only the
//! first run compiles the dependencies.
//!
//! Run it with `cargo test --test browser -- --nocapture` to see the timings.

#[path = "browser/support.rs"]
mod support;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use support::{Browser, Options, Proc, TabState, CHROMEDRIVER, CHROMIUM, WATCHEXEC};

/// Tabs to open: more than the six HTTP/1.1 connections a browser allows per host,
/// which only the shared worker (one reload stream for every tab) makes possible.
const TABS: usize = 10;

/// How long the first build may take: in CI it compiles every dependency.
const FIRST_BUILD: Duration = Duration::from_secs(15 * 60);
/// How long the edit may take to reach every tab: cargo rebuilds the crate.
const EDIT_TO_ALL_TABS: Duration = Duration::from_secs(5 * 60);
/// How long tabs may take to settle when nothing needs building.
const SETTLE: Duration = Duration::from_secs(30);

/// The demo's pages, in the copy of the workspace.
const PAGES: &str = "demo/src/app/pages.rs";
/// The line of [`PAGES`] that the test edits.
const TITLE_PREFIX: &str = "const TITLE: &str = \"";
/// How the lines start where cargo says it cannot build or run the copy: `error:
/// could not compile`, `error[E0425]: …`, `error: failed to parse manifest`.
const CARGO_ERROR: &str = "error";

#[tokio::test]
async fn ten_tabs_reload_once_after_an_edit() {
    let Some([chromium, chromedriver, watchexec]) =
        support::find_or_skip([CHROMIUM, CHROMEDRIVER, WATCHEXEC])
    else {
        return;
    };
    let workspace = std::fs::canonicalize(support::WORKSPACE).expect("the workspace");
    let work = support::temp_dir("axum-autoreload-e2e-");
    let app = work.path().join("app");
    std::fs::create_dir(&app).expect("creating the directory for the copy of the crate");
    support::copy_crate(&workspace, &app);
    let pages = app.join(PAGES);
    let old_title = read_title(&pages);

    // The demo under watchexec, which holds the socket across restarts.
    let port = support::free_port();
    let mut command = Command::new(&watchexec);
    command
        .args(["--socket", &format!("127.0.0.1:{port}")])
        .args([
            "--restart",
            "--stop-signal",
            "SIGINT",
            "-w",
            "src",
            "-w",
            "demo/src",
        ])
        .args(["--", "cargo", "run"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", workspace.join("target/e2e"))
        .env("RUST_LOG", "info");
    let mut watchexec = Proc::spawn(
        "watchexec",
        command,
        work.path().join("watchexec.log"),
        Duration::from_secs(10),
    );
    let started = Instant::now();
    let page = support::wait_for_first_page(port, FIRST_BUILD, || {
        check_watchexec(&mut watchexec, "the first page")
    })
    .await;
    eprintln!(
        "first page answered after {} ms (includes building the copy)",
        started.elapsed().as_millis()
    );
    assert!(
        page.contains(&format!("<title>{old_title}</title>")),
        "the home page should have the title {old_title:?}: {page}"
    );
    assert!(
        page.contains("data-instance="),
        "the home page should carry the injected client script: {page}"
    );

    let mut browser = Browser::start(
        &chromium,
        &chromedriver,
        work.path(),
        Options::default().page_load(Duration::from_secs(60)),
    )
    .await;
    let mut run = Run {
        browser: &mut browser,
        watchexec: &mut watchexec,
        url: format!("http://127.0.0.1:{port}/"),
    };
    let outcome = AssertUnwindSafe(run.scenario(&pages, &old_title))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        browser.dump(DUMP).await;
    }
    // Quit Chromium; the guards kill whatever is left, the panic or not.
    browser.close(outcome).await;
}

/// The title in `const TITLE: &str = "...";`.
fn read_title(pages: &Path) -> String {
    let source = std::fs::read_to_string(pages)
        .unwrap_or_else(|err| panic!("reading {}: {err}", pages.display()));
    let start = source
        .find(TITLE_PREFIX)
        .unwrap_or_else(|| panic!("{} has no `{TITLE_PREFIX}...\";`", pages.display()))
        + TITLE_PREFIX.len();
    let len = source[start..].find('"').expect("the TITLE literal ends");
    source[start..start + len].to_owned()
}

/// Replaces the TITLE literal, atomically (written beside, then renamed in), so that
/// watchexec and cargo never see half a file.
fn write_title(pages: &Path, old: &str, new: &str) {
    let source = std::fs::read_to_string(pages).expect("reading pages.rs");
    let old_line = format!("{TITLE_PREFIX}{old}\";");
    assert!(
        source.contains(&old_line),
        "pages.rs should contain {old_line}"
    );
    let edited = source.replacen(&old_line, &format!("{TITLE_PREFIX}{new}\";"), 1);
    let staged = pages
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("pages.rs is under <app>/demo/src/app")
        .join("pages.rs.edited");
    std::fs::write(&staged, edited).expect("writing the edited pages.rs");
    std::fs::rename(&staged, pages).expect("moving the edited pages.rs into place");
}

/// Panics if watchexec has exited or cargo failed to build the copy.
fn check_watchexec(watchexec: &mut Proc, waiting_for: &str) {
    if let Some(status) = watchexec.exited() {
        panic!("watchexec exited ({status}) while waiting for {waiting_for}");
    }
    let log = std::fs::read_to_string(watchexec.log()).unwrap_or_default();
    assert!(
        !log.lines().any(|line| line.starts_with(CARGO_ERROR)),
        "cargo failed to build or run the copy of the crate while waiting for {waiting_for}"
    );
}

/// The running setup the scenario drives.
struct Run<'a> {
    /// Borrowed from the caller, to dump the tabs on failure.
    browser: &'a mut Browser,
    watchexec: &'a mut Proc,
    url: String,
}

impl Run<'_> {
    async fn scenario(&mut self, pages: &Path, old_title: &str) {
        self.open_tabs().await;
        let before = self
            .wait_all("every tab to be live", SETTLE, |_, tab| {
                tab.autoreload.as_deref() == Some("live")
            })
            .await;
        let old_instance = before[0].instance.clone();
        for (i, tab) in before.iter().enumerate() {
            assert_eq!(tab.title, old_title, "tab {i} before the edit: {tab:?}");
            assert_eq!(tab.reloads, None, "tab {i} before the edit: {tab:?}");
            assert!(
                tab.instance.is_some(),
                "tab {i} has no instance id: {tab:?}"
            );
            assert_eq!(
                tab.instance, old_instance,
                "tab {i} before the edit: {tab:?}"
            );
        }
        eprintln!("{TABS} tabs live on instance {old_instance:?}");

        // The edit: watchexec restarts `cargo run`, which rebuilds; every tab must
        // reload once, onto the new server, without ever showing an error page.
        let new_title = format!(
            "axum-autoreload e2e {}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("the clock is after 1970")
                .as_nanos()
        );
        let edited = Instant::now();
        write_title(pages, old_title, &new_title);
        let allowed = [old_title, new_title.as_str()];
        let mut first_seen = [None; TABS];
        let after = self
            .wait_all(
                "every tab to show the new title",
                EDIT_TO_ALL_TABS,
                |i, tab| {
                    assert!(
                        allowed.contains(&tab.title.as_str()),
                        "tab {i} shows neither the old nor the new title {} ms after the \
                     edit (an error page?): {tab:?}",
                        edited.elapsed().as_millis()
                    );
                    let done = tab.title == new_title;
                    if done && first_seen[i].is_none() {
                        first_seen[i] = Some(edited.elapsed());
                    }
                    done
                },
            )
            .await;
        let all = edited.elapsed();
        let first = first_seen.iter().flatten().min().copied().unwrap_or(all);
        eprintln!(
            "edit-to-all-tabs: {} ms (first tab after {} ms; includes the rebuild)",
            all.as_millis(),
            first.as_millis()
        );
        let new_instance = after[0].instance.clone();
        assert_ne!(
            new_instance, old_instance,
            "the server should have restarted"
        );
        self.expect_settled("after the edit", &new_title, new_instance.as_deref(), "1")
            .await;

        // SIGUSR1 to the server: every tab reloads once more, from the same server.
        let server = self.server_pid();
        let signalled = Instant::now();
        kill(server, Signal::SIGUSR1).expect("sending SIGUSR1 to the demo server");
        self.wait_all("every tab to reload after SIGUSR1", SETTLE, |i, tab| {
            assert_eq!(tab.title, new_title, "tab {i} after SIGUSR1: {tab:?}");
            tab.reloads.as_deref() == Some("2") && tab.autoreload.as_deref() == Some("live")
        })
        .await;
        eprintln!(
            "SIGUSR1-to-all-tabs: {} ms",
            signalled.elapsed().as_millis()
        );
        self.expect_settled("after SIGUSR1", &new_title, new_instance.as_deref(), "2")
            .await;
    }

    /// Opens [`TABS`] tabs on the app.
    async fn open_tabs(&mut self) {
        for i in 0..TABS {
            self.browser
                .open_tab(&self.url)
                .await
                .unwrap_or_else(|err| {
                    panic!(
                        "tab {i} did not load {} (more than six tabs load only if \
                         they share one reload stream): {err}",
                        self.url
                    )
                });
        }
    }

    /// Polls every tab until `done` holds for all of them at once, checking that
    /// watchexec is still up, and returns their states. `done` gets every state read
    /// and may assert on it. Panics with `what` after `timeout`.
    async fn wait_all(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl FnMut(usize, &TabState) -> bool,
    ) -> Vec<TabState> {
        let watchexec = &mut *self.watchexec;
        self.browser
            .wait_all_checking(what, timeout, done, || check_watchexec(watchexec, what))
            .await
    }

    /// Every tab shows `title`, is live on `instance` and has reloaded `reloads`
    /// times; and still so a moment later (no second reload on its way).
    async fn expect_settled(
        &mut self,
        when: &str,
        title: &str,
        instance: Option<&str>,
        reloads: &str,
    ) {
        for round in 0..2 {
            if round == 1 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let states = self
                .wait_all(&format!("every tab to be live {when}"), SETTLE, |_, tab| {
                    tab.autoreload.as_deref() == Some("live")
                })
                .await;
            for (i, tab) in states.iter().enumerate() {
                assert_eq!(tab.title, title, "tab {i} {when}: {tab:?}");
                assert_eq!(tab.instance.as_deref(), instance, "tab {i} {when}: {tab:?}");
                assert_eq!(
                    tab.reloads.as_deref(),
                    Some(reloads),
                    "tab {i} {when} should have reloaded exactly {reloads} times: {tab:?}"
                );
            }
        }
    }

    /// The pid of the demo server that watchexec runs (through cargo).
    fn server_pid(&self) -> Pid {
        let watchexec = Pid::from_raw(i32::try_from(self.watchexec.pid()).expect("pid fits"));
        let servers: Vec<Pid> = support::descendants(watchexec)
            .into_iter()
            .map(|(process, _)| process)
            .filter(|&process| support::process_name(process).as_deref() == Some("axum-autoreload"))
            .collect();
        match servers[..] {
            [server] => server,
            _ => panic!("expected one axum-autoreload process under watchexec, found {servers:?}"),
        }
    }
}

/// The start of a tab's HTML, printed with its state on failure to see why a tab
/// is stuck.
const DUMP: &str = "return document.documentElement.outerHTML.slice(0, 3000);";
