//! [`Scenario::Edit`](crate::Scenario::Edit), editing the title in
//! `demo/src/app/pages.rs`. The two ways alternate, one edit each, so that a
//! machine that slows down or speeds up during the run weighs on both alike. The
//! workspace is built from a copy (outside any git checkout, so that watchexec's
//! ignore files do not hide it) into `target/bench-e2e`, both kept between runs.
//! When each tab showed the new page comes from the tab itself (on the same clock
//! as the edit), not from polling, so the polling interval does not blur the figure.

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
use nix::sys::signal::Signal;

use crate::report::{median, Report};
use crate::scenarios::new_instance;
use crate::Bench;

/// How long the first build of the copy may take (it may compile every dependency).
const FIRST_BUILD: Duration = Duration::from_secs(30 * 60);
/// How long one edit may take to reach every tab.
pub(crate) const EDIT_LIMIT: Duration = Duration::from_secs(5 * 60);
/// How long tabs may take to settle when nothing is building.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);
/// How long watchexec's first start may take to answer (a build of a built copy).
pub(crate) const FIRST_START: Duration = Duration::from_secs(90);

/// How the new page came to a tab, in ms: when it began (since the epoch), then
/// from there: request sent, first byte, last byte, DOM interactive, shown. After a
/// navigation these are the navigation's (shown: DOMContentLoaded end); after a
/// morph, from the client's `axum-autoreload:update` mark: the tab's own fetch of
/// the page (its resource timing; -1 when the shared worker fetched it) and the
/// title's change, seen by [`WATCH_TITLE`].
const READ_TIMES: &str = r#"
    var shown = window.benchTitleChanged;
    if (shown) {
        var last = function (entries) { return entries[entries.length - 1]; };
        var updates = performance.getEntriesByName("axum-autoreload:update", "mark");
        if (!updates.length) return null;
        var start = last(updates).startTime;
        // The tab's own fetch of the page, when it made one (the shared worker
        // fetches it for the tabs that joined it).
        var fetched = last(performance.getEntriesByType("resource").filter(function (entry) {
            return entry.initiatorType === "fetch" && entry.name === location.href
                && entry.startTime >= start;
        }));
        var at = shown - performance.timeOrigin - start;
        var step = function (name) {
            var marks = performance.getEntriesByName("axum-autoreload:" + name, "mark");
            return marks.length ? last(marks).startTime - start : -1;
        };
        var request = function (field) { return fetched ? fetched[field] - start : -1; };
        return [performance.timeOrigin + start, request("requestStart"),
            request("responseStart"), request("responseEnd"), at, at,
            step("fetched"), step("parsed"), step("morphed"), step("processed")];
    }
    var nav = performance.getEntriesByType("navigation")[0];
    return nav && nav.domContentLoadedEventEnd > 0
        ? [performance.timeOrigin, nav.requestStart, nav.responseStart, nav.responseEnd,
           nav.domInteractive, nav.domContentLoadedEventEnd, -1, -1, -1, -1]
        : null;
"#;
/// The morph's steps in [`READ_TIMES`] after its six fields: the User Timing marks
/// the client script sets (ms from the update's start; -1 after a navigation).
const MORPH_STEPS: [&str; 4] = ["fetched", "parsed", "morphed", "processed"];

/// Notes in `window.benchTitleChanged` when the page's title first changes (ms
/// since the epoch), as a morph changes it without a navigation.
const WATCH_TITLE: &str = r#"
    var title = document.title;
    window.benchTitleChanged = null;
    new MutationObserver(function () {
        if (window.benchTitleChanged === null && document.title !== title) {
            window.benchTitleChanged = performance.timeOrigin + performance.now();
        }
    }).observe(document.head, { childList: true, subtree: true, characterData: true });
"#;

pub(crate) fn epoch_ms() -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Gives the page a new title, as an editor saves; returns it.
pub(crate) fn new_title(pages: &Path, what: &str) -> io::Result<String> {
    const LITERAL: &str = "const TITLE: &str = \"";
    let source = fs::read_to_string(pages)?;
    let old = source.lines().find(|line| line.starts_with(LITERAL));
    let old = old.ok_or_else(|| io::Error::other(format!("no `{LITERAL}` in {pages:?}")))?;
    let new = format!("bench {what} {:.3}", epoch_ms());
    dev_support::scratch::edit(pages, old, &format!("{LITERAL}{new}\";"));
    Ok(new)
}

