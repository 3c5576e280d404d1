//! [`Scenario::Supervisor`](crate::Scenario::Supervisor), issue 18's "Measure"
//! table: the runner under watchexec in restart mode (`--restart`: a new runner
//! per change, the app gone while cargo builds; the way before) and in signal
//! mode (`--signal SIGHUP`: one runner, the last good app serving through the
//! build; the way after), on the scratch copy that [`Copy`] builds. Each round
//! runs one session of each way, in turn, so that the machine's drift weighs on
//! both alike. A session starts watchexec, points the tabs at the demo, then:
//!
//! 1. edits the title: the longest wait of a request made from the save until the
//!    new app answers (one client asking `GET /auto_refresh/status` in a loop, each
//!    request allowed to wait the whole build), and the save to the new app's first
//!    answer less the build. The build is cargo's wall time as the runner measured
//!    it, read from its log line `build finished in N ms` for that change: timing
//!    `cargo build` separately would add its own ±200 ms to a difference of tens of
//!    milliseconds;
//! 2. adds a line to README.md (watched; no crate reads it, so cargo finds the
//!    binary fresh): new instances, and tabs whose reload counter moved;
//! 3. breaks the build: once the runner logged `build failed`, a JSON `GET /posts`,
//!    a JSON `POST /posts` (stored if the feed lists it after the fix), and a new
//!    page load (its status over HTTP; in tab 0, whether the page is the app's and
//!    whether the report shows, within 3 s), and which open tabs show the report;
//!    then fixes it;
//! 4. kills the runner with SIGKILL: when its app is gone.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use dev_support::chromium::{Browser, Options, TabState};
use dev_support::http;
use dev_support::process::{descendants, running, Proc};
use dev_support::socket::free_port;
use dev_support::tools::{find_or_skip, CHROMEDRIVER, CHROMIUM, WATCHEXEC};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::edit::{new_title, point_tabs, Copy, EDIT_LIMIT, FIRST_START, SETTLE};
use crate::report::{median, when};
use crate::scenarios::{new_instance, new_instance_waits};
use crate::Bench;

/// The two ways, before and after: a name and watchexec's mode flags.
const WAYS: [(&str, &str); 2] = [
    ("restart mode", "--restart"),
    ("signal mode", "--signal SIGHUP"),
];

/// The runner's log lines for a build that ended, before the milliseconds.
const BUILT: &str = "build finished in ";
const FAILED: &str = "build failed in ";

/// A request of the app's own script, and a browser's page load.
const JSON_GET: &str = "Host: localhost\r\nAccept: application/json\r\n";
const PAGE_LOAD: &str = "Host: localhost\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n";

/// What a tab shows during a failed build: the demo's page (its `#instance`),
/// and rustc's error, in the overlay or as the page.
const READ_SHOWN: &str = r#"
    var overlay = document.getElementById("axum-autoreload-overlay");
    var text = (overlay && overlay.shadowRoot ? overlay.shadowRoot.textContent : "") +
        (document.body ? document.body.textContent : "");
    return { app: !!document.getElementById("instance"), report: text.indexOf("E0425") >= 0 };
"#;

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct Shown {
    app: bool,
    report: bool,
}

/// What one session measured.
#[derive(Debug, Default)]
struct Session {
    /// Longest wait of a request, save → new app less the build, the build; ms.
    wait: f64,
    overhead: f64,
    build: f64,
    /// The broken build: `GET /posts`, `POST /posts`, the page load, as text.
    broken: String,
    /// Open tabs that showed the report.
    tabs_with_report: usize,
    /// The unchanged binary: new instances, tabs reloaded.
    restarts: usize,
    reloads: usize,
    /// SIGKILL of the runner → its app gone, ms; `None` when it still ran after 5 s.
    gone: Option<f64>,
}

/// The numbers after each `phrase` in `log`.
fn logged_ms(log: &str, phrase: &str) -> Vec<f64> {
    let after = log.split(phrase).skip(1);
    let numbers = after.map(|rest| rest.split(' ').next().unwrap_or_default().parse());
    numbers.filter_map(Result::ok).collect()
}

/// Waits until the log of `watchexec` holds more than `seen` lines with `phrase`.
async fn logged_again(watchexec: &mut Proc, phrase: &str, seen: usize) {
    let what = format!("the runner to log another `{phrase}`");
    dev_support::wait::until(&what, EDIT_LIMIT, || {
        assert!(watchexec.exited().is_none(), "watchexec exited");
        let count = logged_ms(&watchexec.log_text(), phrase).len();
        async move { (count > seen).then_some(()) }
    })
    .await;
}

