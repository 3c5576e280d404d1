//! Plumbing shared by the browser tests: finding the tools, a headless Chromium
//! session through chromedriver ([`Browser`]) and reading its tabs, copying the
//! crate, free ports, child processes that are killed with everything they
//! started, and a tiny HTTP client.
//!
//! Each test includes it with `#[path = "browser/support.rs"] mod …;` and uses a
//! part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::wd::{TimeoutConfiguration, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, Pid};
use serde_json::{json, Value};

#[path = "../common/procs.rs"]
mod procs;
pub(crate) use procs::descendants;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The client script's reload counter in `sessionStorage`.
pub(crate) const RELOADS_KEY: &str = "axum-autoreload:reloads";
/// The badge the client script shows while the server is down.
pub(crate) const BADGE_TEXT: &str = "restarting\u{2026}";
/// The pause between two rounds of reads in [`Browser::wait_all`].
const POLL: Duration = Duration::from_millis(10);

/// A program a browser test needs on PATH, and how to install it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    name: &'static str,
    install: &'static str,
}

pub(crate) const CHROMIUM: Tool = Tool {
    name: "chromium",
    install: "apt-get install -y chromium chromium-driver",
};
pub(crate) const CHROMEDRIVER: Tool = Tool {
    name: "chromedriver",
    install: "apt-get install -y chromium chromium-driver",
};
pub(crate) const WATCHEXEC: Tool = Tool {
    name: "watchexec",
    install: "cargo install --locked watchexec-cli",
};

/// Finds each of `tools` on PATH and returns their absolute paths, in the same
/// order. When one is missing: panics under CI (`CI=true`), otherwise prints why
/// the test is skipped and returns `None`.
pub(crate) fn find_or_skip<const N: usize>(tools: [Tool; N]) -> Option<[PathBuf; N]> {
    let found = tools.map(|tool| which(tool.name));
    let missing: Vec<String> = tools
        .iter()
        .zip(&found)
        .filter(|(_, path)| path.is_none())
        .map(|(tool, _)| format!("{} (install: `{}`)", tool.name, tool.install))
        .collect();
    if !missing.is_empty() {
        let missing = missing.join(", ");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and tools for the browser test are missing on PATH: {missing}");
        }
        eprintln!("skipping: {missing} missing on PATH");
        return None;
    }
    Some(found.map(|path| path.expect("every tool was found")))
}

/// The first executable file called `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The workspace: the library at its root, the demo and the runner beside it.
pub(crate) const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Copies the workspace at `from` into `to`: everything `cargo run` needs (every
/// member's manifest, sources, benches and examples, which the manifests name, and
/// `static/`), without build output (`target/`), git's `.git/` or the demo's
/// database (`data/`).
pub(crate) fn copy_crate(from: &Path, to: &Path) {
    copy_dir(from, to);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|err| panic!("creating {}: {err}", to.display()));
    let entries =
        fs::read_dir(from).unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
        let kind = entry
            .file_type()
            .unwrap_or_else(|err| panic!("stat {}: {err}", entry.path().display()));
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            if matches!(entry.file_name().to_str(), Some("target" | ".git" | "data")) {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap_or_else(|err| {
                panic!(
                    "copying {} to {}: {err}",
                    entry.path().display(),
                    target.display()
                )
            });
        }
    }
}

/// A new temporary directory named `{prefix}…`, removed when dropped.
pub(crate) fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("creating a temporary directory")
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0 to find a free port")
        .port()
}

