//! Edit to new page: a real `watchexec --socket`, a real headless Chromium with
//! `--tabs` tabs on the demo, edits of the title in `demo/src/app/pages.rs`: how long
//! until every tab shows the new title, under `cargo run` and through the runner,
//! next to how long `cargo build` alone takes for the same kind of edit.
//!
//! The two ways alternate, one edit each (cargo run, the runner, cargo run, …), so
//! that a machine that slows down or speeds up during the run weighs on both alike.
//! The workspace is built from a copy (outside any git checkout, so that
//! watchexec's ignore files do not hide it) into `target/bench-e2e`, both kept
//! between runs. When each tab showed the new page comes from the tab itself
//! (`performance.timeOrigin` plus the navigation's `domContentLoadedEventEnd`, on
//! the same clock as the edit), not from polling, so the polling interval does not
//! blur the figure.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dev_support::chromium::{Browser, Options, TabState};
use dev_support::process::Proc;
use dev_support::socket::free_port;
use dev_support::tools::{find_or_skip, CHROMEDRIVER, CHROMIUM, WATCHEXEC};
use serde_json::Value;

use crate::report::{median, Report};
use crate::server::new_instance;

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

/// The navigation of the page in a tab, in ms: when it began (since the epoch),
/// then from there: request sent, first byte, last byte, DOM interactive,
/// DOMContentLoaded end (when the page was shown).
const READ_TIMES: &str = r#"
    var nav = performance.getEntriesByType("navigation")[0];
    return nav && nav.domContentLoadedEventEnd > 0
        ? [performance.timeOrigin, nav.requestStart, nav.responseStart, nav.responseEnd,
           nav.domInteractive, nav.domContentLoadedEventEnd]
        : null;
"#;

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
#[derive(Debug, Default)]
struct Times {
    /// Edit → every tab shows the new page.
    totals: Vec<f64>,
    /// Edit → the new server started.
    to_server: Vec<f64>,
    /// The new server started → the last tab shows the page.
    server_to_tabs: Vec<f64>,
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The title in `pages`.
fn read_title(pages: &Path) -> io::Result<String> {
    let source = fs::read_to_string(pages)?;
    let start = source.find(TITLE_PREFIX).map(|at| at + TITLE_PREFIX.len());
    let title = start.and_then(|start| Some(&source[start..start + source[start..].find('"')?]));
    title
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("no `{TITLE_PREFIX}…\"` in {}", pages.display())))
}

/// Replaces the title with a new one, atomically (written beside, renamed in), as
/// an editor saves; returns it.
fn new_title(pages: &Path, what: &str) -> io::Result<String> {
    let new = format!(
        "bench {what} {}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let source = fs::read_to_string(pages)?;
    let old = format!("{TITLE_PREFIX}{}\";", read_title(pages)?);
    let staged = pages.with_extension("rs.edited");
    fs::write(
        &staged,
        source.replacen(&old, &format!("{TITLE_PREFIX}{new}\";"), 1),
    )?;
    fs::rename(&staged, pages)?;
    Ok(new)
}

/// `cargo build ARGS` in `app`, timed; fails when the build fails or overruns `limit`.
fn cargo_build(
    app: &Path,
    target_dir: &Path,
    args: &[&str],
    limit: Duration,
) -> io::Result<Duration> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg("build")
        .args(args)
        .current_dir(app)
        .env("CARGO_TARGET_DIR", target_dir);
    let started = Instant::now();
    let mut build = Proc::spawn("cargo build", command);
    match build.wait_exit(limit) {
        Some(status) if status.success() => Ok(started.elapsed()),
        Some(status) => Err(io::Error::other(format!(
            "cargo build failed ({status})\n{}",
            build.tail(30)
        ))),
        None => Err(io::Error::other(format!("cargo build overran {limit:?}"))),
    }
}

/// The server start time in an instance id `<start ms hex>-<random>`.
fn instance_start_ms(instance: &str) -> Option<f64> {
    let start = instance.split('-').next()?;
    u64::from_str_radix(start, 16).ok().map(|ms| ms as f64)
}

