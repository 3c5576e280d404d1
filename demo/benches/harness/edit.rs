//! Edit to new page: a real `watchexec --socket`, a real headless Chromium with ten
//! tabs on the demo, an edit of the title in `demo/src/app/pages.rs`: how long until
//! every tab shows the new title, next to how long `cargo build` alone takes for
//! the same kind of edit.
//!
//! The demo is built from a copy of the crate (outside any git checkout, so that
//! watchexec's ignore files do not hide it) into `target/bench-e2e`, kept between
//! runs. When each tab showed the new page comes from the tab itself
//! (`performance.timeOrigin` plus the navigation's `domContentLoadedEventEnd`, on
//! the same clock as the edit), not from polling, so the polling interval does not
//! blur the figure.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::report::{median, Report};
use crate::scenarios::which;

const TITLE_PREFIX: &str = "const TITLE: &str = \"";
/// How long the first build of the copy may take (it may compile every dependency).
const FIRST_BUILD: Duration = Duration::from_secs(30 * 60);
/// How long one edit may take to reach every tab.
const EDIT_LIMIT: Duration = Duration::from_secs(5 * 60);
/// How long the tabs are left alone once the new server is up, before they are
/// read (the figures come from their own clocks, not from when they are read).
const UNTOUCHED: Duration = Duration::from_secs(2);
/// How long tabs may take to settle when nothing is building.
const SETTLE: Duration = Duration::from_secs(30);