/// Waits for `GET /` to answer 200 and returns the response. The socket exists as
/// soon as watchexec runs, so a request waits in its backlog until the first build
/// is done and the demo accepts it. `check` runs every second while it waits (to
/// fail early when the process that builds has failed).
pub(crate) async fn wait_for_first_page(
    port: u16,
    first_build: Duration,
    mut check: impl FnMut(),
) -> String {
    let started = Instant::now();
    let mut reported = started;
    loop {
        let request = http_get(port, "/");
        tokio::pin!(request);
        let outcome = loop {
            tokio::select! {
                outcome = &mut request => break outcome,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    check();
                    assert!(
                        started.elapsed() < first_build,
                        "GET / did not answer within {} s", first_build.as_secs()
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
                check();
                assert!(
                    started.elapsed() < first_build,
                    "GET / did not answer within {} s",
                    first_build.as_secs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The last `lines` lines of a log file.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

/// A child process in its own process group, with its output in a log file. On
/// drop it is stopped (SIGTERM, then after `grace` SIGKILL) together with every
/// process it started, whatever process group they moved to; if the thread is
/// panicking, the log's tail is printed first.
#[derive(Debug)]
pub(crate) struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
    grace: Duration,
}

impl Proc {
    /// Spawns `command` in a new process group with stdin closed and stdout and
    /// stderr appended to `log`.
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
        grace: Duration,
    ) -> Self {
        let out = File::create(&log)
            .unwrap_or_else(|err| panic!("creating log {}: {err}", log.display()));
        let err = out.try_clone().expect("cloning a log file handle");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {name} ({command:?}): {err}"));
        Self {
            name,
            child,
            log,
            grace,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether and how the process ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting on a child process")
    }

    /// The log file.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The log's last `lines` lines, under a heading.
    pub(crate) fn tail(&self, lines: usize) -> String {
        format!(
            "---- last {lines} lines of the {} log ({}) ----\n{}\n---- end of the {} log ----",
            self.name,
            self.log.display(),
            log_tail(&self.log, lines),
            self.name,
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.tail(60));
        }
        let root = pid(self.child.id());
        // Taken before anything is signalled: once the root exits its children are
        // reparented and can no longer be found from it.
        let descendants = descendants(root);
        if self.exited().is_none() {
            let _ = kill(root, Signal::SIGTERM);
            let deadline = Instant::now() + self.grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let own_group = getpgrp();
        let mut groups = BTreeSet::from([root]);
        groups.extend(descendants.iter().map(|&(_, group)| group));
        for group in groups {
            if group != own_group && group.as_raw() > 1 {
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        for (process, _) in descendants {
            let _ = kill(process, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pid(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).expect("a pid fits in i32"))
}

/// The executable name (`comm`) of a process.
pub(crate) fn process_name(process: Pid) -> Option<String> {
    fs::read_to_string(format!("/proc/{process}/comm"))
        .ok()
        .map(|name| name.trim().to_owned())
}

/// `GET http://127.0.0.1:{port}{path}` with `Connection: close`: the status code
/// and the whole response (head and body) as text.
pub(crate) async fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Read to the end of the body: to EOF, or to Content-Length where given, since
    // some servers (chromedriver) keep the connection open despite `close`.
    let mut response = Vec::new();
    let mut chunk = [0_u8; 8192];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
        if let Some(expected) = expected_len(&response) {
            if response.len() >= expected {
                break;
            }
        }
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::other(format!(
                "not an HTTP response: {:?}",
                response.chars().take(200).collect::<String>()
            ))
        })?;
    Ok((status, response))
}

/// The length of a whole response (head and body) whose head is complete and says
/// its Content-Length.
fn expected_len(response: &[u8]) -> Option<usize> {
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..head_end]);
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
            .map(|len| head_end + len)
    })
}

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
pub(crate) struct Options {
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
    pub(crate) fn page_load(self, page_load: Duration) -> Self {
        Self { page_load, ..self }
    }

    /// Background tabs run their timers and scripts as usual, where Chromium
    /// would throttle them.
    pub(crate) fn unthrottled_background_tabs(self) -> Self {
        Self {
            unthrottled_background_tabs: true,
            ..self
        }
    }
}

/// What the browser tests read from a tab, with [`READ_TAB`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TabState {
    pub(crate) title: String,
    /// `<html data-autoreload>`: live, down or reloading.
    pub(crate) autoreload: Option<String>,
    /// The text of `#axum-autoreload-badge`, if there is one.
    pub(crate) badge: Option<String>,
    /// `sessionStorage["axum-autoreload:reloads"]`.
    pub(crate) reloads: Option<String>,
    /// `data-instance` of the injected script: the server that served the page.
    pub(crate) instance: Option<String>,
    /// The text of the demo home page's `#instance`, rendered by the server.
    pub(crate) shown_instance: Option<String>,
    pub(crate) url: String,
    pub(crate) ready_state: String,
    pub(crate) scroll_y: f64,
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
    pub(crate) fn is_live(&self) -> bool {
        self.autoreload.as_deref() == Some("live") && self.ready_state == "complete"
    }

    /// Down, and showing the badge.
    pub(crate) fn is_down(&self) -> bool {
        self.autoreload.as_deref() == Some("down") && self.badge.as_deref() == Some(BADGE_TEXT)
    }
}

/// A headless Chromium session through a chromedriver of its own, with the tabs a
/// test opened in it. chromedriver runs as a [`Proc`]: dropping the `Browser`
/// kills it with Chromium and everything else it started (printing its log's tail
/// if the thread is panicking); [`Browser::close`] quits the session first.
#[derive(Debug)]
pub(crate) struct Browser {
    pub(crate) client: Client,
    /// The tabs' window handles, in the order the test opened them.
    pub(crate) tabs: Vec<WindowHandle>,
    chromedriver: Proc,
}

impl Browser {
    /// Finds Chromium and chromedriver on PATH, or skips: see [`find_or_skip`].
    pub(crate) fn tools_or_skip() -> Option<[PathBuf; 2]> {
        find_or_skip([CHROMIUM, CHROMEDRIVER])
    }

    /// Starts `chromedriver` on a free port, waits for it to answer, and opens a
    /// session on headless `chromium`. chromedriver's log (`chromedriver.log`) and
    /// Chromium's profile (`profile/`) go in `dir`.
    pub(crate) async fn start(
        chromium: &Path,
        chromedriver: &Path,
        dir: &Path,
        options: Options,
    ) -> Self {
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}"));
        let mut chromedriver = Proc::spawn(
            "chromedriver",
            command,
            dir.join("chromedriver.log"),
            Duration::from_secs(2),
        );
        wait_for_chromedriver(&mut chromedriver, port).await;
        let client = connect(port, chromium, &dir.join("profile"), options).await;
        Self {
            client,
            tabs: Vec::new(),
            chromedriver,
        }
    }

    /// Quits Chromium (waiting at most 10 s for it) and resumes `outcome`'s panic
    /// if there was one; dropping `self` then stops chromedriver with whatever is
    /// left.
    pub(crate) async fn close<T>(self, outcome: std::thread::Result<T>) -> T {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
        match outcome {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Opens a tab (the first time, the window the session started with), switches
    /// to it and loads `url` in it. The tab is kept in [`Self::tabs`] even when it
    /// does not load.
    pub(crate) async fn open_tab(&mut self, url: &str) -> Result<(), CmdError> {
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
    pub(crate) async fn switch(&self, i: usize) {
        self.client
            .switch_to_window(self.tabs[i].clone())
            .await
            .unwrap_or_else(|err| panic!("switching to tab {i}: {err}"));
    }

    /// Reads tab `i`'s state, or the WebDriver error (a tab in the middle of a
    /// navigation may refuse a script).
    pub(crate) async fn read(&self, i: usize) -> Result<TabState, CmdError> {
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
    pub(crate) async fn wait_all(
        &self,
        what: &str,
        timeout: Duration,
        done: impl FnMut(usize, &TabState) -> bool,
    ) -> Vec<TabState> {
        self.wait_all_checking(what, timeout, done, || {}).await
    }

    /// [`Self::wait_all`], running `between` after each round that is not done
    /// (to check on other processes).
    pub(crate) async fn wait_all_checking(
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
    pub(crate) async fn dump(&self, script: &str) {
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
        match tokio::time::timeout(Duration::from_secs(5), http_get(port, "/status")).await {
            Ok(Ok((200, _))) => return,
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
