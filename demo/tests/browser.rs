//! End to end, with a real `watchexec --socket` and a real headless Chromium: ten
//! tabs on the demo app all reload exactly once after an edit of the source, and
//! once more after SIGUSR1.
//!
//! Needs chromium, chromedriver and watchexec on PATH: without them the test is
//! ignored (the build script's cfg), except under CI (`CI=true`), where it fails.
//! The demo runs with `cargo run` in a scratch copy of the workspace
//! ([`WatchedCopy`]). Run it with `cargo test --test browser -- --nocapture` to see
//! the timings.

use std::time::{Duration, Instant};

use dev_support::chromium::{Browser, Options, TabState};
use dev_support::process::descendants;
use dev_support::scratch::{check, edit, Watch, WatchedCopy};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Tabs to open: more than the six HTTP/1.1 connections a browser allows per host,
/// which only the shared worker (one reload stream for every tab) makes possible.
const TABS: usize = 10;
/// How long the edit may take to reach every tab: cargo rebuilds the crate.
const EDIT_TO_ALL_TABS: Duration = Duration::from_secs(5 * 60);
/// How long tabs may take to settle when nothing needs building.
const SETTLE: Duration = Duration::from_secs(30);
/// The demo's pages, in the copy, and the start of the line the test edits.
const PAGES: &str = "demo/src/app/pages.rs";
const TITLE_PREFIX: &str = "const TITLE: &str = \"";

#[cfg_attr(
    any(missing_chromium, missing_watchexec),
    ignore = "needs chromium, chromedriver and watchexec on PATH"
)]
#[tokio::test]
async fn ten_tabs_reload_once_after_an_edit() {
    let cargo_run = |_: &_| vec!["cargo".into(), "run".into()];
    let (mut copy, browser) =
        WatchedCopy::with_browser(Options::default(), Watch::Restart, cargo_run).await;
    let pages = copy.root.join(PAGES);
    let source = std::fs::read_to_string(&pages).expect("reading pages.rs");
    let (_, rest) = source.split_once(TITLE_PREFIX).expect("pages.rs's TITLE");
    let old_title = rest.split_once('"').expect("the title's closing quote").0;
    let page = copy.first_page.text();
    let title = format!("<title>{old_title}</title>");
    for (needle, what) in [
        (&*title, "its title"),
        ("data-instance=", "the client script"),
    ] {
        assert!(
            page.contains(needle),
            "the home page should carry {what} {needle:?}: {page}"
        );
    }
    let url = copy.url.clone();
    browser
        .run(async |browser| {
            let old_instance = browser.open_live(&url, TABS, SETTLE).await[0]
                .instance
                .clone();
            assert!(old_instance.is_some(), "tab 0 has no instance id");
            let before = (old_title, old_instance.as_deref());
            expect_settled(browser, &mut copy, "before the edit", before, None).await;
            eprintln!("{TABS} tabs live on instance {old_instance:?}");

            // The edit: watchexec restarts `cargo run`, which rebuilds; every tab must
            // reload once, onto the new server, without ever showing an error page.
            let new_title = "axum-autoreload e2e, edited";
            let edited = Instant::now();
            let title_line = |title: &str| format!("{TITLE_PREFIX}{title}\";");
            edit(&pages, &title_line(old_title), &title_line(new_title));
            let mut first_seen = [None; TABS];
            let what = "every tab to show the new title";
            let after = wait_all(browser, &mut copy, what, EDIT_TO_ALL_TABS, |i, tab| {
                assert!(
                    [old_title, new_title].contains(&tab.title.as_str()),
                    "tab {i} shows neither the old nor the new title {} ms after the edit \
                     (an error page?): {tab:?}",
                    edited.elapsed().as_millis()
                );
                let done = tab.title == new_title;
                if done {
                    first_seen[i].get_or_insert(edited.elapsed());
                }
                done
            })
            .await;
            let all = edited.elapsed();
            let first = first_seen.iter().flatten().min().copied().unwrap_or(all);
            let (all, first) = (all.as_millis(), first.as_millis());
            eprintln!(
                "edit-to-all-tabs: {all} ms (first tab after {first} ms; includes the rebuild)"
            );
            let new_instance = after[0].instance.clone();
            assert_ne!(new_instance, old_instance, "no new server after the edit");
            let settled = (new_title, new_instance.as_deref());
            expect_settled(browser, &mut copy, "after the edit", settled, Some("1")).await;

            // SIGUSR1 to the server: every tab reloads once more, from the same server.
            let signalled = Instant::now();
            kill(server_pid(&copy), Signal::SIGUSR1).expect("sending SIGUSR1 to the demo");
            let what = "every tab to reload after SIGUSR1";
            wait_all(browser, &mut copy, what, SETTLE, |i, tab| {
                assert_eq!(tab.title, new_title, "tab {i} after SIGUSR1: {tab:?}");
                tab.reloads.as_deref() == Some("2") && tab.autoreload.as_deref() == Some("live")
            })
            .await;
            let took = signalled.elapsed().as_millis();
            eprintln!("SIGUSR1-to-all-tabs: {took} ms");
            expect_settled(browser, &mut copy, "after SIGUSR1", settled, Some("2")).await;
        })
        .await;
}

/// [`Browser::wait_all`], checking once per round of reads that watchexec is up
/// and cargo did not fail.
async fn wait_all(
    browser: &Browser,
    copy: &mut WatchedCopy,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(usize, &TabState) -> bool,
) -> Vec<TabState> {
    // The tabs are read in order: a tab numbered no higher than the last one seen
    // starts a new round.
    let mut last = None;
    let checked = |i: usize, tab: &TabState| {
        if !matches!(last, Some(last) if i > last) {
            check(&mut copy.watchexec, Watch::Restart, what);
        }
        last = Some(i);
        done(i, tab)
    };
    browser.wait_all(what, limit, checked).await
}

/// Every tab shows `title`, is live on `instance` and its reload counter is
/// `reloads`; and still so a second later (no second reload on its way).
async fn expect_settled(
    browser: &Browser,
    copy: &mut WatchedCopy,
    when: &str,
    (title, instance): (&str, Option<&str>),
    reloads: Option<&str>,
) {
    for round in 0..2 {
        if round == 1 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let what = format!("every tab to be live {when}");
        let live = |_: usize, tab: &TabState| tab.is_live();
        let tabs = wait_all(browser, copy, &what, SETTLE, live).await;
        for (i, tab) in tabs.iter().enumerate() {
            tab.expect_on((i, when), title, instance, reloads);
        }
    }
}

/// The pid of the demo server that watchexec runs (through cargo).
fn server_pid(copy: &WatchedCopy) -> Pid {
    let servers: Vec<Pid> = descendants(copy.watchexec.pid())
        .into_iter()
        .map(|(process, _)| process)
        .filter(|process| {
            let name = std::fs::read_to_string(format!("/proc/{process}/comm"));
            name.is_ok_and(|name| name.trim() == "axum-autoreload")
        })
        .collect();
    match servers[..] {
        [server] => server,
        _ => panic!("expected one axum-autoreload process under watchexec, found {servers:?}"),
    }
}