/// `cargo build ARGS` in `app`, timed; fails when the build fails or overruns `limit`.
fn cargo_build(app: &Path, target_dir: &Path, args: &[&str], limit: Duration) -> io::Result<f64> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.arg("build").args(args).current_dir(app);
    command.env("CARGO_TARGET_DIR", target_dir);
    let started = Instant::now();
    let mut build = Proc::spawn("cargo build", command);
    match build.wait_exit(limit) {
        Some(status) if status.success() => Ok(started.elapsed().as_secs_f64() * 1000.0),
        Some(status) => Err(io::Error::other(format!("{status}\n{}", build.tail(30)))),
        None => Err(io::Error::other(format!("cargo build overran {limit:?}"))),
    }
}

/// The scratch copy of the workspace, built: where it is and what it runs.
pub(crate) struct Copy {
    pub(crate) app: PathBuf,
    /// Its `CARGO_TARGET_DIR`.
    pub(crate) target_dir: PathBuf,
    /// The demo's `pages.rs`, whose title the edits change.
    pub(crate) pages: PathBuf,
    /// `axum-autoreload`, built from the copy as `cargo install --path cli` would,
    /// kept in `runner/` of the target directory.
    pub(crate) runner: PathBuf,
}

impl Copy {
    /// A new copy of the workspace (outside any git checkout, so that watchexec's
    /// ignore files do not hide it), the demo and the runner built from it into
    /// `target/bench-e2e`.
    pub(crate) fn build(cargo_target_dir: &Path) -> io::Result<Self> {
        let app = std::env::temp_dir().join("axum-autoreload-bench-e2e/app");
        if app.exists() {
            fs::remove_dir_all(&app)?;
        }
        dev_support::scratch::copy_workspace(&app);
        let target_dir = cargo_target_dir.join("bench-e2e");
        println!("  first build of the copy into {target_dir:?}");
        let first = cargo_build(&app, &target_dir, &[], FIRST_BUILD)?;
        // The runner's own binary is kept in `runner/`, out of the demo's
        // `debug/` (where the runner keeps its copies of the app, in
        // `debug/.axum-autoreload/`).
        let (built, runner) = (
            target_dir.join("debug/axum-autoreload"),
            target_dir.join("runner"),
        );
        cargo_build(
            &app,
            &target_dir,
            &["-p", "axum-autoreload-cli"],
            FIRST_BUILD,
        )?;
        fs::create_dir_all(&runner)?;
        let runner = runner.join("axum-autoreload");
        fs::rename(&built, &runner)?;
        println!("  first build of the copy took {:.1} s", first / 1000.0);
        let pages = app.join("demo/src/app/pages.rs");
        Ok(Self {
            app,
            target_dir,
            pages,
            runner,
        })
    }

    /// `watchexec --socket 127.0.0.1:PORT MODE --stop-signal SIGINT` on `src/`,
    /// `demo/src/` and `README.md`, running `PROGRAM run` in the copy; MODE is
    /// `--restart` or `--signal SIGHUP`.
    pub(crate) fn watch(&self, watchexec: &Path, port: u16, mode: &str, program: &Path) -> Proc {
        let mut command = Command::new(watchexec);
        command
            .args(["--socket", &format!("127.0.0.1:{port}")])
            .args(mode.split(' '));
        command.args("--stop-signal SIGINT -w src -w demo/src -w README.md --".split(' '));
        command.arg(program).arg("run");
        command.current_dir(&self.app).env("RUST_LOG", "info");
        command.env("CARGO_TARGET_DIR", &self.target_dir);
        Proc::spawn("watchexec", command).stop_with(Signal::SIGINT, Duration::from_secs(10))
    }
}

/// Points `count` tabs at `url` (those open navigate, the rest are opened) and
/// waits until every one is live; panics if `watchexec` exits meanwhile.
pub(crate) async fn point_tabs(
    browser: &mut Browser,
    url: &str,
    count: usize,
    watchexec: &mut Proc,
) -> io::Result<()> {
    for i in 0..browser.tabs.len() {
        browser.switch(i).await;
        browser.client.goto(url).await.map_err(io::Error::other)?;
    }
    // Each page in a window of its own, as ten windows side by side: Chromium
    // shows one tab per window (`document.visibilityState`), and the client
    // leaves a hidden tab as it is until it is shown.
    for _ in browser.tabs.len()..count {
        let window = browser.client.new_window(false).await;
        let window = window.map_err(io::Error::other)?.handle;
        browser
            .client
            .switch_to_window(window.clone())
            .await
            .map_err(io::Error::other)?;
        browser.tabs.push(window);
        browser.client.goto(url).await.map_err(io::Error::other)?;
    }
    let mut running = || watchexec.exited().is_none() || panic!("watchexec exited");
    let live = |_: usize, tab: &TabState| running() && tab.is_live();
    browser.wait_all("every tab live", SETTLE, live).await;
    Ok(())
}

