//! A headless Chromium session through a chromedriver of its own (WebDriver, with
//! fantoccini), the tabs a test opened in it, and what the tests read from a tab.

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::wd::{TimeoutConfiguration, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::process::Proc;
use crate::socket::free_port;
use crate::tools::{find, CHROMEDRIVER, CHROMIUM};

/// The client script's reload counter in `sessionStorage`.
const RELOADS_KEY: &str = "axum-autoreload:reloads";
/// The badge the client script shows while the server is down.
const BADGE_TEXT: &str = "restarting\u{2026}";

/// Chromium's flags in every browser test.
const CHROMIUM_FLAGS: &str = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage";

/// Flags that let background tabs run their timers and scripts as usual.
const UNTHROTTLED_FLAGS: &str = "--disable-background-timer-throttling \
    --disable-renderer-backgrounding --disable-backgrounding-occluded-windows";

/// How a test wants its [`Browser`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// WebDriver's page-load timeout (`goto`, and a script's navigation); 60 s
    /// when `None`.
    pub page_load: Option<Duration>,
    /// Background tabs run their timers and scripts as usual, where Chromium
    /// would throttle them.
    pub unthrottled_background_tabs: bool,
}

/// What the browser tests read from a tab, with [`READ_TAB`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TabState {
    pub title: String,
    /// `<html data-autoreload>`: live, down, reloading or failed.
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

/// Reads a [`TabState`] (see [`Browser::read_as`]).
pub const READ_TAB: &str = r#"
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

/// A script that reads a [`TabState`] and more, for a test's own tab type that
/// flattens one: `prelude` (statements) runs first, then the script returns
/// [`READ_TAB`]'s object with `fields` (the inside of a JavaScript object literal)
/// added.
pub fn read_tab_with(prelude: &str, fields: &str) -> String {
    format!(
        "{prelude}\nreturn Object.assign((function () {{ {READ_TAB} }}).apply(this, arguments), {{\n{fields}}});"
    )
}

/// What [`Browser::run`] prints of each tab when the scenario fails: the head,
/// the scripts, the start of the body and the stylesheets' rules.
const DUMP: &str = r#"
    var part = function (list, text) { return Array.prototype.map.call(list, text).join("\n"); };
    return (document.head ? document.head.outerHTML.slice(0, 2000) : "(no head)") +
        "\nscripts:\n" + part(document.scripts, function (s) { return s.outerHTML.slice(0, 300); }) +
        "\nbody:\n" + (document.body ? document.body.outerHTML.slice(0, 2000) : "(no body)") +
        "\nsheets:\n" + part(document.styleSheets, function (sheet) {
            var rules = "";
            try { rules = part(sheet.cssRules, function (r) { return r.cssText; }); } catch (e) {}
            return (sheet.href || "(inline)") + ": " + rules;
        });
"#;

impl TabState {
    /// Live on its server, and loaded.
    pub fn is_live(&self) -> bool {
        self.autoreload.as_deref() == Some("live") && self.ready_state == "complete"
    }

    /// Down, and showing the badge.
    pub fn is_down(&self) -> bool {
        self.autoreload.as_deref() == Some("down") && self.badge.as_deref() == Some(BADGE_TEXT)
    }

    /// Panics unless tab `i` is live and settled on the server `instance`: no
    /// badge, `title`, the reload counter at `reloads` (`None` before the first
    /// reload), and on the demo's home page the instance it renders.
    pub fn expect_on(
        &self,
        (i, when): (usize, &str),
        title: &str,
        instance: Option<&str>,
        reloads: Option<&str>,
    ) {
        assert!(self.is_live(), "tab {i} {when} is not live: {self:?}");
        assert_eq!(self.title, title, "tab {i} {when}: {self:?}");
        assert_eq!(self.badge, None, "tab {i} {when} shows the badge: {self:?}");
        let on = self.instance.as_deref();
        assert_eq!(
            on, instance,
            "tab {i} {when} is not on the server: {self:?}"
        );
        if self.url.ends_with('/') {
            assert_eq!(
                self.shown_instance.as_deref(),
                instance,
                "tab {i} {when}: the page does not show the server's instance: {self:?}"
            );
        }
        assert_eq!(
            self.reloads.as_deref(),
            reloads,
            "tab {i} {when} should have reloaded exactly {reloads:?} times: {self:?}"
        );
    }
}