/// [`Scenario::Supervisor`](crate::Scenario::Supervisor): `--edits` sessions of
/// each way, with `--tabs` tabs; the figures under the debug column.
pub(crate) async fn supervisor(bench: &mut Bench, cargo_target_dir: &Path) -> io::Result<()> {
    let (rounds, tab_count) = (bench.options.edits, usize::from(bench.options.tabs));
    let report = &mut bench.report;
    let Some([watchexec, chromium, chromedriver]) =
        find_or_skip([WATCHEXEC, CHROMIUM, CHROMEDRIVER])
    else {
        report
            .notes
            .push("supervisor: skipped, a tool is missing on PATH".into());
        return Ok(());
    };
    let copy = Copy::build(cargo_target_dir)?;
    let browser = Browser::start(&chromium, &chromedriver, Options::default()).await;
    let mut sessions: [Vec<Session>; 2] = Default::default();
    browser
        .run(async |browser| -> io::Result<()> {
            for k in 0..rounds {
                for (&(name, mode), done) in WAYS.iter().zip(&mut sessions) {
                    let what = format!("round {k} ({name})");
                    let port = free_port();
                    let watching = copy.watch(&watchexec, port, mode, &copy.runner);
                    let found = session(browser, &copy, (watching, port), tab_count, &what);
                    let found = found.await?;
                    println!("  supervisor {what}: {found:?}");
                    done.push(found);
                }
            }
            Ok(())
        })
        .await?;

    for ((name, _), found) in WAYS.iter().zip(&sessions) {
        let after = *name == WAYS[1].0;
        let figure = |what: &str| format!("supervisor ({name}): {what}");
        let goal = |goal: &'static str| when(after, goal);
        let spread = |values: Vec<f64>| {
            let max = values.iter().copied().fold(0.0, f64::max);
            (format!("{:.0} ms, {max:.0} ms", median(&values)), max)
        };
        let (text, worst) = spread(found.iter().map(|s| s.wait).collect());
        let what = "longest wait of a request made between the save and the new app (median, max)";
        report.set(
            &figure(what),
            goal("≤ 100 ms"),
            "debug",
            text,
            after.then_some(worst <= 100.0),
        );
        let (text, worst) = spread(found.iter().map(|s| s.overhead).collect());
        let build = median(&found.iter().map(|s| s.build).collect::<Vec<_>>());
        let text = format!("{text} (build, as the runner timed it: median {build:.0} ms)");
        let what = "save → the new app answering, less the build (median, max)";
        report.set(
            &figure(what),
            goal("≤ 60 ms"),
            "debug",
            text,
            after.then_some(worst <= 60.0),
        );
        let outcomes: Vec<&str> = found.iter().map(|s| s.broken.as_str()).collect();
        let what = "during a broken build: JSON `GET /posts` / JSON `POST /posts` / new page load";
        report.info(&figure(what), "debug", counted(&outcomes));
        let each =
            |f: fn(&Session) -> usize| found.iter().map(|s| f(s).to_string()).collect::<Vec<_>>();
        let text = format!(
            "{} of {tab_count}, per session",
            each(|s| s.tabs_with_report).join(", ")
        );
        report.info(
            &figure("during a broken build: open tabs showing the report"),
            "debug",
            text,
        );
        let (restarts, reloads) = (
            each(|s| s.restarts).join(", "),
            each(|s| s.reloads).join(", "),
        );
        let text = format!("restarts {restarts}; tabs reloaded {reloads} of {tab_count}");
        let what = "unchanged binary (a line added to README.md), per session";
        report.info(&figure(what), "debug", text);
        let gone: Vec<f64> = found.iter().filter_map(|s| s.gone).collect();
        let stayed = format!(
            "{} of {} still ran after 5 s",
            found.len() - gone.len(),
            found.len()
        );
        let text = match (gone.is_empty(), gone.len() < found.len()) {
            (true, _) => stayed,
            (false, some_stayed) => spread(gone).0 + &when(some_stayed, format!("; {stayed}")),
        };
        report.info(
            &figure("runner killed with SIGKILL: app gone (median, max)"),
            "debug",
            text,
        );
    }
    Ok(())
}

/// Distinct texts with their counts: `a (3 of 4); b (1 of 4)`.
fn counted(texts: &[&str]) -> String {
    let mut distinct: Vec<&str> = texts.to_vec();
    distinct.sort();
    distinct.dedup();
    let count = |t: &&str| {
        format!(
            "{t} ({} of {})",
            texts.iter().filter(|x| *x == t).count(),
            texts.len()
        )
    };
    distinct.iter().map(count).collect::<Vec<_>>().join("; ")
}