/// The figures, recorded in `report` under the debug column: `cargo build` alone,
/// under `cargo run`, through the runner, and the ratio of the two ways.
pub(crate) async fn edit_to_page(
    cargo_target_dir: &Path,
    edits: usize,
    tab_count: usize,
    report: &mut Report,
) -> io::Result<()> {
    let Some([watchexec, chromium, chromedriver]) =
        find_or_skip([WATCHEXEC, CHROMIUM, CHROMEDRIVER])
    else {
        report.note(
            "edit to new page: skipped, watchexec, chromium or chromedriver missing on PATH".into(),
        );
        return Ok(());
    };
    let work = std::env::temp_dir().join("axum-autoreload-bench-e2e");
    let app = work.join("app");
    if app.exists() {
        fs::remove_dir_all(&app)?;
    }
    // BENCH_E2E_SOURCE: measure another tree (a variant of the workspace) than this one.
    match std::env::var_os("BENCH_E2E_SOURCE").map(PathBuf::from) {
        Some(source) => {
            dev_support::scratch::copy_dir(&source, &app);
            report.note(format!(
                "edit to new page: measured the tree at {}",
                source.display()
            ));
        }
        None => dev_support::scratch::copy_workspace(&app),
    }
    let target_dir = cargo_target_dir.join("bench-e2e");
    let pages = app.join("demo/src/app/pages.rs");

    // The build alone, for the same kind of edit.
    println!(
        "  edit: first build of the copy into {} (may compile every dependency)",
        target_dir.display()
    );
    let first = cargo_build(&app, &target_dir, &[], FIRST_BUILD)?;
    // The runner, built from the copy as `cargo install --path cli` would.
    cargo_build(
        &app,
        &target_dir,
        &["-p", "axum-autoreload-cli"],
        FIRST_BUILD,
    )?;
    let runner = target_dir.join("debug/axum-autoreload");
    println!("  edit: first build took {:.1} s", first.as_secs_f64());
    let mut builds = Vec::new();
    for k in 0..edits {
        new_title(&pages, &format!("build {k}"))?;
        let took = cargo_build(&app, &target_dir, &[], EDIT_LIMIT)?.as_secs_f64() * 1000.0;
        println!("  edit: cargo build alone after an edit: {took:.0} ms");
        builds.push(took);
    }
    report.info(
        "edit to new page: `cargo build` alone for the same edit (median)",
        "debug",
        format!("{:.0} ms", median(&builds)),
    );

    // watchexec, Chromium, the tabs, the same edits, alternating the two ways.
    let mut browser = Browser::start(&chromium, &chromedriver, Options::default()).await;
    let ways = [Way::CargoRun, Way::Runner(&runner)];
    let mut times = [Times::default(), Times::default()];
    for k in 0..edits {
        for (way, times) in ways.iter().zip(&mut times) {
            let port = free_port();
            let mut command = Command::new(&watchexec);
            command
                .args([
                    "--socket",
                    &format!("127.0.0.1:{port}"),
                    "--restart",
                    "--stop-signal",
                    "SIGINT",
                ])
                .args(["-w", "src", "-w", "demo/src", "--"]);
            match way {
                Way::CargoRun => command.args(["cargo", "run"]),
                Way::Runner(runner) => command.arg(runner).arg("run"),
            };
            command
                .current_dir(&app)
                .env("CARGO_TARGET_DIR", &target_dir)
                .env("RUST_LOG", "info");
            let watchexec = Proc::spawn("watchexec", command);
            let what = format!("edit {k} ({})", way.name());
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let (total, to_server, to_tabs) = one_edit(
                &mut browser,
                watchexec,
                addr,
                &pages,
                tab_count,
                &what,
                report,
            )
            .await?;
            times.totals.push(total);
            times.to_server.push(to_server);
            times.server_to_tabs.push(to_tabs);
        }
    }
    browser.close(Ok(())).await;

    let mut medians = [0.0; 2];
    for ((way, times), median_total) in ways.iter().zip(&times).zip(&mut medians) {
        let name = way.name();
        let total = median(&times.totals);
        *median_total = total;
        let overhead = total - median(&builds);
        let figure = format!(
            "edit to new page ({name}): edit → all {tab_count} tabs show it (median of {edits})"
        );
        report.info(&figure, "debug", format!("{total:.0} ms"));
        let (to_server, to_tabs) = (median(&times.to_server), median(&times.server_to_tabs));
        report.set(
            &format!("edit to new page ({name}): overhead beyond the build"),
            "≤ 150 ms",
            "debug",
            format!("{overhead:.0} ms (edit → new server up {to_server:.0} ms, server up → last tab {to_tabs:.0} ms)"),
            Some(overhead <= 150.0),
        );
        report.note(format!(
            "edit to new page ({name}): edit → all tabs {:.0?} ms; edit → server start {:.0?} ms; server start → last tab {:.0?} ms",
            times.totals, times.to_server, times.server_to_tabs
        ));
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

/// One edit under a `watchexec` just started on `addr`: the tabs pointed at it and
/// live, the title edited, the new server up, then every tab on the new title.
/// Edit → last tab, edit → new server, new server → last tab, in ms.
async fn one_edit(
    browser: &mut Browser,
    mut watchexec: Proc,
    addr: SocketAddr,
    pages: &Path,
    tab_count: usize,
    what: &str,
    report: &mut Report,
) -> io::Result<(f64, f64, f64)> {
    let old = new_instance(addr, None, SETTLE + Duration::from_secs(60)).await?;
    let url = format!("http://{addr}/");
    for i in 0..tab_count {
        if i < browser.tabs.len() {
            browser.switch(i).await;
            browser.client.goto(&url).await
        } else {
            browser.open_tab(&url).await
        }
        .map_err(io::Error::other)?;
    }
    let mut watchexec_runs = || assert!(watchexec.exited().is_none(), "watchexec exited");
    browser
        .wait_all_checking(
            "every tab live",
            SETTLE,
            |_, tab| tab.is_live(),
            &mut watchexec_runs,
        )
        .await;

    let edited = epoch_ms();
    let new = new_title(pages, what)?;
    // Wait for the new server with one cheap request at a time (it waits in the
    // socket's backlog while cargo builds), not by polling the tabs: WebDriver
    // round trips to every tab would take CPU from the build. Then leave the tabs
    // alone while they reload: they record their own times.
    new_instance(addr, Some(&old), EDIT_LIMIT).await?;
    tokio::time::sleep(UNTOUCHED).await;
    let done = |_: usize, tab: &TabState| tab.title == new && tab.is_live();
    let states = browser
        .wait_all_checking(
            "every tab on the new title",
            EDIT_LIMIT,
            done,
            &mut watchexec_runs,
        )
        .await;
    let mut navigations = Vec::new();
    for i in 0..tab_count {
        browser.switch(i).await;
        let times = browser
            .client
            .execute(READ_TIMES, Vec::new())
            .await
            .map_err(io::Error::other)?;
        let times: Vec<f64> = times
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        navigations.push(
            <[f64; 6]>::try_from(times).map_err(|_| io::Error::other("a tab without its times"))?,
        );
    }
    let started = states
        .iter()
        .filter_map(|tab| tab.instance.as_deref().and_then(instance_start_ms))
        .fold(f64::MIN, f64::max);
    let shown: Vec<f64> = navigations.iter().map(|n| n[0] + n[5]).collect();
    let began: Vec<f64> = navigations.iter().map(|n| n[0]).collect();
    let (first, last) = (
        shown.iter().copied().fold(f64::MAX, f64::min),
        shown.iter().copied().fold(f64::MIN, f64::max),
    );
    let began_first = began.iter().copied().fold(f64::MAX, f64::min);
    let began_last = began.iter().copied().fold(f64::MIN, f64::max);
    let loads: Vec<f64> = navigations.iter().map(|n| n[5]).collect();
    let phase = |i: usize| median(&navigations.iter().map(|n| n[i]).collect::<Vec<_>>());
    report.note(format!(
        "{what}: server up → tabs began reloading {:.0}–{:.0} ms; reload → DOM ready per tab median {:.0} ms, max {:.0} ms \
         (median per tab from the reload: request sent {:.0} ms, first byte {:.0} ms, last byte {:.0} ms, DOM interactive {:.0} ms, DOMContentLoaded {:.0} ms)",
        began_first - started,
        began_last - started,
        median(&loads),
        loads.iter().copied().fold(0.0, f64::max),
        phase(1),
        phase(2),
        phase(3),
        phase(4),
        phase(5),
    ));
    println!(
        "  {what}: every tab after {:.0} ms (first {:.0} ms); new server started {:.0} ms after the edit",
        last - edited,
        first - edited,
        started - edited
    );
    Ok((last - edited, started - edited, last - started))
}