/// A headless Chromium session through a chromedriver of its own, with the tabs a
/// test opened in it. chromedriver runs as a [`Proc`]: dropping the `Browser`
/// kills it with Chromium and everything else it started (printing its log's tail
/// if the thread is panicking).
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    /// The tabs' window handles, in the order the test opened them.
    pub tabs: Vec<WindowHandle>,
    _chromedriver: Proc,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Finds Chromium and chromedriver on `PATH` (or panics, see [`find`]) and
    /// starts a session. A test that calls it carries
    /// `#[cfg_attr(missing_chromium, ignore = "...")]`.
    pub async fn launch(options: Options) -> Self {
        let [chromium, chromedriver] = find([CHROMIUM, CHROMEDRIVER]);
        Self::start(&chromium, &chromedriver, options).await
    }

    /// Starts `chromedriver` on a free port, waits for it to answer, and opens a
    /// session on headless `chromium` with a fresh profile.
    pub async fn start(chromium: &Path, chromedriver: &Path, options: Options) -> Self {
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}"));
        let mut driver = Proc::spawn("chromedriver", command);
        let limit = Duration::from_secs(30);
        crate::wait::until("chromedriver to answer GET /status", limit, || {
            let exited = driver.exited();
            async move {
                assert!(exited.is_none(), "chromedriver exited at start: {exited:?}");
                let status = crate::http::get(([127, 0, 0, 1], port).into(), "/status").await;
                status.ok().filter(|response| response.status == 200)
            }
        })
        .await;
        let profile = crate::temp::temp_dir("chromium-profile-");
        let unthrottled = if options.unthrottled_background_tabs {
            UNTHROTTLED_FLAGS
        } else {
            ""
        };
        let mut args: Vec<String> = (CHROMIUM_FLAGS.split_whitespace())
            .chain(unthrottled.split_whitespace())
            .map(str::to_owned)
            .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(serde_json::from_value(capabilities).expect("a JSON object"))
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("starting a Chromium session through chromedriver");
        let page_load = options.page_load.unwrap_or(Duration::from_secs(60));
        let timeouts =
            TimeoutConfiguration::new(Some(Duration::from_secs(10)), Some(page_load), None);
        let set = client.update_timeouts(timeouts).await;
        set.expect("setting WebDriver timeouts");
        Self {
            client,
            tabs: Vec::new(),
            _chromedriver: driver,
            _profile: profile,
        }
    }

    /// Runs `scenario` on this session. If it panics, prints every tab (its state
    /// and the parts of its page that show why it is stuck); then quits Chromium
    /// (waiting at most 10 s for it) and resumes the panic if there was one.
    pub async fn run<T>(mut self, scenario: impl AsyncFnOnce(&mut Self) -> T) -> T {
        let outcome = AssertUnwindSafe(scenario(&mut self)).catch_unwind().await;
        if outcome.is_err() {
            self.dump().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
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

    /// Opens `count` tabs on `url`; panics when one does not load.
    pub async fn open_tabs(&mut self, url: &str, count: usize) {
        for i in 0..count {
            let loaded = self.open_tab(url).await;
            loaded.unwrap_or_else(|err| panic!("tab {i} did not load {url}: {err}"));
        }
    }

    /// Opens `count` tabs on `url` and waits, at most `limit`, for every one to be
    /// live; returns their states.
    pub async fn open_live(&mut self, url: &str, count: usize, limit: Duration) -> Vec<TabState> {
        self.open_tabs(url, count).await;
        self.wait_all("every tab to be live", limit, |_, tab| tab.is_live())
            .await
    }

    /// Switches to tab `i`.
    pub async fn switch(&self, i: usize) {
        let switched = self.client.switch_to_window(self.tabs[i].clone()).await;
        switched.unwrap_or_else(|err| panic!("switching to tab {i}: {err}"));
    }

    /// Types `text` into the field `#id` of tab `i` as a person would (WebDriver
    /// key events: the field has the focus), selects `selection` (UTF-16 offsets)
    /// in it, and leaves `window.e2eMark` on the page, which a navigation loses.
    pub async fn type_into(&self, i: usize, id: &str, text: &str, selection: (i64, i64)) {
        self.switch(i).await;
        let field = self.client.find(fantoccini::Locator::Id(id)).await;
        let field = field.unwrap_or_else(|err| panic!("tab {i}: no #{id}: {err}"));
        let typed = field.send_keys(text).await;
        typed.unwrap_or_else(|err| panic!("tab {i}: typing into #{id}: {err}"));
        const SELECT_AND_MARK: &str = r#"
            document.getElementById(arguments[0]).setSelectionRange(arguments[1], arguments[2]);
            window.e2eMark = true;
        "#;
        let args = vec![json!(id), json!(selection.0), json!(selection.1)];
        self.exec(i, SELECT_AND_MARK, args).await;
    }

    /// Runs `script` with `args` in tab `i` and returns what it returns; panics on
    /// a WebDriver error.
    pub async fn exec(&self, i: usize, script: &str, args: Vec<Value>) -> Value {
        self.switch(i).await;
        let value = self.client.execute(script, args).await;
        value.unwrap_or_else(|err| panic!("tab {i}: running {script}: {err}"))
    }

    /// Reads tab `i` with `script`, which gets the reload counter's key as
    /// `arguments[0]` and returns a `T`; or the WebDriver error (a tab in the middle
    /// of a navigation may refuse a script).
    pub async fn read_as<T: DeserializeOwned>(
        &self,
        i: usize,
        script: &str,
    ) -> Result<T, CmdError> {
        self.client.switch_to_window(self.tabs[i].clone()).await?;
        let value = self
            .client
            .execute(script, vec![json!(RELOADS_KEY)])
            .await?;
        serde_json::from_value(value).map_err(CmdError::Json)
    }

    /// [`Self::wait_all_as`] with [`READ_TAB`].
    pub async fn wait_all(
        &self,
        what: &str,
        limit: Duration,
        done: impl FnMut(usize, &TabState) -> bool,
    ) -> Vec<TabState> {
        self.wait_all_as(READ_TAB, what, limit, done).await
    }

    /// Reads every tab with `script` (as [`Self::read_as`]) until `done` holds for
    /// all of them at once, and returns what it read. `done` gets every state read
    /// and may assert on it. Panics with `what` and the last states after `limit`.
    pub async fn wait_all_as<T: DeserializeOwned + Debug>(
        &self,
        script: &str,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(usize, &T) -> bool,
    ) -> Vec<T> {
        let started = Instant::now();
        let mut states: Vec<Option<T>> = self.tabs.iter().map(|_| None).collect();
        let mut errors = 0_usize;
        loop {
            let mut all = true;
            for (i, state) in states.iter_mut().enumerate() {
                match self.read_as(i, script).await {
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
            assert!(
                started.elapsed() < limit,
                "timed out after {limit:?} waiting for {what} ({errors} WebDriver errors); \
                 last seen: {states:#?}"
            );
            tokio::time::sleep(crate::wait::POLL).await;
        }
    }

    /// Prints what [`DUMP`] shows of every tab's page (a timed-out wait has
    /// printed their states).
    async fn dump(&self) {
        for i in 0..self.tabs.len() {
            let dump = async {
                self.client.switch_to_window(self.tabs[i].clone()).await?;
                self.client.execute(DUMP, Vec::new()).await
            };
            match tokio::time::timeout(Duration::from_secs(10), dump).await {
                Ok(Ok(page)) => eprintln!("---- tab {i}:\n{}", page.as_str().unwrap_or_default()),
                Ok(Err(err)) => eprintln!("---- tab {i}: cannot read it: {err}"),
                Err(_) => eprintln!("---- tab {i}: no answer within 10 s"),
            }
        }
    }
}

/// `median … ms, min …, max … (each: …)` of timings in milliseconds, as the
/// browser tests print what they measured in the page.
pub fn summary_ms(times: &[f64]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let each: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    let (n, each) = (times.len(), each.join(", "));
    let median = (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0;
    let (min, max) = (sorted[0], sorted[n - 1]);
    format!("median {median:.0} ms, min {min:.0}, max {max:.0} (each: {each})")
}
