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

use fantoccini::wd::{TimeoutConfiguration, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use support::{Proc, Tools};

/// Tabs to open: more than the six HTTP/1.1 connections a browser allows per host,
/// which only the shared worker (one reload stream for every tab) makes possible.
const TABS: usize = 10;

/// How long the first build may take: in CI it compiles every dependency.
const FIRST_BUILD: Duration = Duration::from_secs(15 * 60);
/// How long the edit may take to reach every tab: cargo rebuilds the crate.
const EDIT_TO_ALL_TABS: Duration = Duration::from_secs(5 * 60);
/// How long tabs may take to settle when nothing needs building.
const SETTLE: Duration = Duration::from_secs(30);

/// The line of `src/demo/pages.rs` that the test edits.
const TITLE_PREFIX: &str = "const TITLE: &str = \"";
const RELOADS_KEY: &str = "axum-autoreload:reloads";
/// What cargo prints when the copy does not compile.
const BUILD_FAILED: &str = "error: could not compile";

#[tokio::test]
async fn ten_tabs_reload_once_after_an_edit() {
    let Some(tools) = Tools::find_or_skip() else {
        return;
    };
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::Builder::new()
        .prefix("axum-autoreload-e2e-")
        .tempdir()
        .expect("creating a temporary directory");
    let app = work.path().join("app");
    std::fs::create_dir(&app).expect("creating the directory for the copy of the crate");
    support::copy_crate(manifest_dir, &app);
    let pages = app.join("src/demo/pages.rs");
    let old_title = read_title(&pages);

    // The demo under watchexec, which holds the socket across restarts.
    let port = support::free_port();
    let mut command = Command::new(&tools.watchexec);
    command
        .args(["--socket", &format!("127.0.0.1:{port}")])
        .args(["--restart", "--stop-signal", "SIGINT", "-w", "src"])
        .args(["--", "cargo", "run"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", manifest_dir.join("target/e2e"))
        .env("RUST_LOG", "info");
    let mut watchexec = Proc::spawn(
        "watchexec",
        command,
        work.path().join("watchexec.log"),
        Duration::from_secs(10),
    );
    let started = Instant::now();
    let page = wait_for_first_page(&mut watchexec, port).await;
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

    // Chromium, driven by chromedriver.
    let driver_port = support::free_port();
    let mut command = Command::new(&tools.chromedriver);
    command.arg(format!("--port={driver_port}"));
    let mut chromedriver = Proc::spawn(
        "chromedriver",
        command,
        work.path().join("chromedriver.log"),
        Duration::from_secs(2),
    );
    wait_for_chromedriver(&mut chromedriver, driver_port).await;
    let client = connect(driver_port, &tools.chromium, &work.path().join("profile")).await;

    let mut tabs = Vec::new();
    let mut run = Run {
        client: &client,
        watchexec: &mut watchexec,
        url: format!("http://127.0.0.1:{port}/"),
        tabs: &mut tabs,
    };
    let outcome = AssertUnwindSafe(run.scenario(&pages, &old_title))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        dump_tabs(&client, &tabs).await;
    }
    // Quit Chromium; the guards kill whatever is left, the panic or not.
    let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
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
        .expect("pages.rs is under <app>/src/demo")
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
        !log.contains(BUILD_FAILED),
        "cargo failed to build the copy of the crate while waiting for {waiting_for}"
    );
}

/// Waits for `GET /` to answer 200 and returns the response. The socket exists as
/// soon as watchexec runs, so a request waits in its backlog until the first build
/// is done and the demo accepts it.
async fn wait_for_first_page(watchexec: &mut Proc, port: u16) -> String {
    let started = Instant::now();
    let mut reported = started;
    loop {
        let request = support::http_get(port, "/");
        tokio::pin!(request);
        let outcome = loop {
            tokio::select! {
                outcome = &mut request => break outcome,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    check_watchexec(watchexec, "the first page");
                    assert!(
                        started.elapsed() < FIRST_BUILD,
                        "GET / did not answer within {} s", FIRST_BUILD.as_secs()
                    );
                    if reported.elapsed() >= Duration::from_secs(60) {
                        reported = Instant::now();
                        eprintln!(
                            "still waiting for the first page after {} s (cargo is building)",
                            started.elapsed().as_secs()
                        );
                    }
                }
            }
        };
        match outcome {
            Ok((200, response)) => return response,
            Ok((status, response)) => panic!("GET / answered {status}: {response}"),
            Err(_) => {
                // Refused before watchexec bound the socket; retry.
                check_watchexec(watchexec, "the first page");
                assert!(
                    started.elapsed() < FIRST_BUILD,
                    "GET / did not answer within {} s",
                    FIRST_BUILD.as_secs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn wait_for_chromedriver(chromedriver: &mut Proc, port: u16) {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(status) = chromedriver.exited() {
            panic!("chromedriver exited at start: {status}");
        }
        match tokio::time::timeout(Duration::from_secs(5), support::http_get(port, "/status")).await
        {
            Ok(Ok((200, _))) => return,
            other => assert!(
                Instant::now() < deadline,
                "chromedriver did not answer GET /status within {} s: {other:?}",
                SETTLE.as_secs()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect(driver_port: u16, chromium: &Path, profile: &Path) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    let client = builder
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("starting a Chromium session through chromedriver");
    client
        .update_timeouts(TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(60)),
            None,
        ))
        .await
        .expect("setting WebDriver timeouts");
    client
}

/// What the test reads from a tab.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TabState {
    title: String,
    /// `<html data-autoreload>`: live, down or reloading.
    autoreload: Option<String>,
    /// `sessionStorage["axum-autoreload:reloads"]`.
    reloads: Option<String>,
    /// The instance id of the server that served the page.
    instance: Option<String>,
    url: String,
    ready_state: String,
}

const READ_TAB: &str = r#"
    var script = document.querySelector("script[data-instance]");
    var reloads = null;
    try { reloads = sessionStorage.getItem(arguments[0]); } catch (e) {}
    return {
        title: document.title,
        autoreload: document.documentElement.getAttribute("data-autoreload"),
        reloads: reloads,
        instance: script ? script.getAttribute("data-instance") : null,
        url: location.href,
        readyState: document.readyState,
    };
"#;

impl TabState {
    fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            title: text("title").unwrap_or_default(),
            autoreload: text("autoreload"),
            reloads: text("reloads"),
            instance: text("instance"),
            url: text("url").unwrap_or_default(),
            ready_state: text("readyState").unwrap_or_default(),
        }
    }
}

/// The running setup the scenario drives.
struct Run<'a> {
    client: &'a Client,
    watchexec: &'a mut Proc,
    url: String,
    /// The tabs' window handles, kept by the caller to dump them on failure.
    tabs: &'a mut Vec<WindowHandle>,
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

    /// Opens the first tab and `TABS - 1` more on the app.
    async fn open_tabs(&mut self) {
        let first = self.client.window().await.expect("the first window");
        self.client
            .goto(&self.url)
            .await
            .unwrap_or_else(|err| panic!("tab 0 did not load {}: {err}", self.url));
        self.tabs.push(first);
        for i in 1..TABS {
            let tab = self
                .client
                .new_window(true)
                .await
                .unwrap_or_else(|err| panic!("opening tab {i}: {err}"));
            self.client
                .switch_to_window(tab.handle.clone())
                .await
                .unwrap_or_else(|err| panic!("switching to tab {i}: {err}"));
            self.tabs.push(tab.handle);
            self.client.goto(&self.url).await.unwrap_or_else(|err| {
                panic!(
                    "tab {i} did not load {} (more than six tabs load only if they \
                     share one reload stream): {err}",
                    self.url
                )
            });
        }
    }

    /// Reads one tab's state, or the WebDriver error (a tab in the middle of a
    /// navigation may refuse a script).
    async fn read(&self, i: usize) -> Result<TabState, fantoccini::error::CmdError> {
        self.client.switch_to_window(self.tabs[i].clone()).await?;
        let value = self
            .client
            .execute(READ_TAB, vec![json!(RELOADS_KEY)])
            .await?;
        Ok(TabState::from_json(&value))
    }

    /// Polls every tab until `done` holds for all of them at once, checking that
    /// watchexec is still up, and returns their states. `done` gets every state read
    /// and may assert on it. Panics with `what` after `timeout`.
    async fn wait_all(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(usize, &TabState) -> bool,
    ) -> Vec<TabState> {
        let started = Instant::now();
        let mut states: Vec<Option<TabState>> = vec![None; self.tabs.len()];
        let mut errors = 0_usize;
        loop {
            let mut all = true;
            for (i, state) in states.iter_mut().enumerate() {
                match self.read(i).await {
                    Ok(tab) => {
                        all &= done(i, &tab);
                        *state = Some(tab);
                    }
                    Err(err) => {
                        errors += 1;
                        if errors <= 20 {
                            eprintln!("reading tab {i} while waiting for {what}: {err}");
                        }
                        all = false;
                    }
                }
            }
            if all {
                return states.into_iter().flatten().collect();
            }
            check_watchexec(self.watchexec, what);
            if started.elapsed() > timeout {
                let states: Vec<String> = states
                    .iter()
                    .enumerate()
                    .map(|(i, state)| format!("  tab {i}: {state:?}"))
                    .collect();
                panic!(
                    "timed out after {} s waiting for {what} ({errors} WebDriver errors); last seen:\n{}",
                    timeout.as_secs(),
                    states.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// Prints every tab's state and the start of its HTML, to see why a tab is stuck.
async fn dump_tabs(client: &Client, tabs: &[WindowHandle]) {
    const DUMP: &str = "return document.documentElement.outerHTML.slice(0, 3000);";
    for (i, tab) in tabs.iter().enumerate() {
        let dump = async {
            client.switch_to_window(tab.clone()).await?;
            let state = client.execute(READ_TAB, vec![json!(RELOADS_KEY)]).await?;
            let html = client.execute(DUMP, Vec::new()).await?;
            Ok::<_, fantoccini::error::CmdError>((TabState::from_json(&state), html))
        };
        match tokio::time::timeout(Duration::from_secs(10), dump).await {
            Ok(Ok((state, html))) => eprintln!(
                "---- tab {i}: {state:?}\n{}",
                html.as_str().unwrap_or_default()
            ),
            Ok(Err(err)) => eprintln!("---- tab {i}: cannot read it: {err}"),
            Err(_) => eprintln!("---- tab {i}: no answer within 10 s"),
        }
    }
}