/// The figures, recorded in `report` under the debug column: `cargo build` alone,
/// under `cargo run`, through the runner, and the ratio of the two ways.
pub(crate) async fn edit_to_page(bench: &mut Bench, cargo_target_dir: &Path) -> io::Result<()> {
    let (edits, tab_count) = (bench.options.edits, usize::from(bench.options.tabs));
    let report = &mut bench.report;
    let tools = find_or_skip([WATCHEXEC, CHROMIUM, CHROMEDRIVER]);
    let Some([watchexec, chromium, chromedriver]) = tools else {
        let skipped = "edit to new page: skipped, a tool is missing on PATH";
        report.notes.push(skipped.into());
        return Ok(());
    };
    // The build alone, for the same kind of edit.
    let copy = Copy::build(cargo_target_dir)?;
    let (app, target_dir, pages) = (&copy.app, &copy.target_dir, &copy.pages);
    let mut builds = Vec::new();
    for k in 0..edits {
        new_title(pages, &format!("build {k}"))?;
        let build = cargo_build(app, target_dir, &[], EDIT_LIMIT)?;
        println!("  edit: cargo build alone after an edit: {build:.0} ms");
        builds.push(build);
    }
    let build = median(&builds);
    let figure = "edit to new page: `cargo build` alone for the same edit (median)";
    report.info(figure, "debug", format!("{build:.0} ms"));

    // watchexec, Chromium, the tabs, the same edits, alternating the two ways:
    // `cargo run` as without the runner, and `axum-autoreload run`.
    let browser = Browser::start(&chromium, &chromedriver, Options::default()).await;
    let ways = [
        ("cargo run", Path::new("cargo")),
        ("the runner", copy.runner.as_path()),
    ];
    // Per way: edit → every tab shows the new page, edit → the new server started,
    // the new server started → the last tab shows the page; in ms.
    let mut times: [[Vec<f64>; 3]; 2] = Default::default();
    browser
        .run(async |browser| -> io::Result<()> {
            for k in 0..edits {
                for ((name, program), times) in ways.iter().zip(&mut times) {
                    let port = free_port();
                    let watchexec = copy.watch(&watchexec, port, "--restart", program);
                    let what = format!("edit {k} ({name})");
                    let run = one_edit(browser, watchexec, port, pages, tab_count, &what, report);
                    for (time, took) in times.iter_mut().zip(run.await?) {
                        time.push(took);
                    }
                }
            }
            Ok(())
        })
        .await?;

    for ((name, _), [totals, to_server, to_tabs]) in ways.iter().zip(&times) {
        let total = median(totals);
        let all = format!("all {tab_count} tabs show it (median of {edits})");
        let figure = format!("edit to new page ({name}): edit → {all}");
        report.info(&figure, "debug", format!("{total:.0} ms"));
        let (overhead, server, tabs) = (total - build, median(to_server), median(to_tabs));
        let figure = format!("edit to new page ({name}): overhead beyond the build");
        let text = format!(
            "{overhead:.0} ms (edit → new server up {server:.0} ms, server up → last tab {tabs:.0} ms)"
        );
        report.set(&figure, "≤ 150 ms", "debug", text, Some(overhead <= 150.0));
        report.notes.push(format!(
            "edit to new page ({name}): edit → all tabs {totals:.0?} ms; \
             edit → server start {to_server:.0?} ms; server start → last tab {to_tabs:.0?} ms"
        ));
    }
    let [cargo_run, through_runner] = times.each_ref().map(|[totals, _, _]| median(totals));
    let ratio = through_runner / cargo_run;
    let figure = "edit to new page: through the runner ÷ under `cargo run` (medians, same run)";
    let text = format!("{ratio:.2} ({through_runner:.0} ms ÷ {cargo_run:.0} ms)");
    report.set(figure, "≤ 1.0", "debug", text, Some(ratio <= 1.0));
    Ok(())
}