/// A child process in its own process group, stopped with everything it started
/// when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(mut command: Command, log: &Path) -> io::Result<Self> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        Ok(Self {
            child: command.spawn()?,
        })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let root = self.pid();
        let descendants = crate::procs::descendants(root);
        if !self.exited() {
            let _ = kill(root, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for (process, _group) in descendants {
            let _ = kill(process, Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Copy what `cargo run` needs. `benches/` too: Cargo.toml names its benches, and
/// cargo refuses a manifest whose bench files are missing.
fn copy_crate(from: &Path, to: &Path) -> io::Result<()> {
    if to.exists() {
        fs::remove_dir_all(to)?;
    }
    fs::create_dir_all(to)?;
    for file in ["Cargo.toml", "Cargo.lock"] {
        fs::copy(from.join(file), to.join(file))?;
    }
    for dir in ["src", "demo", "cli"] {
        if from.join(dir).is_dir() {
            copy_dir(&from.join(dir), &to.join(dir))?;
        }
    }
    Ok(())
}

fn read_title(pages: &Path) -> io::Result<String> {
    let source = fs::read_to_string(pages)?;
    let start = source
        .find(TITLE_PREFIX)
        .ok_or_else(|| io::Error::other(format!("no `{TITLE_PREFIX}` in {}", pages.display())))?
        + TITLE_PREFIX.len();
    let len = source[start..]
        .find('"')
        .ok_or_else(|| io::Error::other("the TITLE literal does not end"))?;
    Ok(source[start..start + len].to_owned())
}

/// Replace the title, atomically (written beside, renamed in), as an editor saves.
fn write_title(pages: &Path, old: &str, new: &str) -> io::Result<()> {
    let source = fs::read_to_string(pages)?;
    let old_line = format!("{TITLE_PREFIX}{old}\";");
    if !source.contains(&old_line) {
        return Err(io::Error::other(format!(
            "{} lost its title",
            pages.display()
        )));
    }
    let edited = source.replacen(&old_line, &format!("{TITLE_PREFIX}{new}\";"), 1);
    let staged = pages.with_extension("rs.edited");
    fs::write(&staged, edited)?;
    fs::rename(&staged, pages)
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `cargo build` in `app`, timed; fails when the build fails or overruns `limit`.
fn cargo_build(
    app: &Path,
    target_dir: &Path,
    args: &[&str],
    log: &Path,
    limit: Duration,
) -> io::Result<Duration> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .args(args)
        .current_dir(app)
        .env("CARGO_TARGET_DIR", target_dir);
    let started = Instant::now();
    let mut build = Proc::spawn(command, log)?;
    loop {
        if let Ok(Some(status)) = build.child.try_wait() {
            let took = started.elapsed();
            if !status.success() {
                return Err(io::Error::other(format!(
                    "cargo build failed ({status}); see {}",
                    log.display()
                )));
            }
            return Ok(took);
        }
        if started.elapsed() > limit {
            return Err(io::Error::other(format!("cargo build overran {limit:?}")));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What one read of a tab gives.
#[derive(Debug, Clone, Default)]
struct Tab {
    title: String,
    autoreload: Option<String>,
    instance: Option<String>,
    /// When the page's DOM was ready, in ms since the epoch.
    shown: Option<f64>,
    /// When the navigation to it began (the reload), in ms since the epoch.
    began: Option<f64>,
    /// Milestones of that navigation, in ms from its start: request sent, first
    /// byte, last byte, DOM interactive, DOMContentLoaded end.
    phases: Option<[f64; 5]>,
}

const READ_TAB: &str = r#"
    var nav = performance.getEntriesByType("navigation")[0];
    var script = document.querySelector("script[data-instance]");
    var ready = nav && nav.domContentLoadedEventEnd > 0;
    return {
        title: document.title,
        autoreload: document.documentElement.getAttribute("data-autoreload"),
        instance: script ? script.getAttribute("data-instance") : null,
        shown: ready ? performance.timeOrigin + nav.domContentLoadedEventEnd : null,
        began: performance.timeOrigin,
        phases: ready ? [nav.requestStart, nav.responseStart, nav.responseEnd,
                         nav.domInteractive, nav.domContentLoadedEventEnd] : null,
    };
"#;

async fn read_tab(client: &Client, tab: &WindowHandle) -> Option<Tab> {
    client.switch_to_window(tab.clone()).await.ok()?;
    let value = client.execute(READ_TAB, Vec::new()).await.ok()?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(Tab {
        title: text("title").unwrap_or_default(),
        autoreload: text("autoreload"),
        instance: text("instance"),
        shown: value.get("shown").and_then(Value::as_f64),
        began: value.get("began").and_then(Value::as_f64),
        phases: value.get("phases").and_then(Value::as_array).and_then(|a| {
            let v: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
            <[f64; 5]>::try_from(v).ok()
        }),
    })
}

/// Poll every tab until `done` holds for all at once; their states.
async fn wait_all(
    client: &Client,
    tabs: &[WindowHandle],
    watchexec: &mut Proc,
    limit: Duration,
    what: &str,
    done: impl Fn(&Tab) -> bool,
) -> io::Result<Vec<Tab>> {
    let started = Instant::now();
    loop {
        let mut states = Vec::with_capacity(tabs.len());
        for tab in tabs {
            match read_tab(client, tab).await {
                Some(state) if done(&state) => states.push(state),
                _ => break,
            }
        }
        if states.len() == tabs.len() {
            return Ok(states);
        }
        if watchexec.exited() {
            return Err(io::Error::other(format!(
                "watchexec exited while waiting for {what}"
            )));
        }
        if started.elapsed() > limit {
            return Err(io::Error::other(format!("timed out waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server start time in an instance id `<start ms hex>-<random>`.
fn instance_start_ms(instance: &str) -> Option<f64> {
    let start = instance.split('-').next()?;
    u64::from_str_radix(start, 16).ok().map(|ms| ms as f64)
}

/// The figures, recorded in `report` under the debug column: under `cargo run`,
/// through the runner, and their ratio.
pub(crate) async fn edit_to_page(
    manifest_dir: &Path,
    cargo_target_dir: &Path,
    edits: usize,
    tab_count: usize,
    report: &mut Report,
) -> io::Result<()> {
    let tools: Vec<(&str, Option<PathBuf>)> = ["watchexec", "chromium", "chromedriver"]
        .into_iter()
        .map(|name| (name, which(name)))
        .collect();
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(_, path)| path.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        report.note(format!(
            "edit to new page: skipped, missing on PATH: {} (apt-get install -y chromium chromium-driver; cargo install --locked watchexec-cli)",
            missing.join(", ")
        ));
        return Ok(());
    }
    let tool = |name: &str| {
        tools
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    let work = std::env::temp_dir().join("axum-autoreload-bench-e2e");
    fs::create_dir_all(&work)?;
    let app = work.join("app");
    // BENCH_E2E_SOURCE: measure another tree (a variant of src/) than this crate.
    let source =
        std::env::var_os("BENCH_E2E_SOURCE").map_or_else(|| manifest_dir.to_owned(), PathBuf::from);
    copy_crate(&source, &app)?;
    if source != manifest_dir {
        report.note(format!(
            "edit to new page: measured the tree at {}",
            source.display()
        ));
    }
    let target_dir = cargo_target_dir.join("bench-e2e");
    let pages = app.join("demo/src/app/pages.rs");
    let mut title = read_title(&pages)?;
    let stamp = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    };

    // Phase 1: the build alone, for the same kind of edit.
    println!(
        "  edit: first build of the copy into {} (may compile every dependency)",
        target_dir.display()
    );
    let first = cargo_build(
        &app,
        &target_dir,
        &[],
        &work.join("build-first.log"),
        FIRST_BUILD,
    )?;
    // The runner, built from the copy as `cargo install --path cli` would.
    cargo_build(
        &app,
        &target_dir,
        &["-p", "axum-autoreload-cli"],
        &work.join("build-runner.log"),
        FIRST_BUILD,
    )?;
    let runner = target_dir.join("debug/axum-autoreload");
    println!("  edit: first build took {:.1} s", first.as_secs_f64());
    let mut builds = Vec::new();
    for k in 0..edits {
        let new = format!("bench build {k} {}", stamp());
        write_title(&pages, &title, &new)?;
        title = new;
        let took = cargo_build(
            &app,
            &target_dir,
            &[],
            &work.join(format!("build-{k}.log")),
            EDIT_LIMIT,
        )?;
        println!(
            "  edit: cargo build alone after an edit: {:.0} ms",
            took.as_secs_f64() * 1000.0
        );
        builds.push(took.as_secs_f64() * 1000.0);
    }

    report.set(
        "edit to new page: `cargo build` alone for the same edit (median)",
        "",
        "debug",
        format!("{:.0} ms", median(&builds)),
        None,
    );

    // Phase 2: watchexec, Chromium, ten tabs, the same edits: under `cargo run`, then
    // through the runner.
    let mut medians = Vec::new();
    for way in [Way::CargoRun, Way::Runner(&runner)] {
        let port = free_port()?;
        let mut command = Command::new(tool("watchexec"));
        command
            .args(["--socket", &format!("127.0.0.1:{port}")])
            .args(["--restart", "--stop-signal", "SIGINT"])
            .args(["-w", "src", "-w", "demo/src", "--"]);
        match way {
            Way::CargoRun => command.args(["cargo", "run"]),
            Way::Runner(runner) => command.arg(runner).arg("run"),
        };
        command
            .current_dir(&app)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUST_LOG", "info");
        let mut watchexec =
            Proc::spawn(command, &work.join(format!("watchexec-{}.log", way.name())))?;
        crate::server::wait_ready(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            None,
            SETTLE + Duration::from_secs(60),
        )
        .await?;

        let driver_port = free_port()?;
        let mut command = Command::new(tool("chromedriver"));
        command.arg(format!("--port={driver_port}"));
        let _chromedriver = Proc::spawn(command, &work.join("chromedriver.log"))?;
        let profile = work.join("profile");
        let _ = fs::remove_dir_all(&profile);
        let client = connect(driver_port, &tool("chromium"), &profile).await?;
        println!("  edit: {} edits under {}", edits, way.name());
        let outcome = drive(
            &client,
            &mut watchexec,
            port,
            &pages,
            &mut title,
            edits,
            tab_count,
            report,
        )
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        let times = outcome?;
        medians.push(median(&times.totals));
        record(report, way, tab_count, edits, &builds, &times);
    }
    let ratio = medians[1] / medians[0];
    report.set(
        "edit to new page: through the runner ÷ under `cargo run` (medians, same run)",
        "≤ 1.0",
        "debug",
        format!("{ratio:.2} ({:.0} ms ÷ {:.0} ms)", medians[1], medians[0]),
        Some(ratio <= 1.0),
    );
    Ok(())
}

/// How watchexec starts the demo.
#[derive(Debug, Clone, Copy)]
enum Way<'a> {
    /// `cargo run`, as without the runner.
    CargoRun,
    /// `axum-autoreload run` (the runner at this path).
    Runner(&'a Path),
}

impl Way<'_> {
    fn name(self) -> &'static str {
        match self {
            Way::CargoRun => "cargo run",
            Way::Runner(_) => "the runner",
        }
    }
}

/// What the edits of one [`Way`] took, in milliseconds.
struct Times {
    /// Edit → every tab shows the new page.
    totals: Vec<f64>,
    /// Edit → the new server started.
    to_server: Vec<f64>,
    /// The new server started → the last tab shows the page.
    server_to_tabs: Vec<f64>,
}

/// Records the figures of one [`Way`] in `report`.
fn record(
    report: &mut Report,
    way: Way<'_>,
    tab_count: usize,
    edits: usize,
    builds: &[f64],
    times: &Times,
) {
    let total = median(&times.totals);
    let build = median(builds);
    let overhead = total - build;
    let name = way.name();
    report.set(
        &format!(
            "edit to new page ({name}): edit → all {tab_count} tabs show it (median of {edits})"
        ),
        "",
        "debug",
        format!("{total:.0} ms"),
        None,
    );
    report.set(
        &format!("edit to new page ({name}): overhead beyond the build"),
        "≤ 150 ms",
        "debug",
        format!(
            "{overhead:.0} ms (edit → new server up {:.0} ms, server up → last tab {:.0} ms)",
            median(&times.to_server),
            median(&times.server_to_tabs)
        ),
        Some(overhead <= 150.0),
    );
    report.note(format!(
        "edit to new page ({name}): edit → all tabs {:.0?} ms; edit → server start {:.0?} ms; server start → last tab {:.0?} ms",
        times.totals, times.to_server, times.server_to_tabs
    ));
}

async fn connect(driver_port: u16, chromium: &Path, profile: &Path) -> io::Result<Client> {
    let deadline = Instant::now() + SETTLE;
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        return Err(io::Error::other("capabilities are not an object"));
    };
    loop {
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities.clone());
        match builder
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
        {
            Ok(client) => return Ok(client),
            Err(err) if Instant::now() > deadline => {
                return Err(io::Error::other(format!("no Chromium session: {err}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &Client,
    watchexec: &mut Proc,
    port: u16,
    pages: &Path,
    title: &mut String,
    edits: usize,
    tab_count: usize,
    report: &mut Report,
) -> io::Result<Times> {
    let url = format!("http://127.0.0.1:{port}/");
    let mut tabs = vec![client.window().await.map_err(io::Error::other)?];
    client.goto(&url).await.map_err(io::Error::other)?;
    for _ in 1..tab_count {
        let tab = client.new_window(true).await.map_err(io::Error::other)?;
        client
            .switch_to_window(tab.handle.clone())
            .await
            .map_err(io::Error::other)?;
        client.goto(&url).await.map_err(io::Error::other)?;
        tabs.push(tab.handle);
    }
    wait_all(client, &tabs, watchexec, SETTLE, "every tab live", |tab| {
        tab.autoreload.as_deref() == Some("live")
    })
    .await?;

    let mut totals = Vec::new();
    let mut to_server = Vec::new();
    let mut server_to_tabs = Vec::new();
    for k in 0..edits {
        let new = format!(
            "bench edit {k} {}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let old = crate::client::get(addr, "/auto_refresh/status").await?;
        let old = crate::server::json_string(&old.text(), "instance");
        let edited = epoch_ms();
        write_title(pages, title, &new)?;
        *title = new.clone();
        // Wait for the new server with one cheap request at a time (it waits in the
        // socket's backlog while cargo builds), not by polling the tabs: WebDriver
        // round trips to ten tabs every 50 ms would take CPU from the build. The
        // tabs' own timestamps say when each showed the page.
        crate::server::wait_ready(addr, old.as_deref(), EDIT_LIMIT).await?;
        // Leave the tabs alone while they reload: a WebDriver round trip to each tab
        // takes CPU from the reloads it would measure. They record their own times.
        tokio::time::sleep(UNTOUCHED).await;
        let states = wait_all(
            client,
            &tabs,
            watchexec,
            EDIT_LIMIT,
            "every tab on the new title",
            |tab| {
                tab.title == new && tab.shown.is_some() && tab.autoreload.as_deref() == Some("live")
            },
        )
        .await?;
        let last = states
            .iter()
            .filter_map(|t| t.shown)
            .fold(f64::MIN, f64::max);
        let first = states
            .iter()
            .filter_map(|t| t.shown)
            .fold(f64::MAX, f64::min);
        let started = states
            .iter()
            .filter_map(|t| t.instance.as_deref().and_then(instance_start_ms))
            .fold(f64::MIN, f64::max);
        let began_first = states
            .iter()
            .filter_map(|t| t.began)
            .fold(f64::MAX, f64::min);
        let began_last = states
            .iter()
            .filter_map(|t| t.began)
            .fold(f64::MIN, f64::max);
        let loads: Vec<f64> = states
            .iter()
            .filter_map(|t| Some(t.shown? - t.began?))
            .collect();
        let phase = |i: usize| {
            median(
                &states
                    .iter()
                    .filter_map(|t| t.phases.map(|p| p[i]))
                    .collect::<Vec<_>>(),
            )
        };
        report.note(format!(
            "edit {k}: server up → tabs began reloading {:.0}–{:.0} ms; reload → DOM ready per tab median {:.0} ms, max {:.0} ms \
             (median per tab from the reload: request sent {:.0} ms, first byte {:.0} ms, last byte {:.0} ms, DOM interactive {:.0} ms, DOMContentLoaded {:.0} ms)",
            began_first - started,
            began_last - started,
            median(&loads),
            loads.iter().copied().fold(0.0, f64::max),
            phase(0),
            phase(1),
            phase(2),
            phase(3),
            phase(4),
        ));
        totals.push(last - edited);
        to_server.push(started - edited);
        server_to_tabs.push(last - started);
        println!(
            "  edit {k}: every tab after {:.0} ms (first {:.0} ms); new server started {:.0} ms after the edit",
            last - edited,
            first - edited,
            started - edited
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(Times {
        totals,
        to_server,
        server_to_tabs,
    })
}
