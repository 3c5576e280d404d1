//! A headless Chromium session through a chromedriver of its own (WebDriver, with
//! fantoccini), the tabs a test opened in it, and what the tests read from a tab.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::wd::{TimeoutConfiguration, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::process::Proc;
use crate::socket::free_port;
use crate::tools::{find_or_skip, CHROMEDRIVER, CHROMIUM};

/// The client script's reload counter in `sessionStorage`.
pub const RELOADS_KEY: &str = "axum-autoreload:reloads";
/// The badge the client script shows while the server is down.
pub const BADGE_TEXT: &str = "restarting\u{2026}";
/// The pause between two rounds of reads in [`Browser::wait_all`].
const POLL: Duration = Duration::from_millis(10);

/// Chromium's flags in every browser test.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Flags that let background tabs run their timers and scripts as usual.
const UNTHROTTLED_FLAGS: [&str; 3] = [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
];

/// How long chromedriver may take to answer `GET /status` at start.
const DRIVER_START: Duration = Duration::from_secs(30);

/// How a test wants its [`Browser`]: `Options::default()`, changed with the
/// methods below.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    page_load: Duration,
    unthrottled_background_tabs: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            page_load: Duration::from_secs(30),
            unthrottled_background_tabs: false,
        }
    }
}

impl Options {
    /// WebDriver's page-load timeout (`goto`, and a script's navigation); 30 s
    /// by default.
    pub fn page_load(self, page_load: Duration) -> Self {
        Self { page_load, ..self }
    }

    /// Background tabs run their timers and scripts as usual, where Chromium
    /// would throttle them.
    pub fn unthrottled_background_tabs(self) -> Self {
        Self {
            unthrottled_background_tabs: true,
            ..self
        }
    }
}

/// What the browser tests read from a tab, with [`READ_TAB`].
#[derive(Debug, Clone, PartialEq)]
pub struct TabState {
    pub title: String,
    /// `<html data-autoreload>`: live, down or reloading.
    pub autoreload: Option<String>,
    /// The text of `#axum-autoreload-badge`, if there is one.
    pub badge: Option<String>,
    /// `sessionStorage["axum-autoreload:reloads"]`.
    pub reloads: Option<String>,
    /// `data-instance` of the injected script: the server that served the page.
    pub instance: Option<String>,
    /// The text of the demo home page's `#instance`, rendered by the server.
    pub shown_instance: Option<String>,
    pub url: String,
    pub ready_state: String,
    pub scroll_y: f64,
}

/// Reads a [`TabState`]; gets [`RELOADS_KEY`] as `arguments[0]`.
const READ_TAB: &str = r#"
    var script = document.querySelector("script[data-instance]");
    var badge = document.getElementById("axum-autoreload-badge");
    var shown = document.getElementById("instance");
    var reloads = null;
    try { reloads = sessionStorage.getItem(arguments[0]); } catch (e) {}
    return {
        title: document.title,
        autoreload: document.documentElement.getAttribute("data-autoreload"),
        badge: badge ? badge.textContent : null,
        reloads: reloads,
        instance: script ? script.getAttribute("data-instance") : null,
        shownInstance: shown ? shown.textContent : null,
        url: location.href,
        readyState: document.readyState,
        scrollY: window.scrollY,
    };
"#;

impl TabState {
    fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            title: text("title").unwrap_or_default(),
            autoreload: text("autoreload"),
            badge: text("badge"),
            reloads: text("reloads"),
            instance: text("instance"),
            shown_instance: text("shownInstance"),
            url: text("url").unwrap_or_default(),
            ready_state: text("readyState").unwrap_or_default(),
            scroll_y: value.get("scrollY").and_then(Value::as_f64).unwrap_or(-1.0),
        }
    }

    /// Live on its server, and loaded.
    pub fn is_live(&self) -> bool {
        self.autoreload.as_deref() == Some("live") && self.ready_state == "complete"
    }

    /// Down, and showing the badge.
    pub fn is_down(&self) -> bool {
        self.autoreload.as_deref() == Some("down") && self.badge.as_deref() == Some(BADGE_TEXT)
    }
}