/// One edit under a `watchexec` just started on `port`: the tabs pointed at it and
/// live, the title edited, the new server up, then every tab on the new title.
/// Edit → last tab, edit → new server, new server → last tab, in ms.
async fn one_edit(
    browser: &mut Browser,
    mut watchexec: Proc,
    port: u16,
    pages: &Path,
    tab_count: usize,
    what: &str,
    report: &mut Report,
) -> io::Result<[f64; 3]> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let old = new_instance(addr, None, FIRST_START).await?;
    point_tabs(
        browser,
        &format!("http://{addr}/"),
        tab_count,
        &mut watchexec,
    )
    .await?;
    // Every read of the tabs checks that watchexec still runs.
    let mut running = || watchexec.exited().is_none() || panic!("watchexec exited");
    for i in 0..tab_count {
        browser.exec(i, WATCH_TITLE, Vec::new()).await;
    }

    let edited = epoch_ms();
    let new = new_title(pages, what)?;
    // Wait for the new server with one cheap request at a time (it waits in the
    // socket's backlog while cargo builds), not by polling the tabs: WebDriver
    // round trips to every tab would take CPU from the build. Then leave the tabs
    // alone for 2 s while they reload: the figures come from their own clocks, not
    // from when they are read.
    new_instance(addr, Some(&old), EDIT_LIMIT).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shown = |_: usize, tab: &TabState| running() && tab.title == new && tab.is_live();
    let states = browser.wait_all("the new title", EDIT_LIMIT, shown).await;
    let mut navigations = Vec::new();
    for i in 0..tab_count {
        let times = browser.exec(i, READ_TIMES, Vec::new()).await;
        navigations.push(serde_json::from_value::<[f64; 10]>(times).map_err(io::Error::other)?);
    }
    // The server's start, from its instance id `<start ms hex>-<random>`.
    let start =
        |tab: &TabState| u64::from_str_radix(tab.instance.as_ref()?.split('-').next()?, 16).ok();
    let started = states.iter().filter_map(start).max().unwrap_or_default() as f64;
    // Per field of the navigations: their median, least and greatest.
    let field = |i: usize| navigations.iter().map(|n| n[i]).collect::<Vec<_>>();
    let least = |values: Vec<f64>| values.into_iter().reduce(f64::min).unwrap_or_default();
    let greatest = |values: Vec<f64>| values.into_iter().reduce(f64::max).unwrap_or_default();
    let shown: Vec<f64> = navigations.iter().map(|n| n[0] + n[5]).collect();
    let (first, last) = (least(shown.clone()), greatest(shown));
    // The median of a field over the tabs that have it (-1: not measured there).
    let measured = |i: usize| {
        let values: Vec<f64> = field(i).into_iter().filter(|t| *t >= 0.0).collect();
        match values.is_empty() {
            true => "-".to_owned(),
            false => format!("{:.0}", median(&values)),
        }
    };
    let [sent, first_byte, last_byte] = [1, 2, 3].map(measured);
    let [interactive, loaded] = [4, 5].map(|i| median(&field(i)));
    let (began_first, began_last) = (least(field(0)) - started, greatest(field(0)) - started);
    let loaded_max = greatest(field(5));
    let steps = MORPH_STEPS.iter().enumerate().map(|(i, step)| {
        let times: Vec<f64> = field(6 + i).into_iter().filter(|t| *t >= 0.0).collect();
        match times.is_empty() {
            true => format!("{step} -"),
            false => format!(
                "{step} {:.0}/{:.0}",
                median(&times),
                greatest(times.clone())
            ),
        }
    });
    let steps = steps.collect::<Vec<_>>().join(", ");
    report.notes.push(format!(
        "{what}: morph steps per tab from the update's start, median/max ms: {steps}"
    ));
    report.notes.push(format!(
        "{what}: server up → tabs began updating {began_first:.0}–{began_last:.0} ms; update → \
         shown per tab median {loaded:.0} ms, max {loaded_max:.0} ms (median per tab from the \
         update's start: request sent {sent} ms, first byte {first_byte} ms, last byte \
         {last_byte} ms, DOM interactive or morphed {interactive:.0} ms, shown {loaded:.0} ms)"
    ));
    let (total, first, to_server) = (last - edited, first - edited, started - edited);
    println!("  {what}: every tab after {total:.0} ms (first {first:.0} ms); new server started {to_server:.0} ms after the edit");
    Ok([total, to_server, last - started])
}