/// One session under `watchexec`, just started on a free port (see the module).
async fn session(
    browser: &mut Browser,
    copy: &Copy,
    (mut watchexec, port): (Proc, u16),
    tab_count: usize,
    what: &str,
) -> io::Result<Session> {
    let mut found = Session::default();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = format!("http://{addr}/");
    let old = new_instance(addr, None, FIRST_START).await?;
    point_tabs(browser, &url, tab_count, &mut watchexec).await?;

    // 1. An edit: the longest wait, and save → new app less the build.
    let builds = logged_ms(&watchexec.log_text(), BUILT).len();
    let saved = Instant::now();
    let title = new_title(&copy.pages, what)?;
    let (new, longest) = new_instance_waits(addr, Some(&old), EDIT_LIMIT, EDIT_LIMIT).await?;
    let answered = saved.elapsed().as_secs_f64() * 1000.0;
    let built = logged_ms(&watchexec.log_text(), BUILT);
    let late = || io::Error::other(format!("{what}: no `{BUILT}` logged for the edit"));
    found.build = *built
        .get(builds..)
        .and_then(<[f64]>::last)
        .ok_or_else(late)?;
    (found.wait, found.overhead) = (longest.as_secs_f64() * 1000.0, answered - found.build);
    let on_title = |_: usize, tab: &TabState| tab.title == title && tab.is_live();
    let before = browser
        .wait_all("the new title", EDIT_LIMIT, on_title)
        .await;

    // 2. An unchanged binary.
    let builds = logged_ms(&watchexec.log_text(), BUILT).len();
    let mut readme = fs::OpenOptions::new()
        .append(true)
        .open(copy.app.join("README.md"))?;
    writeln!(readme, "\nA line added by the benchmark ({what}).")?;
    logged_again(&mut watchexec, BUILT, builds).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = new_instance(addr, None, EDIT_LIMIT).await?;
    let live = |_: usize, tab: &TabState| tab.is_live();
    let after = browser.wait_all("every tab live", SETTLE, live).await;
    found.restarts = usize::from(now != new);
    found.reloads = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.reloads != a.reloads)
        .count();

    // 3. A broken build, then its fix.
    let failures = logged_ms(&watchexec.log_text(), FAILED).len();
    let source = fs::read_to_string(&copy.pages)?;
    let line = source
        .lines()
        .find(|l| l.contains(&title))
        .unwrap_or_default()
        .to_owned();
    dev_support::scratch::edit(
        &copy.pages,
        &line,
        &format!("{line} const _: u8 = bench_broken;"),
    );
    logged_again(&mut watchexec, FAILED, failures).await;
    let got = http::get_with(addr, "/posts", JSON_GET).await?.status;
    let message = format!("posted while the build was broken, {what}");
    let body = serde_json::json!({ "username": "bench", "message": message }).to_string();
    let json_post = "Host: localhost\r\nContent-Type: application/json\r\n";
    let posted = http::send(addr, "POST /posts", json_post, &body)
        .await
        .status;
    let page = http::get_with(addr, "/", PAGE_LOAD).await?.status;
    browser.switch(0).await;
    browser.client.goto(&url).await.map_err(io::Error::other)?;
    let shown_within = Instant::now() + Duration::from_secs(3);
    let mut shown = Shown::default();
    while !shown.report && Instant::now() < shown_within {
        shown = browser.read_as(0, READ_SHOWN).await.unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 1..tab_count {
        let tab: Shown = browser.read_as(i, READ_SHOWN).await.unwrap_or_default();
        found.tabs_with_report += usize::from(tab.report);
    }
    found.tabs_with_report += usize::from(shown.report);
    let fixed = new_title(&copy.pages, &format!("{what}, fixed"))?;
    dev_support::wait::until("the fixed page", EDIT_LIMIT, || async {
        let page = http::get(addr, "/").await.ok()?;
        page.text().contains(&fixed).then_some(())
    })
    .await;
    let stored = http::get(addr, "/posts").await?.text().contains(&message);
    let (app, error) = (
        ["not the app", "the app"][usize::from(shown.app)],
        ["", " + report"],
    );
    found.broken = format!(
        "{got} / {posted}, {} / {page}, {app}{}",
        ["not stored", "stored"][usize::from(stored)],
        error[usize::from(shown.report)],
    );

    // 4. SIGKILL of the runner.
    let exe = |pid: Pid| fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let under = |root: Pid| descendants(root).into_iter().map(|(pid, _)| pid);
    let runner = under(watchexec.pid()).find(|&pid| exe(pid) == copy.runner);
    let runner = runner.ok_or_else(|| io::Error::other(format!("{what}: no runner")))?;
    let copies = copy.target_dir.join("debug/.axum-autoreload");
    let app = under(runner).find(|&pid| exe(pid).starts_with(&copies));
    let app = app.ok_or_else(|| io::Error::other(format!("{what}: no app under the runner")))?;
    let killed = Instant::now();
    kill(runner, Signal::SIGKILL).map_err(io::Error::other)?;
    let pid = u32::try_from(app.as_raw()).unwrap_or_default();
    while running(pid) && killed.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    found.gone = (!running(pid)).then(|| killed.elapsed().as_secs_f64() * 1000.0);
    if found.gone.is_none() {
        // Not found from watchexec any more: ended here, as it outlived the runner.
        let _ = kill(app, Signal::SIGKILL);
    }
    Ok(found)
}