/// A headless Chromium session through a chromedriver of its own, with the tabs a
/// test opened in it. chromedriver runs as a [`Proc`]: dropping the `Browser`
/// kills it with Chromium and everything else it started (printing its log's tail
/// if the thread is panicking); [`Browser::close`] quits the session first.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    /// The tabs' window handles, in the order the test opened them.
    pub tabs: Vec<WindowHandle>,
    _chromedriver: Proc,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Finds Chromium and chromedriver on `PATH` and starts a session, or skips
    /// (`None`; under `CI=true` a missing tool panics): see [`find_or_skip`].
    pub async fn start_or_skip(options: Options) -> Option<Self> {
        let [chromium, chromedriver] = find_or_skip([CHROMIUM, CHROMEDRIVER])?;
        Some(Self::start(&chromium, &chromedriver, options).await)
    }

    /// Starts `chromedriver` on a free port, waits for it to answer, and opens a
    /// session on headless `chromium` with a fresh profile.
    pub async fn start(chromium: &Path, chromedriver: &Path, options: Options) -> Self {
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}"));
        let mut chromedriver = Proc::spawn("chromedriver", command);
        wait_for_chromedriver(&mut chromedriver, port).await;
        let profile = crate::scratch::temp_dir("chromium-profile-");
        let client = connect(port, chromium, profile.path(), options).await;
        Self {
            client,
            tabs: Vec::new(),
            _chromedriver: chromedriver,
            _profile: profile,
        }
    }

    /// Quits Chromium (waiting at most 10 s for it) and resumes `outcome`'s panic
    /// if there was one; dropping `self` then stops chromedriver with whatever is
    /// left.
    pub async fn close<T>(self, outcome: std::thread::Result<T>) -> T {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
        match outcome {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Opens a tab (the first time, the window the session started with), switches
    /// to it and loads `url` in it. The tab is kept in [`Self::tabs`] even when it
    /// does not load.
    pub async fn open_tab(&mut self, url: &str) -> Result<(), CmdError> {
        let handle = if self.tabs.is_empty() {
            self.client.window().await?
        } else {
            let tab = self.client.new_window(true).await?;
            self.client.switch_to_window(tab.handle.clone()).await?;
            tab.handle
        };
        self.tabs.push(handle);
        self.client.goto(url).await
    }

    /// Switches to tab `i`.
    pub async fn switch(&self, i: usize) {
        self.client
            .switch_to_window(self.tabs[i].clone())
            .await
            .unwrap_or_else(|err| panic!("switching to tab {i}: {err}"));
    }

    /// Reads tab `i`'s state, or the WebDriver error (a tab in the middle of a
    /// navigation may refuse a script).
    pub async fn read(&self, i: usize) -> Result<TabState, CmdError> {
        self.client.switch_to_window(self.tabs[i].clone()).await?;
        let value = self
            .client
            .execute(READ_TAB, vec![json!(RELOADS_KEY)])
            .await?;
        Ok(TabState::from_json(&value))
    }

    /// Polls every tab until `done` holds for all of them at once and returns their
    /// states. `done` gets every state read and may assert on it. Panics with
    /// `what` after `timeout`.
    pub async fn wait_all(
        &self,
        what: &str,
        timeout: Duration,
        done: impl FnMut(usize, &TabState) -> bool,
    ) -> Vec<TabState> {
        self.wait_all_checking(what, timeout, done, || {}).await
    }

    /// [`Self::wait_all`], running `between` after each round that is not done
    /// (to check on other processes).
    pub async fn wait_all_checking(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(usize, &TabState) -> bool,
        mut between: impl FnMut(),
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
            between();
            if started.elapsed() > timeout {
                let states: Vec<String> = states
                    .iter()
                    .enumerate()
                    .map(|(i, state)| format!("  tab {i}: {state:?}"))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({errors} WebDriver errors); \
                     last seen:\n{}",
                    states.join("\n")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Prints every tab's state and what `script` returns (a string: the parts of
    /// the page that show why a tab is stuck).
    pub async fn dump(&self, script: &str) {
        for i in 0..self.tabs.len() {
            let dump = async {
                let state = self.read(i).await?;
                let html = self.client.execute(script, Vec::new()).await?;
                Ok::<_, CmdError>((state, html))
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
}

/// Waits for chromedriver to answer `GET /status`, at most [`DRIVER_START`].
async fn wait_for_chromedriver(chromedriver: &mut Proc, port: u16) {
    let deadline = Instant::now() + DRIVER_START;
    loop {
        if let Some(status) = chromedriver.exited() {
            panic!("chromedriver exited at start: {status}");
        }
        let status = crate::http::get(([127, 0, 0, 1], port).into(), "/status");
        match tokio::time::timeout(Duration::from_secs(5), status).await {
            Ok(Ok(response)) if response.status == 200 => return,
            other => assert!(
                Instant::now() < deadline,
                "chromedriver did not answer GET /status within {DRIVER_START:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session on headless `chromium` with its profile in `profile`.
async fn connect(driver_port: u16, chromium: &Path, profile: &Path, options: Options) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&flag| flag.to_owned()).collect();
    if options.unthrottled_background_tabs {
        args.extend(UNTHROTTLED_FLAGS.iter().map(|&flag| flag.to_owned()));
    }
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
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
            Some(options.page_load),
            None,
        ))
        .await
        .expect("setting WebDriver timeouts");
    client
}
